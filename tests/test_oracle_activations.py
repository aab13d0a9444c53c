"""The building blocks as target-less cases (conformance/oracle/activations.py).

An independent 50-digit mpmath computation of each value and vector-Jacobian product,
finite differences, invariants and limits; magnitudes against float32 implementations
written the way frameworks write them; the case plumbing (no target, a drawn cotangent,
file:line errors); and deliberately wrong oracles that the shipped cases must catch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath as mp
import numpy as np
import pytest
from conftest import Judged, failing_ids, judged_cases
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conformance import cases, oracle, runner
from conformance.compare import compare

SETTINGS = settings(max_examples=40, deadline=None)
BLOCKS = ("softmax", "log_softmax", "sigmoid", "log_sigmoid")
mp.mp.dps = 50

logits = arrays(
    np.float64,
    st.tuples(st.integers(1, 3), st.integers(1, 5)),
    elements=st.one_of(
        st.floats(-40, 40, allow_nan=False),
        st.sampled_from([-1e4, -745.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4]),
    ),
)


def _mp_rows(x: np.ndarray, g: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Value and VJP of ``name`` at 50 digits, from the definitions (rows along axis 1)."""
    value = np.zeros(x.shape)
    vjp = np.zeros(x.shape)
    for n in range(x.shape[0]):
        xs = [mp.mpf(float(v)) for v in x[n]]
        gs = [mp.mpf(float(v)) for v in g[n]]
        if name in ("softmax", "log_softmax"):
            # log1p of the non-max terms: 1 + e^-100 is not representable at 50 digits
            k = max(range(len(xs)), key=lambda c: xs[c])
            m = xs[k]
            tail = mp.log1p(mp.fsum(mp.exp(v - m) for c, v in enumerate(xs) if c != k))
            log_p = [(v - m) - tail for v in xs]  # v - m is exact; m + tail would round
            y = [mp.exp(lp) for lp in log_p]
            gy = mp.fsum(a * b for a, b in zip(gs, y, strict=True))
            gsum = mp.fsum(gs)
            for c in range(len(xs)):
                if name == "softmax":
                    value[n, c] = float(y[c])
                    vjp[n, c] = float(y[c] * (gs[c] - gy))
                else:
                    value[n, c] = float(log_p[c])
                    vjp[n, c] = float(gs[c] - y[c] * gsum)
        else:
            for c, v in enumerate(xs):
                s, s_neg = 1 / (1 + mp.exp(-v)), 1 / (1 + mp.exp(v))
                if name == "sigmoid":
                    value[n, c] = float(s)
                    vjp[n, c] = float(gs[c] * s * s_neg)
                else:
                    value[n, c] = float(-mp.log1p(mp.exp(-v)))
                    vjp[n, c] = float(gs[c] / (1 + mp.exp(v)))
    return value, vjp


def _close(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", BLOCKS)
@SETTINGS
@given(x=logits, seed=st.integers(0, 2**16))
def test_value_and_vjp_match_50_digits(name: str, x: np.ndarray, seed: int) -> None:
    g = np.random.default_rng(seed).normal(size=x.shape)
    spec = oracle.LOSSES[name]
    want_value, want_vjp = _mp_rows(x, g, name)
    _close(spec.value(x, None), want_value)
    # The VJP's terms cancel when one class dominates: relative to the terms' size.
    got = spec.grad(x, None, grad_output=g)
    scale = np.abs(g).max() * 1e-12 + 1e-300
    np.testing.assert_allclose(got, want_vjp, rtol=1e-12, atol=scale)


@pytest.mark.parametrize("name", BLOCKS)
def test_vjp_matches_finite_differences(name: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 3, size=(3, 4, 2))
    g = rng.normal(size=x.shape)
    spec = oracle.LOSSES[name]
    h = 1e-6
    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        fd[i] = np.sum((spec.value(x + e, None) - spec.value(x - e, None)) * g) / (2 * h)
    np.testing.assert_allclose(spec.grad(x, None, grad_output=g), fd, rtol=1e-6, atol=1e-9)


def test_invariants() -> None:
    x = np.random.default_rng(4).normal(0, 5, size=(4, 7, 3))
    np.testing.assert_allclose(oracle.softmax(x).sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(np.exp(oracle.log_softmax(x)), oracle.softmax(x), rtol=1e-14)
    np.testing.assert_allclose(oracle.sigmoid(x) + oracle.sigmoid(-x), 1.0, rtol=1e-15)
    np.testing.assert_allclose(
        oracle.log_sigmoid(x) - oracle.log_sigmoid(-x), x, rtol=1e-13, atol=1e-14
    )
    # The gradient of softmax's sum is 0: why target-less cases draw a cotangent.
    assert np.abs(oracle.LOSSES["softmax"].grad(x, None)).max() < 1e-16


def test_limits_at_infinity_and_nan() -> None:
    x = np.array([[np.inf, -np.inf, 0.0, np.nan]])
    assert oracle.sigmoid(x).tolist()[0][:3] == [1.0, 0.0, 0.5]
    assert np.isnan(oracle.sigmoid(x)[0, 3])
    assert oracle.log_sigmoid(x).tolist()[0][:2] == [0.0, -np.inf]
    assert oracle.LOSSES["log_sigmoid"].grad(x[:, :2], None).tolist() == [[0.0, 1.0]]
    # -inf classes get probability 0; a row holding +inf or NaN is NaN (inf - inf)
    row = np.array([[-np.inf, 0.0, 0.0], [np.inf, 0.0, 1.0]])
    assert oracle.softmax(row)[0].tolist() == [0.0, 0.5, 0.5]
    assert np.all(np.isnan(oracle.softmax(row)[1]))
    for name in ("sigmoid", "log_sigmoid"):  # elementwise: finite where the input is
        loss_mag, grad_mag = oracle.LOSSES[name].magnitude(
            x[:, :3], None, grad_output=np.ones((1, 3))
        )
        assert not np.any(np.isnan(loss_mag)) and not np.any(np.isnan(grad_mag))


# ------------------------------------------------------ magnitudes: float32 the frameworks' way


def _f32(name: str, x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``name`` and its VJP computed in float32 as PyTorch's CPU kernels write them."""
    x, g = x.astype(np.float32), g.astype(np.float32)
    if name in ("softmax", "log_softmax"):
        shifted = x - x.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        y = e / e.sum(axis=1, keepdims=True)
        if name == "softmax":
            return y, y * (g - np.sum(g * y, axis=1, keepdims=True))
        out = shifted - np.log(e.sum(axis=1, keepdims=True))
        return out, g - np.exp(out) * g.sum(axis=1, keepdims=True)
    e = np.exp(-np.abs(x))
    if name == "sigmoid":
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float32)
        return y, g * y * (1 - y)  # from the rounded output, as every backward does
    out = np.minimum(x, 0) - np.log1p(e)
    return out, g * np.where(x >= 0, e / (1 + e), 1 / (1 + e))


@pytest.mark.parametrize("name", BLOCKS)
def test_float32_implementations_are_within_tolerance(name: str) -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(0, 4, size=(30, 10)), rng.normal(0, 30, size=(30, 10))])
    x = x.astype(np.float32).astype(np.float64)
    g = rng.normal(size=x.shape).astype(np.float32).astype(np.float64)
    spec = oracle.LOSSES[name]
    value, vjp = _f32(name, x, g)
    loss_mag, grad_mag = spec.magnitude(x, None, grad_output=g)
    n_terms = x.shape[1] if spec.class_terms else 1
    for got, want, mag in (
        (value, spec.value(x, None), loss_mag),
        (vjp, spec.grad(x, None, grad_output=g), grad_mag),
    ):
        result = compare(got, want, mag, dtype="float32", n_terms=n_terms)
        assert result.passed, result.reason


# ------------------------------------------------------------------- cases without a target


def test_a_target_less_case_has_no_target_and_draws_a_cotangent(write_yaml: Any) -> None:
    path = write_yaml(
        "cases:\n"
        "  - id: s\n"
        "    loss: softmax\n"
        "    input: {shape: [2, 3], seed: 7}\n"
        "    matrix: {dtype: [float16, float32]}\n"
    )
    half, single = cases.load_file(path)
    x, target = single.arrays()
    assert target is None and single.target_kind == "none"
    assert single.params == {"reduction": "none"}
    g = single.grad_output()
    assert g is not None and g.shape == x.shape and g.dtype == np.float32
    np.testing.assert_array_equal(g, single.grad_output())  # deterministic
    assert half.grad_output().dtype == np.float16  # type: ignore[union-attr]
    np.testing.assert_array_equal(
        g, np.random.default_rng(8).normal(size=(2, 3)).astype(np.float32)
    )
    expected = runner.expected_for(single, x, target)
    assert not expected.problem
    np.testing.assert_allclose(
        expected.values["grad"], oracle.LOSSES["softmax"].grad(x, None, grad_output=g)
    )


def _errors(path: Any) -> list[str]:
    with pytest.raises(cases.CaseErrors) as info:
        cases.load_file(path)
    return [str(e) for e in info.value.errors]


def test_a_target_or_a_reduction_on_a_building_block_is_refused(write_yaml: Any) -> None:
    path = write_yaml(
        "cases:\n"
        "  - id: s\n"
        "    loss: sigmoid\n"
        "    input: {shape: [2, 3], seed: 7}\n"
        "    target: {kind: binary, seed: 1}\n"
        "  - id: r\n"
        "    loss: log_softmax\n"
        "    input: {shape: [2, 3], seed: 7}\n"
        "    params: {reduction: mean}\n"
    )
    errors = _errors(path)
    assert any(":5:" in e and "takes no target" in e for e in errors), errors
    assert any(":9:" in e and "no parameter 'reduction'" in e for e in errors), errors


def test_a_loss_without_its_target_is_refused_at_its_line(write_yaml: Any) -> None:
    path = write_yaml(
        "cases:\n  - id: c\n    loss: cross_entropy\n    input: {shape: [2, 3], seed: 7}\n"
    )
    (error,) = _errors(path)
    assert ":2:" in error and "missing field 'target'" in error and "index or probs" in error


# ------------------------------------------------------ the shipped cases catch wrong oracles


@pytest.fixture(scope="module")
def judged() -> list[Judged]:
    out = judged_cases("activations.yaml")
    assert all(target is None and e.grad_output is not None for _, _, target, e in out)
    return out


# What a framework returns for input x along the cotangent g (the target is None).
Mutant = Callable[[np.ndarray, None, np.ndarray], dict[str, np.ndarray]]


def _log_sigmoid_by_log(x: np.ndarray, _: None, g: np.ndarray) -> dict[str, np.ndarray]:
    """Paddle's formula: log where log1p is needed."""
    t = np.maximum(-x, 0.0)
    with np.errstate(invalid="ignore"):
        value = -t - np.log(np.exp(-t) + np.exp(-x - t))
    return {"loss": value, "grad": oracle.LOSSES["log_sigmoid"].grad(x, None, grad_output=g)}


def _clipped_at_64(x: np.ndarray, _: None, g: np.ndarray) -> dict[str, np.ndarray]:
    """Paddle's CPU log_softmax: shifted logits clipped at -64."""
    shifted = np.maximum(x - x.max(axis=1, keepdims=True), -64.0)
    value = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return {"loss": value, "grad": oracle.LOSSES["log_softmax"].grad(x, None, grad_output=g)}


def _block(name: str, **change: Any) -> Mutant:
    spec = oracle.LOSSES[name]

    def outputs(x: np.ndarray, _: None, g: np.ndarray) -> dict[str, np.ndarray]:
        value = spec.value(x, None)
        grad = spec.grad(x, None, grad_output=g)
        if change.get("last_axis"):
            moved = np.moveaxis(x, 1, -1)
            value = np.moveaxis(spec.value(moved, None), -1, 1)
        if change.get("ones"):
            grad = spec.grad(x, None)
        if change.get("via_log"):
            with np.errstate(divide="ignore"):
                value = np.log(oracle.softmax(x))
        return {"loss": value, "grad": grad}

    return outputs


MUTANTS: dict[str, tuple[str, Mutant]] = {
    "softmax over the last axis": ("softmax", _block("softmax", last_axis=True)),
    "log_softmax over the last axis": ("log_softmax", _block("log_softmax", last_axis=True)),
    "softmax gradient along ones": ("softmax", _block("softmax", ones=True)),
    "sigmoid gradient along ones": ("sigmoid", _block("sigmoid", ones=True)),
    "log_softmax as log(softmax)": ("log_softmax", _block("log_softmax", via_log=True)),
    "log_softmax clipped at -64": ("log_softmax", _clipped_at_64),
    "log_sigmoid with log, not log1p": ("log_sigmoid", _log_sigmoid_by_log),
}


def _caught(judged: list[Judged], loss: str, outputs: Mutant) -> list[str]:
    return failing_ids(
        [j for j in judged if j[0].loss == loss],
        lambda x, target, grad_output: outputs(x, target, grad_output),
    )


@pytest.mark.parametrize("name", list(MUTANTS))
def test_every_mutant_is_caught_by_a_shipped_case(name: str, judged: Any) -> None:
    loss, outputs = MUTANTS[name]
    assert _caught(judged, loss, outputs), f"no shipped case notices: {name}"


@pytest.mark.parametrize("loss", BLOCKS)
def test_the_true_oracle_in_the_case_dtype_passes_every_shipped_case(
    loss: str, judged: Any
) -> None:
    spec = oracle.LOSSES[loss]

    def truth(x: np.ndarray, _: None, g: np.ndarray) -> dict[str, np.ndarray]:
        return {"loss": spec.value(x, None), "grad": spec.grad(x, None, grad_output=g)}

    assert _caught(judged, loss, truth) == []

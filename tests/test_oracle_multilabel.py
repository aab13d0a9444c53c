"""Tests of the multi-label soft-margin oracle (conformance/oracle/multilabel.py).

An independent 50-digit mpmath computation (hard targets elementwise to 1e-12, soft targets
against the error magnitude), invariants (the mean over classes of the binary cross-entropy
with logits oracle; the last-axis option is the canonical loss of the input with that axis
moved to position 1), finite-difference gradients, the option table, and mutants that some
shipped case must catch. No deep-learning framework is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mpmath as mp
import numpy as np
import pytest
from conftest import Judged, failing_ids, judged_cases

from conformance.oracle import binary, multilabel, options
from conformance.oracle.multilabel import (
    multilabel_soft_margin_loss as ml,
)
from conformance.oracle.multilabel import (
    multilabel_soft_margin_loss_grad as ml_grad,
)
from conformance.oracle.multilabel import (
    multilabel_soft_margin_loss_magnitude as ml_mag,
)
from conformance.oracle.multilabel import (
    multilabel_soft_margin_loss_outputs as ml_outputs,
)

INF = math.inf
SHAPES = [(4, 3), (3, 1), (2, 3, 4), (2, 3, 2, 3)]


def _draw(
    seed: int, shape: tuple[int, ...], *, soft: bool = False, extreme: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 4.0, size=shape)
    if extreme:
        picks = np.array([30.0, -30.0, 100.0, -100.0, 1e4, -1e4, 800.0, -800.0])
        mask = rng.random(shape) < 0.4
        x = np.where(mask, rng.choice(picks, size=shape), x)
    t = rng.uniform(0, 1, size=shape) if soft else rng.integers(0, 2, size=shape).astype(float)
    w = rng.uniform(0.1, 3.0, size=shape[1]).reshape((-1,) + (1,) * (len(shape) - 2))
    return x, t, w


def _mp_reference(
    x: np.ndarray, t: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, mp.mpf, np.ndarray, np.ndarray]:
    """Per-element loss, its per-class gradient (of 'sum') in 50-digit arithmetic."""
    mp.mp.dps = 50
    wb = np.broadcast_to(w, x.shape)
    c = x.shape[1]
    per_class = np.empty(x.shape, dtype=object)
    grad = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(x.shape):
        xi, ti, wi = mp.mpf(float(x[idx])), mp.mpf(float(t[idx])), mp.mpf(float(wb[idx]))
        sig = 1 / (1 + mp.exp(-xi))
        sig_neg = 1 / (1 + mp.exp(xi))
        per_class[idx] = -wi * (ti * mp.log(sig) + (1 - ti) * mp.log(sig_neg)) / c
        grad[idx] = wi * ((1 - ti) * sig - ti * sig_neg) / c
    per_elem = np.sum(per_class, axis=1)
    total = mp.fsum(per_elem.ravel())
    return per_elem, grad, total, per_class, wb


def _f(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.vectorize(float, otypes=[np.float64])(a)
    return out


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("extreme", [False, True])
def test_hard_targets_match_mpmath(shape: tuple[int, ...], seed: int, extreme: bool) -> None:
    x, t, w = _draw(seed, shape, extreme=extreme)
    per_elem, grad, total, _, _ = _mp_reference(x, t, w)
    m = x.size // x.shape[1]
    np.testing.assert_allclose(ml(x, t, weight=w, reduction="none"), _f(per_elem), rtol=1e-12)
    assert float(ml(x, t, weight=w, reduction="sum")) == pytest.approx(float(total), rel=1e-12)
    assert float(ml(x, t, weight=w)) == pytest.approx(float(total / m), rel=1e-12)
    # With hard targets each gradient element is one term: elementwise relative accuracy.
    np.testing.assert_allclose(ml_grad(x, t, weight=w, reduction="sum"), _f(grad), rtol=1e-12)
    np.testing.assert_allclose(ml_grad(x, t, weight=w), _f(grad) / m, rtol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [3, 4])
def test_soft_targets_match_mpmath_within_the_magnitude(shape: tuple[int, ...], seed: int) -> None:
    x, t, w = _draw(seed, shape, soft=True, extreme=True)
    per_elem, grad, _, _, _ = _mp_reference(x, t, w)
    np.testing.assert_allclose(ml(x, t, weight=w, reduction="none"), _f(per_elem), rtol=1e-12)
    g = ml_grad(x, t, weight=w, reduction="none")
    _, grad_mag = ml_mag(x, t, weight=w, reduction="none")
    # a0 sigmoid(x) - a1 sigmoid(-x) cancels for soft targets: judged against its scale
    assert np.all(np.abs(g - _f(grad)) <= 1e-12 * grad_mag)


def test_worked_numbers() -> None:
    # x = [0, 2], t = [1, 0]: l = (softplus(0) + softplus(2)) / 2
    want = (math.log(2.0) + math.log1p(math.exp(2.0))) / 2
    assert float(ml(np.array([[0.0, 2.0]]), np.array([[1.0, 0.0]]))) == pytest.approx(
        want, rel=1e-15
    )
    # gradient (sigmoid(x) - t) / C
    g = ml_grad(np.array([[0.0, 2.0]]), np.array([[1.0, 0.0]]), reduction="sum")
    np.testing.assert_allclose(g, [[-0.25, 0.5 / (1 + math.exp(-2.0))]], rtol=1e-15)


def test_infinite_logits_are_limits_and_zero_log_zero_nan() -> None:
    x = np.array([[INF, -INF, 1.0], [INF, -INF, -1.0]])
    t = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    loss = ml(x, t, reduction="none")
    assert loss[0] == pytest.approx(math.log1p(math.exp(-1.0)) / 3, rel=1e-15)
    assert loss[1] == INF
    g = ml_grad(x, t, reduction="none")
    np.testing.assert_array_equal(g[:, :2], [[0.0, 0.0], [1 / 3, -1 / 3]])
    nan = ml_outputs(x, t, reduction="none", choices={"zero_log_zero": "nan"})["loss"]
    assert np.isnan(nan[0])  # 0 * log sigmoid(-inf) = 0 * -inf
    assert nan[1] == INF  # each infinite term has a nonzero coefficient: no 0 * inf
    assert np.isnan(ml(np.array([[np.nan, 1.0], [0.0, 1.0]]), np.ones((2, 2)), reduction="none"))[0]


@pytest.mark.parametrize("shape", SHAPES)
def test_equals_mean_over_classes_of_bce_with_logits(shape: tuple[int, ...]) -> None:
    x, t, w = _draw(7, shape, soft=True, extreme=True)
    c = shape[1]
    bce = binary.binary_cross_entropy_with_logits(x, t, weight=w, reduction="none")
    np.testing.assert_allclose(ml(x, t, weight=w, reduction="none"), bce.mean(axis=1), rtol=1e-14)
    # the mean over samples of the class means is the mean over all elements
    assert float(ml(x, t, weight=w)) == pytest.approx(
        float(binary.binary_cross_entropy_with_logits(x, t, weight=w)), rel=1e-13
    )
    bce_grad = binary.binary_cross_entropy_with_logits_grad(x, t, weight=w, reduction="sum")
    np.testing.assert_allclose(
        ml_grad(x, t, weight=w, reduction="sum"), bce_grad / c, rtol=1e-14, atol=1e-300
    )


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 3, 2, 5)])
def test_last_axis_option_is_canonical_on_the_moved_input(shape: tuple[int, ...]) -> None:
    x, t, w = _draw(11, shape)
    wb = np.broadcast_to(w, x.shape)

    def moved(a: np.ndarray) -> np.ndarray:
        return np.moveaxis(a, -1, 1)

    for reduction in ("none", "mean", "sum"):
        got = ml_outputs(x, t, weight=w, reduction=reduction, choices={"multilabel_axis": "last"})
        want_loss = ml(moved(x), moved(t), weight=moved(wb), reduction=reduction)
        want_grad = ml_grad(moved(x), moved(t), weight=moved(wb), reduction=reduction)
        np.testing.assert_allclose(got["loss"], want_loss, rtol=1e-14)
        np.testing.assert_allclose(got["grad"], np.moveaxis(want_grad, 1, -1), rtol=1e-14)
    # 2-d input: the last axis is the class axis
    x2, t2, w2 = _draw(12, (5, 4))
    a = ml_outputs(x2, t2, weight=w2, reduction="none", choices={"multilabel_axis": "last"})
    np.testing.assert_array_equal(a["loss"], ml(x2, t2, weight=w2, reduction="none"))


def _fd(f: Callable[[np.ndarray], Any], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (float(f(x + e)) - float(f(x - e))) / (2 * h)
    return g


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("axis", ["class", "last"])
def test_gradient_matches_finite_differences(
    shape: tuple[int, ...], reduction: str, axis: str
) -> None:
    x, t, w = _draw(21, shape, soft=True)
    choices = {"multilabel_axis": axis}
    got = ml_outputs(x, t, weight=w, reduction=reduction, choices=choices)["grad"]
    fd = _fd(lambda z: ml_outputs(z, t, weight=w, reduction=reduction, choices=choices)["loss"], x)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-9)


def test_grad_output_and_reduction_relations() -> None:
    x, t, w = _draw(31, (3, 4, 2))
    g = np.random.default_rng(0).normal(size=(3, 2))
    per = ml_grad(x, t, weight=w, reduction="none", grad_output=g)
    unit = ml_grad(x, t, weight=w, reduction="none")
    np.testing.assert_allclose(per, unit * g[:, None], rtol=1e-15)
    none = ml(x, t, weight=w, reduction="none")
    assert float(ml(x, t, weight=w, reduction="sum")) == pytest.approx(none.sum(), rel=1e-15)
    assert float(ml(x, t, weight=w)) == pytest.approx(none.mean(), rel=1e-15)
    np.testing.assert_array_equal(ml(x, t, weight=np.ones((4, 1))), ml(x, t))


def test_magnitude_formula() -> None:
    x = np.array([[2.0, -1.0]])
    t = np.array([[1.0, 0.0]])
    loss_mag, grad_mag = ml_mag(x, t, reduction="sum")

    def sp(z: float) -> float:
        return math.log1p(math.exp(z))

    want = ((sp(-2.0) + 2 + 1) + (sp(-1.0) + 1 + 1)) / 2
    assert float(loss_mag) == pytest.approx(want, rel=1e-15)
    sig = 1 / (1 + math.exp(-2.0))
    assert grad_mag[0, 0] == pytest.approx((sig * (1 + sp(-2.0)) + 1) / 2, rel=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input": np.zeros(3), "target": np.zeros(3)}, "shape \\(N, C\\)"),
        ({"input": np.zeros((2, 3)), "target": np.zeros((2, 2))}, "same shape"),
        ({"input": np.zeros((2, 3)), "target": np.zeros((2, 3)), "weight": [1, 2]}, "broadcast"),
        ({"input": np.zeros((2, 3)), "target": np.zeros((2, 3)), "reduction": "avg"}, "one of"),
    ],
)
def test_argument_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ml(kwargs.pop("input"), kwargs.pop("target"), **kwargs)


def test_option_table() -> None:
    names = {o.name for o in options.options_for(multilabel.LOSS)}
    assert names == {"multilabel_axis", "zero_log_zero"}
    with pytest.raises(ValueError, match="no semantic option"):
        ml_outputs(np.zeros((1, 2)), np.zeros((1, 2)), choices={"log_clamp": "-100"})


# ---------------------------------------------------------------- mutants the shipped cases catch


@pytest.fixture(scope="module")
def judged() -> list[Judged]:
    return judged_cases("multilabel_soft_margin.yaml")


def _caught(judged: list[Judged], outputs: Callable[..., dict[str, np.ndarray]]) -> list[str]:
    return failing_ids(judged, outputs)


def _scaled(loss: float, grad: float) -> Callable[..., dict[str, np.ndarray]]:
    def outputs(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
        out = ml_outputs(x, t, **kw)
        return {"loss": out["loss"] * loss, "grad": out["grad"] * grad}

    return outputs


def _weights_ignored(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
    return ml_outputs(x, t, **{**kw, "weight": None})


def _mean_over_batch(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
    out = ml_outputs(x, t, **kw)
    if kw["reduction"] != "mean":
        return out
    factor = (np.asarray(x).size / np.asarray(x).shape[1]) / np.asarray(x).shape[0]
    return {"loss": out["loss"] * factor, "grad": out["grad"] * factor}


MUTANTS = {
    "sum over the classes instead of the mean": _scaled(1.0, 1.0),  # replaced below per case
    "weights ignored": _weights_ignored,
    "mean divides by N only": _mean_over_batch,
    "gradient not divided by C": None,
    "loss 1e-5 too large": _scaled(1 + 1e-5, 1.0),
}


def _class_sum(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
    c = np.asarray(x).shape[1]
    out = ml_outputs(x, t, **kw)
    return {"loss": out["loss"] * c, "grad": out["grad"] * c}


def _grad_times_c(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
    out = ml_outputs(x, t, **kw)
    return {"loss": out["loss"], "grad": out["grad"] * np.asarray(x).shape[1]}


MUTANTS["sum over the classes instead of the mean"] = _class_sum
MUTANTS["gradient not divided by C"] = _grad_times_c


@pytest.mark.parametrize("name", list(MUTANTS))
def test_every_mutant_is_caught_by_a_shipped_case(name: str, judged: Any) -> None:
    mutant = MUTANTS[name]
    assert mutant is not None
    assert _caught(judged, mutant), f"no shipped case notices: {name}"


def test_the_true_oracle_passes_every_shipped_case(judged: Any) -> None:
    assert not _caught(judged, ml_outputs)


@pytest.mark.parametrize(
    ("option", "choice", "catcher"),
    [
        ("multilabel_axis", "last", "ml-nchw-weighted[reduction=none]"),
        ("zero_log_zero", "nan", "ml-infinite-logits[reduction=none]"),
    ],
)
def test_every_option_choice_is_caught(option: str, choice: str, catcher: str, judged: Any) -> None:
    alternatives = [
        (o.name, c)
        for o in options.options_for(multilabel.LOSS)
        for c in o.choices
        if c != o.canonical
    ]
    assert (option, choice) in alternatives
    assert len(alternatives) == 2  # a new choice needs a row here

    def outputs(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
        return ml_outputs(x, t, **kw, choices={option: choice})

    assert catcher in _caught(judged, outputs)

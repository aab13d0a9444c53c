"""Tests of the KL-divergence oracle (conformance/oracle/kl.py).

Sections: hand and measured numbers (each option choice included); an independent 50-digit
mpmath computation on hypothesis-generated probability rows (exact zero targets, log_softmax
inputs from very negative logits); finite differences; invariants; magnitudes (against float32
forms written the plain way); argument errors; mutants (deliberately wrong oracles the tests
must reject). No deep-learning framework is imported: the framework numbers below were
measured once (float64 unless said; torch 2.13 CPU, optax 0.2.8, keras 3.15 on TensorFlow
2.21, paddle 3.3.1) and are written down.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import mpmath as mp
import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conformance.compare import compare
from conformance.oracle import kl as K

SETTINGS = settings(max_examples=60, deadline=None)
EPS32 = float(np.finfo(np.float32).eps)
TINY32 = float(np.finfo(np.float32).tiny)
INF, NAN = math.inf, math.nan
LN2 = math.log(2.0)
CLIP = {"kl_clip": "clip_1e-7"}
LAST = {"kl_axis": "last_sum"}
KERAS = {**CLIP, **LAST}


def _none(x: Any, t: Any, **kw: Any) -> np.ndarray:
    out: np.ndarray = K.kl_div(np.asarray(x, float), np.asarray(t, float), reduction="none", **kw)
    return out


def _grad_none(x: Any, t: Any, **kw: Any) -> np.ndarray:
    x, t = np.asarray(x, float), np.asarray(t, float)
    out: np.ndarray = K.kl_div_grad(x, t, reduction="none", **kw)
    return out


# --------------------------------------------------------------------------------------------
# Hand and measured numbers
# --------------------------------------------------------------------------------------------

X3, T3 = np.log([0.25, 0.25, 0.5]), np.array([0.5, 0.5, 0.0])
# torch.nn.functional.kl_div at these points (measured): loss [0.34657359027997264 x 2, 0, nan,
# nan, 0], gradient of the sum [-0.5, -0.5, -0, -0, 0.2, -0]; optax.losses.kl_divergence the
# same values; paddle [0.3466 x 2, 0, 0, 0, 0] (it zeroes every t <= 0).
X6 = np.array([math.log(0.25), math.log(0.25), math.log(0.5), -INF, 0.3, 0.1])
T6 = np.array([0.5, 0.5, 0.0, 0.0, -0.2, 0.0])


def test_worked_example() -> None:
    # x = log [1/4, 1/4, 1/2], t = [1/2, 1/2, 0]: 1/2 log 2 + 1/2 log 2 + 0 = log 2.
    assert float(K.kl_div(X3, T3, reduction="sum")) == pytest.approx(LN2, rel=1e-15)
    assert float(K.kl_div(X3, T3)) == pytest.approx(LN2 / 3, rel=1e-15)  # mean over 3
    assert float(K.kl_div(X3, T3, reduction="batchmean")) == pytest.approx(LN2 / 3, rel=1e-15)
    np.testing.assert_allclose(_none(X3, T3), [LN2 / 2, LN2 / 2, 0.0], rtol=1e-15)
    np.testing.assert_array_equal(K.kl_div_grad(X3, T3, reduction="sum"), [-0.5, -0.5, -0.0])
    np.testing.assert_array_equal(K.kl_div_grad(X3, T3), [-0.5 / 3, -0.5 / 3, -0.0])
    # 0 log 0 = 0 whatever x: x = -inf, +inf, NaN.
    np.testing.assert_array_equal(_none([-INF, INF, NAN, 2.0], np.zeros(4)), np.zeros(4))
    np.testing.assert_array_equal(_grad_none([-INF, 2.0], [0.0, 0.0]), [0.0, 0.0])
    assert float(K.kl_div(np.array([-INF, 0.0]), np.array([0.0, 1.0]), reduction="sum")) == 0.0


def test_torch_measured_numbers() -> None:
    # Canonical differs from torch only at (x, t) = (-inf, 0): torch NaN, the oracle 0
    # (zero_target=xlogy reproduces torch; test_zero_target_choices).
    half_log2 = 0.34657359027997264
    np.testing.assert_allclose(_none(X6, T6), [half_log2, half_log2, 0, 0, NAN, 0], rtol=1e-15)
    np.testing.assert_array_equal(_grad_none(X6, T6), [-0.5, -0.5, -0.0, -0.0, 0.2, -0.0])
    # torch batchmean on (3, 2) (measured): 0.34881679863395565 = sum / 3; gradient -t / 3.
    x2 = np.array([[0.1, -2.0], [-0.3, -1.0], [-5.0, -0.01]])
    t2 = np.array([[0.2, 0.8], [0.5, 0.5], [0.0, 1.0]])
    assert float(K.kl_div(x2, t2, reduction="batchmean")) == pytest.approx(
        0.34881679863395565, rel=1e-15
    )
    np.testing.assert_allclose(K.kl_div_grad(x2, t2, reduction="batchmean"), -t2 / 3, rtol=1e-15)
    # A 0-d input: batchmean divides by 1 (torch: -0.4965735902799726).
    assert float(K.kl_div(0.3, 0.5, reduction="batchmean")) == pytest.approx(-0.49657359027997264)
    # log_target: exp(lt) (lt - x).
    lt = np.array([math.log(0.5), math.log(0.5), -INF])
    np.testing.assert_allclose(_none(X3, lt, log_target=True), [LN2 / 2, LN2 / 2, 0], rtol=1e-15)
    np.testing.assert_array_equal(_grad_none(X3, lt, log_target=True), [-0.5, -0.5, -0.0])


def test_empty_scalar_and_special_values() -> None:
    e = np.zeros((0, 3))
    assert np.isnan(K.kl_div(e, e)) and np.isnan(K.kl_div(e, e, reduction="batchmean"))
    assert float(K.kl_div(e, e, reduction="sum")) == 0.0  # torch: nan for mean, batchmean
    assert K.kl_div(e, e, reduction="none").shape == (0, 3)
    np.testing.assert_array_equal(K.kl_div_grad(e, e, reduction="batchmean"), e)
    # (2, 0): batchmean divides by N = 2, mean over no elements is NaN.
    z = np.zeros((2, 0))
    assert float(K.kl_div(z, z, reduction="batchmean")) == 0.0 and np.isnan(K.kl_div(z, z))
    v = K.kl_div(0.0, 1.0, reduction="none")
    assert v.shape == () and v.dtype == np.float64 and float(v) == 0.0
    assert K.kl_div_grad(-1.0, 0.25).shape == ()
    # x = -inf with t > 0: +inf; t = NaN: NaN; t = +inf: inf.
    np.testing.assert_array_equal(_none([-INF, 0.0, -1.0], [0.5, NAN, INF]), [INF, NAN, INF])


def test_nonpositive_drops_negative_targets_as_paddle_does() -> None:
    # paddle 3.3.1 CPU, float32: F.kl_div(x, t, reduction="none") and the input's gradient
    # of its sum (cases/kl.yaml kl-negative-target): the negative target gives 0 and 0.
    x = np.array([[-1.2039728, -0.6931472, -1.6094379]], dtype=np.float32).astype(np.float64)
    t = np.array([[-0.1, 0.6, 0.5]], dtype=np.float32).astype(np.float64)
    rule = {"zero_target": "nonpositive"}
    out = K.kl_div_outputs(x, t, reduction="none", choices=rule)
    np.testing.assert_allclose(out["loss"], [[0.0, 0.10939297080039978, 0.4581453800201416]], 1e-7)
    np.testing.assert_array_equal(out["grad"], [[0.0, -t[0, 1], -t[0, 2]]])
    # Canonically the negative target's log is NaN, and so is the sum.
    assert np.isnan(K.kl_div(x, t, reduction="none")[0, 0])
    assert np.isnan(K.kl_div(x, t, reduction="sum"))
    # Under log_target nothing is dropped: exp(lt) (lt - x) in IEEE arithmetic.
    lt = np.array([[-INF, 0.0]])
    got = K.kl_div(np.array([[-INF, -1.0]]), lt, log_target=True, reduction="none", choices=rule)
    assert np.isnan(got[0, 0]) and got[0, 1] == 1.0


def test_class_sum_sums_over_axis_1() -> None:
    rng = np.random.default_rng(3)
    x = np.log(rng.dirichlet(np.ones(4), (2, 3)).transpose(0, 2, 1))  # (2, 4, 3), axis 1
    t = rng.dirichlet(np.ones(4), (2, 3)).transpose(0, 2, 1)
    per = K.kl_div(x, t, reduction="none")
    np.testing.assert_allclose(
        K.kl_div(x, t, reduction="none", choices={"kl_axis": "class_sum"}), per.sum(axis=1)
    )
    np.testing.assert_allclose(
        K.kl_div(x, t, reduction="none", choices=LAST), per.sum(axis=-1), rtol=1e-15
    )
    # 'mean' divides by the N * W sums; on (N, C) input class_sum is last_sum.
    np.testing.assert_allclose(
        K.kl_div(x, t, choices={"kl_axis": "class_sum"}), per.sum() / 6, rtol=1e-15
    )
    x2, t2 = x[:, :, 0], t[:, :, 0]
    for reduction in K.REDUCTIONS:
        np.testing.assert_array_equal(
            K.kl_div(x2, t2, reduction=reduction, choices={"kl_axis": "class_sum"}),
            K.kl_div(x2, t2, reduction=reduction, choices=LAST),
        )


def test_zero_target_choices() -> None:
    nan_rule, xlogy = {"zero_target": "nan"}, {"zero_target": "xlogy"}
    half_log2 = 0.34657359027997264
    # nan: every t = 0 gives NaN (0 * -inf); xlogy: torch's exact numbers (measured above).
    np.testing.assert_allclose(
        _none(X6, T6, choices=nan_rule), [half_log2, half_log2, NAN, NAN, NAN, NAN], rtol=1e-15
    )
    np.testing.assert_allclose(
        _none(X6, T6, choices=xlogy), [half_log2, half_log2, 0, NAN, NAN, 0], rtol=1e-15
    )
    np.testing.assert_array_equal(_none([INF, NAN, 1.0], np.zeros(3), choices=xlogy), [NAN, NAN, 0])
    # log_target at lt = -inf: torch and optax (measured) NaN for nan and xlogy alike.
    lt6 = np.log(np.maximum(T6, 0.0), where=T6 > 0, out=np.full(6, -INF))
    want = [half_log2, half_log2, NAN, NAN, NAN, NAN]
    for rule in (nan_rule, xlogy):
        np.testing.assert_allclose(_none(X6, lt6, log_target=True, choices=rule), want, rtol=1e-15)
    np.testing.assert_allclose(_none(X6, lt6, log_target=True), [*want[:2], 0, 0, 0, 0], 1e-15)
    # The gradient is -t in every choice.
    for rule in (nan_rule, xlogy):
        np.testing.assert_array_equal(_grad_none(X6, T6, choices=rule), _grad_none(X6, T6))


def test_clip_choice() -> None:
    # Keras KLDivergence(reduction=None) on p = [[1/4, 1/4, 1/2], [1e-9, 1/2, 1/2 - 1e-9]],
    # t = [[1/2, 1/2, 0], [0.3, 0.7, 0]] (measured, float32): [0.6931456327438354,
    # 4.709765911102295]; its default reduction the mean 2.70145583152771.
    p = np.array([[0.25, 0.25, 0.5], [1e-9, 0.5, 0.5 - 1e-9]])
    t = np.array([[0.5, 0.5, 0.0], [0.3, 0.7, 0.0]])
    got = K.kl_div(np.log(p), t, reduction="none", choices=KERAS)
    np.testing.assert_allclose(got, [0.6931456327438354, 4.709765911102295], rtol=2e-7)
    assert float(K.kl_div(np.log(p), t, choices=KERAS)) == pytest.approx(2.70145583152771, 1e-7)
    # By hand, row 0: t' = [1/2, 1/2, 1e-7]: log 2 + 1e-7 (log 1e-7 - log 1/2).
    row0 = LN2 + 1e-7 * (math.log(1e-7) - math.log(0.5))
    assert float(got[0]) == pytest.approx(row0, rel=1e-15)
    # p clipped below (x = -20) and above (x = 0.5): log p' = log 1e-7 and 0, gradient 0;
    # at the bound p = 1 (x = 0) the gradient passes (TensorFlow's clip_by_value).
    x, tt = np.array([-20.0, 0.5, 0.0, -1.0]), np.array([0.25, 0.25, 0.25, 0.25])
    want = 0.25 * (math.log(0.25) - np.array([math.log(1e-7), 0.0, 0.0, -1.0]))
    np.testing.assert_allclose(_none(x, tt, choices=CLIP), want, rtol=1e-15)
    np.testing.assert_array_equal(_grad_none(x, tt, choices=CLIP), [0.0, 0.0, -0.25, -0.25])
    # The target is clipped too: t = 0 -> 1e-7, t = 2 -> 1, t = -1 -> 1e-7.
    x3 = np.array([-1.0, -1.0, -1.0])
    tc = np.array([1e-7, 1.0, 1e-7])
    np.testing.assert_allclose(
        _none(x3, [0.0, 2.0, -1.0], choices=CLIP), tc * (np.log(tc) + 1.0), rtol=1e-15
    )
    np.testing.assert_array_equal(_grad_none(x3, [0.0, 2.0, -1.0], choices=CLIP), -tc)


def test_last_sum_choice() -> None:
    # optax.losses.kl_divergence (sum over the last axis, measured): [1.0795975764618122,
    # -0.04314718055994529, 0.01] (the rows of x are not normalised, hence a negative sum).
    x = np.array([[0.1, -2.0], [-0.3, -1.0], [-5.0, -0.01]])
    t = np.array([[0.2, 0.8], [0.5, 0.5], [0.0, 1.0]])
    rows = [1.0795975764618122, -0.04314718055994529, 0.01]
    np.testing.assert_allclose(K.kl_div(x, t, reduction="none", choices=LAST), rows, rtol=1e-15)
    total = math.fsum(rows)
    for red, want in (("sum", total), ("mean", total / 3), ("batchmean", total / 3)):
        got = float(K.kl_div(x, t, reduction=red, choices=LAST))
        assert got == pytest.approx(want, rel=1e-15)
    g = np.array([1.0, 2.0, -1.0])
    np.testing.assert_array_equal(
        K.kl_div_grad(x, t, reduction="none", grad_output=g, choices=LAST), -t * g[:, None]
    )
    # (2, 3, 4): mean over the 6 row sums, batchmean over N = 2.
    x4, t4 = np.full((2, 3, 4), -1.0), np.full((2, 3, 4), 0.25)
    per_row = 4 * 0.25 * (math.log(0.25) + 1.0)
    assert float(K.kl_div(x4, t4, choices=LAST)) == pytest.approx(per_row, rel=1e-15)
    assert float(K.kl_div(x4, t4, reduction="batchmean", choices=LAST)) == pytest.approx(
        3 * per_row
    )
    # A 1-d input sums to one value; a 0-d input has no axis to sum.
    assert K.kl_div(X3, T3, reduction="none", choices=LAST).shape == ()
    assert float(K.kl_div(-1.0, 0.5, reduction="none", choices=LAST)) == 0.5 * (math.log(0.5) + 1)


def test_outputs_form_and_canonical_choices() -> None:
    assert K.canonical_choices() == {"kl_clip": "none", "kl_axis": "none", "zero_target": "zero"}
    assert K.canonical_choices("kl_div") == K.canonical_choices()
    assert {n: c[0] for n, c in K.OPTION_CHOICES.items()} == K.canonical_choices()
    rng = np.random.default_rng(2)
    x, t = np.log(rng.dirichlet(np.ones(3), 2)), rng.dirichlet(np.ones(3), 2)
    for red in K.REDUCTIONS:
        for choices in (None, K.canonical_choices(), KERAS, {"zero_target": "nan"}):
            out = K.kl_div_outputs(x, t, reduction=red, choices=choices)
            assert set(out) == {"loss", "grad"}
            np.testing.assert_array_equal(
                out["loss"], K.kl_div(x, t, reduction=red, choices=choices)
            )
            want = K.kl_div_grad(x, t, reduction=red, choices=choices)
            np.testing.assert_array_equal(out["grad"], want)


def test_magnitude_matches_the_stated_formula() -> None:
    x, t, g = np.array([-2.0, 0.5, 3.0]), np.array([0.25, 0.0, 0.5]), np.array([0.5, 1.0, -2.0])
    mag, g_mag = K.kl_div_magnitude(x, t, reduction="none", grad_output=g)
    want = [0.25 * (math.log(4) + 2 + 1), 0.0, 0.5 * (LN2 + 3 + 1)]
    np.testing.assert_allclose(mag, want, rtol=1e-15)
    np.testing.assert_array_equal(g_mag, [0.125, 0.0, 1.0])
    lm, gm = K.kl_div_magnitude(x, t, reduction="batchmean")
    assert float(lm) == pytest.approx(sum(want) / 3, rel=1e-15)
    np.testing.assert_array_equal(gm, np.abs(t) / 3)
    lt = np.array([math.log(0.25), -INF, math.log(0.5)])
    lt_mag, _ = K.kl_div_magnitude(x, lt, log_target=True, reduction="batchmean")
    assert float(lt_mag) == pytest.approx(sum(want) / 3, rel=1e-14)
    assert float(K.kl_div_magnitude(np.zeros(0), np.zeros(0))[0]) == 0.0


# --------------------------------------------------------------------------------------------
# Random cases against an independent 50-digit mpmath computation
# --------------------------------------------------------------------------------------------

NEGATIVE_LOGITS = [-1e3, -745.0, -100.0, -40.0]


@dataclass(frozen=True)
class Case:
    x: np.ndarray  # log-probabilities
    t: np.ndarray  # probabilities, or log-probabilities when log_target
    log_target: bool
    reduction: str
    choices: dict[str, str]
    grad_output: np.ndarray

    def kwargs(self) -> dict[str, Any]:
        return {"log_target": self.log_target, "reduction": self.reduction, "choices": self.choices}

    @property
    def axis(self) -> int | None:
        return _summed_axis(self.choices, self.x.ndim)

    @property
    def terms(self) -> tuple[int, ...]:
        shape = self.x.shape
        return shape if self.axis is None else shape[: self.axis] + shape[self.axis + 1 :]

    def rounded(self) -> Case:
        def r(a: np.ndarray) -> np.ndarray:
            out: np.ndarray = a.astype(np.float32).astype(np.float64)
            return out

        return replace(self, x=r(self.x), t=r(self.t), grad_output=r(self.grad_output))


def _summed_axis(choices: dict[str, str], ndim: int) -> int | None:
    """The axis kl_axis sums over (non-negative), None for none or a missing axis."""
    kl_axis = choices.get("kl_axis")
    if kl_axis == "last_sum" and ndim >= 1:
        return ndim - 1
    if kl_axis == "class_sum" and ndim >= 2:
        return 1
    return None


def _class_axis(ndim: int) -> int:
    return 1 if ndim >= 2 else 0


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(z, axis=axis, keepdims=True)
    out: np.ndarray = z - m - np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
    return out


@st.composite
def probs_and_logs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(x, t): x = log_softmax of logits (very negative ones included), t rows with zeros."""
    shape = draw(st.sampled_from([(), (3,), (1, 4), (2, 3), (3, 2), (2, 3, 2), (1, 1)]))
    if shape == ():
        x = np.array(-draw(st.floats(0.0, 30.0)))
        return x, np.array(draw(st.one_of(st.just(0.0), st.floats(0.0, 1.0))))
    logit = st.one_of(st.floats(-30.0, 30.0), st.sampled_from(NEGATIVE_LOGITS))
    axis = _class_axis(len(shape))
    x = _log_softmax(draw(arrays(np.float64, shape, elements=logit)), axis)
    raw = draw(arrays(np.float64, shape, elements=st.one_of(st.just(0.0), st.floats(0.0, 1.0))))
    total = np.sum(raw, axis=axis, keepdims=True)
    t = np.where(total > 0, raw / np.where(total > 0, total, 1.0), 0.0)
    return x, t


@st.composite
def cases(draw: st.DrawFn, canonical: bool = False, log_target: bool | None = None) -> Case:
    x, t = draw(probs_and_logs())
    lt = draw(st.booleans()) if log_target is None else log_target
    if lt:
        with np.errstate(divide="ignore"):
            t = np.log(t)
    choices: dict[str, str] = {}
    if not canonical:
        for name, options in K.OPTION_CHOICES.items():
            choices[name] = draw(st.sampled_from(options))
    reduction = draw(st.sampled_from(K.REDUCTIONS))
    axis = _summed_axis(choices, x.ndim)
    terms = x.shape if axis is None else x.shape[:axis] + x.shape[axis + 1 :]
    gshape = terms if reduction == "none" else ()
    g = draw(arrays(np.float64, gshape, elements=st.floats(-2.0, 2.0)))
    return Case(x, t, lt, reduction, choices, g)


class MpRef:
    """One case in mpmath, element by element, from the definitions."""

    def __init__(self, case: Case) -> None:
        opt = {**K.canonical_choices(), **case.choices}
        self.case = case
        per, dx, mag = [], [], []
        clip = mp.mpf(1e-7)
        for xv, tv in zip(case.x.ravel(), case.t.ravel(), strict=True):
            x = mp.mpf(float(xv))
            if case.log_target:
                log_t = mp.mpf(float(tv)) if tv > -INF else None
                t = mp.exp(log_t) if log_t is not None else mp.mpf(0)
            else:
                t = mp.mpf(float(tv))
                log_t = mp.log(t) if t > 0 else None
            if opt["kl_clip"] == "clip_1e-7":
                tc = min(max(t, clip), mp.mpf(1))
                p = mp.exp(x)
                log_p = mp.log(clip) if p < clip else (mp.mpf(0) if p > 1 else x)
                per.append(tc * (mp.log(tc) - log_p))
                dx.append(mp.mpf(0) if (p < clip or p > 1) else -tc)
                mag.append(tc * (abs(mp.log(tc)) + abs(log_p) + 1))
                continue
            dx.append(-t)
            if log_t is None:  # t = 0 (x is finite here)
                bad = opt["zero_target"] == "nan" or (
                    case.log_target and opt["zero_target"] in ("xlogy", "nonpositive")
                )
                per.append(mp.nan if bad else mp.mpf(0))
                mag.append(mp.mpf(0))
            else:
                per.append(t * (log_t - x))
                mag.append(t * (abs(log_t) + abs(x) + 1))
        self.per, self.dx, self.mag = per, dx, mag

    def _rows(self, values: list[Any]) -> list[Any]:
        axis = self.case.axis
        if axis is None:
            return values
        grid = np.moveaxis(np.array(values, dtype=object).reshape(self.case.x.shape), axis, -1)
        return [mp.fsum(row) for row in grid.reshape(-1, grid.shape[-1])]

    def _denom(self, terms: int) -> int:
        if self.case.reduction == "batchmean":
            return self.case.x.shape[0] if self.case.x.ndim else 1
        return terms

    def _reduce(self, values: list[Any]) -> Any:
        rows = self._rows(values)
        shape = self.case.terms
        if self.case.reduction == "none":
            return np.array([float(v) for v in rows]).reshape(shape)
        total = mp.fsum(rows)
        if self.case.reduction == "sum":
            return float(total)
        return float(total / self._denom(len(rows)))

    def loss(self) -> tuple[Any, Any]:
        return self._reduce(self.per), self._reduce(self.mag)

    def grad(self) -> np.ndarray:
        case = self.case
        shape = case.x.shape
        terms = case.terms
        g = np.broadcast_to(case.grad_output, terms)
        if case.axis is not None:
            g = np.broadcast_to(np.expand_dims(g, case.axis), shape)
        scale = mp.mpf(1)
        if case.reduction in ("mean", "batchmean"):
            d = self._denom(int(np.prod(terms)))
            scale = mp.mpf(1) / d
        out = [float(mp.mpf(float(s)) * scale * v) for s, v in zip(g.ravel(), self.dx, strict=True)]
        return np.array(out).reshape(shape)


Impl = Callable[[Case], tuple[np.ndarray, np.ndarray]]


def oracle(case: Case) -> tuple[np.ndarray, np.ndarray]:
    kw = case.kwargs()
    loss = K.kl_div(case.x, case.t, **kw)
    return loss, K.kl_div_grad(case.x, case.t, **kw, grad_output=case.grad_output)


def _far(actual: Any, expected: Any, rtol: float, atol: Any) -> bool:
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return True
    if not np.array_equal(np.isnan(actual), np.isnan(expected)):
        return True
    ok = np.isnan(expected) | (np.abs(actual - expected) <= rtol * np.abs(expected) + atol)
    return not bool(np.all(ok))


def mismatch(impl: Impl, case: Case) -> str | None:
    """Where ``impl`` disagrees with mpmath on ``case`` (relative 1e-12), else None."""
    with mp.workdps(50):
        ref = MpRef(case)
        (want, scale), g_want = ref.loss(), ref.grad()
    with np.errstate(all="ignore"):
        got, g_got = impl(case)
    if _far(got, want, 1e-12, 1e-300 + 1e-14 * np.asarray(scale)):
        return f"loss {got} != {want}"
    if _far(g_got, g_want, 1e-12, 1e-300):
        return f"grad {g_got} != {g_want}"
    return None


@SETTINGS
@given(case=cases())
def test_matches_mpmath(case: Case) -> None:
    assert oracle(case)[0].dtype == np.float64
    problem = mismatch(oracle, case)
    assert problem is None, problem


# --------------------------------------------------------------------------------------------
# Finite differences and invariants
# --------------------------------------------------------------------------------------------

FD_CHOICES = [
    {},
    CLIP,
    LAST,
    KERAS,
    {"zero_target": "nan"},
    {"zero_target": "xlogy"},
    {"zero_target": "nonpositive"},
]


@pytest.mark.parametrize("reduction", K.REDUCTIONS)
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("choices", FD_CHOICES, ids=lambda c: "-".join(c.values()) or "canon")
def test_gradient_is_central_difference(
    reduction: str, log_target: bool, choices: dict[str, str]
) -> None:
    rng = np.random.default_rng(7)
    # exp(x) away from the clip bounds 1e-7 and 1 (x = -25 is clipped: gradient 0).
    x = rng.uniform(-12.0, -0.2, (3, 4))
    x[0, 0] = -25.0
    t = rng.dirichlet(np.ones(4), 3)
    nan_at_zero = choices.get("zero_target") == "nan" or (
        log_target and choices.get("zero_target") in ("xlogy", "nonpositive")
    )
    if not nan_at_zero:
        t[1, 2] = 0.0  # 0 log 0: a constant 0
    target = np.log(t, where=t > 0, out=np.full(t.shape, -INF)) if log_target else t
    kw: dict[str, Any] = {"log_target": log_target, "reduction": reduction, "choices": choices}
    shape = np.shape(K.kl_div(x, target, **kw))
    g = rng.uniform(-2.0, 2.0, shape)
    # The loss is linear in x between the clip kinks: a wide step loses nothing but noise.
    h, fd = 1e-3, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        up, down = K.kl_div(x + e, target, **kw), K.kl_div(x - e, target, **kw)
        fd[i] = np.sum((up - down) * g) / (2 * h)
    got = K.kl_div_grad(x, target, **kw, grad_output=g)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-9)


@SETTINGS
@given(case=cases(canonical=True, log_target=False))
def test_invariants(case: Case) -> None:
    x, t, red = case.x, case.t, case.reduction
    none = K.kl_div(x, t, reduction="none")
    assert none.shape == x.shape and none.dtype == np.float64
    # KL(t || t) = 0 at input = log t (-inf where t = 0), in both target forms; gradient -t.
    with np.errstate(divide="ignore"):
        log_t = np.log(t)
    np.testing.assert_array_equal(K.kl_div(log_t, t, reduction="none"), np.zeros(x.shape))
    np.testing.assert_array_equal(
        K.kl_div(log_t, log_t, log_target=True, reduction="none"), np.zeros(x.shape)
    )
    np.testing.assert_array_equal(K.kl_div_grad(log_t, t, reduction="sum"), -t)
    # Per row (normalised t and exp(x)), the KL divergence is >= 0 (Gibbs), up to rounding.
    mag, _ = K.kl_div_magnitude(x, t, reduction="none")
    if x.ndim >= 1:
        axis = _class_axis(x.ndim)
        assert np.all(np.sum(none, axis=axis) >= -1e-14 * np.sum(mag, axis=axis))
    # log_target with lt = log t is the same loss: exp(log t) = t up to a relative |log t| eps
    # (exp's condition number), < 1e-12 since |log t| <= 745.
    kw: dict[str, Any] = {"reduction": red, "grad_output": case.grad_output}
    from_log = K.kl_div(x, log_t, log_target=True, reduction="none")
    assert np.all(np.abs(from_log - none) <= 1e-12 * np.abs(none) + 1e-14 * mag)
    np.testing.assert_allclose(
        K.kl_div_grad(x, log_t, log_target=True, **kw), K.kl_div_grad(x, t, **kw), rtol=1e-12
    )
    # batchmean = sum / N, mean = sum / n; sum = the accurate sum of the terms.
    total = float(K.kl_div(x, t, reduction="sum"))
    n_batch = x.shape[0] if x.ndim else 1
    if n_batch:
        assert float(K.kl_div(x, t, reduction="batchmean")) == total / n_batch
    assert float(K.kl_div(x, t, reduction="mean")) == total / x.size
    assert total == pytest.approx(math.fsum(none.ravel()), rel=1e-12, abs=1e-14 * float(mag.sum()))
    # last_sum: 'none' is the per-row sum over the last axis; its 'sum' the same total.
    if x.ndim >= 1:
        rows = K.kl_div(x, t, reduction="none", choices=LAST)
        np.testing.assert_allclose(rows, np.sum(none, axis=-1), rtol=1e-13, atol=1e-300)
        assert float(K.kl_div(x, t, reduction="sum", choices=LAST)) == pytest.approx(
            total, rel=1e-12, abs=1e-14 * float(mag.sum())
        )


# --------------------------------------------------------------------------------------------
# Magnitudes
# --------------------------------------------------------------------------------------------


def float32_plain(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """Per-element loss and gradient of sum(loss * g), in float32, written plainly."""
    f = np.float32
    x, tt = case.x.astype(f), case.t.astype(f)
    s = np.broadcast_to(case.grad_output.astype(f), x.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        if case.log_target:
            t, log_t = np.exp(tt), tt
        else:
            t, log_t = tt, np.log(tt)
        loss = np.where(t == 0, f(0), t * (log_t - x))
    return loss.astype(np.float64), (-s * t).astype(np.float64)


def keras_plain(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Keras' KLDivergence in float32: sum over the last axis of t' log(t' / p')."""
    f = np.float32
    p = np.clip(np.exp(x.astype(f)), f(1e-7), f(1))
    tc = np.clip(t.astype(f), f(1e-7), f(1))
    out: np.ndarray = np.sum(tc * np.log(tc / p), axis=-1).astype(np.float64)
    return out


@SETTINGS
@given(raw=cases(canonical=True))
def test_magnitude_bounds_float32(raw: Case) -> None:
    # What the comparator sees: the oracle is given the inputs the framework computed with.
    case = replace(raw.rounded(), reduction="none")
    if case.grad_output.shape != case.x.shape:
        case = replace(case, grad_output=np.full(case.x.shape, 0.75))
    want, g_want = oracle(case)
    kw = case.kwargs()
    mag, g_mag = K.kl_div_magnitude(case.x, case.t, **kw, grad_output=case.grad_output)
    assert np.all(mag >= np.abs(want)) and np.all(g_mag >= np.abs(g_want))
    got, g_got = float32_plain(case)
    assert np.all(np.abs(got - want) <= 4 * EPS32 * mag + TINY32)
    assert np.all(np.abs(g_got - g_want) <= 4 * EPS32 * g_mag + TINY32)
    for name, a, e, m in (("loss", got, want, mag), ("grad", g_got, g_want, g_mag)):
        res = compare(a.astype(np.float32), e, m, dtype="float32", n_terms=1)
        assert res.passed, (name, res)
    # Reduced in float32 (a plain sum): within the comparator's bound for n terms.
    for red in ("sum", "mean", "batchmean"):
        n_batch = case.x.shape[0] if case.x.ndim else 1
        if case.x.size == 0 or n_batch == 0:
            continue
        total = np.sum(got.astype(np.float32), dtype=np.float32)
        denom = {"sum": 1, "mean": case.x.size, "batchmean": n_batch}[red]
        red_kw = {**kw, "reduction": red}
        e = K.kl_div(case.x, case.t, **red_kw)
        m, _ = K.kl_div_magnitude(case.x, case.t, **red_kw)
        res = compare(total / np.float32(denom), e, m, dtype="float32", n_terms=case.x.size)
        assert res.passed, (red, res)


@SETTINGS
@given(xt=probs_and_logs())
def test_magnitude_bounds_keras_float32(xt: tuple[np.ndarray, np.ndarray]) -> None:
    # Keras computes log(t' / p') as one logarithm: the + 1 of the magnitude covers it.
    x, t = (a.astype(np.float32).astype(np.float64) for a in xt)
    if x.ndim == 0:
        return
    want = K.kl_div(x, t, reduction="none", choices=KERAS)
    mag, _ = K.kl_div_magnitude(x, t, reduction="none", choices=KERAS)
    res = compare(
        keras_plain(x, t).astype(np.float32), want, mag, dtype="float32", n_terms=x.shape[-1]
    )
    assert res.passed, res


def test_plus_one_term_is_needed() -> None:
    # t = 0.9999 against p = 0.99989 (float32 inputs): t log(t / p) rounds the quotient, an
    # absolute error of ~eps32 in the logarithm, far beyond 4 eps32 |t| (|log t| + |log p|).
    t = np.array([np.float32(0.9999)], dtype=np.float64)
    x = np.log(np.array([np.float32(0.99989)], dtype=np.float64))
    x = x.astype(np.float32).astype(np.float64)
    want = K.kl_div(x, t, reduction="none", choices=CLIP)
    mag, _ = K.kl_div_magnitude(x, t, reduction="none", choices=CLIP)
    tf, xf = np.float32(t[0]), np.float32(x[0])
    got = float(tf * np.log(tf / np.exp(xf)))
    no_one = float(t[0] * (abs(math.log(t[0])) + abs(x[0])))
    assert abs(got - want[0]) > 4 * EPS32 * no_one
    assert abs(got - want[0]) <= 4 * EPS32 * mag[0]


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------

X = np.zeros((2, 3))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: K.kl_div(X, np.zeros((3, 2))), r"same shape. Received: input.shape=\(2, 3\)"),
        (lambda: K.kl_div_grad(X, np.zeros(3)), r"target.shape=\(3,\)"),
        (lambda: K.kl_div(X, X, reduction="avg"), r"`reduction` must be one of .*'batchmean'"),
        (lambda: K.kl_div_magnitude(X, X, reduction="mean_batch"), r"reduction='mean_batch'"),
        (lambda: K.kl_div_grad(X, X, grad_output=np.ones(2)), r"grad_output.shape=\(2,\)"),
        (
            lambda: K.kl_div_grad(X, X, reduction="none", grad_output=X, choices=LAST),
            r"`grad_output` must have the loss's shape \(2,\)",
        ),
        (lambda: K.kl_div(X.astype(str), X), r"`input` must be a real numeric array"),
        (lambda: K.kl_div(X, X.astype(str)), r"`target` must be a real numeric array"),
        (lambda: K.kl_div(X, X, choices={"log_clamp": "-100"}), r"no semantic option 'log_clamp'"),
        (lambda: K.kl_div_outputs(X, X, choices={"kl_clip": "1e-7"}), r"kl_clip has no choice"),
        (lambda: K.canonical_choices("kl"), r"no KL loss 'kl'"),
    ],
)
def test_argument_errors(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------
# Mutants: deliberately wrong oracles, each found out by the mpmath comparison
# --------------------------------------------------------------------------------------------


def _mean_for_batchmean(case: Case) -> tuple[np.ndarray, np.ndarray]:
    red = "mean" if case.reduction == "batchmean" else case.reduction
    return oracle(replace(case, reduction=red))


def _no_zero_convention(case: Case) -> tuple[np.ndarray, np.ndarray]:
    return oracle(replace(case, choices={**case.choices, "zero_target": "nan"}))


def _sign_flipped_gradient(case: Case) -> tuple[np.ndarray, np.ndarray]:
    loss, g = oracle(case)
    return loss, -g


def _log_target_ignored(case: Case) -> tuple[np.ndarray, np.ndarray]:
    return oracle(replace(case, log_target=False))


MUTANTS: dict[str, Impl] = {
    "mean_instead_of_batchmean": _mean_for_batchmean,
    "missing_0_log_0": _no_zero_convention,
    "sign_flipped_gradient": _sign_flipped_gradient,
    "log_target_ignored": _log_target_ignored,
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_found(name: str) -> None:
    impl = MUTANTS[name]
    # No shrinking: the first case that tells the mutant apart is enough.
    quick = settings(max_examples=300, deadline=None, database=None, phases=[Phase.generate])
    with np.errstate(all="ignore"):
        found = find(cases(), lambda c: mismatch(impl, c) is not None, settings=quick)
    assert mismatch(impl, found) is not None
    assert mismatch(oracle, found) is None

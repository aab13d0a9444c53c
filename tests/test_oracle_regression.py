"""Tests of the regression-loss oracle (conformance/oracle/regression.py).

Sections: documented and measured numbers; an independent 50-digit mpmath computation on
hypothesis-generated cases (large outliers, x == y and residuals at a kink included); finite
differences; invariants; magnitudes (against float32 forms written the plain way); argument
errors; mutants (deliberately wrong oracles the tests must reject). Nothing here imports a
deep-learning framework: the framework numbers below were measured once (PyTorch 2.13 CPU,
float64; TensorFlow 2.21 tf.compat.v1.losses, float32) and are written down.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import mpmath as mp
import numpy as np
import pytest
from conftest import Judged, failing_ids, judged_cases
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conformance.oracle import regression as R

SETTINGS = settings(max_examples=60, deadline=None)
EPS32 = float(np.finfo(np.float32).eps)
TINY32 = float(np.finfo(np.float32).tiny)
INF, NAN = math.inf, math.nan
PARAM = {R.HUBER: "delta", R.SMOOTH_L1: "beta"}


def value(loss: str) -> Callable[..., Any]:
    f: Callable[..., Any] = getattr(R, loss)
    return f


def grad(loss: str) -> Callable[..., Any]:
    f: Callable[..., Any] = getattr(R, f"{loss}_grad")
    return f


def magnitude(loss: str) -> Callable[..., Any]:
    f: Callable[..., Any] = getattr(R, f"{loss}_magnitude")
    return f


def _none(f: Callable[..., Any], x: Any, y: Any, **kw: Any) -> np.ndarray:
    out: np.ndarray = f(np.asarray(x, float), np.asarray(y, float), reduction="none", **kw)
    return out


# --------------------------------------------------------------------------------------------
# Documented and measured numbers
# --------------------------------------------------------------------------------------------

X4, Y4, W4 = np.array([1.0, 2.0, 3.0, 4.0]), np.zeros(4), np.array([2.0, 0.0, 1.0, 0.0])


def test_weighted_hand_numbers() -> None:
    # Weighted sums measured in torch 2.13 (mse_loss, l1_loss, huber_loss with weight=W4) and
    # tf.compat.v1.losses (Reduction.SUM): 11, 5, 3.5; gradients of the sum as below.
    sums = {R.MSE: 11.0, R.L1: 5.0, R.HUBER: 3.5, R.SMOOTH_L1: 3.5}
    grads = {
        R.MSE: [4.0, 0.0, 6.0, 0.0],
        R.L1: [2.0, 0.0, 1.0, 0.0],
        R.HUBER: [2.0, 0.0, 1.0, 0.0],
        R.SMOOTH_L1: [2.0, 0.0, 1.0, 0.0],
    }
    for loss, total in sums.items():
        assert float(value(loss)(X4, Y4, weight=W4, reduction="sum")) == total
        assert float(value(loss)(X4, Y4, weight=W4)) == total / 4  # canonical: / elements
        np.testing.assert_array_equal(grad(loss)(X4, Y4, weight=W4, reduction="sum"), grads[loss])
    np.testing.assert_array_equal(_none(R.mse_loss, [3.0, -1.0], [1.0, 1.0]), [4.0, 4.0])
    np.testing.assert_array_equal(_none(R.mse_loss_grad, [3.0, -1.0], [1.0, 1.0]), [4.0, -4.0])


def test_l1_gradient_at_zero_residual_is_zero() -> None:
    # torch l1_loss at x - y = [0, 0, 1]: gradient [0, 0, 1] (measured).
    np.testing.assert_array_equal(_none(R.l1_loss, [0.0, 1.0, -1.0], [0.0, 1.0, 0.0]), [0, 0, 1])
    np.testing.assert_array_equal(
        _none(R.l1_loss_grad, [0.0, 1.0, -1.0], [0.0, 1.0, 0.0]), [0.0, 0.0, -1.0]
    )


def test_huber_at_and_around_delta() -> None:
    # torch huber_loss, delta=1 (measured): [0.5, 0.5000000010000001, 0.49999999900000003,
    # 3, 3], gradient [1, 1, 0.999999999, 1, -1]; delta=2 at d = [2, 5, -0.5]: [2, 8, 0.125],
    # gradient [2, 2, -0.5]. |d| = delta is on the quadratic branch (torch's <=): both agree.
    d = np.array([1.0, 1.0 + 1e-9, 1.0 - 1e-9, 3.5, -3.5])
    loss = _none(R.huber_loss, d, np.zeros(5))
    np.testing.assert_allclose(loss, [0.5, 0.5000000010000001, 0.49999999900000003, 3, 3], 1e-15)
    np.testing.assert_allclose(
        _none(R.huber_loss_grad, d, np.zeros(5)), [1, 1, 0.999999999, 1, -1], rtol=1e-15
    )
    d2 = np.array([2.0, 5.0, -0.5])
    np.testing.assert_array_equal(_none(R.huber_loss, d2, np.zeros(3), delta=2.0), [2, 8, 0.125])
    np.testing.assert_array_equal(
        _none(R.huber_loss_grad, d2, np.zeros(3), delta=2.0), [2.0, 2.0, -0.5]
    )
    # The two branches at |d| = delta: 0.5 delta^2 = delta (delta - 0.5 delta).
    assert float(R.huber_loss(3.0, 0.0, delta=3.0)) == 4.5 == 3.0 * (3.0 - 1.5)


def test_smooth_l1_at_and_around_beta() -> None:
    # torch smooth_l1_loss, beta=2 (measured): [1, 1.000000001, 0.9999999989999999, 4, 0.0625],
    # gradient [1, 1, 0.9999999995, 1, -0.25]. |d| = beta is on the linear branch (torch's <).
    d = np.array([2.0, 2.0 + 1e-9, 2.0 - 1e-9, 5.0, -0.5])
    np.testing.assert_allclose(
        _none(R.smooth_l1_loss, d, np.zeros(5), beta=2.0),
        [1.0, 1.000000001, 0.9999999989999999, 4.0, 0.0625],
        rtol=1e-15,
    )
    np.testing.assert_allclose(
        _none(R.smooth_l1_loss_grad, d, np.zeros(5), beta=2.0),
        [1.0, 1.0, 0.9999999995, 1.0, -0.25],
        rtol=1e-15,
    )
    # beta = 0 (torch, measured at d = [0, 1.5, -0.5]): [0, 1.5, 0.5], gradient [0, 1, -1].
    z = np.array([0.0, 1.5, -0.5])
    np.testing.assert_array_equal(_none(R.smooth_l1_loss, z, np.zeros(3), beta=0.0), [0, 1.5, 0.5])
    np.testing.assert_array_equal(
        _none(R.smooth_l1_loss_grad, z, np.zeros(3), beta=0.0), [0, 1, -1]
    )


def test_infinities_and_nan() -> None:
    # torch (measured, float64) at (x, y) = (inf, 1), (-inf, 1), (inf, inf), (1, nan), (nan, 0):
    # loss [inf, inf, nan, nan, nan] for all four; gradient [±inf] (MSE), [±1] (L1),
    # [±delta] (Huber), [±1] (smooth L1), then NaN. (torch's l1_loss gives gradient 0 where
    # x - y is NaN; the oracle keeps NaN.)
    x, y = [INF, -INF, INF, 1.0, NAN], [1.0, 1.0, INF, NAN, 0.0]
    limit = {R.MSE: INF, R.L1: 1.0, R.HUBER: 2.5, R.SMOOTH_L1: 1.0}
    for loss, g in limit.items():
        kw = {PARAM[loss]: 2.5} if loss in PARAM else {}
        np.testing.assert_array_equal(_none(value(loss), x, y, **kw), [INF, INF, NAN, NAN, NAN])
        np.testing.assert_array_equal(_none(grad(loss), x, y, **kw), [g, -g, NAN, NAN, NAN])
        for red in ("mean", "sum"):
            assert np.isnan(value(loss)(np.array(x), np.array(y), reduction=red))
        assert float(value(loss)(np.array(x[:2]), np.array(y[:2]), **kw)) == INF
        # Magnitudes stay finite wherever the gradient is finite.
        _, g_mag = magnitude(loss)(np.array(x[:2]), np.array(y[:2]), reduction="none", **kw)
        assert np.isfinite(g_mag).all() == math.isfinite(g)
    # A zero weight does not hide an infinite term: torch mse/l1/huber with weight 0 at
    # x = inf: loss NaN; gradient NaN (MSE: 0 * inf), 0 (L1, Huber: 0 * ±1).
    w0 = {"weight": [0.0, 0.0]}
    for loss, g0 in ((R.MSE, NAN), (R.L1, 0.0), (R.HUBER, 0.0), (R.SMOOTH_L1, 0.0)):
        np.testing.assert_array_equal(_none(value(loss), [INF, 2.0], [0.0, 0.0], **w0), [NAN, 0])
        np.testing.assert_array_equal(_none(grad(loss), [INF, 2.0], [0.0, 0.0], **w0), [g0, 0])


def test_mean_denominator_choices() -> None:
    # tf.compat.v1.losses with weights=W4 on X4, Y4 (measured, float32): Reduction.MEAN
    # (sum / sum of weights) mse 3.6666667, absolute_difference 1.6666666, huber 1.1666666;
    # SUM_BY_NONZERO_WEIGHTS 5.5, 2.5, 1.75; SUM_OVER_BATCH_SIZE 2.75, 1.25, 0.875.
    # torch 2.13 with weight=W4: mse_loss 3.6666666666666665 and l1_loss 1.6666666666666667
    # (it divides by sum(weight)), huber_loss 0.875 (it divides by the element count).
    tf_v1 = {
        R.MSE: (3.6666667, 5.5, 2.75),
        R.L1: (1.6666666, 2.5, 1.25),
        R.HUBER: (1.1666666, 1.75, 0.875),
    }
    for loss, (by_w, by_nonzero, by_n) in tf_v1.items():
        f = value(loss)
        got = [
            float(f(X4, Y4, weight=W4, choices={"mean_denominator": c}))
            for c in ("weights", "nonzero_weights", "elements")
        ]
        np.testing.assert_allclose(got, [by_w, by_nonzero, by_n], rtol=1e-7)
    assert float(R.mse_loss(X4, Y4, weight=W4, choices={"mean_denominator": "weights"})) == 11 / 3
    assert float(R.l1_loss(X4, Y4, weight=W4, choices={"mean_denominator": "weights"})) == 5 / 3
    assert float(R.huber_loss(X4, Y4, weight=W4)) == 0.875
    # The gradient follows the denominator; a zero one gives NaN and gradient 0.
    wc = {"mean_denominator": "weights"}
    np.testing.assert_allclose(
        R.mse_loss_grad(X4, Y4, weight=W4, grad_output=3.0, choices=wc), [4.0, 0.0, 6.0, 0.0]
    )
    for c in ("weights", "nonzero_weights"):
        assert np.isnan(R.l1_loss(X4, Y4, weight=np.zeros(4), choices={"mean_denominator": c}))
        zero_w = R.l1_loss_grad(X4, Y4, weight=np.zeros(4), choices={"mean_denominator": c})
        np.testing.assert_array_equal(zero_w, np.zeros(4))
    # Without a weight every choice is the element count.
    for c in R.OPTION_CHOICES["mean_denominator"]:
        assert float(R.mse_loss(X4, Y4, choices={"mean_denominator": c})) == 30 / 4


def test_outputs_form_and_canonical_choices() -> None:
    rng = np.random.default_rng(1)
    x, y, w = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng.random(3)
    for loss in R.LOSSES:
        assert R.canonical_choices(loss) == {
            "mean_denominator": "elements",
            "axis_mean": "none",
            "squared_scale": "one",
        }
        outputs = getattr(R, f"{loss}_outputs")
        for choices in (None, R.canonical_choices(loss), {"mean_denominator": "weights"}):
            out = outputs(x, y, weight=w, reduction="mean", choices=choices)
            assert set(out) == {"loss", "grad"}
            np.testing.assert_array_equal(out["loss"], value(loss)(x, y, weight=w, choices=choices))
            np.testing.assert_array_equal(out["grad"], grad(loss)(x, y, weight=w, choices=choices))
    out = R.huber_loss_outputs(x, y, delta=0.5, reduction="none")
    np.testing.assert_array_equal(out["loss"], R.huber_loss(x, y, delta=0.5, reduction="none"))


def test_magnitude_matches_the_stated_formula() -> None:
    x, y, w, g = 3.0, -1.0, 1.5, 0.5  # d = 4, c = 4
    kw: dict[str, Any] = {"weight": [w], "reduction": "none", "grad_output": [g]}
    want = {
        (R.MSE, None): (w * (16 + 2 * 4 * 4), g * w * 2 * (4 + 4)),
        (R.L1, None): (w * (4 + 4), g * w),
        (R.HUBER, 5.0): (w * (8 + 16), g * w * 8),  # quadratic
        (R.HUBER, 2.0): (w * 2 * (4 + 1 + 4), g * w * 2),  # linear
        (R.SMOOTH_L1, 5.0): (w * (8 + 16) / 5, g * w * 8 / 5),
        (R.SMOOTH_L1, 2.0): (w * (4 + 1 + 4), g * w),
        (R.SMOOTH_L1, 0.0): (w * (4 + 4), g * w),
    }
    for (loss, p), (loss_mag, grad_mag) in want.items():
        pk = {PARAM[loss]: p} if p is not None else {}
        got = magnitude(loss)(np.array([x]), np.array([y]), **kw, **pk)
        np.testing.assert_allclose([got[0][0], got[1][0]], [loss_mag, grad_mag], rtol=1e-15)
    # Reduced like the loss; 0 for a mean over nothing.
    lm, _ = R.mse_loss_magnitude(np.array([x, x]), np.array([y, y]), weight=[w, w])
    assert float(lm) == pytest.approx(w * 48, rel=1e-15)
    assert float(R.l1_loss_magnitude(np.zeros(0), np.zeros(0))[0]) == 0.0


def test_empty_and_scalar_inputs() -> None:
    for loss in R.LOSSES:
        for shape in ((0,), (2, 0, 3)):
            e = np.zeros(shape)
            assert np.isnan(value(loss)(e, e))  # torch: nan
            assert float(value(loss)(e, e, reduction="sum")) == 0.0
            assert value(loss)(e, e, reduction="none").shape == shape
            np.testing.assert_array_equal(grad(loss)(e, e), e)
        loss0 = value(loss)(2.0, 0.5, reduction="none")
        assert loss0.shape == () and loss0.dtype == np.float64
        assert grad(loss)(2.0, 0.5).shape == ()


# --------------------------------------------------------------------------------------------
# Random cases against an independent 50-digit mpmath computation
# --------------------------------------------------------------------------------------------

OUTLIERS = [-1e4, 1e4, -12345.678, 9999.999999, 0.0]


@dataclass(frozen=True)
class Case:
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None  # broadcastable to x, >= 0
    reduction: str
    grad_output: np.ndarray  # loss-shaped
    param: float  # delta or beta (unused by MSE and L1)

    def kwargs(self, loss: str) -> dict[str, Any]:
        kw: dict[str, Any] = {"weight": self.weight, "reduction": self.reduction}
        if loss in PARAM:
            kw[PARAM[loss]] = self.param
        return kw

    def rounded(self, dtype: type) -> Case:
        """The case with x, y, weight, grad_output rounded to ``dtype`` (values in float64)."""

        def r(a: np.ndarray) -> np.ndarray:
            out: np.ndarray = a.astype(dtype).astype(np.float64)
            return out

        w = None if self.weight is None else r(self.weight)
        p = float(np.float64(dtype(self.param)))
        return Case(r(self.x), r(self.y), w, self.reduction, r(self.grad_output), p)


def _params(loss: str) -> st.SearchStrategy[float]:
    simple = st.one_of(st.sampled_from([0.5, 1.0, 2.0]), st.floats(0.125, 10.0, width=32))
    return st.one_of(simple, st.just(0.0)) if loss == R.SMOOTH_L1 else simple


@st.composite
def cases(draw: st.DrawFn, loss: str) -> Case:
    shape = tuple(draw(st.lists(st.integers(1, 3), max_size=3)))
    p = draw(_params(loss)) if loss in PARAM else 1.0
    values = st.one_of(st.floats(-10.0, 10.0), st.sampled_from(OUTLIERS))
    x = draw(arrays(np.float64, shape, elements=values))
    # Residuals: ordinary, exactly 0 (x == y), at the kink and just beside it, tiny, large.
    kinks = [0.0, p, -p, p * (1 + 1e-9), -p * (1 - 1e-9), 1e-9, -3e-7]
    residual = st.one_of(st.floats(-5.0, 5.0), st.sampled_from(kinks), st.floats(-2e4, 2e4))
    y = x - draw(arrays(np.float64, shape, elements=residual))
    weight = None
    if draw(st.booleans()):
        k = draw(st.integers(0, len(shape)))
        wshape = tuple(d if draw(st.booleans()) else 1 for d in shape[len(shape) - k :])
        welem = st.one_of(st.floats(0.125, 4.0, width=32), st.just(0.0))
        weight = draw(arrays(np.float64, wshape, elements=welem))
    reduction = draw(st.sampled_from(["none", "mean", "sum"]))
    g = draw(
        arrays(np.float64, shape if reduction == "none" else (), elements=st.floats(-2.0, 2.0))
    )
    return Case(x, y, weight, reduction, g, p)


class MpRef:
    """One case in mpmath, element by element, from the definitions."""

    def __init__(self, loss: str, case: Case) -> None:
        self.loss, self.reduction, self.shape = loss, case.reduction, case.x.shape
        w = np.ones(case.x.shape) if case.weight is None else case.weight
        self.x = [mp.mpf(float(v)) for v in case.x.ravel()]
        self.y = [mp.mpf(float(v)) for v in case.y.ravel()]
        self.w = [mp.mpf(float(v)) for v in np.broadcast_to(w, case.x.shape).ravel()]
        self.p = mp.mpf(case.param)
        n = len(self.x)
        g = case.grad_output.ravel() if case.reduction == "none" else [case.grad_output] * n
        scale = mp.mpf(1) / n if case.reduction == "mean" else mp.mpf(1)
        self.s = [mp.mpf(float(v)) * scale for v in np.ravel(g)]

    def f(self, d: Any) -> tuple[Any, Any]:
        """(f(d), f'(d))."""
        a, p, sign = abs(d), self.p, mp.sign(d)
        if self.loss == R.MSE:
            return d * d, 2 * d
        if self.loss == R.L1 or (self.loss == R.SMOOTH_L1 and p == 0):
            return a, sign
        if self.loss == R.HUBER:
            return (d * d / 2, d) if a <= p else (p * (a - p / 2), p * sign)
        return (d * d / (2 * p), d / p) if a < p else (a - p / 2, sign)

    def reduce(self, per: list[Any]) -> Any:
        if self.reduction == "none":
            return np.array([float(v) for v in per]).reshape(self.shape)
        total = mp.fsum(per)
        return float(total / len(per) if self.reduction == "mean" else total)

    def loss_value(self) -> tuple[Any, Any]:
        per = [w * self.f(x - y)[0] for x, y, w in zip(self.x, self.y, self.w, strict=True)]
        return self.reduce(per), self.reduce([abs(v) for v in per])

    def grad(self) -> np.ndarray:
        out = [
            float(s * w * self.f(x - y)[1])
            for x, y, w, s in zip(self.x, self.y, self.w, self.s, strict=True)
        ]
        return np.array(out).reshape(self.shape)


Impl = Callable[[str, Case], tuple[np.ndarray, np.ndarray]]


def oracle(loss: str, case: Case) -> tuple[np.ndarray, np.ndarray]:
    kw = case.kwargs(loss)
    return value(loss)(case.x, case.y, **kw), grad(loss)(
        case.x, case.y, **kw, grad_output=case.grad_output
    )


def _far(actual: Any, expected: Any, rtol: float, atol: Any) -> bool:
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return True
    return bool(np.any(np.abs(actual - expected) > rtol * np.abs(expected) + atol))


def mismatch(impl: Impl, loss: str, case: Case) -> str | None:
    """Where ``impl`` disagrees with mpmath on ``case`` (relative 1e-12), else None."""
    with mp.workdps(50):
        ref = MpRef(loss, case)
        (want, scale), g_want = ref.loss_value(), ref.grad()
    got, g_got = impl(loss, case)
    if _far(got, want, 1e-12, 1e-300 + 1e-14 * np.asarray(scale)):
        return f"loss {got} != {want}"
    if _far(g_got, g_want, 1e-12, 1e-300):
        return f"grad {g_got} != {g_want}"
    return None


@pytest.mark.parametrize("loss", R.LOSSES)
def test_matches_mpmath(loss: str) -> None:
    @SETTINGS
    @given(case=cases(loss))
    def check(case: Case) -> None:
        assert oracle(loss, case)[0].dtype == np.float64
        problem = mismatch(oracle, loss, case)
        assert problem is None, problem

    check()


# --------------------------------------------------------------------------------------------
# Finite differences and invariants
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", R.LOSSES)
def test_gradient_is_central_difference(loss: str) -> None:
    @SETTINGS
    @given(case=cases(loss), seed=st.integers(0, 2**32 - 1))
    def check(case: Case, seed: int) -> None:
        kw, g = case.kwargs(loss), case.grad_output
        h = 1e-4
        v = np.random.default_rng(seed).uniform(-1.0, 1.0, case.x.shape)
        d = case.x - case.y
        # Away from kinks (|d| = 0 for L1, |d| = delta or beta): the pieces are quadratic, so
        # the central difference is exact but for rounding.
        margin = 4 * h * np.abs(v) + 1e-9 * np.abs(case.x)
        smooth = np.ones(d.shape, dtype=bool)
        if loss != R.MSE:
            smooth &= np.abs(np.abs(d) - case.param) > margin
            smooth &= np.abs(d) > margin
        v = np.where(smooth, v, 0.0)

        def objective(x: np.ndarray) -> float:
            return math.fsum(np.ravel(value(loss)(x, case.y, **kw) * g))

        fd = (objective(case.x + h * v) - objective(case.x - h * v)) / (2 * h)
        analytic = float(np.sum(grad(loss)(case.x, case.y, **kw, grad_output=g) * v))
        terms = grad(loss)(case.x, case.y, **kw, grad_output=g) * v
        # Rounding noise: the objective's own error bound at the two points, over 2 h.
        mags = [magnitude(loss)(case.x + e * h * v, case.y, **kw)[0] for e in (1, -1)]
        noise = 1e-14 * math.fsum(np.ravel((mags[0] + mags[1]) * np.abs(g))) / h
        tol = noise + 1e-7 * float(np.sum(np.abs(terms))) + 1e-300
        assert abs(fd - analytic) <= tol, (fd, analytic)

    check()


@pytest.mark.parametrize("loss", R.LOSSES)
def test_invariants(loss: str) -> None:
    @SETTINGS
    @given(case=cases(loss))
    def check(case: Case) -> None:
        kw = case.kwargs(loss)
        f, fg = value(loss), grad(loss)
        none = f(case.x, case.y, **{**kw, "reduction": "none"})
        assert none.shape == case.x.shape and none.dtype == np.float64
        assert np.all(none >= 0)
        # Symmetric in x and y; the gradient changes sign (x - y is exactly -(y - x)).
        np.testing.assert_array_equal(f(case.y, case.x, **kw), f(case.x, case.y, **kw))
        go = {"grad_output": case.grad_output}
        np.testing.assert_array_equal(
            fg(case.y, case.x, **kw, **go), -fg(case.x, case.y, **kw, **go)
        )
        # mean = sum / n.
        red = {k: v for k, v in kw.items() if k != "reduction"}
        total, mean = f(case.x, case.y, reduction="sum", **red), f(case.x, case.y, **red)
        assert total.shape == mean.shape == ()
        assert float(mean) == pytest.approx(float(total) / case.x.size, rel=1e-15)
        assert float(total) == pytest.approx(math.fsum(none.ravel()), rel=1e-13)
        # Unit weights are no weights.
        ones = {**kw, "weight": np.ones(case.x.shape[-1:])}
        plain = {**kw, "weight": None}
        np.testing.assert_array_equal(f(case.x, case.y, **ones), f(case.x, case.y, **plain))
        np.testing.assert_array_equal(
            fg(case.x, case.y, **ones, **go), fg(case.x, case.y, **plain, **go)
        )

    check()


@SETTINGS
@given(case=cases(R.SMOOTH_L1))
def test_smooth_l1_relations(case: Case) -> None:
    kw = {"weight": case.weight, "reduction": case.reduction}
    go = {"grad_output": case.grad_output}
    x, y, b = case.x, case.y, case.param
    # beta = 0 is exactly L1.
    np.testing.assert_array_equal(R.smooth_l1_loss(x, y, **kw, beta=0.0), R.l1_loss(x, y, **kw))
    np.testing.assert_array_equal(
        R.smooth_l1_loss_grad(x, y, **kw, **go, beta=0.0), R.l1_loss_grad(x, y, **kw, **go)
    )
    if b == 0:
        return
    # smooth_l1(beta) * beta == huber(delta=beta), value and gradient (at |d| = beta too: the
    # branches differ but agree there).
    np.testing.assert_allclose(
        R.smooth_l1_loss(x, y, **kw, beta=b) * b,
        R.huber_loss(x, y, **kw, delta=b),
        rtol=1e-14,
        atol=1e-300,  # subnormal squares (d ~ 1e-161) keep only a few bits
    )
    np.testing.assert_allclose(
        R.smooth_l1_loss_grad(x, y, **kw, **go, beta=b) * b,
        R.huber_loss_grad(x, y, **kw, **go, delta=b),
        rtol=1e-14,
        atol=1e-300,
    )


# --------------------------------------------------------------------------------------------
# Magnitudes
# --------------------------------------------------------------------------------------------


def float32_plain(loss: str, case: Case) -> tuple[np.ndarray, np.ndarray]:
    """Per-element loss and gradient of sum(loss * grad_output), in float32, the plain way."""
    f = np.float32
    x, y, p = case.x.astype(f), case.y.astype(f), f(case.param)
    w = np.ones_like(x) if case.weight is None else np.broadcast_to(case.weight.astype(f), x.shape)
    s = np.broadcast_to(case.grad_output.astype(f), x.shape)
    d = x - y
    a, half = np.abs(d), f(0.5)
    if loss == R.MSE:
        loss32, g32 = d * d, f(2) * d
    elif loss == R.L1 or p == 0:
        loss32, g32 = a, np.sign(d)
    elif loss == R.HUBER:
        loss32 = np.where(a <= p, half * d * d, p * (a - half * p))
        g32 = np.where(a <= p, d, p * np.sign(d))
    else:
        loss32 = np.where(a < p, half * d * d / p, a - half * p)
        g32 = np.where(a < p, d / p, np.sign(d))
    return (w * loss32).astype(np.float64), (s * w * g32).astype(np.float64)


@pytest.mark.parametrize("loss", R.LOSSES)
def test_magnitude_bounds_float32_on_the_case_inputs(loss: str) -> None:
    # What the comparator sees: the oracle is given the inputs the framework computed with.
    @SETTINGS
    @given(raw=cases(loss))
    def check(raw: Case) -> None:
        case = replace(raw.rounded(np.float32), reduction="none")
        if case.grad_output.shape != case.x.shape:
            case = replace(case, grad_output=np.full(case.x.shape, 0.75))
        kw = case.kwargs(loss)
        want, g_want = oracle(loss, case)
        mag, g_mag = magnitude(loss)(case.x, case.y, **kw, grad_output=case.grad_output)
        assert np.all(mag >= np.abs(want)) and np.all(g_mag >= np.abs(g_want))
        got, g_got = float32_plain(loss, case)
        assert np.all(np.abs(got - want) <= 4 * EPS32 * mag + TINY32)
        assert np.all(np.abs(g_got - g_want) <= 4 * EPS32 * g_mag + TINY32)

    check()


@pytest.mark.parametrize("loss", R.LOSSES)
def test_magnitude_bounds_float32_of_rounded_inputs(loss: str) -> None:
    # float64 inputs, x ≈ y to a relative 2^-20 .. 1e-3: float32 rounds x and y first, so d
    # loses digits; the c = |x| + |y| terms of the magnitude cover it.
    @SETTINGS
    @given(
        raw=cases(loss),
        r=arrays(np.float64, 8, elements=st.floats(2.0**-20, 1e-3)),
        near=st.lists(st.booleans(), min_size=1),
    )
    def check(raw: Case, r: np.ndarray, near: list[bool]) -> None:
        flat_r = np.resize(r * np.resize([1.0, -1.0, 1.0], r.size), raw.x.shape)
        pick = np.resize(np.array(near), raw.x.shape)
        y = np.where(pick, raw.x * (1 + flat_r), raw.y)
        g = np.full(raw.x.shape, 0.75)
        case = Case(raw.x, y, raw.weight, "none", g, float(np.float32(raw.param)))
        kw = case.kwargs(loss)
        want, g_want = oracle(loss, case)
        mag, g_mag = magnitude(loss)(case.x, case.y, **kw, grad_output=g)
        got, g_got = float32_plain(loss, case)
        assert np.all(np.abs(got - want) <= 4 * EPS32 * mag + TINY32)
        # The derivative's branch follows the rounded d: leave out elements that rounding
        # (or underflow: 1e-300 is 0 in float32) can move across a kink (|d| = 0 for a sign,
        # |d| = delta or beta).
        d, c = case.x - case.y, np.abs(case.x) + np.abs(case.y)
        band = 2.0**-20 * c + TINY32
        safe = (np.abs(np.abs(d) - case.param) > band) & ((np.abs(d) > band) | (d == 0))
        assert np.all((np.abs(g_got - g_want) <= 4 * EPS32 * g_mag + TINY32)[safe])

    check()


def test_cancellation_term_is_needed() -> None:
    # x = 1000.0001 rounds to 1000.0001220703125 in float32: d = 1.22e-4, not 1e-4, and the
    # float32 square is off by 49 %, far beyond 4 eps32 |loss|, within 4 eps32 magnitude.
    x, y = np.array([1000.0001]), np.array([1000.0])
    want = R.mse_loss(x, y, reduction="none")
    mag, _ = R.mse_loss_magnitude(x, y, reduction="none")
    got = float((x.astype(np.float32) - y.astype(np.float32))[0] ** 2)
    assert abs(got - want[0]) > 1e5 * EPS32 * want[0]
    assert abs(got - want[0]) <= 4 * EPS32 * mag[0]


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------

X = np.zeros((2, 3))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: R.mse_loss(X, np.zeros((3, 2))), r"same shape. Received: input.shape=\(2, 3\)"),
        (lambda: R.l1_loss(X, np.zeros(3)), r"target.shape=\(3,\)"),
        (lambda: R.mse_loss(X, X, weight=np.ones(2)), r"`weight` must broadcast .* \(2, 3\)"),
        (lambda: R.huber_loss(X, X, weight=np.ones((1, 2, 3))), r"weight.shape=\(1, 2, 3\)"),
        (lambda: R.l1_loss_grad(X, X, reduction="avg"), r"one of 'none', 'mean', 'sum'"),
        (lambda: R.huber_loss(X, X, delta=0.0), r"`delta` must be a finite number > 0"),
        (lambda: R.huber_loss_grad(X, X, delta=-1.0), r"Received: delta=-1.0"),
        (lambda: R.huber_loss(X, X, delta=math.inf), r"`delta` must be a finite"),
        (lambda: R.smooth_l1_loss(X, X, beta=-0.5), r"`beta` must be a finite number >= 0"),
        (lambda: R.smooth_l1_loss_magnitude(X, X, beta=math.nan), r"Received: beta=nan"),
        (lambda: R.mse_loss_grad(X, X, grad_output=np.ones(2)), r"grad_output.shape=\(2,\)"),
        (lambda: R.mse_loss(X.astype(str), X), r"`input` must be a real numeric array"),
        (lambda: R.mse_loss(X, X, choices={"log_clamp": "-100"}), r"no semantic option"),
        (lambda: R.l1_loss(X, X, choices={"mean_denominator": "x"}), r"no choice 'x'"),
        (lambda: R.canonical_choices("mae"), r"no regression loss 'mae'"),
    ],
)
def test_argument_errors(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------
# Mutants: deliberately wrong oracles, each found out by the mpmath comparison
# --------------------------------------------------------------------------------------------


def _mutant(rule: Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]) -> Impl:
    def impl(loss: str, case: Case) -> tuple[np.ndarray, np.ndarray]:
        d = case.x - case.y
        w = np.ones(d.shape) if case.weight is None else np.broadcast_to(case.weight, d.shape)
        f, df = rule(d, case.param)
        n = d.size
        s = np.broadcast_to(case.grad_output / (n if case.reduction == "mean" else 1), d.shape)
        per = w * f
        if case.reduction == "none":
            return per, s * w * df
        total = np.sum(per)
        return np.asarray(total / n if case.reduction == "mean" else total), s * w * df

    return impl


def _weighted_mean(loss: str, case: Case) -> tuple[np.ndarray, np.ndarray]:
    c = {"mean_denominator": "weights"}
    kw = case.kwargs(loss)
    go = case.grad_output
    return value(loss)(case.x, case.y, **kw, choices=c), grad(loss)(
        case.x, case.y, **kw, grad_output=go, choices=c
    )


MUTANTS: dict[str, tuple[str, Impl]] = {
    # Huber with `<` and the linear term delta |d| (no - delta^2 / 2).
    "huber_linear_term": (
        R.HUBER,
        _mutant(
            lambda d, p: (
                np.where(np.abs(d) < p, 0.5 * d * d, p * np.abs(d)),
                np.where(np.abs(d) < p, d, p * np.sign(d)),
            )
        ),
    ),
    # MSE's gradient without the square's factor 2.
    "mse_grad_without_2": (R.MSE, _mutant(lambda d, p: (d * d, d))),
    # "Half MSE" (tf.nn.l2_loss's d^2 / 2): consistent, so finite differences cannot see it.
    "half_mse": (R.MSE, _mutant(lambda d, p: (0.5 * d * d, d))),
    # L1's derivative at d = 0 taken as +1.
    "l1_sign_zero_is_one": (R.L1, _mutant(lambda d, p: (np.abs(d), np.where(d >= 0, 1.0, -1.0)))),
    # Smooth L1 without the 1 / beta (Huber's formula).
    "smooth_l1_as_huber": (
        R.SMOOTH_L1,
        _mutant(
            lambda d, p: (
                np.where(np.abs(d) < p, 0.5 * d * d, p * (np.abs(d) - 0.5 * p)),
                np.where(np.abs(d) < p, d, p * np.sign(d)),
            )
        ),
    ),
    # The mean divided by the sum of the weights (the alternative choice, not the canonical).
    "mean_by_weights": (R.MSE, _weighted_mean),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_found(name: str) -> None:
    loss, impl = MUTANTS[name]
    # No shrinking: the first case that tells the mutant apart is enough.
    quick = settings(max_examples=300, deadline=None, database=None, phases=[Phase.generate])
    with np.errstate(all="ignore"):
        found = find(cases(loss), lambda c: mismatch(impl, loss, c) is not None, settings=quick)
    assert mismatch(impl, loss, found) is not None
    assert mismatch(oracle, loss, found) is None


@pytest.mark.parametrize("loss", R.LOSSES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(("choice", "axis"), [("last", -1), ("class", 1)])
def test_axis_mean_averages_first(loss: str, reduction: str, choice: str, axis: int) -> None:
    """Keras' form: the per-element terms averaged over the last axis (or axis 1), then
    reduced; the gradient is that of this value (finite differences)."""
    rng = np.random.default_rng(11)
    x, y = rng.normal(0, 2, (2, 3, 4)), rng.normal(0, 2, (2, 3, 4))
    last = {"axis_mean": choice}
    per = value(loss)(x, y, reduction="none").mean(axis=axis)
    want = {"none": per, "mean": per.mean(), "sum": per.sum()}[reduction]
    np.testing.assert_allclose(value(loss)(x, y, reduction=reduction, choices=last), want)
    g = rng.normal(size=np.shape(want))
    h, fd = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        up = value(loss)(x + e, y, reduction=reduction, choices=last)
        down = value(loss)(x - e, y, reduction=reduction, choices=last)
        fd[i] = np.sum((up - down) * g) / (2 * h)
    got = grad(loss)(x, y, reduction=reduction, grad_output=g, choices=last)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-9)


def test_squared_scale_half_is_half_the_squared_error() -> None:
    x, y = np.array([1.0, -2.0, 3.0]), np.array([0.0, 0.5, 3.5])
    half = {"squared_scale": "half"}
    np.testing.assert_array_equal(R.mse_loss(x, y, reduction="sum", choices=half), 3.75)
    np.testing.assert_array_equal(
        R.mse_loss_grad(x, y, reduction="none", choices=half), [1.0, -2.5, -0.5]
    )


# ------------------------------------------------------ the shipped cases catch wrong oracles


@pytest.fixture(scope="module")
def judged() -> list[Judged]:
    """Every case of cases/regression.yaml with its canonical expectations."""
    return judged_cases("regression.yaml")


def _shipped_catch(judged: list[Judged], loss: str, outputs: Callable[..., Any]) -> list[str]:
    return failing_ids([j for j in judged if j[0].loss == loss], outputs)


def _choice(loss: str, **choices: str) -> Callable[..., Any]:
    fn = getattr(R, f"{loss}_outputs")
    return lambda x, t, **kw: fn(x, t, **kw, choices=choices)


def _huber_strict(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
    """Huber with the linear branch delta |d| (no - delta^2 / 2)."""
    d = np.asarray(x, np.float64) - np.asarray(t, np.float64)
    delta = kw["delta"]
    per = np.where(np.abs(d) <= delta, 0.5 * d * d, delta * np.abs(d))
    w = 1.0 if kw.get("weight") is None else np.broadcast_to(kw["weight"], d.shape)
    per = per * w
    reduction = kw["reduction"]
    loss = per if reduction == "none" else (per.sum() if reduction == "sum" else per.mean())
    return {"loss": np.asarray(loss), "grad": R.huber_loss_grad(x, t, **kw)}


def _smooth_l1_without_beta(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
    """Smooth L1 whose quadratic part forgets the 1 / beta (Huber with delta = beta)."""
    beta = kw.pop("beta")
    if beta == 0:
        return R.l1_loss_outputs(x, t, **kw)
    return R.huber_loss_outputs(x, t, **kw, delta=beta)


SHIPPED_MUTANTS: dict[str, tuple[str, Callable[..., Any]]] = {
    "MSE mean over the sum of weights": (
        "mse_loss",
        _choice("mse_loss", mean_denominator="weights"),
    ),
    "MSE halved": ("mse_loss", _choice("mse_loss", squared_scale="half")),
    "MSE averaged over the last axis": ("mse_loss", _choice("mse_loss", axis_mean="last")),
    "L1 mean over the nonzero weights": (
        "l1_loss",
        _choice("l1_loss", mean_denominator="nonzero_weights"),
    ),
    "Huber linear branch without - delta^2/2": ("huber_loss", _huber_strict),
    "Huber delta ignored": (
        "huber_loss",
        lambda x, t, **kw: R.huber_loss_outputs(x, t, **{**kw, "delta": 1.0}),
    ),
    "smooth L1 without the 1/beta": ("smooth_l1_loss", _smooth_l1_without_beta),
}


@pytest.mark.parametrize("name", list(SHIPPED_MUTANTS))
def test_every_mutant_is_caught_by_a_shipped_case(name: str, judged: list[Any]) -> None:
    loss, outputs = SHIPPED_MUTANTS[name]
    assert _shipped_catch(judged, loss, outputs), f"no shipped case notices: {name}"


@pytest.mark.parametrize("loss", R.LOSSES)
def test_the_true_oracle_in_the_case_dtype_passes_every_shipped_case(
    loss: str, judged: list[Any]
) -> None:
    assert _shipped_catch(judged, loss, getattr(R, f"{loss}_outputs")) == []

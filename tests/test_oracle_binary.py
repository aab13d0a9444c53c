"""Tests of the binary cross-entropy oracle (conformance/oracle/binary.py).

Sections: documented and measured numbers (one per semantic option); an independent 50-digit
mpmath computation on hypothesis-generated cases, extremes included; invariants; magnitudes
(against float32 implementations written the way frameworks write them); argument errors and
the option table. Nothing here imports a deep-learning framework: the framework numbers
below were measured once (PyTorch 2.13, TensorFlow 2.21 / Keras 3.15, optax 0.2.8, Paddle
3.3.1, CPU) and are written down with where they come from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conformance.oracle import binary as B
from conformance.oracle.binary import (
    OPTIONS,
    SHARED_OPTIONS,
    binary_cross_entropy,
    binary_cross_entropy_grad,
    binary_cross_entropy_magnitude,
    binary_cross_entropy_outputs,
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
    binary_cross_entropy_with_logits_magnitude,
    binary_cross_entropy_with_logits_outputs,
    canonical_choices,
)

SETTINGS = settings(max_examples=60, deadline=None)
EPS32 = float(np.finfo(np.float32).eps)
TINY32 = float(np.finfo(np.float32).tiny)
INF = math.inf

bce, bce_grad, bce_mag = (
    binary_cross_entropy,
    binary_cross_entropy_grad,
    binary_cross_entropy_magnitude,
)
bcel = binary_cross_entropy_with_logits
bcel_grad = binary_cross_entropy_with_logits_grad
bcel_mag = binary_cross_entropy_with_logits_magnitude


def _none(f: Any, *args: Any, **kw: Any) -> np.ndarray:
    out: np.ndarray = f(*(np.asarray(a, dtype=np.float64) for a in args), reduction="none", **kw)
    return out


# --------------------------------------------------------------------------------------------
# Documented and measured numbers
# --------------------------------------------------------------------------------------------


def test_canonical_edges_of_probability_input() -> None:
    p = [0.0, 0.0, 1.0, 1.0, 0.0]
    t = [0.0, 1.0, 1.0, 0.0, 0.3]
    loss = _none(bce, p, t)
    np.testing.assert_array_equal(loss, [0.0, INF, 0.0, INF, INF])  # 0 log 0 = 0
    # d/dp of -log(1 - p) at p = 0 is 1; of -log p at p = 1 is -1 (one-sided: p is on the edge)
    np.testing.assert_array_equal(_none(bce_grad, p, t), [1.0, -INF, -1.0, INF, -INF])
    assert float(bce(np.array([0.2, 0.6]), np.array([1.0, 0.0]))) == pytest.approx(
        -(math.log(0.2) + math.log(0.4)) / 2, rel=1e-15
    )


def test_log_clamp_minus_100_is_torch_and_paddle() -> None:
    # torch BCELoss doc: "BCELoss clamps its log function outputs to be greater than or equal
    # to -100"; measured: loss 100 at p=0,t=1 and p=1,t=0; 30 at p=0, t=0.3.
    p, t = [0.0, 1.0, 0.0, 1e-30, 0.0], [1.0, 0.0, 0.3, 1.0, 0.0]
    loss = _none(bce, p, t, choices={"log_clamp": "-100"})
    np.testing.assert_allclose(loss, [100.0, 100.0, 30.0, -math.log(1e-30), 0.0], rtol=1e-15)
    # Its exact gradient is 0 where the log is clamped.
    np.testing.assert_array_equal(
        _none(bce_grad, [0.0, 1.0], [1.0, 0.0], choices={"log_clamp": "-100"}), [0.0, 0.0]
    )


def test_prob_grad_clamp_is_torch_and_paddle_backward() -> None:
    # Measured in float64: grad at (p, t) = (0, 0): 0 (the exact derivative is 1); (1, 0):
    # 1e12; (0, 1): -1e12; (0.5, 0.3): 0.8; (1, 1): 0; (1e-30, 0): Paddle 1e-18, PyTorch
    # 1.0000000039958028e-18 (its constant is float32(1e-12) = 9.999999960041972e-13).
    p, t = [0.0, 1.0, 0.0, 0.5, 1.0, 1e-30], [0.0, 0.0, 1.0, 0.3, 1.0, 0.0]
    paddle = _none(bce_grad, p, t, choices={"prob_grad": "clamp_1e-12"})
    np.testing.assert_allclose(paddle, [0.0, 1e12, -1e12, 0.8, 0.0, 1e-18], rtol=1e-15)
    torch = _none(bce_grad, p, t, choices={"prob_grad": "clamp_1e-12f"})
    np.testing.assert_allclose(torch[3:], [0.8, 0.0, 1.0000000039958028e-18], rtol=1e-15)
    assert torch[1] == pytest.approx(1.0000000039958028e12, rel=1e-15)
    # The log clamp does not change this gradient.
    both = {"prob_grad": "clamp_1e-12f", "log_clamp": "-100"}
    np.testing.assert_array_equal(_none(bce_grad, p, t, choices=both), torch)


def test_log_clamp_clip_is_keras() -> None:
    # Keras clips p to [epsilon, 1 - epsilon], epsilon = 1e-7: -log(1e-7) = 16.118095650958...
    # Measured keras.losses.binary_crossentropy, float64: 16.11809565095832 (p=0, t=1),
    # 16.118095651484676 (p=1, t=0), 1.0000000494736474e-07 (p=0, t=0), 4.835428765287499
    # (p=0, t=0.3); gradient 0 wherever p was clipped.
    choices = {"log_clamp": "clip_1e-7"}
    p, t = [0.0, 1.0, 0.0, 0.0, -0.1, 0.5], [1.0, 0.0, 0.0, 0.3, 1.0, 1.0]
    loss = _none(bce, p, t, choices=choices)
    assert loss[0] == pytest.approx(16.11809565095832, rel=1e-15)
    assert loss[0] == pytest.approx(-math.log(1e-7), rel=1e-15)
    assert loss[1] == pytest.approx(16.118095651484676, rel=1e-10)  # Keras: log(1 - hi)
    assert loss[2] == pytest.approx(1.0000000494736474e-07, rel=1e-8)
    assert loss[3] == pytest.approx(4.835428765287499, rel=1e-14)
    assert loss[4] == loss[0]  # outside [0, 1]: clipped, not an error
    grad = _none(bce_grad, p, t, choices=choices)
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0, 0.0, 0.0, -2.0])


def test_log_clamp_add_epsilon_is_log_loss() -> None:
    # paddle.nn.functional.log_loss (epsilon=1e-4): 0.69294715 at p=0.5, t=1 (float32);
    # tf.compat.v1.losses.log_loss (epsilon=1e-7): [16.118095, 0.69314694, 16.118095,
    # 0.22314338] at p=[0, .5, 1, .2], t=[1, 1, 0, 0] (float32).
    loss = _none(bce, [0.5], [1.0], choices={"log_clamp": "add_1e-4"})
    assert loss[0] == pytest.approx(-math.log(0.5001), rel=1e-15)
    assert loss[0] == pytest.approx(0.69294715, rel=1e-7)
    p, t = [0.0, 0.5, 1.0, 0.2], [1.0, 1.0, 0.0, 0.0]
    loss = _none(bce, p, t, choices={"log_clamp": "add_1e-7"})
    np.testing.assert_allclose(loss, [16.118095, 0.69314694, 16.118095, 0.22314338], rtol=5e-7)
    grad = _none(bce_grad, [0.0], [1.0], choices={"log_clamp": "add_1e-7"})
    assert grad[0] == pytest.approx(-1e7, rel=1e-15)


def test_mean_denominator_is_tf_v1_reductions() -> None:
    # tf.compat.v1.losses.log_loss(t, p, weights=[2, 0, 1, 0]) with its default reduction
    # SUM_BY_NONZERO_WEIGHTS: 24.177143 (float32); the weighted sum is 48.35429.
    p, t, w = np.array([0.0, 0.5, 1.0, 0.2]), np.array([1.0, 1.0, 0.0, 0.0]), [2.0, 0, 1, 0]
    add = {"log_clamp": "add_1e-7"}
    total = float(bce(p, t, weight=w, reduction="sum", choices=add))
    nonzero = bce(p, t, weight=w, choices={**add, "mean_denominator": "nonzero_weights"})
    assert float(nonzero) == pytest.approx(24.177143, rel=1e-7)
    assert float(nonzero) == pytest.approx(total / 2, rel=1e-15)
    by_weight = bce(p, t, weight=w, choices={**add, "mean_denominator": "weights"})
    assert float(by_weight) == pytest.approx(total / 3, rel=1e-15)
    assert float(bce(p, t, weight=w, choices=add)) == pytest.approx(total / 4, rel=1e-15)


def test_weighted_mean_divides_by_elements() -> None:
    # torch and paddle (measured): BCE([0.2, 0.6], [1, 0], weight=[3, 0.5]) = 2.643229551619689
    # = (3 * -log 0.2 + 0.5 * -log 0.4) / 2, not / 3.5.
    loss = bce(np.array([0.2, 0.6]), np.array([1.0, 0.0]), weight=[3.0, 0.5])
    assert float(loss) == pytest.approx(2.643229551619689, rel=1e-15)


def test_axis_mean_last_is_keras() -> None:
    # keras.losses.BinaryCrossentropy on these (float32): reduction=None [0.8770297,
    # 1.1688527]; "sum_over_batch_size" 1.0229412; "sum" 2.0458825.
    p = np.array([[0.2, 0.6, 0.9], [0.4, 0.5, 0.1]])
    t = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    c = {"axis_mean": "last"}
    np.testing.assert_allclose(bce(p, t, reduction="none", choices=c), [0.8770297, 1.1688527], 1e-7)
    assert float(bce(p, t, choices=c)) == pytest.approx(1.0229412, rel=1e-7)
    assert float(bce(p, t, choices=c)) == pytest.approx(float(bce(p, t)), rel=1e-15)
    assert float(bce(p, t, reduction="sum", choices=c)) == pytest.approx(2.0458825, rel=1e-7)
    # axis 1 and the last axis coincide on 2-d input; the gradient spreads g / K.
    g = np.array([1.0, -2.0])
    for axis in ("last", "class"):
        grad = bce_grad(p, t, reduction="none", grad_output=g, choices={"axis_mean": axis})
        full = bce_grad(p, t, reduction="none", grad_output=np.repeat(g[:, None] / 3, 3, axis=1))
        np.testing.assert_allclose(grad, full, rtol=1e-15)
    x = np.zeros((2, 3, 4))
    assert bcel(x, x, reduction="none", choices={"axis_mean": "class"}).shape == (2, 4)
    assert bcel(x, x, reduction="none", choices={"axis_mean": "last"}).shape == (2, 3)


def test_torch_doc_example_pos_weight() -> None:
    # torch BCEWithLogitsLoss docs: output 1.5, target 1, pos_weight ones(64) -> -log(sigmoid
    # (1.5)) = tensor(0.20...)
    x, t = np.full((10, 64), 1.5), np.ones((10, 64))
    loss = float(bcel(x, t, pos_weight=np.ones(64)))
    assert loss == pytest.approx(math.log1p(math.exp(-1.5)), rel=1e-15)
    assert f"{loss:.2f}" == "0.20"


def test_logits_edges_and_infinite_logit() -> None:
    x = [-INF, -INF, -INF, INF, INF, INF, -1e4, 1e4, 0.0]
    t = [0.0, 1.0, 0.3, 0.0, 1.0, 0.3, 1.0, 0.0, 1.0]
    loss = _none(bcel, x, t, pos_weight=[3.0])
    np.testing.assert_array_equal(loss[:8], [0, INF, INF, INF, 0, INF, 3e4, 1e4])
    assert loss[8] == pytest.approx(3 * math.log(2), rel=1e-15)
    grad = _none(bcel_grad, x, t, pos_weight=[3.0])
    np.testing.assert_allclose(grad, [0, -3, -0.9, 1, 0, 0.7, -3, 1, -1.5], rtol=1e-15)
    # At x = ±inf the frameworks return the IEEE value of their formula (measured, float64,
    # the gradient keeps its limit). PyTorch (pos_weight 3; pytorch#49844, #102894),
    # tf.nn.weighted_cross_entropy_with_logits (Paddle with pos_weight too, except at x = -inf,
    # where its loss and gradient are NaN for every t):
    lin = {"infinite_logit": "linear_form"}
    got = _none(bcel, x, t, pos_weight=[3.0], choices=lin)
    np.testing.assert_array_equal(got[:6], [np.nan, np.nan, np.nan, INF, np.nan, INF])
    np.testing.assert_array_equal(got[6:], loss[6:])
    np.testing.assert_array_equal(_none(bcel_grad, x, t, pos_weight=[3.0], choices=lin), grad)
    # tf.nn.sigmoid_cross_entropy_with_logits, Keras from_logits, Paddle without pos_weight
    # (tensorflow#75256), also at targets 1.5 and -0.5:
    relu = {"infinite_logit": "relu_form"}
    got = _none(bcel, x[:6], t[:6], choices=relu)
    np.testing.assert_array_equal(got, [np.nan, INF, INF, np.nan, np.nan, np.nan])
    got = _none(bcel, [-INF, INF, -INF, INF], [1.5, 1.5, -0.5, -0.5], choices=relu)
    np.testing.assert_array_equal(got, [INF, np.nan, -INF, INF])
    # A zero weight does not hide the NaN (torch, measured: weight 0 at x = -inf gives NaN).
    assert np.isnan(_none(bcel, [-INF], [1.0], weight=[0.0], choices=lin)).all()
    with pytest.raises(ValueError, match="relu_form has no pos_weight"):
        bcel(np.array([INF]), np.array([1.0]), pos_weight=[2.0], choices=relu)


def test_zero_log_zero_nan_is_optax() -> None:
    # optax.sigmoid_binary_cross_entropy (measured): NaN at (x, t) = (-inf, 0) and (inf, 1),
    # inf at (-inf, 1); gradients 0, 0, -1.
    x, t = [-INF, INF, -INF, 2.0], [0.0, 1.0, 1.0, 0.5]
    c = {"zero_log_zero": "nan"}
    loss = _none(bcel, x, t, choices=c)
    assert np.isnan(loss[:2]).all() and loss[2] == INF
    assert loss[3] == float(_none(bcel, x, t)[3])
    np.testing.assert_array_equal(_none(bcel_grad, x, t, choices=c)[:3], [0.0, 0.0, -1.0])
    # On probabilities the same rule makes 0 log 0 and its derivative 0 / 0 NaN.
    assert np.isnan(_none(bce, [0.0], [0.0], choices=c)).all()
    assert np.isnan(_none(bce_grad, [0.0], [0.0], choices=c)).all()
    # A zero weight is a zero coefficient too: canonical 0, NaN under the alternative.
    assert _none(bcel, [-INF], [1.0], weight=[0.0])[0] == 0.0
    assert np.isnan(_none(bcel, [-INF], [1.0], weight=[0.0], choices=c)).all()


def test_pos_weight_axis() -> None:
    # Measured in torch 2.13: on a (2, 3, 4) input a pos_weight of length 4 broadcasts
    # against the last axis; length 3 raises "The size of tensor a (3) must match the size of
    # tensor b (4) at non-singleton dimension 2". Same in tf.nn.weighted_cross_entropy_with_
    # logits and Paddle.
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((2, 3, 4)), rng.random((2, 3, 4))
    q4, q3 = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0])

    def by_hand(q: np.ndarray) -> np.ndarray:
        out: np.ndarray = q * t * np.logaddexp(0, -x) + (1 - t) * np.logaddexp(0, x)
        return out

    last = {"pos_weight_axis": "last"}
    np.testing.assert_allclose(_none(bcel, x, t, pos_weight=q4, choices=last), by_hand(q4), 1e-15)
    np.testing.assert_allclose(_none(bcel, x, t, pos_weight=q3), by_hand(q3[:, None]), 1e-15)
    with pytest.raises(ValueError, match=r"length 1 or C = input.shape\[1\] = 3"):
        bcel(x, t, pos_weight=q4)
    with pytest.raises(ValueError, match=r"length 1 or input.shape\[-1\] = 4"):
        bcel(x, t, pos_weight=q3, choices=last)
    # A length-1 pos_weight is the same along any axis; 2-d input has one axis for both.
    np.testing.assert_array_equal(
        bcel(x, t, pos_weight=[2.0]), bcel(x, t, pos_weight=[2.0], choices=last)
    )
    np.testing.assert_array_equal(
        bcel(x[:, :, 0], t[:, :, 0], pos_weight=q3),
        bcel(x[:, :, 0], t[:, :, 0], pos_weight=q3, choices=last),
    )


def test_empty_mean() -> None:
    e = np.zeros((0, 3))
    assert np.isnan(bce(e, e)) and np.isnan(bcel(e, e))  # torch and paddle: nan
    assert float(bcel(e, e, choices={"empty_mean": "zero"})) == 0.0
    assert float(bcel(e, e, reduction="sum")) == 0.0
    assert bcel_grad(e, e).shape == (0, 3)
    w = np.zeros(3)
    x = np.ones((2, 3))
    nz = {"mean_denominator": "nonzero_weights"}
    assert np.isnan(bcel(x, x, weight=w, choices=nz))
    np.testing.assert_array_equal(bcel_grad(x, x, weight=w, choices=nz), np.zeros((2, 3)))


def test_outputs_form_for_the_judge() -> None:
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((2, 3, 2)), rng.random((2, 3, 2))
    for choices in ({}, {"pos_weight_axis": "last", "mean_denominator": "weights"}):
        kw: dict[str, Any] = {"weight": rng.random((3, 1)), "pos_weight": [1.0, 2.0]}
        if not choices:
            kw["pos_weight"] = [1.0, 2.0, 0.5]
        out = binary_cross_entropy_with_logits_outputs(x, t, **kw, choices=choices)
        assert set(out) == {"loss", "grad"}
        np.testing.assert_array_equal(out["loss"], bcel(x, t, **kw, choices=choices))
        np.testing.assert_array_equal(out["grad"], bcel_grad(x, t, **kw, choices=choices))
    p = 1 / (1 + np.exp(-x))
    out = binary_cross_entropy_outputs(p, t, reduction="sum", choices={"log_clamp": "-100"})
    np.testing.assert_array_equal(out["grad"], bce_grad(p, t, reduction="sum"))


# --------------------------------------------------------------------------------------------
# Random cases against an independent 50-digit mpmath computation
# --------------------------------------------------------------------------------------------

LOGIT_EXTREMES = [-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4]
PROB_EXTREMES = [0.0, 1.0, 1e-30, 1e-8, 0.5, 1.0 - 2.0**-24, 1.0 - 2.0**-53]
TARGET_VALUES = [0.0, 1.0, float(np.float32(0.3)), 0.5]  # float32 values: 1 - (1 - t) == t


@dataclass(frozen=True)
class Case:
    x: np.ndarray  # logits or probabilities, float64
    target: np.ndarray
    weight: np.ndarray | None  # broadcastable to x
    pos_weight: np.ndarray | None  # (C,) or (1,)
    reduction: str
    grad_output: np.ndarray  # loss-shaped

    def kwargs(self, logits: bool) -> dict[str, Any]:
        kw: dict[str, Any] = {"weight": self.weight, "reduction": self.reduction}
        if logits:
            kw["pos_weight"] = self.pos_weight
        return kw


def _f32(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, width=32, allow_subnormal=False)


@st.composite
def cases(draw: st.DrawFn, logits: bool, extremes: bool = True) -> Case:
    shape = tuple(draw(st.lists(st.integers(1, 3), max_size=4)))
    if logits:
        bound = draw(st.sampled_from([5.0, 30.0, 200.0]))
        values = _f32(-bound, bound)
        special = LOGIT_EXTREMES
    else:
        values = _f32(0.0, 1.0)
        special = PROB_EXTREMES
    if extremes:
        values = st.one_of(values, st.sampled_from(special))
    x = draw(arrays(np.float64, shape, elements=values))
    target = draw(
        arrays(np.float64, shape, elements=st.one_of(_f32(0, 1), st.sampled_from(TARGET_VALUES)))
    )
    weight = None
    if draw(st.booleans()):
        # A weight shape that broadcasts: trailing dims of the input, some of them 1.
        k = draw(st.integers(0, len(shape)))
        wshape = tuple(d if draw(st.booleans()) else 1 for d in shape[len(shape) - k :])
        wvals = st.one_of(_f32(0.125, 4.0), st.just(0.0), _f32(-2.0, -0.125))
        weight = draw(arrays(np.float64, wshape, elements=wvals))
    pos_weight = None
    if logits and draw(st.booleans()):
        c = shape[1] if len(shape) >= 2 else 1
        pos_weight = draw(
            arrays(np.float64, (draw(st.sampled_from([1, c])),), elements=_f32(0.125, 4))
        )
    reduction = draw(st.sampled_from(["none", "mean", "sum"]))
    g_shape = shape if reduction == "none" else ()
    g = draw(arrays(np.float64, g_shape, elements=_f32(-2.0, 2.0)))
    return Case(x, target, weight, pos_weight, reduction, g)


def _class_view(case: Case) -> np.ndarray:
    """pos_weight broadcast to the input (1 where not given), axis 1 (one class below 2-d)."""
    if case.pos_weight is None:
        return np.ones_like(case.x)
    q = case.pos_weight
    if case.x.ndim >= 2:
        q = q.reshape((1, -1) + (1,) * (case.x.ndim - 2))
    return np.broadcast_to(q.reshape(q.shape if case.x.ndim >= 2 else ()), case.x.shape)


class MpBinary:
    """One case in mpmath, element by element, from the definition."""

    def __init__(self, case: Case, logits: bool) -> None:
        self.logits, self.reduction = logits, case.reduction
        w = (
            np.ones_like(case.x)
            if case.weight is None
            else np.broadcast_to(case.weight, case.x.shape)
        )
        q = _class_view(case) if logits else np.ones_like(case.x)
        self.x = [mp.mpf(float(v)) for v in case.x.ravel()]
        t = [mp.mpf(float(v)) for v in case.target.ravel()]
        ws = [mp.mpf(float(v)) for v in w.ravel()]
        qs = [mp.mpf(float(v)) for v in q.ravel()]
        self.a1 = [wi * qi * ti for wi, qi, ti in zip(ws, qs, t, strict=True)]
        self.a0 = [wi * (1 - ti) for wi, ti in zip(ws, t, strict=True)]
        self.n = len(self.x)
        g = case.grad_output.ravel() if case.reduction == "none" else [case.grad_output] * self.n
        scale = mp.mpf(1) / self.n if case.reduction == "mean" and self.n else mp.mpf(1)
        self.s = [mp.mpf(float(v)) * scale for v in np.ravel(g)]
        self.shape = case.x.shape

    def logs(self, x: Any) -> tuple[Any, Any]:
        """(-log P(positive), -log P(negative)) at one input value."""
        if self.logits:  # -log sigmoid(x) = log(1 + e^-x), -log(1 - sigmoid(x)) = log(1 + e^x)
            return mp.log1p(mp.exp(-x)), mp.log1p(mp.exp(x))
        return -mp.log(x) if x else mp.inf, -mp.log(1 - x) if x != 1 else mp.inf

    def per(self, xs: list[Any]) -> list[Any]:
        out = []
        for x, a1, a0 in zip(xs, self.a1, self.a0, strict=True):
            l1, l0 = self.logs(x)
            out.append((0 if a1 == 0 else a1 * l1) + (0 if a0 == 0 else a0 * l0))
        return out

    def loss(self) -> Any:
        per = self.per(self.x)
        if self.reduction == "none":
            return np.array([float(v) for v in per]).reshape(self.shape)
        total = mp.fsum(per)
        if self.reduction == "sum":
            return float(total)
        return float(total / self.n) if self.n else math.nan

    def loss_scale(self) -> Any:
        """sum of |terms| (the size of what cancels), reduced like the loss."""
        per = []
        for x, a1, a0 in zip(self.x, self.a1, self.a0, strict=True):
            l1, l0 = self.logs(x)
            per.append((0 if a1 == 0 else abs(a1 * l1)) + (0 if a0 == 0 else abs(a0 * l0)))
        if self.reduction == "none":
            return np.array([float(v) for v in per]).reshape(self.shape)
        return float(mp.fsum(per) / (self.n if self.reduction == "mean" and self.n else 1))

    def grad(self) -> tuple[np.ndarray, np.ndarray]:
        """s (a0 dL0/dx + a1 dL1/dx) and its error scale, from the analytic derivative."""
        out, scale = [], []
        for x, a1, a0, s in zip(self.x, self.a1, self.a0, self.s, strict=True):
            if self.logits:
                d1, d0 = -1 / (1 + mp.exp(x)), 1 / (1 + mp.exp(-x))
            else:
                d1 = -1 / x if x else -mp.inf
                d0 = 1 / (1 - x) if x != 1 else mp.inf
            t1 = 0 if a1 == 0 else a1 * d1
            t0 = 0 if a0 == 0 else a0 * d0
            out.append(float(s * (t1 + t0)))
            scale.append(float(abs(s) * (abs(t1) + abs(t0))))
        return np.array(out).reshape(self.shape), np.array(scale).reshape(self.shape)

    def objective(self, xs: list[Any], mask: list[bool]) -> Any:
        """sum(loss * grad_output) over the elements in ``mask``."""
        per = self.per(xs)
        return mp.fsum(s * v for s, v, m in zip(self.s, per, mask, strict=True) if m)


def _assert_close(actual: Any, expected: Any, *, rtol: float, atol: Any = 0.0) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    assert actual.dtype == np.float64 and actual.shape == expected.shape
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), (actual, expected)
    inf = np.isinf(expected)
    assert np.array_equal(actual[inf], expected[inf]), (actual, expected)
    finite = np.isfinite(expected)
    with np.errstate(invalid="ignore"):
        err = np.abs(actual - expected)
    ok = err <= rtol * np.abs(expected) + atol
    assert ok[finite].all(), f"max abs diff {np.max(err[finite])}\n{actual}\n{expected}"


def _directional(ref: MpBinary, v: np.ndarray, mask: np.ndarray) -> float:
    """d/dh sum over ``mask`` of (loss * grad_output)(x + h v) at h = 0, numerically."""
    vs, ms = [float(e) for e in v.ravel()], [bool(m) for m in mask.ravel()]

    def along(h: Any) -> Any:
        return ref.objective([x + h * d for x, d in zip(ref.x, vs, strict=True)], ms)

    return float(mp.diff(along, 0))


@SETTINGS
@given(case=cases(logits=True), seed=st.integers(0, 2**32 - 1))
def test_logits_match_mpmath(case: Case, seed: int) -> None:
    kw = case.kwargs(logits=True)
    with mp.workdps(50):
        ref = MpBinary(case, logits=True)
        _assert_close(
            bcel(case.x, case.target, **kw), ref.loss(), rtol=1e-13, atol=1e-14 * ref.loss_scale()
        )
        grad = bcel_grad(case.x, case.target, **kw, grad_output=case.grad_output)
        g_ref, g_scale = ref.grad()
        _assert_close(grad, g_ref, rtol=1e-12, atol=1e-14 * g_scale)
        # The analytic mpmath derivative is itself checked by differentiating numerically.
        v = np.random.default_rng(seed).standard_normal(case.x.shape)
        everywhere = np.ones(case.x.shape, dtype=bool)
        assert float(np.sum(grad * v)) == pytest.approx(
            _directional(ref, v, everywhere),
            rel=1e-10,
            abs=1e-13 * float(np.sum(np.abs(v) * g_scale)),
        )


@SETTINGS
@given(case=cases(logits=False), seed=st.integers(0, 2**32 - 1))
def test_probabilities_match_mpmath(case: Case, seed: int) -> None:
    kw = case.kwargs(logits=False)
    with mp.workdps(50):
        ref = MpBinary(case, logits=False)
        _assert_close(
            bce(case.x, case.target, **kw), ref.loss(), rtol=1e-13, atol=1e-14 * ref.loss_scale()
        )
        grad = bce_grad(case.x, case.target, **kw, grad_output=case.grad_output)
        g_ref, g_scale = ref.grad()
        _assert_close(grad, g_ref, rtol=1e-12, atol=1e-14 * g_scale)
        # Numerical differentiation needs p + h v inside (0, 1): interior elements only.
        interior = (case.x > 0.01) & (case.x < 0.99)
        v = np.where(interior, np.random.default_rng(seed).standard_normal(case.x.shape), 0.0)
        expected = float(np.sum(grad[interior] * v[interior]))
        assert expected == pytest.approx(
            _directional(ref, v, interior),
            rel=1e-10,
            abs=1e-13 * float(np.sum(np.abs(v[interior]) * g_scale[interior])),
        )


# --------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.exp(-np.logaddexp(0.0, -x))
    return out


@SETTINGS
@given(case=cases(logits=True, extremes=False))
def test_logits_equal_probabilities_of_sigmoid(case: Case) -> None:
    x = np.clip(case.x, -5.0, 5.0)  # away from saturation, where 1 - sigmoid(x) keeps its digits
    kw = {**case.kwargs(logits=False), "grad_output": case.grad_output}
    p = _sigmoid(x)
    scale, _ = bce_mag(p, case.target, **case.kwargs(logits=False))
    _assert_close(
        bcel(x, case.target, **case.kwargs(logits=False)),
        bce(p, case.target, **case.kwargs(logits=False)),
        rtol=1e-12,
        atol=1e-14 * scale,
    )
    # Chain rule: d/dx = d/dp * sigmoid'(x).
    chained = bce_grad(p, case.target, **kw) * p * (1 - p)
    _, g_mag = bcel_mag(x, case.target, **kw)
    _assert_close(bcel_grad(x, case.target, **kw), chained, rtol=1e-11, atol=1e-14 * g_mag)


@SETTINGS
@given(case=cases(logits=True))
def test_unit_weights_are_no_weights(case: Case) -> None:
    kw = {"reduction": case.reduction}
    ones, q1 = np.ones(case.x.shape[-1:]), np.ones(1)
    for f in (bcel, bcel_grad):
        plain = f(case.x, case.target, **kw)
        np.testing.assert_array_equal(f(case.x, case.target, weight=ones, **kw), plain)
        np.testing.assert_array_equal(f(case.x, case.target, pos_weight=q1, **kw), plain)
    c = case.x.shape[1] if case.x.ndim >= 2 else 1
    np.testing.assert_array_equal(
        bcel(case.x, case.target, pos_weight=np.ones(c), **kw), bcel(case.x, case.target, **kw)
    )


def _flippable(a: np.ndarray) -> np.ndarray:
    """a where 1 - (1 - a) == a (not at 1e-30, where 1 - a rounds to 1), else 0.5."""
    out: np.ndarray = np.where(1.0 - (1.0 - a) == a, a, 0.5)
    return out


@SETTINGS
@given(case=cases(logits=True))
def test_symmetry_logits(case: Case) -> None:
    # l(x, t) = l(-x, 1 - t) and the gradient changes sign (without pos_weight).
    kw = {"weight": case.weight, "reduction": case.reduction}
    t = _flippable(case.target)
    scale, g_scale = bcel_mag(case.x, t, **kw, grad_output=case.grad_output)
    _assert_close(
        bcel(-case.x, 1.0 - t, **kw), bcel(case.x, t, **kw), rtol=1e-14, atol=1e-15 * scale
    )
    g = {"grad_output": case.grad_output}
    _assert_close(
        bcel_grad(-case.x, 1.0 - t, **kw, **g),
        -bcel_grad(case.x, t, **kw, **g),
        rtol=1e-14,
        atol=1e-15 * g_scale,
    )


@SETTINGS
@given(case=cases(logits=False))
def test_symmetry_probabilities(case: Case) -> None:
    kw = {"weight": case.weight, "reduction": case.reduction}
    p, t = _flippable(case.x), _flippable(case.target)
    scale, _ = bce_mag(p, t, **kw)
    _assert_close(
        bce(1.0 - p, 1.0 - t, **kw),
        bce(p, t, **kw),
        rtol=1e-13,
        atol=1e-15 * scale,
    )


@SETTINGS
@given(case=cases(logits=True), logits=st.booleans())
def test_reduction_relations(case: Case, logits: bool) -> None:
    f, fg = (bcel, bcel_grad) if logits else (bce, bce_grad)
    x = case.x if logits else _sigmoid(case.x)
    kw: dict[str, Any] = {"weight": case.weight}
    if logits:
        kw["pos_weight"] = case.pos_weight
    none = f(x, case.target, reduction="none", **kw)
    total, mean = (
        f(x, case.target, reduction="sum", **kw),
        f(x, case.target, reduction="mean", **kw),
    )
    assert none.shape == x.shape and total.shape == mean.shape == ()
    if np.isfinite(none).all():
        np.testing.assert_allclose(total, math.fsum(none.ravel()), rtol=1e-12, atol=1e-300)
    else:  # inf, or inf - inf = NaN
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(total, np.sum(none))
    np.testing.assert_allclose(total, mean * x.size, rtol=1e-14)
    g = np.float64(case.grad_output.ravel()[0]) if case.grad_output.size else np.float64(1.0)
    np.testing.assert_allclose(
        fg(x, case.target, reduction="mean", grad_output=g, **kw),
        fg(x, case.target, reduction="none", grad_output=np.full(x.shape, g / x.size), **kw),
        rtol=1e-15,
    )


@SETTINGS
@given(case=cases(logits=True))
def test_pos_weight_class_axis_is_last_axis_after_moving_it(case: Case) -> None:
    if case.x.ndim < 3 or case.pos_weight is None:
        return
    kw = {"pos_weight": case.pos_weight, "reduction": "none"}
    x, t = np.moveaxis(case.x, 1, -1), np.moveaxis(case.target, 1, -1)
    np.testing.assert_array_equal(
        np.moveaxis(bcel(x, t, **kw, choices={"pos_weight_axis": "last"}), -1, 1),
        bcel(case.x, case.target, **kw),
    )


@SETTINGS
@given(case=cases(logits=True))
def test_canonical_choices_change_nothing(case: Case) -> None:
    kw = case.kwargs(logits=True)
    canon = canonical_choices(B.BCE_LOGITS)
    np.testing.assert_array_equal(
        bcel(case.x, case.target, **kw, choices=canon), bcel(case.x, case.target, **kw)
    )
    p = _sigmoid(case.x)
    kw = case.kwargs(logits=False)
    np.testing.assert_array_equal(
        bce_grad(p, case.target, **kw, choices=canonical_choices(B.BCE)),
        bce_grad(p, case.target, **kw),
    )


# --------------------------------------------------------------------------------------------
# Magnitudes
# --------------------------------------------------------------------------------------------


def _float32_logits(case: Case, form: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-element loss and gradient in float32, written as frameworks write them."""
    f = np.float32
    x, t = case.x.astype(f), case.target.astype(f)
    w = np.ones_like(x) if case.weight is None else np.broadcast_to(case.weight.astype(f), x.shape)
    q = _class_view(case).astype(f)
    with np.errstate(over="ignore", invalid="ignore"):
        if form == "torch":  # (1 - t) x + (1 + (q - 1) t) (max(-x, 0) + log1p(exp(-|x|)))
            lw = f(1) + (q - f(1)) * t
            loss = (f(1) - t) * x + lw * (np.maximum(-x, f(0)) + np.log1p(np.exp(-np.abs(x))))
            sig = f(1) / (f(1) + np.exp(-x))
            grad = sig * (q * t + f(1) - t) - q * t
        else:  # optax: -q t log_sigmoid(x) - (1 - t) log_sigmoid(-x)
            ls, lns = -np.logaddexp(f(0), -x), -np.logaddexp(f(0), x)
            loss = -q * t * ls - (f(1) - t) * lns
            grad = (f(1) - t) * np.exp(-np.logaddexp(f(0), -x)) - q * t * np.exp(lns)
    return (w * loss).astype(np.float64), (w * grad).astype(np.float64)


@SETTINGS
@given(case=cases(logits=True), form=st.sampled_from(["torch", "optax"]))
def test_logits_magnitude_bounds_float32_error(case: Case, form: str) -> None:
    kw = {**case.kwargs(logits=True), "reduction": "none"}
    loss = bcel(case.x, case.target, **kw)
    grad = bcel_grad(case.x, case.target, **kw)
    loss_mag, grad_mag = bcel_mag(case.x, case.target, **kw)
    assert loss_mag.shape == loss.shape and grad_mag.shape == grad.shape
    assert np.all(loss_mag >= np.abs(loss)) and np.all(grad_mag >= np.abs(grad))
    loss32, grad32 = _float32_logits(case, form)
    assert np.all(np.abs(loss32 - loss) <= 8 * EPS32 * loss_mag + TINY32)
    assert np.all(np.abs(grad32 - grad) <= 8 * EPS32 * grad_mag + TINY32)


@SETTINGS
@given(case=cases(logits=False))
def test_probabilities_magnitude_bounds_float32_error(case: Case) -> None:
    kw = {"weight": case.weight, "reduction": "none"}
    p = case.x.astype(np.float32).astype(np.float64)  # the float32 forms see these values
    finite = (p > 0) & (p < 1)  # the float32 forms below have no limit rules at the edges
    loss = bce(p, case.target, **kw)
    grad = bce_grad(p, case.target, **kw)
    loss_mag, grad_mag = bce_mag(p, case.target, **kw)
    assert np.all(loss_mag[~np.isnan(loss)] >= np.abs(loss[~np.isnan(loss)]))
    f = np.float32
    p32, t32 = p.astype(f), case.target.astype(f)
    w32 = (
        np.ones_like(p32)
        if case.weight is None
        else np.broadcast_to(case.weight.astype(f), p.shape)
    )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Keras: log(1 - p), not log1p; torch's backward: (p - t) / (p (1 - p)).
        loss32 = -w32 * (t32 * np.log(p32) + (f(1) - t32) * np.log(f(1) - p32))
        grad32 = w32 * (p32 - t32) / (p32 * (f(1) - p32))
    ok32 = finite & (p.astype(f) > 0) & (p.astype(f) < 1)
    with np.errstate(invalid="ignore"):
        d_loss = np.abs(loss32.astype(np.float64) - loss)
        d_grad = np.abs(grad32.astype(np.float64) - grad)
    assert np.all((d_loss <= 8 * EPS32 * loss_mag + TINY32)[ok32])
    # (p - t) / (p (1 - p)) overflows float32 where p (1 - p) is subnormal: compare elsewhere.
    normal = ok32 & (p * (1 - p) > TINY32 / EPS32)
    assert np.all((d_grad <= 8 * EPS32 * grad_mag + TINY32)[normal])


def test_magnitude_matches_the_stated_formula() -> None:
    x, t, w, q = 2.0, 0.25, 1.5, 3.0
    loss_mag, grad_mag = bcel_mag(
        [x], [t], weight=[w], pos_weight=[q], reduction="none", grad_output=[0.5]
    )
    sp = math.log1p(math.exp(-x))  # softplus(-x)
    a1, a0 = w * q * t, w * (1 - t)
    assert loss_mag[0] == pytest.approx(a1 * (sp + x + 1) + a0 * (sp + x + x + 1), rel=1e-15)
    sig = 1 / (1 + math.exp(-x))
    assert grad_mag[0] == pytest.approx(0.5 * ((a0 + a1) * sig * (1 + sp) + a1), rel=1e-15)
    loss_mag, grad_mag = bce_mag([0.25], [t], weight=[w], reduction="mean")
    assert float(loss_mag) == pytest.approx(
        w * t * (-math.log(0.25) + 1) + w * (1 - t) * (-math.log(0.75) + 1), rel=1e-15
    )
    assert grad_mag[0] == pytest.approx(w * t / 0.25 + w * (1 - t) / 0.75, rel=1e-15)
    # Zero-coefficient terms contribute nothing, also at an infinite log.
    loss_mag, grad_mag = bcel_mag([-INF, INF], [0.0, 1.0], reduction="none")
    np.testing.assert_array_equal(loss_mag, [1.0, 1.0])
    np.testing.assert_array_equal(grad_mag, [0.0, 2.0])
    np.testing.assert_array_equal(bce_mag([0.0], [0.0], reduction="none")[0], [1.0])


def test_clip_magnitude_allows_the_float32_bound() -> None:
    # In float32 Keras' upper bound 1 - 1e-7 rounds to 1 - 2^-23: loss 15.942385 at p=1, t=0
    # (measured), not 16.118. The clip choice's magnitude covers that rounding.
    c = {"log_clamp": "clip_1e-7"}
    want = float(bce(np.array([1.0]), np.array([0.0]), choices=c))
    mag, _ = bce_mag(np.array([1.0]), np.array([0.0]), choices=c)
    assert abs(15.942385 - want) <= 8 * EPS32 * float(mag)


# --------------------------------------------------------------------------------------------
# Arguments and options
# --------------------------------------------------------------------------------------------

X = np.zeros((2, 3))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bce(X, np.zeros((2, 4))), r"same shape. Received: input.shape=\(2, 3\), target"),
        (lambda: bce(X - 0.5, X), r"probabilities in \[0, 1\]. Received: values \[-0.5\]"),
        (lambda: bce(X, X, weight=np.ones(2)), r"broadcast to the input's shape \(2, 3\)"),
        (lambda: bce(X, X, weight=np.ones((1, 2, 3))), r"Received: weight.shape=\(1, 2, 3\)"),
        (lambda: bcel(X, X, pos_weight=np.ones(2)), r"pos_weight.shape=\(2,\)"),
        (lambda: bcel(X, X, pos_weight=np.ones((3, 1))), r"pos_weight.shape=\(3, 1\)"),
        (lambda: bcel(X, X, reduction="avg"), r"one of 'none', 'mean', 'sum'"),
        (lambda: bcel(X, X, choices={"log_clamp": "-100"}), r"has no semantic option 'log_clamp'"),
        (lambda: bce(X, X, choices={"log_clamp": "-50"}), r"no choice '-50'"),
        (lambda: bcel_grad(X, X, grad_output=np.ones(2)), r"grad_output.shape=\(2,\)"),
        (lambda: bcel(np.zeros(3), np.zeros(3), choices={"axis_mean": "class"}), r"axis_mean"),
        (lambda: bce(X.astype(str), X), r"real numeric array"),
    ],
)
def test_argument_errors(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_nan_propagates_and_clip_accepts_any_probability() -> None:
    assert np.isnan(_none(bce, [np.nan], [1.0])).all()  # torch and paddle raise instead
    assert np.isnan(_none(bcel, [np.nan], [1.0])).all()
    assert np.isnan(_none(bcel, [1.0], [np.nan])).all()
    assert np.isnan(_none(bcel, [1.0], [1.0], weight=[np.nan])).all()
    assert np.isnan(_none(bcel_grad, [np.nan], [1.0])).all()
    # Targets outside [0, 1] have a value (the formula gives one), as for cross-entropy.
    assert _none(bcel, [100.0], [1.5])[0] == pytest.approx(-50.0, rel=1e-15)
    assert _none(bce, [1.1], [1.0], choices={"log_clamp": "clip_1e-7"})[0] > 0


def test_scalar_input() -> None:
    loss = bcel(np.float64(0.0), np.float64(1.0), pos_weight=[2.0], reduction="none")
    assert loss.shape == () and float(loss) == pytest.approx(2 * math.log(2), rel=1e-15)
    assert bce_grad(0.5, 1.0, reduction="none").shape == ()


def test_option_table() -> None:
    names = [o.name for o in OPTIONS]
    assert len(set(names)) == len(names) and not set(names) & set(SHARED_OPTIONS)
    for o in OPTIONS:
        # binary options; a few are shared by losses built on BCE (the focal loss)
        assert o.canonical in o.choices and o.losses & {B.BCE, B.BCE_LOGITS}
        assert all(o.choices.values())
    assert canonical_choices(B.BCE) == {
        "log_clamp": "none",
        "prob_grad": "exact",
        "mean_denominator": "elements",
        "axis_mean": "none",
        "zero_log_zero": "zero",
        "empty_mean": "nan",
        "precision": "case",
    }
    assert set(canonical_choices(B.BCE_LOGITS)) == {
        "pos_weight_axis",
        "infinite_logit",
        "mean_denominator",
        "axis_mean",
        "zero_log_zero",
        "empty_mean",
        "precision",
    }


# One hand example per loss on which every computational alternative changes the loss or the
# gradient: a deliberately wrong definition is always visible.
_P = np.array([[0.0, 1.0, 1e-30, 0.5], [0.2, 0.0, 1.0, 0.7], [1.0, 0.9, 0.0, 0.3]])
_TP = np.array([[1.0, 0.0, 0.0, 0.3], [1.0, 0.0, 1.0, 0.0], [0.0, 0.5, 1.0, 1.0]])
_X = np.array([[[-INF, 0.5], [INF, -2.0], [3.0, 0.0]], [[1.0, -1.0], [2.0, 4.0], [-3.0, 0.5]]])
_TX = np.array([[[0.0, 1.0], [1.0, 0.2], [0.0, 1.0]], [[1.0, 0.0], [0.5, 1.0], [0.3, 0.0]]])


@pytest.mark.parametrize(
    ("loss", "option", "choice"),
    [
        (o_loss, o.name, choice)
        for o in OPTIONS
        for o_loss in sorted(o.losses)
        for choice in o.choices
        if choice != o.canonical
    ]
    + [
        (o_loss, name, choices[1])
        for name, choices in SHARED_OPTIONS.items()
        if name != "precision"
        for o_loss in (B.BCE, B.BCE_LOGITS)
    ],
)
def test_every_alternative_is_visible(loss: str, option: str, choice: str) -> None:
    if loss == B.BCE:
        args: tuple[np.ndarray, ...] = (_P, _TP)
        kw: dict[str, Any] = {"weight": np.array([1.0, 0.0, 2.0, 0.5])}
        f = binary_cross_entropy_outputs
    else:
        args = (_X, _TX)
        kw = {"weight": np.array([1.0, 0.0]), "pos_weight": np.array([2.0, 3.0, 0.5])}
        f = binary_cross_entropy_with_logits_outputs
    if choice == "relu_form":  # defined without pos_weight
        kw.pop("pos_weight")
    if option == "empty_mean":
        args = tuple(a[:0] for a in args)
        kw = {}
    if option == "pos_weight_axis":
        # Length 2 = input.shape[-1], C = 3: defined only under the alternative.
        kw["pos_weight"] = np.array([2.0, 3.0])
        with pytest.raises(ValueError):
            f(*args, **kw)
        assert f(*args, **kw, choices={option: choice})["loss"].shape == ()
        return
    for reduction in ("mean", "sum", "none"):
        canon = f(*args, **kw, reduction=reduction)
        alt = f(*args, **kw, reduction=reduction, choices={option: choice})
        differs = [
            canon[k].shape != alt[k].shape or not np.array_equal(canon[k], alt[k], equal_nan=True)
            for k in ("loss", "grad")
        ]
        if any(differs):
            return
    pytest.fail(f"{option}={choice} gives the canonical numbers on the hand example")

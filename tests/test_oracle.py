"""Tests of the float64 oracle (conformance.oracle).

Sections: golden numbers from the seed documents; an independent 50-digit mpmath computation
on hypothesis-generated cases; invariants; magnitudes (with a float32 evaluation); argument
errors and the registry. Nothing here imports a deep-learning framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conformance import oracle
from conformance.oracle import (
    LOSSES,
    cross_entropy,
    cross_entropy_grad,
    cross_entropy_magnitude,
    log_softmax,
    log_softmax_grad,
    nll_loss,
    nll_loss_grad,
    nll_loss_magnitude,
    softmax,
    softmax_grad,
)

SETTINGS = settings(max_examples=60, deadline=None)
EPS32 = float(np.finfo(np.float32).eps)
# Results below float32's smallest normal number are subnormal (fewer digits) or flushed to
# zero, so error bounds get this absolute floor, as in conformance/compare.py.
TINY32 = float(np.finfo(np.float32).tiny)


# --------------------------------------------------------------------------------------------
# Golden numbers from the seed documents (/work/shared/seeds)
# --------------------------------------------------------------------------------------------


def test_seed_weight_ones_ignore_255() -> None:
    # seeds/002: loss1 = ln 3, loss2 = ln(2e + 1), mean over 2 -> tensor(1.4803)
    x = np.array([0, 1, 0, 0, 0, 1], dtype=np.float32).reshape(1, 3, 2)
    t = np.array([[0, 1]])
    loss = cross_entropy(x, t, weight=np.ones(3, np.float32), ignore_index=255)
    assert loss.shape == () and loss.dtype == np.float64
    assert round(float(loss), 4) == 1.4803


def test_seed_weighted_mean_divides_by_weight_sum() -> None:
    # seeds/002: (loss1 * 1 + loss2 * 2) / (1 + 2) = 1.6075, not / 2 = 2.4113
    x = np.array([0, 1, 0, 0, 0, 1], dtype=np.float32).reshape(1, 3, 2)
    t = np.array([[0, 1]])
    loss = cross_entropy(x, t, weight=[1.0, 2.0, 3.0], ignore_index=255)
    assert round(float(loss), 4) == 1.6075
    l1, l2 = math.log(3), math.log(2 * math.e + 1)  # target class score is 0 in both
    assert float(loss) == pytest.approx((l1 + 2 * l2) / 3, rel=1e-15)


def test_seed_weighted_mean_four_positions() -> None:
    # seeds/002: (loss1 * 1 + loss2 * 2 + loss3 * 3 + loss4 * 3) / 9 = 1.5472
    x = np.array([0, 1, 2, 0, 0, 0, 0, 0, 0, 1, 0, 0.5], dtype=np.float32).reshape(1, 3, 4)
    t = np.array([[0, 1, 2, 2]])
    assert round(float(cross_entropy(x, t, weight=[1.0, 2.0, 3.0])), 4) == 1.5472


def test_seed_logits_batch_of_two() -> None:
    # seeds/001: nn.CrossEntropyLoss()(logits, [1, 2]).item() == 0.9076058864593506 (float32)
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    loss = float(cross_entropy(x, np.array([1, 2])))
    assert loss == pytest.approx(0.9076058864593506, abs=1e-7)
    # The exact value: ln(1 + e + e^2) - (1 + 2) / 2 ... written out per row.
    exact = (math.log(1 + math.e + math.e**2) - 1 + math.log(1 + math.e + math.e**2) - 2) / 2
    assert loss == pytest.approx(exact, rel=1e-15)


def test_seed_softmax_rows() -> None:
    # seeds/001: torch.softmax(logits, dim=1)
    p = softmax(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32), axis=1)
    np.testing.assert_array_equal(np.round(p, 4), [[0.0900, 0.2447, 0.6652]] * 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)


def test_seed_segmentation_table() -> None:
    # seeds/000: per-pixel softmax probabilities (channel 0, channel 1) and labels of a 2x2 image.
    probs = {  # (row, col): (p0, p1, label)
        (0, 0): (0.4975, 0.5025, 1),  # top-left
        (1, 0): (0.4256, 0.5744, 0),  # bottom-left
        (0, 1): (0.5050, 0.4950, 0),  # top-right
        (1, 1): (0.8348, 0.1652, 1),  # bottom-right
    }
    x = np.zeros((1, 2, 2, 2))
    t = np.zeros((1, 2, 2), dtype=np.int64)
    chosen = np.zeros((1, 2, 2))
    for (r, c), (p0, p1, label) in probs.items():
        x[0, :, r, c] = np.log([p0, p1])
        t[0, r, c] = label
        chosen[0, r, c] = (p0, p1)[label]
    np.testing.assert_allclose(softmax(x)[0, 1], np.exp(x[0, 1]), rtol=1e-12)
    per_pixel = cross_entropy(x, t, reduction="none")
    assert per_pixel.shape == (1, 2, 2)
    np.testing.assert_allclose(per_pixel, -np.log(chosen), rtol=1e-12)
    expected = -(math.log(0.5025) + math.log(0.4256) + math.log(0.5050) + math.log(0.1652)) / 4
    assert float(cross_entropy(x, t)) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Random cases
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    x: np.ndarray  # float64 holding float32-representable values, (N, C, d1..dk)
    target: np.ndarray  # int64 indices (N, d1..dk) or float64 probabilities (N, C, d1..dk)
    weight: np.ndarray | None
    ignore_index: int
    reduction: str
    label_smoothing: float
    grad_output: np.ndarray  # loss-shaped

    @property
    def kind(self) -> str:
        return "index" if self.target.dtype.kind == "i" else "probs"

    def kwargs(self, *, smoothing: bool = True) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "weight": self.weight,
            "ignore_index": self.ignore_index,
            "reduction": self.reduction,
        }
        if smoothing:
            kw["label_smoothing"] = self.label_smoothing
        return kw


def f32(draw: st.DrawFn, shape: tuple[int, ...], lo: float, hi: float) -> np.ndarray:
    """A float32-representable float64 array."""
    elements = st.floats(lo, hi, width=32, allow_subnormal=False)
    return draw(arrays(np.float32, shape, elements=elements)).astype(np.float64)


@st.composite
def cases(
    draw: st.DrawFn,
    kinds: tuple[str, ...] = ("index", "probs"),
    smoothing: bool = True,
    reductions: tuple[str, ...] = ("none", "mean", "sum"),
) -> Case:
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    spatial = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    shape, elem_shape = (n, c, *spatial), (n, *spatial)
    bound = draw(st.sampled_from([5.0, 30.0, 200.0]))
    x = f32(draw, shape, -bound, bound)
    kind = draw(st.sampled_from(kinds))
    ignore_index = draw(st.sampled_from([-100, 255, 0, c - 1]))
    if kind == "index":
        labels = st.one_of(st.integers(0, c - 1), st.just(ignore_index))
        target = draw(arrays(np.int64, elem_shape, elements=labels))
    else:
        target = f32(draw, shape, 0.0, 1.0)
        if draw(st.booleans()):  # normalised distributions as well as arbitrary ones
            total = target.sum(axis=1, keepdims=True)
            target = np.where(total > 0, target / np.where(total > 0, total, 1), 1.0 / c)
            target = target.astype(np.float32).astype(np.float64)
    weight = f32(draw, (c,), 0.125, 4.0) if draw(st.booleans()) else None
    reduction = draw(st.sampled_from(reductions))
    eps = 0.0
    if smoothing:
        eps = draw(st.one_of(st.sampled_from([0.0, 0.1, 1.0]), st.floats(0.0, 1.0, width=32)))
    g_shape = elem_shape if reduction == "none" else ()
    g = f32(draw, g_shape, -2.0, 2.0)
    return Case(x, target, weight, ignore_index, reduction, float(eps), g)


# --------------------------------------------------------------------------------------------
# Independent 50-digit mpmath reference (written from the definition, no oracle helpers)
# --------------------------------------------------------------------------------------------

DPS = 50


def _dps(x: np.ndarray) -> int:
    """50 digits plus those that lse - x_c loses to cancellation when exp(x_c - lse) is tiny.

    lse = max + log(1 + tiny) keeps tiny's digits only down to 10^-dps; a loss of e^-400 (span
    400 between logits) needs ~174 digits of headroom to come out with 50 correct ones.
    """
    span = float(np.ptp(x)) if x.size else 0.0
    return DPS + int(span * math.log10(math.e)) + 10


def _rows(a: np.ndarray) -> np.ndarray:
    """(N, C, d1..dk) -> (N*d1*..*dk, C): one row of class scores per element."""
    return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def _unrows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    n, c, *spatial = shape
    return np.moveaxis(rows.reshape(n, *spatial, c), -1, 1)


@dataclass
class MpCE:
    """Cross-entropy of one case in mpmath: per-row coefficients a_rc and the denominator."""

    x: list[list[Any]]  # rows of mpf scores
    a: list[list[Any]]  # a_rc = w_c t'_rc (0 rows where ignored)
    denom: Any  # D (mpf)
    g: list[Any]  # upstream gradient per row
    reduction: str
    elem_shape: tuple[int, ...]  # (N, d1..dk)

    @classmethod
    def build(cls, case: Case, *, nll: bool = False) -> MpCE:
        xr = _rows(case.x)
        rows, c = xr.shape
        w = [mp.mpf(1)] * c if case.weight is None else [mp.mpf(float(v)) for v in case.weight]
        eps = mp.mpf(case.label_smoothing) if not nll else mp.mpf(0)
        a: list[list[Any]] = []
        if case.kind == "index":
            y = case.target.reshape(-1)
            denom = mp.mpf(0)
            for r in range(rows):
                if y[r] == case.ignore_index:
                    a.append([mp.mpf(0)] * c)
                    continue
                onehot = [mp.mpf(1 if k == y[r] else 0) for k in range(c)]
                a.append([w[k] * ((1 - eps) * onehot[k] + eps / c) for k in range(c)])
                denom += w[int(y[r])]
        else:
            tr = _rows(case.target)
            a = [
                [w[k] * ((1 - eps) * mp.mpf(tr[r, k]) + eps / c) for k in range(c)]
                for r in range(rows)
            ]
            denom = mp.mpf(rows)
        g = case.grad_output.reshape(-1) if case.reduction == "none" else [case.grad_output] * rows
        xs = [[mp.mpf(float(v)) for v in row] for row in xr]
        gs = [mp.mpf(float(v)) for v in np.ravel(g)]
        elem_shape = (case.x.shape[0], *case.x.shape[2:])
        return cls(xs, a, denom, gs, case.reduction, elem_shape)

    def scale(self) -> Any:
        """d(reduced)/d(l_r) factor; the gradient of an undefined mean is 0."""
        if self.reduction != "mean":
            return mp.mpf(1)
        return mp.mpf(0) if self.denom == 0 else 1 / self.denom

    def per_row(self, x: list[list[Any]], *, nll: bool = False) -> list[Any]:
        out = []
        for xs, a in zip(x, self.a, strict=True):
            if nll:  # input already log-probabilities: l = -sum_c a_c x_c
                out.append(-mp.fsum(ac * xc for ac, xc in zip(a, xs, strict=True)))
            else:  # no max shift needed at 50 digits and mpmath's exponent range
                lse = mp.log(mp.fsum(mp.exp(v) for v in xs))
                out.append(mp.fsum(ac * (lse - xc) for ac, xc in zip(a, xs, strict=True)))
        return out

    def loss(self, *, nll: bool = False) -> np.ndarray | float:
        per = self.per_row(self.x, nll=nll)
        if self.reduction == "none":
            return np.array([float(v) for v in per]).reshape(self.elem_shape)
        total = mp.fsum(per)
        if self.reduction == "sum":
            return float(total)
        return math.nan if self.denom == 0 else float(total / self.denom)

    def objective(self, x: list[list[Any]], *, nll: bool = False) -> Any:
        """sum(loss * grad_output) as a function of the scores."""
        per = self.per_row(x, nll=nll)
        return self.scale() * mp.fsum(gr * lr for gr, lr in zip(self.g, per, strict=True))

    def grad(self, *, nll: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Analytic gradient s_r sum_c a_rc (p_rk - [c == k]) and its error scale."""
        grads, scales = [], []
        for xs, a, g in zip(self.x, self.a, self.g, strict=True):
            s = g * self.scale()
            if nll:
                grads.append([float(-s * ak) for ak in a])
                scales.append([float(abs(s * ak)) for ak in a])
                continue
            z = mp.fsum(mp.exp(v) for v in xs)
            p = [mp.exp(v) / z for v in xs]
            jac = [[pk - (1 if c == k else 0) for k, pk in enumerate(p)] for c in range(len(a))]
            grads.append(
                [float(s * mp.fsum(a[c] * jac[c][k] for c in range(len(a)))) for k in range(len(p))]
            )
            total_a = mp.fsum(abs(v) for v in a)
            scales.append(
                [float(abs(s) * (total_a * pk + abs(ak))) for pk, ak in zip(p, a, strict=True)]
            )
        return np.array(grads), np.array(scales)


def _assert_close(actual: np.ndarray, expected: Any, *, rtol: float, atol: Any = 0.0) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    assert actual.dtype == np.float64
    assert actual.shape == expected.shape
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    ok = np.isnan(expected) | (np.abs(actual - expected) <= rtol * np.abs(expected) + atol)
    assert ok.all(), f"max abs diff {np.nanmax(np.abs(actual - expected))}\n{actual}\n{expected}"


def _directional(obj: Any, x: list[list[Any]], v: np.ndarray) -> float:
    """d/dt obj(x + t v) at t = 0 by mpmath's numerical differentiation."""

    def along(t: Any) -> Any:
        return obj(
            [
                [xc + t * float(vc) for xc, vc in zip(row, vrow, strict=True)]
                for row, vrow in zip(x, v, strict=True)
            ]
        )

    return float(mp.diff(along, 0))


@SETTINGS
@given(case=cases(), seed=st.integers(0, 2**32 - 1))
def test_cross_entropy_matches_mpmath(case: Case, seed: int) -> None:
    with mp.workdps(_dps(case.x)):
        ref = MpCE.build(case)
        loss = cross_entropy(case.x, case.target, **case.kwargs())
        _assert_close(loss, ref.loss(), rtol=1e-13, atol=1e-30)

        grad = cross_entropy_grad(
            case.x, case.target, **case.kwargs(), grad_output=case.grad_output
        )
        g_ref, g_scale = ref.grad()
        _assert_close(_rows(grad), g_ref, rtol=1e-12, atol=1e-14 * g_scale)

        # The analytic mpmath formula above is itself checked by differentiating numerically.
        v = np.random.default_rng(seed).standard_normal(grad.shape)
        dd = _directional(ref.objective, ref.x, _rows(v))
        assert float(np.sum(grad * v)) == pytest.approx(
            dd, rel=1e-10, abs=1e-13 * float(np.sum(np.abs(v) * _unrows(g_scale, v.shape)))
        )


@SETTINGS
@given(case=cases(kinds=("index",), smoothing=False), seed=st.integers(0, 2**32 - 1))
def test_nll_loss_matches_mpmath(case: Case, seed: int) -> None:
    with mp.workdps(DPS):
        ref = MpCE.build(case, nll=True)
        kw = case.kwargs(smoothing=False)
        _assert_close(nll_loss(case.x, case.target, **kw), ref.loss(nll=True), rtol=1e-14)
        grad = nll_loss_grad(case.x, case.target, **kw, grad_output=case.grad_output)
        g_ref, _ = ref.grad(nll=True)
        _assert_close(_rows(grad), g_ref, rtol=1e-14)
        v = np.random.default_rng(seed).standard_normal(grad.shape)
        dd = _directional(lambda x: ref.objective(x, nll=True), ref.x, _rows(v))
        assert float(np.sum(grad * v)) == pytest.approx(dd, rel=1e-10, abs=1e-14)


@SETTINGS
@given(
    x=st.integers(1, 3).flatmap(
        lambda nd: arrays(
            np.float32,
            st.tuples(*[st.integers(1, 4)] * nd),
            elements=st.floats(-100, 100, width=32),
        )
    ),
    data=st.data(),
)
def test_softmax_family_matches_mpmath(x: np.ndarray, data: st.DataObject) -> None:
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    g = data.draw(arrays(np.float32, x.shape, elements=st.floats(-2, 2, width=32)))
    xr = np.moveaxis(x.astype(np.float64), axis, -1).reshape(-1, x.shape[axis])
    gr = np.moveaxis(g.astype(np.float64), axis, -1).reshape(-1, x.shape[axis])
    with mp.workdps(_dps(x)):
        p_ref, lp_ref, sg_ref, sg_scale, lg_ref, lg_scale = [], [], [], [], [], []
        for row, grow in zip(xr, gr, strict=True):
            xs = [mp.mpf(float(v)) for v in row]
            gs = [mp.mpf(float(v)) for v in grow]
            z = mp.fsum(mp.exp(v) for v in xs)
            p = [mp.exp(v) / z for v in xs]
            p_ref.append([float(v) for v in p])
            lp_ref.append([float(v - mp.log(z)) for v in xs])
            # Full Jacobians: d p_c / d x_k = p_c ([c == k] - p_k),
            # d log p_c / d x_k = [c == k] - p_k
            kd = range(len(xs))
            sg_ref.append(
                [float(mp.fsum(gs[c] * p[c] * ((c == k) - p[k]) for c in kd)) for k in kd]
            )
            sg_scale.append(
                [float(p[k] * (abs(gs[k]) + mp.fsum(abs(gs[c]) * p[c] for c in kd))) for k in kd]
            )
            lg_ref.append([float(mp.fsum(gs[c] * ((c == k) - p[k]) for c in kd)) for k in kd])
            lg_scale.append([float(abs(gs[k]) + p[k] * mp.fsum(abs(v) for v in gs)) for k in kd])

    def rows(a: np.ndarray) -> np.ndarray:
        return np.moveaxis(a, axis, -1).reshape(-1, x.shape[axis])

    _assert_close(rows(softmax(x, axis=axis)), p_ref, rtol=1e-14, atol=1e-300)
    _assert_close(rows(log_softmax(x, axis=axis)), lp_ref, rtol=1e-14, atol=1e-40)
    _assert_close(
        rows(softmax_grad(x, g, axis=axis)), sg_ref, rtol=1e-12, atol=1e-15 * np.array(sg_scale)
    )
    _assert_close(
        rows(log_softmax_grad(x, g, axis=axis)), lg_ref, rtol=1e-12, atol=1e-15 * np.array(lg_scale)
    )


# --------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------


def _onehot(target: np.ndarray, c: int) -> np.ndarray:
    return np.moveaxis(np.eye(c)[target], -1, 1)


def _ce_both(case: Case, **override: Any) -> tuple[np.ndarray, np.ndarray]:
    kw = {**case.kwargs(), "grad_output": case.grad_output, **override}
    grad_kw = dict(kw)
    value_kw = {k: v for k, v in kw.items() if k != "grad_output"}
    return cross_entropy(case.x, case.target, **value_kw), cross_entropy_grad(
        case.x, case.target, **grad_kw
    )


def _no_ignored(case: Case) -> Case:
    """The same case with every ignored position relabelled as class 0."""
    target = np.where(case.target == case.ignore_index, 0, case.target)
    return replace(case, target=target, ignore_index=-100)


@SETTINGS
@given(case=cases(kinds=("index",)))
def test_class_index_equals_onehot_probabilities(case: Case) -> None:
    case = _no_ignored(case)
    soft = replace(case, target=_onehot(case.target, case.x.shape[1]))
    # Same t' = (1 - eps) onehot + eps / C. 'mean' differs by design when weighted
    # (sum of target weights vs element count), so it is compared only without weights.
    if case.reduction == "mean" and case.weight is not None:
        case, soft = replace(case, weight=None), replace(soft, weight=None)
    for a, b in zip(_ce_both(case), _ce_both(soft), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-300)


@SETTINGS
@given(case=cases(kinds=("index",), reductions=("mean", "sum")))
def test_ignored_positions_equal_dropping_them(case: Case) -> None:
    x, t = _rows(case.x), case.target.reshape(-1)
    keep = t != case.ignore_index
    full = replace(case, x=x, target=t)
    sub = replace(case, x=x[keep], target=t[keep])
    loss_full, grad_full = _ce_both(full)
    loss_sub, grad_sub = _ce_both(sub)
    np.testing.assert_allclose(loss_full, loss_sub, rtol=1e-13)
    np.testing.assert_allclose(grad_full[keep], grad_sub, rtol=1e-13, atol=1e-300)
    assert np.all(grad_full[~keep] == 0)
    kw = case.kwargs(smoothing=False)
    np.testing.assert_allclose(nll_loss(x, t, **kw), nll_loss(x[keep], t[keep], **kw), rtol=1e-13)


@SETTINGS
@given(case=cases(reductions=("none", "sum")))
def test_smoothing_is_a_mixture_with_the_uniform_target(case: Case) -> None:
    # l(eps) = (1 - eps) l(0) + eps l(uniform target), because t' is affine in eps.
    eps = case.label_smoothing
    plain = _ce_both(case, label_smoothing=0.0)
    uniform = np.full_like(case.x, 1.0 / case.x.shape[1])
    if case.kind == "index":  # ignored elements take no part in the uniform term either
        valid = (case.target != case.ignore_index)[:, None]
        uniform = uniform * valid
    uni = _ce_both(replace(case, target=uniform), label_smoothing=0.0)
    for smoothed, p, u in zip(_ce_both(case), plain, uni, strict=True):
        np.testing.assert_allclose(smoothed, (1 - eps) * p + eps * u, rtol=1e-12, atol=1e-13)
    default = cross_entropy(case.x, case.target, **case.kwargs(smoothing=False))
    np.testing.assert_array_equal(default, plain[0])


@SETTINGS
@given(case=cases())
def test_class_axis_layout_does_not_matter(case: Case) -> None:
    # Elements as rows of a (M, C) problem: the spatial layout must not change anything.
    flat_t = case.target.reshape(-1) if case.kind == "index" else _rows(case.target)
    flat_g = case.grad_output.reshape(-1) if case.reduction == "none" else case.grad_output
    flat = replace(case, x=_rows(case.x), target=flat_t, grad_output=flat_g)
    (loss, grad), (loss_f, grad_f) = _ce_both(case), _ce_both(flat)
    np.testing.assert_allclose(loss, loss_f.reshape(loss.shape), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(grad, _unrows(grad_f, grad.shape), rtol=1e-13, atol=1e-300)
    last = np.moveaxis(case.x, 1, -1)
    np.testing.assert_array_equal(softmax(case.x), np.moveaxis(softmax(last, axis=-1), -1, 1))


def test_large_logits_are_finite_and_exact() -> None:
    x = np.array([[1000.0, 0.0, -1000.0], [1000.0, 999.0, -1000.0]])
    loss = cross_entropy(x, np.array([0, 1]), reduction="none")
    # e^-1000 is below the smallest double, so the exact losses round to 0 and 1 + log1p(e^-1)
    assert loss[0] == 0.0
    assert loss[1] == pytest.approx(1 + math.log1p(math.exp(-1)), rel=1e-15)
    assert float(cross_entropy(x[:1], np.array([2]))) == 2000.0
    np.testing.assert_array_equal(log_softmax(x[:1]), [[0.0, -1000.0, -2000.0]])
    grad = cross_entropy_grad(x, np.array([2, 1]), reduction="sum")
    assert np.isfinite(grad).all()
    np.testing.assert_array_equal(grad[0], [1.0, 0.0, -1.0])


@pytest.mark.parametrize("margin", [7.75, 13.125, 17.875, 30.0, 200.0])
def test_dominant_class_keeps_relative_accuracy(margin: float) -> None:
    # loss = log1p(e^-margin) and dloss/dx_y = -(1 - p_y) = -e^-m / (1 + e^-m) are tiny; the
    # naive log(1 + tiny) and p_y - 1 keep only ~16 - margin / 2.3 of their digits.
    x = np.array([[margin, 0.0]])
    tiny = math.exp(-margin)
    assert float(cross_entropy(x, np.array([0]))) == pytest.approx(math.log1p(tiny), rel=1e-15)
    g = cross_entropy_grad(x, np.array([0]))[0]
    np.testing.assert_allclose(g, [-tiny / (1 + tiny), tiny / (1 + tiny)], rtol=1e-15)
    np.testing.assert_allclose(log_softmax(x)[0, 0], -math.log1p(tiny), rtol=1e-15)
    sg = softmax_grad(x, np.array([[1.0, 0.0]]))[0]  # d p_0 = p_0 (1 - p_0) (dx_0 - dx_1)
    np.testing.assert_allclose(sg, [tiny / (1 + tiny) ** 2, -tiny / (1 + tiny) ** 2], rtol=1e-14)
    lg = log_softmax_grad(x, np.array([[1.0, 0.0]]))[0]  # d log p_0 = (1 - p_0)(dx_0 - dx_1)
    np.testing.assert_allclose(lg, [tiny / (1 + tiny), -tiny / (1 + tiny)], rtol=1e-15)


def test_all_ignored() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4, 2))
    t = np.full((3, 2), 7)
    for fn, grad_fn, extra in (
        (cross_entropy, cross_entropy_grad, {"label_smoothing": 0.2}),
        (nll_loss, nll_loss_grad, {}),
    ):
        kw: dict[str, Any] = {"weight": [1.0, 2.0, 3.0, 4.0], "ignore_index": 7, **extra}
        assert np.isnan(fn(x, t, **kw))  # 0 / 0
        np.testing.assert_array_equal(grad_fn(x, t, **kw), np.zeros_like(x))
        assert fn(x, t, **kw, reduction="sum") == 0.0
        np.testing.assert_array_equal(fn(x, t, **kw, reduction="none"), np.zeros((3, 2)))
        loss_mag, grad_mag = LOSSES[fn.__name__].magnitude(x, t, **kw)
        assert loss_mag == 0.0 and not grad_mag.any()


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_zero_total_target_weight_is_an_undefined_mean(eps: float) -> None:
    # Targets only in a zero-weight class: D = 0. NaN even when smoothing makes the sum > 0.
    x, t = np.array([[0.0, 1.0], [2.0, 0.5]]), np.array([0, 0])
    kw: dict[str, Any] = {"weight": [0.0, 1.0], "label_smoothing": eps}
    assert np.isnan(cross_entropy(x, t, **kw))
    np.testing.assert_array_equal(cross_entropy_grad(x, t, **kw), 0.0)
    total = float(cross_entropy(x, t, **kw, reduction="sum"))
    assert total > 0 if eps else total == 0.0


@pytest.mark.parametrize("dtype", ["float16", "float32", "bfloat16"])
def test_inputs_of_any_float_dtype_are_upcast(dtype: str) -> None:
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]]).astype(dtype)
    x64 = x.astype(np.float64)
    t = np.array([1, 2])
    probs = softmax(x64).astype(dtype)
    for fn in (cross_entropy, cross_entropy_grad):
        out = fn(x, t, weight=np.array([1.0, 2.0, 0.5]).astype(dtype))
        assert out.dtype == np.float64
        np.testing.assert_array_equal(out, fn(x64, t, weight=[1.0, 2.0, 0.5]))
        np.testing.assert_array_equal(fn(x, probs), fn(x64, probs.astype(np.float64)))


def test_ignored_elements_with_non_finite_scores_give_zero() -> None:
    x = np.array([[np.nan, 0.0], [np.inf, 0.0], [1.0, 2.0]])
    t = np.array([-100, -100, 1])
    ok = cross_entropy(x[2:], t[2:], reduction="sum")
    assert cross_entropy(x, t, reduction="sum") == ok
    np.testing.assert_array_equal(cross_entropy_grad(x, t)[:2], 0.0)
    assert np.isnan(cross_entropy(x, np.array([0, 1, 1]), reduction="none")[:2]).all()


@SETTINGS
@given(case=cases(kinds=("index",)))
def test_nll_of_log_softmax_is_cross_entropy(case: Case) -> None:
    kw = case.kwargs(smoothing=False)
    logp = log_softmax(case.x)
    ce = cross_entropy(case.x, case.target, **kw)
    np.testing.assert_allclose(nll_loss(logp, case.target, **kw), ce, rtol=1e-13, atol=1e-300)
    # Chain rule through log_softmax's VJP gives the fused gradient.
    g_logp = nll_loss_grad(logp, case.target, **kw, grad_output=case.grad_output)
    chained = log_softmax_grad(case.x, g_logp)
    fused = cross_entropy_grad(case.x, case.target, **kw, grad_output=case.grad_output)
    np.testing.assert_allclose(chained, fused, rtol=1e-9, atol=1e-15 * np.abs(g_logp).sum())


@SETTINGS
@given(
    x=arrays(np.float64, (3, 4), elements=st.floats(-30, 30)),
    g=arrays(np.float64, (3, 4), elements=st.floats(-2, 2)),
)
def test_log_softmax_grad_is_softmax_grad_of_log(x: np.ndarray, g: np.ndarray) -> None:
    # d log p = dp / p, so VJP_log_softmax(g) = VJP_softmax(g / p) wherever p is not tiny.
    p = softmax(x)
    if p.min() < 1e-100:
        return
    np.testing.assert_allclose(
        log_softmax_grad(x, g), softmax_grad(x, g / p), rtol=1e-9, atol=1e-12
    )


# --------------------------------------------------------------------------------------------
# Magnitudes
# --------------------------------------------------------------------------------------------


def _float32_cross_entropy(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """A plain float32 implementation, written the way frameworks do it (shifted lse)."""
    f = np.float32
    x = case.x.astype(f)
    c = x.shape[1]
    w = np.ones(c, f) if case.weight is None else case.weight.astype(f)
    wb = w.reshape((1, c) + (1,) * (x.ndim - 2))
    shifted = x - x.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    eps = f(case.label_smoothing)
    if case.kind == "index":
        valid = case.target != case.ignore_index
        t = np.where(valid, case.target, 0)
        onehot = _onehot(t, c).astype(f) * valid[:, None]
        a = wb * ((f(1) - eps) * onehot + (eps / f(c)) * valid[:, None].astype(f))
        denom = np.where(valid, w[t], f(0)).sum(dtype=f)
    else:
        a = wb * ((f(1) - eps) * case.target.astype(f) + eps / f(c))
        denom = f(case.target[:, 0].size)
    per = -(a * logp).sum(axis=1)
    g = case.grad_output.astype(f)
    if case.reduction == "none":
        loss, s = per, g
    elif case.reduction == "sum":
        loss, s = per.sum(dtype=f), np.broadcast_to(g, per.shape)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = per.sum(dtype=f) / denom
        s = np.broadcast_to(g / denom if denom != 0 else f(0), per.shape)
    grad = s[:, None] * (a.sum(axis=1, keepdims=True) * np.exp(logp) - a)
    return np.asarray(loss, np.float64), grad.astype(np.float64)


@SETTINGS
@given(case=cases())
def test_cross_entropy_magnitude_bounds_float32_error(case: Case) -> None:
    kw = {**case.kwargs(), "grad_output": case.grad_output}
    loss = cross_entropy(case.x, case.target, **case.kwargs())
    grad = cross_entropy_grad(case.x, case.target, **kw)
    loss_mag, grad_mag = cross_entropy_magnitude(case.x, case.target, **kw)
    assert loss_mag.shape == loss.shape and grad_mag.shape == grad.shape
    assert loss_mag.dtype == grad_mag.dtype == np.float64
    assert np.all(loss_mag >= np.abs(loss)) or np.isnan(loss).all()
    assert np.all(grad_mag >= np.abs(grad))
    loss32, grad32 = _float32_cross_entropy(case)
    finite = np.isfinite(loss)
    assert np.all(np.abs(loss32 - loss)[finite] <= 8 * EPS32 * loss_mag[finite] + TINY32)
    assert np.all(np.abs(grad32 - grad) <= 8 * EPS32 * grad_mag + TINY32)


@SETTINGS
@given(case=cases(kinds=("index",), smoothing=False))
def test_nll_magnitude_bounds_float32_error(case: Case) -> None:
    kw = {**case.kwargs(smoothing=False), "grad_output": case.grad_output}
    loss = nll_loss(case.x, case.target, **case.kwargs(smoothing=False))
    grad = nll_loss_grad(case.x, case.target, **kw)
    loss_mag, grad_mag = nll_loss_magnitude(case.x, case.target, **kw)
    assert loss_mag.shape == loss.shape and grad_mag.shape == grad.shape
    assert np.all(loss_mag >= np.abs(loss)) or np.isnan(loss).all()
    np.testing.assert_array_equal(grad_mag, np.abs(grad))
    # float32: l = -w_y x_y, reduced in float32
    f = np.float32
    valid = case.target != case.ignore_index
    t = np.where(valid, case.target, 0)
    w = np.ones(case.x.shape[1], f) if case.weight is None else case.weight.astype(f)
    w_y = np.where(valid, w[t], f(0))
    per = -w_y * np.take_along_axis(case.x.astype(f), t[:, None], axis=1)[:, 0]
    if case.reduction == "none":
        loss32 = per
    elif case.reduction == "sum":
        loss32 = per.sum(dtype=f)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            loss32 = per.sum(dtype=f) / w_y.sum(dtype=f)
    finite = np.isfinite(loss)
    assert np.all(
        np.abs(np.float64(loss32) - loss)[finite] <= 8 * EPS32 * loss_mag[finite] + TINY32
    )


def test_magnitude_matches_the_stated_formula() -> None:
    # One hand-checkable element: x = [0, 1, 0], y = 1, w = [1, 2, 3], no smoothing, 'none'.
    x = np.array([[0.0, 1.0, 0.0]])
    lse = math.log(2 + math.e)
    p = np.exp(x[0] - lse)
    loss_mag, grad_mag = cross_entropy_magnitude(
        x, np.array([1]), weight=[1.0, 2.0, 3.0], reduction="none", grad_output=[0.5]
    )
    assert loss_mag[0] == pytest.approx(2 * (lse + 1 + 1), rel=1e-15)
    expected = 0.5 * (2 * p * (1 + np.abs(x[0] - lse)) + np.array([0, 2, 0]))
    np.testing.assert_allclose(grad_mag[0], expected, rtol=1e-15)


# --------------------------------------------------------------------------------------------
# Arguments and registry
# --------------------------------------------------------------------------------------------

X = np.zeros((2, 3))
T = np.array([0, 2])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: cross_entropy(X, T, weight=[1.0, 2.0, 3.0, 4.0]),
            r"Argument `weight` must have length C=3. Received: weight.shape=\(4,\)",
        ),
        (
            lambda: cross_entropy(X, T, reduction="avg"),
            r"Argument `reduction` must be one of 'none', 'mean', 'sum'. Received: reduction='avg'",
        ),
        (lambda: cross_entropy(X, np.array([0, 3])), r"class indices in \[0, C=3\)"),
        (lambda: cross_entropy(X, np.array([0, -1])), r"Received: out-of-range values \[-1\]"),
        (lambda: cross_entropy(X, np.array([0, 1, 2])), r"target.shape=\(3,\)"),
        (lambda: cross_entropy(X, np.zeros((2, 4))), r"the input's shape \(2, 3\)"),
        (lambda: cross_entropy(X, T, label_smoothing=1.5), r"label_smoothing.*\[0, 1\]"),
        (lambda: cross_entropy(np.zeros(3), np.array(0)), r"Received: input.shape=\(3,\)"),
        (lambda: cross_entropy(X, np.array([True, False])), r"target.dtype=bool"),
        (
            lambda: cross_entropy_grad(X, T, grad_output=np.ones(2)),
            r"grad_output.*shape \(\).*Received: grad_output.shape=\(2,\)",
        ),
        (lambda: nll_loss(X, np.zeros((2, 3))), r"integer class indices"),
        (lambda: softmax_grad(X, np.ones(3)), r"grad_output.shape=\(3,\)"),
    ],
)
def test_argument_errors(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_ignore_index_may_be_a_valid_class() -> None:
    x = np.array([[0.0, 1.0], [2.0, 0.5]])
    loss = cross_entropy(x, np.array([0, 1]), ignore_index=0, reduction="none")
    assert loss[0] == 0.0 and loss[1] > 0


def test_registry() -> None:
    assert set(LOSSES) >= {
        "cross_entropy",
        "nll_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "multilabel_soft_margin_loss",
        "cross_entropy_on_probs",
    }
    assert set(oracle.__all__) >= {"LOSSES", "cross_entropy", "nll_loss", "softmax"}
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    t = np.array([[0, 1, 2, 1], [2, 2, 0, 1]])
    params = {
        "weight": [1.0, 2.0, 0.5],
        "ignore_index": 1,
        "reduction": "none",
        "label_smoothing": 0.1,
    }
    for name, spec in LOSSES.items():
        if "index" not in spec.target_kinds or spec.input_kind not in ("logits", "log_probs"):
            continue  # other inputs or elementwise targets: their own test modules
        kw = {k: v for k, v in params.items() if k in spec.params}
        loss = spec.value(x, t, **kw)
        grad = spec.grad(x, t, **kw, grad_output=np.ones((2, 4)))
        loss_mag, grad_mag = spec.magnitude(x, t, **kw)
        assert loss.shape == loss_mag.shape == (2, 4), name
        assert grad.shape == grad_mag.shape == x.shape, name
        assert "index" in spec.target_kinds

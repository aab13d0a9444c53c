"""Softmax cross-entropy from logits, in float64 (see docs/semantics.md).

Per element i (a position (n, d1, ..., dk); classes on axis 1):

    l_i = sum_c a_ic (lse_i - x_ic),   a_ic = w_c t'_ic,   lse_i = log sum_c exp(x_ic)

    t'_ic = (1 - eps) [c == y_i] + eps / C   class indices y (a_i. = 0 where y_i == ignore_index)
    t'_ic = (1 - eps) t_ic + eps / C         probability targets t

    'none' -> l;  'sum' -> sum_i l_i;  'mean' -> sum_i l_i / D
    D = sum_{i not ignored} w_{y_i} (class indices),  D = number of elements (probabilities)

Gradient of sum(loss * g) (A_i = sum_c a_ic, p = softmax(x), s_i = g_i / D, or g_i for
'none' / 'sum', and s = 0 when D == 0):

    dx_ik = s_i (A_i p_ik - a_ik)

Class-index targets never build a one-hot (N, C, d1, ..., dk) array: the target class term is
gathered with take_along_axis and the smoothing term is a weighted sum over classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from conformance.oracle import _common as cm
from conformance.oracle._common import F64
from conformance.oracle.softmax import LseParts, lse_parts

__all__ = ["cross_entropy", "cross_entropy_grad", "cross_entropy_magnitude"]


@dataclass
class _Prepared:
    x: F64
    parts: LseParts
    target: cm.Target
    w: F64  # (C,)
    eps: float
    denom: float  # D of the mean

    @property
    def num_classes(self) -> int:
        return int(self.x.shape[1])

    @property
    def elem_shape(self) -> tuple[int, ...]:
        return self.x.shape[:1] + self.x.shape[2:]

    def gather(self, arr: F64) -> F64:
        """arr[i, y_i] for class-index targets, shape (N, d1, ..., dk)."""
        assert self.target.indices is not None
        return np.take_along_axis(arr, self.target.indices[:, None], axis=1)[:, 0]

    def smoothed_probs(self, w: F64) -> F64:
        """a = w_c t'_c for probability targets: one new input-sized array, built in place."""
        assert self.target.probs is not None
        # dtype=float64 upcasts on the fly: no float64 copy of the target is kept.
        a: F64 = np.multiply(self.target.probs, 1.0 - self.eps, dtype=np.float64)
        a += self.eps / self.num_classes
        a *= cm.class_axis_view(w, self.x.ndim)
        return a


def _prepare(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    weight: npt.ArrayLike | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> _Prepared:
    cm.check_reduction(reduction)
    x = cm.check_input(input)
    w = cm.check_weight(weight, x.shape[1])
    eps = cm.check_label_smoothing(label_smoothing)
    tgt = cm.parse_target(target, x.shape, ignore_index)
    if tgt.kind == "index":
        assert tgt.indices is not None
        denom = float(np.sum(w[tgt.indices], where=tgt.valid))
    else:
        denom = float(np.prod(x.shape[:1] + x.shape[2:]))
    return _Prepared(x, lse_parts(x, 1), tgt, w, eps, denom)


def _class_sum(arr: F64, w: F64, *, absolute: bool = False) -> F64:
    """sum_c w_c arr[:, c] (|arr| if absolute); w is per class (C,) or arr-shaped.

    One class at a time (C is small; the loop is never over elements) so that neither |arr|
    nor w * arr is materialised at the input's size.
    """
    out = np.zeros(arr.shape[:1] + arr.shape[2:])
    for k in range(arr.shape[1]):
        term = np.abs(arr[:, k]) if absolute else arr[:, k]
        wk = w[k] if w.ndim == 1 else w[:, k]
        # 0 * inf = 0: a class with no weight contributes nothing, even at a -inf logit.
        out += np.multiply(wk, term, out=np.zeros_like(out), where=wk != 0)
    return out


def _per_element(pp: _Prepared) -> F64:
    nlp = pp.parts.neg_log_p
    tgt = pp.target
    if tgt.kind == "probs":
        a = pp.smoothed_probs(pp.w)
        # 0 log 0 = 0: a zero target probability contributes nothing, even where a -inf
        # logit makes -log p = inf (the limit t log p -> 0 as t -> 0).
        per_elem: F64 = np.sum(np.multiply(a, nlp, out=a, where=a != 0), axis=1)
        return per_elem
    assert tgt.indices is not None
    loss = (1.0 - pp.eps) * pp.w[tgt.indices] * pp.gather(nlp)
    if pp.eps:
        # Smoothing term (eps/C) sum_c w_c (lse - x_c); skipped when eps == 0 so that a -inf
        # logit in a non-target class does not turn the loss into 0 * inf = NaN.
        loss += pp.eps / pp.num_classes * _class_sum(nlp, pp.w)
    # where, not multiply: an ignored element may hold inf/NaN scores and must give 0.
    return np.where(tgt.valid, loss, 0.0)


def cross_entropy(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> F64:
    """Softmax cross-entropy: l_i = sum_c w_c t'_ic (lse_i - x_ic), reduced (module docstring).

    Integer ``target`` = class indices of shape (N, d1, ..., dk); float ``target`` =
    probabilities of the input's shape. Returns float64: shape (N, d1, ..., dk) for 'none',
    a 0-d array otherwise ('mean' over zero total target weight is NaN).
    """
    pp = _prepare(input, target, weight, ignore_index, reduction, label_smoothing)
    return cm.reduce(_per_element(pp), reduction, pp.denom)


def cross_entropy_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    grad_output: npt.ArrayLike | None = None,
) -> F64:
    """d/dx sum(loss * g) = s_i (A_i p_ik - a_ik); g defaults to ones of the loss's shape.

    At the max class m the same value is computed as s_i ((A_i - a_im) p_im - a_im (1 - p_im))
    with 1 - p_im = rest_i / sum_exp_i: when class m dominates (the usual trained-model case)
    A p - a cancels to a tiny number and would keep only a few correct digits.
    """
    pp = _prepare(input, target, weight, ignore_index, reduction, label_smoothing)
    scale = cm.grad_scale(grad_output, reduction, pp.elem_shape, pp.denom)
    parts, tgt, c = pp.parts, pp.target, pp.num_classes
    p = np.divide(parts.exp_shifted, parts.sum_exp, out=parts.exp_shifted)
    argmax = parts.argmax
    p_m = np.take_along_axis(p, argmax, axis=1)
    one_minus_p_m = parts.rest / parts.sum_exp
    grad: F64
    if tgt.kind == "probs":
        a = pp.smoothed_probs(pp.w)
        a_m = np.take_along_axis(a, argmax, axis=1)
        np.put_along_axis(a, argmax, 0.0, axis=1)
        a_excl_m = np.sum(a, axis=1, keepdims=True)  # sum_{c != m} a_c, no cancellation
        np.put_along_axis(a, argmax, a_m, axis=1)
        s = scale[:, None]
        grad = np.multiply(p, a_excl_m + a_m, out=p)
        grad -= a
        grad *= s
    else:
        assert tgt.indices is not None
        s = np.where(tgt.valid, scale, 0.0)[:, None]
        idx = tgt.indices[:, None]
        w_y = pp.w[idx]
        smooth = pp.eps / c
        big_a = (1.0 - pp.eps) * w_y + smooth * np.sum(pp.w)
        # In place: s (A p - smooth w_k), then the one-hot part -s (1 - eps) w_y at k = y.
        grad = np.multiply(p, big_a, out=p)
        if pp.eps:
            grad -= smooth * cm.class_axis_view(pp.w, grad.ndim)
        grad *= s
        at_y = np.take_along_axis(grad, idx, axis=1) - s * (1.0 - pp.eps) * w_y
        np.put_along_axis(grad, idx, at_y, axis=1)
        is_y = idx == argmax
        w_m = pp.w[argmax]
        a_m = np.where(is_y, 1.0 - pp.eps, 0.0) * w_m + smooth * w_m
        # A - a_m = (1 - eps) w_y [y != m] + (eps / C) (sum_c w_c - w_m)
        a_excl_m = np.where(is_y, 0.0, (1.0 - pp.eps) * w_y) + smooth * (np.sum(pp.w) - w_m)
    at_m = s * (a_excl_m * p_m - a_m * one_minus_p_m)
    np.put_along_axis(grad, argmax, at_m, axis=1)
    if tgt.kind == "index":
        # Ignored elements get exactly 0 even when their scores are inf/NaN (p would be NaN).
        np.copyto(grad, 0.0, where=~tgt.valid[:, None])
    return grad


def cross_entropy_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    grad_output: npt.ArrayLike | None = None,
) -> tuple[F64, F64]:
    """Error scales (loss_mag, grad_mag): the computation with every term made absolute.

        loss_mag_i = sum_c |a_ic| (|lse_i| + |x_ic| + 1), reduced like the loss (0 if D == 0)
        grad_mag_ik = |s_i| (|A|_i p_ik (1 + |x_ik - lse_i|) + |a_ik|),  |A|_i = sum_c |a_ic|

    A comparator accepts fl(f) when |fl(f) - f| <= k * eps_dtype * magnitude.
    """
    pp = _prepare(input, target, weight, ignore_index, reduction, label_smoothing)
    scale = np.abs(cm.grad_scale(grad_output, reduction, pp.elem_shape, pp.denom))
    x, tgt, c = pp.x, pp.target, pp.num_classes
    abs_lse = np.abs(pp.parts.lse[:, 0])
    aw = np.abs(pp.w)
    p = np.divide(pp.parts.exp_shifted, pp.parts.sum_exp, out=pp.parts.exp_shifted)
    # p (1 + |x - lse|), in the buffer of |x - lse| (= lse - x >= 0): no new input-sized array.
    with np.errstate(invalid="ignore"):
        grad_mag = np.multiply(pp.parts.neg_log_p, p, out=pp.parts.neg_log_p)
    np.copyto(grad_mag, 0.0, where=p == 0)  # p log p -> 0 at a -inf logit
    grad_mag += p
    if tgt.kind == "probs":
        a = pp.smoothed_probs(pp.w)
        np.abs(a, out=a)
        big_a = np.sum(a, axis=1)
        loss_mag = big_a * (abs_lse + 1.0) + _class_sum(x, a, absolute=True)
        grad_mag *= big_a[:, None]
        grad_mag += a
        grad_mag *= scale[:, None]
        return cm.reduce_magnitude(loss_mag, reduction, pp.denom), grad_mag
    assert tgt.indices is not None
    aw_y = aw[tgt.indices]
    smooth = pp.eps / c
    loss_mag = (1.0 - pp.eps) * aw_y * (abs_lse + np.abs(pp.gather(x)) + 1.0)
    if pp.eps:
        loss_mag += smooth * (np.sum(aw) * (abs_lse + 1.0) + _class_sum(x, aw, absolute=True))
    loss_mag = np.where(tgt.valid, loss_mag, 0.0)
    s = np.where(tgt.valid, scale, 0.0)[:, None]
    grad_mag *= (1.0 - pp.eps) * aw_y[:, None] + smooth * np.sum(aw)  # |A|_i
    if pp.eps:
        grad_mag += smooth * cm.class_axis_view(aw, x.ndim)
    grad_mag *= s
    idx = tgt.indices[:, None]
    at_y = np.take_along_axis(grad_mag, idx, axis=1) + s * (1.0 - pp.eps) * aw_y[:, None]
    np.put_along_axis(grad_mag, idx, at_y, axis=1)
    np.copyto(grad_mag, 0.0, where=~tgt.valid[:, None])
    return cm.reduce_magnitude(loss_mag, reduction, pp.denom), grad_mag

"""Cross-entropy on probability inputs, in float64 (docs/semantics.md).

The input p holds probabilities over the classes on axis 1 (the output of a softmax): shape
(N, C) or (N, C, d1, ..., dk), any values >= 0 (NaN allowed), used as given: no softmax, no
renormalisation, no clipping. Per element i = (n, d1, ..., dk):

    l_i = sum_c a_ic (-log p_ic),   a_ic = w_c t'_ic

    t'_ic = (1 - eps) [c == y_i] + eps / C   class indices y (a_i. = 0 where y_i == ignore_index)
    t'_ic = (1 - eps) t_ic + eps / C         probability targets t

    'none' -> l;  'sum' -> sum_i l_i;  'mean' -> sum_i l_i / D
    D = sum_{i not ignored} w_{y_i} (class indices),  D = number of elements (probabilities);
    D = 0 -> NaN (the same weights, ignore and mean rules as cross_entropy.py)

A zero coefficient contributes 0 even where -log p = inf (0 log 0 = 0): l = 0 where p_c = 0
only for classes with a_ic = 0, and l = inf where a_ic > 0 meets p_ic = 0. When p = softmax(x)
this is cross_entropy.py's loss of the logits x.

Gradient of sum(loss * g) (s_i = g_i, g, or g / D for 'mean'; 0 when D == 0):

    dp_ic = -s_i a_ic / p_ic          (0 where a_ic == 0, -inf where a_ic > 0 and p_ic == 0)

Error magnitudes (the comparator accepts |fl(f) - f| <= k eps magnitude):

    loss_mag_i = sum_c |a_ic| (|log p_ic| + 1),  reduced like the loss (0 if D == 0)
    grad_mag_ic = |s_i| |a_ic| / p_ic

Semantic options (``choices`` of :func:`cross_entropy_on_probs_outputs`; option -> choice):

    prob_renormalise  none | before_clip | after_clip: p is divided by its sum over the
                      classes, before the clip (Keras' categorical_crossentropy) or after it
                      (Keras' sparse_categorical_crossentropy: the clipped p's log goes
                      through a softmax); the gradient follows the division.
    prob_clip         none | clip_1e-7 | inf_to_1e20: p clipped to [1e-7, 1 - 1e-7] (Keras,
                      gradient 0 where clipped), or an infinite -log p (p = 0) replaced by
                      1e20 in the loss only (Paddle's TolerableValue).
    and cross_entropy's index_mean, probs_mean, empty_mean, soft_weighting, smoothing_mass,
    zero_log_zero, none_shape, precision (options.py), computed as variants.py does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from conformance.oracle import _common as cm
from conformance.oracle._common import F64
from conformance.oracle.options import canonical, options_for

__all__ = [
    "LOSS",
    "cross_entropy_on_probs",
    "cross_entropy_on_probs_grad",
    "cross_entropy_on_probs_magnitude",
    "cross_entropy_on_probs_outputs",
]

LOSS = "cross_entropy_on_probs"
_CLIP = 1e-7
_CAP = 1e20


@dataclass
class _Prepared:
    p: F64
    a: F64  # coefficients a_ic, 0 at ignored elements
    valid: npt.NDArray[np.bool_]  # (N, d1, ..., dk)
    denom: float
    opt: dict[str, str]

    @property
    def elem_shape(self) -> tuple[int, ...]:
        return self.p.shape[:1] + self.p.shape[2:]


def _resolve(choices: Mapping[str, str] | None) -> dict[str, str]:
    allowed = {o.name: tuple(o.choices) for o in options_for(LOSS)}
    return cm.resolve_choices(LOSS, allowed, canonical(LOSS), choices)


def _smoothed(t: F64, eps: float, mass: str, num_classes: int, last: int) -> F64:
    if eps == 0.0:
        return t
    if mass == "others" and num_classes > 1:
        return (1.0 - eps) * t + eps / (num_classes - 1) * (1.0 - t)
    return (1.0 - eps) * t + eps / (last if mass == "last_axis" else num_classes)


def _prepare(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    weight: npt.ArrayLike | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    choices: Mapping[str, str] | None,
) -> _Prepared:
    opt = _resolve(choices)
    cm.check_reduction(reduction)
    p = cm.check_input(input)
    if np.any(p < 0):
        raise ValueError(
            "Argument `input` must hold probabilities (>= 0). "
            f"Received: values {np.unique(p[p < 0])[:5].tolist()}"
        )
    c = p.shape[1]
    w_vec = cm.check_weight(weight, c)
    w = cm.class_axis_view(w_vec, p.ndim)
    eps = cm.check_label_smoothing(label_smoothing)
    tgt = cm.parse_target(target, p.shape, ignore_index)
    valid = tgt.valid[:, None]
    if tgt.kind == "index":
        assert tgt.indices is not None
        classes = np.arange(c).reshape((1, -1) + (1,) * (p.ndim - 2))
        t = (tgt.indices[:, None] == classes).astype(np.float64)
    else:
        assert tgt.probs is not None
        t = tgt.probs.astype(np.float64)
    ts = _smoothed(t, eps, opt["smoothing_mass"], c, p.shape[-1])
    with np.errstate(invalid="ignore", over="ignore"):
        # per_element: the element's weight sum_c w_c t'_c (no weighting without weights)
        omega = (
            np.sum(w * ts, axis=1, keepdims=True) if weight is not None else np.ones_like(p[:, :1])
        )
        a = omega * ts if opt["soft_weighting"] == "per_element" else w * ts
    a = np.where(valid, a, 0.0)
    if tgt.kind == "index" and opt["soft_weighting"] == "per_class":
        assert tgt.indices is not None
        omega = w_vec[tgt.indices][:, None]
    omega = np.where(valid, omega, 0.0)[:, 0]
    rule = opt["index_mean"] if tgt.kind == "index" else opt["probs_mean"]
    denom = {
        "weights": float(np.sum(omega)),
        "count": float(np.sum(tgt.valid)),
        "elements": float(tgt.valid.size),
        "batch": float(p.shape[0]),
    }[rule]
    return _Prepared(p, a, tgt.valid, denom, opt)


def _term(a: F64, log_term: F64, zero_log_zero: str) -> F64:
    """a * L with 0 * inf = 0 (the limit) unless zero_log_zero=nan; NaN stays NaN."""
    with np.errstate(invalid="ignore"):
        out: F64 = np.asarray(a * log_term)
    if zero_log_zero == "zero":
        out = np.where((a == 0) & np.isinf(log_term), 0.0, out)
    return out


def _renorm(v: F64) -> tuple[F64, F64]:
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.sum(v, axis=1, keepdims=True)
        return v / total, total


def _compute(pp: _Prepared, reduction: str, grad_output: npt.ArrayLike | None) -> tuple[F64, F64]:
    """(loss, grad) under pp.opt."""
    p, a, opt = pp.p, pp.a, pp.opt
    renorm, clip = opt["prob_renormalise"], opt["prob_clip"]
    ones = np.ones_like(p)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # r: the probabilities whose log is taken; inside: where the clip passes gradient
        inside, r, total = ones, p, ones[:, :1]
        if renorm == "before_clip":
            r, total = _renorm(p)
        if clip == "clip_1e-7":
            inside = np.where((r >= _CLIP) & (r <= 1.0 - _CLIP), 1.0, 0.0)
            r = np.clip(r, _CLIP, 1.0 - _CLIP)
        if renorm == "after_clip":
            r, total = _renorm(r)
        nlp = -np.log(r)
        if clip == "inf_to_1e20":
            nlp = np.where(nlp == np.inf, _CAP, nlp)
        per_elem = np.sum(_term(a, nlp, opt["zero_log_zero"]), axis=1)
        per_elem = np.where(pp.valid, per_elem, 0.0)
        if reduction == "none":
            loss = per_elem[:, None] if opt["none_shape"] == "keepdim" else per_elem
        elif reduction == "sum":
            loss = np.asarray(np.sum(per_elem))
        elif pp.denom == 0:
            loss = np.asarray(np.nan if opt["empty_mean"] == "nan" else 0.0)
        else:
            loss = np.asarray(np.sum(per_elem) / pp.denom)

        s = cm.grad_scale(grad_output, reduction, pp.elem_shape, pp.denom)[:, None]
        g_r = -s * a / r  # d/dr of sum_c a_c (-log r_c), times s
        if opt["zero_log_zero"] == "zero":
            g_r = np.where(a == 0, 0.0, g_r)
        if renorm == "none":
            grad = g_r * inside
        else:
            # r = v / sum(v): dL/dv_j = (g_r_j - sum_k g_r_k r_k) / sum(v), where
            # g_r_k r_k = -s a_k (also its limit at r_k = 0); before_clip: v = p and the
            # clip passes gradient only inside; after_clip: v = clip(p)
            g_r_r = np.where(a == 0, 0.0, -s * a)
            if renorm == "before_clip":
                grad = (g_r * inside - np.sum(g_r_r * inside, axis=1, keepdims=True)) / total
            else:
                grad = (g_r - np.sum(g_r_r, axis=1, keepdims=True)) / total * inside
        grad = np.where(pp.valid[:, None], grad, 0.0)
    return np.asarray(loss, dtype=np.float64), grad


def cross_entropy_on_probs(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> F64:
    """l_i = -sum_c w_c t'_ic log p_ic, reduced (module docstring). Integer ``target`` = class
    indices (N, d1, ..., dk); float ``target`` = probabilities of the input's shape."""
    pp = _prepare(input, target, weight, ignore_index, reduction, label_smoothing, None)
    return _compute(pp, reduction, None)[0]


def cross_entropy_on_probs_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    grad_output: npt.ArrayLike | None = None,
) -> F64:
    """d/dp sum(loss * g) = -s_i w_c t'_ic / p_ic (0 where the coefficient is 0)."""
    pp = _prepare(input, target, weight, ignore_index, reduction, label_smoothing, None)
    return _compute(pp, reduction, grad_output)[1]


def cross_entropy_on_probs_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    grad_output: npt.ArrayLike | None = None,
) -> tuple[F64, F64]:
    """(loss_mag, grad_mag): sum_c |a| (|log p| + 1) reduced; |s| |a| / p."""
    pp = _prepare(input, target, weight, ignore_index, reduction, label_smoothing, None)
    b = np.abs(pp.a)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_elem = np.sum(_term(b, np.abs(np.log(pp.p)) + 1.0, "zero"), axis=1)
        s = np.abs(cm.grad_scale(grad_output, reduction, pp.elem_shape, pp.denom))[:, None]
        grad_mag = np.where(b == 0, 0.0, s * b / pp.p)
    return cm.reduce_magnitude(per_elem, reduction, pp.denom), grad_mag


def cross_entropy_on_probs_outputs(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    choices: Mapping[str, Any] | None = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} under ``choices``: the form conformance/judge.py diagnoses."""
    pp = _prepare(input, target, weight, ignore_index, reduction, label_smoothing, choices)
    loss, grad = _compute(pp, reduction, None)
    return {"loss": loss, "grad": grad}

"""Sigmoid focal loss on logits, in float64 (docs/semantics.md, "Focal loss").

Lin et al. 2017, "Focal Loss for Dense Object Detection", as torchvision's and optax's
``sigmoid_focal_loss`` compute it. Elementwise: logits x and targets t (hard 0/1 or soft, in
[0, 1]) of one shape. Per element, with p = sigmoid(x):

    ce  = t softplus(-x) + (1 - t) softplus(x)           (BCE with logits, binary.py)
    q   = 1 - p_t = p (1 - t) + (1 - p) t,   p_t = p t + (1 - p)(1 - t)
    l   = a q^gamma ce,   a = alpha t + (1 - alpha)(1 - t), or 1 when alpha is None

q is computed as sigmoid(x) (1 - t) + sigmoid(-x) t, never as 1 - p_t (which cancels for
confident predictions); q^0 = 1. A zero coefficient meets an infinite softplus as 0 (the
limit), so l = 0 where the target agrees with an infinite logit and inf where it does not.

    'none' -> l (the input's shape);  'sum' -> sum_i l_i;  'mean' -> sum_i l_i / n, n the
    number of elements (NaN for none).

Gradient of sum(loss * g) (s_i = g_i, g, or g / n for 'mean'):

    dx = s a (q^gamma (sigmoid(x) - t) + ce gamma q^(gamma - 1) sigmoid(x) sigmoid(-x) (1 - 2t))

the second term taken as 0 where q = 0 or sigmoid(x) sigmoid(-x) = 0 (its limit for gamma > 0).

Error magnitudes (|fl(f) - f| <= k eps magnitude): a framework computes q from p = sigmoid(x)
with an absolute error of about eps, so q^gamma carries gamma q^(gamma - 1) eps on top of the
relative error of each factor:

    loss_mag = |a| (q^gamma (ce + c + 1) + gamma q^(gamma - 1) ce),  c = |x| (0 at x = ±inf)
    grad_mag = |s| |a| ((1 + gamma) q^gamma (sigmoid(x) + |t|)
                        + gamma q^(gamma - 1) (ce + c + 1) sigmoid(x) sigmoid(-x) (1 + |1 - 2t|))

Semantic options (``choices`` of :func:`sigmoid_focal_loss_outputs`):

    focal_bce   logits | clip_1e-7: the cross-entropy factor is computed from p = sigmoid(x)
                clipped to [1e-7, 1 - 1e-7] (Keras ``from_logits=True`` applies sigmoid, then
                its probability BCE), so it saturates at 16.118 for |x| > 16; its derivative
                is 0 outside the clip.
    axis_mean   none | last | class: the loss is first averaged over an axis (Keras: -1).
    precision   a comparison option (computes in float32).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from conformance.oracle import _common as cm
from conformance.oracle._common import F64
from conformance.oracle.options import canonical, options_for

__all__ = [
    "LOSS",
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_grad",
    "sigmoid_focal_loss_magnitude",
    "sigmoid_focal_loss_outputs",
    "softmax_focal_loss",
    "softmax_focal_loss_grad",
    "softmax_focal_loss_magnitude",
    "softmax_focal_loss_outputs",
]

LOSS = "sigmoid_focal_loss"
_CLIP = 1e-7


@dataclass
class _Prepared:
    x: F64
    t: F64
    a: F64  # alpha_t (ones without alpha)
    gamma: float
    opt: dict[str, str]
    axis: int | None  # axis averaged first (axis_mean)
    denom: float  # n of the mean, per reduced element

    @property
    def loss_shape(self) -> tuple[int, ...]:
        if self.axis is None:
            return self.x.shape
        return self.x.shape[: self.axis] + self.x.shape[self.axis + 1 :]


def _resolve(choices: Mapping[str, str] | None) -> dict[str, str]:
    allowed = {o.name: tuple(o.choices) for o in options_for(LOSS)}
    return cm.resolve_choices(LOSS, allowed, canonical(LOSS), choices)


def _prepare(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    alpha: float | None,
    gamma: float,
    reduction: str,
    choices: Mapping[str, str] | None,
) -> _Prepared:
    opt = _resolve(choices)
    cm.check_reduction(reduction)
    x = cm.to_f64("input", input)
    t = cm.to_f64("target", target)
    if t.shape != x.shape:
        raise ValueError(
            "Arguments `target` and `input` must have the same shape. "
            f"Received: input.shape={x.shape}, target.shape={t.shape}"
        )
    gamma = float(gamma)
    if not gamma >= 0:
        raise ValueError(f"Argument `gamma` must be >= 0. Received: gamma={gamma}")
    a = np.ones_like(x) if alpha is None else float(alpha) * t + (1.0 - float(alpha)) * (1.0 - t)
    axis = None
    if opt["axis_mean"] != "none":
        if x.ndim < (2 if opt["axis_mean"] == "class" else 1):
            raise ValueError(f"axis_mean={opt['axis_mean']} needs an input with that axis")
        axis = 1 if opt["axis_mean"] == "class" else x.ndim - 1
    denom = float(x.size)
    if axis is not None and x.shape[axis]:
        denom /= x.shape[axis]
    return _Prepared(x, t, a, gamma, opt, axis, denom)


def _times(coef: F64, term: F64) -> F64:
    """coef * term with 0 * ±inf = 0 (the limit); NaN stays NaN."""
    with np.errstate(invalid="ignore"):
        out: F64 = np.asarray(coef * term)
    return np.where((coef == 0) & np.isinf(term), 0.0, out)


def _parts(pp: _Prepared) -> tuple[F64, F64, F64, F64, F64, F64]:
    """(ce, dce/dx, q, sigmoid(x), sigmoid(-x), q^gamma)."""
    x, t = pp.x, pp.t
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        sp_neg, sp_pos = np.logaddexp(0.0, -x), np.logaddexp(0.0, x)  # softplus(-x), softplus(x)
        sx, sxm = np.exp(-sp_neg), np.exp(-sp_pos)  # sigmoid(x), sigmoid(-x)
        if pp.opt["focal_bce"] == "clip_1e-7":
            p = np.clip(sx, _CLIP, 1.0 - _CLIP)
            ce = _times(t, -np.log(p)) + _times(1.0 - t, -np.log1p(-p))
            inside = (sx >= _CLIP) & (sx <= 1.0 - _CLIP)
            dce = np.where(inside, sx - t, 0.0)
        else:
            ce = _times(t, sp_neg) + _times(1.0 - t, sp_pos)
            dce = sx - t
        q = sx * (1.0 - t) + sxm * t
        m = np.power(q, pp.gamma) if pp.gamma != 0 else np.ones_like(q)
    return ce, dce, q, sx, sxm, m


def _dq_power(pp: _Prepared, q: F64) -> F64:
    """gamma q^(gamma - 1), 0 where q = 0 or gamma = 0 (the factor it multiplies is 0 there)."""
    if pp.gamma == 0:
        return np.zeros_like(q)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out: F64 = np.where(q > 0, pp.gamma * np.power(np.where(q > 0, q, 1.0), pp.gamma - 1), 0.0)
    return out


def _per_element(pp: _Prepared) -> F64:
    ce, _, _, _, _, m = _parts(pp)
    return _times(pp.a, _times(m, ce))


def _reduce(pp: _Prepared, per_elem: F64, reduction: str, *, magnitude: bool = False) -> F64:
    per = per_elem
    if pp.axis is not None:
        with np.errstate(invalid="ignore"):
            per = np.sum(per_elem, axis=pp.axis) / max(pp.x.shape[pp.axis], 1)
    if reduction == "none":
        return np.asarray(per, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        total = np.asarray(np.sum(per), dtype=np.float64)
    if reduction == "sum":
        return total
    if pp.denom == 0:
        return np.asarray(0.0 if magnitude else np.nan, dtype=np.float64)
    return np.asarray(total / pp.denom, dtype=np.float64)


def _scale(pp: _Prepared, reduction: str, grad_output: npt.ArrayLike | None) -> F64:
    shape = pp.loss_shape if reduction == "none" else ()
    if grad_output is None:
        g = np.ones(shape, dtype=np.float64)
    else:
        g = cm.to_f64("grad_output", grad_output)
        if g.shape != shape:
            raise ValueError(
                f"Argument `grad_output` must have the loss's shape {shape} for "
                f"reduction={reduction!r}. Received: grad_output.shape={g.shape}"
            )
    if reduction == "mean":
        g = g / pp.denom if pp.denom != 0 else np.zeros_like(g)
    if pp.axis is not None:
        if reduction == "none":
            g = np.expand_dims(g, pp.axis)
        g = g / max(pp.x.shape[pp.axis], 1)
    return np.broadcast_to(g, pp.x.shape).astype(np.float64, copy=False)


def _grad(pp: _Prepared, reduction: str, grad_output: npt.ArrayLike | None) -> F64:
    ce, dce, q, sx, sxm, m = _parts(pp)
    with np.errstate(invalid="ignore", over="ignore"):
        dq = sx * sxm * (1.0 - 2.0 * pp.t)
        second = _times(_dq_power(pp, q) * dq, ce)
        per = pp.a * (m * dce + second)
        out: F64 = _scale(pp, reduction, grad_output) * per
    return out


def _magnitude(pp: _Prepared, reduction: str, grad_output: npt.ArrayLike | None) -> tuple[F64, F64]:
    ce, _, q, sx, sxm, m = _parts(pp)
    c = np.where(np.isinf(pp.x), 0.0, np.abs(pp.x))
    dpow = _dq_power(pp, q)
    b = np.abs(pp.a)
    with np.errstate(invalid="ignore", over="ignore"):
        loss_mag = b * (_times(m, ce + c + 1.0) + _times(dpow, ce))
        spread = _times(sx * sxm, ce + c + 1.0)
        grad_mag = (
            np.abs(_scale(pp, reduction, grad_output))
            * b
            * (
                (1.0 + pp.gamma) * m * (sx + np.abs(pp.t))
                + dpow * spread * (1.0 + np.abs(1.0 - 2.0 * pp.t))
            )
        )
    return _reduce(pp, loss_mag, reduction, magnitude=True), grad_mag


def sigmoid_focal_loss(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    alpha: float | None = None,
    gamma: float = 2.0,
    reduction: str = "mean",
    choices: Mapping[str, str] | None = None,
) -> F64:
    """l = a (1 - p_t)^gamma BCE(x, t), reduced (module docstring)."""
    pp = _prepare(input, target, alpha, gamma, reduction, choices)
    return _reduce(pp, _per_element(pp), reduction)


def sigmoid_focal_loss_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    alpha: float | None = None,
    gamma: float = 2.0,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Mapping[str, str] | None = None,
) -> F64:
    """d/dx sum(loss * g) (module docstring)."""
    pp = _prepare(input, target, alpha, gamma, reduction, choices)
    return _grad(pp, reduction, grad_output)


def sigmoid_focal_loss_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    alpha: float | None = None,
    gamma: float = 2.0,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Mapping[str, str] | None = None,
) -> tuple[F64, F64]:
    """(loss_mag, grad_mag), the error scales of the module docstring."""
    pp = _prepare(input, target, alpha, gamma, reduction, choices)
    return _magnitude(pp, reduction, grad_output)


def sigmoid_focal_loss_outputs(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    alpha: float | None = None,
    gamma: float = 2.0,
    reduction: str = "mean",
    choices: Mapping[str, str] | None = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} under ``choices``: the form conformance/judge.py diagnoses."""
    pp = _prepare(input, target, alpha, gamma, reduction, choices)
    return {"loss": _reduce(pp, _per_element(pp), reduction), "grad": _grad(pp, reduction, None)}


# --------------------------------------------------------------------------------------------
# Softmax (categorical) focal loss
# --------------------------------------------------------------------------------------------

SOFTMAX_LOSS = "softmax_focal_loss"


@dataclass
class _SoftPrepared:
    logp: F64  # log_softmax over axis 1
    p: F64
    q: F64  # 1 - p, as -expm1(log p)
    t: F64  # probability targets
    a: float
    gamma: float
    x: F64


def _soft_resolve(choices: Mapping[str, str] | None) -> dict[str, str]:
    allowed = {o.name: tuple(o.choices) for o in options_for(SOFTMAX_LOSS)}
    opt = cm.resolve_choices(SOFTMAX_LOSS, allowed, canonical(SOFTMAX_LOSS), choices)
    if opt.get("prob_clip", "none") not in ("none", "clip_1e-7"):
        raise ValueError(f"{SOFTMAX_LOSS} computes prob_clip=none or clip_1e-7 only")
    return opt


def _soft_prepare(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    alpha: float | None,
    gamma: float,
    reduction: str,
    choices: Mapping[str, str] | None,
) -> _SoftPrepared:
    opt = _soft_resolve(choices)
    cm.check_reduction(reduction)
    x = cm.check_input(input)
    t = cm.to_f64("target", target)
    if t.shape != x.shape:
        raise ValueError(
            "Argument `target` must hold class probabilities of the input's shape. "
            f"Received: input.shape={x.shape}, target.shape={t.shape}"
        )
    gamma = float(gamma)
    if not gamma >= 0:
        raise ValueError(f"Argument `gamma` must be >= 0. Received: gamma={gamma}")
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(x, axis=1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        lse = m + np.log(np.sum(np.exp(x - m), axis=1, keepdims=True))
        logp = x - lse
        if opt.get("prob_clip") == "clip_1e-7":
            logp = np.log(np.clip(np.exp(logp), _CLIP, 1.0 - _CLIP))
        p = np.exp(logp)
        q = -np.expm1(logp)
    a = 1.0 if alpha is None else float(alpha)
    return _SoftPrepared(logp, p, q, t, a, gamma, x)


def _soft_terms(sp: _SoftPrepared) -> tuple[F64, F64, F64]:
    """(per-class loss -a t q^gamma log p, h = p dL/dp per class, q^gamma)."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        qg = np.power(sp.q, sp.gamma) if sp.gamma != 0 else np.ones_like(sp.q)
        per_class = _times(-sp.a * sp.t, qg * sp.logp)
        # gamma p q^(gamma - 1) log p = gamma p q^gamma (log p / q); log p / q -> -1 as q -> 0
        ratio = np.where(sp.q > 0, sp.logp / np.where(sp.q > 0, sp.q, 1.0), -1.0)
        h = _times(-sp.a * sp.t, qg - sp.gamma * sp.p * qg * ratio)
    return per_class, h, qg


def softmax_focal_loss(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    alpha: float | None = None,
    gamma: float = 2.0,
    reduction: str = "mean",
    choices: Mapping[str, str] | None = None,
) -> F64:
    """l = -a sum_c t_c (1 - p_c)^gamma log p_c, p = softmax(x) over axis 1; 'mean' divides
    by the number of (sample, position) elements N d1 ... dk."""
    sp = _soft_prepare(input, target, alpha, gamma, reduction, choices)
    per_class, _, _ = _soft_terms(sp)
    per = np.sum(per_class, axis=1)
    return cm.reduce(per, reduction, float(per.size))


def softmax_focal_loss_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    alpha: float | None = None,
    gamma: float = 2.0,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Mapping[str, str] | None = None,
) -> F64:
    """dx_j = s (h_j - p_j sum_c h_c), h_c = p_c dL/dp_c
    = -a t_c (q_c^gamma - gamma p_c q_c^(gamma - 1) log p_c)."""
    sp = _soft_prepare(input, target, alpha, gamma, reduction, choices)
    _, h, _ = _soft_terms(sp)
    elem_shape = sp.x.shape[:1] + sp.x.shape[2:]
    s = cm.grad_scale(grad_output, reduction, elem_shape, float(np.prod(elem_shape)))
    s = np.expand_dims(s, 1)
    with np.errstate(invalid="ignore"):
        out: F64 = s * (h - sp.p * np.sum(h, axis=1, keepdims=True))
    return out


def softmax_focal_loss_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    alpha: float | None = None,
    gamma: float = 2.0,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Mapping[str, str] | None = None,
) -> tuple[F64, F64]:
    """(loss_mag, grad_mag): each term made absolute, log p's error taken as
    eps (|x_c - lse| + 1) like cross_entropy.py, and (1 + gamma) for the power."""
    sp = _soft_prepare(input, target, alpha, gamma, reduction, choices)
    _, h, qg = _soft_terms(sp)
    c = np.where(np.isfinite(sp.logp), np.abs(sp.logp), 0.0)
    b = abs(sp.a) * np.abs(sp.t)
    with np.errstate(invalid="ignore", over="ignore"):
        loss_mag = np.sum(_times(b, qg * (c + 1.0)), axis=1) * (1.0 + sp.gamma)
        elem_shape = sp.x.shape[:1] + sp.x.shape[2:]
        s = np.abs(cm.grad_scale(grad_output, reduction, elem_shape, float(np.prod(elem_shape))))
        spread = np.abs(h) + sp.p * np.sum(np.abs(h) + b, axis=1, keepdims=True)
        grad_mag = np.expand_dims(s, 1) * (2.0 + sp.gamma) * spread * (1.0 + c)
    return cm.reduce_magnitude(loss_mag, reduction, float(loss_mag.size)), grad_mag


def softmax_focal_loss_outputs(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    alpha: float | None = None,
    gamma: float = 2.0,
    reduction: str = "mean",
    choices: Mapping[str, str] | None = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} under ``choices``: the form conformance/judge.py diagnoses."""
    kw = {"alpha": alpha, "gamma": gamma, "reduction": reduction, "choices": choices}
    return {
        "loss": softmax_focal_loss(input, target, **kw),  # type: ignore[arg-type]
        "grad": softmax_focal_loss_grad(input, target, **kw),  # type: ignore[arg-type]
    }

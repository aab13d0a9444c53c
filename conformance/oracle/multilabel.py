"""Multi-label soft-margin loss on logits, in float64 (docs/semantics.md).

Input logits x of shape (N, C) or (N, C, d1, ..., dk), binary (or soft) targets t of the
same shape, several positives per sample; ``weight`` w is broadcast against the input (a
per-class weight reaches it as (C,) for (N, C) input and as (C, 1, ..., 1) for N-d input:
along axis 1). Per element i = (n, d1, ..., dk), with the mean taken over the C classes:

    l_i = (1/C) sum_c w_c [t_ic softplus(-x_ic) + (1 - t_ic) softplus(x_ic)]
        = -(1/C) sum_c w_c [t_ic log sigmoid(x_ic) + (1 - t_ic) log sigmoid(-x_ic)]

that is, the mean over the classes of binary cross-entropy with logits (binary.py).
softplus(z) = log(1 + e^z) is np.logaddexp(0, z) (never log(sigmoid(x)), which underflows).
A term whose coefficient is 0 contributes 0 even where its log term is infinite (the limit
at x = ±inf); a NaN anywhere in an element's classes gives NaN.

    'none' -> l, shape (N, d1, ..., dk);  'sum' -> sum_i l_i;
    'mean' -> sum_i l_i / M, M = N d1 ... dk (weights do not enter the denominator;
    a mean over no elements is NaN).

Gradient of sum(loss * g) (s_i = g_i, g, or g / M for 'mean'; 0 when M == 0), with
a1 = w t, a0 = w (1 - t):

    dx_ic = (s_i / C) (a0_ic sigmoid(x_ic) - a1_ic sigmoid(-x_ic))

Error magnitudes (the comparator accepts |fl(f) - f| <= k eps magnitude): each term made
absolute, as in binary.py (the |x| term allows for the forms that cancel at large |x|, and is
left out at x = ±inf where only the limit is meaningful):

    loss_mag_i = (1/C) sum_c |a1| (softplus(-x) + |x| + 1) + |a0| (softplus(x) + |x| + 1)
    grad_mag_ic = (|s_i| / C) ((|a0| + |a1|) sigmoid(x) (1 + softplus(-x)) + |a1|)

Semantic options (``choices`` of :func:`multilabel_soft_margin_loss_outputs`):

    multilabel_axis   class | last: the mean over "classes" is taken over the input's last
                      axis (PyTorch and Paddle: ``loss.sum(dim=input.dim() - 1) / C``);
                      on (N, C) input the two agree.
    zero_log_zero     zero | nan: t log sigmoid(x) in IEEE arithmetic, so t = 0 at x = -inf
                      (or 1 - t = 0 at x = +inf) gives 0 * -inf = NaN in the loss.
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
    "multilabel_soft_margin_loss",
    "multilabel_soft_margin_loss_grad",
    "multilabel_soft_margin_loss_magnitude",
    "multilabel_soft_margin_loss_outputs",
]

LOSS = "multilabel_soft_margin_loss"


@dataclass
class _Prepared:
    x: F64
    a1: F64  # w t
    a0: F64  # w (1 - t)
    axis: int  # the axis averaged over (1, or the last axis)
    denom: float  # M of the mean
    zero_log_zero: str

    @property
    def num_classes(self) -> int:
        return int(self.x.shape[self.axis])

    @property
    def loss_shape(self) -> tuple[int, ...]:
        return self.x.shape[: self.axis] + self.x.shape[self.axis + 1 :]


def _resolve(choices: Mapping[str, str] | None) -> dict[str, str]:
    allowed = {o.name: tuple(o.choices) for o in options_for(LOSS)}
    return cm.resolve_choices(LOSS, allowed, canonical(LOSS), choices)


def _prepare(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    weight: npt.ArrayLike | None,
    reduction: str,
    choices: Mapping[str, str] | None,
) -> _Prepared:
    opt = _resolve(choices)
    cm.check_reduction(reduction)
    x = cm.check_input(input)
    t = cm.to_f64("target", target)
    if t.shape != x.shape:
        raise ValueError(
            "Arguments `target` and `input` must have the same shape. "
            f"Received: input.shape={x.shape}, target.shape={t.shape}"
        )
    w = np.ones_like(x)
    if weight is not None:
        wv = cm.to_f64("weight", weight)
        try:
            w = np.broadcast_to(wv, x.shape)
        except ValueError:
            raise ValueError(
                f"Argument `weight` must broadcast to the input's shape {x.shape}. "
                f"Received: weight.shape={wv.shape}"
            ) from None
    axis = 1 if opt["multilabel_axis"] == "class" else x.ndim - 1
    elements = x.size // x.shape[axis] if x.shape[axis] else 0
    return _Prepared(x, w * t, w * (1.0 - t), axis, float(elements), opt["zero_log_zero"])


def _term(a: F64, log_term: F64, zero_log_zero: str) -> F64:
    """a * L with 0 * inf = 0 (the limit) unless zero_log_zero=nan; NaN stays NaN."""
    with np.errstate(invalid="ignore"):
        out: F64 = np.asarray(a * log_term)
    if zero_log_zero == "zero":
        out = np.where((a == 0) & np.isinf(log_term), 0.0, out)
    return out


def _class_mean(pp: _Prepared, per_class: F64) -> F64:
    with np.errstate(invalid="ignore"):
        out: F64 = np.sum(per_class, axis=pp.axis) / pp.num_classes
    return out


def _reduce(pp: _Prepared, per_elem: F64, reduction: str) -> F64:
    if reduction == "none":
        return np.asarray(per_elem, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        total = np.asarray(np.sum(per_elem), dtype=np.float64)
    if reduction == "sum":
        return total
    return np.asarray(total / pp.denom if pp.denom else np.nan, dtype=np.float64)


def _scale(pp: _Prepared, reduction: str, grad_output: npt.ArrayLike | None) -> F64:
    """s_i / C, broadcast to the input's shape."""
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
        g = g / pp.denom if pp.denom else np.zeros_like(g)
    if reduction == "none":
        g = np.expand_dims(g, pp.axis)
    return np.broadcast_to(g / max(pp.num_classes, 1), pp.x.shape).astype(np.float64)


def _softplus(z: F64) -> F64:
    with np.errstate(invalid="ignore"):  # NaN in, NaN out
        out: F64 = np.logaddexp(0.0, z)
    return out


def _loss(pp: _Prepared, reduction: str) -> F64:
    l1, l0 = _softplus(-pp.x), _softplus(pp.x)
    per_class = _term(pp.a1, l1, pp.zero_log_zero) + _term(pp.a0, l0, pp.zero_log_zero)
    return _reduce(pp, _class_mean(pp, per_class), reduction)


def _grad(pp: _Prepared, reduction: str, grad_output: npt.ArrayLike | None) -> F64:
    s = _scale(pp, reduction, grad_output)
    with np.errstate(over="ignore"):
        sig = np.exp(-_softplus(-pp.x))  # sigmoid(x), full relative accuracy
        sig_neg = np.exp(-_softplus(pp.x))  # sigmoid(-x)
    with np.errstate(invalid="ignore"):
        out: F64 = s * (pp.a0 * sig - pp.a1 * sig_neg)
    return out


def multilabel_soft_margin_loss(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
) -> F64:
    """l_i = (1/C) sum_c w_c [t softplus(-x) + (1 - t) softplus(x)], reduced (module doc)."""
    return _loss(_prepare(input, target, weight, reduction, None), reduction)


def multilabel_soft_margin_loss_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
) -> F64:
    """d/dx sum(loss * g) = (s_i / C) w ((1 - t) sigmoid(x) - t sigmoid(-x))."""
    return _grad(_prepare(input, target, weight, reduction, None), reduction, grad_output)


def multilabel_soft_margin_loss_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
) -> tuple[F64, F64]:
    """(loss_mag, grad_mag) of the module docstring."""
    pp = _prepare(input, target, weight, reduction, None)
    b1, b0 = np.abs(pp.a1), np.abs(pp.a0)
    l1, l0 = _softplus(-pp.x), _softplus(pp.x)
    with np.errstate(invalid="ignore", over="ignore"):
        c = np.where(np.isinf(pp.x), 0.0, np.abs(pp.x))
        per_class = _term(b1, l1 + c + 1.0, "zero") + _term(b0, l0 + c + 1.0, "zero")
        loss_mag = _reduce(pp, _class_mean(pp, per_class), reduction)
        if reduction == "mean" and not pp.denom:
            loss_mag = np.asarray(0.0)
        sig = np.exp(-l1)
        spread = np.where(sig == 0, 0.0, sig * (1.0 + l1))
        grad_mag = np.abs(_scale(pp, reduction, grad_output)) * ((b0 + b1) * spread + b1)
    return loss_mag, grad_mag


def multilabel_soft_margin_loss_outputs(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    choices: Mapping[str, str] | None = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} under ``choices``: the form conformance/judge.py diagnoses."""
    pp = _prepare(input, target, weight, reduction, choices)
    return {"loss": _loss(pp, reduction), "grad": _grad(pp, reduction, None)}

"""Elementwise regression losses (MSE, L1, Huber, smooth L1) in float64.

Input x and target y have the same shape (any shape, 0-d included); ``weight`` is a
per-element weight broadcastable to the input (all ones when not given). With d_i = x_i - y_i
and l_i = w_i f(d_i):

    mse_loss         f(d) = d^2                                  f'(d) = 2 d
    l1_loss          f(d) = |d|                                  f'(d) = sign(d)   (0 at d = 0)
    huber_loss       f(d) = d^2 / 2                if |d| <= delta,   f'(d) = d
                            delta (|d| - delta / 2)  otherwise          = delta sign(d)
    smooth_l1_loss   f(d) = d^2 / (2 beta)         if |d| < beta,     f'(d) = d / beta
                            |d| - beta / 2           otherwise          = sign(d)

delta > 0 and beta >= 0, both finite. smooth_l1 = huber / beta for beta > 0 (same delta = beta)
and beta = 0 is exactly L1 (PyTorch: "beta=0 is equivalent to L1Loss"). The point |d| = delta
is on the quadratic branch for Huber (PyTorch's ``<=``) and |d| = beta on the linear branch for
smooth L1 (PyTorch's ``<``): value and derivative agree there, so only the branch differs.
sign(0) = 0 is PyTorch's derivative of |d| at the kink (measured, torch 2.13).

Every operation is IEEE: inf - inf = NaN, NaN propagates, and a weight multiplies the
unweighted value, so a zero weight does not hide an infinite or NaN term (0 * inf = NaN, as
torch's ``(x - y) ** 2 * weight``). x = ±inf with finite y: loss inf; gradient ±inf (MSE),
±w (L1), ±delta w (Huber), ±w (smooth L1). (torch's l1_loss gives gradient 0, not NaN,
where x - y is NaN: measured, torch 2.13.)

    'none' -> l (the input's shape);  'sum' -> sum_i l_i;  'mean' -> sum_i l_i / n,
    n = the number of elements, whatever the weights (canonical mean_denominator=elements,
    below). A mean over no elements is NaN (0 / 0).

Gradient of sum(loss * g) (s_i = g_i, g, or g / n for 'mean'; 0 when n == 0):

    dx_i = s_i w_i f'(d_i)

Error magnitudes (the comparator accepts |fl(f) - f| <= k eps magnitude): each term made
absolute, plus what the subtraction d = x - y cancels. With c = |x| + |y| (0 where x or y is
not finite: only the limit is meaningful there), a = |d|:

    mse          loss_mag = |w| (d^2 + 2 a c)                 grad_mag = |s w| 2 (a + c)
    l1           loss_mag = |w| (a + c)                       grad_mag = |s w|
    huber        loss_mag = |w| (d^2 / 2 + a c)               grad_mag = |s w| (a + c)
                 linear:    |w| delta (a + delta / 2 + c)                |s w| delta
    smooth_l1    loss_mag = |w| (d^2 / 2 + a c) / beta        grad_mag = |s w| (a + c) / beta
                 linear:    |w| (a + beta / 2 + c)                       |s w|

The c terms allow for d computed from inputs that carry a rounding error of their own (a
relative eps in x and y is eps c in d, 2 a eps c in d^2). A difference of the case's own
rounded inputs is correctly rounded and has the exact sign, so the sign terms need no c; the
branch of f' is decided by the rounded d, which these magnitudes do not cover when input
rounding moves d across a kink. The loss magnitude is reduced like the loss (a mean over no
elements has magnitude 0).

Semantic options (``choices``: option -> choice; conformance/oracle/options.py):

    axis_mean           none | last | class
        last: the per-element terms are first averaged over the input's last axis (Keras'
        MeanSquaredError, MeanAbsoluteError, Huber: "mean over the last axis"); 'none'
        returns those means, 'mean' averages them. class: the same over axis 1.
    squared_scale       one | half   (mse_loss)
        half: (x - y)^2 / 2 per element (optax.l2_loss, tf.nn.l2_loss).

    mean_denominator    elements | weights | nonzero_weights
        weights: a mean divides by sum_i w_i (tf.compat.v1.losses Reduction.MEAN, measured
        11/3 on the example in the tests; also torch 2.13's mse_loss and l1_loss when a
        weight is given, while its huber_loss(weight=...) divides by the element count);
        nonzero_weights: by the number of elements with w_i != 0 (tf.compat.v1.losses'
        default SUM_BY_NONZERO_WEIGHTS). A zero denominator gives NaN, and gradient 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from conformance.oracle import _common as cm
from conformance.oracle._common import F64

__all__ = [
    "LOSSES",
    "OPTION_CHOICES",
    "canonical_choices",
    "huber_loss",
    "huber_loss_grad",
    "huber_loss_magnitude",
    "huber_loss_outputs",
    "l1_loss",
    "l1_loss_grad",
    "l1_loss_magnitude",
    "l1_loss_outputs",
    "mse_loss",
    "mse_loss_grad",
    "mse_loss_magnitude",
    "mse_loss_outputs",
    "smooth_l1_loss",
    "smooth_l1_loss_grad",
    "smooth_l1_loss_magnitude",
    "smooth_l1_loss_outputs",
]

MSE, L1, HUBER, SMOOTH_L1 = "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"
LOSSES: tuple[str, ...] = (MSE, L1, HUBER, SMOOTH_L1)

# option -> choices, the canonical one first (the same for the four losses).
OPTION_CHOICES: dict[str, tuple[str, ...]] = {
    "mean_denominator": ("elements", "weights", "nonzero_weights"),
    "axis_mean": ("none", "last", "class"),
    "squared_scale": ("one", "half"),
}


def canonical_choices(loss: str) -> dict[str, str]:
    """Every option of ``loss`` at its canonical choice."""
    if loss not in LOSSES:
        raise ValueError(f"no regression loss {loss!r} (has: {list(LOSSES)})")
    return {name: choices[0] for name, choices in OPTION_CHOICES.items()}


def _resolve(loss: str, choices: Mapping[str, str] | None) -> dict[str, str]:
    return cm.resolve_choices(loss, OPTION_CHOICES, canonical_choices(loss), choices)


@dataclass
class _Prepared:
    loss: str
    x: F64
    y: F64
    w: F64  # weight, broadcast to x
    param: float  # delta (Huber), beta (smooth L1); unused otherwise
    denom: float  # n of the mean
    axis: int | None = None  # axis_mean=last / class: averaged over that axis first
    half: bool = False  # squared_scale=half: (x - y)^2 / 2


def _check_param(name: str, value: float, *, allow_zero: bool) -> float:
    v = float(value)
    ok = np.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"Argument `{name}` must be a finite number {bound}. Received: {name}={value!r}"
        )
    return v


def _prepare(
    loss: str,
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    weight: npt.ArrayLike | None,
    reduction: str,
    param: float,
    choices: Mapping[str, str] | None,
) -> _Prepared:
    opt = _resolve(loss, choices)
    cm.check_reduction(reduction)
    if loss == HUBER:
        param = _check_param("delta", param, allow_zero=False)
    elif loss == SMOOTH_L1:
        param = _check_param("beta", param, allow_zero=True)
    x = cm.to_f64("input", input)
    y = cm.to_f64("target", target)
    if y.shape != x.shape:
        raise ValueError(
            "Arguments `target` and `input` must have the same shape. "
            f"Received: input.shape={x.shape}, target.shape={y.shape}"
        )
    w = np.ones_like(x)
    if weight is not None:
        v = cm.to_f64("weight", weight)
        try:
            ok = np.broadcast_shapes(v.shape, x.shape) == x.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"Argument `weight` must broadcast to the input's shape {x.shape}. "
                f"Received: weight.shape={v.shape}"
            )
        w = np.broadcast_to(v, x.shape)
    rule = opt["mean_denominator"]
    if rule == "elements":
        denom = float(x.size)
    elif rule == "weights":
        denom = float(np.sum(w))
    else:
        denom = float(np.count_nonzero(w))
    axis = {"none": None, "last": x.ndim - 1, "class": 1}[opt["axis_mean"]]
    if axis is not None and x.ndim > axis:  # a mean over the means: their count
        denom /= x.shape[axis]
    else:
        axis = None
    return _Prepared(loss, x, y, w, param, denom, axis, opt["squared_scale"] == "half")


def _kernel(pp: _Prepared) -> tuple[F64, F64, F64, F64]:
    """(f(d), f'(d), f's magnitude, f''s magnitude) per element, before the weight."""
    x, y = pp.x, pp.y
    with np.errstate(invalid="ignore", over="ignore"):
        d = x - y
        a = np.abs(d)
        c = np.where(np.isfinite(x) & np.isfinite(y), np.abs(x) + np.abs(y), 0.0)
        ac = np.where(c > 0, a * c, 0.0)  # not inf * 0 = NaN at an infinite d
        one = np.ones_like(d)
        if pp.loss == MSE:
            k = 0.5 if pp.half else 1.0
            return k * d * d, 2.0 * k * d, k * (d * d + 2.0 * ac), 2.0 * k * (a + c)
        if pp.loss == L1 or (pp.loss == SMOOTH_L1 and pp.param == 0.0):
            return a, np.sign(d), a + c, one
        p = pp.param
        if pp.loss == HUBER:
            quad = a <= p
            f = np.where(quad, 0.5 * d * d, p * (a - 0.5 * p))
            df = np.where(quad, d, p * np.sign(d))
            f_mag = np.where(quad, 0.5 * d * d + ac, p * (a + 0.5 * p + c))
            return f, df, f_mag, np.where(quad, a + c, p * one)
        quad = a < p  # smooth L1, beta > 0
        f = np.where(quad, 0.5 * d * d / p, a - 0.5 * p)
        df = np.where(quad, d / p, np.sign(d))
        f_mag = np.where(quad, (0.5 * d * d + ac) / p, a + 0.5 * p + c)
        return f, df, f_mag, np.where(quad, (a + c) / p, one)


def _scale(pp: _Prepared, reduction: str, grad_output: npt.ArrayLike | None) -> F64:
    if pp.axis is None:
        return cm.grad_scale(grad_output, reduction, pp.x.shape, pp.denom)
    # each mean spreads its cotangent over the L elements it averages
    shape = pp.x.shape[: pp.axis] + pp.x.shape[pp.axis + 1 :]
    rows = np.expand_dims(cm.grad_scale(grad_output, reduction, shape, pp.denom), pp.axis)
    out: F64 = np.broadcast_to(rows / pp.x.shape[pp.axis], pp.x.shape)
    return out


def _rows(pp: _Prepared, per_elem: F64) -> F64:
    """Per-element terms, or their means over one axis (axis_mean=last or class)."""
    if pp.axis is None:
        return per_elem
    out: F64 = np.mean(per_elem, axis=pp.axis)
    return out


def _value(pp: _Prepared, reduction: str) -> F64:
    f, _, _, _ = _kernel(pp)
    with np.errstate(invalid="ignore", over="ignore"):
        return cm.reduce(_rows(pp, pp.w * f), reduction, pp.denom)


def _grad(pp: _Prepared, reduction: str, grad_output: npt.ArrayLike | None) -> F64:
    _, df, _, _ = _kernel(pp)
    s = _scale(pp, reduction, grad_output)
    with np.errstate(invalid="ignore", over="ignore"):
        out: F64 = np.asarray(s * pp.w * df, dtype=np.float64)
    return out


def _magnitude(pp: _Prepared, reduction: str, grad_output: npt.ArrayLike | None) -> tuple[F64, F64]:
    _, _, f_mag, df_mag = _kernel(pp)
    sw = np.abs(_scale(pp, reduction, grad_output) * pp.w)
    with np.errstate(invalid="ignore", over="ignore"):
        loss_mag = cm.reduce_magnitude(_rows(pp, np.abs(pp.w) * f_mag), reduction, pp.denom)
        grad_mag: F64 = np.asarray(sw * df_mag, dtype=np.float64)
    return loss_mag, grad_mag


# --------------------------------------------------------------------------------------------
# Public functions: for each loss X, X (the loss), X_grad (d/dinput sum(loss * grad_output),
# grad_output None = ones), X_magnitude ((loss_mag, grad_mag)), X_outputs ({"loss", "grad"}
# under ``choices``: the form conformance/judge.py diagnoses).
# --------------------------------------------------------------------------------------------

Choices = Mapping[str, str] | None


def _outputs(pp: _Prepared, reduction: str) -> dict[str, F64]:
    return {"loss": _value(pp, reduction), "grad": _grad(pp, reduction, None)}


def mse_loss(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    choices: Choices = None,
) -> F64:
    """l_i = w_i (x_i - y_i)^2, reduced (module docstring)."""
    return _value(_prepare(MSE, input, target, weight, reduction, 0.0, choices), reduction)


def mse_loss_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> F64:
    """d/dx sum(loss * g) = 2 s_i w_i (x_i - y_i)."""
    pp = _prepare(MSE, input, target, weight, reduction, 0.0, choices)
    return _grad(pp, reduction, grad_output)


def mse_loss_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> tuple[F64, F64]:
    """(loss_mag, grad_mag): |w| (d^2 + 2 |d| c) reduced like the loss; 2 |s w| (|d| + c)."""
    pp = _prepare(MSE, input, target, weight, reduction, 0.0, choices)
    return _magnitude(pp, reduction, grad_output)


def mse_loss_outputs(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    choices: Choices = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} under ``choices``: the form conformance/judge.py diagnoses."""
    return _outputs(_prepare(MSE, input, target, weight, reduction, 0.0, choices), reduction)


def l1_loss(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    choices: Choices = None,
) -> F64:
    """l_i = w_i |x_i - y_i|, reduced (module docstring)."""
    return _value(_prepare(L1, input, target, weight, reduction, 0.0, choices), reduction)


def l1_loss_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> F64:
    """d/dx sum(loss * g) = s_i w_i sign(x_i - y_i), 0 at x_i = y_i."""
    pp = _prepare(L1, input, target, weight, reduction, 0.0, choices)
    return _grad(pp, reduction, grad_output)


def l1_loss_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> tuple[F64, F64]:
    """(loss_mag, grad_mag): |w| (|d| + c) reduced like the loss; |s w|."""
    pp = _prepare(L1, input, target, weight, reduction, 0.0, choices)
    return _magnitude(pp, reduction, grad_output)


def l1_loss_outputs(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    choices: Choices = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} under ``choices``: the form conformance/judge.py diagnoses."""
    return _outputs(_prepare(L1, input, target, weight, reduction, 0.0, choices), reduction)


def huber_loss(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    delta: float = 1.0,
    choices: Choices = None,
) -> F64:
    """l_i = w_i (d^2 / 2 if |d| <= delta else delta (|d| - delta / 2)), reduced."""
    return _value(_prepare(HUBER, input, target, weight, reduction, delta, choices), reduction)


def huber_loss_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    delta: float = 1.0,
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> F64:
    """d/dx sum(loss * g) = s_i w_i clip(d_i, -delta, delta)."""
    pp = _prepare(HUBER, input, target, weight, reduction, delta, choices)
    return _grad(pp, reduction, grad_output)


def huber_loss_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    delta: float = 1.0,
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> tuple[F64, F64]:
    """(loss_mag, grad_mag) per branch (module docstring), the first reduced like the loss."""
    pp = _prepare(HUBER, input, target, weight, reduction, delta, choices)
    return _magnitude(pp, reduction, grad_output)


def huber_loss_outputs(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    delta: float = 1.0,
    choices: Choices = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} under ``choices``: the form conformance/judge.py diagnoses."""
    return _outputs(_prepare(HUBER, input, target, weight, reduction, delta, choices), reduction)


def smooth_l1_loss(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
    choices: Choices = None,
) -> F64:
    """l_i = w_i (d^2 / (2 beta) if |d| < beta else |d| - beta / 2), reduced; L1 at beta = 0."""
    pp = _prepare(SMOOTH_L1, input, target, weight, reduction, beta, choices)
    return _value(pp, reduction)


def smooth_l1_loss_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> F64:
    """d/dx sum(loss * g) = s_i w_i (d_i / beta if |d_i| < beta else sign(d_i))."""
    pp = _prepare(SMOOTH_L1, input, target, weight, reduction, beta, choices)
    return _grad(pp, reduction, grad_output)


def smooth_l1_loss_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> tuple[F64, F64]:
    """(loss_mag, grad_mag) per branch (module docstring), the first reduced like the loss."""
    pp = _prepare(SMOOTH_L1, input, target, weight, reduction, beta, choices)
    return _magnitude(pp, reduction, grad_output)


def smooth_l1_loss_outputs(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
    choices: Choices = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} under ``choices``: the form conformance/judge.py diagnoses."""
    pp = _prepare(SMOOTH_L1, input, target, weight, reduction, beta, choices)
    return _outputs(pp, reduction)

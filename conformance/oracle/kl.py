"""Kullback-Leibler divergence in PyTorch's ``kl_div`` convention, in float64.

``input`` holds log-probabilities x (any shape; classes on axis 1 when ndim >= 2, a 0-d or
1-d input is allowed), ``target`` of the same shape holds probabilities t, or log-probabilities
lt when ``log_target`` (then t = exp(lt)). Pointwise:

    l = t (log t - x)                      log_target:  l = exp(lt) (lt - x)

with 0 log 0 = 0: an element with t = 0 (lt = -inf) contributes 0 whatever x is, x = -inf
and NaN included. A negative target has no logarithm: l = NaN (IEEE log; PyTorch's
``xlogy(t, t)`` is NaN there too, measured torch 2.13). t = NaN gives NaN, x = -inf with t > 0
gives +inf. The KL divergence of the distributions is the sum of l over the class axis.

    'none' -> l (the input's shape);  'sum' -> sum_i l_i;  'mean' -> sum_i l_i / n, n the
    number of elements (PyTorch's default, which its documentation warns is not the KL
    divergence);  'batchmean' -> sum_i l_i / N, N = input.shape[0] (N = 1 for a 0-d input),
    the true KL divergence averaged over the batch for (N, C) inputs. A mean over no
    elements, and batchmean with N = 0, is NaN.

Gradient with respect to the input of sum(loss * g) (only the input is differentiated;
s_i = g_i, g, g / n or g / N; 0 when the denominator is 0):

    dx_i = -s_i t_i                         log_target:  dx_i = -s_i exp(lt_i)

(-0 where t = 0, also at x = -inf: the derivative of the constant 0.)

Error magnitudes (the comparator accepts |fl(f) - f| <= k eps magnitude): each term made
absolute, with what the subtraction log t - x cancels:

    loss_mag = |t| (|log t| + |x| + 1)   (0 where t = 0; log t = lt under log_target)
    grad_mag = |s t|

reduced like the loss (a mean over no elements has magnitude 0). The + 1 allows log(t / p)
computed as one logarithm of a rounded quotient (Keras' form: an absolute eps whatever the
ratio) and a relative rounding of t itself (d(t log t) = (log t + 1) dt).

Semantic options (``choices``: option -> choice, canonical first; conformance/oracle/options.py):

    kl_clip        none | clip_1e-7
        clip_1e-7: Keras' KLDivergence, which takes probabilities p: t' = clip(t, 1e-7, 1),
        p' = clip(exp(x), 1e-7, 1), l = t' (log t' - log p') (log p' = x where exp(x) is not
        clipped). Gradient -s t' where 1e-7 <= exp(x) <= 1 (TensorFlow's clip_by_value passes
        the gradient at the bounds; JAX's clip splits it in halves there), 0 where clipped.
        t' > 0, so zero_target does not apply.
    kl_axis        none | last_sum | class_sum
        last_sum: the terms are first summed over the input's last axis (one KL value per
        sample: Keras, optax.losses.kl_divergence's default axis=-1); 'none' returns those
        sums, 'sum' adds them, 'mean' divides by their count, 'batchmean' by N =
        input.shape[0] as above. A 0-d input has no axis to sum. class_sum: the same over
        axis 1, the class axis (optax's kl_divergence called with axis=1); the same as
        last_sum for (N, C) input.
    zero_target    zero | nan | xlogy | nonpositive
        nan: t = 0 contributes t (log t - x) in IEEE arithmetic, 0 * -inf = NaN (a plain
        t * log(t) implementation; log_target: exp(lt) (lt - x) at lt = -inf, as torch's and
        optax's log-target forms, measured). xlogy: xlogy(t, t) - t x, as torch's kl_div and
        optax's kl_divergence compute it (measured): 0 where t = 0 except NaN where x is
        +-inf or NaN (0 * inf); under log_target the same as nan. Gradients are unchanged.
        nonpositive: a target t <= 0 contributes 0 with gradient 0, a negative one included
        (Paddle's kl_div, measured: its kernel tests t > 0); under log_target the same as
        nan.

Measured (float64; torch 2.13, optax 0.2.8, keras 3.15 on TensorFlow 2.21, paddle 3.3): at
(x, t) = (-inf, 0) torch and optax give NaN, paddle 0; at t < 0 torch and optax give NaN,
paddle 0 (it zeroes every t <= 0); batchmean divides by input.shape[0] in torch and paddle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from conformance.oracle import _common as cm
from conformance.oracle._common import F64

__all__ = [
    "KL",
    "LOSSES",
    "OPTION_CHOICES",
    "REDUCTIONS",
    "canonical_choices",
    "kl_div",
    "kl_div_grad",
    "kl_div_magnitude",
    "kl_div_outputs",
]

KL = "kl_div"
LOSSES: tuple[str, ...] = (KL,)
REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum", "batchmean")
CLIP = 1e-7  # Keras' backend epsilon

# option -> choices, the canonical one first.
OPTION_CHOICES: dict[str, tuple[str, ...]] = {
    "kl_clip": ("none", "clip_1e-7"),
    "kl_axis": ("none", "last_sum", "class_sum"),
    "zero_target": ("zero", "nan", "xlogy", "nonpositive"),
}

Choices = Mapping[str, str] | None


def canonical_choices(loss: str = KL) -> dict[str, str]:
    """Every option at its canonical choice."""
    if loss not in LOSSES:
        raise ValueError(f"no KL loss {loss!r} (has: {list(LOSSES)})")
    return {name: choices[0] for name, choices in OPTION_CHOICES.items()}


def _resolve(choices: Choices) -> dict[str, str]:
    return cm.resolve_choices(KL, OPTION_CHOICES, canonical_choices(), choices)


@dataclass
class _Prepared:
    x: F64
    t: F64  # the target as given (log-probabilities under log_target)
    log_target: bool
    reduction: str
    opt: dict[str, str]
    axis: int | None  # the axis kl_axis sums over (None: no sum)
    denom: float  # of 'mean' (count of the reduced terms) or 'batchmean' (N)


def _prepare(
    input: npt.ArrayLike, target: npt.ArrayLike, log_target: bool, reduction: str, choices: Choices
) -> _Prepared:
    opt = _resolve(choices)
    if reduction not in REDUCTIONS:
        raise ValueError(
            "Argument `reduction` must be one of 'none', 'mean', 'sum', 'batchmean'. "
            f"Received: reduction={reduction!r}"
        )
    x = cm.to_f64("input", input)
    t = cm.to_f64("target", target)
    if t.shape != x.shape:
        raise ValueError(
            "Arguments `target` and `input` must have the same shape. "
            f"Received: input.shape={x.shape}, target.shape={t.shape}"
        )
    axis = {"last_sum": -1, "class_sum": 1}.get(opt["kl_axis"])
    if axis is not None and x.ndim <= max(axis, 0):
        axis = None  # no such axis (a 0-d input; class_sum on 1-d input): nothing to sum
    terms = x.shape if axis is None else x.shape[: axis % x.ndim] + x.shape[axis % x.ndim + 1 :]
    if reduction == "batchmean":
        denom = float(x.shape[0]) if x.ndim >= 1 else 1.0
    else:
        denom = float(np.prod(terms, dtype=np.float64))
    return _Prepared(x, t, bool(log_target), reduction, opt, axis, denom)


def _kernel(pp: _Prepared) -> tuple[F64, F64, F64, F64]:
    """(l, dl/dx, l's magnitude, |dl/dx| bound) per element, before the reduction."""
    x = pp.x
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if pp.log_target:
            t, log_t = np.exp(pp.t), pp.t
        else:
            t, log_t = pp.t, np.log(pp.t)
        if pp.opt["kl_clip"] == "clip_1e-7":
            tc = np.clip(t, CLIP, 1.0)
            p = np.exp(x)
            low, high = p < CLIP, p > 1.0
            log_p = np.where(low, np.log(CLIP), np.where(high, 0.0, x))
            log_tc = np.log(tc)
            loss = tc * (log_tc - log_p)
            dx = np.where(low | high, 0.0, -tc)
            mag = tc * (np.abs(log_tc) + np.abs(log_p) + 1.0)
            return loss, dx, mag, tc
        zero = t == 0  # t = 0, lt = -inf
        loss = t * (log_t - x)  # IEEE: NaN where t = 0 (zero_target=nan)
        rule = pp.opt["zero_target"]
        if rule == "zero":
            loss = np.where(zero, 0.0, loss)
        elif rule == "xlogy" and not pp.log_target:
            loss = np.where(zero, 0.0 - t * x, loss)
        dx = -t
        if rule == "nonpositive" and not pp.log_target:
            dropped = t <= 0
            loss = np.where(dropped, 0.0, loss)
            dx = np.where(dropped, 0.0, dx)
        mag = np.where(zero, 0.0, np.abs(t) * (np.abs(log_t) + np.abs(x) + 1.0))
        return loss, dx, mag, np.abs(t)


def _terms(pp: _Prepared, per_elem: F64) -> F64:
    """Per-element terms, or their sums over kl_axis's axis."""
    out: F64 = per_elem if pp.axis is None else np.sum(per_elem, axis=pp.axis)
    return out


def _scale(pp: _Prepared, grad_output: npt.ArrayLike | None) -> F64:
    """d(reduced loss)/d(l_i) times the upstream gradient, per element."""
    shape = _terms(pp, np.empty(pp.x.shape)).shape
    want = shape if pp.reduction == "none" else ()
    if grad_output is None:
        g = np.ones(want, dtype=np.float64)
    else:
        g = cm.to_f64("grad_output", grad_output)
        if g.shape != want:
            raise ValueError(
                f"Argument `grad_output` must have the loss's shape {want} for "
                f"reduction={pp.reduction!r}. Received: grad_output.shape={g.shape}"
            )
    if pp.reduction in ("mean", "batchmean"):
        g = g / pp.denom if pp.denom != 0 else np.zeros_like(g)
    g = np.broadcast_to(g, shape)
    if pp.axis is not None:  # a sum spreads its cotangent unchanged over its axis
        g = np.expand_dims(g, pp.axis)
    return np.broadcast_to(g, pp.x.shape).astype(np.float64, copy=False)


def _reduction(pp: _Prepared) -> str:
    return "mean" if pp.reduction == "batchmean" else pp.reduction


def _value(pp: _Prepared) -> F64:
    loss, _, _, _ = _kernel(pp)
    with np.errstate(invalid="ignore", over="ignore"):
        return cm.reduce(_terms(pp, loss), _reduction(pp), pp.denom)


def _grad(pp: _Prepared, grad_output: npt.ArrayLike | None) -> F64:
    _, dx, _, _ = _kernel(pp)
    with np.errstate(invalid="ignore", over="ignore"):
        out: F64 = np.asarray(_scale(pp, grad_output) * dx, dtype=np.float64)
    return out


def _magnitude(pp: _Prepared, grad_output: npt.ArrayLike | None) -> tuple[F64, F64]:
    _, _, mag, dx_mag = _kernel(pp)
    with np.errstate(invalid="ignore", over="ignore"):
        loss_mag = cm.reduce_magnitude(_terms(pp, mag), _reduction(pp), pp.denom)
        grad_mag: F64 = np.asarray(np.abs(_scale(pp, grad_output)) * dx_mag, dtype=np.float64)
    return loss_mag, grad_mag


# --------------------------------------------------------------------------------------------
# Public functions: kl_div (the loss), kl_div_grad (d/dinput sum(loss * grad_output),
# grad_output None = ones), kl_div_magnitude ((loss_mag, grad_mag)), kl_div_outputs
# ({"loss", "grad"} under ``choices``: the form conformance/judge.py diagnoses).
# --------------------------------------------------------------------------------------------


def kl_div(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    log_target: bool = False,
    reduction: str = "mean",
    choices: Choices = None,
) -> F64:
    """l_i = t_i (log t_i - x_i) (0 where t_i = 0), reduced (module docstring)."""
    return _value(_prepare(input, target, log_target, reduction, choices))


def kl_div_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    log_target: bool = False,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> F64:
    """d/dx sum(loss * g) = -s_i t_i (t_i = exp(lt_i) under log_target)."""
    return _grad(_prepare(input, target, log_target, reduction, choices), grad_output)


def kl_div_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    log_target: bool = False,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> tuple[F64, F64]:
    """(loss_mag, grad_mag): |t| (|log t| + |x| + 1) reduced like the loss; |s t|."""
    return _magnitude(_prepare(input, target, log_target, reduction, choices), grad_output)


def kl_div_outputs(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    log_target: bool = False,
    reduction: str = "mean",
    choices: Choices = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} under ``choices``: the form conformance/judge.py diagnoses."""
    pp = _prepare(input, target, log_target, reduction, choices)
    return {"loss": _value(pp), "grad": _grad(pp, None)}

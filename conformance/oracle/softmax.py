"""Softmax and log-softmax in float64, with their vector-Jacobian products.

Both are computed from the max-shifted log-sum-exp

    m = max_c x_c,   lse = m + log(sum_c exp(x_c - m))
    log_softmax(x)_c = (x_c - m) - log(sum_c exp(x_c - m))   (= x_c - lse)
    softmax(x)_c     = exp(x_c - m) / sum_c exp(x_c - m)

so no exp overflows (every exponent is <= 0) and the log never sees an underflowed
probability: log(softmax(x)) would return -inf for x = [1000, 0], log_softmax returns
[0, -1000]. Rows whose max is +-inf give NaN, as in the frameworks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from conformance.oracle._common import F64, to_f64

__all__ = ["log_softmax", "log_softmax_grad", "softmax", "softmax_grad"]


class LseParts(NamedTuple):
    """Pieces of a max-shifted log-sum-exp along one axis (keepdims on that axis).

    ``neg_log_p`` = lse - x >= 0 and ``exp_shifted`` = exp(x - m) are the only two
    input-sized arrays. ``argmax`` is the position of (one) max, ``rest`` the sum of
    exp(x_c - m) over the other classes, ``sum_exp`` = exp(0) + rest and ``lse`` = m +
    log1p(rest); all four are reduced along the axis.
    """

    neg_log_p: F64
    exp_shifted: F64
    sum_exp: F64
    lse: F64
    rest: F64
    argmax: npt.NDArray[np.intp]


def lse_parts(x: F64, axis: int) -> LseParts:
    """Compute log-sum-exp pieces with two input-sized temporaries (shared with the losses).

    The sum is split as exp(0) + rest, rest = sum over the non-max classes, and the log is
    log1p(rest): when one class dominates, log(1 + tiny) would keep only ~16 - |log10 tiny|
    digits of the loss, log1p keeps them all. 1 - p_max = rest / sum_exp stays accurate
    for the same reason (the gradient uses it).
    """
    argmax = np.argmax(x, axis=axis, keepdims=True)
    m = np.take_along_axis(x, argmax, axis=axis)
    # inf - inf = NaN for rows holding +-inf is the intended result, not a warning.
    with np.errstate(invalid="ignore"):
        shifted = x - m
    exp_shifted = np.exp(shifted)
    # exp(x_max - m) is exactly 1 for finite rows, NaN for rows whose max is +-inf or NaN;
    # keep that value so NaN still propagates, but leave it out of `rest`.
    e_max = np.take_along_axis(exp_shifted, argmax, axis=axis)
    np.put_along_axis(exp_shifted, argmax, 0.0, axis=axis)
    rest = np.sum(exp_shifted, axis=axis, keepdims=True)
    np.put_along_axis(exp_shifted, argmax, e_max, axis=axis)
    log_sum = np.log1p(rest + (e_max - 1.0))
    # lse - x = log_sum - (x - m); computed in place to avoid a third input-sized array.
    neg_log_p = np.subtract(log_sum, shifted, out=shifted)
    return LseParts(neg_log_p, exp_shifted, e_max + rest, m + log_sum, rest, argmax)


def softmax(input: npt.ArrayLike, axis: int = 1) -> F64:
    """softmax(x)_c = exp(x_c - lse(x)), along ``axis``."""
    parts = lse_parts(to_f64("input", input), axis)
    return np.divide(parts.exp_shifted, parts.sum_exp, out=parts.exp_shifted)


def log_softmax(input: npt.ArrayLike, axis: int = 1) -> F64:
    """log_softmax(x)_c = x_c - lse(x), along ``axis``."""
    parts = lse_parts(to_f64("input", input), axis)
    return np.negative(parts.neg_log_p, out=parts.neg_log_p)


def _check_grad_output(grad_output: npt.ArrayLike, shape: tuple[int, ...]) -> F64:
    g = to_f64("grad_output", grad_output)
    if g.shape != shape:
        raise ValueError(
            f"Argument `grad_output` must have the input's shape {shape}. "
            f"Received: grad_output.shape={g.shape}"
        )
    return g


def _excluding_argmax_sum(v: F64, argmax: npt.NDArray[np.intp], axis: int) -> F64:
    """sum over the axis of v without the argmax entry (v is modified and restored)."""
    v_m = np.take_along_axis(v, argmax, axis=axis)
    np.put_along_axis(v, argmax, 0.0, axis=axis)
    total: F64 = np.sum(v, axis=axis, keepdims=True)
    np.put_along_axis(v, argmax, v_m, axis=axis)
    return total


def softmax_grad(input: npt.ArrayLike, grad_output: npt.ArrayLike, axis: int = 1) -> F64:
    """VJP of softmax: with y = softmax(x), d/dx_k sum_c g_c y_c = y_k (g_k - sum_c g_c y_c).

    At the max class k = m the bracket is rewritten g_m (1 - y_m) - sum_{c != m} g_c y_c so
    that a dominant class (y_m = 1 - tiny) does not lose the result to cancellation.
    """
    x = to_f64("input", input)
    g = _check_grad_output(grad_output, x.shape)
    parts = lse_parts(x, axis)
    y = np.divide(parts.exp_shifted, parts.sum_exp, out=parts.exp_shifted)
    gy = g * y
    others = _excluding_argmax_sum(gy, parts.argmax, axis)
    g_m = np.take_along_axis(g, parts.argmax, axis=axis)
    y_m = np.take_along_axis(y, parts.argmax, axis=axis)
    out: F64 = y * (g - (others + g_m * y_m))
    at_m = y_m * (g_m * (parts.rest / parts.sum_exp) - others)
    np.put_along_axis(out, parts.argmax, at_m, axis=axis)
    return out


def log_softmax_grad(input: npt.ArrayLike, grad_output: npt.ArrayLike, axis: int = 1) -> F64:
    """VJP of log_softmax: d/dx_k sum_c g_c (x_c - lse) = g_k - softmax(x)_k sum_c g_c.

    At the max class: g_m (1 - y_m) - y_m sum_{c != m} g_c (no cancellation in 1 - y_m).
    """
    x = to_f64("input", input)
    g = _check_grad_output(grad_output, x.shape)
    parts = lse_parts(x, axis)
    y = np.divide(parts.exp_shifted, parts.sum_exp, out=parts.exp_shifted)
    others = _excluding_argmax_sum(g.copy(), parts.argmax, axis)
    g_m = np.take_along_axis(g, parts.argmax, axis=axis)
    y_m = np.take_along_axis(y, parts.argmax, axis=axis)
    out: F64 = g - y * (others + g_m)
    at_m = g_m * (parts.rest / parts.sum_exp) - y_m * others
    np.put_along_axis(out, parts.argmax, at_m, axis=axis)
    return out

"""The building blocks as target-less cases: softmax, log_softmax, sigmoid, log_sigmoid.

Every loss the suite covers is built from one of these, and a user porting a model calls
them directly too (``torch.softmax(x, dim=1)`` -> ``paddle.nn.functional.softmax(x, axis=1)``).
A case of one has an input and no target; its "loss" output is the activation itself (the
input's shape) and its "grad" output is the vector-Jacobian product with a cotangent g of
the input's shape that the case draws (``Case.grad_output``): d sum(f(x) * g) / dx. A
cotangent of ones would say nothing about softmax, whose entries sum to 1 whatever x is
(the gradient of their sum is exactly 0).

    softmax(x)_c     = exp(x_c - lse(x)),     log_softmax(x)_c = x_c - lse(x)   (axis 1)
    sigmoid(x)       = 1 / (1 + exp(-x)),     log_sigmoid(x)   = -softplus(-x)
    d sigmoid        = g s (1 - s) = g s(x) s(-x)
    d log_sigmoid    = g s(-x)

softmax and log_softmax and their products are conformance/oracle/softmax.py's. sigmoid is
computed as exp(min(x, 0)) / (1 + exp(-|x|)) and log_sigmoid as min(x, 0) - log1p(exp(-|x|)):
no overflow, full relative accuracy in both tails. x = ±inf gives the limits (sigmoid 0 or 1,
log_sigmoid -inf or 0, gradients 0); NaN propagates.

Error magnitudes (the comparator accepts |fl(f) - f| <= k eps magnitude per element), written
for the usual implementations:

    softmax        y (1 + |x - lse|)          exp of a shifted logit: the shift's rounding
                                              is amplified by the exponent
    log_softmax    |x| + |lse| + 1            a difference of two O(|x|) numbers
    sigmoid        s                          relative accuracy
    log_sigmoid    |min(x, 0)| + softplus(-|x|)   min(x, 0) - log1p(exp(-|x|)) is a sum
    softmax VJP    y (|g| + sum_c |g_c| y_c) (1 + |x - lse|)
    log_softmax VJP  |g| + y (1 + |x - lse|) sum_c |g_c|
    sigmoid VJP    |g| s                      backward formulas use the rounded output y:
                                              y (1 - y) has absolute error eps y
    log_sigmoid VJP  |g| s(-x) (1 + s(x))     relative accuracy (g s(-x) is formed from x)

There are no parameters and no semantic options: a difference from these is a defect.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from conformance.oracle._common import F64, to_f64
from conformance.oracle.softmax import _check_grad_output, lse_parts

__all__ = [
    "log_sigmoid",
    "log_sigmoid_grad",
    "log_sigmoid_magnitude",
    "log_softmax_magnitude",
    "sigmoid",
    "sigmoid_grad",
    "sigmoid_magnitude",
    "softmax_magnitude",
]


def _sigmoid(x: F64) -> F64:
    e = np.exp(-np.abs(x))  # in (0, 1]; 0 at ±inf, NaN at NaN
    with np.errstate(invalid="ignore"):
        out: F64 = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return np.where(np.isnan(x), np.nan, out)


def sigmoid(input: npt.ArrayLike) -> F64:
    """sigmoid(x) = 1 / (1 + exp(-x)), elementwise."""
    return _sigmoid(to_f64("input", input))


def log_sigmoid(input: npt.ArrayLike) -> F64:
    """log_sigmoid(x) = log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), elementwise."""
    x = to_f64("input", input)
    with np.errstate(invalid="ignore"):
        out: F64 = np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))
    return out


def _cotangent(x: F64, grad_output: npt.ArrayLike | None) -> F64:
    return np.ones_like(x) if grad_output is None else _check_grad_output(grad_output, x.shape)


def sigmoid_grad(input: npt.ArrayLike, grad_output: npt.ArrayLike | None = None) -> F64:
    """d sum(sigmoid(x) g) / dx = g sigmoid(x) sigmoid(-x)."""
    x = to_f64("input", input)
    g = _cotangent(x, grad_output)
    out: F64 = g * _sigmoid(x) * _sigmoid(-x)
    return out


def log_sigmoid_grad(input: npt.ArrayLike, grad_output: npt.ArrayLike | None = None) -> F64:
    """d sum(log_sigmoid(x) g) / dx = g sigmoid(-x)."""
    x = to_f64("input", input)
    out: F64 = _cotangent(x, grad_output) * _sigmoid(-x)
    return out


def sigmoid_magnitude(
    input: npt.ArrayLike, grad_output: npt.ArrayLike | None = None
) -> tuple[F64, F64]:
    """(s, |g| s): relative accuracy for the value; the gradient from the rounded output."""
    x = to_f64("input", input)
    s = _sigmoid(x)
    return s, np.abs(_cotangent(x, grad_output)) * s


def log_sigmoid_magnitude(
    input: npt.ArrayLike, grad_output: npt.ArrayLike | None = None
) -> tuple[F64, F64]:
    """(|min(x, 0)| + softplus(-|x|), |g| s(-x) (1 + s(x))): relative accuracy for both."""
    x = to_f64("input", input)
    g = np.abs(_cotangent(x, grad_output))
    with np.errstate(invalid="ignore"):
        loss_mag: F64 = np.abs(np.minimum(x, 0.0)) + np.log1p(np.exp(-np.abs(x)))
    s_neg = _sigmoid(-x)
    return np.where(np.isinf(x), 0.0, loss_mag), g * s_neg * (1.0 + _sigmoid(x))


def softmax_magnitude(
    input: npt.ArrayLike, grad_output: npt.ArrayLike | None = None, axis: int = 1
) -> tuple[F64, F64]:
    """(y (1 + |x - lse|), y (|g| + sum_c |g_c| y_c) (1 + |x - lse|))."""
    x = to_f64("input", input)
    g = np.abs(_cotangent(x, grad_output))
    parts = lse_parts(x, axis)
    spread = 1.0 + np.nan_to_num(parts.neg_log_p, nan=0.0, posinf=0.0)
    y = np.divide(parts.exp_shifted, parts.sum_exp, out=parts.exp_shifted)
    loss_mag: F64 = y * spread
    grad_mag: F64 = y * (g + np.sum(g * y, axis=axis, keepdims=True)) * spread
    return loss_mag, grad_mag


def log_softmax_magnitude(
    input: npt.ArrayLike, grad_output: npt.ArrayLike | None = None, axis: int = 1
) -> tuple[F64, F64]:
    """(|x| + |lse| + 1, |g| + y (1 + |x - lse|) sum_c |g_c|)."""
    x = to_f64("input", input)
    g = np.abs(_cotangent(x, grad_output))
    parts = lse_parts(x, axis)
    spread = 1.0 + np.nan_to_num(parts.neg_log_p, nan=0.0, posinf=0.0)
    y = parts.exp_shifted / parts.sum_exp
    with np.errstate(invalid="ignore"):
        loss_mag: F64 = np.abs(x) + np.abs(parts.lse) + 1.0
    grad_mag: F64 = g + y * spread * np.sum(g, axis=axis, keepdims=True)
    return loss_mag, grad_mag

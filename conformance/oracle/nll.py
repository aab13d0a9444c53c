"""Negative log-likelihood on log-probabilities, in float64 (see docs/semantics.md).

Class-index targets only (an integer ``target`` of shape (N, d1, ..., dk)):

    l_i = -w_{y_i} x_{i, y_i}     (0 where y_i == ignore_index)
    'mean' -> sum_i l_i / D,  D = sum_{i not ignored} w_{y_i}   (same rules as cross_entropy)

Gradient of sum(loss * g): dx_ik = -s_i w_{y_i} [k == y_i], s_i = g_i / D ('mean') or g_i.
nll_loss(log_softmax(x)) equals cross_entropy(x) without label smoothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from conformance.oracle import _common as cm
from conformance.oracle._common import F64

__all__ = ["nll_loss", "nll_loss_grad", "nll_loss_magnitude"]


def _prepare(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    weight: npt.ArrayLike | None,
    ignore_index: int,
    reduction: str,
) -> tuple[F64, npt.NDArray[np.intp], npt.NDArray[np.bool_], F64, float]:
    """Returns (x, safe target index, valid mask, w_{y_i} (0 where ignored), D)."""
    cm.check_reduction(reduction)
    x = cm.check_input(input)
    w = cm.check_weight(weight, x.shape[1])
    tgt = cm.parse_target(target, x.shape, ignore_index, allow_probs=False)
    assert tgt.indices is not None
    w_y = np.where(tgt.valid, w[tgt.indices], 0.0)
    return x, tgt.indices, tgt.valid, w_y, float(np.sum(w_y))


def _per_element(
    x: F64, index: npt.NDArray[np.intp], valid: npt.NDArray[np.bool_], w_y: F64
) -> F64:
    x_y = np.take_along_axis(x, index[:, None], axis=1)[:, 0]
    # where, not multiply: an ignored element may hold an inf/NaN score and must give 0.
    return np.where(valid, -w_y * x_y, 0.0)


def nll_loss(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> F64:
    """l_i = -w_{y_i} x_{i, y_i}, reduced like cross_entropy (module docstring)."""
    x, index, valid, w_y, denom = _prepare(input, target, weight, ignore_index, reduction)
    return cm.reduce(_per_element(x, index, valid, w_y), reduction, denom)


def nll_loss_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
) -> F64:
    """d/dx sum(loss * g): -s_i w_{y_i} at the target class, 0 elsewhere."""
    x, index, valid, w_y, denom = _prepare(input, target, weight, ignore_index, reduction)
    scale = cm.grad_scale(grad_output, reduction, valid.shape, denom)
    grad = np.zeros_like(x)
    np.put_along_axis(grad, index[:, None], (-scale * w_y)[:, None], axis=1)
    return grad


def nll_loss_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
) -> tuple[F64, F64]:
    """(loss_mag, grad_mag): loss_mag_i = |w_{y_i} x_{i, y_i}| reduced likewise; |grad|."""
    x, index, valid, w_y, denom = _prepare(input, target, weight, ignore_index, reduction)
    loss_mag = np.abs(_per_element(x, index, valid, w_y))
    grad = nll_loss_grad(
        x,
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
        grad_output=grad_output,
    )
    return cm.reduce_magnitude(loss_mag, reduction, denom), np.abs(grad, out=grad)

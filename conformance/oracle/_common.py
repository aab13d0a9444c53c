"""Argument checks, target parsing and reductions shared by the loss oracles.

Every loss module in this package follows the same pattern: validate and upcast its
arguments here, compute a per-element loss l_i (one value per target element, i.e. per
(n, d1, ..., dk) position), then reduce it with :func:`reduce`. Keeping these rules in one
place is what makes "the same ignore/mean rules as cross_entropy" true by construction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum")


def is_float_dtype(dtype: np.dtype[Any]) -> bool:
    """NumPy floats, and ml_dtypes' extension floats (bfloat16, float8_*: kind 'V')."""
    return dtype.kind == "f" or (dtype.kind == "V" and "float" in dtype.name)


def to_f64(name: str, value: npt.ArrayLike) -> F64:
    """Upcast ``value`` to a float64 array (no copy when it already is one)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biu" and not is_float_dtype(arr.dtype):
        raise ValueError(
            f"Argument `{name}` must be a real numeric array. Received: {name}.dtype={arr.dtype}"
        )
    return arr.astype(np.float64, copy=False)


def check_input(value: npt.ArrayLike) -> F64:
    """The score tensor: shape (N, C) or (N, C, d1, ..., dk) with C >= 1."""
    x = to_f64("input", value)
    if x.ndim < 2 or x.shape[1] < 1:
        raise ValueError(
            "Argument `input` must have shape (N, C) or (N, C, d1, ..., dk) with C >= 1. "
            f"Received: input.shape={x.shape}"
        )
    return x


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(
            "Argument `reduction` must be one of 'none', 'mean', 'sum'. "
            f"Received: reduction={reduction!r}"
        )


def check_weight(weight: npt.ArrayLike | None, num_classes: int) -> F64:
    """Per-class weight of shape (C,); ``None`` means all ones."""
    if weight is None:
        return np.ones(num_classes, dtype=np.float64)
    w = to_f64("weight", weight)
    if w.shape != (num_classes,):
        raise ValueError(
            f"Argument `weight` must have length C={num_classes}. Received: weight.shape={w.shape}"
        )
    return w


def check_label_smoothing(label_smoothing: float) -> float:
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(
            "Argument `label_smoothing` must be in [0, 1]. "
            f"Received: label_smoothing={label_smoothing!r}"
        )
    return eps


class Target(NamedTuple):
    """A parsed target.

    For class indices (``kind == "index"``): ``indices`` has shape (N, d1, ..., dk) with
    ignored positions replaced by 0 so it can be used for gathering, and ``valid`` is False
    exactly at the ignored positions. For probabilities (``kind == "probs"``): ``probs`` is
    the target of the input's shape in its own float dtype (a float64 copy of a large target
    would be one more input-sized array) and ``valid`` is all True.
    """

    kind: Literal["index", "probs"]
    indices: npt.NDArray[np.intp] | None
    valid: npt.NDArray[np.bool_]
    probs: npt.NDArray[np.floating[Any]] | None  # the caller's dtype; upcast where used


def parse_target(
    target: npt.ArrayLike,
    input_shape: tuple[int, ...],
    ignore_index: int,
    *,
    allow_probs: bool = True,
) -> Target:
    """Decide the target kind from its dtype (integer -> indices, float -> probabilities)."""
    t = np.asarray(target)
    num_classes = input_shape[1]
    loss_shape = input_shape[:1] + input_shape[2:]
    if t.dtype.kind in "iu":
        if t.shape != loss_shape:
            raise ValueError(
                f"Argument `target` of class indices must have shape {loss_shape} "
                f"(input.shape without axis 1). Received: target.shape={t.shape}"
            )
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
            raise ValueError(
                f"Argument `ignore_index` must be an int. Received: ignore_index={ignore_index!r}"
            )
        valid = t != ignore_index
        bad = valid & ((t < 0) | (t >= num_classes))
        if bad.any():
            raise ValueError(
                f"Argument `target` must hold class indices in [0, C={num_classes}) or "
                f"ignore_index={int(ignore_index)}. Received: out-of-range values "
                f"{np.unique(t[bad])[:5].tolist()}"
            )
        index = np.where(valid, t, 0).astype(np.intp, copy=False)
        return Target("index", index, valid, None)
    if is_float_dtype(t.dtype):
        if not allow_probs:
            raise ValueError(
                "Argument `target` must hold integer class indices for this loss. "
                f"Received: target.dtype={t.dtype}"
            )
        if t.shape != input_shape:
            raise ValueError(
                "Argument `target` of probabilities must have the input's shape "
                f"{input_shape}. Received: target.shape={t.shape}"
            )
        valid = np.ones(loss_shape, dtype=np.bool_)
        return Target("probs", None, valid, t)
    raise ValueError(
        "Argument `target` must have an integer dtype (class indices) or a float dtype "
        f"(probabilities). Received: target.dtype={t.dtype}"
    )


def class_axis_view(vec: F64, ndim: int) -> F64:
    """Reshape a per-class vector (C,) so it broadcasts along axis 1 of an ndim array."""
    return vec.reshape((1, -1) + (1,) * (ndim - 2))


def loss_shape(reduction: str, elem_shape: tuple[int, ...]) -> tuple[int, ...]:
    return elem_shape if reduction == "none" else ()


def reduce(per_elem: F64, reduction: str, denom: float) -> F64:
    """'none' -> per_elem; 'sum' -> sum; 'mean' -> sum / denom.

    A mean with denom == 0 (every target ignored, or only zero-weight classes targeted) is
    undefined and is NaN, even where label smoothing makes the numerator positive (x / 0
    would say +inf, which no framework returns).
    """
    if reduction == "none":
        return np.asarray(per_elem, dtype=np.float64)
    total = np.asarray(np.sum(per_elem), dtype=np.float64)
    if reduction == "sum":
        return total
    return np.asarray(total / denom if denom != 0 else np.nan, dtype=np.float64)


def reduce_magnitude(per_elem: F64, reduction: str, denom: float) -> F64:
    """Like :func:`reduce` on non-negative magnitudes, with 0 where the mean is undefined."""
    if reduction == "none":
        return np.asarray(per_elem, dtype=np.float64)
    total = np.asarray(np.sum(per_elem), dtype=np.float64)
    if reduction == "sum":
        return total
    return np.asarray(total / abs(denom) if denom != 0 else 0.0, dtype=np.float64)


def grad_scale(
    grad_output: npt.ArrayLike | None,
    reduction: str,
    elem_shape: tuple[int, ...],
    denom: float,
) -> F64:
    """d(reduced loss)/d(l_i) times the upstream gradient, one value per element i.

    'none': g_i; 'sum': g; 'mean': g / D. An undefined mean (D == 0) has no contributing
    elements, so its gradient is the empty sum: 0.
    """
    shape = loss_shape(reduction, elem_shape)
    if grad_output is None:
        g = np.ones(shape, dtype=np.float64)
    else:
        g = to_f64("grad_output", grad_output)
        if g.shape != shape:
            raise ValueError(
                f"Argument `grad_output` must have the loss's shape {shape} for "
                f"reduction={reduction!r}. Received: grad_output.shape={g.shape}"
            )
    if reduction == "mean":
        g = g / denom if denom != 0 else np.zeros_like(g)
    return np.broadcast_to(g, elem_shape).astype(np.float64, copy=False)


def resolve_choices(
    loss: str,
    allowed: Mapping[str, Collection[str]],
    canonical: Mapping[str, str],
    choices: Mapping[str, str] | None,
) -> dict[str, str]:
    """``canonical`` overridden by ``choices``; ``allowed`` maps each option ``loss`` has to
    its choices. An option or a choice it does not have raises ValueError naming it."""
    opt = dict(canonical)
    for name, choice in (choices or {}).items():
        if name not in allowed:
            raise ValueError(f"{loss} has no semantic option {name!r} (has: {sorted(allowed)})")
        if choice not in allowed[name]:
            raise ValueError(
                f"option {name} has no choice {choice!r} (has: {tuple(allowed[name])})"
            )
        opt[name] = choice
    return opt

"""Cross-entropy under any combination of semantic options (conformance/oracle/options.py).

The canonical oracle (cross_entropy.py) is written for accuracy and memory on large inputs.
This module is written for plainness: one dense float64 formula with every option as a
branch, used to *diagnose* a row that misses canonical (which definition reproduces the
framework's numbers?). With every option at its canonical choice it must agree with the
canonical oracle; tests/test_variants.py checks that on random cases, which also makes each
implementation an independent check of the other.

Per element i (classes on axis 1), with t the one-hot or probability target:

    z_ic = x_ic - max_c x_ic                       (clipped at -64 under logit_clip=64)
    nlp_ic = log sum_c exp(z_ic) - z_ic,   p_ic = exp(-nlp_ic)
    t'_ic = (1 - eps) t_ic + eps/C                 (smoothing_mass: uniform)
          = (1 - eps) t_ic + eps/(C-1) (1 - t_ic)  (others)
          = (1 - eps) t_ic + eps/K, K = last dim    (last_axis)
    a_ic = w_c t'_ic                               (soft_weighting: per_class)
         = (sum_k w_k t'_ik) t'_ic                 (per_element; t'_ic without class weights)
    l_i = sum_c a_ic nlp_ic                        (0 * inf = 0 unless zero_log_zero=nan)
    mean = sum_i l_i / D, D chosen by index_mean / probs_mean; D = 0 -> NaN or 0 (empty_mean)
    grad_ik = s_i (A_i p_ik - a_ik),  A_i = sum_c a_ic,  s_i = 1 or 1/D (0 when D = 0)
    (target_sum=assumed_one: A_i / sum_c t'_ic, the "softmax minus target" of fused kernels)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from conformance.oracle import _common as cm
from conformance.oracle._common import F64
from conformance.oracle.options import canonical

__all__ = ["MAX_ELEMENTS", "cross_entropy", "nll_loss"]

MAX_ELEMENTS = 2**22  # dense (N, C, ...) float64 arrays: a few times 32 MiB at most
_CLIP = -64.0


def _smoothed(t: F64, eps: float, mass: str, num_classes: int, last: int) -> F64:
    if eps == 0.0:
        return t
    if mass == "others" and num_classes > 1:
        return (1.0 - eps) * t + eps / (num_classes - 1) * (1.0 - t)
    divisor = last if mass == "last_axis" else num_classes
    return (1.0 - eps) * t + eps / divisor


def cross_entropy(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    choices: Mapping[str, str] | None = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} of softmax cross-entropy under ``choices`` (option -> choice;
    options not named take their canonical choice)."""
    opt: dict[str, Any] = {**canonical("cross_entropy"), **(choices or {})}
    cm.check_reduction(reduction)
    x = cm.check_input(input)
    if x.size > MAX_ELEMENTS:
        raise ValueError(f"input of {x.size} elements is too large to diagnose")
    num_classes = x.shape[1]
    w = cm.class_axis_view(cm.check_weight(weight, num_classes), x.ndim)
    eps = cm.check_label_smoothing(label_smoothing)
    tgt = cm.parse_target(target, x.shape, ignore_index)
    valid = tgt.valid[:, None]

    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        z = x - np.max(x, axis=1, keepdims=True)
        if opt["logit_clip"] == "64":
            z = np.maximum(z, _CLIP)
        nlp = np.log(np.sum(np.exp(z), axis=1, keepdims=True)) - z
        p = np.exp(-nlp)

        if tgt.kind == "index":
            assert tgt.indices is not None
            classes = np.arange(num_classes).reshape((1, -1) + (1,) * (x.ndim - 2))
            t = (tgt.indices[:, None] == classes).astype(np.float64)
        else:
            assert tgt.probs is not None
            t = tgt.probs.astype(np.float64)
        ts = _smoothed(t, eps, opt["smoothing_mass"], num_classes, x.shape[-1])
        # The element's weight sum_c w_c t'_c; with no class weights there is no weighting
        # at all (Paddle: "if weight is None, go to the next step"), not a scale by sum t'.
        omega = (
            np.sum(w * ts, axis=1, keepdims=True) if weight is not None else np.ones_like(ts[:, :1])
        )
        a = omega * ts if opt["soft_weighting"] == "per_element" else w * ts
        a = np.where(valid, a, 0.0)
        terms = a * nlp if opt["zero_log_zero"] == "nan" else np.where(a == 0, 0.0, a * nlp)
        per_elem = np.sum(terms, axis=1)

        if tgt.kind == "index" and opt["soft_weighting"] == "per_class":
            assert tgt.indices is not None
            omega = np.take_along_axis(w * t, tgt.indices[:, None], axis=1)
        omega = np.where(valid, omega, 0.0)[:, 0]
        rule = opt["index_mean"] if tgt.kind == "index" else opt["probs_mean"]
        denom = {
            "weights": float(np.sum(omega)),
            "count": float(np.sum(tgt.valid)),
            "elements": float(tgt.valid.size),
            "batch": float(x.shape[0]),
        }[rule]

        scale: F64 | float
        if reduction == "none":
            loss = per_elem[:, None] if opt["none_shape"] == "keepdim" else per_elem
            scale = 1.0
        elif reduction == "sum":
            loss, scale = np.asarray(np.sum(per_elem)), 1.0
        elif denom == 0:
            loss = np.asarray(np.nan if opt["empty_mean"] == "nan" else 0.0)
            scale = 0.0
        else:
            loss, scale = np.asarray(np.sum(per_elem) / denom), 1.0 / denom
        big_a = np.sum(a, axis=1, keepdims=True)
        if opt["target_sum"] == "assumed_one":  # softmax - target: as if sum_c t'_c == 1
            if weight is None:  # literally p - t': a NaN target spoils only its own class
                big_a = np.where(valid, 1.0, 0.0)
            else:
                mass = np.sum(ts, axis=1, keepdims=True)
                big_a = np.where(mass != 0, big_a / mass, big_a)
        grad = np.where(valid, scale * (big_a * p - a), 0.0)
    return {"loss": np.asarray(loss, dtype=np.float64), "grad": grad}


def nll_loss(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    choices: Mapping[str, str] | None = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} of nll_loss (l_i = -w_{y_i} x_{i, y_i}) under ``choices``:
    the mean's denominator (``index_mean``), the empty mean (``empty_mean``), the shape of
    'none' (``none_shape``)."""
    opt: dict[str, Any] = {**canonical("nll_loss"), **(choices or {})}
    cm.check_reduction(reduction)
    x = cm.check_input(input)
    w = cm.check_weight(weight, x.shape[1])
    tgt = cm.parse_target(target, x.shape, ignore_index, allow_probs=False)
    assert tgt.indices is not None
    w_y = np.where(tgt.valid, w[tgt.indices], 0.0)
    x_y = np.take_along_axis(x, tgt.indices[:, None], axis=1)[:, 0]
    per_elem = np.where(tgt.valid, -w_y * x_y, 0.0)
    denom = {
        "weights": float(np.sum(w_y)),
        "count": float(np.sum(tgt.valid)),
        "elements": float(tgt.valid.size),
        "batch": float(x.shape[0]),
    }[opt["index_mean"]]
    scale: F64 | float = 1.0
    if reduction == "none":
        loss = per_elem[:, None] if opt["none_shape"] == "keepdim" else per_elem
    elif reduction == "sum":
        loss = np.asarray(np.sum(per_elem))
    elif denom == 0:
        loss, scale = np.asarray(np.nan if opt["empty_mean"] == "nan" else 0.0), 0.0
    else:
        loss, scale = np.asarray(np.sum(per_elem) / denom), 1.0 / denom
    grad = np.zeros_like(x)
    np.put_along_axis(grad, tgt.indices[:, None], (-scale * w_y)[:, None], axis=1)
    return {"loss": np.asarray(loss, dtype=np.float64), "grad": grad}

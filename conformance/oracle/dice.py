"""Dice and Tversky losses of predicted probabilities against masks, in float64.

``input`` holds predicted probabilities (or any scores) p with the classes on axis 1, shape
(N, C) or (N, C, d1, ..., dk); ``target`` holds masks t of the same shape (one-hot or soft,
values in [0, 1] in use; any reals are computed with), or integer class indices of shape
(N, d1, ..., dk), which stand for their one-hot masks (no ignore_index). Nothing is applied to
p: an API that takes logits and applies a softmax (or a sigmoid for C = 1) is judged by
feeding it the logits and this oracle their softmax (or sigmoid); the chain rule through the
activation belongs to the wiring.

Each loss term k sums over a group G_k of elements (canonical: one term per (sample, class),
the sum over d1, ..., dk; option dice_axis below):

    I = sum p t      FP = sum p (1 - t)      FN = sum (1 - p) t      P = sum p   T = sum t

    dice_loss      l = 1 - (2 I + s_n) / (P + T + s_d)
    tversky_loss   l = 1 - (I + s_n) / (I + alpha FP + beta FN + s_d)      (Salehi et al. 2017)

s_d = smooth, and s_n = smooth (canonical: the smoothing goes into the numerator and the
denominator, so an empty term, P = T = 0, has l = 0) or s_n = 0 (dice_smooth=denominator_only:
an empty term has l = 1). The value is computed as (D - N) / D with D - N = FP + FN + s_d - s_n
(Dice) or alpha FP + beta FN + s_d - s_n (Tversky): no cancellation in 1 - N / D where the
prediction is good.

Why two functions: Dice is Tversky at alpha = beta = 1/2 with the smoothing halved, (2 I + s) /
(P + T + s) = (I + s/2) / (I + FP/2 + FN/2 + s/2), since P + T = 2 I + FP + FN. Each API
documents its own smoothing constant against its own formula (Keras' and Paddle's Dice, optax's
Tversky form), so the oracle keeps both forms and lets ``smooth`` mean what the formula says:
optax's ``dice_loss(smooth=s)`` (alpha = beta = 1/2) is ``tversky_loss(smooth=s)`` or
``dice_loss(smooth=2 s)``, not ``dice_loss(smooth=s)``.

``smooth`` = 0 on an empty term (P + T = 0, e.g. a class absent from a sample's target and
predicted nowhere) is 0 / 0 = NaN, value and gradient of every element of the term (Keras with
epsilon 0 and optax with smooth=0 give NaN, measured). A NaN or infinite p or t makes its term
NaN (I or FP or FN meets inf * 0 or inf - inf), gradient NaN over the term.

``weight`` (C,) multiplies each per-class term (optax's ``class_weights``); only dice_axis
choices that keep a class axis have per-class terms. Then the terms are reduced:

    'none' -> the terms (sample_class: (N, C); sample: (N,); batch_class: (C,); batch: ())
    'sum'  -> their sum;   'mean' -> their sum / their count (NaN for no terms, N = 0)

Gradient of sum(loss * g) with respect to p (s_k = the term's share of g: g_k, g, or g / n for
'mean', times its weight; 0 for a mean over no terms). With N = 2 I + s_n, D = P + T + s_d
(Dice), N = I + s_n, D = I + alpha FP + beta FN + s_d (Tversky), for element i of term k:

    dp_i = s_k (N e_i - c_i D) / D^2     Dice: c_i = 2 t_i, e_i = 1
                                         Tversky: c_i = t_i, e_i = t_i + alpha (1 - t_i) - beta t_i

(with denominator-only smoothing an empty term has N = 0 and gradient 0; with smoothing in
both, N = D = s and the gradient is 1 / s per element: 1e5 at s = 1e-5.)

Error magnitudes (the comparator accepts |fl(f) - f| <= k eps magnitude): each sum made
absolute (FP and FN as P - I, T - I might be computed: |P| + |I|, |T| + |I|):

    Nm = 2 sum|p t| + |s_n|  (Tversky: sum|p t| + |s_n|)
    Dm = sum|p| + sum|t| + |s_d|  (Tversky: sum|p t| + alpha FPm + beta FNm + |s_d|,
         FPm = sum|p| + sum|p t|, FNm = sum|t| + sum|p t|)
    loss_mag = 1 + (|N| + Nm) / |D| + |N| Dm / D^2   (the 1: 1 - q rounds absolutely)
    grad_mag_i = |s_k| (|c_i| (1 + Dm/|D|) / |D| + (Nm |e_i| + |N| em_i + 2 |N e_i| Dm/|D|) / D^2)
        em_i = 1 (Dice), |t_i| + alpha (1 + |t_i|) + beta |t_i| (Tversky)

weighted by |w|, reduced like the loss (0 for a NaN term's undefined D = 0 and for a mean over
no terms). The comparator's n_terms must count the elements of a term (times the terms
reduced).

Semantic options (``choices``: option -> choice, canonical first):

    dice_axis          sample_class | sample | batch_class | batch
        where the sums go: per (sample, class) over d1..dk (optax's dice_loss default,
        Keras with axis=(1..k) on its channel-last layout, MONAI's default); per sample over
        the classes and d1..dk together (Paddle's dice_loss; Keras axis=(1..k+1)); per class
        over the batch and d1..dk (Keras axis=(0..k)); one term over everything (Keras'
        default axis=None: a single Dice of the whole batch).
    dice_smooth        numerator_and_denominator | denominator_only
        denominator_only: s_n = 0 (Keras' dice and tversky with its epsilon 1e-7, Paddle's
        dice_loss with epsilon 1e-5, although Paddle's documentation says both).
    dice_class_reduce  none | mean | sum
        mean / sum: the per-class terms are first reduced over the class axis, so 'none'
        returns per-sample values (N,) for sample_class ((), for batch_class): optax's
        ``reduction`` acts over the classes only ('mean' -> (N,)). Needs a class axis.
    class_weighting    none | inverse_square_frequency
        each class term is multiplied by w_c = C v_c / sum_c v_c, v_c = 1 / (F_c^2 + 1e-7),
        F_c = sum of t over the batch and d1..dk (target only, no gradient): optax's
        multiclass_generalized_dice_loss, a weighted mean of per-class losses (not Sudre et
        al.'s ratio of weighted sums). Needs a class axis.
    tversky_weights    alpha_fp | alpha_fn   (tversky_loss only)
        alpha_fn: alpha multiplies FN = sum (1 - p) t and beta FP (Keras' tversky computes
        ``fp = sum((1 - y_pred) * y_true)``, although it documents alpha for false positives).

A choice that needs a class axis raises ValueError under a dice_axis that sums it.

Measured (float64 unless said, CPU; keras 3.15.1 on TensorFlow 2.21.0, optax 0.2.8 on jax
0.10.2, paddlepaddle 3.3.1, torch 2.13.0; every value and gradient below agrees with this
oracle to <= 9e-16, tests/test_oracle_dice.py holds the numbers). torch has no Dice or
Tversky loss (nothing named *dice* / *tversky* in torch, torch.nn, torch.nn.functional).

- keras.losses.dice / Dice (keras/src/losses/losses.py:2564, class :1303): probabilities
  (no activation), classes last, masks of the input's shape; 1 - 2 I / (P + T + epsilon)
  with keras.config.epsilon() = 1e-7 in the denominator only (:2605-2610); ``axis`` names
  the summed axes, None = every axis, batch included (one value: dice_axis=batch);
  axis=(1..k) is sample_class, (1..k+1) sample, (0..k) batch_class. The class form's
  ``reduction`` 'sum_over_batch_size' / 'mean' divides by the number of values
  (keras/src/losses/loss.py:159, divide_no_nan), a 0-d value is returned as is (:144); it
  computes in floatx (float32) unless ``dtype=`` is given.
- keras.losses.tversky / Tversky (losses.py:2616, class :1377): I / (I + alpha
  sum((1 - p) t) + beta sum(p (1 - t)) + epsilon) (:2642-2652: ``inputs = y_true``,
  ``fp = ops.sum((1 - targets) * inputs)``), so alpha weighs the false negatives although
  the docstring says false positives: tversky_weights=alpha_fn, dice_smooth=denominator_only,
  smooth=1e-7. At alpha = beta = 1/2 it is Dice with epsilon 2e-7, not Keras' Dice.
- optax.losses.dice_loss (optax/losses/_segmentation.py:37): classes last, one-hot masks;
  applies softmax over the last axis (sigmoid when C = 1) unless apply_softmax=False (:164-171),
  which raises ValueError unless every row sums to 1 (rtol 1e-5), and raises
  TracerBoolConversionError under jax.jit (:153-162, a Python ``if`` on a traced value); sums
  over axes 1..ndim-2 (:174; a 2-d input has no such axis: one term per element); the
  Tversky form with smooth (default 1) in numerator and denominator, alpha on FP = P - I
  (:182-189); class_weights multiply the per-class losses; ``reduction`` acts over the
  classes only (:203): dice_class_reduce=mean|sum with reduction 'none', output (N,).
  ignore_background (drop class 0) has no option here.
- optax.losses.binary_dice_loss (:263): dice_loss with a sigmoid and a mean over the single
  class; apply_sigmoid=False raises ValueError for any probabilities but all-ones ones (the
  sum-to-1 check runs over a class axis of size 1).
- optax.losses.multiclass_generalized_dice_loss (:208): class_weighting=
  inverse_square_frequency (:240-248) and a mean over N * C (:250).
- paddle.nn.functional.dice_loss (paddle/nn/functional/loss.py:49): probabilities (no
  activation), classes last, int32/int64 class indices of shape (..., 1) one-hot encoded
  (a float label fails an assert); one term per sample over classes and positions (:115),
  1 - 2 I / (P + T + epsilon), epsilon (default 1e-5) in the denominator only (:120) though
  the docstring (:75) says numerator and denominator; a mean over the batch (:121). For
  C = 1 the one-hot label is all ones, so a binary mask needs C = 2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from conformance.oracle import _common as cm
from conformance.oracle._common import F64

__all__ = [
    "DICE",
    "LOSSES",
    "OPTION_CHOICES",
    "REDUCTIONS",
    "TVERSKY",
    "canonical_choices",
    "dice_loss",
    "dice_loss_grad",
    "dice_loss_magnitude",
    "dice_loss_outputs",
    "tversky_case",
    "tversky_loss",
    "tversky_loss_grad",
    "tversky_loss_magnitude",
    "tversky_loss_outputs",
]

DICE, TVERSKY = "dice_loss", "tversky_loss"
LOSSES: tuple[str, ...] = (DICE, TVERSKY)
REDUCTIONS: tuple[str, ...] = cm.REDUCTIONS
FREQ_EPS = 1e-7  # optax multiclass_generalized_dice_loss: 1 / (F^2 + 1e-7)

# option -> choices, the canonical one first.
OPTION_CHOICES: dict[str, tuple[str, ...]] = {
    "dice_axis": ("sample_class", "sample", "batch_class", "batch"),
    "dice_smooth": ("numerator_and_denominator", "denominator_only"),
    "dice_class_reduce": ("none", "mean", "sum"),
    "class_weighting": ("none", "inverse_square_frequency"),
    "tversky_weights": ("alpha_fp", "alpha_fn"),
}
_TVERSKY_ONLY = frozenset({"tversky_weights"})

Choices = Mapping[str, str] | None


def canonical_choices(loss: str) -> dict[str, str]:
    """Every option of ``loss`` at its canonical choice."""
    if loss not in LOSSES:
        raise ValueError(f"no Dice loss {loss!r} (has: {list(LOSSES)})")
    return {
        name: choices[0]
        for name, choices in OPTION_CHOICES.items()
        if loss == TVERSKY or name not in _TVERSKY_ONLY
    }


@dataclass
class _Prepared:
    loss: str
    p: F64
    t: F64
    alpha: float
    beta: float
    s_n: float  # smoothing in the numerator
    s_d: float  # smoothing in the denominator
    axes: tuple[int, ...]  # summed into one term (keepdims)
    class_axis: int | None  # of the squeezed term array; None when the classes are summed
    w: F64 | None  # per-term weight, of the squeezed term shape; None = ones
    class_reduce: str
    reduction: str


def _check_param(name: str, value: float) -> float:
    v = float(value)
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(
            f"Argument `{name}` must be a finite number >= 0. Received: {name}={value!r}"
        )
    return v


def _check_target(target: npt.ArrayLike, shape: tuple[int, ...]) -> F64:
    t = np.asarray(target)
    if t.dtype.kind in "iu":
        want = shape[:1] + shape[2:]
        if t.shape != want:
            raise ValueError(
                f"Argument `target` of class indices must have shape {want} (input.shape "
                f"without axis 1). Received: target.shape={t.shape}"
            )
        bad = (t < 0) | (t >= shape[1])
        if bad.any():
            raise ValueError(
                f"Argument `target` must hold class indices in [0, C={shape[1]}). Received: "
                f"out-of-range values {np.unique(t[bad])[:5].tolist()}"
            )
        onehot: F64 = np.moveaxis(np.eye(shape[1], dtype=np.float64)[t], -1, 1)
        return onehot
    m = cm.to_f64("target", t)
    if m.shape != shape:
        raise ValueError(
            "Arguments `target` and `input` must have the same shape. "
            f"Received: input.shape={shape}, target.shape={m.shape}"
        )
    return m


def _prepare(
    loss: str,
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    weight: npt.ArrayLike | None,
    smooth: float,
    alpha: float,
    beta: float,
    reduction: str,
    choices: Choices,
) -> _Prepared:
    canon = canonical_choices(loss)
    allowed = {name: OPTION_CHOICES[name] for name in canon}
    opt = cm.resolve_choices(loss, allowed, canon, choices)
    cm.check_reduction(reduction)
    s = _check_param("smooth", smooth)
    a, b = _check_param("alpha", alpha), _check_param("beta", beta)
    if opt.get("tversky_weights") == "alpha_fn":
        a, b = b, a  # alpha meets FN, beta FP: the same as Salehi's with the two swapped
    p = cm.check_input(input)
    t = _check_target(target, p.shape)
    ndim = p.ndim
    spatial = tuple(range(2, ndim))
    axis = opt["dice_axis"]
    axes, class_axis = {
        "sample_class": (spatial, 1),
        "sample": ((1, *spatial), None),
        "batch_class": ((0, *spatial), 0),
        "batch": (tuple(range(ndim)), None),
    }[axis]
    per_class = weight is not None or opt["class_weighting"] != "none"
    if class_axis is None and (per_class or opt["dice_class_reduce"] != "none"):
        raise ValueError(
            f"dice_axis={axis} sums over the classes: no per-class terms for `weight`, "
            f"class_weighting={opt['class_weighting']}, "
            f"dice_class_reduce={opt['dice_class_reduce']}"
        )
    w = None
    if per_class and class_axis is not None:
        vec = cm.check_weight(weight, p.shape[1])
        if opt["class_weighting"] == "inverse_square_frequency":
            freq = np.sum(t, axis=(0, *spatial))
            v = 1.0 / (freq * freq + FREQ_EPS)
            vec = vec * (v / np.sum(v) * p.shape[1])
        w = vec if class_axis == 0 else vec.reshape(1, -1)
    s_n = s if opt["dice_smooth"] == "numerator_and_denominator" else 0.0
    return _Prepared(
        loss, p, t, a, b, s_n, s, axes, class_axis, w, opt["dice_class_reduce"], reduction
    )


@dataclass
class _Sums:
    num: F64  # N, per term (keepdims)
    den: F64  # D
    gap: F64  # D - N, computed without cancellation
    num_mag: F64  # Nm
    den_mag: F64  # Dm
    bad: F64  # a NaN or infinite p or t in the term


def _sums(pp: _Prepared) -> _Sums:
    p, t, ax = pp.p, pp.t, pp.axes
    with np.errstate(invalid="ignore", over="ignore"):

        def total(v: F64) -> F64:
            out: F64 = np.sum(v, axis=ax, keepdims=True)
            return out

        pt = p * t
        i, fp, fn = total(pt), total(p * (1.0 - t)), total((1.0 - p) * t)
        i_abs, p_abs, t_abs = total(np.abs(pt)), total(np.abs(p)), total(np.abs(t))
        bad = total((~np.isfinite(p) | ~np.isfinite(t)).astype(np.float64)) > 0
        extra = pp.s_d - pp.s_n
        if pp.loss == DICE:
            num = 2.0 * i + pp.s_n
            den = total(p) + total(t) + pp.s_d
            gap = fp + fn + extra
            num_mag = 2.0 * i_abs + pp.s_n
            den_mag = p_abs + t_abs + pp.s_d
        else:
            num = i + pp.s_n
            den = i + pp.alpha * fp + pp.beta * fn + pp.s_d
            gap = pp.alpha * fp + pp.beta * fn + extra
            num_mag = i_abs + pp.s_n
            den_mag = i_abs + pp.alpha * (p_abs + i_abs) + pp.beta * (t_abs + i_abs) + pp.s_d
    return _Sums(num, den, gap, num_mag, den_mag, bad.astype(np.float64))


def _squeeze(pp: _Prepared, per_term: F64) -> F64:
    out: F64 = np.squeeze(per_term, axis=pp.axes) if pp.axes else per_term
    return out


def _values(pp: _Prepared, per_term: F64) -> F64:
    """Weighted terms, reduced over the classes when dice_class_reduce says so."""
    v = _squeeze(pp, per_term)
    if pp.w is not None:
        v = v * pp.w
    if pp.class_reduce == "none" or pp.class_axis is None:
        return v
    if pp.class_reduce == "sum":
        out: F64 = np.sum(v, axis=pp.class_axis)
    else:
        out = np.sum(v, axis=pp.class_axis) / v.shape[pp.class_axis]
    return out


def _values_shape(pp: _Prepared) -> tuple[int, ...]:
    shape = tuple(n for k, n in enumerate(pp.p.shape) if k not in pp.axes)
    if pp.class_reduce != "none" and pp.class_axis is not None:
        shape = shape[: pp.class_axis] + shape[pp.class_axis + 1 :]
    return shape


def _term_scale(pp: _Prepared, grad_output: npt.ArrayLike | None) -> F64:
    """d(reduced loss)/d(term) times the upstream gradient, per term (keepdims shape)."""
    shape = _values_shape(pp)
    denom = float(np.prod(shape, dtype=np.float64))
    g = cm.grad_scale(grad_output, pp.reduction, shape, denom)
    if pp.class_reduce != "none" and pp.class_axis is not None:
        n_class = pp.p.shape[1]
        g = np.expand_dims(g, pp.class_axis)
        if pp.class_reduce == "mean":
            g = g / n_class
        term_shape = (*shape[: pp.class_axis], n_class, *shape[pp.class_axis :])
        g = np.broadcast_to(g, term_shape)
    if pp.w is not None:
        g = g * pp.w
    out: F64 = np.expand_dims(g, pp.axes) if pp.axes else g
    return out


def _value(pp: _Prepared) -> F64:
    sm = _sums(pp)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        per_term = np.where(sm.bad > 0, np.nan, sm.gap / sm.den)
        values = _values(pp, per_term)
        return cm.reduce(values, pp.reduction, float(values.size))


def _coefficients(pp: _Prepared) -> tuple[F64, F64, F64]:
    """(c_i, e_i, em_i): dN/dp_i, dD/dp_i and a bound on the error of computing e_i."""
    t = pp.t
    if pp.loss == DICE:
        one = np.ones_like(t)
        return 2.0 * t, one, one
    a, b = pp.alpha, pp.beta
    e = t + a * (1.0 - t) - b * t
    return t, e, np.abs(t) + a * (1.0 + np.abs(t)) + b * np.abs(t)


def _grad(pp: _Prepared, grad_output: npt.ArrayLike | None) -> F64:
    sm = _sums(pp)
    s = _term_scale(pp, grad_output)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        c, e, _ = _coefficients(pp)
        num = np.where(sm.bad > 0, np.nan, sm.num)
        dp = s * (num * e - c * sm.den) / (sm.den * sm.den)
        out: F64 = np.asarray(np.broadcast_to(dp, pp.p.shape), dtype=np.float64)
    return out


def _magnitude(pp: _Prepared, grad_output: npt.ArrayLike | None) -> tuple[F64, F64]:
    sm = _sums(pp)
    s = np.abs(_term_scale(pp, grad_output))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        c, e, em = _coefficients(pp)
        ok = (sm.den != 0) & (sm.bad == 0)
        d_abs = np.where(ok, np.abs(sm.den), 1.0)
        n_abs, r = np.abs(sm.num), sm.den_mag / d_abs
        term = 1.0 + (n_abs + sm.num_mag) / d_abs + n_abs * r / d_abs
        term = np.where(ok, term, 0.0)
        w = None if pp.w is None else np.abs(pp.w)
        mags = _values(replace(pp, w=w), term)
        loss_mag = cm.reduce_magnitude(mags, pp.reduction, float(mags.size))
        g = np.abs(c) * (1.0 + r) / d_abs + (
            sm.num_mag * np.abs(e) + n_abs * em + 2.0 * n_abs * np.abs(e) * r
        ) / (d_abs * d_abs)
        g = np.where(ok, s * g, 0.0)
        grad_mag: F64 = np.asarray(np.broadcast_to(g, pp.p.shape), dtype=np.float64)
    return loss_mag, grad_mag


# --------------------------------------------------------------------------------------------
# Public functions: for each loss X, X (the loss), X_grad (d/dinput sum(loss * grad_output),
# grad_output None = ones), X_magnitude ((loss_mag, grad_mag)), X_outputs ({"loss", "grad"}
# under ``choices``: the form conformance/judge.py diagnoses).
# --------------------------------------------------------------------------------------------


def dice_loss(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    smooth: float = 1.0,
    reduction: str = "mean",
    choices: Choices = None,
) -> F64:
    """l_k = 1 - (2 I + s) / (P + T + s) per term, reduced (module docstring)."""
    return _value(_prepare(DICE, input, target, weight, smooth, 0.5, 0.5, reduction, choices))


def dice_loss_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    smooth: float = 1.0,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> F64:
    """d/dp sum(loss * g) = s_k (N - 2 t_i D) / D^2."""
    pp = _prepare(DICE, input, target, weight, smooth, 0.5, 0.5, reduction, choices)
    return _grad(pp, grad_output)


def dice_loss_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    smooth: float = 1.0,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> tuple[F64, F64]:
    """(loss_mag, grad_mag) as in the module docstring, the first reduced like the loss."""
    pp = _prepare(DICE, input, target, weight, smooth, 0.5, 0.5, reduction, choices)
    return _magnitude(pp, grad_output)


def dice_loss_outputs(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    smooth: float = 1.0,
    reduction: str = "mean",
    choices: Choices = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} under ``choices``: the form conformance/judge.py diagnoses."""
    pp = _prepare(DICE, input, target, weight, smooth, 0.5, 0.5, reduction, choices)
    return {"loss": _value(pp), "grad": _grad(pp, None)}


def tversky_loss(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    weight: npt.ArrayLike | None = None,
    smooth: float = 1.0,
    reduction: str = "mean",
    choices: Choices = None,
) -> F64:
    """l_k = 1 - (I + s) / (I + alpha FP + beta FN + s) per term, reduced (module docstring)."""
    pp = _prepare(TVERSKY, input, target, weight, smooth, alpha, beta, reduction, choices)
    return _value(pp)


def tversky_loss_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    weight: npt.ArrayLike | None = None,
    smooth: float = 1.0,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> F64:
    """d/dp sum(loss * g) = s_k (N e_i - t_i D) / D^2, e_i = t_i + alpha (1 - t_i) - beta t_i."""
    pp = _prepare(TVERSKY, input, target, weight, smooth, alpha, beta, reduction, choices)
    return _grad(pp, grad_output)


def tversky_loss_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    weight: npt.ArrayLike | None = None,
    smooth: float = 1.0,
    reduction: str = "mean",
    grad_output: npt.ArrayLike | None = None,
    choices: Choices = None,
) -> tuple[F64, F64]:
    """(loss_mag, grad_mag) as in the module docstring, the first reduced like the loss."""
    pp = _prepare(TVERSKY, input, target, weight, smooth, alpha, beta, reduction, choices)
    return _magnitude(pp, grad_output)


def tversky_loss_outputs(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    weight: npt.ArrayLike | None = None,
    smooth: float = 1.0,
    reduction: str = "mean",
    choices: Choices = None,
) -> dict[str, F64]:
    """{"loss": ..., "grad": ...} under ``choices``: the form conformance/judge.py diagnoses."""
    pp = _prepare(TVERSKY, input, target, weight, smooth, alpha, beta, reduction, choices)
    return {"loss": _value(pp), "grad": _grad(pp, None)}


def tversky_case(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` taking a case's parameters: ``tversky_alpha`` and ``tversky_beta`` are
    its ``alpha`` and ``beta`` (the case parameters' names say which loss they belong to)."""

    def call(input: Any, target: Any, **params: Any) -> Any:
        if "tversky_alpha" in params:
            params["alpha"] = params.pop("tversky_alpha")
        if "tversky_beta" in params:
            params["beta"] = params.pop("tversky_beta")
        return function(input, target, **params)

    return call

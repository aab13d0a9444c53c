"""Softmax cross-entropy from logits, in float64 (see docs/semantics.md).

Per element i (a position (n, d1, ..., dk); classes on axis 1):

    l_i = sum_c a_ic (lse_i - x_ic),   a_ic = w_c t'_ic,   lse_i = log sum_c exp(x_ic)

    t'_ic = (1 - eps) [c == y_i] + eps / C   class indices y (a_i. = 0 where y_i == ignore_index)
    t'_ic = (1 - eps) t_ic + eps / C         probability targets t

    'none' -> l;  'sum' -> sum_i l_i;  'mean' -> sum_i l_i / D
    D = sum_{i not ignored} w_{y_i} (class indices),  D = number of elements (probabilities)

Gradient of sum(loss * g) (A_i = sum_c a_ic, p = softmax(x), s_i = g_i / D, or g_i for
'none' / 'sum', and s = 0 when D == 0):

    dx_ik = s_i (A_i p_ik - a_ik)

Class-index targets never build a one-hot (N, C, d1, ..., dk) array: the target class term is
gathered with take_along_axis and the smoothing term is a weighted sum over classes.

Memory: the input is viewed as (N, C, D), D = d1 ... dk, and processed one slab
(n, C, d) at a time (whole samples, or pieces of one sample's positions when a sample is
large; see :data:`CHUNK_BYTES`). Every quantity is per position i except the global D of the
mean, which is computed first from the target alone, so a slab's results are final when
written into the outputs. Besides the outputs only arrays of one value per position exist at
full size (the target indices and mask, the per-element loss and loss magnitude, kept so
that 'sum' and 'mean' add them in the same order as before); the float64 copy of the input,
softmax and log-softmax exist one slab at a time. (An input or probability target whose
memory layout cannot be viewed as (N, C, D) without a copy, e.g. Fortran order with two or
more spatial axes, is copied once to C order in its own dtype.)

:func:`cross_entropy_all` computes value, gradient and magnitudes in one pass; the three
single-output functions run the same code and keep only what they return, so their results
are bit-identical to it, and to the whole-array computation: a slab's class sums add the
same terms in the same order as over the whole array.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from conformance.oracle import _common as cm
from conformance.oracle._common import F64
from conformance.oracle.softmax import LseParts, lse_parts

__all__ = [
    "CHUNK_BYTES",
    "cross_entropy",
    "cross_entropy_all",
    "cross_entropy_grad",
    "cross_entropy_magnitude",
]

CHUNK_BYTES = 2**20
"""Float64 bytes of one (n, C, d) slab of the input computed at a time. About 1 MiB: the few
slab-sized temporaries stay in cache and small next to a large input, while the fixed cost
of a slab (some 60 NumPy calls) stays small next to its work; at 256 KiB that cost is a third
of the time. A slab is at least one position (C values), at least 2 positions when a sample
is cut (see :func:`_slabs`), and under twice this size."""


@dataclass
class _Setup:
    """The checked arguments, reshaped to (N, C, D) / (N, D); nothing input-sized is copied."""

    x: npt.NDArray[Any]  # (N, C, D) in the caller's dtype; upcast one slab at a time
    w: F64  # (C,)
    eps: float
    denom: float  # D of the mean
    indices: npt.NDArray[np.unsignedinteger[Any]] | None  # (N, D), 0 at ignored positions
    valid: npt.NDArray[np.bool_]  # (N, D)
    probs: npt.NDArray[Any] | None  # (N, C, D) in the caller's dtype
    scale: F64 | None  # (N, D), possibly a broadcast view: d loss / d l_i times g_i
    elem_shape: tuple[int, ...]  # (N, d1, ..., dk)
    reduction: str

    @property
    def num_classes(self) -> int:
        return int(self.x.shape[1])


def _setup(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    weight: npt.ArrayLike | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    grad_output: npt.ArrayLike | None,
    *,
    with_scale: bool,
) -> _Setup:
    cm.check_reduction(reduction)
    arr = np.asarray(input)
    # The checks of cm.check_input, in its order and words, without its float64 copy.
    cm.to_f64("input", np.empty(0, dtype=arr.dtype))
    cm.check_input(np.broadcast_to(np.float64(0.0), arr.shape))
    w = cm.check_weight(weight, arr.shape[1])
    eps = cm.check_label_smoothing(label_smoothing)
    tgt = cm.parse_target(target, arr.shape, ignore_index)
    if tgt.kind == "index":
        assert tgt.indices is not None
        denom = float(np.sum(w[tgt.indices], where=tgt.valid))
    else:
        denom = float(np.prod(arr.shape[:1] + arr.shape[2:]))
    elem_shape = arr.shape[:1] + arr.shape[2:]
    n, c = arr.shape[:2]
    d = int(np.prod(arr.shape[2:]))
    scale = None
    if with_scale and grad_output is None and reduction == "none":
        scale = np.broadcast_to(1.0, (n, d))  # what grad_scale gives, without its array of ones
    elif with_scale:
        scale = cm.grad_scale(grad_output, reduction, elem_shape, denom).reshape(n, d)
    indices = None
    if tgt.indices is not None:
        # The smallest integer type holding 0..C-1 (uint8 for C <= 256): 1 byte per position
        # instead of 8; each slab's indices are widened back to intp.
        indices = tgt.indices.reshape(n, d).astype(np.min_scalar_type(c - 1))
    return _Setup(
        x=arr.reshape(n, c, d),
        w=w,
        eps=eps,
        denom=denom,
        indices=indices,
        valid=tgt.valid.reshape(n, d),
        probs=None if tgt.probs is None else tgt.probs.reshape(n, c, d),
        scale=scale,
        elem_shape=elem_shape,
        reduction=reduction,
    )


def _slabs(n: int, c: int, d: int) -> Iterator[tuple[slice, slice]]:
    """(batch, position) slices of the (N, C, D) input, each about CHUNK_BYTES of float64.

    Small samples are taken several at a time; a sample larger than the budget is cut along
    its positions into pieces of at least 2 positions. (A (1, C, 1) slab would turn the class
    sums into numpy's pairwise summation over a contiguous axis, while the same sums over a
    (n, C, d >= 2) array are sequential over the classes: pieces of 1 would change results
    in the last bits.)
    """
    if n * d == 0:
        return
    per = max(1, CHUNK_BYTES // (8 * c))  # positions per slab
    if d <= per:
        step = per // d
        for n0 in range(0, n, step):
            yield slice(n0, min(n0 + step, n)), slice(None)
        return
    pieces = d // max(per, 2)  # every piece has >= max(per, 2) positions, < 2x that
    bounds = [d * j // pieces for j in range(pieces + 1)]
    for i in range(n):
        for j in range(pieces):
            yield slice(i, i + 1), slice(bounds[j], bounds[j + 1])


def _class_sum(arr: F64, w: F64, *, absolute: bool = False) -> F64:
    """sum_c w_c arr[:, c] (|arr| if absolute); w is per class (C,) or arr-shaped.

    One class at a time (C is small; the loop is never over elements) so that neither |arr|
    nor w * arr is materialised at the input's size.
    """
    out = np.zeros(arr.shape[:1] + arr.shape[2:])
    for k in range(arr.shape[1]):
        term = np.abs(arr[:, k]) if absolute else arr[:, k]
        wk = w[k] if w.ndim == 1 else w[:, k]
        # 0 * inf = 0: a class with no weight contributes nothing, even at a -inf logit.
        out += np.multiply(wk, term, out=np.zeros_like(out), where=wk != 0)
    return out


@dataclass
class _Out:
    """Destinations of one slab's results (None: not wanted); views of the full outputs."""

    loss: F64 | None  # (n, d)
    grad: F64 | None  # (n, C, d)
    loss_mag: F64 | None  # (n, d)
    grad_mag: F64 | None  # (n, C, d)


def _zero_at(arr: F64, valid: npt.NDArray[np.bool_]) -> None:
    """arr[r, :, j] = 0 where not valid[r, j] (arr (n, C, d)), whatever arr held there."""
    np.copyto(arr, 0.0, where=~valid[:, None])


def _magnitude_start(grad_mag: F64, nlp: F64, p: F64) -> None:
    """grad_mag = p (1 + |x - lse|) (= p (1 + nlp)), with p log p -> 0 at a -inf logit."""
    with np.errstate(invalid="ignore"):
        np.multiply(nlp, p, out=grad_mag)
    np.copyto(grad_mag, 0.0, where=p == 0)
    grad_mag += p


def _index_slab(
    st: _Setup,
    x: F64,
    idx2: npt.NDArray[np.intp],
    valid: npt.NDArray[np.bool_],
    scale: F64 | None,
    out: _Out,
) -> None:
    """Class-index targets on one (n, C, d) slab ``x`` (float64), indices ``idx2`` (n, d)."""
    parts = lse_parts(x, 1)
    nlp, w = parts.neg_log_p, st.w
    if out.loss is not None:
        loss = (1.0 - st.eps) * w[idx2] * np.take_along_axis(nlp, idx2[:, None], axis=1)[:, 0]
        if st.eps:
            # Smoothing term (eps/C) sum_c w_c (lse - x_c); skipped when eps == 0 so that a
            # -inf logit in a non-target class does not turn the loss into 0 * inf = NaN.
            loss += st.eps / st.num_classes * _class_sum(nlp, w)
        # where, not multiply: an ignored element may hold inf/NaN scores and must give 0.
        np.copyto(out.loss, np.where(valid, loss, 0.0))
    if out.grad is None and out.grad_mag is None:
        return
    assert scale is not None
    p = np.divide(parts.exp_shifted, parts.sum_exp, out=parts.exp_shifted)
    if out.grad is not None:
        _index_grad(st, parts, p, idx2, valid, scale, out.grad)
    if out.grad_mag is not None:
        assert out.loss_mag is not None
        _index_magnitude(st, x, parts, p, idx2, valid, scale, out.loss_mag, out.grad_mag)


def _index_grad(
    st: _Setup,
    parts: LseParts,
    p: F64,
    idx2: npt.NDArray[np.intp],
    valid: npt.NDArray[np.bool_],
    scale: F64,
    grad: F64,
) -> None:
    """grad = s (A p - a) into ``grad`` (see cross_entropy_grad)."""
    eps, w, argmax = st.eps, st.w, parts.argmax
    smooth = eps / st.num_classes
    idx = idx2[:, None]
    p_m = np.take_along_axis(p, argmax, axis=1)
    one_minus_p_m = parts.rest / parts.sum_exp
    s = np.where(valid, scale, 0.0)[:, None]
    w_y = w[idx]
    big_a = (1.0 - eps) * w_y + smooth * np.sum(w)
    # s (A p - smooth w_k), then the one-hot part -s (1 - eps) w_y at k = y.
    np.multiply(p, big_a, out=grad)
    if eps:
        grad -= smooth * cm.class_axis_view(w, grad.ndim)
    grad *= s
    at_y = np.take_along_axis(grad, idx, axis=1) - s * (1.0 - eps) * w_y
    np.put_along_axis(grad, idx, at_y, axis=1)
    is_y = idx == argmax
    w_m = w[argmax]
    a_m = np.where(is_y, 1.0 - eps, 0.0) * w_m + smooth * w_m
    # A - a_m = (1 - eps) w_y [y != m] + (eps / C) (sum_c w_c - w_m)
    a_excl_m = np.where(is_y, 0.0, (1.0 - eps) * w_y) + smooth * (np.sum(w) - w_m)
    at_m = s * (a_excl_m * p_m - a_m * one_minus_p_m)
    np.put_along_axis(grad, argmax, at_m, axis=1)
    # Ignored elements get exactly 0 even when their scores are inf/NaN (p would be NaN).
    _zero_at(grad, valid)


def _index_magnitude(
    st: _Setup,
    x: F64,
    parts: LseParts,
    p: F64,
    idx2: npt.NDArray[np.intp],
    valid: npt.NDArray[np.bool_],
    scale: F64,
    loss_mag: F64,
    grad_mag: F64,
) -> None:
    """loss_mag (n, d) and grad_mag (n, C, d) (see cross_entropy_magnitude)."""
    eps = st.eps
    smooth = eps / st.num_classes
    abs_lse = np.abs(parts.lse[:, 0])
    aw = np.abs(st.w)
    _magnitude_start(grad_mag, parts.neg_log_p, p)
    aw_y = aw[idx2]
    x_y = np.take_along_axis(x, idx2[:, None], axis=1)[:, 0]
    per_elem = (1.0 - eps) * aw_y * (abs_lse + np.abs(x_y) + 1.0)
    if eps:
        per_elem += smooth * (np.sum(aw) * (abs_lse + 1.0) + _class_sum(x, aw, absolute=True))
    np.copyto(loss_mag, np.where(valid, per_elem, 0.0))
    s = np.where(valid, np.abs(scale), 0.0)[:, None]
    grad_mag *= (1.0 - eps) * aw_y[:, None] + smooth * np.sum(aw)  # |A|_i
    if eps:
        grad_mag += smooth * cm.class_axis_view(aw, x.ndim)
    grad_mag *= s
    idx = idx2[:, None]
    at_y = np.take_along_axis(grad_mag, idx, axis=1) + s * (1.0 - eps) * aw_y[:, None]
    np.put_along_axis(grad_mag, idx, at_y, axis=1)
    _zero_at(grad_mag, valid)


def _probs_slab(st: _Setup, x: F64, t: npt.NDArray[Any], scale: F64 | None, out: _Out) -> None:
    """Probability targets on one (n, C, d) slab ``x`` (float64), target slab ``t``."""
    parts = lse_parts(x, 1)
    nlp = parts.neg_log_p
    # a = w_c t'_c; dtype=float64 upcasts on the fly (no float64 copy of the target).
    a: F64 = np.multiply(t, 1.0 - st.eps, dtype=np.float64)
    a += st.eps / st.num_classes
    a *= cm.class_axis_view(st.w, x.ndim)
    keep_a = out.grad is not None or out.grad_mag is not None
    if out.loss is not None:
        # 0 log 0 = 0: a zero target probability contributes nothing, even where a -inf
        # logit makes -log p = inf (the limit t log p -> 0 as t -> 0).
        terms = np.multiply(a, nlp, out=a.copy(order="K") if keep_a else a, where=a != 0)
        np.copyto(out.loss, np.sum(terms, axis=1))
    if not keep_a:
        return
    assert scale is not None
    argmax = parts.argmax
    p = np.divide(parts.exp_shifted, parts.sum_exp, out=parts.exp_shifted)
    if out.grad is not None:
        p_m = np.take_along_axis(p, argmax, axis=1)
        one_minus_p_m = parts.rest / parts.sum_exp
        a_m = np.take_along_axis(a, argmax, axis=1)
        np.put_along_axis(a, argmax, 0.0, axis=1)
        a_excl_m = np.sum(a, axis=1, keepdims=True)  # sum_{c != m} a_c, no cancellation
        np.put_along_axis(a, argmax, a_m, axis=1)
        s = scale[:, None]
        grad = np.multiply(p, a_excl_m + a_m, out=out.grad)
        grad -= a
        grad *= s
        at_m = s * (a_excl_m * p_m - a_m * one_minus_p_m)
        np.put_along_axis(grad, argmax, at_m, axis=1)
    if out.grad_mag is not None:
        assert out.loss_mag is not None
        abs_lse = np.abs(parts.lse[:, 0])
        grad_mag = out.grad_mag
        _magnitude_start(grad_mag, nlp, p)
        np.abs(a, out=a)
        big_a = np.sum(a, axis=1)
        np.add(big_a * (abs_lse + 1.0), _class_sum(x, a, absolute=True), out=out.loss_mag)
        grad_mag *= big_a[:, None]
        grad_mag += a
        grad_mag *= np.abs(scale)[:, None]


def _compute(
    st: _Setup, *, value: bool, grad: bool, magnitude: bool
) -> tuple[F64 | None, F64 | None, F64 | None, F64 | None]:
    """(per-element loss (N, D), grad (N, C, D), per-element loss magnitude, grad magnitude),
    None where not asked for; one slab at a time, every slab written into the outputs."""
    n, c, d = st.x.shape
    loss = np.empty((n, d)) if value else None
    g = np.empty((n, c, d)) if grad else None
    loss_mag = np.empty((n, d)) if magnitude else None
    grad_mag = np.empty((n, c, d)) if magnitude else None
    for rows, cols in _slabs(n, c, d):
        x = st.x[rows, :, cols].astype(np.float64, copy=False)
        out = _Out(
            None if loss is None else loss[rows, cols],
            None if g is None else g[rows, :, cols],
            None if loss_mag is None else loss_mag[rows, cols],
            None if grad_mag is None else grad_mag[rows, :, cols],
        )
        scale = None if st.scale is None else st.scale[rows, cols]
        if st.indices is not None:
            idx = st.indices[rows, cols].astype(np.intp)
            _index_slab(st, x, idx, st.valid[rows, cols], scale, out)
        else:
            assert st.probs is not None
            _probs_slab(st, x, st.probs[rows, :, cols], scale, out)
    return loss, g, loss_mag, grad_mag


def cross_entropy(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> F64:
    """Softmax cross-entropy: l_i = sum_c w_c t'_ic (lse_i - x_ic), reduced (module docstring).

    Integer ``target`` = class indices of shape (N, d1, ..., dk); float ``target`` =
    probabilities of the input's shape. Returns float64: shape (N, d1, ..., dk) for 'none',
    a 0-d array otherwise ('mean' over zero total target weight is NaN).
    """
    st = _setup(
        input, target, weight, ignore_index, reduction, label_smoothing, None, with_scale=False
    )
    loss, _, _, _ = _compute(st, value=True, grad=False, magnitude=False)
    assert loss is not None
    return cm.reduce(loss.reshape(st.elem_shape), reduction, st.denom)


def cross_entropy_grad(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    grad_output: npt.ArrayLike | None = None,
) -> F64:
    """d/dx sum(loss * g) = s_i (A_i p_ik - a_ik); g defaults to ones of the loss's shape.

    At the max class m the same value is computed as s_i ((A_i - a_im) p_im - a_im (1 - p_im))
    with 1 - p_im = rest_i / sum_exp_i: when class m dominates (the usual trained-model case)
    A p - a cancels to a tiny number and would keep only a few correct digits.
    """
    st = _setup(
        input,
        target,
        weight,
        ignore_index,
        reduction,
        label_smoothing,
        grad_output,
        with_scale=True,
    )
    _, grad, _, _ = _compute(st, value=False, grad=True, magnitude=False)
    assert grad is not None
    return grad.reshape(st.x.shape[:2] + st.elem_shape[1:])


def cross_entropy_magnitude(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    grad_output: npt.ArrayLike | None = None,
) -> tuple[F64, F64]:
    """Error scales (loss_mag, grad_mag): the computation with every term made absolute.

        loss_mag_i = sum_c |a_ic| (|lse_i| + |x_ic| + 1), reduced like the loss (0 if D == 0)
        grad_mag_ik = |s_i| (|A|_i p_ik (1 + |x_ik - lse_i|) + |a_ik|),  |A|_i = sum_c |a_ic|

    A comparator accepts fl(f) when |fl(f) - f| <= k * eps_dtype * magnitude.
    """
    st = _setup(
        input,
        target,
        weight,
        ignore_index,
        reduction,
        label_smoothing,
        grad_output,
        with_scale=True,
    )
    _, _, loss_mag, grad_mag = _compute(st, value=False, grad=False, magnitude=True)
    assert loss_mag is not None and grad_mag is not None
    return (
        cm.reduce_magnitude(loss_mag.reshape(st.elem_shape), reduction, st.denom),
        grad_mag.reshape(st.x.shape[:2] + st.elem_shape[1:]),
    )


def cross_entropy_all(
    input: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    weight: npt.ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    grad_output: npt.ArrayLike | None = None,
) -> tuple[F64, F64, F64, F64]:
    """(loss, grad, loss_mag, grad_mag) in one pass: bit-identical to :func:`cross_entropy`,
    :func:`cross_entropy_grad` and :func:`cross_entropy_magnitude` with the same arguments.

    One preparation (argument checks, target parsing, the mean's D) and one softmax per slab
    serve all four outputs. Peak memory: the two returned input-sized float64 arrays (together
    twice the input's float64 size), 18 bytes per position for class indices (uint8 indices
    up to 256 classes, mask, per-element loss and loss magnitude: 18 / 8C of the float64
    input, 0.12 for C = 19) and a few float64 slabs of about :data:`CHUNK_BYTES`; no float64
    copy of the whole input is made.
    """
    st = _setup(
        input,
        target,
        weight,
        ignore_index,
        reduction,
        label_smoothing,
        grad_output,
        with_scale=True,
    )
    loss, grad, loss_mag, grad_mag = _compute(st, value=True, grad=True, magnitude=True)
    assert loss is not None and grad is not None and loss_mag is not None
    assert grad_mag is not None
    shape = st.x.shape[:2] + st.elem_shape[1:]
    return (
        cm.reduce(loss.reshape(st.elem_shape), reduction, st.denom),
        grad.reshape(shape),
        cm.reduce_magnitude(loss_mag.reshape(st.elem_shape), reduction, st.denom),
        grad_mag.reshape(shape),
    )

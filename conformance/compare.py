"""Compare a framework's output with the oracle's: classify first, then measure.

Order of judgement, per output. Every path ends in a :class:`Comparison` with a reason; none
raises (an input nobody foresaw ends as a failed comparison that says "comparator error").

0. the comparison itself must be well posed: the case dtype has a row in the table below,
   ``n_terms`` and ``factor`` are finite (``factor`` >= 0). Otherwise: failure, nothing measured.
1. type: the output must be a real floating-point array. An integer, bool, complex or
   object-of-numbers output fails, but its values are still compared (converted to float64; a
   complex output by its real part, with the largest imaginary part named), so the reason says
   whether the numbers are right apart from the type. Anything else (strings, ``None`` inside
   an object array, ragged lists) fails with "values not compared".
2. shape: must be equal; shape is part of the contract, so a difference always fails. When the
   shapes differ only by size-1 axes — (N, 1) vs (N), a scalar vs a size-1 array — the output
   is reshaped to the expected shape and its values are still compared, so the reason reads
   "shape [4, 1] != expected [4]; values agree after dropping size-1 axes" or "...; and 2
   element(s) beyond tolerance ..." and the error figures are filled in (``worst_index`` then
   indexes the expected shape). Other shape differences are not compared.
3. the pattern of NaN / +Inf / -Inf must be identical — never ``nan_to_num`` both sides, which
   would hide "torch gives NaN, Keras gives 0";
4. finite values. With B = k(n) * eps(dtype) * max_j m_j (the normwise bound; ``m`` the
   magnitude, max over finite elements), element i passes when

       |a_i - e_i| <= k(n) * eps(dtype) * m_i + tiny(dtype)        (elementwise: decides)
    or |e_i| <= B  and  |a_i - e_i| <= B                            (zero at the output's scale)

   k(n) = 8 + ceil(log2(n)). The elementwise bound decides for every element whose exact value
   is above B; the normwise bound can only rescue an element whose exact value is itself within
   B of zero. Both figures are reported: ``max_rel_err`` / ``max_ulp`` elementwise,
   ``max_norm_err`` = max|a - e| / max m normwise (comparable with ``tolerance``), with
   ``norm_scale`` = max m. A failing reason names the bound that was exceeded.

TOLERANCE TABLE (why these numbers)
- ``eps(dtype)``: float16 9.77e-4 (2^-10), bfloat16 7.81e-3 (2^-7), float32 1.19e-7 (2^-23),
  float64 2.22e-16 (2^-52) — the machine epsilon of the case dtype (the spacing of its numbers
  at 1, twice the unit roundoff: bfloat16's unit roundoff is 2^-8), because the framework
  computes in it (or better). One row per case dtype, all on the same footing, so k(n)
  means the same number of the dtype's own ulps for each. bfloat16 is ml_dtypes' type
  (conformance/dtypes.py); its ulps are measured on the bfloat16 grid (``ulp_distance``).
- ``magnitude`` m: from the oracle, the same computation with every term replaced by its
  absolute value (Higham's running error bound: fl(Σ a) - Σ a <= γ_n Σ|a|). Cancellation in
  ``logsumexp(x) - x_y`` makes small losses carry absolute errors of the size of the logits;
  this term is what allows that, and nothing more.
- a NaN or ±Inf magnitude (0 * inf, or an overflow inside the oracle's absolute-value
  computation), a magnitude that is not numeric, or one whose shape does not broadcast to the
  expected shape: those elements use m_i = |e_i| instead, and the reason says so (also on a
  pass). A NaN bound failed every value, exact ones included ("0 element(s) beyond
  tolerance"); an Inf bound accepted every value. |e_i| is the honest fallback because the
  magnitude is never below |e_i| by construction, so the fallback can only be stricter than the
  true bound: it may report a mismatch the true magnitude would have allowed (and the reason
  names the fallback), but it never hides one.
- ``n``: the number of terms reduced into one output element: C for reduction "none", C times
  the number of elements for "mean"/"sum". Pairwise and tree reductions (PyTorch, Eigen, XLA)
  grow error like log2(n); naive loops grow like n and are meant to fail.
- ``8``: the elementwise chain before the reduction: exp, log, subtract, multiply by the
  weight, divide by the denominator, final rounding — each at most ~1 ulp, with slack for
  vendor exp/log implementations that are 1–2 ulp.
- ``tiny(dtype)``: smallest normal number; results below it may flush to zero (float16
  subnormals included).
- normwise bound B = k(n) * eps * max m, for elements with |e_i| <= B. Why: with ``tiny`` as
  the only absolute floor, a gradient element that is exactly 0 in the oracle (an ignored
  target, a zero class weight) had the bound 1.2e-38 in float32, so a 1e-28 residue beside
  entries of size 1 was a "mismatch". A framework's kernel need not use the oracle's formula:
  a shared shift, a rescale by the denominator, a fused or vectorised op mixes in quantities
  of the size of the output's largest entries, and such algorithms guarantee normwise accuracy
  (|a - e|_inf <= c * eps * |m|_inf), not componentwise accuracy for entries far below the
  norm. Why not "elementwise OR normwise" for every element: m_i <= max m, so the normwise
  bound is at least every elementwise bound and that rule is purely normwise; elements the
  output does resolve would lose their own relative bound (a per-sample loss of 1e-4 beside one
  of 100 under reduction "none" could be off by 100 %; a float16 loss of 0.005 could be 0 next
  to a loss of 1). Gating on |e_i| <= B keeps the elementwise judgement for all of those. The
  price is a step at |e_i| = B (just above, k ulps of its own magnitude; just below, up to B);
  below B the element is at the noise floor of any computation at the output's scale.
  A defect confined to elements below B is invisible to this rule; ``max_norm_err`` and
  ``max_ulp`` still show it.
A case may tighten (``factor`` < 1); loosening needs a stated reason in the case.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance import dtypes

DTYPE_EPS = {name: float(dtypes.finfo(name).eps) for name in dtypes.NAMES}
DTYPE_TINY = {name: float(dtypes.finfo(name).tiny) for name in dtypes.NAMES}
ELEMENTWISE_ULPS = 8


def tolerance(dtype: str, n_terms: int) -> float:
    """Relative tolerance k(n)*eps for an output that reduces ``n_terms`` terms."""
    k = ELEMENTWISE_ULPS + math.ceil(math.log2(max(n_terms, 2)))
    return k * DTYPE_EPS[dtype]


@dataclass(frozen=True)
class Comparison:
    passed: bool
    reason: str
    shape_expected: list[int]
    shape_actual: list[int]
    dtype_actual: str
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    max_ulp: float | None = None
    tolerance: float | None = None
    worst_index: list[int] | None = None
    worst_expected: float | None = None
    worst_actual: float | None = None
    # Normwise figures; not yet columns of the results table (see fields()).
    max_norm_err: float | None = None  # max|a - e| / norm_scale over finite elements
    norm_scale: float | None = None  # max magnitude over finite elements (|m|_inf)
    # How many finite elements have error/bound in each bin of ERROR_HIST_EDGES (a bound of
    # 1 is the tolerance): the report's error plot for outputs too large to store.
    error_hist: list[int] | None = None

    def fields(self) -> dict[str, Any]:
        """The figures that are columns of the results table (``results.COLUMNS``)."""
        return {
            "shape_expected": self.shape_expected,
            "shape_actual": self.shape_actual,
            "dtype_actual": self.dtype_actual,
            "max_abs_err": self.max_abs_err,
            "max_rel_err": self.max_rel_err,
            "max_ulp": self.max_ulp,
            "tolerance": self.tolerance,
            "max_norm_err": self.max_norm_err,
            "norm_scale": self.norm_scale,
            "error_hist": self.error_hist,
            "worst_index": self.worst_index,
            "worst_expected": self.worst_expected,
            "worst_actual": self.worst_actual,
        }


def _classes(a: np.ndarray) -> np.ndarray:
    """0 finite, 1 NaN, 2 +Inf, 3 -Inf."""
    out = np.zeros(a.shape, dtype=np.int8)
    out[np.isnan(a)] = 1
    out[np.isposinf(a)] = 2
    out[np.isneginf(a)] = 3
    return out


_CLASS_NAMES = ("finite", "NaN", "+Inf", "-Inf")


def ulp_distance(actual: np.ndarray, expected: np.ndarray, dtype: str) -> np.ndarray:
    """|actual - expected| in units of the case dtype's spacing at the expected value.

    An expected value beyond the dtype's range is measured in the spacing at its largest
    finite number (not NaN).
    """
    top = float(dtypes.finfo(dtype).max)
    with np.errstate(over="ignore", invalid="ignore"):
        at = dtypes.cast(np.minimum(np.abs(np.asarray(expected, dtype=np.float64)), top), dtype)
        spacing = np.spacing(at).astype(np.float64)
        distance: np.ndarray = np.abs(actual - expected) / spacing
    return distance


def _real_values(x: Any, what: str) -> tuple[np.ndarray | None, str, str]:
    """(float64 values or None, dtype name, problem) for ``x`` of any type.

    The problem is "" for a real floating array; otherwise it names the type, and the values
    are None when there are no numbers to compare.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged nested lists, objects numpy cannot hold
        return None, type(x).__name__, f"{what} is not an array ({type(exc).__name__}: {exc})"
    kind, name = arr.dtype.kind, str(arr.dtype)
    if dtypes.is_float(arr.dtype):  # NumPy floats and ml_dtypes' bfloat16
        return arr.astype(np.float64), name, ""
    if kind in "biu":
        return arr.astype(np.float64), name, f"{what} dtype {name} is not floating-point"
    if kind == "c":
        imag = np.abs(arr.imag)
        finite_imag = imag[np.isfinite(imag)]
        largest = float(finite_imag.max()) if finite_imag.size else 0.0
        extra = f"max |imag| {largest:.3g}, " if largest else ""
        return (
            arr.real.astype(np.float64),
            name,
            f"{what} dtype {name} is not real ({extra}real part compared)",
        )
    if kind == "O":
        flat = arr.ravel()
        values = np.empty(flat.shape, dtype=np.float64)
        for i, v in enumerate(flat):
            try:
                if not isinstance(v, (numbers.Real, np.bool_)):
                    raise TypeError
                values[i] = float(v)
            except (TypeError, ValueError, OverflowError):
                where = [int(j) for j in np.unravel_index(i, arr.shape)]
                return (
                    None,
                    name,
                    f"{what} dtype object holds {type(v).__name__} at {where}; values not compared",
                )
        return values.reshape(arr.shape), name, f"{what} dtype object is not a numeric array"
    return None, name, f"{what} dtype {name} is not numeric; values not compared"


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _magnitude(magnitude: Any, e: np.ndarray) -> tuple[np.ndarray, str]:
    """Absolute magnitudes shaped like ``e``, |e| where unusable; and a note saying so."""
    fallback = np.abs(e)
    if magnitude is None:
        return fallback, "magnitude missing; bound uses |expected|"
    try:
        m = np.asarray(magnitude, dtype=np.float64)
    except Exception as exc:
        return fallback, f"magnitude unusable ({type(exc).__name__}); bound uses |expected|"
    if m.shape != e.shape:
        try:
            m = np.broadcast_to(m, e.shape)
        except ValueError:
            return fallback, (
                f"magnitude shape {list(m.shape)} does not fit expected {list(e.shape)}; "
                "bound uses |expected|"
            )
    m = np.abs(m)
    bad = ~np.isfinite(m) & np.isfinite(e)
    if not np.any(bad):
        return m, ""
    count = int(np.count_nonzero(bad))
    return np.where(bad, fallback, m), (
        f"magnitude non-finite at {count} element(s); bound uses |expected| there"
    )


def _joined(parts: list[str]) -> str:
    return "; ".join(p for p in parts if p)


# Bin edges of Comparison.error_hist, in units of the element's bound (1 = the tolerance):
# bin i counts the elements with EDGES[i] < error/bound <= EDGES[i + 1] (the first also 0).
ERROR_HIST_EDGES: tuple[float, ...] = (
    0.0, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4, 1e5, math.inf,
)  # fmt: skip


def error_hist(ratio: np.ndarray) -> list[int]:
    """Counts of ``ratio`` (error / bound, >= 0) in the bins of :data:`ERROR_HIST_EDGES`."""
    inner = np.asarray(ERROR_HIST_EDGES[1:-1])
    bins = np.searchsorted(inner, np.ravel(ratio), side="left")
    return [int(n) for n in np.bincount(bins, minlength=len(ERROR_HIST_EDGES) - 1)]


def compare(
    actual: Any,
    expected: Any,
    magnitude: Any,
    *,
    dtype: str,
    n_terms: int,
    factor: float = 1.0,
) -> Comparison:
    """Judge ``actual`` (framework) against ``expected`` (float64 oracle); never raises."""
    try:
        return _compare(actual, expected, magnitude, dtype, n_terms, factor)
    except Exception as exc:  # a comparator bug must cost one row, not the run
        return Comparison(
            False,
            f"comparator error: {type(exc).__name__}: {exc}",
            shape_expected=_safe_shape(expected),
            shape_actual=_safe_shape(actual),
            dtype_actual=str(getattr(actual, "dtype", type(actual).__name__)),
        )


def _safe_shape(x: Any) -> list[int]:
    try:
        return [int(d) for d in np.shape(x)]
    except Exception:
        return []


def _compare(
    actual: Any, expected: Any, magnitude: Any, dtype: str, n_terms: int, factor: float
) -> Comparison:
    a, dtype_actual, type_problem = _real_values(actual, "output")
    e, _, oracle_problem = _real_values(expected, "oracle output")
    base: dict[str, Any] = {
        "shape_expected": list(e.shape) if e is not None else _safe_shape(expected),
        "shape_actual": list(a.shape) if a is not None else _safe_shape(actual),
        "dtype_actual": dtype_actual,
    }
    if dtype not in DTYPE_EPS:
        return Comparison(
            False,
            f"case dtype {dtype!r} has no row in the tolerance table ({', '.join(DTYPE_EPS)})",
            **base,
        )
    try:
        rtol = tolerance(dtype, n_terms) * float(factor)
    except (TypeError, ValueError, OverflowError):
        rtol = math.nan
    if not (math.isfinite(rtol) and rtol >= 0):
        return Comparison(
            False, f"no finite tolerance from n_terms {n_terms!r} and factor {factor!r}", **base
        )
    if e is None or (oracle_problem and np.asarray(expected).dtype.kind not in "biuf"):
        return Comparison(False, oracle_problem, **base)
    # Failing remarks before the values' verdict (type, shape), non-failing notes after it.
    problems = [type_problem] if type_problem else []
    if a is None:
        return Comparison(False, type_problem, **base)
    aligned = a.shape != e.shape
    if aligned:
        problems.insert(0, f"shape {list(a.shape)} != expected {list(e.shape)}")
        if _squeezed(a.shape) != _squeezed(e.shape):
            return Comparison(
                False,
                f"{problems[0]}; values not compared (the shapes differ in more than size-1 axes)",
                **base,
            )
        a = a.reshape(e.shape)
    m, note = _magnitude(magnitude, e)

    def verdict(failure: str, pass_text: str = "", **figures: Any) -> Comparison:
        """Assemble the reason: problems (type, shape), the values' verdict, then notes."""
        if failure:
            values = f"and {failure}" if problems else failure
        elif problems:
            values = "values agree" + (" after dropping size-1 axes" if aligned else "")
        else:
            values = pass_text
        passed = not failure and not problems
        return Comparison(passed, _joined([*problems, values, note]), **base, **figures)

    if e.size == 0:
        return verdict("", "no elements to compare", tolerance=rtol)
    # An exact value beyond the case dtype's range is correctly rounded to ±Inf in it (a
    # float16 sum of 20000s overflows): a framework that returns that infinity is right (one
    # that returns the finite value in a wider dtype is compared as usual).
    with np.errstate(over="ignore", invalid="ignore"):
        overflow = (
            np.isfinite(e) & ~np.isfinite(dtypes.cast(e, dtype)) & (a == np.copysign(np.inf, e))
        )
    if np.any(overflow):
        e = np.where(overflow, np.copysign(np.inf, e), e)
        note = _joined(
            [
                note,
                f"expected beyond the {dtype} range at {int(overflow.sum())} "
                "element(s): ±Inf expected there",
            ]
        )
    ca, ce = _classes(a), _classes(e)
    if np.any(ca != ce):
        idx = tuple(int(i) for i in np.argwhere(ca != ce)[0])
        count = int(np.count_nonzero(ca != ce))
        got = repr(float(a[idx])) if ca[idx] == 0 else _CLASS_NAMES[ca[idx]]
        want = repr(float(e[idx])) if ce[idx] == 0 else _CLASS_NAMES[ce[idx]]
        return verdict(
            f"NaN/Inf pattern differs at {count} element(s); first at {list(idx)}: "
            f"expected {want}, got {got}",
            worst_index=list(idx),
            worst_expected=float(e[idx]),
            worst_actual=float(a[idx]),
            tolerance=rtol,
        )
    finite = ce == 0
    if not np.any(finite):
        return verdict("", "all elements non-finite and matching", tolerance=rtol)
    failure, figures = _measure(a, e, m, finite, dtype, rtol)
    if failure and not type_problem and dtype_actual != dtype:
        # A lower-precision output than the case dtype is the usual cause; say so.
        failure += f"; output is {dtype_actual}, case is {dtype}"
    return verdict(failure, **figures)


def _measure(
    a: np.ndarray, e: np.ndarray, m: np.ndarray, finite: np.ndarray, dtype: str, rtol: float
) -> tuple[str, dict[str, Any]]:
    """Finite values: the failure text ("" when all pass) and the error figures."""
    # Non-finite elements already match; measure finite ones only (zeros elsewhere).
    a, e = np.where(finite, a, 0.0), np.where(finite, e, 0.0)
    m = np.where(finite, m, 0.0)
    scale = float(m.max())
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        err = np.abs(a - e)  # may overflow to inf, never NaN: both sides are finite
        elementwise = rtol * m + DTYPE_TINY[dtype]
        normwise = rtol * scale
        at_floor = np.abs(e) <= normwise  # zero at the output's scale: normwise bound applies
        bound = np.where(at_floor, np.maximum(elementwise, normwise), elementwise)
        ratio = np.where(finite, err / bound, -1.0)
        rel = np.where(e != 0, err / np.abs(e), np.where(err == 0, 0.0, np.inf))
        ulps = np.where(finite, ulp_distance(a, e, dtype), 0.0)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape))
    max_err = float(err.max())
    norm_err = max_err / scale if scale > 0 else (0.0 if max_err == 0 else math.inf)
    figures: dict[str, Any] = {
        "max_abs_err": max_err,
        "max_rel_err": float(rel.max()),
        "max_ulp": float(ulps.max()),
        "tolerance": rtol,
        "worst_index": list(worst),
        "worst_expected": float(e[worst]),
        "worst_actual": float(a[worst]),
        "max_norm_err": norm_err,
        "norm_scale": scale,
        "error_hist": error_hist(ratio[finite]),
    }
    if ratio[worst] <= 1.0:
        return "", figures
    count = int(np.count_nonzero(ratio > 1.0))
    which = "normwise bound" if at_floor[worst] and normwise > elementwise[worst] else "bound"
    return (
        f"{count} element(s) beyond tolerance; worst at {list(worst)}: expected "
        f"{float(e[worst])!r}, got {float(a[worst])!r} "
        f"(abs err {err[worst]:.3g} > {which} {bound[worst]:.3g}; "
        f"normwise err {norm_err:.3g}, tolerance {rtol:.3g})"
    ), figures

"""Compare a framework's output with the oracle's: classify first, then measure.

Order of judgement, per output:
1. shape (after squeezing nothing: a (1,) where () was expected is a mismatch);
2. the pattern of NaN / +Inf / -Inf must be identical — never ``nan_to_num`` both sides, which
   would hide "torch gives NaN, Keras gives 0";
3. finite values: ``|actual - expected| <= bound`` elementwise with

       bound = k(n) * eps(dtype) * magnitude + tiny(dtype),   k(n) = 8 + ceil(log2(n))

TOLERANCE TABLE (why these numbers)
- ``eps(dtype)``: float16 9.77e-4, float32 1.19e-7, float64 2.22e-16 — the unit roundoff of the
  case dtype, because the framework computes in it (or better).
- ``magnitude``: from the oracle, the same computation with every term replaced by its
  absolute value (Higham's running error bound: fl(Σ a) - Σ a <= γ_n Σ|a|). Cancellation in
  ``logsumexp(x) - x_y`` makes small losses carry absolute errors of the size of the logits;
  this term is what allows that, and nothing more.
- ``n``: the number of terms reduced into one output element: C for reduction "none", C times
  the number of elements for "mean"/"sum". Pairwise and tree reductions (PyTorch, Eigen, XLA)
  grow error like log2(n); naive loops grow like n and are meant to fail.
- ``8``: the elementwise chain before the reduction: exp, log, subtract, multiply by the
  weight, divide by the denominator, final rounding — each at most ~1 ulp, with slack for
  vendor exp/log implementations that are 1–2 ulp.
- ``tiny(dtype)``: smallest normal number; results below it may flush to zero.
A case may tighten (``factor`` < 1); loosening needs a stated reason in the case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DTYPE_EPS = {name: float(np.finfo(name).eps) for name in ("float16", "float32", "float64")}
DTYPE_TINY = {name: float(np.finfo(name).tiny) for name in ("float16", "float32", "float64")}
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

    def fields(self) -> dict[str, Any]:
        return {
            "shape_expected": self.shape_expected,
            "shape_actual": self.shape_actual,
            "dtype_actual": self.dtype_actual,
            "max_abs_err": self.max_abs_err,
            "max_rel_err": self.max_rel_err,
            "max_ulp": self.max_ulp,
            "tolerance": self.tolerance,
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
    """|actual - expected| in units of the case dtype's spacing at the expected value."""
    spacing = np.spacing(np.abs(expected).astype(dtype)).astype(np.float64)
    distance: np.ndarray = np.abs(actual - expected) / spacing
    return distance


def compare(
    actual: np.ndarray,
    expected: np.ndarray,
    magnitude: np.ndarray,
    *,
    dtype: str,
    n_terms: int,
    factor: float = 1.0,
) -> Comparison:
    """Judge ``actual`` (framework) against ``expected`` (float64 oracle)."""
    actual = np.asarray(actual)
    base: dict[str, Any] = {
        "shape_expected": list(np.shape(expected)),
        "shape_actual": list(actual.shape),
        "dtype_actual": str(actual.dtype),
    }
    if actual.shape != np.shape(expected):
        return Comparison(
            False, f"shape {list(actual.shape)} != expected {list(np.shape(expected))}", **base
        )
    a = actual.astype(np.float64)
    e = np.asarray(expected, dtype=np.float64)
    ca, ce = _classes(a), _classes(e)
    if np.any(ca != ce):
        idx = tuple(int(i) for i in np.argwhere(ca != ce)[0])
        count = int(np.count_nonzero(ca != ce))
        got = repr(float(a[idx])) if ca[idx] == 0 else _CLASS_NAMES[ca[idx]]
        want = repr(float(e[idx])) if ce[idx] == 0 else _CLASS_NAMES[ce[idx]]
        return Comparison(
            False,
            f"NaN/Inf pattern differs at {count} element(s); first at {list(idx)}: "
            f"expected {want}, got {got}",
            worst_index=list(idx),
            worst_expected=float(e[idx]),
            worst_actual=float(a[idx]),
            **base,
        )
    rtol = tolerance(dtype, n_terms) * factor
    finite = ce == 0
    if not np.any(finite):
        return Comparison(True, "all elements non-finite and matching", tolerance=rtol, **base)
    # Non-finite elements already match; measure finite ones only (zeros elsewhere).
    a, e = np.where(finite, a, 0.0), np.where(finite, e, 0.0)
    err = np.abs(a - e)
    bound = rtol * np.abs(np.asarray(magnitude, dtype=np.float64)) + DTYPE_TINY[dtype]
    ratio = np.where(finite, err / bound, 0.0)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(finite & (e != 0), err / np.abs(e), np.where(err == 0, 0.0, np.inf))
    ulps = np.where(finite, ulp_distance(a, e, dtype), 0.0)
    metrics: dict[str, Any] = {
        "max_abs_err": float(err.max()),
        "max_rel_err": float(rel.max()),
        "max_ulp": float(ulps.max()),
        "tolerance": rtol,
        "worst_index": list(worst),
        "worst_expected": float(e[worst]),
        "worst_actual": float(a[worst]),
    }
    if ratio[worst] <= 1.0:
        return Comparison(True, "", **base, **metrics)
    count = int(np.count_nonzero(ratio > 1.0))
    # A lower-precision output than the case dtype is the usual cause; say so.
    narrowed = f"; output is {actual.dtype}, case is {dtype}" if str(actual.dtype) != dtype else ""
    return Comparison(
        False,
        f"{count} element(s) beyond tolerance; worst at {list(worst)}: expected "
        f"{float(e[worst])!r}, got {float(a[worst])!r} "
        f"(abs err {err[worst]:.3g} > bound {bound[worst]:.3g}){narrowed}",
        **base,
        **metrics,
    )

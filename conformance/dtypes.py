"""The case dtypes: their NumPy types, floating-point figures, and rounding into them.

``bfloat16`` is ml_dtypes' NumPy extension type (the one JAX and TensorFlow use): 8
significand bits (7 stored), float32's exponent range. Importing this module registers the
name, so ``np.dtype("bfloat16")`` and ``array.astype("bfloat16")`` work everywhere after it.
NumPy's own ``np.finfo`` refuses extension types; :func:`finfo` answers for all four.

Rounding float64 into bfloat16: ml_dtypes' cast goes through float32 (round to nearest twice),
which misrounds values just above a bfloat16 tie (1 + 2^-8 + 2^-30 becomes 1, not
1 + 2^-7). :func:`cast` rounds correctly: float64 to float32 with round-to-odd, then to
bfloat16 (to nearest, ties to even). Round-to-odd to a format with at least two more bits
than the target makes the second rounding the correct one (Boldo & Melquiond, "Emulation of
FMA and correctly rounded sums: proved algorithms using rounding to odd", IEEE TC 2008).
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

NAMES = ("float16", "bfloat16", "float32", "float64")
NUMPY: dict[str, np.dtype[Any]] = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}


def finfo(dtype: str | np.dtype[Any]) -> Any:
    """``np.finfo`` for NumPy floats and ml_dtypes' extension floats alike."""
    info: Any = ml_dtypes.finfo  # untyped in ml_dtypes
    return info(NUMPY[dtype] if isinstance(dtype, str) else dtype)


def is_float(dtype: np.dtype[Any]) -> bool:
    """NumPy floats, and ml_dtypes' extension floats (bfloat16, float8_*: kind 'V')."""
    return dtype.kind == "f" or (dtype.kind == "V" and "float" in dtype.name)


def cast(values: Any, dtype: str) -> np.ndarray:
    """``values`` rounded to ``dtype`` (to nearest, ties to even; beyond the range: ±inf)."""
    arr = np.asarray(values)
    target = NUMPY.get(dtype, np.dtype(dtype))
    if target != NUMPY["bfloat16"] or arr.dtype != np.float64:
        with np.errstate(over="ignore"):
            out: np.ndarray = arr.astype(target)
        return out
    with np.errstate(over="ignore", invalid="ignore"):
        f32 = arr.astype(np.float32)
        # Round-to-odd: where float32 rounding was inexact, take the bracketing float32 with
        # an odd last bit (f32 itself, or its neighbour towards the exact value).
        inexact = np.isfinite(f32) & (f32.astype(np.float64) != arr)
        even = (f32.view(np.uint32) & 1) == 0
        away = np.where(arr > f32, np.float32(np.inf), np.float32(-np.inf)).astype(np.float32)
        odd = np.where(inexact & even, np.nextafter(f32, away), f32)
        rounded: np.ndarray = odd.astype(ml_dtypes.bfloat16)
    return rounded

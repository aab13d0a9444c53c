"""The case parameters: one declaration per parameter, shared by every loss that takes it.

A loss names the parameters it takes in ``LossOracle.params`` (conformance/oracle/__init__.py);
this table says what each one is: the JSON Schema of its value in a case file (the schema's
``params`` and ``matrix`` sections are built from it), its default when a case does not give
it, how a YAML value is normalised (``255.0`` -> ``255`` for an index), and whether a matrix
may vary it. Adding a parameter is one line here.

Whether a task *uses* a parameter (and so needs an entry that has it) is decided by
:func:`used`: a value other than the default, and for ``ignore_index`` an index some target
actually holds (an index nobody uses changes nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PARAMS", "CaseParam", "defaults", "used"]

_INT = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
_NUMBERS = {"type": "array", "items": {"type": "number"}, "minItems": 1}


@dataclass(frozen=True)
class CaseParam:
    name: str
    schema: Mapping[str, Any]
    default: Any = None
    coerce: Callable[[Any], Any] | None = None
    matrix: bool = False  # a matrix may list values of it
    doc: str = ""

    def normalise(self, value: Any) -> Any:
        return value if value is None or self.coerce is None else self.coerce(value)


PARAMS: dict[str, CaseParam] = {
    p.name: p
    for p in (
        # A flat list of C numbers; nested lists only in error cases (checked in cases.py).
        CaseParam(
            "weight",
            {"type": "array", "items": {"type": ["number", "array"]}, "minItems": 1},
            doc="per-class weight (C numbers; broadcast along axis 1 for elementwise losses)",
        ),
        CaseParam("ignore_index", _INT, -100, int, matrix=True, doc="class index to ignore"),
        # 'batchmean' (sum / N) only for the losses that declare it (LossOracle.reductions).
        CaseParam(
            "reduction",
            {"enum": ["none", "mean", "sum", "batchmean"]},
            "mean",
            matrix=True,
            doc="reduction ('batchmean': the sum divided by the batch size, KL divergence only)",
        ),
        CaseParam(
            "label_smoothing",
            {"type": "number", "minimum": 0, "maximum": 1},
            0.0,
            float,
            matrix=True,
            doc="mass moved from the target to the uniform distribution",
        ),
        # Binary losses: the weight of a positive target, one per class (C numbers).
        CaseParam("pos_weight", _NUMBERS, doc="weight of the positive term, per class"),
        # Focal loss: alpha balances positives (alpha) and negatives (1 - alpha); null = none.
        CaseParam(
            "alpha",
            {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            None,
            float,
            matrix=True,
            doc="focal loss: weight of the positive term (1 - alpha for the negative); null: none",
        ),
        CaseParam(
            "gamma",
            {"type": "number", "minimum": 0, "maximum": 100},
            2.0,
            float,
            matrix=True,
            doc="focal loss: the exponent of the modulating factor (1 - p_t)",
        ),
        # Regression losses: where the quadratic part ends.
        CaseParam(
            "delta",
            {"type": "number", "exclusiveMinimum": 0, "maximum": 1e300},
            1.0,
            float,
            matrix=True,
            doc="Huber loss: the residual where the quadratic part becomes linear",
        ),
        CaseParam(
            "beta",
            {"type": "number", "minimum": 0, "maximum": 1e300},
            1.0,
            float,
            matrix=True,
            doc="smooth L1 loss: the residual where the quadratic part becomes linear (0: L1)",
        ),
        # Dice and Tversky losses: the smoothing constant and Tversky's weights.
        CaseParam(
            "smooth",
            {"type": "number", "minimum": 0, "maximum": 1e300},
            1.0,
            float,
            matrix=True,
            doc="Dice / Tversky: the smoothing constant (numerator and denominator, canonically)",
        ),
        CaseParam(
            "tversky_alpha",
            {"type": "number", "minimum": 0, "maximum": 1e300},
            0.5,
            float,
            matrix=True,
            doc="Tversky loss: the weight of the false positives",
        ),
        CaseParam(
            "tversky_beta",
            {"type": "number", "minimum": 0, "maximum": 1e300},
            0.5,
            float,
            matrix=True,
            doc="Tversky loss: the weight of the false negatives",
        ),
        # KL divergence: the target holds log-probabilities (generated as log_softmax).
        CaseParam(
            "log_target",
            {"type": "boolean"},
            False,
            bool,
            matrix=True,
            doc="KL divergence: the target holds log-probabilities",
        ),
    )
}


def defaults(names: Iterable[str] | None = None) -> dict[str, Any]:
    """Parameters ``names`` (default: all) at their defaults: what a case starts from."""
    return {name: PARAMS[name].default for name in (PARAMS if names is None else names)}


def used(name: str, value: Any, target: np.ndarray | None, target_kind: str) -> bool:
    """Whether ``value`` of parameter ``name`` changes the result (see the module docstring)."""
    if value is None:
        return False
    if name == "ignore_index":
        return target is not None and target_kind == "index" and bool(np.any(target == value))
    default = PARAMS[name].default
    if default is None:
        return True
    return bool(np.any(np.asarray(value, dtype=np.float64) != float(default)))

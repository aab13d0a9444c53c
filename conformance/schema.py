"""JSON Schema of a case file (validated with ``jsonschema``; line numbers added by cases.py).

Structure only; checks that need arithmetic (shapes, class ranges, element limits) live in
``conformance.cases``. JSON Schema's bounds let NaN through (every comparison with NaN is
false), so the loader refuses NaN itself, except in literal input/target values.

A few inputs are valid here only as the subject of an error case (``expect_error``): a
class weight that is not a flat list of C numbers (``weight: [[1, 2, 3]]``), targets of the
wrong shape, class labels outside [0, C) or not integral. The schema lets ``weight`` nest
and ``conformance.cases`` refuses those unless the case expects an error. An empty batch
(N = 0) is a value case, not an error: only the batch dimension of ``shape`` may be 0.
"""

from __future__ import annotations

from typing import Any

from conformance import dtypes
from conformance.oracle import LOSSES as _ORACLES
from conformance.oracle.params import PARAMS

# Losses come from the oracle's table (conformance/oracle/__init__.py), the one place a loss
# is declared; which parameters and target kinds each takes is checked in cases.py from it.
LOSSES = tuple(_ORACLES)
# bfloat16 is ml_dtypes' NumPy type (conformance/dtypes.py).
DTYPES = dtypes.NAMES
REDUCTIONS = ("none", "mean", "sum")
# Case fields a matrix may vary; each expands into one case per value.
MATRIX_AXES = ("dtype", *(name for name, p in PARAMS.items() if p.matrix))

# Inputs have shape (N, C, d1, ..., dk): up to 14 spatial dimensions. NumPy 1.x stops at 32
# and the oracle adds axes of its own, and no loss API is exercised beyond a handful.
MAX_NDIM = 16
# A generator's scale and offset stay far from float64's edge (1.8e308), so drawing and
# shifting the values cannot overflow; the case dtype's own range is the user's business.
_BIG = 1e300

# Integers end up in int64 arrays (class indices), so they must fit int64.
_int = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
_seed = {"type": "integer", "minimum": 0}
_dim = {"type": "integer", "minimum": 1}
_shape = {
    "type": "array",
    # N may be 0 (an empty batch: 'mean' is NaN, 'sum' 0, see docs/semantics.md); C and the
    # spatial dimensions may not.
    "prefixItems": [{"type": "integer", "minimum": 0}],
    "items": _dim,
    "minItems": 2,
    "maxItems": MAX_NDIM,
}
_scale = {"type": "number", "exclusiveMinimum": 0, "maximum": _BIG}
_nested = {"type": ["array", "number"]}

_input = {
    "type": "object",
    "description": "literal `values`, or a seeded generator",
    "oneOf": [
        {"required": ["values"]},
        {"required": ["shape", "seed"]},
    ],
    "properties": {
        "values": _nested,
        "shape": _shape,
        "distribution": {"enum": ["normal", "uniform"]},
        "scale": _scale,
        "offset": {"type": "number", "minimum": -_BIG, "maximum": _BIG},
        "seed": _seed,
    },
    "additionalProperties": False,
}

_target = {
    "type": "object",
    "description": "literal `values`, or generated class indices / probabilities",
    "oneOf": [
        {"required": ["values"]},
        {"required": ["kind", "seed"]},
    ],
    "properties": {
        "values": _nested,
        # index: class indices; probs: a distribution over the classes (axis 1); binary: one
        # target in [0, 1] per input element (hard 0/1, or uniform soft ones with `soft`).
        # real: regression targets of the input's shape (normal, `scale` and `offset`).
        "kind": {"enum": ["index", "probs", "binary", "real"]},
        "offset": {"type": "number", "minimum": -_BIG, "maximum": _BIG},
        "soft": {"type": "boolean"},
        # probs: one-hot masks (a seeded class index per position) instead of distributions.
        "one_hot": {"type": "boolean"},
        "seed": _seed,
        "ignore_share": {"type": "number", "minimum": 0, "maximum": 1},
        "scale": _scale,
    },
    "additionalProperties": False,
}

# Parameters and matrix axes come from the parameter registry (conformance/oracle/params.py).
_params = {
    "type": "object",
    "properties": {name: dict(p.schema) for name, p in PARAMS.items()},
    "additionalProperties": False,
}

_matrix = {
    "type": "object",
    "properties": {
        "dtype": {"type": "array", "items": {"enum": list(DTYPES)}, "minItems": 1},
        **{
            name: {"type": "array", "items": dict(p.schema), "minItems": 1}
            for name, p in PARAMS.items()
            if p.matrix
        },
    },
    "additionalProperties": False,
}

CASE: dict[str, Any] = {
    "type": "object",
    # `target` is required by every loss except the target-less building blocks (cases.py).
    "required": ["id", "loss", "input"],
    "properties": {
        "id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$", "maxLength": 120},
        "loss": {"enum": list(LOSSES)},
        "description": {"type": "string"},
        "source": {"type": "string", "description": "where the numbers come from"},
        "dtype": {"enum": list(DTYPES)},
        "input": _input,
        "target": _target,
        "params": _params,
        "matrix": _matrix,
        "expect_error": {"type": "string", "minLength": 1, "description": "why it must raise"},
        # Cases may only tighten the tolerance table (factor <= 1); see conformance/compare.py.
        "tolerance_factor": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    },
    "additionalProperties": False,
}

FILE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["cases"],
    "properties": {
        "description": {"type": "string"},
        "cases": {"type": "array", "items": CASE, "minItems": 1},
    },
    "additionalProperties": False,
}

"""JSON Schema of a case file (validated with ``jsonschema``; line numbers added by cases.py).

Structure only; checks that need arithmetic (shapes, class ranges, element limits) live in
``conformance.cases``.
"""

from __future__ import annotations

from typing import Any

LOSSES = ("cross_entropy",)
DTYPES = ("float16", "float32", "float64")
REDUCTIONS = ("none", "mean", "sum")
# Case fields a matrix may vary; each expands into one case per value.
MATRIX_AXES = ("dtype", "reduction", "label_smoothing", "ignore_index")

_number = {"type": "number"}
# Integers end up in int64 arrays (class indices), so they must fit int64.
_int = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
_seed = {"type": "integer", "minimum": 0}
_shape = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2}
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
        "scale": {"type": "number", "exclusiveMinimum": 0},
        "offset": _number,
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
        "kind": {"enum": ["index", "probs"]},
        "seed": _seed,
        "ignore_share": {"type": "number", "minimum": 0, "maximum": 1},
        "scale": {"type": "number", "exclusiveMinimum": 0},
    },
    "additionalProperties": False,
}

_params = {
    "type": "object",
    "properties": {
        "weight": {"type": "array", "items": _number, "minItems": 1},
        "ignore_index": _int,
        "reduction": {"enum": list(REDUCTIONS)},
        "label_smoothing": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "additionalProperties": False,
}

_matrix = {
    "type": "object",
    "properties": {
        "dtype": {"type": "array", "items": {"enum": list(DTYPES)}, "minItems": 1},
        "reduction": {"type": "array", "items": {"enum": list(REDUCTIONS)}, "minItems": 1},
        "label_smoothing": {
            "type": "array",
            "items": {"type": "number", "minimum": 0, "maximum": 1},
            "minItems": 1,
        },
        "ignore_index": {"type": "array", "items": _int, "minItems": 1},
    },
    "additionalProperties": False,
}

CASE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "loss", "input", "target"],
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

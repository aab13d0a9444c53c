"""Whatever a case file holds, loading it ends in cases or in CaseErrors: never a traceback."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import cases

VALID: dict[str, Any] = {
    "cases": [
        {
            "id": "fuzz",
            "loss": "cross_entropy",
            "input": {"shape": [2, 3, 2], "scale": 2.0, "seed": 1},
            "target": {"kind": "index", "seed": 2, "ignore_share": 0.5},
            "params": {"weight": [1.0, 2.0, 3.0], "ignore_index": 255, "reduction": "mean"},
            "matrix": {"dtype": ["float32", "float64"]},
        }
    ]
}

LITERAL: dict[str, Any] = {
    "cases": [
        {
            "id": "lit",
            "loss": "cross_entropy",
            "input": {"values": [[[0.0, 1.0], [2.0, 0.5], [1.0, 1.5]]]},
            "target": {"values": [[0, 2]]},
            "params": {"weight": [1.0, 2.0, 3.0]},
        }
    ]
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
# Paths into VALID where a fuzzed value replaces what is there.
PATHS = [
    ("cases",),
    ("cases", 0),
    ("cases", 0, "id"),
    ("cases", 0, "input"),
    ("cases", 0, "input", "shape"),
    ("cases", 0, "input", "shape", 1),
    ("cases", 0, "input", "values"),
    ("cases", 0, "target"),
    ("cases", 0, "target", "values"),
    ("cases", 0, "target", "ignore_share"),
    ("cases", 0, "params", "weight"),
    ("cases", 0, "params", "ignore_index"),
    ("cases", 0, "matrix"),
    ("cases", 0, "matrix", "dtype"),
    ("cases", 0, "expect_error"),
]


LITERAL_PATHS = [
    ("cases", 0, "input", "values"),
    ("cases", 0, "input", "values", 0),
    ("cases", 0, "input", "values", 0, 1),
    ("cases", 0, "input", "values", 0, 1, 0),
    ("cases", 0, "target", "values"),
    ("cases", 0, "target", "values", 0),
    ("cases", 0, "target", "values", 0, 1),
    ("cases", 0, "target", "kind"),
    ("cases", 0, "params", "weight", 2),
]


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def _load(tmp_path: Any, text: str | bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    try:
        loaded = cases.load_file(path, max_elements=10_000)
    except cases.CaseErrors as exc:
        for error in exc.errors:
            assert error.line >= 1 and error.field and str(error).startswith(str(path))
        return
    for case in loaded:  # a file that loads must also generate its arrays
        case.arrays()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(PATHS), value=values)
def test_fuzzed_fields_give_located_errors(tmp_path, path, value):
    _load(tmp_path, yaml.safe_dump(_replace(VALID, path, value)))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(LITERAL_PATHS), value=values)
def test_fuzzed_literal_arrays_give_located_errors(tmp_path, path, value):
    _load(tmp_path, yaml.safe_dump(_replace(LITERAL, path, value)))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=200))
def test_random_bytes_give_located_errors(tmp_path, data):
    _load(tmp_path, data)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet="cases:-[]{}&*!|>'\"#\n 01.id", max_size=80))
def test_yaml_punctuation_soup_gives_located_errors(tmp_path, text):
    _load(tmp_path, text)

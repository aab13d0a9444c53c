"""Whatever a case file holds, loading it ends in cases or in CaseErrors: never a traceback.

And whatever loads also runs: for every case the loader accepts, building its arrays, the
oracle, one framework call (an in-process entry that computes with the oracle, the way a
worker calls an adapter) and judging its outputs never raise.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import yaml
from fake_adapter import _entry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import cases, oracle, runner, worker
from conformance.adapters._entry import calling
from conformance.compare import compare
from conformance.protocol import Task

VALID: dict[str, Any] = {
    "cases": [
        {
            "id": "fuzz",
            "loss": "cross_entropy",
            "input": {"shape": [2, 3, 2], "scale": 2.0, "seed": 1},
            "target": {"kind": "index", "seed": 2, "ignore_share": 0.5},
            "params": {"weight": [1.0, 2.0, 3.0], "ignore_index": 255, "reduction": "mean"},
            "matrix": {
                "dtype": ["float32", "float64"],
                "label_smoothing": [0.1],
                "ignore_index": [255],
            },
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
    ("cases", 0, "loss"),
    ("cases", 0, "dtype"),
    ("cases", 0, "tolerance_factor"),
    ("cases", 0, "input", "seed"),
    ("cases", 0, "input", "scale"),
    ("cases", 0, "input", "offset"),
    ("cases", 0, "input", "distribution"),
    ("cases", 0, "target", "kind"),
    ("cases", 0, "target", "seed"),
    ("cases", 0, "target", "scale"),
    ("cases", 0, "params", "label_smoothing"),
    ("cases", 0, "params", "reduction"),
    ("cases", 0, "matrix", "reduction"),
    ("cases", 0, "matrix", "label_smoothing"),
    ("cases", 0, "matrix", "ignore_index"),
    ("cases", 0, "matrix", "label_smoothing", 0),
    ("cases", 0, "matrix", "ignore_index", 0),
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


def _oracle_call(task: Task) -> tuple[dict[str, np.ndarray], str]:
    """A framework stand-in: the oracle in the case dtype; what it raises is the framework's
    error (``calling``), as in every real adapter."""
    spec = oracle.LOSSES[task.loss]
    call = f"oracle.{task.loss}(x, t)"
    with calling(call):
        kw = {k: v for k, v in task.params.items() if k in spec.params}
        loss = spec.value(task.input, task.target, **kw)
        grad = spec.grad(task.input, task.target, **kw)
    return {"loss": loss.astype(task.input.dtype), "grad": grad.astype(task.input.dtype)}, call


ENTRY = _entry("fuzz.oracle", _oracle_call)


def _runs(case: cases.Case) -> None:
    """What `run` does with a case, in this process: arrays, oracle, one call, judging."""
    x, target = case.arrays()
    expected = runner.expected_for(case, x, target)
    assert not expected.problem.startswith("oracle failed"), expected.problem
    task = Task(
        case_id=case.id,
        loss=case.loss,
        api=ENTRY.api,
        input=x,
        target=target,
        target_kind=case.target_kind,  # type: ignore[arg-type]
        params=dict(case.params, weight=case.weight()),
    )
    outcome = worker.handle(ENTRY, task)
    for output, want in expected.values.items():
        got = outcome.outputs.get(output)
        if got is not None:
            result = compare(
                got,
                want,
                expected.magnitudes[output],
                dtype=case.dtype,
                n_terms=expected.n_terms,
                factor=case.tolerance_factor,
            )
            assert not result.reason.startswith("comparator error"), result.reason
    # what a row holds from the case must be writable as UTF-8 JSON
    text = [case.file, case.id, case.expect_error, case.description, case.source, case.params]
    json.dumps(text, allow_nan=True).encode("utf-8")


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
            assert "\n" not in str(error) and str(error).isprintable() and len(str(error)) < 1000
        return
    for case in loaded:  # a file that loads must also run
        _runs(case)


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


# YAML's hostile corners: tags, directives, merge keys, anchors/aliases, escapes, NaN, huge
# numbers, control characters, documents.
TOKENS = [
    "cases:",
    " - ",
    "id: x",
    "loss: cross_entropy",
    "input:",
    "target:",
    "values:",
    "shape:",
    "seed: 1",
    "kind: index",
    "params:",
    "weight:",
    "matrix:",
    "label_smoothing:",
    "expect_error:",
    "{",
    "}",
    "[",
    "]",
    ", ",
    ": ",
    "\n",
    "  ",
    "!!int ",
    "!!str ",
    "!x ",
    "%TAG ! tag:x,2000:\n---\n",
    "<<: ",
    "&a ",
    "*a",
    "---\n",
    "...\n",
    ".nan",
    ".inf",
    "-.inf",
    "1e+999",
    "1" + "0" * 30,
    "0x1F",
    "1:30",
    "2024-13-45",
    "? ",
    '"\\uD800"',
    '"\\x07"',
    "\t",
    "\x07",
    "\u2028",
    "'",
    '"',
    "#",
    "|\n",
    "=",
    "~",
    "4",
    "3",
    "0.5",
]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(st.sampled_from(TOKENS), max_size=40))
def test_hostile_yaml_tokens_give_located_errors(tmp_path, parts):
    _load(tmp_path, "".join(parts))


M = (
    "cases: [{id: t1, loss: cross_entropy, input: {shape: [4, 3], seed: 1}, "
    "target: {kind: index, seed: 2}}]\n"
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(at=st.integers(0, len(M)), token=st.sampled_from(TOKENS))
def test_a_hostile_token_inside_a_valid_file(tmp_path, at, token):
    _load(tmp_path, M[:at] + token + M[at:])


# Cases near the schema's edges: most of them load, so "whatever loads also runs" is tested on
# many accepted cases, not just on the few that survive random mutation.
edge_floats = st.one_of(
    st.floats(-10, 10),
    st.sampled_from(
        [0.0, -0.0, 1e-300, 5e-324, 65504.0, 3.4e38, 1e300, float("inf"), -float("inf")]
    ),
)
int64s = st.one_of(st.integers(-5, 300), st.sampled_from([-(2**63), 2**63 - 1, -100, 255]))


@st.composite
def edge_cases(draw: st.DrawFn) -> dict[str, Any]:
    ndim = draw(st.sampled_from([2, 2, 3, 4, 5, cases.MAX_NDIM]))
    sizes = st.integers(1, 3) if ndim <= 5 else st.just(1)
    shape = [draw(st.integers(1, 3)), draw(st.integers(1, 4))] + [
        draw(sizes) for _ in range(ndim - 2)
    ]
    classes, spatial = shape[1], [shape[0], *shape[2:]]
    size = int(np.prod(shape))
    raw: dict[str, Any] = {"id": "edge", "loss": "cross_entropy"}
    if draw(st.booleans()):
        numbers = st.one_of(edge_floats, st.just(float("nan")))
        flat = draw(st.lists(numbers, min_size=size, max_size=size))
        raw["input"] = {"values": np.asarray(flat, dtype=object).reshape(shape).tolist()}
    else:
        raw["input"] = {"shape": shape, "seed": draw(st.integers(0, 2**64))}
        for key, strategy in (
            ("scale", st.floats(1e-300, 1e300)),
            ("offset", st.floats(-1e300, 1e300)),
            ("distribution", st.sampled_from(["normal", "uniform"])),
        ):
            if draw(st.booleans()):
                raw["input"][key] = draw(strategy)
    params: dict[str, Any] = {}
    ignore = draw(int64s)
    if draw(st.booleans()):
        params["ignore_index"] = ignore
    kind = draw(st.sampled_from(["index", "probs", "literal-index", "literal-probs"]))
    if kind == "literal-index":
        labels = st.one_of(st.integers(0, classes - 1), st.just(ignore), int64s)
        flat = draw(
            st.lists(labels, min_size=int(np.prod(spatial)), max_size=int(np.prod(spatial)))
        )
        raw["target"] = {"values": np.asarray(flat, dtype=object).reshape(spatial).tolist()}
    elif kind == "literal-probs":
        flat = draw(st.lists(st.floats(0, 1), min_size=size, max_size=size))
        raw["target"] = {"values": np.asarray(flat).reshape(shape).tolist(), "kind": "probs"}
    else:
        raw["target"] = {"kind": kind, "seed": draw(st.integers(0, 2**32))}
        if kind == "index" and draw(st.booleans()):
            raw["target"]["ignore_share"] = draw(st.floats(0, 1))
        if kind == "probs" and draw(st.booleans()):
            raw["target"]["scale"] = draw(st.floats(1e-300, 1e300))
    if draw(st.booleans()):
        length = draw(st.sampled_from([classes, classes, classes + 1]))
        params["weight"] = draw(st.lists(edge_floats, min_size=length, max_size=length))
    if draw(st.booleans()):
        params["label_smoothing"] = draw(st.floats(0, 1))
    if draw(st.booleans()):
        params["reduction"] = draw(st.sampled_from(["none", "mean", "sum"]))
    if params:
        raw["params"] = params
    if draw(st.booleans()):
        raw["dtype"] = draw(st.sampled_from(["float16", "float32", "float64"]))
    if draw(st.booleans()):
        raw["tolerance_factor"] = draw(st.floats(1e-300, 1, exclude_min=True))
    if draw(st.booleans()):
        raw["expect_error"] = draw(st.text(min_size=1, max_size=20))
    if draw(st.booleans()):
        raw["matrix"] = {
            "reduction": draw(
                st.lists(
                    st.sampled_from(["none", "mean", "sum"]), min_size=1, max_size=2, unique=True
                )
            ),
            "label_smoothing": draw(st.lists(st.floats(0, 1), min_size=1, max_size=2, unique=True)),
        }
    return {"cases": [raw]}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=edge_cases())
def test_cases_near_the_edges_load_and_run(tmp_path, doc):
    _load(tmp_path, yaml.safe_dump(doc, allow_unicode=True))

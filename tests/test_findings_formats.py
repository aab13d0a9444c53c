"""Findings (rows grouped into behaviours) and the machine formats of a run directory."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conformance.compare import ERROR_HIST_EDGES, compare, error_hist
from conformance.report import formats, write_all
from conformance.report.findings import findings, mask, split_options
from conformance.results import COLUMNS, ResultWriter, Verdict, load, summarize, write_summary

INDEX_COUNT = (
    "index_mean=count (a mean over class-index targets divides by the number of non-ignored "
    "targets, whatever their weights)"
)
PRECISION = "precision=float32 (computes in float32 whatever the input dtype)"
ENVIRONMENT = {"tensorflow": {"tensorflow": "2.21.0", "keras": "3.15.1", "device": "cpu"}}
LINK_A = "https://github.com/keras-team/keras/issues/1"
LINK_B = "https://github.com/keras-team/keras/issues/2"


def _row(case: str, api: str, verdict: Verdict, **extra: Any) -> dict[str, Any]:
    framework = extra.pop("framework", api.split(".")[0])
    row: dict[str, Any] = {
        "case_id": f"{case}[dtype=float32]",
        "base_id": case,
        "file": "cases/ce.yaml",
        "line": 7,
        "loss": "cross_entropy",
        "framework": framework,
        "api": api,
        "device": "cpu",
        "dtype": "float32",
        "mode": "eager",
        "output": "loss",
        "verdict": verdict.value,
        "reason": f"{verdict.value}",
        "call": f"{api}(input, target)",
        "repro": f"import {framework}\n{api}(x, t)",
        "input_shape": [4, 3],
        "seconds": 0.25,
    }
    row.update(extra)
    return row


def _semantic(case: str, api: str, explanation: str, links: str, **extra: Any) -> dict[str, Any]:
    return _row(
        case,
        api,
        Verdict.SEMANTIC_DIFFERENCE,
        framework="tensorflow",
        explanation=explanation,
        reason=f"documented difference: {explanation} [{links}]; against canonical: ...",
        **extra,
    )


ROWS = [
    # The functional and the class form of Keras' loss, two cases, loss and grad: one finding.
    _semantic("ce-a", "keras.losses.SparseCategoricalCrossentropy", INDEX_COUNT, LINK_A),
    _semantic("ce-a", "keras.losses.sparse_categorical_crossentropy", INDEX_COUNT, LINK_A),
    _semantic(
        "ce-b",
        "keras.losses.SparseCategoricalCrossentropy",
        INDEX_COUNT,
        LINK_A,
        output="grad",
        input_shape=[2, 3, 4, 4],
    ),
    # Reproduced only by two options together: in the finding of each.
    _semantic(
        "ce-c",
        "keras.losses.SparseCategoricalCrossentropy",
        f"{PRECISION}; {INDEX_COUNT}",
        f"{LINK_B} {LINK_A}",
        dtype="float16",
    ),
    # The same ledger entry over two cases and two modes: one known finding.
    *[
        _row(
            case,
            "paddle.nn.functional.cross_entropy",
            Verdict.KNOWN,
            mode=mode,
            ledger="cases/known.yaml:12 https://github.com/PaddlePaddle/Paddle/issues/48663",
            reason="known (https://github.com/PaddlePaddle/Paddle/issues/48663): mean_all "
            "divides by all elements; measured mismatch: 3 element(s) beyond tolerance",
            max_ulp=ulp,
        )
        for case, mode, ulp in (("ce-d", "eager", 10.0), ("ce-e", "to_static", 4e6))
    ],
    # The same error in two cases with other numbers: one finding, numbers masked.
    _row(
        "ce-f",
        "torch.nn.functional.cross_entropy",
        Verdict.ERROR,
        reason="IndexError: Target 5 is out of bounds.",
    ),
    _row(
        "ce-g",
        "torch.nn.functional.cross_entropy",
        Verdict.ERROR,
        reason="IndexError: Target 17 is out of bounds.",
    ),
    _row(
        "ce-h",
        "optax.softmax_cross_entropy",
        Verdict.MISMATCH,
        framework="jax",
        reason="1 element(s) beyond tolerance; no semantic option reproduces it",
        max_ulp=300.0,
        error_hist=[0, 0, 0, 3, 1, 0, 0, 0, 0, 0],
    ),
    _row("ce-a", "torch.nn.functional.cross_entropy", Verdict.PASS, max_ulp=0.5),
    _row(
        "ce-a",
        "paddle.nn.functional.cross_entropy",
        Verdict.UNSUPPORTED,
        reason="no native parameter for x",
    ),
]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    with ResultWriter(tmp_path) as writer:
        writer.write(ROWS)
    environment = ENVIRONMENT
    frame = pd.DataFrame(ROWS).reindex(columns=list(COLUMNS))
    write_summary(tmp_path, {**summarize(frame, environment), "stale_ledger": []})
    return tmp_path


def test_split_options() -> None:
    assert split_options(f"{PRECISION}; {INDEX_COUNT}") == (
        [
            ("precision=float32", "computes in float32 whatever the input dtype"),
            ("index_mean=count", INDEX_COUNT.split(" (", 1)[1][:-1]),
        ],
        False,
    )
    either = "empty_mean=zero (a mean ... is 0) or index_mean=elements (divides; or not)"
    assert split_options(either) == ([(either, "")], True)
    assert split_options("") == ([], False)


def test_mask() -> None:
    assert mask("IndexError: Target 5 is out of bounds.\nmore") == mask(
        "IndexError: Target 17 is out of bounds."
    )
    assert mask("shape [2, 3] != [4]") == "shape [N, N] != [N]"


def test_findings_group_twins_cases_outputs_and_modes(run: Path) -> None:
    found = findings(load(run), ENVIRONMENT)
    by_key = {(f.framework, f.verdict, f.key): f for f in found}
    assert len(found) == 5
    index = by_key[("tensorflow", "semantic-difference", "index_mean=count")]
    assert index.apis == [
        "keras.losses.SparseCategoricalCrossentropy",
        "keras.losses.sparse_categorical_crossentropy",
    ]
    assert index.rows == [0, 1, 2, 3] and index.cases == ["ce-a", "ce-b", "ce-c"]
    assert index.outputs == ["grad", "loss"] and index.dtypes == ["float16", "float32"]
    assert index.links == [LINK_A]  # the link every row of it names, not LINK_B
    assert index.version == "tensorflow 2.21.0, keras 3.15.1"
    precision = by_key[("tensorflow", "semantic-difference", "precision=float32")]
    assert precision.rows == [3]
    known = by_key[("paddle", "known", "ledger cases/known.yaml:12")]
    assert known.rows == [4, 5] and known.modes == ["eager", "to_static"]
    assert known.max_ulp == 4e6 and "mean_all divides by all elements" in known.statement
    assert known.links == ["https://github.com/PaddlePaddle/Paddle/issues/48663"]
    error = by_key[("torch", "error", "IndexError: Target N is out of bounds.")]
    assert error.rows == [6, 7] and "raises where a value is expected" in error.statement
    # Ranked: the error, the unexplained mismatch, the known defect, then documented ones by
    # reach (three cases before one).
    assert [f.verdict for f in found] == [
        "error",
        "mismatch",
        "known",
        "semantic-difference",
        "semantic-difference",
    ]
    assert found[3] is index
    # The example (call and repro) is the smallest input's loss row.
    assert index.example == 0 and index.call.startswith("keras.losses.SparseCategorical")
    # Every differing row is in a finding; passing and unsupported rows are in none.
    covered = {n for f in found for n in f.rows}
    assert covered == set(range(9))
    # Ids are stable: the same behaviour in another run has the same id.
    assert [f.id for f in findings(load(run))] == [f.id for f in found]


def test_junit_loads_in_a_junit_consumer(run: Path) -> None:
    junitparser = pytest.importorskip("junitparser", reason="junitparser is a test dependency")
    write_all(run)
    xml = junitparser.JUnitXml.fromfile(str(run / formats.JUNIT_FILE))
    # One test case per case x API x device x dtype x mode (loss and grad together).
    assert xml.tests == len(ROWS)
    assert xml.failures == 3 and xml.errors == 0 and xml.skipped == 3
    cases = {c.name: c for suite in xml for c in suite}
    failing = cases["ce-h[dtype=float32] · optax.softmax_cross_entropy · cpu · eager"]
    (result,) = failing.result
    assert isinstance(result, junitparser.Failure) and result.type == "mismatch"
    assert "no semantic option reproduces it" in (result.message or "")
    assert "import jax\noptax.softmax_cross_entropy(x, t)" in (result.text or "")
    assert "case: cases/ce.yaml:7" in (result.text or "")
    assert failing.classname == "jax.cross_entropy"
    known = cases["ce-d[dtype=float32] · paddle.nn.functional.cross_entropy · cpu · eager"]
    assert isinstance(known.result[0], junitparser.Skipped)
    assert {s.name for s in xml} == {"jax", "paddle", "tensorflow", "torch"}


def test_junit_crash_is_an_error_and_control_characters_survive() -> None:
    rows = [
        _row("c", "torch.x", Verdict.CRASHED, reason="worker died\x00\x1b[0m", seconds=None),
        _row("c", "torch.x", Verdict.PASS, output="grad"),
    ]
    frame = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    text = formats.junit(frame)
    assert 'errors="1"' in text and 'tests="1"' in text
    assert "\\x00" in text and "\x00" not in text  # XML 1.0 cannot hold it; shown escaped


def test_parquet_round_trip(run: Path) -> None:
    pytest.importorskip("pyarrow", reason="pyarrow writes results.parquet")
    write_all(run)
    back = pd.read_parquet(run / formats.PARQUET_FILE)
    assert list(back.columns) == list(COLUMNS) and len(back) == len(ROWS)
    assert back["max_ulp"].dtype == "float64" and back["max_ulp"][5] == 4e6
    assert math.isnan(back["max_ulp"][0])  # a missing cell is NaN in a float column
    assert json.loads(back["error_hist"][8]) == ROWS[8]["error_hist"]
    assert json.loads(back["input_shape"][2]) == [2, 3, 4, 4]
    assert back["line"].tolist() == [7] * len(ROWS)


def test_summary_md_and_json(run: Path) -> None:
    write_all(run)
    md = (run / formats.MARKDOWN_FILE).read_text()
    assert "**11** rows, **3** failing" in md
    assert "### Failing findings" in md and "### Known and documented" in md
    failing = md.split("### Failing findings", 1)[1].split("###", 1)[0]
    assert failing.count("\n| error |") == 1 and failing.count("\n| mismatch |") == 1
    assert "Versions: tensorflow 2.21.0." in md
    saved = json.loads((run / "summary.json").read_text())
    assert saved["stale_ledger"] == []  # what the run wrote is kept
    assert saved["rows"] == 11 and len(saved["findings"]) == 5
    first = saved["findings"][0]
    assert first["verdict"] == "error" and first["rows"] == 2 and first["failing"] is True


def test_error_hist_bins() -> None:
    ratio = [0.0, 5e-4, 1.0, 1.5, 2e5, math.inf]
    import numpy as np

    assert error_hist(np.array(ratio)) == [2, 0, 0, 1, 1, 0, 0, 0, 0, 2]
    assert len(ERROR_HIST_EDGES) == 11
    # compare() fills it: one element far out, three within tolerance.
    result = compare(
        np.array([1.0, 2.0, 3.0, 4.5], dtype=np.float32),
        np.array([1.0, 2.0, 3.0, 4.0]),
        np.array([1.0, 2.0, 3.0, 4.0]),
        dtype="float32",
        n_terms=1,
    )
    assert result.error_hist is not None and sum(result.error_hist) == 4
    assert result.error_hist[0] == 3 and result.error_hist[-1] == 1


def test_without_pyarrow_only_the_parquet_is_missing(
    run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pyarrow(frame: pd.DataFrame, path: Path) -> Path:
        raise ImportError("Unable to find a usable engine", name="pyarrow")

    monkeypatch.setattr(formats, "write_parquet", no_pyarrow)
    written = dict(write_all(run))
    problem = written.pop(formats.PARQUET_FILE)
    assert isinstance(problem, OSError) and "needs pyarrow" in str(problem)
    assert all(isinstance(p, Path) for p in written.values()) and len(written) == 5

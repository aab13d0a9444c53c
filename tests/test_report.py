"""The HTML report and CSV export, built from a saved run directory."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conformance.report import JSON_COLUMNS, render, write_csv
from conformance.results import COLUMNS, FAILING, ResultWriter, Verdict, summarize, write_summary

XSS = "<script>alert(1)</script>"
SECTIONS = ("overview", "findings", "coverage", "by-api", "rows", "census", "environment")
ENVIRONMENT = {
    "python": "3.11.9",
    "numpy": "2.4.6",
    "platform": "Linux-x86_64",
    "started": "2025-01-01T12:00:00",
    "finished": "2025-01-01T12:05:00",
    "argv": ["conformance", "run", "--framework", "torch"],
    "torch": {
        "torch": "2.13.0",
        "device": "cpu",
        "census": {
            "covered": 22,
            "out-of-scope": 27,
            "pending": 0,
            "not-covered": 1,
            "not_covered": ["torch.nn.functional.new_loss<i>"],
        },
    },
    "jax": {"jax": "0.10.2", "device": "cpu", "census": {"error": "RuntimeError: walk failed"}},
    "paddle": {"skipped": "paddle is not installed"},
}


def _row(case: str, api: str, verdict: Verdict, **extra: Any) -> dict[str, Any]:
    framework = api.split(".")[0]
    row: dict[str, Any] = {
        "case_id": f"{case}[dtype=float32]",
        "base_id": case,
        "file": "cases/ce.yaml",
        "line": 12,
        "loss": case.split("-")[0],
        "framework": framework,
        "api": api,
        "device": "cpu",
        "device_name": "cpu",
        "dtype": "float32",
        "mode": "eager",
        "output": "loss",
        "verdict": verdict.value,
        "reason": f"{verdict.value} reason",
        "call": f"{api}(input, target)",
        "params": {"reduction": "mean", "weight": [1.0, 2.0]},
        "input_shape": [4, 3],
        "repro": f"import {framework}\n{api}(x, y)",
        "seconds": 0.01,
    }
    row.update(extra)
    return row


ROWS: list[dict[str, Any]] = [
    _row("ce-basic", "torch.nn.functional.cross_entropy", Verdict.PASS, max_ulp=0.5),
    _row(
        "ce-nan",
        "torch.nn.functional.cross_entropy",
        Verdict.MISMATCH,
        reason="NaN pattern differs: expected finite at [1], got NaN",
        max_abs_err=math.nan,
        max_rel_err=math.nan,
        max_ulp=math.nan,
        tolerance=2.4e-7,
        worst_index=[1],
        worst_expected=0.6931471805599453,
        worst_actual=math.nan,
        expected=[0.1, 0.6931471805599453],
        actual=[0.1, math.nan],
    ),
    _row(
        "ce-small",
        "optax.softmax_cross_entropy",
        Verdict.MISMATCH,
        max_abs_err=1e-5,
        max_rel_err=3e-5,
        max_ulp=250.0,
        tolerance=2.4e-7,
        worst_index=[0],
        worst_expected=1.0,
        worst_actual=1.00001,
    ),
    _row("ce-basic", "paddle.nn.functional.cross_entropy", Verdict.UNSUPPORTED),
    _row(
        "nll-crash",
        "torch.nn.functional.nll_loss",
        Verdict.CRASHED,
        reason="worker died with SIGSEGV",
        stderr_tail="Fatal Python error: Segmentation fault\n  File x.py, line 3",
    ),
    _row("nll-bad", "torch.nn.functional.nll_loss", Verdict.EXPECTED_ERROR),
    _row("ce-basic", "tensorflow.keras.losses.categorical_crossentropy", Verdict.SKIPPED),
    _row(
        "ce-html",
        "torch.nn.functional.cross_entropy",
        Verdict.ERROR,
        case_id=f"ce-html{XSS}",
        reason=f"ValueError: bad {XSS} value & more",
        call=f"torch.nn.functional.cross_entropy({XSS})",
        repro=f"print('{XSS}')",
    ),
]


class Page(HTMLParser):
    """Collects the ids, the finding cards, the rows data and external references."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.findings: list[dict[str, str | None]] = []
        self.heat_cells: list[str] = []
        self.refs: list[tuple[str, str, str]] = []  # tag, attribute, value
        self.scripts = 0
        self.text: list[str] = []
        self.data: dict[str, Any] | None = None
        self._in_data = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        classes = (a.get("class") or "").split()
        if tag == "details" and "finding" in classes:
            self.findings.append(a)
        if tag == "td" and "data-verdict" in a:
            self.heat_cells.append(a["data-verdict"] or "")
        if tag == "script":
            self.scripts += 1
            self._in_data = a.get("id") == "rows-data"
        for key in ("src", "href", "action"):
            if a.get(key):
                self.refs.append((tag, key, str(a[key])))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_data = False

    def handle_data(self, data: str) -> None:
        if self._in_data:
            self.data = json.loads(data)
        else:
            self.text.append(data)

    def column(self, name: str) -> list[Any]:
        """One column of the rows explorer's data, decoded, in row order."""
        assert self.data is not None
        if name in self.data["num"]:
            return list(self.data["num"][name])
        values = self.data["dict"][name]
        return [values[code] for code in self.data["codes"][name]]

    def detail(self, row: int) -> dict[str, Any]:
        assert self.data is not None
        out = dict(self.data["detail"][str(row)])
        for key in ("repro", "reason", "stderr_tail"):
            if key in out:
                out[key] = self.data["texts"][out[key]]
        return out


def _write_run(run_dir: Path, rows: list[dict[str, Any]], summary: bool = True) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    with ResultWriter(run_dir) as writer:
        writer.write(rows)
    if summary:
        frame = pd.DataFrame(rows)
        write_summary(run_dir, summarize(frame.reindex(columns=list(COLUMNS)), ENVIRONMENT))
    return run_dir


def _parse(path: Path) -> tuple[str, Page]:
    text = path.read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    page.close()
    return text, page


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[str, Page]:
    path = render(_write_run(tmp_path / "run", ROWS))
    assert path == tmp_path / "run" / "report.html"
    return _parse(path)


def test_sections_and_counts(rendered: tuple[str, Page]) -> None:
    _, page = rendered
    assert set(SECTIONS) <= page.ids
    body = " ".join(" ".join(page.text).split())
    assert "8 rows, 4 failing." in body
    assert "mismatch: 2" in body and "crashed: 1" in body and "timeout: 0" in body
    # The rows explorer's data holds every row, in file order.
    assert [v for v in page.column("verdict")] == [r["verdict"] for r in ROWS]
    assert page.column("framework") == [r["framework"] for r in ROWS]
    assert page.column("case_id") == [r["case_id"] for r in ROWS]


def test_findings_worst_first(rendered: tuple[str, Page]) -> None:
    _, page = rendered
    # One finding per failing row here (each its own framework/loss/verdict/explanation);
    # crashed, then error, then the two mismatches: the NaN pattern (max ULP NaN ranks as
    # infinitely bad) before 250 ULP.
    verdicts = [f["data-verdict"] for f in page.findings]
    assert verdicts == ["crashed", "error", "mismatch", "mismatch"]
    assert [f["data-framework"] for f in page.findings][2:] == ["torch", "optax"]
    # Every differing row belongs to a finding, and names it.
    assert page.data is not None
    ids = page.data["finding_ids"]
    assert ids == [f["id"] for f in page.findings]
    differing = [i for i, r in enumerate(ROWS) if Verdict(r["verdict"]) in FAILING]
    assert sorted(int(k) for k in page.data["findings"]) == differing


def test_finding_and_row_details(rendered: tuple[str, Page]) -> None:
    _, page = rendered
    joined = "".join(page.text)
    assert "torch.nn.functional.nll_loss(input, target)" in joined  # the finding's call
    assert "import torch\ntorch.nn.functional.nll_loss(x, y)" in joined  # repro, verbatim
    assert "raises where a value is expected" in joined  # the error finding's statement
    crashed = page.detail(4)
    assert crashed["stderr_tail"].startswith("Fatal Python error: Segmentation fault")
    assert crashed["file"] == "cases/ce.yaml" and crashed["line"] == 12
    nan_row = page.detail(1)
    assert nan_row["reason"] == "NaN pattern differs: expected finite at [1], got NaN"
    assert nan_row["worst_expected"] == 0.6931471805599453 and nan_row["worst_actual"] == "NaN"
    assert nan_row["actual"] == [0.1, "NaN"]  # a small array, the NaN value as stored


def test_escaping(rendered: tuple[str, Page]) -> None:
    text, page = rendered
    # Only the report's own two script elements (the rows data, the explorer) exist; the
    # case's markup is escaped everywhere, and "<" never appears raw in the JSON data.
    assert text.count("<script") == 2 and page.scripts == 2
    assert XSS not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    blob = text.split('id="rows-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in blob
    assert XSS in page.column("case_id")[7]  # and it reads back as the original text
    # the error finding's key: the reason with its numbers masked, escaped
    assert "bad &lt;script&gt;alert(N)&lt;/script&gt; value &amp; more" in text


def test_self_contained(rendered: tuple[str, Page]) -> None:
    text, page = rendered
    for needle in ('src="http', "src='http", "@import", "url("):
        assert needle not in text
    # Nothing is loaded from elsewhere: no src at all, and links are in-page or upstream
    # references a reader may follow.
    assert all(attr == "href" and tag == "a" for tag, attr, _ in page.refs), page.refs
    assert "<style>" in text


def test_summary_and_coverage(rendered: tuple[str, Page]) -> None:
    text, page = rendered
    joined = " ".join(page.text)
    assert "torch.nn.functional.cross_entropy" in joined
    # ce with torch cross_entropy holds pass, mismatch and error: the worst shown is error.
    assert "error" in page.heat_cells and "unsupported" in page.heat_cells
    assert 'class="v-error" title="1 error, 1 mismatch, 1 pass"' in text
    # Pass % for torch cross_entropy: 1 good of 3 decided rows.
    assert "33.3" in joined


def test_environment(rendered: tuple[str, Page]) -> None:
    _, page = rendered
    joined = " ".join(page.text)
    for fact in ("3.11.9", "Linux-x86_64", "2.13.0", "paddle is not installed"):
        assert fact in joined
    assert "conformance run --framework torch" in joined


def test_census_per_framework(rendered: tuple[str, Page]) -> None:
    text, _ = rendered
    census = text.split('<section id="census">', 1)[1].split("</section>", 1)[0]
    assert '<td class="num">22</td><td class="num">27</td>' in census
    # the uncovered loss is named (escaped), and highlighted
    assert "1: <code>torch.nn.functional.new_loss&lt;i&gt;</code>" in census
    assert 'class="num v-mismatch"' in census
    assert "census failed: RuntimeError: walk failed" in census
    assert "paddle" not in census  # skipped: no worker, no census
    assert "IoU" in census
    # the census is not repeated among the environment's "other" facts
    environment = text.split('<section id="environment">', 1)[1]
    assert "not_covered" not in environment and "covered=" not in environment


def test_nan_cell_versus_nan_value(tmp_path: Path) -> None:
    rows = [
        _row("a-x", "torch.a", Verdict.MISMATCH, max_ulp=math.nan, max_rel_err=0.5),
        _row("a-y", "torch.a", Verdict.PASS),  # max_ulp missing
    ]
    _, page = _parse(render(_write_run(tmp_path, rows)))
    assert page.column("max_ulp") == ["NaN", None]
    assert page.column("max_rel_err") == [0.5, None]


def test_empty_run(tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_text("")
    text, page = _parse(render(tmp_path))
    assert "empty" in page.ids
    assert "0 rows, 0 failing." in " ".join(" ".join(page.text).split())
    assert page.findings == [] and page.data is None
    assert "No environment recorded." in text  # and no summary.json was needed


def test_missing_summary(tmp_path: Path) -> None:
    _write_run(tmp_path, ROWS, summary=False)
    text, page = _parse(render(tmp_path))
    assert "No summary.json" in text
    assert len(page.findings) == 4
    assert not (tmp_path / "summary.json").exists()


def test_summary_disagreeing_with_results(tmp_path: Path) -> None:
    _write_run(tmp_path, ROWS)
    with ResultWriter(tmp_path) as writer:  # rows appended after the summary was written
        writer.write([_row("late", "torch.b", Verdict.TIMEOUT)])
    text, page = _parse(render(tmp_path))
    assert "records 8 rows but results.jsonl has 9" in text
    assert [f["data-verdict"] for f in page.findings][:2] == ["crashed", "timeout"]


def test_csv_round_trip(tmp_path: Path) -> None:
    _write_run(tmp_path, ROWS)
    path = write_csv(tmp_path)
    assert path == tmp_path / "results.csv"
    back = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)
    assert list(back.columns) == list(COLUMNS)
    assert len(back) == len(ROWS)
    saved = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    for column in JSON_COLUMNS:
        for text, original in zip(back[column], saved, strict=True):
            if original[column] is None:
                assert pd.isna(text)
            else:
                assert json.loads(text) == original[column]
    assert back["case_id"].tolist() == [r["case_id"] for r in ROWS]
    assert back["max_ulp"].tolist()[1] == "NaN"  # a NaN value stays the writer's string
    assert pd.isna(back["max_ulp"].tolist()[3])  # a missing cell stays empty
    assert back["stderr_tail"].tolist()[4] == ROWS[4]["stderr_tail"]  # newlines survive


def test_csv_of_empty_run(tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_text("")
    back = pd.read_csv(write_csv(tmp_path))
    assert list(back.columns) == list(COLUMNS) and back.empty

"""``conformance diff``: matching and classifying the rows of two saved run directories."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conformance.report.diff import DiffInputError, RunDiff, diff_runs, html, markdown, run_diff
from conformance.results import (
    COLUMNS,
    RESULTS_FILE,
    SUMMARY_FILE,
    ResultWriter,
    Verdict,
    summarize,
    write_summary,
)

XSS = "<script>alert(1)</script>"
CE = "torch.nn.functional.cross_entropy"
OPTAX = "optax.softmax_cross_entropy"
ENVIRONMENT: dict[str, Any] = {
    "python": "3.11.9",
    "numpy": "2.4.6",
    "platform": "Linux-x86_64",
    "started": "2025-01-01T12:00:00",
    "torch": {"torch": "2.13.0", "device": "cpu", "census": {"covered": 22}, "start_seconds": 5.6},
    "jax": {"jax": "0.10.2", "device": "cpu"},
}


def _row(case: str, api: str, verdict: Verdict | str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "case_id": f"{case}[dtype=float32]",
        "base_id": case,
        "file": "cases/ce.yaml",
        "line": 12,
        "loss": case.split("-")[0],
        "framework": api.split(".")[0],
        "api": api,
        "device": "cpu",
        "device_name": "cpu",
        "dtype": "float32",
        "mode": "eager",
        "output": "loss",
        "verdict": verdict.value if isinstance(verdict, Verdict) else verdict,
        "reason": "within tolerance",
        "call": f"{api}(input, target)",
        "repro": f"import torch\n{api}(x, y)",
    }
    row.update(extra)
    return row


BASE: list[dict[str, Any]] = [
    _row("ce-basic", CE, Verdict.PASS, max_ulp=0.5, max_rel_err=3e-8),
    _row("ce-basic", CE, Verdict.PASS, output="grad", max_ulp=3.0, max_rel_err=2e-7),
    _row("ce-small", OPTAX, Verdict.MISMATCH, reason="off by 250 ULP", max_ulp=250.0),
    _row("ce-basic", "paddle.nn.functional.cross_entropy", Verdict.UNSUPPORTED),
    _row("nll-bad", "torch.nn.functional.nll_loss", Verdict.EXPECTED_ERROR, line=40),
]


def _write_run(
    run_dir: Path, rows: list[dict[str, Any]], environment: dict[str, Any] | None = None
) -> Path:
    run_dir.mkdir(parents=True)
    with ResultWriter(run_dir) as writer:
        writer.write(rows)
    frame = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    write_summary(run_dir, summarize(frame, ENVIRONMENT if environment is None else environment))
    return run_dir


def _changed_copy(rows: list[dict[str, Any]], index: int, **changes: Any) -> list[dict[str, Any]]:
    out = copy.deepcopy(rows)
    out[index].update(changes)
    return out


def _pair(
    tmp_path: Path,
    new_rows: list[dict[str, Any]],
    old_rows: list[dict[str, Any]] = BASE,
    threshold: float = 2.0,
) -> RunDiff:
    old = _write_run(tmp_path / "old", old_rows)
    new = _write_run(tmp_path / "new", new_rows)
    return diff_runs(old, new, threshold=threshold)


def test_a_run_against_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _write_run(tmp_path / "run", BASE)
    assert run_diff(run, run) == 0
    d = diff_runs(run, run)
    assert d.unchanged == len(BASE)
    assert not (d.regressions or d.fixes or d.changed or d.only_old or d.only_new or d.not_run)
    assert not d.environment and not d.notes
    assert "**0** regressions" in capsys.readouterr().out


def test_a_doctored_row_is_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new_rows = _changed_copy(BASE, 0, verdict="mismatch", reason="NaN where 0.69 expected")
    old = _write_run(tmp_path / "old", BASE)
    new = _write_run(tmp_path / "new", new_rows)
    assert run_diff(old, new) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "pass → mismatch" in x)
    assert "ce-basic[dtype=float32]" in line and CE in line and "NaN where 0.69 expected" in line
    assert "cases/ce.yaml:12" in line
    (r,) = diff_runs(old, new).regressions
    assert (r.case_id, r.api, r.output, r.old_verdict, r.new_verdict) == (
        "ce-basic[dtype=float32]", CE, "loss", "pass", "mismatch"
    )  # fmt: skip
    assert r.old_reason == "within tolerance" and r.call == f"{CE}(input, target)"
    assert r.repro.startswith("import torch")


def test_a_fix_is_not_a_regression(tmp_path: Path) -> None:
    old = _write_run(tmp_path / "old", BASE)
    new = _write_run(tmp_path / "new", _changed_copy(BASE, 2, verdict="pass", reason="ok"))
    assert run_diff(old, new) == 0
    d = diff_runs(old, new)
    assert [(r.case_id, r.old_verdict, r.new_verdict) for r in d.fixes] == [
        ("ce-small[dtype=float32]", "mismatch", "pass")
    ]
    assert not d.regressions and d.unchanged == len(BASE) - 1
    assert "### Fixes (1)" in markdown(d)
    assert "off by 250 ULP" in markdown(d)  # a fix shows the reason it no longer has


@pytest.mark.parametrize(
    ("old", "new", "listed"),
    [
        ("pass", "mismatch", "regressions"),
        ("pass", "semantic-difference", "regressions"),
        ("known", "mismatch", "regressions"),
        ("crashed", "mismatch", "regressions"),  # any change into a failing verdict
        ("pass", "verdict-from-the-future", "regressions"),  # unknown ranks worst
        ("mismatch", "known", "fixes"),
        ("error", "pass", "fixes"),
        ("verdict-from-the-future", "pass", "fixes"),
        ("skipped", "pass", "fixes"),
        ("skipped", "known", "fixes"),  # a framework installed now: news, not breakage
        ("skipped", "mismatch", "regressions"),
        ("pass", "skipped", "not_run"),
        ("crashed", "skipped", "not_run"),
    ],
)
def test_verdict_changes(tmp_path: Path, old: str, new: str, listed: str) -> None:
    old_dir = _write_run(tmp_path / "old", _changed_copy(BASE, 0, verdict=old))
    new_dir = _write_run(tmp_path / "new", _changed_copy(BASE, 0, verdict=new))
    d = diff_runs(old_dir, new_dir)
    lists = ("regressions", "fixes", "changed", "not_run", "only_old", "only_new")
    assert {name: len(getattr(d, name)) for name in lists} == {
        name: int(name == listed) for name in lists
    }
    assert d.unchanged == len(BASE) - 1
    assert run_diff(old_dir, new_dir) == int(listed == "regressions")


@pytest.mark.parametrize(
    ("old_ulp", "new_ulp", "changed"),
    [
        (10.0, 15.0, False),
        (10.0, 25.0, True),
        (25.0, 10.0, True),  # either direction
        (0.0, 0.0, False),
        (0.0, 0.5, False),  # within 1 ULP
        (0.2, 0.9, False),
        (0.0, 3.0, True),
        (0.5, 3.0, True),
        ("NaN", "NaN", False),
        ("NaN", 5.0, True),
        (5.0, None, True),
        (None, None, False),
        ("Infinity", "Infinity", False),
        ("Infinity", 1e30, True),
        ("Infinity", "-Infinity", True),
    ],
)
def test_changed_ulp(tmp_path: Path, old_ulp: Any, new_ulp: Any, changed: bool) -> None:
    old = _write_run(tmp_path / "old", _changed_copy(BASE, 2, max_ulp=old_ulp))
    new = _write_run(tmp_path / "new", _changed_copy(BASE, 2, max_ulp=new_ulp))
    d = diff_runs(old, new)
    assert len(d.changed) == int(changed)
    assert d.unchanged == len(BASE) - int(changed)
    assert not d.regressions and run_diff(old, new) == 0


@pytest.mark.parametrize(
    ("old_rel", "new_rel", "ulp", "changed"),
    [
        (1e-7, 1.5e-7, 3.0, False),
        (1e-7, 5e-7, 3.0, True),
        (0.0, 6e-8, 0.5, False),  # 0 against nonzero, but within 1 ULP
        (0.0, 4e-6, 40.0, True),
        (0.0, 4e-6, None, True),  # no ULP figure to say otherwise
    ],
)
def test_changed_relative_error(
    tmp_path: Path, old_rel: float, new_rel: float, ulp: float | None, changed: bool
) -> None:
    old_rows = _changed_copy(BASE, 0, max_rel_err=old_rel, max_ulp=ulp)
    new_rows = _changed_copy(BASE, 0, max_rel_err=new_rel, max_ulp=ulp)
    assert len(_pair(tmp_path, new_rows, old_rows=old_rows).changed) == int(changed)


def test_threshold(tmp_path: Path) -> None:
    new_rows = _changed_copy(BASE, 2, max_ulp=800.0)  # 250 → 800: a factor 3.2
    assert len(_pair(tmp_path / "a", new_rows).changed) == 1
    d = _pair(tmp_path / "b", new_rows, threshold=4.0)
    assert not d.changed and d.unchanged == len(BASE)
    (r,) = _pair(tmp_path / "c", new_rows).changed
    assert (r.old_ulp, r.new_ulp) == (250.0, 800.0)
    assert "| 250 → 800 |" in markdown(_pair(tmp_path / "d", new_rows))
    with pytest.raises(DiffInputError, match="threshold"):
        _pair(tmp_path / "e", BASE, threshold=0.5)


def test_rows_only_in_one_run(tmp_path: Path) -> None:
    new_rows = [
        *BASE[1:],
        _row("focal-new", "torch.nn.functional.sigmoid_focal_loss", Verdict.MISMATCH),
        _row("focal-new", "torch.nn.functional.sigmoid_focal_loss", Verdict.PASS, dtype="f64"),
    ]
    d = _pair(tmp_path, new_rows)
    assert [(r.case_id, r.output, r.old_verdict, r.new_verdict) for r in d.only_old] == [
        ("ce-basic[dtype=float32]", "loss", "pass", None)
    ]
    assert sorted((r.dtype, r.new_verdict, r.old_verdict) for r in d.only_new) == [
        ("f64", "pass", None),
        ("float32", "mismatch", None),
    ]
    assert d.unchanged == len(BASE) - 1 and not d.regressions  # a new failing row is not one
    text = markdown(d)
    assert "**1** only in OLD" in text and "**2** only in NEW" in text
    assert "### Only in NEW (2)" in text


def test_environment_changes(tmp_path: Path) -> None:
    environment = copy.deepcopy(ENVIRONMENT)
    environment["torch"]["torch"] = "2.14.0"
    environment["torch"]["census"] = {"covered": 23}  # not a string: not compared
    environment["torch"]["start_seconds"] = 9.1
    environment["python"] = "3.12.1"
    environment["started"] = "2025-02-02T00:00:00"  # not a version
    environment["tensorflow"] = {"tensorflow": "2.21.0", "keras": "3.15.1"}
    del environment["jax"]
    old = _write_run(tmp_path / "old", BASE)
    new = _write_run(tmp_path / "new", BASE, environment)
    d = diff_runs(old, new)
    assert [(e.name, e.old, e.new) for e in d.environment] == [
        ("python", "3.11.9", "3.12.1"),
        ("jax", "0.10.2", None),
        ("jax.device", "cpu", None),
        ("tensorflow", None, "2.21.0"),
        ("tensorflow.keras", None, "3.15.1"),
        ("torch", "2.13.0", "2.14.0"),
    ]
    text = markdown(d)
    assert "- torch: 2.13.0 → 2.14.0" in text and "- jax: 0.10.2 → (none)" in text
    assert "2.14.0" in html(d) and run_diff(old, new) == 0


@pytest.mark.parametrize("damage", ["missing", "not JSON", "no environment"])
def test_summary_problems_are_notes(tmp_path: Path, damage: str) -> None:
    old = _write_run(tmp_path / "old", BASE)
    new = _write_run(tmp_path / "new", BASE)
    if damage == "missing":
        (new / SUMMARY_FILE).unlink()
    elif damage == "not JSON":
        (new / SUMMARY_FILE).write_text("{oops")
    else:
        (new / SUMMARY_FILE).write_text('{"rows": 5}')
    d = diff_runs(old, new)
    assert not d.environment and d.unchanged == len(BASE)
    assert any("summary.json of NEW" in n and "unknown" in n for n in d.notes)


def test_cpu_run_against_gpu_run(tmp_path: Path) -> None:
    gpu = [{**r, "device": "gpu", "device_name": "cuda:0"} for r in BASE]
    gpu[0].update(verdict="mismatch", reason="off on the GPU")
    d = _pair(tmp_path, gpu)
    assert d.across_devices == "cpu → gpu"
    assert d.unchanged == len(BASE) - 1 and not d.only_old and not d.only_new
    (r,) = d.regressions
    assert (r.case_id, r.device, r.new_reason) == (
        "ce-basic[dtype=float32]",
        "cpu → gpu",
        "off on the GPU",
    )
    assert "matched across devices cpu → gpu" in markdown(d)
    assert "matched across devices cpu → gpu" in html(d)


def test_runs_sharing_a_device_match_on_it(tmp_path: Path) -> None:
    both = [*BASE, *({**r, "device": "gpu"} for r in BASE)]
    d = _pair(tmp_path, both)
    assert not d.across_devices and d.unchanged == len(BASE)
    assert len(d.only_new) == len(BASE) and {r.device for r in d.only_new} == {"gpu"}


def test_html_escapes_every_row_text(tmp_path: Path) -> None:
    link = "https://example.org/issues/1?a=1&b=2"
    new_rows = _changed_copy(
        BASE,
        0,
        verdict="error",
        case_id=f"ce{XSS}",
        reason=f"ValueError: {XSS} see {link}",
        call=f"{CE}({XSS})",
        repro=f"print('{XSS}')",
    )
    new_rows.append(_row("bce", "torch.nn.BCELoss", Verdict.PASS, reason=XSS))
    environment = copy.deepcopy(ENVIRONMENT)
    environment["torch"]["torch"] = XSS
    old = _write_run(tmp_path / "old", _changed_copy(BASE, 0, case_id=f"ce{XSS}"))
    new = _write_run(tmp_path / "new", new_rows, environment)
    page = html(diff_runs(old, new))
    assert XSS not in page and "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<details") == 1 and "print(&#39;&lt;script&gt;" in page
    # Offline: no reference to anything outside the page except the text of a row.
    escaped = link.replace("&", "&amp;")
    assert page.count("http") == page.count(escaped) == 1
    assert not re.search(r"\b(src|href)\s*=|url\(|@import", page)


def test_markdown_escapes_and_limits(tmp_path: Path) -> None:
    failing = [_changed_copy(BASE, i, verdict="mismatch", reason="a|b\nc`d")[i] for i in (0, 1, 4)]
    new_rows = [*failing, *BASE[2:4]]
    d = _pair(tmp_path, new_rows)
    text = markdown(d, limit=2)
    table = [x for x in text.splitlines() if x.startswith("| ") and "mismatch" in x]
    assert len(table) == 2 and all("a\\|b c'd" in x for x in table)
    assert all(len(re.findall(r"(?<!\\)\|", x)) == 12 for x in table)  # 11 columns
    assert "| … and 1 more |" in text
    assert html(d).count("<details") == 3  # the page lists every row


def test_run_diff_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new_rows = [_changed_copy(BASE, 0, verdict="mismatch", case_id=f"c{i}")[0] for i in range(60)]
    old_rows = [{**r, "verdict": "pass"} for r in new_rows]
    old = _write_run(tmp_path / "old", old_rows)
    new = _write_run(tmp_path / "new", new_rows)
    md, page = tmp_path / "diff.md", tmp_path / "diff.html"
    assert run_diff(old, new, md=md, html_out=page) == 1
    assert md.read_text(encoding="utf-8") == capsys.readouterr().out
    assert "… and 10 more" in md.read_text(encoding="utf-8")
    assert page.read_text(encoding="utf-8").count("<details") == 60
    with pytest.raises(DiffInputError, match="cannot be written"):
        run_diff(old, new, md=tmp_path / "no-such-dir" / "diff.md")


def test_bad_input_raises_diff_input_error(tmp_path: Path) -> None:
    good = _write_run(tmp_path / "good", BASE)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DiffInputError, match=rf"OLD {re.escape(str(empty))}: no results\.jsonl"):
        diff_runs(empty, good)
    with pytest.raises(DiffInputError, match=r"NEW .*: no such directory"):
        run_diff(good, tmp_path / "nowhere")
    (empty / RESULTS_FILE).mkdir()
    with pytest.raises(DiffInputError, match=r"results\.jsonl cannot be read: is a directory"):
        diff_runs(good, empty)


def test_a_cut_off_last_line_is_a_note(tmp_path: Path) -> None:
    old = _write_run(tmp_path / "old", BASE)
    new = _write_run(tmp_path / "new", BASE[:-1])
    with (new / RESULTS_FILE).open("ab") as f:
        f.write(b'{"case_id": "nll-bad[dtype=float32]", "verdict": "pa')
    d = diff_runs(old, new)
    assert d.unchanged == len(BASE) - 1 and len(d.only_old) == 1
    (note,) = d.notes
    assert note.startswith("NEW: 1 line of results.jsonl could not be read: line 5: cut off")
    assert note in markdown(d)


def test_a_repeated_key_keeps_the_last_row(tmp_path: Path) -> None:
    repeated = [_changed_copy(BASE, 0, verdict="crashed")[0], *BASE]
    d = _pair(tmp_path, repeated)
    assert not d.regressions and d.unchanged == len(BASE)
    assert d.notes == ["NEW: 1 row(s) repeat the key of a later row; the last of each was kept."]

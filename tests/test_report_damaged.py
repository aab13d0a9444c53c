"""`conformance report` on damaged run directories: skip and name what cannot be read, exit 2
only when nothing usable is left or an output cannot be written, never a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_report import ROWS, _parse, _row, _write_run

from conformance import cli, results
from conformance.results import Verdict

ROOT_IGNORES_PERMISSIONS = hasattr(os, "geteuid") and os.geteuid() == 0
needs_permissions = pytest.mark.skipif(
    ROOT_IGNORES_PERMISSIONS, reason="running as root, which ignores file permissions"
)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """An undamaged run: 8 rows, a summary.json, no report yet."""
    return _write_run(tmp_path / "run", ROWS)


def _report(capsys: pytest.CaptureFixture[str], run_dir: Path) -> tuple[int, str, str]:
    code = cli.main(["report", str(run_dir)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _lines(run_dir: Path) -> list[bytes]:
    return (run_dir / results.RESULTS_FILE).read_bytes().splitlines(keepends=True)


def _put_lines(run_dir: Path, lines: list[bytes]) -> None:
    (run_dir / results.RESULTS_FILE).write_bytes(b"".join(lines))


def _insert(run_dir: Path, index: int, line: bytes) -> None:
    lines = _lines(run_dir)
    lines.insert(index, line + b"\n")
    _put_lines(run_dir, lines)


def _html(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


def _text(run_dir: Path) -> str:
    """The report's text, tags dropped and white space collapsed."""
    _, page = _parse(run_dir / "report.html")
    return " ".join("".join(page.text).split())


def _csv_rows(run_dir: Path) -> int:
    return len(pd.read_csv(run_dir / "results.csv", keep_default_na=False, na_values=[""]))


def _with_cell(column: str, value: Any) -> bytes:
    """A row like the writer's, one cell replaced by ``value`` (as JSON text)."""
    row = {c: results.to_json_value(ROWS[0].get(c)) for c in results.COLUMNS}
    row[column] = value
    return json.dumps(row).encode()


# --- results.jsonl: lines that are not usable rows ------------------------------------------


def test_cut_off_last_line_is_named_and_the_rest_reported(
    capsys: pytest.CaptureFixture[str], run: Path
) -> None:
    # What a full disk leaves: the last row cut in the middle, no newline.
    data = (run / results.RESULTS_FILE).read_bytes()
    (run / results.RESULTS_FILE).write_bytes(data[:-40])
    code, out, err = _report(capsys, run)
    assert code == 0
    notice = "1 line of results.jsonl could not be read: line 8: cut off"
    assert notice in err and notice in _html(run)
    assert "7 rows, 3 failing." in _text(run)
    assert "report.html: " in out and _csv_rows(run) == 7


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"hello world", "line 3: not JSON"),
        (b'{"verdict": "pass", ', "line 3: not JSON"),  # a cut line that is not the last
        (b"\xff\xfe{}", "line 3: not UTF-8 (byte 1)"),
        (b'{"verdict": "pass", "reason": "\xe9t\xe9"}', "line 3: not UTF-8"),
        (b"[1,2,3]", "line 3: not a row: an array, not an object"),
        (b"42", "line 3: not a row: a number, not an object"),
        (b"null", "line 3: not a row: null, not an object"),
        (b'"pass"', "line 3: not a row: a string, not an object"),
        (b"{}", "line 3: not a row: no verdict"),
        (b"[" * 100_000, "line 3: not JSON (nested too deeply to parse)"),
        (b'{"verdict": "pass", "params": ' + b"[" * 300 + b"]" * 300 + b"}", "nested more"),
    ],
)
def test_a_line_that_is_not_a_row_is_skipped_and_counted(
    capsys: pytest.CaptureFixture[str], run: Path, line: bytes, problem: str
) -> None:
    _insert(run, 2, line)
    code, _, err = _report(capsys, run)
    assert code == 0
    assert "1 line of results.jsonl could not be read: " in err
    assert problem in err
    text = _text(run)
    assert "8 rows, 4 failing." in text
    assert "could not be read: line 3: " in text
    # The summary still agrees with the rows once the skipped line is accounted for.
    assert "may not have finished" not in text
    assert _csv_rows(run) == 8


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("verdict", 3, "verdict is a number, not a string"),
        ("verdict", None, "not a row: no verdict"),
        ("line", "12", "line is a string, not a non-negative integer"),
        ("line", True, "line is a boolean, not a non-negative integer"),
        ("line", -1, "line is a number, not a non-negative integer"),
        ("params", "reduction=mean", "params is a string, not an object"),
        ("input_shape", {"n": 4}, "input_shape is an object, not an array"),
        ("max_ulp", [1], 'max_ulp is an array, not a number or "NaN"/"Infinity"/"-Infinity"'),
        ("max_ulp", "huge", "max_ulp is a string, not a number"),
        ("seconds", 10**400, "seconds is a number too large for a float"),
        ("reason", {"text": "x"}, "reason is an object, not a string"),
    ],
)
def test_a_row_with_a_wrongly_typed_cell_is_skipped_whole(
    capsys: pytest.CaptureFixture[str], run: Path, column: str, value: Any, problem: str
) -> None:
    _insert(run, 8, _with_cell(column, value))
    code, _, err = _report(capsys, run)
    assert code == 0
    assert f"could not be read: line 9: {problem}" in err
    assert "8 rows, 4 failing." in _text(run)


def test_cells_that_are_odd_but_readable_keep_their_row(
    capsys: pytest.CaptureFixture[str], run: Path
) -> None:
    odd = [
        _with_cell("verdict", "exploded"),  # unknown verdict: kept, ranked worst
        _with_cell("reason", "bad name \udcff"),  # written as an escape by json.dumps
        _with_cell("max_ulp", "Infinity"),
        _with_cell("extra_column", [1, 2]),  # a column this version does not know
        b'{"verdict": "pass", "max_ulp": NaN}',  # not JSON, but read as the writer's "NaN"
    ]
    for line in odd:
        _insert(run, 8, line)
    code, _, err = _report(capsys, run)
    assert code == 0 and "could not be read" not in err
    html = _html(run)
    assert "13 rows, 4 failing." in _text(run)
    # the unknown verdict can be filtered on, and is a finding of its own (ranked worst)
    assert '<option value="exploded">exploded</option>' in html
    assert '<details class="finding v-unknown"' in html
    blob = html.split('id="rows-data">', 1)[1].split("</script>", 1)[0]
    reasons = json.loads(blob)["dict"]["reason"]
    assert "bad name \\udcff" in reasons  # the lone surrogate shown as an escape, no crash
    assert _csv_rows(run) == 13


def test_many_bad_lines_are_counted_and_the_first_ten_named(
    capsys: pytest.CaptureFixture[str], run: Path
) -> None:
    for _ in range(25):
        _insert(run, 1, b"garbage")
    code, _, err = _report(capsys, run)
    assert code == 0
    assert "25 lines of results.jsonl could not be read: line 2: not JSON; " in err
    assert "line 11: not JSON; and 15 more" in err


def test_nothing_usable_left_exits_2_but_still_writes_the_report(
    capsys: pytest.CaptureFixture[str], run: Path
) -> None:
    _put_lines(run, [b"garbage\n", b"[1]\n", b"\n", b'{"verdict": 1}'])
    code, _, err = _report(capsys, run)
    assert code == 2
    assert "3 lines of results.jsonl could not be read: line 1: not JSON; line 2:" in err
    assert f"conformance: error: {run / 'results.jsonl'}: no usable rows" in err
    assert "none of the lines of" in _html(run)


def test_an_empty_results_file_is_an_empty_run_not_an_error(
    capsys: pytest.CaptureFixture[str], run: Path
) -> None:
    _put_lines(run, [b"\n", b"  \n"])
    code, _, _ = _report(capsys, run)
    assert code == 0
    assert "is empty" in _html(run)


def test_load_rows_reports_what_it_skipped(run: Path) -> None:
    _insert(run, 0, b"[]")
    loaded = results.load_rows(run)
    assert list(loaded.frame.columns) == list(results.COLUMNS) and len(loaded.frame) == 8
    assert loaded.skipped == (results.Skipped(1, "not a row: an array, not an object"),)
    assert loaded.notice() == (
        "1 line of results.jsonl could not be read: line 1: not a row: an array, not an object"
    )
    assert results.load(run).equals(loaded.frame)  # the plain frame, for existing callers


# --- results.jsonl itself -------------------------------------------------------------------


def test_results_file_is_a_directory(capsys: pytest.CaptureFixture[str], run: Path) -> None:
    (run / "results.jsonl").unlink()
    (run / "results.jsonl").mkdir()
    code, _, err = _report(capsys, run)
    assert code == 2
    assert err == f"conformance: error: {run / 'results.jsonl'}: is a directory\n"


def test_results_file_is_a_fifo_and_is_not_read(
    capsys: pytest.CaptureFixture[str], run: Path
) -> None:
    (run / "results.jsonl").unlink()
    os.mkfifo(run / "results.jsonl")  # opening it would block for ever
    code, _, err = _report(capsys, run)
    assert code == 2
    assert err == f"conformance: error: {run / 'results.jsonl'}: not a regular file\n"


@needs_permissions
def test_unreadable_results_file(capsys: pytest.CaptureFixture[str], run: Path) -> None:
    (run / "results.jsonl").chmod(0)
    code, _, err = _report(capsys, run)
    assert code == 2
    assert err == f"conformance: error: {run / 'results.jsonl'}: permission denied\n"


# --- summary.json ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"garbage", "summary.json could not be read: not JSON; environment unknown."),
        (b'{"rows": 8, "environment": {"python": "3.11', "could not be read: not JSON"),
        (b"\xff\xfe\x00{", "summary.json could not be read: not UTF-8 (byte 1)"),
        (b"[1, 2]", "summary.json could not be read: an array, not an object"),
        (b"null", "summary.json could not be read: null, not an object"),
        (b'{"rows": 8, "environment": "x"}', "environment in summary.json is not an object"),
        (b'{"rows": 8}', "The environment in summary.json is missing"),
    ],
)
def test_damaged_summary_costs_only_the_environment(
    capsys: pytest.CaptureFixture[str], run: Path, content: bytes, problem: str
) -> None:
    (run / "summary.json").write_bytes(content)
    code, _, err = _report(capsys, run)
    assert code == 0
    assert problem in err and problem in _html(run)
    assert "8 rows, 4 failing." in _text(run)
    assert "No environment recorded." in _html(run)
    # Left as it is: the environment of a run cannot be rebuilt from its rows.
    assert (run / "summary.json").read_bytes() == content


def test_summary_is_a_directory(capsys: pytest.CaptureFixture[str], run: Path) -> None:
    (run / "summary.json").unlink()
    (run / "summary.json").mkdir()
    code, _, err = _report(capsys, run)
    assert code == 0
    assert "summary.json could not be read: is a directory; environment unknown." in err


def test_summary_with_wrongly_typed_facts_still_renders(
    capsys: pytest.CaptureFixture[str], run: Path
) -> None:
    env = {"python": ["3", {"x": None}], "argv": "not a list", "torch": {"torch": [1]}}
    (run / "summary.json").write_text(json.dumps({"rows": "eight", "environment": env}))
    code, _, _ = _report(capsys, run)
    assert code == 0
    assert "not a list" in _html(run)


# --- outputs that cannot be written ---------------------------------------------------------


def test_report_html_is_a_directory(capsys: pytest.CaptureFixture[str], run: Path) -> None:
    (run / "report.html").mkdir()
    code, out, err = _report(capsys, run)
    assert code == 2
    assert err == f"conformance: error: {run / 'report.html'}: is a directory\n"
    assert f"results.csv: {run / 'results.csv'}" in out and _csv_rows(run) == 8  # still is


def test_results_csv_is_a_directory(capsys: pytest.CaptureFixture[str], run: Path) -> None:
    (run / "results.csv").mkdir()
    code, out, err = _report(capsys, run)
    assert code == 2
    assert err == f"conformance: error: {run / 'results.csv'}: is a directory\n"
    assert f"report.html: {run / 'report.html'}" in out


@pytest.fixture
def read_only(run: Path) -> Iterator[Path]:
    run.chmod(stat.S_IRUSR | stat.S_IXUSR)
    yield run
    run.chmod(stat.S_IRWXU)  # so that pytest can remove it


@needs_permissions
def test_read_only_run_dir(capsys: pytest.CaptureFixture[str], read_only: Path) -> None:
    code, _, err = _report(capsys, read_only)
    assert code == 2
    assert err.splitlines() == [
        f"conformance: error: {read_only / name}: permission denied"
        for name in (
            "summary.json", "report.html", "results.csv", "results.parquet", "junit.xml",
            "summary.md",
        )
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("error", "message"),
    [
        # What a read-only run dir gives (a test root can run; see test_read_only_run_dir).
        (lambda path: PermissionError(13, "Permission denied", str(path)), "permission denied"),
        # A full disk fails the write itself, and that error names no file.
        (lambda path: OSError(28, "No space left on device"), "no space left on device"),
    ],
)
def test_unwritable_outputs_are_named(
    capsys: pytest.CaptureFixture[str],
    run: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: Callable[[Path], OSError],
    message: str,
) -> None:
    def refuse(self: Path, data: bytes) -> int:
        raise error(self)

    monkeypatch.setattr(Path, "write_bytes", refuse)
    code, _, err = _report(capsys, run)
    assert code == 2
    # every output written with Path.write_bytes (summary.json is written as text)
    assert err.splitlines() == [
        f"conformance: error: {run / name}: {message}"
        for name in ("report.html", "results.csv", "results.parquet", "junit.xml", "summary.md")
    ]


def test_report_regenerates_the_csv_from_usable_rows(
    capsys: pytest.CaptureFixture[str], run: Path
) -> None:
    _insert(run, 3, b"garbage")
    code, out, _ = _report(capsys, run)
    assert code == 0
    assert out.splitlines() == [
        f"{name}: {run / name}"
        for name in (
            "summary.json", "report.html", "results.csv", "results.parquet", "junit.xml",
            "summary.md",
        )
    ]  # fmt: skip
    assert _csv_rows(run) == 8


# --- randomly damaged run dirs --------------------------------------------------------------

_GOOD_LINES = [
    json.dumps({c: results.to_json_value(r.get(c)) for c in results.COLUMNS}).encode()
    for r in [*ROWS, _row("late", "torch.b", Verdict.TIMEOUT)]
]
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(results.COLUMNS) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=8,
)
_garbage = st.binary(max_size=30).map(lambda b: b.replace(b"\n", b""))


@st.composite
def _damage(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """results.jsonl and summary.json (None: absent) of a run, damaged at random."""
    lines = [line + b"\n" for line in _GOOD_LINES]
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.integers(0, len(lines)))
        kind = draw(st.sampled_from(["garbage", "json", "cell", "flip", "drop newline"]))
        if kind == "garbage":
            lines.insert(where, draw(_garbage) + b"\n")
        elif kind == "json":
            lines.insert(where, json.dumps(draw(_json_values)).encode() + b"\n")
        elif kind == "cell":
            column = draw(st.sampled_from(results.COLUMNS))
            lines.insert(where, _with_cell(column, draw(_json_values)) + b"\n")
        elif lines:
            index = min(where, len(lines) - 1)
            line = bytearray(lines[index])
            if kind == "flip" and line:
                at = draw(st.integers(0, len(line) - 1))
                line[at] ^= 1 << draw(st.integers(0, 7))
            elif kind == "drop newline":
                line = line.rstrip(b"\n")
            lines[index] = bytes(line)
    data = b"".join(lines)
    if draw(st.booleans()):  # truncate at a random byte, as a full disk does
        data = data[: draw(st.integers(0, len(data)))]
    summary = draw(
        st.sampled_from([b'{"rows": 9, "environment": {"python": "3.11"}}', None])
        | _garbage
        | _json_values.map(lambda v: json.dumps(v).encode())
    )
    return data, summary


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_damage())
def test_randomly_damaged_run_dirs_never_escape(damage: tuple[bytes, bytes | None]) -> None:
    data, summary = damage
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        (run_dir / "results.jsonl").write_bytes(data)
        if summary is not None:
            (run_dir / "summary.json").write_bytes(summary)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["report", str(run_dir)])  # nothing may escape
        assert "Traceback" not in out.getvalue() + err.getvalue()
        assert code in (0, 2), err.getvalue()
        loaded = results.load_rows(run_dir)
        # Every line that is not blank is either a row or named as skipped.
        assert len(loaded.frame) + len(loaded.skipped) == sum(
            1 for line in data.split(b"\n") if line.strip()
        )
        intact = set(data.split(b"\n")) & set(_GOOD_LINES)
        if intact or len(loaded.frame):
            assert code == 0, err.getvalue()
            assert (run_dir / "report.html").is_file()
            assert len(loaded.frame) >= len(intact)
        else:
            assert code == 2 or not loaded.skipped

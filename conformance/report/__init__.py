"""The outputs of a run directory besides its rows: the HTML report, the findings, and the
machine formats (CSV, Parquet, JUnit XML, Markdown summary).

All are built only from the files a run saved (``results.jsonl`` and, when present,
``summary.json``), never from live objects, so they can be regenerated at any time::

    from conformance.report import write_all
    write_all(Path("reports/20250101-120000"))  # report.html, results.csv, junit.xml, ...
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from conformance.report import formats
from conformance.report._html import REPORT_FILE, read_summary, render
from conformance.report.findings import Finding, findings
from conformance.results import (
    COLUMNS,
    JSON_COLUMNS,
    SUMMARY_FILE,
    Loaded,
    load_rows,
    summarize,
    write_summary,
)

CSV_FILE = "results.csv"

__all__ = [
    "CSV_FILE",
    "JSON_COLUMNS",
    "REPORT_FILE",
    "Finding",
    "findings",
    "render",
    "summary_with_findings",
    "write_all",
    "write_csv",
]


def _json_text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None  # a missing cell stays empty
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def write_csv(run_dir: Path, loaded: Loaded | None = None) -> Path:
    """Write ``results.csv`` (all ``COLUMNS``, in order) from ``results.jsonl``; return its path.

    JSON-valued columns (:data:`JSON_COLUMNS`) hold their JSON text, exactly as in
    ``results.jsonl``; NaN and ±Inf values keep the writer's ``"NaN"``/``"Infinity"`` strings
    and a missing cell is empty, so read it back with
    ``pd.read_csv(path, keep_default_na=False, na_values=[""])`` to tell the two apart.
    Only usable rows are written (``loaded``, or :func:`~conformance.results.load_rows` of
    ``run_dir``); raises ``OSError`` (its filename the CSV's path) when it cannot be written.
    """
    frame = (load_rows(run_dir) if loaded is None else loaded).frame.copy()
    for column in JSON_COLUMNS:
        frame[column] = frame[column].astype(object).map(_json_text)
    text = frame.to_csv(index=False, columns=list(COLUMNS), lineterminator="\n")
    path = Path(run_dir) / CSV_FILE
    path.write_bytes(text.encode("utf-8"))
    return path


def summary_with_findings(summary: Mapping[str, Any], found: list[Finding]) -> dict[str, Any]:
    """``summary`` with its ``findings`` list (each without its row numbers)."""
    out = dict(summary)
    out["findings"] = [
        {k: v for k, v in f.as_json().items() if k not in ("example",)} for f in found
    ]
    return out


def write_all(
    run_dir: Path, loaded: Loaded | None = None, notes: list[str] | None = None
) -> list[tuple[str, Path | OSError]]:
    """Regenerate every derived file of ``run_dir`` from its rows: ``summary.json`` (counts
    and findings; the environment, ledger facts and anything else it holds are kept; a
    damaged one, or one without a usable environment, is left alone), ``report.html``,
    ``results.csv``, ``results.parquet``, ``junit.xml`` and ``summary.md``. One that cannot
    be written does not stop the others: each is returned with its path or the ``OSError``
    that stopped it. ``notes`` gets the report's notes (lines skipped, summary damaged).
    """
    run_dir = Path(run_dir)
    loaded = load_rows(run_dir) if loaded is None else loaded
    frame = loaded.frame
    saved, environment, problems = read_summary(run_dir)
    found = findings(frame, environment)
    summary = summarize(frame, environment)
    # A summary that is there but damaged (or without a usable environment) stays as it is:
    # the environment of a run cannot be rebuilt from its rows.
    damaged = bool(problems) and (run_dir / SUMMARY_FILE).exists()
    written: list[tuple[str, Path | OSError]] = []

    def step(name: str, make: Callable[[], Path]) -> None:
        try:
            written.append((name, make()))
        except OSError as exc:
            written.append((name, exc))
        except ImportError as exc:  # pyarrow is a dependency, but a broken install costs
            # only its file, named like a write error
            written.append((name, OSError(f"needs {exc.name or exc}: pip install pyarrow")))

    if not damaged:
        merged = {**(saved or {}), **summary_with_findings(summary, found)}
        step(SUMMARY_FILE, lambda: write_summary(run_dir, merged))
    step(REPORT_FILE, lambda: render(run_dir, loaded, notes, found))
    step(CSV_FILE, lambda: write_csv(run_dir, loaded))
    step(formats.PARQUET_FILE, lambda: formats.write_parquet(frame, run_dir / formats.PARQUET_FILE))
    step(
        formats.JUNIT_FILE,
        lambda: _write_text(run_dir / formats.JUNIT_FILE, formats.junit(frame, run_dir.name)),
    )
    step(
        formats.MARKDOWN_FILE,
        lambda: _write_text(
            run_dir / formats.MARKDOWN_FILE, formats.markdown(summary, found, str(run_dir))
        ),
    )
    return written


def _write_text(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path

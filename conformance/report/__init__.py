"""The HTML report and CSV export of a run directory.

Both are built only from the files a run saved (``results.jsonl`` and, when present,
``summary.json``), never from live objects, so they can be regenerated at any time::

    from conformance.report import render, write_csv
    render(Path("reports/20250101-120000"))     # -> .../report.html (self-contained)
    write_csv(Path("reports/20250101-120000"))  # -> .../results.csv
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.report._html import REPORT_FILE, render
from conformance.results import COLUMNS, JSON_COLUMNS, Loaded, load_rows

CSV_FILE = "results.csv"

__all__ = ["CSV_FILE", "JSON_COLUMNS", "REPORT_FILE", "render", "write_csv"]


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

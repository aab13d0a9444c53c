"""The results table: one row per case × API × device × dtype × mode × output.

Rows are appended to ``results.jsonl`` as each (case, API) finishes, so a crash of the runner
itself loses nothing already measured; the report and every later tool read this file only.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


class Verdict(str, Enum):
    """What a row concluded, in severity order from best to worst (the report ranks by it)."""

    PASS = "pass"
    EXPECTED_ERROR = "expected-error"
    UNSUPPORTED = "unsupported"
    SKIPPED = "skipped"
    MISMATCH = "mismatch"
    NO_ERROR = "no-error"
    ERROR = "error"
    TIMEOUT = "timeout"
    CRASHED = "crashed"

    @property
    def failing(self) -> bool:
        return self in FAILING


FAILING = frozenset(
    {Verdict.MISMATCH, Verdict.ERROR, Verdict.NO_ERROR, Verdict.CRASHED, Verdict.TIMEOUT}
)

# Every row has exactly these columns, in this order (missing values are null). Structured
# cells (params, shapes, arrays) are JSON values in results.jsonl and JSON text in results.csv;
# NaN/±Inf inside them are the strings "NaN"/"Infinity"/"-Infinity".
COLUMNS: tuple[str, ...] = (
    "case_id",  # derived id, e.g. "ce-weighted[reduction=mean,dtype=float32]"
    "base_id",  # the id written in the YAML file
    "file",  # case file, relative to the working directory when possible
    "line",  # line of the case in that file
    "loss",  # canonical loss name
    "framework",  # torch | tensorflow | jax | paddle | ...
    "api",  # public entry point, e.g. "torch.nn.functional.cross_entropy"
    "device",  # cpu | gpu (requested)
    "device_name",  # what the framework reported, e.g. "cpu", "cuda:0 (NVIDIA H100)"
    "dtype",  # case dtype
    "mode",  # eager (later: jit, tf.function, static graph)
    "output",  # loss | grad
    "verdict",  # a Verdict value
    "reason",  # one line explaining the verdict
    "call",  # exact call text made
    "params",  # the canonical parameters, a mapping (weight as a list or null)
    "target_kind",  # index | probs
    "input_shape",  # list, canonical layout
    "shape_expected",  # list
    "shape_actual",  # list
    "dtype_actual",  # dtype of the framework's output
    "max_abs_err",  # over finite elements with matching class
    "max_rel_err",
    "max_ulp",  # in units of the case dtype's spacing at the expected value
    "tolerance",  # the relative tolerance k(n)*eps used (see compare.py)
    "worst_index",  # list, index of the element with the largest error relative to its bound
    "worst_expected",
    "worst_actual",
    "expected",  # the oracle's output (nested lists) when small (<= 64 elements), else null
    "actual",  # the framework's output when small, else null
    "seconds",  # wall time of the call in the worker
    "repro",  # Python snippet reproducing the call
    "stderr_tail",  # for crashed/timeout rows: the tail of the worker's stderr
)


# Columns whose cells are JSON values (lists, objects, small arrays) rather than scalars.
JSON_COLUMNS: tuple[str, ...] = (
    "params",
    "input_shape",
    "shape_expected",
    "shape_actual",
    "worst_index",
    "expected",
    "actual",
)


def to_json_value(value: Any) -> Any:
    """JSON-safe form of a cell: NaN and ±Inf become strings so they survive round trips."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, Mapping):
        return {k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy scalars and arrays
        return to_json_value(value.tolist())
    if isinstance(value, Enum):
        return value.value
    return value


class ResultWriter:
    """Appends rows to ``results.jsonl``; safe to call from several threads."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / RESULTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = self.path.open("a", encoding="utf-8")
        self.count = 0

    def write(self, rows: Iterable[Mapping[str, Any]]) -> None:
        lines = []
        for row in rows:
            unknown = set(row) - set(COLUMNS)
            if unknown:
                raise KeyError(f"unknown result columns: {sorted(unknown)}")
            full = {c: to_json_value(row.get(c)) for c in COLUMNS}
            lines.append(json.dumps(full, ensure_ascii=False, allow_nan=False) + "\n")
        with self._lock:
            self._file.writelines(lines)
            self._file.flush()
            self.count += len(lines)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(run_dir: Path) -> pd.DataFrame:
    """The results table of a run directory, columns in ``COLUMNS`` order."""
    path = Path(run_dir) / RESULTS_FILE
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    frame: pd.DataFrame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame


def summarize(frame: pd.DataFrame, environment: Mapping[str, Any]) -> dict[str, Any]:
    """Counts by verdict and by (framework, API), plus the environment of the run."""
    by_verdict = {v.value: int((frame["verdict"] == v.value).sum()) for v in Verdict}
    by_api: dict[str, dict[str, int]] = {}
    for api, group in frame.groupby("api", sort=True):
        counts = group["verdict"].value_counts()
        by_api[str(api)] = {str(k): int(v) for k, v in counts.items()}
    failing = sum(by_verdict[v.value] for v in FAILING)
    return {
        "rows": len(frame),
        "failing": failing,
        "by_verdict": by_verdict,
        "by_api": by_api,
        "environment": dict(environment),
    }


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> Path:
    path = Path(run_dir) / SUMMARY_FILE
    path.write_text(json.dumps(to_json_value(summary), indent=2, sort_keys=False) + "\n")
    return path

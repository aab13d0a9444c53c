"""The results table: one row per case × API × device × dtype × mode × output.

Rows are appended to ``results.jsonl`` as each (case, API) finishes, so a crash of the runner
itself loses nothing already measured; the report and every later tool read this file only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import pandas as pd

try:  # a much faster JSON parser for results.jsonl; the standard library's otherwise
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency
    orjson = None  # type: ignore[assignment]

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


class Verdict(str, Enum):
    """What a row concluded, in severity order from best to worst (the report ranks by it).

    ======================= ========================================================== =======
    verdict                 meaning                                                    fails
    ======================= ========================================================== =======
    pass                    agrees with the canonical oracle within tolerance
    expected-error          raised, and the case expects it to
    semantic-difference     misses canonical; matches the definition the entry
                            declares (a documented difference, named in the reason)
    unsupported             the entry has no native parameter for the case
    not-implemented         the framework has no kernel for this dtype/device
    skipped                 framework not installed, no such device, or the case is
                            estimated to need more than --max-worker-mem
    known                   a failure covered by the known-divergence ledger           --strict
    mismatch                a defect: matches no definition, or one the entry does
                            not declare (the reason names which)                      yes
    no-error                returned a value where the case expects an error           yes
    error                   raised where a value was expected                          yes
    timeout                 the worker hung; only this call is lost                    yes
    crashed                 the worker died; only this call is lost                    yes
    ======================= ========================================================== =======
    """

    PASS = "pass"
    EXPECTED_ERROR = "expected-error"
    SEMANTIC_DIFFERENCE = "semantic-difference"
    UNSUPPORTED = "unsupported"
    NOT_IMPLEMENTED = "not-implemented"
    SKIPPED = "skipped"
    KNOWN = "known"
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
# What --strict fails on besides FAILING (stale ledger entries fail it too).
STRICT_FAILING = FAILING | {Verdict.KNOWN}

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
    "explanation",  # the semantic options that reproduce a row missing canonical, if any
    "ledger",  # for known rows: file:line of the ledger entry that covers it, and its link
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
    "max_norm_err",  # normwise: max|actual - expected| / norm_scale over finite elements
    "norm_scale",  # max error magnitude over finite elements; normwise bound = tolerance * it
    "worst_index",  # list, index of the element with the largest error relative to its bound
    "worst_expected",
    "worst_actual",
    "expected",  # the oracle's output (nested lists) when small (<= 64 elements), else null
    "actual",  # the framework's output when small, else null
    "seconds",  # wall time of the call in the worker
    "repro",  # Python snippet reproducing the call
    "stderr_tail",  # for crashed/timeout rows: the tail of the worker's stderr
    # list: elements per bin of error / bound (compare.ERROR_HIST_EDGES; 1 = the tolerance)
    "error_hist",
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
    "error_hist",
)


# How the writer stores the numbers JSON has no literal for, and their values read back.
STORED_NUMBERS: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def to_json_value(value: Any) -> Any:
    """JSON-safe form of a cell: NaN and ±Inf become strings so they survive round trips
    (``STORED_NUMBERS``)."""
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


class ResultsUnwritable(OSError):
    """``results.jsonl`` cannot be written (disk full, read-only); complete rows are kept."""


class ResultWriter:
    """Appends rows to ``results.jsonl``; safe to call from several threads.

    Each batch of rows goes out in one ``write`` on an ``O_APPEND`` descriptor. If the write
    fails or is cut short (a full disk), the file is truncated back to the end of the last
    complete row, so a reader never meets half a line; the error is kept in ``error`` and
    raised as :class:`ResultsUnwritable`, and later writes are refused the same way.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / RESULTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._good = os.fstat(self._fd).st_size  # end of the last complete row
        self.count = 0
        self.error = ""

    def write(self, rows: Iterable[Mapping[str, Any]]) -> None:
        lines = []
        for row in rows:
            unknown = set(row) - set(COLUMNS)
            if unknown:
                raise KeyError(f"unknown result columns: {sorted(unknown)}")
            lines.append(_encode({c: to_json_value(row.get(c)) for c in COLUMNS}))
        data = b"".join(lines)
        with self._lock:
            if self.error:
                raise ResultsUnwritable(self.error)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError as exc:
                self.error = exc.strerror or str(exc)
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._good)
                raise ResultsUnwritable(exc.errno, self.error, str(self.path)) from exc
            self._good += len(data)
            self.count += len(lines)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _encode(row: Mapping[str, Any]) -> bytes:
    text = json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (from an undecodable name or message)
        return (json.dumps(row, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


# Reading a run directory back. A run dir may be damaged (a full disk cuts the last line off,
# a person edits a file, a copy goes wrong), and the report must still show what is readable:
# every line that is not a usable row is skipped and recorded with the reason, never raised.

_MAX_DEPTH = 200  # deeper JSON than any row needs; keeps json.dumps in the report off the limit
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # the only way a line holds a lone surrogate


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_line_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    if isinstance(value, str):
        return value in STORED_NUMBERS
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _is_object(value: Any) -> bool:
    return isinstance(value, dict)


def _is_array(value: Any) -> bool:
    return isinstance(value, list)


# What each column's cell must be when it is not null. A column not named here (one added
# later) takes any JSON value; "expected" and "actual" are nested lists or a single number.
_STRING = "a string"
# Columns whose cells are numbers (or the writer's "NaN"/"Infinity"/"-Infinity").
NUMBER_COLUMNS: tuple[str, ...] = (
    "max_abs_err",
    "max_rel_err",
    "max_ulp",
    "tolerance",
    "max_norm_err",
    "norm_scale",
    "worst_expected",
    "worst_actual",
    "seconds",
)
_NUMBER = 'a number or "NaN"/"Infinity"/"-Infinity"'
CELL_TYPES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    **{
        column: (_STRING, _is_string)
        for column in (
            "case_id",
            "base_id",
            "file",
            "loss",
            "framework",
            "api",
            "device",
            "device_name",
            "dtype",
            "mode",
            "output",
            "verdict",
            "reason",
            "explanation",
            "ledger",
            "call",
            "target_kind",
            "dtype_actual",
            "repro",
            "stderr_tail",
        )
    },
    "line": ("a non-negative integer", _is_line_number),
    **{column: (_NUMBER, _is_number) for column in NUMBER_COLUMNS},
    "params": ("an object", _is_object),
    **{
        column: ("an array", _is_array)
        for column in (
            "input_shape",
            "shape_expected",
            "shape_actual",
            "worst_index",
            "error_hist",
        )
    },
}


@dataclass(frozen=True)
class Skipped:
    """A line of ``results.jsonl`` that is not a usable row, and why."""

    line: int  # 1-based, counting every line of the file
    problem: str  # e.g. "not JSON", "verdict is a number, not a string"

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


@dataclass(frozen=True)
class Loaded:
    """The usable rows of a run directory (``frame``) and the lines that were skipped."""

    frame: pd.DataFrame
    skipped: tuple[Skipped, ...] = ()

    def notice(self, name: str = RESULTS_FILE, limit: int = 10) -> str:
        """One line for people, e.g. ``2 lines of results.jsonl could not be read: line 17:
        not JSON; line 18: cut off (...)``; empty when nothing was skipped."""
        if not self.skipped:
            return ""
        count = len(self.skipped)
        shown = "; ".join(str(s) for s in self.skipped[:limit])
        more = f"; and {count - limit} more" if count > limit else ""
        lines = "line" if count == 1 else "lines"
        return f"{count} {lines} of {name} could not be read: {shown}{more}"


class _Unusable(ValueError):
    """A line or file that is not what it should be; the message says why."""


class _Unparsable(_Unusable):
    """Not UTF-8 or not JSON: on a last line without its newline, the line was cut off."""


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _visible(text: str) -> str:
    """``text`` with any lone surrogate written out as ``\\udcff`` so it can be encoded."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _repair(value: Any, depth: int = 0) -> Any:
    """``value`` with lone surrogates made visible; refuses nesting deeper than _MAX_DEPTH."""
    if isinstance(value, str):
        return _visible(value)
    if isinstance(value, (list, dict)) and depth >= _MAX_DEPTH:
        raise _Unusable(f"nested more than {_MAX_DEPTH} levels deep")
    if isinstance(value, list):
        return [_repair(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {_visible(k): _repair(v, depth + 1) for k, v in value.items()}
    return value


def _parse(raw: bytes) -> Any:
    """The JSON value of one line or file, with lone surrogates made visible."""
    if orjson is not None:  # the fast path; anything it refuses goes the careful way below
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            if raw.count(b"[") + raw.count(b"{") > _MAX_DEPTH:
                value = _repair(value)
            return value
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unparsable(f"not UTF-8 (byte {exc.start + 1})") from None
    try:
        # NaN/Infinity are not JSON; read them as the writer's strings for the same values.
        value = json.loads(text, parse_constant=str)
    except RecursionError:
        raise _Unparsable("not JSON (nested too deeply to parse)") from None
    except ValueError:
        raise _Unparsable("not JSON") from None
    if text.count("[") + text.count("{") > _MAX_DEPTH or _SURROGATE_ESCAPE.search(text):
        value = _repair(value)
    return value


def _check_row(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Unusable(f"not a row: {_json_kind(value)}, not an object")
    if value.get("verdict") is None:
        raise _Unusable("not a row: no verdict")
    for column, cell in value.items():
        if cell is None or type(cell) is _PLAIN_TYPE.get(column):  # the common case, fast
            continue
        expected = CELL_TYPES.get(column)
        if expected is None or expected[1](cell):
            continue
        if expected[0] == _NUMBER and _json_kind(cell) == "a number":
            raise _Unusable(f"{column} is a number too large for a float")
        raise _Unusable(f"{column} is {_json_kind(cell)}, not {expected[0]}")
    return value


# The type that a column's cell has in nearly every row (a subclass, a finite float and the
# like are then checked by CELL_TYPES).
_PLAIN_TYPE: dict[str, type] = {
    column: {_STRING: str, "an object": dict, "an array": list}[kind]
    for column, (kind, _) in CELL_TYPES.items()
    if kind in (_STRING, "an object", "an array")
}

_CUT_OFF = "cut off (the last line has no newline and is not a complete row)"


def os_problem(exc: OSError) -> str:
    """What went wrong, in lower case: "is a directory", "permission denied", ..."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return reason[:1].lower() + reason[1:]


def _require_regular_file(path: Path) -> None:
    """Raise OSError unless ``path`` is a regular file: a FIFO would block, /dev/zero never ends."""
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))


def load_rows(run_dir: Path) -> Loaded:
    """The usable rows of ``results.jsonl`` and what was skipped, line by line.

    A line is skipped when it is not UTF-8, not JSON, cut off (the last line, without its
    newline: what a full disk or a killed run leaves), not a JSON object with a verdict, or
    when a cell has the wrong JSON type (see :data:`CELL_TYPES`). Blank lines are ignored.
    Lone surrogates in strings (``"\\udcff"``, from an undecodable file name) are kept as
    visible escapes. Raises ``OSError`` only when the file itself cannot be read.
    """
    return _read(run_dir)[0]


def load_row_lines(run_dir: Path) -> tuple[Loaded, list[bytes]]:
    """:func:`load_rows`, and each usable row's line as saved (newline included), in the
    order of the frame's rows: to copy or rewrite rows without re-encoding them."""
    return _read(run_dir, keep_lines=True)


def _read(run_dir: Path, *, keep_lines: bool = False) -> tuple[Loaded, list[bytes]]:
    path = Path(run_dir) / RESULTS_FILE
    _require_regular_file(path)
    rows: list[dict[str, Any]] = []
    lines: list[bytes] = []
    skipped: list[Skipped] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                rows.append(_check_row(_parse(raw)))
            except _Unparsable as exc:
                cut = not raw.endswith(b"\n")  # only the last line can lack it
                skipped.append(Skipped(number, _CUT_OFF if cut else str(exc)))
                continue
            except _Unusable as exc:
                skipped.append(Skipped(number, str(exc)))
                continue
            if keep_lines:
                lines.append(raw if raw.endswith(b"\n") else raw + b"\n")
    frame: pd.DataFrame = pd.DataFrame(rows, columns=list(COLUMNS))
    return Loaded(frame, tuple(skipped)), lines


def drop_cut_line(run_dir: Path) -> int:
    """Truncate ``results.jsonl`` to the end of its last complete line, dropping what a
    killed run leaves after it (part of a row, without its newline); returns the number of
    bytes dropped. Raises ``OSError`` when the file cannot be read or written."""
    path = Path(run_dir) / RESULTS_FILE
    _require_regular_file(path)
    with path.open("r+b") as f:
        size = end = f.seek(0, os.SEEK_END)
        keep = 0
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            newline = f.read(end - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        if keep < size:
            f.truncate(keep)
    return size - keep


def load(run_dir: Path) -> pd.DataFrame:
    """The usable rows of a run directory, columns in ``COLUMNS`` order (see :func:`load_rows`
    for what is skipped, and for the record of it)."""
    return load_rows(run_dir).frame


def load_summary(run_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """``summary.json`` as saved and what is wrong with it: ``(None, "")`` when there is none,
    ``(None, "not JSON")`` and the like when it cannot be read. Never raises."""
    path = Path(run_dir) / SUMMARY_FILE
    try:
        _require_regular_file(path)
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, os_problem(exc)
    try:
        value = _parse(raw)
    except _Unusable as exc:
        return None, str(exc)
    if not isinstance(value, dict):
        return None, f"{_json_kind(value)}, not an object"
    return value, ""


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

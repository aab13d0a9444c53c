"""``conformance diff OLD NEW``: what changed between two run directories.

Rows are matched on (case_id, api, device, dtype, mode, output); when the runs share no
device (a CPU run against a GPU run) they are matched without the device. Each matched pair is
a regression, a fix, not run, changed figures, or unchanged:

* regression: the verdict changed to a worse one (higher severity), or into a failing one;
  a change to ``skipped`` is not a regression but "not run", and a change from ``skipped``
  (a framework installed now) is one only when the new verdict fails.
* fix: any other verdict change: a better verdict, or a newly run row that does not fail.
* not run: the verdict changed to ``skipped`` (framework not installed, no such device).
* changed: the same verdict, but ``max_ulp`` or ``max_rel_err`` moved by more than a factor
  ``threshold`` either way. Figures of at most 1 ULP count as equal; a relative error of 0
  against a nonzero one counts only when that row is more than 1 ULP off (or has no ULP
  figure); NaN equals only NaN, an infinity only the same infinity.

Verdicts rank as in :class:`~conformance.results.Verdict`; one the suite does not know ranks
worst of all, as in the report.

Rows only in one run are listed apart, and so are the differences in the environments that
the two ``summary.json`` files record. Everything is built from the saved files only.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from conformance.report import _tables as tables
from conformance.report._html import template
from conformance.report.formats import number
from conformance.results import (
    FAILING,
    RESULTS_FILE,
    SUMMARY_FILE,
    Loaded,
    Verdict,
    load_rows,
    load_summary,
    os_problem,
)

TEMPLATE = "diff.html.j2"
KEY: tuple[str, ...] = ("case_id", "api", "device", "dtype", "mode", "output")
# The cells a listed row keeps.
_LISTED = ("device", "verdict", "reason", "max_ulp", "max_rel_err", "call", "repro", "file", "line")
_BASIC_KEYS = ("python", "numpy", "platform")
_REASON_CHARS = 300
_FAILING_VALUES = frozenset(v.value for v in FAILING)
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
_RANK = {verdict: rank for rank, verdict in enumerate(tables.SEVERITY)}


class DiffInputError(Exception):
    """A run directory (or an output file) that cannot be used; the message names it."""


@dataclass(frozen=True)
class RowChange:
    """One listed row: its key, both verdicts, reasons and figures (None: no figure)."""

    case_id: str
    api: str
    device: str  # "cpu → gpu" when matched across devices
    dtype: str
    mode: str
    output: str
    old_verdict: str | None  # None: the row is only in NEW
    new_verdict: str | None  # None: the row is only in OLD
    old_reason: str
    new_reason: str
    old_ulp: float | None
    new_ulp: float | None
    old_rel: float | None
    new_rel: float | None
    call: str  # NEW's, or OLD's when NEW has none
    repro: str
    location: str  # file:line of the case


@dataclass(frozen=True)
class EnvChange:
    """One environment fact that differs; None on the side that lacks it."""

    name: str  # "python", "torch", "tensorflow.keras", ...
    old: str | None
    new: str | None


@dataclass
class RunDiff:
    """The comparison of two run directories (see the module docstring)."""

    old: Path
    new: Path
    threshold: float
    across_devices: str = ""  # e.g. "cpu → gpu" when matched without the device
    regressions: list[RowChange] = field(default_factory=list)
    fixes: list[RowChange] = field(default_factory=list)
    changed: list[RowChange] = field(default_factory=list)
    only_old: list[RowChange] = field(default_factory=list)
    only_new: list[RowChange] = field(default_factory=list)
    not_run: list[RowChange] = field(default_factory=list)
    unchanged: int = 0
    environment: list[EnvChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> list[tuple[str, int]]:
        """(label, number) for each classification, in display order."""
        return [
            ("regressions", len(self.regressions)),
            ("fixes", len(self.fixes)),
            ("changed", len(self.changed)),
            ("only in OLD", len(self.only_old)),
            ("only in NEW", len(self.only_new)),
            ("not run", len(self.not_run)),
            ("unchanged", self.unchanged),
        ]


def _shown(path: Path) -> str:
    """A path for display: undecodable bytes of a file name become visible escapes."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def _load(run_dir: Path, side: str) -> Loaded:
    try:
        return load_rows(run_dir)
    except FileNotFoundError:
        if not run_dir.is_dir():
            raise DiffInputError(f"{side} {_shown(run_dir)}: no such directory") from None
        raise DiffInputError(
            f"{side} {_shown(run_dir)}: no {RESULTS_FILE} (not a run directory?)"
        ) from None
    except OSError as exc:
        raise DiffInputError(
            f"{side} {_shown(run_dir)}: {RESULTS_FILE} cannot be read: {os_problem(exc)}"
        ) from None


def _text(value: Any) -> str:
    return "" if tables.is_missing(value) else str(value)


def _keyed_column(column: pd.Series) -> pd.Series:
    """A key column as str, a missing cell as ""."""
    keyed: pd.Series = column.fillna("").astype(str)
    return keyed


@dataclass(frozen=True)
class _Side:
    """One run's rows (the last of each key) and, row by row, their verdicts, ranks and figures;
    ``keys`` holds the key columns as str and ``_row``, the row's position, for the merge."""

    rows: pd.DataFrame
    keys: pd.DataFrame
    verdicts: npt.NDArray[np.object_]
    ranks: npt.NDArray[np.int64]
    ulp: Floats
    rel: Floats
    dropped: int  # earlier rows whose key a later row repeats

    @classmethod
    def of(cls, frame: pd.DataFrame, key: list[str]) -> _Side:
        keys = pd.DataFrame({c: _keyed_column(frame[c]) for c in key})
        last = ~keys.duplicated(keep="last").to_numpy()
        rows = frame[last].reset_index(drop=True)
        keys = keys[last].reset_index(drop=True)
        keys["_row"] = np.arange(len(keys))
        verdicts = _keyed_column(rows["verdict"])
        worst = len(tables.SEVERITY)  # an unknown verdict ranks worst, as in the report
        return cls(
            rows=rows,
            keys=keys,
            verdicts=verdicts.to_numpy(dtype=object),
            ranks=verdicts.map(_RANK).fillna(worst).to_numpy(dtype=np.int64),
            ulp=_floats(rows["max_ulp"]),
            rel=_floats(rows["max_rel_err"]),
            dropped=len(frame) - len(rows),
        )

    def records(self, positions: npt.NDArray[np.int64]) -> list[dict[str, Any] | None]:
        """The listed cells of the rows at ``positions`` (None where a position is -1)."""
        present = positions >= 0
        found = iter(self.rows.iloc[positions[present]][list(_LISTED)].to_dict("records"))
        return [next(found) if p else None for p in present]


def _gather(values: npt.NDArray[Any], positions: npt.NDArray[np.int64], fill: Any) -> Any:
    """``values`` at ``positions``, ``fill`` where a position is -1."""
    return np.append(values, np.array([fill], dtype=values.dtype))[positions]


def _floats(column: pd.Series) -> Floats:
    """Number cells as floats: missing is NaN, and pandas reads the writer's strings "NaN",
    "Infinity", "-Infinity" as their values (as ``formats.number`` does)."""
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


def _moved(a: Floats, b: Floats, threshold: float, floor: float) -> Bools:
    """Whether each pair differs by more than a factor ``threshold``; two values of at most
    ``floor`` in magnitude are equal, NaN equals NaN only, an infinity the same one only."""
    low, high = np.minimum(np.abs(a), np.abs(b)), np.maximum(np.abs(a), np.abs(b))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = high / low  # x / 0 is inf; 0 / 0 and inf / inf are NaN, never > threshold
    moved: Bools = ((ratio > threshold) & (high > floor)) | (np.isinf(a) & np.isinf(b) & (a != b))
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    moved[nan_a | nan_b] = (nan_a != nan_b)[nan_a | nan_b]
    return moved


def _figures_moved(
    ulp_old: Floats, ulp_new: Floats, rel_old: Floats, rel_new: Floats, threshold: float
) -> Bools:
    """Whether max_ulp or max_rel_err moved (see the module docstring)."""
    ulp = _moved(ulp_old, ulp_new, threshold, 1.0)
    rel = _moved(rel_old, rel_new, threshold, 0.0)
    # 0 against a nonzero relative error counts only when the nonzero side is > 1 ULP off.
    nonzero_ulp = np.where(rel_old == 0, ulp_new, ulp_old)
    zero = (rel_old == 0) != (rel_new == 0)
    rel &= ~zero | np.isnan(nonzero_ulp) | (np.abs(nonzero_ulp) > 1.0)
    return ulp | rel


def _figure(cell: Any) -> float | None:
    return None if tables.is_missing(cell) else number(cell)


def _clipped(text: str) -> str:
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


def _change(
    key: Mapping[str, Any], old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> RowChange:
    """A listed row from its key and its cells in OLD and NEW (None: not in that run)."""
    sides = [s for s in (new, old) if s is not None]  # NEW's cell first

    def pick(name: str) -> str:
        return next((_text(s[name]) for s in sides if _text(s[name])), "")

    if "device" in key:
        device = _text(key["device"])
    else:  # matched across devices
        device = " → ".join(dict.fromkeys(_text(s["device"]) for s in reversed(sides)))
    line = next((s["line"] for s in sides if not tables.is_missing(s["line"])), None)
    location = pick("file") + ("" if line is None else f":{int(line)}")
    return RowChange(
        case_id=_text(key["case_id"]),
        api=_text(key["api"]),
        device=device,
        dtype=_text(key["dtype"]),
        mode=_text(key["mode"]),
        output=_text(key["output"]),
        old_verdict=None if old is None else _text(old["verdict"]),
        new_verdict=None if new is None else _text(new["verdict"]),
        old_reason="" if old is None else _clipped(_text(old["reason"])),
        new_reason="" if new is None else _clipped(_text(new["reason"])),
        old_ulp=None if old is None else _figure(old["max_ulp"]),
        new_ulp=None if new is None else _figure(new["max_ulp"]),
        old_rel=None if old is None else _figure(old["max_rel_err"]),
        new_rel=None if new is None else _figure(new["max_rel_err"]),
        call=pick("call"),
        repro=pick("repro"),
        location=location,
    )


def _changes(
    pairs: pd.DataFrame, mask: Bools, sides: tuple[_Side, _Side], key: list[str], worst: str = ""
) -> list[RowChange]:
    """The listed rows of the pairs in ``mask``, sorted by the column ``worst`` when given,
    then by key."""
    order = [worst] if worst else []
    order += [*key, "_row_old", "_row_new"]
    chosen = pairs[mask].sort_values(order, kind="stable")
    keys = chosen[key].to_dict("records")
    old = sides[0].records(chosen["_row_old"].to_numpy(dtype=np.int64))
    new = sides[1].records(chosen["_row_new"].to_numpy(dtype=np.int64))
    return [_change(k, o, n) for k, o, n in zip(keys, old, new, strict=True)]


def _environment(run_dir: Path, side: str, notes: list[str]) -> dict[str, str] | None:
    """The string facts of a run's environment ("torch": "2.13.0", "torch.device": "cpu",
    "python": ...), or None with a note when its summary cannot tell them."""
    saved, problem = load_summary(run_dir)
    if saved is None:
        why = f"cannot be read ({problem})" if problem else "is missing"
        notes.append(f"{SUMMARY_FILE} of {side} {why}: environment changes unknown.")
        return None
    environment = saved.get("environment")
    if not isinstance(environment, Mapping):
        notes.append(f"{SUMMARY_FILE} of {side} records no environment: changes unknown.")
        return None
    facts = {k: environment[k] for k in _BASIC_KEYS if isinstance(environment.get(k), str)}
    for name, entry in environment.items():
        if isinstance(entry, Mapping):
            for key, value in entry.items():
                if isinstance(value, str):
                    facts[name if key == name else f"{name}.{key}"] = value
    return facts


def _environment_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[EnvChange]:
    names = sorted(set(old) | set(new), key=lambda n: (n not in _BASIC_KEYS, n))
    return [EnvChange(n, old.get(n), new.get(n)) for n in names if old.get(n) != new.get(n)]


def diff_runs(old: Path, new: Path, *, threshold: float = 2.0) -> RunDiff:
    """Compare run directory ``new`` with ``old``; raise :class:`DiffInputError` when either
    has no readable ``results.jsonl`` or ``threshold`` is not a number of at least 1."""
    old, new = Path(old), Path(new)
    if not threshold >= 1 or math.isinf(threshold):
        raise DiffInputError(f"threshold must be a finite factor of at least 1, not {threshold}")
    d = RunDiff(old=old, new=new, threshold=threshold)
    frames: dict[str, pd.DataFrame] = {}
    for name, path in (("OLD", old), ("NEW", new)):
        loaded = _load(path, name)
        if loaded.skipped:
            d.notes.append(f"{name}: {loaded.notice()}.")
        frames[name] = loaded.frame
    devices = {name: sorted(_keyed_column(f["device"]).unique()) for name, f in frames.items()}
    key = list(KEY)
    if devices["OLD"] and devices["NEW"] and not set(devices["OLD"]) & set(devices["NEW"]):
        key.remove("device")
        d.across_devices = f"{', '.join(devices['OLD'])} → {', '.join(devices['NEW'])}"
        d.notes.insert(
            0, f"Rows matched across devices {d.across_devices} (device not in the key)."
        )
    old_side, new_side = _Side.of(frames["OLD"], key), _Side.of(frames["NEW"], key)
    sides = (old_side, new_side)
    for name, side in (("OLD", old_side), ("NEW", new_side)):
        if side.dropped:
            d.notes.append(
                f"{name}: {side.dropped} row(s) repeat the key of a later row; the last of each"
                " was kept."
            )
    pairs = old_side.keys.merge(
        new_side.keys, how="outer", on=key, suffixes=("_old", "_new"), indicator=True
    )
    for column in ("_row_old", "_row_new"):
        pairs[column] = pairs[column].fillna(-1).astype(np.int64)
    i_old, i_new = pairs["_row_old"].to_numpy(), pairs["_row_new"].to_numpy()
    both = (i_old >= 0) & (i_new >= 0)
    verdict_old = _gather(old_side.verdicts, i_old, "")
    verdict_new = _gather(new_side.verdicts, i_new, "")
    rank_old, rank_new = _gather(old_side.ranks, i_old, 0), _gather(new_side.ranks, i_new, 0)
    differs = both & (verdict_old != verdict_new)
    not_run = differs & (verdict_new == Verdict.SKIPPED.value)
    failing = np.isin(verdict_new, list(_FAILING_VALUES))
    # A row that was not run before (framework not installed, no device) and runs now is a
    # regression only when it fails: its known or documented verdicts are news, not breakage.
    newly_run = verdict_old == Verdict.SKIPPED.value
    regression = differs & ~not_run & (((rank_new >= rank_old) & ~newly_run) | failing)
    fix = differs & ~not_run & ~regression
    moved = _figures_moved(
        _gather(old_side.ulp, i_old, np.nan),
        _gather(new_side.ulp, i_new, np.nan),
        _gather(old_side.rel, i_old, np.nan),
        _gather(new_side.rel, i_new, np.nan),
        threshold,
    )
    changed = both & ~differs & moved
    pairs["_worse_old"], pairs["_worse_new"] = -rank_old, -rank_new
    d.regressions = _changes(pairs, regression, sides, key, "_worse_new")  # worst first
    d.fixes = _changes(pairs, fix, sides, key, "_worse_old")
    d.changed = _changes(pairs, changed, sides, key)
    d.not_run = _changes(pairs, not_run, sides, key)
    d.only_old = _changes(pairs, i_new < 0, sides, key)
    d.only_new = _changes(pairs, i_old < 0, sides, key)
    d.unchanged = int((both & ~differs & ~changed).sum())
    facts = {side: _environment(path, side, d.notes) for side, path in (("OLD", old), ("NEW", new))}
    if facts["OLD"] is not None and facts["NEW"] is not None:
        d.environment = _environment_changes(facts["OLD"], facts["NEW"])
    return d


# Display. Every string below comes from case files or frameworks: the Markdown escapes what
# would break a table, the HTML template escapes everything (autoescape).


def _num(value: float | None) -> str:
    if value is None:
        return tables.MISSING
    if math.isnan(value):
        return "NaN"
    return f"{value:.4g}"


def _pair(old: str | None, new: str | None) -> str:
    """Both values as "old → new"; one of them when they agree or only one exists."""
    if old is None or new is None or old == new:
        return new if new is not None else old or ""
    return f"{old} → {new}"


def _key(r: RowChange) -> list[str]:
    return [r.case_id, r.api, r.device, r.dtype, r.mode, r.output]


def _figures(r: RowChange) -> tuple[str, str]:
    """max ULP and max relative error, old → new (only the side a row has)."""
    old, new = r.old_verdict is not None, r.new_verdict is not None
    ulp = _pair(_num(r.old_ulp) if old else None, _num(r.new_ulp) if new else None)
    rel = _pair(_num(r.old_rel) if old else None, _num(r.new_rel) if new else None)
    return ulp, rel


def _reason(r: RowChange) -> str:
    """The reason that explains the listing: NEW's, or OLD's for a fix or an OLD-only row."""
    fixed = r.new_verdict is None or (
        r.old_verdict is not None
        and tables.severity(r.new_verdict) < tables.severity(r.old_verdict)
    )
    return r.old_reason if fixed else r.new_reason


def _sections(d: RunDiff) -> list[tuple[str, str, list[RowChange]]]:
    """(id, title, rows) of each listed classification, in display order."""
    return [
        ("regressions", "Regressions", d.regressions),
        ("fixes", "Fixes", d.fixes),
        ("changed", f"Changed figures (more than a factor {d.threshold:g})", d.changed),
        ("not-run", "Not run in NEW (skipped)", d.not_run),
        ("only-old", "Only in OLD", d.only_old),
        ("only-new", "Only in NEW", d.only_new),
    ]


def _md(text: str) -> str:
    """Text safe in a Markdown table cell or list item."""
    replacements = (
        ("\\", "\\\\"),
        ("|", "\\|"),
        ("`", "'"),
        ("\r\n", " "),
        ("\r", " "),
        ("\n", " "),
    )
    for old, new in replacements:
        text = text.replace(old, new)
    return text


_MD_COLUMNS = ("case", "API", "device", "dtype", "mode", "output", "verdict", "max ULP",
               "max rel err", "reason", "case file")  # fmt: skip


def markdown(d: RunDiff, *, limit: int = 50) -> str:
    """The diff as Markdown (for a CI step summary): counts, notes, environment changes,
    then a table per classification of at most ``limit`` rows each."""
    counts = " · ".join(f"**{n}** {label}" for label, n in d.counts())
    lines = [
        f"## Conformance diff: {_md(_shown(d.old))} → {_md(_shown(d.new))}",
        "",
        f"{counts} (figures compared at a factor {d.threshold:g}).",
    ]
    if d.notes:
        lines += ["", *(f"- {_md(note)}" for note in d.notes)]
    if d.environment:
        lines += ["", "### Environment changes", ""]
        for e in d.environment:
            lines.append(f"- {_md(e.name)}: {_md(e.old or '(none)')} → {_md(e.new or '(none)')}")
    for _, title, rows in _sections(d):
        if not rows:
            continue
        head = "| " + " | ".join(_MD_COLUMNS) + " |"
        lines += ["", f"### {title} ({len(rows)})", "", head, "|---" * len(_MD_COLUMNS) + "|"]
        for r in rows[:limit]:
            ulp, rel = _figures(r)
            verdicts = _pair(r.old_verdict, r.new_verdict)
            cells = [*_key(r), verdicts, ulp, rel, _reason(r), r.location]
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
        if len(rows) > limit:
            lines.append(f"| … and {len(rows) - limit} more |" + " |" * (len(_MD_COLUMNS) - 1))
    return "\n".join(lines) + "\n"


def _row_view(r: RowChange) -> dict[str, Any]:
    ulp, rel = _figures(r)
    return {
        "key": _key(r),
        "old": r.old_verdict or "",
        "new": r.new_verdict or "",
        "old_css": tables.css_class(r.old_verdict) if r.old_verdict else "",
        "new_css": tables.css_class(r.new_verdict) if r.new_verdict else "",
        "ulp": ulp,
        "rel": rel,
        "reason": _reason(r),
        "old_reason": r.old_reason,
        "new_reason": r.new_reason,
        "call": r.call,
        "repro": r.repro,
        "location": r.location,
    }


def html(d: RunDiff) -> str:
    """The diff as one self-contained HTML page with every listed row."""
    return template(TEMPLATE).render(
        old=_shown(d.old),
        new=_shown(d.new),
        threshold=f"{d.threshold:g}",
        counts=d.counts(),
        notes=d.notes,
        environment=[(e.name, e.old or "(none)", e.new or "(none)") for e in d.environment],
        sections=[(i, t, [_row_view(r) for r in rows]) for i, t, rows in _sections(d)],
    )


def _write(path: Path, text: str) -> None:
    try:
        path.write_bytes(text.encode("utf-8"))
    except OSError as exc:
        raise DiffInputError(f"{_shown(path)} cannot be written: {os_problem(exc)}") from None


def run_diff(
    old: Path,
    new: Path,
    *,
    threshold: float = 2.0,
    md: Path | None = None,
    html_out: Path | None = None,
) -> int:
    """Print the Markdown diff of two run directories, write it to ``md`` and the HTML page
    to ``html_out`` when given; return 1 when there is a regression, else 0. Raises
    :class:`DiffInputError` for a run directory that cannot be read or a file not written."""
    d = diff_runs(old, new, threshold=threshold)
    text = markdown(d)
    sys.stdout.write(text)
    if md is not None:
        _write(Path(md), text)
    if html_out is not None:
        _write(Path(html_out), html(d))
    return 1 if d.regressions else 0

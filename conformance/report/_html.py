"""Builds the template context from a run directory and renders ``report.html``."""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from conformance.compare import ERROR_HIST_EDGES
from conformance.report import _tables as tables
from conformance.report import findings as findings_
from conformance.report.findings import Finding, findings
from conformance.results import (
    FAILING,
    RESULTS_FILE,
    SUMMARY_FILE,
    Loaded,
    Verdict,
    load_rows,
    load_summary,
    summarize,
)

TEMPLATE = "report.html.j2"
REPORT_FILE = "report.html"
_BASIC_KEYS = ("python", "numpy", "platform", "started", "finished", "argv")


def _environment() -> jinja2.Environment:
    # Autoescape is on for everything: every string in a row came from a case or a framework.
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = tables.fmt
    return env


def template(name: str = TEMPLATE) -> jinja2.Template:
    """A template of this package (report, diff, migrate), in the one escaping environment."""
    text = resources.files("conformance.report").joinpath(name).read_text(encoding="utf-8")
    return _environment().from_string(text)


def read_summary(run_dir: Path) -> tuple[dict[str, Any] | None, dict[str, Any], list[str]]:
    """``summary.json`` (or None), the environment it records (or {}), and notes on what of it
    could not be used. A damaged summary is left as it is: the environment of a run cannot be
    rebuilt from its rows, and the counts in the report come from ``results.jsonl`` anyway."""
    saved, problem = load_summary(run_dir)
    if saved is None:
        if not problem:
            return None, {}, [f"No {SUMMARY_FILE} in the run directory: environment unknown."]
        return None, {}, [f"{SUMMARY_FILE} could not be read: {problem}; environment unknown."]
    environment = saved.get("environment")
    if isinstance(environment, dict):
        return saved, environment, []
    kind = "missing" if environment is None else f"not an object but {type(environment).__name__}"
    return saved, {}, [f"The environment in {SUMMARY_FILE} is {kind}: environment unknown."]


def _environment_rows(environment: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar facts (python, numpy, ...) and one row per framework entry."""
    basics: list[tuple[str, str]] = []
    frameworks: list[dict[str, str]] = []
    keys = [k for k in _BASIC_KEYS if k in environment]
    keys += sorted(k for k in environment if k not in _BASIC_KEYS)
    for key in keys:
        value = environment[key]
        if isinstance(value, Mapping):
            rest = {k: v for k, v in value.items() if k not in (key, "device", "skipped", "census")}
            frameworks.append(
                {
                    "name": str(key),
                    "version": tables.fmt(value.get(key)),
                    "device": tables.fmt(value.get("device")),
                    "skipped": tables.fmt(value.get("skipped")),
                    "other": ", ".join(f"{k}={tables.fmt(v)}" for k, v in rest.items()),
                }
            )
        elif key == "argv" and isinstance(value, list):
            basics.append((key, shlex.join(str(a) for a in value)))
        else:
            basics.append((str(key), tables.fmt(value)))
    return {"basics": basics, "frameworks": frameworks}


def _census_rows(environment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per framework whose worker took the census (conformance/census.py)."""
    rows = []
    for name in sorted(environment):
        value = environment[name]
        found = value.get("census") if isinstance(value, Mapping) else None
        if not isinstance(found, Mapping):
            continue
        missing = found.get("not_covered")
        rows.append(
            {
                "framework": str(name),
                "error": tables.fmt(found.get("error")) if "error" in found else "",
                "note": tables.fmt(found.get("note")) if "note" in found else "",
                "covered": found.get("covered", ""),
                "out_of_scope": found.get("out-of-scope", ""),
                "pending": found.get("pending", ""),
                "not_covered": [str(m) for m in missing] if isinstance(missing, list) else [],
            }
        )
    return rows


# The rows explorer's table columns (strings dictionary-encoded, numbers as they are) and the
# detail fields, which only differing rows carry in full (a passing row shows its call).
_TABLE = ("case_id", "loss", "framework", "api", "device", "dtype", "mode", "output", "verdict")
_NUMBERS = ("max_ulp", "max_rel_err", "max_abs_err", "tolerance", "seconds")
_DETAIL = (
    "file", "line", "device_name", "dtype_actual", "explanation", "ledger", "params",
    "input_shape", "shape_expected", "shape_actual", "worst_index", "worst_expected",
    "worst_actual", "expected", "actual", "error_hist", "stderr_tail", "repro",
)  # fmt: skip
_REASON_CHARS = 400


def _cell(value: Any) -> Any:
    """A JSON-safe cell: missing is null, NaN/Inf stay the writer's strings."""
    if tables.is_missing(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return value


def _bin_labels() -> list[str]:
    """Short labels of the error-histogram bins: ≤1e-3, ≤0.01, ..., ≤1e5, >1e5."""

    def short(edge: float) -> str:
        if 0.01 <= edge <= 100:
            return f"{edge:g}"
        return f"{edge:.0e}".replace("e+0", "e").replace("e-0", "e-")

    uppers = ERROR_HIST_EDGES[1:-1]
    return [f"\u2264{short(e)}" for e in uppers] + [f">{short(uppers[-1])}"]


def _short(value: Any) -> Any:
    return float(f"{value:.6g}") if isinstance(value, float) else value


def rows_data(frame: pd.DataFrame, found: list[Finding]) -> str:
    """The rows for the explorer as compact JSON text, safe inside a <script> element.

    Column-wise: each string column is a list of distinct values plus one index per row
    (pandas.factorize), so 100 000 rows of a few hundred APIs and cases stay a few MB.
    """
    data: dict[str, Any] = {"n": len(frame), "dict": {}, "codes": {}, "num": {}, "detail": {}}
    for column in (*_TABLE, "call", "reason"):
        values = frame[column].map(lambda v: "" if tables.is_missing(v) else str(v))
        if column == "reason":
            values = values.str.slice(0, _REASON_CHARS)
        codes, uniques = pd.factorize(values, sort=False)
        data["dict"][column] = [str(u) for u in uniques]
        data["codes"][column] = codes.tolist()
    for column in _NUMBERS:  # 6 significant digits: the table shows 4
        data["num"][column] = [_short(_cell(v)) for v in frame[column]]
    positions = {label: i for i, label in enumerate(frame.index)}
    member: dict[int, list[int]] = {}
    for k, f in enumerate(found):
        for label in f.rows:
            member.setdefault(positions[label], []).append(k)
    data["findings"] = {str(i): ks for i, ks in member.items()}
    data["finding_ids"] = [f.id for f in found]
    # Texts shared by rows (the loss and grad rows of one call share their repro) are
    # stored once in data["texts"]; a detail holds their index.
    texts: dict[str, int] = {}
    differing = findings_.differing(frame["verdict"])
    for i, record in zip(
        np.flatnonzero(differing.to_numpy()),
        frame.loc[differing, [*_DETAIL, "reason"]].to_dict("records"),
        strict=True,
    ):
        detail = {k: _cell(v) for k, v in record.items() if not tables.is_missing(v)}
        for key in ("repro", "reason", "stderr_tail"):
            if key in detail:
                detail[key] = texts.setdefault(str(detail[key]), len(texts))
        data["detail"][str(int(i))] = detail
    data["texts"] = list(texts)
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    # Inside <script>, "</script" would end the element and "<!--" change the parser's
    # state: no "<" at all (it only occurs inside JSON strings, where \u003c is the same).
    return text.replace("<", "\\u003c")


def _finding_view(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "verdict": f.verdict,
        "css": tables.css_class(f.verdict),
        "framework": f.framework,
        "loss": f.loss,
        "statement": f.statement,
        "key": f.key,
        "apis": f.apis,
        "version": f.version or tables.MISSING,
        "rows": len(f.rows),
        "cases": len(f.cases),
        "case_list": ", ".join(f.cases[:12]) + (" …" if len(f.cases) > 12 else ""),
        "dtypes": ", ".join(f.dtypes),
        "modes": ", ".join(f.modes),
        "devices": ", ".join(f.devices),
        "outputs": ", ".join(f.outputs),
        "max_ulp": tables.fmt(f.max_ulp),
        "max_rel_err": tables.fmt(f.max_rel_err),
        "links": f.links,
        "call": f.call,
        "repro": f.repro,
        "failing": f.failing,
    }


def _shown(text: str) -> str:
    """A path for display: undecodable bytes of a file name become visible escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def context(
    run_dir: Path, loaded: Loaded | None = None, found: list[Finding] | None = None
) -> dict[str, Any]:
    """Everything the template shows, as plain Python values (display strings mostly).

    ``loaded`` is ``results.jsonl`` as :func:`conformance.results.load_rows` read it (read
    here when not given); the lines it skipped are named in a note at the top.
    """
    run_dir = Path(run_dir)
    loaded = load_rows(run_dir) if loaded is None else loaded
    frame = loaded.frame
    saved, environment, notes = read_summary(run_dir)
    unread = len(loaded.skipped)
    if unread:
        notes.insert(0, f"{loaded.notice()}.")
    # Counts always come from results.jsonl; summary.json supplies the environment.
    summary = summarize(frame, environment)
    recorded = saved.get("rows") if saved is not None else None
    # A difference that the skipped lines explain needs no second note.
    if isinstance(recorded, int) and recorded not in (summary["rows"], len(frame) + unread):
        notes.append(
            f"{SUMMARY_FILE} records {recorded} rows but {RESULTS_FILE} has "
            f"{summary['rows']}: the run may not have finished."
        )
    verdicts, api_rows = tables.api_summary(frame)
    heat_columns, heat_rows = tables.heatmap(frame)
    found = findings(frame, environment) if found is None else found
    return {
        "title": f"Loss conformance report — {_shown(run_dir.resolve().name)}",
        "run_dir": _shown(str(run_dir)),
        "notes": notes,
        "unreadable": unread,
        "rows": summary["rows"],
        "failing": summary["failing"],
        "failing_verdicts": [v.value for v in Verdict if v in FAILING],
        "counts": tables.verdict_counts(summary),
        "legend": [(v, tables.css_class(v)) for v in tables.SEVERITY],
        "verdicts": verdicts,
        "api_rows": api_rows,
        "heat_columns": heat_columns,
        "heat_rows": heat_rows,
        "severity_order": list(tables.SEVERITY),
        "hist_edges": [f"{e:g}" for e in ERROR_HIST_EDGES],
        "hist_labels": _bin_labels(),
        "findings": [_finding_view(f) for f in found],
        "failing_findings": sum(f.failing for f in found),
        "rows_data": rows_data(frame, found),
        "filters": {
            column: sorted({tables.fmt(v) for v in frame[column].astype(object).unique()}, key=key)
            for column, key in (
                ("framework", str),
                ("loss", str),
                ("verdict", tables.severity),
                ("dtype", str),
                ("mode", str),
                ("device", str),
                ("output", str),
            )
        },
        "env": _environment_rows(environment),
        "census": _census_rows(environment),
    }


def render(
    run_dir: Path,
    loaded: Loaded | None = None,
    notes: list[str] | None = None,
    found: list[Finding] | None = None,
) -> Path:
    """Write ``report.html`` into ``run_dir`` from its saved files; return its path.

    ``loaded``: the rows, when the caller has read them already (``found``: their
    findings, likewise). ``notes``: when given, the
    report's notes (lines skipped, summary missing or damaged, ...) are appended to it.
    Raises ``OSError`` (its filename the report's path) when the report cannot be written.
    """
    page = context(run_dir, loaded, found)
    if notes is not None:
        notes.extend(page["notes"])
    html = template().render(page)
    path = Path(run_dir) / REPORT_FILE
    path.write_bytes(html.encode("utf-8"))
    return path

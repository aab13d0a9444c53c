"""Builds the template context from a run directory and renders ``report.html``."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from conformance.report import _tables as tables
from conformance.results import FAILING, RESULTS_FILE, SUMMARY_FILE, Verdict, load, summarize

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


def _template() -> jinja2.Template:
    text = resources.files("conformance.report").joinpath(TEMPLATE).read_text(encoding="utf-8")
    return _environment().from_string(text)


def read_summary(run_dir: Path) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``summary.json`` (or None when absent) and the environment it records (or {})."""
    path = Path(run_dir) / SUMMARY_FILE
    if not path.exists():
        return None, {}
    saved = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(saved, dict):
        return None, {}
    environment = saved.get("environment")
    return saved, environment if isinstance(environment, dict) else {}


def _environment_rows(environment: Mapping[str, Any]) -> dict[str, Any]:
    """Scalar facts (python, numpy, ...) and one row per framework entry."""
    basics: list[tuple[str, str]] = []
    frameworks: list[dict[str, str]] = []
    keys = [k for k in _BASIC_KEYS if k in environment]
    keys += sorted(k for k in environment if k not in _BASIC_KEYS)
    for key in keys:
        value = environment[key]
        if isinstance(value, Mapping):
            rest = {k: v for k, v in value.items() if k not in (key, "device", "skipped")}
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


def context(run_dir: Path) -> dict[str, Any]:
    """Everything the template shows, as plain Python values (display strings mostly)."""
    run_dir = Path(run_dir)
    frame = load(run_dir)
    saved, environment = read_summary(run_dir)
    # Counts always come from results.jsonl; summary.json supplies the environment.
    summary = summarize(frame, environment)
    notes = []
    if saved is None:
        notes.append(f"No {SUMMARY_FILE} in the run directory: environment unknown.")
    elif saved.get("rows") != summary["rows"]:
        notes.append(
            f"{SUMMARY_FILE} records {saved.get('rows')} rows but {RESULTS_FILE} has "
            f"{summary['rows']}: the run may not have finished."
        )
    verdicts, api_rows = tables.api_summary(frame)
    heat_columns, heat_rows = tables.heatmap(frame)
    rows = tables.all_rows(frame)
    return {
        "title": f"Loss conformance report — {run_dir.resolve().name}",
        "run_dir": str(run_dir),
        "notes": notes,
        "rows": summary["rows"],
        "failing": summary["failing"],
        "failing_verdicts": [v.value for v in Verdict if v in FAILING],
        "counts": tables.verdict_counts(summary),
        "legend": [(v, tables.css_class(v)) for v in tables.SEVERITY],
        "verdicts": verdicts,
        "api_rows": api_rows,
        "heat_columns": heat_columns,
        "heat_rows": heat_rows,
        "discrepancies": tables.discrepancies(frame),
        "all_rows": rows,
        "row_verdicts": sorted({r["verdict"] for r in rows}, key=tables.severity),
        "row_frameworks": sorted({r["framework"] for r in rows}),
        "env": _environment_rows(environment),
    }


def render(run_dir: Path) -> Path:
    """Write ``report.html`` into ``run_dir`` from its saved files; return its path."""
    html = _template().render(context(run_dir))
    path = Path(run_dir) / REPORT_FILE
    path.write_text(html, encoding="utf-8")
    return path

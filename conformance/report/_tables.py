"""Tabulation for the report: pandas in, plain lists of dicts of display strings out.

Everything here works on the frame that :func:`conformance.results.load` returns, so the
report depends on the saved run directory only. Missing cells (``None`` or a pandas NaN) are
shown as "—"; a NaN *value*, stored by the writer as the string ``"NaN"``, is shown as "NaN".
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from conformance.results import FAILING, STORED_NUMBERS, Verdict

MISSING = "—"

# One severity scale, best to worst (the Verdict enum's order), used for the heatmap's "worst
# verdict" and for ranking findings (crashed, timeout, error, no-error, mismatch first).
SEVERITY: tuple[str, ...] = tuple(v.value for v in Verdict)
FAILING_VALUES = frozenset(v.value for v in FAILING)
GOOD_VALUES = frozenset({Verdict.PASS.value, Verdict.EXPECTED_ERROR.value})

# Sorting ranks a stored NaN with +Infinity: as bad as an error can be.
_RANKED = {**STORED_NUMBERS, "NaN": math.inf}


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def severity(verdict: Any) -> int:
    """Rank on :data:`SEVERITY`; an unknown verdict ranks worst of all so it is never hidden."""
    return SEVERITY.index(verdict) if verdict in SEVERITY else len(SEVERITY)


def css_class(verdict: Any) -> str:
    return f"v-{verdict}" if verdict in SEVERITY else "v-unknown"


def fmt(value: Any, style: str = "g") -> str:
    """Display text of a cell. ``style``: ``g`` (4 significant digits), ``repr`` (round-trip
    float), ``int``, or ``json`` (always JSON, for JSON-valued columns)."""
    if is_missing(value):
        return MISSING
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()  # NumPy scalar
    if style == "json":
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, float):
        if style == "int" and value.is_integer():
            return str(int(value))
        if style == "repr":
            return repr(value)
        return f"{value:.4g}"
    return str(value)


def sort_number(value: Any) -> float:
    """Numeric key for sorting errors: a stored NaN or Infinity counts as infinitely bad."""
    if is_missing(value):
        return math.nan
    if isinstance(value, str):
        return _RANKED.get(value, math.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _keys(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with grouping columns filled and helper sort columns added."""
    out: pd.DataFrame = frame.copy()
    for column in ("loss", "framework", "api"):
        out[column] = out[column].astype(object).where(out[column].notna(), MISSING)
    out["_sev"] = [severity(v) for v in out["verdict"]]
    out["_ulp"] = [sort_number(v) for v in out["max_ulp"]]
    out["_rel"] = [sort_number(v) for v in out["max_rel_err"]]
    return out


def _verdict_columns(frame: pd.DataFrame) -> list[str]:
    """All known verdicts in severity order, then any unknown ones present in the data."""
    unknown = sorted({str(v) for v in frame["verdict"] if v not in SEVERITY})
    return [*SEVERITY, *unknown]


def _pass_percent(counts: Mapping[str, int]) -> str:
    good = sum(counts.get(v, 0) for v in GOOD_VALUES)
    bad = sum(counts.get(v, 0) for v in FAILING_VALUES)
    return MISSING if good + bad == 0 else f"{100.0 * good / (good + bad):.1f}"


def api_summary(frame: pd.DataFrame) -> tuple[list[str], list[dict[str, Any]]]:
    """Per (framework, API): verdict counts, rows, pass % and the device names seen."""
    keyed = _keys(frame)
    verdicts = _verdict_columns(keyed)
    counts = pd.crosstab([keyed["framework"], keyed["api"]], keyed["verdict"].astype(str))
    counts = counts.reindex(columns=verdicts, fill_value=0)
    devices = keyed.groupby(["framework", "api"])["device_name"].agg(
        lambda s: ", ".join(sorted({str(v) for v in s if not is_missing(v)})) or MISSING
    )
    rows = []
    for (framework, api), line in counts.iterrows():
        by_verdict = {v: int(line[v]) for v in verdicts}
        rows.append(
            {
                "framework": str(framework),
                "api": str(api),
                "counts": [(v, by_verdict[v], css_class(v)) for v in verdicts],
                "rows": sum(by_verdict.values()),
                "failing": sum(by_verdict[v] for v in FAILING_VALUES if v in by_verdict),
                "pass_pct": _pass_percent(by_verdict),
                "devices": str(devices.loc[(framework, api)]),
            }
        )
    return verdicts, rows


def heatmap(frame: pd.DataFrame) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Loss-by-API grid of the worst verdict per cell (with its count and a full breakdown)."""
    keyed = _keys(frame)
    apis = keyed[["framework", "api"]].drop_duplicates().sort_values(["framework", "api"])
    columns = [{"framework": str(f), "api": str(a)} for f, a in apis.itertuples(index=False)]
    worst = keyed.pivot_table(index="loss", columns="api", values="_sev", aggfunc="max")
    tally = pd.crosstab([keyed["loss"], keyed["api"]], keyed["verdict"].astype(str))
    rows = []
    for loss in sorted(worst.index, key=str):
        cells = []
        for column in columns:
            rank = worst.at[loss, column["api"]] if column["api"] in worst.columns else math.nan
            if is_missing(rank):
                cells.append({"verdict": "", "css": "v-none", "text": MISSING, "title": ""})
                continue
            line = tally.loc[(loss, column["api"])]
            counts = {str(v): int(n) for v, n in line.items() if n}
            unknown = sorted(v for v in counts if v not in SEVERITY)
            verdict = SEVERITY[int(rank)] if int(rank) < len(SEVERITY) else unknown[0]
            total = sum(counts.values())
            ordered = sorted(counts.items(), key=lambda kv: -severity(kv[0]))
            cells.append(
                {
                    "verdict": verdict,
                    "css": css_class(verdict),
                    "text": f"{counts.get(verdict, 0)}/{total}",
                    "title": ", ".join(f"{n} {v}" for v, n in ordered),
                }
            )
        rows.append({"loss": str(loss), "cells": cells})
    return columns, rows


def verdict_counts(summary: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    by_verdict: Mapping[str, int] = summary.get("by_verdict", {})
    extra = sorted(v for v in by_verdict if v not in SEVERITY)
    return [(v, int(by_verdict.get(v, 0)), css_class(v)) for v in (*SEVERITY, *extra)]

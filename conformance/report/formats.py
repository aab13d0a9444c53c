"""The machine formats of a run directory: ``junit.xml``, ``summary.md``, ``results.parquet``.

Each is built from the saved rows (and the findings computed from them), like the HTML:

* ``junit.xml``: one ``<testcase>`` per case × API × device × dtype × mode (its loss and grad
  rows together), in one ``<testsuite>`` per framework. A failing verdict is a ``<failure>``
  (``crashed`` and ``timeout`` an ``<error>``: the harness lost the call) whose text carries
  each row's reason, the call and the repro; ``known``, ``unsupported``, ``not-implemented``
  and ``skipped`` are ``<skipped>`` with the reason (as pytest reports an xfail).
* ``summary.md``: for a CI step summary (GitHub's ``$GITHUB_STEP_SUMMARY``): counts by
  verdict, the failing findings, then the others, each one line with its rows and link.
* ``results.parquet``: every column; JSON-valued cells as JSON text (as in ``results.csv``),
  number columns as float64 with real NaN and ±Inf.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from conformance.report._tables import FAILING_VALUES, is_missing, severity
from conformance.report.findings import Finding
from conformance.results import COLUMNS, JSON_COLUMNS, NUMBER_COLUMNS, STORED_NUMBERS, Verdict

JUNIT_FILE = "junit.xml"
MARKDOWN_FILE = "summary.md"
PARQUET_FILE = "results.parquet"

_LOST = frozenset({Verdict.CRASHED.value, Verdict.TIMEOUT.value})
_NOT_RUN = frozenset(
    {
        Verdict.KNOWN.value,
        Verdict.UNSUPPORTED.value,
        Verdict.NOT_IMPLEMENTED.value,
        Verdict.SKIPPED.value,
    }
)
_TESTCASE_KEYS = ["framework", "case_id", "api", "device", "dtype", "mode"]


def number(value: Any) -> float:
    """A number cell as a float: missing is NaN, the writer's "NaN"/"Infinity" strings their
    values (unlike ``sort_number``, which ranks a NaN as infinitely bad)."""
    if is_missing(value):
        return math.nan
    if isinstance(value, str):
        return STORED_NUMBERS.get(value, math.nan)
    return float(value)


def _text(value: Any) -> str:
    return "" if is_missing(value) else str(value)


# What XML 1.0 cannot hold, even escaped: most C0 controls and the two non-characters.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """``text`` with what XML 1.0 cannot hold shown as escapes (lone surrogates too)."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def testcase_name(row: Mapping[str, Any]) -> str:
    """The stable name of a row's test case: case id, API, device and mode."""
    return f"{_text(row['case_id'])} · {_text(row['api'])} · {_text(row['device'])} · " + _text(
        row["mode"]
    )


def junit(frame: pd.DataFrame, run_name: str = "conformance") -> str:
    """``junit.xml`` text of a run's rows (see the module docstring)."""
    root = ET.Element("testsuites", name=_xml_text(run_name))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    columns = [*_TESTCASE_KEYS, "loss", "file", "line", "output", "verdict", "reason", "seconds",
               "call", "stderr_tail", "repro"]  # fmt: skip
    # One pass over the rows (a pandas groupby per test case is ~100x slower at 100k rows).
    suites: dict[str, dict[tuple[str, ...], list[dict[str, Any]]]] = {}
    for record in frame[columns].to_dict("records"):
        key = tuple(_text(record[c]) for c in _TESTCASE_KEYS)
        suites.setdefault(key[0], {}).setdefault(key[1:], []).append(record)
    for framework in sorted(suites):
        suite = ET.SubElement(root, "testsuite", name=_xml_text(framework or "(none)"))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        seconds = 0.0
        for records in suites[framework].values():
            first = records[0]
            worst = max((r["verdict"] for r in records), key=severity)
            time = sum(s for s in (number(r["seconds"]) for r in records) if math.isfinite(s))
            seconds += time
            element = ET.SubElement(
                suite,
                "testcase",
                name=_xml_text(testcase_name(first)),
                classname=_xml_text(f"{framework}.{_text(first['loss'])}"),
                file=_xml_text(_text(first["file"])),
                line=str(int(first["line"])) if not is_missing(first["line"]) else "0",
                time=f"{time:.6f}",
            )
            counts["tests"] += 1
            reasons = "; ".join(
                f"{_text(r['output'])}: {_text(r['verdict'])}: {_text(r['reason'])[:300]}"
                for r in records
            )
            if worst in FAILING_VALUES:
                kind = "error" if worst in _LOST else "failure"
                counts["errors" if kind == "error" else "failures"] += 1
                outcome = ET.SubElement(
                    element, kind, message=_xml_text(reasons[:1000]), type=_xml_text(worst)
                )
                outcome.text = _xml_text("\n\n".join(_row_text(r) for r in records))
            elif worst in _NOT_RUN:
                counts["skipped"] += 1
                ET.SubElement(element, "skipped", message=_xml_text(f"{worst}: {reasons}"[:1000]))
            else:  # pass, expected-error, semantic-difference: passes, with what it was
                out = ET.SubElement(element, "system-out")
                out.text = _xml_text(reasons)
        for name, value in counts.items():
            suite.set(name, str(value))
            totals[name] += value
        suite.set("time", f"{seconds:.6f}")
    for name, value in totals.items():
        root.set(name, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _row_text(row: Mapping[str, Any]) -> str:
    lines = [
        f"output: {_text(row['output'])}",
        f"verdict: {_text(row['verdict'])}",
        f"reason: {_text(row['reason'])}",
        f"case: {_text(row['file'])}:{_text(row['line'])}",
    ]
    if _text(row.get("call")):
        lines.append(f"call: {_text(row['call'])}")
    if _text(row.get("stderr_tail")):
        lines.append(f"stderr tail:\n{_text(row['stderr_tail'])}")
    if _text(row.get("repro")):
        lines.append(f"repro:\n{_text(row['repro'])}")
    return "\n".join(lines)


def _count_line(by_verdict: Mapping[str, int]) -> str:
    order = [v.value for v in Verdict]
    extra = sorted(v for v in by_verdict if v not in order)
    return " · ".join(f"{v} {by_verdict[v]}" for v in [*order, *extra] if by_verdict.get(v))


def _md(text: str) -> str:
    """Text safe in a Markdown table cell or list item."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _error(finding: Finding) -> str:
    if math.isnan(finding.max_ulp):
        return ""
    return f", max {finding.max_ulp:.3g} ULP" if math.isfinite(finding.max_ulp) else ", max ∞ ULP"


def markdown(
    summary: Mapping[str, Any],
    found: Sequence[Finding],
    run_dir: str = "",
    *,
    limit: int = 40,
) -> str:
    """``summary.md``: counts, the failing findings, then the others (at most ``limit``)."""
    failing = [f for f in found if f.failing]
    other = [f for f in found if not f.failing]
    rows = int(summary.get("rows", 0))
    lines = [
        "## Loss conformance" + (f": `{_md(run_dir)}`" if run_dir else ""),
        "",
        f"**{rows}** rows, **{int(summary.get('failing', 0))}** failing "
        f"({_count_line(summary.get('by_verdict', {})) or 'no rows'}).",
        "",
        f"{len(found)} findings: {len(failing)} failing, {len(other)} known or documented. "
        "Full report: `report.html`; rows: `results.parquet`, `results.jsonl`.",
    ]
    for title, group in (("Failing findings", failing), ("Known and documented", other)):
        if not group:
            continue
        lines += ["", f"### {title}", "", "| verdict | finding | rows | link |"]
        lines.append("|---|---|---|---|")
        for f in group[:limit]:
            link = f"[upstream]({f.links[0]})" if f.links else ""
            lines.append(
                f"| {f.verdict} | {_md(f.statement)} (`{f.id}`; {len(f.cases)} case(s){_error(f)})"
                f" | {len(f.rows)} | {link} |"
            )
        if len(group) > limit:
            lines.append(f"| | … and {len(group) - limit} more in `report.html` | | |")
    envs = summary.get("environment", {})
    versions = []
    if isinstance(envs, Mapping):
        for name in sorted(envs):
            value = envs[name]
            if isinstance(value, Mapping) and isinstance(value.get(name), str):
                versions.append(f"{name} {value[name]}")
    if versions:
        lines += ["", "Versions: " + ", ".join(_md(v) for v in versions) + "."]
    return "\n".join(lines) + "\n"


def parquet_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with one type per column: JSON cells as JSON text, numbers as float64."""
    out: pd.DataFrame = frame[list(COLUMNS)].copy()
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    for column in JSON_COLUMNS:
        out[column] = [None if is_missing(v) else dumps(v) for v in out[column]]
    for column in NUMBER_COLUMNS:  # the writer's "NaN"/"Infinity" strings become the values
        cells = out[column].astype(object).replace(STORED_NUMBERS)
        out[column] = pd.to_numeric(cells, errors="coerce").astype("float64")
    out["line"] = pd.to_numeric(out["line"], errors="coerce").astype("Int64")
    for column in out.columns:
        if column not in NUMBER_COLUMNS and column not in ("line", *JSON_COLUMNS):
            out[column] = out[column].astype("string")
    for column in JSON_COLUMNS:
        out[column] = out[column].astype("string")
    return out


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    # To bytes first: a write error is then the same OSError, naming the path, as for the
    # other outputs (pyarrow's own file errors name it only in their message).
    data = parquet_frame(frame).to_parquet(None, engine="pyarrow", index=False)
    assert isinstance(data, bytes)
    path.write_bytes(data)
    return path

"""Findings: the rows of a run grouped into what a person acts on.

A *finding* is one behaviour of one framework's loss: one verdict and one explanation, across
every case, dtype, mode, device, output (loss and grad) and API entry that shows it. The
functional and class forms of an API (``paddle.nn.functional.cross_entropy`` and
``paddle.nn.CrossEntropyLoss``), and any other entry of the same framework and loss that
behaves the same way, land in the same finding. The explanation is

* for ``semantic-difference`` and explained ``mismatch`` rows: each semantic option the judge
  named (``index_mean=count``); a row reproduced only by several options together counts in
  the finding of each, and a row with alternative explanations (``A or B``) gets a finding of
  its own for the alternatives;
* for ``known`` rows: the ledger entry (its file and line);
* otherwise: the reason with its numbers and shapes masked (``ValueError: Target N is out of
  bounds``), so the same error across cases is one finding.

Only rows that differ from canonical make findings (failing verdicts, ``known`` and
``semantic-difference``); every one of them is in at least one finding, found by its row
number (``row``: its position in ``results.jsonl`` order). Everything is computed from the
saved rows and the environment of ``summary.json``, like the rest of the report.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from conformance.report._tables import FAILING_VALUES, is_missing, severity, sort_number
from conformance.results import Verdict

# The verdicts that make findings: every row that differs from the canonical oracle (and
# any verdict this version does not know, which ranks worst of all).
DIFFERING = FAILING_VALUES | {Verdict.KNOWN.value, Verdict.SEMANTIC_DIFFERENCE.value}
_KNOWN_VERDICTS = frozenset(v.value for v in Verdict)


def differing(verdicts: pd.Series) -> pd.Series:
    """Which rows make findings."""
    return verdicts.isin(DIFFERING) | ~verdicts.isin(_KNOWN_VERDICTS)


_URL = re.compile(r"https?://[^\s\]\),;]+")
# name=value (description): one option as judge.Diagnosis.explanation writes it.
_OPTION = re.compile(r"^\s*([A-Za-z_][\w]*=[^\s(;]+)\s*(?:\((.*)\))?\s*$", re.S)
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
_KNOWN = re.compile(r"^known \((?P<link>[^)]*)\): (?P<reason>.*?); measured ", re.S)


@dataclass
class Finding:
    """One behaviour, with everything the report's finding card shows."""

    id: str  # stable across runs: a hash of (framework, loss, verdict, key)
    framework: str
    loss: str
    verdict: str
    key: str  # the option, the ledger entry, or the masked reason
    statement: str  # one sentence
    apis: list[str]
    rows: list[int]  # row numbers (0-based, results.jsonl order)
    cases: list[str]  # base ids
    dtypes: list[str]
    modes: list[str]
    devices: list[str]
    outputs: list[str]
    max_ulp: float
    max_rel_err: float
    version: str
    links: list[str] = field(default_factory=list)
    call: str = ""
    repro: str = ""
    example: int = -1  # the row the call and repro come from: the smallest input

    @property
    def failing(self) -> bool:
        return self.verdict in FAILING_VALUES

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        for name in ("max_ulp", "max_rel_err"):
            value = out[name]
            out[name] = None if math.isnan(value) else ("Infinity" if math.isinf(value) else value)
        out["rows"] = len(self.rows)
        out["cases"] = len(self.cases)
        out["failing"] = self.failing
        return out


def _text(value: Any) -> str:
    return "" if is_missing(value) else str(value)


def split_options(explanation: str) -> tuple[list[tuple[str, str]], bool]:
    """The options of an explanation as (``name=value``, description) pairs, and whether it
    names alternatives (``A or B``), in which case the whole text is one pair."""
    text = explanation.strip()
    if not text:
        return [], False
    # " or " separates alternatives only outside parentheses.
    depth, cut = 0, []
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and text.startswith(" or ", i):
            cut.append(i)
    if cut:
        return [(text, "")], True
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and ch == ";":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    out = []
    for part in parts:
        m = _OPTION.match(part)
        out.append((m.group(1), (m.group(2) or "").strip()) if m else (part.strip(), ""))
    return out, False


def mask(reason: str) -> str:
    """A reason with its numbers masked and cut at the first line: the same error of another
    case (other shapes, other values) gives the same text."""
    line = reason.strip().splitlines()[0] if reason.strip() else ""
    line = _NUMBER.sub("N", line)
    return line[:200]


def _keys(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, description) of each finding a differing row belongs to."""
    verdict = row["verdict"]
    explanation = _text(row.get("explanation"))
    if verdict == Verdict.KNOWN.value:
        ledger = _text(row.get("ledger"))
        where = ledger.split(" ", 1)[0] if ledger else "ledger"
        m = _KNOWN.match(_text(row.get("reason")))
        return [(f"ledger {where}", m.group("reason") if m else _text(row.get("reason")))]
    if explanation and verdict in (Verdict.SEMANTIC_DIFFERENCE.value, Verdict.MISMATCH.value):
        options, _ = split_options(explanation)
        return options
    if verdict == Verdict.MISMATCH.value:
        return [("unexplained", "")]
    if verdict == Verdict.NO_ERROR.value:
        return [("returns a value", _text(row.get("reason")))]
    return [(mask(_text(row.get("reason"))), "")]


def _statement(verdict: str, key: str, description: str, apis: list[str]) -> str:
    names = apis[0] if len(apis) == 1 else f"{apis[0]} and {len(apis) - 1} more"
    if verdict == Verdict.SEMANTIC_DIFFERENCE.value:
        what = description or key
        return f"{names} computes a documented variant, {key}: {what}."
    if verdict == Verdict.KNOWN.value:
        return f"{names}: {description or 'a known defect'} (ledger)."
    if verdict == Verdict.MISMATCH.value:
        if key == "unexplained":
            return (
                f"{names} misses the canonical oracle beyond tolerance, "
                "and no semantic option reproduces it."
            )
        what = description or key
        return f"{names} computes {key} ({what}), which it does not document."
    if verdict == Verdict.NO_ERROR.value:
        return f"{names} returns a value where the case expects an error."
    if verdict == Verdict.ERROR.value:
        return f"{names} raises where a value is expected: {key}."
    return f"{names}: {verdict}: {key}."


def _version(environment: Mapping[str, Any], framework: str) -> str:
    entry = environment.get(framework)
    if isinstance(entry, Mapping):
        parts = [f"{k} {v}" for k, v in entry.items() if isinstance(v, str) and k != "device"]
        return ", ".join(parts)
    return ""


def _size(shape: Any) -> float:
    if isinstance(shape, list) and all(isinstance(d, int) for d in shape):
        return float(math.prod(shape))
    return math.inf


def _max(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return max(finite) if finite else math.nan


def finding_id(framework: str, loss: str, verdict: str, key: str) -> str:
    digest = hashlib.sha1(f"{framework}\0{loss}\0{verdict}\0{key}".encode()).hexdigest()
    return f"F{digest[:8]}"


def findings(frame: pd.DataFrame, environment: Mapping[str, Any] | None = None) -> list[Finding]:
    """The findings of a run, ranked: severity of the verdict, then reach (cases, then rows),
    then the largest error. ``frame`` is :func:`conformance.results.load` of the run."""
    environment = environment or {}
    columns = [
        "verdict", "framework", "loss", "api", "explanation", "ledger", "reason", "base_id",
        "dtype", "mode", "device", "output", "max_ulp", "max_rel_err", "input_shape", "call",
        "repro",
    ]  # fmt: skip
    rows_in = frame.loc[differing(frame["verdict"]), columns]
    groups: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for number, row in zip(rows_in.index, rows_in.to_dict("records"), strict=True):
        for key, description in _keys(row):
            ident = (_text(row["framework"]), _text(row["loss"]), row["verdict"], key)
            group = groups.setdefault(ident, {"rows": [], "description": description})
            group["rows"].append(int(number))
            if not group["description"] and description:
                group["description"] = description
    out = []
    for (framework, loss, verdict, key), group in groups.items():
        rows = rows_in.loc[group["rows"]]
        apis = sorted({_text(a) for a in rows["api"]})
        links: list[str] = []
        # The links every row of the finding names (the option's or the ledger entry's own,
        # not those of other options a row also needed); else all of them.
        link_sets = [
            found
            for found in (
                set(_URL.findall(f"{_text(reason)} {_text(ledger)}"))
                for reason, ledger in zip(rows["reason"], rows["ledger"], strict=True)
            )
            if found
        ]
        common = set.intersection(*link_sets) if link_sets else set()
        for found in link_sets:
            links += [u for u in sorted(found) if u in common and u not in links]
        if not links:
            links = sorted(set().union(*link_sets)) if link_sets else []
        sizes = [_size(s) for s in rows["input_shape"]]
        with_repro = [
            (size, output != "loss", n)
            for size, output, n, repro in zip(
                sizes, rows["output"], rows.index, rows["repro"], strict=True
            )
            if not is_missing(repro)
        ]
        example = min(with_repro)[2] if with_repro else int(rows.index[0])
        out.append(
            Finding(
                id=finding_id(framework, loss, verdict, key),
                framework=framework,
                loss=loss,
                verdict=verdict,
                key=key,
                statement=_statement(verdict, key, group["description"], apis),
                apis=apis,
                rows=[int(n) for n in rows.index],
                cases=sorted({_text(c) for c in rows["base_id"]}),
                dtypes=sorted({_text(c) for c in rows["dtype"]}),
                modes=sorted({_text(c) for c in rows["mode"]}),
                devices=sorted({_text(c) for c in rows["device"]}),
                outputs=sorted({_text(c) for c in rows["output"]}),
                max_ulp=_max([sort_number(v) for v in rows["max_ulp"]]),
                max_rel_err=_max([sort_number(v) for v in rows["max_rel_err"]]),
                version=_version(environment, framework),
                links=links[:3],
                call=_text(rows_in.at[example, "call"]),
                repro=_text(rows_in.at[example, "repro"]),
                example=int(example),
            )
        )
    out.sort(
        key=lambda f: (
            -severity(f.verdict),
            -len(f.cases),
            -len(f.rows),
            -(f.max_ulp if not math.isnan(f.max_ulp) else -1.0),
            f.framework,
            f.loss,
            f.key,
        )
    )
    return out

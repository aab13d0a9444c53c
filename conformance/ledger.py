"""The known-divergence ledger: failures already reported upstream, as data.

A ledger file sits beside the case files (``cases/known.yaml``) and holds ``known:``, a list
of entries. An entry covers a failing row when every pattern matches::

    - api: paddle.nn*cross_entropy*          # fnmatch pattern of the API (case-sensitive)
      case: [ce-ignore-default*, ce-many-classes*]  # fnmatch pattern(s) of the case id
      output: any                            # loss | grad | any (default any)
      mode: tf.function*                     # optional: fnmatch pattern of the mode
      verdict: mismatch                      # what the row would be without the ledger
      explanation: index_mean=elements       # optional: the diagnosis must name this option
      versions: {paddle: ">=2.4,<3.4"}       # optional: PEP 440 ranges of the row's framework
      reason: unweighted mean with a negative ignore_index divides by all elements
      link: https://github.com/PaddlePaddle/Paddle/issues/48663

A covered row gets the verdict ``known`` (failing only under ``--strict``). An entry whose
patterns match rows of a run (rows that were judged: not skipped, unsupported, without a
kernel, or covered by another entry) but that covers none of them is *stale*: fixed
upstream, or its version range no longer applies. Stale entries are listed in summary.json
and fail ``--strict``. Name the cases an entry is about (a list of patterns is fine) rather
than ``*``, so that a run of other cases does not call it stale.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from conformance import cases
from conformance.cases import CaseError, CaseErrors
from conformance.oracle.options import OPTIONS

__all__ = ["COVERABLE", "Entry", "Ledger", "apply", "is_ledger", "load_file", "load_paths"]

_JUDGED_OUT = ("skipped", "unsupported", "not-implemented")
COVERABLE = ("mismatch", "error", "no-error", "crashed", "timeout")

_pattern = {"type": "string", "minLength": 1, "maxLength": 300}
ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["api", "case", "verdict", "reason", "link"],
    "properties": {
        "api": _pattern,
        "case": {
            "oneOf": [
                _pattern,
                {"type": "array", "items": _pattern, "minItems": 1, "maxItems": 50},
            ]
        },
        "output": {"enum": ["loss", "grad", "any"]},
        "mode": {"type": "string", "minLength": 1, "maxLength": 100},
        "verdict": {"enum": list(COVERABLE)},
        "explanation": {"type": "string", "minLength": 1, "maxLength": 300},
        "versions": {
            "type": "object",
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 100},
            "maxProperties": 4,
        },
        "reason": {"type": "string", "minLength": 1, "maxLength": 500},
        "link": {"type": "string", "pattern": "^https://[^\\s]+$", "maxLength": 300},
    },
    "additionalProperties": False,
}
FILE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["known"],
    "properties": {
        "description": {"type": "string"},
        "known": {"type": "array", "items": ENTRY_SCHEMA, "minItems": 1},
    },
    "additionalProperties": False,
}
_VALIDATOR = jsonschema.Draft202012Validator(FILE_SCHEMA)


@dataclass(frozen=True)
class Entry:
    """One known divergence, located at ``file:line``."""

    file: str
    line: int
    api: str
    case: tuple[str, ...]
    verdict: str
    reason: str
    link: str
    output: str = "any"
    explanation: str = ""
    versions: Mapping[str, SpecifierSet] = field(default_factory=dict)
    mode: str = "*"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def matches(self, api: str, case_id: str, output: str, mode: str = "eager") -> bool:
        """The patterns alone (no verdict or version): does this entry speak of the row?"""
        return (
            fnmatch.fnmatchcase(api, self.api)
            and any(fnmatch.fnmatchcase(case_id, pattern) for pattern in self.case)
            and self.output in ("any", output)
            and fnmatch.fnmatchcase(mode, self.mode)
        )

    def covers(self, row: Mapping[str, Any], environment: Mapping[str, Any]) -> bool:
        """Whether this entry explains the failing ``row`` of a framework whose worker
        reported ``environment`` (package versions)."""
        mode = str(row.get("mode") or "eager")
        if not self.matches(str(row["api"]), str(row["case_id"]), str(row["output"]), mode):
            return False
        if row.get("verdict") != self.verdict:
            return False
        if self.explanation and self.explanation not in str(row.get("explanation") or ""):
            return False
        return all(_in_range(environment.get(pkg), spec) for pkg, spec in self.versions.items())


def _in_range(version: Any, spec: SpecifierSet) -> bool:
    try:
        # Local labels (2.13.0+cpu) and dev builds count as their release.
        return Version(str(version)).public in spec or Version(str(version)) in spec
    except InvalidVersion:
        return False


@dataclass(frozen=True)
class Ledger:
    entries: tuple[Entry, ...] = ()

    def cover(self, row: Mapping[str, Any], environment: Mapping[str, Any]) -> Entry | None:
        if row.get("verdict") not in COVERABLE:
            return None
        return next((e for e in self.entries if e.covers(row, environment)), None)

    def speaks_of(self, row: Mapping[str, Any]) -> list[Entry]:
        """The entries whose patterns match ``row`` when it counts towards staleness: a
        judged row (not skipped, unsupported, without a kernel) that no entry covers."""
        if str(getattr(row.get("verdict"), "value", row.get("verdict"))) in _JUDGED_OUT:
            return []
        if row.get("ledger"):
            return []
        api, case_id, output = str(row["api"]), str(row["case_id"]), str(row["output"])
        mode = str(row.get("mode") or "eager")
        return [e for e in self.entries if e.matches(api, case_id, output, mode)]

    def stale(self, frame: pd.DataFrame) -> list[dict[str, str]]:
        """Entries that match judged rows of the run but cover none of them."""
        if frame.empty:
            return []
        columns = ["api", "case_id", "output", "verdict", "mode", "ledger"]
        rows = frame[columns].astype(object).where(frame[columns].notna(), None)
        spoken: dict[str, list[str]] = {}
        for row in rows.to_dict("records"):
            for e in self.speaks_of(row):
                spoken.setdefault(e.where, []).append(str(row["verdict"]))
        return self.stale_among(spoken, set(frame["ledger"].dropna().astype(str)))

    def stale_among(
        self, spoken: Mapping[str, Iterable[str]], covered: Iterable[str]
    ) -> list[dict[str, str]]:
        """The stale entries, given the verdicts of the rows each entry speaks of (by its
        ``file:line``; see ``speaks_of``) and the ``ledger`` cells of the covered rows."""
        refs = set(covered)
        out = []
        for e in self.entries:
            verdicts = list(spoken.get(e.where, ()))
            if not verdicts or any(ref.startswith(e.where + " ") for ref in refs):
                continue
            out.append(
                {
                    "entry": e.where,
                    "api": e.api,
                    "case": ", ".join(e.case),
                    "link": e.link,
                    "reason": f"covers none of the {len(verdicts)} row(s) it matches "
                    f"(verdicts now: {', '.join(sorted(set(verdicts)))}): fixed upstream, or "
                    "its version range no longer applies",
                }
            )
        return out


def is_ledger(doc: Any) -> bool:
    """A ledger file is a mapping with ``known:`` (a case file has ``cases:``)."""
    return isinstance(doc, dict) and "known" in doc and "cases" not in doc


def load_file(path: Path, *, unreadable_ok: bool = False) -> list[Entry]:
    """The entries of one ledger file; [] when it is a case file. Raises CaseErrors.

    ``unreadable_ok``: a file that cannot be read or parsed gives [] (the case loader,
    which reads the same files, reports it once).
    """
    label = cases.label(path)
    try:
        doc, lines = cases.read_yaml(path, label)
    except (CaseError, CaseErrors) as exc:
        if unreadable_ok:
            return []
        raise exc if isinstance(exc, CaseErrors) else CaseErrors([exc]) from None
    if not is_ledger(doc):
        return []
    errors = cases.schema_errors(_VALIDATOR, doc, lines, label)
    if errors:
        raise CaseErrors(errors)
    entries = []
    for i, raw in enumerate(doc["known"]):
        line = cases.line_of(lines, ("known", i))
        versions: dict[str, SpecifierSet] = {}
        for package, text in raw.get("versions", {}).items():
            try:
                versions[package] = SpecifierSet(text)
            except InvalidSpecifier:
                errors.append(
                    CaseError(
                        label,
                        cases.line_of(lines, ("known", i, "versions", package)),
                        f"known[{i}].versions.{package}",
                        f"{text!r} is not a version range (write e.g. '>=3.0,<3.4')",
                    )
                )
        explanation = raw.get("explanation", "")
        option = explanation.split("=", 1)[0]
        if explanation and option not in OPTIONS:
            errors.append(
                CaseError(
                    label,
                    cases.line_of(lines, ("known", i, "explanation")),
                    f"known[{i}].explanation",
                    f"names no semantic option {option!r} (options: {', '.join(OPTIONS)})",
                )
            )
        entries.append(
            Entry(
                file=label,
                line=line,
                api=raw["api"],
                case=tuple([raw["case"]] if isinstance(raw["case"], str) else raw["case"]),
                verdict=raw["verdict"],
                reason=raw["reason"],
                link=raw["link"],
                mode=raw.get("mode", "*"),
                output=raw.get("output", "any"),
                explanation=explanation,
                versions=versions,
            )
        )
    if errors:
        raise CaseErrors(errors)
    return entries


def load_paths(paths: Iterable[str | Path], *, unreadable_ok: bool = False) -> Ledger:
    """The ledger entries among the files and directories given (case files are skipped)."""
    entries: list[Entry] = []
    errors: list[CaseError] = []
    for path in cases.find_case_files(paths):
        try:
            entries.extend(load_file(path, unreadable_ok=unreadable_ok))
        except CaseErrors as exc:
            errors.extend(exc.errors)
    if errors:
        raise CaseErrors(errors)
    return Ledger(tuple(entries))


def apply(ledger: Ledger, row: dict[str, Any], environment: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with the verdict ``known`` when an entry covers it (the measured verdict and
    reason are kept in the reason)."""
    entry = ledger.cover(row, environment)
    if entry is None:
        return row
    return {
        **row,
        "verdict": "known",
        "ledger": f"{entry.where} {entry.link}",
        "reason": f"known ({entry.link}): {entry.reason}; measured {_text(row['verdict'])}: "
        f"{row.get('reason') or ''}",
    }


def _text(verdict: Any) -> str:
    return str(getattr(verdict, "value", verdict))

"""Migration advice: if a loss call moves from framework A to framework B, what changes?

For every entry of A (``torch.nn.functional.cross_entropy``), the entries of B that compute
the same loss (same canonical loss name), the parameters each takes, and per case group (a
case of ``cases/``, all its reductions and dtypes): whether B **agrees** with A, **differs**
(by how much, and the rule that explains it, with what to write instead where a rule has a
known remedy), or **cannot** express it (B has no parameter for it, or no kernel for the
dtype). The comparison goes through the oracle: both rows of a case were judged against the
same canonical value, so two rows agree when they have the same behaviour (both canonical,
both the same documented variant, both raising where the case expects an error), and the size
of a difference is B's error against canonical where A is canonical. Only eager rows are
used: porting is about the call; compiled-mode differences are in the report's findings.

Built from a run's saved rows (which must hold both frameworks) and the adapters' entry
lists (imported without the frameworks), so it can be regenerated like the report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from conformance import adapters
from conformance.report._html import template
from conformance.report._tables import FAILING_VALUES, fmt, is_missing
from conformance.report.findings import split_options
from conformance.report.formats import number
from conformance.results import Verdict

ALIASES = {
    "torch": "torch",
    "pytorch": "torch",
    "tensorflow": "tensorflow",
    "tf": "tensorflow",
    "keras": "tensorflow",
    "jax": "jax",
    "optax": "jax",
    "paddle": "paddle",
    "paddlepaddle": "paddle",
    "onnxruntime": "onnxruntime",
    "ort": "onnxruntime",
}
_LABELS = {
    "torch": "PyTorch",
    "tensorflow": "TensorFlow/Keras",
    "jax": "JAX/optax",
    "paddle": "PaddlePaddle",
    "onnxruntime": "ONNX Runtime",
}
MODE = "eager"
AGREES, DIFFERS, CANNOT, NOT_RUN = "agrees", "differs", "cannot", "not run"

# What to write in B to get the canonical numbers, for the definitions where one call
# (reduction='none' or 'sum' plus your own division, a cast, ...) restores them.
REMEDIES: dict[str, str] = {
    "index_mean=count": "use reduction='sum' (or 'none' and sum) and divide by the sum of "
    "the target-class weights of the non-ignored targets",
    "index_mean=elements": "use reduction='sum' and divide by the sum of the target-class "
    "weights of the non-ignored targets (not by the number of elements)",
    "index_mean=batch": "use reduction='sum' and divide by the sum of the applied weights",
    "probs_mean=weights": "use reduction='sum' and divide by the number of elements",
    "probs_mean=batch": "use reduction='sum' and divide by the number of elements",
    "empty_mean=zero": "check for an all-ignored (or zero-weight) batch yourself: the "
    "canonical mean is NaN there, this API returns 0",
    "none_shape=keepdim": "squeeze the class axis of the reduction='none' output",
    "precision=float32": "expect float32 accuracy: cast the inputs to float32 in the source "
    "framework too when comparing, or keep float64 work elsewhere",
    "axis_mean=last": "the loss is averaged over the last axis first: pass the per-element "
    "loss through your own reduction, or reshape so the last axis has size 1",
    "pos_weight_axis=last": "put the classes on the last axis (channels-last) before the "
    "call, or broadcast pos_weight to the input's shape",
    "smoothing_mass=others": "rescale the smoothing: eps' = eps * C / (C - 1)",
    "logit_clip=64": "only matters for logit gaps beyond 64: clip them yourself in the "
    "source framework to compare",
}


@dataclass
class Variant:
    """One case variant's verdicts in A and B (eager, loss and grad together)."""

    case_id: str
    status: str
    what: str  # one line: what changes and why
    a_call: str
    b_call: str
    b_rel_err: float = math.nan
    remedy: str = ""
    link: str = ""


@dataclass
class Group:
    """A case of the case files: its variants summarised, for one B entry."""

    api: str  # the B entry
    base_id: str
    where: str
    status: str  # the worst of its variants: differs > cannot > not run > agrees
    variants: list[Variant]
    lines: list[Line] = field(default_factory=list)


@dataclass
class Target:
    """One entry of B that computes A's loss, and how it fares case by case."""

    api: str
    params: list[str]
    reductions: list[str]
    missing_params: list[str]  # parameters A takes and B does not
    groups: list[Group]

    def count(self, status: str) -> int:
        return sum(g.status == status for g in self.groups)


@dataclass
class Source:
    """One entry of A."""

    api: str
    loss: str
    params: list[str]
    reductions: list[str]
    targets: list[Target]  # best first (most groups agreeing)
    note: str = ""
    # Per case group, the B entry to use: the one that agrees, else differs, else not run
    # (then the same form as A's, class or function; then the name).
    plan: list[Group] = field(default_factory=list)


@dataclass
class Migration:
    source: str
    target: str
    run_dir: str
    entries: list[Source]
    notes: list[str]

    def counts(self) -> dict[str, int]:
        out = {AGREES: 0, DIFFERS: 0, CANNOT: 0, NOT_RUN: 0}
        for entry in self.entries:
            for g in entry.plan:
                out[g.status] += 1
        return out


def canonical_framework(name: str) -> str | None:
    """The framework ``name`` means: an alias above, or any runtime an adapter is
    registered for (``conformance.adapters.MODULES``: a plugin's name)."""
    key = name.strip().lower()
    return ALIASES.get(key) or (key if key in adapters.MODULES else None)


def label(framework: str) -> str:
    return _LABELS.get(framework, framework)


def _text(value: Any) -> str:
    return "" if is_missing(value) else str(value)


def _behaviour(row: Mapping[str, Any]) -> tuple[str, ...]:
    """What a row did, comparable across frameworks."""
    verdict = row["verdict"]
    if verdict == Verdict.PASS.value:
        return ("canonical",)
    if verdict == Verdict.EXPECTED_ERROR.value:
        return ("raises",)
    if verdict in (Verdict.SEMANTIC_DIFFERENCE.value, Verdict.MISMATCH.value) and _text(
        row["explanation"]
    ):
        options, _ = split_options(_text(row["explanation"]))
        return ("variant", *sorted(name for name, _ in options))
    if verdict == Verdict.KNOWN.value:
        return ("known", _text(row["ledger"]).split(" ", 1)[0])
    return (str(verdict),)


def _first_sentence(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    cut = line.find(". ")
    line = line[: cut + 1] if 0 < cut < limit else line
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _describe(row: Mapping[str, Any], *, plural: bool = False) -> str:
    behaviour = _behaviour(row)
    if behaviour[0] == "canonical":
        return ("compute" if plural else "computes") + " the canonical definition"
    if behaviour[0] == "raises":
        return ("raise" if plural else "raises") + ", as the case expects"
    if behaviour[0] == "variant":
        return ("compute " if plural else "computes ") + _text(row["explanation"])
    if behaviour[0] == "known":
        reason = _text(row["reason"])
        reason = reason.split("): ", 1)[1] if "): " in reason else reason
        known = reason.split("; measured ", 1)[0]
        return ("have" if plural else "has") + " a known defect: " + known
    if row["verdict"] == Verdict.ERROR.value:
        return ("raise: " if plural else "raises: ") + _first_sentence(_text(row["reason"]))
    if row["verdict"] == Verdict.NO_ERROR.value:
        return "returns a value where an error is expected"
    return f"{row['verdict']}: {_text(row['reason'])[:200]}"


def _link(row: Mapping[str, Any]) -> str:
    for column in ("ledger", "reason"):
        for word in _text(row[column]).replace("[", " ").replace("]", " ").split():
            if word.startswith("http"):
                return word.rstrip(";,)")
    return ""


def _variant(case_id: str, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> Variant:
    """Judge one case variant from A's and B's rows (loss and grad)."""
    a_call = next((_text(r["call"]) for r in a if _text(r["call"])), "")
    b_call = next((_text(r["call"]) for r in b if _text(r["call"])), "")
    a_verdicts = {r["verdict"] for r in a}
    unable = {Verdict.UNSUPPORTED.value, Verdict.NOT_IMPLEMENTED.value}
    # Outputs B never computes (an inference runtime's gradient) while it computes others:
    # judged on the others, and said. If B can compute none, the loss row's reason is why.
    b_unable = sorted((r for r in b if r["verdict"] in unable), key=lambda r: r["output"] != "loss")
    if b_unable and len(b_unable) == len(b):
        why = _first_sentence(_text(b_unable[0]["reason"]))
        return Variant(case_id, CANNOT, why, a_call, b_call)
    without = "".join(
        f" | {r['output']}: B cannot ({_first_sentence(_text(r['reason']))})" for r in b_unable
    )
    b = [r for r in b if r["verdict"] not in unable]
    b_verdicts = {r["verdict"] for r in b}
    if Verdict.SKIPPED.value in a_verdicts | b_verdicts or a_verdicts & unable:
        side, row = next(
            (side, r)
            for side, rows in (("A", a), ("B", b))
            for r in rows
            if r["verdict"] in unable | {Verdict.SKIPPED.value}
        )
        why = f"{side} {row['verdict']}: {_first_sentence(_text(row['reason']))}"
        return Variant(case_id, NOT_RUN, why, a_call, b_call)
    by_output_a = {r["output"]: r for r in a}
    by_output_b = {r["output"]: r for r in b}
    changes: dict[str, list[str]] = {}  # what changes -> the outputs it changes
    remedy, link, rel = "", "", math.nan
    for output in sorted(set(by_output_a) & set(by_output_b)):
        ra, rb = by_output_a[output], by_output_b[output]
        if _behaviour(ra) == _behaviour(rb):
            continue
        changes.setdefault(f"A {_describe(ra)}; B {_describe(rb)}", []).append(output)
        if _behaviour(ra)[0] == "canonical":
            err = number(rb["max_rel_err"])
            if not math.isnan(err):
                rel = err if math.isnan(rel) else max(rel, err)
        if _behaviour(rb)[0] == "variant" and not remedy:
            options, _ = split_options(_text(rb["explanation"]))
            remedy = "; ".join(REMEDIES[n] for n, _ in options if n in REMEDIES)
        link = link or _link(rb) or _link(ra)
    if not changes:
        same = [_describe(by_output_b[o], plural=True) for o in sorted(by_output_b)]
        what = ("both " + same[0] if same else "") + without
        return Variant(case_id, AGREES, what, a_call, b_call)
    what = " | ".join(f"{' and '.join(outputs)}: {text}" for text, outputs in changes.items())
    return Variant(case_id, DIFFERS, what + without, a_call, b_call, rel, remedy, link)


def variant_label(case_id: str) -> str:
    """``reduction=mean,dtype=float32`` of ``ce-x[reduction=mean,dtype=float32]``."""
    return case_id[case_id.index("[") + 1 : -1] if case_id.endswith("]") and "[" in case_id else ""


# How a case group's status follows from its variants' (the first present wins): a
# difference matters most; then agreement (the variants B cannot express are listed too).
_ORDER = {DIFFERS: 3, AGREES: 2, CANNOT: 1, NOT_RUN: 0}


@dataclass
class Line:
    """Variants of one case group with the same status and the same change."""

    status: str
    what: str
    variants: list[Variant]

    @property
    def rel_err(self) -> float:
        errs = [v.b_rel_err for v in self.variants if not math.isnan(v.b_rel_err)]
        return max(errs) if errs else math.nan

    @property
    def remedy(self) -> str:
        return next((v.remedy for v in self.variants if v.remedy), "")

    @property
    def link(self) -> str:
        return next((v.link for v in self.variants if v.link), "")

    @property
    def example(self) -> Variant:
        return next((v for v in self.variants if v.b_call), self.variants[0])

    def scope(self, total: int) -> str:
        if len(self.variants) == total:
            return ""
        labels = [variant_label(v.case_id) for v in self.variants]
        if len(labels) <= 3 and all(labels):
            return "; ".join(labels)
        return f"{len(labels)} of {total} variants"


def _merit(g: Group) -> tuple[int, int, int]:
    count = {status: sum(v.status == status for v in g.variants) for status in _ORDER}
    return (-count[AGREES], count[DIFFERS], count[CANNOT])


def _group(api: str, base_id: str, where: str, variants: list[Variant]) -> Group:
    status = max((v.status for v in variants), key=lambda s: _ORDER[s])
    lines: dict[tuple[str, str], list[Variant]] = {}
    for v in variants:
        lines.setdefault((v.status, v.what), []).append(v)
    ordered = sorted(lines.items(), key=lambda kv: -_ORDER[kv[0][0]])
    return Group(api, base_id, where, status, variants, [Line(s, w, vs) for (s, w), vs in ordered])


def _is_class(api: str) -> bool:
    last = api.split("(", 1)[0].split("[", 1)[0].rsplit(".", 1)[-1]
    return last[:1].isupper()


def _entries(framework: str) -> list[Any]:
    from conformance import adapters

    return list(adapters.load(framework).ENTRIES)


def migrate(
    frame: pd.DataFrame,
    source: str,
    target: str,
    *,
    run_dir: str = "",
    source_entries: Sequence[Any] | None = None,
    target_entries: Sequence[Any] | None = None,
) -> Migration:
    """Advice for moving every entry of ``source`` to ``target`` (framework names), from the
    rows of a run that holds both (``frame``: :func:`conformance.results.load`)."""
    a_entries = list(source_entries) if source_entries is not None else _entries(source)
    b_entries = list(target_entries) if target_entries is not None else _entries(target)
    notes: list[str] = []
    eager = frame[frame["mode"] == MODE]
    columns = ["case_id", "base_id", "file", "line", "api", "output", "verdict", "reason",
               "explanation", "ledger", "call", "max_rel_err"]  # fmt: skip
    by_api: dict[str, list[dict[str, Any]]] = {}
    for record in eager[columns].to_dict("records"):
        by_api.setdefault(_text(record["api"]), []).append(record)
    for name, entries in ((source, a_entries), (target, b_entries)):
        if not any(e.api in by_api for e in entries):
            notes.append(f"The run has no {MODE} rows of {name}: run it with --framework {name}.")
    out = []
    for a in a_entries:
        a_rows = by_api.get(a.api, [])
        candidates = [b for b in b_entries if b.loss == a.loss]
        source_entry = Source(a.api, a.loss, sorted(a.params), sorted(a.reductions), [])
        if not candidates:
            source_entry.note = f"{label(target)} has no entry for {a.loss}."
        if not a_rows:
            source_entry.note = source_entry.note or f"No {MODE} rows of {a.api} in the run."
        for b in candidates:
            b_rows: dict[str, list[dict[str, Any]]] = {}
            for r in by_api.get(b.api, []):
                b_rows.setdefault(r["case_id"], []).append(r)
            cases: dict[str, list[dict[str, Any]]] = {}
            for r in a_rows:
                cases.setdefault(r["case_id"], []).append(r)
            groups: dict[str, tuple[str, list[Variant]]] = {}
            for case_id, rows in cases.items():
                first = rows[0]
                where = f"{_text(first['file'])}:{fmt(first['line'], 'int')}"
                variant = _variant(case_id, rows, b_rows.get(case_id, []))
                if not b_rows.get(case_id):
                    variant = Variant(case_id, NOT_RUN, f"no {MODE} row of {b.api}",
                                      variant.a_call, "")  # fmt: skip
                groups.setdefault(_text(first["base_id"]), (where, []))[1].append(variant)
            source_entry.targets.append(
                Target(
                    b.api,
                    sorted(b.params),
                    sorted(b.reductions),
                    sorted(set(a.params) - set(b.params)),
                    [_group(b.api, base, w, vs) for base, (w, vs) in sorted(groups.items())],
                )
            )
        # Best first: most agreeing groups, fewest others, then the same form as A's
        # (class or function), then by name.
        source_entry.targets.sort(
            key=lambda t: (
                -t.count(AGREES),
                t.count(DIFFERS) + t.count(CANNOT),
                _is_class(t.api) != _is_class(a.api),
                t.api,
            )
        )
        # Per case group, the B entry with the most agreeing variants, then the fewest
        # differing, then the fewest it cannot express (entries already best first).
        best: dict[str, Group] = {}
        for t in source_entry.targets:
            for g in t.groups:
                held = best.get(g.base_id)
                if held is None or _merit(g) < _merit(held):
                    best[g.base_id] = g
        source_entry.plan = [best[k] for k in sorted(best)]
        out.append(source_entry)
    return Migration(source, target, run_dir, out, notes)


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(m: Migration, *, only: Iterable[str] = ()) -> str:
    """The advice as Markdown; ``only`` limits it to those A entries (all when empty)."""
    wanted = set(only)
    a, b = label(m.source), label(m.target)
    counts = m.counts()
    lines = [
        f"# Migrating {a} → {b}",
        "",
        f"From the rows of `{_md(m.run_dir)}` ({MODE} mode). Per case group: **agrees** "
        f"({b} computes what {a} computes), **differs** (what changes, by how much, and the "
        f"rule), **cannot** ({b} cannot express it), each with the {b} entry to use.",
        "",
        f"With the best {b} entry per case group: {counts[AGREES]} agree, "
        f"{counts[DIFFERS]} differ, {counts[CANNOT]} cannot be expressed, "
        f"{counts[NOT_RUN]} not run.",
    ]
    lines += [f"\n> {note}" for note in m.notes]
    for entry in m.entries:
        if wanted and entry.api not in wanted:
            continue
        lines += ["", f"## `{entry.api}` ({entry.loss})", ""]
        lines.append(
            f"Takes {', '.join(entry.params) or 'no loss parameters'}; reductions "
            f"{', '.join(entry.reductions)}. {label(m.target)} entries of the same loss:"
        )
        if entry.note:
            lines += ["", entry.note]
        lines.append("")
        for t in entry.targets:
            lines.append(
                f"- `{t.api}`: {t.count(AGREES)} agree, {t.count(DIFFERS)} differ, "
                f"{t.count(CANNOT)} cannot, {t.count(NOT_RUN)} not run; takes "
                f"{', '.join(t.params) or 'no loss parameters'}"
                + (f"; **cannot take** {', '.join(t.missing_params)}" if t.missing_params else "")
            )
        if not entry.plan:
            continue
        lines += [
            "",
            "| case | use | status | what changes | write instead |",
            "|---|---|---|---|---|",
        ]
        for g in entry.plan:
            for line in g.lines:
                scope = line.scope(len(g.variants))
                what = _md(line.what)
                if not math.isnan(line.rel_err):
                    what += f" (B differs by up to {fmt(line.rel_err)} relative)"
                if line.link:
                    what += f" [source]({line.link})"
                ex = line.example
                calls = f"`{_md(ex.b_call)}`" if ex.b_call else ""
                lines.append(
                    f"| `{_md(g.base_id)}` ({_md(g.where)}{'; ' + _md(scope) if scope else ''})"
                    f" | `{_md(g.api)}` | {line.status} | {what} | {_md(line.remedy) or calls} |"
                )
    return "\n".join(lines) + "\n"


def html(m: Migration) -> str:
    """The advice as one self-contained HTML page."""
    return template("migrate.html.j2").render(
        m=m,
        a=label(m.source),
        b=label(m.target),
        counts=m.counts(),
        failing=sorted(FAILING_VALUES),
    )

"""``conformance fuzz``: search for failing cases that no catalogue lists.

Hypothesis draws case dicts in the very structure a user writes in a case file (id, loss,
dtype, input, target, params). Each one is written to a YAML file and loaded by the real
loader (``cases.load_file``), so every case tried is valid by construction and a saved
finding is a case file like any other. Every case runs through every framework; each
framework has its own long-lived :class:`~conformance.runner.Session` (one worker that stays
up for the whole search), so that shrinking can run the one framework that fails.

The property is "no row fails unexplained": no row whose verdict is failing (mismatch,
error, no-error, crashed, timeout) once the entry's declared profile and the ledger have
been applied. Failing rows are grouped by :class:`Signature` (API, verdict, and the
semantic option that reproduces the row or else the gist of its reason), so one defect is
saved once, not once per example that shows it.

The search goes in rounds. A round generates cases until one shows a signature not saved
yet; hypothesis then shrinks that case, keeping only candidates that still show the same
signature. The minimal case is saved as ``found-<n>.yaml`` and run again from that file;
the failing rows of that run and a repro snippet are written above the case as comments,
and the signatures of the same framework that the minimal case also shows count as found
with it. The next round starts from a fresh seed derived from ``seed``. The budget bounds
the search's wall time: it is checked before each example, so the search ends at most one
example (at most the call timeout) late. Signatures that were seen but whose turn to be
shrunk never came are saved at the end as the smallest example seen, marked not shrunk.

This module never imports a framework; frameworks live in the Session's workers.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import math
import random
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Flaky, Unsatisfiable

from conformance import cases, oracle, schema
from conformance.ledger import Ledger
from conformance.results import FAILING
from conformance.runner import FRAMEWORKS, Session

__all__ = [
    "FUZZ_FILE",
    "Finding",
    "Fuzzer",
    "Signature",
    "case_dicts",
    "default_out_dir",
    "fuzz",
    "prepare_out_dir",
    "signatures",
    "to_yaml",
]

FUZZ_FILE = "fuzz.json"
MAX_FINDINGS = 20  # saved files per run: a flood of signatures is one problem, not fifty
FAILING_VERDICTS = frozenset(v.value for v in FAILING)
LITERAL_MAX = 64  # inputs up to this many elements are sometimes literal values

Rows = list[dict[str, Any]]

# ---------------------------------------------------------------- what is drawn
# Each list starts with its plainest value: hypothesis shrinks a choice towards the first one.
_DTYPES = ("float32", "float64", "float16")
_TAME_DTYPES = ("float32", "float64")
_SCALES = (1.0, 3.0, 0.1, 10.0, 0.001, 100.0, 1000.0, 10000.0)
_TAME_SCALES = (1.0, 3.0, 0.1, 10.0)
_OFFSETS = (1.0, -10.0, 100.0, -1000.0, 10000.0)
_INF = math.inf
_PALETTE = (0.0, 1.0, -1.0, 0.5, 3.0, -3.0, 20.0, -20.0, 100.0, -100.0, 1e4, -1e4)
_SPECIAL = (_INF, -_INF, math.nan)  # extremes only: literal infinities and NaN
_WEIGHTS = (1.0, 0.0, 0.5, 2.0, 0.1, 10.0)
_SHARES = (0.5, 1.0, 0.25, 0.1, 0.9)
_SMOOTHING = (0.1, 0.5, 1.0, 0.01, 0.9)
_TARGET_SCALES = (3.0, 10.0, 100.0, 1000.0)
_REDUCTIONS = ("mean", "sum", "none")
# Per-loss scalars: focal loss' alpha (None: no balancing) and gamma, Huber's delta, smooth
# L1's beta (0 is L1).
_SCALARS: dict[str, tuple[Any, ...]] = {
    "alpha": (None, 0.25, 0.5, 0.75, 1.0, 0.0),
    "gamma": (2.0, 0.0, 0.5, 1.0, 5.0),
    "delta": (1.0, 0.5, 2.0, 0.001, 100.0),
    "beta": (1.0, 0.0, 0.5, 2.0, 0.001),
}
assert set(_REDUCTIONS) == set(schema.REDUCTIONS)


def _chance(draw: st.DrawFn, yes: int, no: int) -> bool:
    """True with probability yes/(yes+no) while generating; shrinks to False."""
    return bool(draw(st.sampled_from([False] * no + [True] * yes)))


def _rounded(x: float) -> float:
    return float(f"{x:.3g}")


def _decimals(x: float) -> float:
    return round(x, 2)


def _log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(math.log10(low), math.log10(high)).map(lambda e: _rounded(10.0**e))


def case_dicts(
    loss: str | None = None, *, extremes: bool = True
) -> st.SearchStrategy[dict[str, Any]]:
    """Case dicts for ``loss`` (default: any loss a case file may name), in case-file
    structure (no ``matrix``; one dtype), with the parameters and target kinds the loss takes.

    Shapes (N, C, d1, ..., dk): N 1..4, C 1..8 and sometimes up to 40, 0..3 spatial
    dimensions of size 1..4. Inputs are seeded normal or uniform logits with a scale from
    1e-3 to 1e4 and an offset, or, for small inputs, literal values. Building blocks (softmax,
    ...) have no target and no parameters. Targets are class
    indices (with a share of ignored positions and an ignore_index of -100, 255, -1 or a
    valid class), probabilities, 0/1 or soft binary targets, or real (regression) targets with
    a scale and an offset. Class weights include zeros; label smoothing 0..1; focal alpha and
    gamma, Huber delta and smooth-L1 beta (0 included) from short lists.
    ``extremes=False`` keeps to float32/float64, scales 0.1..10, no offsets and finite
    literals (for tests that must not meet overflow).
    """
    losses = [loss] if loss else [name for name in schema.LOSSES if name in oracle.LOSSES]
    dtypes = _DTYPES if extremes else _TAME_DTYPES
    scales = _SCALES if extremes else _TAME_SCALES

    @st.composite
    def draw_case(draw: st.DrawFn) -> dict[str, Any]:
        name = draw(st.sampled_from(losses))
        spec = oracle.LOSSES[name]
        n = draw(st.integers(1, 4))
        c = draw(st.integers(1, 8) | st.integers(9, 40))
        shape = [n, c, *draw(st.lists(st.integers(1, 4), max_size=3))]
        raw: dict[str, Any] = {"id": "fuzz", "loss": name, "dtype": draw(st.sampled_from(dtypes))}
        raw["input"] = _draw_input(draw, shape, scales, extremes)
        kind = draw(st.sampled_from(spec.target_kinds))
        if kind == "none":  # a building block: no target, no parameters, no reduction
            return raw
        target: dict[str, Any] = {"kind": kind}
        params: dict[str, Any] = {}
        if kind == "index" and "ignore_index" in spec.params and _chance(draw, 1, 1):
            share = draw(st.sampled_from(_SHARES) | st.floats(0.0, 1.0).map(_decimals))
            if share > 0:
                target["ignore_share"] = share
            choice = draw(st.sampled_from(("default", 255, -1, "class", -100)))
            if choice == "class":
                choice = draw(st.integers(0, c - 1))
            if choice != "default":
                params["ignore_index"] = choice
        if kind in ("probs", "real") and _chance(draw, 1, 1):
            target["scale"] = draw(st.sampled_from(_TARGET_SCALES) | _log_uniform(0.1, 1e3))
        if kind == "real" and extremes and _chance(draw, 1, 3):
            target["offset"] = draw(st.sampled_from(_OFFSETS))
        for name, values in _SCALARS.items():
            if name in spec.params and _chance(draw, 1, 1):
                value = draw(st.sampled_from(values))
                if value is not None:
                    params[name] = value
        target["seed"] = draw(st.integers(0, 2**16))
        raw["target"] = target
        if "weight" in spec.params and _chance(draw, 1, 2):
            weight = st.sampled_from(_WEIGHTS) | st.floats(0.0, 10.0).map(_decimals)
            params["weight"] = draw(st.lists(weight, min_size=c, max_size=c))
        if "label_smoothing" in spec.params and _chance(draw, 1, 2):
            params["label_smoothing"] = draw(
                st.sampled_from(_SMOOTHING) | st.floats(0.0, 1.0).map(_decimals)
            )
        params["reduction"] = draw(st.sampled_from(_REDUCTIONS))
        raw["params"] = params
        return raw

    return draw_case()


def _draw_input(
    draw: st.DrawFn, shape: list[int], scales: Sequence[float], extremes: bool
) -> dict[str, Any]:
    size = math.prod(shape)
    if size <= LITERAL_MAX and _chance(draw, 1, 4):
        palette = _PALETTE + _SPECIAL if extremes else _PALETTE[:6]
        flat = draw(st.lists(st.sampled_from(palette), min_size=size, max_size=size))
        values: Any = np.array(flat, dtype=np.float64).reshape(shape).tolist()
        return {"values": values}
    spec: dict[str, Any] = {"shape": shape}
    low, high = min(scales), max(scales)
    scale = draw(st.sampled_from(scales) | _log_uniform(low, high))
    if scale != 1.0:
        spec["scale"] = scale
    if extremes and _chance(draw, 1, 3):
        spec["offset"] = draw(st.sampled_from(_OFFSETS) | st.floats(-1e4, 1e4).map(_decimals))
    if _chance(draw, 1, 2):
        spec["distribution"] = "uniform"
    spec["seed"] = draw(st.integers(0, 2**16))
    return spec


def to_yaml(raw: Mapping[str, Any], comments: Sequence[str] = ()) -> str:
    """A case file holding the one case ``raw``, with ``comments`` as ``#`` lines above it.

    Values are written in flow style, the way the shipped case files write them."""
    lines = [f"# {_printable(c)}".rstrip() for c in comments]
    lines.append("cases:")
    for i, (key, value) in enumerate(raw.items()):
        text = yaml.safe_dump([value], default_flow_style=True, width=10**9, sort_keys=False)
        lines.append(f"{'  - ' if i == 0 else '    '}{key}: {text.strip()[1:-1]}")
    return "\n".join(lines) + "\n"


def _printable(text: str) -> str:
    """One line of printable text (case files refuse control characters, comments too)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


# ---------------------------------------------------------------- failure signatures

_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?!\w)")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_PATTERN = re.compile(r"expected ([^\s,;]+), got ([^\s,;]+)")
GIST_WORDS = 8


@dataclass(frozen=True, order=True)
class Signature:
    """What groups failing rows into one finding: one defect is saved once."""

    framework: str
    api: str
    verdict: str
    gist: str
    mode: str = "eager"

    def __str__(self) -> str:
        mode = "" if self.mode == "eager" else f" [{self.mode}]"
        return f"{self.api}{mode} {self.verdict}: {self.gist}"


def gist(row: Mapping[str, Any]) -> str:
    """The diagnosis when one exists, else the first words of the reason with numbers and
    bracketed shapes blanked (so "Target 3" and "Target 7" are one defect); a NaN/Inf
    pattern difference keeps which classes differ (finite vs NaN is not NaN vs finite)."""
    if row.get("explanation"):
        return f"matches {row['explanation']}".split(" (", 1)[0]
    reason = str(row.get("reason") or "")
    head = re.split(r"[;\n]", reason, maxsplit=1)[0]
    text = " ".join(_NUMBER.sub("#", _BRACKETS.sub("[…]", head)).split()[:GIST_WORDS])
    pattern = _PATTERN.search(reason)
    if "NaN/Inf pattern" in head and pattern:
        want, got = (v if v in ("NaN", "+Inf", "-Inf") else "finite" for v in pattern.groups())
        text += f" (expected {want}, got {got})"
    return text


def signatures(rows: Sequence[Mapping[str, Any]]) -> dict[Signature, Rows]:
    """The failing rows of one case (verdict still failing after profiles and ledger),
    grouped by signature."""
    out: dict[Signature, Rows] = {}
    for row in rows:
        verdict = str(row.get("verdict"))
        if verdict not in FAILING_VERDICTS:
            continue
        mode = str(row.get("mode") or "eager")
        sig = Signature(str(row["framework"]), str(row["api"]), verdict, gist(row), mode)
        out.setdefault(sig, []).append(dict(row))
    return out


# ---------------------------------------------------------------- the search


@dataclass
class Finding:
    """One saved signature: its minimal case, where it is saved, and its rows."""

    number: int
    signature: Signature
    raw: dict[str, Any]
    shrunk: bool
    found_after: int  # examples run when the signature was first seen
    shrink_examples: int = 0
    also: list[Signature] = field(default_factory=list)
    file: str = ""
    reproduced: bool = True
    note: str = ""
    rows: Rows = field(default_factory=list)
    resembles: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the terminal."""
        shape = self.raw["input"].get("shape") or list(np.shape(self.raw["input"]["values"]))
        how = (
            f"shrunk to shape {shape} in {self.shrink_examples} example(s)"
            if self.shrunk
            else f"not shrunk, shape {shape}"
        )
        also = f"; also {len(self.also)} more signature(s)" if self.also else ""
        known = f"; resembles ledger entry {self.resembles[0]}" if self.resembles else ""
        again = "" if self.reproduced else "; did NOT reproduce when re-run from the file"
        return f"{self.file}: {self.signature} ({how}{also}{known}{again})"

    def summary(self) -> dict[str, Any]:
        sig = self.signature
        return {
            "file": self.file,
            "signature": str(sig),
            "framework": sig.framework,
            "api": sig.api,
            "verdict": sig.verdict,
            "gist": sig.gist,
            "mode": sig.mode,
            "also": [str(s) for s in self.also],
            "shrunk": self.shrunk,
            "reproduced": self.reproduced,
            "found_after": self.found_after,
            "shrink_examples": self.shrink_examples,
            "note": self.note,
            "resembles": self.resembles,
            "rows": [
                {k: r.get(k) for k in ("api", "mode", "output", "verdict", "reason", "explanation")}
                for r in self.rows
            ],
        }


class _Unexplained(Exception):
    """Raised inside the property for the round's target signature; hypothesis shrinks it."""

    def __init__(self, signature: Signature, raw: dict[str, Any]) -> None:
        super().__init__(str(signature))
        self.signature, self.raw = signature, raw


class _Stop(BaseException):
    """Ends the search from inside the property (hypothesis lets BaseExceptions through)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass
class _Seen:
    raw: dict[str, Any]
    first: int  # examples run when first seen


def _size(raw: Mapping[str, Any]) -> tuple[int, ...]:
    """Smaller is simpler: elements, classes, dimensions, parameters, then text length."""
    inp = raw["input"]
    shape = inp.get("shape") or list(np.shape(inp["values"]))
    return (math.prod(shape), shape[1], len(shape), len(raw.get("params", {})), len(to_yaml(raw)))


def _settings() -> settings:
    return settings(
        max_examples=10**6,  # rounds end on a finding or on the budget, not on a count
        database=None,
        deadline=None,
        phases=(Phase.generate, Phase.shrink),
        report_multiple_bugs=False,  # one target per round: shrink it as soon as it appears
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        derandomize=False,
    )


class Fuzzer:
    """The search and the saving, given a function that judges one case into rows.

    ``rows_for(case)`` runs every framework; ``rows_on(case, framework)``, when given, runs
    one, and shrinking uses it (only the target's framework can keep the target failing).
    In a real run they are backed by the workers (:func:`fuzz`); tests give plain functions.
    ``run`` returns the summary that is also written to ``out_dir/fuzz.json``.
    """

    def __init__(
        self,
        rows_for: Callable[[cases.Case], Rows],
        out_dir: Path,
        *,
        budget: float,
        rows_on: Callable[[cases.Case, str], Rows] | None = None,
        seed: int = 0,
        strategy: st.SearchStrategy[dict[str, Any]] | None = None,
        max_findings: int = MAX_FINDINGS,
        stop: threading.Event | None = None,
        ledger: Ledger | None = None,
        frameworks: Sequence[str] = (),
        environment: Mapping[str, Any] | None = None,
        on_finding: Callable[[Finding], None] | None = None,
    ) -> None:
        self.rows_for, self.rows_on, self.out_dir = rows_for, rows_on, Path(out_dir)
        self.budget, self.seed, self.max_findings = budget, seed, max_findings
        self.strategy = strategy if strategy is not None else case_dicts()
        self.stop = stop or threading.Event()
        self.ledger = ledger or Ledger()
        self.frameworks = list(frameworks)
        self.environment = dict(environment or {})
        self.on_finding = on_finding
        self.examples = self.shrink_examples = self.rejected = self.rounds = 0
        self.seen: dict[Signature, _Seen] = {}
        self.done: set[Signature] = set()
        self.findings: list[Finding] = []
        self.stopped = ""
        self.started = datetime.now(timezone.utc)
        self.seconds = 0.0
        self._target: Signature | None = None
        self._target_shrink_start = 0
        self._deadline = 0.0
        self._scratch = Path()

    # -- the property

    def _check(self, raw: dict[str, Any]) -> None:
        if self.stop.is_set():
            raise _Stop("interrupted")
        if time.monotonic() >= self._deadline:
            raise _Stop("budget")
        try:
            self._scratch.write_text(to_yaml(raw), encoding="utf-8")
            (case,) = cases.load_file(self._scratch)
        except cases.CaseErrors:  # a strategy bug; counted in fuzz.json, never run
            self.rejected += 1
            assume(False)
            return
        if self._target is not None and self.rows_on is not None:  # shrinking: one framework
            rows = self.rows_on(case, self._target.framework)
        else:
            rows = self.rows_for(case)
        self.examples += 1
        if self._target is not None:
            self.shrink_examples += 1
        found = signatures(rows)
        for sig in found:
            self._remember(sig, raw)
        if self._target is None:
            new = sorted(s for s in found if s not in self.done)
            if new:
                self._target, self._target_shrink_start = new[0], self.shrink_examples
        if self._target is not None and self._target in found:
            # One raise site: hypothesis tells failures apart by where they are raised.
            raise _Unexplained(self._target, raw)

    def _remember(self, sig: Signature, raw: dict[str, Any]) -> None:
        seen = self.seen.get(sig)
        if seen is None:
            self.seen[sig] = _Seen(copy.deepcopy(raw), self.examples)
        elif _size(raw) < _size(seen.raw):
            seen.raw = copy.deepcopy(raw)

    # -- rounds

    def run(self) -> dict[str, Any]:
        clock = time.monotonic()
        self._deadline = clock + self.budget
        rng = random.Random(self.seed)
        with tempfile.TemporaryDirectory(prefix="conformance-fuzz-") as tmp:
            self._scratch = Path(tmp) / "fuzz.yaml"
            try:
                while len(self.findings) < self.max_findings:
                    self._round(rng.getrandbits(64))
                else:
                    self.stopped = "max-findings"
            except _Stop as exc:
                self.stopped = exc.why
            except KeyboardInterrupt:  # a Python caller's Ctrl-C: keep what was found
                self.stopped = "interrupted"
                self.stop.set()
            except Unsatisfiable:
                self.stopped = "the strategy produced no valid case"
            self.seconds = round(time.monotonic() - clock, 2)
            self._save_leftovers()
        return self._write_summary()

    def _round(self, round_seed: int) -> None:
        self.rounds += 1
        self._target = None

        def no_unexplained_failure(raw: dict[str, Any]) -> None:
            self._check(raw)

        test = hypothesis_seed(round_seed)(
            _settings()(given(self.strategy)(no_unexplained_failure))
        )
        try:
            test()
        except _Unexplained as exc:  # the replay of the minimal example
            self._finish(exc.signature, exc.raw, shrunk=True)
        except Flaky:  # the minimal example stopped failing on replay: keep the smallest seen
            target = self._target
            assert target is not None
            self._finish(target, self.seen[target].raw, shrunk=True, note="flaky on replay")
        except _Stop:
            if self._target is not None:  # cut short while shrinking: save what it got to
                target = self._target
                self._finish(
                    target, self.seen[target].raw, shrunk=False, note="shrinking cut short"
                )
            raise

    def _finish(self, sig: Signature, raw: dict[str, Any], *, shrunk: bool, note: str = "") -> None:
        shrinking = self.shrink_examples - self._target_shrink_start if sig == self._target else 0
        self.done.add(sig)
        self._target = None
        finding = Finding(
            number=len(self.findings) + 1,
            signature=sig,
            raw=copy.deepcopy(raw),
            shrunk=shrunk,
            found_after=self.seen[sig].first if sig in self.seen else self.examples,
            shrink_examples=shrinking,
            note=note,
        )
        self._save(finding)
        self.findings.append(finding)
        self._write_summary()
        if self.on_finding:
            self.on_finding(finding)

    def _save_leftovers(self) -> None:
        """Signatures seen but never shrunk: attached to a saved finding whose case already
        shows them, else saved as their smallest example (bounded by max_findings)."""
        for sig in sorted(set(self.seen) - self.done):
            if sig in self.done:  # absorbed by a finding saved earlier in this loop
                continue
            raw = self.seen[sig].raw
            same = next((f for f in self.findings if _same_case(f.raw, raw)), None)
            if same is not None:
                same.also.append(sig)
                self.done.add(sig)
            elif len(self.findings) < self.max_findings:
                self._finish(sig, raw, shrunk=False, note="seen but not shrunk")

    # -- saving

    def _save(self, finding: Finding) -> None:
        n = finding.number
        path = self.out_dir / f"found-{n}.yaml"
        body = {"id": f"fuzz-{n}", **{k: v for k, v in finding.raw.items() if k != "id"}}
        path.write_text(to_yaml(body), encoding="utf-8")
        (case,) = cases.load_file(path)
        rows = self.rows_for(case)
        found = signatures(rows)
        finding.reproduced = finding.signature in found
        finding.file = str(case.file)
        for sig in sorted(found):
            if sig.framework == finding.signature.framework and sig not in self.done:
                finding.also.append(sig)
                self.done.add(sig)
        finding.rows = [r for group in found.values() for r in group]
        finding.resembles = _resembles(self.ledger, [finding.signature, *finding.also])
        comments = self._comments(finding, rows)
        # The repro names the case's line, which the comments above it move down.
        lines = len(comments)
        before, after = (f"(line {n} of the file below)" for n in (case.line, case.line + lines))
        comments = [c.replace(before, after) for c in comments]
        path.write_text(to_yaml(body, comments), encoding="utf-8")

    def _comments(self, finding: Finding, rows: Rows) -> list[str]:
        sig = finding.signature
        versions = _versions(self.environment)
        out = [
            f"Found by conformance fuzz (seed {self.seed}) on "
            f"{self.started.isoformat(timespec='seconds')}" + (f"; {versions}" if versions else ""),
            f"Signature: {sig}",
        ]
        if finding.shrunk:
            out.append(
                f"First seen after {finding.found_after} example(s); shrunk by hypothesis in "
                f"{finding.shrink_examples} more" + (f" ({finding.note})" if finding.note else "")
            )
        else:
            out.append(f"Not shrunk ({finding.note}); the smallest example seen")
        out.extend(f"Also: {s}" for s in finding.also)
        out.extend(f"Resembles ledger entry {r}" for r in finding.resembles)
        if not finding.reproduced:
            out.append("The signature did NOT reproduce when this file was run again")
        out.append("Failing rows when run from this file:")
        out.extend(
            f"  {r['api']} {r.get('mode') or 'eager'} {r['output']} {r['verdict']}: "
            f"{_cut(str(r.get('reason') or ''))}"
            for r in finding.rows
        )
        others = Counter(str(r["verdict"]) for r in rows if r not in finding.rows)
        if others:
            out.append("Other rows: " + ", ".join(f"{n} {v}" for v, n in sorted(others.items())))
        repro = next(
            (r for r in finding.rows if r.get("repro") and r["api"] == sig.api),
            next((r for r in finding.rows if r.get("repro")), None),
        )
        if repro is not None:
            out.append(f"Repro ({repro['api']}, {repro['output']}):")
            out.extend(f"  {line}" for line in str(repro["repro"]).splitlines())
        return out

    def _write_summary(self) -> dict[str, Any]:
        summary = {
            "seed": self.seed,
            "budget": self.budget,
            "frameworks": self.frameworks,
            "started": self.started.isoformat(timespec="seconds"),
            "seconds": self.seconds,
            "examples": self.examples,
            "shrink_examples": self.shrink_examples,
            "rejected": self.rejected,
            "rounds": self.rounds,
            "stopped": self.stopped,
            "signatures_seen": len(self.seen),
            "findings": [f.summary() for f in self.findings],
            # Seen, but neither saved nor shown by a saved case (beyond max_findings).
            "not_saved": [str(s) for s in sorted(set(self.seen) - self.done)],
            "environment": self.environment,
        }
        text = json.dumps(summary, indent=2, default=str, allow_nan=False)
        (self.out_dir / FUZZ_FILE).write_text(text + "\n", encoding="utf-8")
        return summary


def _same_case(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    strip = ("id", "description")
    return {k: v for k, v in a.items() if k not in strip} == {
        k: v for k, v in b.items() if k not in strip
    }


def _cut(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _versions(environment: Mapping[str, Any]) -> str:
    skip = {"device", "start_seconds", "keras_backend"}
    parts: list[str] = []
    for env in environment.values():
        if isinstance(env, Mapping):
            parts.extend(f"{k} {v}" for k, v in env.items() if k not in skip and "skip" not in k)
    return ", ".join(parts)


def _resembles(ledger: Ledger, sigs: Sequence[Signature]) -> list[str]:
    """Ledger entries that seem to describe these signatures but did not cover their rows:
    same API pattern and verdict, and the same diagnosis (named by the entry's explanation
    or in its reason) or the same error message. Usually the entry's case pattern names
    shipped case ids, which a fuzz case does not have."""
    out = []
    for e in ledger.entries:
        text = f"{e.explanation} {e.reason}"
        for sig in sigs:
            if (
                fnmatch.fnmatchcase(sig.api, e.api)
                and sig.verdict == e.verdict
                and all(phrase in text for phrase in _key_phrases(sig.gist))
            ):
                patterns: Any = e.case
                shown = patterns if isinstance(patterns, str) else ", ".join(patterns)
                out.append(f"{e.where} (case {shown}; {e.link})")
                break
    return out


def _key_phrases(gist_text: str) -> list[str]:
    """What must appear in a ledger entry for it to describe this gist: each option of a
    diagnosis ("smoothing_mass=last_axis"), or the first words of an error message without
    its exception type and category ("Illegal index value")."""
    if gist_text.startswith("matches "):
        return [o.strip() for o in gist_text.removeprefix("matches ").split(";")]
    message = re.sub(r"^\w+:\s*(\(\w+\)\s*)?", "", gist_text)
    words: list[str] = []
    for word in message.split()[:3]:
        if "#" in word:
            break
        words.append(word.strip(".,:;"))
    return [" ".join(words)] if words else [gist_text]


# ---------------------------------------------------------------- entry point


def default_out_dir(root: Path = Path("reports")) -> Path:
    """``root/fuzz-<UTC timestamp>``; a suffix keeps two runs in one second apart."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path, n = root / f"fuzz-{stamp}", 1
    while path.exists():
        n += 1
        path = root / f"fuzz-{stamp}-{n}"
    return path


def prepare_out_dir(out_dir: Path) -> str | None:
    """Create ``out_dir``; the reason it cannot hold this run's findings, or None."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if (out_dir / FUZZ_FILE).exists() or any(out_dir.glob("found-*.yaml")):
            return f"{out_dir} already holds fuzz findings; choose another --out or remove them"
        (out_dir / FUZZ_FILE).write_text("{}\n", encoding="utf-8")
    except OSError as exc:
        where = exc.filename or out_dir
        return f"cannot write the output directory {out_dir}: {where}: {exc.strerror or exc}"
    return None


class _Sessions:
    """One Session (one long-lived worker) per framework, started in parallel, so that
    shrinking can run the target's framework alone: a jax call costs ~0.5 s per new shape
    on a 2-core CPU (it compiles), a torch call 4 ms."""

    def __init__(self, frameworks: Sequence[str], out_dir: Path, **options: Any) -> None:
        self.sessions = {name: Session([name], out_dir, **options) for name in frameworks}
        self.environment: dict[str, Any] = {}
        self._pool = ThreadPoolExecutor(max(len(self.sessions), 1))
        self._entered: list[Session] = []

    def __enter__(self) -> _Sessions:
        jobs = {self._pool.submit(s.__enter__): s for s in self.sessions.values()}
        try:
            for job, session in jobs.items():
                job.result()
                self._entered.append(session)
        except BaseException:
            self.__exit__()
            raise
        for session in self._entered:
            self.environment.update(session.environment)
        return self

    def __exit__(self, *exc: object) -> None:
        for session in self._entered:
            session.__exit__(None, None, None)
        self._pool.shutdown()

    def rows(self, case: cases.Case) -> Rows:
        """Every framework, in parallel; rows in framework order."""
        parts = list(self._pool.map(lambda s: s.rows(case), self.sessions.values()))
        return [row for part in parts for row in part]

    def rows_on(self, case: cases.Case, framework: str) -> Rows:
        return self.sessions[framework].rows(case)


def fuzz(
    frameworks: Sequence[str] = FRAMEWORKS,
    out_dir: Path | None = None,
    *,
    budget: float = 300.0,
    seed: int = 0,
    ledger: Ledger | None = None,
    device: str = "cpu",
    timeout: float = 30.0,
    start_timeout: float = 300.0,
    max_findings: int = MAX_FINDINGS,
    stop: threading.Event | None = None,
    strategy: st.SearchStrategy[dict[str, Any]] | None = None,
    on_finding: Callable[[Finding], None] | None = None,
) -> dict[str, Any]:
    """Start one worker per framework, search for ``budget`` seconds (not counting the
    workers' start), save each finding in ``out_dir`` and return the summary written to
    ``out_dir/fuzz.json``. ``timeout`` bounds one call (the cases are small: a call that
    takes longer is hung). Setting ``stop`` ends the search after the example in flight."""
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    stop = stop or threading.Event()
    with _Sessions(
        frameworks,
        out_dir,
        device=device,
        timeout=timeout,
        start_timeout=start_timeout,
        stop=stop,
        ledger=ledger,
    ) as sessions:
        fuzzer = Fuzzer(
            sessions.rows,
            out_dir,
            rows_on=sessions.rows_on,
            budget=budget,
            seed=seed,
            strategy=strategy,
            max_findings=max_findings,
            stop=stop,
            ledger=ledger,
            frameworks=frameworks,
            environment=sessions.environment,
            on_finding=on_finding,
        )
        return fuzzer.run()

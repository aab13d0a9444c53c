"""Sharding, merging and resuming runs.

**Sharding.** ``conformance run --shard I/N`` runs the I-th of N slices of the selected cases
(after ``--cases``, ``-k`` and ``--max-elements``). Each case's cost is estimated before
anything runs as ``calls × (elements + CALL_ELEMENTS)``: ``calls`` is the number of
(entry, mode) pairs it will be called with on the selected frameworks (:func:`runner.calls`,
unsupported pairs included), ``elements`` the size of its input, and ``CALL_ELEMENTS`` the
fixed cost of one call (round trip, oracle share, comparison, compilation) in elements.
Cases go, largest first (equal costs by case id), to the shard with the least cost so far
(equal loads: the lowest number), so the slices depend only on the case set, N, the
frameworks and the modes; within a shard the cases keep their order.

**run.json.** At its start every ``conformance run`` writes ``run.json`` into its run
directory: the selection it runs (``cases`` and ``ledger`` paths, ``keyword`` (``-k``),
``max_elements``, ``frameworks``, ``modes``, ``device``, ``shard`` as ``"I/N"`` or null).
``--resume`` reuses it, and ``conformance merge`` checks that the shards agree on it.

**Merging.** ``conformance merge RUN_DIR... --out DIR`` writes the rows of all shards into
one ``results.jsonl`` (each line as saved, sorted by case file, line, case id, framework,
API, device, dtype, mode and output), with an environment built from the shards'
``summary.json``. It refuses directories that are not finished run directories and shards
that hold the same row (case, API, device, dtype, mode, output). Without ``--force`` it
also refuses an incomplete or inconsistent set: a shard number missing or given twice,
shards of different N or selections, different versions of Python, NumPy or a framework
(or other device names), a shard that was interrupted or has unreadable lines.

**Resuming.** ``conformance run --resume RUN_DIR`` truncates ``results.jsonl`` to its last
complete line, drops the rows of a call whose outputs are not all there (rewriting the
file), and runs every (case, entry, mode) call that has no rows yet, appending to the file.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from conformance import adapters, results, runner
from conformance.cases import Case

RUN_FILE = "run.json"
# One call's fixed cost in input elements. A least-squares fit to the per-call seconds of
# the shipped cases' default run (2-core CPU) gives 26 ms per call plus 4.3 ns per element
# and call; with 2**20, the busiest shard's measured time is within 6, 10 and 16 % of the
# mean for N = 2, 3, 4 (elements alone: 98 %, 57 %, 51 %; the 10 M-element case dominates).
CALL_ELEMENTS = 2**20

# What each Selection field is called on the command line.
OPTIONS = {
    "cases": "--cases",
    "ledger": "--ledger",
    "keyword": "-k",
    "max_elements": "--max-elements",
    "frameworks": "--framework",
    "modes": "--mode",
    "device": "--device",
    "shard": "--shard",
}


class Refused(Exception):
    """A merge or resume that cannot go on (exit 2); the message says why."""


# ------------------------------------------------------------------ the selection: run.json


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` as ``(I, N)``; ValueError unless 1 <= I <= N."""
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise ValueError(f"{text!r} is not I/N (e.g. 2/4)") from None
    if not sep or not 1 <= i <= n:
        raise ValueError(f"{text!r}: I/N needs 1 <= I <= N")
    return i, n


def shard_text(shard: tuple[int, int] | None) -> str:
    return "(none)" if shard is None else f"{shard[0]}/{shard[1]}"


@dataclass(frozen=True)
class Selection:
    """What a run runs, as its options resolved it (the content of ``run.json``)."""

    cases: tuple[str, ...]
    ledger: tuple[str, ...] | None
    keyword: str | None
    max_elements: int
    frameworks: tuple[str, ...]
    modes: tuple[str, ...]
    device: str
    shard: tuple[int, int] | None = None

    def as_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("cases", "ledger", "frameworks", "modes"):
            value[name] = None if value[name] is None else list(value[name])
        value["shard"] = None if self.shard is None else shard_text(self.shard)
        return value

    @classmethod
    def from_json(cls, value: Any) -> Selection:
        """The selection ``as_json`` wrote; ValueError naming the first field that is wrong."""
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        missing = [f.name for f in fields(cls) if f.name not in value]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")

        def strings(name: str) -> tuple[str, ...]:
            item = value[name]
            if not isinstance(item, list) or not all(isinstance(s, str) for s in item):
                raise ValueError(f"{name} is not a list of strings")
            return tuple(item)

        keyword, device, limit = value["keyword"], value["device"], value["max_elements"]
        if keyword is not None and not isinstance(keyword, str):
            raise ValueError("keyword is not a string")
        if not isinstance(device, str):
            raise ValueError("device is not a string")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ValueError("max_elements is not a positive integer")
        shard = value["shard"]
        if shard is not None and not isinstance(shard, str):
            raise ValueError("shard is not a string")
        return cls(
            cases=strings("cases"),
            ledger=None if value["ledger"] is None else strings("ledger"),
            keyword=keyword,
            max_elements=limit,
            frameworks=strings("frameworks"),
            modes=strings("modes"),
            device=device,
            shard=None if shard is None else parse_shard(shard),
        )

    def show(self, name: str) -> str:
        """One field as a user would type it."""
        value = getattr(self, name)
        if name == "shard":
            return shard_text(value)
        if value is None:
            return "(none)"
        if name in ("frameworks", "modes"):
            return ",".join(value)
        if name in ("cases", "ledger"):
            return " ".join(value)
        return str(value)

    def same(self, other: Selection, name: str) -> bool:
        """Whether a field selects the same in both (frameworks and modes in any order,
        paths normalised)."""
        mine, theirs = getattr(self, name), getattr(other, name)
        if name in ("frameworks", "modes"):
            return set(mine) == set(theirs)
        if name in ("cases", "ledger") and mine is not None and theirs is not None:
            return [os.path.normpath(p) for p in mine] == [os.path.normpath(p) for p in theirs]
        return bool(mine == theirs)

    def differing(self, other: Selection, names: Iterable[str]) -> list[str]:
        """Those of the field ``names`` that select differently in ``other``."""
        return [n for n in names if not self.same(other, n)]


def write_selection(run_dir: Path, selection: Selection) -> Path:
    """Write ``run.json`` (replacing it whole); raises OSError when it cannot."""
    path = Path(run_dir) / RUN_FILE
    partial = path.with_name(RUN_FILE + ".partial")
    partial.write_text(json.dumps(selection.as_json(), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def read_selection(run_dir: Path) -> Selection | None:
    """The selection ``run.json`` records; None when there is none. Raises :class:`Refused`
    when it cannot be read or is not one."""
    path = Path(run_dir) / RUN_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problem = results.os_problem(exc) if isinstance(exc, OSError) else "not UTF-8"
        raise Refused(f"{path}: {problem}") from None
    try:
        return Selection.from_json(json.loads(text))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        reason = str(exc) if type(exc) is ValueError else "not JSON"
        raise Refused(f"{path}: not a run selection: {reason}") from None


# ------------------------------------------------------------------ sharding


def elements(case: Case) -> int:
    """Elements of the case's input (from its declaration; no array is built)."""
    return math.prod(case.shape())


def costs(cases: Sequence[Case], frameworks: Sequence[str], modes: Sequence[str]) -> list[int]:
    """Each case's estimated cost: calls × (elements + CALL_ELEMENTS)."""
    entries = [e for name in frameworks for e in adapters.load(name).ENTRIES]
    return [
        len(runner.calls(entries, case, modes)) * (elements(case) + CALL_ELEMENTS) for case in cases
    ]


def assign(
    cases: Sequence[Case], count: int, frameworks: Sequence[str], modes: Sequence[str]
) -> list[int]:
    """The shard (1 ... ``count``) of each case, in the order of ``cases``."""
    cost = costs(cases, frameworks, modes)
    loads = [0] * count
    shard = [0] * len(cases)
    for i in sorted(range(len(cases)), key=lambda i: (-cost[i], cases[i].id)):
        least = min(range(count), key=lambda k: (loads[k], k))
        loads[least] += cost[i]
        shard[i] = least + 1
    return shard


def select(
    cases: Sequence[Case],
    shard: tuple[int, int],
    frameworks: Sequence[str],
    modes: Sequence[str],
) -> list[Case]:
    """The cases of shard ``(I, N)``, in their order."""
    index, count = shard
    chosen = assign(cases, count, frameworks, modes)
    return [case for case, k in zip(cases, chosen, strict=True) if k == index]


# ------------------------------------------------------------------ versions


def versions(environment: Mapping[str, Any]) -> dict[str, str]:
    """The facts runs to be combined must share: Python, NumPy, and each framework's
    versions, device name or reason for being skipped (every string it reported but
    ``start_failed``), keyed ``torch``, ``tensorflow.keras``, ``jax.device`` ..."""
    facts = {k: environment[k] for k in ("python", "numpy") if isinstance(environment.get(k), str)}
    for name, entry in environment.items():
        if isinstance(entry, Mapping):
            for key, value in entry.items():
                if isinstance(value, str) and key != "start_failed":
                    facts[name if key == name else f"{name}.{key}"] = value
    return facts


def version_differences(environments: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """One line per fact that differs between the labelled environments, e.g.
    ``torch: 2.13.0 in runs/a, runs/b; 2.12.0 in runs/c``."""
    facts = [(label, versions(env)) for label, env in environments]
    keys = sorted({k for _, found in facts for k in found})
    out = []
    for key in keys:
        seen: dict[str, list[str]] = {}
        for label, found in facts:
            seen.setdefault(found.get(key, "(none)"), []).append(label)
        if len(seen) > 1:
            out.append(
                f"{key}: " + "; ".join(f"{v} in {', '.join(where)}" for v, where in seen.items())
            )
    return out


# ------------------------------------------------------------------ resuming

Call = tuple[str, str, str]  # (case id, API, mode)


@dataclass(frozen=True)
class Resumable:
    """A run directory made ready to resume: the calls whose rows it holds."""

    done: frozenset[Call]
    kept: int  # rows kept
    dropped: int  # rows dropped: their call's other output is missing
    cut: int  # bytes of a cut-off last line dropped


def _cells(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    cells = frame[list(columns)].astype(object)
    return list(cells.where(cells.notna(), None).itertuples(index=False, name=None))


def prepare_resume(run_dir: Path) -> Resumable:
    """Truncate ``results.jsonl`` to its last complete line and drop the rows of calls that
    lack an output (rewriting the file with its usable rows only); the calls left are done.
    Raises OSError when the file cannot be read or rewritten."""
    cut = results.drop_cut_line(run_dir)
    loaded, lines = results.load_row_lines(run_dir)
    outputs: dict[Call, set[str]] = {}
    keys = _cells(loaded.frame, ["case_id", "api", "mode", "output"])
    for case_id, api, mode, output in keys:
        outputs.setdefault((case_id, api, mode), set()).add(output)
    done = frozenset(k for k, found in outputs.items() if found >= set(runner.OUTPUTS))
    kept = [line for line, key in zip(lines, keys, strict=True) if key[:3] in done]
    if len(kept) < len(lines):
        path = Path(run_dir) / results.RESULTS_FILE
        partial = path.with_name(results.RESULTS_FILE + ".partial")
        partial.write_bytes(b"".join(kept))
        os.replace(partial, path)
    return Resumable(done, len(kept), len(lines) - len(kept), cut)


def resumed_environment(
    previous: Mapping[str, Any], current: Mapping[str, Any], resumable: Resumable
) -> dict[str, Any]:
    """The environment of a resumed run: this part's, with the frameworks only the earlier
    part started, ``resumed_rows_kept``, and a note when versions changed in between."""
    environment = dict(current)
    for name, entry in previous.items():
        if isinstance(entry, Mapping) and name not in environment:
            environment[name] = entry
    environment["resumed_rows_kept"] = resumable.kept
    changed = version_differences(
        [("the earlier part", previous), ("the resumed part", environment)]
    )
    if previous and changed:
        environment["notes"] = [f"versions changed when resumed: {line}" for line in changed]
    return environment


# ------------------------------------------------------------------ merging


@dataclass(frozen=True)
class _Input:
    run_dir: Path
    selection: Selection | None
    environment: dict[str, Any]
    loaded: results.Loaded
    lines: list[bytes]

    @property
    def shard(self) -> tuple[int, int] | None:
        return self.selection.shard if self.selection else None


def _read_input(run_dir: Path) -> _Input:
    if not run_dir.is_dir():
        raise Refused(f"{run_dir} is not a run directory")
    try:
        loaded, lines = results.load_row_lines(run_dir)
    except FileNotFoundError:
        raise Refused(f"{run_dir} is not a run directory: no {results.RESULTS_FILE}") from None
    except OSError as exc:
        raise Refused(f"{exc.filename or run_dir}: {results.os_problem(exc)}") from None
    saved, problem = results.load_summary(run_dir)
    environment = saved.get("environment") if saved else None
    if not isinstance(environment, dict):
        why = problem or ("without an environment" if saved else "missing")
        raise Refused(
            f"{run_dir}: {results.SUMMARY_FILE} is {why}: not a finished run "
            "(resume it with conformance run --resume, then merge)"
        )
    return _Input(run_dir, read_selection(run_dir), environment, loaded, lines)


def _shard_problems(inputs: Sequence[_Input]) -> list[str]:
    problems = [f"{i.run_dir} was not run with --shard" for i in inputs if not i.shard]
    counts = sorted({i.shard[1] for i in inputs if i.shard})
    if len(counts) > 1:
        problems.append(f"shards of different N: {', '.join(map(str, counts))}")
    for n in counts:
        given: dict[int, list[str]] = {}
        for i in inputs:
            if i.shard and i.shard[1] == n:
                given.setdefault(i.shard[0], []).append(str(i.run_dir))
        missing = [f"{k}/{n}" for k in range(1, n + 1) if k not in given]
        if missing:
            problems.append(f"missing shard(s) {', '.join(missing)}")
        problems += [
            f"shard {k}/{n} given {len(dirs)} times: {', '.join(dirs)}"
            for k, dirs in sorted(given.items())
            if len(dirs) > 1
        ]
    return problems


_UNSHARDED = [n for n in OPTIONS if n != "shard"]


def _problems(inputs: Sequence[_Input]) -> list[str]:
    """What makes the merge differ from one unsharded run (refused without --force)."""
    problems = _shard_problems(inputs)
    recorded = [(i.run_dir, i.selection) for i in inputs if i.selection is not None]
    for run_dir, selection in recorded[1:]:
        first_dir, first = recorded[0]
        problems += [
            f"{run_dir} was run with {OPTIONS[n]} {selection.show(n)}, "
            f"{first_dir} with {first.show(n)}"
            for n in selection.differing(first, _UNSHARDED)
        ]
    problems += [
        f"versions differ: {line}"
        for line in version_differences([(str(i.run_dir), i.environment) for i in inputs])
    ]
    for i in inputs:
        for key in ("interrupted", "write_error"):
            if key in i.environment:
                problems.append(f"{i.run_dir} is incomplete: {i.environment[key]}")
        if i.loaded.skipped:
            problems.append(f"{i.run_dir}: {i.loaded.notice()}")
    return problems


_KEY = ["case_id", "api", "device", "dtype", "mode", "output"]
_ORDER = ["file", "line", "case_id", "framework", "api", "device", "dtype", "mode", "output"]


def _order(cells: tuple[Any, ...]) -> tuple[Any, ...]:
    file, line, *rest, output = cells
    rank = runner.OUTPUTS.index(output) if output in runner.OUTPUTS else len(runner.OUTPUTS)
    number = line if isinstance(line, int) else -1
    return (str(file or ""), number, *(str(c or "") for c in rest), rank, str(output or ""))


@dataclass(frozen=True)
class Merge:
    """Shard run directories read and checked by :func:`plan_merge`, ready to write."""

    inputs: tuple[_Input, ...]  # by shard number
    problems: tuple[str, ...]  # what --force let through
    lines: tuple[bytes, ...]  # every row as saved, in merged order

    @property
    def selection(self) -> Selection | None:
        """The selection every shard records, as one unsharded run's; None when they
        differ or one records none."""
        first = self.inputs[0].selection
        if first is None or any(
            i.selection is None or i.selection.differing(first, _UNSHARDED) for i in self.inputs
        ):
            return None
        return replace(first, shard=None)

    def environment(self) -> dict[str, Any]:
        """The first shard's environment, spanning all of them (earliest start, latest end,
        seconds summed), with ``merged_from`` and the ``notes`` of what --force let through."""
        drop = ("shard", "interrupted", "deadline", "write_error", "resumed_rows_kept", "notes")
        environment = {k: v for k, v in self.inputs[0].environment.items() if k not in drop}
        environment["argv"] = " ".join(sys.argv)
        envs = [i.environment for i in self.inputs]
        for key, pick in (("started", min), ("finished", max)):
            stamps = [e[key] for e in envs if isinstance(e.get(key), str)]
            if stamps:
                environment[key] = pick(stamps)
        for key, digits in (("seconds", 2), ("cases_seconds", 3)):
            numbers = [e[key] for e in envs if isinstance(e.get(key), (int, float))]
            environment[key] = round(sum(numbers), digits)
        environment["merged_from"] = [
            f"{i.run_dir} (shard {shard_text(i.shard)})" for i in self.inputs
        ]
        if self.problems:
            environment["notes"] = [f"merged with --force: {p}" for p in self.problems]
        return environment

    def write(self, out: Path) -> None:
        """Write ``results.jsonl`` and, when the shards share a selection, ``run.json``
        into ``out``; raises OSError when it cannot."""
        (Path(out) / results.RESULTS_FILE).write_bytes(b"".join(self.lines))
        if self.selection is not None:
            write_selection(out, self.selection)


def plan_merge(run_dirs: Sequence[Path], *, force: bool = False) -> Merge:
    """Read and check shard run directories. Raises :class:`Refused` for one that is not a
    finished run directory, for a row held twice, and (unless ``force``) for anything that
    makes the merge differ from one unsharded run."""
    inputs = sorted(
        (_read_input(Path(d)) for d in run_dirs),
        key=lambda i: (i.shard or (0, 0), str(i.run_dir)),
    )
    problems = _problems(inputs)
    if problems and not force:
        raise Refused("will not merge (--force merges anyway):\n  " + "\n  ".join(problems))
    owner: dict[tuple[Any, ...], Path] = {}
    overlaps: dict[tuple[Path, Path], list[tuple[Any, ...]]] = {}
    ordered: list[tuple[tuple[Any, ...], bytes]] = []
    for i in inputs:
        frame = i.loaded.frame
        for key, order, line in zip(
            _cells(frame, _KEY), _cells(frame, _ORDER), i.lines, strict=True
        ):
            if key in owner:
                overlaps.setdefault((owner[key], i.run_dir), []).append(key)
            else:
                owner[key] = i.run_dir
            ordered.append((_order(order), line))
    if overlaps:
        (a, b), keys = next(iter(overlaps.items()))
        example = ", ".join(f"{n}={v}" for n, v in zip(_KEY, keys[0], strict=True))
        both = (
            f"{a} holds {len(keys)} row(s) twice"
            if a == b
            else f"{a} and {b} both hold {len(keys)} row(s)"
        )
        raise Refused(f"overlapping shards: {both}, e.g. {example}")
    ordered.sort(key=lambda item: item[0])
    return Merge(tuple(inputs), tuple(problems), tuple(line for _, line in ordered))

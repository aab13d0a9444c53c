"""pytest collects the case files: ``pytest cases/`` runs the suite as test items.

Registered as the ``conformance`` plugin (a ``pytest11`` entry point); ``-p no:conformance``
turns it off. A YAML file pytest visits is collected when it is a case file (a top-level
``cases:`` key); ledger files and other YAML are left alone, and a broken case file is a
collection error naming ``file:line: field``. Each expanded case gives one item per
(device, API, mode) it is called with, e.g.::

    cases/cross_entropy.yaml::ce-weighted[reduction=mean,dtype=float32]::torch.nn.functional.cross_entropy[eager-cpu]

An item runs the call on its framework's long-lived worker (started once per pytest
process, at the first item that needs it; each pytest-xdist worker starts its own) and is
judged as ``conformance run`` judges it. It fails when a row fails (one line
``file:line: case api [mode, device]: output verdict: reason`` per row, then the call and
the repro snippet, no traceback), is skipped when nothing could run (framework missing,
unsupported parameter), and is an xfail, with the ledger entry and its link as the reason,
when the ledger covers its failure. The ledger is the ledger files beside each case file
(or ``--conformance-ledger``). Whether an entry covers a row depends on the measured
verdict and the framework's version, so the xfail is decided after the call, not marked at
collection (a static marker would make every item an entry's patterns name an XPASS). Stale
entries (they name judged rows but cover none; gathered from every xdist worker) are listed
at the end; ``--conformance-strict`` fails them and the known divergences, as ``conformance
run --strict`` does.

Markers: ``conformance`` on every item, the framework (``torch``, ``jax``, ...), the loss
(``cross_entropy``, ...), ``known`` (a ledger entry speaks of it) and ``expect_error``.

Importing this module imports only pytest: the suite (numpy, pandas) is imported when a
case file is collected, and no worker starts before an item runs.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import numpy as np

    from conformance.cases import Case
    from conformance.ledger import Ledger
    from conformance.runner import Expected, Session

_CASE_FILE = re.compile(rb"^cases\s*:", re.MULTILINE)
_PEEK = 1 << 20  # bytes read to tell a case file from other YAML
_KEY = pytest.StashKey["_State"]()
_CACHED_CASES = 4  # cases whose arrays and oracle outputs are kept (items come case by case)


class ConformanceFailure(Exception):
    """An item's rows hold a failing verdict."""


class KnownDivergence(Exception):
    """An item's failure is covered by a ledger entry, under --conformance-strict."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "loss conformance (YAML case files)")
    group.addoption(
        "--conformance-framework",
        default=None,
        metavar="LIST",
        help="comma-separated frameworks whose items are collected (default: "
        "torch,tensorflow,jax,paddle)",
    )
    group.addoption(
        "--conformance-device",
        default="cpu",
        metavar="LIST",
        help="comma-separated devices: cpu, gpu (default: cpu)",
    )
    group.addoption(
        "--conformance-mode",
        default="default",
        metavar="LIST",
        help="execution modes as for conformance run --mode (default: default)",
    )
    group.addoption(
        "--conformance-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="seconds one call may take before its worker is killed (default 120)",
    )
    group.addoption(
        "--conformance-ledger",
        action="append",
        default=None,
        metavar="PATH",
        help="known-divergence ledger files or directories (default: the ledger files "
        "beside each case file)",
    )
    group.addoption(
        "--conformance-strict",
        action="store_true",
        help="fail the items whose failure the ledger covers (instead of xfail) and the "
        "run when a ledger entry is stale, as conformance run --strict does",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: an item collected from a case file")
    given = (
        config.getoption("conformance_framework") is not None
        or config.getoption("conformance_mode") != "default"
        or config.getoption("conformance_device") != "cpu"
        or config.getoption("conformance_ledger") is not None
    )
    if given:  # a bad option is a usage error now, not a collection error per file
        _state(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    try:
        with file_path.open("rb") as f:
            head = f.read(_PEEK)
    except OSError:
        return None  # not readable: not ours to report
    if not _CASE_FILE.search(head):
        return None
    return CaseFile.from_parent(parent, path=file_path)


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_KEY, None)
    if state is None:
        return
    state.close()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: the controller judges staleness
        workeroutput["conformance_ledger"] = {
            "spoken": state.spoken,
            "covered": sorted(state.covered),
            "folders": [str(folder) for folder in state.ledgers],
            # execnet sends plain data only (torch reports a TorchVersion, say)
            "environments": json.loads(json.dumps(state.environments, default=str)),
        }
    elif state.strict and state.stale() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: a worker finished; keep what it saw of the ledger and the workers."""
    seen = getattr(node, "workeroutput", {}).get("conformance_ledger")
    if seen is None:
        return
    state = _state(node.config)
    for folder in seen["folders"]:
        state.ledger_in(Path(folder))
    for where, verdicts in seen["spoken"].items():
        state.spoken.setdefault(where, []).extend(verdicts)
    state.covered.update(seen["covered"])
    for device, environment in seen["environments"].items():
        state.environments.setdefault(device, {}).update(environment)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_KEY, None)
    if state is None:
        return
    if state.environments:
        terminalreporter.section("conformance workers")
        for device, environment in state.environments.items():
            for name, env in environment.items():
                terminalreporter.write_line(f"{name} ({device}): {_describe(env)}")
    stale = state.stale()
    if stale:
        fails = " (failing: --conformance-strict)" if state.strict else ""
        terminalreporter.section(f"stale ledger entries{fails}")
        for entry in stale:
            terminalreporter.write_line(
                f"{entry['entry']} ({entry['api']} {entry['case']}): {entry['reason']}"
            )


def _describe(env: dict[str, Any]) -> str:
    if "skipped" in env:
        return f"skipped: {env['skipped']}"
    return ", ".join(f"{k} {v}" for k, v in env.items() if not isinstance(v, (dict, list)))


def _state(config: pytest.Config) -> _State:
    state = config.stash.get(_KEY, None)
    if state is None:
        state = config.stash[_KEY] = _State(config)
    return state


class _State:
    """The options, ledgers, cached case arrays and worker sessions of one pytest process."""

    def __init__(self, config: pytest.Config) -> None:
        from conformance import adapters, cli, oracle, runner

        frameworks = cli.parse_frameworks(
            config.getoption("conformance_framework") or ",".join(runner.FRAMEWORKS)
        )
        modes = cli.parse_modes(config.getoption("conformance_mode"))
        if isinstance(frameworks, str):
            raise pytest.UsageError(f"--conformance-framework: {frameworks}")
        if isinstance(modes, str):
            raise pytest.UsageError(f"--conformance-mode: {modes}")
        devices = [d.strip() for d in config.getoption("conformance_device").split(",")]
        bad = [d for d in devices if d not in ("cpu", "gpu")]
        if bad or not devices:
            raise pytest.UsageError(f"--conformance-device: unknown device {bad} (cpu, gpu)")
        self.config = config
        self.frameworks, self.modes = frameworks, modes
        self.devices = list(dict.fromkeys(devices))
        self.entries = {name: adapters.load(name).ENTRIES for name in frameworks}
        self.strict = bool(config.getoption("conformance_strict"))
        self.timeout = float(config.getoption("conformance_timeout"))
        given = config.getoption("conformance_ledger")
        self.ledgers: dict[Path, Ledger] = {}
        self.given_ledger = self._load_ledger([Path(p) for p in given]) if given else None
        self.sessions: dict[str, Session] = {}
        self.environments: dict[str, dict[str, Any]] = {}
        self._work: OrderedDict[tuple[str, str], tuple[np.ndarray, np.ndarray | None, Expected]]
        self._work = OrderedDict()
        self._dir: Path | None = None
        # What the stale-entry check needs: per entry (file:line), the verdicts of the
        # judged rows it speaks of; the ledger cells of the covered rows.
        self.spoken: dict[str, list[str]] = {}
        self.covered: set[str] = set()
        for name in (*adapters.MODULES, *oracle.LOSSES):
            config.addinivalue_line("markers", f"{name}: conformance items of {name}")
        config.addinivalue_line("markers", "known: a known-divergence ledger entry speaks of it")
        config.addinivalue_line("markers", "expect_error: the case expects the call to raise")

    def _load_ledger(self, paths: list[Path]) -> Ledger:
        from conformance import ledger
        from conformance.cases import CaseErrors

        try:
            return ledger.load_paths(paths)
        except CaseErrors as exc:
            raise pytest.UsageError(f"bad ledger file:\n{exc}") from None

    def ledger_in(self, folder: Path) -> Ledger:
        """The ledger entries that apply to the case files in ``folder``:
        --conformance-ledger's, or those of the ledger files in that folder."""
        if self.given_ledger is not None:
            return self.given_ledger
        if folder not in self.ledgers:
            from conformance import cases

            files = [p for p in cases.find_case_files([folder]) if p.parent == folder]
            self.ledgers[folder] = self._load_ledger(files)
        return self.ledgers[folder]

    def ledger(self) -> Ledger:
        from conformance.ledger import Ledger

        if self.given_ledger is not None:
            return self.given_ledger
        return Ledger(tuple(e for known in self.ledgers.values() for e in known.entries))

    def session(self, item: CallItem) -> Session:
        """The device's worker session, started at the first item that needs it with the
        frameworks of every selected item on that device."""
        from conformance import runner

        session = self.sessions.get(item.device)
        if session is None:
            needed = {
                i.framework
                for i in item.session.items
                if isinstance(i, CallItem) and i.device == item.device
            }
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="conformance-pytest-"))
            session = runner.Session(
                [f for f in self.frameworks if f in needed],
                self._dir / item.device,
                device=item.device,
                timeout=self.timeout,
                ledger=self.ledger(),
                modes=self.modes,
                wait=False,  # an item waits for its own framework's start only
            )
            self.sessions[item.device] = session.__enter__()
            self.environments[item.device] = session.environment
        return session

    def rows(self, item: CallItem) -> list[dict[str, Any]]:
        """The judged rows of the item's call (one per output), JSON-ready."""
        from conformance import runner
        from conformance.results import to_json_value

        case = item.case
        key = (case.file, case.id)  # ids are unique within a file
        work = self._work.get(key)
        if work is None:
            x, target = case.arrays()
            work = self._work[key] = (x, target, runner.expected_for(case, x, target))
            while len(self._work) > _CACHED_CASES:
                self._work.popitem(last=False)
        session = self.session(item)
        fw = session.ready(item.framework)
        rows: list[dict[str, Any]] = []

        def keep(judged: list[dict[str, Any]]) -> None:
            rows.extend({k: to_json_value(v) for k, v in r.items()} for r in judged)

        session.serve(fw, case, *work, keep, only={(item.api, item.mode)})
        for row in rows:
            if row.get("ledger"):
                self.covered.add(str(row["ledger"]))
            for entry in session.ledger.speaks_of(row):
                self.spoken.setdefault(entry.where, []).append(str(row["verdict"]))
        return rows

    def stale(self) -> list[dict[str, str]]:
        """The ledger entries that spoke of rows this run judged but covered none of them
        (with pytest-xdist, over every worker's rows)."""
        return self.ledger().stale_among(self.spoken, self.covered)

    def close(self) -> None:
        for session in self.sessions.values():
            session.__exit__(None, None, None)
        self.sessions.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


class CaseFile(pytest.File):
    """A YAML case file: one collector per expanded case."""

    def collect(self) -> Iterator[pytest.Collector]:
        from conformance import cases

        state = _state(self.config)
        try:
            loaded = cases.load_file(self.path)
        except cases.CaseErrors as exc:
            raise self.CollectError(str(exc)) from None
        known = state.ledger_in(self.path.parent)
        for case in loaded:
            yield CaseNode.from_parent(self, name=case.id, case=case, known=known)


class CaseNode(pytest.Collector):
    """One expanded case: one item per device, API and mode it is called with."""

    def __init__(self, *, case: Case, known: Ledger, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case, self.known = case, known

    def collect(self) -> Iterator[pytest.Item]:
        from conformance import runner

        state = _state(self.config)
        for device in state.devices:
            for framework, entries in state.entries.items():
                for entry, mode in runner.calls(entries, self.case, state.modes):
                    yield CallItem.from_parent(
                        self,
                        name=f"{entry.api}[{mode}-{device}]",
                        framework=framework,
                        api=entry.api,
                        mode=mode,
                        device=device,
                    )


class CallItem(pytest.Item):
    """One call of one case: an API, in one mode, on one device (its loss and gradient)."""

    def __init__(self, *, framework: str, api: str, mode: str, device: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.framework, self.api, self.mode, self.device = framework, api, mode, device
        parent = self.parent
        assert isinstance(parent, CaseNode)
        self.case = parent.case
        self.rows: list[dict[str, Any]] = []
        for name in ("conformance", framework, self.case.loss):
            self.add_marker(name)
        if self.case.expect_error is not None:
            self.add_marker("expect_error")
        if any(
            e.matches(api, self.case.id, output, mode)
            for e in parent.known.entries
            for output in ("loss", "grad")
        ):
            self.add_marker("known")
        where = f"{self.case.file}:{self.case.line}"
        self.user_properties += [
            ("case", where),
            ("framework", framework),
            ("api", api),
            ("mode", mode),
            ("device", device),
        ]

    def runtest(self) -> None:
        from conformance.results import FAILING, Verdict

        state = _state(self.config)
        self.rows = state.rows(self)
        call = next((r["call"] for r in self.rows if r.get("call")), None)
        if call:
            self.user_properties.append(("call", call))  # in --junitxml, as the call was made
        verdicts = [r["verdict"] for r in self.rows]
        failing = {v.value for v in FAILING}
        if not self.rows:
            raise ConformanceFailure(f"{self._where()}: no call was made (the run was stopped)")
        if any(v in failing for v in verdicts):
            raise ConformanceFailure(self._explain())
        if Verdict.KNOWN.value in verdicts:
            if state.strict:
                raise KnownDivergence(self._explain())
            known = next(r for r in self.rows if r["verdict"] == Verdict.KNOWN.value)
            pytest.xfail(f"{known.get('ledger') or ''}: {known.get('reason') or ''}")
        not_run = {Verdict.SKIPPED.value, Verdict.UNSUPPORTED.value, Verdict.NOT_IMPLEMENTED.value}
        if all(v in not_run for v in verdicts):
            # Reported at the case's file:line, not at this line.
            reason = f"{verdicts[0]}: {self.rows[0].get('reason') or ''}"
            raise pytest.skip.Exception(reason, _use_item_location=True)

    def _where(self) -> str:
        return (
            f"{self.case.file}:{self.case.line}: {self.case.id} {self.api} "
            f"[{self.mode}, {self.device}]"
        )

    def _explain(self) -> str:
        """One line per output (``file:line: case api [mode, device]: output verdict:
        reason``), then the call made and the snippet that reproduces it."""
        lines = []
        for row in self.rows:
            reason = row.get("reason") or ""
            lines.append(f"{self._where()}: {row['output']} {row['verdict']}: {reason}")
        call = next((r["call"] for r in self.rows if r.get("call")), None)
        snippet = next((r["repro"] for r in self.rows if r.get("repro")), None)
        tail = next((r["stderr_tail"] for r in self.rows if r.get("stderr_tail")), None)
        if call:
            lines.append(f"call: {call}")
        if snippet:
            lines += ["repro:", *("    " + line for line in snippet.splitlines())]
        if tail:
            lines += ["worker stderr (tail):", *("    " + line for line in tail.splitlines())]
        return "\n".join(lines)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, (ConformanceFailure, KnownDivergence)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return (
            self.path,
            self.case.line - 1,
            f"{self.case.id} {self.api} [{self.mode}, {self.device}]",
        )

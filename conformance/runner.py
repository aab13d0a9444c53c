"""Run cases through every framework's entries and stream the judged rows to disk.

One long-lived worker process per framework (imports cost seconds, and some frameworks
cannot share a process); the workers start in parallel and then serve the cases one at a
time, each framework in its own thread. The oracle runs here, in the parent, once per case.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import platform
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from conformance import adapters, dtypes, oracle
from conformance import ledger as ledger_
from conformance.adapters._entry import Entry, lacking
from conformance.cases import Case
from conformance.compare import compare, tolerance
from conformance.judge import Diagnoser
from conformance.ledger import Ledger
from conformance.protocol import Outcome, Task
from conformance.results import ResultsUnwritable, ResultWriter, Verdict, to_json_value
from conformance.supervisor import MIB, Cancelled, Lost, StartFailed, Worker, WorkerUnavailable

FRAMEWORKS = ("torch", "tensorflow", "jax", "paddle")
# Eager plus each framework's idiomatic compiled mode. torch.compile is left out by default:
# 15 s for the first shape and ~3 s per new one on this 2-core CPU (see adapters/torch/__init__.py).
DEFAULT_MODES = ("eager", "jit", "tf.function", "to_static")
OUTPUTS = ("loss", "grad")
SMALL = 64  # outputs up to this many elements are stored whole in the row
# How many times its arrays (input, target or cotangent; see array_bytes) one call takes a
# worker's resident memory up by at its peak: the Task as received and unpickled, the
# framework's tensors, the forward pass's intermediates (softmax, log-probabilities), the
# gradient, the outputs converted back to NumPy and pickled. Measured on a 2-core CPU with
# 13 M-element inputs (cross_entropy, binary_cross_entropy_with_logits, mse_loss, softmax;
# eager and each compiled mode; float32 and bfloat16): at most 5.1 (torch), 4.2 (paddle),
# 7.7 (tensorflow) and 9.0 (jax: sigmoid_binary_cross_entropy under jit).
CALL_MEMORY_FACTOR = 10
# What any call may add, however small its arrays: compiling a new shape, caches. Paddle's
# to_static took a worker from 288 to over 300 MiB on an 8×5 case; without this share a JAX
# worker that had grown to 2 GiB over the shipped cases was killed on an empty one.
CALL_MEMORY_BASE = 64 * MIB


def call_memory(case: Case) -> int:
    """Bytes one call of ``case`` is estimated to add to a worker's resident memory."""
    return CALL_MEMORY_BASE + CALL_MEMORY_FACTOR * array_bytes(case)


def array_bytes(case: Case) -> int:
    """Bytes of the arrays one call of ``case`` sends to a worker (input, target or the
    cotangent of a target-less case), from the declared shapes: no array is built, so a
    case too large for the machine can be sized and skipped. float16 and bfloat16 count
    4 bytes an element: the frameworks compute them in float32 (their measured peak is
    twice as many times their own size)."""
    shape = case.shape()
    elements = math.prod(shape)
    itemsize = max(dtypes.NUMPY[case.dtype].itemsize, 4)
    spec = case.target_spec
    if case.target_kind == "index":  # int64 class indices, one per position (N, d1, ...)
        labels = np.shape(spec["values"]) if "values" in spec else (shape[0], *shape[2:])
        return elements * itemsize + int(math.prod(labels)) * 8
    if "values" in spec:
        return (elements + int(math.prod(np.shape(spec["values"])))) * itemsize
    return 2 * elements * itemsize  # a target, or the cotangent, of the input's shape


@dataclass
class Expected:
    """The oracle's answer for one case (or why it has none)."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    magnitudes: dict[str, np.ndarray] = field(default_factory=dict)
    n_terms: int = 1
    problem: str = ""
    input_shape: list[int] = field(default_factory=list)
    diagnoser: Diagnoser | None = None  # the oracle under other semantic options
    # The cotangent of a target-less case (Case.grad_output), drawn once and sent with its tasks.
    grad_output: np.ndarray | None = None


def expected_for(case: Case, x: np.ndarray, target: np.ndarray | None) -> Expected:
    """Oracle value, gradient and error magnitudes (float64) for the case's rounded inputs."""
    spec = oracle.LOSSES[case.loss]
    params = _array_params(case, x.ndim)
    kwargs = {name: params[name] for name in spec.params if name in params}
    cotangent = case.grad_output()
    along = {} if cotangent is None else {"grad_output": cotangent}
    try:
        if spec.outputs is not None:  # one pass (and one preparation) for all four
            loss, grad, loss_mag, grad_mag = spec.outputs(x, target, **kwargs, **along)
        else:
            loss = spec.value(x, target, **kwargs)
            grad = spec.grad(x, target, **kwargs, **along)
            loss_mag, grad_mag = spec.magnitude(x, target, **kwargs, **along)
    except ValueError as exc:  # the documented way to say "no value" (e.g. label out of range)
        return Expected(
            problem=f"oracle has no value: {exc}", input_shape=list(x.shape), grad_output=cotangent
        )
    except Exception as exc:  # an oracle bug must not cost the run its other rows
        return Expected(
            problem=f"oracle failed: {type(exc).__name__}: {exc}",
            input_shape=list(x.shape),
            grad_output=cotangent,
        )
    per_element = x.shape[1] if spec.class_terms else 1
    reduced = x.size // x.shape[1] if case.params["reduction"] != "none" else 1
    n_terms = x.size if spec.all_terms else per_element * reduced
    return Expected(
        values={"loss": loss, "grad": grad},
        magnitudes={"loss": loss_mag, "grad": grad_mag},
        n_terms=n_terms,
        input_shape=list(x.shape),
        grad_output=cotangent,
        diagnoser=None
        if target is None  # building blocks have no options to diagnose
        else Diagnoser(
            case.loss,
            x,
            target,
            kwargs,
            dtype=case.dtype,
            n_terms=n_terms,
            factor=case.tolerance_factor,
        ),
    )


def _small(a: np.ndarray | None) -> Any:
    return None if a is None or np.size(a) > SMALL else np.asarray(a).tolist()


def repro(case: Case, snippet: str, call: str) -> str:
    """A snippet that rebuilds the case's arrays and makes the same call.

    Everything taken from the case or its path enters as an ASCII Python literal
    (``ascii()``), never as raw text in code or a comment, so a hostile file name such as
    ``"a\\nimport os\\n#.yaml"`` stays inert when a user runs the snippet.
    """
    accepted = oracle.LOSSES[case.loss].params
    kw = ", ".join(
        f"{k}={k if k in ('weight', 'pos_weight') else ascii(v)}"
        for k, v in case.params.items()
        if k in accepted and k.isidentifier()
    )
    header = (
        f"# reproduces case {case.id!a} (line {int(case.line)} of the file below)\n"
        "from conformance import cases, oracle\n"
        f"case = cases.get({case.file!a}, {case.id!a})\n"
        "x, t = case.arrays()\n"
        "weight = case.weight()\n"
        "pos_weight = case.pos_weight()\n"
        "g = case.grad_output()  # the cotangent of a target-less case, else None\n"
        + (
            f"print('expected', oracle.{case.loss}(x))\n"
            if case.target_kind == "none"
            else f"print('expected', oracle.{case.loss}(x, t, {kw}))\n"
        )
    )
    return header + (snippet.format(call=call) if call else "")


def _rows(
    case: Case,
    framework: str,
    entry: Entry,
    mode: str,
    snippet: str,
    device: str,
    device_name: str,
    result: Outcome | Lost | str,
    expected: Expected,
) -> Iterator[dict[str, Any]]:
    """Judge one (case, entry) result into one row per output."""
    common: dict[str, Any] = {
        "case_id": case.id,
        "base_id": case.base_id,
        "file": case.file,
        "line": case.line,
        "loss": case.loss,
        "framework": framework,
        "api": entry.api,
        "device": device,
        "device_name": device_name,
        "dtype": case.dtype,
        "mode": mode,
        "params": case.params,
        "target_kind": case.target_kind,
        "input_shape": expected.input_shape,
    }
    for output in OUTPUTS:
        row = dict(common, output=output)
        want = expected.values.get(output)
        row["expected"] = _small(want)
        if isinstance(result, str):  # not run: the framework cannot, or the case is too big
            row.update(verdict=Verdict.SKIPPED, reason=result)
        elif isinstance(result, Lost):
            verdict = Verdict.CRASHED if result.kind == "crashed" else Verdict.TIMEOUT
            row.update(verdict=verdict, reason=result.reason, stderr_tail=result.stderr_tail)
        else:
            row.update(_judge(case, entry, result, output, want, expected))
            row["seconds"] = result.seconds
            row["call"] = result.call or None
            if result.call:
                row["repro"] = repro(case, snippet, result.call)
        yield row


def _judge(
    case: Case,
    entry: Entry,
    outcome: Outcome,
    output: str,
    want: np.ndarray | None,
    expected: Expected,
) -> dict[str, Any]:
    if outcome.status == "unsupported":
        return {"verdict": Verdict.UNSUPPORTED, "reason": outcome.reason}
    if outcome.status == "not-implemented":
        return {"verdict": Verdict.NOT_IMPLEMENTED, "reason": outcome.reason}
    lacks = lacking(entry, output)
    if lacks is not None:
        return {"verdict": Verdict.UNSUPPORTED, "reason": lacks}
    got = outcome.outputs.get(output)
    actual = {"actual": _small(got)}
    if case.expect_error is not None:
        if outcome.status == "raised":
            return {"verdict": Verdict.EXPECTED_ERROR, "reason": outcome.reason}
        return {
            "verdict": Verdict.NO_ERROR,
            "reason": f"returned a value; the case expects an error: {case.expect_error}",
            **actual,
        }
    if outcome.status == "raised":
        return {"verdict": Verdict.ERROR, "reason": outcome.reason}
    if want is None:
        return {"verdict": Verdict.ERROR, "reason": expected.problem}
    if got is None:
        return {"verdict": Verdict.MISMATCH, "reason": f"the adapter returned no {output}"}
    magnitude = expected.magnitudes[output]
    result = compare(
        got,
        want,
        magnitude,
        dtype=case.dtype,
        n_terms=expected.n_terms,
        factor=case.tolerance_factor,
    )
    judged = {**result.fields(), **actual}
    if result.passed:
        return {"verdict": Verdict.PASS, "reason": result.reason, **judged}
    if expected.diagnoser is None:
        return {"verdict": Verdict.MISMATCH, "reason": result.reason, **judged}
    found = expected.diagnoser.diagnose(output, got, magnitude, entry.profile)
    if found.declared:
        links = " ".join(dict.fromkeys(found.sources))
        return {
            "verdict": Verdict.SEMANTIC_DIFFERENCE,
            "reason": f"documented difference: {found.explanation} [{links}]; "
            f"against canonical: {result.reason}",
            "explanation": found.explanation,
            **judged,
        }
    if found.choices:
        return {
            "verdict": Verdict.MISMATCH,
            "reason": f"matches {found.explanation}, which {entry.api} does not document; "
            f"against canonical: {result.reason}",
            "explanation": found.explanation,
            **judged,
        }
    return {
        "verdict": Verdict.MISMATCH,
        "reason": f"{result.reason}; no semantic option reproduces it",
        **judged,
    }


@dataclass
class _Framework:
    name: str
    entries: tuple[Entry, ...]
    snippet: str
    worker: Worker | None = None
    skip_reason: str = ""
    environment: dict[str, Any] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)


def _prepare(
    name: str,
    device: str,
    run_dir: Path,
    start_timeout: float,
    stop: threading.Event,
    max_rss: int | None = None,
) -> _Framework:
    module = adapters.load(name)
    fw = _Framework(name, tuple(module.ENTRIES), str(getattr(module, "SNIPPET", "")))
    missing = [req for req in module.REQUIRES if importlib.util.find_spec(req) is None]
    if missing:
        fw.skip_reason = (
            f"{', '.join(missing)} not installed (pip install 'loss-conformance[{name}]')"
        )
        return fw
    log = run_dir / "workers" / f"{name}.log"
    worker = Worker(name, device, log, start_timeout=start_timeout, cancel=stop, max_rss=max_rss)
    started = time.perf_counter()
    try:
        fw.environment = worker.start()
        fw.environment["start_seconds"] = round(time.perf_counter() - started, 2)
        if worker.start_rss is not None:  # what a --max-worker-mem must leave room for
            fw.environment["start_rss_mib"] = round(worker.start_rss / MIB)
        fw.worker = worker
    except WorkerUnavailable as exc:  # the framework says it cannot serve: skip its rows
        fw.skip_reason = str(exc)
    except StartFailed as exc:  # died or hung while starting: a crash; calls retry the start
        fw.environment = {"start_failed": exc.lost.reason}
        fw.worker = worker
    except Cancelled:
        fw.skip_reason = "the run was stopped before this worker started"
    return fw


def calls(entries: Sequence[Entry], case: Case, modes: Sequence[str]) -> list[tuple[Entry, str]]:
    """The (entry, mode) pairs ``case`` is called with: every entry of its loss, in each of
    ``modes`` the entry has (unsupported pairs included: they cost a round trip)."""
    return [(e, mode) for e in entries if e.loss == case.loss for mode in modes if mode in e.modes]


def _serve_case(
    fw: _Framework,
    case: Case,
    tasks: Sequence[tuple[Entry, Task]],
    expected: Expected,
    device: str,
    timeout: float,
    emit: Callable[[list[dict[str, Any]]], None],
) -> None:
    for entry, task in tasks:
        result: Outcome | Lost | str
        if fw.worker is None:
            result = fw.skip_reason
        else:
            fw.worker.make_room(call_memory(case))
            try:
                result = fw.worker.call(task, timeout)
            except Cancelled:  # stopped during a restart: no call was made, nothing to record
                return
        _emit(fw, case, entry, task.mode, result, expected, device, emit)


def _emit(
    fw: _Framework,
    case: Case,
    entry: Entry,
    mode: str,
    result: Outcome | Lost | str,
    expected: Expected,
    device: str,
    emit: Callable[[list[dict[str, Any]]], None],
) -> None:
    """Judge one call's result into its rows, apply the ledger, and hand them to ``emit``."""
    env = fw.worker.environment if fw.worker is not None else fw.environment
    device_name = str(env.get("device", device))
    rows = _rows(case, fw.name, entry, mode, fw.snippet, device, device_name, result, expected)
    emit([ledger_.apply(fw.ledger, row, env) for row in rows])


def _wait(jobs: Sequence[Future[Any]]) -> None:
    """Wait for every job even if one fails or a second Ctrl-C arrives; then raise the first
    failure, ResultsUnwritable before any other (the run stops on it)."""
    errors: list[BaseException] = []
    for job in jobs:
        while True:
            try:
                job.result()
                break
            except KeyboardInterrupt:  # a second Ctrl-C: keep waiting for the calls in flight
                continue
            except BaseException as exc:
                errors.append(exc)
                break
    unwritable = [e for e in errors if isinstance(e, ResultsUnwritable)]
    if unwritable or errors:
        raise (unwritable or errors)[0]


class Session:
    """One long-lived worker per framework, serving cases one at a time.

    ``run`` uses it for a case list; ``conformance fuzz`` and the pytest plugin use it to
    judge cases as they come. Use as a context manager: entering starts the workers (in
    parallel; ``stop`` makes a start give up) and, with ``wait``, waits for all of them;
    without, ``ready(name)`` waits for one framework when it is first needed, so a
    framework that imports fast starts working before a slow one is ready. Leaving stops
    them. ``environment`` maps each ready framework to its versions and device, or to why
    it is skipped. ``done`` holds the (case id, API, mode) calls not to make again (their
    rows are already written: a resumed run).
    ``max_worker_mem`` (bytes) bounds each worker: a case estimated to need more is not
    sent (:meth:`too_big`), and a worker that grows past it during a call is killed.
    """

    def __init__(
        self,
        frameworks: Sequence[str],
        run_dir: Path,
        *,
        device: str = "cpu",
        timeout: float = 120.0,
        start_timeout: float = 300.0,
        stop: threading.Event | None = None,
        ledger: Ledger | None = None,
        modes: Sequence[str] = DEFAULT_MODES,
        done: Collection[tuple[str, str, str]] = frozenset(),
        max_worker_mem: int | None = None,
        wait: bool = True,
    ) -> None:
        self.frameworks, self.run_dir = list(frameworks), Path(run_dir)
        self.max_worker_mem = max_worker_mem
        self.modes = tuple(modes)
        self.done = frozenset(done)
        self.device, self.timeout, self.start_timeout = device, timeout, start_timeout
        self.stop = stop or threading.Event()
        self.ledger = ledger or Ledger()
        self.wait = wait
        self.environment: dict[str, Any] = {}
        self._pool = ThreadPoolExecutor(max(len(self.frameworks), 1))
        self._starts: dict[str, Future[_Framework]] = {}
        self._ready: dict[str, _Framework] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Session:
        self._starts = {
            n: self._pool.submit(
                _prepare,
                n,
                self.device,
                self.run_dir,
                self.start_timeout,
                self.stop,
                self.max_worker_mem,
            )
            for n in self.frameworks
        }
        if not self.wait:
            return self
        jobs = list(self._starts.values())
        try:
            try:
                _wait(jobs)
            except KeyboardInterrupt:  # a Python caller's Ctrl-C while workers start
                self.stop.set()
                _wait(jobs)
        except BaseException:  # one start failed unexpectedly: stop the ones that started
            self.__exit__()
            raise
        for name in self.frameworks:
            self.ready(name)
        return self

    def __exit__(self, *exc: object) -> None:
        for job in self._starts.values():
            fw: _Framework | None = None
            while True:
                try:
                    fw = job.result()
                    break
                except KeyboardInterrupt:  # starts in flight give up; keep stopping the rest
                    self.stop.set()
                except Exception:  # it failed to start: nothing to stop
                    break
            if fw is not None and fw.worker is not None:
                fw.worker.stop()
        self._pool.shutdown()

    def ready(self, name: str) -> _Framework:
        """Framework ``name`` once its worker has started, or is known not to (skipped,
        cancelled); waits for the start. Raises what the start raised unexpectedly."""
        with self._lock:
            fw = self._ready.get(name)
        if fw is not None:
            return fw
        fw = self._starts[name].result()
        with self._lock:
            if name not in self._ready:
                fw.ledger = self.ledger
                self.environment[name] = fw.environment or {"skipped": fw.skip_reason}
                self._ready[name] = fw
            return self._ready[name]

    @property
    def prepared(self) -> list[_Framework]:
        """Every framework, waiting for the starts not yet done."""
        return [self.ready(name) for name in self.frameworks]

    def serve(
        self,
        fw: _Framework,
        case: Case,
        x: np.ndarray,
        target: np.ndarray | None,
        expected: Expected,
        emit: Callable[[list[dict[str, Any]]], None],
        only: Collection[tuple[str, str]] | None = None,
    ) -> None:
        """Run ``case`` on the entries of one framework, in every mode (but the pairs in
        ``done``; only the (API, mode) pairs in ``only`` when given); rows go to ``emit``."""
        tasks = [
            (entry, _task(case, entry, x, target, expected.grad_output, self.device, mode))
            for entry, mode in self._pending(fw, case, only)
        ]
        _serve_case(fw, case, tasks, expected, self.device, self.timeout, emit)

    def _pending(
        self, fw: _Framework, case: Case, only: Collection[tuple[str, str]] | None = None
    ) -> list[tuple[Entry, str]]:
        return [
            (entry, mode)
            for entry, mode in calls(fw.entries, case, self.modes)
            if (case.id, entry.api, mode) not in self.done
            and (only is None or (entry.api, mode) in only)
        ]

    def too_big(self, fw: _Framework, case: Case) -> str | None:
        """Why ``case`` is not sent to ``fw``'s worker, or None: under ``max_worker_mem``,
        a call estimated to need more (:func:`call_memory`, plus what the worker held after
        import) would only get the worker killed, or on a machine short of memory, take
        other processes with it."""
        if self.max_worker_mem is None or fw.worker is None:  # no limit, or no worker to fit
            return None
        arrays = array_bytes(case)
        held = fw.worker.start_rss or 0
        need = call_memory(case) + held
        if need <= self.max_worker_mem:
            return None
        after_import = f" + {held / MIB:.0f} MiB the worker holds after import" if held else ""
        return (
            f"the call needs ~{need / MIB:.0f} MiB (estimate: {CALL_MEMORY_BASE / MIB:.0f} MiB "
            f"+ {CALL_MEMORY_FACTOR} × {arrays / MIB:.3g} MiB of arrays for the forward and "
            "backward pass"
            f"{after_import}), over --max-worker-mem {self.max_worker_mem / MIB:.0f} MiB; "
            "not run"
        )

    def skip(
        self,
        fw: _Framework,
        case: Case,
        reason: str,
        emit: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        """Write ``case``'s rows on one framework as skipped for ``reason``; its arrays
        are not built."""
        expected = Expected(input_shape=list(case.shape()))
        for entry, mode in self._pending(fw, case):
            _emit(fw, case, entry, mode, reason, expected, self.device, emit)

    def judge(self, case: Case, emit: Callable[[list[dict[str, Any]]], None]) -> None:
        """Run ``case`` on every framework at once; each (case, API)'s rows go to ``emit``
        as soon as they are judged. Raises what ``emit`` raises, after every framework is
        done with the case."""
        work = _CaseWork(case, len(self.frameworks))
        _wait([self._pool.submit(self.serve_or_skip, fw, work, emit) for fw in self.prepared])

    def serve_or_skip(
        self, fw: _Framework, work: _CaseWork, emit: Callable[[list[dict[str, Any]]], None]
    ) -> None:
        """Serve ``work``'s case on one framework, or, when it is too big for the worker
        (``too_big``), write its rows as skipped without building its arrays: they may not
        fit in this process either."""
        reason = self.too_big(fw, work.case)
        if reason is not None:
            self.skip(fw, work.case, reason, emit)
            return
        x, target, expected = work.get()
        self.serve(fw, work.case, x, target, expected, emit)

    def rows(self, case: Case) -> list[dict[str, Any]]:
        """The judged rows of ``case`` (JSON-ready values), without writing them anywhere."""
        collected: list[dict[str, Any]] = []
        lock = threading.Lock()

        def keep(rows: list[dict[str, Any]]) -> None:
            with lock:
                collected.extend({k: to_json_value(v) for k, v in r.items()} for r in rows)

        self.judge(case, keep)
        return collected


# Cases in flight at once when frameworks run ahead of each other: bounds the arrays and
# oracle outputs held in memory, not the speed (each framework keeps its own queue).
LOOKAHEAD = 16


class _CaseWork:
    """One case's arrays and canonical outputs, computed once by the first framework that
    needs them and shared by the others; dropped when every framework is done with it."""

    def __init__(self, case: Case, pending: int) -> None:
        self.case, self.pending, self.complete = case, pending, True
        self._lock = threading.Lock()
        self._value: tuple[np.ndarray, np.ndarray | None, Expected] | None = None

    def get(self) -> tuple[np.ndarray, np.ndarray | None, Expected]:
        with self._lock:
            if self._value is None:
                x, target = self.case.arrays()
                self._value = (x, target, expected_for(self.case, x, target))
            return self._value

    def drop(self) -> None:
        with self._lock:
            self._value = None


def _acquire(window: threading.Semaphore, stop: threading.Event) -> bool:
    """Take a place in the window, or False once ``stop`` is set (waiting stays
    interruptible: a blocking acquire would not see a Ctrl-C)."""
    while not window.acquire(timeout=0.2):
        if stop.is_set():
            return False
    if stop.is_set():
        window.release()
        return False
    return True


def _serve_cases(
    cases: Sequence[Case],
    session: Session,
    writer: ResultWriter,
    progress: Callable[[int, int, str], None] | None,
) -> int:
    """Serve the cases; returns how many cases completed on every framework.

    Each framework works through its own queue of cases (no framework waits for a slower
    one), at most ``LOOKAHEAD`` cases ahead of the oldest unfinished case; each case's
    oracle runs once. The run stops taking new cases when ``session.stop`` is set (the CLI
    sets it on Ctrl-C or SIGTERM) or on KeyboardInterrupt (a Python caller's Ctrl-C): the
    calls in flight finish and write their rows first. A results file that cannot be
    written (disk full) stops it.
    """
    frameworks = session.frameworks
    if not frameworks:
        return len(cases)
    executors = {name: ThreadPoolExecutor(1) for name in frameworks}
    window = threading.Semaphore(LOOKAHEAD)
    lock = threading.Lock()
    completed = 0
    jobs: list[Future[bool]] = []

    def serve(name: str, work: _CaseWork) -> bool:
        if session.stop.is_set():
            return False
        fw = session.ready(name)  # the first case waits for this framework's start only
        if session.stop.is_set():
            return False
        session.serve_or_skip(fw, work, writer.write)
        return True

    def finished(work: _CaseWork, job: Future[bool]) -> None:
        nonlocal completed
        failed = job.cancelled() or job.exception() is not None
        if failed:
            session.stop.set()  # e.g. ResultsUnwritable: take no further cases
        with lock:
            work.complete &= not failed and job.result()
            work.pending -= 1
            if work.pending:
                return
            work.drop()
            window.release()
            if work.complete:
                completed += 1
                if progress:
                    progress(completed, len(cases), work.case.id)

    try:
        try:
            if progress:
                progress(0, len(cases), cases[0].id if cases else "")
            for case in cases:
                if not _acquire(window, session.stop):
                    break
                work = _CaseWork(case, len(frameworks))
                for name in frameworks:
                    job = executors[name].submit(serve, name, work)
                    job.add_done_callback(functools.partial(finished, work))
                    jobs.append(job)
        except KeyboardInterrupt:
            session.stop.set()
        try:
            _wait(jobs)
        except KeyboardInterrupt:  # raised between jobs: the calls in flight are done
            session.stop.set()
    except ResultsUnwritable:  # every job has finished (see _wait); the rows so far are kept
        session.stop.set()
    finally:
        for executor in executors.values():
            executor.shutdown()
    return completed


def run(
    cases: Sequence[Case],
    run_dir: Path,
    *,
    frameworks: Sequence[str] = FRAMEWORKS,
    device: str = "cpu",
    timeout: float = 120.0,
    start_timeout: float = 300.0,
    progress: Callable[[int, int, str], None] | None = None,
    stop: threading.Event | None = None,
    ledger: Ledger | None = None,
    modes: Sequence[str] = DEFAULT_MODES,
    done: Collection[tuple[str, str, str]] = frozenset(),
    max_worker_mem: int | None = None,
) -> dict[str, Any]:
    """Run every case on every framework's entries; rows go to ``run_dir/results.jsonl``.

    Each entry runs in each of ``modes`` its framework has (eager, jax.jit, ...). The
    (case id, API, mode) calls in ``done`` are not made, and rows are appended after the
    ones already in the file (a resumed run); when every call is done no worker starts.

    ``max_worker_mem`` (bytes) bounds each worker's memory (see :class:`Session`): a case
    estimated to need more is skipped with the reason, and a call that takes its worker past
    it crashes that worker only.

    Failing rows that an entry of ``ledger`` covers are written with the verdict ``known``.
    Setting ``stop`` (from a signal handler, say) ends the run between cases; starting
    workers give up at once. Returns the run's environment (versions, devices, skipped
    frameworks, timing, and ``interrupted`` / ``write_error`` when the run ended early).
    Raises OSError when ``run_dir`` cannot be created or written before anything ran.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    environment: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "argv": " ".join(sys.argv),
        "started": started.isoformat(timespec="seconds"),
        "device": device,
        "modes": list(modes),
    }
    if max_worker_mem is not None:
        environment["max_worker_mem"] = f"{max_worker_mem / MIB:.0f} MiB"
    done = frozenset(done)
    if done:
        entries = [e for name in frameworks for e in adapters.load(name).ENTRIES]
        cases = [
            c
            for c in cases
            if any((c.id, e.api, mode) not in done for e, mode in calls(entries, c, modes))
        ]
        if not cases:
            return _finish(environment, started)
    session = Session(
        frameworks,
        run_dir,
        device=device,
        timeout=timeout,
        start_timeout=start_timeout,
        stop=stop,
        ledger=ledger,
        modes=modes,
        done=done,
        wait=False,
        max_worker_mem=max_worker_mem,
    )
    with ResultWriter(run_dir) as writer:
        if progress:  # importing frameworks takes seconds; say so
            progress(0, len(cases), f"starting {', '.join(frameworks)}")
        with session:  # each framework's queue starts when its own worker is ready
            loop_started = time.perf_counter()
            completed = _serve_cases(cases, session, writer, progress)
            for name in frameworks:  # in the order given, whichever started first
                if name in session.environment:
                    environment[name] = session.environment[name]
            if writer.error:
                environment["write_error"] = (
                    f"{writer.path}: {writer.error}; stopped after {completed} of "
                    f"{len(cases)} cases, {writer.count} complete rows kept"
                )
            elif completed < len(cases):
                environment["interrupted"] = f"stopped after {completed} of {len(cases)} cases"
            # Time from the workers' start to the last row written (the benchmark's figure;
            # each framework's start_seconds is part of it).
            environment["cases_seconds"] = round(time.perf_counter() - loop_started, 3)
    return _finish(environment, started)


def _finish(environment: dict[str, Any], started: datetime) -> dict[str, Any]:
    """``environment`` with the run's finishing time and its length in seconds."""
    finished = datetime.now(timezone.utc)
    environment["finished"] = finished.isoformat(timespec="seconds")
    environment["seconds"] = round((finished - started).total_seconds(), 2)
    return environment


def _task(
    case: Case,
    entry: Entry,
    x: np.ndarray,
    target: np.ndarray | None,
    grad_output: np.ndarray | None,
    device: str,
    mode: str,
) -> Task:
    return Task(
        case_id=case.id,
        loss=case.loss,
        api=entry.api,
        input=x,
        target=target,
        target_kind=case.target_kind,  # type: ignore[arg-type]  # validated by the schema
        params=_array_params(case, x.ndim),
        device=device,
        mode=mode,
        grad_output=grad_output,
    )


def _array_params(case: Case, ndim: int) -> dict[str, Any]:
    """The case's parameters with its weights as arrays in the case dtype. Elementwise
    (binary) losses broadcast a weight against the input, so a per-class weight becomes
    (C, 1, ..., 1): along axis 1, as a user writes it for N-d input."""
    weight = case.weight()
    if weight is not None and {"binary", "real"} & set(oracle.LOSSES[case.loss].target_kinds):
        weight = weight.reshape((-1,) + (1,) * max(ndim - 2, 0))
    return dict(case.params, weight=weight, pos_weight=case.pos_weight())


def timestamp_dir(root: Path) -> Path:
    """``root/<UTC timestamp>``; a suffix keeps two runs in one second apart."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = root / stamp
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    return path


__all__ = [
    "FRAMEWORKS",
    "Session",
    "calls",
    "expected_for",
    "repro",
    "run",
    "timestamp_dir",
    "tolerance",
]

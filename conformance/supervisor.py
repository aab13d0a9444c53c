"""The parent side of a framework worker: start it, send Tasks, notice death and hangs.

A worker that dies (segfault, SIGKILL, abort) or exceeds the per-call timeout costs only the
Task in flight: the caller gets a :class:`Lost` with the tail of the worker's log, and the
next call starts a fresh worker.

Starting is judged apart from calling. A worker that *says* it cannot serve (the framework
is not importable, no GPU) raises :class:`WorkerUnavailable`: its rows are skipped. A worker
that dies or hangs while starting raises :class:`StartFailed`: that is a crash, and its rows
say so. A restart gets ``3 × (first start) + 10 s`` (at least the call timeout, at most the
start timeout): the framework already imported once, so a restart that takes much longer is
hung. After :data:`MAX_FAILED_STARTS` failed starts in a row the worker is given up, and
each later call is answered at once with a :class:`Lost` instead of another wait.

Memory: with ``max_rss`` set, the parent reads the worker's resident set size (VmRSS in
``/proc/<pid>/status``) every :data:`MEMORY_POLL` seconds while a call is in flight and
kills the worker once it is over; the call becomes a crashed :class:`Lost` that says so, and
the next call starts a fresh worker. The kill comes up to one poll late (what a worker can
allocate in 20 ms: ~100 MB); processes the worker starts itself (torch.compile's compile
workers) are not counted; where ``/proc`` is missing nothing is enforced (:func:`rss`
answers None). RLIMIT_AS would not do: it counts address space, not memory used. Measured
(2-core CPU), importing the framework and making one small call needs an address space of
1 GiB for torch and paddle, 1.5-2 GiB for TensorFlow and 2 GiB for JAX, whose workers then
hold 220, 290, 680 and 170 MiB; below that the import fails or the process aborts
(std::bad_alloc), which says nothing about the case.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from conformance import adapters
from conformance.protocol import Outcome, Task

STDERR_TAIL = 3000
MAX_FAILED_STARTS = 3
_POLL = 0.1  # seconds between checks for cancellation while a worker starts
MEMORY_POLL = 0.02  # seconds between reads of a worker's memory while a call is in flight
MIB = 2**20


def rss(pid: int | None) -> int | None:
    """The resident set size of process ``pid`` in bytes, or None where it cannot be read
    (no /proc, the process is gone or a zombie)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True)
class Lost:
    """The worker did not answer: ``kind`` is "crashed" or "timeout"."""

    kind: str
    reason: str
    stderr_tail: str


class WorkerUnavailable(Exception):
    """The worker cannot serve this run (framework missing, no such device, import failed)."""


class StartFailed(Exception):
    """The worker process died or hung while starting (a crash, not "not installed")."""

    def __init__(self, kind: str, reason: str, stderr_tail: str) -> None:
        super().__init__(reason)
        self.lost = Lost(kind, reason, stderr_tail)


class Cancelled(Exception):
    """The run was asked to stop while this worker was starting."""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "worker stopped answering"
    if code < 0:
        try:
            return f"worker killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker killed by signal {-code}"
    return f"worker exited with status {code}"


class Worker:
    """One long-lived process serving one framework on one device.

    ``cancel``, when set, makes a start in progress give up at once (:class:`Cancelled`):
    a Ctrl-C must not wait for a framework's import. ``max_rss``: bytes of resident memory
    a call may take the worker to before it is killed (see the module docstring).
    """

    def __init__(
        self,
        framework: str,
        device: str,
        log_path: Path,
        *,
        start_timeout: float = 300.0,
        cancel: threading.Event | None = None,
        max_rss: int | None = None,
    ) -> None:
        self.framework = framework
        self.module = adapters.MODULES[framework]
        self.device = device
        self.log_path = Path(log_path)
        self.start_timeout = start_timeout
        self.cancel = cancel or threading.Event()
        self.max_rss = max_rss
        self.environment: dict[str, Any] = {}
        self.start_seconds: float | None = None  # of the first successful start
        self.start_rss: int | None = None  # bytes resident after the first successful start
        self.failed_starts = 0  # in a row; reset by a successful start
        self._last_failure: Lost | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._inbox: Connection | None = None  # tasks to the worker
        self._conn: Connection | None = None  # answers from the worker
        self._log_offset = 0

    def restart_timeout(self, call_timeout: float) -> float:
        """How long a restart may take (see the module docstring)."""
        if self.start_seconds is None:
            return self.start_timeout
        return min(self.start_timeout, max(call_timeout, 3 * self.start_seconds + 10))

    def start(self, timeout: float | None = None) -> dict[str, Any]:
        """Start the process and wait until the adapter is imported; returns its environment.

        Raises WorkerUnavailable (the worker says it cannot serve), StartFailed (it died or
        hung while starting) or Cancelled.
        """
        timeout = self.start_timeout if timeout is None else timeout
        began = time.monotonic()
        try:
            environment = self._start(timeout)
        except StartFailed as exc:
            self.failed_starts += 1
            self._last_failure = exc.lost
            raise
        self.failed_starts, self._last_failure = 0, None
        if self.start_seconds is None:
            self.start_seconds = time.monotonic() - began
            self.start_rss = rss(self.pid)
        return environment

    def _start(self, timeout: float) -> dict[str, Any]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        self._log_offset = self.log_path.stat().st_size
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "conformance.worker", self.module, self.device],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                # The child must import what this process can (e.g. an adapter added at run time).
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
                # Own session: a terminal's Ctrl-C goes to the runner, which finishes the calls
                # in flight; a worker whose runner dies sees EOF on stdin and exits.
                start_new_session=True,
            )
        assert proc.stdin is not None and proc.stdout is not None
        # Connection owns (and closes) its descriptor, so give it duplicates.
        parent = Connection(os.dup(proc.stdout.fileno()), writable=False)
        self._inbox = Connection(os.dup(proc.stdin.fileno()), readable=False)
        proc.stdout.close()
        proc.stdin.close()
        self._proc, self._conn = proc, parent
        deadline = time.monotonic() + timeout
        while not parent.poll(_POLL):
            if self.cancel.is_set():
                self._kill()
                raise Cancelled(f"{self.framework} worker: stopped while starting")
            if time.monotonic() >= deadline:
                tail = self.stderr_tail()
                self._kill()
                raise StartFailed(
                    "timeout", f"{self.framework} worker did not start within {timeout:g} s", tail
                )
        try:
            kind, payload = parent.recv()
        except (EOFError, OSError):
            code = self._reap()
            raise StartFailed(
                "crashed",
                f"{self.framework} worker died while starting ({_describe_exit(code)})",
                self.stderr_tail(),
            ) from None
        if kind != "ready":
            self._reap()
            raise WorkerUnavailable(str(payload))
        self.environment = dict(payload)
        return self.environment

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def call(self, task: Task, timeout: float) -> Outcome | Lost:
        """Send one Task; a dead or hung worker becomes a Lost and is restarted on next use.

        Raises Cancelled when the run is stopped while a restart is in progress (no call was
        made, so there is nothing to record).
        """
        if self._proc is None or self._proc.poll() is not None:
            if self.failed_starts >= MAX_FAILED_STARTS:
                last = self._last_failure
                return Lost(
                    "crashed",
                    f"not restarted after {self.failed_starts} failed starts in a row"
                    + (f"; last: {last.reason}" if last else ""),
                    last.stderr_tail if last else "",
                )
            try:
                self.start(self.restart_timeout(timeout))
            except StartFailed as exc:
                return exc.lost
            except WorkerUnavailable as exc:  # worked before, refuses now: a broken restart
                return Lost("crashed", f"worker could not be restarted: {exc}", "")
        assert self._conn is not None and self._inbox is not None
        try:
            self._inbox.send(task)
            lost = self._await_answer(timeout)
            if lost is not None:
                return lost
            answer: Outcome = self._conn.recv()
            if answer.poisoned:  # the worker stops; the next call starts a fresh one
                self._reap()
            return answer
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self._reap()
            return Lost("crashed", _describe_exit(code), self.stderr_tail())

    def _await_answer(self, timeout: float) -> Lost | None:
        """Wait for the answer to the Task in flight: None once it is there, or the Lost
        of a worker killed for taking longer than ``timeout`` or more memory than
        ``max_rss``."""
        assert self._conn is not None
        deadline = time.monotonic() + timeout
        step = timeout if self.max_rss is None else MEMORY_POLL
        while True:
            if self._conn.poll(max(min(step, deadline - time.monotonic()), 0)):
                return None
            used = rss(self.pid) if self.max_rss is not None else None
            if used is not None and self.max_rss is not None and used > self.max_rss:
                tail = self.stderr_tail()
                self._kill()
                return Lost(
                    "crashed",
                    f"worker exceeded --max-worker-mem {self.max_rss / MIB:.0f} MiB "
                    f"(RSS {used / MIB:.0f} MiB); killed",
                    tail,
                )
            if time.monotonic() >= deadline:
                tail = self.stderr_tail()
                self._kill()
                return Lost("timeout", f"no answer within {timeout:g} s; worker killed", tail)

    def make_room(self, need: int) -> bool:
        """Stop the worker when its resident memory plus ``need`` bytes would pass
        ``max_rss``; the next call starts a fresh one. Frameworks keep memory after a call
        (allocator caches, freed heap not given back: torch's worker grows by about one
        input per large call; JAX's compilation caches by ~1 GiB over 100 s of the shipped
        cases), and that must not get a call that fits a fresh worker killed. True when it
        was stopped."""
        if self.max_rss is None or self._proc is None or self._proc.poll() is not None:
            return False
        used = rss(self.pid)
        if used is None or used + need <= self.max_rss:
            return False
        self.stop()
        return True

    def stderr_tail(self) -> str:
        """What this worker wrote to its log since it last started (the last few KB)."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._log_offset)
                data = f.read()
        except OSError:
            return ""
        return data[-STDERR_TAIL:].decode("utf-8", "replace")

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None and self._inbox is not None:
            try:
                self._inbox.send(None)
                self._proc.wait(2)  # a framework's teardown may be slow; then it is killed
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def _reap(self) -> int | None:
        assert self._proc is not None
        try:
            code: int | None = self._proc.wait(10)
        except subprocess.TimeoutExpired:
            code = None
        self._kill()
        return code

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        for conn in (self._conn, self._inbox):
            if conn is not None:
                conn.close()
        self._conn = self._inbox = None

"""The parent side of a framework worker: start it, send Tasks, notice death and hangs.

A worker that dies (segfault, SIGKILL, abort) or exceeds the per-call timeout costs only the
Task in flight: the caller gets a :class:`Lost` with the tail of the worker's log, and the
next call starts a fresh worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from conformance import adapters
from conformance.protocol import Outcome, Task

STDERR_TAIL = 3000


@dataclass(frozen=True)
class Lost:
    """The worker did not answer: ``kind`` is "crashed" or "timeout"."""

    kind: str
    reason: str
    stderr_tail: str


class WorkerUnavailable(Exception):
    """The worker cannot serve this run (framework missing, no such device, import failed)."""


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
    """One long-lived process serving one framework on one device."""

    def __init__(
        self, framework: str, device: str, log_path: Path, *, start_timeout: float = 300.0
    ) -> None:
        self.framework = framework
        self.module = adapters.MODULES[framework]
        self.device = device
        self.log_path = Path(log_path)
        self.start_timeout = start_timeout
        self.environment: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._inbox: Connection | None = None  # tasks to the worker
        self._conn: Connection | None = None  # answers from the worker
        self._log_offset = 0

    def start(self) -> dict[str, Any]:
        """Start the process and wait until the adapter is imported; returns its environment."""
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
        if not parent.poll(self.start_timeout):
            self._kill()
            raise WorkerUnavailable(
                f"{self.framework} worker did not start within {self.start_timeout:.0f} s"
            )
        try:
            kind, payload = parent.recv()
        except EOFError:
            code = self._reap()
            raise WorkerUnavailable(
                f"{self.framework} worker died while starting ({_describe_exit(code)}): "
                + self.stderr_tail()[-500:]
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
        """Send one Task; a dead or hung worker becomes a Lost and is restarted on next use."""
        if self._proc is None or self._proc.poll() is not None:
            self.start()
        assert self._conn is not None and self._inbox is not None
        try:
            self._inbox.send(task)
            if not self._conn.poll(timeout):
                tail = self.stderr_tail()
                self._kill()
                return Lost("timeout", f"no answer within {timeout:g} s; worker killed", tail)
            answer: Outcome = self._conn.recv()
            return answer
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self._reap()
            return Lost("crashed", _describe_exit(code), self.stderr_tail())

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

"""The child side of a framework worker: import one adapter, then serve Tasks until told to stop.

Runs in its own process (``multiprocessing`` spawn context) so that frameworks which cannot
share a process (``import tensorflow`` then ``import paddle`` segfaults) never meet, and a
crash costs only the Task in flight. The framework's own stdout/stderr chatter goes to a log
file whose tail the parent reports when this process dies.

Started by the parent as ``python -m conformance.worker ADAPTER_MODULE DEVICE`` with stderr already
pointed at the log file: Tasks arrive on stdin, answers leave on the original stdout, and
stdout is then pointed at the log too, so nothing a framework prints can corrupt the channel.
(A plain subprocess rather than multiprocessing's spawn: spawn re-imports the caller's
``__main__``, which breaks scripts without a main guard.)
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from conformance.adapters._entry import CallFailed, Entry, Unavailable, Unsupported
from conformance.adapters._entry import unsupported_reason as _unsupported_reason
from conformance.protocol import Outcome, Task

_MAX_REASON = 2000


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def handle(
    entry: Entry,
    task: Task,
    not_implemented: tuple[str, ...] = (),
    poisoned: tuple[str, ...] = (),
) -> Outcome:
    """Run one Task against one entry, turning every way it can end into an Outcome.

    ``not_implemented`` holds the adapter's patterns (regular expressions) for the
    framework's own "no kernel for this dtype/device" errors: such a raise is the outcome
    ``not-implemented``, not a failure of the API. ``poisoned`` holds its patterns for
    errors after which the framework is unusable in this process (a CUDA device-side
    assert): the Outcome says so, and the worker is replaced before the next Task.
    """
    reason = _unsupported_reason(entry, task)
    if reason is not None:
        return Outcome("unsupported", reason=reason)
    start = time.perf_counter()
    try:
        outputs, call = entry.run(task)
    except Unsupported as exc:
        return Outcome("unsupported", reason=_one_line(str(exc)))
    except CallFailed as exc:
        message = str(exc)
        missing = any(re.search(pattern, message) for pattern in not_implemented)
        return Outcome(
            "not-implemented" if missing else "raised",
            call=exc.call,
            reason=_one_line(str(exc)),
            seconds=time.perf_counter() - start,
            poisoned=any(re.search(pattern, message) for pattern in poisoned),
        )
    return Outcome("ok", call=call, outputs=outputs, seconds=time.perf_counter() - start)


def serve(module: str, device: str, inbox: Connection, conn: Connection) -> None:
    """Send ("ready", env) or ("unavailable", reason) once, then answer each Task from
    ``inbox`` with an Outcome on ``conn``; None (or the parent going away) stops the worker."""
    try:
        adapter = importlib.import_module(module)
        env: dict[str, Any] = adapter.environment(device)
    except Unavailable as exc:
        conn.send(("unavailable", str(exc)))
        return
    except Exception as exc:  # an import that fails is a reason to skip, not a crash
        traceback.print_exc()
        conn.send(("unavailable", _one_line(f"{type(exc).__name__}: {exc}")))
        return
    try:  # the framework's public losses against the entries (the report's census)
        from conformance import census

        found = census.summary(str(getattr(adapter, "FRAMEWORK", "")))
        if found:
            env["census"] = found
    except Exception as exc:  # the census informs the report; it never stops a run
        env["census"] = {"error": _one_line(f"{type(exc).__name__}: {exc}")}
    entries = {entry.api: entry for entry in adapter.ENTRIES}
    not_implemented = tuple(getattr(adapter, "NOT_IMPLEMENTED", ()))
    poisoned = tuple(getattr(adapter, "POISONED", ()))
    poisoning = getattr(adapter, "POISONING", None)
    conn.send(("ready", env))
    while True:
        try:
            task = inbox.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            outcome = handle(entries[task.api], task, not_implemented, poisoned)
        except Exception as exc:  # a bug in the adapter itself: report it, keep serving
            traceback.print_exc()
            outcome = Outcome(
                "raised", reason=_one_line(f"adapter bug: {type(exc).__name__}: {exc}")
            )
        if not outcome.poisoned and poisoning is not None and poisoning(task):
            # a call known to corrupt the process even when it returns (or raises
            # something else): replaced before the next Task can be hit by it
            outcome = dataclasses.replace(outcome, poisoned=True)
        conn.send(outcome)
        if outcome.poisoned:  # nothing this process computes from now on can be trusted
            return


def main(argv: list[str]) -> None:
    module, device = argv
    answers = os.dup(1)
    os.dup2(2, 1)  # the framework's prints go to the log, not into the channel
    serve(module, device, Connection(0, writable=False), Connection(answers, readable=False))


if __name__ == "__main__":
    main(sys.argv[1:])

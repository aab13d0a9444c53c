"""A test-only adapter whose entries misbehave on purpose, to exercise the worker machinery.

It is not a framework: ``fake.exact`` returns the oracle's own numbers (so its rows pass),
``fake.crash`` kills its own process with SIGKILL on cases whose id contains "crash",
``fake.hang`` sleeps on cases whose id contains "hang", ``fake.raise`` raises inside the call.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from conformance import oracle
from conformance.adapters._entry import Entry, calling
from conformance.protocol import Task

FRAMEWORK = "fake"
REQUIRES = ("numpy",)
SNIPPET = "loss = {call}\n"
_ALL = frozenset({"none", "mean", "sum"})


def environment(device: str) -> dict[str, str]:
    print("fake adapter starting", flush=True)  # must land in the log, not the channel
    return {"fake": "1.0", "device": device}


def _exact(task: Task) -> dict[str, np.ndarray]:
    kw = {k: v for k, v in task.params.items() if k in oracle.LOSSES[task.loss].params}
    return {
        "loss": oracle.cross_entropy(task.input, task.target, **kw).astype(task.input.dtype),
        "grad": oracle.cross_entropy_grad(task.input, task.target, **kw).astype(task.input.dtype),
    }


def _run_exact(task: Task) -> tuple[dict[str, np.ndarray], str]:
    return _exact(task), "fake.exact(x, t)"


def _run_crash(task: Task) -> tuple[dict[str, np.ndarray], str]:
    if "crash" in task.case_id:
        print("about to die", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    return _exact(task), "fake.crash(x, t)"


def _run_hang(task: Task) -> tuple[dict[str, np.ndarray], str]:
    if "hang" in task.case_id:
        time.sleep(60)
    return _exact(task), "fake.hang(x, t)"


def _run_raise(task: Task) -> tuple[dict[str, np.ndarray], str]:
    with calling("fake.raise(x, t)"):
        raise RuntimeError("Target 3 is out of bounds")
    raise AssertionError("unreachable")


def _entry(api: str, run: object) -> Entry:
    return Entry(
        api,
        "cross_entropy",
        frozenset({"index", "probs"}),
        frozenset({"weight", "ignore_index", "label_smoothing"}),
        _ALL,
        run,
    )  # type: ignore[arg-type]


ENTRIES = (
    _entry("fake.exact", _run_exact),
    _entry("fake.crash", _run_crash),
    _entry("fake.hang", _run_hang),
    _entry("fake.raise", _run_raise),
)

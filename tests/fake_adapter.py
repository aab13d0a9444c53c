"""A test-only adapter whose entries misbehave on purpose, to exercise the worker machinery.

It is not a framework: ``fake.exact`` returns the oracle's own numbers (so its rows pass),
``fake.crash`` kills its own process with SIGKILL on cases whose id contains "crash",
``fake.hang`` sleeps on cases whose id contains "hang", ``fake.raise`` raises inside the call,
and on cases whose id contains "poison" raises a CUDA-style error that leaves the process
unusable (every later call of any entry raises it too, as a CUDA device-side assert does).
Every entry, on cases whose id contains "taint", returns the right numbers but leaves the
process corrupt: the next call of any entry aborts it (as Paddle's nll_loss heap corruption
does); ``POISONING`` declares those calls.
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
POISONED = (r"CUDA error: ",)
_ASSERT = "CUDA error: device-side assert triggered"
_poisoned = False
_tainted = False


def POISONING(task: Task) -> bool:
    return "taint" in task.case_id


def environment(device: str) -> dict[str, str]:
    print("fake adapter starting", flush=True)  # must land in the log, not the channel
    return {"fake": "1.0", "device": device}


def _exact(task: Task) -> dict[str, np.ndarray]:
    global _tainted
    if _poisoned:
        raise RuntimeError(_ASSERT)
    if _tainted:
        os.kill(os.getpid(), signal.SIGABRT)
    _tainted = "taint" in task.case_id
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
    global _poisoned
    with calling("fake.raise(x, t)"):
        if "poison" in task.case_id:
            _poisoned = True
            raise RuntimeError(_ASSERT)
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

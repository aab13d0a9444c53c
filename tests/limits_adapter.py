"""Test-only adapter for the run limits (tests/test_limits.py), built on tests/fake_adapter.py.

``limits.exact`` returns the oracle's numbers (as ``fake.exact``), after sleeping ``SLOW``
seconds on cases whose id contains "slow". ``limits.hog`` does the same, but on cases whose
id contains "hog" it first fills ``HOG`` bytes and holds them for ``HOLD`` seconds (a call
that needs more memory than the worker may have), and on cases whose id contains "keep" it
fills ``KEEP`` bytes it never frees (memory a framework keeps after a call).
"""

from __future__ import annotations

import time

import numpy as np
from fake_adapter import _entry, _exact, environment

from conformance.protocol import Task

FRAMEWORK = "limits"
REQUIRES = ("numpy",)
SNIPPET = "loss = {call}\n"
SLOW = 1.5
HOG = 400 * 2**20
HOLD = 10.0
KEEP = 150 * 2**20
_kept: list[np.ndarray] = []


def _run_exact(task: Task) -> tuple[dict[str, np.ndarray], str]:
    if "slow" in task.case_id:
        time.sleep(SLOW)
    return _exact(task), "limits.exact(x, t)"


def _run_hog(task: Task) -> tuple[dict[str, np.ndarray], str]:
    if "hog" in task.case_id:
        held = np.ones(HOG, dtype=np.uint8)  # ones, not zeros: every page is touched
        time.sleep(HOLD)
        del held
    if "keep" in task.case_id:
        _kept.append(np.ones(KEEP, dtype=np.uint8))
    return _exact(task), "limits.hog(x, t)"


ENTRIES = (_entry("limits.exact", _run_exact), _entry("limits.hog", _run_hog))
__all__ = ["ENTRIES", "FRAMEWORK", "REQUIRES", "SNIPPET", "environment"]

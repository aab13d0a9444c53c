"""Test-only adapter with one entry that returns the true oracle's numbers in the case dtype.

Used by the mutation test: the parent judges these rows with a deliberately wrong oracle,
and some shipped case must then fail.
"""

from __future__ import annotations

from fake_adapter import _entry, _run_exact, environment

FRAMEWORK = "exact"
REQUIRES = ("numpy",)
SNIPPET = "loss = {call}\n"
ENTRIES = (_entry("exact.oracle", _run_exact),)
__all__ = ["ENTRIES", "FRAMEWORK", "REQUIRES", "SNIPPET", "environment"]

"""Framework adapters: one module per framework, imported only inside that framework's worker.

``MODULES`` maps a framework name to its adapter module. Third-party adapters can be added
to this mapping before a run; the core never imports a framework itself.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from conformance.adapters._entry import Entry, Unavailable, Unsupported, unsupported_reason

__all__ = ["MODULES", "Entry", "Unavailable", "Unsupported", "load", "unsupported_reason"]

MODULES: dict[str, str] = {
    "torch": "conformance.adapters.torch",
    "tensorflow": "conformance.adapters.tensorflow",
    "jax": "conformance.adapters.jax",
    "paddle": "conformance.adapters.paddle",
}


def load(framework: str) -> ModuleType:
    """Import the adapter module of ``framework`` (this does not import the framework)."""
    return importlib.import_module(MODULES[framework])

"""Framework adapters: one module per framework, imported only inside that framework's worker.

``MODULES`` maps a framework name to its adapter module path. It is built once, on import,
from the entry points of the group ``conformance.adapters`` (name = module path, e.g.
``onnxruntime = "conformance.adapters.onnxruntime"`` in this package's pyproject.toml), so
a third-party distribution adds a runtime by declaring one entry point, without touching
the core. Discovery reads package metadata only: it imports no adapter and no framework.

Order: the four built-ins first (``BUILTINS``: torch, tensorflow, jax, paddle), then every
other discovered name, sorted. The built-ins are in ``MODULES`` even when the package
metadata is missing or stale (a source tree that was never installed).

Name clashes (each reported with :class:`AdapterClash`, a warning on stderr naming both):

- a built-in name is reserved: an entry point that maps it to another module (a third
  party's ``torch = "theirs.adapter"``) is ignored, and the built-in stays;
- two distributions that map one new name to different modules: the one whose
  distribution name sorts first is kept, and the other is ignored.

Tests and scripts may still add names to ``MODULES`` before a run (``MODULES["fake"] =
"fake_adapter"``); the core never imports a framework itself.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterable
from importlib import metadata
from types import ModuleType

from conformance.adapters._entry import (
    Entry,
    Unavailable,
    Unsupported,
    lacking,
    unsupported_reason,
)

__all__ = [
    "BUILTINS",
    "GROUP",
    "MODULES",
    "AdapterClash",
    "Entry",
    "Unavailable",
    "Unsupported",
    "discover",
    "lacking",
    "load",
    "unsupported_reason",
]

GROUP = "conformance.adapters"
BUILTINS: dict[str, str] = {
    "torch": "conformance.adapters.torch",
    "tensorflow": "conformance.adapters.tensorflow",
    "jax": "conformance.adapters.jax",
    "paddle": "conformance.adapters.paddle",
}


class AdapterClash(UserWarning):
    """Two adapters claim one framework name; the message names both and the one kept."""


def _origin(entry_point: metadata.EntryPoint) -> str:
    dist = entry_point.dist
    return f"distribution {dist.name!r}" if dist is not None else "an unnamed distribution"


def discover(found: Iterable[metadata.EntryPoint] | None = None) -> dict[str, str]:
    """Framework name -> adapter module path: ``BUILTINS``, then the entry points of
    ``GROUP`` (``found``, or those of the installed distributions), clashes resolved and
    reported as the module docstring says."""
    if found is None:
        try:
            found = metadata.entry_points(group=GROUP)
        except Exception as exc:  # unreadable metadata must not cost the built-ins
            warnings.warn(
                f"cannot read the {GROUP!r} entry points ({type(exc).__name__}: {exc}); "
                "only the built-in adapters are available",
                AdapterClash,
                stacklevel=2,
            )
            found = ()
    kept: dict[str, metadata.EntryPoint] = {}
    ordered = sorted(found, key=lambda ep: (ep.name, ep.dist.name if ep.dist else "", ep.value))
    for ep in ordered:
        builtin = BUILTINS.get(ep.name)
        if builtin is not None:
            if ep.value != builtin:
                warnings.warn(
                    f"adapter {ep.name!r}: {_origin(ep)} maps it to {ep.value!r}, but "
                    f"{ep.name!r} is a built-in ({builtin!r}); the built-in is kept",
                    AdapterClash,
                    stacklevel=2,
                )
            continue
        first = kept.get(ep.name)
        if first is None:
            kept[ep.name] = ep
        elif first.value != ep.value:
            warnings.warn(
                f"adapter {ep.name!r}: {_origin(first)} maps it to {first.value!r} and "
                f"{_origin(ep)} to {ep.value!r}; the first is kept",
                AdapterClash,
                stacklevel=2,
            )
    return {**BUILTINS, **{name: kept[name].value for name in sorted(kept)}}


MODULES: dict[str, str] = discover()


def load(framework: str) -> ModuleType:
    """Import the adapter module of ``framework`` (this does not import the framework)."""
    return importlib.import_module(MODULES[framework])

"""The declaration every adapter entry makes, and the framework-free support check.

An adapter module (``conformance/adapters/<framework>/``: the framework interpreter in
``__init__``, its entries in one module per loss family) exposes:

``FRAMEWORK``
    the framework's name as used on the command line (``torch``, ``tensorflow`` ...).
``REQUIRES``
    the importable distributions it needs (checked with ``importlib.util.find_spec``
    before a worker is started, so a missing framework costs nothing).
``ENTRIES``
    a tuple of :class:`Entry`, one per public API a user would call.
``environment(device) -> dict[str, str]``
    versions and device names; raises :class:`Unavailable` when ``device`` cannot be used.
``OUT_OF_SCOPE`` / ``OUT_OF_SCOPE_APIS`` (optional)
    (loss, reason) for the suite's losses the framework has no API for; (api, reason) for
    the framework's public APIs of these families that are not entries.
``NOT_IMPLEMENTED`` (optional)
    regular expressions matching the framework's own "no kernel for this dtype/device"
    errors; a call that raises one gets the verdict ``not-implemented``.
``POISONED`` (optional)
    regular expressions matching errors after which the framework is unusable in this
    process (a CUDA device-side assert); the call's row records the error, and the worker
    is replaced before the next Task.
``POISONING(task) -> bool`` (optional)
    says which calls are known to corrupt the framework's process even when they return
    (heap corruption that aborts a later call); the worker is replaced after each one.
``CENSUS_NAMESPACES`` / ``CENSUS_NOTE`` (optional)
    for a runtime that is not in ``conformance.census.NAMESPACES`` (a plugin): the
    namespaces its public losses live in, or ``()`` and a note saying why it has none (ONNX
    Runtime runs exported graphs and has no loss API of its own).

Adapter modules import their framework inside functions only, so the declarations can be
read (``conformance list --entries``) in one process without importing any framework.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from conformance.oracle.options import Declared
from conformance.oracle.params import PARAMS, used
from conformance.protocol import Task

Run = Callable[[Task], tuple[dict[str, np.ndarray], str]]


class Unavailable(Exception):
    """The framework is installed but cannot serve this run (e.g. no GPU visible to it)."""


class Unsupported(Exception):
    """Raised by an entry's ``run`` when the case needs something its API cannot express."""


class CallFailed(Exception):
    """The framework raised during ``call``; carries the call text and the original error."""

    def __init__(self, call: str, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.call = call


@contextmanager
def calling(call: str) -> Iterator[None]:
    """Attach the exact call text to whatever the framework raises inside the block."""
    try:
        yield
    except Unsupported:
        raise
    except Exception as exc:
        raise CallFailed(call, exc) from exc


@dataclass(frozen=True)
class Entry:
    """One public API entry point.

    ``params`` lists the canonical parameters the API accepts natively (``weight``,
    ``ignore_index``, ``label_smoothing``); ``reductions`` the reductions it can express
    (natively, or with the framework's own reduce op, which then appears in the call text);
    ``targets`` the target kinds it takes (``index``, ``probs``). ``run`` makes the call and
    returns the outputs (``loss``, ``grad`` w.r.t. the input by the framework's autodiff, in
    the canonical channel-first layout) and the exact call text. ``profile`` declares the
    semantic options (conformance/oracle/options.py) where the framework documents a
    definition other than the canonical one, each with its upstream link: a row that
    misses canonical but matches them is a ``semantic-difference``, not a defect.
    ``lacks`` names, with the reason, each output the API never returns (an inference
    runtime computes no gradient): ``run`` leaves it out, and its rows are ``unsupported``
    with that reason rather than a mismatch for a missing value (see :func:`lacking`).
    """

    api: str
    loss: str
    targets: frozenset[str]
    params: frozenset[str]
    reductions: frozenset[str]
    run: Run
    doc: str = ""
    profile: tuple[Declared, ...] = ()
    modes: frozenset[str] = frozenset({"eager"})
    # A further support check of the entry's own (see _spec.Spec.unsupported).
    unsupported: Callable[[Task], str | None] | None = None
    # (output, reason) for each output ("loss", "grad") the API never returns.
    lacks: tuple[tuple[str, str], ...] = ()


def used_params(task: Task) -> set[str]:
    """The canonical parameters that change the result of ``task`` (all but ``reduction``,
    which :func:`unsupported_reason` checks against the entry's reductions).

    ``ignore_index`` counts only when some target equals it: an index nobody uses changes
    nothing, so APIs without it can still be compared on that case
    (conformance/oracle/params.py decides).
    """
    return {
        name
        for name, value in task.params.items()
        if name != "reduction"
        and name in PARAMS
        and used(name, value, task.target, task.target_kind)
    }


def unsupported_reason(entry: Entry, task: Task) -> str | None:
    """Why ``entry`` cannot take ``task`` as written, or None when it can."""
    if task.loss != entry.loss:
        return f"{entry.api} implements {entry.loss}, not {task.loss}"
    if task.target_kind not in entry.targets:
        return (
            f"{entry.api} takes {'/'.join(sorted(entry.targets))} targets, not {task.target_kind}"
        )
    missing = sorted(used_params(task) - entry.params)
    if missing:
        return f"{entry.api} has no native parameter for {', '.join(missing)}"
    reduction = task.params.get("reduction", "mean")
    if reduction not in entry.reductions:
        return f"{entry.api} cannot express reduction={reduction!r}"
    if task.mode not in entry.modes:
        return f"{entry.api} has no {task.mode!r} mode (has: {', '.join(sorted(entry.modes))})"
    if entry.unsupported is not None:
        return entry.unsupported(task)
    return None


def lacking(entry: Entry, output: str) -> str | None:
    """Why ``entry`` never returns ``output`` (its row is ``unsupported``), or None when it
    returns it."""
    return dict(entry.lacks).get(output)

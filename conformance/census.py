"""API census: every public loss-like callable of each installed framework, and whether the
suite covers it.

For each framework a child process (``python -m conformance.census FRAMEWORK``, one
framework per process: TensorFlow and Paddle cannot share one) imports the framework and its
adapter, walks the framework's loss namespaces and prints one JSON object per callable whose
name looks like a loss. Each is classified by *identity* (``tf.nn.sigmoid`` is
``tf.math.sigmoid``; ``optax.sigmoid_focal_loss`` is ``optax.losses.sigmoid_focal_loss``):

- ``covered``: the same object as an adapter entry's API (the entry is named);
- ``out-of-scope``: the same object as an API the adapter lists out of scope, with its reason;
- ``pending``: a loss an open issue is adding (``PENDING``, with the issue);
- ``not-covered``: none of these. A framework upgrade that adds a loss shows up here, and
  ``conformance census`` exits 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from conformance import adapters

__all__ = ["NAMESPACES", "PENDING", "Finding", "census", "main", "namespaces", "summary"]

# Where each framework keeps its losses, as users name them.
NAMESPACES: dict[str, tuple[str, ...]] = {
    "torch": ("torch.nn.functional", "torch.nn"),
    "tensorflow": ("tf.nn", "tf.compat.v1.losses", "keras.losses", "keras.ops"),
    "jax": ("optax.losses",),
    "paddle": ("paddle.nn.functional", "paddle.nn"),
}
# A public name that looks like a loss; Keras' losses module holds nothing else (but the
# helpers below), so everything in it counts.
_LOSS_NAME = re.compile(
    r"(loss|entropy|divergence|_error$|error_cost|^dice|tversky|huber|hinge|^nll|kl_div"
    r"|absolute_difference)",
    re.IGNORECASE,
)
# Public callables of the loss namespaces that are machinery, not losses.
HELPERS: dict[str, str] = {
    "keras.losses.Loss": "the base class of Keras losses",
    "keras.losses.LossFunctionWrapper": "wraps a loss function into a Loss class",
    "keras.losses.get": "looks a loss up by name",
    "keras.losses.serialize": "serialisation helper",
    "keras.losses.deserialize": "serialisation helper",
    "keras.losses.Reduction": "reduction constants",
    "tf.compat.v1.losses.Reduction": "reduction constants",
    "tf.compat.v1.losses.add_loss": "adds a tensor to the loss collection (graph helper)",
    "tf.compat.v1.losses.get_losses": "reads the loss collection (graph helper)",
    "tf.compat.v1.losses.get_regularization_loss": "reads the regularisation collection",
    "tf.compat.v1.losses.get_regularization_losses": "reads the regularisation collection",
    "tf.compat.v1.losses.get_total_loss": "sums the loss collection (graph helper)",
    "tf.compat.v1.losses.compute_weighted_loss": "the weighting/reduction helper of v1 losses",
    "tf.nn.compute_average_loss": "a distribution-strategy scaling helper, not a loss",
    "tf.nn.scale_regularization_loss": "a distribution-strategy scaling helper, not a loss",
    "optax.losses.make_fenchel_young_loss": "builds a loss from a function, not a loss",
}
# Losses an open issue is adding: reported, not failing.
PENDING: dict[str, str] = {}


@dataclass(frozen=True)
class Finding:
    framework: str
    name: str
    status: str  # covered | out-of-scope | pending | not-covered
    detail: str  # the entry, the reason, or the issue


def _looks_like_a_loss(namespace: str, name: str) -> bool:
    if namespace == "keras.losses":
        return True
    return bool(_LOSS_NAME.search(name))


def namespaces(framework: str) -> tuple[str, ...]:
    """Where ``framework`` keeps its losses: ``NAMESPACES`` for the built-ins, else what its
    adapter module declares (``CENSUS_NAMESPACES``; a plugin runtime without a loss API of
    its own declares ``()``, and none for a test double)."""
    if framework in NAMESPACES:
        return NAMESPACES[framework]
    return tuple(getattr(adapters.load(framework), "CENSUS_NAMESPACES", ()))


def _walk(framework: str, resolve: Any) -> Iterator[tuple[str, Any]]:
    for namespace in namespaces(framework):
        module = resolve(namespace)
        for name in sorted(dir(module)):
            if name.startswith("_") or not _looks_like_a_loss(namespace, name):
                continue
            obj = getattr(module, name, None)
            if callable(obj):
                yield f"{namespace}.{name}", obj


def _base(api: str) -> str:
    """An entry's API without its variant suffix (``…[channels-last]``, ``…(from_logits=…)``)."""
    return re.split(r"[\[(]", api, maxsplit=1)[0]


def classify(framework: str) -> list[Finding]:
    """The census of ``framework`` in this process (imports it: call from a child)."""
    module = adapters.load(framework)
    resolve = module.resolve
    by_id: dict[int, tuple[str, str]] = {}
    for reason_api, reason in getattr(module, "OUT_OF_SCOPE_APIS", ()):
        with contextlib.suppress(Exception):
            by_id[id(resolve(reason_api))] = ("out-of-scope", reason)
    for entry in module.ENTRIES:
        with contextlib.suppress(Exception):
            by_id[id(resolve(_base(entry.api)))] = ("covered", _base(entry.api))
    findings = []
    for name, obj in _walk(framework, resolve):
        status, detail = by_id.get(id(obj), ("", ""))
        if not status and name in HELPERS:
            status, detail = "out-of-scope", HELPERS[name]
        if not status and name in PENDING:
            status, detail = "pending", PENDING[name]
        findings.append(Finding(framework, name, status or "not-covered", detail))
    return findings


def census(frameworks: list[str], timeout: float = 300.0) -> dict[str, list[Finding] | str]:
    """Each framework's findings, from a child process each; a string says why there are
    none (not installed, or the child failed)."""
    out: dict[str, list[Finding] | str] = {}
    for framework in frameworks:
        proc = subprocess.run(
            [sys.executable, "-m", "conformance.census", framework],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-1:])
            out[framework] = f"census failed: {tail}" if tail else "census failed"
            continue
        rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        if rows and "unavailable" in rows[0]:
            out[framework] = str(rows[0]["unavailable"])
        else:
            out[framework] = [Finding(**row) for row in rows]
    return out


def counts(findings: list[Finding]) -> Mapping[str, int]:
    result = {"covered": 0, "out-of-scope": 0, "pending": 0, "not-covered": 0}
    for f in findings:
        result[f.status] += 1
    return result


def summary(framework: str) -> dict[str, Any]:
    """The census of ``framework`` (already imported in this process, as in a worker) as the
    run records it in its environment: the counts and the names not covered; {} for a
    framework without loss namespaces (a test double, or a runtime such as ONNX Runtime that
    has no loss API of its own: its ``CENSUS_NOTE`` says so)."""
    if not namespaces(framework):
        note = getattr(adapters.load(framework), "CENSUS_NOTE", None)
        return {"note": note} if note else {}
    findings = classify(framework)
    return {
        **counts(findings),
        "not_covered": [f.name for f in findings if f.status == "not-covered"],
    }


def main(framework: str) -> int:
    """The child: print the census of ``framework`` as JSON lines on the real stdout."""
    real = os.dup(1)
    os.dup2(2, 1)  # whatever the framework prints on import goes to stderr
    try:
        module = adapters.load(framework)
        missing = [r for r in module.REQUIRES if not _importable(r)]
        if missing:
            lines = [json.dumps({"unavailable": f"not installed: {', '.join(missing)}"})]
        else:
            lines = [json.dumps(f.__dict__) for f in classify(framework)]
    finally:
        sys.stdout.flush()
        os.dup2(real, 1)
    print("\n".join(lines))
    return 0


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

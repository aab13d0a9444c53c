"""optax's sigmoid focal loss (per-element; mean/sum via jnp, shown in the call text)."""

from __future__ import annotations

from conformance.adapters._spec import Kw, Param, Spec, Tensor
from conformance.protocol import Task


def _has_alpha(task: Task) -> bool:
    return task.params.get("alpha") is not None


SPECS: tuple[Spec, ...] = (
    # alpha=None (no balancing) is optax's default, so alpha is passed only when the case has one
    Spec(
        "optax.sigmoid_focal_loss",
        "sigmoid_focal_loss",
        frozenset({"binary"}),
        args=(Tensor("input"), Tensor("target")),
        kwargs=(Kw("alpha", Param("alpha"), when=_has_alpha), Kw("gamma", Param("gamma"))),
        reduce={"mean": "jnp.mean", "sum": "jnp.sum"},
        doc="per-element losses; mean/sum via jnp.mean/jnp.sum",
    ),
)

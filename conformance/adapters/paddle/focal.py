"""Paddle's sigmoid focal loss (functional only: paddle.nn has no focal loss class)."""

from __future__ import annotations

from conformance.adapters._spec import Kw, Param, Spec, Tensor
from conformance.protocol import Task


def _needs_alpha(task: Task) -> str | None:
    """alpha is always applied (default 0.25): a case without alpha cannot be expressed."""
    if task.params.get("alpha") is None:
        return "paddle.nn.functional.sigmoid_focal_loss always applies alpha (no 'none')"
    return None


SPECS: tuple[Spec, ...] = (
    Spec(
        "paddle.nn.functional.sigmoid_focal_loss",
        "sigmoid_focal_loss",
        frozenset({"binary"}),
        args=(),
        kwargs=(
            Kw("logit", Tensor("input")),
            Kw("label", Tensor("target")),
            Kw("alpha", Param("alpha")),
            Kw("gamma", Param("gamma")),
            Kw("reduction", Param("reduction")),
        ),
        doc="normalizer not passed; the default reduction is 'sum', the case's is passed",
        unsupported=_needs_alpha,
    ),
)

"""Paddle entries: KL divergence, ``kl_div`` and ``KLDivLoss`` (PyTorch's signature: the input
holds log-probabilities, the label probabilities or, with ``log_target=True``,
log-probabilities; ``reduction='batchmean'`` divides the sum by the batch size)."""

from __future__ import annotations

from conformance.adapters._spec import Kw, Param, Spec, twins

_PROBS = frozenset({"probs"})
_REDUCTIONS = {r: r for r in ("none", "mean", "sum", "batchmean")}

SPECS: tuple[Spec, ...] = twins(
    "paddle.nn.functional.kl_div",
    "paddle.nn.KLDivLoss",
    "kl_div",
    _PROBS,
    kwargs=(
        Kw("reduction", Param("reduction", _REDUCTIONS)),
        Kw("log_target", Param("log_target")),
    ),
)

"""PyTorch entries: KL divergence, ``kl_div`` and ``KLDivLoss``.

The input holds log-probabilities, the target probabilities, or log-probabilities with
``log_target=True``; ``reduction='batchmean'`` divides the sum by the batch size (the
documented way to get the mathematical KL divergence; ``'mean'`` divides by every element).
"""

from __future__ import annotations

from conformance.adapters._spec import Kw, Param, Spec, twins

_PROBS = frozenset({"probs"})
_REDUCTIONS = {r: r for r in ("none", "mean", "sum", "batchmean")}

SPECS: tuple[Spec, ...] = twins(
    "torch.nn.functional.kl_div",
    "torch.nn.KLDivLoss",
    "kl_div",
    _PROBS,
    kwargs=(
        Kw("reduction", Param("reduction", _REDUCTIONS)),
        Kw("log_target", Param("log_target")),
    ),
)

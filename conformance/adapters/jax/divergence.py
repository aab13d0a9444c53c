"""optax entries: ``kl_divergence`` (probability targets) and
``kl_divergence_with_log_targets`` (log-probability targets, always: log_target=True).

Both take log-predictions and sum over ``axis`` (default -1): called with ``axis=1``, the
class axis of this suite's layout, they return one KL value per sample and position
(declared kl_axis=class_sum); mean/sum via jnp, as a user writes them. optax has no
'batchmean': ``jnp.mean`` of the per-sample values is it for (N, C) input.
"""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Spec, Tensor
from conformance.oracle.options import Declared

_PROBS = frozenset({"probs"})
_JNP = {"mean": "jnp.mean", "sum": "jnp.sum"}
_SUMMED = Declared(
    "kl_axis",
    "class_sum",
    "https://optax.readthedocs.io/en/latest/api/losses.html#optax.losses.kl_divergence",
)

SPECS: tuple[Spec, ...] = (
    Spec(
        "optax.losses.kl_divergence",
        "kl_div",
        _PROBS,
        args=(Tensor("input"), Tensor("target")),
        kwargs=(Kw("axis", Const(1)),),
        reduce=_JNP,
        profile=(_SUMMED,),
    ),
    Spec(
        "optax.losses.kl_divergence_with_log_targets",
        "kl_div",
        _PROBS,
        args=(Tensor("input"), Tensor("target")),
        kwargs=(Kw("axis", Const(1)),),
        reduce=_JNP,
        profile=(_SUMMED,),
        fixed={"log_target": True},
    ),
)

"""optax entries: squared error, half squared error (``l2_loss``) and Huber; per-element
losses, mean/sum via jnp (shown in the call text). optax has no absolute-error or smooth L1
loss and takes no weights."""

from __future__ import annotations

from conformance.adapters._spec import Kw, Param, Spec, Tensor
from conformance.oracle.options import Declared

_REAL = frozenset({"real"})
_ARGS = (Tensor("input"), Tensor("target"))
_JNP = {"mean": "jnp.mean", "sum": "jnp.sum"}
_DOCS = "https://optax.readthedocs.io/en/latest/api/losses.html"

SPECS: tuple[Spec, ...] = (
    Spec("optax.losses.squared_error", "mse_loss", _REAL, args=_ARGS, reduce=_JNP),
    # "Calculates the L2 loss ... 0.5 * squared_error": documented half.
    Spec(
        "optax.losses.l2_loss",
        "mse_loss",
        _REAL,
        args=_ARGS,
        reduce=_JNP,
        profile=(Declared("squared_scale", "half", _DOCS),),
    ),
    Spec(
        "optax.losses.huber_loss",
        "huber_loss",
        _REAL,
        args=_ARGS,
        kwargs=(Kw("delta", Param("delta")),),
        reduce=_JNP,
    ),
)

"""JAX entries: the building blocks in ``jax.nn``; the class axis as documented (``axis=1``)."""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Spec, Tensor

_NONE = frozenset({"none"})
_X = (Tensor("input"),)
_AXIS = (Kw("axis", Const(1)),)

SPECS: tuple[Spec, ...] = (
    Spec("jax.nn.softmax", "softmax", _NONE, args=_X, kwargs=_AXIS),
    Spec("jax.nn.log_softmax", "log_softmax", _NONE, args=_X, kwargs=_AXIS),
    Spec("jax.nn.sigmoid", "sigmoid", _NONE, args=_X),
    Spec("jax.nn.log_sigmoid", "log_sigmoid", _NONE, args=_X),
)

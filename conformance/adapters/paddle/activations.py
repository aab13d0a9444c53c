"""Paddle entries: the building blocks softmax, log_softmax, sigmoid, log_sigmoid.

Functional and class forms; the class axis is passed as documented (``axis=1``).
"""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Spec, Tensor, twins

_NONE = frozenset({"none"})
_X = (Tensor("input"),)
_AXIS = (Kw("axis", Const(1)),)
_F = "paddle.nn.functional"

SPECS: tuple[Spec, ...] = (
    *twins(f"{_F}.softmax", "paddle.nn.Softmax", "softmax", _NONE, args=_X, kwargs=_AXIS),
    *twins(
        f"{_F}.log_softmax", "paddle.nn.LogSoftmax", "log_softmax", _NONE, args=_X, kwargs=_AXIS
    ),
    *twins(f"{_F}.sigmoid", "paddle.nn.Sigmoid", "sigmoid", _NONE, args=_X, kwargs=()),
    *twins(f"{_F}.log_sigmoid", "paddle.nn.LogSigmoid", "log_sigmoid", _NONE, args=_X, kwargs=()),
)

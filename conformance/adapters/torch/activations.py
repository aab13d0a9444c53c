"""PyTorch entries: the building blocks softmax, log_softmax, sigmoid, log_sigmoid.

Functional and class forms; the class axis is passed as documented (``dim=1``).
"""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Spec, Tensor, twins

_NONE = frozenset({"none"})
_X = (Tensor("input"),)
_DIM = (Kw("dim", Const(1)),)

SPECS: tuple[Spec, ...] = (
    *twins(
        "torch.nn.functional.softmax", "torch.nn.Softmax", "softmax", _NONE, args=_X, kwargs=_DIM
    ),
    *twins(
        "torch.nn.functional.log_softmax",
        "torch.nn.LogSoftmax",
        "log_softmax",
        _NONE,
        args=_X,
        kwargs=_DIM,
    ),
    *twins("torch.sigmoid", "torch.nn.Sigmoid", "sigmoid", _NONE, args=_X, kwargs=()),
    *twins(
        "torch.nn.functional.logsigmoid",
        "torch.nn.LogSigmoid",
        "log_sigmoid",
        _NONE,
        args=_X,
        kwargs=(),
    ),
)

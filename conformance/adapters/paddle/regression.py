"""Paddle entries: MSE, L1, smooth L1 (Huber by default) and square_error_cost.

``smooth_l1_loss`` is the Huber loss unless ``is_huber=False`` ("is_huber: whether to use
the Huber loss form", default True): called as documented it is an entry of ``huber_loss``
(``delta`` is Huber's delta); with ``is_huber=False`` it is a second, separately named entry
of ``smooth_l1_loss`` whose ``delta`` is smooth L1's beta. None of them takes a weight.
"""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Param, Spec, Tensor, twins

_REAL = frozenset({"real"})
_ARGS = (Tensor("input"), Tensor("target"))
_REDUCTION = Kw("reduction", Param("reduction"))
_F, _NN = "paddle.nn.functional", "paddle.nn"
_NOT_HUBER = Kw("is_huber", Const(False))

SPECS: tuple[Spec, ...] = (
    *twins(f"{_F}.mse_loss", f"{_NN}.MSELoss", "mse_loss", _REAL, kwargs=(_REDUCTION,)),
    *twins(f"{_F}.l1_loss", f"{_NN}.L1Loss", "l1_loss", _REAL, kwargs=(_REDUCTION,)),
    *twins(
        f"{_F}.smooth_l1_loss",
        f"{_NN}.SmoothL1Loss",
        "huber_loss",
        _REAL,
        kwargs=(_REDUCTION, Kw("delta", Param("delta"))),
    ),
    Spec(
        f"{_F}.smooth_l1_loss",
        "smooth_l1_loss",
        _REAL,
        args=_ARGS,
        kwargs=(_REDUCTION, Kw("delta", Param("beta")), _NOT_HUBER),
        name=f"{_F}.smooth_l1_loss(is_huber=False)",
    ),
    Spec(
        f"{_NN}.SmoothL1Loss",
        "smooth_l1_loss",
        _REAL,
        args=_ARGS,
        kwargs=(_REDUCTION, Kw("delta", Param("beta")), _NOT_HUBER),
        form="class",
        name=f"{_NN}.SmoothL1Loss(is_huber=False)",
    ),
    # (x - y)^2 per element; mean/sum as a user writes them.
    Spec(
        f"{_F}.square_error_cost",
        "mse_loss",
        _REAL,
        args=_ARGS,
        reduce={"mean": "paddle.mean", "sum": "paddle.sum"},
        doc="per-element squared errors; mean/sum via paddle.mean/paddle.sum",
    ),
)

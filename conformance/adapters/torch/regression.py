"""PyTorch entries: MSE, L1, Huber and smooth L1, functional and class forms.

The functional forms of MSE, L1 and Huber take the per-element ``weight`` torch 2.13 added
("Weights for each sample"); the classes have none. Called as documented with a per-class
weight, (C, 1, ..., 1) along axis 1, torch raises "Weights and input must have the same
size": it does not broadcast. The workaround a user applies, ``w.expand_as(input)``, is a
separately named variant that runs on weighted cases only.
"""

from __future__ import annotations

from conformance.adapters._spec import Kw, Op, Param, Spec, Tensor
from conformance.protocol import Task

_REAL = frozenset({"real"})
_ARGS = (Tensor("input"), Tensor("target"))
_REDUCTION = Kw("reduction", Param("reduction"))
_F, _NN = "torch.nn.functional", "torch.nn"


def _weighted_only(task: Task) -> str | None:
    if task.params.get("weight") is not None:
        return None
    return "a variant for weighted cases: without a weight it makes the documented call"


_EXPANDED = Kw("weight", Op("torch.Tensor.expand_as", (Tensor("weight"), Tensor("input"))))


def _pair(function: str, cls: str, loss: str, *extra: Kw, weight: bool = True) -> tuple[Spec, ...]:
    weights = (Kw("weight", Tensor("weight")),) if weight else ()
    specs = (
        Spec(f"{_F}.{function}", loss, _REAL, args=_ARGS, kwargs=(_REDUCTION, *extra, *weights)),
        Spec(f"{_NN}.{cls}", loss, _REAL, args=_ARGS, kwargs=(_REDUCTION, *extra), form="class"),
    )
    if not weight:
        return specs
    variant = Spec(
        f"{_F}.{function}",
        loss,
        _REAL,
        args=_ARGS,
        kwargs=(_REDUCTION, *extra, _EXPANDED),
        name=f"{_F}.{function}[weight.expand_as(input)]",
        doc="the per-class weight expanded to the input's shape, as a user works around it",
        unsupported=_weighted_only,
    )
    return (*specs, variant)


SPECS: tuple[Spec, ...] = (
    *_pair("mse_loss", "MSELoss", "mse_loss"),
    *_pair("l1_loss", "L1Loss", "l1_loss"),
    *_pair("huber_loss", "HuberLoss", "huber_loss", Kw("delta", Param("delta"))),
    *_pair(
        "smooth_l1_loss", "SmoothL1Loss", "smooth_l1_loss", Kw("beta", Param("beta")), weight=False
    ),
)

"""PyTorch entries: the multi-label soft-margin loss, functional and class forms."""

from __future__ import annotations

from conformance.adapters._spec import Kw, Param, Tensor, twins
from conformance.oracle.options import Declared

# The mean over "classes" is over the input's last axis: `class_dim = input.dim() - 1`
# (the docs give (N, C) input only, where it is axis 1).
_LAST_AXIS = Declared(
    "multilabel_axis",
    "last",
    "https://github.com/pytorch/pytorch/blob/v2.13.0/torch/nn/functional.py",
)
SPECS = twins(
    "torch.nn.functional.multilabel_soft_margin_loss",
    "torch.nn.MultiLabelSoftMarginLoss",
    "multilabel_soft_margin_loss",
    frozenset({"binary"}),
    kwargs=(Kw("weight", Tensor("weight")), Kw("reduction", Param("reduction"))),
    profile=(_LAST_AXIS,),
)

"""PyTorch entries: cross-entropy, NLL and binary cross-entropy, functional and class forms."""

from __future__ import annotations

from conformance.adapters._spec import Kw, Param, Tensor, twins
from conformance.oracle.options import Declared

_CE_KWARGS = (
    Kw("weight", Tensor("weight")),
    Kw("ignore_index", Param("ignore_index")),
    Kw("reduction", Param("reduction")),
    Kw("label_smoothing", Param("label_smoothing")),
)
_BOTH = frozenset({"index", "probs"})
_INDEX = frozenset({"index"})

_NLL_KWARGS = (
    Kw("weight", Tensor("weight")),
    Kw("ignore_index", Param("ignore_index")),
    Kw("reduction", Param("reduction")),
)
_BCE_DOC = "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html"
_BCE_PROFILE = (
    # "BCELoss clamps its log function outputs to be greater than or equal to -100"
    Declared("log_clamp", "-100", _BCE_DOC),
    # its backward divides by max(p (1 - p), EPSILON) with EPSILON = 1e-12 held as a float
    Declared(
        "prob_grad",
        "clamp_1e-12f",
        "https://github.com/pytorch/pytorch/blob/v2.13.0/aten/src/ATen/native/Loss.cpp",
    ),
)
# "pos_weight ... broadcast ... along the last dimension" (BCEWithLogitsLoss docs)
_POS_LAST = Declared(
    "pos_weight_axis",
    "last",
    "https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html",
)
_BINARY = frozenset({"binary"})
_BCE_KWARGS = (Kw("weight", Tensor("weight")), Kw("reduction", Param("reduction")))
_LOGITS_KWARGS = (*_BCE_KWARGS, Kw("pos_weight", Tensor("pos_weight")))
SPECS = (
    *twins(
        "torch.nn.functional.cross_entropy",
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        _BOTH,
        kwargs=_CE_KWARGS,
    ),
    *twins(
        "torch.nn.functional.nll_loss", "torch.nn.NLLLoss", "nll_loss", _INDEX, kwargs=_NLL_KWARGS
    ),
    *twins(
        "torch.nn.functional.binary_cross_entropy",
        "torch.nn.BCELoss",
        "binary_cross_entropy",
        _BINARY,
        kwargs=_BCE_KWARGS,
        profile=_BCE_PROFILE,
    ),
    *twins(
        "torch.nn.functional.binary_cross_entropy_with_logits",
        "torch.nn.BCEWithLogitsLoss",
        "binary_cross_entropy_with_logits",
        _BINARY,
        kwargs=_LOGITS_KWARGS,
        profile=(_POS_LAST,),
    ),
)

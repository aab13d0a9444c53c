"""Paddle entries: cross-entropy, NLL and binary cross-entropy, functional and class forms."""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Param, Tensor, index_targets, twins
from conformance.oracle.options import Declared

_CE_KWARGS = (
    Kw("weight", Tensor("weight")),
    # ignore_index only means something for index labels; with soft_label=True Paddle
    # rejects any ignore_index > 0, so it is left at its default for probability targets.
    Kw("ignore_index", Param("ignore_index"), when=index_targets),
    Kw("reduction", Param("reduction")),
    Kw("soft_label", Const(of=lambda task: task.target_kind == "probs")),
    Kw("axis", Const(1)),
    Kw("label_smoothing", Param("label_smoothing")),
)


_DOC = "https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional/cross_entropy_en.html"
# The documented definitions that differ from canonical (docs/semantics.md).
_PROFILE = (
    # "loss_j = loss_j * sum_i(weight[label_i] * label_i)" for soft labels (docs, step 2.1)
    Declared("soft_weighting", "per_element", _DOC),
    # "loss = sum_j loss_j / sum_j(sum_i weight[label_i])" for soft labels (docs, step 2.3)
    Declared("probs_mean", "weights", _DOC),
    # Returns: "if soft_label = True, the dimension of return value is [N_1, ..., N_k, 1]"
    Declared("none_shape", "keepdim", _DOC),
    # `out_sum / (count + (count == 0))`: a mean over no valid targets is 0, by design
    Declared(
        "empty_mean",
        "zero",
        "https://github.com/PaddlePaddle/Paddle/blob/v3.3.1/python/paddle/nn/functional/loss.py",
    ),
    # soft labels: "each sample's probabilities sum to 1" (概率和为 1); the fused kernel's
    # gradient is softmax - label, which assumes it
    Declared("target_sum", "assumed_one", _DOC),
    # softmax clips shifted logits at -64 (the per-element loss is at most ~64)
    Declared("logit_clip", "64", "https://github.com/PaddlePaddle/Paddle/pull/9686"),
)

# nll_loss takes channel-first input ([N, C] or [N, C, d1, ...]); no axis argument.
_NLL_KWARGS = (
    Kw("weight", Tensor("weight")),
    Kw("ignore_index", Param("ignore_index")),
    Kw("reduction", Param("reduction")),
)
_BINARY = frozenset({"binary"})
_BCE_KWARGS = (Kw("weight", Tensor("weight")), Kw("reduction", Param("reduction")))
_LOGITS_KWARGS = (*_BCE_KWARGS, Kw("pos_weight", Tensor("pos_weight")))
_BCE_PROFILE = (
    # binary_cross_entropy clamps log at -100 and its backward divides by max(p(1-p), 1e-12)
    Declared(
        "log_clamp",
        "-100",
        "https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional/binary_cross_entropy_en.html",
    ),
    Declared(
        "prob_grad",
        "clamp_1e-12",
        "https://github.com/PaddlePaddle/Paddle/blob/v3.3.1/paddle/phi/kernels/cpu/bce_loss_grad_kernel.cc",
    ),
)
# pos_weight is broadcast against the logits like any tensor (its last axis)
_POS_LAST = Declared(
    "pos_weight_axis",
    "last",
    "https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional/binary_cross_entropy_with_logits_en.html",
)
_BOTH = frozenset({"index", "probs"})
SPECS = (
    *twins(
        "paddle.nn.functional.cross_entropy",
        "paddle.nn.CrossEntropyLoss",
        "cross_entropy",
        _BOTH,
        kwargs=_CE_KWARGS,
        profile=_PROFILE,
    ),
    *twins(
        "paddle.nn.functional.nll_loss",
        "paddle.nn.NLLLoss",
        "nll_loss",
        frozenset({"index"}),
        kwargs=_NLL_KWARGS,
    ),
    *twins(
        "paddle.nn.functional.binary_cross_entropy",
        "paddle.nn.BCELoss",
        "binary_cross_entropy",
        _BINARY,
        kwargs=_BCE_KWARGS,
        profile=_BCE_PROFILE,
    ),
    *twins(
        "paddle.nn.functional.binary_cross_entropy_with_logits",
        "paddle.nn.BCEWithLogitsLoss",
        "binary_cross_entropy_with_logits",
        _BINARY,
        kwargs=_LOGITS_KWARGS,
        profile=(_POS_LAST,),
    ),
)

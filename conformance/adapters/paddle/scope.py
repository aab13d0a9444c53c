"""Public classification-loss APIs of Paddle that are not entries, each with its reason."""

from __future__ import annotations

_MARGIN = "a margin (hinge) loss, not a cross-entropy; the seed documents do not name it"
APIS: tuple[tuple[str, str], ...] = (
    (
        "paddle.nn.functional.margin_cross_entropy",
        "the ArcFace/CosFace margin softmax: takes normalised cosines and margins, GPU only",
    ),
    (
        "paddle.nn.functional.hsigmoid_loss",
        "hierarchical sigmoid: takes features and the tree's trainable weights, not logits",
    ),
    ("paddle.nn.HSigmoidLoss", "the class form of hsigmoid_loss (same reason)"),
    (
        "paddle.nn.functional.adaptive_log_softmax_with_loss",
        "adaptive softmax: takes features and trainable cluster weights, not logits",
    ),
    ("paddle.nn.AdaptiveLogSoftmaxWithLoss", "the class form (same reason)"),
    ("paddle.nn.functional.npair_loss", "a metric-learning loss on embeddings"),
    ("paddle.nn.functional.multi_margin_loss", _MARGIN),
    ("paddle.nn.MultiMarginLoss", _MARGIN),
    ("paddle.nn.functional.multi_label_margin_loss", _MARGIN),
    ("paddle.nn.MultiLabelMarginLoss", _MARGIN),
    ("paddle.nn.functional.soft_margin_loss", _MARGIN),
    ("paddle.nn.SoftMarginLoss", _MARGIN),
    # The building blocks: the tensor-level names of entries.
    ("paddle.nn.functional.softmax_", "the in-place form of paddle.nn.functional.softmax"),
)

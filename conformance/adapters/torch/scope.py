"""Public classification-loss APIs of PyTorch that are not entries, each with its reason."""

from __future__ import annotations

_MARGIN = "a margin (hinge) loss, not a cross-entropy; the seed documents do not name it"
APIS: tuple[tuple[str, str], ...] = (
    (
        "torch.nn.functional.linear_cross_entropy",
        "fuses the output projection: it takes hidden states and a weight matrix, not logits",
    ),
    ("torch.nn.LinearCrossEntropyLoss", "the class form of linear_cross_entropy (same reason)"),
    (
        "torch.nn.AdaptiveLogSoftmaxWithLoss",
        "a layer with trainable cluster projections: its loss depends on its own parameters",
    ),
    ("torch.nn.functional.multi_margin_loss", _MARGIN),
    ("torch.nn.MultiMarginLoss", _MARGIN),
    ("torch.nn.functional.multilabel_margin_loss", _MARGIN),
    ("torch.nn.MultiLabelMarginLoss", _MARGIN),
    ("torch.nn.functional.soft_margin_loss", _MARGIN),
    ("torch.nn.SoftMarginLoss", _MARGIN),
    ("torchvision.ops.sigmoid_focal_loss", "torchvision, not PyTorch: not installed by the suite"),
    # The building blocks: aliases of entries.
    ("torch.softmax", "the same ATen op as torch.nn.functional.softmax (an entry)"),
    ("torch.log_softmax", "the same ATen op as torch.nn.functional.log_softmax (an entry)"),
    ("torch.special.softmax", "the same ATen op as torch.nn.functional.softmax (an entry)"),
    ("torch.special.expit", "an alias of torch.sigmoid (an entry)"),
    ("torch.nn.functional.sigmoid", "deprecated alias of torch.sigmoid (an entry)"),
    # Regression: likelihood losses the seed documents do not name.
    ("torch.nn.functional.gaussian_nll_loss", "a Gaussian likelihood with a variance input"),
    ("torch.nn.functional.poisson_nll_loss", "a Poisson likelihood on counts"),
)

"""Public classification-loss APIs of PyTorch that are not entries, each with its reason."""

from __future__ import annotations

_MARGIN = "a margin (hinge) loss, not a cross-entropy; the seed documents do not name it"
_EMBEDDING = "a metric-learning loss on embeddings or scores, not on class scores; not in the seeds"
_SEQUENCE = "a sequence-alignment loss (CTC); not in the seed documents"
_EMBEDDING_APIS = tuple(
    f"torch.nn.{name}"
    for name in (
        "functional.cosine_embedding_loss",
        "CosineEmbeddingLoss",
        "functional.hinge_embedding_loss",
        "HingeEmbeddingLoss",
        "functional.margin_ranking_loss",
        "MarginRankingLoss",
        "functional.triplet_margin_loss",
        "TripletMarginLoss",
        "functional.triplet_margin_with_distance_loss",
        "TripletMarginWithDistanceLoss",
    )
)
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
    # Losses of other families, found by `conformance census`: not in the seed documents.
    *((api, _EMBEDDING) for api in _EMBEDDING_APIS),
    *((api, _SEQUENCE) for api in ("torch.nn.functional.ctc_loss", "torch.nn.CTCLoss")),
    ("torch.nn.PoissonNLLLoss", "the class form of poisson_nll_loss (same reason)"),
    ("torch.nn.GaussianNLLLoss", "the class form of gaussian_nll_loss (same reason)"),
    ("torch.nn.NLLLoss2d", "deprecated alias of torch.nn.NLLLoss (an entry)"),
    ("torch.nn.LinearCrossEntropyOptions", "the options of linear_cross_entropy, not a loss"),
)

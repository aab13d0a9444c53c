"""Public classification-loss APIs of Paddle that are not entries, each with its reason."""

from __future__ import annotations

_MARGIN = "a margin (hinge) loss, not a cross-entropy; the seed documents do not name it"
_EMBEDDING = "a metric-learning loss on embeddings or scores, not on class scores; not in the seeds"
_EMBEDDING_APIS = tuple(
    f"paddle.nn.{name}"
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
    # Losses of other families, found by `conformance census`: not in the seed documents.
    *((api, _EMBEDDING) for api in _EMBEDDING_APIS),
    *(
        (api, "a sequence-alignment loss (CTC, RNN-T); not in the seed documents")
        for api in (
            "paddle.nn.functional.ctc_loss",
            "paddle.nn.CTCLoss",
            "paddle.nn.functional.rnnt_loss",
            "paddle.nn.RNNTLoss",
        )
    ),
    *(
        (api, "a likelihood loss (Poisson, Gaussian); not in the seed documents")
        for api in (
            "paddle.nn.functional.poisson_nll_loss",
            "paddle.nn.PoissonNLLLoss",
            "paddle.nn.functional.gaussian_nll_loss",
            "paddle.nn.GaussianNLLLoss",
        )
    ),
)

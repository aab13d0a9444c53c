"""Public classification-loss APIs of optax that are not entries, each with its reason."""

from __future__ import annotations

_MARGIN = "a margin (hinge) or perceptron loss, not a cross-entropy; not named by the seeds"
APIS: tuple[tuple[str, str], ...] = (
    (
        "optax.losses.poly_loss_cross_entropy",
        "the Poly-1 cross-entropy (epsilon term); the seed documents do not name it",
    ),
    ("optax.losses.hinge_loss", _MARGIN),
    ("optax.losses.multiclass_hinge_loss", _MARGIN),
    ("optax.losses.perceptron_loss", _MARGIN),
    ("optax.losses.multiclass_perceptron_loss", _MARGIN),
    ("optax.losses.sparsemax_loss", "a sparsemax (not softmax) loss; not named by the seeds"),
    (
        "optax.losses.multiclass_sparsemax_loss",
        "a sparsemax (not softmax) loss; not named by the seeds",
    ),
    (
        "optax.losses.make_fenchel_young_loss",
        "builds a loss from a user's function: no fixed definition",
    ),
    ("optax.losses.ranking_softmax_loss", "a learning-to-rank loss over lists, not classification"),
    (
        "optax.smooth_labels",
        "a label transform, not a loss; label smoothing is a case parameter of the entries",
    ),
    # The building blocks: an alias of an entry.
    ("jax.scipy.special.expit", "the logistic function, as jax.nn.sigmoid (an entry)"),
    # Regression: variants the seed documents do not name.
    ("optax.losses.log_cosh", "log(cosh(d)), a smooth Huber-like loss; not in the seeds"),
    # Losses of other families, found by `conformance census`: not in the seed documents.
    ("optax.losses.ctc_loss", "a sequence-alignment loss (CTC); not in the seed documents"),
    (
        "optax.losses.ctc_loss_with_forward_probs",
        "a sequence-alignment loss (CTC); not in the seed documents",
    ),
    ("optax.losses.triplet_margin_loss", "a metric-learning loss on embeddings"),
    # Dice: the sigmoid form cannot be called on probabilities.
    (
        "optax.losses.binary_dice_loss",
        "takes logits only: apply_sigmoid=False raises ValueError for any probabilities but "
        "all ones (its sum-to-1 check runs over a class axis of size 1); on logits it is "
        "dice_loss of their sigmoid",
    ),
    # KL divergence of unnormalised measures: another loss than kl_div.
    (
        "optax.losses.convex_kl_divergence",
        "the generalised KL of unnormalised measures, sum t log(t/p) - t + p: not kl_div "
        "(gradient p - t, not -t); no other framework ships it",
    ),
    (
        "optax.losses.generalized_kl_divergence",
        "the generalised KL of unnormalised measures (as convex_kl_divergence); no other "
        "framework ships it",
    ),
)

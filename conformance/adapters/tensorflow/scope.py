"""Public classification-loss APIs of TensorFlow/Keras that are not entries, with reasons."""

from __future__ import annotations

_MARGIN = "a margin (hinge) loss, not a cross-entropy; the seed documents do not name it"
_SAMPLED = "samples negative classes at random and takes the output layer's weights, not logits"
_SEQUENCE = "a sequence-alignment loss (CTC); not in the seed documents"
_POISSON = "a Poisson likelihood on counts; not in the seed documents"
_EMBEDDING = "a similarity of embeddings, not a loss on class scores; not in the seeds"
APIS: tuple[tuple[str, str], ...] = (
    ("tf.nn.sampled_softmax_loss", _SAMPLED),
    ("tf.nn.nce_loss", _SAMPLED),
    ("tf.compat.v1.losses.hinge_loss", _MARGIN),
    ("keras.losses.Hinge", _MARGIN),
    ("keras.losses.SquaredHinge", _MARGIN),
    ("keras.losses.CategoricalHinge", _MARGIN),
    (
        "keras.losses.CategoricalGeneralizedCrossEntropy",
        "the noise-robust generalized cross-entropy (q); the seed documents do not name it",
    ),
    ("keras.losses.Circle", "a metric-learning loss on embeddings, not on class scores"),
    # The building blocks: aliases of entries, and layers around them.
    ("tf.nn.sigmoid", "the same function object as tf.math.sigmoid (an entry)"),
    ("tf.math.softmax", "the same function object as tf.nn.softmax (an entry)"),
    ("tf.math.log_softmax", "the same function object as tf.nn.log_softmax (an entry)"),
    ("keras.layers.Softmax", "a layer that calls keras.activations.softmax (an entry)"),
    # Regression: variants the seed documents do not name.
    ("keras.losses.MeanSquaredLogarithmicError", "squared error of log1p values; not in the seeds"),
    ("keras.losses.MeanAbsolutePercentageError", "relative absolute error; not in the seeds"),
    ("keras.losses.LogCosh", "log(cosh(d)), a smooth Huber-like loss; not in the seeds"),
    (
        "tf.compat.v1.losses.mean_pairwise_squared_error",
        "squared error of pairwise differences within a sample; not in the seeds",
    ),
    # Losses of other families, found by `conformance census`: not in the seed documents.
    ("tf.nn.ctc_loss", _SEQUENCE),
    ("keras.losses.CTC", _SEQUENCE),
    ("keras.losses.ctc", _SEQUENCE),
    ("keras.ops.ctc_loss", _SEQUENCE),
    ("tf.nn.log_poisson_loss", _POISSON),
    ("keras.losses.Poisson", _POISSON),
    ("keras.losses.poisson", _POISSON),
    ("keras.losses.CosineSimilarity", _EMBEDDING),
    ("keras.losses.cosine_similarity", _EMBEDDING),
    ("keras.losses.circle", "the function form of keras.losses.Circle (same reason)"),
    ("keras.losses.hinge", "the function form of keras.losses.Hinge (same reason)"),
    ("keras.losses.squared_hinge", "the function form of keras.losses.SquaredHinge"),
    ("keras.losses.categorical_hinge", "the function form of keras.losses.CategoricalHinge"),
    ("keras.losses.log_cosh", "the function form of keras.losses.LogCosh (same reason)"),
    (
        "keras.losses.categorical_generalized_cross_entropy",
        "the function form of CategoricalGeneralizedCrossEntropy (same reason)",
    ),
    (
        "keras.losses.mean_absolute_percentage_error",
        "the function form of MeanAbsolutePercentageError (same reason)",
    ),
    (
        "keras.losses.mean_squared_logarithmic_error",
        "the function form of MeanSquaredLogarithmicError (same reason)",
    ),
)

"""TensorFlow entries real migrations start from: ``tf.compat.v1.losses.*`` and
``tf.nn.weighted_cross_entropy_with_logits``.

The v1 losses take per-sample ``weights`` (broadcast against the per-element losses), so a
class weight reaches them the way v1 users wrote it: ``weights=tf.gather(w, target)`` for class
indices, ``w`` itself (broadcast along the last axis) for elementwise losses. Their default
reduction, ``SUM_BY_NONZERO_WEIGHTS``, divides by the number of nonzero weights; the losses
and weights are cast to float32 before reducing and the result cast back
(``compute_weighted_loss``): both are declared.
"""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Op, Param, Spec, Tensor
from conformance.oracle.options import Declared

_IMPL = (
    "https://github.com/tensorflow/tensorflow/blob/v2.21.0/"
    "tensorflow/python/ops/losses/losses_impl.py"
)
# tf.compat.v1.losses.Reduction values (strings): the default is SUM_BY_NONZERO_WEIGHTS.
_V1_REDUCTION = {"none": "none", "mean": "weighted_sum_by_nonzero_weights", "sum": "weighted_sum"}
# compute_weighted_loss: `losses = math_ops.cast(losses, dtype=dtypes.float32)`
_FLOAT32 = Declared("precision", "float32", _IMPL)
# "SUM_BY_NONZERO_WEIGHTS: Scalar SUM divided by number of non-zero weights" (Reduction docs)
_V1_DOC = "https://www.tensorflow.org/api_docs/python/tf/compat/v1/losses/Reduction"
# _safe_mean: "If `num_present` is zero, then zero is returned." (div_no_nan)
_EMPTY_ZERO = Declared("empty_mean", "zero", _IMPL)
_INDEX, _PROBS, _BINARY = frozenset({"index"}), frozenset({"probs"}), frozenset({"binary"})
_REDUCTION = Kw("reduction", Param("reduction", _V1_REDUCTION))
# "weights: ... rank is either 0, or the same rank as labels": a per-class weight (C,) (or
# (C, 1, ..., 1) for N-d input) gets a leading batch axis, as a v1 user writes it.
_CLASS_WEIGHTS = Kw("weights", Op("tf.expand_dims", (Tensor("weight"), Const(0))))

SPECS: tuple[Spec, ...] = (
    # labels [d_0, ..., d_{r-1}], logits [d_0, ..., d_{r-1}, num_classes]: channels-last is
    # the documented layout (no axis argument).
    Spec(
        "tf.compat.v1.losses.sparse_softmax_cross_entropy",
        "cross_entropy",
        _INDEX,
        args=(),
        kwargs=(
            Kw("labels", Tensor("target")),
            Kw("logits", Tensor("input", channels_last=True)),
            # class weights as v1 users apply them: one weight per sample, w[target]
            Kw("weights", Op("tf.gather", (Tensor("weight"), Tensor("target")))),
            _REDUCTION,
        ),
        doc="class weights as weights=tf.gather(w, target); mean = SUM_BY_NONZERO_WEIGHTS",
        profile=(
            _FLOAT32,
            _EMPTY_ZERO,
            # the sum of w[target] l divided by the number of nonzero w[target]
            Declared("index_mean", "count", _V1_DOC),
        ),
    ),
    # onehot_labels and logits [batch_size, num_classes]: channels-last for N-d input.
    # "new_onehot_labels = onehot_labels * (1 - label_smoothing) + label_smoothing /
    # num_classes": the canonical (uniform) smoothing.
    Spec(
        "tf.compat.v1.losses.softmax_cross_entropy",
        "cross_entropy",
        _PROBS,
        args=(),
        kwargs=(
            Kw("onehot_labels", Tensor("target", channels_last=True)),
            Kw("logits", Tensor("input", channels_last=True)),
            Kw("label_smoothing", Param("label_smoothing")),
            _REDUCTION,
        ),
        doc="mean = SUM_BY_NONZERO_WEIGHTS (all weights 1: the element count)",
        # "Creates a cross-entropy loss using tf.nn.softmax_cross_entropy_with_logits_v2",
        # whose gradient assumes each label row is a distribution (documented there).
        profile=(
            _FLOAT32,
            _EMPTY_ZERO,
            Declared(
                "target_sum",
                "assumed_one",
                "https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits",
            ),
        ),
    ),
    # Elementwise: a per-class weight broadcasts against the logits like any v1 weight.
    Spec(
        "tf.compat.v1.losses.sigmoid_cross_entropy",
        "binary_cross_entropy_with_logits",
        _BINARY,
        args=(),
        kwargs=(
            Kw("multi_class_labels", Tensor("target")),
            Kw("logits", Tensor("input")),
            _CLASS_WEIGHTS,
            _REDUCTION,
        ),
        doc="mean = SUM_BY_NONZERO_WEIGHTS",
        profile=(
            _FLOAT32,
            _EMPTY_ZERO,
            Declared("mean_denominator", "nonzero_weights", _V1_DOC),
        ),
    ),
    # "epsilon: A small increment to add to avoid taking a log of zero" (1e-7):
    # -t log(p + eps) - (1 - t) log(1 - p + eps)
    Spec(
        "tf.compat.v1.losses.log_loss",
        "binary_cross_entropy",
        _BINARY,
        args=(),
        kwargs=(
            Kw("labels", Tensor("target")),
            Kw("predictions", Tensor("input")),
            _CLASS_WEIGHTS,
            _REDUCTION,
        ),
        doc="mean = SUM_BY_NONZERO_WEIGHTS",
        profile=(
            _FLOAT32,
            _EMPTY_ZERO,
            Declared("mean_denominator", "nonzero_weights", _V1_DOC),
            Declared(
                "log_clamp",
                "add_1e-7",
                "https://www.tensorflow.org/api_docs/python/tf/compat/v1/losses/log_loss",
            ),
        ),
    ),
    # pos_weight is a required argument: without one in the case it is 1.0, shown in the call.
    # "pos_weight ... broadcast ... along the last dimension" like the labels.
    Spec(
        "tf.nn.weighted_cross_entropy_with_logits",
        "binary_cross_entropy_with_logits",
        _BINARY,
        args=(),
        kwargs=(
            Kw("labels", Tensor("target")),
            Kw("logits", Tensor("input")),
            Kw("pos_weight", Tensor("pos_weight"), absent=Const(1.0)),
        ),
        reduce={"mean": "tf.reduce_mean", "sum": "tf.reduce_sum"},
        doc="per-element losses; mean/sum via tf.reduce_mean/tf.reduce_sum",
        profile=(
            Declared(
                "pos_weight_axis",
                "last",
                "https://www.tensorflow.org/api_docs/python/tf/nn/weighted_cross_entropy_with_logits",
            ),
        ),
    ),
)

"""TensorFlow and Keras entries: softmax and binary cross-entropy."""

from __future__ import annotations

from dataclasses import replace

from conformance.adapters._entry import used_params
from conformance.adapters._spec import Const, Kw, Op, Param, Spec, Tensor, spatial_only
from conformance.oracle.options import Declared
from conformance.protocol import Task

_KERAS_LOSS = "https://github.com/keras-team/keras/blob/v3.15.1/keras/src/losses/loss.py"
# Keras losses compute in `dtype`, which defaults to keras.backend.floatx() (float32): a
# float64 input is computed in float32 unless the user passes dtype= (keras-core#922).
_KERAS_FLOATX = Declared(
    "precision", "float32", "https://github.com/keras-team/keras-core/issues/922"
)
# reduce_values: `ops.divide_no_nan(loss, divisor)`: a mean over only masked targets is 0.
_KERAS_EMPTY_MEAN = Declared("empty_mean", "zero", _KERAS_LOSS)

_BY_KERAS = {"none": None, "mean": "sum_over_batch_size", "sum": "sum"}
# Keras' sparse cross-entropy, class and function alike, called as documented: axis=1 for
# the channel-first layout. The TF backend raises "Only axis=-1 is currently supported" for
# another axis of N-d input (https://github.com/keras-team/keras/issues/21097): those rows
# show it. The workaround a user applies, classes moved last with the default axis=-1, is a
# separately named variant that runs on N-d input only.
_KERAS_SPARSE_ARGS = (Tensor("target"), Tensor("input"))
_KERAS_SPARSE_KWARGS = (
    Kw("from_logits", Const(True)),
    Kw("ignore_class", Param("ignore_index")),
    Kw("axis", Const(1)),
)
_PER_SAMPLE = Op("tf.gather", (Tensor("weight"), Tensor("target")))  # w[target]
_CHANNELS_LAST_ARGS = (Tensor("target"), Tensor("input", channels_last=True))


def _no_gather_at_ignored(task: Task) -> str | None:
    if task.params.get("weight") is not None and "ignore_index" in used_params(task):
        return (
            "class weights as sample_weight=tf.gather(w, target) cannot gather at an ignored label"
        )
    return None


def _channels_last(spec: Spec) -> Spec:
    """``spec`` with the input's classes moved last and the default axis (-1)."""
    own = spec.unsupported

    def unsupported(task: Task) -> str | None:
        return spatial_only(task) or (own(task) if own is not None else None)

    return replace(
        spec,
        args=_CHANNELS_LAST_ARGS,
        kwargs=tuple(k for k in spec.kwargs if k.name != "axis"),
        name=f"{spec.api}[channels-last]",
        unsupported=unsupported,
        doc=f"{spec.doc}; N-d input moved to channels-last (the workaround for axis=1)",
    )


_TF_REDUCE = {"mean": "tf.reduce_mean", "sum": "tf.reduce_sum"}

SPECS: tuple[Spec, ...] = (
    # No axis argument: logits must be channels-last ([..., num_classes]), so N-d input is
    # transposed inside the taped call. Labels: int32 or int64, int64 used as given.
    # https://www.tensorflow.org/api_docs/python/tf/nn/sparse_softmax_cross_entropy_with_logits
    Spec(
        "tf.nn.sparse_softmax_cross_entropy_with_logits",
        "cross_entropy",
        frozenset({"index"}),
        args=(),
        kwargs=(
            Kw("labels", Tensor("target")),
            Kw("logits", Tensor("input", channels_last=True)),
        ),
        reduce=_TF_REDUCE,
        doc="per-element losses; mean/sum via tf.reduce_mean/tf.reduce_sum",
    ),
    Spec(
        "tf.nn.softmax_cross_entropy_with_logits",
        "cross_entropy",
        frozenset({"probs"}),
        args=(),
        kwargs=(
            Kw("labels", Tensor("target")),
            Kw("logits", Tensor("input")),
            Kw("axis", Const(1)),
        ),
        reduce=_TF_REDUCE,
        doc="per-element losses; mean/sum via tf.reduce_mean/tf.reduce_sum",
        # "each row of labels is a valid probability distribution. If they are not, the
        # computation of the gradient will be incorrect."
        profile=(
            Declared(
                "target_sum",
                "assumed_one",
                "https://www.tensorflow.org/api_docs/python/tf/nn/softmax_cross_entropy_with_logits",
            ),
        ),
    ),
    # The Keras classes are called without dtype=, as users do: they then compute in floatx()
    # (float32) even for float64 input (declared: precision=float32).
    Spec(
        "keras.losses.SparseCategoricalCrossentropy",
        "cross_entropy",
        frozenset({"index"}),
        args=_KERAS_SPARSE_ARGS,
        kwargs=(
            *_KERAS_SPARSE_KWARGS,
            Kw("reduction", Param("reduction", _BY_KERAS)),
            # class weights as Keras users apply them (what Model.fit(class_weight=...) does)
            Kw(
                "sample_weight", Op("tf.gather", (Tensor("weight"), Tensor("target"))), at_call=True
            ),
        ),
        form="class",
        doc="ignore_index as ignore_class; class weights as sample_weight=tf.gather(w, target); "
        "mean as reduction='sum_over_batch_size'",
        # 'sum_over_batch_size' divides the weighted sum by the number of (non-ignored)
        # elements, not by the sum of the weights
        profile=(_KERAS_FLOATX, _KERAS_EMPTY_MEAN, Declared("index_mean", "count", _KERAS_LOSS)),
        unsupported=_no_gather_at_ignored,
    ),
    Spec(
        "keras.losses.CategoricalCrossentropy",
        "cross_entropy",
        frozenset({"probs"}),
        # axis=1 natively; its label smoothing divides eps by shape[-1], not shape[axis], for
        # N-d input (measured, https://github.com/keras-team/keras/issues/23451).
        args=(Tensor("target"), Tensor("input")),
        kwargs=(
            Kw("from_logits", Const(True)),
            Kw("label_smoothing", Param("label_smoothing")),
            Kw("axis", Const(1)),
            Kw("reduction", Param("reduction", _BY_KERAS)),
        ),
        form="class",
        doc="mean as reduction='sum_over_batch_size'",
        profile=(_KERAS_FLOATX,),
    ),
)
SPECS += (
    Spec(
        "tf.nn.sigmoid_cross_entropy_with_logits",
        "binary_cross_entropy_with_logits",
        frozenset({"binary"}),
        args=(),
        kwargs=(Kw("labels", Tensor("target")), Kw("logits", Tensor("input"))),
        reduce=_TF_REDUCE,
        doc="per-element losses; mean/sum via tf.reduce_mean/tf.reduce_sum",
    ),
)
# Keras' BinaryCrossentropy averages over the last axis before reducing ("'none'" returns
# one value per row): keras/src/losses/losses.py binary_crossentropy, `ops.mean(..., axis=-1)`.
_KERAS_AXIS_MEAN = Declared(
    "axis_mean",
    "last",
    "https://github.com/keras-team/keras/blob/v3.15.1/keras/src/losses/losses.py",
)
_KERAS_BCE_KWARGS = (Kw("reduction", Param("reduction", _BY_KERAS)),)
SPECS += (
    Spec(
        "keras.losses.BinaryCrossentropy",
        "binary_cross_entropy_with_logits",
        frozenset({"binary"}),
        args=(Tensor("target"), Tensor("input")),
        kwargs=(Kw("from_logits", Const(True)), *_KERAS_BCE_KWARGS),
        form="class",
        profile=(_KERAS_FLOATX, _KERAS_AXIS_MEAN),
        name="keras.losses.BinaryCrossentropy(from_logits=True)",
    ),
    Spec(
        "keras.losses.BinaryCrossentropy",
        "binary_cross_entropy",
        frozenset({"binary"}),
        args=(Tensor("target"), Tensor("input")),
        kwargs=(Kw("from_logits", Const(False)), *_KERAS_BCE_KWARGS),
        form="class",
        # p is clipped to [epsilon, 1 - epsilon], epsilon = keras.backend.epsilon() = 1e-7
        profile=(
            _KERAS_FLOATX,
            _KERAS_AXIS_MEAN,
            Declared(
                "log_clamp",
                "clip_1e-7",
                "https://github.com/keras-team/keras/blob/v3.15.1/keras/src/backend/tensorflow/nn.py",
            ),
        ),
        name="keras.losses.BinaryCrossentropy(from_logits=False)",
    ),
)
# The Keras loss *functions* return per-sample losses; "mean"/"sum" use keras.ops, shown in
# the call text (users who call the functions reduce them themselves).
_KERAS_REDUCE = {"mean": "keras.ops.mean", "sum": "keras.ops.sum"}
SPECS += (
    Spec(
        "keras.losses.sparse_categorical_crossentropy",
        "cross_entropy",
        frozenset({"index"}),
        args=_KERAS_SPARSE_ARGS,
        kwargs=_KERAS_SPARSE_KWARGS,
        reduce=_KERAS_REDUCE,
        doc="per-sample losses; mean/sum via keras.ops",
        # ignored targets come back as 0 and keras.ops.mean averages over every element:
        # the composed mean divides by all elements, ignored ones included
        profile=(
            Declared("index_mean", "elements", "https://keras.io/api/ops/numpy/#mean-function"),
        ),
    ),
    Spec(
        "keras.losses.categorical_crossentropy",
        "cross_entropy",
        frozenset({"probs"}),
        args=(Tensor("target"), Tensor("input")),
        kwargs=(
            Kw("from_logits", Const(True)),
            Kw("label_smoothing", Param("label_smoothing")),
            Kw("axis", Const(1)),
        ),
        reduce=_KERAS_REDUCE,
        doc="per-sample losses; mean/sum via keras.ops",
    ),
)
SPECS += tuple(
    _channels_last(s) for s in SPECS if s.api.startswith("keras.losses.") and "parse" in s.api
)

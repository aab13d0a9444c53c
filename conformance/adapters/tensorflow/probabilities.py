"""Keras cross-entropies on probabilities (``from_logits=False``): classes, functions, ops.

With ``from_logits=False`` Keras does not take p as given: ``categorical_crossentropy``
divides p by its sum over ``axis`` and clips it to [epsilon, 1 - epsilon] (epsilon() = 1e-7)
before the log; ``sparse_categorical_crossentropy`` clips first and passes log p to
``sparse_softmax_cross_entropy_with_logits``, whose softmax divides by the clipped sum.
Both are declared (keras/src/backend/tensorflow/nn.py). The sparse forms are called with
``axis=1`` as documented; the TF backend rejects it for N-d input ("Only axis=-1 is
currently supported", https://github.com/keras-team/keras/issues/21097), so a channels-last
variant is a separately named entry.
"""

from __future__ import annotations

from dataclasses import replace

from conformance.adapters._entry import used_params
from conformance.adapters._spec import Const, Kw, Op, Param, Spec, Tensor
from conformance.adapters.tensorflow.classification import (
    _BY_KERAS,
    _KERAS_EMPTY_MEAN,
    _KERAS_FLOATX,
    _KERAS_LOSS,
    _KERAS_REDUCE,
    _channels_last,
)
from conformance.oracle.options import Declared
from conformance.protocol import Task

_LOSS = "cross_entropy_on_probs"
_NN = "https://github.com/keras-team/keras/blob/v3.15.1/keras/src/backend/tensorflow/nn.py"
_CLIP = Declared("prob_clip", "clip_1e-7", _NN)
# categorical: `output / reduce_sum(output, axis)`, then clip_by_value(epsilon, 1 - epsilon)
_CATEGORICAL = (Declared("prob_renormalise", "before_clip", _NN), _CLIP)
# sparse: clip_by_value, log, then sparse_softmax_cross_entropy_with_logits (a softmax)
_SPARSE = (Declared("prob_renormalise", "after_clip", _NN), _CLIP)
_TARGET_INPUT = (Tensor("target"), Tensor("input"))
_INDEX, _PROBS = frozenset({"index"}), frozenset({"probs"})
_OPS_DOC = "per-element losses; mean/sum via keras.ops"


def _no_gather_at_ignored(task: Task) -> str | None:
    if task.params.get("weight") is not None and "ignore_index" in used_params(task):
        return (
            "class weights as sample_weight=tf.gather(w, target) cannot gather at an ignored label"
        )
    return None


def _named(spec: Spec, variant: str = "") -> Spec:
    return replace(spec, name=f"{spec.api}(from_logits=False){variant}")


_SPARSE_KWARGS = (
    Kw("from_logits", Const(False)),
    Kw("ignore_class", Param("ignore_index")),
    Kw("axis", Const(1)),
)
_CATEGORICAL_KWARGS = (
    Kw("from_logits", Const(False)),
    Kw("label_smoothing", Param("label_smoothing")),
    Kw("axis", Const(1)),
)
_OPS_KWARGS = (Kw("from_logits", Const(False)), Kw("axis", Const(1)))

_SPECS: tuple[Spec, ...] = (
    # The classes, called without dtype= as users do: they compute in floatx() (float32).
    Spec(
        "keras.losses.CategoricalCrossentropy",
        _LOSS,
        _PROBS,
        args=_TARGET_INPUT,
        kwargs=(*_CATEGORICAL_KWARGS, Kw("reduction", Param("reduction", _BY_KERAS))),
        form="class",
        doc="mean as reduction='sum_over_batch_size'",
        profile=(_KERAS_FLOATX, *_CATEGORICAL),
    ),
    Spec(
        "keras.losses.SparseCategoricalCrossentropy",
        _LOSS,
        _INDEX,
        args=_TARGET_INPUT,
        kwargs=(
            *_SPARSE_KWARGS,
            Kw("reduction", Param("reduction", _BY_KERAS)),
            # class weights as Keras users apply them (what Model.fit(class_weight=...) does)
            Kw(
                "sample_weight", Op("tf.gather", (Tensor("weight"), Tensor("target"))), at_call=True
            ),
        ),
        form="class",
        doc="ignore_index as ignore_class; class weights as sample_weight=tf.gather(w, target); "
        "mean as reduction='sum_over_batch_size'",
        # 'sum_over_batch_size' divides by the number of (non-ignored) elements
        profile=(
            _KERAS_FLOATX,
            _KERAS_EMPTY_MEAN,
            Declared("index_mean", "count", _KERAS_LOSS),
            *_SPARSE,
        ),
        unsupported=_no_gather_at_ignored,
    ),
    # The functions return per-sample losses; mean/sum via keras.ops, shown in the call text.
    Spec(
        "keras.losses.categorical_crossentropy",
        _LOSS,
        _PROBS,
        args=_TARGET_INPUT,
        kwargs=_CATEGORICAL_KWARGS,
        reduce=_KERAS_REDUCE,
        doc=_OPS_DOC,
        profile=_CATEGORICAL,
    ),
    Spec(
        "keras.losses.sparse_categorical_crossentropy",
        _LOSS,
        _INDEX,
        args=_TARGET_INPUT,
        kwargs=_SPARSE_KWARGS,
        reduce=_KERAS_REDUCE,
        doc=_OPS_DOC,
        # ignored targets come back as 0 and keras.ops.mean averages over every element
        profile=(
            Declared("index_mean", "elements", "https://keras.io/api/ops/numpy/#mean-function"),
            *_SPARSE,
        ),
    ),
    Spec(
        "keras.ops.categorical_crossentropy",
        _LOSS,
        _PROBS,
        args=_TARGET_INPUT,
        kwargs=_OPS_KWARGS,
        reduce=_KERAS_REDUCE,
        doc=_OPS_DOC,
        profile=_CATEGORICAL,
    ),
    Spec(
        "keras.ops.sparse_categorical_crossentropy",
        _LOSS,
        _INDEX,
        args=_TARGET_INPUT,
        kwargs=_OPS_KWARGS,
        reduce=_KERAS_REDUCE,
        doc=_OPS_DOC,
        profile=_SPARSE,
    ),
)
SPECS: tuple[Spec, ...] = (
    *(_named(s) for s in _SPECS),
    *(_named(_channels_last(s), "[channels-last]") for s in _SPECS if "parse" in s.api),
)

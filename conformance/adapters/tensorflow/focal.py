"""Keras' focal losses on logits: binary and categorical, class and function.

Both average over the last axis (``axis=-1``, documented: declared axis_mean=last); the class
computes in floatx() like every Keras loss class. alpha is applied only with
``apply_class_balancing=True``, which is how a case with alpha is passed.
"""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Param, Spec, Tensor
from conformance.adapters.tensorflow.classification import (
    _BY_KERAS,
    _KERAS_AXIS_MEAN,
    _KERAS_FLOATX,
    _KERAS_REDUCE,
)
from conformance.protocol import Task


def _has_alpha(task: Task) -> bool:
    return task.params.get("alpha") is not None


_FOCAL_KWARGS = (
    Kw("apply_class_balancing", Const(of=_has_alpha)),
    Kw("alpha", Param("alpha"), when=_has_alpha),
    Kw("gamma", Param("gamma")),
    Kw("from_logits", Const(True)),
)
_ARGS = (Tensor("target"), Tensor("input"))
SPECS: tuple[Spec, ...] = (
    Spec(
        "keras.losses.BinaryFocalCrossentropy",
        "sigmoid_focal_loss",
        frozenset({"binary"}),
        args=_ARGS,
        kwargs=(*_FOCAL_KWARGS, Kw("reduction", Param("reduction", _BY_KERAS))),
        form="class",
        doc="alpha via apply_class_balancing=True; mean as reduction='sum_over_batch_size'",
        profile=(_KERAS_FLOATX, _KERAS_AXIS_MEAN),
        name="keras.losses.BinaryFocalCrossentropy(from_logits=True)",
    ),
    Spec(
        "keras.losses.binary_focal_crossentropy",
        "sigmoid_focal_loss",
        frozenset({"binary"}),
        args=_ARGS,
        kwargs=_FOCAL_KWARGS,
        reduce=_KERAS_REDUCE,
        doc="per-sample losses (mean over the last axis); mean/sum via keras.ops",
        profile=(_KERAS_AXIS_MEAN,),
        name="keras.losses.binary_focal_crossentropy(from_logits=True)",
    ),
)


# The categorical focal loss: alpha multiplies every term (no class balancing), so a case
# without alpha passes alpha=1.0, its neutral value; axis=1 as documented.
_CATEGORICAL_KWARGS = (
    Kw("alpha", Param("alpha"), when=_has_alpha),
    Kw("alpha", Const(1.0), when=lambda task: not _has_alpha(task)),
    Kw("gamma", Param("gamma")),
    Kw("from_logits", Const(True)),
    Kw("axis", Const(1)),
)
SPECS += (
    Spec(
        "keras.losses.CategoricalFocalCrossentropy",
        "softmax_focal_loss",
        frozenset({"probs"}),
        args=_ARGS,
        kwargs=(*_CATEGORICAL_KWARGS, Kw("reduction", Param("reduction", _BY_KERAS))),
        form="class",
        doc="no alpha as alpha=1.0; mean as reduction='sum_over_batch_size'",
        profile=(_KERAS_FLOATX,),
    ),
    Spec(
        "keras.losses.categorical_focal_crossentropy",
        "softmax_focal_loss",
        frozenset({"probs"}),
        args=_ARGS,
        kwargs=_CATEGORICAL_KWARGS,
        reduce=_KERAS_REDUCE,
        doc="per-sample losses; mean/sum via keras.ops",
    ),
)

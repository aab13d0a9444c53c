"""TensorFlow and Keras entries: MSE, MAE and Huber (Keras classes and functions,
``tf.compat.v1.losses``) and ``tf.nn.l2_loss``.

Keras' regression losses average over the last axis ("mean of squares of errors between
labels and predictions ... over the last axis", ``axis=-1``: declared axis_mean=last); the
classes compute in floatx(). Keras takes (y_true, y_pred). The v1 losses take per-element
``weights`` (a per-class weight with a leading batch axis, as a v1 user writes it), reduce by
``SUM_BY_NONZERO_WEIGHTS`` and cast to float32 (declared, as for their cross-entropies).
``tf.nn.l2_loss(t)`` is ``sum(t ** 2) / 2`` of one tensor: called on ``input - target``, it
is the summed squared error with squared_scale=half, for reduction='sum' only.
"""

from __future__ import annotations

from conformance.adapters._spec import Kw, Op, Param, Spec, Tensor
from conformance.adapters.tensorflow.classification import (
    _BY_KERAS,
    _KERAS_AXIS_MEAN,
    _KERAS_FLOATX,
    _KERAS_REDUCE,
)
from conformance.adapters.tensorflow.legacy import _CLASS_WEIGHTS, _FLOAT32, _REDUCTION, _V1_DOC
from conformance.oracle.options import Declared

_REAL = frozenset({"real"})
_KERAS_ARGS = (Tensor("target"), Tensor("input"))
_DELTA = (Kw("delta", Param("delta")),)
_NONZERO = Declared("mean_denominator", "nonzero_weights", _V1_DOC)


def _keras(cls: str, function: str, loss: str, extra: tuple[Kw, ...] = ()) -> tuple[Spec, ...]:
    return (
        Spec(
            f"keras.losses.{cls}",
            loss,
            _REAL,
            args=_KERAS_ARGS,
            kwargs=(*extra, Kw("reduction", Param("reduction", _BY_KERAS))),
            form="class",
            doc="mean as reduction='sum_over_batch_size'",
            profile=(_KERAS_FLOATX, _KERAS_AXIS_MEAN),
        ),
        Spec(
            f"keras.losses.{function}",
            loss,
            _REAL,
            args=_KERAS_ARGS,
            kwargs=extra,
            reduce=_KERAS_REDUCE,
            doc="per-sample losses (mean over the last axis); mean/sum via keras.ops",
            profile=(_KERAS_AXIS_MEAN,),
        ),
    )


def _v1(function: str, loss: str, extra: tuple[Kw, ...] = ()) -> Spec:
    return Spec(
        f"tf.compat.v1.losses.{function}",
        loss,
        _REAL,
        args=(),
        kwargs=(
            Kw("labels", Tensor("target")),
            Kw("predictions", Tensor("input")),
            _CLASS_WEIGHTS,
            *extra,
            _REDUCTION,
        ),
        doc="weights=w (per class, broadcast); mean = SUM_BY_NONZERO_WEIGHTS",
        profile=(_FLOAT32, _NONZERO),
    )


SPECS: tuple[Spec, ...] = (
    *_keras("MeanSquaredError", "mean_squared_error", "mse_loss"),
    *_keras("MeanAbsoluteError", "mean_absolute_error", "l1_loss"),
    *_keras("Huber", "huber", "huber_loss", _DELTA),
    _v1("mean_squared_error", "mse_loss"),
    _v1("absolute_difference", "l1_loss"),
    _v1("huber_loss", "huber_loss", _DELTA),
    Spec(
        "tf.nn.l2_loss",
        "mse_loss",
        _REAL,
        args=(Op("tf.subtract", (Tensor("input"), Tensor("target"))),),
        doc="sum((input - target) ** 2) / 2: reduction='sum' only",
        profile=(
            Declared(
                "squared_scale", "half", "https://www.tensorflow.org/api_docs/python/tf/nn/l2_loss"
            ),
        ),
        reduced="sum",
    ),
)

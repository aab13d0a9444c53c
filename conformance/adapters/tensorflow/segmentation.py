"""Keras entries: Dice and Tversky, class and function forms.

Keras takes probabilities ``(y_true, y_pred)`` of any layout and sums over ``axis``: called
with the spatial axes of the suite's (N, C, d1, ..., dk) layout, ``axis=(2, ..., k+1)``, it
gives one term per sample and class, the canonical Dice. Its smoothing is the backend
epsilon 1e-7 in the denominator only (``1 - 2 I / (P + T + epsilon)``, in its source; the
docs give the formula without it): the entries serve smooth=1e-7 cases (declared
dice_smooth=denominator_only). The classes compute in floatx().
"""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Param, Spec, Tensor
from conformance.adapters.tensorflow.classification import _BY_KERAS, _KERAS_FLOATX, _KERAS_REDUCE
from conformance.oracle.options import Declared
from conformance.protocol import Task

_PROBS = frozenset({"probs"})
_SOURCE = "https://github.com/keras-team/keras/blob/v3.15.1/keras/src/losses/losses.py"
_ARGS = (Tensor("target"), Tensor("input"))
_EPSILON = {"smooth": 1e-7}  # keras.config.epsilon(), not an argument
_DENOMINATOR = Declared("dice_smooth", "denominator_only", _SOURCE)


def _spatial(task: Task) -> tuple[int, ...]:
    return tuple(range(2, task.input.ndim))


_AXIS = Kw("axis", Const(of=_spatial))
_TVERSKY = (Kw("alpha", Param("tversky_alpha")), Kw("beta", Param("tversky_beta")))


def _pair(cls: str, function: str, loss: str, extra: tuple[Kw, ...] = ()) -> tuple[Spec, ...]:
    return (
        Spec(
            f"keras.losses.{cls}",
            loss,
            _PROBS,
            args=_ARGS,
            kwargs=(*extra, Kw("reduction", Param("reduction", _BY_KERAS)), _AXIS),
            form="class",
            doc="axis = the spatial axes; mean as reduction='sum_over_batch_size'",
            profile=(_DENOMINATOR, _KERAS_FLOATX),
            fixed=_EPSILON,
        ),
        Spec(
            f"keras.losses.{function}",
            loss,
            _PROBS,
            args=_ARGS,
            kwargs=(*extra, _AXIS),
            reduce=_KERAS_REDUCE,
            doc="axis = the spatial axes: one loss per sample and class; mean/sum via keras.ops",
            profile=(_DENOMINATOR,),
            fixed=_EPSILON,
        ),
    )


SPECS: tuple[Spec, ...] = (
    *_pair("Dice", "dice", "dice_loss"),
    *_pair("Tversky", "tversky", "tversky_loss", _TVERSKY),
)

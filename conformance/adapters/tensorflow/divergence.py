"""Keras entries: ``KLDivergence`` and ``kl_divergence``.

Keras takes probabilities ``(y_true, y_pred)``: the suite's log-probability input reaches it
as ``keras.ops.exp(input)``, as a user holding log-probabilities writes it (the gradient flows
through the exp). Keras clips both to [1e-7, 1] before the logs and sums over the last axis
(``sum(y_true * log(y_true / y_pred), axis=-1)``, documented), one value per row; the class
computes in floatx(). It has no log-probability targets and no 'batchmean'.
"""

from __future__ import annotations

from conformance.adapters._spec import Kw, Op, Param, Spec, Tensor
from conformance.adapters.tensorflow.classification import _BY_KERAS, _KERAS_FLOATX, _KERAS_REDUCE
from conformance.oracle.options import Declared

_PROBS = frozenset({"probs"})
_SOURCE = "https://github.com/keras-team/keras/blob/v3.15.1/keras/src/losses/losses.py"
_ARGS = (Tensor("target"), Op("keras.ops.exp", (Tensor("input"),)))
_PROFILE = (Declared("kl_clip", "clip_1e-7", _SOURCE), Declared("kl_axis", "last_sum", _SOURCE))

SPECS: tuple[Spec, ...] = (
    Spec(
        "keras.losses.KLDivergence",
        "kl_div",
        _PROBS,
        args=_ARGS,
        kwargs=(Kw("reduction", Param("reduction", _BY_KERAS)),),
        form="class",
        doc="mean as reduction='sum_over_batch_size' (of the per-row sums)",
        profile=(*_PROFILE, _KERAS_FLOATX),
    ),
    Spec(
        "keras.losses.kl_divergence",
        "kl_div",
        _PROBS,
        args=_ARGS,
        reduce=_KERAS_REDUCE,
        doc="per-row sums over the last axis; mean/sum via keras.ops",
        profile=_PROFILE,
    ),
)

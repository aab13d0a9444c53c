"""Keras' backend-neutral cross-entropy ops (``keras.ops.*``) and the binary loss function.

``keras.ops.*_crossentropy`` return per-element losses (no reduction, no last-axis mean);
"mean"/"sum" use ``keras.ops.mean``/``keras.ops.sum``, shown in the call text. Both
directions of ``from_logits`` are entries: logits (the loss ``*_with_logits``) and
probabilities (``binary_cross_entropy``, clipped to [epsilon, 1 - epsilon] as declared).
"""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Spec, Tensor
from conformance.adapters.tensorflow.classification import (
    _KERAS_AXIS_MEAN,
    _KERAS_REDUCE,
    _channels_last,
)
from conformance.oracle.options import Declared

_BINARY = frozenset({"binary"})
_TARGET_INPUT = (Tensor("target"), Tensor("input"))
# output is clipped to [epsilon(), 1 - epsilon()] before the logs (epsilon() = 1e-7)
_CLIP = Declared(
    "log_clamp",
    "clip_1e-7",
    "https://github.com/keras-team/keras/blob/v3.15.1/keras/src/backend/tensorflow/nn.py",
)
_OPS_DOC = "per-element losses; mean/sum via keras.ops"


def _binary(api: str, *, logits: bool, profile: tuple[Declared, ...] = ()) -> Spec:
    return Spec(
        api,
        "binary_cross_entropy_with_logits" if logits else "binary_cross_entropy",
        _BINARY,
        args=_TARGET_INPUT,
        kwargs=(Kw("from_logits", Const(logits)),),
        reduce=_KERAS_REDUCE,
        doc=_OPS_DOC,
        profile=profile if logits else (*profile, _CLIP),
        name=f"{api}(from_logits={logits})",
    )


_SPARSE = Spec(
    "keras.ops.sparse_categorical_crossentropy",
    "cross_entropy",
    frozenset({"index"}),
    args=_TARGET_INPUT,
    kwargs=(Kw("from_logits", Const(True)), Kw("axis", Const(1))),
    reduce=_KERAS_REDUCE,
    doc=_OPS_DOC,
)
SPECS: tuple[Spec, ...] = (
    _SPARSE,
    _channels_last(_SPARSE),
    Spec(
        "keras.ops.categorical_crossentropy",
        "cross_entropy",
        frozenset({"probs"}),
        args=_TARGET_INPUT,
        kwargs=(Kw("from_logits", Const(True)), Kw("axis", Const(1))),
        reduce=_KERAS_REDUCE,
        doc=_OPS_DOC,
    ),
    _binary("keras.ops.binary_crossentropy", logits=True),
    _binary("keras.ops.binary_crossentropy", logits=False),
    # The loss function averages over the last axis, like the BinaryCrossentropy class.
    _binary("keras.losses.binary_crossentropy", logits=True, profile=(_KERAS_AXIS_MEAN,)),
    _binary("keras.losses.binary_crossentropy", logits=False, profile=(_KERAS_AXIS_MEAN,)),
)

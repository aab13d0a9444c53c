"""TensorFlow and Keras entries: the building blocks softmax, log_softmax, sigmoid,
log_sigmoid in ``tf.nn`` / ``tf.math``, ``keras.ops`` and ``keras.activations`` (what a
layer's ``activation="softmax"`` calls). The class axis is passed as documented (``axis=1``).
"""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Spec, Tensor

_NONE = frozenset({"none"})
_X = (Tensor("input"),)
_AXIS = (Kw("axis", Const(1)),)

SPECS: tuple[Spec, ...] = (
    Spec("tf.nn.softmax", "softmax", _NONE, args=_X, kwargs=_AXIS),
    Spec("tf.nn.log_softmax", "log_softmax", _NONE, args=_X, kwargs=_AXIS),
    Spec("tf.math.sigmoid", "sigmoid", _NONE, args=_X),
    Spec("tf.math.log_sigmoid", "log_sigmoid", _NONE, args=_X),
    *(
        Spec(f"keras.{namespace}.{name}", name, _NONE, args=_X, kwargs=kwargs)
        for namespace in ("ops", "activations")
        for name, kwargs in (
            ("softmax", _AXIS),
            ("log_softmax", _AXIS),
            ("sigmoid", ()),
            ("log_sigmoid", ()),
        )
    ),
)

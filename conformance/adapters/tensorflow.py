"""TensorFlow and Keras 3: ``tf.nn.*softmax_cross_entropy_with_logits`` and ``keras.losses.*``.

Keras is imported as ``import keras`` (in TF 2.21 ``tf.keras`` is a wrapper around the same
Keras 3 package) and runs on its TensorFlow backend. Gradients come from ``tf.GradientTape``
of the sum of the loss, taken w.r.t. the channel-first input, so an adapter-side transpose to
channels-last (shown in the call text) is differentiated through and the gradient comes back
in the canonical layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from conformance.adapters._entry import Entry, Unavailable, calling
from conformance.oracle.options import Declared
from conformance.protocol import Task

FRAMEWORK = "tensorflow"
REQUIRES = ("tensorflow",)

# Repro snippet: NumPy `x`, `t`, `weight` are defined before it (see conformance.runner.repro).
# The tf.nn / Keras APIs here take no class weights, so `weight` is unused.
SNIPPET = """\
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import tensorflow as tf
import keras
input = tf.constant(x)
target = tf.constant(t)
with tf.GradientTape() as tape:
    tape.watch(input)
    loss = {call}
    total = tf.reduce_sum(loss)
grad = tape.gradient(total, input)
print("loss", loss.numpy(), "grad", grad.numpy(), sep="\\n")
"""

_ALL_REDUCTIONS = frozenset({"none", "mean", "sum"})
# tf.nn.* return per-element losses; "mean"/"sum" use TF's own reduce op, shown in the call.
_TF_REDUCE = {"none": "{}", "mean": "tf.reduce_mean({})", "sum": "tf.reduce_sum({})"}
# Keras reduction names for the canonical reductions.
_KERAS_REDUCTION: dict[str, str | None] = {
    "none": None,
    "mean": "sum_over_batch_size",
    "sum": "sum",
}


def _import_keras() -> Any:
    import os

    # Keras 3 picks its backend at first import from KERAS_BACKEND; this worker serves
    # TensorFlow, so the Keras entries must run on the TF backend (GradientTape sees them).
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras

    return keras


def environment(device: str) -> dict[str, str]:
    import tensorflow as tf

    keras = _import_keras()
    env = {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "tf.keras": str(getattr(tf.keras, "__version__", "?")),
    }
    if device == "gpu":
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            raise Unavailable(
                "no GPU visible to tensorflow (tf.config.list_physical_devices('GPU') is empty)"
            )
        details = tf.config.experimental.get_device_details(gpus[0])
        env["device"] = f"/GPU:0 ({details.get('device_name', gpus[0].name)})"
    else:
        env["device"] = "/CPU:0"
    return env


def _device(task: Task) -> str:
    return "/GPU:0" if task.device == "gpu" else "/CPU:0"


def _classes_last(ndim: int) -> list[int] | None:
    """The permutation moving the class axis (1) of an N-d input to the end, None for 2-d."""
    return [0, *range(2, ndim), 1] if ndim > 2 else None


def _channels_last(ndim: int) -> str:
    """``input`` as a channels-last expression, as the call text shows it."""
    perm = _classes_last(ndim)
    return "input" if perm is None else f"tf.transpose(input, {perm})"


def _value_and_grad(task: Task, loss_of: Callable[[Any, Any], Any]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    with tf.device(_device(task)):
        x = tf.constant(task.input)
        target = tf.constant(task.target)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = loss_of(x, target)
            # For reduction="none" the gradient is that of the sum (a cotangent of ones).
            total = tf.reduce_sum(loss)
        grad = tape.gradient(total, x)
    if grad is None:
        raise RuntimeError("tf.GradientTape returned no gradient for the input")
    return {"loss": np.asarray(loss.numpy()), "grad": np.asarray(grad.numpy())}


def _to_channels_last(x: Any) -> Any:
    """What ``_channels_last`` shows, done (inside the tape, so the grad stays channel-first)."""
    import tensorflow as tf

    perm = _classes_last(x.shape.rank)
    return x if perm is None else tf.transpose(x, perm)


def _nn_sparse(task: Task) -> tuple[dict[str, np.ndarray], str]:
    import tensorflow as tf

    reduction = task.params["reduction"]
    # No axis argument: logits must be channels-last ([..., num_classes]), so N-d input is
    # transposed inside the taped call. Labels: int32 or int64, int64 used as given.
    # https://www.tensorflow.org/api_docs/python/tf/nn/sparse_softmax_cross_entropy_with_logits
    inner = (
        "tf.nn.sparse_softmax_cross_entropy_with_logits("
        f"labels=target, logits={_channels_last(task.input.ndim)})"
    )
    call = _TF_REDUCE[reduction].format(inner)
    reduce = {"none": lambda v: v, "mean": tf.reduce_mean, "sum": tf.reduce_sum}[reduction]

    def loss_of(x: Any, t: Any) -> Any:
        return reduce(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=_to_channels_last(x))
        )

    with calling(call):
        outputs = _value_and_grad(task, loss_of)
    return outputs, call


def _nn_dense(task: Task) -> tuple[dict[str, np.ndarray], str]:
    import tensorflow as tf

    reduction = task.params["reduction"]
    axis = 1 if task.input.ndim >= 2 else 0
    inner = f"tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=input, axis={axis})"
    call = _TF_REDUCE[reduction].format(inner)
    reduce = {"none": lambda v: v, "mean": tf.reduce_mean, "sum": tf.reduce_sum}[reduction]

    def loss_of(x: Any, t: Any) -> Any:
        return reduce(tf.nn.softmax_cross_entropy_with_logits(labels=t, logits=x, axis=axis))

    with calling(call):
        outputs = _value_and_grad(task, loss_of)
    return outputs, call


# The Keras classes are called without dtype=, as users do: they then compute in floatx()
# (float32) even for float64 input; measured, not corrected
# (https://github.com/keras-team/keras-core/issues/922).


def _keras_sparse(task: Task) -> tuple[dict[str, np.ndarray], str]:
    keras = _import_keras()
    p = task.params
    reduction = _KERAS_REDUCTION[p["reduction"]]
    ignore_class = int(p["ignore_index"])
    ndim = task.input.ndim
    # The class takes axis=, but Keras' TF backend raises "Only axis=-1 is currently
    # supported" for any other axis of an N-d input, so N-d input is transposed to
    # channels-last instead (https://github.com/keras-team/keras/issues/21097).
    if ndim <= 2:
        axis_text, axis_kw, logits = ", axis=1", {"axis": 1}, "input"
    else:
        axis_text, axis_kw, logits = "", {}, _channels_last(ndim)
    call = (
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True, "
        f"ignore_class={ignore_class}, reduction={reduction!r}{axis_text})(target, {logits})"
    )
    with calling(call):
        loss_fn = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=ignore_class, reduction=reduction, **axis_kw
        )
        outputs = _value_and_grad(task, lambda x, t: loss_fn(t, _to_channels_last(x)))
    return outputs, call


def _keras_dense(task: Task) -> tuple[dict[str, np.ndarray], str]:
    keras = _import_keras()
    p = task.params
    reduction = _KERAS_REDUCTION[p["reduction"]]
    smoothing = float(p["label_smoothing"])
    axis = 1 if task.input.ndim >= 2 else 0
    # axis=1 natively; its label smoothing divides eps by shape[-1], not shape[axis], for
    # N-d input (measured, https://github.com/keras-team/keras/issues/23451).
    call = (
        "keras.losses.CategoricalCrossentropy(from_logits=True, "
        f"label_smoothing={smoothing!r}, axis={axis}, reduction={reduction!r})(target, input)"
    )
    with calling(call):
        loss_fn = keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=smoothing, axis=axis, reduction=reduction
        )
        outputs = _value_and_grad(task, lambda x, t: loss_fn(t, x))
    return outputs, call


_KERAS_LOSS = "https://github.com/keras-team/keras/blob/v3.15.1/keras/src/losses/loss.py"
# Keras losses compute in `dtype`, which defaults to keras.backend.floatx() (float32): a
# float64 input is computed in float32 unless the user passes dtype= (keras-core#922).
_KERAS_FLOATX = Declared(
    "precision", "float32", "https://github.com/keras-team/keras-core/issues/922"
)
# reduce_values: `ops.divide_no_nan(loss, divisor)`: a mean over only masked targets is 0.
_KERAS_EMPTY_MEAN = Declared("empty_mean", "zero", _KERAS_LOSS)

ENTRIES = (
    Entry(
        api="tf.nn.sparse_softmax_cross_entropy_with_logits",
        loss="cross_entropy",
        targets=frozenset({"index"}),
        params=frozenset(),
        reductions=_ALL_REDUCTIONS,
        run=_nn_sparse,
        doc="per-element losses; mean/sum via tf.reduce_mean/tf.reduce_sum",
    ),
    Entry(
        api="tf.nn.softmax_cross_entropy_with_logits",
        loss="cross_entropy",
        targets=frozenset({"probs"}),
        params=frozenset(),
        reductions=_ALL_REDUCTIONS,
        run=_nn_dense,
        doc="per-element losses; mean/sum via tf.reduce_mean/tf.reduce_sum",
    ),
    Entry(
        api="keras.losses.SparseCategoricalCrossentropy",
        loss="cross_entropy",
        targets=frozenset({"index"}),
        params=frozenset({"ignore_index"}),
        reductions=_ALL_REDUCTIONS,
        run=_keras_sparse,
        doc="ignore_index as ignore_class; mean as reduction='sum_over_batch_size'",
        profile=(_KERAS_FLOATX, _KERAS_EMPTY_MEAN),
    ),
    Entry(
        api="keras.losses.CategoricalCrossentropy",
        loss="cross_entropy",
        targets=frozenset({"probs"}),
        params=frozenset({"label_smoothing"}),
        reductions=_ALL_REDUCTIONS,
        run=_keras_dense,
        doc="mean as reduction='sum_over_batch_size'",
        profile=(_KERAS_FLOATX,),
    ),
)

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

from conformance.adapters._entry import Unavailable
from conformance.adapters._spec import entries, resolve_dotted
from conformance.adapters.tensorflow import (
    activations,
    classification,
    divergence,
    focal,
    keras_ops,
    legacy,
    probabilities,
    regression,
    scope,
    segmentation,
)
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
target = None if t is None else tf.constant(t)
with tf.GradientTape() as tape:
    tape.watch(input)
    loss = {call}
    total = tf.reduce_sum(loss if g is None else loss * g)
grad = tape.gradient(total, input)
print("loss", loss.numpy(), "grad", grad.numpy(), sep="\\n")
"""


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


class _TensorFlow:
    """Runs specs with TensorFlow/Keras: constants on the task's device, ``GradientTape``;
    ``tf.function`` traces the loss-and-gradient step into a graph, ``tf.function-xla``
    compiles it with XLA (``jit_compile=True``)."""

    modes: tuple[str, ...] = ("eager", "tf.function", "tf.function-xla")

    def tensor(self, array: np.ndarray, task: Task) -> Any:
        import tensorflow as tf

        with tf.device(_device(task)):
            return tf.constant(array)

    def channels_last(self, x: Any) -> Any:
        import tensorflow as tf

        perm = _classes_last(x.shape.rank)
        return x if perm is None else tf.transpose(x, perm)

    def channels_last_text(self, name: str, ndim: int) -> str:
        return f"tf.transpose({name}, {_classes_last(ndim)})"

    def resolve(self, dotted: str) -> Callable[..., Any]:
        if dotted.startswith("keras."):
            _import_keras()
        return resolve_dotted(dotted, {"tf": "tensorflow"})

    def value_and_grad(self, task: Task, loss_of: Callable[[Any], Any]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        def step(x: Any) -> tuple[Any, Any]:
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = loss_of(x)
                # The gradient of the sum (for reduction="none": a cotangent of ones), or
                # along the cotangent a target-less case gives.
                total = tf.reduce_sum(loss if cotangent is None else loss * cotangent)
            return loss, tape.gradient(total, x)

        cotangent = None if task.grad_output is None else self.tensor(task.grad_output, task)
        if task.mode != "eager":
            step = tf.function(step, jit_compile=task.mode == "tf.function-xla")
        with tf.device(_device(task)):
            loss, grad = step(tf.constant(task.input))
        if grad is None:
            raise RuntimeError("tf.GradientTape returned no gradient for the input")
        return {"loss": np.asarray(loss.numpy()), "grad": np.asarray(grad.numpy())}


# The entries, one module per loss family; adding a family is one import here.
SPECS = (
    *classification.SPECS,
    *keras_ops.SPECS,
    *legacy.SPECS,
    *probabilities.SPECS,
    *focal.SPECS,
    *activations.SPECS,
    *regression.SPECS,
    *divergence.SPECS,
    *segmentation.SPECS,
)
_FRAMEWORK = _TensorFlow()
ENTRIES = entries(SPECS, _FRAMEWORK)
# How a dotted public name resolves (what the census compares entries by).
resolve = _FRAMEWORK.resolve
# Losses the suite covers that this framework has no public API for.
OUT_OF_SCOPE = (
    ("nll_loss", "no NLL loss on log-probabilities in tf.nn or keras.losses"),
    (
        "multilabel_soft_margin_loss",
        "no multi-label soft-margin loss in tf.nn, keras.losses or keras.ops",
    ),
    ("smooth_l1_loss", "no smooth L1 loss in tf.nn, keras.losses or tf.compat.v1.losses"),
)
# Public APIs of these families that are not entries, each with its reason.
OUT_OF_SCOPE_APIS = scope.APIS

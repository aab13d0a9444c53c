"""JAX / optax: ``optax.softmax_cross_entropy`` and its ``_with_integer_labels`` variant.

Both return per-element losses (``axis=1`` keeps the canonical channel-first layout, optax
>= 0.2.4); "mean"/"sum" use ``jnp.mean``/``jnp.sum``, shown in the call text. Gradients come
from ``jax.value_and_grad`` of the sum of the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from conformance.adapters._entry import Unavailable
from conformance.adapters._spec import entries, resolve_dotted
from conformance.adapters.jax import (
    activations,
    classification,
    divergence,
    focal,
    regression,
    scope,
    segmentation,
)
from conformance.protocol import Task

FRAMEWORK = "jax"
REQUIRES = ("jax", "optax")

# Repro snippet: NumPy `x`, `t`, `weight` are defined before it (see conformance.runner.repro).
# optax takes no class weights, so `weight` is unused.
SNIPPET = """\
import jax
jax.config.update("jax_enable_x64", True)  # else float64 arrays silently become float32
import jax.numpy as jnp
import optax
input = jnp.asarray(x)
target = None if t is None else jnp.asarray(t)
loss_of = lambda input: {call}
total = lambda input: jnp.sum(loss_of(input) * (1 if g is None else g))
loss, grad = jax.value_and_grad(total)(input)
print("loss", loss_of(input), "grad", grad, sep="\\n")
"""


def _jax() -> Any:
    import jax

    # Without x64 JAX silently turns float64/int64 arrays into float32/int32, so float64
    # cases would not run in float64 (https://docs.jax.dev/en/latest/default_dtypes.html).
    jax.config.update("jax_enable_x64", True)
    return jax


def environment(device: str) -> dict[str, str]:
    jax = _jax()
    import jaxlib
    import optax

    env = {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "jax_enable_x64": str(jax.config.jax_enable_x64),
    }
    if device == "gpu":
        try:
            gpus = jax.devices("gpu")
        except RuntimeError as exc:
            raise Unavailable(f"no GPU visible to jax ({exc})") from None
        if not gpus:
            raise Unavailable("no GPU visible to jax (jax.devices('gpu') is empty)")
        env["device"] = f"{gpus[0]} ({gpus[0].device_kind})"
    else:
        env["device"] = str(jax.devices("cpu")[0])
    return env


class _Jax:
    """Runs specs with JAX: arrays on the task's device, gradients by ``jax.value_and_grad``;
    ``jit`` compiles the whole value-and-grad with ``jax.jit``."""

    modes: tuple[str, ...] = ("eager", "jit")

    def tensor(self, array: np.ndarray, task: Task) -> Any:
        jax = _jax()
        import jax.numpy as jnp

        return jax.device_put(jnp.asarray(array), _device(task))

    def channels_last(self, x: Any) -> Any:
        import jax.numpy as jnp

        return jnp.moveaxis(x, 1, -1) if x.ndim > 2 else x

    def channels_last_text(self, name: str, ndim: int) -> str:
        return f"jnp.moveaxis({name}, 1, -1)"

    def resolve(self, dotted: str) -> Callable[..., Any]:
        _jax()
        return resolve_dotted(dotted, {"jnp": "jax.numpy"})

    def value_and_grad(self, task: Task, loss_of: Callable[[Any], Any]) -> dict[str, np.ndarray]:
        jax = _jax()
        import jax.numpy as jnp

        x = self.tensor(task.input, task)
        cotangent = None if task.grad_output is None else self.tensor(task.grad_output, task)

        def total(x: Any) -> tuple[Any, Any]:
            loss = loss_of(x)
            # The gradient of the sum (for reduction="none": a cotangent of ones), or along
            # the cotangent a target-less case gives.
            return jnp.sum(loss if cotangent is None else loss * cotangent), loss

        step = jax.value_and_grad(total, has_aux=True)
        if task.mode == "jit":
            step = jax.jit(step)
        (_, loss), grad = step(x)
        return {"loss": np.asarray(loss), "grad": np.asarray(grad)}


def _device(task: Task) -> Any:
    return _jax().devices("gpu" if task.device == "gpu" else "cpu")[0]


# The entries, one module per loss family; adding a family is one import here.
SPECS = (
    *classification.SPECS,
    *focal.SPECS,
    *activations.SPECS,
    *regression.SPECS,
    *divergence.SPECS,
    *segmentation.SPECS,
)
_FRAMEWORK = _Jax()
ENTRIES = entries(SPECS, _FRAMEWORK)
# How a dotted public name resolves (what the census compares entries by).
resolve = _FRAMEWORK.resolve
# Losses the suite covers that this framework has no public API for.
OUT_OF_SCOPE = (
    ("nll_loss", "optax has no NLL loss on log-probabilities"),
    ("binary_cross_entropy", "optax has no binary cross-entropy on probabilities"),
    ("multilabel_soft_margin_loss", "optax has no multi-label soft-margin loss"),
    ("cross_entropy_on_probs", "optax's cross-entropies take logits, none takes probabilities"),
    ("l1_loss", "optax has no absolute-error loss"),
    ("smooth_l1_loss", "optax has no smooth L1 loss (huber_loss is Huber's form)"),
)
# Public APIs of these families that are not entries, each with its reason.
OUT_OF_SCOPE_APIS = scope.APIS

"""JAX / optax: ``optax.softmax_cross_entropy`` and its ``_with_integer_labels`` variant.

Both return per-element losses (``axis=1`` keeps the canonical channel-first layout, optax
>= 0.2.4); "mean"/"sum" use ``jnp.mean``/``jnp.sum``, shown in the call text. Gradients come
from ``jax.value_and_grad`` of the sum of the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from conformance.adapters._entry import Entry, Unavailable, calling
from conformance.oracle.options import Declared
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
target = jnp.asarray(t)
loss_of = lambda input: {call}
loss, grad = jax.value_and_grad(lambda input: jnp.sum(loss_of(input)))(input)
print("loss", loss_of(input), "grad", grad, sep="\\n")
"""

_ALL_REDUCTIONS = frozenset({"none", "mean", "sum"})
_JNP_REDUCE = {"none": "{}", "mean": "jnp.mean({})", "sum": "jnp.sum({})"}


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


def _value_and_grad(task: Task, loss_of: Callable[[Any, Any], Any]) -> dict[str, np.ndarray]:
    jax = _jax()
    import jax.numpy as jnp

    device = jax.devices("gpu" if task.device == "gpu" else "cpu")[0]
    x = jax.device_put(jnp.asarray(task.input), device)
    target = jax.device_put(jnp.asarray(task.target), device)

    def total(x: Any) -> tuple[Any, Any]:
        loss = loss_of(x, target)
        # For reduction="none" the gradient is that of the sum (a cotangent of ones).
        return jnp.sum(loss), loss

    (_, loss), grad = jax.value_and_grad(total, has_aux=True)(x)
    return {"loss": np.asarray(loss), "grad": np.asarray(grad)}


def _reduce(reduction: str) -> Callable[[Any], Any]:
    import jax.numpy as jnp

    fns: dict[str, Callable[[Any], Any]] = {
        "none": lambda v: v,
        "mean": jnp.mean,
        "sum": jnp.sum,
    }
    return fns[reduction]


def _axis(task: Task) -> int:
    return 1 if task.input.ndim >= 2 else 0


def _integer_labels(task: Task) -> tuple[dict[str, np.ndarray], str]:
    import optax

    axis, reduction = _axis(task), task.params["reduction"]
    # Labels outside [0, C) are not checked (no runtime errors in XLA): the gather yields NaN
    # (https://github.com/google-deepmind/optax/issues/1185).
    inner = f"optax.softmax_cross_entropy_with_integer_labels(input, target, axis={axis})"
    call = _JNP_REDUCE[reduction].format(inner)
    reduce = _reduce(reduction)
    with calling(call):
        outputs = _value_and_grad(
            task,
            lambda x, t: reduce(optax.softmax_cross_entropy_with_integer_labels(x, t, axis=axis)),
        )
    return outputs, call


def _probs(task: Task) -> tuple[dict[str, np.ndarray], str]:
    import optax

    axis, reduction = _axis(task), task.params["reduction"]
    inner = f"optax.softmax_cross_entropy(input, target, axis={axis})"
    call = _JNP_REDUCE[reduction].format(inner)
    reduce = _reduce(reduction)
    with calling(call):
        outputs = _value_and_grad(
            task, lambda x, t: reduce(optax.softmax_cross_entropy(x, t, axis=axis))
        )
    return outputs, call


ENTRIES = (
    Entry(
        api="optax.softmax_cross_entropy_with_integer_labels",
        loss="cross_entropy",
        targets=frozenset({"index"}),
        params=frozenset(),
        reductions=_ALL_REDUCTIONS,
        run=_integer_labels,
        doc="per-element losses; mean/sum via jnp.mean/jnp.sum",
    ),
    Entry(
        api="optax.softmax_cross_entropy",
        loss="cross_entropy",
        targets=frozenset({"probs"}),
        params=frozenset(),
        reductions=_ALL_REDUCTIONS,
        run=_probs,
        doc="per-element losses; mean/sum via jnp.mean/jnp.sum",
        # "optax.losses.safe_softmax_cross_entropy provides an alternative implementation
        # that differs on how logits=-inf are handled": this one gives 0 * -inf = NaN.
        profile=(
            Declared(
                "zero_log_zero",
                "nan",
                "https://optax.readthedocs.io/en/latest/api/losses.html"
                "#optax.losses.softmax_cross_entropy",
            ),
        ),
    ),
)

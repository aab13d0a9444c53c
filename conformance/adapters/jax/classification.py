"""optax entries: softmax and sigmoid cross-entropy."""

from __future__ import annotations

from conformance.adapters._entry import used_params
from conformance.adapters._spec import Const, Kw, Op, Param, Spec, Tensor
from conformance.oracle.options import Declared
from conformance.protocol import Task


def _ignoring(task: Task) -> bool:
    return "ignore_index" in used_params(task)


# optax returns per-element losses; "mean"/"sum" are jnp's, shown in the call text.
_JNP_REDUCE = {"mean": "jnp.mean", "sum": "jnp.sum"}

SPECS: tuple[Spec, ...] = (
    # Labels outside [0, C) are not checked (no runtime errors in XLA): the gather yields NaN
    # (https://github.com/google-deepmind/optax/issues/1185).
    Spec(
        "optax.softmax_cross_entropy_with_integer_labels",
        "cross_entropy",
        frozenset({"index"}),
        args=(Tensor("input"), Tensor("target")),
        kwargs=(
            Kw("axis", Const(1)),
            # how optax users ignore labels: where= masks them (their loss is 0)
            Kw(
                "where",
                Op("jnp.not_equal", (Tensor("target"), Param("ignore_index"))),
                when=_ignoring,
            ),
        ),
        reduce=_JNP_REDUCE,
        doc="ignore_index as where=jnp.not_equal(target, ignore_index); per-element losses, "
        "mean/sum via jnp.mean/jnp.sum",
        # jnp.mean averages every element, the masked ones (0) included
        profile=(
            Declared(
                "index_mean",
                "elements",
                "https://docs.jax.dev/en/latest/_autosummary/jax.numpy.mean.html",
            ),
        ),
    ),
    Spec(
        "optax.softmax_cross_entropy",
        "cross_entropy",
        frozenset({"probs"}),
        args=(Tensor("input"), Tensor("target")),
        kwargs=(Kw("axis", Const(1)),),
        reduce=_JNP_REDUCE,
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
SPECS += (
    # The -inf-safe variant (0 log 0 = 0, documented beside softmax_cross_entropy); it has
    # no axis argument, so classes go last for N-d input (targets too).
    Spec(
        "optax.safe_softmax_cross_entropy",
        "cross_entropy",
        frozenset({"probs"}),
        args=(Tensor("input", channels_last=True), Tensor("target", channels_last=True)),
        reduce=_JNP_REDUCE,
        doc="per-element losses; mean/sum via jnp.mean/jnp.sum",
    ),
    Spec(
        "optax.sigmoid_binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        frozenset({"binary"}),
        args=(Tensor("input"), Tensor("target")),
        reduce=_JNP_REDUCE,
        doc="per-element losses; mean/sum via jnp.mean/jnp.sum",
    ),
)

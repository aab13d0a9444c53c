"""optax entries: ``dice_loss`` (Dice, and Tversky with its alpha and beta) and
``multiclass_generalized_dice_loss``.

optax takes classes last and applies a softmax unless ``apply_softmax=False``; the suite's
input holds probabilities, so the entries pass ``apply_softmax=False`` (documented: "whether
to apply softmax to predictions"). Its Dice is the Tversky form with alpha = beta = 1/2,
``1 - (I + s) / (I + FP/2 + FN/2 + s)`` = ``1 - (2 I + 2 s) / (P + T + 2 s)``: the Dice entry
passes half the case's smoothing, as a user porting a Dice loss writes it. ``reduction``
acts over the classes only: the entries ask for 'none' (one loss per sample and class) and
reduce with jnp. The generalised loss weights each class by the inverse square of its
target mass (declared class_weighting) and returns the mean.
"""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Param, Spec, Tensor
from conformance.oracle.options import Declared

_PROBS = frozenset({"probs"})
_JNP = {"mean": "jnp.mean", "sum": "jnp.sum"}
_ARGS = (Tensor("input", channels_last=True), Tensor("target", channels_last=True))
_DOCS = "https://optax.readthedocs.io/en/latest/api/losses.html"
_COMMON = (
    Kw("class_weights", Tensor("weight")),
    Kw("apply_softmax", Const(False)),
    Kw("reduction", Const("none")),
)

SPECS: tuple[Spec, ...] = (
    Spec(
        "optax.losses.dice_loss",
        "dice_loss",
        _PROBS,
        args=_ARGS,
        kwargs=(*_COMMON, Kw("smooth", Param("smooth", of=lambda s: s / 2))),
        reduce=_JNP,
        doc="smooth = half the Dice smoothing (optax's Tversky form); classes moved last",
    ),
    Spec(
        "optax.losses.dice_loss",
        "tversky_loss",
        _PROBS,
        args=_ARGS,
        kwargs=(
            *_COMMON,
            Kw("smooth", Param("smooth")),
            Kw("alpha", Param("tversky_alpha")),
            Kw("beta", Param("tversky_beta")),
        ),
        reduce=_JNP,
        name="optax.losses.dice_loss(alpha, beta)",
        doc="the Tversky loss: dice_loss with alpha and beta; classes moved last",
    ),
    Spec(
        "optax.losses.multiclass_generalized_dice_loss",
        "dice_loss",
        _PROBS,
        args=_ARGS,
        kwargs=(
            Kw("smooth", Param("smooth", of=lambda s: s / 2)),
            Kw("apply_softmax", Const(False)),
        ),
        reduced="mean",
        doc="inverse-square-frequency class weights, mean over samples and classes",
        profile=(Declared("class_weighting", "inverse_square_frequency", _DOCS),),
    ),
)

"""Paddle entry: ``dice_loss(input, label, epsilon)``.

Paddle takes probabilities with the classes last and class-index labels with a trailing
axis of 1 (one-hot encoded inside): the entry moves the classes last and unsqueezes the
label, as a user of the (N, C, H, W) layout writes it. It computes one Dice per sample over
the classes and positions together and returns their mean (documented:
"dice_loss = 1 - 2 * intersection / union", reduced over all but the batch axis).
"""

from __future__ import annotations

from conformance.adapters._spec import Const, Kw, Op, Param, Spec, Tensor
from conformance.oracle.options import Declared

_DOCS = "https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional/dice_loss_en.html"

SPECS: tuple[Spec, ...] = (
    Spec(
        "paddle.nn.functional.dice_loss",
        "dice_loss",
        frozenset({"index"}),
        args=(
            Tensor("input", channels_last=True),
            Op("paddle.unsqueeze", (Tensor("target"), Const(-1))),
        ),
        kwargs=(Kw("epsilon", Param("smooth")),),
        reduced="mean",
        doc="classes moved last, label unsqueezed; one Dice per sample, then the mean",
        profile=(Declared("dice_axis", "sample", _DOCS),),
    ),
)

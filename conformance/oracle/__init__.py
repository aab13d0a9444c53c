"""Float64 NumPy reference ("oracle") for the loss functions under test.

Written from the math in docs/semantics.md, never from a framework. Every function upcasts
its inputs to float64 (the caller has already rounded them to the case dtype) and returns
float64 arrays, 0-d for scalar reductions. Classes are on axis 1: input (N, C) or
(N, C, d1, ..., dk); an integer target holds class indices (N, d1, ..., dk), a float target
holds probabilities of the input's shape.

``LOSSES`` maps a canonical loss name to its value / grad / magnitude callables. Adding a
loss is one module in this package plus one line in ``LOSSES``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from conformance.oracle import dice as _dice
from conformance.oracle._common import REDUCTIONS
from conformance.oracle.activations import (
    log_sigmoid,
    log_sigmoid_grad,
    log_sigmoid_magnitude,
    log_softmax_magnitude,
    sigmoid,
    sigmoid_grad,
    sigmoid_magnitude,
    softmax_magnitude,
)
from conformance.oracle.binary import (
    binary_cross_entropy,
    binary_cross_entropy_grad,
    binary_cross_entropy_magnitude,
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
    binary_cross_entropy_with_logits_magnitude,
)
from conformance.oracle.cross_entropy import (
    cross_entropy,
    cross_entropy_all,
    cross_entropy_grad,
    cross_entropy_magnitude,
)
from conformance.oracle.focal import (
    sigmoid_focal_loss,
    sigmoid_focal_loss_grad,
    sigmoid_focal_loss_magnitude,
    softmax_focal_loss,
    softmax_focal_loss_grad,
    softmax_focal_loss_magnitude,
)
from conformance.oracle.kl import kl_div, kl_div_grad, kl_div_magnitude
from conformance.oracle.multilabel import (
    multilabel_soft_margin_loss,
    multilabel_soft_margin_loss_grad,
    multilabel_soft_margin_loss_magnitude,
)
from conformance.oracle.nll import nll_loss, nll_loss_grad, nll_loss_magnitude
from conformance.oracle.probs import (
    cross_entropy_on_probs,
    cross_entropy_on_probs_grad,
    cross_entropy_on_probs_magnitude,
)
from conformance.oracle.regression import (
    huber_loss,
    huber_loss_grad,
    huber_loss_magnitude,
    l1_loss,
    l1_loss_grad,
    l1_loss_magnitude,
    mse_loss,
    mse_loss_grad,
    mse_loss_magnitude,
    smooth_l1_loss,
    smooth_l1_loss_grad,
    smooth_l1_loss_magnitude,
)
from conformance.oracle.softmax import log_softmax, log_softmax_grad, softmax, softmax_grad

__all__ = [
    "LOSSES",
    "REDUCTIONS",
    "TARGETLESS",
    "LossOracle",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "cross_entropy_grad",
    "cross_entropy_magnitude",
    "kl_div",
    "log_sigmoid",
    "log_softmax",
    "log_softmax_grad",
    "nll_loss",
    "nll_loss_grad",
    "nll_loss_magnitude",
    "sigmoid",
    "softmax",
    "softmax_grad",
]


class LossOracle(NamedTuple):
    """The reference for one loss.

    ``value(input, target, **params)`` -> loss; ``grad(input, target, **params,
    grad_output=None)`` -> d sum(loss * grad_output) / d input; ``magnitude(...)`` (same
    arguments as ``grad``) -> (loss_mag, grad_mag). ``params`` names the keyword arguments
    the loss accepts (a runner passes only those); ``target_kinds`` says which target kinds
    ("index": integer class indices, "probs": float probabilities, "binary": one value in
    [0, 1] per input element, "none": no target) it defines. A target-less oracle (a
    building block such as softmax) maps the input to an output of its shape: no reduction,
    and its gradient is taken along a cotangent the case draws (``grad_output``).
    ``input_kind`` says what the input holds, and so how a case generates it from its seeded
    normal draw: "logits" (as drawn), "log_probs" (log_softmax over the class axis),
    "softmax" (softmax over the class axis), "probs" (elementwise sigmoid).
    ``class_terms``: whether one output element reduces over the C classes (the tolerance
    counts the terms reduced). ``reductions``: the reductions a case may ask of it.
    ``all_terms``: one output element may sum over every element of the input (a Dice term
    over the batch): the tolerance counts them all. ``outputs``, where a loss has it, gives
    (value, grad, loss_mag, grad_mag) in one pass, with the three functions' results (the
    runner uses it: one preparation instead of three on big segmentation batches).

    This table is the one place a loss is declared: the case schema's ``loss`` values, the
    parameters a case may give it, and its target kinds are derived from it.
    """

    value: Callable[..., Any]
    grad: Callable[..., Any]
    magnitude: Callable[..., Any]
    params: tuple[str, ...]
    target_kinds: tuple[str, ...]
    input_kind: str = "logits"
    class_terms: bool = True
    reductions: tuple[str, ...] = REDUCTIONS
    all_terms: bool = False
    outputs: Callable[..., tuple[Any, Any, Any, Any]] | None = None


_CLASS_PARAMS = ("weight", "ignore_index", "reduction")


def _targetless(
    value: Callable[..., Any], grad: Callable[..., Any], magnitude: Callable[..., Any], **kw: Any
) -> LossOracle:
    """A building block f(input) in the (input, target, ...) form of the table; without a
    ``grad_output`` its gradient is that of the output's sum, like every other loss's."""

    def along(x: Any, grad_output: Any) -> Any:
        return np.ones(np.shape(x)) if grad_output is None else grad_output

    return LossOracle(
        lambda x, target: value(x),
        lambda x, target, grad_output=None: grad(x, along(x, grad_output)),
        lambda x, target, grad_output=None: magnitude(x, along(x, grad_output)),
        (),
        ("none",),
        **kw,
    )


LOSSES: dict[str, LossOracle] = {
    "cross_entropy": LossOracle(
        cross_entropy,
        cross_entropy_grad,
        cross_entropy_magnitude,
        (*_CLASS_PARAMS, "label_smoothing"),
        ("index", "probs"),
        outputs=cross_entropy_all,
    ),
    "nll_loss": LossOracle(
        nll_loss,
        nll_loss_grad,
        nll_loss_magnitude,
        _CLASS_PARAMS,
        ("index",),
        input_kind="log_probs",
        class_terms=False,
    ),
    # Elementwise: a per-class weight reaches them as (C, 1, ..., 1), broadcast along axis 1.
    "binary_cross_entropy": LossOracle(
        binary_cross_entropy,
        binary_cross_entropy_grad,
        binary_cross_entropy_magnitude,
        ("weight", "reduction"),
        ("binary",),
        input_kind="probs",
        class_terms=False,
    ),
    "binary_cross_entropy_with_logits": LossOracle(
        binary_cross_entropy_with_logits,
        binary_cross_entropy_with_logits_grad,
        binary_cross_entropy_with_logits_magnitude,
        ("weight", "pos_weight", "reduction"),
        ("binary",),
        class_terms=False,
    ),
    # Mean over the classes of binary cross-entropy with logits; several positives per sample.
    "multilabel_soft_margin_loss": LossOracle(
        multilabel_soft_margin_loss,
        multilabel_soft_margin_loss_grad,
        multilabel_soft_margin_loss_magnitude,
        ("weight", "reduction"),
        ("binary",),
    ),
    # Cross-entropy of probabilities p (a softmax output, generated as softmax of the draw).
    "cross_entropy_on_probs": LossOracle(
        cross_entropy_on_probs,
        cross_entropy_on_probs_grad,
        cross_entropy_on_probs_magnitude,
        (*_CLASS_PARAMS, "label_smoothing"),
        ("index", "probs"),
        input_kind="softmax",
    ),
    # Lin et al.'s focal loss on logits, elementwise like BCE with logits.
    "sigmoid_focal_loss": LossOracle(
        sigmoid_focal_loss,
        sigmoid_focal_loss_grad,
        sigmoid_focal_loss_magnitude,
        ("alpha", "gamma", "reduction"),
        ("binary",),
        class_terms=False,
    ),
    # The categorical focal loss on logits: softmax over axis 1, probability targets.
    "softmax_focal_loss": LossOracle(
        softmax_focal_loss,
        softmax_focal_loss_grad,
        softmax_focal_loss_magnitude,
        ("alpha", "gamma", "reduction"),
        ("probs",),
    ),
    # Regression losses (oracle/regression.py): elementwise, real targets of the input's
    # shape; a per-class weight reaches them as (C, 1, ..., 1), broadcast along axis 1.
    "mse_loss": LossOracle(
        mse_loss,
        mse_loss_grad,
        mse_loss_magnitude,
        ("weight", "reduction"),
        ("real",),
        class_terms=False,
    ),
    "l1_loss": LossOracle(
        l1_loss,
        l1_loss_grad,
        l1_loss_magnitude,
        ("weight", "reduction"),
        ("real",),
        class_terms=False,
    ),
    "huber_loss": LossOracle(
        huber_loss,
        huber_loss_grad,
        huber_loss_magnitude,
        ("weight", "delta", "reduction"),
        ("real",),
        class_terms=False,
    ),
    "smooth_l1_loss": LossOracle(
        smooth_l1_loss,
        smooth_l1_loss_grad,
        smooth_l1_loss_magnitude,
        ("weight", "beta", "reduction"),
        ("real",),
        class_terms=False,
    ),
    # KL divergence in PyTorch's kl_div convention (oracle/kl.py): log-probability input,
    # probability targets (log-probabilities with log_target); the reductions add batchmean.
    "kl_div": LossOracle(
        kl_div,
        kl_div_grad,
        kl_div_magnitude,
        ("log_target", "reduction"),
        ("probs",),
        input_kind="log_probs",
        reductions=(*REDUCTIONS, "batchmean"),
    ),
    # Dice and Tversky losses (oracle/dice.py) of probabilities (softmax over axis 1) against
    # masks of the input's shape or class indices; one term per (sample, class) canonically.
    "dice_loss": LossOracle(
        _dice.dice_loss,
        _dice.dice_loss_grad,
        _dice.dice_loss_magnitude,
        ("weight", "smooth", "reduction"),
        ("probs", "index"),
        input_kind="softmax",
        all_terms=True,
    ),
    "tversky_loss": LossOracle(
        _dice.tversky_case(_dice.tversky_loss),
        _dice.tversky_case(_dice.tversky_loss_grad),
        _dice.tversky_case(_dice.tversky_loss_magnitude),
        ("weight", "smooth", "tversky_alpha", "tversky_beta", "reduction"),
        ("probs", "index"),
        input_kind="softmax",
        all_terms=True,
    ),
    # The building blocks, as target-less cases (conformance/oracle/activations.py).
    "softmax": _targetless(softmax, softmax_grad, softmax_magnitude),
    "log_softmax": _targetless(log_softmax, log_softmax_grad, log_softmax_magnitude),
    "sigmoid": _targetless(sigmoid, sigmoid_grad, sigmoid_magnitude, class_terms=False),
    "log_sigmoid": _targetless(
        log_sigmoid, log_sigmoid_grad, log_sigmoid_magnitude, class_terms=False
    ),
}

TARGETLESS = frozenset(name for name, spec in LOSSES.items() if spec.target_kinds == ("none",))

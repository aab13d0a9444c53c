"""Named semantic options: the points where frameworks *define* a loss differently.

The canonical semantics (docs/semantics.md) pick one choice for each option. Every other
choice is a definition some framework documents (or a defect some framework has), written
here once with a sentence a porting team can act on. Adapter entries declare the choices
their framework documents (:class:`Declared`); the judge re-runs the oracle under those
choices, and under single and paired alternatives, to say which definition reproduces a
framework's numbers (conformance/judge.py).

An option is either *computational* (the oracle computes something else) or a *comparison*
option (``precision``: the oracle's value is unchanged, the tolerance follows the precision
the framework is documented to compute in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "OPTIONS",
    "Declared",
    "Option",
    "canonical",
    "describe",
    "options_for",
    "validate",
]


@dataclass(frozen=True)
class Option:
    """One definitional choice point of one or more losses."""

    name: str
    losses: frozenset[str]
    canonical: str
    choices: Mapping[str, str]  # choice -> what it means, as a sentence fragment

    def describe(self, choice: str) -> str:
        return f"{self.name}={choice} ({self.choices[choice]})"


_CE = frozenset({"cross_entropy"})
_CE_NLL = frozenset({"cross_entropy", "nll_loss"})
_BINARY_LOSSES_SHARED = frozenset({"binary_cross_entropy", "binary_cross_entropy_with_logits"})

OPTIONS: dict[str, Option] = {
    o.name: o
    for o in (
        Option(
            "index_mean",
            _CE_NLL,
            "weights",
            {
                "weights": "a mean over class-index targets divides by the sum of the applied "
                "target-class weights",
                "count": "a mean over class-index targets divides by the number of non-ignored "
                "targets, whatever their weights",
                "elements": "a mean over class-index targets divides by all elements, ignored "
                "ones included",
                "batch": "a mean divides by the batch size N",
            },
        ),
        Option(
            "probs_mean",
            _CE,
            "count",
            {
                "count": "a mean over probability targets divides by the number of elements",
                "weights": "a mean over probability targets divides by the sum of the "
                "per-element weights sum_c w_c t_c",
                "batch": "a mean divides by the batch size N",
            },
        ),
        Option(
            "empty_mean",
            _CE_NLL | _BINARY_LOSSES_SHARED,
            "nan",
            {
                "nan": "a mean over no valid targets (all ignored, or zero total weight) is NaN",
                "zero": "a mean over no valid targets is 0",
            },
        ),
        Option(
            "soft_weighting",
            _CE,
            "per_class",
            {
                "per_class": "class weights meet soft or smoothed targets class by class: "
                "sum_c w_c t_c (-log p_c)",
                "per_element": "soft or smoothed targets weight the element's unweighted loss "
                "by sum_c w_c t_c",
            },
        ),
        Option(
            "smoothing_mass",
            _CE,
            "uniform",
            {
                "uniform": "label smoothing gives every class eps/C",
                "others": "label smoothing gives the other classes eps/(C-1) and the target 1-eps",
                "last_axis": "label smoothing divides eps by the size of the input's last axis "
                "instead of C",
            },
        ),
        Option(
            "logit_clip",
            _CE,
            "none",
            {
                "none": "shifted logits x - max(x) are used as they are",
                "64": "shifted logits are clipped at -64, so one element's loss is at most 64 "
                "(plus log C)",
            },
        ),
        Option(
            "zero_log_zero",
            _CE | _BINARY_LOSSES_SHARED,
            "zero",
            {
                "zero": "a zero target probability contributes 0 even where log p is -inf",
                "nan": "a zero target probability times log p = -inf gives NaN",
            },
        ),
        Option(
            "target_sum",
            _CE,
            "as_given",
            {
                "as_given": "targets are used as given, also where a row does not sum to 1",
                "assumed_one": "the gradient assumes every target row sums to 1 "
                "(softmax minus target)",
            },
        ),
        Option(
            "none_shape",
            _CE_NLL,
            "squeezed",
            {
                "squeezed": "reduction 'none' returns shape (N, d1, ..., dk)",
                "keepdim": "reduction 'none' keeps the class axis: shape (N, 1, d1, ..., dk)",
            },
        ),
        Option(
            "precision",
            _CE_NLL | _BINARY_LOSSES_SHARED,
            "case",
            {
                "case": "computes in the case dtype (or wider)",
                "float32": "computes in float32 whatever the input dtype",
            },
        ),
    )
}


_BCE = frozenset({"binary_cross_entropy"})
_BCE_LOGITS = frozenset({"binary_cross_entropy_with_logits"})
_BINARY_LOSSES = _BCE | _BCE_LOGITS
# Binary cross-entropy (conformance/oracle/binary.py computes every choice).
_BINARY: tuple[Option, ...] = (
    Option(
        "log_clamp",
        _BCE,
        "none",
        {
            "none": "log p and log(1 - p) are used as they are (loss inf at p = 0, t = 1)",
            "-100": "log p and log(1 - p) are clamped at -100, so one element's loss is at "
            "most 100 per unit weight",
            "clip_1e-7": "p is clipped to [1e-7, 1 - 1e-7] before the logs, so one element's "
            "loss is at most 16.118 per unit weight",
            "add_1e-4": "1e-4 is added inside the logs: "
            "-t log(p + 1e-4) - (1 - t) log(1 - p + 1e-4)",
            "add_1e-7": "1e-7 is added inside the logs: "
            "-t log(p + 1e-7) - (1 - t) log(1 - p + 1e-7)",
        },
    ),
    Option(
        "prob_grad",
        _BCE,
        "exact",
        {
            "exact": "the gradient is the derivative of the loss as defined",
            "clamp_1e-12": "the gradient is w (p - t) / max(p (1 - p), 1e-12), not the derivative "
            "of the clamped loss (0 at p = 0, t = 0; 1e12 at p = 1, t = 0)",
            "clamp_1e-12f": "the gradient is w (p - t) / max(p (1 - p), eps) with eps the float32 "
            "nearest 1e-12 (9.99999996e-13), whatever the input dtype",
        },
    ),
    Option(
        "pos_weight_axis",
        _BCE_LOGITS,
        "class",
        {
            "class": "pos_weight is per class, along axis 1",
            "last": "pos_weight is broadcast against the input's last axis",
        },
    ),
    Option(
        "infinite_logit",
        _BCE_LOGITS,
        "limit",
        {
            "limit": "an infinite logit gives the limit (0 or inf)",
            "linear_form": "at an infinite logit the loss is (1 - t) x + (1 + (q - 1) t) "
            "softplus(-x) in IEEE arithmetic: NaN at x = -inf (t <= 1) and at x = +inf, t = 1",
            "relu_form": "at an infinite logit the loss is max(x, 0) - x t + log1p(e^-|x|) in "
            "IEEE arithmetic: NaN at x = +inf (t >= 0) and at x = -inf, t = 0",
        },
    ),
    Option(
        "mean_denominator",
        _BINARY_LOSSES,
        "elements",
        {
            "elements": "a mean divides by the number of elements, whatever their weights",
            "nonzero_weights": "a mean divides by the number of elements with a nonzero weight",
            "weights": "a mean divides by the sum of the weights",
        },
    ),
    Option(
        "axis_mean",
        _BINARY_LOSSES,
        "none",
        {
            "none": "the loss is per element: 'none' keeps the input's shape",
            "last": "the loss is first averaged over the input's last axis ('none' drops it, "
            "'sum' adds the means)",
            "class": "the loss is first averaged over axis 1 ('none' drops it, 'sum' adds the "
            "means)",
        },
    ),
)

OPTIONS.update({o.name: o for o in _BINARY})

# Multi-label soft margin (oracle/multilabel.py) and cross-entropy on probabilities
# (oracle/probs.py): their own options, and the existing ones they share.
_MULTILABEL = "multilabel_soft_margin_loss"
_CE_PROBS = "cross_entropy_on_probs"
OPTIONS.update(
    {
        o.name: o
        for o in (
            Option(
                "multilabel_axis",
                frozenset({_MULTILABEL}),
                "class",
                {
                    "class": "the loss is averaged over the classes, axis 1",
                    "last": "the loss is averaged over the input's last axis (the classes only "
                    "for (N, C) input; 'none' keeps axis 1 of N-d input)",
                },
            ),
            Option(
                "prob_renormalise",
                frozenset({_CE_PROBS}),
                "none",
                {
                    "none": "the probabilities are used as given",
                    "before_clip": "p is divided by its sum over the classes, then clipped",
                    "after_clip": "p is clipped, then divided by its sum over the classes",
                },
            ),
            Option(
                "prob_clip",
                frozenset({_CE_PROBS}),
                "none",
                {
                    "none": "log p is used as it is (loss inf where p = 0 has a target mass)",
                    "clip_1e-7": "p is clipped to [1e-7, 1 - 1e-7] before the log, so one "
                    "class term is at most 16.118 per unit of target mass",
                    "inf_to_1e20": "an infinite -log p (p = 0) is replaced by 1e20 in the loss",
                },
            ),
        )
    }
)
for _name in (
    "index_mean",
    "probs_mean",
    "empty_mean",
    "soft_weighting",
    "smoothing_mass",
    "zero_log_zero",
    "none_shape",
    "precision",
):
    _o = OPTIONS[_name]
    OPTIONS[_name] = Option(_o.name, _o.losses | {_CE_PROBS}, _o.canonical, _o.choices)
_o = OPTIONS["zero_log_zero"]
OPTIONS["zero_log_zero"] = Option(_o.name, _o.losses | {_MULTILABEL}, _o.canonical, _o.choices)

# Sigmoid focal loss (conformance/oracle/focal.py computes every choice).
_FOCAL = "sigmoid_focal_loss"
OPTIONS["focal_bce"] = Option(
    "focal_bce",
    frozenset({_FOCAL}),
    "logits",
    {
        "logits": "the cross-entropy factor is computed from the logits (softplus)",
        "clip_1e-7": "the cross-entropy factor is computed from sigmoid(x) clipped to "
        "[1e-7, 1 - 1e-7], so it saturates at 16.118 for |x| > 16",
    },
)
for _name in ("axis_mean", "precision"):
    _o = OPTIONS[_name]
    OPTIONS[_name] = Option(_o.name, _o.losses | {_FOCAL}, _o.canonical, _o.choices)
# Regression losses (conformance/oracle/regression.py computes every choice).
_REGRESSION = frozenset({"mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"})
OPTIONS["squared_scale"] = Option(
    "squared_scale",
    frozenset({"mse_loss"}),
    "one",
    {
        "one": "the squared error (x - y)^2",
        "half": "half the squared error, (x - y)^2 / 2",
    },
)
for _name in ("mean_denominator", "axis_mean", "precision"):
    _o = OPTIONS[_name]
    OPTIONS[_name] = Option(_o.name, _o.losses | _REGRESSION, _o.canonical, _o.choices)
# Softmax focal loss: Keras clips the softmax output like its probability cross-entropy.
for _name in ("prob_clip", "precision"):
    _o = OPTIONS[_name]
    OPTIONS[_name] = Option(_o.name, _o.losses | {"softmax_focal_loss"}, _o.canonical, _o.choices)
# KL divergence (conformance/oracle/kl.py computes every choice).
_KL = frozenset({"kl_div"})
OPTIONS.update(
    {
        o.name: o
        for o in (
            Option(
                "kl_clip",
                _KL,
                "none",
                {
                    "none": "log-probabilities and targets are used as given",
                    "clip_1e-7": "the target and exp(input) are clipped to [1e-7, 1] before the "
                    "logs (zero and negative targets count as 1e-7; gradient 0 where exp(input) "
                    "is clipped)",
                },
            ),
            Option(
                "kl_axis",
                _KL,
                "none",
                {
                    "none": "the loss is per element: 'none' keeps the input's shape and 'mean' "
                    "divides by the number of elements",
                    "last_sum": "the terms are first summed over the input's last axis (one KL "
                    "value per row): 'mean' divides by the number of rows",
                    "class_sum": "the terms are first summed over axis 1, the classes (one KL "
                    "value per sample and position): 'mean' divides by their number",
                },
            ),
            Option(
                "zero_target",
                _KL,
                "zero",
                {
                    "zero": "a zero target contributes 0, whatever the input",
                    "nan": "a zero target contributes t (log t - x) in IEEE arithmetic: NaN "
                    "(0 times -inf)",
                    "xlogy": "a zero target contributes xlogy(t, t) - t x: 0, but NaN where the "
                    "input is infinite (0 times inf)",
                    "nonpositive": "a zero or negative target contributes 0, with gradient 0 "
                    "(a negative target is silently dropped)",
                },
            ),
        )
    }
)
_o = OPTIONS["precision"]
OPTIONS["precision"] = Option(_o.name, _o.losses | _KL, _o.canonical, _o.choices)
# Dice and Tversky losses (conformance/oracle/dice.py computes every choice).
_DICE = frozenset({"dice_loss", "tversky_loss"})
OPTIONS.update(
    {
        o.name: o
        for o in (
            Option(
                "dice_axis",
                _DICE,
                "sample_class",
                {
                    "sample_class": "one term per sample and class, summed over the positions",
                    "sample": "one term per sample, summed over the classes and positions together",
                    "batch_class": "one term per class, summed over the batch and positions",
                    "batch": "one term for the whole batch",
                },
            ),
            Option(
                "dice_smooth",
                _DICE,
                "numerator_and_denominator",
                {
                    "numerator_and_denominator": "the smoothing constant is added to the "
                    "numerator and the denominator (an empty term's loss is 0)",
                    "denominator_only": "the smoothing constant is added to the denominator "
                    "only (an empty term's loss is 1)",
                },
            ),
            Option(
                "dice_class_reduce",
                _DICE,
                "none",
                {
                    "none": "'none' returns one loss per sample and class",
                    "mean": "the per-class losses are first averaged over the classes",
                    "sum": "the per-class losses are first summed over the classes",
                },
            ),
            Option(
                "class_weighting",
                _DICE,
                "none",
                {
                    "none": "each class term counts as given (times its weight)",
                    "inverse_square_frequency": "each class term is weighted by the inverse "
                    "square of its target mass over the batch, normalised to a mean of 1",
                },
            ),
            Option(
                "tversky_weights",
                frozenset({"tversky_loss"}),
                "alpha_fp",
                {
                    "alpha_fp": "alpha weighs the false positives sum p (1 - t), beta the false "
                    "negatives",
                    "alpha_fn": "alpha weighs the false negatives sum (1 - p) t, beta the false "
                    "positives",
                },
            ),
        )
    }
)
_o = OPTIONS["precision"]
OPTIONS["precision"] = Option(_o.name, _o.losses | _DICE, _o.canonical, _o.choices)


class Declared(NamedTuple):
    """An adapter entry's documented choice for one option, with where it is documented."""

    option: str
    choice: str
    source: str  # upstream doc or issue link


def options_for(loss: str) -> list[Option]:
    return [o for o in OPTIONS.values() if loss in o.losses]


def canonical(loss: str) -> dict[str, str]:
    return {o.name: o.canonical for o in options_for(loss)}


def describe(choices: Mapping[str, str]) -> str:
    """'index_mean=elements (…); empty_mean=zero (…)' for the non-canonical choices given."""
    return "; ".join(OPTIONS[name].describe(choice) for name, choice in choices.items())


def validate(loss: str, declared: tuple[Declared, ...]) -> None:
    """Raise ValueError unless every declared option exists for ``loss`` with that choice."""
    known = {o.name: o for o in options_for(loss)}
    for d in declared:
        if d.option not in known:
            raise ValueError(f"{loss} has no semantic option {d.option!r} (has: {sorted(known)})")
        if d.choice not in known[d.option].choices:
            raise ValueError(
                f"option {d.option} has no choice {d.choice!r} "
                f"(has: {sorted(known[d.option].choices)})"
            )
        if not d.source.startswith("https://"):
            raise ValueError(f"declared {d.option}={d.choice} needs an upstream https link")

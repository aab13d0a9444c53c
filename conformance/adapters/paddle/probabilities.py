"""Paddle cross-entropy on probabilities: ``cross_entropy`` / ``CrossEntropyLoss`` with
``use_softmax=False`` ("it expects the output of softmax operator"), functional and class.

Called like the softmax entries (conformance/adapters/paddle/classification.py): ``axis=1``,
``soft_label`` for probability targets, ``ignore_index`` for index targets only. Measured
(Paddle 3.3.1, CPU): loss -log p as given (no renormalisation, no clip), except that an
infinite -log p (p = 0) becomes 1e20 (TolerableValue); the gradient is -t / p.
"""

from __future__ import annotations

from dataclasses import replace

from conformance.adapters._spec import Const, Kw, Spec, twins
from conformance.adapters.paddle.classification import _CE_KWARGS, _DOC
from conformance.oracle.options import Declared

_PROFILE = (
    # the same Python code as use_softmax=True: soft-label weighting, mean and shape
    Declared("soft_weighting", "per_element", _DOC),
    Declared("probs_mean", "weights", _DOC),
    Declared("none_shape", "keepdim", _DOC),
    Declared(
        "empty_mean",
        "zero",
        "https://github.com/PaddlePaddle/Paddle/blob/v3.3.1/python/paddle/nn/functional/loss.py",
    ),
    # the kernel's -log p goes through TolerableValue: +inf -> 1e20
    Declared(
        "prob_clip",
        "inf_to_1e20",
        "https://github.com/PaddlePaddle/Paddle/blob/v3.3.1/paddle/phi/kernels/funcs/cross_entropy.h",
    ),
)


def _named(spec: Spec) -> Spec:
    return replace(spec, name=f"{spec.api}(use_softmax=False)")


SPECS: tuple[Spec, ...] = tuple(
    _named(s)
    for s in twins(
        "paddle.nn.functional.cross_entropy",
        "paddle.nn.CrossEntropyLoss",
        "cross_entropy_on_probs",
        frozenset({"index", "probs"}),
        kwargs=(*_CE_KWARGS, Kw("use_softmax", Const(False))),
        profile=_PROFILE,
    )
)

"""Paddle entries: the multi-label soft-margin loss, functional and class forms.

Called with ``label=``-positional arguments as documented: ``(input, label, weight=...,
reduction=...)``. Paddle documents N-d input as (N, C, D1, ..., Dk) but averages over the
last axis (``loss.mean(axis=-1)``): not declared, so N-d rows show it (cases/known.yaml).
"""

from __future__ import annotations

from conformance.adapters._spec import Kw, Param, Tensor, twins

SPECS = twins(
    "paddle.nn.functional.multi_label_soft_margin_loss",
    "paddle.nn.MultiLabelSoftMarginLoss",
    "multilabel_soft_margin_loss",
    frozenset({"binary"}),
    kwargs=(Kw("weight", Tensor("weight")), Kw("reduction", Param("reduction"))),
)

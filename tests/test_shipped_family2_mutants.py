"""The shipped KL and Dice/Tversky cases notice wrong definitions: each plausible wrong
oracle (another framework's definition taken as canonical, or a common slip) fails some
shipped case, and the canonical oracle fails none (the cases' own consistency)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import Judged, failing_ids, judged_cases

from conformance.oracle import dice, kl


@pytest.fixture(scope="module")
def judged_kl() -> list[Judged]:
    return judged_cases("kl.yaml")


@pytest.fixture(scope="module")
def judged_seg() -> list[Judged]:
    return judged_cases("segmentation.yaml")


def _kl(**choices: str) -> Callable[..., Any]:
    return functools.partial(kl.kl_div_outputs, choices=choices)


def _batchmean_as_mean(x: Any, target: Any, **params: Any) -> dict[str, Any]:
    if params.get("reduction") == "batchmean":
        params = {**params, "reduction": "mean"}
    return kl.kl_div_outputs(x, target, **params)


def _log_target_ignored(x: Any, target: Any, **params: Any) -> dict[str, Any]:
    return kl.kl_div_outputs(x, target, **{**params, "log_target": False})


def _loss(name: str) -> Callable[..., Any]:
    return (
        dice.dice_loss_outputs
        if name == "dice_loss"
        else dice.tversky_case(dice.tversky_loss_outputs)
    )


def _seg(**choices: str) -> Callable[..., Any]:
    def outputs(x: Any, target: Any, **params: Any) -> dict[str, Any]:
        loss = "tversky_loss" if "tversky_alpha" in params else "dice_loss"
        if choices.get("dice_axis") in ("sample", "batch"):  # no class terms to weight
            params = {**params, "weight": None}
        return dict(_loss(loss)(x, target, **params, choices=choices))

    return outputs


def _seg_slip(slip: str) -> Callable[..., Any]:
    def outputs(x: Any, target: Any, **params: Any) -> dict[str, Any]:
        loss = "tversky_loss" if "tversky_alpha" in params else "dice_loss"
        if slip == "smooth ignored":
            params = {**params, "smooth": 1e-7}
        if slip == "weight ignored":
            params = {**params, "weight": None}
        if slip == "alpha and beta swapped" and loss == "tversky_loss":
            params = {
                **params,
                "tversky_alpha": params["tversky_beta"],
                "tversky_beta": params["tversky_alpha"],
            }
        return dict(_loss(loss)(x, target, **params))

    return outputs


KL_MUTANTS: dict[str, Callable[..., Any]] = {
    "zero targets give NaN (0 * -inf)": _kl(zero_target="nan"),
    "zero targets at -inf inputs give NaN (xlogy)": _kl(zero_target="xlogy"),
    "negative targets dropped": _kl(zero_target="nonpositive"),
    "Keras' clip at 1e-7": _kl(kl_clip="clip_1e-7"),
    "summed over the last axis": _kl(kl_axis="last_sum"),
    "summed over the classes": _kl(kl_axis="class_sum"),
    "batchmean divides by every element": _batchmean_as_mean,
    "log_target ignored": _log_target_ignored,
}
SEG_MUTANTS: dict[str, Callable[..., Any]] = {
    "smoothing in the denominator only": _seg(dice_smooth="denominator_only"),
    "one term per sample": _seg(dice_axis="sample"),
    "one term per class over the batch": _seg(dice_axis="batch_class"),
    "one term for the batch": _seg(dice_axis="batch"),
    "inverse-square-frequency class weights": _seg(class_weighting="inverse_square_frequency"),
    "smooth ignored": _seg_slip("smooth ignored"),
    "weight ignored": _seg_slip("weight ignored"),
    "alpha and beta swapped": _seg_slip("alpha and beta swapped"),
}


def test_the_canonical_oracles_fail_no_shipped_case(
    judged_kl: list[Judged], judged_seg: list[Judged]
) -> None:
    assert not failing_ids(judged_kl, kl.kl_div_outputs)
    assert not failing_ids(judged_seg, _seg())


@pytest.mark.parametrize("name", sorted(KL_MUTANTS))
def test_a_wrong_kl_definition_fails_a_shipped_case(judged_kl: list[Judged], name: str) -> None:
    with np.errstate(all="ignore"):
        assert failing_ids(judged_kl, KL_MUTANTS[name]), f"no shipped case notices: {name}"


@pytest.mark.parametrize("name", sorted(SEG_MUTANTS))
def test_a_wrong_dice_definition_fails_a_shipped_case(judged_seg: list[Judged], name: str) -> None:
    with np.errstate(all="ignore"):
        assert failing_ids(judged_seg, SEG_MUTANTS[name]), f"no shipped case notices: {name}"

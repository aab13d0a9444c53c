"""The Dice and Tversky entries run by the real frameworks on cases/segmentation.yaml with
the shipped ledger, in every default mode.

Measured and pinned: nothing fails that the ledger does not cover; Keras' Dice, called with
the spatial axes, is the canonical per-(sample, class) Dice with its epsilon 1e-7 in the
denominator only (declared) and serves only smooth=1e-7 cases; Keras' Tversky swaps alpha
and beta (ledger); optax's dice_loss passes half the Dice smoothing and, with
apply_softmax=False, raises under jax.jit (ledger); Paddle's dice_loss is one Dice per
sample over classes and positions (declared) with epsilon in the denominator only, against
its docstring (ledger). A framework that is not installed skips its part.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import installed, run_case_file

FRAMEWORKS = installed("jax", "paddle", "tensorflow")
FAILING = ["mismatch", "error", "no-error", "crashed", "timeout"]


@pytest.fixture(scope="module")
def frame(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return run_case_file(tmp_path_factory, "segmentation.yaml", FRAMEWORKS)


def _rows(frame: pd.DataFrame, api: str) -> pd.DataFrame:
    rows = frame[frame.api == api]
    if rows.empty:
        pytest.skip(f"no rows for {api} (framework not installed)")
    return rows


def test_nothing_fails_that_the_ledger_does_not_cover(frame: pd.DataFrame) -> None:
    failing = frame[frame.verdict.isin(FAILING)]
    assert failing.empty, failing[["api", "case_id", "output", "reason"]].head().to_string()
    for framework in FRAMEWORKS:
        ran = frame[
            (frame.framework == framework) & frame.verdict.isin(["pass", "semantic-difference"])
        ]
        assert set(ran.output) == {"loss", "grad"}, framework
        assert "dice_loss" in set(ran.loss), framework


def test_keras_dice_is_canonical_with_its_epsilon(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "keras.losses.dice")
    assert set(rows[rows.params.map(lambda p: p["smooth"] != 1e-7)].verdict) == {"unsupported"}
    ran = rows[rows.verdict != "unsupported"]
    assert set(ran.verdict) <= {"pass", "semantic-difference"}
    seg = ran[ran.base_id == "dice-seg"]
    assert "keras.losses.dice(target, input, axis=(2, 3))" in set(seg.call)
    # An empty class term: 1 with epsilon in the denominator only, where canonical is 0.
    empty = ran[(ran.case_id == "dice-empty-class[smooth=1e-07,reduction=none]")]
    empty = empty[empty.output == "loss"]
    assert set(empty.verdict) == {"semantic-difference"}
    assert empty.explanation.str.startswith("dice_smooth=denominator_only").all()
    assert empty.actual.iloc[0][0][2] == pytest.approx(1.0)


def test_keras_tversky_swaps_alpha_and_beta(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "keras.losses.tversky")
    ran = rows[rows.verdict != "unsupported"]
    equal = ran.params.map(lambda p: p["tversky_alpha"] == p["tversky_beta"])
    assert set(ran[equal].verdict) <= {"pass", "semantic-difference"}  # a swap changes nothing
    swapped = ran[~equal & (ran.output == "loss")]
    assert set(swapped.verdict) == {"known"}
    assert swapped.explanation.str.contains("tversky_weights=alpha_fn").all()


def test_optax_dice_halves_the_smoothing_and_fails_under_jit(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "optax.losses.dice_loss")
    eager = rows[(rows["mode"] == "eager") & rows.dtype.isin(["float32", "float64"])]
    ran = eager[eager.verdict != "unsupported"]
    assert not ran.empty and set(ran.verdict) == {"pass"}
    call = ran[ran.case_id == "dice-seg[smooth=1.0,reduction=mean,dtype=float64]"].call.iloc[0]
    assert call == (
        "jnp.mean(optax.losses.dice_loss(jnp.moveaxis(input, 1, -1), jnp.moveaxis(target, 1, "
        "-1), apply_softmax=False, reduction='none', smooth=0.5))"
    )
    jit = rows[(rows["mode"] == "jit") & (rows.verdict != "unsupported")]
    assert set(jit.verdict) == {"known"}
    assert jit.reason.str.contains("TracerBoolConversionError").all()
    general = _rows(frame, "optax.losses.multiclass_generalized_dice_loss")
    general = general[(general["mode"] == "eager") & (general.output == "loss")]
    general = general[general.dtype.isin(["float32", "float64"])]
    assert set(general[general.verdict != "unsupported"].verdict) <= {
        "pass",
        "semantic-difference",
    }
    assert "class_weighting=inverse_square_frequency" in set(general.explanation.dropna().str[:40])


def test_paddle_dice_is_per_sample_with_epsilon_in_the_denominator(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "paddle.nn.functional.dice_loss")
    assert set(rows[rows.target_kind == "probs"].verdict) == {"unsupported"}
    ran = rows[rows.target_kind == "index"]
    call = ran[ran.case_id == "dice-seg-labels[smooth=1.0,reduction=mean,dtype=float64]"]
    assert call.call.iloc[0] == (
        "paddle.nn.functional.dice_loss(paddle.moveaxis(input, 1, -1), "
        "paddle.unsqueeze(target, -1), epsilon=1.0)"
    )
    smooth_one = ran[ran.params.map(lambda p: p["smooth"] == 1.0) & (ran.output == "loss")]
    assert set(smooth_one[smooth_one.params.map(lambda p: p["reduction"]) == "mean"].verdict) == {
        "known"
    }
    assert set(ran.verdict) <= {"pass", "semantic-difference", "known", "unsupported"}

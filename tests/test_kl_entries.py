"""The KL divergence entries run by the real frameworks on cases/kl.yaml with the shipped
ledger, in every default mode.

Measured and pinned: nothing fails that the ledger does not cover; torch and Paddle take
'batchmean' and log-probability targets as documented; Keras (on exp(input)) clips at 1e-7
and sums over the last axis, optax (axis=1) sums over the classes, both declared, so their
'mean' is the batch mean; optax's log-target form serves only log_target=True cases; a zero
target at a -inf input is NaN in torch and optax; Paddle drops negative targets silently.
A framework that is not installed skips its part.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import installed, run_case_file

FRAMEWORKS = installed("torch", "jax", "paddle", "tensorflow")
FAILING = ["mismatch", "error", "no-error", "crashed", "timeout"]


@pytest.fixture(scope="module")
def frame(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return run_case_file(tmp_path_factory, "kl.yaml", FRAMEWORKS)


def _rows(frame: pd.DataFrame, api: str) -> pd.DataFrame:
    rows = frame[frame.api == api]
    if rows.empty:
        pytest.skip(f"no rows for {api} (framework not installed)")
    return rows


def _reduction(rows: pd.DataFrame) -> pd.Series:
    return rows.params.map(lambda p: p["reduction"])


def test_nothing_fails_that_the_ledger_does_not_cover(frame: pd.DataFrame) -> None:
    failing = frame[frame.verdict.isin(FAILING)]
    assert failing.empty, failing[["api", "case_id", "output", "reason"]].head().to_string()
    for framework in FRAMEWORKS:
        ran = frame[
            (frame.framework == framework) & frame.verdict.isin(["pass", "semantic-difference"])
        ]
        assert set(ran.output) == {"loss", "grad"}, framework
        assert set(ran["mode"]) == set(frame[frame.framework == framework]["mode"]), framework


@pytest.mark.parametrize("api", ["torch.nn.functional.kl_div", "paddle.nn.functional.kl_div"])
def test_batchmean_and_log_targets_as_documented(frame: pd.DataFrame, api: str) -> None:
    rows = _rows(frame, api)
    rows = rows[rows.dtype.isin(["float32", "float64"])]
    batchmean = rows[_reduction(rows) == "batchmean"]
    log_targets = rows[rows.params.map(lambda p: p["log_target"])]
    for part in (batchmean, log_targets):
        clean = part[~part.base_id.isin(["kl-zero-targets", "kl-zero-log-targets"])]
        assert not clean.empty and set(clean.verdict) == {"pass"}, api
    call = rows[rows.case_id == "kl-log-target[log_target=True,reduction=batchmean,dtype=float64]"]
    assert call.call.iloc[0].endswith("(input, target, reduction='batchmean', log_target=True)")


def test_keras_clips_and_sums_over_the_last_axis(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "keras.losses.kl_divergence")
    assert set(rows[rows.params.map(lambda p: p["log_target"])].verdict) == {"unsupported"}
    assert set(rows[_reduction(rows) == "batchmean"].verdict) == {"unsupported"}
    assert "keras.losses.kl_divergence(target, keras.ops.exp(input))" in set(rows.call)
    mean = rows[rows.case_id == "kl-2d[reduction=mean,dtype=float64]"]
    mean = mean[mean.output == "loss"]
    assert set(mean.verdict) == {"semantic-difference"}
    assert mean.explanation.str.contains("kl_axis=last_sum").all()
    tiny = rows[rows.case_id == "kl-tiny-probabilities[reduction=none,dtype=float64]"]
    tiny = tiny[tiny.output == "loss"]
    assert set(tiny.verdict) == {"semantic-difference"}
    assert tiny.explanation.str.contains("kl_clip=clip_1e-7").all()


def test_optax_sums_over_the_classes_and_its_log_target_form(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "optax.losses.kl_divergence")
    seg = rows[rows.case_id == "kl-seg-nchw[log_target=False,reduction=none]"]
    seg = seg[seg.output == "loss"]  # (the gradient of a sum is the same)
    assert set(seg.verdict) == {"semantic-difference"}
    assert seg.explanation.str.startswith("kl_axis=class_sum").all()
    assert set(seg.shape_actual.map(tuple)) == {(2, 3, 5)}
    assert "optax.losses.kl_divergence(input, target, axis=1)" in set(rows.call)
    logs = _rows(frame, "optax.losses.kl_divergence_with_log_targets")
    plain = logs[~logs.params.map(lambda p: p["log_target"])]
    assert set(plain.verdict) == {"unsupported"}
    assert "always has log_target=True" in plain.reason.iloc[0]
    ran = logs[logs.case_id.str.startswith("kl-log-target[log_target=True")]
    ran = ran[_reduction(ran) != "batchmean"]  # optax has no batchmean: unsupported
    assert set(ran.verdict) == {"pass", "semantic-difference"}


def test_zero_targets_at_infinite_inputs(frame: pd.DataFrame) -> None:
    for api in ("torch.nn.functional.kl_div", "optax.losses.kl_divergence"):
        rows = _rows(frame, api)
        zero = rows[(rows.base_id == "kl-zero-targets") & (rows.output == "loss")]
        zero = zero[zero.verdict != "unsupported"]  # optax: batchmean
        assert set(zero.verdict) == {"known"}, api
        assert zero.explanation.str.contains("zero_target=xlogy").all(), api
        negative = rows[rows.base_id == "kl-negative-target"]  # NaN, as canonical
        assert set(negative.verdict) <= {"pass", "semantic-difference"}, api
    paddle = _rows(frame, "paddle.nn.functional.kl_div")
    assert set(paddle[paddle.base_id == "kl-zero-targets"].verdict) == {"pass"}
    negative = paddle[paddle.base_id == "kl-negative-target"]
    assert set(negative.verdict) == {"known"}
    assert negative.explanation.str.startswith("zero_target=nonpositive").all()

"""The regression entries (MSE, L1, Huber, smooth L1) run by the real frameworks on
cases/regression.yaml with the shipped ledger, in every default mode.

Measured and pinned: nothing fails that the ledger does not cover; PyTorch's functional
weight does not broadcast (the documented call raises, the expand_as variant runs) and its
weighted MSE and L1 means divide by the sum of the weights while Huber's divides by the
count; Paddle's smooth_l1_loss is Huber's loss as documented; tf.nn.l2_loss and
optax.l2_loss are half the squared error and Keras averages over the last axis (declared).
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
    return run_case_file(tmp_path_factory, "regression.yaml", FRAMEWORKS)


def _rows(frame: pd.DataFrame, api: str) -> pd.DataFrame:
    rows = frame[frame.api == api]
    if rows.empty:
        pytest.skip(f"no rows for {api} (framework not installed)")
    return rows


def test_nothing_fails_that_the_ledger_does_not_cover(frame: pd.DataFrame) -> None:
    failing = frame[frame.verdict.isin(FAILING)]
    assert failing.empty, failing[["api", "case_id", "output", "reason"]].head().to_string()
    # loss and grad rows for every regression loss on every installed framework that has it
    has = {"torch": 4, "tensorflow": 3, "jax": 2, "paddle": 4}
    for framework in FRAMEWORKS:
        ran = frame[
            (frame.framework == framework) & frame.verdict.isin(["pass", "semantic-difference"])
        ]
        assert ran.loss.nunique() == has[framework], framework
        assert set(ran.output) == {"loss", "grad"}


def test_torch_weight_does_not_broadcast_and_its_means_disagree(frame: pd.DataFrame) -> None:
    documented = _rows(frame, "torch.nn.functional.mse_loss")
    weighted = documented[documented.base_id == "mse-seg-nchw-weighted"]
    assert set(weighted.verdict) == {"known"}
    assert "must have the same size" in weighted.reason.iloc[0]
    mse = _rows(frame, "torch.nn.functional.mse_loss[weight.expand_as(input)]")
    assert set(mse[mse.verdict == "unsupported"].base_id) == {
        "mse-2d",
        "mse-outliers",
        "mse-infinite",
    }
    mse = mse[mse.verdict != "unsupported"]
    mean = mse[mse.case_id.str.contains("reduction=mean")]
    assert set(mean.verdict) == {"known"} and set(mean.explanation.str[:24]) == {
        "mean_denominator=weights"
    }
    assert set(mse[mse.case_id.str.contains("reduction=sum")].verdict) == {"pass"}
    huber = _rows(frame, "torch.nn.functional.huber_loss[weight.expand_as(input)]")
    assert set(huber[huber.verdict != "unsupported"].verdict) == {"pass"}
    call = mse.call.dropna().iloc[0]
    assert call.startswith("torch.nn.functional.mse_loss(input, target, reduction=")
    assert call.endswith("weight=torch.Tensor.expand_as(w, input))")


def test_paddle_smooth_l1_is_huber_as_documented(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "paddle.nn.functional.smooth_l1_loss")
    assert set(rows.loss) == {"huber_loss"}
    ran = rows[rows.dtype.isin(["float32", "float64"])]
    assert set(ran[ran.verdict == "unsupported"].base_id) == {"huber-seg-nchw-weighted"}
    assert set(ran[ran.verdict != "unsupported"].verdict) == {"pass"}
    call = rows[rows.case_id == "huber-delta[delta=2.0,reduction=sum]"].call.iloc[0]
    assert call == "paddle.nn.functional.smooth_l1_loss(input, target, reduction='sum', delta=2.0)"
    smooth = _rows(frame, "paddle.nn.functional.smooth_l1_loss(is_huber=False)")
    zero = smooth[smooth.case_id.str.contains("beta=0.0")]
    assert set(zero.verdict) == {"known"}  # NaN: 0.5 d^2 / delta with delta = 0
    other = smooth[~smooth.case_id.str.contains("beta=0.0")]
    assert set(other.verdict) == {"pass"}, other[other.verdict != "pass"].reason.iloc[0]


def test_half_squared_error_and_keras_axis_mean_are_declared(frame: pd.DataFrame) -> None:
    for api in ("tf.nn.l2_loss", "optax.losses.l2_loss"):
        rows = _rows(frame, api)
        ran = rows[rows.verdict != "unsupported"]
        assert set(ran.verdict) <= {"semantic-difference", "pass"}, api
        assert "squared_scale=half" in set(ran.explanation.dropna().str[:18])
    l2 = _rows(frame, "tf.nn.l2_loss")
    assert set(l2[l2.verdict != "unsupported"].params.map(lambda p: p["reduction"])) == {"sum"}
    assert "tf.nn.l2_loss(tf.subtract(input, target))" in set(l2.call.dropna())
    keras = _rows(frame, "keras.losses.mean_squared_error")
    none = keras[keras.case_id == "mse-2d[reduction=none,dtype=float64]"]
    assert set(none.verdict) == {"semantic-difference"}
    assert none.explanation.iloc[0].startswith("axis_mean=last")

"""The sigmoid focal loss entries (optax, Paddle, Keras) run by the real frameworks.

Runs cases/focal.yaml through `runner.run` with the shipped ledger and checks what each
entry does: optax matches canonical, Paddle cannot express alpha=None, Keras averages over
the last axis (declared), and every infinite-logit failure is a ledger entry. A framework
that is not installed skips its part.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import installed, run_case_file

FRAMEWORKS = installed("jax", "paddle", "tensorflow")


@pytest.fixture(scope="module")
def frame(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return run_case_file(tmp_path_factory, "focal.yaml", FRAMEWORKS, modes=("eager",))


def _rows(frame: pd.DataFrame, api: str) -> pd.DataFrame:
    rows = frame[frame.api == api]
    if rows.empty:
        pytest.skip(f"no rows for {api} (framework not installed)")
    return rows


def test_nothing_fails_that_the_ledger_does_not_cover(frame: pd.DataFrame) -> None:
    failing = frame[frame.verdict.isin(["mismatch", "error", "no-error", "crashed", "timeout"])]
    assert failing.empty, failing[["api", "case_id", "output", "reason"]].head().to_string()
    known = frame[frame.verdict == "known"]
    assert set(known.base_id) <= {"focal-infinite-logits", "sfocal-confident"}


def test_optax_matches_canonical(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "optax.sigmoid_focal_loss")
    finite = rows[rows.base_id != "focal-infinite-logits"]
    assert set(finite.verdict) == {"pass"}
    call = rows[rows.case_id == "focal-2d[alpha=0.25,reduction=mean,dtype=float32]"].call.iloc[0]
    assert call == "jnp.mean(optax.sigmoid_focal_loss(input, target, alpha=0.25, gamma=2.0))"
    no_alpha = rows[rows.case_id == "focal-2d[alpha=None,reduction=sum,dtype=float64]"].call
    assert no_alpha.iloc[0] == "jnp.sum(optax.sigmoid_focal_loss(input, target, gamma=2.0))"


def test_paddle_always_applies_alpha(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "paddle.nn.functional.sigmoid_focal_loss")
    without = rows[rows.case_id.str.contains("alpha=None")]
    assert set(without.verdict) == {"unsupported"}
    assert "always applies alpha" in without.reason.iloc[0]
    ran = rows[~rows.case_id.str.contains("alpha=None") & (rows.dtype != "float16")]
    assert set(ran.verdict) <= {"pass", "known"}


def test_keras_averages_over_the_last_axis(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "keras.losses.BinaryFocalCrossentropy(from_logits=True)")
    none = rows[rows.case_id == "focal-2d[alpha=0.25,reduction=none,dtype=float64]"]
    assert set(none.verdict) == {"semantic-difference"}
    assert "axis_mean=last" in none.explanation.iloc[0]
    assert none.call.iloc[0] == (
        "keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.25, "
        "gamma=2.0, from_logits=True, reduction=None)(target, input)"
    )


def test_keras_categorical_focal_passes_alpha_one_for_no_alpha(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "keras.losses.categorical_focal_crossentropy")
    case = rows[rows.case_id == "sfocal-2d[alpha=None,reduction=mean,dtype=float64]"]
    assert set(case.verdict) == {"pass"}
    assert case.call.iloc[0] == (
        "keras.ops.mean(keras.losses.categorical_focal_crossentropy(target, input, "
        "alpha=1.0, gamma=2.0, from_logits=True, axis=1))"
    )
    ordinary = rows[~rows.base_id.isin(["sfocal-confident"])]
    assert set(ordinary.verdict) == {"pass"}

"""The building-block entries (softmax, log_softmax, sigmoid, log_sigmoid) run by the real
frameworks on cases/activations.yaml with the shipped ledger, in every default mode.

Measured: PyTorch, TensorFlow/Keras and JAX agree with the oracle everywhere (extremes and
float16/bfloat16 included); Paddle's log_sigmoid (log instead of log1p, NaN at -inf) and its
CPU log_softmax (shifted logits clipped at -64) are ledger entries, and Paddle CPU has no
float16/bfloat16 kernels for them. A framework that is not installed skips its part.
"""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from conftest import CASES, installed, run_case_file

FRAMEWORKS = installed("torch", "jax", "paddle", "tensorflow")
DEFAULT_MODES = {
    "torch": {"eager"},
    "tensorflow": {"eager", "tf.function"},
    "jax": {"eager", "jit"},
}
FAILING = ["mismatch", "error", "no-error", "crashed", "timeout"]


@pytest.fixture(scope="module")
def frame(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return run_case_file(tmp_path_factory, "activations.yaml", FRAMEWORKS)


def _rows(frame: pd.DataFrame, framework: str) -> pd.DataFrame:
    rows = frame[frame.framework == framework]
    if rows.empty:
        pytest.skip(f"{framework} is not installed")
    return rows


@pytest.mark.parametrize("framework", ["torch", "tensorflow", "jax"])
def test_every_row_passes(frame: pd.DataFrame, framework: str) -> None:
    rows = _rows(frame, framework)
    assert set(rows.verdict) == {"pass"}, (
        rows[rows.verdict != "pass"][["api", "case_id", "output", "reason"]].head().to_string()
    )
    # loss and grad, in each default mode (torch.compile is not one), for all four blocks
    assert set(rows.loss) == {"softmax", "log_softmax", "sigmoid", "log_sigmoid"}
    assert set(rows.output) == {"loss", "grad"}
    assert set(rows["mode"]) == DEFAULT_MODES[framework]


def test_paddle_failures_are_the_two_ledger_entries(frame: pd.DataFrame) -> None:
    rows = _rows(frame, "paddle")
    assert rows[rows.verdict.isin(FAILING)].empty
    known = rows[rows.verdict == "known"]
    assert set(known.loss) == {"log_sigmoid", "log_softmax"}
    clipped = known[known.loss == "log_softmax"]
    assert set(clipped.base_id) == {"act-log-softmax-extremes"} and set(clipped.output) == {"loss"}
    worst = clipped[clipped.case_id.str.contains("float64")].worst_actual
    assert set(worst) == {-64.0}  # -64 where the oracle says -20000
    low = rows[rows.dtype.isin(["float16", "bfloat16"])]
    assert set(low.verdict) == {"not-implemented"}


def test_calls_pass_the_class_axis_as_documented(frame: pd.DataFrame) -> None:
    calls = set(frame.call.dropna())
    expected = {
        "torch": {"torch.nn.functional.softmax(input, dim=1)", "torch.nn.LogSoftmax(dim=1)(input)"},
        "tensorflow": {
            "tf.nn.log_softmax(input, axis=1)",
            "keras.activations.softmax(input, axis=1)",
        },
        "jax": {"jax.nn.softmax(input, axis=1)", "jax.nn.log_sigmoid(input)"},
        "paddle": {
            "paddle.nn.functional.log_softmax(input, axis=1)",
            "paddle.nn.Softmax(axis=1)(input)",
        },
    }
    for framework in FRAMEWORKS:
        assert expected[framework] <= calls, framework


def test_the_repro_snippet_carries_the_cotangent(frame: pd.DataFrame) -> None:
    repro = frame.repro.dropna().iloc[0]
    assert "g = case.grad_output()" in repro
    assert "oracle.softmax(x)" in repro or "oracle.log_softmax(x)" in repro or "sigmoid(x)" in repro


@pytest.mark.parametrize("framework", ["torch", "tensorflow", "jax", "paddle"])
def test_a_repro_snippet_runs_without_a_target(frame: pd.DataFrame, framework: str) -> None:
    """The row's own repro (no target, a drawn cotangent) runs in a fresh process and prints
    the framework's numbers."""
    rows = _rows(frame, framework)
    row = rows[(rows.verdict == "pass") & (rows.dtype == "float64")].iloc[0]
    run = subprocess.run(
        [sys.executable, "-c", row.repro],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=CASES.parent,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("expected") and "\ngrad\n" in run.stdout

"""bfloat16 as a case dtype: the comparator's ulps and tolerance, the rounding of generated
inputs, and a round trip through each real framework (its worker process).

The comparator and the rounding are checked against computations that do not share their
code: ulps from the bit patterns of ml_dtypes' bfloat16, nearest values from exact rationals
(``fractions.Fraction``). Frameworks are never imported here (TensorFlow and Paddle in one
process segfault); the round trips go through ``conformance.supervisor.Worker``.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from conformance import adapters, cases, compare, dtypes, oracle, runner
from conformance.protocol import Outcome, Task
from conformance.supervisor import Lost, Worker

BF16 = np.dtype(ml_dtypes.bfloat16)
ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120.0


# --------------------------------------------------------------------------- independent math


def _bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=BF16).view(np.uint16).astype(np.int64)


def _spacing_from_bits(a: np.ndarray) -> np.ndarray:
    """The bfloat16 spacing at |a| from its exponent field: 2^(e - 127 - 7), e >= 1."""
    exponent = (_bits(a) >> 7) & 0xFF
    return np.ldexp(1.0, np.maximum(exponent, 1) - 127 - 7)


def _nearest_bf16(v: float) -> float:
    """The bfloat16 nearest to the float64 ``v`` (ties to an even last bit), exactly: the two
    bfloat16 neighbours from truncating the float64's significand to 7 stored bits, the
    choice by rational arithmetic. Normal range only."""
    bits = np.array([v], dtype=np.float64).view(np.uint64)[0]
    low = float(np.array([bits & ~np.uint64((1 << 45) - 1)], dtype=np.uint64).view(np.float64)[0])
    step = math.ldexp(1.0, math.frexp(low)[1] - 8)  # one bfloat16 ulp in low's binade
    high = low + math.copysign(step, v)
    d_low, d_high = abs(Fraction(v) - Fraction(low)), abs(Fraction(high) - Fraction(v))
    if d_low != d_high:
        return low if d_low < d_high else high
    low_odd = int(np.array([low], dtype=np.float32).view(np.uint32)[0] >> 16) & 1
    return high if low_odd else low


# --------------------------------------------------------------------------- dtype table


def test_bfloat16_is_a_case_dtype_with_its_own_row():
    from conformance import schema

    assert "bfloat16" in schema.DTYPES
    assert compare.DTYPE_EPS["bfloat16"] == 2.0**-7 == float(ml_dtypes.finfo(BF16).eps)
    assert compare.DTYPE_TINY["bfloat16"] == 2.0**-126
    # n = 2 terms: k = 8 + 1 ulps of 2^-7
    assert compare.tolerance("bfloat16", 2) == 9 * 2.0**-7
    assert float(dtypes.finfo("bfloat16").max) == float(ml_dtypes.finfo(BF16).max)


# --------------------------------------------------------------------------- comparator


def test_ulp_distance_counts_bfloat16_steps():
    rng = np.random.default_rng(7)
    e = rng.normal(0.0, 50.0, size=400).astype(BF16)  # exactly representable expected values
    steps = rng.integers(-40, 41, size=e.shape)
    # k steps away along the bit pattern (same sign, no binade crossing: checked below)
    a_bits = _bits(e) + np.where(e.astype(np.float64) < 0, -steps, steps)
    same_binade = (a_bits >> 7) == (_bits(e) >> 7)
    a = a_bits.astype(np.uint16).view(BF16)
    e64, a64 = e.astype(np.float64)[same_binade], a.astype(np.float64)[same_binade]
    got = compare.ulp_distance(a64, e64, "bfloat16")
    np.testing.assert_array_equal(got, np.abs(steps[same_binade]))
    np.testing.assert_array_equal(got, np.abs(a64 - e64) / _spacing_from_bits(e[same_binade]))
    assert same_binade.sum() > 300


def test_ulps_of_an_unrepresentable_expected_value_use_its_bfloat16_spacing():
    e = np.array([1.0 + 2.0**-9, 300.1, -0.0123])
    a = np.array([1.0, 300.0, -0.0123046875])
    want = np.abs(a - e) / _spacing_from_bits(np.array([_nearest_bf16(v) for v in e]))
    np.testing.assert_allclose(compare.ulp_distance(a, e, "bfloat16"), want, rtol=0, atol=0)


def test_a_bfloat16_output_is_judged_on_the_bfloat16_grid():
    e = np.array([1.0, 2.5, -7.3, 100.7])
    rounded = np.array([_nearest_bf16(v) for v in e]).astype(BF16)
    ok = compare.compare(rounded, e, np.abs(e), dtype="bfloat16", n_terms=2)
    assert ok.passed, ok.reason
    assert ok.dtype_actual == "bfloat16"
    assert ok.max_ulp is not None and ok.max_ulp <= 0.5
    # k(2) = 9 ulps of 2^-7 relative to the magnitude: 9 ulps of 1.0 passes, 10 ulps fails
    m = np.array([1.0])
    nine = compare.compare(np.array([1.0 + 9 * 2.0**-7], BF16), m, m, dtype="bfloat16", n_terms=2)
    ten = compare.compare(np.array([1.0 + 10 * 2.0**-7], BF16), m, m, dtype="bfloat16", n_terms=2)
    assert nine.passed, nine.reason
    assert not ten.passed and "beyond tolerance" in ten.reason
    assert ten.max_ulp == 10
    # the same 10 ulps of bfloat16 are far beyond a float32 case's tolerance
    wide = compare.compare(np.array([1.0 + 2.0**-7], BF16), m, m, dtype="float32", n_terms=2)
    assert not wide.passed and "output is bfloat16, case is float32" in wide.reason


def test_a_value_beyond_the_bfloat16_range_expects_infinity():
    # 3.4e38 fits float32 but rounds to +inf in bfloat16 (largest 3.3895e38)
    e = np.array([3.4e38, 1.0])
    got = np.array([np.inf, 1.0], dtype=BF16)
    result = compare.compare(got, e, np.abs(e), dtype="bfloat16", n_terms=2)
    assert result.passed, result.reason
    assert "beyond the bfloat16 range at 1 element(s)" in result.reason
    assert not compare.compare(got, e, np.abs(e), dtype="float32", n_terms=2).passed


# --------------------------------------------------------------------------- rounding of cases


CASE = """\
cases:
  - id: gen
    loss: cross_entropy
    input: {{shape: [6, 7], scale: 3.0, seed: 5}}
    target: {{kind: probs, seed: 6, scale: 2.0}}
    params: {{weight: [0.1, 0.2, 0.3, 1.7, 2.9, 1.0e-3, 333.3]}}
    dtype: {dtype}
  - id: tie
    loss: cross_entropy
    input: {{values: [[1.0039062509313226, -1.0039062509313226, 0.1]]}}
    target: {{values: [0]}}
    dtype: {dtype}
"""


def test_generated_inputs_targets_and_weights_are_rounded_to_nearest_bfloat16(write_yaml):
    loaded = {c.id: c for c in cases.load_file(write_yaml(CASE.format(dtype="bfloat16")))}
    wide = {c.id: c for c in cases.load_file(write_yaml(CASE.format(dtype="float64"), "f64.yaml"))}
    x, t = loaded["gen"].arrays()
    x64, t64 = wide["gen"].arrays()  # the same draws, unrounded
    w, w64 = loaded["gen"].weight(), wide["gen"].weight()
    for got, exact in ((x, x64), (t, t64), (w, w64)):
        assert got is not None and exact is not None
        assert got.dtype == BF16
        want = np.array([_nearest_bf16(float(v)) for v in exact.ravel()]).reshape(exact.shape)
        np.testing.assert_array_equal(got.astype(np.float64), want)
    # 1 + 2^-8 + 2^-30 lies just above the tie between 1 and 1 + 2^-7: nearest is 1 + 2^-7
    # (ml_dtypes' own cast rounds twice, through float32, and gives 1)
    tie, _ = loaded["tie"].arrays()
    assert tie.astype(np.float64).tolist() == [[1 + 2**-7, -(1 + 2**-7), 0.10009765625]]
    assert np.array([1.0039062509313226]).astype(BF16).astype(np.float64)[0] == 1.0


def test_cast_rounds_to_nearest_across_the_range():
    rng = np.random.default_rng(11)
    v = np.concatenate(
        [
            rng.normal(0.0, 1.0, 2000) * np.exp2(rng.integers(-120, 120, 2000)),
            1.0 + (rng.integers(0, 128, 500) * 2 + 1) * 2.0**-8,  # exact ties
            1.0 + (rng.integers(0, 128, 500) * 2 + 1) * 2.0**-8 + 2.0**-40,  # just above
        ]
    )
    got = dtypes.cast(v, "bfloat16")
    assert got.dtype == BF16
    want = np.array([_nearest_bf16(float(a)) for a in v])
    np.testing.assert_array_equal(got.astype(np.float64), want)
    special = dtypes.cast(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e39, -1e39]), "bfloat16")
    assert np.isnan(special[0]) and special[1:3].tolist() == [np.inf, -np.inf]
    assert np.signbit(special[4]) and special[5:].astype(np.float64).tolist() == [np.inf, -np.inf]


def test_a_literal_that_overflows_bfloat16_is_refused(write_yaml):
    text = CASE.format(dtype="bfloat16").replace("0.1]]", "4.0e+38]]")
    with pytest.raises(cases.CaseErrors) as info:
        cases.load_file(write_yaml(text))
    (error,) = info.value.errors
    assert "4e+38 overflows bfloat16 (largest 3.38953e+38)" in str(error)


# --------------------------------------------------------------------------- real frameworks


def _installed(framework: str) -> bool:
    module = adapters.load(framework)
    return all(importlib.util.find_spec(name) is not None for name in module.REQUIRES)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Worker]]:
    started: dict[str, Worker] = {}
    logs = tmp_path_factory.mktemp("bf16-worker-logs")

    def get(framework: str) -> Worker:
        if not _installed(framework):
            pytest.skip(f"{framework} is not installed ({adapters.load(framework).REQUIRES})")
        if framework not in started:
            started[framework] = Worker(framework, "cpu", logs / f"{framework}.log")
            started[framework].start()
        return started[framework]

    yield get
    for w in started.values():
        w.stop()


_X = dtypes.cast(np.random.default_rng(3).normal(0.0, 3.0, size=(4, 6)), "bfloat16")
_T = np.array([0, 5, 2, 3], dtype=np.int64)
_CE = {"weight": None, "ignore_index": -100, "label_smoothing": 0.0}
# (framework, softmax cross-entropy entry with index targets)
_CE_ENTRIES = [
    ("torch", "torch.nn.functional.cross_entropy"),
    ("tensorflow", "tf.nn.sparse_softmax_cross_entropy_with_logits"),
    ("jax", "optax.softmax_cross_entropy_with_integer_labels"),
    ("paddle", "paddle.nn.functional.cross_entropy"),
]
# Paddle 3.3.1's CPU build registers no bfloat16 kernel for its cross-entropies:
# "(NotFound) The kernel with key (CPU, Undefined(AnyLayout), bfloat16) of kernel
# `cross_entropy_with_softmax` is not registered" (measured 2026-11-24).
_NO_CPU_KERNEL = {"paddle"}


def _call(w: Worker, task: Task) -> Outcome:
    result = w.call(task, TIMEOUT)
    assert not isinstance(result, Lost), f"{result.kind}: {result.reason}\n{result.stderr_tail}"
    return result


@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize(("framework", "api"), _CE_ENTRIES)
def test_a_bfloat16_call_through_each_framework(worker, framework, api, reduction):
    params: dict[str, Any] = {**_CE, "reduction": reduction}
    task = Task("bf16", "cross_entropy", api, _X, _T, "index", params)
    outcome = _call(worker(framework), task)
    if framework in _NO_CPU_KERNEL and outcome.status == "not-implemented":
        assert "bfloat16" in outcome.reason and "not registered" in outcome.reason
        pytest.skip(f"{framework}: no bfloat16 CPU kernel ({outcome.reason[:90]}...)")
    assert outcome.status == "ok", outcome.reason
    kwargs = {"reduction": reduction, **_CE}
    spec = oracle.LOSSES["cross_entropy"]
    n_terms = 6 * (4 if reduction != "none" else 1)
    for name, want, mag in zip(
        ("loss", "grad"),
        (spec.value(_X, _T, **kwargs), spec.grad(_X, _T, **kwargs)),
        spec.magnitude(_X, _T, **kwargs),
        strict=True,
    ):
        got = outcome.outputs[name]
        # the framework's bfloat16 comes back as ml_dtypes' bfloat16, values on its grid
        assert got.dtype == BF16, (name, got.dtype)
        result = compare.compare(got, want, mag, dtype="bfloat16", n_terms=n_terms)
        assert result.passed, (name, result.reason)


@pytest.mark.parametrize("framework", ["torch", "paddle"])
def test_bfloat16_input_reaches_the_framework_exactly(worker, framework):
    """nll_loss with reduction 'none' is -x[i, t_i]: an exact copy of the input."""
    api = f"{framework}.nn.functional.nll_loss"
    params = {"weight": None, "ignore_index": -100, "reduction": "none"}
    outcome = _call(worker(framework), Task("bf16", "nll_loss", api, _X, _T, "index", params))
    if framework in _NO_CPU_KERNEL and outcome.status == "not-implemented":
        assert "bfloat16" in outcome.reason and "nll_loss" in outcome.reason
        pytest.skip(f"{framework}: no bfloat16 CPU kernel ({outcome.reason[:90]}...)")
    assert outcome.status == "ok", outcome.reason
    loss = outcome.outputs["loss"]
    assert loss.dtype == BF16
    np.testing.assert_array_equal(loss.astype(np.float64), -_X[np.arange(4), _T].astype(float))
    grad = np.zeros((4, 6))
    grad[np.arange(4), _T] = -1.0
    np.testing.assert_array_equal(outcome.outputs["grad"].astype(np.float64), grad)


# The call texts are the ones the runs record for these rows (results.jsonl, "call").
_REPRO = [
    (
        "torch",
        "cases/nll_loss.yaml",
        "nll-hard-2d[reduction=none,dtype=bfloat16]",
        "torch.nn.functional.nll_loss(input, target, ignore_index=-100, reduction='none')",
    ),
    (
        "jax",
        "cases/cross_entropy.yaml",
        "ce-hard-2d[reduction=none,dtype=bfloat16]",
        "optax.softmax_cross_entropy_with_integer_labels(input, target, axis=1)",
    ),
]


@pytest.mark.parametrize(("framework", "file", "case_id", "call"), _REPRO)
def test_the_repro_snippet_makes_the_bfloat16_call(framework, file, case_id, call):
    if not _installed(framework):
        pytest.skip(f"{framework} is not installed ({adapters.load(framework).REQUIRES})")
    case = cases.get(file, case_id)
    x, t = case.arrays()
    text = runner.repro(case, adapters.load(framework).SNIPPET, call)
    proc = subprocess.run(
        [sys.executable, "-c", text], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "expected" in proc.stdout and "loss" in proc.stdout and "grad" in proc.stdout
    if framework == "torch":  # -x[i, t_i], printed from the float32 copy of the bfloat16 loss
        printed = proc.stdout.split("loss\n", 1)[1].split("grad", 1)[0]
        values = np.array(printed.replace("[", " ").replace("]", " ").split(), dtype=float)
        np.testing.assert_array_equal(values, -x[np.arange(len(t)), t].astype(float))

"""The shipped cases and the tolerance table catch deliberately wrong definitions.

A worker returns the true oracle's numbers (rounded to the case dtype); the parent judges
them with a mutant oracle. Each mutant is a mistake a framework or an oracle could make.
If no shipped case fails, the case set (or the tolerance) is too weak to see that mistake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import CASES

from conformance import adapters, cases, oracle, results, runner

TRUE = oracle.LOSSES["cross_entropy"]
Fn = Callable[..., Any]


def _is_index(t: np.ndarray) -> bool:
    return t.dtype.kind in "iu"


def _with(**changes: Any) -> Callable[[Fn], Fn]:
    """Call the true function with some keyword arguments changed."""

    def wrap(fn: Fn) -> Fn:
        def mutant(x: Any, t: Any, **kw: Any) -> Any:
            new = {k: (v(kw) if callable(v) else v) for k, v in changes.items()}
            return fn(x, t, **{**kw, **new})

        return mutant

    return wrap


def _mean_over(denominator: Callable[[np.ndarray, np.ndarray, dict[str, Any]], float]) -> Fn:
    """A value whose mean divides by another denominator (index or probs targets)."""

    def value(x: Any, t: Any, **kw: Any) -> Any:
        if kw["reduction"] != "mean":
            return TRUE.value(x, t, **kw)
        total = TRUE.value(x, t, **{**kw, "reduction": "sum"})
        with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 stays NaN, as it should
            return total / denominator(np.asarray(x), np.asarray(t), kw)

    return value


def _scaled(fn: Fn, factor: float) -> Fn:
    return lambda x, t, **kw: fn(x, t, **kw) * factor


def _empty_mean_zero(x: Any, t: Any, **kw: Any) -> Any:
    v = TRUE.value(x, t, **kw)
    return np.where(np.isnan(v), 0.0, v)


def _clipped(x: Any, t: Any, **kw: Any) -> Any:
    v = TRUE.value(x, t, **kw)
    return np.minimum(v, 64.0) if kw["reduction"] == "none" else v


def _counting_ignored(x: np.ndarray, t: np.ndarray, kw: dict[str, Any]) -> float:
    """Σ w[y] over valid targets plus 1 per ignored one (Paddle's mean_all, weight-free)."""
    if not _is_index(t):
        return float(t.size // t.shape[1])
    w = np.ones(x.shape[1]) if kw["weight"] is None else np.asarray(kw["weight"], np.float64)
    valid = t != kw["ignore_index"]
    return float(np.sum(w[t[valid]]) + np.sum(~valid))


def _probs_weighted_denominator(x: np.ndarray, t: np.ndarray, kw: dict[str, Any]) -> float:
    if _is_index(t) or kw["weight"] is None:
        return float(TRUE.value(x, t, **{**kw, "reduction": "sum"}) / TRUE.value(x, t, **kw))
    w = np.asarray(kw["weight"], dtype=np.float64).reshape(1, -1, *([1] * (x.ndim - 2)))
    return float(np.sum(w * t))  # Paddle's soft-label denominator


MUTANTS: dict[str, tuple[Fn, Fn]] = {
    "class weights ignored": (_with(weight=None)(TRUE.value), _with(weight=None)(TRUE.grad)),
    "weighted mean divides by the count": (
        _mean_over(
            lambda x, t, kw: (
                float(np.sum(t != kw["ignore_index"]))
                if _is_index(t)
                else float(t.size // t.shape[1])
            )
        ),
        TRUE.grad,
    ),
    "ignored positions counted in the mean": (_mean_over(_counting_ignored), TRUE.grad),
    "label smoothing halved": (
        _with(label_smoothing=lambda kw: kw["label_smoothing"] / 2)(TRUE.value),
        _with(label_smoothing=lambda kw: kw["label_smoothing"] / 2)(TRUE.grad),
    ),
    "label smoothing ignored": (
        _with(label_smoothing=0.0)(TRUE.value),
        _with(label_smoothing=0.0)(TRUE.grad),
    ),
    "mean over only-ignored targets is 0": (_empty_mean_zero, TRUE.grad),
    "soft-label mean divides by the weighted target mass": (
        _mean_over(_probs_weighted_denominator),
        TRUE.grad,
    ),
    "per-element loss clipped at 64": (_clipped, TRUE.grad),
    "loss 1e-5 too large (float32-sized error)": (_scaled(TRUE.value, 1 + 1e-5), TRUE.grad),
    "gradient 1e-5 too large": (TRUE.value, _scaled(TRUE.grad, 1 + 1e-5)),
    "gradient of the mean not divided by the denominator": (
        TRUE.value,
        lambda x, t, **kw: TRUE.grad(
            x, t, **{**kw, "reduction": "sum" if kw["reduction"] == "mean" else kw["reduction"]}
        ),
    ),
}


@pytest.fixture(scope="module")
def shipped() -> list[cases.Case]:
    return cases.load_paths([CASES])


def _run(shipped: list[cases.Case], tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setitem(adapters.MODULES, "exact", "exact_adapter")
    runner.run(shipped, tmp_path, frameworks=["exact"])
    return results.load(tmp_path)


def test_the_true_oracle_passes_every_shipped_case(shipped, tmp_path, monkeypatch):
    frame = _run(shipped, tmp_path, monkeypatch)
    assert set(frame.verdict) == {"pass", "expected-error"}, (
        frame[~frame.verdict.isin(["pass", "expected-error"])][["case_id", "output", "reason"]]
        .head()
        .to_string()
    )


@pytest.mark.parametrize("name", list(MUTANTS))
def test_every_mutant_is_caught_by_some_case(name, shipped, tmp_path, monkeypatch):
    value, grad = MUTANTS[name]
    monkeypatch.setitem(oracle.LOSSES, "cross_entropy", TRUE._replace(value=value, grad=grad))
    frame = _run(shipped, tmp_path, monkeypatch)
    caught = frame[frame.verdict == "mismatch"]
    assert len(caught), f"no shipped case notices: {name}"


def test_a_one_ulp_difference_is_not_a_finding(shipped, tmp_path, monkeypatch):
    """Negative control: the tolerance is not so tight that rounding alone fails a row."""

    def one_ulp(fn: Fn) -> Fn:
        return lambda x, t, **kw: fn(x, t, **kw) * (1 + float(np.finfo(np.asarray(x).dtype).eps))

    monkeypatch.setitem(
        oracle.LOSSES,
        "cross_entropy",
        TRUE._replace(value=one_ulp(TRUE.value), grad=one_ulp(TRUE.grad)),
    )
    frame = _run(shipped, tmp_path, monkeypatch)
    assert set(frame.verdict) == {"pass", "expected-error"}

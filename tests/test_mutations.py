"""The shipped cases and the tolerance table catch deliberately wrong definitions.

A worker returns the true oracle's numbers (rounded to the case dtype); the parent judges
them with a mutant oracle. Each mutant is a mistake a framework or an oracle could make.
If no shipped case fails, the case set (or the tolerance) is too weak to see that mistake.

The second half does the same for every alternative choice of every semantic option: the
variant oracle's outputs under that choice, in the case dtype, must fail the canonical
comparison of some shipped case, and EXPECTED_CATCHER names one that does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from conftest import CASES

from conformance import adapters, cases, oracle, results, runner
from conformance.compare import compare
from conformance.dtypes import finfo
from conformance.oracle import options, variants

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
    monkeypatch.setitem(
        oracle.LOSSES, "cross_entropy", TRUE._replace(value=value, grad=grad, outputs=None)
    )
    frame = _run(shipped, tmp_path, monkeypatch)
    caught = frame[frame.verdict == "mismatch"]
    assert len(caught), f"no shipped case notices: {name}"


def test_a_one_ulp_difference_is_not_a_finding(shipped, tmp_path, monkeypatch):
    """Negative control: the tolerance is not so tight that rounding alone fails a row."""

    def one_ulp(fn: Fn) -> Fn:
        return lambda x, t, **kw: fn(x, t, **kw) * (1 + float(finfo(np.asarray(x).dtype).eps))

    monkeypatch.setitem(
        oracle.LOSSES,
        "cross_entropy",
        TRUE._replace(value=one_ulp(TRUE.value), grad=one_ulp(TRUE.grad), outputs=None),
    )
    frame = _run(shipped, tmp_path, monkeypatch)
    assert set(frame.verdict) == {"pass", "expected-error"}


# ---------------------------------------------------------------- one mutant per semantic option
#
# Each non-canonical choice of each semantic option (conformance/oracle/options.py) is a
# definition some framework computes. Computed by the variant oracle and returned in the case
# dtype, as a framework would, it must fail the canonical comparison of some shipped case, or
# the judge could never tell that definition apart. The table names one case that does, so a
# change to the case set says which catcher it lost.

EXPECTED_CATCHER: dict[tuple[str, str], str] = {
    ("index_mean", "count"): "ce-weighted[reduction=mean,dtype=float64]",
    ("index_mean", "elements"): "ce-ignore-default[reduction=mean]",
    ("index_mean", "batch"): "ce-seg-nchw[reduction=mean,dtype=float64]",
    ("probs_mean", "weights"): "ce-probs-weighted[reduction=mean]",
    ("probs_mean", "batch"): "ce-seg-probs-nchw[reduction=mean]",
    ("empty_mean", "zero"): "ce-all-ignored[reduction=mean]",
    ("soft_weighting", "per_element"): "ce-probs-weighted[reduction=sum]",
    ("smoothing_mass", "others"): "ce-smoothing[label_smoothing=0.1,reduction=sum]",
    ("smoothing_mass", "last_axis"): "ce-seg-smoothing-nchw[reduction=none]",
    ("logit_clip", "64"): "ce-large-logits[reduction=none,dtype=float64]",
    ("zero_log_zero", "nan"): "ce-probs-zero-target-neg-inf[reduction=none]",
    ("target_sum", "assumed_one"): "ce-probs-rows-not-summing-to-one[reduction=sum]",
    ("none_shape", "keepdim"): "ce-hard-2d[reduction=none,dtype=float32]",
    ("precision", "float32"): "ce-hard-2d[reduction=mean,dtype=float64]",
}

OPTION_MUTANTS = [
    (option.name, choice)
    for option in options.options_for("cross_entropy")
    for choice in option.choices
    if choice != option.canonical
]


class Judged(NamedTuple):
    """A shipped case with its rounded inputs and the canonical oracle's answer."""

    case: cases.Case
    x: np.ndarray
    target: np.ndarray
    expected: runner.Expected


@pytest.fixture(scope="module")
def judged(shipped: list[cases.Case]) -> list[Judged]:
    out = []
    for case in shipped:
        if case.loss != "cross_entropy" or case.expect_error is not None:
            continue
        x, target = case.arrays()
        expected = runner.expected_for(case, x, target)
        assert not expected.problem, f"{case.id}: {expected.problem}"
        out.append(Judged(case, x, target, expected))
    return out


def _in_float32(item: Judged) -> dict[str, np.ndarray]:
    """The canonical definition computed in float32: inputs and outputs rounded to float32
    (the most accurate float32 computation there is), then widened."""
    kwargs = dict(_params(item))
    if kwargs.get("weight") is not None:
        kwargs["weight"] = np.asarray(kwargs["weight"]).astype(np.float32)
    target = item.target if item.target.dtype.kind in "iu" else item.target.astype(np.float32)
    outputs = variants.cross_entropy(item.x.astype(np.float32), target, **kwargs)
    return {name: v.astype(np.float32).astype(np.float64) for name, v in outputs.items()}


def _params(item: Judged) -> dict[str, Any]:
    assert item.expected.diagnoser is not None  # the keyword arguments the judge re-runs with
    return item.expected.diagnoser.params


def _mutant_outputs(item: Judged, option: str, choice: str) -> dict[str, np.ndarray] | None:
    """What a framework computing ``option=choice`` returns (in the case dtype), or None when
    that definition cannot differ here."""
    if option == "precision":  # a comparison option: its mutant is the precision itself
        assert choice == "float32"
        if item.case.dtype != "float64":
            return None
        outputs = _in_float32(item)
    else:
        try:
            outputs = variants.cross_entropy(
                item.x, item.target, **_params(item), choices={option: choice}
            )
        except ValueError:  # too large for the dense variant oracle
            return None
    return {name: np.asarray(v).astype(item.case.dtype) for name, v in outputs.items()}


def _failing_outputs(item: Judged, got: dict[str, np.ndarray]) -> list[str]:
    expected, case = item.expected, item.case
    return [
        name
        for name in runner.OUTPUTS
        if not compare(
            got[name],
            expected.values[name],
            expected.magnitudes[name],
            dtype=case.dtype,
            n_terms=expected.n_terms,
            factor=case.tolerance_factor,
        ).passed
    ]


def test_the_catcher_table_names_only_real_options():
    stale = sorted(set(EXPECTED_CATCHER) - set(OPTION_MUTANTS))
    assert not stale, f"EXPECTED_CATCHER names options or choices that do not exist: {stale}"


@pytest.mark.parametrize(
    ("option", "choice"), OPTION_MUTANTS, ids=[f"{o}={c}" for o, c in OPTION_MUTANTS]
)
def test_every_option_mutant_is_caught_by_some_case(option, choice, judged):
    catchers: dict[str, list[str]] = {}
    for item in judged:
        got = _mutant_outputs(item, option, choice)
        failing = [] if got is None else _failing_outputs(item, got)
        if failing:
            catchers[item.case.id] = failing
    mutant = options.OPTIONS[option].describe(choice)
    assert catchers, f"{option}={choice} escapes: no shipped case notices {mutant}"
    named = EXPECTED_CATCHER.get((option, choice))
    some = ", ".join(sorted(catchers)[:3])
    assert named is not None, f"add ({option!r}, {choice!r}) to EXPECTED_CATCHER, e.g. {some}"
    assert named in catchers, f"{named} no longer catches {mutant}; cases that still do: {some}"

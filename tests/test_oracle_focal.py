"""The sigmoid focal loss oracle against independent computations, and its cases' strength.

A 50-digit mpmath computation of Lin et al.'s formula (value and gradient, ≤ 1e-12
relative), invariants (gamma = 0 is BCE with logits; alpha = 0.5 halves it), central finite
differences, the limits at infinite logits, and deliberately wrong oracles that a shipped
case must catch. No deep-learning framework is imported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath as mp
import numpy as np
import pytest
from conftest import Judged, failing_ids, judged_cases

from conformance.oracle import binary, focal, options
from conformance.oracle.focal import (
    sigmoid_focal_loss,
    sigmoid_focal_loss_grad,
    sigmoid_focal_loss_magnitude,
    sigmoid_focal_loss_outputs,
)

mp.mp.dps = 50


def _mp_loss(x: float, t: float, alpha: float | None, gamma: float) -> Any:
    """l(x) in 50 digits, straight from the definition with p = 1 / (1 + e^-x)."""
    xm, tm = mp.mpf(x), mp.mpf(t)
    p = 1 / (1 + mp.exp(-xm))
    ce = -(tm * mp.log(p) + (1 - tm) * mp.log(1 - p))
    q = 1 - (p * tm + (1 - p) * (1 - tm))
    a = 1 if alpha is None else alpha * tm + (1 - alpha) * (1 - tm)
    return a * q ** mp.mpf(gamma) * ce


def _mp_grad(x: float, t: float, alpha: float | None, gamma: float) -> Any:
    return mp.diff(lambda z: _mp_loss(z, t, alpha, gamma), mp.mpf(x))


CASES_MP = [
    # (logits, targets, alpha, gamma)
    ([-3.0, -0.5, 0.0, 0.7, 4.0, 12.0], [1.0, 0.0, 1.0, 0.0, 1.0, 0.0], None, 2.0),
    ([-3.0, -0.5, 0.0, 0.7, 4.0, 12.0], [0.2, 0.9, 0.5, 0.0, 0.35, 1.0], 0.25, 2.0),
    ([-8.0, -1.5, 0.3, 2.0, 9.0], [1.0, 1.0, 0.0, 1.0, 0.0], 0.75, 0.5),
    ([-8.0, -1.5, 0.3, 2.0, 9.0], [0.0, 1.0, 0.6, 1.0, 0.1], None, 5.0),
    ([-2.0, 1.0, 3.0], [1.0, 0.0, 0.4], 0.25, 1.0),
]


@pytest.mark.parametrize(("xs", "ts", "alpha", "gamma"), CASES_MP)
def test_value_and_gradient_match_mpmath(
    xs: list[float], ts: list[float], alpha: Any, gamma: float
):
    x, t = np.array(xs), np.array(ts)
    loss = sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction="none")
    grad = sigmoid_focal_loss_grad(x, t, alpha=alpha, gamma=gamma, reduction="sum")
    for i in range(len(xs)):
        want = _mp_loss(xs[i], ts[i], alpha, gamma)
        assert abs(loss[i] - float(want)) <= 1e-12 * abs(float(want)) + 1e-300, (i, loss[i], want)
        gwant = float(_mp_grad(xs[i], ts[i], alpha, gamma))
        assert abs(grad[i] - gwant) <= 1e-12 * abs(gwant) + 1e-15, (i, grad[i], gwant)


def test_gamma_zero_is_bce_with_logits_and_alpha_half_halves_it():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 5)) * 4
    t = rng.random((4, 5))
    for reduction in ("none", "mean", "sum"):
        bce = binary.binary_cross_entropy_with_logits(x, t, reduction=reduction)
        np.testing.assert_allclose(
            sigmoid_focal_loss(x, t, gamma=0.0, reduction=reduction), bce, rtol=1e-14
        )
        np.testing.assert_allclose(
            sigmoid_focal_loss_grad(x, t, gamma=0.0, reduction=reduction),
            binary.binary_cross_entropy_with_logits_grad(x, t, reduction=reduction),
            rtol=1e-13,
            atol=1e-16,
        )
        np.testing.assert_allclose(
            sigmoid_focal_loss(x, t, alpha=0.5, reduction=reduction),
            0.5 * sigmoid_focal_loss(x, t, reduction=reduction),
            rtol=1e-14,
        )


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_gradient_matches_finite_differences(gamma: float, alpha: Any):
    rng = np.random.default_rng(int(gamma * 10) + (alpha is None))
    x = rng.normal(size=(3, 4)) * 2
    t = rng.random((3, 4))
    g = rng.normal(size=(3, 4))
    grad = sigmoid_focal_loss_grad(x, t, alpha=alpha, gamma=gamma, reduction="none", grad_output=g)
    h = 1e-6
    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        up = sigmoid_focal_loss(x + e, t, alpha=alpha, gamma=gamma, reduction="none")
        down = sigmoid_focal_loss(x - e, t, alpha=alpha, gamma=gamma, reduction="none")
        fd[i] = np.sum((up - down) * g) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_infinite_logits_give_the_limits():
    x = np.array([np.inf, -np.inf, -np.inf, np.inf])
    t = np.array([1.0, 0.0, 1.0, 0.0])
    loss = sigmoid_focal_loss(x, t, alpha=0.25, reduction="none")
    assert loss.tolist() == [0.0, 0.0, np.inf, np.inf]
    grad = sigmoid_focal_loss_grad(x, t, alpha=0.25, reduction="none")
    assert np.all(np.isfinite(grad))
    loss_mag, grad_mag = sigmoid_focal_loss_magnitude(x, t, alpha=0.25, reduction="none")
    assert not np.any(np.isnan(loss_mag)) and not np.any(np.isnan(grad_mag))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        sigmoid_focal_loss(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="gamma"):
        sigmoid_focal_loss(np.zeros(2), np.zeros(2), gamma=-1.0)
    with pytest.raises(ValueError, match="no semantic option"):
        sigmoid_focal_loss(np.zeros(2), np.zeros(2), choices={"log_clamp": "-100"})


# ----------------------------------------------------------- the shipped cases catch mistakes


@pytest.fixture(scope="module")
def judged() -> list[Judged]:
    """Every case of cases/focal.yaml (both losses), with its canonical expectations."""
    return judged_cases("focal.yaml")


@pytest.fixture(scope="module")
def judged_sigmoid(judged: Any) -> list[Any]:
    return [j for j in judged if j[0].loss == focal.LOSS]


def _with(**changes: Any) -> Callable[..., dict[str, np.ndarray]]:
    def outputs(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
        new = {k: (v(kw) if callable(v) else v) for k, v in changes.items()}
        return sigmoid_focal_loss_outputs(x, t, **{**kw, **new})

    return outputs


def _alpha_swapped(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
    """alpha weighting the negatives instead of the positives."""
    alpha = kw.get("alpha")
    swapped = None if alpha is None else 1.0 - alpha
    return sigmoid_focal_loss_outputs(x, t, **{**kw, "alpha": swapped})


def _p_not_q(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
    """The modulating factor computed as (1 - p)^gamma for every target (no p_t)."""
    gamma = kw["gamma"]
    base = binary.binary_cross_entropy_with_logits(x, t, reduction="none")
    alpha = kw.get("alpha")
    a = 1.0 if alpha is None else alpha * np.asarray(t) + (1 - alpha) * (1 - np.asarray(t))
    with np.errstate(over="ignore", invalid="ignore"):
        p = 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
        per = a * (1.0 - p) ** gamma * base
    reduction = kw["reduction"]
    loss = per if reduction == "none" else (per.sum() if reduction == "sum" else per.mean())
    truth = sigmoid_focal_loss_outputs(x, t, **kw)
    return {"loss": np.asarray(loss), "grad": truth["grad"]}


MUTANTS: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    "gamma ignored (plain BCE)": _with(gamma=0.0),
    "gamma off by one": _with(gamma=lambda kw: kw["gamma"] + 1.0),
    "alpha ignored": _with(alpha=None),
    "alpha on the negatives": _alpha_swapped,
    "modulating factor without p_t": _p_not_q,
}


@pytest.mark.parametrize("name", list(MUTANTS))
def test_every_mutant_is_caught_by_a_shipped_case(name: str, judged_sigmoid: Any) -> None:
    assert failing_ids(judged_sigmoid, MUTANTS[name]), f"no shipped case notices: {name}"


def test_the_true_oracle_passes_every_shipped_case(judged_sigmoid: Any) -> None:
    assert not failing_ids(judged_sigmoid, sigmoid_focal_loss_outputs)


@pytest.mark.parametrize(
    ("option", "choice", "catcher"),
    [
        ("focal_bce", "clip_1e-7", "focal-confident-logits[reduction=none,dtype=float64]"),
        ("axis_mean", "last", "focal-2d[alpha=None,reduction=none,dtype=float32]"),
        ("axis_mean", "class", "focal-seg-nchw[reduction=none]"),
    ],
)
def test_every_option_choice_is_caught(
    option: str, choice: str, catcher: str, judged_sigmoid: Any
) -> None:
    alternatives = [
        (o.name, c)
        for o in options.options_for(focal.LOSS)
        if o.name != "precision"  # a comparison option: the value is not changed
        for c in o.choices
        if c != o.canonical
    ]
    assert (option, choice) in alternatives
    assert len(alternatives) == 3  # a new choice needs a row here

    def outputs(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
        return sigmoid_focal_loss_outputs(x, t, **kw, choices={option: choice})

    assert catcher in failing_ids(judged_sigmoid, outputs)


# ------------------------------------------------------------------ softmax (categorical) focal


def _mp_softmax_focal(xs: list[float], ts: list[float], alpha: Any, gamma: float) -> Any:
    xm = [mp.mpf(v) for v in xs]
    z = mp.fsum(mp.exp(v) for v in xm)
    a = 1 if alpha is None else mp.mpf(alpha)
    return -a * mp.fsum(
        mp.mpf(t) * (1 - mp.exp(v) / z) ** mp.mpf(gamma) * mp.log(mp.exp(v) / z)
        for v, t in zip(xm, ts, strict=True)
    )


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_softmax_focal_matches_mpmath_and_finite_differences(gamma: float, alpha: Any):
    rng = np.random.default_rng(int(gamma * 7) + (alpha is None))
    x = rng.normal(size=(3, 4)) * 3
    t = rng.random((3, 4))
    t /= t.sum(axis=1, keepdims=True)
    loss = focal.softmax_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction="none")
    for n in range(3):
        want = float(_mp_softmax_focal(list(x[n]), list(t[n]), alpha, gamma))
        assert abs(loss[n] - want) <= 1e-12 * abs(want), (n, loss[n], want)
        for c in range(4):
            d = float(
                mp.diff(
                    lambda v, n=n, c=c: _mp_softmax_focal(
                        [v if j == c else x[n, j] for j in range(4)], list(t[n]), alpha, gamma
                    ),
                    mp.mpf(x[n, c]),
                )
            )
            got = focal.softmax_focal_loss_grad(x, t, alpha=alpha, gamma=gamma, reduction="none")
            assert abs(got[n, c] - d) <= 1e-12 * max(abs(d), 1e-3), (n, c, got[n, c], d)


def test_softmax_focal_with_gamma_zero_is_cross_entropy():
    from conformance.oracle import cross_entropy, cross_entropy_grad

    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 4, 3)) * 2
    t = rng.random((2, 4, 3))
    t /= t.sum(axis=1, keepdims=True)
    for reduction in ("none", "mean", "sum"):
        np.testing.assert_allclose(
            focal.softmax_focal_loss(x, t, gamma=0.0, reduction=reduction),
            cross_entropy(x, t, reduction=reduction),
            rtol=1e-13,
        )
        np.testing.assert_allclose(
            focal.softmax_focal_loss_grad(x, t, gamma=0.0, reduction=reduction),
            cross_entropy_grad(x, t, reduction=reduction),
            rtol=1e-12,
            atol=1e-16,
        )


@pytest.fixture(scope="module")
def judged_softmax(judged: Any) -> list[Any]:
    return [j for j in judged if j[0].loss == focal.SOFTMAX_LOSS]


def _soft_with(**changes: Any) -> Callable[..., dict[str, np.ndarray]]:
    def outputs(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
        new = {k: (v(kw) if callable(v) else v) for k, v in changes.items()}
        return focal.softmax_focal_loss_outputs(x, t, **{**kw, **new})

    return outputs


SOFT_MUTANTS = {
    "gamma ignored (plain cross-entropy)": _soft_with(gamma=0.0),
    "alpha ignored": _soft_with(alpha=None),
    "gamma halved": _soft_with(gamma=lambda kw: kw["gamma"] / 2),
}


@pytest.mark.parametrize("name", list(SOFT_MUTANTS))
def test_every_softmax_mutant_is_caught(name: str, judged_softmax: Any) -> None:
    assert failing_ids(judged_softmax, SOFT_MUTANTS[name]), f"no shipped case notices: {name}"


def test_the_true_softmax_oracle_passes_and_the_clip_is_caught(judged_softmax: Any) -> None:
    assert judged_softmax
    assert not failing_ids(judged_softmax, focal.softmax_focal_loss_outputs)

    def clipped(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
        return focal.softmax_focal_loss_outputs(x, t, **kw, choices={"prob_clip": "clip_1e-7"})

    assert "sfocal-confident[reduction=none,dtype=float64]" in failing_ids(judged_softmax, clipped)

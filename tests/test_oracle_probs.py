"""Tests of the cross-entropy-on-probabilities oracle (conformance/oracle/probs.py).

An independent 50-digit mpmath computation, documented and measured numbers (Keras'
docstring example; Paddle's use_softmax=False, measured once on Paddle 3.3.1 CPU), invariants
(on p = softmax(x) it is the cross_entropy oracle of x, loss and chain-ruled gradient; with
renormalisation it is invariant to scaling p), finite-difference gradients under every
option, and mutants that some shipped case must catch. No deep-learning framework here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mpmath as mp
import numpy as np
import pytest
from conftest import Judged, failing_ids, judged_cases

from conformance import oracle
from conformance.oracle import options, probs
from conformance.oracle.probs import (
    cross_entropy_on_probs as cep,
)
from conformance.oracle.probs import (
    cross_entropy_on_probs_grad as cep_grad,
)
from conformance.oracle.probs import (
    cross_entropy_on_probs_magnitude as cep_mag,
)
from conformance.oracle.probs import (
    cross_entropy_on_probs_outputs as cep_outputs,
)

INF = math.inf
SHAPES = [(5, 4), (4, 1), (2, 3, 4), (2, 3, 2, 2)]


def _draw(
    seed: int, shape: tuple[int, ...], kind: str, *, ignore: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = oracle.softmax(rng.normal(0.0, 3.0, size=shape), axis=1)
    w = rng.uniform(0.1, 3.0, size=shape[1])
    if kind == "index":
        t = rng.integers(0, shape[1], size=(shape[0], *shape[2:]))
        if ignore:
            t.reshape(-1)[::3] = -100
        return p, t, w
    return p, oracle.softmax(rng.normal(0.0, 2.0, size=shape), axis=1), w


def _at(i: tuple[int, ...], k: int) -> tuple[int, ...]:
    """The input index of class k at element i = (n, d1, ..., dk)."""
    return (i[0], k, *i[1:])


def _mp_reference(
    p: np.ndarray, t: np.ndarray, w: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray, mp.mpf]:
    """Per-element loss, gradient of 'sum', and the mean's denominator, in 50 digits."""
    mp.mp.dps = 50
    c = p.shape[1]
    elem_shape = (p.shape[0], *p.shape[2:])
    loss = np.empty(elem_shape, dtype=object)
    grad = np.zeros(p.shape, dtype=object)
    denom = mp.mpf(0)
    for i in np.ndindex(elem_shape):
        total = mp.mpf(0)
        if t.dtype.kind in "iu":
            y = int(t[i])
            if y == -100:
                loss[i] = mp.mpf(0)
                for k in range(c):
                    grad[_at(i, k)] = mp.mpf(0)
                continue
            tt = [mp.mpf(1 if k == y else 0) for k in range(c)]
            denom += mp.mpf(float(w[y]))
        else:
            tt = [mp.mpf(float(t[_at(i, k)])) for k in range(c)]
            denom += 1
        for k in range(c):
            a = mp.mpf(float(w[k])) * ((1 - mp.mpf(eps)) * tt[k] + mp.mpf(eps) / c)
            pk = mp.mpf(float(p[_at(i, k)]))
            total += -a * mp.log(pk) if a else 0
            grad[_at(i, k)] = -a / pk if a else mp.mpf(0)
        loss[i] = total
    return loss, grad, denom


def _f(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.vectorize(float, otypes=[np.float64])(a)
    return out


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_matches_mpmath(shape: tuple[int, ...], kind: str, eps: float) -> None:
    p, t, w = _draw(len(shape) + int(eps * 10), shape, kind, ignore=kind == "index")
    loss, grad, denom = _mp_reference(p, t, w, eps)
    kw: dict[str, Any] = {"weight": w, "label_smoothing": eps}
    np.testing.assert_allclose(cep(p, t, reduction="none", **kw), _f(loss), rtol=1e-12)
    total = mp.fsum(loss.ravel())
    assert float(cep(p, t, reduction="sum", **kw)) == pytest.approx(float(total), rel=1e-12)
    assert float(cep(p, t, **kw)) == pytest.approx(float(total / denom), rel=1e-12)
    np.testing.assert_allclose(cep_grad(p, t, reduction="sum", **kw), _f(grad), rtol=1e-12)
    np.testing.assert_allclose(cep_grad(p, t, **kw), _f(grad / denom), rtol=1e-12)


def test_keras_docstring_example() -> None:
    # keras/src/backend/tensorflow/nn.py categorical_crossentropy: [0.10536 0.11653 0.06188]
    a = np.eye(3)
    b = np.array([[0.9, 0.05, 0.05], [0.05, 0.89, 0.06], [0.05, 0.01, 0.94]])
    np.testing.assert_allclose(cep(b, a, reduction="none"), [0.10536, 0.11653, 0.06188], atol=5e-6)
    keras = {"prob_renormalise": "before_clip", "prob_clip": "clip_1e-7"}
    np.testing.assert_allclose(
        cep_outputs(b, a, reduction="none", choices=keras)["loss"],
        [0.10536, 0.11653, 0.06188],
        atol=5e-6,
    )
    # categorical_crossentropy(a, a) = [0, 0, 0] up to the clip: -log(1 - 1e-7) each
    np.testing.assert_allclose(
        cep_outputs(a, a, reduction="none", choices=keras)["loss"], [1e-7] * 3, rtol=1e-6
    )


def test_paddle_use_softmax_false_measured() -> None:
    # paddle.nn.functional.cross_entropy(p, label, use_softmax=False, axis=1, reduction='none')
    # on Paddle 3.3.1 CPU, float64 (measured 2026-11-24):
    p = np.array([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0], [0.5, 0.25, 0.5], [1e-30, 0.5, 0.5]])
    label = np.array([0, 0, 1, 0])
    paddle = {"prob_clip": "inf_to_1e20"}
    out = cep_outputs(p, label, reduction="none", choices=paddle)
    np.testing.assert_allclose(out["loss"], [1.60943791, 1e20, 1.38629436, 69.07755279], rtol=1e-8)
    want_grad = np.zeros((4, 3))
    want_grad[:, 0] = [-5.0, -INF, 0.0, -1e30]
    want_grad[2, 1] = -4.0
    np.testing.assert_allclose(out["grad"], want_grad, rtol=1e-15)
    assert cep(p, label, reduction="none")[1] == INF  # canonical: -log 0
    # soft labels: loss [1.02965301, 5e19, 1.38629436, 69.0775528]; the gradient is -t / p,
    # NaN where t = 0 meets p = 0 (row 1, class 2)
    t = np.array([[0.2, 0.3, 0.5], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    soft = cep_outputs(p, t, reduction="none", choices=paddle)
    np.testing.assert_allclose(soft["loss"], [1.02965301, 5e19, 1.38629436, 69.0775528])
    assert soft["grad"][1, 2] == 0.0
    nan = cep_outputs(p, t, reduction="none", choices={**paddle, "zero_log_zero": "nan"})
    assert np.isnan(nan["grad"][1, 2])
    assert nan["grad"][1, 0] == -INF
    np.testing.assert_allclose(nan["loss"], soft["loss"])


def test_exact_zero_and_one() -> None:
    p = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    label = np.array([1, 0])
    np.testing.assert_array_equal(cep(p, label, reduction="none"), [0.0, INF])
    np.testing.assert_array_equal(
        cep_grad(p, label, reduction="none"), [[0.0, -1.0, 0.0], [-INF, 0.0, 0.0]]
    )
    clip = cep_outputs(p, label, reduction="none", choices={"prob_clip": "clip_1e-7"})
    # 1 - 1e-7 is rounded in float64 before the log: 5e-10 relative from log1p(-1e-7)
    np.testing.assert_allclose(clip["loss"], [-math.log1p(-1e-7), -math.log(1e-7)], rtol=1e-9)
    np.testing.assert_array_equal(clip["grad"], np.zeros((2, 3)))  # clipped: no gradient


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["index", "probs"])
def test_on_softmax_it_is_cross_entropy_of_the_logits(shape: tuple[int, ...], kind: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 3.0, size=shape)
    p = oracle.softmax(x, axis=1)
    _, t, w = _draw(6, shape, kind, ignore=kind == "index")
    for reduction in ("none", "mean", "sum"):
        kw: dict[str, Any] = {"weight": w, "reduction": reduction, "label_smoothing": 0.1}
        np.testing.assert_allclose(cep(p, t, **kw), oracle.cross_entropy(x, t, **kw), rtol=1e-12)
        # chain rule through the softmax: dx_k = p_k (g_k - sum_c g_c p_c)
        g = cep_grad(p, t, **kw)
        dx = p * (g - np.sum(g * p, axis=1, keepdims=True))
        np.testing.assert_allclose(dx, oracle.cross_entropy_grad(x, t, **kw), rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("renorm", ["before_clip", "after_clip"])
def test_renormalised_loss_ignores_the_scale_of_p(renorm: str) -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(0.0, 2.0, size=(4, 3, 2))
    p = oracle.softmax(x, axis=1)
    scale = rng.uniform(0.3, 2.0, size=(4, 1, 2))
    _, t, w = _draw(10, (4, 3, 2), "probs")
    choices = {"prob_renormalise": renorm}
    out = cep_outputs(p * scale, t, weight=w, reduction="none", choices=choices)
    np.testing.assert_allclose(out["loss"], cep(p, t, weight=w, reduction="none"), rtol=1e-12)
    np.testing.assert_allclose(
        out["loss"], oracle.cross_entropy(x, t, weight=w, reduction="none"), rtol=1e-12
    )
    # the gradient of a scale-invariant loss is orthogonal to p: sum_c p_c dL/dp_c = 0
    assert np.allclose(np.sum(out["grad"] * p * scale, axis=1), 0.0, atol=1e-12)


def _fd(f: Callable[[np.ndarray], Any], x: np.ndarray, h: float = 1e-7) -> np.ndarray:
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (float(f(x + e)) - float(f(x - e))) / (2 * h)
    return g


CHOICES = [
    {},
    {"prob_renormalise": "before_clip"},
    {"prob_renormalise": "after_clip"},
    {"prob_renormalise": "before_clip", "prob_clip": "clip_1e-7"},
    {"prob_renormalise": "after_clip", "prob_clip": "clip_1e-7"},
    {"soft_weighting": "per_element", "probs_mean": "weights"},
    {"index_mean": "count"},
    {"smoothing_mass": "others"},
]


@pytest.mark.parametrize(
    "choices", CHOICES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "canonical"
)
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_gradient_matches_finite_differences(
    choices: dict[str, str], kind: str, reduction: str
) -> None:
    p, t, w = _draw(13, (3, 4, 2), kind)
    p = p * np.random.default_rng(1).uniform(0.5, 1.5, size=(3, 1, 2))  # rows not summing to 1
    kw: dict[str, Any] = {"weight": w, "reduction": reduction, "label_smoothing": 0.1}
    got = cep_outputs(p, t, **kw, choices=choices)["grad"]
    fd = _fd(lambda z: cep_outputs(z, t, **kw, choices=choices)["loss"], p)
    np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-7)


def test_canonical_choices_change_nothing_and_reductions_relate() -> None:
    p, t, w = _draw(17, (4, 3, 2), "index", ignore=True)
    kw: dict[str, Any] = {"weight": w, "label_smoothing": 0.1}
    for reduction in ("none", "mean", "sum"):
        out = cep_outputs(p, t, reduction=reduction, **kw)
        np.testing.assert_array_equal(out["loss"], cep(p, t, reduction=reduction, **kw))
        np.testing.assert_array_equal(out["grad"], cep_grad(p, t, reduction=reduction, **kw))
    none = cep(p, t, reduction="none", **kw)
    assert float(cep(p, t, reduction="sum", **kw)) == pytest.approx(none.sum(), rel=1e-15)
    valid = t != -100
    assert float(cep(p, t, **kw)) == pytest.approx(none.sum() / w[t[valid]].sum(), rel=1e-15)
    np.testing.assert_array_equal(cep(p, t, weight=np.ones(3)), cep(p, t))
    assert np.isnan(cep(p, np.full((4, 2), -100)))  # a mean over nothing


def test_magnitude_formula() -> None:
    p = np.array([[0.25, 0.75]])
    t = np.array([[0.5, 0.5]])
    loss_mag, grad_mag = cep_mag(p, t, reduction="sum")
    want = 0.5 * (math.log(4) + 1) + 0.5 * (-math.log(0.75) + 1)
    assert float(loss_mag) == pytest.approx(want, rel=1e-15)
    np.testing.assert_allclose(grad_mag, [[2.0, 0.5 / 0.75]], rtol=1e-15)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((np.array([[-0.1, 1.1]]), np.array([0])), {}, "probabilities"),
        ((np.zeros(3), np.array([0])), {}, "shape \\(N, C\\)"),
        ((np.full((1, 2), 0.5), np.array([2])), {}, "class indices"),
        ((np.full((1, 2), 0.5), np.array([0])), {"label_smoothing": 2.0}, "label_smoothing"),
        ((np.full((1, 2), 0.5), np.array([0])), {"weight": [1.0]}, "length C"),
    ],
)
def test_argument_errors(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cep(*args, **kwargs)


def test_option_table() -> None:
    names = {o.name for o in options.options_for(probs.LOSS)}
    assert {"prob_renormalise", "prob_clip", "index_mean", "soft_weighting"} <= names
    assert "logit_clip" not in names and "target_sum" not in names  # softmax-only options
    with pytest.raises(ValueError, match="no choice"):
        cep_outputs(np.full((1, 2), 0.5), np.array([0]), choices={"prob_clip": "-100"})


# ---------------------------------------------------------------- mutants the shipped cases catch


@pytest.fixture(scope="module")
def judged() -> list[Judged]:
    return judged_cases("cross_entropy_on_probs.yaml")


def _caught(judged: list[Judged], outputs: Callable[..., dict[str, np.ndarray]]) -> list[str]:
    return failing_ids(judged, outputs, skip_raising=True)


def _with(**changes: Any) -> Callable[..., dict[str, np.ndarray]]:
    def outputs(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
        new = {k: (v(kw) if callable(v) else v) for k, v in changes.items()}
        return cep_outputs(x, t, **{**kw, **new})

    return outputs


def _log_of_softmax(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
    """A classic mistake: treating the probabilities as logits (softmax applied again)."""
    loss = oracle.cross_entropy(x, t, **kw)
    return {"loss": loss, "grad": oracle.cross_entropy_grad(x, t, **kw)}


def _grad_sign(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
    out = cep_outputs(x, t, **kw)
    return {"loss": out["loss"], "grad": -out["grad"]}


MUTANTS: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    "weights ignored": _with(weight=None),
    "label smoothing ignored": _with(label_smoothing=0.0),
    "label smoothing halved": _with(label_smoothing=lambda kw: kw["label_smoothing"] / 2),
    "probabilities taken as logits (softmax applied again)": _log_of_softmax,
    "gradient sign flipped": _grad_sign,
}


@pytest.mark.parametrize("name", list(MUTANTS))
def test_every_mutant_is_caught_by_a_shipped_case(name: str, judged: Any) -> None:
    assert _caught(judged, MUTANTS[name]), f"no shipped case notices: {name}"


def test_the_true_oracle_passes_every_shipped_case(judged: Any) -> None:
    assert not _caught(judged, cep_outputs)


CATCHER = {
    ("prob_renormalise", "before_clip"): "cep-rows-not-summing-probs[reduction=none]",
    ("prob_renormalise", "after_clip"): "cep-rows-not-summing-to-one[reduction=none]",
    ("prob_clip", "clip_1e-7"): "cep-exact-zero-and-one[reduction=none,dtype=float64]",
    ("prob_clip", "inf_to_1e20"): "cep-exact-zero-and-one[reduction=none,dtype=float64]",
    ("index_mean", "count"): "cep-weighted-ignore[reduction=mean]",
    ("index_mean", "elements"): "cep-seg-nchw-ignore[reduction=mean]",
    ("index_mean", "batch"): "cep-seg-nchw[reduction=mean]",
    ("probs_mean", "weights"): "cep-weighted-probs[reduction=mean]",
    ("probs_mean", "batch"): "cep-volume-probs[reduction=mean]",
    ("empty_mean", "zero"): "cep-all-ignored[reduction=mean]",
    ("soft_weighting", "per_element"): "cep-weighted-probs[reduction=sum]",
    ("smoothing_mass", "others"): "cep-smoothing[label_smoothing=0.1,reduction=none]",
    ("smoothing_mass", "last_axis"): "cep-seg-smoothing-nchw[reduction=none]",
    ("zero_log_zero", "nan"): "cep-probs-zero-meets-zero[reduction=none]",
    ("none_shape", "keepdim"): "cep-hard-2d[reduction=none,dtype=float32]",
}
ALTERNATIVES = [
    (o.name, c)
    for o in options.options_for(probs.LOSS)
    for c in o.choices
    if c != o.canonical and o.name != "precision"  # a comparison option, not a value
]


def test_the_catcher_table_covers_every_alternative() -> None:
    assert sorted(CATCHER) == sorted(ALTERNATIVES)


@pytest.mark.parametrize(("option", "choice"), ALTERNATIVES)
def test_every_option_choice_is_caught(option: str, choice: str, judged: Any) -> None:
    def outputs(x: Any, t: Any, **kw: Any) -> dict[str, np.ndarray]:
        return cep_outputs(x, t, **kw, choices={option: choice})

    assert CATCHER[(option, choice)] in _caught(judged, outputs)

"""Tests of the Dice and Tversky oracle (conformance/oracle/dice.py).

Sections: hand numbers; measured framework numbers (each option choice that reproduces a
framework); an independent 50-digit mpmath computation on hypothesis-generated cases (every
option choice); finite differences; invariants; magnitudes (against float32 forms written the
way Keras and optax compute); argument errors; mutants (deliberately wrong oracles the tests
must reject). No deep-learning framework is imported: the framework numbers below were
measured once (float64, CPU; keras 3.15.1 on TensorFlow 2.21.0, optax 0.2.8 on jax 0.10.2 with
jax_enable_x64, paddlepaddle 3.3.1) and are written down. The frameworks take the classes
last: each call was made on np.moveaxis(P, 1, -1) and its gradient moved back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import mpmath as mp
import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conformance.compare import compare
from conformance.oracle import dice as D

SETTINGS = settings(max_examples=60, deadline=None)
EPS32 = float(np.finfo(np.float32).eps)
INF, NAN = math.inf, math.nan
DEN = {"dice_smooth": "denominator_only"}
KERAS_EPS = 1e-7  # keras.config.epsilon()
KERAS_TVERSKY = {**DEN, "tversky_weights": "alpha_fn"}
PADDLE = {**DEN, "dice_axis": "sample"}
CLASS_MEAN = {"dice_class_reduce": "mean"}  # optax's reduction acts over the classes
GENERALIZED = {"class_weighting": "inverse_square_frequency"}


def _value(loss: str) -> Callable[..., Any]:
    f: Callable[..., Any] = getattr(D, loss)
    return f


def _grad(loss: str) -> Callable[..., Any]:
    f: Callable[..., Any] = getattr(D, f"{loss}_grad")
    return f


def _magnitude(loss: str) -> Callable[..., Any]:
    f: Callable[..., Any] = getattr(D, f"{loss}_magnitude")
    return f


# --------------------------------------------------------------------------------------------
# Hand numbers
# --------------------------------------------------------------------------------------------

# One sample, one class, four positions: I = 1.5, P = 1.75, T = 2, FP = 0.25, FN = 0.5.
P1 = np.array([[[1.0, 0.5, 0.25, 0.0]]])
T1 = np.array([[[1.0, 1.0, 0.0, 0.0]]])


def test_worked_example() -> None:
    # Dice, smooth 0: 1 - 3 / 3.75 = 0.2; gradient (N - 2 t D) / D^2: -0.32 (t = 1), 16/75.
    assert float(D.dice_loss(P1, T1, smooth=0.0)) == pytest.approx(0.2, rel=1e-15)
    np.testing.assert_allclose(
        D.dice_loss_grad(P1, T1, smooth=0.0), [[[-0.32, -0.32, 16 / 75, 16 / 75]]], rtol=1e-15
    )
    # smooth 1 in both: 1 - 4 / 4.75; in the denominator only: 1 - 3 / 4.75.
    assert float(D.dice_loss(P1, T1)) == pytest.approx(0.75 / 4.75, rel=1e-15)
    assert float(D.dice_loss(P1, T1, choices=DEN)) == pytest.approx(1.75 / 4.75, rel=1e-15)
    # Tversky alpha 0.3 (FP), beta 0.7 (FN): 1 - 1.5 / (1.5 + 0.075 + 0.35) = 17/77;
    # alpha on FN (Keras): 1 - 1.5 / (1.5 + 0.15 + 0.175) = 13/73.
    kw: dict[str, Any] = {"alpha": 0.3, "beta": 0.7, "smooth": 0.0}
    assert float(D.tversky_loss(P1, T1, **kw)) == pytest.approx(17 / 77, rel=1e-15)
    swapped = {"tversky_weights": "alpha_fn"}
    assert float(D.tversky_loss(P1, T1, **kw, choices=swapped)) == pytest.approx(13 / 73, 1e-15)
    # Tversky gradient (N e - t D) / D^2, e = t + alpha (1 - t) - beta t, N = 1.5, D = 1.925.
    e = np.array([0.3, 0.3, 0.3, 0.3]) + np.array([1.0, 1.0, 0.0, 0.0]) * (1 - 0.3 - 0.7)
    want = (1.5 * e - np.array([1.0, 1.0, 0.0, 0.0]) * 1.925) / 1.925**2
    np.testing.assert_allclose(D.tversky_loss_grad(P1, T1, **kw)[0, 0], want, rtol=1e-15)


def test_empty_terms_and_special_values() -> None:
    z = np.zeros((1, 1, 3))
    # An empty term (P = T = 0): 0 with the smoothing in both, 1 in the denominator only,
    # NaN at smooth 0; gradient 1 / s per element (Dice; Tversky 0.5 / s at alpha 1/2), 0, NaN.
    assert float(D.dice_loss(z, z, smooth=1e-5)) == 0.0
    np.testing.assert_allclose(D.dice_loss_grad(z, z, smooth=1e-5), np.full(z.shape, 1e5), 1e-15)
    assert float(D.dice_loss(z, z, smooth=1e-5, choices=DEN)) == 1.0
    np.testing.assert_array_equal(D.dice_loss_grad(z, z, smooth=1e-5, choices=DEN), 0 * z)
    assert np.isnan(D.dice_loss(z, z, smooth=0.0))
    assert np.isnan(D.dice_loss_grad(z, z, smooth=0.0)).all()
    np.testing.assert_allclose(D.tversky_loss_grad(z, z, smooth=2.0), np.full(z.shape, 0.25))
    for choices in ({}, DEN):
        assert np.isnan(D.tversky_loss(z, z, smooth=0.0, choices=choices))
    # A NaN or infinite p or t makes its whole term NaN, value and gradient; others unharmed.
    p = np.array([[[0.5, 0.5]], [[0.2, 0.9]]]) * np.ones((2, 1, 2))
    t = np.ones((2, 1, 2))
    for bad in (NAN, INF, -INF):
        for which in ("p", "t"):
            pb, tb = p.copy(), t.copy()
            (pb if which == "p" else tb)[0, 0, 1] = bad
            for loss in D.LOSSES:
                v = _value(loss)(pb, tb, reduction="none")
                assert np.isnan(v[0, 0]) and np.isfinite(v[1, 0])
                g = _grad(loss)(pb, tb, reduction="none")
                assert np.isnan(g[0]).all() and np.isfinite(g[1]).all()
                _, g_mag = _magnitude(loss)(pb, tb, reduction="none")
                assert np.isfinite(g_mag).all()
    # No samples: 'mean' is NaN, 'sum' 0, 'none' (0, C); gradient empty.
    e = np.zeros((0, 3, 2))
    assert np.isnan(D.dice_loss(e, e)) and float(D.dice_loss(e, e, reduction="sum")) == 0.0
    assert D.dice_loss(e, e, reduction="none").shape == (0, 3)
    assert D.dice_loss_grad(e, e).shape == e.shape
    assert float(D.dice_loss_magnitude(e, e)[0]) == 0.0
    # No positions: every term is empty.
    h = np.zeros((2, 3, 0))
    np.testing.assert_array_equal(D.dice_loss(h, h, reduction="none"), np.zeros((2, 3)))
    # One term over everything (dice_axis=batch): 0-d, even for an empty batch.
    v = D.dice_loss(e, e, reduction="none", choices={"dice_axis": "batch"})
    assert v.shape == () and float(v) == 0.0


def test_index_target_is_its_one_hot() -> None:
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(3), (2, 2, 2)).transpose(0, 3, 1, 2)
    idx = rng.integers(0, 3, (2, 2, 2))
    onehot = np.moveaxis(np.eye(3)[idx], -1, 1)
    for loss in D.LOSSES:
        for red in D.REDUCTIONS:
            np.testing.assert_array_equal(
                _value(loss)(p, idx, reduction=red), _value(loss)(p, onehot, reduction=red)
            )
            np.testing.assert_array_equal(
                _grad(loss)(p, idx.astype(np.int32), reduction=red),
                _grad(loss)(p, onehot, reduction=red),
            )


# --------------------------------------------------------------------------------------------
# Measured framework numbers (float64). P: softmax probabilities, shape (N, C, H, W) =
# (2, 3, 2, 2); IDX the class indices; class 2 is absent from sample 0 (an empty target).
# --------------------------------------------------------------------------------------------

# fmt: off
P = np.array([
    0.1578824036715004, 0.5344755965461854, 0.4624097390537693, 0.09646614014176197,
    0.14519095518526168, 0.43157793160194324, 0.15179434973316705, 0.6846124881913142,
    0.696926641143238, 0.03394647185187135, 0.38579591121306367, 0.21892137166692388,
    0.3092719860256091, 0.07801680682317481, 0.08714115600988637, 0.6267358790143528,
    0.11822461594769326, 0.5977814673258085, 0.7745535565712109, 0.10419168621519563,
    0.5725033980266976, 0.3242017258510166, 0.13830528741890252, 0.26907243477045156,
]).reshape(2, 3, 2, 2)
# fmt: on
IDX = np.array([[[0, 1], [1, 0]], [[2, 0], [1, 2]]])
T = np.moveaxis(np.eye(3)[IDX], -1, 1)
# Z: P with class 2 of sample 0 set to exactly 0 (and class 0 raised to keep the sum 1):
# that term is empty (P = T = 0).
Z = P.copy()
Z[0, 2] = 0.0
Z[0, 0] = 1.0 - Z[0, 1]
# fmt: off
SOFT = np.array([
    0.21399806733649934, 0.1037696332272935, 0.008395115750554145, 0.012363108363564095,
    0.4827769801340756, 0.027368935706044355, 0.7302519372435117, 0.983065116420722,
    0.3032249525294251, 0.8688614310666621, 0.26135294700593426, 0.004571775215714021,
    0.22428508510973283, 0.47043709353329727, 0.5614959611989787, 0.41065900733489386,
    0.6528366827943102, 0.25513064844430394, 0.10411073009372454, 0.13622118473242797,
    0.12287823209595704, 0.27443225802239885, 0.3343933087072967, 0.4531198079326782,
]).reshape(2, 3, 2, 2)
# fmt: on
# Binary, C = 1: sigmoid probabilities; sample 1's mask is all zero.
BP = np.array(
    [
        [[[0.3287428474370639, 0.6852826409380052], [0.6388638298244447, 0.4913341658800312]]],
        [[[0.2827835383131316, 0.8449254674395491], [0.2920167419392259, 0.15436201176771822]]],
    ]
)
BM = np.array([[[[1.0, 0.0], [1.0, 1.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])


_SAMPLE = {"dice_axis": "sample"}


def _close(got: Any, want: Any, rtol: float = 1e-14) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(want, dtype=float), rtol=rtol, atol=0)


def test_keras_dice_measured() -> None:
    keras_kw: dict[str, Any] = {"smooth": KERAS_EPS, "reduction": "none"}
    # keras.losses.dice(y_true, y_pred) (axis=None): one Dice of the whole batch.
    batch = {**DEN, "dice_axis": "batch"}
    _close(D.dice_loss(P, T, **keras_kw, choices=batch), 0.6835166243105326)
    # keras.losses.Dice(dtype="float64")(y_true, y_pred): the same (a 0-d value is not reduced).
    # keras.losses.dice(..., axis=(1, 2)): per (sample, class); the empty class costs 1 and has
    # gradient 0; gradient of the sum:
    per_class = [
        [0.8435372259125028, 0.6581645298718894, 1.0],
        [0.9257395089190791, 0.40298438702673023, 0.4905843185329849],
    ]
    _close(D.dice_loss(P, T, **keras_kw, choices=DEN), per_class)
    # fmt: off
    g_want = np.array([
        -0.5670269311854401, 0.04812411997359096, 0.04812411997359096, -0.5670269311854401,
        0.10015173190117907, -0.4858128074934306, -0.4858128074934306, 0.10015173190117907,
        0.0, 0.0, 0.0, 0.0,
        0.03534251631240456, -0.9165099640029261, 0.03534251631240456, 0.03534251631240456,
        0.23008585985434032, 0.23008585985434032, -0.5407008829193096, 0.23008585985434032,
        -0.45113404925480594, 0.15417763106503887, 0.15417763106503887, -0.45113404925480594,
    ]).reshape(P.shape)
    # fmt: on
    np.testing.assert_allclose(
        D.dice_loss_grad(P, T, **keras_kw, choices=DEN), g_want, rtol=1e-14, atol=1e-17
    )
    # keras.losses.Dice(axis=(1, 2), dtype="float64"): 'sum_over_batch_size' = mean over N * C;
    # reduction="sum": the sum; without dtype= it computes in float32: 0.7201683521270752.
    _close(D.dice_loss(P, T, smooth=KERAS_EPS, choices=DEN), 0.7201683283771977)
    _close(D.dice_loss(P, T, smooth=KERAS_EPS, reduction="sum", choices=DEN), 4.321009970263186)
    p32 = P.astype(np.float32).astype(np.float64)
    _close(D.dice_loss(p32, T, smooth=KERAS_EPS, choices=DEN), 0.7201683521270752, rtol=1e-7)
    # axis=(1, 2, 3): per sample (classes summed too); axis=(0, 1, 2): per class.
    sample = {**DEN, "dice_axis": "sample"}
    _close(D.dice_loss(P, T, **keras_kw, choices=sample), [0.7905697963307844, 0.576463456246323])
    _close(
        D.dice_loss(P, T, **keras_kw, choices={**DEN, "dice_axis": "batch_class"}),
        [0.8758069790735785, 0.5479552917908055, 0.6372262567757125],
    )
    # Soft targets, axis=(1, 2).
    _close(
        D.dice_loss(P, SOFT, **keras_kw, choices=DEN),
        [
            [0.8813362064806496, 0.5238606296075332, 0.7529204733510033],
            [0.7020485422612344, 0.7633830143996572, 0.7368402366399641],
        ],
    )
    # The binary example, axis=(1, 2, 3): an all-zero mask costs 1.
    _close(D.dice_loss(BP, BM, **keras_kw, choices=sample), [0.43278482387246864, 1.0])
    # (N, C) inputs: axis=None, and axis=1 per sample.
    p2, t2 = P[:, :, 0, 0], T[:, :, 0, 0]
    _close(D.dice_loss(p2, t2, **keras_kw, choices=batch), 0.6348071082807234)
    _close(
        D.dice_loss(p2, t2, **keras_kw, choices=sample), [0.8421176042226194, 0.4274966305984709]
    )
    # keras.config.set_epsilon(0.0), axis=(1, 2), on Z: the empty term is NaN, value and
    # gradient (0 / 0); the other terms as before.
    got = D.dice_loss(Z, T, smooth=0.0, reduction="none", choices=DEN)
    _close(got[1], [0.9257395053848272, 0.4029843640181434, 0.4905843031152213])
    _close(got[0, :2], [0.4897574066973085, 0.658164519856716])
    assert np.isnan(got[0, 2])
    g0 = D.dice_loss_grad(Z, T, smooth=0.0, reduction="none", choices=DEN)
    assert np.isnan(g0[0, 2]).all() and np.isfinite(np.delete(g0[0], 2, axis=0)).all()
    _close(g0[0, 0, 0], [-0.32479059961451584, 0.11124092894764738], rtol=1e-13)


def test_keras_docstring_example() -> None:
    # keras/src/losses/losses.py:2578: dice(y_true, y_pred, axis=(1, 2, 3)) -> [0.5, 0.75757575]
    # (measured float64: [0.5000000124999997, 0.7575757649219464]); Dice()(...) -> 0.6164384
    # (float32, axis=None: one term).
    yt = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]])
    yp = np.array([[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]])
    yt, yp = np.moveaxis(yt, -1, 1), np.moveaxis(yp, -1, 1)  # classes on axis 1
    got = D.dice_loss(yp, yt, smooth=KERAS_EPS, reduction="none", choices={**DEN, **_SAMPLE})
    _close(got, [0.5000000124999997, 0.7575757649219464])
    batch = D.dice_loss(yp, yt, smooth=KERAS_EPS, choices={**DEN, "dice_axis": "batch"})
    assert float(batch) == pytest.approx(0.6164384, rel=1e-7)


def test_keras_tversky_measured() -> None:
    # keras.losses.tversky(y_true, y_pred, alpha=0.3, beta=0.7, axis=(1, 2)): alpha weighs
    # sum((1 - p) t), the false negatives (tversky_weights=alpha_fn), epsilon 1e-7 in the
    # denominator only.
    kw: dict[str, Any] = {"alpha": 0.3, "beta": 0.7, "smooth": KERAS_EPS, "reduction": "none"}
    want = [
        [0.8276612373535892, 0.6329198344423177, 1.0],
        [0.9271426708748521, 0.4531248165137143, 0.44371792892536777],
    ]
    _close(D.tversky_loss(P, T, **kw, choices=KERAS_TVERSKY), want)
    # fmt: off
    g_want = np.array([
        -0.5958292742588984, 0.08174001732288702, 0.08174001732288702, -0.5958292742588984,
        0.16168662204215345, -0.4675516487882325, -0.4675516487882325, 0.16168662204215345,
        0.0, 0.0, 0.0, 0.0,
        0.0476273438554951, -0.8862397559641514, 0.0476273438554951, 0.0476273438554951,
        0.2702856692647098, 0.2702856692647098, -0.435766454370471, 0.2702856692647098,
        -0.4036086090142599, 0.25739192046353554, 0.25739192046353554, -0.4036086090142599,
    ]).reshape(P.shape)
    # fmt: on
    np.testing.assert_allclose(
        D.tversky_loss_grad(P, T, **kw, choices=KERAS_TVERSKY), g_want, rtol=1e-14, atol=1e-17
    )
    # Not Salehi's (alpha on FP): documented "alpha: false positives" is not what it computes.
    salehi = D.tversky_loss(P, T, **kw, choices=DEN)
    assert np.max(np.abs(salehi - np.array(want))) > 1e-2
    # Soft targets; axis=None; keras.losses.Tversky(alpha=0.3, beta=0.7, axis=(1, 2),
    # dtype="float64") (mean over N * C).
    _close(
        D.tversky_loss(P, SOFT, **kw, choices=KERAS_TVERSKY),
        [
            [0.9034976603970754, 0.477272645343106, 0.7492162079200473],
            [0.6755229021600055, 0.7778459199061054, 0.7417892504296271],
        ],
    )
    batch = {**KERAS_TVERSKY, "dice_axis": "batch"}
    _close(D.tversky_loss(P, T, **kw, choices=batch), 0.6835166262885537)
    mean_kw = {**kw, "reduction": "mean"}
    _close(D.tversky_loss(P, T, **mean_kw, choices=KERAS_TVERSKY), 0.7140944146849736)
    # tversky(axis=(1, 2)) at the default alpha = beta = 0.5 is Dice with epsilon 2e-7.
    default = [
        [0.8435372307249147, 0.6581645398870624, 1.0],
        [0.9257395124533305, 0.4029844100353155, 0.4905843339507475],
    ]
    _close(D.tversky_loss(P, T, smooth=KERAS_EPS, reduction="none", choices=KERAS_TVERSKY), default)
    _close(D.dice_loss(P, T, smooth=2 * KERAS_EPS, reduction="none", choices=DEN), default)
    # set_epsilon(0.0) on Z: the empty term is NaN.
    got = D.tversky_loss(Z, T, **{**kw, "smooth": 0.0}, choices=KERAS_TVERSKY)
    _close(got[1], [0.9271426640709453, 0.4531247779014731, 0.44371789215509094])
    _close(got[0, :2], [0.5145977582472467, 0.6329198113442274])
    assert np.isnan(got[0, 2])


def test_optax_dice_loss_measured() -> None:
    # optax.losses.dice_loss(p, t, apply_softmax=False, reduction="none"): per (sample, class),
    # smooth=1 in numerator and denominator of the Tversky form, alpha = beta = 0.5. The same
    # numbers are dice_loss(smooth=2).
    none = [
        [0.5222652151408553, 0.414993208475809, 0.4004059963497715],
        [0.4742876284121075, 0.22757362449343854, 0.30560065283947746],
    ]
    _close(D.tversky_loss(P, T, reduction="none"), none)
    _close(D.dice_loss(P, T, smooth=2.0, reduction="none"), none)
    # fmt: off
    g_want = np.array([
        -0.28988714844880537, 0.09097572034108822, 0.09097572034108822, -0.28988714844880537,
        0.10807090352777145, -0.2613979815981632, -0.2613979815981632, 0.10807090352777145,
        0.1797564846066551, 0.1797564846066551, 0.1797564846066551, 0.1797564846066551,
        0.12818608016651237, -0.35948013084287145, 0.12818608016651237, 0.12818608016651237,
        0.16811059417418625, 0.16811059417418625, -0.267168675164431, 0.16811059417418625,
        -0.24615012448524806, 0.13091789236953824, 0.13091789236953824, -0.24615012448524806,
    ]).reshape(P.shape)
    # fmt: on
    _close(D.tversky_loss_grad(P, T, reduction="none"), g_want, rtol=1e-13)
    # reduction="mean" / "sum" (the default "mean"; with apply_softmax=True on the logits of P
    # the same values): over the classes only, one value per sample.
    mean = [0.44588813998881194, 0.33582063524834116]
    _close(D.tversky_loss(P, T, reduction="none", choices=CLASS_MEAN), mean)
    _close(
        D.tversky_loss(P, T, reduction="none", choices={"dice_class_reduce": "sum"}),
        [1.3376644199664358, 1.0074619057450236],
    )
    # smooth=0 and smooth=1e-5.
    _close(
        D.tversky_loss(P, T, smooth=0.0, reduction="none"),
        [
            [0.8435372211000907, 0.658164519856716, 1.0],
            [0.9257395053848272, 0.4029843640181434, 0.4905843031152213],
        ],
    )
    _close(
        D.tversky_loss(P, T, smooth=1e-5, reduction="none"),
        [
            [0.8435320321037687, 0.658160663268504, 0.9999850255732796],
            [0.925730693793838, 0.4029812578919121, 0.4905813335690179],
        ],
    )
    # On Z: smooth=0 gives NaN for the empty term; smooth=1 gives 0, gradient 0.5 = N e / D^2.
    assert np.isnan(D.tversky_loss(Z, T, smooth=0.0, reduction="none")[0, 2])
    z1 = D.tversky_loss(Z, T, reduction="none")
    _close(z1[0], [0.34104920188464216, 0.414993208475809, 0.0])
    np.testing.assert_allclose(D.tversky_loss_grad(Z, T, reduction="none")[0, 2], 0.5, rtol=1e-15)
    _close(
        D.tversky_loss_grad(Z, T, reduction="none")[0, 0, 0],
        [-0.20359571560392697, 0.10004074354731661],
        rtol=1e-13,
    )
    # alpha=0.3, beta=0.7: alpha weighs FP (Salehi's, canonical), one-hot and soft targets.
    kw: dict[str, Any] = {"alpha": 0.3, "beta": 0.7, "reduction": "none"}
    _close(
        D.tversky_loss(P, T, **kw),
        [
            [0.5480427943763027, 0.4393063766360291, 0.28605958746332594],
            [0.4690487155265134, 0.1853962231854721, 0.34022662836469963],
        ],
    )
    _close(
        D.tversky_loss_grad(P, T, **kw)[1, 2],
        [[-0.2873534131124138, 0.07091224170625192], [0.07091224170625192, -0.2873534131124138]],
        rtol=1e-13,
    )
    _close(
        D.tversky_loss(P, SOFT, **kw),
        [
            [0.32128172916971, 0.3739806807737075, 0.4422554266734888],
            [0.43440984442303776, 0.419636336265064, 0.40219345869287093],
        ],
    )
    # class_weights=[0.5, 2, 1.25] (reduction "mean": divided by C, not by the weights' sum).
    cw = np.array([0.5, 2.0, 1.25])
    _close(
        D.tversky_loss(P, T, weight=cw, reduction="none", choices=CLASS_MEAN),
        [0.5305421733197533, 0.3580972930807592],
    )
    # axis=(0, 1, 2): per class over the batch.
    _close(
        D.tversky_loss(P, T, reduction="none", choices={"dice_axis": "batch_class"}),
        [0.6375699353461264, 0.411102068498707, 0.4452811860788284],
    )
    # (N, C) inputs: the default axis (1..ndim-2) is empty, one term per element.
    _close(
        D.tversky_loss(P[:, :, 0, 0], T[:, :, 0, 0], reduction="none"),
        [
            [0.26667161365775205, 0.06768206570809576, 0.2584151272456592],
            [0.1339261844846107, 0.05581306866967917, 0.11966303578869475],
        ],
    )


def test_optax_binary_and_generalized_measured() -> None:
    # optax.losses.binary_dice_loss(logits, masks) (apply_sigmoid=True; the oracle is given the
    # sigmoid BP): per sample over the positions; smooth=1 and smooth=0 (the all-zero mask: 1).
    _close(
        D.tversky_loss(BP, BM, reduction="none", choices=CLASS_MEAN),
        [0.3116282410198573, 0.44041665045673495],
    )
    _close(
        D.tversky_loss(BP, BM, smooth=0.0, reduction="none", choices=CLASS_MEAN),
        [0.43278481284621406, 1.0],
    )
    # optax.losses.multiclass_generalized_dice_loss(p, t, apply_softmax=False) (and on the
    # logits of P with the default apply_softmax=True): w_c = C v_c / sum v, v = 1/(F^2 + 1e-7),
    # a mean over N * C of the weighted per-class losses.
    _close(D.tversky_loss(P, T, choices=GENERALIZED), 0.37972172221975536)
    _close(D.dice_loss(P, T, smooth=2.0, choices=GENERALIZED), 0.37972172221975536)
    _close(D.tversky_loss(P, SOFT, choices=GENERALIZED), 0.40451793525812363)


def test_paddle_dice_loss_measured() -> None:
    # paddle.nn.functional.dice_loss(p, label) with label = IDX[..., None] (int64): per sample
    # over classes and positions together, epsilon 1e-5 in the denominator only (its docstring
    # says numerator and denominator), then a mean over the batch.
    kw: dict[str, Any] = {"smooth": 1e-5, "choices": PADDLE}
    _close(D.dice_loss(P, IDX, **kw), 0.6835170179362391)
    # fmt: off
    g_want = np.array([
        -0.11191048858066037, 0.013089355169534947, 0.013089355169534947, -0.11191048858066037,
        0.013089355169534947, -0.11191048858066037, -0.11191048858066037, 0.013089355169534947,
        0.013089355169534947, 0.013089355169534947, 0.013089355169534947, 0.013089355169534947,
        0.02647096813803103, -0.0985288756121643, 0.02647096813803103, 0.02647096813803103,
        0.02647096813803103, 0.02647096813803103, -0.0985288756121643, 0.02647096813803103,
        -0.0985288756121643, 0.02647096813803103, 0.02647096813803103, -0.0985288756121643,
    ]).reshape(P.shape)
    # fmt: on
    np.testing.assert_allclose(D.dice_loss_grad(P, IDX, **kw), g_want, rtol=1e-12)
    # epsilon=0 and epsilon=1; on Z; on (N, C) inputs with label (N, 1).
    _close(D.dice_loss(P, IDX, smooth=0.0, choices=PADDLE), 0.6835166223325115)
    _close(D.dice_loss(P, IDX, smooth=1.0, choices=PADDLE), 0.7186814420733436)
    _close(D.dice_loss(Z, IDX, **kw), 0.569036159436042)
    _close(D.dice_loss(P[:, :, 0, 0], IDX[:, 0, 0], **kw), 0.6348089251062755)
    # C = 1: one_hot(label, 1) is all ones, so a binary mask cannot be given (label 0 -> t = 1).
    _close(D.dice_loss(BP, np.zeros((2, 2, 2), dtype=np.int64), **kw), 0.3686252724693531)
    # No positions (input (2, 0, 3), label (2, 0, 1)): 1 - 0 / epsilon = 1.
    h = np.zeros((2, 3, 0))
    assert float(D.dice_loss(h, np.zeros((2, 0), dtype=np.int64), **kw)) == 1.0
    # float32: 0.6835169792175293.
    p32 = P.astype(np.float32).astype(np.float64)
    eps32 = float(np.float32(1e-5))
    _close(D.dice_loss(p32, IDX, smooth=eps32, choices=PADDLE), 0.6835169792175293, rtol=1e-7)


def test_keras_paddle_agree_where_they_should() -> None:
    # Keras axis=(1, 2, 3) with epsilon 1e-7 and Paddle with epsilon 0 differ by 1e-7 only.
    keras = D.dice_loss(P, T, smooth=KERAS_EPS, choices=PADDLE)
    paddle0 = D.dice_loss(P, IDX, smooth=0.0, choices=PADDLE)
    assert abs(float(keras) - float(paddle0)) < 1e-7


# --------------------------------------------------------------------------------------------
# Random cases against an independent 50-digit mpmath computation
# --------------------------------------------------------------------------------------------

CLASS_AXIS = {"sample_class": 1, "batch_class": 0}
SHAPES = [(1, 1), (2, 3), (1, 2, 3), (2, 3, 2), (3, 1, 4), (2, 2, 2, 2), (2, 3, 2, 2), (1, 4, 1)]


@dataclass(frozen=True)
class Case:
    loss: str
    p: np.ndarray
    t: np.ndarray
    smooth: float
    alpha: float
    beta: float
    weight: np.ndarray | None
    reduction: str
    choices: dict[str, str]
    grad_output: np.ndarray

    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "smooth": self.smooth,
            "weight": self.weight,
            "reduction": self.reduction,
            "choices": self.choices,
        }
        if self.loss == D.TVERSKY:
            kw.update(alpha=self.alpha, beta=self.beta)
        return kw

    def opt(self) -> dict[str, str]:
        return {**D.canonical_choices(self.loss), **self.choices}

    def term_axes(self) -> tuple[tuple[int, ...], int | None]:
        """(axes summed into a term, class axis of the term array or None)."""
        nd = self.p.ndim
        axis = self.opt()["dice_axis"]
        spatial = tuple(range(2, nd))
        summed = {
            "sample_class": spatial,
            "sample": (1, *spatial),
            "batch_class": (0, *spatial),
            "batch": tuple(range(nd)),
        }[axis]
        return summed, CLASS_AXIS.get(axis)

    def values_shape(self) -> tuple[int, ...]:
        summed, cls = self.term_axes()
        shape = tuple(n for k, n in enumerate(self.p.shape) if k not in summed)
        if cls is not None and self.opt()["dice_class_reduce"] != "none":
            shape = shape[:cls] + shape[cls + 1 :]
        return shape

    def rounded(self) -> Case:
        def r(a: np.ndarray) -> np.ndarray:
            out: np.ndarray = a.astype(np.float32).astype(np.float64)
            return out

        w = None if self.weight is None else r(self.weight)
        return replace(
            self,
            p=r(self.p),
            t=r(self.t),
            smooth=float(np.float32(self.smooth)),
            alpha=float(np.float32(self.alpha)),
            beta=float(np.float32(self.beta)),
            weight=w,
            grad_output=r(self.grad_output),
        )


# Values in [0, 1], exact 0 and 1 included; none below 1e-6 (float32 products would underflow).
unit = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(1e-6, 1.0))


@st.composite
def targets(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    kind = draw(st.sampled_from(["onehot", "soft", "binary"]))
    if kind == "soft":
        out: np.ndarray = draw(arrays(np.float64, shape, elements=unit))
        return out
    if kind == "binary":
        return draw(arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0])))
    c = shape[1]
    idx = draw(arrays(np.int64, shape[:1] + shape[2:], elements=st.integers(0, max(c - 2, 0))))
    return np.moveaxis(np.eye(c)[idx], -1, 1)  # class C - 1 empty when C > 1


@st.composite
def cases(draw: st.DrawFn, canonical: bool = False) -> Case:
    loss = draw(st.sampled_from(D.LOSSES))
    shape = draw(st.sampled_from(SHAPES))
    p = draw(arrays(np.float64, shape, elements=unit))
    t = draw(targets(shape))
    smooth = draw(st.sampled_from([0.0, 1e-7, 1e-5, 0.5, 1.0, 2.5]))
    alpha = draw(st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.01, 1.5)))
    beta = draw(st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.01, 1.5)))
    choices: dict[str, str] = {}
    if not canonical:
        choices["dice_axis"] = draw(st.sampled_from(D.OPTION_CHOICES["dice_axis"]))
        choices["dice_smooth"] = draw(st.sampled_from(D.OPTION_CHOICES["dice_smooth"]))
        if choices["dice_axis"] in CLASS_AXIS:
            for name in ("dice_class_reduce", "class_weighting"):
                choices[name] = draw(st.sampled_from(D.OPTION_CHOICES[name]))
        if loss == D.TVERSKY:
            choices["tversky_weights"] = draw(st.sampled_from(D.OPTION_CHOICES["tversky_weights"]))
    weight = None
    if choices.get("dice_axis", "sample_class") in CLASS_AXIS and draw(st.booleans()):
        weight = draw(arrays(np.float64, (shape[1],), elements=st.floats(0.0, 3.0)))
    reduction = draw(st.sampled_from(D.REDUCTIONS))
    case = Case(loss, p, t, smooth, alpha, beta, weight, reduction, choices, np.zeros(()))
    gshape = case.values_shape() if reduction == "none" else ()
    g = draw(arrays(np.float64, gshape, elements=st.floats(-2.0, 2.0)))
    return replace(case, grad_output=g)


class MpRef:
    """One case in mpmath, term by term, from the definitions (1 - N / D)."""

    def __init__(self, case: Case) -> None:
        self.case = case
        opt = case.opt()
        summed, cls = case.term_axes()
        nd = case.p.ndim
        kept = [a for a in range(nd) if a not in summed]
        idx = np.arange(case.p.size).reshape(case.p.shape)
        groups = np.transpose(idx, kept + list(summed))
        self.term_shape = tuple(case.p.shape[a] for a in kept)
        groups = groups.reshape((*self.term_shape, -1))
        p = [mp.mpf(float(v)) for v in case.p.ravel()]
        t = [mp.mpf(float(v)) for v in case.t.ravel()]
        s = mp.mpf(case.smooth)
        s_n = s if opt["dice_smooth"] == "numerator_and_denominator" else mp.mpf(0)
        a, b = mp.mpf(case.alpha), mp.mpf(case.beta)
        if opt.get("tversky_weights") == "alpha_fn":
            a, b = b, a
        self.values = np.empty(self.term_shape, dtype=object)
        self.deriv: dict[int, Any] = {}  # element -> d(term value)/d(p_element)
        self.term_of: dict[int, tuple[int, ...]] = {}
        for pos in np.ndindex(*self.term_shape):
            members = [int(i) for i in groups[pos]]
            inter = mp.fsum(p[i] * t[i] for i in members)
            fp = mp.fsum(p[i] * (1 - t[i]) for i in members)
            fn = mp.fsum((1 - p[i]) * t[i] for i in members)
            if case.loss == D.DICE:
                num = 2 * inter + s_n
                den = mp.fsum(p[i] for i in members) + mp.fsum(t[i] for i in members) + s
            else:
                num = inter + s_n
                den = inter + a * fp + b * fn + s
            self.values[pos] = mp.nan if den == 0 else 1 - num / den
            for i in members:
                self.term_of[i] = pos
                if case.loss == D.DICE:
                    c, e = 2 * t[i], mp.mpf(1)
                else:
                    c, e = t[i], t[i] + a * (1 - t[i]) - b * t[i]
                self.deriv[i] = mp.nan if den == 0 else -(c * den - num * e) / den**2
        # Per-term weights (class axis of the term array).
        c_count = case.p.shape[1]
        w = [mp.mpf(1)] * c_count
        if case.weight is not None:
            w = [mp.mpf(float(v)) for v in case.weight]
        if opt.get("class_weighting") == "inverse_square_frequency":
            freq = [
                mp.fsum(mp.mpf(float(v)) for v in np.take(case.t, c, axis=1).ravel())
                for c in range(c_count)
            ]
            v = [1 / (f**2 + mp.mpf(1e-7)) for f in freq]
            total = mp.fsum(v)
            w = [wc * vc / total * c_count for wc, vc in zip(w, v, strict=True)]
        self.cls = cls
        self.weights = np.empty(self.term_shape, dtype=object)
        for pos in np.ndindex(*self.term_shape):
            self.weights[pos] = w[pos[cls]] if cls is not None else mp.mpf(1)
        self.class_reduce = opt.get("dice_class_reduce", "none") if cls is not None else "none"

    def loss(self) -> Any:
        v = self.values * self.weights
        if self.class_reduce != "none":
            assert self.cls is not None
            v = np.sum(v, axis=self.cls)
            if self.class_reduce == "mean":
                v = v / self.case.p.shape[1]
        v = np.asarray(v, dtype=object)
        if self.case.reduction == "none":
            return np.array([float(x) for x in v.ravel()]).reshape(v.shape)
        total = mp.fsum(v.ravel()) if v.size else mp.mpf(0)
        if self.case.reduction == "sum":
            return float(total)
        return float(total / v.size) if v.size else math.nan

    def grad(self) -> np.ndarray:
        case = self.case
        vshape = case.values_shape()
        g = np.broadcast_to(case.grad_output, vshape if case.reduction == "none" else ())
        scale = mp.mpf(1)
        if case.reduction == "mean":
            n = int(np.prod(vshape))
            scale = mp.mpf(1) / n if n else mp.mpf(0)
        out = []
        for i in range(case.p.size):
            pos = self.term_of.get(i)
            if pos is None:  # an empty term array: no elements
                continue
            vpos = pos
            share = mp.mpf(1)
            if self.class_reduce != "none":
                assert self.cls is not None
                vpos = pos[: self.cls] + pos[self.cls + 1 :]
                if self.class_reduce == "mean":
                    share = mp.mpf(1) / case.p.shape[1]
            gk = mp.mpf(float(g[vpos] if case.reduction == "none" else g))
            out.append(float(gk * scale * share * self.weights[pos] * self.deriv[i]))
        return np.array(out, dtype=np.float64).reshape(case.p.shape)


Impl = Callable[[Case], tuple[np.ndarray, np.ndarray]]


def oracle(case: Case) -> tuple[np.ndarray, np.ndarray]:
    kw = case.kwargs()
    loss = _value(case.loss)(case.p, case.t, **kw)
    return loss, _grad(case.loss)(case.p, case.t, **kw, grad_output=case.grad_output)


def _far(actual: Any, expected: Any, rtol: float, atol: Any) -> bool:
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return True
    if not np.array_equal(np.isnan(actual), np.isnan(expected)):
        return True
    ok = np.isnan(expected) | (np.abs(actual - expected) <= rtol * np.abs(expected) + atol)
    return not bool(np.all(ok))


def mismatch(impl: Impl, case: Case) -> str | None:
    """Where ``impl`` disagrees with mpmath on ``case`` (relative 1e-12), else None."""
    with mp.workdps(50):
        ref = MpRef(case)
        want, g_want = ref.loss(), ref.grad()
    with np.errstate(all="ignore"):
        got, g_got = impl(case)
        mag, g_mag = _magnitude(case.loss)(
            case.p, case.t, **case.kwargs(), grad_output=case.grad_output
        )
    if _far(got, want, 1e-12, 1e-300 + 1e-14 * np.asarray(mag)):
        return f"loss {got} != {want}"
    if _far(g_got, g_want, 1e-12, 1e-300 + 1e-14 * g_mag):
        return f"grad {g_got} != {g_want}"
    return None


@SETTINGS
@given(case=cases())
def test_matches_mpmath(case: Case) -> None:
    assert oracle(case)[0].dtype == np.float64
    problem = mismatch(oracle, case)
    assert problem is None, problem


# --------------------------------------------------------------------------------------------
# Finite differences and invariants
# --------------------------------------------------------------------------------------------

FD_CHOICES = [
    {},
    DEN,
    {"dice_axis": "sample"},
    {"dice_axis": "batch_class", "dice_class_reduce": "sum"},
    {"dice_axis": "batch", **DEN},
    {"dice_class_reduce": "mean", "class_weighting": "inverse_square_frequency"},
    {"tversky_weights": "alpha_fn"},
]


FD_PARAMS = [
    pytest.param(loss, choices, id=f"{loss}-{'-'.join(choices.values()) or 'canon'}")
    for loss in D.LOSSES
    for choices in FD_CHOICES
    if loss == D.TVERSKY or "tversky_weights" not in choices
]


@pytest.mark.parametrize("reduction", D.REDUCTIONS)
@pytest.mark.parametrize(("loss", "choices"), FD_PARAMS)
def test_gradient_is_central_difference(loss: str, reduction: str, choices: dict[str, str]) -> None:
    rng = np.random.default_rng(11)
    p = rng.uniform(0.05, 0.95, (2, 3, 2, 2))
    t = rng.uniform(0.0, 1.0, (2, 3, 2, 2))
    t[0, 2] = 0.0  # an empty target class
    kw: dict[str, Any] = {"smooth": 0.25, "reduction": reduction, "choices": choices}
    if loss == D.TVERSKY:
        kw.update(alpha=0.3, beta=0.9)
    if choices.get("dice_axis", "sample_class") in CLASS_AXIS:
        kw["weight"] = np.array([0.5, 2.0, 1.25])
    f = _value(loss)
    g = rng.uniform(-2.0, 2.0, np.shape(f(p, t, **kw)))
    h, fd = 1e-6, np.zeros_like(p)
    for i in np.ndindex(p.shape):
        e = np.zeros_like(p)
        e[i] = h
        fd[i] = np.sum((f(p + e, t, **kw) - f(p - e, t, **kw)) * g) / (2 * h)
    got = _grad(loss)(p, t, **kw, grad_output=g)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


@SETTINGS
@given(case=cases(canonical=True))
def test_invariants(case: Case) -> None:
    p, t, s = case.p, case.t, case.smooth
    none = D.dice_loss(p, t, smooth=s, reduction="none")
    assert none.shape == p.shape[:2] and none.dtype == np.float64
    mag, _ = D.dice_loss_magnitude(p, t, smooth=s, reduction="none")
    tol = 1e-14 * mag
    # Symmetry: Dice(p, t) = Dice(t, p); Tversky(alpha, beta)(p, t) = Tversky(beta, alpha)(t, p).
    swapped = D.dice_loss(t, p, smooth=s, reduction="none")
    assert np.array_equal(np.isnan(swapped), np.isnan(none))
    assert np.all(np.abs(np.nan_to_num(swapped - none)) <= tol)
    ab: dict[str, Any] = {"alpha": case.alpha, "beta": case.beta, "smooth": s, "reduction": "none"}
    ba: dict[str, Any] = {**ab, "alpha": case.beta, "beta": case.alpha}
    tv = D.tversky_loss(p, t, **ab)
    np.testing.assert_allclose(D.tversky_loss(t, p, **ba), tv, rtol=1e-13, atol=1e-14)
    # tversky_weights=alpha_fn is the same loss with alpha and beta exchanged.
    fn = {"tversky_weights": "alpha_fn"}
    np.testing.assert_array_equal(D.tversky_loss(p, t, **ba, choices=fn), tv)
    np.testing.assert_array_equal(
        D.tversky_loss_grad(p, t, **ba, choices=fn), D.tversky_loss_grad(p, t, **ab)
    )
    # Tversky at alpha = beta = 1/2 with smoothing s is Dice with smoothing 2 s.
    half = D.tversky_loss(p, t, smooth=s, reduction="none")
    np.testing.assert_allclose(
        D.dice_loss(p, t, smooth=2 * s, reduction="none"), half, 1e-13, 1e-14
    )
    # Dice of p = t, a hard mask: 0 (NaN for an empty term at smooth 0), exactly.
    hard = (t > 0.5).astype(np.float64)
    same = D.dice_loss(hard, hard, smooth=s, reduction="none")
    no_t = np.sum(hard, axis=tuple(range(2, t.ndim))) == 0
    np.testing.assert_array_equal(same, np.where(no_t & (s == 0), NAN, 0.0))
    # A hard mask is the minimum: the gradient at p = t points out of [0, 1] (>= 0 where
    # t = 0, <= 0 where t = 1), for smoothing in both places.
    g_same = D.dice_loss_grad(hard, hard, smooth=s, reduction="sum")
    ok = ~np.isnan(g_same)
    assert np.all(g_same[ok & (hard == 0)] >= 0) and np.all(g_same[ok & (hard == 1)] <= 0)
    empty = np.sum(t, axis=tuple(range(2, t.ndim))) == 0
    # Each term lies in [0, 1] for p, t in [0, 1].
    finite = none[np.isfinite(none)]
    assert np.all(finite >= -1e-15) and np.all(finite <= 1 + 1e-15)
    no_p = np.sum(p, axis=tuple(range(2, p.ndim))) == 0
    assert np.array_equal(np.isnan(none), empty & no_p & (s == 0))
    # Scaling: every position repeated k times with smoothing k s is the same loss.
    k = 3
    rep: dict[str, Any] = {"smooth": k * s, "reduction": "none"}
    pk, tk = np.concatenate([p[..., None]] * k, -1), np.concatenate([t[..., None]] * k, -1)
    np.testing.assert_allclose(D.dice_loss(pk, tk, **rep), none, rtol=1e-13, atol=1e-14)
    # Permuting the positions changes nothing (one term per (sample, class)).
    if p.ndim > 2:
        flat_p, flat_t = p.reshape(*p.shape[:2], -1), t.reshape(*t.shape[:2], -1)
        perm = np.random.default_rng(0).permutation(flat_p.shape[-1])
        np.testing.assert_allclose(
            D.dice_loss(flat_p[..., perm], flat_t[..., perm], smooth=s, reduction="none"),
            none,
            rtol=1e-13,
            atol=1e-14,
        )
    # Reductions: mean = sum / count; the class means' mean is the canonical mean.
    total = D.dice_loss(p, t, smooth=s, reduction="sum")
    mean = D.dice_loss(p, t, smooth=s)
    if np.isfinite(total):
        assert float(mean) == pytest.approx(float(total) / none.size, rel=1e-13, abs=1e-15)
        class_mean = D.dice_loss(p, t, smooth=s, choices={"dice_class_reduce": "mean"})
        assert float(class_mean) == pytest.approx(float(mean), rel=1e-13, abs=1e-15)
    # One sample: dice_axis=batch is dice_axis=sample; batch_class is sample_class.
    p1, t1 = p[:1], t[:1]
    np.testing.assert_array_equal(
        D.dice_loss(p1, t1, smooth=s, reduction="none", choices={"dice_axis": "batch"}),
        D.dice_loss(p1, t1, smooth=s, reduction="none", choices={"dice_axis": "sample"})[0],
    )


# --------------------------------------------------------------------------------------------
# Magnitudes: float32 forms written the way the frameworks compute
# --------------------------------------------------------------------------------------------


def _sum32(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    out: np.ndarray = np.sum(a, axis=axes, keepdims=True, dtype=np.float32)
    return out


def framework_float32(case: Case) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-term loss and gradient of sum(terms * g) in float32, as Keras (Dice: 1 - 2 I /
    (P + T + s)) and optax (Tversky: 1 - (I + s) / (I + a (P - I) + b (T - I) + s)) compute
    them, the gradient as reverse-mode autodiff composes it; and the term size."""
    f = np.float32
    p, t = case.p.astype(f), case.t.astype(f)
    summed, _ = case.term_axes()
    opt = case.opt()
    s = f(case.smooth)
    s_n = s if opt["dice_smooth"] == "numerator_and_denominator" else f(0)
    a, b = f(case.alpha), f(case.beta)
    if opt.get("tversky_weights") == "alpha_fn":
        a, b = b, a
    with np.errstate(all="ignore"):
        i, ps, ts = _sum32(p * t, summed), _sum32(p, summed), _sum32(t, summed)
        if case.loss == D.DICE:
            num, den = f(2) * i + s_n, ps + ts + s
            g_num, g_den = -f(1) / den, num / (den * den)
            dp = g_num * f(2) * t + g_den
        else:
            num, den = i + s_n, i + a * (ps - i) + b * (ts - i) + s
            g_num, g_den = -f(1) / den, num / (den * den)
            dp = (g_num + g_den * (f(1) - a - b)) * t + g_den * a
        loss = f(1) - num / den
    size = int(np.prod([case.p.shape[k] for k in summed])) if summed else 1
    return loss.astype(np.float64), dp.astype(np.float64), size


@SETTINGS
@given(raw=cases())
def test_magnitude_bounds_float32(raw: Case) -> None:
    # What the comparator sees: the oracle is given the inputs the framework computed with.
    case = replace(raw.rounded(), weight=None, reduction="none")
    case = replace(
        case,
        choices={**case.choices, "dice_class_reduce": "none", "class_weighting": "none"}
        if case.choices.get("dice_axis", "sample_class") in CLASS_AXIS
        else case.choices,
    )
    case = replace(case, grad_output=np.ones(case.values_shape()))
    want, g_want = oracle(case)
    kw = case.kwargs()
    mag, g_mag = _magnitude(case.loss)(case.p, case.t, **kw, grad_output=case.grad_output)
    fin, g_fin = np.isfinite(want), np.isfinite(g_want)
    assert np.all(mag[fin] >= np.abs(want[fin])) and np.all(g_mag[g_fin] >= np.abs(g_want[g_fin]))
    got, g_got, size = framework_float32(case)
    summed, _ = case.term_axes()
    got = np.squeeze(got, axis=summed) if summed else got
    g_got = np.broadcast_to(g_got, case.p.shape)
    for name, a, e, m, n in (("loss", got, want, mag, size), ("grad", g_got, g_want, g_mag, size)):
        res = compare(a.astype(np.float32), e, m, dtype="float32", n_terms=n)
        assert res.passed, (name, res)


def test_magnitude_matches_the_stated_formula() -> None:
    # P1, T1: I = 1.5, P = 1.75, T = 2, s = 0.5 in both: N = 3.5, D = 4.25, Nm = 3.5, Dm = 4.25.
    s = 0.5
    mag, g_mag = D.dice_loss_magnitude(P1, T1, smooth=s, reduction="none")
    n, d = 3.5, 4.25
    assert float(mag[0, 0]) == pytest.approx(1 + 2 * n / d + n * d / d**2, rel=1e-15)
    tvec = T1[0, 0]
    want = 2 * tvec * 2 / d + (n + n + 2 * n) / d**2
    np.testing.assert_allclose(g_mag[0, 0], want, rtol=1e-15)
    # A mean divides by the count; weights enter as |w|.
    w = np.array([-2.0])
    lm, gm = D.dice_loss_magnitude(P1, T1, smooth=s, weight=w, reduction="mean")
    assert float(lm) == pytest.approx(2 * float(mag[0, 0]), rel=1e-15)
    np.testing.assert_allclose(gm, 2 * g_mag, rtol=1e-15)


# --------------------------------------------------------------------------------------------
# Options and arguments
# --------------------------------------------------------------------------------------------


def test_outputs_form_and_canonical_choices() -> None:
    assert D.canonical_choices(D.DICE) == {
        "dice_axis": "sample_class",
        "dice_smooth": "numerator_and_denominator",
        "dice_class_reduce": "none",
        "class_weighting": "none",
    }
    assert D.canonical_choices(D.TVERSKY) == {
        **D.canonical_choices(D.DICE),
        "tversky_weights": "alpha_fp",
    }
    assert {n: c[0] for n, c in D.OPTION_CHOICES.items()} == D.canonical_choices(D.TVERSKY)
    for loss in D.LOSSES:
        outputs = getattr(D, f"{loss}_outputs")
        for red in D.REDUCTIONS:
            for choices in (None, D.canonical_choices(loss), DEN, {"dice_axis": "batch"}):
                out = outputs(P, SOFT, smooth=0.5, reduction=red, choices=choices)
                assert set(out) == {"loss", "grad"}
                kw: dict[str, Any] = {"smooth": 0.5, "reduction": red, "choices": choices}
                np.testing.assert_array_equal(out["loss"], _value(loss)(P, SOFT, **kw))
                np.testing.assert_array_equal(out["grad"], _grad(loss)(P, SOFT, **kw))


def test_none_shapes() -> None:
    shapes = {
        "sample_class": (2, 3),
        "sample": (2,),
        "batch_class": (3,),
        "batch": (),
    }
    for axis, shape in shapes.items():
        assert D.dice_loss(P, T, reduction="none", choices={"dice_axis": axis}).shape == shape
    assert D.dice_loss(P, T, reduction="none", choices=CLASS_MEAN).shape == (2,)
    both = {"dice_axis": "batch_class", "dice_class_reduce": "sum"}
    assert D.dice_loss(P, T, reduction="none", choices=both).shape == ()


X = np.full((2, 3, 2), 0.5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: D.dice_loss(X, np.zeros((2, 2, 3))), r"same shape. Received: input.shape"),
        (lambda: D.dice_loss(np.zeros(3), np.zeros(3)), r"`input` must have shape \(N, C\)"),
        (lambda: D.dice_loss(X, np.zeros((2, 3), int)), r"class indices must have shape \(2, 2\)"),
        (lambda: D.dice_loss(X, np.full((2, 2), 3)), r"indices in \[0, C=3\).*\[3\]"),
        (lambda: D.dice_loss(X, X.astype(str)), r"`target` must be a real numeric array"),
        (lambda: D.dice_loss(X, X, smooth=-1.0), r"`smooth` must be a finite number >= 0"),
        (lambda: D.tversky_loss(X, X, alpha=NAN), r"`alpha` must be a finite number"),
        (lambda: D.tversky_loss(X, X, beta=-0.5), r"beta=-0.5"),
        (lambda: D.dice_loss(X, X, reduction="batchmean"), r"`reduction` must be one of"),
        (lambda: D.dice_loss(X, X, weight=np.ones(2)), r"weight.shape=\(2,\)"),
        (
            lambda: D.dice_loss(X, X, choices={"tversky_weights": "alpha_fn"}),
            r"dice_loss has no semantic option 'tversky_weights'",
        ),
        (lambda: D.dice_loss(X, X, choices={"dice_axis": "all"}), r"dice_axis has no choice"),
        (
            lambda: D.dice_loss(X, X, weight=np.ones(3), choices={"dice_axis": "sample"}),
            r"dice_axis=sample sums over the classes",
        ),
        (
            lambda: D.dice_loss(X, X, choices={"dice_axis": "batch", **CLASS_MEAN}),
            r"dice_class_reduce=mean",
        ),
        (
            lambda: D.dice_loss(X, X, choices={"dice_axis": "sample", **GENERALIZED}),
            r"class_weighting=inverse_square_frequency",
        ),
        (
            lambda: D.dice_loss_grad(X, X, reduction="none", grad_output=np.ones(2)),
            r"grad_output.shape=\(2,\)",
        ),
        (lambda: D.canonical_choices("dice"), r"no Dice loss 'dice'"),
    ],
)
def test_argument_errors(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------
# Mutants: deliberately wrong oracles, each found out by the mpmath comparison
# --------------------------------------------------------------------------------------------


def _smooth_in_denominator_only(case: Case) -> tuple[np.ndarray, np.ndarray]:
    return oracle(replace(case, choices={**case.choices, "dice_smooth": "denominator_only"}))


def _alpha_beta_swapped(case: Case) -> tuple[np.ndarray, np.ndarray]:
    return oracle(replace(case, alpha=case.beta, beta=case.alpha))


def _mean_over_samples(case: Case) -> tuple[np.ndarray, np.ndarray]:
    loss, g = oracle(case)
    if case.reduction == "mean" and case.opt()["dice_axis"] == "sample_class":
        c = case.p.shape[1]
        return loss * c, g * c
    return loss, g


def _sign_flipped_gradient(case: Case) -> tuple[np.ndarray, np.ndarray]:
    loss, g = oracle(case)
    return loss, -g


def _classes_summed(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """One Dice per sample (Paddle's), repeated for each class, where the case asks for one
    per (sample, class); the gradient left right."""
    opt = case.opt()
    plain = opt["dice_class_reduce"] == "none" and opt["class_weighting"] == "none"
    if opt["dice_axis"] != "sample_class" or case.weight is not None or not plain:
        return oracle(case)
    kw = {**case.kwargs(), "choices": {**case.choices, "dice_axis": "sample"}}
    loss = _value(case.loss)(case.p, case.t, **kw)
    if case.reduction == "none":
        loss = np.broadcast_to(loss[:, None], case.values_shape())
    return loss, oracle(case)[1]


MUTANTS: dict[str, Impl] = {
    "smooth_in_denominator_only": _smooth_in_denominator_only,
    "alpha_beta_swapped": _alpha_beta_swapped,
    "mean_over_samples_only": _mean_over_samples,
    "sign_flipped_gradient": _sign_flipped_gradient,
    "classes_summed_into_one_term": _classes_summed,
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_found(name: str) -> None:
    impl = MUTANTS[name]
    # No shrinking: the first case that tells the mutant apart is enough.
    quick = settings(max_examples=300, deadline=None, database=None, phases=[Phase.generate])
    with np.errstate(all="ignore"):
        found = find(cases(), lambda c: mismatch(impl, c) is not None, settings=quick)
    assert mismatch(impl, found) is not None
    assert mismatch(oracle, found) is None

"""The multilabel_soft_margin_loss and cross_entropy_on_probs entries, run by the real
frameworks (PyTorch, TensorFlow/Keras, Paddle), each in its own worker process.

Each entry must reproduce the oracle under the options it declares (its documented profile)
on ordinary 2-d input, and the behaviours measured for the ledger (cases/known.yaml) are
pinned here so that a framework release that changes them is noticed. A framework that is
not installed skips its tests.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import adapters, oracle
from conformance.oracle import multilabel, probs
from conformance.protocol import Outcome, Task
from conformance.supervisor import Lost, Worker

TIMEOUT = 120.0
LOSSES = ("multilabel_soft_margin_loss", "cross_entropy_on_probs")
FRAMEWORKS = ("torch", "tensorflow", "paddle")
OUTPUTS = {
    "multilabel_soft_margin_loss": multilabel.multilabel_soft_margin_loss_outputs,
    "cross_entropy_on_probs": probs.cross_entropy_on_probs_outputs,
}


def _installed(framework: str) -> bool:
    module = adapters.load(framework)
    return all(importlib.util.find_spec(name) is not None for name in module.REQUIRES)


def _entries(framework: str, loss: str) -> list[Any]:
    return [e for e in adapters.load(framework).ENTRIES if e.loss == loss]


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Worker]]:
    started: dict[str, Worker] = {}
    log_dir: Path = tmp_path_factory.mktemp("worker-logs")

    def get(framework: str) -> Worker:
        if not _installed(framework):
            pytest.skip(f"{framework} is not installed")
        if framework not in started:
            w = Worker(framework, "cpu", log_dir / f"{framework}.log")
            w.start()
            started[framework] = w
        return started[framework]

    yield get
    for w in started.values():
        w.stop()


def _call(w: Worker, task: Task) -> Outcome:
    result = w.call(task, TIMEOUT)
    assert not isinstance(result, Lost), f"{result.kind}: {result.reason}\n{result.stderr_tail}"
    return result


def _params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "weight": None,
        "ignore_index": -100,
        "reduction": "mean",
        "label_smoothing": 0.0,
        "pos_weight": None,
    }
    params.update(overrides)
    return params


RNG = np.random.default_rng(2026)
LOGITS = RNG.normal(0.0, 3.0, size=(6, 4))
BINARY = RNG.integers(0, 2, size=(6, 4)).astype(np.float64)
P = oracle.softmax(RNG.normal(0.0, 3.0, size=(6, 4)), axis=1)
LABELS = RNG.integers(0, 4, size=6)
SOFT = oracle.softmax(RNG.normal(0.0, 2.0, size=(6, 4)), axis=1)
W = np.array([0.5, 2.0, 1.0, 3.0])


def _task(entry: Any, x: np.ndarray, t: np.ndarray, kind: str, **params: Any) -> Task:
    return Task("test", entry.loss, entry.api, x, t, kind, _params(**params))  # type: ignore[arg-type]


def _profile(entry: Any) -> dict[str, str]:
    return {d.option: d.choice for d in entry.profile if d.option != "precision"}


def _rtol(entry: Any) -> float:
    # Keras loss classes compute in float32 (declared precision=float32)
    return 2e-5 if any(d.option == "precision" for d in entry.profile) else 1e-10


def _drop_kept_class_axis(loss: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Paddle keeps a size-1 class axis in 'none' output with soft labels (declared)."""
    return loss[:, 0] if loss.ndim == x.ndim and loss.shape[1] == 1 else loss


def _cases(entry: Any) -> list[tuple[np.ndarray, np.ndarray, str, dict[str, Any]]]:
    if entry.loss == "multilabel_soft_margin_loss":
        return [(LOGITS, BINARY, "binary", {"weight": W if "weight" in entry.params else None})]
    out: list[tuple[np.ndarray, np.ndarray, str, dict[str, Any]]] = []
    if "index" in entry.targets:
        out.append((P, LABELS, "index", {"weight": W if "weight" in entry.params else None}))
    if "probs" in entry.targets:
        out.append((P, SOFT, "probs", {}))
    return out


def _all() -> list[Any]:
    return [
        pytest.param(fw, entry, id=f"{fw}-{entry.api}")
        for fw in FRAMEWORKS
        for loss in LOSSES
        for entry in _entries(fw, loss)
        if "channels-last" not in entry.api
    ]


@pytest.mark.parametrize(("framework", "entry"), _all())
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_entry_reproduces_its_declared_profile(
    worker: Callable[[str], Worker], framework: str, entry: Any, reduction: str
) -> None:
    for x, t, kind, params in _cases(entry):
        outcome = _call(worker(framework), _task(entry, x, t, kind, reduction=reduction, **params))
        assert outcome.status == "ok", outcome.reason
        want = OUTPUTS[entry.loss](
            x,
            t,
            **{k: v for k, v in params.items() if v is not None},
            reduction=reduction,
            choices=_profile(entry),
        )
        loss = _drop_kept_class_axis(outcome.outputs["loss"], x)
        want_loss = _drop_kept_class_axis(want["loss"], x)
        np.testing.assert_allclose(loss, want_loss, rtol=_rtol(entry), atol=1e-12)
        np.testing.assert_allclose(
            outcome.outputs["grad"], want["grad"], rtol=_rtol(entry), atol=1e-7
        )


def test_every_loss_has_entries_or_is_out_of_scope() -> None:
    for framework in (*FRAMEWORKS, "jax"):
        module = adapters.load(framework)
        out = {loss for loss, _ in getattr(module, "OUT_OF_SCOPE", ())}
        for loss in LOSSES:
            assert bool(_entries(framework, loss)) != (loss in out), (framework, loss)


# ---------------------------------------------------------------- measured behaviours


def _entry(framework: str, name: str) -> Any:
    return next(e for e in adapters.load(framework).ENTRIES if e.api == name)


@pytest.mark.parametrize(
    ("framework", "api"),
    [
        ("torch", "torch.nn.functional.multilabel_soft_margin_loss"),
        ("paddle", "paddle.nn.functional.multi_label_soft_margin_loss"),
    ],
)
def test_nd_input_is_averaged_over_the_last_axis(
    worker: Callable[[str], Worker], framework: str, api: str
) -> None:
    x = RNG.normal(0.0, 2.0, size=(2, 3, 4, 5))
    t = RNG.integers(0, 2, size=x.shape).astype(np.float64)
    outcome = _call(
        worker(framework), _task(_entry(framework, api), x, t, "binary", reduction="none")
    )
    assert outcome.status == "ok", outcome.reason
    assert outcome.outputs["loss"].shape == (2, 3, 4)  # canonical: (2, 4, 5)
    last = multilabel.multilabel_soft_margin_loss_outputs(
        x, t, reduction="none", choices={"multilabel_axis": "last"}
    )
    np.testing.assert_allclose(outcome.outputs["loss"], last["loss"], rtol=1e-12)


@pytest.mark.parametrize(
    ("framework", "api"),
    [
        ("torch", "torch.nn.functional.multilabel_soft_margin_loss"),
        ("paddle", "paddle.nn.functional.multi_label_soft_margin_loss"),
    ],
)
def test_infinite_logits_give_nan(
    worker: Callable[[str], Worker], framework: str, api: str
) -> None:
    x = np.array([[math.inf, -math.inf, 1.0], [math.inf, 1.0, -1.0]])
    t = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    outcome = _call(
        worker(framework), _task(_entry(framework, api), x, t, "binary", reduction="none")
    )
    loss = outcome.outputs["loss"]
    # canonical: both finite (every infinite term has a zero coefficient)
    assert np.all(np.isfinite(multilabel.multilabel_soft_margin_loss(x, t, reduction="none")))
    assert np.isnan(loss[0])  # t = 0 at x = -inf: 0 * log sigmoid(-inf)
    assert np.isnan(loss[1])  # 1 - t = 0 at x = +inf: 0 * log sigmoid(-inf)


def test_keras_renormalises_and_clips(worker: Callable[[str], Worker]) -> None:
    p = np.array([[0.5, 0.25, 0.5], [0.0, 1.0, 0.0]])
    t = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    entry = _entry("tensorflow", "keras.ops.categorical_crossentropy(from_logits=False)")
    outcome = _call(worker("tensorflow"), _task(entry, p, t, "probs", reduction="none"))
    # -log(0.25 / 1.25) = log 5, and -log(1e-7) = 16.118 where canonical is -log 0.25, inf
    np.testing.assert_allclose(outcome.outputs["loss"], [math.log(5.0), -math.log(1e-7)], rtol=1e-9)
    sparse = _entry("tensorflow", "keras.ops.sparse_categorical_crossentropy(from_logits=False)")
    outcome = _call(
        worker("tensorflow"), _task(sparse, p, np.array([1, 0]), "index", reduction="none")
    )
    # clip first, then the softmax of log p: -log(1e-7 / (1 + 2e-7)) for the second row
    np.testing.assert_allclose(
        outcome.outputs["loss"],
        [math.log(5.0), -math.log(1e-7 / (1.0 - 1e-7 + 2e-7))],
        rtol=1e-7,
    )


def test_keras_sparse_axis_1_rejects_nd_input(worker: Callable[[str], Worker]) -> None:
    entry = _entry("tensorflow", "keras.ops.sparse_categorical_crossentropy(from_logits=False)")
    p = oracle.softmax(RNG.normal(size=(2, 3, 4)), axis=1)
    outcome = _call(worker("tensorflow"), _task(entry, p, RNG.integers(0, 3, size=(2, 4)), "index"))
    assert outcome.status != "ok"
    assert "Only axis=-1 is currently supported" in outcome.reason


def test_paddle_caps_minus_log_zero_at_1e20(worker: Callable[[str], Worker]) -> None:
    entry = _entry("paddle", "paddle.nn.functional.cross_entropy(use_softmax=False)")
    p = np.array([[0.0, 1.0, 0.0], [0.5, 0.25, 0.25]])
    outcome = _call(worker("paddle"), _task(entry, p, np.array([0, 1]), "index", reduction="none"))
    np.testing.assert_allclose(outcome.outputs["loss"].ravel(), [1e20, math.log(4.0)], rtol=1e-12)
    assert outcome.outputs["grad"][0, 0] == -math.inf  # the derivative of -log p at 0
    soft = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    p2 = np.array([[0.25, 0.75, 0.0], [0.2, 0.3, 0.5]])
    outcome = _call(worker("paddle"), _task(entry, p2, soft, "probs", reduction="none"))
    assert np.isnan(outcome.outputs["grad"][0, 2])  # -t / p = 0 / 0
    assert np.all(np.isfinite(outcome.outputs["loss"]))

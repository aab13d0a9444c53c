"""The TensorFlow/Keras, JAX/optax and Paddle adapters, each run in its own worker process.

Frameworks are never imported here (``import tensorflow`` then ``import paddle`` in one
process segfaults): every call goes through ``conformance.supervisor.Worker``, one per
framework for the whole module. A framework that is not installed skips its tests.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import adapters, oracle
from conformance.protocol import Outcome, Task
from conformance.supervisor import Lost, Worker, WorkerUnavailable

FRAMEWORKS = ("tensorflow", "jax", "paddle")
TIMEOUT = 120.0

# The seed example: input [0,1,0,0,0,1] viewed (N=1, C=3, d1=2), target [[0, 1]].
SEED_X = np.array([0, 1, 0, 0, 0, 1], dtype=np.float64).reshape(1, 3, 2)
SEED_T = np.array([[0, 1]], dtype=np.int64)
SEED_W = np.array([1.0, 2.0, 3.0])
SEED_MEAN_WEIGHTED = 1.6075339655948708  # torch/paddle, weight [1, 2, 3]
SEED_MEAN = 1.4803035463631806  # no weight


def _installed(framework: str) -> bool:
    module = adapters.load(framework)
    return all(importlib.util.find_spec(name) is not None for name in module.REQUIRES)


def _entries(framework: str) -> list[Any]:
    """The cross-entropy entries (this module's seed example is a cross-entropy case)."""
    return [e for e in adapters.load(framework).ENTRIES if e.loss == "cross_entropy"]


def _all_entries() -> list[Any]:
    return [
        pytest.param(fw, entry, id=f"{fw}-{entry.api}")
        for fw in FRAMEWORKS
        for entry in _entries(fw)
    ]


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Worker]]:
    """``worker(framework)``: that framework's worker, started on first use, stopped at the end."""
    started: dict[str, Worker] = {}
    log_dir: Path = tmp_path_factory.mktemp("worker-logs")

    def get(framework: str) -> Worker:
        if not _installed(framework):
            pytest.skip(f"{framework} is not installed ({adapters.load(framework).REQUIRES})")
        if framework not in started:
            w = Worker(framework, "cpu", log_dir / f"{framework}.log")
            w.start()
            started[framework] = w
        return started[framework]

    yield get
    for w in started.values():
        w.stop()


def _params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "weight": None,
        "ignore_index": -100,
        "reduction": "mean",
        "label_smoothing": 0.0,
    }
    params.update(overrides)
    return params


def _probs(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """One-hot probabilities of ``t`` in the channel-first layout of ``x``."""
    onehot: np.ndarray = np.eye(x.shape[1], dtype=x.dtype)[t]
    return np.ascontiguousarray(np.moveaxis(onehot, -1, 1))


def _task(entry: Any, x: np.ndarray, t: np.ndarray, **params: Any) -> Task:
    """A Task for ``entry``: index targets as given, or their one-hot for probs-only APIs."""
    if "index" in entry.targets:
        return Task("test", "cross_entropy", entry.api, x, t, "index", _params(**params))
    return Task("test", "cross_entropy", entry.api, x, _probs(x, t), "probs", _params(**params))


def _call(w: Worker, task: Task) -> Outcome:
    result = w.call(task, TIMEOUT)
    assert not isinstance(result, Lost), f"{result.kind}: {result.reason}\n{result.stderr_tail}"
    return result


def _expected(task: Task) -> tuple[np.ndarray, np.ndarray]:
    p = task.params
    kwargs = {
        "weight": p["weight"],
        "ignore_index": p["ignore_index"],
        "reduction": p["reduction"],
        "label_smoothing": p["label_smoothing"],
    }
    return (
        oracle.cross_entropy(task.input, task.target, **kwargs),
        oracle.cross_entropy_grad(task.input, task.target, **kwargs),
    )


def _keeps_class_axis(outcome: Outcome, task: Task) -> None:
    """Paddle's soft_label cross_entropy and softmax_with_cross_entropy keep the class axis
    (size 1) in reduction='none' output (declared none_shape=keepdim); the adapter returns it
    unchanged. Checked, then dropped for the comparison."""
    loss = outcome.outputs["loss"]
    if task.params.get("reduction") == "none" and loss.ndim == task.input.ndim:
        assert loss.shape[1] == 1, loss.shape
        outcome.outputs["loss"] = loss[:, 0]


def _assert_matches(outcome: Outcome, task: Task, rtol: float) -> None:
    assert outcome.status == "ok", outcome.reason
    _keeps_class_axis(outcome, task)
    loss, grad = _expected(task)
    # Keras loss classes compute in float32 (floatx) even for float64 input, so the value is
    # compared at the tolerance of the case dtype only; shapes must match exactly.
    np.testing.assert_allclose(outcome.outputs["loss"], loss, rtol=rtol, atol=rtol)
    assert outcome.outputs["grad"].shape == task.input.shape
    np.testing.assert_allclose(outcome.outputs["grad"], grad, rtol=rtol, atol=rtol)


# --------------------------------------------------------------------------- declarations


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_declarations_import_without_framework(framework: str) -> None:
    module = adapters.load(framework)
    assert framework == module.FRAMEWORK
    assert "{call}" in module.SNIPPET
    assert module.SNIPPET.format(call="CALL")  # no stray braces for str.format
    apis = [e.api for e in module.ENTRIES]
    assert len(apis) == len(set(apis))
    for name in ("tensorflow", "keras", "jax", "optax", "paddle"):
        # Reading the declarations imports no framework (this process has none loaded).
        assert name not in sys.modules


# --------------------------------------------------------------------------- environment

ENV_KEYS = {
    "tensorflow": {"tensorflow", "keras", "keras_backend", "device"},
    "jax": {"jax", "jaxlib", "optax", "jax_enable_x64", "device"},
    "paddle": {"paddle", "device"},
}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_environment(worker: Callable[[str], Worker], framework: str) -> None:
    env = dict(worker(framework).environment)
    census = env.pop("census")  # the worker's census of its framework's public losses
    assert census["not-covered"] == 0 and census["covered"] > 0, census
    assert ENV_KEYS[framework] <= set(env), env
    assert all(isinstance(v, str) and v for v in env.values()), env
    assert "cpu" in env["device"].lower()
    if framework == "tensorflow":
        assert env["keras_backend"] == "tensorflow"
        assert env["keras"].startswith("3."), env  # Keras 3, imported as `import keras`
    if framework == "jax":
        assert env["jax_enable_x64"] == "True"


def test_gpu_request_without_gpu_is_unavailable(tmp_path: Path) -> None:
    """device='gpu' with no GPU visible: the worker says so instead of falling back to CPU."""
    if not _installed("jax"):
        pytest.skip("jax is not installed")
    w = Worker("jax", "gpu", tmp_path / "jax-gpu.log")
    try:
        env = w.start()
    except WorkerUnavailable as exc:
        assert str(exc).startswith("no GPU visible to jax (")
    else:
        assert "cpu" not in env["device"].lower(), env  # a GPU is visible here
    finally:
        w.stop()


# --------------------------------------------------------------------------- seed example

SEED_CALLS = {
    "tf.nn.sparse_softmax_cross_entropy_with_logits": (
        "tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits("
        "labels=target, logits=tf.transpose(input, [0, 2, 1])))"
    ),
    "tf.nn.softmax_cross_entropy_with_logits": (
        "tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits("
        "labels=target, logits=input, axis=1))"
    ),
    "keras.losses.SparseCategoricalCrossentropy": (
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100, "
        "axis=1, reduction='sum_over_batch_size')(target, input)"
    ),
    "keras.losses.SparseCategoricalCrossentropy[channels-last]": (
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100, "
        "reduction='sum_over_batch_size')(target, tf.transpose(input, [0, 2, 1]))"
    ),
    "keras.losses.CategoricalCrossentropy": (
        "keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.0, axis=1, "
        "reduction='sum_over_batch_size')(target, input)"
    ),
    "keras.losses.sparse_categorical_crossentropy": (
        "keras.ops.mean(keras.losses.sparse_categorical_crossentropy(target, input, "
        "from_logits=True, ignore_class=-100, axis=1))"
    ),
    "keras.losses.sparse_categorical_crossentropy[channels-last]": (
        "keras.ops.mean(keras.losses.sparse_categorical_crossentropy(target, "
        "tf.transpose(input, [0, 2, 1]), from_logits=True, ignore_class=-100))"
    ),
    "keras.ops.sparse_categorical_crossentropy": (
        "keras.ops.mean(keras.ops.sparse_categorical_crossentropy(target, input, "
        "from_logits=True, axis=1))"
    ),
    "keras.ops.sparse_categorical_crossentropy[channels-last]": (
        "keras.ops.mean(keras.ops.sparse_categorical_crossentropy(target, "
        "tf.transpose(input, [0, 2, 1]), from_logits=True))"
    ),
    "keras.ops.categorical_crossentropy": (
        "keras.ops.mean(keras.ops.categorical_crossentropy(target, input, from_logits=True, "
        "axis=1))"
    ),
    "tf.compat.v1.losses.sparse_softmax_cross_entropy": (
        "tf.compat.v1.losses.sparse_softmax_cross_entropy(labels=target, "
        "logits=tf.transpose(input, [0, 2, 1]), reduction='weighted_sum_by_nonzero_weights')"
    ),
    "tf.compat.v1.losses.softmax_cross_entropy": (
        "tf.compat.v1.losses.softmax_cross_entropy(onehot_labels=tf.transpose(target, "
        "[0, 2, 1]), logits=tf.transpose(input, [0, 2, 1]), label_smoothing=0.0, "
        "reduction='weighted_sum_by_nonzero_weights')"
    ),
    "keras.losses.categorical_crossentropy": (
        "keras.ops.mean(keras.losses.categorical_crossentropy(target, input, from_logits=True, "
        "label_smoothing=0.0, axis=1))"
    ),
    "optax.safe_softmax_cross_entropy": (
        "jnp.mean(optax.safe_softmax_cross_entropy(jnp.moveaxis(input, 1, -1), "
        "jnp.moveaxis(target, 1, -1)))"
    ),
    "optax.softmax_cross_entropy_with_integer_labels": (
        "jnp.mean(optax.softmax_cross_entropy_with_integer_labels(input, target, axis=1))"
    ),
    "optax.softmax_cross_entropy": "jnp.mean(optax.softmax_cross_entropy(input, target, axis=1))",
    "paddle.nn.functional.cross_entropy": (
        "paddle.nn.functional.cross_entropy(input, target, weight=w, ignore_index=-100, "
        "reduction='mean', soft_label=False, axis=1, label_smoothing=0.0)"
    ),
    "paddle.nn.functional.softmax_with_cross_entropy": (
        "paddle.mean(paddle.nn.functional.softmax_with_cross_entropy(logits=input, "
        "label=paddle.unsqueeze(target, 1), soft_label=False, ignore_index=-100, axis=1))"
    ),
    "paddle.nn.CrossEntropyLoss": (
        "paddle.nn.CrossEntropyLoss(weight=w, ignore_index=-100, reduction='mean', "
        "soft_label=False, axis=1, label_smoothing=0.0)(input, target)"
    ),
}


# Entries that reject the seed's (N, C, d) layout when called as documented (axis=1): the
# error is the result (their [channels-last] variants run it).
DOCUMENTED_FAILURE = {
    "keras.losses.SparseCategoricalCrossentropy": "Only axis=-1 is currently supported",
    "keras.losses.sparse_categorical_crossentropy": "Only axis=-1 is currently supported",
    "keras.ops.sparse_categorical_crossentropy": "Only axis=-1 is currently supported",
}


def test_seed_calls_cover_every_entry() -> None:
    assert set(SEED_CALLS) == {e.api for fw in FRAMEWORKS for e in _entries(fw)}


def _fails_as_documented(entry: Any, outcome: Any) -> bool:
    if entry.api not in DOCUMENTED_FAILURE:
        return False
    assert outcome.status == "raised", outcome.reason
    assert DOCUMENTED_FAILURE[entry.api] in outcome.reason
    return True


def _seed_weight(entry: Any) -> np.ndarray | None:
    """Class weights where the API takes them and means what torch means by a weighted mean
    (an entry declaring another index_mean divides by something else)."""
    declared = {d.option for d in entry.profile}
    return SEED_W if "weight" in entry.params and "index_mean" not in declared else None


@pytest.mark.parametrize(("framework", "entry"), _all_entries())
def test_seed_example(worker: Callable[[str], Worker], framework: str, entry: Any) -> None:
    """Weighted where the API takes class weights (1.6075), else unweighted (1.4803)."""
    weight = _seed_weight(entry)
    task = _task(entry, SEED_X, SEED_T, weight=weight)
    outcome = _call(worker(framework), task)
    assert outcome.call == SEED_CALLS[entry.api]
    if _fails_as_documented(entry, outcome):
        return
    assert outcome.status == "ok", outcome.reason
    expected = SEED_MEAN_WEIGHTED if weight is not None else SEED_MEAN
    assert float(oracle.cross_entropy(SEED_X, SEED_T, weight=weight)) == pytest.approx(expected)
    assert float(outcome.outputs["loss"]) == pytest.approx(expected, rel=1e-6)
    _assert_matches(outcome, task, rtol=1e-6)


@pytest.mark.parametrize(("framework", "entry"), _all_entries())
def test_float32_stays_float32(worker: Callable[[str], Worker], framework: str, entry: Any) -> None:
    task = _task(entry, SEED_X.astype(np.float32), SEED_T, reduction="none")
    outcome = _call(worker(framework), task)
    if _fails_as_documented(entry, outcome):
        return
    assert outcome.status == "ok", outcome.reason
    assert outcome.outputs["loss"].dtype == np.float32
    assert outcome.outputs["grad"].dtype == np.float32
    _assert_matches(outcome, task, rtol=1e-5)


@pytest.mark.parametrize(("framework", "entry"), _all_entries())
def test_float64_output_dtype(worker: Callable[[str], Worker], framework: str, entry: Any) -> None:
    """float64 runs in float64 (jax needs x64 enabled), except Keras loss objects (finding):
    the Keras loss *functions* keep float64, the classes compute in floatx()."""
    outcome = _call(worker(framework), _task(entry, SEED_X, SEED_T))
    if _fails_as_documented(entry, outcome):
        return
    assert outcome.status == "ok", outcome.reason
    assert outcome.outputs["grad"].dtype == np.float64
    # Measured: keras.losses.* cast y_pred to the loss's dtype, floatx() = float32 unless
    # dtype= is given, so a float64 case returns a float32 loss.
    keras_float32 = entry.api.startswith("keras.losses.") and entry.api[13].isupper()
    assert outcome.outputs["loss"].dtype == (np.float32 if keras_float32 else np.float64)


# --------------------------------------------------------------------------- N-d layouts

ND_SHAPES = {"NCHW": (2, 3, 4, 5), "NCd1d2d3": (2, 3, 2, 3, 4)}


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("shape_name", list(ND_SHAPES))
@pytest.mark.parametrize(("framework", "entry"), _all_entries())
def test_nd_input_canonical_layout(
    worker: Callable[[str], Worker], framework: str, entry: Any, shape_name: str, reduction: str
) -> None:
    shape = ND_SHAPES[shape_name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    t = rng.integers(0, shape[1], size=(shape[0], *shape[2:]))
    task = _task(entry, x, t, reduction=reduction)
    outcome = _call(worker(framework), task)
    if _fails_as_documented(entry, outcome):
        return
    assert outcome.status == "ok", outcome.reason
    loss, _ = _expected(task)
    if ("none_shape", "keepdim") in [d[:2] for d in entry.profile]:
        _keeps_class_axis(outcome, task)
    assert outcome.outputs["loss"].shape == loss.shape
    assert outcome.outputs["grad"].shape == x.shape
    float32 = any(d == ("precision", "float32") for d in (d[:2] for d in entry.profile))
    rtol = 1e-5 if entry.api.startswith("keras.") or float32 else 1e-10
    _assert_matches(outcome, task, rtol=rtol)


# --------------------------------------------------------------------------- unsupported


UNSUPPORTED = [
    ("tensorflow", "tf.nn.sparse_softmax_cross_entropy_with_logits", {"weight": SEED_W}, "weight"),
    ("tensorflow", "tf.nn.softmax_cross_entropy_with_logits", {"weight": SEED_W}, "weight"),
    (
        "tensorflow",
        "tf.nn.softmax_cross_entropy_with_logits",
        {"label_smoothing": 0.1},
        "label_smoothing",
    ),
    (
        "tensorflow",
        "keras.losses.SparseCategoricalCrossentropy",
        {"label_smoothing": 0.1},
        "label_smoothing",
    ),
    ("tensorflow", "keras.losses.CategoricalCrossentropy", {"weight": SEED_W}, "weight"),
    ("jax", "optax.softmax_cross_entropy_with_integer_labels", {"weight": SEED_W}, "weight"),
    (
        "jax",
        "optax.softmax_cross_entropy_with_integer_labels",
        {"label_smoothing": 0.1},
        "label_smoothing",
    ),
    ("jax", "optax.softmax_cross_entropy", {"weight": SEED_W}, "weight"),
    ("jax", "optax.softmax_cross_entropy", {"label_smoothing": 0.1}, "label_smoothing"),
]


@pytest.mark.parametrize(
    ("framework", "api", "params", "missing"),
    [pytest.param(*u, id=f"{u[1]}-{u[3]}") for u in UNSUPPORTED],
)
def test_unsupported_params(
    worker: Callable[[str], Worker], framework: str, api: str, params: dict[str, Any], missing: str
) -> None:
    entry = next(e for e in _entries(framework) if e.api == api)
    outcome = _call(worker(framework), _task(entry, SEED_X, SEED_T, **params))
    assert outcome.status == "unsupported"
    assert outcome.reason == f"{api} has no native parameter for {missing}"
    assert outcome.call == ""


@pytest.mark.parametrize(
    ("framework", "api"),
    [
        ("tensorflow", "tf.nn.sparse_softmax_cross_entropy_with_logits"),
        ("tensorflow", "tf.compat.v1.losses.sparse_softmax_cross_entropy"),
    ],
)
def test_ignore_index_unsupported_only_when_used(
    worker: Callable[[str], Worker], framework: str, api: str
) -> None:
    entry = next(e for e in _entries(framework) if e.api == api)
    used = _call(worker(framework), _task(entry, SEED_X, np.array([[0, -100]])))
    assert used.status == "unsupported"
    assert used.reason == f"{api} has no native parameter for ignore_index"
    unused = _call(worker(framework), _task(entry, SEED_X, SEED_T, ignore_index=2))
    assert unused.status == "ok", unused.reason


# ------------------------------------------ class weights and ignored labels, as users pass them

X3 = np.array([[0.0, 1, 0], [0, 0, 1], [1, 2, 3]])


def test_keras_class_weights_as_sample_weight(worker: Callable[[str], Worker]) -> None:
    """Keras users weight classes with sample_weight=w[target] (Model.fit(class_weight=)):
    the mean divides the weighted sum by the number of samples (declared index_mean=count),
    not by the sum of the weights."""
    entry = next(
        e for e in _entries("tensorflow") if e.api == "keras.losses.SparseCategoricalCrossentropy"
    )
    target = np.array([0, 1, 2])
    task = _task(entry, X3, target, weight=SEED_W)
    outcome = _call(worker("tensorflow"), task)
    assert outcome.status == "ok", outcome.reason
    assert "(target, input, sample_weight=tf.gather(w, target))" in outcome.call
    total = oracle.cross_entropy(X3, target, weight=SEED_W, reduction="sum")
    assert float(outcome.outputs["loss"]) == pytest.approx(float(total) / 3, rel=1e-6)
    assert float(outcome.outputs["loss"]) != pytest.approx(
        float(oracle.cross_entropy(X3, target, weight=SEED_W)), rel=1e-3
    )
    ignored = _call(worker("tensorflow"), _task(entry, X3, np.array([0, -100, 2]), weight=SEED_W))
    assert ignored.status == "unsupported"
    assert "cannot gather at an ignored label" in ignored.reason


def test_optax_ignores_labels_with_where(worker: Callable[[str], Worker]) -> None:
    """optax users mask ignored labels with where=; jnp.mean then averages every element."""
    entry = next(
        e for e in _entries("jax") if e.api == "optax.softmax_cross_entropy_with_integer_labels"
    )
    target = np.array([0, -100, 2])
    task = _task(entry, X3, target)
    outcome = _call(worker("jax"), task)
    assert outcome.status == "ok", outcome.reason
    assert outcome.call == (
        "jnp.mean(optax.softmax_cross_entropy_with_integer_labels(input, target, axis=1, "
        "where=jnp.not_equal(target, -100)))"
    )
    total = oracle.cross_entropy(X3, target, reduction="sum")
    assert float(outcome.outputs["loss"]) == pytest.approx(float(total) / 3, rel=1e-12)
    grad = oracle.cross_entropy_grad(X3, target, reduction="sum") / 3
    np.testing.assert_allclose(outcome.outputs["grad"], grad, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- ignore_index


KERAS_REDUCTION = {"none": None, "mean": "sum_over_batch_size", "sum": "sum"}


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_keras_ignore_class_matches_canonical(
    worker: Callable[[str], Worker], reduction: str
) -> None:
    """ignore_class=-100: 'sum_over_batch_size' divides by the non-ignored count, like torch."""
    entry = next(
        e for e in _entries("tensorflow") if e.api.endswith("SparseCategoricalCrossentropy")
    )
    x = np.array([[0.0, 1, 0], [0, 0, 1], [1, 2, 3]])
    task = _task(entry, x, np.array([0, -100, 2]), reduction=reduction)
    outcome = _call(worker("tensorflow"), task)
    assert outcome.call == (
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100, "
        f"axis=1, reduction={KERAS_REDUCTION[reduction]!r})(target, input)"
    )
    _assert_matches(outcome, task, rtol=1e-6)


def test_paddle_ignore_index_nonnegative_matches_canonical(
    worker: Callable[[str], Worker],
) -> None:
    entry = _entries("paddle")[0]
    x = np.array([[0.0, 1, 0], [0, 0, 1], [1, 2, 3]])
    task = _task(entry, x, np.array([0, 1, 2]), ignore_index=1)
    _assert_matches(_call(worker("paddle"), task), task, rtol=1e-12)


def test_paddle_negative_ignore_index_mean_divides_by_all_elements(
    worker: Callable[[str], Worker],
) -> None:
    """Measured finding (Paddle 3.3): with ignore_index < 0 (the default -100) and no weight,
    reduction='mean' divides by every element, ignored ones included, not by the kept count
    (paddle/nn/functional/loss.py: `if ignore_index >= 0` guards the masked mean)."""
    entry = _entries("paddle")[0]
    x = np.array([[0.0, 1, 0], [0, 0, 1], [1, 2, 3]])
    t = np.array([0, -100, 2])
    outcome = _call(worker("paddle"), _task(entry, x, t))
    assert outcome.status == "ok", outcome.reason
    per_element = oracle.cross_entropy(x, t, reduction="none")
    assert float(outcome.outputs["loss"]) == pytest.approx(per_element.sum() / 3, rel=1e-12)
    assert float(oracle.cross_entropy(x, t)) == pytest.approx(per_element.sum() / 2)


# --------------------------------------------------------------------------- out of range

# Observed on CPU with the pinned versions; either way is a finding for the report, not a
# failure of the adapter, so a different behaviour only warns.
OUT_OF_RANGE = [
    ("tensorflow", "tf.nn.sparse_softmax_cross_entropy_with_logits", "raised"),
    ("tensorflow", "keras.losses.SparseCategoricalCrossentropy", "raised"),
    ("jax", "optax.softmax_cross_entropy_with_integer_labels", "ok"),  # NaN loss, no error
    ("paddle", "paddle.nn.functional.cross_entropy", "raised"),
    ("paddle", "paddle.nn.CrossEntropyLoss", "raised"),
]


@pytest.mark.parametrize("label", [3, -1], ids=["label=C", "label=-1"])
@pytest.mark.parametrize(
    ("framework", "api", "observed"),
    [pytest.param(*o, id=f"{o[1]}-{o[2]}") for o in OUT_OF_RANGE],
)
def test_out_of_range_label(
    worker: Callable[[str], Worker], framework: str, api: str, observed: str, label: int
) -> None:
    entry = next(e for e in _entries(framework) if e.api == api)
    x = np.array([[0.0, 1, 0], [0, 0, 1], [1, 2, 3]])
    outcome = _call(worker(framework), _task(entry, x, np.array([0, label, 1]), reduction="none"))
    assert outcome.status in ("raised", "ok")
    assert outcome.call, "the call text is recorded either way"
    if outcome.status == "raised":
        assert outcome.reason.strip()
    else:
        assert outcome.outputs["loss"].shape == (3,)
    if outcome.status != observed:
        warnings.warn(
            f"{api} with label {label}: {outcome.status} (recorded: {observed})", stacklevel=1
        )


# --------------------------------------------------------------------------- repro snippets

SNIPPET_APIS = {
    "tensorflow": "tf.nn.sparse_softmax_cross_entropy_with_logits",
    "jax": "optax.softmax_cross_entropy_with_integer_labels",
    "paddle": "paddle.nn.functional.cross_entropy",
}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_snippet_runs(worker: Callable[[str], Worker], framework: str, tmp_path: Path) -> None:
    """The adapter's SNIPPET with the recorded call reproduces the loss in a fresh process."""
    entry = next(e for e in _entries(framework) if e.api == SNIPPET_APIS[framework])
    weight = SEED_W if "weight" in entry.params else None
    outcome = _call(worker(framework), _task(entry, SEED_X, SEED_T, weight=weight))
    assert outcome.status == "ok", outcome.reason
    script = (
        "import numpy as np\n"
        f"x = np.array({SEED_X.tolist()!r})\n"
        f"t = np.array({SEED_T.tolist()!r})\n"
        f"weight = {None if weight is None else weight.tolist()!r}\n"
        "weight = None if weight is None else np.array(weight)\n"
        "pos_weight = None\ng = None\n" + adapters.load(framework).SNIPPET.format(call=outcome.call)
    )
    path = tmp_path / "repro.py"
    path.write_text(script)
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    loss = float(lines[lines.index("loss") + 1])
    assert loss == pytest.approx(float(outcome.outputs["loss"]), rel=1e-12)

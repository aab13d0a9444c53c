"""PaddlePaddle: ``paddle.nn.functional.cross_entropy`` and ``paddle.nn.CrossEntropyLoss``.

Both take ``axis=1`` for the canonical channel-first layout and unsqueeze an (N, d1, ...)
index label to (N, 1, d1, ...) themselves, so no layout change is made here. Probability
targets are passed with ``soft_label=True``. Gradients come from Paddle's autodiff of the sum
of the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from conformance.adapters._entry import Entry, Unavailable, calling
from conformance.oracle.options import Declared
from conformance.protocol import Task

FRAMEWORK = "paddle"
REQUIRES = ("paddle",)

# Repro snippet: NumPy `x`, `t`, `weight` are defined before it (see conformance.runner.repro).
SNIPPET = """\
import paddle
input = paddle.to_tensor(x, stop_gradient=False)
target = paddle.to_tensor(t)
w = None if weight is None else paddle.to_tensor(weight)
loss = {call}
loss.sum().backward()
print("loss", loss.numpy(), "grad", input.grad.numpy(), sep="\\n")
"""

_ALL_REDUCTIONS = frozenset({"none", "mean", "sum"})
_CE_PARAMS = frozenset({"weight", "ignore_index", "label_smoothing"})


def environment(device: str) -> dict[str, str]:
    import paddle

    env = {"paddle": paddle.__version__, "paddle_commit": str(paddle.version.commit)}
    if device == "gpu":
        if not paddle.device.is_compiled_with_cuda():
            raise Unavailable("no GPU visible to paddle (paddle is not compiled with CUDA)")
        if paddle.device.cuda.device_count() == 0:
            raise Unavailable("no GPU visible to paddle (paddle.device.cuda.device_count() is 0)")
        env["device"] = f"gpu:0 ({paddle.device.cuda.get_device_name(0)})"
    else:
        env["device"] = "cpu"
    return env


def _place(task: Task) -> Any:
    import paddle

    return paddle.CUDAPlace(0) if task.device == "gpu" else paddle.CPUPlace()


def _ce_kwargs(task: Task) -> tuple[dict[str, Any], str]:
    """Keyword arguments for the call, and their text as a user would write them."""
    import paddle

    p = task.params
    kwargs: dict[str, Any] = {}
    text = []
    if p.get("weight") is not None:
        kwargs["weight"] = paddle.to_tensor(p["weight"], place=_place(task))
        text.append("weight=w")
    if task.target_kind == "index":
        # ignore_index only means something for index labels; with soft_label=True Paddle
        # rejects any ignore_index > 0, so it is left at its default for probability targets.
        kwargs["ignore_index"] = p["ignore_index"]
        text.append(f"ignore_index={p['ignore_index']!r}")
    kwargs["reduction"] = p["reduction"]
    kwargs["soft_label"] = task.target_kind == "probs"
    kwargs["axis"] = 1 if task.input.ndim >= 2 else 0
    kwargs["label_smoothing"] = float(p["label_smoothing"])
    for name in ("reduction", "soft_label", "axis", "label_smoothing"):
        text.append(f"{name}={kwargs[name]!r}")
    return kwargs, ", ".join(text)


def _value_and_grad(task: Task, loss_of: Callable[[Any, Any], Any]) -> dict[str, np.ndarray]:
    import paddle

    place = _place(task)
    x = paddle.to_tensor(task.input, place=place, stop_gradient=False)
    target = paddle.to_tensor(task.target, place=place)
    loss = loss_of(x, target)
    # For reduction="none" the gradient is that of the sum (a cotangent of ones).
    loss.sum().backward()
    # Returned as is: with soft_label=True and reduction='none' Paddle keeps the class axis
    # (size 1), e.g. (N, 1, d1, ...), unlike hard labels; the results show that shape.
    if x.grad is None:
        raise RuntimeError("paddle autodiff left no gradient on the input")
    return {"loss": np.asarray(loss.numpy()), "grad": np.asarray(x.grad.numpy())}


def _functional(task: Task) -> tuple[dict[str, np.ndarray], str]:
    import paddle

    kwargs, text = _ce_kwargs(task)
    call = f"paddle.nn.functional.cross_entropy(input, target, {text})"
    with calling(call):
        outputs = _value_and_grad(
            task, lambda x, t: paddle.nn.functional.cross_entropy(x, t, **kwargs)
        )
    return outputs, call


def _module(task: Task) -> tuple[dict[str, np.ndarray], str]:
    import paddle

    kwargs, text = _ce_kwargs(task)
    call = f"paddle.nn.CrossEntropyLoss({text})(input, target)"
    with calling(call):
        loss_fn = paddle.nn.CrossEntropyLoss(**kwargs)
        outputs = _value_and_grad(task, lambda x, t: loss_fn(x, t))
    return outputs, call


# Paddle's own "no kernel for this dtype on this device" error (e.g. float16 on CPU).
NOT_IMPLEMENTED = (r"\(NotFound\) The kernel with key .* is not registered",)

_DOC = "https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional/cross_entropy_en.html"
# The documented definitions that differ from canonical (docs/semantics.md).
_PROFILE = (
    # "loss_j = loss_j * sum_i(weight[label_i] * label_i)" for soft labels (docs, step 2.1)
    Declared("soft_weighting", "per_element", _DOC),
    # "loss = sum_j loss_j / sum_j(sum_i weight[label_i])" for soft labels (docs, step 2.3)
    Declared("probs_mean", "weights", _DOC),
    # Returns: "if soft_label = True, the dimension of return value is [N_1, ..., N_k, 1]"
    Declared("none_shape", "keepdim", _DOC),
    # `out_sum / (count + (count == 0))`: a mean over no valid targets is 0, by design
    Declared(
        "empty_mean",
        "zero",
        "https://github.com/PaddlePaddle/Paddle/blob/v3.3.1/python/paddle/nn/functional/loss.py",
    ),
    # softmax clips shifted logits at -64 (the per-element loss is at most ~64)
    Declared("logit_clip", "64", "https://github.com/PaddlePaddle/Paddle/pull/9686"),
)

ENTRIES = (
    Entry(
        api="paddle.nn.functional.cross_entropy",
        loss="cross_entropy",
        targets=frozenset({"index", "probs"}),
        params=_CE_PARAMS,
        reductions=_ALL_REDUCTIONS,
        run=_functional,
        profile=_PROFILE,
    ),
    Entry(
        api="paddle.nn.CrossEntropyLoss",
        loss="cross_entropy",
        targets=frozenset({"index", "probs"}),
        params=_CE_PARAMS,
        reductions=_ALL_REDUCTIONS,
        run=_module,
        profile=_PROFILE,
    ),
)

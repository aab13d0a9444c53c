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

from conformance.adapters._entry import Unavailable
from conformance.adapters._spec import (
    Const,
    Kw,
    Param,
    Tensor,
    entries,
    index_targets,
    resolve_dotted,
    twins,
)
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
pw = None if pos_weight is None else paddle.to_tensor(pos_weight)
loss = {call}
loss.sum().backward()
print("loss", loss.numpy(), "grad", input.grad.numpy(), sep="\\n")
"""


def environment(device: str) -> dict[str, str]:
    import paddle

    # Paddle's C++ signal handlers print a traceback on SIGABRT/SIGSEGV; after heap
    # corruption (nll_loss with ignore_index >= C) that handler deadlocks in malloc and the
    # worker hangs until the call timeout instead of dying at once. Without them a crash is
    # reported as `crashed` within milliseconds (documented API, no effect on results).
    paddle.disable_signal_handler()
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


class _Paddle:
    """Runs specs with Paddle (dynamic graph): tensors on the task's place, ``backward``;
    ``to_static`` converts the loss computation with ``paddle.jit.to_static``."""

    modes: tuple[str, ...] = ("eager", "to_static")

    def tensor(self, array: np.ndarray, task: Task) -> Any:
        import paddle

        return paddle.to_tensor(array, place=_place(task))

    def channels_last(self, x: Any) -> Any:
        import paddle

        return paddle.moveaxis(x, 1, -1) if x.ndim > 2 else x

    def channels_last_text(self, name: str, ndim: int) -> str:
        return f"paddle.moveaxis({name}, 1, -1)"

    def resolve(self, dotted: str) -> Callable[..., Any]:
        return resolve_dotted(dotted, {})

    def value_and_grad(self, task: Task, loss_of: Callable[[Any], Any]) -> dict[str, np.ndarray]:
        import paddle

        x = paddle.to_tensor(task.input, place=_place(task), stop_gradient=False)
        loss = paddle.jit.to_static(loss_of)(x) if task.mode == "to_static" else loss_of(x)
        # For reduction="none" the gradient is that of the sum (a cotangent of ones).
        loss.sum().backward()
        # Returned as is: with soft_label=True and reduction='none' Paddle keeps the class
        # axis (size 1), e.g. (N, 1, d1, ...), unlike hard labels; the results show that shape.
        if x.grad is None:
            raise RuntimeError("paddle autodiff left no gradient on the input")
        return {"loss": np.asarray(loss.numpy()), "grad": np.asarray(x.grad.numpy())}


_CE_KWARGS = (
    Kw("weight", Tensor("weight")),
    # ignore_index only means something for index labels; with soft_label=True Paddle
    # rejects any ignore_index > 0, so it is left at its default for probability targets.
    Kw("ignore_index", Param("ignore_index"), when=index_targets),
    Kw("reduction", Param("reduction")),
    Kw("soft_label", Const(of=lambda task: task.target_kind == "probs")),
    Kw("axis", Const(1)),
    Kw("label_smoothing", Param("label_smoothing")),
)


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
    # soft labels: "each sample's probabilities sum to 1" (概率和为 1); the fused kernel's
    # gradient is softmax - label, which assumes it
    Declared("target_sum", "assumed_one", _DOC),
    # softmax clips shifted logits at -64 (the per-element loss is at most ~64)
    Declared("logit_clip", "64", "https://github.com/PaddlePaddle/Paddle/pull/9686"),
)

# nll_loss takes channel-first input ([N, C] or [N, C, d1, ...]); no axis argument.
_NLL_KWARGS = (
    Kw("weight", Tensor("weight")),
    Kw("ignore_index", Param("ignore_index")),
    Kw("reduction", Param("reduction")),
)
_BINARY = frozenset({"binary"})
_BCE_KWARGS = (Kw("weight", Tensor("weight")), Kw("reduction", Param("reduction")))
_LOGITS_KWARGS = (*_BCE_KWARGS, Kw("pos_weight", Tensor("pos_weight")))
_BCE_PROFILE = (
    # binary_cross_entropy clamps log at -100 and its backward divides by max(p(1-p), 1e-12)
    Declared(
        "log_clamp",
        "-100",
        "https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional/binary_cross_entropy_en.html",
    ),
    Declared(
        "prob_grad",
        "clamp_1e-12",
        "https://github.com/PaddlePaddle/Paddle/blob/v3.3.1/paddle/phi/kernels/cpu/bce_loss_grad_kernel.cc",
    ),
)
# pos_weight is broadcast against the logits like any tensor (its last axis)
_POS_LAST = Declared(
    "pos_weight_axis",
    "last",
    "https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional/binary_cross_entropy_with_logits_en.html",
)
_BOTH = frozenset({"index", "probs"})
SPECS = (
    *twins(
        "paddle.nn.functional.cross_entropy",
        "paddle.nn.CrossEntropyLoss",
        "cross_entropy",
        _BOTH,
        kwargs=_CE_KWARGS,
        profile=_PROFILE,
    ),
    *twins(
        "paddle.nn.functional.nll_loss",
        "paddle.nn.NLLLoss",
        "nll_loss",
        frozenset({"index"}),
        kwargs=_NLL_KWARGS,
    ),
    *twins(
        "paddle.nn.functional.binary_cross_entropy",
        "paddle.nn.BCELoss",
        "binary_cross_entropy",
        _BINARY,
        kwargs=_BCE_KWARGS,
        profile=_BCE_PROFILE,
    ),
    *twins(
        "paddle.nn.functional.binary_cross_entropy_with_logits",
        "paddle.nn.BCEWithLogitsLoss",
        "binary_cross_entropy_with_logits",
        _BINARY,
        kwargs=_LOGITS_KWARGS,
        profile=(_POS_LAST,),
    ),
)
ENTRIES = entries(SPECS, _Paddle())

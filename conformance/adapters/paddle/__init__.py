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

from conformance import dtypes
from conformance.adapters._entry import Unavailable
from conformance.adapters._spec import entries, resolve_dotted
from conformance.adapters.paddle import (
    activations,
    classification,
    divergence,
    focal,
    legacy,
    multilabel,
    probabilities,
    regression,
    scope,
    segmentation,
)
from conformance.protocol import Task

FRAMEWORK = "paddle"
REQUIRES = ("paddle",)

# Repro snippet: NumPy `x`, `t`, `weight` are defined before it (see conformance.runner.repro).
# paddle.to_tensor takes no bfloat16 NumPy array and .numpy() of a bfloat16 tensor gives its
# bits as uint16: both go through float32, which holds every bfloat16 value exactly.
SNIPPET = """\
import paddle
def tensor(a, **kw):
    if a.dtype.name == "bfloat16":
        return paddle.to_tensor(a.astype("float32"), dtype="bfloat16", **kw)
    return paddle.to_tensor(a, **kw)
def numpy(v):
    return v.astype("float32").numpy() if v.dtype == paddle.bfloat16 else v.numpy()
input = tensor(x, stop_gradient=False)
target = None if t is None else tensor(t)
w = None if weight is None else tensor(weight)
pw = None if pos_weight is None else tensor(pos_weight)
loss = {call}
(loss.sum() if g is None else (loss * tensor(g)).sum()).backward()
print("loss", numpy(loss), "grad", numpy(input.grad), sep="\\n")
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


def _numpy(tensor: Any) -> np.ndarray:
    """A tensor as NumPy in its own dtype: ``.numpy()`` of a bfloat16 tensor gives its bits
    as uint16, so bfloat16 comes back as ml_dtypes' type, exactly via float32."""
    import paddle

    if tensor.dtype == paddle.bfloat16:
        return np.asarray(tensor.astype("float32").numpy()).astype(dtypes.NUMPY["bfloat16"])
    return np.asarray(tensor.numpy())


class _Paddle:
    """Runs specs with Paddle (dynamic graph): tensors on the task's place, ``backward``;
    ``to_static`` converts the loss computation with ``paddle.jit.to_static``."""

    modes: tuple[str, ...] = ("eager", "to_static")

    def tensor(self, array: np.ndarray, task: Task, stop_gradient: bool = True) -> Any:
        import paddle

        if array.dtype == dtypes.NUMPY["bfloat16"]:
            # paddle.to_tensor takes no ml_dtypes array; float32 holds every bfloat16 exactly.
            return paddle.to_tensor(
                array.astype(np.float32),
                dtype="bfloat16",
                place=_place(task),
                stop_gradient=stop_gradient,
            )
        return paddle.to_tensor(array, place=_place(task), stop_gradient=stop_gradient)

    def channels_last(self, x: Any) -> Any:
        import paddle

        return paddle.moveaxis(x, 1, -1) if x.ndim > 2 else x

    def channels_last_text(self, name: str, ndim: int) -> str:
        return f"paddle.moveaxis({name}, 1, -1)"

    def resolve(self, dotted: str) -> Callable[..., Any]:
        return resolve_dotted(dotted, {})

    def value_and_grad(self, task: Task, loss_of: Callable[[Any], Any]) -> dict[str, np.ndarray]:
        import paddle

        x = self.tensor(task.input, task, stop_gradient=False)
        loss = paddle.jit.to_static(loss_of)(x) if task.mode == "to_static" else loss_of(x)
        # The gradient of the sum (for reduction="none": a cotangent of ones), or along the
        # cotangent a target-less case gives.
        if task.grad_output is None:
            loss.sum().backward()
        else:
            loss.backward(self.tensor(task.grad_output, task))
        # Returned as is: with soft_label=True and reduction='none' Paddle keeps the class
        # axis (size 1), e.g. (N, 1, d1, ...), unlike hard labels; the results show that shape.
        if x.grad is None:
            raise RuntimeError("paddle autodiff left no gradient on the input")
        return {"loss": _numpy(loss), "grad": _numpy(x.grad)}


# Paddle's own "no kernel for this dtype on this device" error (e.g. float16 on CPU).
_NLL = frozenset({"paddle.nn.functional.nll_loss", "paddle.nn.NLLLoss"})


def POISONING(task: Task) -> bool:
    """nll_loss with class weights and a label outside [0, C) (an ignored 255 or -1) in a
    mean or sum corrupts the heap; the abort may come calls later (cases/known.yaml), so
    the worker is replaced after each such call."""
    if task.api not in _NLL or task.params.get("weight") is None or task.target is None:
        return False
    if task.params.get("reduction") not in ("mean", "sum"):
        return False
    classes = task.input.shape[1] if task.input.ndim > 1 else 0
    return bool(np.any((task.target < 0) | (task.target >= classes)))


NOT_IMPLEMENTED = (r"\(NotFound\) The kernel with key .* is not registered",)

# The entries, one module per loss family; adding a family is one import here.
SPECS = (
    *classification.SPECS,
    *legacy.SPECS,
    *multilabel.SPECS,
    *probabilities.SPECS,
    *focal.SPECS,
    *activations.SPECS,
    *regression.SPECS,
    *divergence.SPECS,
    *segmentation.SPECS,
)
_FRAMEWORK = _Paddle()
ENTRIES = entries(SPECS, _FRAMEWORK)
# How a dotted public name resolves (what the census compares entries by).
resolve = _FRAMEWORK.resolve
# Public APIs of these families that are not entries, each with its reason.
OUT_OF_SCOPE_APIS = scope.APIS

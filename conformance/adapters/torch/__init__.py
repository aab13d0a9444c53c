"""PyTorch: tensors, autodiff and modes for the entries of ``torch.nn.functional`` / ``torch.nn``.

Canonical layout is PyTorch's own (classes on axis 1), so no layout change is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from conformance import dtypes
from conformance.adapters._entry import Unavailable
from conformance.adapters._spec import entries, resolve_dotted
from conformance.adapters.torch import (
    activations,
    classification,
    divergence,
    multilabel,
    regression,
    scope,
)
from conformance.protocol import Task

FRAMEWORK = "torch"
REQUIRES = ("torch",)

# Repro snippet: NumPy `x`, `t`, `weight` are defined before it (see conformance.runner.repro).
# torch.tensor takes no bfloat16 NumPy array and .numpy() no bfloat16 tensor: both go
# through float32, which holds every bfloat16 value exactly.
SNIPPET = """\
import torch
def tensor(a):
    if a.dtype.name == "bfloat16":
        return torch.tensor(a.astype("float32")).to(torch.bfloat16)
    return torch.tensor(a)
def numpy(v):
    v = v.detach()
    return v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()
input = tensor(x).requires_grad_()
target = None if t is None else tensor(t)
w = None if weight is None else tensor(weight)
pw = None if pos_weight is None else tensor(pos_weight)
loss = {call}
(loss.sum() if g is None else (loss * tensor(g)).sum()).backward()
print("loss", numpy(loss), "grad", numpy(input.grad), sep="\\n")
"""


def environment(device: str) -> dict[str, str]:
    import torch

    env = {"torch": torch.__version__}
    if device == "gpu":
        if not torch.cuda.is_available():
            raise Unavailable("no GPU visible to torch (torch.cuda.is_available() is False)")
        env["device"] = f"cuda:0 ({torch.cuda.get_device_name(0)})"
    else:
        env["device"] = "cpu"
    return env


class _Torch:
    """Runs specs with PyTorch: tensors on the task's device, gradients by ``backward``.

    ``compile`` is ``torch.compile`` (Inductor). Not in the default modes: on this 2-core CPU
    it took 15 s for the first shape and about 3 s for each new one (measured 2026-11-24).
    """

    modes: tuple[str, ...] = ("eager", "compile")

    def tensor(self, array: np.ndarray, task: Task) -> Any:
        import torch

        if array.dtype == dtypes.NUMPY["bfloat16"]:
            # torch.tensor takes no ml_dtypes array; float32 holds every bfloat16 exactly.
            as_f32 = torch.tensor(array.astype(np.float32), device=_device(task))
            return as_f32.to(torch.bfloat16)
        return torch.tensor(array, device=_device(task))

    def channels_last(self, x: Any) -> Any:
        return x.movedim(1, -1) if x.ndim > 2 else x

    def channels_last_text(self, name: str, ndim: int) -> str:
        return f"{name}.movedim(1, -1)"

    def resolve(self, dotted: str) -> Callable[..., Any]:
        return resolve_dotted(dotted, {})

    def value_and_grad(self, task: Task, loss_of: Callable[[Any], Any]) -> dict[str, np.ndarray]:
        import torch

        x = self.tensor(task.input, task).requires_grad_()
        loss = torch.compile(loss_of)(x) if task.mode == "compile" else loss_of(x)
        # The gradient of the sum (for reduction="none": a cotangent of ones), or along the
        # cotangent a target-less case gives.
        if task.grad_output is None:
            loss.sum().backward()
        else:
            loss.backward(gradient=self.tensor(task.grad_output, task))
        assert x.grad is not None
        return {"loss": _numpy(loss), "grad": _numpy(x.grad)}


def _device(task: Task) -> str:
    return "cuda" if task.device == "gpu" else "cpu"


def _numpy(tensor: Any) -> np.ndarray:
    """A tensor as NumPy in its own dtype (bfloat16 as ml_dtypes', exactly via float32)."""
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        exact: np.ndarray = tensor.float().numpy().astype(dtypes.NUMPY["bfloat16"])
        return exact
    out: np.ndarray = tensor.numpy()
    return out


# PyTorch's own "no kernel for this dtype" error (e.g. some CPU ops in float16).
NOT_IMPLEMENTED = (r"not implemented for '(Half|BFloat16)'",)
# A CUDA error (an out-of-range label is a device-side assert on the GPU, where the CPU
# raises an IndexError) leaves the process's CUDA context unusable: every later call fails
# with the same error (measured on an H200, torch 2.11). The worker is replaced.
POISONED = (r"CUDA error: ",)


# The entries, one module per loss family; adding a family is one import here.
SPECS = (
    *classification.SPECS,
    *multilabel.SPECS,
    *activations.SPECS,
    *regression.SPECS,
    *divergence.SPECS,
)
_FRAMEWORK = _Torch()
ENTRIES = entries(SPECS, _FRAMEWORK)
# How a dotted public name resolves (what the census compares entries by).
resolve = _FRAMEWORK.resolve
# Losses the suite covers that this framework has no public API for.
OUT_OF_SCOPE = (
    (
        "cross_entropy_on_probs",
        "no cross-entropy on probabilities: cross_entropy takes logits, nll_loss log-probs",
    ),
)
# Public APIs of these families that are not entries, each with its reason.
OUT_OF_SCOPE_APIS = scope.APIS

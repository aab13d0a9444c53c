"""PyTorch: tensors, autodiff and modes for the entries of ``torch.nn.functional`` / ``torch.nn``.

Canonical layout is PyTorch's own (classes on axis 1), so no layout change is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from conformance.adapters._entry import Unavailable
from conformance.adapters._spec import entries, resolve_dotted
from conformance.adapters.torch import classification, scope
from conformance.protocol import Task

FRAMEWORK = "torch"
REQUIRES = ("torch",)

# Repro snippet: NumPy `x`, `t`, `weight` are defined before it (see conformance.runner.repro).
SNIPPET = """\
import torch
input = torch.tensor(x, requires_grad=True)
target = torch.tensor(t)
w = None if weight is None else torch.tensor(weight)
pw = None if pos_weight is None else torch.tensor(pos_weight)
loss = {call}
loss.sum().backward()
print("loss", loss.detach().numpy(), "grad", input.grad.numpy(), sep="\\n")
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

        return torch.tensor(array, device=_device(task))

    def channels_last(self, x: Any) -> Any:
        return x.movedim(1, -1) if x.ndim > 2 else x

    def channels_last_text(self, name: str, ndim: int) -> str:
        return f"{name}.movedim(1, -1)"

    def resolve(self, dotted: str) -> Callable[..., Any]:
        return resolve_dotted(dotted, {})

    def value_and_grad(self, task: Task, loss_of: Callable[[Any], Any]) -> dict[str, np.ndarray]:
        import torch

        x = torch.tensor(task.input, device=_device(task), requires_grad=True)
        loss = torch.compile(loss_of)(x) if task.mode == "compile" else loss_of(x)
        # For reduction="none" the gradient is that of the sum (a cotangent of ones).
        loss.sum().backward()
        assert x.grad is not None
        return {"loss": loss.detach().cpu().numpy(), "grad": x.grad.cpu().numpy()}


def _device(task: Task) -> str:
    return "cuda" if task.device == "gpu" else "cpu"


# PyTorch's own "no kernel for this dtype" error (e.g. some CPU ops in float16).
NOT_IMPLEMENTED = (r"not implemented for '(Half|BFloat16)'",)


# The entries, one module per loss family; adding a family is one import here.
SPECS = (*classification.SPECS,)
ENTRIES = entries(SPECS, _Torch())
# Public APIs of these families that are not entries, each with its reason.
OUT_OF_SCOPE_APIS = scope.APIS

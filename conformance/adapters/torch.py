"""PyTorch: ``torch.nn.functional.cross_entropy`` and ``torch.nn.CrossEntropyLoss``.

Canonical layout is PyTorch's own (classes on axis 1), so no layout change is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from conformance.adapters._entry import Unavailable
from conformance.adapters._spec import Kw, Param, Tensor, entries, resolve_dotted, twins
from conformance.oracle.options import Declared
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

_CE_KWARGS = (
    Kw("weight", Tensor("weight")),
    Kw("ignore_index", Param("ignore_index")),
    Kw("reduction", Param("reduction")),
    Kw("label_smoothing", Param("label_smoothing")),
)
_BOTH = frozenset({"index", "probs"})
_INDEX = frozenset({"index"})

_NLL_KWARGS = (
    Kw("weight", Tensor("weight")),
    Kw("ignore_index", Param("ignore_index")),
    Kw("reduction", Param("reduction")),
)
_BCE_DOC = "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html"
_BCE_PROFILE = (
    # "BCELoss clamps its log function outputs to be greater than or equal to -100"
    Declared("log_clamp", "-100", _BCE_DOC),
    # its backward divides by max(p (1 - p), EPSILON) with EPSILON = 1e-12 held as a float
    Declared(
        "prob_grad",
        "clamp_1e-12f",
        "https://github.com/pytorch/pytorch/blob/v2.13.0/aten/src/ATen/native/Loss.cpp",
    ),
)
# "pos_weight ... broadcast ... along the last dimension" (BCEWithLogitsLoss docs)
_POS_LAST = Declared(
    "pos_weight_axis",
    "last",
    "https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html",
)
_BINARY = frozenset({"binary"})
_BCE_KWARGS = (Kw("weight", Tensor("weight")), Kw("reduction", Param("reduction")))
_LOGITS_KWARGS = (*_BCE_KWARGS, Kw("pos_weight", Tensor("pos_weight")))
SPECS = (
    *twins(
        "torch.nn.functional.cross_entropy",
        "torch.nn.CrossEntropyLoss",
        "cross_entropy",
        _BOTH,
        kwargs=_CE_KWARGS,
    ),
    *twins(
        "torch.nn.functional.nll_loss", "torch.nn.NLLLoss", "nll_loss", _INDEX, kwargs=_NLL_KWARGS
    ),
    *twins(
        "torch.nn.functional.binary_cross_entropy",
        "torch.nn.BCELoss",
        "binary_cross_entropy",
        _BINARY,
        kwargs=_BCE_KWARGS,
        profile=_BCE_PROFILE,
    ),
    *twins(
        "torch.nn.functional.binary_cross_entropy_with_logits",
        "torch.nn.BCEWithLogitsLoss",
        "binary_cross_entropy_with_logits",
        _BINARY,
        kwargs=_LOGITS_KWARGS,
        profile=(_POS_LAST,),
    ),
)
ENTRIES = entries(SPECS, _Torch())

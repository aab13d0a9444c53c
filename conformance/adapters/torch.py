"""PyTorch: ``torch.nn.functional.cross_entropy`` and ``torch.nn.CrossEntropyLoss``.

Canonical layout is PyTorch's own (classes on axis 1), so no layout change is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from conformance.adapters._entry import Entry, Unavailable, calling
from conformance.protocol import Task

FRAMEWORK = "torch"
REQUIRES = ("torch",)

# Repro snippet: NumPy `x`, `t`, `weight` are defined before it (see conformance.runner.repro).
SNIPPET = """\
import torch
input = torch.tensor(x, requires_grad=True)
target = torch.tensor(t)
w = None if weight is None else torch.tensor(weight)
loss = {call}
loss.sum().backward()
print("loss", loss.detach().numpy(), "grad", input.grad.numpy(), sep="\\n")
"""

_ALL_REDUCTIONS = frozenset({"none", "mean", "sum"})
_CE_PARAMS = frozenset({"weight", "ignore_index", "label_smoothing"})


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


def _device(task: Task) -> str:
    return "cuda" if task.device == "gpu" else "cpu"


def _ce_kwargs(task: Task) -> tuple[dict[str, Any], str]:
    """Keyword arguments for the call, and their text as a user would write them."""
    import torch

    p = task.params
    kwargs: dict[str, Any] = {}
    text = []
    if p.get("weight") is not None:
        kwargs["weight"] = torch.tensor(p["weight"], device=_device(task))
        text.append("weight=w")
    for name in ("ignore_index", "reduction", "label_smoothing"):
        kwargs[name] = p[name]
        text.append(f"{name}={p[name]!r}")
    return kwargs, ", ".join(text)


def _value_and_grad(task: Task, loss_of: Callable[[Any, Any], Any]) -> dict[str, np.ndarray]:
    import torch

    x = torch.tensor(task.input, device=_device(task), requires_grad=True)
    target = torch.tensor(task.target, device=_device(task))
    loss = loss_of(x, target)
    # For reduction="none" the gradient is that of the sum (a cotangent of ones).
    loss.sum().backward()
    assert x.grad is not None
    return {"loss": loss.detach().cpu().numpy(), "grad": x.grad.cpu().numpy()}


def _functional(task: Task) -> tuple[dict[str, np.ndarray], str]:
    import torch

    kwargs, text = _ce_kwargs(task)
    call = f"torch.nn.functional.cross_entropy(input, target, {text})"
    with calling(call):
        outputs = _value_and_grad(
            task, lambda x, t: torch.nn.functional.cross_entropy(x, t, **kwargs)
        )
    return outputs, call


def _module(task: Task) -> tuple[dict[str, np.ndarray], str]:
    import torch

    kwargs, text = _ce_kwargs(task)
    call = f"torch.nn.CrossEntropyLoss({text})(input, target)"
    with calling(call):
        loss_fn = torch.nn.CrossEntropyLoss(**kwargs)
        outputs = _value_and_grad(task, lambda x, t: loss_fn(x, t))
    return outputs, call


# PyTorch's own "no kernel for this dtype" error (e.g. some CPU ops in float16).
NOT_IMPLEMENTED = (r"not implemented for '(Half|BFloat16)'",)

ENTRIES = (
    Entry(
        api="torch.nn.functional.cross_entropy",
        loss="cross_entropy",
        targets=frozenset({"index", "probs"}),
        params=_CE_PARAMS,
        reductions=_ALL_REDUCTIONS,
        run=_functional,
    ),
    Entry(
        api="torch.nn.CrossEntropyLoss",
        loss="cross_entropy",
        targets=frozenset({"index", "probs"}),
        params=_CE_PARAMS,
        reductions=_ALL_REDUCTIONS,
        run=_module,
    ),
)

"""The ``torch.nn.Module`` a loss is exported through (``torch.onnx.export`` takes a module).

Imported only where torch already is (the ONNX Runtime worker, a repro snippet): defining
the class imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class LossModule(torch.nn.Module):  # type: ignore[misc]  # torch is untyped here (mypy skips it)
    """``forward(*tensors)`` is ``function(*tensors)``: a loss call as an exportable module.

    It has no parameters and no train/eval behaviour; it is put in eval mode so the exporter
    does not warn about exporting a module in training mode.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        super().__init__()
        self.function = function
        self.train(False)

    def forward(self, *tensors: Any) -> Any:
        return self.function(*tensors)

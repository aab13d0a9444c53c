"""Plain data that travels between the runner and a framework worker.

Only NumPy arrays, strings, numbers and dicts cross the process boundary, so a worker can
die without taking anything else with it and an adapter never sees a framework-free object
it must understand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

TargetKind = Literal["index", "probs", "binary", "real", "none"]
Status = Literal["ok", "unsupported", "raised", "not-implemented"]


@dataclass(frozen=True)
class Task:
    """One (case, API) call for a worker.

    ``input`` is in the canonical channel-first layout (N, C, d1, ..., dk) and already in
    the case dtype; ``target`` is int64 class indices (N, d1, ..., dk) or probabilities of
    the input's shape and dtype. ``params`` holds the canonical loss parameters:
    ``weight`` (ndarray of the case dtype, or None), ``ignore_index`` (int), ``reduction``
    ("none" | "mean" | "sum"), ``label_smoothing`` (float), and for binary losses
    ``pos_weight`` (ndarray of the case dtype, or None); a ``binary`` target holds one value
    in [0, 1] per input element. A target-less case (a building block such as softmax;
    ``target_kind`` "none") has ``target`` None and a ``grad_output`` of the input's shape
    and dtype: the gradient is that of sum(output * grad_output). Otherwise ``grad_output``
    is None and the gradient is that of the output's sum.
    """

    case_id: str
    loss: str
    api: str
    input: np.ndarray
    target: np.ndarray | None
    target_kind: TargetKind
    params: dict[str, Any]
    device: str = "cpu"
    mode: str = "eager"
    grad_output: np.ndarray | None = None


@dataclass
class Outcome:
    """What a worker reports for one Task.

    ``outputs`` maps output name ("loss", "grad") to the framework's value converted to
    NumPy in the canonical layout, without any other change; ``call`` is the exact call text
    made (empty when nothing was called); ``reason`` explains ``unsupported`` or carries
    ``ExceptionType: message`` for ``raised`` and ``not-implemented`` (the framework has no
    kernel for this dtype or device). ``poisoned``: the error matched one of the adapter's
    ``POISONED`` patterns, and the worker stops after answering.
    """

    status: Status
    call: str = ""
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0
    # The call left the framework unusable in this process (a CUDA device-side assert kills
    # the CUDA context): the worker must be replaced before the next Task.
    poisoned: bool = False

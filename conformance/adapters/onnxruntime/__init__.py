"""ONNX Runtime: PyTorch losses exported with ``torch.onnx.export`` and run in ``onnxruntime``.

This is what a team that moves a PyTorch model to ONNX Runtime for serving does with its
loss (evaluation, distillation, monitoring): the torch call is wrapped in a module, exported
with the exporter torch 2.13 uses by default (``dynamo=True``: ``torch.export`` then
onnxscript's torchlib translation), at opset ``OPSET``, and run in an
``onnxruntime.InferenceSession`` on the ``CPUExecutionProvider`` (``--device gpu``: the
``CUDAExecutionProvider``, when onnxruntime has one). The row's call shows all of it.

The graph takes the case's arrays as inputs (``input``, ``target``, ``w``, ``pw``), so an
exported session serves every case with the same call, shapes and dtypes: sessions are
cached in the worker (export costs about a second; running a session, microseconds).

What it does not do:

- gradients: an ``InferenceSession`` computes none (``onnxruntime-training`` is a separate
  package this suite does not use), so every entry ``lacks`` the gradient, and its grad
  rows are ``unsupported`` with that reason;
- dtypes ONNX Runtime has no kernel or no NumPy conversion for (bfloat16): ONNX Runtime's
  own error is the row's reason, and the verdict ``not-implemented`` (``NOT_IMPLEMENTED``).

The entries are the functional forms of the PyTorch adapter's specs (same arguments, same
declared semantic options: the exported graph is meant to compute what torch documents),
named ``onnxruntime[<torch API>]``. The class forms export the same graph and are left out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from conformance import dtypes
from conformance.adapters._entry import Entry, Unavailable, calling
from conformance.adapters._spec import Spec, bind, render, resolve_dotted, tensors, text_name
from conformance.adapters.torch import classification as torch_classification
from conformance.adapters.torch import regression as torch_regression
from conformance.protocol import Task

FRAMEWORK = "onnxruntime"
REQUIRES = ("torch", "onnxruntime", "onnx", "onnxscript")
# The ONNX opset every export asks for: torch 2.13's default for the dynamo exporter
# (torch.onnx._constants.ONNX_DEFAULT_OPSET), fixed here so that the call says it.
OPSET = 20
NO_GRADIENT = (
    "ONNX Runtime inference sessions compute no gradient (onnxruntime-training is not used)"
)
# The losses this runtime runs (issue #15): the functional torch entries of these.
LOSSES = (
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "l1_loss",
)
_CPU = ("CPUExecutionProvider",)
_GPU = ("CUDAExecutionProvider", "CPUExecutionProvider")
# The NumPy arrays a repro snippet feeds (its header defines them; see runner.repro).
_FEED = {"input": "x", "target": "t", "weight": "weight", "pos_weight": "pos_weight"}

# Repro snippet: NumPy `x`, `t`, `weight`, `pos_weight` are defined before it.
SNIPPET = """\
import onnxruntime as ort
import torch
from conformance.adapters.onnxruntime.module import LossModule
def tensor(a):
    if a.dtype.name == "bfloat16":
        return torch.tensor(a.astype("float32")).to(torch.bfloat16)
    return torch.tensor(a)
input = tensor(x)
target = None if t is None else tensor(t)
w = None if weight is None else tensor(weight)
pw = None if pos_weight is None else tensor(pos_weight)
loss = {call}
print("loss", loss, "grad: none (an InferenceSession computes no gradient)", sep="\\n")
"""


def environment(device: str) -> dict[str, str]:
    import onnx
    import onnxruntime
    import onnxscript
    import torch

    env = {
        "onnxruntime": onnxruntime.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
        "torch": torch.__version__,
        "opset": str(OPSET),
    }
    available = onnxruntime.get_available_providers()
    providers = _GPU if device == "gpu" else _CPU
    if providers[0] not in available:
        raise Unavailable(
            f"onnxruntime {onnxruntime.__version__} has no {providers[0]} "
            f"(onnxruntime.get_available_providers(): {', '.join(available)})"
        )
    env["device"] = f"{'gpu' if device == 'gpu' else 'cpu'} ({providers[0]})"
    return env


class _Export:
    """Resolves and renders the torch call that is exported (``conformance.adapters._spec``'s
    :class:`~conformance.adapters._spec.Calls`): the same interpreter as the torch adapter's."""

    def channels_last(self, x: Any) -> Any:
        return x.movedim(1, -1) if x.ndim > 2 else x

    def channels_last_text(self, name: str, ndim: int) -> str:
        return f"{name}.movedim(1, -1)"

    def resolve(self, dotted: str) -> Callable[..., Any]:
        return resolve_dotted(dotted, {"ort": "onnxruntime"})


_EXPORT = _Export()
# How a dotted public name resolves (the census's identity check).
resolve = _EXPORT.resolve


def _providers(task: Task) -> tuple[str, ...]:
    return _GPU if task.device == "gpu" else _CPU


def _array(name: str, task: Task) -> np.ndarray:
    if name == "input":
        return task.input
    if name == "target":
        assert task.target is not None
        return task.target
    return np.asarray(task.params[name])


def call_text(spec: Spec, task: Task) -> str:
    """What is exported and run, as a user writes it (``LossModule`` wraps the torch call in
    the module ``torch.onnx.export`` takes; see module.py)."""
    names = tensors(spec, task)
    args = ", ".join(text_name(n) for n in names)
    example = f"({args},)" if len(names) == 1 else f"({args})"
    feeds = ", ".join(f"{text_name(n)!r}: {_FEED[n]}" for n in names)
    exported = (
        f"torch.onnx.export(LossModule(lambda {args}: {render(spec, task, _EXPORT)}), "
        f"{example}, input_names={[text_name(n) for n in names]!r}, dynamo=True, "
        f"opset_version={OPSET}, verbose=False)"
    )
    return (
        f"ort.InferenceSession({exported}.model_proto.SerializeToString(), "
        f"providers={list(_providers(task))!r}).run(None, {{{feeds}}})[0]"
    )


# Exported sessions of this worker by (call text, then each input's shape and dtype): the
# call text holds everything else the graph depends on (API, parameters, opset, provider).
_SESSIONS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_MAX_SESSIONS = 512


def _torch_tensor(array: np.ndarray) -> Any:
    import torch

    if array.dtype == dtypes.NUMPY["bfloat16"]:
        # torch.tensor takes no ml_dtypes array; float32 holds every bfloat16 exactly.
        return torch.tensor(array.astype(np.float32)).to(torch.bfloat16)
    return torch.tensor(array)


def _session(spec: Spec, task: Task, call: str, feeds: dict[str, np.ndarray]) -> Any:
    """The session of ``call`` for these inputs: exported on first use, then cached."""
    key = (call, *((name, a.shape, a.dtype.name) for name, a in feeds.items()))
    session = _SESSIONS.get(key)
    if session is not None:
        _SESSIONS.move_to_end(key)
        return session
    import onnxruntime
    import torch

    from conformance.adapters.onnxruntime.module import LossModule

    names = tensors(spec, task)
    loss_of = bind(spec, _EXPORT, task)

    def forward(x: Any, *others: Any) -> Any:
        return loss_of(x, dict(zip(names[1:], others, strict=True)))

    program = torch.onnx.export(
        LossModule(forward),
        tuple(_torch_tensor(a) for a in feeds.values()),
        input_names=list(feeds),
        dynamo=True,
        opset_version=OPSET,
        verbose=False,
    )
    session = onnxruntime.InferenceSession(
        program.model_proto.SerializeToString(), providers=list(_providers(task))
    )
    _SESSIONS[key] = session
    if len(_SESSIONS) > _MAX_SESSIONS:
        _SESSIONS.popitem(last=False)
    return session


def run(spec: Spec, task: Task) -> tuple[dict[str, np.ndarray], str]:
    """Export ``spec``'s torch call on ``task``, run it in ONNX Runtime; (outputs, call)."""
    call = call_text(spec, task)
    with calling(call):
        feeds = {text_name(n): _array(n, task) for n in tensors(spec, task)}
        session = _session(spec, task, call, feeds)
        loss = session.run(None, feeds)[0]
    return {"loss": np.asarray(loss)}, call


def _entry(spec: Spec) -> Entry:
    return Entry(
        api=f"onnxruntime[{spec.name or spec.api}]",
        loss=spec.loss,
        targets=spec.targets,
        params=spec.params,
        reductions=spec.reductions,
        run=lambda task: run(spec, task),
        doc=(
            f"{spec.name or spec.api} exported with torch.onnx.export(dynamo=True, "
            f"opset_version={OPSET}) and run in an onnxruntime.InferenceSession"
            + (f"; {spec.doc}" if spec.doc else "")
        ),
        profile=spec.profile,
        modes=frozenset({"eager"}),
        unsupported=spec.outside if spec.fixed or spec.unsupported else None,
        lacks=(("grad", NO_GRADIENT),),
    )


# The functional torch specs of LOSSES (their variants included); the class forms export
# the same graph (see OUT_OF_SCOPE_APIS).
SPECS: tuple[Spec, ...] = tuple(
    s
    for s in (*torch_classification.SPECS, *torch_regression.SPECS)
    if s.loss in LOSSES and s.form == "function"
)
ENTRIES = tuple(_entry(s) for s in SPECS)

# ONNX Runtime's own errors for a dtype it has no kernel for (bfloat16 on the CPU), for a
# dtype an ONNX operator's schema excludes, and for an array its Python API cannot take
# (NumPy has no bfloat16; ml_dtypes' is refused): the verdict is not-implemented.
NOT_IMPLEMENTED = (
    r"NOT_IMPLEMENTED : Could not find an implementation for",
    r"Type 'tensor\((bfloat16|float16)\)' of input parameter \(.*\) of operator \(.*\) "
    r"in node \(.*\) is invalid",
    r"Numpy_type \d+ can't be converted to MLDataType",
)
# ONNX Runtime has no loss API of its own to census: it runs graphs exported from torch.
CENSUS_NAMESPACES: tuple[str, ...] = ()
CENSUS_NOTE = (
    "no loss namespace: ONNX Runtime has no loss API of its own, it runs the torch losses "
    "exported by torch.onnx.export (see `conformance list --entries`)"
)
_OTHER = "not exported for ONNX Runtime yet (issue #15 names CE, NLL, BCE-with-logits, MSE, L1)"
# Losses the suite covers that this runtime has no entry for.
OUT_OF_SCOPE: tuple[tuple[str, str], ...] = (
    (
        "cross_entropy_on_probs",
        "torch has no cross-entropy on probabilities to export (see the torch adapter)",
    ),
    *(
        (loss, _OTHER)
        for loss in (
            "binary_cross_entropy",
            "multilabel_soft_margin_loss",
            "sigmoid_focal_loss",
            "softmax_focal_loss",
            "softmax",
            "log_softmax",
            "sigmoid",
            "log_sigmoid",
            "huber_loss",
            "smooth_l1_loss",
            "kl_div",
            "dice_loss",
            "tversky_loss",
        )
    ),
)
_SAME_GRAPH = "its forward calls {}, so it exports the same graph (that entry)"
# Public APIs a user of this route could reach for that are not entries, each with its reason.
OUT_OF_SCOPE_APIS: tuple[tuple[str, str], ...] = (
    *(
        (f"torch.nn.{cls}", _SAME_GRAPH.format(f"torch.nn.functional.{function}"))
        for cls, function in (
            ("CrossEntropyLoss", "cross_entropy"),
            ("NLLLoss", "nll_loss"),
            ("BCEWithLogitsLoss", "binary_cross_entropy_with_logits"),
            ("MSELoss", "mse_loss"),
            ("L1Loss", "l1_loss"),
        )
    ),
    (
        "onnx.reference.ReferenceEvaluator",
        "the ONNX reference implementation in Python, for checking operators; not a runtime",
    ),
)

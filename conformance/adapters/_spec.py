"""Declarative adapter entries: one structure gives both the call that is made and its text.

An entry is data (:class:`Spec`): the dotted name of the public callable, whether it is a
function or a class that is constructed then called, its positional arguments in the API's
order (Keras takes ``(y_true, y_pred)``), its keyword arguments, each drawn from the case
(:class:`Tensor`, :class:`Param`) or fixed (:class:`Const`), and, for APIs that return
per-element losses, the framework's own reduce functions. One small interpreter per
framework (a :class:`Framework`) turns arrays into tensors, resolves dotted names and runs
value-and-gradient; :func:`run` builds the arguments and renders the call text from the very
same list, so the text cannot drift from what was called.

What an entry supports is derived from the same data: it takes ``weight`` only if it passes
``Tensor("weight")``, ``ignore_index`` and ``label_smoothing`` only if it passes them as a
:class:`Param`, and the reductions its ``reduction`` table (or its reduce functions) can
express. Anything else in a case is ``unsupported``, never emulated.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from conformance.adapters._entry import Entry, calling
from conformance.oracle.options import Declared
from conformance.protocol import Task

__all__ = [
    "Calls",
    "Const",
    "Framework",
    "Kw",
    "Op",
    "Param",
    "Spec",
    "Tensor",
    "bind",
    "entries",
    "index_targets",
    "render",
    "resolve_dotted",
    "run",
    "spatial_only",
    "tensors",
    "text_name",
    "twins",
]

REDUCTIONS = ("none", "mean", "sum")
_TEXT = {"input": "input", "target": "target", "weight": "w", "pos_weight": "pw"}
_OPTIONAL = ("weight", "pos_weight")  # passed (with their keyword) only when the case has them


@dataclass(frozen=True)
class Tensor:
    """An array of the case as a framework tensor: ``input`` (the one differentiated),
    ``target`` or ``weight`` (omitted, with its keyword, when the case has no weight).
    ``channels_last`` moves the class axis of an N-d input to the end, and the call text
    shows the framework op that does it."""

    name: Literal["input", "target", "weight", "pos_weight"]
    channels_last: bool = False


@dataclass(frozen=True)
class Param:
    """A canonical parameter of the case, passed as is, through ``table``, or converted by
    ``of`` (optax's Dice smoothing is half the canonical one: the call shows the value a
    porting user writes)."""

    name: str
    table: Mapping[str, Any] | None = None
    of: Callable[[Any], Any] | None = None

    def value(self, task: Task) -> Any:
        raw = task.params[self.name]
        if isinstance(raw, (np.integer, np.floating)):
            raw = raw.item()
        if self.of is not None:
            return self.of(raw)
        return self.table[raw] if self.table is not None else raw


@dataclass(frozen=True)
class Const:
    """A fixed argument, or one computed from the task by ``of`` (e.g. ``soft_label``)."""

    value: Any = None
    of: Callable[[Task], Any] | None = None

    def resolve(self, task: Task) -> Any:
        return self.of(task) if self.of is not None else self.value


@dataclass(frozen=True)
class Op:
    """A public framework function applied to other sources, as a user writes it:
    ``Op("tf.gather", (Tensor("weight"), Tensor("target")))`` is ``tf.gather(w, target)``
    (class weights as per-sample weights), ``Op("paddle.unsqueeze", (Tensor("target"),
    Const(1)))`` a label with its class axis kept."""

    function: str
    args: tuple[Source, ...]


Source = Tensor | Param | Const | Op


def _tensors(source: Source) -> set[str]:
    if isinstance(source, Tensor):
        return {source.name}
    if isinstance(source, Op):
        return set().union(*(_tensors(a) for a in source.args))
    return set()


@dataclass(frozen=True)
class Kw:
    """A keyword argument; ``when`` (a predicate on the task) limits where it is passed.

    A keyword whose tensor the case lacks (no ``weight``) is left out, or, for an argument
    the API requires, replaced by ``absent`` (``pos_weight=1.0``), shown in the call text."""

    name: str
    source: Source
    when: Callable[[Task], bool] | None = None
    absent: Source | None = None
    # For a class: passed to the call (``loss(y, p, sample_weight=...)``), not the constructor.
    at_call: bool = False


def index_targets(task: Task) -> bool:
    return task.target_kind == "index"


def spatial_only(task: Task) -> str | None:
    """For a channels-last variant: on (N, C) input it is the entry itself."""
    if task.input.ndim > 2:
        return None
    return "a channels-last variant: on (N, C) input it makes the documented call"


@dataclass(frozen=True)
class Spec:
    api: str
    loss: str
    targets: frozenset[str]
    args: tuple[Source, ...]
    kwargs: tuple[Kw, ...] = ()
    form: Literal["function", "class"] = "function"
    # For APIs that return per-element losses: the framework function for each reduction.
    reduce: Mapping[str, str] = field(default_factory=dict)
    profile: tuple[Declared, ...] = ()
    doc: str = ""
    # The entry's name in rows when one callable serves two entries (Keras'
    # BinaryCrossentropy with from_logits=True and False); default: ``api``.
    name: str = ""
    # Why a task is outside this entry, beyond what its arguments say (a channels-last
    # variant has nothing to add on 2-d input); None when it is in.
    unsupported: Callable[[Task], str | None] | None = None
    # The one reduction the API itself returns (tf.nn.l2_loss is a sum); "" when it takes a
    # reduction argument or returns per-element losses.
    reduced: str = ""
    # Parameters the API itself fixes (optax's kl_divergence_with_log_targets always has
    # log_target=True): the entry takes them, and serves only tasks with that value.
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def sources(self) -> list[Source]:
        flat: list[Source] = []
        todo: list[Source] = [*self.args, *(k.source for k in self.kwargs)]
        while todo:
            source = todo.pop()
            flat.append(source)
            if isinstance(source, Op):
                todo.extend(source.args)
        return flat

    @property
    def params(self) -> frozenset[str]:
        names = {s.name for s in self.sources() if isinstance(s, Param)} - {"reduction"}
        for optional in _OPTIONAL:
            if any(isinstance(s, Tensor) and s.name == optional for s in self.sources()):
                names.add(optional)
        return frozenset(names | set(self.fixed))

    def outside(self, task: Task) -> str | None:
        """Why ``task`` is outside this entry beyond its arguments (``fixed``, ``unsupported``)."""
        for name, value in self.fixed.items():
            if task.params.get(name) != value:
                return f"{self.name or self.api} always has {name}={value!r}"
        return self.unsupported(task) if self.unsupported is not None else None

    @property
    def reductions(self) -> frozenset[str]:
        if self.reduced:
            return frozenset({self.reduced})
        for s in self.sources():
            if isinstance(s, Param) and s.name == "reduction":
                return frozenset(s.table or REDUCTIONS)
        return frozenset({"none", *self.reduce})


class Calls(Protocol):
    """What :func:`render` and :func:`bind` need: how the framework names and resolves its
    callables and moves the class axis (an exporter that traces the call needs no more)."""

    def channels_last(self, x: Any) -> Any:
        """``x`` with axis 1 moved to the end (differentiable)."""

    def channels_last_text(self, name: str, ndim: int) -> str:
        """How a user writes :meth:`channels_last` of ``name`` for an ``ndim`` input."""

    def resolve(self, dotted: str) -> Callable[..., Any]:
        """The callable named ``dotted`` (e.g. ``tf.nn.softmax_cross_entropy_with_logits``)."""


class Framework(Calls, Protocol):
    """What an adapter provides to run specs: the only framework-specific code.

    ``modes`` names the execution modes it runs (``eager`` first); ``value_and_grad`` runs
    the task's ``mode`` (e.g. wraps the computation in ``jax.jit``).
    """

    modes: tuple[str, ...]

    def tensor(self, array: np.ndarray, task: Task) -> Any:
        """A constant framework tensor of ``array`` on the task's device."""

    def value_and_grad(self, task: Task, loss_of: Callable[[Any], Any]) -> dict[str, np.ndarray]:
        """Loss and d(sum of loss)/d(input) of ``loss_of(x)``, both as NumPy, canonical layout."""


def _active(spec: Spec, task: Task) -> tuple[list[Source], list[Kw]]:
    absent = {n for n in _OPTIONAL if task.params.get(n) is None}
    kwargs = []
    for k in spec.kwargs:
        if k.when is not None and not k.when(task):
            continue
        if _tensors(k.source) & absent:
            if k.absent is None:
                continue
            k = Kw(k.name, k.absent, at_call=k.at_call)
        kwargs.append(k)
    return list(spec.args), kwargs


def _text(source: Source, task: Task, fw: Calls) -> str:
    if isinstance(source, Tensor):
        name = _TEXT[source.name]
        if source.channels_last and task.input.ndim > 2:
            return fw.channels_last_text(name, task.input.ndim)
        return name
    if isinstance(source, Param):
        return repr(source.value(task))
    if isinstance(source, Op):
        return f"{source.function}({', '.join(_text(a, task, fw) for a in source.args)})"
    return repr(source.resolve(task))


def render(spec: Spec, task: Task, fw: Calls) -> str:
    """The call as a user writes it, from the same argument list :func:`run` passes."""
    args, kwargs = _active(spec, task)
    positional = [_text(a, task, fw) for a in args]
    keywords = [f"{k.name}={_text(k.source, task, fw)}" for k in kwargs if not k.at_call]
    at_call = [f"{k.name}={_text(k.source, task, fw)}" for k in kwargs if k.at_call]
    if spec.form == "class":
        call = f"{spec.api}({', '.join(keywords)})({', '.join([*positional, *at_call])})"
    else:
        call = f"{spec.api}({', '.join([*positional, *keywords])})"
    reduction = task.params.get("reduction", "mean")
    if spec.reduce and reduction != "none":
        call = f"{spec.reduce[reduction]}({call})"
    return call


def tensors(spec: Spec, task: Task) -> tuple[str, ...]:
    """The case's arrays the call reads on ``task`` (``input`` first, then ``target``,
    ``weight``, ``pos_weight``), with their names in the call text (``w``, ``pw``): what a
    runtime that traces the call takes as graph inputs."""
    args, kwargs = _active(spec, task)
    read = set().union(*(_tensors(s) for s in [*args, *(k.source for k in kwargs)]))
    return tuple(n for n in ("input", "target", *_OPTIONAL) if n in read)


def text_name(tensor: str) -> str:
    """How the call text names one of the case's arrays (``weight`` is ``w``)."""
    return _TEXT[tensor]


def bind(spec: Spec, fw: Calls, task: Task) -> Callable[[Any, Mapping[str, Any]], Any]:
    """The call ``spec`` describes on ``task`` as a function of the input and the case's
    other tensors by name (``target``, ``weight``, ``pos_weight``, as framework tensors);
    resolves the callables now, so call it inside :func:`calling`."""
    args, kwargs = _active(spec, task)
    reduction = task.params.get("reduction", "mean")
    function = fw.resolve(spec.api)
    reduce = fw.resolve(spec.reduce[reduction]) if spec.reduce and reduction != "none" else None

    def value(source: Source, x: Any, constants: Mapping[str, Any]) -> Any:
        if isinstance(source, Tensor):
            tensor = x if source.name == "input" else constants[source.name]
            return fw.channels_last(tensor) if source.channels_last else tensor
        if isinstance(source, Op):
            return fw.resolve(source.function)(*(value(a, x, constants) for a in source.args))
        return source.value(task) if isinstance(source, Param) else source.resolve(task)

    def loss_of(x: Any, constants: Mapping[str, Any]) -> Any:
        positional = [value(a, x, constants) for a in args]
        keywords = {k.name: value(k.source, x, constants) for k in kwargs if not k.at_call}
        at_call = {k.name: value(k.source, x, constants) for k in kwargs if k.at_call}
        if spec.form == "class":
            out = function(**keywords)(*positional, **at_call)
        else:
            out = function(*positional, **keywords, **at_call)
        return reduce(out) if reduce is not None else out

    return loss_of


def run(spec: Spec, fw: Framework, task: Task) -> tuple[dict[str, np.ndarray], str]:
    """Make the call ``spec`` describes on ``task``; returns (outputs, call text)."""
    call = render(spec, task, fw)
    with calling(call):
        loss_of = bind(spec, fw, task)
        constants = {} if task.target is None else {"target": fw.tensor(task.target, task)}
        for name in _OPTIONAL:
            if task.params.get(name) is not None:
                constants[name] = fw.tensor(np.asarray(task.params[name]), task)
        outputs = fw.value_and_grad(task, lambda x: loss_of(x, constants))
    return outputs, call


def twins(
    function: str,
    cls: str,
    loss: str,
    targets: frozenset[str],
    *,
    kwargs: tuple[Kw, ...],
    args: tuple[Source, ...] = (Tensor("input"), Tensor("target")),
    profile: tuple[Declared, ...] = (),
) -> tuple[Spec, Spec]:
    """The functional form of an API and its class form (``torch.nn.functional.nll_loss``
    and ``torch.nn.NLLLoss``): the same arguments, the class taking its keywords in the
    constructor. Both are entries: users call either, and they can differ."""
    return (
        Spec(function, loss, targets, args=args, kwargs=kwargs, profile=profile),
        Spec(cls, loss, targets, args=args, kwargs=kwargs, form="class", profile=profile),
    )


def entries(specs: tuple[Spec, ...], fw: Framework) -> tuple[Entry, ...]:
    """The worker-facing entries of ``specs``, run by ``fw``."""
    return tuple(
        Entry(
            api=s.name or s.api,
            loss=s.loss,
            targets=s.targets,
            params=s.params,
            reductions=s.reductions,
            run=lambda task, s=s: run(s, fw, task),  # type: ignore[misc]
            doc=s.doc,
            profile=s.profile,
            modes=frozenset(fw.modes),
            unsupported=s.outside if s.fixed or s.unsupported else None,
        )
        for s in specs
    )


def resolve_dotted(dotted: str, aliases: Mapping[str, str]) -> Callable[..., Any]:
    """Import ``dotted`` (its first part through ``aliases``, e.g. ``tf`` -> ``tensorflow``)."""
    head, *rest = dotted.split(".")
    module_name = aliases.get(head, head)
    obj: Any = importlib.import_module(module_name)
    path = module_name
    for part in rest:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            path = f"{path}.{part}"
            obj = importlib.import_module(path)
        else:
            path = f"{path}.{part}"
    return obj  # type: ignore[no-any-return]

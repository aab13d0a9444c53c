"""Load, validate and expand YAML case files.

A case file is ``{cases: [case, ...]}``; each case names a loss, an input (literal values or a
seeded generator), a target, parameters, an optional ``matrix`` that expands it into one case
per combination (with a stable derived id such as ``ce-seg[reduction=mean,dtype=float32]``),
and an optional ``expect_error``. Every problem is reported as ``file:line: field: message``
(a :class:`CaseError`), never as a traceback: the YAML is composed into nodes that keep their
line, structure is checked with the JSON Schema in ``conformance.schema``, and the arithmetic
checks (shapes, class ranges, element limits) follow here.

Hostile files cost bounded work: only regular files of at most MAX_FILE_BYTES are read, the
YAML is composed from parser events that stop at MAX_YAML_VALUES values and MAX_DEPTH levels,
literal arrays hold at most MAX_LITERAL_ELEMENTS numbers and MAX_NDIM dimensions, and a file
or a run expands into at most MAX_CASES cases (MAX_EXPANSION per matrix). Messages are one
line each: values are quoted short and control characters escaped.
"""

from __future__ import annotations

import itertools
import math
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from conformance import dtypes, oracle, schema

# The reading limits are part of this module's interface (README, tests).
from conformance._yaml import MAX_DEPTH as MAX_DEPTH
from conformance._yaml import (
    MAX_ERRORS,
    CaseError,
    CaseErrors,
    Path_,
    _dotted,
    _line,
    _one_line,
    _read,
    _show,
    capped,
)
from conformance._yaml import MAX_FILE_BYTES as MAX_FILE_BYTES
from conformance._yaml import MAX_YAML_VALUES as MAX_YAML_VALUES
from conformance.dtypes import finfo
from conformance.oracle import params as params_registry

__all__ = [
    "DEFAULT_MAX_ELEMENTS",
    "Case",
    "CaseError",
    "CaseErrors",
    "find_case_files",
    "get",
    "load_file",
    "load_paths",
]

DEFAULT_MAX_ELEMENTS = 2**25  # 33.5 M elements: a 2×19×512×1024 segmentation batch fits
MAX_NDIM = schema.MAX_NDIM  # dimensions of an input, (N, C) plus up to 14 spatial ones
MAX_LITERAL_ELEMENTS = 2**16  # numbers in one literal `values` array; generators make more
MAX_EXPANSION = 1000  # cases one matrix may expand into
MAX_CASES = 10_000  # expanded cases in one file, and in one run
DEFAULTS: dict[str, Any] = params_registry.defaults()  # every parameter, at its default


@dataclass(frozen=True)
class Case:
    """One expanded case: everything needed to build its arrays and its Tasks."""

    id: str
    base_id: str
    file: str
    line: int
    loss: str
    dtype: str
    input_spec: dict[str, Any]
    target_spec: dict[str, Any]
    target_kind: str
    params: dict[str, Any]
    expect_error: str | None = None
    description: str = ""
    source: str = ""
    axes: dict[str, Any] = field(default_factory=dict)
    tolerance_factor: float = 1.0

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The input (case dtype, channel-first) and the target: int64 class indices, or
        probabilities in the case dtype; None for a target-less case (a building block).
        An error case may give class labels that are not whole numbers (2.5, NaN); those
        stay floats in the case dtype, as a user would pass them (target_kind is still
        "index")."""
        x = _make_input(self.input_spec, self.dtype, oracle.LOSSES[self.loss].input_kind)
        if self.target_kind == "none":
            return x, None
        return x, _make_target(self.target_spec, self.target_kind, x, self.params, self.dtype)

    def grad_output(self) -> np.ndarray | None:
        """The cotangent a target-less case takes its gradient along (None for the others,
        whose gradient is that of the output's sum): a standard normal draw of the input's
        shape in the case dtype, seeded with the input's seed + 1 (1 for a literal input).
        Ones would not do: softmax sums to 1 whatever the input, so the gradient of its sum
        is exactly 0."""
        if self.target_kind != "none":
            return None
        rng = np.random.default_rng(int(self.input_spec.get("seed", 0)) + 1)
        cotangent: np.ndarray = dtypes.cast(rng.normal(size=self.shape()), self.dtype)
        return cotangent

    def shape(self) -> tuple[int, ...]:
        """The input's shape as declared (no array is built: sizing a case must not cost
        its memory)."""
        if "values" in self.input_spec:
            return tuple(int(d) for d in np.shape(self.input_spec["values"]))
        return tuple(int(d) for d in self.input_spec["shape"])

    def weight(self) -> np.ndarray | None:
        """Class weights rounded to the case dtype (what the framework receives)."""
        return self._per_class("weight")

    def pos_weight(self) -> np.ndarray | None:
        """Binary losses' positive-target weights, one per class, in the case dtype."""
        return self._per_class("pos_weight")

    def _per_class(self, name: str) -> np.ndarray | None:
        w = self.params.get(name)
        return None if w is None else dtypes.cast(np.asarray(w, dtype=np.float64), self.dtype)


# ---------------------------------------------------------------- validation


_VALIDATOR = jsonschema.Draft202012Validator(schema.FILE)


def _schema_errors(
    doc: Any,
    lines: dict[Path_, int],
    label: str,
    validator: jsonschema.protocols.Validator = _VALIDATOR,
) -> list[CaseError]:
    errors = []
    # Stop early: a file of 10,000 broken cases needs no more than a screenful to fix.
    for err in itertools.islice(validator.iter_errors(doc), MAX_ERRORS + 1):
        path: Path_ = tuple(err.absolute_path)
        message, key = _schema_message(err)
        path = (*path, key) if key else path
        errors.append(CaseError(label, _line(lines, path), _dotted(path), message))
    return sorted(errors, key=lambda e: e.line)


def _schema_message(err: jsonschema.ValidationError) -> tuple[str, str]:
    """The message for one schema error, and the offending key when it is an unknown one."""
    sub: dict[str, Any] = err.schema if isinstance(err.schema, dict) else {}
    known = sub.get("properties", {})
    allowed = ", ".join(sorted(known))
    instance: Any = err.instance
    if err.validator == "additionalProperties":
        extra = sorted(set(instance) - set(known))
        return f"unknown key {_show(extra[0])} (allowed: {allowed})", extra[0]
    if err.validator == "required":
        return f"{err.message.split(' is ')[0]} is required (allowed: {allowed})", ""
    if err.validator == "enum":
        choices: Any = err.validator_value
        options = ", ".join(str(v) for v in choices)
        return f"{_show(instance)} is not allowed (allowed: {options})", ""
    if err.validator == "type":
        kind = type(instance).__name__
        wanted: Any = err.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return f"expected {wanted}, got {kind} {_show(instance)}", ""
    if err.validator == "oneOf":
        return f"write either literal `values` or a generator ({sub.get('description')})", ""
    if err.validator in ("maxItems", "maxLength"):
        unit = "items" if err.validator == "maxItems" else "characters"
        return (
            f"has {len(instance)} {unit}; the limit is {err.validator_value}",
            "",
        )
    # jsonschema quotes the whole value; a 100,000-character id must not become the message
    return err.message.replace(repr(instance), _show(instance), 1), ""


class _Check:
    """Collects semantic errors for one case, each located by its field path."""

    def __init__(self, label: str, lines: dict[Path_, int], base: Path_) -> None:
        self.label, self.lines, self.base = label, lines, base
        self.errors: list[CaseError] = []

    def fail(self, rel: Path_, message: str) -> None:
        path = (*self.base, *rel)
        self.errors.append(CaseError(self.label, _line(self.lines, path), _dotted(path), message))


def _literal(values: Any, check: _Check, rel: Path_) -> np.ndarray | None:
    """A literal array as float64, after checking its numbers, size and depth cheaply."""
    count = 0
    todo: list[tuple[Any, Path_]] = [(values, rel)]
    while todo:
        value, at = todo.pop()
        if isinstance(value, list):
            if len(at) - len(rel) >= MAX_NDIM:
                check.fail(
                    rel, f"nested deeper than {MAX_NDIM} levels; the limit is {MAX_NDIM} dimensions"
                )
                return None
            todo.extend((v, (*at, i)) for i, v in reversed(list(enumerate(value))))
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            check.fail(at, f"expected a number, got {type(value).__name__} {_show(value)}")
            return None
        else:
            count += 1
            if count > MAX_LITERAL_ELEMENTS:
                check.fail(
                    rel,
                    f"holds more than {MAX_LITERAL_ELEMENTS} numbers; literal values are for small "
                    "worked examples (use a generator: shape, seed, scale)",
                )
                return None
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError):
        check.fail(rel, "nested lists are ragged; expected a rectangular array")
        return None
    return arr


def _check_range(values: np.ndarray, dtypes: list[str], check: _Check, rel: Path_) -> None:
    """A finite literal that becomes ±inf in a case dtype is a typo, not an intent."""
    finite = values[np.isfinite(values)]
    for dtype in dtypes:
        limit = float(finfo(dtype).max)
        too_big = finite[np.abs(finite) > limit]
        if too_big.size:
            check.fail(
                rel,
                f"{too_big[0]:g} overflows {dtype} (largest {limit:g}); "
                "write .inf or -.inf for an infinity",
            )
            return


def _check_weight(
    weight: list[Any],
    classes: int,
    shape: tuple[int, ...],
    dtypes: list[str],
    expect_error: bool,
    check: _Check,
) -> bool:
    """A flat list of C numbers; any other length or a nested list (a 2-D weight) only in an
    error case. False when the weight cannot even be built as an array."""
    rel: Path_ = ("params", "weight")
    w = _literal(weight, check, rel)
    if w is None:
        return False
    _check_range(w, dtypes, check, rel)
    if expect_error:
        return True
    if w.ndim != 1:
        check.fail(
            rel,
            f"must be a flat list of C={classes} numbers; received shape {list(w.shape)} "
            "(set expect_error to test how frameworks reject it)",
        )
    elif len(w) != classes:
        check.fail(
            rel,
            f"must have length C={classes} (input shape {list(shape)}); received {len(w)} values",
        )
    return True


def _validate_case(
    raw: dict[str, Any], check: _Check, max_elements: int
) -> tuple[tuple[int, ...], str] | None:
    """Shape and range checks; returns (input shape, target kind) when the case is sound."""
    inp, tgt = raw["input"], raw.get("target")
    dtypes = raw.get("matrix", {}).get("dtype") or [raw.get("dtype", "float32")]
    if "values" in inp:
        x = _literal(inp["values"], check, ("input", "values"))
        if x is None:
            return None
        _check_range(x, dtypes, check, ("input", "values"))
        shape = x.shape
    else:
        shape = tuple(inp["shape"])
    if len(shape) < 2:
        check.fail(("input",), f"needs shape (N, C, d1, ..., dk); received shape={list(shape)}")
        return None
    if 0 in shape[1:]:  # what the schema says for generated shapes, for literals too
        check.fail(
            ("input", "values"),
            f"only the batch dimension N may be 0; received shape={list(shape)}",
        )
        return None
    size = math.prod(shape)
    if size > max_elements:
        check.fail(
            ("input", "shape"),
            f"{size} elements exceeds the limit of {max_elements} (--max-elements)",
        )
        return None
    classes = shape[1]
    spatial = (shape[0], *shape[2:])
    expect_error = "expect_error" in raw
    params = raw.get("params", {})
    if not _check_loss_params(raw, check):
        return None
    if "weight" in params and not _check_weight(
        params["weight"], classes, shape, dtypes, expect_error, check
    ):
        return None
    if "pos_weight" in params:
        pos_weight = np.asarray(params["pos_weight"], dtype=np.float64)
        _check_range(pos_weight, dtypes, check, ("params", "pos_weight"))
        if len(pos_weight) != classes and not expect_error:
            check.fail(
                ("params", "pos_weight"),
                f"must have length C={classes} (input shape {list(shape)}); "
                f"received {len(pos_weight)} values",
            )
    if oracle.LOSSES[raw["loss"]].target_kinds == ("none",):
        if tgt is not None:
            check.fail(
                ("target",),
                f"{raw['loss']} takes no target (its output has the input's shape); "
                "remove `target`",
            )
            return None
        return shape, "none"
    if tgt is None:
        check.fail(
            (),
            f"missing field 'target': {raw['loss']} takes "
            f"{' or '.join(oracle.LOSSES[raw['loss']].target_kinds)} targets",
        )
        return None
    if "values" not in tgt:
        kind = str(tgt["kind"])
        if kind != "index" and "ignore_share" in tgt:
            check.fail(("target", "ignore_share"), "only index targets can be ignored")
        if kind != "probs" and tgt.get("one_hot"):
            check.fail(("target", "one_hot"), "only probs targets can be one-hot masks")
        return (shape, kind) if _check_target_kind(raw, kind, check) else None
    t = _literal(tgt["values"], check, ("target", "values"))
    if t is None:
        return None
    kinds = oracle.LOSSES[raw["loss"]].target_kinds
    implied = kinds[0] if kinds in (("binary",), ("real",)) else "probs"
    kind = tgt.get("kind") or (implied if t.shape == shape else "index")
    if not _check_target_kind(raw, kind, check):
        return None
    if kind in ("probs", "binary", "real"):
        _check_range(t, dtypes, check, ("target", "values"))
        if t.shape != shape and not expect_error:
            check.fail(
                ("target", "values"),
                f"{kind} targets must have the input's shape {list(shape)}; "
                f"received {list(t.shape)}",
            )
        return shape, kind
    if t.shape != spatial and not expect_error:
        check.fail(
            ("target", "values"),
            f"class-index targets must have shape (N, d1, ..., dk) = {list(spatial)} for input "
            f"{list(shape)}; received {list(t.shape)}",
        )
        return None
    if not _integral(t):
        if not expect_error:
            check.fail(
                ("target", "values"),
                "class indices must be integers "
                "(set expect_error to test how frameworks reject float labels)",
            )
            return None
        # Float class labels (2.5, NaN): the case is about how frameworks reject them, so
        # they are sent as floats in the case dtype (see _make_target), not truncated.
        _check_range(t, dtypes, check, ("target", "values"))
        return shape, kind
    try:  # exactly, element by element: float64 would round indices beyond 2**53
        labels = np.array(tgt["values"], dtype=np.int64)
    except OverflowError:
        check.fail(("target", "values"), "class indices must fit int64")
        return None
    ignore_values = {int(v) for v in raw.get("matrix", {}).get("ignore_index", [])}
    ignore_values.add(int(params.get("ignore_index", DEFAULTS["ignore_index"])))
    bad = [
        int(v) for v in np.unique(labels) if not (0 <= v < classes) and int(v) not in ignore_values
    ]
    if bad and not expect_error:
        check.fail(
            ("target", "values"),
            f"class indices {bad[:5]} are outside [0, {classes}) and not ignore_index "
            "(set expect_error to test how frameworks reject them)",
        )
    return shape, kind


def _integral(values: np.ndarray) -> bool:
    """Whether every value is a finite whole number (a class index; 2.0 counts)."""
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _expand(raw: dict[str, Any], label: str, line: int, kind: str) -> Iterator[Case]:
    matrix: dict[str, list[Any]] = raw.get("matrix", {})
    axes = list(matrix)
    for combo in itertools.product(*(matrix[a] for a in axes)):
        chosen = dict(zip(axes, combo, strict=True))
        # The parameters the loss takes (conformance/oracle/__init__.py), at their defaults
        taken = ("reduction", *oracle.LOSSES[raw["loss"]].params)
        params = {**params_registry.defaults(taken), **raw.get("params", {})}
        for name, value in chosen.items():
            if name != "dtype":
                params[name] = value
        # YAML may say 255.0 for an index: each parameter normalises its own values
        params = {k: params_registry.PARAMS[k].normalise(v) for k, v in params.items()}
        if kind == "none":  # a building block maps the input elementwise: nothing to reduce
            params["reduction"] = "none"
        suffix = ",".join(f"{a}={v}" for a, v in chosen.items())
        yield Case(
            id=f"{raw['id']}[{suffix}]" if suffix else raw["id"],
            base_id=raw["id"],
            file=label,
            line=line,
            loss=raw["loss"],
            dtype=chosen.get("dtype", raw.get("dtype", "float32")),
            input_spec=raw["input"],
            target_spec=raw.get("target", {}),
            target_kind=kind,
            params=params,
            expect_error=raw.get("expect_error"),
            description=raw.get("description", ""),
            source=raw.get("source", ""),
            axes=chosen,
            tolerance_factor=float(raw.get("tolerance_factor", 1.0)),
        )


def load_file(path: str | Path, *, max_elements: int = DEFAULT_MAX_ELEMENTS) -> list[Case]:
    """All cases of one file, expanded. Raises CaseErrors listing every problem found."""
    path = Path(path)
    label = _label(path)
    try:
        doc, lines = _read(path, label)
    except CaseError as exc:
        raise CaseErrors([exc]) from None
    if isinstance(doc, dict) and "known" in doc and "cases" not in doc:
        return []  # a known-divergence ledger file (conformance/ledger.py loads it)
    if (
        isinstance(doc, dict)
        and isinstance(doc.get("cases"), list)
        and len(doc["cases"]) > MAX_CASES
    ):
        raise CaseErrors(
            [
                CaseError(
                    label,
                    _line(lines, ("cases",)),
                    "cases",
                    f"{len(doc['cases'])} cases; the limit is {MAX_CASES} per file",
                )
            ]
        )
    errors = _schema_errors(doc, lines, label)
    if errors:
        raise CaseErrors(capped(errors, label))
    _integers(doc, schema.FILE)
    cases: list[Case] = []
    for i, raw in enumerate(doc["cases"]):
        check = _Check(label, lines, ("cases", i))
        checked = _validate_case(raw, check, max_elements)
        count = _expansion(raw, check)
        if count + len(cases) > MAX_CASES and not check.errors:
            check.fail(
                ("matrix",) if "matrix" in raw else (),
                f"the file expands into more than {MAX_CASES} cases; the limit is {MAX_CASES}",
            )
        errors.extend(check.errors)
        if checked is not None and not check.errors:
            cases.extend(_expand(raw, label, _line(lines, ("cases", i)), checked[1]))
    if errors:
        raise CaseErrors(capped(sorted(errors, key=lambda e: e.line), label))
    return cases


def _expansion(raw: dict[str, Any], check: _Check) -> int:
    """How many cases ``raw``'s matrix expands into; more than MAX_EXPANSION is an error."""
    matrix: dict[str, list[Any]] = raw.get("matrix", {})
    count = math.prod(len(values) for values in matrix.values())
    if count > MAX_EXPANSION:
        sizes = " × ".join(str(len(v)) for v in matrix.values())
        check.fail(
            ("matrix",),
            f"expands into {count} cases ({sizes}); the limit is {MAX_EXPANSION} per case",
        )
    return count


def _integers(value: Any, sub: dict[str, Any]) -> Any:
    """Integral floats where the schema wants an integer become ints (``seed: 1.0``)."""
    if sub.get("type") == "integer" and isinstance(value, float):
        return int(value)
    if isinstance(value, dict):
        for name, inner in sub.get("properties", {}).items():
            if name in value:
                value[name] = _integers(value[name], inner)
    elif isinstance(value, list) and isinstance(sub.get("items"), dict):
        prefix = sub.get("prefixItems", [])
        value[:] = [
            _integers(v, prefix[i] if i < len(prefix) else sub["items"])
            for i, v in enumerate(value)
        ]
    return value


def _label(path: Path) -> str:
    """The file as messages and rows name it: relative to the working directory when it is
    below it, with bytes that are not UTF-8 and control characters written as escapes
    (``caf\\xe9.yaml``), so every label is printable, one-line UTF-8 text."""
    try:
        where = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
        where = Path(os.path.abspath(path))
    try:
        text = str(where.relative_to(Path.cwd()))
    except (ValueError, OSError):
        text = str(path)
    text = os.fsencode(text).decode("utf-8", "backslashreplace")
    return text if text.isprintable() else _one_line(text, len(text))  # a newline in a name


def find_case_files(paths: Iterable[str | Path]) -> list[Path]:
    """YAML files named directly, or found (sorted) under directories.

    Symlinked directories are not followed (no loops). A directory that cannot be listed
    is returned as it is, so that loading it reports why instead of skipping it silently.
    """
    found: list[Path] = []
    for p in map(Path, paths):
        if not _is_dir(p):
            found.append(p)
            continue
        below: list[Path] = []

        def unreadable(exc: OSError, below: list[Path] = below, top: Path = p) -> None:
            below.append(Path(exc.filename) if exc.filename else top)

        for root, dirs, files in os.walk(p, onerror=unreadable):
            below.extend(
                Path(root, n) for n in (*dirs, *files) if Path(n).suffix in (".yaml", ".yml")
            )
        found.extend(sorted(below))
    return found


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:  # loading it will say why it cannot be read
        return False


def load_paths(
    paths: Iterable[str | Path], *, max_elements: int = DEFAULT_MAX_ELEMENTS
) -> list[Case]:
    """Cases from files and directories; ids must be unique across all of them, and a run
    holds at most MAX_CASES cases."""
    cases: list[Case] = []
    errors: list[CaseError] = []
    total = 0
    for path in find_case_files(paths):
        try:
            loaded = load_file(path, max_elements=max_elements)
        except CaseErrors as exc:
            errors.extend(exc.errors)
            continue
        if loaded and total + len(loaded) > MAX_CASES:
            first = loaded[0]
            errors.append(
                CaseError(
                    first.file,
                    first.line,
                    "cases",
                    f"this file brings the run to {total + len(loaded)} cases; the limit is "
                    f"{MAX_CASES} per run (run fewer files at a time)",
                )
            )
        else:
            cases.extend(loaded)  # beyond the limit only counted, so memory stays bounded
        total += len(loaded)
    seen: dict[str, Case] = {}
    for case in cases:
        if case.id in seen:
            first = seen[case.id]
            errors.append(
                CaseError(
                    case.file,
                    case.line,
                    "id",
                    f"{case.id!r} is already used at {first.file}:{first.line}",
                )
            )
        seen[case.id] = case
    if errors:
        raise CaseErrors(errors)
    return cases


def get(path: str | Path, case_id: str) -> Case:
    """One expanded case by id (used by repro snippets)."""
    for case in load_file(path):
        if case.id == case_id:
            return case
    raise KeyError(f"no case {case_id!r} in {path}")


# ---------------------------------------------------------------- array generation


def _check_loss_params(raw: dict[str, Any], check: _Check) -> bool:
    """The parameters (and matrix axes) a case gives must be ones its loss declares."""
    declared = oracle.LOSSES[raw["loss"]]
    # Every loss reduces, except the target-less building blocks.
    allowed = {*declared.params, *(() if declared.target_kinds == ("none",) else ("reduction",))}
    ok = True
    for where in ("params", "matrix"):
        for name in raw.get(where, {}):
            if name != "dtype" and name not in allowed:
                check.fail(
                    (where, name),
                    f"{raw['loss']} has no parameter {name!r} "
                    f"(its parameters: {', '.join(sorted(allowed))})",
                )
                ok = False
    given: list[tuple[Path_, Any]] = [
        (("params", "reduction"), raw.get("params", {}).get("reduction"))
    ]
    given += [
        (("matrix", "reduction", i), r)
        for i, r in enumerate(raw.get("matrix", {}).get("reduction", []))
    ]
    for at, value in given:
        if value is not None and value not in declared.reductions:
            check.fail(
                at,
                f"{raw['loss']} has no reduction {value!r} "
                f"(its reductions: {', '.join(declared.reductions)})",
            )
            ok = False
    return ok


def _check_target_kind(raw: dict[str, Any], kind: str, check: _Check) -> bool:
    kinds = oracle.LOSSES[raw["loss"]].target_kinds
    if kind in kinds:
        return True
    check.fail(
        ("target",),
        f"{raw['loss']} takes {' or '.join(kinds)} targets; received {kind} targets",
    )
    return False


def _make_input(spec: dict[str, Any], dtype: str, kind: str = "logits") -> np.ndarray:
    """The input in the case dtype: literal values as written, or a seeded draw turned into
    what the loss takes (``log_probs``: log_softmax over the class axis, in float64)."""
    if "values" in spec:
        literal: np.ndarray = dtypes.cast(np.asarray(spec["values"], dtype=np.float64), dtype)
        return literal
    rng = np.random.default_rng(spec["seed"])
    shape = tuple(spec["shape"])
    scale = float(spec.get("scale", 1.0))
    if spec.get("distribution", "normal") == "uniform":
        values = rng.uniform(-scale, scale, size=shape)
    else:
        values = rng.normal(0.0, scale, size=shape)
    values = values + float(spec.get("offset", 0.0))
    if kind == "log_probs" and values.size:
        values = oracle.log_softmax(values, axis=1)
    elif kind == "softmax" and values.size:  # probabilities over the classes (axis 1)
        values = oracle.softmax(values, axis=1)
    elif kind == "probs":  # elementwise probabilities (binary losses): sigmoid of the draw
        with np.errstate(over="ignore"):
            values = 1.0 / (1.0 + np.exp(-values))
    with np.errstate(over="ignore"):  # a scale beyond the dtype's range gives ±inf, as asked
        return dtypes.cast(values, dtype)


def _make_target(
    spec: dict[str, Any], kind: str, x: np.ndarray, params: dict[str, Any], dtype: str
) -> np.ndarray:
    if "values" in spec:
        if kind == "index":
            labels = np.asarray(spec["values"], dtype=np.float64)
            if not _integral(labels):  # float labels, allowed only in error cases
                return dtypes.cast(labels, dtype)
            # element by element, exactly (validated to fit int64)
            return np.array(spec["values"], dtype=np.int64)
        return dtypes.cast(np.asarray(spec["values"], dtype=np.float64), dtype)
    rng = np.random.default_rng(spec["seed"])
    classes = x.shape[1]
    spatial = (x.shape[0], *x.shape[2:])
    if kind == "real":  # regression targets: a normal draw of the input's shape
        scale, offset = float(spec.get("scale", 1.0)), float(spec.get("offset", 0.0))
        with np.errstate(over="ignore"):
            real: np.ndarray = dtypes.cast(rng.normal(offset, scale, size=x.shape), dtype)
        return real
    if kind == "binary":
        if spec.get("soft", False):
            soft: np.ndarray = dtypes.cast(rng.uniform(0.0, 1.0, size=x.shape), dtype)
            return soft
        hard: np.ndarray = rng.integers(0, 2, size=x.shape).astype(dtype)
        return hard
    if kind == "probs" and spec.get("one_hot"):  # masks: one class per position
        drawn = rng.integers(0, classes, size=spatial, dtype=np.int64)
        one_hot = np.arange(classes).reshape(1, -1, *([1] * len(spatial[1:]))) == drawn[:, None]
        mask: np.ndarray = one_hot.astype(dtype)
        return mask
    if kind == "probs":
        logits = rng.normal(0.0, float(spec.get("scale", 1.0)), size=x.shape)
        if params.get("log_target"):  # KL divergence's log-probability targets
            log_probs: np.ndarray = dtypes.cast(oracle.log_softmax(logits, axis=1), dtype)
            return log_probs
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs: np.ndarray = dtypes.cast(e / e.sum(axis=1, keepdims=True), dtype)
        return probs
    target = rng.integers(0, classes, size=spatial, dtype=np.int64)
    share = float(spec.get("ignore_share", 0.0))
    count = round(share * target.size)
    if count:
        flat = target.reshape(-1)
        flat[rng.choice(target.size, size=count, replace=False)] = int(
            params.get("ignore_index", DEFAULTS["ignore_index"])
        )
    return target


# ---------------------------------------------------------------- shared with conformance.ledger


def read_yaml(path: Path, label: str) -> tuple[Any, dict[Path_, int]]:
    """The document of a YAML file read with every limit above, and the line of each value."""
    return _read(path, label)


def label(path: Path) -> str:
    """How messages and rows name ``path`` (see _label)."""
    return _label(path)


def line_of(lines: dict[Path_, int], path: Path_) -> int:
    return _line(lines, path)


def schema_errors(
    validator: jsonschema.protocols.Validator, doc: Any, lines: dict[Path_, int], label: str
) -> list[CaseError]:
    """Located, one-line messages for every error ``validator`` finds in ``doc``."""
    return _schema_errors(doc, lines, label, validator)

"""Load, validate and expand YAML case files.

A case file is ``{cases: [case, ...]}``; each case names a loss, an input (literal values or a
seeded generator), a target, parameters, an optional ``matrix`` that expands it into one case
per combination (with a stable derived id such as ``ce-seg[reduction=mean,dtype=float32]``),
and an optional ``expect_error``. Every problem is reported as ``file:line: field: message``
(a :class:`CaseError`), never as a traceback: the YAML is composed into nodes that keep their
line, structure is checked with the JSON Schema in ``conformance.schema``, and the arithmetic
checks (shapes, class ranges, element limits) follow here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import yaml

from conformance import schema

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
MAX_FILE_BYTES = 16 * 2**20
DEFAULTS: dict[str, Any] = {
    "weight": None,
    "ignore_index": -100,
    "reduction": "mean",
    "label_smoothing": 0.0,
}

Path_ = tuple[str | int, ...]


class CaseError(Exception):
    """One problem in a case file, located at ``file:line`` and naming the field."""

    def __init__(self, file: str, line: int, field: str, message: str) -> None:
        super().__init__(f"{file}:{line}: {field}: {message}")
        self.file, self.line, self.field, self.message = file, line, field, message


class CaseErrors(Exception):
    """All problems found in one or more files (so a user fixes them in one pass)."""

    def __init__(self, errors: Sequence[CaseError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = list(errors)


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

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The input (case dtype, channel-first) and the target (int64, or probs in dtype)."""
        x = _make_input(self.input_spec, self.dtype)
        return x, _make_target(self.target_spec, self.target_kind, x, self.params, self.dtype)

    def weight(self) -> np.ndarray | None:
        """Class weights rounded to the case dtype (what the framework receives)."""
        w = self.params.get("weight")
        return None if w is None else np.asarray(w, dtype=np.float64).astype(self.dtype)


# ---------------------------------------------------------------- reading YAML with lines


class _Loader(yaml.SafeLoader):
    """Safe loader that refuses aliases: ``*ref`` chains are the YAML 'billion laughs' bomb."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # PyYAML is untyped here
            raise _AliasFound(event.start_mark.line + 1)
        return super().compose_node(parent, index)


class _AliasFound(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def _read(path: Path, label: str) -> tuple[Any, dict[Path_, int]]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CaseError(label, 1, "file", f"{size} bytes; the limit is {MAX_FILE_BYTES}")
        raw = path.read_bytes()
    except OSError as exc:
        raise CaseError(label, 1, "file", f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CaseError(
            label, line, "file", f"not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        node = yaml.compose(text, Loader=_Loader)
    except _AliasFound as exc:
        raise CaseError(
            label, exc.line, "yaml", "aliases (*name) are not allowed; write the values out"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise CaseError(label, line, "yaml", f"{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise CaseError(label, 1, "yaml", str(exc)) from None
    except RecursionError:
        raise CaseError(label, 1, "yaml", "nested too deeply") from None
    if node is None:
        raise CaseError(label, 1, "file", "empty; expected a mapping with `cases:`")
    lines: dict[Path_, int] = {}
    constructor = yaml.SafeLoader("")
    try:
        return _to_python(node, (), lines, constructor, label), lines
    except RecursionError:
        raise CaseError(label, 1, "yaml", "nested too deeply") from None


def _to_python(
    node: yaml.Node, path: Path_, lines: dict[Path_, int], ctor: yaml.SafeLoader, label: str
) -> Any:
    lines[path] = node.start_mark.line + 1
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
        raise CaseError(
            label, node.start_mark.line + 1, _dotted(path), f"YAML tag {node.tag} is not allowed"
        )
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _to_python(key_node, path, {}, ctor, label)
            if not isinstance(key, str):
                raise CaseError(
                    label, key_node.start_mark.line + 1, _dotted(path), f"key {key!r} is not text"
                )
            if key in result:
                raise CaseError(
                    label, key_node.start_mark.line + 1, _dotted((*path, key)), "duplicate key"
                )
            result[key] = _to_python(value_node, (*path, key), lines, ctor, label)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, (*path, i), lines, ctor, label) for i, v in enumerate(node.value)]
    try:
        return ctor.construct_object(node)
    except yaml.YAMLError as exc:
        raise CaseError(label, node.start_mark.line + 1, _dotted(path), str(exc)) from None


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top)"


def _line(lines: dict[Path_, int], path: Path_) -> int:
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path, 1)


# ---------------------------------------------------------------- validation


_VALIDATOR = jsonschema.Draft202012Validator(schema.FILE)


def _schema_errors(doc: Any, lines: dict[Path_, int], label: str) -> list[CaseError]:
    errors = []
    for err in _VALIDATOR.iter_errors(doc):
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
        return f"unknown key {extra[0]!r} (allowed: {allowed})", extra[0]
    if err.validator == "required":
        return f"{err.message.split(' is ')[0]} is required (allowed: {allowed})", ""
    if err.validator == "enum":
        choices: Any = err.validator_value
        options = ", ".join(str(v) for v in choices)
        return f"{instance!r} is not allowed (allowed: {options})", ""
    if err.validator == "type":
        kind = type(instance).__name__
        return f"expected {err.validator_value}, got {kind} {instance!r}", ""
    if err.validator == "oneOf":
        return f"write either literal `values` or a generator ({sub.get('description')})", ""
    return err.message, ""


class _Check:
    """Collects semantic errors for one case, each located by its field path."""

    def __init__(self, label: str, lines: dict[Path_, int], base: Path_) -> None:
        self.label, self.lines, self.base = label, lines, base
        self.errors: list[CaseError] = []

    def fail(self, rel: Path_, message: str) -> None:
        path = (*self.base, *rel)
        self.errors.append(CaseError(self.label, _line(self.lines, path), _dotted(path), message))


def _literal(values: Any, check: _Check, rel: Path_) -> np.ndarray | None:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError):
        check.fail(rel, "nested lists are ragged or hold non-numbers; expected a rectangular array")
        return None
    return arr


def _check_range(values: np.ndarray, dtypes: list[str], check: _Check, rel: Path_) -> None:
    """A finite literal that becomes ±inf in a case dtype is a typo, not an intent."""
    finite = values[np.isfinite(values)]
    for dtype in dtypes:
        limit = float(np.finfo(dtype).max)
        too_big = finite[np.abs(finite) > limit]
        if too_big.size:
            check.fail(
                rel,
                f"{too_big[0]:g} overflows {dtype} (largest {limit:g}); "
                "write .inf or -.inf for an infinity",
            )
            return


def _validate_case(
    raw: dict[str, Any], check: _Check, max_elements: int
) -> tuple[tuple[int, ...], str] | None:
    """Shape and range checks; returns (input shape, target kind) when the case is sound."""
    inp, tgt = raw["input"], raw["target"]
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
    if "weight" in params:
        _check_range(np.asarray(params["weight"], np.float64), dtypes, check, ("params", "weight"))
    if "weight" in params and len(params["weight"]) != classes and not expect_error:
        check.fail(
            ("params", "weight"),
            f"must have length C={classes} (input shape {list(shape)}); "
            f"received {len(params['weight'])} values",
        )
    if "values" not in tgt:
        kind = str(tgt["kind"])
        if kind == "probs" and "ignore_share" in tgt:
            check.fail(("target", "ignore_share"), "only index targets can be ignored")
        return shape, kind
    t = _literal(tgt["values"], check, ("target", "values"))
    if t is None:
        return None
    kind = tgt.get("kind") or ("probs" if t.shape == shape else "index")
    if kind == "probs":
        _check_range(t, dtypes, check, ("target", "values"))
        if t.shape != shape and not expect_error:
            check.fail(
                ("target", "values"),
                f"probability targets must have the input's shape {list(shape)}; "
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
    if not np.all(np.isfinite(t)) or not np.all(t == np.round(t)):
        check.fail(("target", "values"), "class indices must be integers")
        return None
    ignore_values = set(raw.get("matrix", {}).get("ignore_index", []))
    ignore_values.add(params.get("ignore_index", DEFAULTS["ignore_index"]))
    bad = [int(v) for v in np.unique(t) if not (0 <= v < classes) and int(v) not in ignore_values]
    if bad and not expect_error:
        check.fail(
            ("target", "values"),
            f"class indices {bad[:5]} are outside [0, {classes}) and not ignore_index "
            "(set expect_error to test how frameworks reject them)",
        )
    return shape, kind


def _expand(raw: dict[str, Any], label: str, line: int, kind: str) -> Iterator[Case]:
    matrix: dict[str, list[Any]] = raw.get("matrix", {})
    axes = list(matrix)
    for combo in itertools.product(*(matrix[a] for a in axes)):
        chosen = dict(zip(axes, combo, strict=True))
        params = {**DEFAULTS, **raw.get("params", {})}
        for name, value in chosen.items():
            if name != "dtype":
                params[name] = value
        params["label_smoothing"] = float(params["label_smoothing"])
        params["ignore_index"] = int(params["ignore_index"])  # YAML may say 255.0
        suffix = ",".join(f"{a}={v}" for a, v in chosen.items())
        yield Case(
            id=f"{raw['id']}[{suffix}]" if suffix else raw["id"],
            base_id=raw["id"],
            file=label,
            line=line,
            loss=raw["loss"],
            dtype=chosen.get("dtype", raw.get("dtype", "float32")),
            input_spec=raw["input"],
            target_spec=raw["target"],
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
    errors = _schema_errors(doc, lines, label)
    if errors:
        raise CaseErrors(errors)
    cases: list[Case] = []
    for i, raw in enumerate(doc["cases"]):
        check = _Check(label, lines, ("cases", i))
        checked = _validate_case(raw, check, max_elements)
        errors.extend(check.errors)
        if checked is not None and not check.errors:
            cases.extend(_expand(raw, label, _line(lines, ("cases", i)), checked[1]))
    if errors:
        raise CaseErrors(sorted(errors, key=lambda e: e.line))
    return cases


def _label(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def find_case_files(paths: Iterable[str | Path]) -> list[Path]:
    """YAML files named directly, or found (sorted) under directories."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml")))
        else:
            found.append(p)
    return found


def load_paths(
    paths: Iterable[str | Path], *, max_elements: int = DEFAULT_MAX_ELEMENTS
) -> list[Case]:
    """Cases from files and directories; ids must be unique across all of them."""
    cases: list[Case] = []
    errors: list[CaseError] = []
    for path in find_case_files(paths):
        try:
            cases.extend(load_file(path, max_elements=max_elements))
        except CaseErrors as exc:
            errors.extend(exc.errors)
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


def _make_input(spec: dict[str, Any], dtype: str) -> np.ndarray:
    if "values" in spec:
        literal: np.ndarray = np.asarray(spec["values"], dtype=np.float64).astype(dtype)
        return literal
    rng = np.random.default_rng(spec["seed"])
    shape = tuple(spec["shape"])
    scale = float(spec.get("scale", 1.0))
    if spec.get("distribution", "normal") == "uniform":
        values = rng.uniform(-scale, scale, size=shape)
    else:
        values = rng.normal(0.0, scale, size=shape)
    return (values + float(spec.get("offset", 0.0))).astype(dtype)


def _make_target(
    spec: dict[str, Any], kind: str, x: np.ndarray, params: dict[str, Any], dtype: str
) -> np.ndarray:
    if "values" in spec:
        values = np.asarray(spec["values"], dtype=np.float64)
        return values.astype(np.int64) if kind == "index" else values.astype(dtype)
    rng = np.random.default_rng(spec["seed"])
    classes = x.shape[1]
    spatial = (x.shape[0], *x.shape[2:])
    if kind == "probs":
        logits = rng.normal(0.0, float(spec.get("scale", 1.0)), size=x.shape)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs: np.ndarray = (e / e.sum(axis=1, keepdims=True)).astype(dtype)
        return probs
    target = rng.integers(0, classes, size=spatial, dtype=np.int64)
    share = float(spec.get("ignore_share", 0.0))
    count = round(share * target.size)
    if count:
        flat = target.reshape(-1)
        flat[rng.choice(target.size, size=count, replace=False)] = int(params["ignore_index"])
    return target

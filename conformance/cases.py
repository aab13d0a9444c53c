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
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import yaml

from conformance import oracle, schema

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
# Limits that bound what one case file can cost (each far above what a real case file needs).
MAX_FILE_BYTES = 16 * 2**20
MAX_YAML_VALUES = 2**18  # scalars, lists and mappings in one file (262,144)
MAX_DEPTH = 32  # nesting of lists and mappings
MAX_NDIM = schema.MAX_NDIM  # dimensions of an input, (N, C) plus up to 14 spatial ones
MAX_LITERAL_ELEMENTS = 2**16  # numbers in one literal `values` array; generators make more
MAX_EXPANSION = 1000  # cases one matrix may expand into
MAX_CASES = 10_000  # expanded cases in one file, and in one run
MAX_ERRORS = 100  # problems reported per file; the rest are counted
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
        file, field, message = _one_line(file, 4096), _one_line(field, 200), _one_line(message, 500)
        super().__init__(f"{file}:{line}: {field}: {message}")
        self.file, self.line, self.field, self.message = file, line, field, message


def _one_line(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with control characters (and any other
    unprintable ones, e.g. unpaired surrogates) escaped, so a message is one safe line."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


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
        """The input (case dtype, channel-first) and the target: int64 class indices, or
        probabilities in the case dtype. An error case may give class labels that are not
        whole numbers (2.5, NaN); those stay floats in the case dtype, as a user would pass
        them (target_kind is still "index")."""
        x = _make_input(self.input_spec, self.dtype, oracle.LOSSES[self.loss].input_kind)
        return x, _make_target(self.target_spec, self.target_kind, x, self.params, self.dtype)

    def weight(self) -> np.ndarray | None:
        """Class weights rounded to the case dtype (what the framework receives)."""
        w = self.params.get("weight")
        return None if w is None else np.asarray(w, dtype=np.float64).astype(self.dtype)


# ---------------------------------------------------------------- reading YAML with lines

# libyaml (bundled with PyYAML's wheels) parses ~20x faster than the pure-Python parser; both
# give the same events, and everything after the events is ours.
_PARSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = yaml.resolver.Resolver()
_SCALARS = yaml.SafeLoader("")  # only its construct_yaml_<type> methods are used
_TAG = "tag:yaml.org,2002:"
_CONSTRUCT: dict[str, Any] = {
    _TAG + "null": _SCALARS.construct_yaml_null,
    _TAG + "bool": _SCALARS.construct_yaml_bool,
    _TAG + "int": _SCALARS.construct_yaml_int,
    _TAG + "float": _SCALARS.construct_yaml_float,
    _TAG + "timestamp": _SCALARS.construct_yaml_timestamp,
}
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
_SURROGATE = re.compile("[\ud800-\udfff]")
_INT64 = (-(2**63), 2**63 - 1)
_MAX_INT_TEXT = 100  # characters; 0b plus 64 binary digits fits, a 401-digit number does not
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # absent on Windows, where FIFOs are no files
_O_BINARY = getattr(os, "O_BINARY", 0)


class _Open:
    """A list or mapping being composed: its value, its path and the key awaiting a value."""

    __slots__ = ("key", "path", "value")

    def __init__(self, value: list[Any] | dict[str, Any], path: Path_) -> None:
        self.value, self.path = value, path
        self.key: str | None = None


def _read_bytes(path: Path, label: str) -> bytes:
    """The bytes of a regular file, at most MAX_FILE_BYTES of them.

    Only regular files are opened: a FIFO blocks forever and a device (``/dev/zero``)
    never ends. The type is checked before ``open`` and again on the open descriptor
    (O_NONBLOCK, so a file swapped for a FIFO in between cannot block), and no more than
    the limit plus one byte is ever read (``/proc`` files report a size of 0).
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise CaseError(label, 1, "file", f"cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):  # find_case_files returns a directory it cannot list
        try:
            with os.scandir(path):
                pass
        except OSError as exc:
            raise CaseError(label, 1, "file", f"cannot list directory: {exc.strerror}") from None
        raise CaseError(label, 1, "file", "is a directory, not a case file")
    if not stat.S_ISREG(info.st_mode):
        raise CaseError(
            label, 1, "file", f"is {_file_kind(info.st_mode)}; only regular files are read"
        )
    if info.st_size > MAX_FILE_BYTES:
        raise CaseError(label, 1, "file", f"{info.st_size} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_BINARY)
    except OSError as exc:
        raise CaseError(label, 1, "file", f"cannot read: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CaseError(
                label, 1, "file", "was replaced while being opened; only regular files are read"
            )
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise CaseError(label, 1, "file", f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise CaseError(
            label, 1, "file", f"more than {MAX_FILE_BYTES} bytes; the limit is {MAX_FILE_BYTES}"
        )
    return b"".join(chunks)


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _decode(raw: bytes, label: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CaseError(
            label, line, "file", f"not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    bad = _NON_PRINTABLE.search(text)
    if bad:
        raise CaseError(
            label,
            _line_at(text, bad.start()),
            "yaml",
            f"control character U+{ord(bad.group()):04X} is not allowed in YAML "
            '(inside double quotes, write it as an escape such as "\\t" or "\\x07")',
        )
    return text


def _line_at(text: str, pos: int) -> int:
    """The 1-based line of ``text[pos]``, counting line breaks as YAML does."""
    breaks = sum(text.count(b, 0, pos) for b in ("\n", "\r", "\x85", "\u2028", "\u2029"))
    return breaks - text.count("\r\n", 0, pos) + 1


def _read(path: Path, label: str) -> tuple[Any, dict[Path_, int]]:
    text = _decode(_read_bytes(path, label), label)
    composer = _Composer(label)
    try:
        doc = composer.compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise CaseError(label, line, "yaml", f"{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise CaseError(label, 1, "yaml", str(exc)) from None
    if composer.problems:
        raise CaseErrors(_capped(composer.problems, label))
    if doc is None:
        raise CaseError(label, 1, "file", "empty; expected a mapping with `cases:`")
    return doc, composer.lines


class _Composer:
    """Builds plain Python values from YAML events, with the line of every value.

    Working from events (not PyYAML's node graph) keeps the work bounded: it stops at the
    first alias (the "billion laughs" bomb), tag, directive or merge key, at MAX_YAML_VALUES
    values and at MAX_DEPTH levels, and it holds no node objects. Values it cannot accept
    (NaN outside literal arrays, integers beyond int64, unpaired surrogates) are collected
    in ``problems`` so one pass reports them all.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.lines: dict[Path_, int] = {}
        self.problems: list[CaseError] = []

    def compose(self, text: str) -> Any:
        stack: list[_Open] = []
        root: Any = None
        documents = count = 0
        for event in yaml.parse(text, Loader=_PARSER):
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                stack.pop()
                continue
            line = event.start_mark.line + 1 if event.start_mark else 1
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise CaseError(
                        self.label,
                        line,
                        "yaml",
                        "a second YAML document starts here; a file holds one",
                    )
                if event.version or event.tags:
                    raise CaseError(
                        self.label, line, "yaml", "directives (%YAML, %TAG) are not allowed"
                    )
                continue
            if isinstance(event, yaml.AliasEvent):
                raise CaseError(
                    self.label,
                    line,
                    "yaml",
                    "aliases (*name) are not allowed; write the values out",
                )
            if not isinstance(event, yaml.NodeEvent):
                continue  # stream start and end, document end
            top = stack[-1] if stack else None
            is_key = top is not None and isinstance(top.value, dict) and top.key is None
            if top is None:
                path: Path_ = ()
            elif isinstance(top.value, list):
                path = (*top.path, len(top.value))
            else:
                path = top.path if top.key is None else (*top.path, top.key)
            tag = getattr(event, "tag", None)  # scalars and collections have one
            if tag is not None:
                short = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
                raise self.error(line, path, f"YAML tag {short} is not allowed")
            count += 1
            if count > MAX_YAML_VALUES:
                raise self.error(
                    line,
                    path,
                    f"more than {MAX_YAML_VALUES} YAML values in one file, the limit (split "
                    "the file; for big inputs, use a generator: shape, seed, scale)",
                )
            if is_key:
                assert top is not None and isinstance(top.value, dict)
                top.key = self.key(event, line, path, top.value)
                continue
            value: Any
            if isinstance(event, yaml.ScalarEvent):
                value = self.scalar(event, line, path)
            else:
                if len(stack) >= MAX_DEPTH:
                    raise self.error(line, path, f"nested deeper than {MAX_DEPTH} levels")
                value = [] if isinstance(event, yaml.SequenceStartEvent) else {}
                stack.append(_Open(value, path))
            self.lines[path] = line
            if top is None:
                root = value
            elif isinstance(top.value, list):
                top.value.append(value)
            else:
                assert top.key is not None
                top.value[top.key] = value
                top.key = None
        return root

    def error(self, line: int, path: Path_, message: str) -> CaseError:
        return CaseError(self.label, line, _dotted(path), message)

    def key(self, event: yaml.NodeEvent, line: int, path: Path_, mapping: dict[str, Any]) -> str:
        if not isinstance(event, yaml.ScalarEvent):
            raise self.error(line, path, "keys must be text, not lists or mappings")
        if _resolve(event) == _TAG + "merge":
            raise self.error(line, path, "merge keys (<<) are not allowed; write the keys out")
        key = self.scalar(event, line, path)
        if not isinstance(key, str):
            raise self.error(line, path, f"key {_show(key)} is not text")
        if _SURROGATE.search(key):
            raise self.error(line, path, f"key {_show(key)} is not valid Unicode")
        if key in mapping:
            raise self.error(line, (*path, key), "duplicate key")
        return key

    def scalar(self, event: yaml.ScalarEvent, line: int, path: Path_) -> Any:
        text = event.value
        tag = _resolve(event)
        construct = _CONSTRUCT.get(tag)
        if construct is None:  # text (and YAML 1.1's `=` and `<<` as values)
            bad = _SURROGATE.search(text)
            if bad:
                self.problem(
                    line,
                    path,
                    f"holds an unpaired surrogate \\u{ord(bad.group()):04x}, which is not valid "
                    "Unicode (write the character itself)",
                )
            return text
        if tag == _TAG + "int" and len(text) > _MAX_INT_TEXT:
            self.problem(line, path, f"{_show(text)} is too large (integers must fit int64)")
            return 0
        try:
            value = construct(yaml.ScalarNode(tag, text))
        except Exception as exc:  # e.g. a date such as 2024-13-45
            self.problem(line, path, f"cannot read {_show(text)}: {exc}")
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            if not _INT64[0] <= value <= _INT64[1]:
                bound = "greater than the maximum" if value > 0 else "less than the minimum"
                limit = _INT64[1] if value > 0 else _INT64[0]
                self.problem(
                    line, path, f"{_show(text)} is {bound} of {limit} (integers must fit int64)"
                )
        elif isinstance(value, float):
            if math.isnan(value) and not _in_literal(path):
                self.problem(
                    line,
                    path,
                    "NaN is not allowed here (only literal input/target values may hold .nan)",
                )
            elif math.isinf(value) and "inf" not in text.lower():
                self.problem(
                    line,
                    path,
                    f"{_show(text)} overflows float64; write .inf or -.inf for an infinity",
                )
        return value

    def problem(self, line: int, path: Path_, message: str) -> None:
        if len(self.problems) <= MAX_ERRORS:  # one more than shown says "more follow"
            self.problems.append(self.error(line, path, message))


def _resolve(event: yaml.ScalarEvent) -> str:
    """The type YAML 1.1 gives a scalar: int, float, bool, null, timestamp, str, ..."""
    tag: str = _RESOLVER.resolve(  # type: ignore[no-untyped-call]  # untyped in the stubs
        yaml.ScalarNode, event.value, event.implicit
    )
    return tag


def _in_literal(path: Path_) -> bool:
    """Inside a literal input/target array, where NaN and infinities may be the point."""
    return (
        len(path) >= 4
        and path[0] == "cases"
        and path[2] in ("input", "target")
        and path[3] == "values"
    )


def _show(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to about ``limit`` characters: messages stay one short line."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value)} characters)"
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} items)" if isinstance(value, (list, dict)) else ""
    return f"{text[:limit]}…{size}"


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
        limit = float(np.finfo(dtype).max)
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
    if "values" not in tgt:
        kind = str(tgt["kind"])
        if kind == "probs" and "ignore_share" in tgt:
            check.fail(("target", "ignore_share"), "only index targets can be ignored")
        return (shape, kind) if _check_target_kind(raw, kind, check) else None
    t = _literal(tgt["values"], check, ("target", "values"))
    if t is None:
        return None
    kind = tgt.get("kind") or ("probs" if t.shape == shape else "index")
    if not _check_target_kind(raw, kind, check):
        return None
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
        raise CaseErrors(_capped(errors, label))
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
        raise CaseErrors(_capped(sorted(errors, key=lambda e: e.line), label))
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


def _capped(errors: list[CaseError], label: str) -> list[CaseError]:
    if len(errors) <= MAX_ERRORS:
        return errors
    shown = errors[:MAX_ERRORS]
    more = CaseError(
        label, errors[MAX_ERRORS].line, "file", "more problems follow (fix these first)"
    )
    return [*shown, more]


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
    allowed = {*declared.params, "reduction"}
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
        literal: np.ndarray = np.asarray(spec["values"], dtype=np.float64).astype(dtype)
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
    with np.errstate(over="ignore"):  # a scale beyond the dtype's range gives ±inf, as asked
        return values.astype(dtype)


def _make_target(
    spec: dict[str, Any], kind: str, x: np.ndarray, params: dict[str, Any], dtype: str
) -> np.ndarray:
    if "values" in spec:
        if kind == "index":
            labels = np.asarray(spec["values"], dtype=np.float64)
            if not _integral(labels):  # float labels, allowed only in error cases
                return labels.astype(dtype)
            # element by element, exactly (validated to fit int64)
            return np.array(spec["values"], dtype=np.int64)
        return np.asarray(spec["values"], dtype=np.float64).astype(dtype)
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

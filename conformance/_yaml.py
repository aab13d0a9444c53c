"""Reading a case or ledger file: bounded, located, never a traceback.

Only regular files of at most MAX_FILE_BYTES are read (a FIFO or a device named ``x.yaml``
is refused, not waited on); the YAML is built from parser events, with the line of every
value, and stops at the first alias, explicit tag, directive or merge key, at
MAX_YAML_VALUES values and at MAX_DEPTH levels. Every problem is a :class:`CaseError`,
``file:line: field: message`` on one line.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

# Limits that bound what one case file can cost (each far above what a real case file needs).
MAX_FILE_BYTES = 16 * 2**20
MAX_YAML_VALUES = 2**18  # scalars, lists and mappings in one file (262,144)
MAX_DEPTH = 32  # nesting of lists and mappings
MAX_ERRORS = 100  # problems reported per file; the rest are counted

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


def capped(errors: list[CaseError], label: str) -> list[CaseError]:
    if len(errors) <= MAX_ERRORS:
        return errors
    shown = errors[:MAX_ERRORS]
    more = CaseError(
        label, errors[MAX_ERRORS].line, "file", "more problems follow (fix these first)"
    )
    return [*shown, more]


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
        raise CaseErrors(capped(composer.problems, label))
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

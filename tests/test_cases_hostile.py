"""Hostile case files: every one ends in located one-line messages (exit 2), within bounded
time and memory, and whatever `validate` accepts also runs (issue 10, items 1-4).

Each test here failed on the loader as it was before this file: with a traceback, a hang,
gigabytes of memory, a multi-line or 100 KB message, a silent OK, or a crash in `run`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

from conformance import _yaml, cases, cli, runner

# M, the minimal valid file; edits below replace one piece of it.
M = (
    "cases: [{id: t1, loss: cross_entropy, input: {shape: [4, 3], seed: 1}, "
    "target: {kind: index, seed: 2}}]\n"
)
BLOCK = """\
cases:
  - id: t1
    loss: cross_entropy
    input: {shape: [4, 3], seed: 1}
    target: {kind: index, seed: 2}
"""
CONTROL = (
    "yaml: control character U+0007 is not allowed in YAML "
    '(inside double quotes, write it as an escape such as "\\t" or "\\x07")'
)
ONE_LINE = re.compile(r"[^\n]+:\d+: [^\s:]+(?:[^\n:]*): [^\n]+")
PARSERS = ["libyaml", "python"] if hasattr(yaml, "CSafeLoader") else ["python"]


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with libyaml's parser (the default when present) and PyYAML's own."""
    if request.param == "python":
        monkeypatch.setattr(_yaml, "_PARSER", yaml.SafeLoader)
    return str(request.param)


def edit(old: str, new: str, text: str = M) -> str:
    assert old in text
    return text.replace(old, new, 1)


def validate(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, list[str]]:
    """`conformance validate PATH...` in this process: exit status and stderr lines, each
    checked to be one `file:line: field: message` line (and the final count)."""
    status = cli.main(["validate", *map(str, paths)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    if status == cli.EXIT_USAGE and lines and lines[-1].endswith("problem(s) in case files"):
        for line in lines[:-1]:
            assert ONE_LINE.fullmatch(line), line
            assert len(line) < 1000, f"{len(line)} characters"
    return status, lines


def problems(path: Path) -> list[str]:
    with pytest.raises(cases.CaseErrors) as info:
        cases.load_paths([path])
    for error in info.value.errors:
        assert ONE_LINE.fullmatch(str(error)) and len(str(error)) < 1000, str(error)
    return [str(e) for e in info.value.errors]


def runs(loaded: list[cases.Case]) -> None:
    """What `run` does with each case before a framework sees it, and the row's text."""
    for case in loaded:
        x, t = case.arrays()
        expected = runner.expected_for(case, x, t)
        assert not expected.problem.startswith("oracle failed"), expected.problem
        json.dumps([case.file, case.id, case.expect_error, case.params]).encode("utf-8")


def child(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m conformance ARGS` limited to 1 GiB of address space: a loader that reads
    /dev/zero or parses millions of nodes fails here instead of eating the machine."""
    resource = pytest.importorskip("resource", reason="address-space limits need Unix")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))

    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        preexec_fn=limit,
    )


# ------------------------------------------------------------------ 1. no tracebacks


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("seed: 2}", "seed: 2}, params: {weight: [1" + "0" * 400 + ", 1, 1]}", "params.weight[0]"),
        ("seed: 2}", "seed: 2}, params: {ignore_index: -1" + "0" * 400 + "}", "ignore_index"),
        ("seed: 1}", "seed: 1" + "0" * 30 + "}", "input.seed"),
        ("seed: 2}", "seed: 2}, params: {weight: [1.0e+400, 1, 1]}", "params.weight[0]"),
    ],
)
def test_huge_numbers_are_located_errors(tmp_path, capsys, parser, old, new, field):
    path = tmp_path / "big.yaml"
    path.write_text(edit(old, new))
    status, lines = validate(capsys, path)
    assert status == 2
    assert lines[0].startswith(f"{path}:1: cases[0].") and field in lines[0]
    assert "int64" in lines[0] or "overflows float64" in lines[0]


@pytest.mark.parametrize(
    ("old", "new", "tag"),
    [
        ("loss: cross_entropy", "loss: !!int cross_entropy", "!!int"),
        ("loss: cross_entropy", "loss: !!bool cross_entropy", "!!bool"),
        ("loss: cross_entropy", "loss: !!timestamp cross_entropy", "!!timestamp"),
        ("seed: 1", 'seed: !!int "3"', "!!int"),  # silently accepted before
        ("loss: cross_entropy", "loss: !!str cross_entropy", "!!str"),
        ("loss: cross_entropy", "loss: ! cross_entropy", "!"),
        ("loss: cross_entropy", "loss: !custom cross_entropy", "!custom"),
        ("input: {", "input: !!map {", "!!map"),
        ("shape: [", "shape: !!seq [", "!!seq"),
    ],
)
def test_every_explicit_tag_is_refused(tmp_path, capsys, parser, old, new, tag):
    path = tmp_path / "tag.yaml"
    path.write_text(edit(old, new))
    status, lines = validate(capsys, path)
    assert status == 2
    assert lines[0].startswith(f"{path}:1: cases[0].")
    assert lines[0].endswith(f": YAML tag {tag} is not allowed")


def test_a_bad_date_is_a_message(tmp_path, capsys, parser):
    path = tmp_path / "date.yaml"
    path.write_text(edit("seed: 2}", "seed: 2}, description: 2024-13-45"))
    status, lines = validate(capsys, path)
    assert status == 2 and "cannot read '2024-13-45'" in lines[0]


def test_symlink_loops_are_located_errors_and_hide_nothing(tmp_path, capsys):
    d = tmp_path / "cases"
    (d / "sub").mkdir(parents=True)
    try:
        (d / "loop.yaml").symlink_to("loop.yaml")
        (d / "sub" / "up").symlink_to("..", target_is_directory=True)  # a directory loop
    except (OSError, NotImplementedError) as exc:
        pytest.skip(f"cannot make symlinks here: {exc}")
    (d / "typo.yaml").write_text(edit("seed: 2}", "seed: 2, sede: 3}"))
    (d / "sub" / "good.yaml").write_text(M.replace("t1", "t2"))
    status, lines = validate(capsys, d)
    assert status == 2
    assert any(re.search(r"loop\.yaml:1: file: cannot read: .*symbolic links", x) for x in lines)
    assert any("typo.yaml:1: cases[0].target.sede: unknown key 'sede'" in x for x in lines)
    assert len(set(lines[:-1])) == 2  # two problems, then the count


# ------------------------------------------------------------------ 2. hangs and memory


def test_a_fifo_is_refused_without_blocking(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this OS")
    fifo = tmp_path / "f.yaml"
    os.mkfifo(fifo)
    out = child("validate", str(fifo), timeout=30)
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines()[0] == (
        f"{fifo}:1: file: is a FIFO (named pipe); only regular files are read"
    )


def test_a_device_is_refused_without_reading_it(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero on this OS")
    link = tmp_path / "z.yaml"
    link.symlink_to("/dev/zero")
    out = child("validate", str(tmp_path), timeout=30)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.splitlines()[0] == f"{link}:1: file: is a device; only regular files are read"


def test_a_huge_literal_is_refused_within_bounded_time_and_memory(tmp_path):
    # 2 M zeros in 4 MB, below the file and element limits: 34 s and 1.7 GB before
    path = tmp_path / "zeros.yaml"
    path.write_text(
        edit("shape: [4, 3], seed: 1", "values: [[" + ",".join(["0"] * 2_000_000) + "]]")
    )
    started = time.monotonic()
    out = child("validate", str(path))
    assert out.returncode == 2, out.stderr[-2000:]
    assert time.monotonic() - started < 30  # about 1.5 s here
    first = out.stderr.splitlines()[0]
    assert first.startswith(f"{path}:1: cases[0].input.values[0][")
    assert f"more than {cases.MAX_YAML_VALUES} YAML values in one file, the limit" in first


def test_a_literal_array_is_capped(tmp_path):
    n = cases.MAX_LITERAL_ELEMENTS + 1
    path = tmp_path / "lit.yaml"
    path.write_text(
        edit("shape: [4, 3], seed: 1", "values: [" + ", ".join(["[0.5]"] * n) + "]").replace(
            "kind: index, seed: 2", "values: [" + ", ".join(["0"] * n) + "]"
        )
    )
    (msg,) = problems(path)
    assert msg == (
        f"{path}:1: cases[0].input.values: holds more than {cases.MAX_LITERAL_ELEMENTS} "
        "numbers; literal values are for small worked examples (use a generator: shape, "
        "seed, scale)"
    )


def test_fifty_thousand_cases_are_refused_quickly(tmp_path):
    one = "  - {{id: c{i}, loss: cross_entropy, input: {{shape: [4, 3], seed: 1}}, target: {{kind: index, seed: 2}}}}\n"  # noqa: E501
    path = tmp_path / "many.yaml"
    path.write_text("cases:\n" + "".join(one.format(i=i) for i in range(50_000)))
    started = time.monotonic()
    (msg,) = problems(path)
    assert time.monotonic() - started < 15  # 29 s before; about 1 s here
    assert "YAML values in one file, the limit" in msg


def test_matrix_expansion_is_capped_per_case(tmp_path):
    # 5.8 KB that became 1.44 M cases
    def axis(n: int, f: Any) -> str:
        return "[" + ", ".join(f(i) for i in range(n)) + "]"

    text = BLOCK + (
        "    matrix:\n"
        f"      ignore_index: {axis(400, str)}\n"
        f"      label_smoothing: {axis(400, lambda i: str(i / 400))}\n"
        "      dtype: [float16, float32, float64]\n"
        "      reduction: [none, mean, sum]\n"
    )
    path = tmp_path / "matrix.yaml"
    path.write_text(text)
    (msg,) = problems(path)
    assert msg == (
        f"{path}:7: cases[0].matrix: expands into 1440000 cases (400 × 400 × 3 × 3); "
        f"the limit is {cases.MAX_EXPANSION} per case"
    )


def test_cases_are_capped_per_file_and_per_run(tmp_path, monkeypatch):
    monkeypatch.setattr(cases, "MAX_CASES", 5)
    tripled = BLOCK + "    matrix: {reduction: [none, mean, sum]}\n"

    def cases_of(prefix: str) -> str:
        return tripled.replace("id: t1", f"id: {prefix}")

    a, b, c = (tmp_path / f"{n}.yaml" for n in "abc")
    a.write_text(cases_of("a"))  # 3 cases
    b.write_text(cases_of("b"))  # 6 in the run
    c.write_text(cases_of("c") + cases_of("d").split("cases:\n")[1])  # 6 in one file
    assert len(cases.load_file(a)) == 3
    (msg,) = problems(c)
    assert (
        msg == f"{c}:11: cases[1].matrix: the file expands into more than 5 cases; the limit is 5"
    )
    with pytest.raises(cases.CaseErrors) as info:
        cases.load_paths([a, b])
    (msg,) = (str(e) for e in info.value.errors)
    assert msg == (
        f"{b}:2: cases: this file brings the run to 6 cases; the limit is 5 per run "
        "(run fewer files at a time)"
    )


def test_deep_nesting_is_refused_early(tmp_path, parser):
    path = tmp_path / "deep.yaml"
    path.write_text("cases: " + "[" * 100_000 + "]" * 100_000 + "\n")
    (msg,) = problems(path)
    assert msg.endswith(f": nested deeper than {cases.MAX_DEPTH} levels")


# ------------------------------------------------------------------ 3. one line per problem


@pytest.mark.parametrize(
    ("text", "line", "end"),
    [
        (
            edit("loss: cross_entropy", "loss: !custom cross_entropy"),
            1,
            "cases[0].loss: YAML tag !custom is not allowed",
        ),
        (
            "%TAG !e! tag:example.com,2000:\n---\n" + M,
            1,
            "yaml: directives (%YAML, %TAG) are not allowed",
        ),
        (
            edit("seed: 2}", "seed: 2, <<: {scale: 1}}"),
            1,
            "cases[0].target: merge keys (<<) are not allowed; write the keys out",
        ),
        (
            BLOCK + '    description: "a\x07b"\n',
            6,
            CONTROL,
        ),
        (M + "---\n" + M, 2, "yaml: a second YAML document starts here; a file holds one"),
        (
            edit("seed: 2}", "seed: 2}, ? [a, b] : c"),
            1,
            "cases[0]: keys must be text, not lists or mappings",
        ),
        (
            edit("id: t1", 'id: "a\\nb\\x1b[31m"'),
            1,
            "cases[0].id: 'a\\nb\\x1b[31m' does not match '^[A-Za-z0-9][A-Za-z0-9_.-]*$'",
        ),
    ],
)
def test_messages_are_single_located_lines(tmp_path, capsys, parser, text, line, end):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    status, lines = validate(capsys, path)
    assert status == 2
    assert lines[0] == f"{path}:{line}: {end}"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("id: t1", "id: " + "a" * 100_000, "cases[0].id"),
        ("seed: 2}", "seed: 2, " + "k" * 1000 + ": 1}", "cases[0].target.kkkk"),
        ("loss: cross_entropy", "loss: " + "x" * 100_000, "cases[0].loss"),
        ("seed: 1}", "seed: '" + "9" * 100_000 + "'}", "cases[0].input.seed"),
        ("seed: 2}", "seed: 2}, description: [" + "1," * 50_000 + "1]", "cases[0].description"),
    ],
)
def test_long_values_are_quoted_short(tmp_path, capsys, old, new, field):
    path = tmp_path / "long.yaml"
    path.write_text(edit(old, new))
    status, lines = validate(capsys, path)  # checks each line is short
    assert status == 2
    assert lines[0].startswith(f"{path}:1: {field}")


def test_each_problem_is_printed_once(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit("loss: cross_entropy", "loss: !custom cross_entropy"))
    (tmp_path / "typo.yaml").write_text(edit("seed: 2}", "seed: 2, sede: 3}"))
    status, lines = validate(capsys, tmp_path)
    assert status == 2
    assert len(lines) == len(set(lines)) == 3, lines
    assert lines[-1] == "2 problem(s) in case files"


def test_a_control_character_in_a_value_is_escaped(tmp_path):
    path = tmp_path / "esc.yaml"
    path.write_text(BLOCK + '    dtype: "float32\\u2028\\x1b[2J"\n')
    (msg,) = problems(path)
    assert msg == (
        f"{path}:6: cases[0].dtype: 'float32\\u2028\\x1b[2J' is not allowed "
        "(allowed: float16, bfloat16, float32, float64)"
    )


def test_problems_per_file_are_capped(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text("cases:\n" + "  - {}\n" * 500)
    errors = problems(path)
    assert len(errors) == cases.MAX_ERRORS + 1
    assert errors[-1].endswith(": file: more problems follow (fix these first)")


def test_an_unreadable_directory_is_an_error_not_skipped(tmp_path, capsys, monkeypatch):
    # Root lists mode-000 directories, so the refusal is simulated where the OS says no.
    d = tmp_path / "cases"
    (d / "locked").mkdir(parents=True)
    (d / "good.yaml").write_text(M)
    locked = str(d / "locked")
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    status, lines = validate(capsys, d)
    assert status == 2
    assert lines[0] == f"{locked}:1: file: cannot list directory: Permission denied"


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root can list a mode-000 directory (see the simulated test above)",
)
def test_a_mode_000_directory_is_an_error(tmp_path, capsys):
    d = tmp_path / "cases"
    (d / "locked").mkdir(parents=True)
    (d / "locked" / "hidden.yaml").write_text(M)
    (d / "good.yaml").write_text(M.replace("t1", "t2"))
    (d / "locked").chmod(0)
    try:
        status, lines = validate(capsys, d)
    finally:
        (d / "locked").chmod(0o755)
    assert status == 2
    assert lines[0] == f"{d / 'locked'}:1: file: cannot list directory: Permission denied"


def test_a_directory_named_like_a_case_file_is_reported(tmp_path):
    (tmp_path / "d.yaml").mkdir()
    (msg,) = problems(tmp_path)
    assert msg == f"{tmp_path / 'd.yaml'}:1: file: is a directory, not a case file"


# ------------------------------------------------------------------ 4. what validates also runs


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("seed: 1}", "seed: 1.0}"),
        ("seed: 2}", "seed: 2.0}"),
        ("shape: [4, 3]", "shape: [4.0, 3.0]"),
        ("shape: [4, 3]", "shape: [4, 3" + ", 1" * (cases.MAX_NDIM - 2) + "]"),
        ("seed: 2}", "seed: 2}, params: {ignore_index: 255.0}"),
        ("seed: 2}", "seed: 2}, matrix: {ignore_index: [1.0, -100.0]}"),
        ("seed: 1}", "seed: 1, scale: 1.0e+300, offset: -1.0e+300, distribution: uniform}"),
        ("shape: [4, 3], seed: 1", "values: [[.nan, .inf, -.inf], [0, 1, 2]]"),
    ],
)
def test_accepted_cases_build_arrays_and_oracle(tmp_path, old, new):
    text = edit(old, new)
    if "values:" in new:
        text = edit("kind: index, seed: 2", "values: [0, 2]", text)
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    loaded = cases.load_file(path)
    runs(loaded)
    assert all(isinstance(v, int) for v in loaded[0].input_spec.get("shape", [0]))
    assert isinstance(loaded[0].input_spec.get("seed", 0), int)


@pytest.mark.parametrize(
    ("old", "new", "field", "text"),
    [
        ("seed: 2}", "seed: 2, ignore_share: .nan}", "target.ignore_share", "NaN is not allowed"),
        ("seed: 2}", "seed: 2}, tolerance_factor: .nan", "tolerance_factor", "NaN is not allowed"),
        ("seed: 2}", "seed: 2}, params: {label_smoothing: .NaN}", "params.label_smoothing", "NaN"),
        (
            "seed: 2}",
            "seed: 2}, matrix: {label_smoothing: [0, .nan]}",
            "matrix.label_smoothing[1]",
            "NaN",
        ),
        ("seed: 2}", "seed: 2}, params: {weight: [1, .nan, 1]}", "params.weight[1]", "NaN"),
        ("seed: 1}", "seed: 1, scale: .nan}", "input.scale", "NaN is not allowed"),
        ("seed: 1}", "seed: 1, scale: .inf}", "input.scale", "greater than the maximum"),
        ("seed: 1}", "seed: 1, offset: -.inf}", "input.offset", "less than the minimum"),
        ("seed: 1}", "seed: 1, scale: 1.0e+308, distribution: uniform}", "input.scale", "maximum"),
        ("shape: [4, 3]", "shape: [4, 3" + ", 1" * 63 + "]", "input.shape", "has 65 items"),
        ("shape: [4, 3]", "shape: [4, 3" + ", 1" * 15 + "]", "input.shape", "the limit is 16"),
        ("seed: 2}", 'seed: 2}, expect_error: "\\uD800"', "", ""),
        ("seed: 2}", 'seed: 2}, description: "\\udc80x"', "", ""),
    ],
)
def test_values_that_would_break_run_are_refused(tmp_path, parser, old, new, field, text):
    path = tmp_path / "bad.yaml"
    path.write_text(edit(old, new))
    (msg,) = problems(path)
    assert msg.startswith(f"{path}:1: ")
    if field:
        assert f"cases[0].{field}: " in msg and text in msg, msg
    else:  # a lone surrogate: libyaml refuses the escape, PyYAML's parser builds it
        assert ("Unicode" in msg and "surrogate" in msg) or "escape" in msg, msg


def test_a_literal_deeper_than_the_dimension_cap_is_refused(tmp_path):
    deep = "[" * (cases.MAX_NDIM + 1) + "0" + "]" * (cases.MAX_NDIM + 1)
    path = tmp_path / "deep.yaml"
    path.write_text(edit("shape: [4, 3], seed: 1", f"values: {deep}"))
    (msg,) = problems(path)
    assert msg == (
        f"{path}:1: cases[0].input.values: nested deeper than {cases.MAX_NDIM} levels; "
        f"the limit is {cases.MAX_NDIM} dimensions"
    )


def test_literal_values_must_be_numbers(tmp_path):
    path = tmp_path / "lit.yaml"
    path.write_text(edit("shape: [4, 3], seed: 1", "values: [[0, '1.5'], [null, 2]]"))
    (msg,) = problems(path)
    assert msg == f"{path}:1: cases[0].input.values[0][1]: expected a number, got str '1.5'"


def test_index_targets_must_fit_int64_even_when_an_error_is_expected(tmp_path):
    text = edit("shape: [4, 3], seed: 1", "values: [[0, 1], [1, 0]]")
    text = edit("kind: index, seed: 2}", "values: [1.0e+30, 0]}, expect_error: out of range", text)
    path = tmp_path / "t.yaml"
    path.write_text(text)
    (msg,) = problems(path)
    assert msg == f"{path}:1: cases[0].target.values: class indices must fit int64"


def test_large_class_indices_stay_exact(tmp_path):
    big = 2**62 + 1  # float64 would round it to 2**62, which is no longer ignore_index
    text = edit("shape: [4, 3], seed: 1", "values: [[0, 1], [1, 0]]")
    text = edit(
        "kind: index, seed: 2}", f"values: [{big}, 0]}}, params: {{ignore_index: {big}}}", text
    )
    path = tmp_path / "t.yaml"
    path.write_text(text)
    (case,) = cases.load_file(path)
    _, target = case.arrays()
    assert target.tolist() == [big, 0]
    runs([case])


def test_a_file_name_that_is_not_utf8_gets_a_printable_label(tmp_path, fake_framework):
    if sys.platform in ("darwin", "win32"):
        pytest.skip("this filesystem insists on Unicode file names")
    name = os.fsdecode(b"caf\xe9\n.yaml")
    try:
        (tmp_path / name).write_text(M)
    except (OSError, UnicodeError) as exc:
        pytest.skip(f"cannot make that file name here: {exc}")
    (case,) = cases.load_paths([tmp_path])
    assert case.file == str(tmp_path / "caf\\xe9\\n.yaml")
    runs([case])
    # the results writer took the old label and raised UnicodeEncodeError
    runner.run([case], tmp_path / "run", frameworks=[fake_framework], timeout=60)
    rows = (tmp_path / "run" / "results.jsonl").read_bytes().decode("utf-8").splitlines()
    assert rows and all(json.loads(row)["file"] == case.file for row in rows)


def test_validate_and_run_load_through_the_same_checks(tmp_path, capsys, monkeypatch):
    """The rule: `validate` and `run` both load with ``cases.load_paths`` and nothing else,
    so whatever validates also runs (the tests above and the fuzz test cover the rest)."""
    path = tmp_path / "ok.yaml"
    path.write_text(M)
    refusal = cases.CaseError(str(path), 1, "cases", "refused by the one loader")

    def load_paths(*args: Any, **kwargs: Any) -> list[cases.Case]:
        raise cases.CaseErrors([refusal])

    monkeypatch.setattr(cases, "load_paths", load_paths)
    for argv in (["validate", str(path)], ["run", "--cases", str(path), "--out", str(tmp_path)]):
        assert cli.main(argv) == cli.EXIT_USAGE
        assert capsys.readouterr().err.splitlines()[0] == str(refusal)
    assert not (tmp_path / "results.jsonl").exists()

"""Run limits: ``--max-seconds`` stops a run cleanly (exit 3, resumable), ``--max-worker-mem``
skips a case estimated too big for a worker and kills a worker that grows past it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_run_faults import _adapter, _case_file

from conformance import adapters, cases, cli, results, runner, shard
from conformance.supervisor import MIB, Worker, rss

CASE = """\
  - id: {id}
    loss: cross_entropy
    input: {{shape: {shape}, scale: 2.0, seed: 3}}
    target: {{kind: index, seed: 4}}
"""


@pytest.fixture
def limits_framework(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Register tests/limits_adapter.py as framework "limits" for this test."""
    monkeypatch.setitem(adapters.MODULES, "limits", "limits_adapter")
    yield "limits"


def _cases(tmp_path: Path, *ids: str, shape: str = "[3, 4]") -> Path:
    path = tmp_path / "c.yaml"
    path.write_text("cases:\n" + "".join(CASE.format(id=i, shape=shape) for i in ids))
    return path


def _append(path: Path, case_id: str, shape: str) -> None:
    path.write_text(path.read_text() + CASE.format(id=case_id, shape=shape))


def _run(framework: str, path: Path, *args: str | Path) -> int:
    return cli.main(
        ["run", "--framework", framework, "--cases", str(path), "--no-progress", *map(str, args)]
    )


def _lines(run_dir: Path) -> list[dict[str, Any]]:
    data = (run_dir / results.RESULTS_FILE).read_bytes()
    assert not data or data.endswith(b"\n"), "a partial last line"
    return [json.loads(line) for line in data.splitlines()]


def _calls(run_dir: Path) -> set[tuple[str, str, str, str, str]]:
    return {(r["case_id"], r["api"], r["mode"], r["output"], r["verdict"]) for r in _lines(run_dir)}


def _environment(run_dir: Path) -> dict[str, Any]:
    environment: dict[str, Any] = json.loads((run_dir / results.SUMMARY_FILE).read_text())[
        "environment"
    ]
    return environment


# ------------------------------------------------------------------ --max-seconds


def test_max_seconds_stops_with_exit_3_and_resume_finishes_the_run(
    tmp_path, limits_framework, capsys
):
    # "slow-c" takes 1.5 s, so a 1 s deadline (start-up included) always falls before "d".
    path = _cases(tmp_path, "a", "b", "slow-c", "d", "e")
    full, part = tmp_path / "full", tmp_path / "part"
    assert _run(limits_framework, path, "--out", full) == cli.EXIT_OK
    capsys.readouterr()

    began = time.monotonic()
    code = _run(limits_framework, path, "--out", part, "--max-seconds", "1")
    assert time.monotonic() - began < 15
    err = capsys.readouterr().err
    assert code == cli.EXIT_DEADLINE, err
    stopped = re.search(r"stopped after (\d) of 5 cases", err)
    assert stopped and int(stopped[1]) <= 3, err
    assert (
        f"conformance: --max-seconds 1 reached: {stopped[0]}; rows so far are kept; "
        f"finish with: conformance run --resume {part}"
    ) in err
    assert "Traceback" not in err
    environment = _environment(part)
    assert environment["interrupted"] == stopped[0]
    assert re.fullmatch(r"--max-seconds 1 reached after 1\.\d s", environment["deadline"])
    for name in ("report.html", "results.csv", results.SUMMARY_FILE):
        assert (part / name).is_file(), name
    # complete calls only (both outputs), nothing after the calls in flight
    kept = _lines(part)
    by_call: dict[tuple[str, str, str], set[str]] = {}
    for row in kept:
        by_call.setdefault((row["case_id"], row["api"], row["mode"]), set()).add(row["output"])
    assert all(outputs == set(runner.OUTPUTS) for outputs in by_call.values())
    assert {row["case_id"] for row in kept} <= {"a", "b", "slow-c"}
    # the limit belongs to one invocation, not to the run's selection
    assert "max_seconds" not in json.loads((part / shard.RUN_FILE).read_text())

    # a CI job's second step: resume with a limit again
    assert _run(limits_framework, path, "--resume", part, "--max-seconds", "60") == cli.EXIT_OK
    assert _calls(part) == _calls(full)
    assert len(_lines(part)) == len(_lines(full))
    environment = _environment(part)
    assert "deadline" not in environment and "interrupted" not in environment


def test_max_seconds_while_workers_start_stops_at_once(tmp_path, monkeypatch, capsys):
    _adapter(tmp_path, monkeypatch, "slow", "time.sleep(600)")
    path = _case_file(tmp_path, "one", "two")
    out = tmp_path / "run"
    began = time.monotonic()
    code = _run("slow", path, "--out", out, "--max-seconds", "1")
    assert time.monotonic() - began < 15
    err = capsys.readouterr().err
    assert code == cli.EXIT_DEADLINE, err
    assert "--max-seconds 1 reached: stopped after 0 of 2 cases" in err
    assert (out / "report.html").is_file()
    assert _environment(out)["slow"] == {
        "skipped": "the run was stopped before this worker started"
    }


def test_a_run_that_ends_before_max_seconds_exits_by_its_rows(tmp_path, limits_framework):
    path = _cases(tmp_path, "a")
    assert _run(limits_framework, path, "--out", tmp_path / "r", "--max-seconds", "300") == 0
    assert "deadline" not in _environment(tmp_path / "r")


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "soon"])
def test_max_seconds_must_be_a_finite_positive_number(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--max-seconds", value])
    assert exit_.value.code == cli.EXIT_USAGE
    assert "--max-seconds" in capsys.readouterr().err


# ------------------------------------------------------------------ --max-worker-mem: sizes


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2G", 2 * 2**30),
        ("512M", 512 * MIB),
        ("1.5GiB", 3 * 2**29),
        ("300mb", 300 * MIB),
        ("64K", 2**16),
        (" 1 T ", 2**40),
        ("1000", 1000),
        ("4096B", 4096),
    ],
)
def test_sizes(text, size):
    assert cli._size(text) == size


@pytest.mark.parametrize("value", ["", "lots", "2X", "-1G", "0", "0.1B", "1.5.2G", "1e9", "2iB"])
def test_a_bad_size_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--max-worker-mem", value])
    assert exit_.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "--max-worker-mem" in err and "Traceback" not in err


# ------------------------------------------------------------------ --max-worker-mem: estimate

KINDS = """\
cases:
  - id: index
    loss: cross_entropy
    input: {shape: [4, 5, 3], seed: 1}
    target: {kind: index, seed: 2}
    matrix: {dtype: [bfloat16, float64]}
  - id: probs
    loss: cross_entropy
    input: {shape: [4, 5], seed: 1}
    target: {kind: probs, seed: 2}
  - id: binary
    loss: binary_cross_entropy_with_logits
    input: {shape: [4, 5], seed: 1}
    target: {kind: binary, seed: 2}
  - id: real
    loss: mse_loss
    input: {shape: [7, 2], seed: 1}
    target: {kind: real, seed: 2}
  - id: none
    loss: softmax
    input: {shape: [6, 10], seed: 1}
  - id: literal
    loss: cross_entropy
    input: {values: [[1.0, 2.0, 0.5], [0.5, 0.1, 3.0]]}
    target: {kind: index, values: [0, 2]}
"""


def test_the_estimate_counts_the_arrays_a_call_sends(write_yaml):
    loaded = cases.load_file(write_yaml(KINDS))
    assert len(loaded) == 7
    for case in loaded:
        x, target = case.arrays()
        sent = target if target is not None else case.grad_output()
        assert sent is not None
        width = max(x.itemsize, 4)  # half precision counts as the float32 it is computed in
        want = x.size * width + (sent.nbytes if sent.dtype == np.int64 else sent.size * width)
        assert runner.array_bytes(case) == want, case.id
    assert {c.dtype for c in loaded} >= {"bfloat16", "float32", "float64"}


def test_a_case_estimated_over_the_limit_is_skipped_without_building_it(
    tmp_path, limits_framework, monkeypatch
):
    path = _cases(tmp_path, "small")
    _append(path, "huge", "[64, 100, 1024]")  # 25 MiB of float32, 0.5 MiB of labels
    built = cases.Case.arrays

    def arrays(case: cases.Case) -> Any:
        assert case.id != "huge", "the arrays of a skipped case were built"
        return built(case)

    monkeypatch.setattr(cases.Case, "arrays", arrays)
    out = tmp_path / "run"
    assert _run(limits_framework, path, "--out", out, "--max-worker-mem", "200M") == cli.EXIT_OK
    frame = results.load(out)
    huge, small = frame[frame.case_id == "huge"], frame[frame.case_id == "small"]
    assert set(small.verdict) == {"pass"} and len(small) == 4
    assert set(huge.verdict) == {"skipped"} and len(huge) == 4
    assert set(huge.api) == {"limits.exact", "limits.hog"} and set(huge["mode"]) == {"eager"}
    assert all(list(shape) == [64, 100, 1024] for shape in huge.input_shape)
    base, factor = runner.CALL_MEMORY_BASE // MIB, runner.CALL_MEMORY_FACTOR
    arrays = (64 * 100 * 1024 * 4 + 64 * 1024 * 8) / MIB
    pattern = (
        rf"the call needs ~(\d+) MiB \(estimate: {base} MiB \+ {factor} × {arrays:.3g} MiB of "
        r"arrays for the forward and backward pass \+ (\d+) MiB the worker holds after "
        r"import\), over --max-worker-mem 200 MiB; not run"
    )
    for reason in huge.reason:
        found = re.fullmatch(pattern, reason)
        assert found, reason
        assert int(found[1]) > 200
        assert abs(int(found[1]) - (base + factor * arrays + int(found[2]))) <= 1  # rounded
    environment = _environment(out)
    assert environment["max_worker_mem"] == "200 MiB"
    assert 0 < environment["limits"]["start_rss_mib"] < 100
    # without a limit the same case is run
    out = tmp_path / "unlimited"
    monkeypatch.setattr(cases.Case, "arrays", built)
    assert _run(limits_framework, path, "--out", out, "-k", "huge") == cli.EXIT_OK
    assert set(results.load(out).verdict) == {"pass"}


# ------------------------------------------------------------------ --max-worker-mem: enforced


def test_a_worker_over_the_limit_is_killed_and_the_run_goes_on(tmp_path, limits_framework):
    path = _cases(tmp_path, "one", "hog-two", "three")
    out = tmp_path / "run"
    began = time.monotonic()
    code = _run(limits_framework, path, "--out", out, "--max-worker-mem", "200M", "--timeout", "60")
    assert time.monotonic() - began < 30  # killed at once, not after the hog's 10 s
    assert code == cli.EXIT_FAILING
    frame = results.load(out)
    killed = frame[(frame.case_id == "hog-two") & (frame.api == "limits.hog")]
    assert set(killed.verdict) == {"crashed"} and len(killed) == 2
    for reason in killed.reason:
        found = re.fullmatch(
            r"worker exceeded --max-worker-mem 200 MiB \(RSS (\d+) MiB\); killed", reason
        )
        assert found and 200 < int(found[1]) < 600, reason
    rest = frame.drop(killed.index)
    assert set(rest.verdict) == {"pass"} and len(rest) == 10  # the next call restarted it
    log = (out / "workers" / "limits.log").read_text()
    assert log.count("fake adapter starting") == 2


def test_a_worker_holding_memory_from_earlier_calls_is_replaced_before_a_big_call(
    tmp_path, limits_framework, write_yaml
):
    (case,) = cases.load_file(_cases(tmp_path, "keep"))
    x, target = case.arrays()
    entry = adapters.load("limits").ENTRIES[1]
    task = runner._task(case, entry, x, target, None, "cpu", "eager")
    worker = Worker("limits", "cpu", tmp_path / "w.log", max_rss=400 * MIB)
    worker.start()
    try:
        assert worker.start_rss is not None and worker.start_rss < 150 * MIB
        first = worker.pid
        assert worker.call(task, 30).status == "ok"  # type: ignore[union-attr]
        held = rss(worker.pid)
        assert held is not None and held > worker.start_rss + 140 * MIB  # kept 150 MiB
        assert not worker.make_room(400 * MIB - held - MIB)  # fits: left alone
        assert worker.pid == first
        assert worker.make_room(400 * MIB - worker.start_rss - MIB)  # fits a fresh one only
        assert worker.pid is None
        assert worker.call(task, 30).status == "ok"  # type: ignore[union-attr]  # restarted
        assert worker.pid not in (None, first)
    finally:
        worker.stop()
    assert rss(None) is None

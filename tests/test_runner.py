"""The runner and its workers: crashes, hangs, skips, streaming, and real frameworks."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CASES, ROOT, have

from conformance import adapters, cases, results, runner

SMALL = """
cases:
  - id: {id}
    loss: cross_entropy
    input: {{shape: [4, 3], scale: 2.0, seed: 1}}
    target: {{kind: index, seed: 2}}
    params: {{weight: [1.0, 2.0, 0.5]}}
"""


def _cases(write_yaml, *ids: str) -> list[cases.Case]:  # type: ignore[no-untyped-def]
    path = write_yaml("".join(SMALL.format(id=i).split("cases:\n", 1)[1] for i in ids))
    path.write_text("cases:\n" + path.read_text())
    return cases.load_file(path)


def _verdicts(run_dir: Path) -> dict[tuple[str, str], set[str]]:
    frame = results.load(run_dir)
    out: dict[tuple[str, str], set[str]] = {}
    for row in frame.itertuples():
        out.setdefault((row.case_id, row.api), set()).add(row.verdict)
    return out


def test_a_killed_worker_costs_only_the_case_in_flight(tmp_path, write_yaml, fake_framework):
    selected = _cases(write_yaml, "before", "crash-me", "after")
    runner.run(selected, tmp_path, frameworks=[fake_framework], timeout=30)
    v = _verdicts(tmp_path)
    assert v[("crash-me", "fake.crash")] == {"crashed"}
    # the crash is reported with the signal and the worker's last words
    frame = results.load(tmp_path)
    crashed = frame[frame.verdict == "crashed"].iloc[0]
    assert "SIGKILL" in crashed.reason
    assert "about to die" in crashed.stderr_tail
    # every other row is in place: the worker restarted and went on
    for case_id in ("before", "crash-me", "after"):
        assert v[(case_id, "fake.exact")] == {"pass"}
        assert v[(case_id, "fake.hang")] == {"pass"}
    assert v[("after", "fake.crash")] == {"pass"}
    assert len(frame) == 3 * 4 * 2


def test_a_poisoning_error_replaces_the_worker(tmp_path, write_yaml, fake_framework):
    # A CUDA device-side assert leaves the process's CUDA context unusable: every later call
    # would raise it too. The row records it, and the next Task gets a fresh worker.
    selected = _cases(write_yaml, "before", "poison-me", "after")
    runner.run(selected, tmp_path, frameworks=[fake_framework], timeout=30)
    v = _verdicts(tmp_path)
    frame = results.load(tmp_path)
    poisoned = frame[(frame.case_id == "poison-me") & (frame.api == "fake.raise")]
    assert set(poisoned.verdict) == {"error"}
    assert poisoned.reason.str.contains("device-side assert").all()
    for case_id in ("before", "poison-me", "after"):
        assert v[(case_id, "fake.exact")] == {"pass"}, case_id
        assert v[(case_id, "fake.crash")] == {"pass"}, case_id
    assert v[("after", "fake.raise")] == {"error"}
    after = frame[(frame.case_id == "after") & (frame.api == "fake.raise")]
    assert after.reason.str.contains("out of bounds").all()


def test_a_call_declared_poisoning_replaces_the_worker(tmp_path, write_yaml, fake_framework):
    # Each call on "taint-me" returns the right numbers but corrupts the process, so that
    # the next call would abort it: the adapter's POISONING says so, and no row crashes.
    selected = _cases(write_yaml, "before", "taint-me", "after")
    runner.run(selected, tmp_path, frameworks=[fake_framework], timeout=30)
    v = _verdicts(tmp_path)
    for case_id in ("before", "taint-me", "after"):
        assert v[(case_id, "fake.exact")] == {"pass"}, case_id
        assert v[(case_id, "fake.hang")] == {"pass"}, case_id
        assert v[(case_id, "fake.crash")] == {"pass"}, case_id
    assert "crashed" not in set(results.load(tmp_path).verdict)


def test_a_hung_call_times_out_and_the_run_goes_on(tmp_path, write_yaml, fake_framework):
    selected = _cases(write_yaml, "hang-here", "fine")
    start = time.monotonic()
    runner.run(selected, tmp_path, frameworks=[fake_framework], timeout=2)
    assert time.monotonic() - start < 40
    v = _verdicts(tmp_path)
    assert v[("hang-here", "fake.hang")] == {"timeout"}
    assert v[("fine", "fake.hang")] == {"pass"}
    assert v[("hang-here", "fake.crash")] == {"pass"}


def test_raised_errors_keep_the_call_text(tmp_path, write_yaml, fake_framework):
    runner.run(_cases(write_yaml, "plain"), tmp_path, frameworks=[fake_framework])
    frame = results.load(tmp_path)
    row = frame[(frame.api == "fake.raise") & (frame.output == "loss")].iloc[0]
    assert row.verdict == "error"
    assert row.call == "fake.raise(x, t)"
    assert row.reason == "RuntimeError: Target 3 is out of bounds"


def test_framework_output_does_not_corrupt_the_channel(tmp_path, write_yaml, fake_framework):
    runner.run(_cases(write_yaml, "plain"), tmp_path, frameworks=[fake_framework])
    log = (tmp_path / "workers" / "fake.log").read_text()
    assert "fake adapter starting" in log


def test_missing_framework_gives_skipped_rows(tmp_path, write_yaml, monkeypatch):
    from conformance import adapters

    monkeypatch.setitem(adapters.MODULES, "ghost", "fake_adapter")
    import fake_adapter

    monkeypatch.setattr(fake_adapter, "REQUIRES", ("no_such_framework_xyz",))
    env = runner.run(_cases(write_yaml, "plain"), tmp_path, frameworks=["ghost"])
    frame = results.load(tmp_path)
    assert set(frame.verdict) == {"skipped"}
    assert "no_such_framework_xyz not installed" in frame.reason.iloc[0]
    assert "skipped" in env["ghost"]


def test_rows_have_every_column_and_a_repro(tmp_path, write_yaml, fake_framework):
    runner.run(_cases(write_yaml, "plain"), tmp_path, frameworks=[fake_framework])
    lines = (tmp_path / results.RESULTS_FILE).read_text().splitlines()
    for line in lines:
        assert list(json.loads(line)) == list(results.COLUMNS)
    frame = results.load(tmp_path)
    row = frame[(frame.api == "fake.exact") & (frame.output == "loss")].iloc[0]
    assert "cases.get(" in row.repro and "fake.exact(x, t)" in row.repro
    assert row.params["weight"] == [1.0, 2.0, 0.5]
    assert row.input_shape == [4, 3] and isinstance(row.expected, float)
    grad = frame[(frame.api == "fake.exact") & (frame.output == "grad")].iloc[0]
    assert np.shape(grad.expected) == (4, 3) and np.shape(grad.actual) == (4, 3)


def test_repro_snippet_runs_and_prints_the_oracle_value(tmp_path, fake_framework):
    case = cases.load_file(CASES / "cross_entropy_seeds.yaml")[0]
    snippet = runner.repro(case, "", "")
    out = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.startswith("expected")


@pytest.mark.skipif(not have("torch"), reason="torch not installed")
def test_torch_reproduces_the_seed_numbers_end_to_end(tmp_path):
    selected = [c for c in cases.load_paths([CASES]) if c.base_id.startswith("seed-")]
    runner.run(selected, tmp_path, frameworks=["torch"])
    frame = results.load(tmp_path)
    assert set(frame.verdict) == {"pass"}
    row = frame[
        (frame.case_id == "seed-1x3x2-weighted[reduction=mean,dtype=float32]")
        & (frame.output == "loss")
        & (frame.api == "torch.nn.functional.cross_entropy")
    ].iloc[0]
    assert round(row.actual, 4) == 1.6075
    assert row.call == (
        "torch.nn.functional.cross_entropy(input, target, weight=w, ignore_index=255, "
        "reduction='mean', label_smoothing=0.0)"
    )


@pytest.mark.skipif(not have("torch"), reason="torch not installed")
def test_gpu_request_without_gpu_gives_skipped_rows(tmp_path, write_yaml):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    runner.run(_cases(write_yaml, "plain"), tmp_path, frameworks=["torch"], device="gpu")
    frame = results.load(tmp_path)
    assert set(frame.verdict) == {"skipped"}
    assert "no GPU visible to torch" in frame.reason.iloc[0]


@pytest.mark.skipif(not have("torch"), reason="torch not installed")
def test_killing_a_real_worker_mid_run_keeps_every_other_result(tmp_path):
    """The issue's acceptance check, with SIGKILL from outside while `conformance run` works."""
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conformance",
            "run",
            "--framework",
            "torch",
            "--out",
            str(out),
            "--no-progress",
            "--cases",
            str(CASES),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and proc.poll() is None:
        rows = out / results.RESULTS_FILE
        if rows.exists() and rows.stat().st_size > 0:
            killed = _kill_worker_of(proc.pid)
        time.sleep(0.02)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode in (0, 1), stderr
    if killed is None:
        pytest.skip("the run finished before a worker could be killed")
    frame = results.load(out)
    # every torch entry of the case's loss, in eager mode, loss and grad rows
    per_loss = collections.Counter(e.loss for e in adapters.load("torch").ENTRIES)
    expected_rows = sum(2 * per_loss[c.loss] for c in cases.load_paths([CASES]))
    assert len(frame) == expected_rows
    crashed = frame[frame.verdict == "crashed"]
    # at most the one (case, API) in flight was lost; everything else has its verdict
    assert crashed.groupby(["case_id", "api"]).ngroups <= 1
    assert set(frame.verdict) <= {
        "pass",
        "expected-error",
        "semantic-difference",
        "known",
        "crashed",
        "unsupported",  # a variant entry outside its cases (torch's weight.expand_as)
    }
    # a crashed row fails the run (exit 1); a kill between calls loses nothing at all
    assert proc.returncode == (1 if len(crashed) else 0)


def _kill_worker_of(parent: int) -> int | None:
    for pid in Path("/proc").iterdir():
        if not pid.name.isdigit():
            continue
        try:
            stat = (pid / "stat").read_text()
            cmd = (pid / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"conformance.worker" in cmd:
            os.kill(int(pid.name), signal.SIGKILL)
            return int(pid.name)
    return None


def test_expected_values_come_from_rounded_inputs():
    case = cases.load_file(CASES / "cross_entropy.yaml")[0]
    x, t = case.arrays()
    assert x.dtype == np.dtype(case.dtype)
    exp = runner.expected_for(case, x, t)
    assert exp.values["loss"].dtype == np.float64
    assert exp.n_terms == (x.shape[1] if case.params["reduction"] == "none" else x.size)


REPRO_CASE = "seed-2x3-logits[reduction=mean,dtype=float32]"


@pytest.mark.parametrize("framework", ["torch", "tensorflow", "jax", "paddle"])
def test_each_frameworks_repro_snippet_reproduces_its_row(framework, tmp_path):
    from conformance import adapters

    required = adapters.load(framework).REQUIRES
    missing = [m for m in required if not have(m)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    selected = [c for c in cases.load_paths([CASES]) if c.id == REPRO_CASE]
    runner.run(selected, tmp_path, frameworks=[framework])
    frame = results.load(tmp_path)
    rows = frame[(frame.verdict == "pass") & (frame.output == "loss")]
    assert len(rows), f"no passing {framework} row for {REPRO_CASE}"
    for row in rows.itertuples():
        out = subprocess.run(
            [sys.executable, "-c", row.repro], capture_output=True, text=True, cwd=ROOT
        )
        assert out.returncode == 0, out.stderr[-2000:]
        lines = out.stdout.splitlines()
        assert lines[0].startswith("expected")
        printed = float(lines[lines.index("loss") + 1])
        assert printed == pytest.approx(row.actual, rel=1e-6), row.api

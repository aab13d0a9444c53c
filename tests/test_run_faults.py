"""Faults during a run (issue 10, items 5–9): each ends in rows, a summary and a clear exit.

Hostile file names in repro snippets, workers that die or hang while starting, Ctrl-C and
SIGTERM at awkward moments, run directories that cannot be written, and bad CLI values.
"""

from __future__ import annotations

import ast
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ROOT

from conformance import cases, cli, results, runner

CASE = """\
  - id: {id}
    loss: cross_entropy
    input: {{shape: [3, 4], scale: 2.0, seed: 3}}
    target: {{kind: index, seed: 4}}
"""


def _case_file(tmp_path: Path, *ids: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text("cases:\n" + "".join(CASE.format(id=i) for i in ids))
    return path


# ------------------------------------------------------------------ 5. repro snippets


HOSTILE_NAMES = [
    "a\nimport os;os.system('touch PWNED')\n#.yaml",
    "b\rimport os;os.system('touch PWNED')\r#.yaml",
    "c'''+__import__('os').system('touch PWNED')+'''.yaml",
    'd"+__import__("os").system("touch PWNED")+".yaml',
    "e\u2028import os;os.system('touch PWNED')\u2029.yaml",
    "f\\'),__import__('os').system('touch PWNED'),('.yaml",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_repro_snippet_keeps_a_hostile_file_name_inert(tmp_path, name):
    path = tmp_path / name
    path.write_text(_case_file(tmp_path, "t1").read_text())
    case = replace(cases.load_file(tmp_path / "c.yaml")[0], file=str(path))
    snippet = runner.repro(case, "print('call', {call!r})\n", "framework.loss(input, target)")
    # the path appears once, as one string literal, and the code has the fixed statements
    tree = ast.parse(snippet)
    literals = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    assert str(path) in literals
    assert len(tree.body) == 8  # import, case, arrays, weights, cotangent, expected, call
    assert snippet.isascii()
    out = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, cwd=tmp_path
    )
    assert not (tmp_path / "PWNED").exists()
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("expected")


# ------------------------------------------------------------------ 6. workers that fail to start

ADAPTER = """\
import os, signal, time
from pathlib import Path
from fake_adapter import ENTRIES, REQUIRES, SNIPPET

FRAMEWORK = "{name}"
STARTS = Path({starts!r})


def environment(device):
    starts = int(STARTS.read_text() or 0) if STARTS.exists() else 0
    STARTS.write_text(str(starts + 1))
{body}
    return {{"device": device}}
"""


def _adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> Path:
    """Register a test adapter whose start-up does ``body``; returns its start counter."""
    starts = tmp_path / f"{name}.starts"
    module = tmp_path / "adapters" / f"{name}_adapter.py"
    module.parent.mkdir(exist_ok=True)
    module.write_text(
        ADAPTER.format(name=name, starts=str(starts), body=textwrap.indent(body, "    "))
    )
    monkeypatch.syspath_prepend(str(module.parent))
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    from conformance import adapters

    monkeypatch.setitem(adapters.MODULES, name, f"{name}_adapter")
    return starts


def test_a_worker_killed_while_starting_is_a_crash_not_a_skip(tmp_path, monkeypatch, capsys):
    starts = _adapter(tmp_path, monkeypatch, "dying", "os.kill(os.getpid(), signal.SIGKILL)")
    path = _case_file(tmp_path, "one", "two", "three", "four", "five")
    out = tmp_path / "run"
    code = cli.main(
        ["run", "--framework", "dying", "--cases", str(path), "--out", str(out), "--no-progress"]
    )
    assert code == cli.EXIT_FAILING
    frame = results.load(out)
    assert set(frame.verdict) == {"crashed"}
    assert len(frame) == 5 * 4 * 2  # every row is there, none skipped
    assert frame.reason.str.contains("died while starting .worker killed by SIGKILL.").any()
    assert frame.reason.str.contains("not restarted after 3 failed starts in a row").any()
    # bounded: the first start and two restarts, then no more attempts
    assert int(starts.read_text()) == 3
    summary = json.loads((out / results.SUMMARY_FILE).read_text())
    assert "died while starting" in summary["environment"]["dying"]["start_failed"]


def test_a_restart_that_hangs_is_bounded_by_the_start_timeout(tmp_path, monkeypatch):
    starts = _adapter(
        tmp_path,
        monkeypatch,
        "hangs",
        "if starts:  # every restart hangs\n    time.sleep(600)",
    )
    path = _case_file(tmp_path, "crash-first", "two", "three", "four", "five")
    began = time.monotonic()
    runner.run(
        cases.load_file(path), tmp_path / "run", frameworks=["hangs"], timeout=5, start_timeout=2
    )
    assert time.monotonic() - began < 30
    frame = results.load(tmp_path / "run")
    crash = frame[frame.api == "fake.crash"]
    assert set(crash[crash.case_id == "crash-first"].verdict) == {"crashed"}
    later = frame[frame.case_id != "crash-first"]
    reasons = " ".join(later.reason.dropna())
    assert "did not start within 2 s" in reasons
    assert "not restarted after 3 failed starts in a row" in reasons
    assert set(later.verdict) <= {"timeout", "crashed"}
    assert int(starts.read_text()) == 4  # one good start, three hung restarts


def test_restart_timeout_follows_the_first_start(tmp_path):
    from conformance.supervisor import Worker

    w = Worker("torch", "cpu", tmp_path / "w.log", start_timeout=300)
    assert w.restart_timeout(120) == 300  # never started: the start timeout
    w.start_seconds = 5.0
    assert w.restart_timeout(2) == 25  # 3 × 5 s + 10 s
    assert w.restart_timeout(120) == 120  # at least the call timeout
    w.start_seconds = 200.0
    assert w.restart_timeout(2) == 300  # at most the start timeout


# ------------------------------------------------------------------ 7. Ctrl-C and SIGTERM


def _spawn_cli(tmp_path: Path, path: Path, framework: str, *extra: str) -> subprocess.Popen[str]:
    out = tmp_path / "run"
    script = (
        "import sys; from conformance import adapters, cli; "
        f"adapters.MODULES[{framework!r}] = {framework + '_adapter'!r}; "
        f"sys.exit(cli.main(['run', '--framework', {framework!r}, '--cases', {str(path)!r}, "
        f"'--out', {str(out)!r}, '--no-progress', *{list(extra)!r}]))"
    )
    pythonpath = os.pathsep.join([str(tmp_path / "adapters"), str(ROOT / "tests")])
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for_rows(out: Path, count: int, proc: subprocess.Popen[str]) -> None:
    rows = out / results.RESULTS_FILE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if rows.exists() and len(rows.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} rows appeared")


def _assert_outputs(out: Path) -> None:
    for name in (results.SUMMARY_FILE, "report.html", "results.csv"):
        assert (out / name).is_file(), name


def test_two_quick_ctrl_c_still_write_the_summary_and_report(tmp_path, monkeypatch):
    _adapter(tmp_path, monkeypatch, "plain", "")
    path = _case_file(tmp_path, "first", "hang-second", "third")
    proc = _spawn_cli(tmp_path, path, "plain", "--timeout", "4")
    _wait_for_rows(tmp_path / "run", 8, proc)  # "first" is done; "hang-second" is in flight
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == cli.EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    assert "stopped after 2 of 3 cases" in stderr
    _assert_outputs(tmp_path / "run")
    frame = results.load(tmp_path / "run")
    assert set(frame.case_id) == {"first", "hang-second"}


def test_ctrl_c_while_workers_start_stops_at_once_and_writes_the_report(tmp_path, monkeypatch):
    starts = _adapter(tmp_path, monkeypatch, "slow", "time.sleep(600)")
    path = _case_file(tmp_path, "one", "two")
    proc = _spawn_cli(tmp_path, path, "slow")
    deadline = time.monotonic() + 30
    while not starts.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    began = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - began < 15
    assert proc.returncode == cli.EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    assert "stopped after 0 of 2 cases" in stderr
    _assert_outputs(tmp_path / "run")


def test_sigterm_is_handled_like_ctrl_c_and_exits_143(tmp_path, monkeypatch):
    _adapter(tmp_path, monkeypatch, "plain", "")
    path = _case_file(tmp_path, "first", "hang-second", "third")
    proc = _spawn_cli(tmp_path, path, "plain", "--timeout", "4")
    _wait_for_rows(tmp_path / "run", 8, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    _assert_outputs(tmp_path / "run")


# ------------------------------------------------------------------ 8. run directories


def _run_cli(tmp_path: Path, out: Path, fake_framework: str) -> int:
    path = _case_file(tmp_path, "one", "two")
    return cli.main(
        [
            *("run", "--framework", fake_framework, "--cases", str(path), "--out", str(out)),
            *("--no-progress", "--exit-zero"),
        ]
    )


def test_out_is_an_existing_file(tmp_path, fake_framework, capsys):
    out = tmp_path / "file"
    out.write_text("x")
    assert _run_cli(tmp_path, out, fake_framework) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"cannot write the run directory {out}" in err and "Traceback" not in err


def test_out_under_a_file(tmp_path, fake_framework, capsys):
    out = tmp_path / "file" / "run"
    (tmp_path / "file").write_text("x")
    assert _run_cli(tmp_path, out, fake_framework) == cli.EXIT_USAGE
    assert "Not a directory" in capsys.readouterr().err


def test_out_already_holding_results_is_refused(tmp_path, fake_framework, capsys):
    out = tmp_path / "run"
    assert _run_cli(tmp_path, out, fake_framework) == cli.EXIT_OK
    rows = (out / results.RESULTS_FILE).read_text()
    assert _run_cli(tmp_path, out, fake_framework) == cli.EXIT_USAGE
    assert "already holds results" in capsys.readouterr().err
    assert (out / results.RESULTS_FILE).read_text() == rows  # nothing appended


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_out_on_a_read_only_directory(tmp_path, fake_framework, capsys):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        assert _run_cli(tmp_path, parent / "run", fake_framework) == cli.EXIT_USAGE
        assert "Permission denied" in capsys.readouterr().err
    finally:
        parent.chmod(0o700)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_stops_the_run_with_a_message(tmp_path, fake_framework, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / results.RESULTS_FILE).symlink_to("/dev/full")  # every write: ENOSPC
    assert _run_cli(tmp_path, out, fake_framework) == cli.EXIT_USAGE  # no row was written
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert "stopped after 0 of 2 cases" in err


def test_a_write_cut_short_leaves_only_complete_rows(tmp_path, monkeypatch):
    row = {"case_id": "a", "verdict": "pass", "reason": "x" * 5000}
    writer = results.ResultWriter(tmp_path)
    writer.write([row])
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        if len(data) > 100:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(results.ResultsUnwritable, match="No space left"):
        writer.write([row, row])
    with pytest.raises(results.ResultsUnwritable):  # later writes are refused the same way
        writer.write([row])
    monkeypatch.undo()
    writer.close()
    lines = (tmp_path / results.RESULTS_FILE).read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["case_id"] == "a"


def test_a_row_with_a_lone_surrogate_is_still_valid_json(tmp_path):
    with results.ResultWriter(tmp_path) as writer:
        writer.write([{"case_id": "a", "reason": "bad \udcff byte"}])
    data = (tmp_path / results.RESULTS_FILE).read_bytes()
    assert json.loads(data.decode("utf-8"))["reason"] == "bad \udcff byte"


# ------------------------------------------------------------------ 9. CLI values


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "soon"])
def test_timeout_must_be_a_finite_positive_number(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--timeout", value])
    assert exit_.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "--timeout" in err and "Traceback" not in err


@pytest.mark.parametrize("option", ["--max-elements", "--start-timeout"])
def test_other_limits_must_be_positive(option, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", option, "0"])
    assert exit_.value.code == cli.EXIT_USAGE


def test_a_framework_named_twice_runs_once(tmp_path, fake_framework):
    path = _case_file(tmp_path, "one")
    out = tmp_path / "run"
    code = cli.main(
        [
            *("run", "--framework", "fake, fake,fake", "--cases", str(path), "--out", str(out)),
            *("--no-progress", "--exit-zero"),
        ]
    )
    assert code == cli.EXIT_OK
    assert len(results.load(out)) == 4 * 2


def test_a_framework_that_cannot_even_load_stops_the_workers_already_started(
    tmp_path, fake_framework, monkeypatch
):
    from conformance import adapters

    monkeypatch.setitem(adapters.MODULES, "broken", "no_such_adapter_module_xyz")
    session = runner.Session([fake_framework, "broken"], tmp_path)
    with pytest.raises(ModuleNotFoundError):
        session.__enter__()
    deadline = time.monotonic() + 10
    while _worker_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _worker_children() == []


def _worker_children() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[1].split()[0]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"conformance.worker" in cmd and state != "Z":
            found.append(int(entry.name))
    return found


def test_a_framework_serves_its_cases_while_a_slower_one_still_starts(
    tmp_path, monkeypatch, fake_framework
):
    """No start barrier: each framework's queue begins when its own worker is ready."""
    _adapter(tmp_path, monkeypatch, "slow", "time.sleep(6)")
    selected = cases.load_file(_case_file(tmp_path, "one", "two"))
    out = tmp_path / "run"
    done = threading.Event()
    thread = threading.Thread(
        target=lambda: (runner.run(selected, out, frameworks=["slow", fake_framework]), done.set())
    )
    thread.start()
    rows = out / results.RESULTS_FILE
    deadline = time.monotonic() + 5  # well inside the slow framework's 6 s start
    while time.monotonic() < deadline and not (rows.exists() and rows.stat().st_size):
        time.sleep(0.05)
    written_before_slow_started = rows.exists() and rows.stat().st_size > 0
    thread.join(timeout=120)
    assert done.is_set()
    assert written_before_slow_started
    frame = results.load(out)
    assert set(frame.framework) == {"slow", fake_framework}
    fake = frame[frame.framework == fake_framework]
    assert ((fake.verdict == "error") == (fake.api == "fake.raise")).all()  # the rest pass

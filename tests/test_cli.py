"""The command line as a user meets it: exit codes, messages, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CASES, ROOT

from conformance import cli, results

TYPO = """\
cases:
  - id: typo
    loss: cross_entropy
    input: {shape: [2, 3], seed: 1}
    target: {kind: index, seed: 2}
    params:
      reducton: mean
"""


def conformance(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args], capture_output=True, text=True, cwd=cwd
    )


def test_validate_typo_prints_file_line_and_exits_2(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(TYPO)
    out = conformance("validate", str(path))
    assert out.returncode == 2
    assert out.stderr.splitlines()[0] == (
        f"{path}:7: cases[0].params.reducton: unknown key 'reducton' "
        "(allowed: alpha, beta, delta, gamma, ignore_index, label_smoothing, log_target, "
        "pos_weight, reduction, smooth, tversky_alpha, tversky_beta, weight)"
    )
    assert "Traceback" not in out.stderr


def test_validate_shipped_cases():
    out = conformance("validate", "cases")
    assert out.returncode == 0, out.stderr
    assert "case(s) after expansion: OK" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "no/such/dir"], "no such file or directory: no/such/dir"),
        (["run", "--framework", "torhc"], "unknown framework torhc"),
        (["run", "-k", "no-case-has-this-id"], "matches no case"),
        (["report", "."], "has no results.jsonl"),
    ],
)
def test_bad_usage_exits_2_with_one_line(args, message):
    out = conformance(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_argparse_errors_exit_2():
    assert conformance("run", "--device", "tpu").returncode == 2
    assert conformance().returncode == 2


def test_list_cases_and_entries():
    out = conformance("list")
    assert out.returncode == 0
    assert (
        "seed-1x3x2-weighted[reduction=mean,dtype=float32]\tcases/cross_entropy_seeds.yaml:"
        in out.stdout
    )
    entries = conformance("list", "--entries").stdout
    for api in ("torch.nn.functional.cross_entropy", "torch.nn.CrossEntropyLoss"):
        assert api in entries


def _fake_case(tmp_path: Path, case_id: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(
        f"cases:\n  - id: {case_id}\n    loss: cross_entropy\n"
        "    input: {shape: [3, 4], scale: 2.0, seed: 3}\n    target: {kind: index, seed: 4}\n"
    )
    return path


def test_run_exit_codes_and_outputs(tmp_path, fake_framework, capsys):
    out = tmp_path / "run"
    # fake.raise errors on every case: failing rows -> exit 1, but everything is written
    code = cli.main(
        [
            "run",
            "--framework",
            "fake",
            "--cases",
            str(_fake_case(tmp_path, "ok")),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 1
    printed = capsys.readouterr().out
    assert printed.strip().endswith(f"report: {out / 'report.html'}")
    for name in ("results.jsonl", "results.csv", "summary.json", "report.html", "junit.xml",
                 "summary.md", "results.parquet"):  # fmt: skip
        assert (out / name).is_file(), name
    summary = results.load(out)
    assert set(summary.verdict) == {"pass", "error"}
    # --exit-zero keeps the report but not the failure status
    code = cli.main(
        [
            "run",
            "--framework",
            "fake",
            "--cases",
            str(_fake_case(tmp_path, "ok")),
            "--out",
            str(tmp_path / "run2"),
            "--no-progress",
            "--exit-zero",
        ]
    )
    assert code == 0
    # -k selects by id; report re-renders from saved rows only
    (out / "report.html").unlink()
    assert cli.main(["report", str(out)]) == 0
    assert (out / "report.html").is_file()


def test_default_out_dir_is_timestamped_under_reports(tmp_path, fake_framework, monkeypatch):
    monkeypatch.chdir(tmp_path)
    case = _fake_case(tmp_path, "ok")
    cli.main(["run", "--framework", "fake", "--cases", str(case), "--no-progress", "--exit-zero"])
    (run_dir,) = (tmp_path / "reports").iterdir()
    assert run_dir.name[:8].isdigit() and (run_dir / "report.html").is_file()


def test_cases_dir_default_is_the_shipped_set():
    assert (CASES / "cross_entropy.yaml").is_file()


def test_ctrl_c_keeps_the_rows_and_still_writes_the_report(tmp_path):
    """SIGINT mid-run: the call in flight finishes, the report is written, exit 130."""
    import os
    import signal
    import time

    path = tmp_path / "c.yaml"
    body = "".join(
        f"  - id: {cid}\n    loss: cross_entropy\n"
        "    input: {shape: [3, 4], scale: 2.0, seed: 3}\n    target: {kind: index, seed: 4}\n"
        for cid in ("first", "hang-second", "third")
    )
    path.write_text("cases:\n" + body)
    out = tmp_path / "run"
    script = (
        "import sys; from conformance import adapters, cli; "
        "adapters.MODULES['fake'] = 'fake_adapter'; "
        f"sys.exit(cli.main(['run', '--framework', 'fake', '--cases', {str(path)!r}, "
        f"'--out', {str(out)!r}, '--timeout', '4', '--no-progress']))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    rows = out / results.RESULTS_FILE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if rows.exists() and len(rows.read_text().splitlines()) >= 8:  # "first" is done
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted: stopped after 2 of 3 cases; rows so far are kept" in stderr
    assert "Traceback" not in stderr
    assert (out / "report.html").is_file() and (out / "summary.json").is_file()
    frame = results.load(out)
    assert set(frame.case_id) == {"first", "hang-second"}
    assert frame[
        (frame.case_id == "hang-second") & (frame.api == "fake.hang")
    ].verdict.tolist() == ["timeout", "timeout"]

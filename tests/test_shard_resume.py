"""Sharding, merging and resuming runs (issue 15, items 3 and 4): a merged set of shards and
a resumed run each equal one uninterrupted run."""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import CASES, ROOT, installed

from conformance import adapters, cases, cli, results, runner, shard

CASE = """\
  - id: {id}
    loss: cross_entropy
    input: {{shape: [3, 4], scale: 2.0, seed: 3}}
    target: {{kind: index, seed: 4}}
"""

# One entry covers the crash of "b-crash" (in one shard only: stale in the other shard's
# own summary, not in the whole run's); the other covers nothing anywhere (stale).
LEDGER = """\
known:
  - api: fake.crash
    case: "*"
    verdict: crashed
    reason: the fake adapter kills itself on purpose
    link: https://example.com/fake-crash
  - api: fake.exact
    case: "*"
    verdict: mismatch
    reason: never happens
    link: https://example.com/never
"""


def _case_dir(tmp_path: Path, *ids: str) -> Path:
    folder = tmp_path / "cases"
    folder.mkdir()
    (folder / "c.yaml").write_text("cases:\n" + "".join(CASE.format(id=i) for i in ids))
    (folder / "known.yaml").write_text(LEDGER)
    return folder


def _run(*args: str | Path) -> int:
    return cli.main(["run", *map(str, args), "--no-progress"])


def _rows(run_dir: Path) -> collections.Counter[str]:
    """The rows of a run as a multiset, each without its timing."""
    lines = (run_dir / results.RESULTS_FILE).read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    return collections.Counter(
        json.dumps({k: v for k, v in row.items() if k != "seconds"}, sort_keys=True) for row in rows
    )


def _summary(run_dir: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((run_dir / results.SUMMARY_FILE).read_text())
    return summary


def _assert_same_run(got: Path, want: Path) -> None:
    assert _rows(got) == _rows(want)
    a, b = _summary(got), _summary(want)
    assert a["by_verdict"] == b["by_verdict"]
    assert a["stale_ledger"] == b["stale_ledger"]
    assert [f["id"] for f in a["findings"]] == [f["id"] for f in b["findings"]]
    for name in ("report.html", "results.csv", "results.parquet", "junit.xml", "summary.md"):
        assert (got / name).is_file(), name


# ------------------------------------------------------------------ sharding


@pytest.mark.parametrize("count", [2, 3, 4])
def test_shards_of_the_shipped_cases_are_deterministic_balanced_and_disjoint(count):
    selected = cases.load_paths([CASES])
    frameworks, modes = runner.FRAMEWORKS, runner.DEFAULT_MODES
    chosen = shard.assign(selected, count, frameworks, modes)
    assert sorted(set(chosen)) == list(range(1, count + 1))
    # the same case set in another order: every case lands in the same shard
    shuffled = list(selected)
    random.Random(count).shuffle(shuffled)
    again = shard.assign(shuffled, count, frameworks, modes)
    by_id = {c.id: k for c, k in zip(selected, chosen, strict=True)}
    assert {c.id: k for c, k in zip(shuffled, again, strict=True)} == by_id
    # every case in exactly one shard, each shard in the case order
    slices = [shard.select(selected, (i, count), frameworks, modes) for i in range(1, count + 1)]
    ids = [c.id for s in slices for c in s]
    assert sorted(ids) == sorted(c.id for c in selected) and len(set(ids)) == len(ids)
    assert slices[0] == [c for c in selected if c in slices[0]]
    costs = shard.costs(selected, frameworks, modes)
    cost = {c.id: n for c, n in zip(selected, costs, strict=True)}
    loads = [sum(cost[c.id] for c in s) for s in slices]
    assert max(loads) <= 1.5 * sum(loads) / count, loads


def test_the_cost_counts_calls_and_elements(write_yaml):
    path = write_yaml(
        "cases:\n" + CASE.format(id="small") + "  - id: big\n    loss: cross_entropy\n"
        "    input: {shape: [64, 4096], seed: 3}\n    target: {kind: index, seed: 4}\n"
        "  - id: act\n    loss: softmax\n    input: {values: [[1.0, 2.0], [3.0, 4.0]]}\n"
    )
    small, big, act = cases.load_file(path)
    assert [shard.elements(c) for c in (small, big, act)] == [12, 64 * 4096, 4]
    eager = shard.costs([small, big, act], ["torch"], ["eager"])
    entries = adapters.load("torch").ENTRIES
    calls = [len(runner.calls(entries, c, ["eager"])) for c in (small, act)]
    assert calls[0] > 0 and calls[1] > 0
    assert eager[0] == calls[0] * (12 + shard.CALL_ELEMENTS)
    assert eager[2] == calls[1] * (4 + shard.CALL_ELEMENTS)
    assert eager[1] > eager[0]
    # more frameworks and modes: more calls, more cost
    assert shard.costs([small], runner.FRAMEWORKS, runner.DEFAULT_MODES)[0] > eager[0]


@pytest.mark.parametrize("value", ["0/2", "3/2", "1/0", "2", "a/b", "-1/2"])
def test_a_bad_shard_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--shard", value])
    assert exit_.value.code == cli.EXIT_USAGE
    assert "--shard" in capsys.readouterr().err


# ------------------------------------------------------------------ merging


@pytest.fixture
def shards(tmp_path, fake_framework):  # type: ignore[no-untyped-def]
    """A whole run and its two shards, of five fake cases."""
    folder = _case_dir(tmp_path, "a", "b-crash", "c", "d", "e")
    common = ("--framework", fake_framework, "--cases", folder, "--timeout", "30")
    assert _run(*common, "--out", tmp_path / "full") == cli.EXIT_FAILING  # fake.raise errs
    for i in (1, 2):
        assert _run(*common, "--shard", f"{i}/2", "--out", tmp_path / f"s{i}") == 1
    return tmp_path


def test_merged_shards_equal_the_whole_run(shards, capsys):
    stale = {i: [e["entry"] for e in _summary(shards / f"s{i}")["stale_ledger"]] for i in (1, 2)}
    crash_entry = "known.yaml:2"
    assert any(e.endswith(crash_entry) for e in stale[1] + stale[2])  # stale in one shard
    assert _summary(shards / "s1")["environment"]["shard"] == "1/2"
    code = cli.main(["merge", str(shards / "s2"), str(shards / "s1"), "--out", str(shards / "m")])
    assert code == cli.EXIT_FAILING  # by the rows, as the whole run
    _assert_same_run(shards / "m", shards / "full")
    merged = _summary(shards / "m")
    assert not any(e["entry"].endswith(crash_entry) for e in merged["stale_ledger"])
    assert [e["entry"].rsplit("/", 1)[-1] for e in merged["stale_ledger"]] == ["known.yaml:7"]
    env = merged["environment"]
    assert "shard" not in env and len(env["merged_from"]) == 2
    assert env["fake"]["fake"] == "1.0"
    # deterministic order: by file, line, case, framework, API, ..., loss before grad
    rows = [json.loads(line) for line in (shards / "m" / results.RESULTS_FILE).open()]
    keys = [(r["line"], r["case_id"], r["api"], r["output"] == "grad") for r in rows]
    assert keys == sorted(keys)
    recorded = shard.read_selection(shards / "m")
    assert recorded is not None and recorded.shard is None
    assert "report: " in capsys.readouterr().out


def _set_json(path: Path, change: Any) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def test_merge_refuses_what_is_not_one_whole_run(shards, capsys):
    def merge(*dirs: str, force: bool = False) -> tuple[int, str]:
        out = shards / "out"
        shutil.rmtree(out, ignore_errors=True)
        extra = ["--force"] if force else []
        code = cli.main(["merge", *(str(shards / d) for d in dirs), "--out", str(out), *extra])
        err = capsys.readouterr().err
        assert "Traceback" not in err
        if code == cli.EXIT_USAGE:
            assert not out.exists()  # nothing written for a refused merge
        return code, err

    (shards / "empty").mkdir()
    code, err = merge("s1", "empty")
    assert code == 2 and f"{shards / 'empty'} is not a run directory" in err
    code, err = merge("s1", "nowhere")
    assert code == 2 and "nowhere is not a run directory" in err
    code, err = merge("s1")
    assert code == 2 and "missing shard(s) 2/2" in err
    # the same rows under another shard number: overlap, refused even with --force
    shutil.copytree(shards / "s1", shards / "s1b")
    _set_json(shards / "s1b" / shard.RUN_FILE, lambda v: v.update(shard="2/2"))
    _set_json(shards / "s1b" / results.SUMMARY_FILE, lambda v: v["environment"].update(shard="2/2"))
    for force in (False, True):
        code, err = merge("s1", "s1b", force=force)
        assert code == 2 and "overlapping shards" in err and "s1b" in err
    # another framework version: refused, or merged with a note under --force
    shutil.copytree(shards / "s2", shards / "s2b")
    _set_json(
        shards / "s2b" / results.SUMMARY_FILE, lambda v: v["environment"]["fake"].update(fake="2.0")
    )
    code, err = merge("s1", "s2b")
    assert code == 2 and "versions differ: fake: 1.0 in" in err and "2.0 in" in err
    code, err = merge("s1", "s2b", force=True)
    assert code == cli.EXIT_FAILING and "warning: merged with --force: versions differ" in err
    notes = _summary(shards / "out")["environment"]["notes"]
    assert any("fake: 1.0" in n for n in notes)
    # other selection options, and a shard that was interrupted
    shutil.copytree(shards / "s2", shards / "s2c")
    _set_json(shards / "s2c" / shard.RUN_FILE, lambda v: v.update(keyword="b"))
    _set_json(
        shards / "s2c" / results.SUMMARY_FILE,
        lambda v: v["environment"].update(interrupted="stopped after 1 of 2 cases"),
    )
    code, err = merge("s1", "s2c")
    assert code == 2 and "-k b" in err and "is incomplete: stopped after 1 of 2" in err
    code, err = merge("s1", "s1", "s2")
    assert code == 2 and "shard 1/2 given 2 times" in err
    assert merge("s1", "s2")[0] == cli.EXIT_FAILING


# ------------------------------------------------------------------ resuming


def test_resume_drops_a_cut_line_and_a_half_written_call_then_finishes(shards, capsys):
    full, part = shards / "full", shards / "part"
    part.mkdir()
    shutil.copy(full / shard.RUN_FILE, part / shard.RUN_FILE)
    lines = (full / results.RESULTS_FILE).read_bytes().splitlines(keepends=True)
    assert json.loads(lines[10])["output"] == "loss"  # rows go out a call (loss, grad) at a time
    cut = lines[11][:50]
    (part / results.RESULTS_FILE).write_bytes(b"".join(lines[:11]) + cut)
    code = _run("--resume", part)
    assert code == cli.EXIT_FAILING
    out = capsys.readouterr().out
    assert (
        f"resuming {part}: 10 rows kept, 1 row(s) of unfinished calls dropped, "
        f"a cut-off last line (50 bytes) dropped"
    ) in out
    _assert_same_run(part, full)
    assert _summary(part)["environment"]["resumed_rows_kept"] == 10


def test_resuming_a_complete_run_runs_nothing_and_exits_by_its_rows(shards, capsys):
    full = shards / "full"
    before = (full / results.RESULTS_FILE).read_bytes()
    log = (full / "workers" / "fake.log").stat()
    assert _run("--resume", full) == cli.EXIT_FAILING
    assert _run("--resume", full, "--exit-zero") == cli.EXIT_OK
    assert (full / results.RESULTS_FILE).read_bytes() == before
    assert (full / "workers" / "fake.log").stat().st_mtime_ns == log.st_mtime_ns  # no worker
    environment = _summary(full)["environment"]
    assert environment["resumed_rows_kept"] == len(before.splitlines())
    assert environment["fake"]["fake"] == "1.0"  # the versions of the run are kept
    assert "5 cases, 40 rows" in capsys.readouterr().out


def test_resume_refuses_other_options_and_a_directory_without_rows(shards, capsys):
    full = shards / "full"
    for extra in (
        ["--framework", "torch"],
        ["--mode", "eager"],
        ["-k", "a"],
        ["--shard", "1/2"],
        ["--cases", "cases"],
        ["--device", "gpu"],
        ["--out", str(shards / "elsewhere")],
    ):
        assert _run("--resume", full, *extra) == cli.EXIT_USAGE, extra
        err = capsys.readouterr().err
        assert extra[0] in err and "Traceback" not in err
    assert _run("--resume", full, "--framework", "torch") == cli.EXIT_USAGE
    assert "--framework torch was given, the run has fake" in capsys.readouterr().err
    # the options it was run with may be repeated
    assert _run("--resume", full, "--framework", "fake", "--exit-zero") == cli.EXIT_OK
    (shards / "empty").mkdir()
    assert _run("--resume", shards / "empty") == cli.EXIT_USAGE
    assert "has no results.jsonl: nothing to resume" in capsys.readouterr().err
    (full / shard.RUN_FILE).write_text("{")
    assert _run("--resume", full) == cli.EXIT_USAGE
    assert "run.json: not a run selection: not JSON" in capsys.readouterr().err
    # a run that recorded no options resumes with the ones given, and records them
    (full / shard.RUN_FILE).unlink()
    given = ("--framework", "fake", "--cases", shards / "cases", "--exit-zero")
    assert _run("--resume", full, *given) == cli.EXIT_OK
    assert "records no options (run.json); resuming with the options given" in (
        capsys.readouterr().err
    )
    recorded = shard.read_selection(full)
    assert recorded is not None and recorded.frameworks == ("fake",)


def test_drop_cut_line_keeps_every_complete_line(tmp_path):
    path = tmp_path / results.RESULTS_FILE
    path.write_bytes(b'{"a": 1}\n' + b"x" * 200_000)  # the cut line is longer than one read
    assert results.drop_cut_line(tmp_path) == 200_000
    assert path.read_bytes() == b'{"a": 1}\n'
    assert results.drop_cut_line(tmp_path) == 0
    path.write_bytes(b"no newline at all")
    assert results.drop_cut_line(tmp_path) == len(b"no newline at all")
    assert path.read_bytes() == b""


# ------------------------------------------------------------------ a real framework


def _torch_run(*args: str | Path) -> list[str]:
    return [
        *("run", "--framework", "torch", "--cases", str(CASES / "cross_entropy.yaml")),
        *("--ledger", str(CASES / "known.yaml"), "-k", "reduction=mean", "--no-progress"),
        *map(str, args),
    ]


@pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
def test_torch_shards_and_a_killed_run_resumed_equal_an_uninterrupted_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the rows name the case file as the subprocess below does
    assert cli.main(_torch_run("--out", tmp_path / "full")) == cli.EXIT_OK
    for i in (1, 2):
        assert cli.main(_torch_run("--shard", f"{i}/2", "--out", tmp_path / f"s{i}")) == 0
    merged = tmp_path / "merged"
    ledger = ("--ledger", str(CASES / "known.yaml"))
    assert cli.main(["merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out",
                     str(merged), *ledger]) == cli.EXIT_OK  # fmt: skip
    _assert_same_run(merged, tmp_path / "full")
    assert _summary(tmp_path / "full")["by_verdict"]["known"] > 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance", *_torch_run("--out", killed)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    rows = killed / results.RESULTS_FILE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if rows.exists() and rows.read_bytes().count(b"\n") >= 20:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (killed / results.SUMMARY_FILE).exists()  # it did not get to the end
    kept = rows.read_bytes().count(b"\n")
    assert 20 <= kept < sum(_rows(tmp_path / "full").values())
    with rows.open("ab") as f:
        f.write(b'{"case_id": "ce-weighted[reduction=mean,dtype=float32]", "api": "torch.n')
    assert cli.main(_torch_run("--resume", killed)) == cli.EXIT_OK
    _assert_same_run(killed, tmp_path / "full")
    assert _summary(killed)["environment"]["resumed_rows_kept"] <= kept

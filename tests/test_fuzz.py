"""``conformance fuzz``: generated cases are valid, failures are shrunk, grouped and saved as
case files, explained failures are not, the budget holds, and the exit codes mean something.

The search is exercised twice: with a plain function standing in for the workers (fast,
and a failure whose minimal case is known), and end to end with the fake adapter
(tests/fake_adapter.py: ``fake.raise`` always raises, ``fake.exact`` returns the oracle).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings

from conformance import cases, cli, fuzz
from conformance import ledger as ledger_

# A failure only some cases show: float64, at least 3 classes, class weights given.
# Its minimal case is known exactly: N=1, C=3, no spatial axes, weights all 1.0.


def _picky(case: cases.Case) -> list[dict[str, Any]]:
    x, _ = case.arrays()
    bad = x.shape[1] >= 3 and case.dtype == "float64" and case.params.get("weight") is not None
    return [
        {
            "framework": "synthetic",
            "api": "synthetic.cross_entropy",
            "output": output,
            "verdict": "mismatch" if bad else "pass",
            "reason": f"{x.shape[1]} element(s) beyond tolerance; worst at [0]" if bad else "",
            "repro": "print('synthetic')\n" if bad else None,
        }
        for output in ("loss", "grad")
    ]


def _load_saved(path: str | Path) -> dict[str, Any]:
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    (case,) = doc["cases"]
    return dict(case)


@settings(max_examples=150, deadline=None)
@given(fuzz.case_dicts())
def test_every_generated_case_loads_through_the_real_loader(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("gen") / "case.yaml"
    path.write_text(fuzz.to_yaml(raw), encoding="utf-8")
    (case,) = cases.load_file(path)  # raises CaseErrors for an invalid case
    x, target = case.arrays()
    assert x.shape[:2] == tuple(raw["input"].get("shape", x.shape))[:2]
    assert x.dtype.name == raw["dtype"]
    assert target.dtype.kind in "if" if case.target_kind != "none" else target is None


def test_gist_blanks_numbers_and_keeps_what_differs():
    assert fuzz.gist({"reason": "RuntimeError: Target 3 is out of bounds."}) == fuzz.gist(
        {"reason": "RuntimeError: Target 17 is out of bounds."}
    )
    nan = "NaN/Inf pattern differs at 2 element(s); first at [1]: expected 0.5, got NaN; no"
    assert fuzz.gist({"reason": nan}).endswith("(expected finite, got NaN)")
    assert "float16" in fuzz.gist({"reason": "TypeError: float16 is not supported"})
    explained = {"reason": "matches …", "explanation": "index_mean=elements (a mean …)"}
    assert fuzz.gist(explained) == "matches index_mean=elements"


def test_only_failing_rows_make_signatures_and_outputs_share_one():
    rows = [
        {"framework": "f", "api": "f.ce", "output": o, "verdict": v, "reason": "r 1"}
        for o in ("loss", "grad")
        for v in ("pass", "known", "semantic-difference", "unsupported", "mismatch")
    ]
    found = fuzz.signatures(rows)
    assert list(found) == [fuzz.Signature("f", "f.ce", "mismatch", "r #")]
    assert [r["output"] for r in found[fuzz.Signature("f", "f.ce", "mismatch", "r #")]] == [
        "loss",
        "grad",
    ]


def test_a_failure_is_shrunk_to_its_minimal_case_and_saved(tmp_path):
    # One finding ends the search, so the budget (generous here) never cuts it short.
    # Cross-entropy cases only: how far hypothesis shrinks depends on the whole choice
    # sequence, and other losses' draws (no class weight) only lengthen it.
    strategy = fuzz.case_dicts(loss="cross_entropy")
    summary = fuzz.Fuzzer(
        _picky, tmp_path, budget=60.0, seed=0, max_findings=1, strategy=strategy
    ).run()
    assert summary["stopped"] == "max-findings"
    (finding,) = summary["findings"]
    assert finding["signature"] == "synthetic.cross_entropy mismatch: # element(s) beyond tolerance"
    assert finding["shrunk"] and finding["reproduced"]
    saved = _load_saved(finding["file"])
    assert saved["input"]["shape"] == [1, 3]
    assert saved["dtype"] == "float64"
    assert saved["params"]["weight"] == [1.0, 1.0, 1.0]
    text = Path(finding["file"]).read_text(encoding="utf-8")
    assert "#   synthetic.cross_entropy eager loss mismatch: 3 element(s)" in text
    assert "#   print('synthetic')" in text  # the repro snippet
    assert cli.main(["validate", finding["file"]]) == 0
    on_disk = json.loads((tmp_path / fuzz.FUZZ_FILE).read_text(encoding="utf-8"))
    assert on_disk["findings"][0]["file"] == finding["file"]
    assert on_disk["seed"] == 0 and on_disk["examples"] > finding["shrink_examples"] > 0
    assert on_disk["not_saved"] == []


def _row(framework: str, api: str, verdict: str, reason: str) -> dict[str, Any]:
    return {
        "framework": framework,
        "api": api,
        "output": "loss",
        "verdict": verdict,
        "reason": reason,
    }


def test_one_defect_in_two_apis_of_a_framework_is_one_file(tmp_path):
    def judge(case: cases.Case) -> list[dict[str, Any]]:
        verdict = "mismatch" if case.arrays()[0].shape[1] >= 2 else "pass"
        return [_row("syn", api, verdict, "wrong") for api in ("syn.functional", "syn.Module")]

    summary = fuzz.Fuzzer(judge, tmp_path, budget=60.0, max_findings=1).run()
    (finding,) = summary["findings"]
    assert {finding["signature"], *finding["also"]} == {
        "syn.functional mismatch: wrong",
        "syn.Module mismatch: wrong",
    }
    assert summary["not_saved"] == []


def test_the_number_of_saved_files_is_bounded(tmp_path):
    def judge(case: cases.Case) -> list[dict[str, Any]]:  # a new defect for every C
        c = case.arrays()[0].shape[1]
        return [_row(f"fw{c}", f"fw{c}.cross_entropy", "error", "boom")]

    summary = fuzz.Fuzzer(judge, tmp_path, budget=60.0, max_findings=3).run()
    assert summary["stopped"] == "max-findings"
    assert len(summary["findings"]) == 3
    assert len(list(tmp_path.glob("found-*.yaml"))) == 3


def test_stopping_keeps_what_was_found(tmp_path):
    stop = threading.Event()
    calls: list[cases.Case] = []
    failing: list[int] = []

    def judge(case: cases.Case) -> list[dict[str, Any]]:  # Ctrl-C 5 examples into shrinking
        calls.append(case)
        rows = _picky(case)
        if rows[0]["verdict"] == "mismatch" and not failing:
            failing.append(len(calls))
        if failing and len(calls) == failing[0] + 5:
            stop.set()
        return rows

    started = time.monotonic()
    summary = fuzz.Fuzzer(judge, tmp_path, budget=60.0, seed=0, stop=stop).run()
    assert time.monotonic() - started < 20
    assert summary["stopped"] == "interrupted"
    assert len(calls) == failing[0] + 5 + 1  # the example in flight ends it; 1 re-run to save
    (finding,) = summary["findings"]
    assert not finding["shrunk"] and finding["note"] == "shrinking cut short"
    assert finding["shrink_examples"] == 5  # the calls after the first failing one
    assert _load_saved(finding["file"])["dtype"] == "float64"
    assert (tmp_path / "found-1.yaml").exists()


def test_fuzz_finds_shrinks_and_saves_a_fake_failure_within_its_budget(
    tmp_path, fake_framework, capsys
):
    out = tmp_path / "out"
    started = time.monotonic()
    code = cli.main(["fuzz", "--framework", "fake", "--budget", "5", "--out", str(out)])
    elapsed = time.monotonic() - started
    assert code == 1
    assert elapsed < 30
    summary = json.loads((out / fuzz.FUZZ_FILE).read_text(encoding="utf-8"))
    assert summary["seconds"] < 5 + 5  # at most one example beyond the budget
    raised = [f for f in summary["findings"] if f["api"] == "fake.raise"]
    assert len(raised) == 1
    saved = _load_saved(raised[0]["file"])
    n, c = saved["input"].get("shape") or [1, 1]
    assert n <= 2 and c <= 2
    assert cli.main(["validate", raised[0]["file"]]) == 0
    printed = capsys.readouterr().out
    assert f"{raised[0]['file']}: fake.raise error: RuntimeError: Target # is out of" in printed
    assert "finding(s) saved; summary:" in printed


LEDGER = """\
known:
  - api: fake.raise
    case: "*"
    verdict: error
    reason: fake.raise always raises
    link: https://example.org/fake
"""


def test_a_failure_the_ledger_explains_is_not_saved(tmp_path, fake_framework):
    (tmp_path / "known.yaml").write_text(LEDGER, encoding="utf-8")
    known = ledger_.load_paths([tmp_path / "known.yaml"])
    out = tmp_path / "out"
    summary = fuzz.fuzz(
        [fake_framework],
        out,
        budget=2.0,
        ledger=known,
        strategy=fuzz.case_dicts(extremes=False),  # fake.exact cannot overflow float16 here
    )
    assert summary["examples"] > 5
    assert summary["findings"] == []
    assert not list(out.glob("found-*.yaml"))


def test_exit_0_when_every_failure_is_explained(tmp_path, fake_framework, capsys):
    # Extreme cases can make even fake.exact miss (float16 overflow); cover it all.
    broad = LEDGER.replace("fake.raise\n", "fake.*\n") + LEDGER.replace(
        "fake.raise\n", "fake.*\n"
    ).replace("known:\n", "").replace("verdict: error", "verdict: mismatch")
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "known.yaml").write_text(broad, encoding="utf-8")
    args = ["fuzz", "--framework", "fake", "--budget", "2", "--seed", "7"]
    code = cli.main([*args, "--out", str(tmp_path / "out"), "--cases", str(tmp_path / "cases")])
    assert code == 0
    assert "no unexplained failing row" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / fuzz.FUZZ_FILE).read_text())["findings"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--framework", "torhc"], "unknown framework torhc"),
        (["--cases", "no/such/dir"], "no such file or directory: no/such/dir"),
        (["--out", "{held}"], "already holds fuzz findings"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, args, message):
    held = tmp_path / "held"
    held.mkdir()
    (held / fuzz.FUZZ_FILE).write_text("{}")
    argv = ["fuzz", *(a.format(held=held) for a in args)]
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # raised by the shared helper that checks paths
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("budget", ["0", "-1", "nan", "soon"])
def test_a_bad_budget_is_a_usage_error(budget, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["fuzz", "--budget", budget])
    assert exc.value.code == 2
    assert "--budget" in capsys.readouterr().err

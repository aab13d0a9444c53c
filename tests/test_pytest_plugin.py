"""The pytest plugin (conformance/pytest_plugin.py), driven through pytester in subprocesses:
collection, outcomes and their messages, markers and options, the ledger as xfail,
pytest-xdist and --junitxml, and one real framework where installed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, installed

pytest_plugins = ("pytester",)

# Registers tests/fake_adapter.py as framework "fake" in the pytest process under test
# (its workers inherit sys.path), and records each worker start in starts.txt.
CONFTEST = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
from conformance import adapters, supervisor
adapters.MODULES["fake"] = "fake_adapter"
_start = supervisor.Worker.start

def start(self, *args, **kwargs):
    with open({{starts!r}}, "a") as f:
        f.write("start\\n")
    return _start(self, *args, **kwargs)

supervisor.Worker.start = start
"""

CASES = """\
# cases for the plugin test
cases:
  - id: good
    loss: cross_entropy
    input: {shape: [3, 4], scale: 2.0, seed: 3}
    target: {kind: index, seed: 4}

  - id: crash-me
    loss: cross_entropy
    input: {shape: [3, 4], scale: 2.0, seed: 5}
    target: {kind: index, seed: 6}
"""

LEDGER = """\
known:
  - api: fake.raise
    case: good
    verdict: error
    reason: fake.raise always raises
    link: https://example.invalid/fake/1
  - api: fake.exact
    case: crash-me
    verdict: mismatch
    reason: claimed broken, but it passes
    link: https://example.invalid/fake/2
"""

FAKE = ["--conformance-framework", "fake", "-p", "no:cacheprovider"]


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A directory with the fake framework's conftest, a case file, a ledger beside it and
    YAML that is not a case file."""
    starts = pytester.path / "starts.txt"
    pytester.makeconftest(CONFTEST.format(starts=str(starts)))
    cases = pytester.mkdir("cases")
    (cases / "c.yaml").write_text(CASES)
    (cases / "known.yaml").write_text(LEDGER)
    (cases / "other.yml").write_text("services:\n  web: {image: nginx}\n")
    return pytester


def _starts(pytester: pytest.Pytester) -> int:
    path = pytester.path / "starts.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_collects_one_item_per_case_api_mode_and_device_and_no_other_yaml(suite):
    result = suite.runpytest_subprocess("cases", "--collect-only", "-q", *FAKE)
    ids = [line for line in result.outlines if "::" in line]
    apis = ("fake.exact", "fake.crash", "fake.hang", "fake.raise")
    assert ids == [
        f"cases/c.yaml::{case}::{api}[eager-cpu]" for case in ("good", "crash-me") for api in apis
    ]
    assert _starts(suite) == 0  # collecting starts no worker
    both = suite.runpytest_subprocess(
        "cases", "--collect-only", "-q", "--conformance-device", "cpu,gpu", *FAKE
    )
    assert sum("::" in line for line in both.outlines) == 16


def test_items_pass_fail_skip_and_xfail_with_file_line_messages(suite):
    result = suite.runpytest_subprocess("cases", "-rA", "-k", "not hang", *FAKE)
    outcomes = result.parseoutcomes()
    # good: exact and crash pass, raise fails as the ledger says (xfail);
    # crash-me: exact passes (its ledger entry is stale), crash fails (the worker died),
    # raise fails (an error no entry covers).
    assert outcomes == {"passed": 3, "failed": 2, "xfailed": 1, "deselected": 2}
    out = result.stdout.str()
    assert "Traceback" not in out and "pytest_plugin.py" not in out
    assert "cases/c.yaml:8: crash-me fake.crash [eager, cpu]: loss crashed: worker killed" in out
    assert "cases/c.yaml:8: crash-me fake.raise [eager, cpu]: loss error:" in out
    assert "Target 3 is out of bounds" in out
    assert "call: fake.raise(x, t)" in out and "repro:" in out
    assert "cases.get('cases/c.yaml', 'crash-me')" in out  # the snippet rebuilds the case
    assert "about to die" in out  # the dead worker's stderr
    result.stdout.fnmatch_lines(
        [
            "*stale ledger entries*",
            "cases/known.yaml:7 (fake.exact crash-me): covers none of the 2 row(s) it matches "
            "(verdicts now: pass)*",
            "XFAIL cases/c.yaml::good::fake.raise[[]eager-cpu[]] - cases/known.yaml:2 "
            "https://example.invalid/fake/1: known (*): fake.raise always raises; measured error*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert _starts(suite) == 2  # one worker start, and one restart after the crash


def test_strict_fails_known_divergences_and_stale_entries(suite):
    result = suite.runpytest_subprocess("cases", "-k", "exact", "--conformance-strict", *FAKE)
    result.assert_outcomes(passed=2)  # every item passes, but an entry is stale
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*stale ledger entries (failing: --conformance-strict)*"])
    known = suite.runpytest_subprocess(
        "cases", "-k", "good and raise", "--conformance-strict", *FAKE
    )
    known.assert_outcomes(failed=1)
    known.stdout.fnmatch_lines(["cases/c.yaml:3: good fake.raise [[]eager, cpu[]]: loss known*"])


def test_markers_and_keywords_select_items(suite):
    def selected(*args: str) -> int:
        out = suite.runpytest_subprocess("cases", "--collect-only", "-q", *args, *FAKE)
        return sum("::" in line for line in out.outlines)

    assert selected("-m", "fake and cross_entropy") == 8
    assert selected("-m", "known") == 2
    assert selected("-m", "not conformance") == 0
    assert selected("-k", "good and fake.exact") == 1
    assert selected("-m", "torch") == 0


def test_a_broken_case_file_is_a_collection_error_at_its_line(suite):
    (suite.path / "cases" / "bad.yaml").write_text(
        "cases:\n  - id: b\n    loss: cross_entropy\n    input: {shape: [3, 4], seed: 1}\n"
        "    target: {kind: index, seed: 2}\n    params: {reduction: average}\n"
    )
    result = suite.runpytest_subprocess("cases", "--collect-only", *FAKE)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["cases/bad.yaml:6: cases[[]0[]].params.reduction: 'average' is not allowed*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_bad_options_are_usage_errors(suite):
    result = suite.runpytest_subprocess("cases", "--conformance-framework", "caffe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --conformance-framework: unknown framework caffe*"])
    result = suite.runpytest_subprocess("cases", "--conformance-mode", "jitt", *FAKE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown mode 'jitt'*"])


def test_xdist_and_junitxml(suite):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    junitparser = pytest.importorskip("junitparser", reason="junitparser is not installed")
    xml = suite.path / "junit.xml"
    result = suite.runpytest_subprocess(
        "cases", "-n", "2", f"--junitxml={xml}", "-k", "not hang", *FAKE
    )
    outcomes = result.parseoutcomes()
    assert outcomes == {"passed": 3, "failed": 2, "xfailed": 1}  # xdist omits deselected
    # the controller gathers the workers' rows for the stale-entry check
    result.stdout.fnmatch_lines(["*stale ledger entries*", "cases/known.yaml:7 *"])
    testcases = [c for s in junitparser.JUnitXml.fromfile(str(xml)) for c in s]
    assert len(testcases) == 6
    failed = [c for c in testcases if c.result and isinstance(c.result[0], junitparser.Failure)]
    assert len(failed) == 2
    for case in failed:
        assert case.result[0].message.startswith("cases/c.yaml:8: crash-me fake.")
    # each pytest-xdist worker starts its own framework worker, once
    assert _starts(suite) <= 2 + 1


def test_importing_the_plugin_imports_only_pytest():
    code = (
        "import sys, conformance.pytest_plugin\n"
        "heavy = sorted(m for m in ('numpy', 'pandas', 'conformance.runner') if m in sys.modules)\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_suite_own_collection_does_not_pick_up_case_files(pytester: pytest.Pytester):
    """Only case files become items: this repository's tests/ collect as before."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    items = [line for line in result.stdout.splitlines() if "::" in line]
    assert items and all(line.startswith("tests/") for line in items)


@pytest.mark.skipif(not installed("torch"), reason="torch is not installed")
def test_a_real_case_file_on_torch_under_xdist(pytester: pytest.Pytester):
    pytest.importorskip("xdist", reason="pytest-xdist is not installed")
    pytester.mkdir("cases")
    source = (ROOT / "cases" / "cross_entropy.yaml").read_text()
    (pytester.path / "cases" / "cross_entropy.yaml").write_text(source)
    result = pytester.runpytest_subprocess(
        "cases",
        "--conformance-framework",
        "torch",
        "-k",
        "ce-weighted and float32 and functional",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
    )
    result.assert_outcomes(passed=3)
    # the workers' environments (torch's version is a TorchVersion) reach the controller
    result.stdout.fnmatch_lines(["*conformance workers*", "torch (cpu): torch 2.*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()

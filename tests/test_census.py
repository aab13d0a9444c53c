"""`conformance census`: every public loss-like callable of each installed framework is
covered by an entry, listed out of scope with its reason, or pending an open issue; a loss
that is none of these (what a framework upgrade adds) is reported and fails."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import ROOT

from conformance import adapters, census

INSTALLED = [
    fw
    for fw in census.NAMESPACES
    if all(importlib.util.find_spec(r) is not None for r in adapters.load(fw).REQUIRES)
]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(adapters.MODULES, "fake", "census_fake")
    monkeypatch.setitem(census.NAMESPACES, "fake", ("census_fake.losses",))
    return "fake"


def test_a_loss_nobody_covers_is_reported(fake: str) -> None:
    found = {f.name: f for f in census.classify(fake)}
    assert set(found) == {
        "census_fake.losses.covered_loss",
        "census_fake.losses.aliased_loss",
        "census_fake.losses.margin_loss",
        "census_fake.losses.new_focal_loss",
    }  # make_grid does not look like a loss
    assert found["census_fake.losses.covered_loss"].status == "covered"
    # matched by identity: the entry names the same function under another path
    aliased = found["census_fake.losses.aliased_loss"]
    assert (aliased.status, aliased.detail) == ("covered", "census_fake.aliased_loss")
    margin = found["census_fake.losses.margin_loss"]
    assert (margin.status, margin.detail) == ("out-of-scope", "a margin loss")
    assert found["census_fake.losses.new_focal_loss"].status == "not-covered"
    assert census.counts(list(found.values()))["not-covered"] == 1


def test_a_pending_loss_is_reported_but_not_failing(
    fake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(census.PENDING, "census_fake.losses.new_focal_loss", "issue #99")
    found = {f.name: f for f in census.classify(fake)}
    assert found["census_fake.losses.new_focal_loss"].status == "pending"


@pytest.mark.skipif(not INSTALLED, reason="no framework is installed")
def test_every_installed_framework_has_no_uncovered_loss() -> None:
    """Fails when an upgrade adds a loss: cover it with an entry or list it out of scope."""
    results = census.census(INSTALLED)
    for framework, found in results.items():
        assert not isinstance(found, str), f"{framework}: {found}"
        missing = [f.name for f in found if f.status == "not-covered"]
        assert missing == [], f"{framework}: not covered: {missing}"
        assert census.counts(found)["covered"] > 0


def test_the_cli_exits_1_on_an_uncovered_loss(fake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance import cli

    monkeypatch.setattr(census, "census", lambda names: {"fake": census.classify("fake")})
    assert cli.main(["census", "--framework", "fake"]) == 1
    monkeypatch.setitem(census.PENDING, "census_fake.losses.new_focal_loss", "issue #99")
    assert cli.main(["census", "--framework", "fake"]) == 0


def test_the_cli_refuses_an_unknown_framework() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "census", "--framework", "mxnet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "unknown framework: mxnet" in proc.stderr


@pytest.mark.skipif("jax" not in INSTALLED, reason="jax is not installed")
def test_a_run_records_each_workers_census_for_the_report(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The worker takes the census after importing its framework: the run's environment
    carries it (summary.json) and report.html shows it, without a second import."""
    import json

    out = tmp_path / "run"
    args = ["run", "--cases", "cases/kl.yaml", "-k", "kl-2d[reduction=mean,dtype=float32]"]
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", *args, "--framework", "jax", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads((out / "summary.json").read_text())["environment"]["jax"]["census"]
    assert found["not-covered"] == 0 and found["not_covered"] == []
    expected = census.census(["jax"])["jax"]
    assert not isinstance(expected, str)
    assert found["covered"] == census.counts(expected)["covered"] > 0
    page = (out / "report.html").read_text()
    assert f'<td class="num">{found["covered"]}</td>' in page.split('id="census"')[1]

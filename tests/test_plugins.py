"""Runtimes as plugins: adapters are found through the entry-point group
``conformance.adapters``, and ONNX Runtime is one of them.

Discovery is checked three ways: the installed table (the four built-ins in order, then the
plugins this package registers, sorted), ``adapters.discover`` on entry points read from
temporary ``*.dist-info`` folders (what a third-party distribution installs), and the real
CLI in a subprocess that sees such a folder: its runtime is listed and runs, with no change
to the core. The ONNX Runtime adapter is run on a few shipped cases through the real runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import CASES, ROOT, have

from conformance import adapters, cases, oracle, results, runner
from conformance.adapters import AdapterClash

BUILTINS = ["torch", "tensorflow", "jax", "paddle"]


def _dist_info(root: Path, dist: str, entry_points: dict[str, str]) -> Path:
    """A minimal installed distribution under ``root`` declaring ``entry_points`` in the
    ``conformance.adapters`` group; returns ``root`` (put it on sys.path)."""
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{adapters.GROUP}]\n{lines}")
    return root


def _ours() -> dict[str, str]:
    """The entry points this package itself declares (pyproject.toml), if it is installed."""
    try:
        dist = metadata.distribution("loss-conformance")
    except metadata.PackageNotFoundError:
        return {}
    return {ep.name: ep.value for ep in dist.entry_points if ep.group == adapters.GROUP}


# ---------------------------------------------------------------- discovery


def test_the_builtins_come_first_in_their_order_then_plugins_sorted() -> None:
    names = list(adapters.MODULES)
    assert names[:4] == BUILTINS
    assert names[4:] == sorted(names[4:])
    for name in BUILTINS:
        assert adapters.MODULES[name] == f"conformance.adapters.{name}"


def test_the_package_registers_its_runtimes_through_the_entry_point_table() -> None:
    ours = _ours()
    if not ours:
        pytest.skip("loss-conformance is not installed (no entry points to read)")
    # the built-ins register the same way they are hard-wired (no clash), plus ONNX Runtime
    assert {name: ours[name] for name in BUILTINS} == adapters.BUILTINS
    assert ours["onnxruntime"] == "conformance.adapters.onnxruntime"
    assert adapters.MODULES["onnxruntime"] == "conformance.adapters.onnxruntime"
    assert list(adapters.MODULES) == [*BUILTINS, *sorted(set(ours) - set(BUILTINS))]


def test_without_metadata_the_builtins_remain() -> None:
    assert adapters.discover([]) == adapters.BUILTINS
    assert list(adapters.discover([])) == BUILTINS


def test_discovery_imports_no_adapter_and_no_framework() -> None:
    script = (
        "import sys; from conformance import adapters; "
        "loaded = [m for m in sys.modules if m.startswith(('conformance.adapters.', 'torch', "
        "'onnx', 'tensorflow', 'jax', 'paddle'))]; "
        "print(sorted(loaded))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "['conformance.adapters._entry']"


def _discover_from(monkeypatch: pytest.MonkeyPatch, *roots: Path) -> dict[str, str]:
    for root in roots:
        monkeypatch.syspath_prepend(str(root))
    return adapters.discover()


def test_a_third_party_entry_point_is_discovered_after_the_builtins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _dist_info(tmp_path, "zz-runtime", {"zzrt": "fake_adapter", "aart": "fake_adapter"})
    found = _discover_from(monkeypatch, root)
    assert found["zzrt"] == found["aart"] == "fake_adapter"
    names = list(found)
    assert names[:4] == BUILTINS and names[4:] == sorted(names[4:])


def test_a_plugin_cannot_take_a_builtin_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _dist_info(tmp_path, "evil-torch", {"torch": "fake_adapter"})
    with pytest.warns(AdapterClash) as caught:
        found = _discover_from(monkeypatch, root)
    assert found["torch"] == "conformance.adapters.torch"
    message = str(caught[0].message)
    assert "'evil-torch'" in message and "'fake_adapter'" in message
    assert "'conformance.adapters.torch'" in message and "built-in is kept" in message


def test_two_plugins_claiming_one_name_keep_the_first_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = _dist_info(tmp_path / "one", "beta-rt", {"shared": "beta_adapter"})
    two = _dist_info(tmp_path / "two", "alpha-rt", {"shared": "alpha_adapter"})
    with pytest.warns(AdapterClash) as caught:
        found = _discover_from(monkeypatch, one, two)
    assert found["shared"] == "alpha_adapter"  # 'alpha-rt' sorts before 'beta-rt'
    message = str(caught[0].message)
    assert "'alpha-rt'" in message and "'beta-rt'" in message
    assert "'alpha_adapter'" in message and "'beta_adapter'" in message


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI with a third-party distribution installed (a dist-info on PYTHONPATH)
    whose adapter is tests/fake_adapter.py, plus one that clashes with a built-in."""
    root = _dist_info(tmp_path / "site", "acme-runtime", {"acme": "fake_adapter"})
    _dist_info(root, "evil-torch", {"torch": "fake_adapter"})
    path = os.pathsep.join([str(root), str(ROOT / "tests")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def test_a_plugin_is_listed_by_the_cli_and_a_clash_is_said_on_stderr(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "list", "--entries")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    acme = [line.split()[1] for line in lines if line.startswith("acme ")]
    assert acme == ["fake.exact", "fake.crash", "fake.hang", "fake.raise"]
    # torch is still the built-in adapter, and stderr names both claimants
    assert any(line.split()[:2] == ["torch", "torch.nn.functional.cross_entropy"] for line in lines)
    assert not any(line.startswith("torch ") and "fake." in line for line in lines)
    assert "AdapterClash" in proc.stderr and "'evil-torch'" in proc.stderr


def test_a_plugin_runs_through_the_real_cli(tmp_path: Path) -> None:
    out = tmp_path / "run"
    seed = "seed-2x3-logits[reduction=mean,dtype=float64]"
    proc = _cli(
        tmp_path,
        *("run", "--framework", "acme", "--cases", str(CASES / "cross_entropy_seeds.yaml")),
        *("-k", seed, "--out", str(out), "--no-progress"),
    )
    assert proc.returncode in (0, 1), proc.stderr  # fake.raise rows are errors on purpose
    rows = results.load(out)
    exact = rows[(rows["api"] == "fake.exact") & (rows["case_id"] == seed)]
    assert len(exact) == 2 and set(exact["verdict"]) == {"pass"}
    assert set(rows["framework"]) == {"acme"}


# ---------------------------------------------------------------- ONNX Runtime

ORT = "onnxruntime"
ORT_CASES = (
    "ce-hard-2d[reduction=mean,dtype=float32]",
    "ce-hard-2d[reduction=none,dtype=float64]",
    "ce-float16[reduction=mean]",
    "ce-hard-2d[reduction=mean,dtype=bfloat16]",
    "ce-smoothing[label_smoothing=0.3,reduction=mean]",
)
CE = "onnxruntime[torch.nn.functional.cross_entropy]"


@pytest.fixture(scope="module")
def ort_rows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], Any]]:
    module = adapters.load(ORT)
    missing = [name for name in module.REQUIRES if not have(name)]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (pip install 'loss-conformance[{ORT}]')")
    selected = [c for c in cases.load_paths([CASES / "cross_entropy.yaml"]) if c.id in ORT_CASES]
    assert sorted(c.id for c in selected) == sorted(ORT_CASES)
    out = tmp_path_factory.mktemp("ort")
    environment = runner.run(selected, out, frameworks=[ORT], modes=("eager",))
    assert "skipped" not in environment[ORT], environment[ORT]
    rows = [json.loads(line) for line in (out / results.RESULTS_FILE).read_text().splitlines()]
    yield {(r["case_id"], r["output"]): r for r in rows if r["api"] == CE}


def test_ort_entries_declare_what_they_export_and_lack() -> None:
    module = adapters.load(ORT)
    apis = {e.api for e in module.ENTRIES}
    for loss in module.LOSSES:
        assert f"onnxruntime[torch.nn.functional.{loss}]" in apis
    for entry in module.ENTRIES:
        assert entry.modes == frozenset({"eager"})
        assert adapters.lacking(entry, "grad") == module.NO_GRADIENT
        assert adapters.lacking(entry, "loss") is None
    assert module.CENSUS_NAMESPACES == ()


def test_ort_loss_rows_pass_against_the_oracle(ort_rows: dict[tuple[str, str], Any]) -> None:
    for case_id in ORT_CASES[:3]:  # float32, float64, and float16 (ORT has CPU kernels)
        row = ort_rows[(case_id, "loss")]
        assert row["verdict"] == "pass", (case_id, row["reason"])


def test_ort_call_names_the_export_and_the_session(ort_rows: dict[tuple[str, str], Any]) -> None:
    row = ort_rows[(ORT_CASES[0], "loss")]
    call = row["call"]
    assert call.startswith(
        "ort.InferenceSession(torch.onnx.export(LossModule(lambda input, target:"
    )
    assert "torch.nn.functional.cross_entropy(input, target, ignore_index=-100" in call
    assert "dynamo=True, opset_version=20" in call
    assert "providers=['CPUExecutionProvider']).run(None, {'input': x, 'target': t})[0]" in call
    assert "from conformance.adapters.onnxruntime.module import LossModule" in row["repro"]


def test_ort_bfloat16_is_not_implemented_with_ort_s_reason(
    ort_rows: dict[tuple[str, str], Any],
) -> None:
    row = ort_rows[(ORT_CASES[3], "loss")]
    assert row["verdict"] == "not-implemented"
    assert "ONNXRuntimeError" in row["reason"] and "bfloat16" in row["reason"]


def test_ort_drops_label_smoothing_in_export(ort_rows: dict[tuple[str, str], Any]) -> None:
    """A finding, not a wish: onnxscript's torchlib (0.7.2) translates aten::cross_entropy_loss
    to SoftmaxCrossEntropyLoss and ignores label_smoothing, so the ONNX Runtime loss is the
    unsmoothed one. When an upgrade fixes it, this test says so."""
    row = ort_rows[(ORT_CASES[4], "loss")]
    assert row["verdict"] == "mismatch"
    case = cases.get(str(CASES / "cross_entropy.yaml"), ORT_CASES[4])
    x, t = case.arrays()
    unsmoothed = oracle.cross_entropy(x, t, reduction="mean", label_smoothing=0.0)
    np.testing.assert_allclose(row["actual"], unsmoothed, rtol=1e-5)


def test_ort_grad_rows_are_unsupported_with_the_reason(
    ort_rows: dict[tuple[str, str], Any],
) -> None:
    module = adapters.load(ORT)
    for case_id in ORT_CASES:
        row = ort_rows[(case_id, "grad")]
        if case_id == ORT_CASES[3]:  # the call itself has no kernel: that comes first
            assert row["verdict"] == "not-implemented", row
            continue
        assert (row["verdict"], row["reason"]) == ("unsupported", module.NO_GRADIENT), row


def test_migrate_takes_a_plugin_runtime_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance.report import migrate

    assert migrate.canonical_framework(" ORT ") == "onnxruntime"
    assert migrate.label("onnxruntime") == "ONNX Runtime"
    assert migrate.canonical_framework("acme") is None
    monkeypatch.setitem(adapters.MODULES, "acme", "fake_adapter")
    assert migrate.canonical_framework("Acme") == "acme"
    assert migrate.label("acme") == "acme"


def test_the_census_of_a_runtime_without_a_loss_api_is_its_note() -> None:
    from conformance import census

    module = adapters.load(ORT)
    assert census.namespaces(ORT) == ()
    assert census.summary(ORT) == {"note": module.CENSUS_NOTE}
    assert census.namespaces("torch") == census.NAMESPACES["torch"]

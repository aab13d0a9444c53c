"""`conformance migrate`: porting advice from A to B, from a run's rows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conformance import cases
from conformance.cli import main
from conformance.report import migrate
from conformance.results import COLUMNS, Verdict
from tests.conftest import CASES, installed

ELEMENTS = (
    "index_mean=elements (a mean over class-index targets divides by all elements, ignored "
    "ones included)"
)


@dataclass(frozen=True)
class FakeEntry:
    api: str
    loss: str
    params: frozenset[str]
    reductions: frozenset[str] = frozenset({"mean", "sum", "none"})


A = FakeEntry("torch.nn.functional.cross_entropy", "cross_entropy", frozenset({"weight"}))
B_GOOD = FakeEntry("paddle.nn.functional.cross_entropy", "cross_entropy", frozenset({"weight"}))
B_BARE = FakeEntry("paddle.nn.functional.softmax_with_cross_entropy", "cross_entropy", frozenset())
B_OTHER = FakeEntry("paddle.nn.functional.mse_loss", "mse_loss", frozenset())


def _row(case: str, variant: str, api: str, verdict: Verdict, **extra: Any) -> dict[str, Any]:
    row = {
        "case_id": f"{case}[{variant}]",
        "base_id": case,
        "file": "cases/ce.yaml",
        "line": 3,
        "api": api,
        "mode": "eager",
        "output": "loss",
        "verdict": verdict.value,
        "reason": verdict.value,
        "call": f"{api}(input, target)",
    }
    row.update(extra)
    return row


def _frame() -> pd.DataFrame:
    rows = []
    for variant in ("reduction=mean", "reduction=sum"):
        rows.append(_row("ce-plain", variant, A.api, Verdict.PASS))
        rows.append(_row("ce-plain", variant, B_GOOD.api, Verdict.PASS))
        rows.append(_row("ce-plain", variant, B_BARE.api, Verdict.PASS))
    # B_GOOD differs for the mean only, by a documented rule with a remedy.
    rows.append(_row("ce-ignore", "reduction=mean", A.api, Verdict.PASS))
    rows.append(
        _row(
            "ce-ignore",
            "reduction=mean",
            B_GOOD.api,
            Verdict.SEMANTIC_DIFFERENCE,
            explanation=ELEMENTS,
            max_rel_err=0.25,
            reason=f"documented difference: {ELEMENTS} [https://example.org/pd]; against ...",
        )
    )
    rows.append(_row("ce-ignore", "reduction=mean", B_BARE.api, Verdict.UNSUPPORTED,
                     reason="has no native parameter for ignore_index"))  # fmt: skip
    rows.append(_row("ce-ignore", "reduction=sum", A.api, Verdict.PASS))
    rows.append(_row("ce-ignore", "reduction=sum", B_GOOD.api, Verdict.PASS))
    rows.append(_row("ce-ignore", "reduction=sum", B_BARE.api, Verdict.UNSUPPORTED,
                     reason="has no native parameter for ignore_index"))  # fmt: skip
    # Weighted: neither B can; a compiled-mode row is not used.
    rows.append(_row("ce-weighted", "reduction=mean", A.api, Verdict.PASS))
    rows.append(_row("ce-weighted", "reduction=mean", B_GOOD.api, Verdict.UNSUPPORTED,
                     reason="paddle.nn.functional.cross_entropy cannot take w. More."))  # fmt: skip
    rows.append(_row("ce-weighted", "reduction=mean", B_BARE.api, Verdict.UNSUPPORTED,
                     reason="no weight"))  # fmt: skip
    rows.append(_row("ce-weighted", "reduction=mean", B_GOOD.api, Verdict.ERROR,
                     mode="to_static"))  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=list(COLUMNS))


def _advice() -> migrate.Migration:
    return migrate.migrate(
        _frame(),
        "torch",
        "paddle",
        run_dir="run",
        source_entries=[A],
        target_entries=[B_GOOD, B_BARE, B_OTHER],
    )


def test_targets_compute_the_same_loss_best_first() -> None:
    (entry,) = _advice().entries
    assert [t.api for t in entry.targets] == [B_GOOD.api, B_BARE.api]  # not mse_loss
    good, bare = entry.targets
    assert (good.count("agrees"), good.count("differs"), good.count("cannot")) == (1, 1, 1)
    assert bare.missing_params == ["weight"] and good.missing_params == []


def test_plan_per_case_group() -> None:
    advice = _advice()
    (entry,) = advice.entries
    plan = {g.base_id: g for g in entry.plan}
    assert {k: (g.api, g.status) for k, g in plan.items()} == {
        "ce-plain": (B_GOOD.api, "agrees"),
        "ce-ignore": (B_GOOD.api, "differs"),
        "ce-weighted": (B_GOOD.api, "cannot"),
    }
    differs, agrees = plan["ce-ignore"].lines
    assert differs.status == "differs" and differs.scope(2) == "reduction=mean"
    assert "B computes index_mean=elements" in differs.what and differs.rel_err == 0.25
    assert differs.remedy.startswith("use reduction='sum' and divide by the sum")
    assert differs.link == "https://example.org/pd"
    assert agrees.status == "agrees" and agrees.what == "both compute the canonical definition"
    cannot = plan["ce-weighted"].lines[0]
    assert cannot.what == "paddle.nn.functional.cross_entropy cannot take w."  # first sentence
    assert advice.counts() == {"agrees": 1, "differs": 1, "cannot": 1, "not run": 0}


def test_a_runtime_without_gradients_is_judged_on_its_loss() -> None:
    """An inference runtime (ONNX Runtime) computes the loss and no gradient: the advice
    compares the loss and says the gradient is missing, rather than "cannot" for all."""
    ort = FakeEntry("onnxruntime[x.cross_entropy]", "cross_entropy", frozenset({"weight"}))
    no_grad = "ONNX Runtime inference sessions compute no gradient. More."
    rows = []
    for case, b_loss in (("ce-plain", Verdict.PASS), ("ce-bf16", Verdict.NOT_IMPLEMENTED)):
        for output in ("loss", "grad"):
            rows.append(_row(case, "reduction=mean", A.api, Verdict.PASS, output=output))
        rows.append(_row(case, "reduction=mean", ort.api, b_loss, reason="no kernel. More."))
        rows.append(_row(case, "reduction=mean", ort.api, Verdict.UNSUPPORTED, output="grad",
                         reason=no_grad))  # fmt: skip
    frame = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    (entry,) = migrate.migrate(
        frame, "torch", "onnxruntime", source_entries=[A], target_entries=[ort]
    ).entries
    plan = {g.base_id: g for g in entry.plan}
    assert plan["ce-plain"].status == "agrees"
    assert plan["ce-plain"].lines[0].what == (
        "both compute the canonical definition | grad: B cannot (ONNX Runtime inference "
        "sessions compute no gradient.)"
    )
    # nothing computed at all: the loss row's reason says why, not the gradient's
    assert plan["ce-bf16"].status == "cannot"
    assert plan["ce-bf16"].lines[0].what == "no kernel."


def test_markdown_and_html() -> None:
    advice = _advice()
    md = migrate.markdown(advice)
    assert md.startswith("# Migrating PyTorch → PaddlePaddle")
    assert "| `ce-ignore` (cases/ce.yaml:3; reduction=mean) | " in md
    assert "(B differs by up to 0.25 relative) [source](https://example.org/pd)" in md
    assert "**cannot take** weight" in md
    page = migrate.html(advice)
    assert page.count('data-status="differs"') == 2  # the plan and the entry's own table
    assert "http" not in re.sub(r'href="https://example.org/pd"', "", page).replace(
        "https://example.org/pd", ""
    )


def test_a_run_without_the_frameworks_says_so() -> None:
    advice = migrate.migrate(_frame(), "torch", "jax", source_entries=[A], target_entries=[B_OTHER])
    assert any("no eager rows of jax" in n for n in advice.notes)
    assert advice.entries[0].note == "JAX/optax has no entry for cross_entropy."


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["migrate", "--from", "mxnet", "--to", "torch", str(tmp_path)]) == 2
    assert main(["migrate", "--from", "keras", "--to", "tensorflow", str(tmp_path)]) == 2
    assert main(["migrate", "--from", "torch", "--to", "paddle", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown framework 'mxnet'" in err and "same framework (tensorflow)" in err
    assert f"{tmp_path} has no results.jsonl" in err


@pytest.mark.skipif(
    installed("torch", "paddle") != ["torch", "paddle"], reason="needs torch and paddle"
)
def test_every_torch_cross_entropy_configuration_gets_advice_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped cross-entropy cases, run on torch and paddle (eager) by migrate itself
    (no run directory given), then advice the other way from that run."""
    case_file = CASES / "cross_entropy.yaml"
    monkeypatch.chdir(tmp_path)  # the run goes to reports/migrate-torch-paddle/<timestamp>
    assert main(["migrate", "--from", "torch", "--to", "paddle", "--cases", str(case_file)]) == 0
    (run,) = (tmp_path / "reports" / "migrate-torch-paddle").iterdir()
    assert main(["migrate", "--from", "paddle", "--to", "torch", str(run)]) == 0
    printed = capsys.readouterr().out
    assert f"markdown: {Path('reports') / 'migrate-torch-paddle' / run.name}" in printed
    bases = {c.base_id for c in cases.load_file(case_file) if c.loss == "cross_entropy"}
    forward = (run / "migrate-torch-to-paddle.md").read_text()
    section = forward.split("## `torch.nn.functional.cross_entropy`", 1)[1].split("\n## ", 1)[0]
    for base in bases:
        assert f"| `{base}` (" in section, base
    assert "B computes none_shape=keepdim" in section  # paddle's documented 'none' shape
    backward = (run / "migrate-paddle-to-torch.md").read_text()
    section = backward.split("## `paddle.nn.functional.cross_entropy`", 1)[1].split("\n## ", 1)[0]
    for base in bases:
        assert f"| `{base}` (" in section, base
    assert "A computes none_shape=keepdim" in section

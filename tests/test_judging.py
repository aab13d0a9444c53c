"""Judging (issue 11): semantic options, diagnosis, the ledger, verdicts and exit codes.

The option-aware oracle is checked against the canonical one and against hand-computed
numbers; the diagnoser against outputs made under known options; the ledger through the
CLI; and every verdict with the real frameworks where they are installed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import CASES, have
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import adapters, cases, cli, ledger, oracle, results, runner
from conformance.judge import Diagnoser
from conformance.oracle import options, variants
from conformance.oracle.options import Declared

X = np.array([[0.0, 1.0, 2.0], [2.0, 0.5, -1.0], [1.0, 1.5, 0.0], [3.0, -2.0, 1.0]])
Y = np.array([2, -100, 1, 0])  # one ignored element
W = np.array([1.0, 2.0, 0.5])


def _nll(x: np.ndarray) -> np.ndarray:
    """-log softmax, row by row, the plain way (these inputs are small)."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return -np.log(e / e.sum(axis=1, keepdims=True))


def _ce(choices: dict[str, str], **params: Any) -> dict[str, np.ndarray]:
    return variants.cross_entropy(X, Y, **params, choices=choices)


# ---------------------------------------------------------------- the option-aware oracle


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["none", "mean", "sum"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([0.0, 0.1, 0.4]),
)
def test_variants_at_canonical_choices_agree_with_the_canonical_oracle(
    seed, reduction, probs, weighted, eps
):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    spatial = tuple(int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 3))))
    x = rng.normal(0.0, 3.0, size=(n, c, *spatial))
    if probs:
        t = rng.random((n, c, *spatial))
        t /= t.sum(axis=1, keepdims=True)
    else:
        t = rng.integers(0, c, size=(n, *spatial))
        t[rng.random(t.shape) < 0.3] = -100
    kw = dict(
        weight=rng.random(c) + 0.1 if weighted else None,
        reduction=reduction,
        label_smoothing=eps,
    )
    got = variants.cross_entropy(x, t, **kw)
    np.testing.assert_allclose(got["loss"], oracle.cross_entropy(x, t, **kw), rtol=1e-12)
    np.testing.assert_allclose(
        got["grad"], oracle.cross_entropy_grad(x, t, **kw), rtol=1e-12, atol=1e-15
    )


def test_mean_denominators_by_hand():
    per = np.where(Y >= 0, _nll(X)[np.arange(4), np.maximum(Y, 0)] * W[np.maximum(Y, 0)], 0.0)
    total = per.sum()
    cases_ = {
        "weights": total / (W[2] + W[1] + W[0]),
        "count": total / 3,
        "elements": total / 4,
        "batch": total / 4,
    }
    for choice, want in cases_.items():
        got = _ce({"index_mean": choice}, weight=W)["loss"]
        assert got == pytest.approx(want, rel=1e-14), choice


def test_empty_mean_is_nan_or_zero_with_a_zero_gradient():
    y = np.full(4, -100)
    for choice, want in (("nan", math.nan), ("zero", 0.0)):
        out = variants.cross_entropy(X, y, choices={"empty_mean": choice})
        assert np.array_equal(out["loss"], np.asarray(want), equal_nan=True)
        assert not out["grad"].any()


def test_soft_weighting_per_element_matches_paddles_documented_formula():
    t = np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    x = X[:2]
    plain = (t * _nll(x)).sum(axis=1)
    scale = (t * W).sum(axis=1)  # loss_j * sum_i(weight_i * label_i)
    out = variants.cross_entropy(
        x, t, weight=W, reduction="none", choices={"soft_weighting": "per_element"}
    )
    np.testing.assert_allclose(out["loss"], plain * scale, rtol=1e-14)
    mean = variants.cross_entropy(
        x,
        t,
        weight=W,
        choices={"soft_weighting": "per_element", "probs_mean": "weights"},
    )
    assert mean["loss"] == pytest.approx((plain * scale).sum() / scale.sum(), rel=1e-14)


def test_smoothing_masses_by_hand():
    eps, y = 0.3, np.array([2, 0, 1, 0])
    nll = _nll(X)
    onehot = np.eye(3)[y]
    for choice, t in {
        "uniform": (1 - eps) * onehot + eps / 3,
        "others": (1 - eps) * onehot + eps / 2 * (1 - onehot),
        "last_axis": (1 - eps) * onehot + eps / X.shape[-1],
    }.items():
        out = variants.cross_entropy(
            X, y, label_smoothing=eps, reduction="none", choices={"smoothing_mass": choice}
        )
        np.testing.assert_allclose(out["loss"], (t * nll).sum(axis=1), rtol=1e-14)


def test_logit_clip_bounds_the_loss_and_zero_log_zero_gives_nan():
    x = np.array([[0.0, 3000.0, 1.0]])
    clipped = variants.cross_entropy(x, np.array([0]), choices={"logit_clip": "64"})
    assert float(clipped["loss"]) == pytest.approx(64.0, rel=1e-12)
    xi = np.array([[1.0, -np.inf, 0.5]])
    t = np.array([[0.25, 0.0, 0.75]])
    assert np.isfinite(variants.cross_entropy(xi, t)["loss"])
    assert np.isnan(variants.cross_entropy(xi, t, choices={"zero_log_zero": "nan"})["loss"])


def test_none_shape_keepdim_and_target_sum():
    out = _ce({"none_shape": "keepdim"}, reduction="none")
    assert out["loss"].shape == (4, 1)
    t = np.array([[0.5, 0.5, 0.5]])  # sums to 1.5
    x = X[:1]
    p = np.exp(-_nll(x))
    given_ = variants.cross_entropy(x, t, reduction="sum")["grad"]
    assumed = variants.cross_entropy(x, t, reduction="sum", choices={"target_sum": "assumed_one"})[
        "grad"
    ]
    np.testing.assert_allclose(given_, 1.5 * p - t, rtol=1e-14)
    np.testing.assert_allclose(assumed, p - t, rtol=1e-14)


def test_docs_define_every_option_and_choice():
    text = (CASES.parent / "docs" / "semantics.md").read_text()
    for option in options.OPTIONS.values():
        assert f"`{option.name}`" in text, option.name
        for choice in option.choices:
            assert f"`{choice}`" in text, (option.name, choice)


def test_every_option_has_its_canonical_choice_among_its_choices():
    for option in options.OPTIONS.values():
        assert option.canonical in option.choices, option.name
        assert len(option.choices) >= 2, option.name


# ---------------------------------------------------------------- diagnosis


def _diagnoser(x: np.ndarray, t: np.ndarray, **params: Any) -> Diagnoser:
    full = {"weight": None, "ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0}
    full.update(params)
    return Diagnoser("cross_entropy", x, t, full, dtype="float64", n_terms=12, factor=1.0)


def test_a_declared_option_is_a_documented_difference():
    y = np.full(4, -100)
    d = _diagnoser(X, y)
    declared = [Declared("empty_mean", "zero", "https://example.org/doc")]
    found = d.diagnose("loss", np.asarray(0.0), np.asarray(0.0), declared)
    assert found.declared and found.choices == {"empty_mean": "zero"}
    assert found.sources == ("https://example.org/doc",)


def test_an_undeclared_option_is_named_but_not_excused():
    d = _diagnoser(X, Y)
    got = variants.cross_entropy(X, Y, choices={"index_mean": "elements"})["loss"]
    found = d.diagnose("loss", got, np.abs(got), [])
    assert not found.declared
    assert found.choices == {"index_mean": "elements"}
    assert "ignored ones included" in found.explanation


def test_a_pair_of_options_is_found_when_no_single_one_explains():
    d = _diagnoser(X, Y, weight=W)
    pair = {"index_mean": "count", "logit_clip": "64"}
    x = X.copy()
    x[0, 1] = 500.0  # the clip matters for this element
    d = _diagnoser(x, Y, weight=W)
    got = variants.cross_entropy(x, Y, weight=W, choices=pair)["loss"]
    found = d.diagnose("loss", got, np.abs(got), [])
    assert found.choices == pair


def test_numbers_no_option_explains_are_said_to_be_unexplained():
    d = _diagnoser(X, Y)
    found = d.diagnose("loss", np.asarray(123.0), np.asarray(1.0), [])
    assert found.choices == {} and not found.declared


def test_every_declared_profile_names_a_real_option_with_a_link():
    for name in adapters.MODULES:
        for entry in adapters.load(name).ENTRIES:
            options.validate(entry.loss, entry.profile)


# ---------------------------------------------------------------- the ledger


CASE = """\
cases:
  - id: {id}
    loss: cross_entropy
    input: {{shape: [4, 3], scale: 2.0, seed: 1}}
    target: {{kind: index, seed: 2}}
"""
LEDGER = """\
known:
  - api: fake.raise
    case: "{case}"
    verdict: error
    reason: fake.raise always raises
    link: https://example.org/issue/1
"""


def _run(tmp_path: Path, *extra: str, case: str = "t1", pattern: str = "t1") -> int:
    (tmp_path / "cases").mkdir(exist_ok=True)
    (tmp_path / "cases" / "c.yaml").write_text(CASE.format(id=case))
    (tmp_path / "cases" / "known.yaml").write_text(LEDGER.format(case=pattern))
    return cli.main(
        [
            *("run", "--framework", "fake", "--cases", str(tmp_path / "cases")),
            *("--out", str(tmp_path / "run"), "--no-progress", *extra),
        ]
    )


def test_a_covered_failure_is_known_and_fails_only_under_strict(tmp_path, fake_framework, capsys):
    assert _run(tmp_path) == cli.EXIT_OK
    frame = results.load(tmp_path / "run")
    raised = frame[frame.api == "fake.raise"]
    assert set(raised.verdict) == {"known"}
    assert raised.ledger.iloc[0].endswith("https://example.org/issue/1")
    assert "measured error: RuntimeError" in raised.reason.iloc[0]
    out = capsys.readouterr().out
    assert "2 row(s) are known divergences" in out
    assert "known.yaml:2 https://example.org/issue/1 (2 row(s))" in out
    summary = json.loads((tmp_path / "run" / results.SUMMARY_FILE).read_text())
    assert summary["by_verdict"]["known"] == 2 and summary["stale_ledger"] == []
    html = (tmp_path / "run" / "report.html").read_text()
    found = html.split('<section id="findings">')[1].split("</section>")[0]
    assert '<details class="finding v-known"' in found and 'data-verdict="known"' in found
    assert "known.yaml:2</code></dd>" in found  # explained by that ledger entry
    assert 'href="https://example.org/issue/1"' in found
    (tmp_path / "run").rename(tmp_path / "first")
    assert _run(tmp_path, "--strict") == cli.EXIT_FAILING


def test_an_entry_that_covers_nothing_it_matches_is_stale(tmp_path, fake_framework, capsys):
    ledger_text = LEDGER.replace("fake.raise", "fake.exact").replace("error", "mismatch")
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "c.yaml").write_text(CASE.format(id="t1"))
    (tmp_path / "cases" / "known.yaml").write_text(ledger_text.format(case="t1"))
    args = ["run", "--framework", "fake", "--cases", str(tmp_path / "cases"), "--no-progress"]
    assert cli.main([*args, "--out", str(tmp_path / "a"), "--exit-zero"]) == cli.EXIT_OK
    summary = json.loads((tmp_path / "a" / results.SUMMARY_FILE).read_text())
    (stale,) = summary["stale_ledger"]
    assert stale["entry"].endswith("known.yaml:2") and "covers none" in stale["reason"]
    assert "stale ledger entry" in capsys.readouterr().err
    # fake.raise fails (error), so only --strict's stale check is in play for the exit code
    ledger_only = tmp_path / "cases" / "known.yaml"
    code = cli.main(
        [*args, "--out", str(tmp_path / "b"), "--strict", "-k", "t1", "--ledger", str(ledger_only)]
    )
    assert code == cli.EXIT_FAILING


def test_an_entry_outside_its_version_range_covers_nothing(tmp_path, fake_framework):
    text = LEDGER.format(case="t1") + '    versions: {fake: ">=2"}\n'
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "c.yaml").write_text(CASE.format(id="t1"))
    (tmp_path / "cases" / "known.yaml").write_text(text)
    out = tmp_path / "run"
    cases_dir = str(tmp_path / "cases")
    args = ["run", "--framework", "fake", "--cases", cases_dir, "--out", str(out)]
    cli.main([*args, "--no-progress", "--exit-zero"])
    frame = results.load(out)
    assert set(frame[frame.api == "fake.raise"].verdict) == {"error"}  # fake is version 1.0
    summary = json.loads((out / results.SUMMARY_FILE).read_text())
    assert len(summary["stale_ledger"]) == 1


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("    verdict: wrong\n", "known[0].verdict", "'wrong' is not allowed"),
        ('    versions: {torch: "not a range"}\n', "known[0].versions.torch", "version range"),
        ("    explanation: nonsense=1\n", "known[0].explanation", "no semantic option"),
        ("    linky: x\n", "known[0].linky", "unknown key"),
    ],
)
def test_ledger_mistakes_are_located(tmp_path, capsys, line, field, message):
    text = LEDGER.format(case="t1")
    if line.startswith("    verdict"):
        text = text.replace("    verdict: error\n", line)
    else:
        text += line
    path = tmp_path / "known.yaml"
    path.write_text(text)
    assert cli.main(["validate", str(path)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "known.yaml:" in err and f": {field}: " in err and message in err, err


def test_the_shipped_ledger_validates_and_names_upstream_links():
    known = ledger.load_paths([CASES])
    assert len(known.entries) >= 5
    for entry in known.entries:
        assert entry.link.startswith("https://"), entry.where


def test_a_ledger_entry_with_a_mode_covers_only_rows_of_that_mode(tmp_path):
    path = tmp_path / "known.yaml"
    path.write_text(
        "known:\n  - api: tf.x\n    case: c*\n    mode: tf.function*\n    verdict: mismatch\n"
        "    reason: graph rewrite\n    link: https://example.org/1\n"
    )
    known = ledger.load_paths([path])
    row = {"api": "tf.x", "case_id": "c1", "output": "loss", "verdict": "mismatch"}
    assert known.cover({**row, "mode": "tf.function-xla"}, {}) is not None
    assert known.cover({**row, "mode": "eager"}, {}) is None
    # a run without that mode does not call the entry stale
    import pandas as pd

    frame = pd.DataFrame([{**row, "mode": "eager", "ledger": None}])
    assert known.stale(frame) == []


def test_case_and_ledger_files_share_a_directory():
    loaded = cases.load_paths([CASES])
    assert loaded and all(c.file != "cases/known.yaml" for c in loaded)


# ---------------------------------------------------------------- verdicts with real frameworks

REAL = {
    "ce-all-ignored[reduction=mean]",
    "ce-ignore-default[reduction=mean]",
    "ce-large-logits[reduction=none,dtype=float32]",
    "ce-float16[reduction=mean]",
    "ce-probs-weighted[reduction=mean]",
    "seed-2x3-logits[reduction=mean,dtype=float64]",
    "err-label-negative",
    "ce-smoothing-weighted-ignored[reduction=mean]",
}


def _available() -> list[str]:
    return [
        name for name in runner.FRAMEWORKS if all(have(req) for req in adapters.load(name).REQUIRES)
    ]


@pytest.fixture(scope="module")
def real_rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    frameworks = _available()
    if not frameworks:
        pytest.skip("no framework installed")
    selected = [c for c in cases.load_paths([CASES]) if c.id in REAL]
    out: dict[str, Any] = {}
    for name, known in (("ledger", ledger.load_paths([CASES])), ("bare", ledger.Ledger())):
        run_dir = tmp_path_factory.mktemp(name)
        runner.run(selected, run_dir, frameworks=frameworks, ledger=known, modes=("eager",))
        out[name] = results.load(run_dir)
    return out


def _verdict(frame: Any, api: str, case_id: str, output: str = "loss") -> tuple[str, str]:
    row = frame[(frame.api == api) & (frame.case_id == case_id) & (frame.output == output)]
    assert len(row) == 1, (api, case_id)
    return row.verdict.iloc[0], row.reason.iloc[0] or ""


@pytest.mark.skipif(not have("paddle"), reason="paddle not installed")
def test_paddle_documented_differences_defects_and_missing_kernels(real_rows):
    frame, bare = real_rows["ledger"], real_rows["bare"]
    api = "paddle.nn.functional.cross_entropy"
    verdict, reason = _verdict(frame, api, "ce-all-ignored[reduction=mean]")
    assert verdict == "semantic-difference" and "empty_mean=zero" in reason
    verdict, reason = _verdict(frame, api, "ce-large-logits[reduction=none,dtype=float32]")
    assert verdict == "semantic-difference" and "logit_clip=64" in reason
    verdict, reason = _verdict(frame, api, "ce-probs-weighted[reduction=mean]")
    assert verdict == "semantic-difference" and "soft_weighting=per_element" in reason
    verdict, reason = _verdict(frame, api, "ce-ignore-default[reduction=mean]")
    assert verdict == "known" and "Paddle/issues/48663" in reason
    verdict, reason = _verdict(bare, api, "ce-ignore-default[reduction=mean]")
    assert verdict == "mismatch" and "matches index_mean=elements" in reason
    verdict, reason = _verdict(frame, api, "ce-float16[reduction=mean]")
    assert verdict == "not-implemented" and "float16" in reason
    case_id = "ce-smoothing-weighted-ignored[reduction=mean]"
    assert _verdict(bare, api, case_id)[0] == "error"
    verdict, reason = _verdict(frame, api, case_id)
    assert verdict == "known" and "measured error: ValueError" in reason


@pytest.mark.skipif(not have("tensorflow"), reason="tensorflow not installed")
def test_keras_computes_float64_in_float32_as_documented(real_rows):
    frame = real_rows["ledger"]
    api = "keras.losses.SparseCategoricalCrossentropy"
    verdict, reason = _verdict(frame, api, "seed-2x3-logits[reduction=mean,dtype=float64]")
    assert verdict == "semantic-difference" and "precision=float32" in reason
    verdict, _ = _verdict(
        frame, "tf.nn.sparse_softmax_cross_entropy_with_logits", "err-label-negative"
    )
    assert verdict == "expected-error"


@pytest.mark.skipif(not have("optax"), reason="optax not installed")
def test_optax_silent_garbage_on_bad_labels_is_a_known_no_error(real_rows):
    api = "optax.softmax_cross_entropy_with_integer_labels"
    verdict, reason = _verdict(real_rows["ledger"], api, "err-label-negative")
    assert verdict == "known" and "optax/issues/1185" in reason
    assert _verdict(real_rows["bare"], api, "err-label-negative")[0] == "no-error"


@pytest.mark.skipif(not have("torch"), reason="torch not installed")
def test_torch_passes_or_is_unsupported_on_these_cases(real_rows):
    frame = real_rows["ledger"]
    torch_rows = frame[frame.framework == "torch"]
    assert set(torch_rows.verdict) <= {"pass", "expected-error"}
    assert "unsupported" in set(frame.verdict)  # e.g. tf.nn has no class weights


# ---------------------------------------------------------------- nll_loss, declared in one place


def test_nll_variant_at_canonical_choices_agrees_with_the_oracle():
    rng = np.random.default_rng(7)
    for _ in range(50):
        n, c = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        x = rng.normal(size=(n, c, 3))
        y = rng.integers(0, c, size=(n, 3))
        y[rng.random(y.shape) < 0.3] = -100
        w = rng.random(c) + 0.1
        for reduction in ("none", "mean", "sum"):
            got = variants.nll_loss(x, y, weight=w, reduction=reduction)
            want = oracle.nll_loss(x, y, weight=w, reduction=reduction)
            np.testing.assert_allclose(got["loss"], want, rtol=1e-13)
            np.testing.assert_allclose(
                got["grad"], oracle.nll_loss_grad(x, y, weight=w, reduction=reduction)
            )


def test_every_alternative_that_explains_a_row_is_named():
    y = np.full(4, -100)
    d = Diagnoser(
        "nll_loss",
        X,
        y,
        {"weight": None, "ignore_index": -100, "reduction": "mean"},
        dtype="float64",
        n_terms=4,
        factor=1.0,
    )
    found = d.diagnose("loss", np.asarray(0.0), np.asarray(0.0), [])
    assert "index_mean=elements" in found.explanation
    assert "empty_mean=zero" in found.explanation


def test_the_seed_nll_example():
    x = np.log(np.array([[0.18, 0.18, 0.64]]))
    assert float(oracle.nll_loss(x, np.array([2]))) == pytest.approx(0.44628710262841953)


def test_a_case_may_only_give_its_loss_parameters_and_target_kinds(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(
        "cases:\n"
        "  - id: a\n    loss: nll_loss\n    input: {shape: [4, 3], seed: 1}\n"
        "    target: {kind: index, seed: 2}\n    params: {label_smoothing: 0.1}\n"
        "  - id: b\n    loss: nll_loss\n    input: {shape: [4, 3], seed: 1}\n"
        "    target: {kind: probs, seed: 2}\n"
    )
    assert cli.main(["validate", str(path)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "c.yaml:6: cases[0].params.label_smoothing: nll_loss has no parameter" in err
    assert "c.yaml:10: cases[1].target: nll_loss takes index targets; received probs" in err


def test_generated_nll_inputs_are_log_probabilities():
    (case,) = [
        c for c in cases.load_paths([CASES]) if c.id == "nll-hard-2d[reduction=mean,dtype=float64]"
    ]
    x, _ = case.arrays()
    np.testing.assert_allclose(np.exp(x).sum(axis=1), 1.0, rtol=1e-12)


def test_a_float32_computation_is_judged_on_float32_rounded_inputs():
    x = np.array([[-1000.3, -1001.7, -999.9], [0.1, 2.0, -1.0]])
    y = np.array([0, 1])
    rounded = x.astype(np.float32).astype(np.float64)
    got = oracle.cross_entropy(rounded, y).astype(np.float32)  # what float32 code computes
    d = _diagnoser(x, y)
    declared = [Declared("precision", "float32", "https://example.org/floatx")]
    canonical = oracle.cross_entropy(x, y)
    assert not np.isclose(float(got), float(canonical), rtol=1e-7)  # the inputs moved
    found = d.diagnose("loss", got, np.abs(canonical), declared)
    assert found.declared and found.choices == {"precision": "float32"}


def test_an_alternative_that_only_overflows_explains_nothing():
    # a float16 mean of 10444 whose sum (94000) overflows inside a framework: the alternative
    # "divide by the batch size" (N = 1, so the sum) also overflows, but is not the reason
    x = np.zeros((1, 3, 9))
    x[0, 0] = 1e4  # every element's loss is 1e4: the mean fits float16, the sum does not
    y = np.ones((1, 9), dtype=np.int64)
    d = Diagnoser(
        "cross_entropy",
        x,
        y,
        {"weight": None, "ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0},
        dtype="float16",
        n_terms=27,
        factor=1.0,
    )
    found = d.diagnose("loss", np.asarray(np.inf, dtype=np.float16), np.asarray(1e4), [])
    assert "index_mean=batch" not in found.explanation


BINARY = {
    "bce-exact-zero-and-one[reduction=none]",
    "bcel-zero-logits[reduction=none]",
    "bcel-seg-nchw-pos-weight[reduction=none]",
    "bce-multilabel-2d[reduction=none,dtype=float32]",
}


@pytest.fixture(scope="module")
def binary_rows(tmp_path_factory: pytest.TempPathFactory) -> Any:
    frameworks = [f for f in ("torch", "tensorflow", "paddle") if f in _available()]
    if not frameworks:
        pytest.skip("none of torch, tensorflow, paddle installed")
    selected = [c for c in cases.load_paths([CASES]) if c.id in BINARY]
    run_dir = tmp_path_factory.mktemp("binary")
    known = ledger.load_paths([CASES])
    runner.run(selected, run_dir, frameworks=frameworks, ledger=known, modes=("eager",))
    return results.load(run_dir)


@pytest.mark.skipif(not have("torch"), reason="torch not installed")
def test_torch_binary_entries_declare_their_documented_definitions(binary_rows):
    api = "torch.nn.functional.binary_cross_entropy"
    verdict, reason = _verdict(binary_rows, api, "bce-exact-zero-and-one[reduction=none]")
    assert verdict == "semantic-difference" and "log_clamp=-100" in reason
    api = "torch.nn.BCEWithLogitsLoss"
    verdict, reason = _verdict(binary_rows, api, "bcel-seg-nchw-pos-weight[reduction=none]")
    assert verdict == "semantic-difference" and "pos_weight_axis=last" in reason
    assert _verdict(binary_rows, api, "bcel-zero-logits[reduction=none]", "grad")[0] == "pass"


@pytest.mark.skipif(not have("paddle"), reason="paddle not installed")
def test_paddle_zero_logit_gradient_is_a_known_defect(binary_rows):
    api = "paddle.nn.functional.binary_cross_entropy_with_logits"
    verdict, reason = _verdict(binary_rows, api, "bcel-zero-logits[reduction=none]", "grad")
    assert verdict == "known" and "Paddle/pull/64253" in reason


@pytest.mark.skipif(not have("tensorflow"), reason="tensorflow not installed")
def test_keras_binary_crossentropy_averages_over_the_last_axis(binary_rows):
    api = "keras.losses.BinaryCrossentropy(from_logits=False)"
    case_id = "bce-multilabel-2d[reduction=none,dtype=float32]"
    verdict, reason = _verdict(binary_rows, api, case_id)
    assert verdict == "semantic-difference" and "axis_mean=last" in reason

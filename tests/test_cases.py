"""Case files: strict validation with file:line errors, matrix expansion, generation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CASES

from conformance import cases, oracle, runner

GOOD = """\
cases:
  - id: demo
    loss: cross_entropy
    input: {shape: [3, 4, 5], scale: 3.0, seed: 7}
    target: {kind: index, seed: 8, ignore_share: 0.4}
    params: {weight: [1, 2, 3, 4], ignore_index: 255}
    matrix:
      reduction: [none, mean]
      dtype: [float32, float64]
"""


def errors_of(path) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(cases.CaseErrors) as info:
        cases.load_file(path)
    return [str(e) for e in info.value.errors]


def test_matrix_expands_with_stable_readable_ids(write_yaml):
    loaded = cases.load_file(write_yaml(GOOD))
    assert [c.id for c in loaded] == [
        "demo[reduction=none,dtype=float32]",
        "demo[reduction=none,dtype=float64]",
        "demo[reduction=mean,dtype=float32]",
        "demo[reduction=mean,dtype=float64]",
    ]
    assert {c.line for c in loaded} == {2}
    assert loaded[2].params == {
        "weight": [1, 2, 3, 4],
        "ignore_index": 255,
        "reduction": "mean",
        "label_smoothing": 0.0,
    }
    assert loaded[1].dtype == "float64"


def test_generated_arrays_are_deterministic_rounded_and_scattered(write_yaml):
    case = cases.load_file(write_yaml(GOOD))[0]
    x, t = case.arrays()
    x2, t2 = case.arrays()
    assert x.dtype == np.float32 and x.shape == (3, 4, 5)
    assert np.array_equal(x, x2) and np.array_equal(t, t2)
    assert t.dtype == np.int64 and t.shape == (3, 5)
    ignored = t == 255
    assert ignored.sum() == 6  # 40 % of 15, exactly
    flat = ignored.reshape(-1)
    assert not flat[-6:].all(), "ignored positions must not all sit at the end"
    assert set(np.unique(t[~ignored])) <= {0, 1, 2, 3}
    assert x.std() > 1.5, "logits need real spread"


def test_probability_targets_are_distributions(write_yaml):
    path = write_yaml(
        "cases:\n  - id: p\n    loss: cross_entropy\n"
        "    input: {shape: [4, 3, 2], seed: 1}\n    target: {kind: probs, seed: 2}\n"
    )
    case = cases.load_file(path)[0]
    _, t = case.arrays()
    assert case.target_kind == "probs" and t.shape == (4, 3, 2)
    np.testing.assert_allclose(t.sum(axis=1), 1.0, rtol=1e-6)


def test_log_targets_are_log_probabilities(write_yaml):
    path = write_yaml(
        "cases:\n  - id: kl\n    loss: kl_div\n"
        "    input: {shape: [4, 3, 2], seed: 1}\n    target: {kind: probs, seed: 2}\n"
        "    matrix: {log_target: [false, true]}\n"
    )
    plain, logs = cases.load_file(path)
    assert plain.params["log_target"] is False and logs.params["log_target"] is True
    _, t = plain.arrays()
    x, lt = logs.arrays()
    np.testing.assert_allclose(np.exp(x.astype(float)).sum(axis=1), 1.0, rtol=1e-6)  # log_softmax
    np.testing.assert_allclose(np.exp(lt.astype(float)), t, rtol=1e-5)  # the same draw, as logs


def test_typo_key_names_file_line_field_and_allowed(write_yaml):
    path = write_yaml(GOOD.replace("    params:", "    parmas:"))
    (msg,) = errors_of(path)
    assert msg == (
        f"{path}:6: cases[0].parmas: unknown key 'parmas' (allowed: description, dtype, "
        "expect_error, id, input, loss, matrix, params, source, target, tolerance_factor)"
    )


@pytest.mark.parametrize(
    ("edit", "line", "field", "text"),
    [
        (
            ("reduction: [none, mean]", "reduction: [none, meen]"),
            8,
            "cases[0].matrix.reduction[1]",
            "'meen' is not allowed (allowed: none, mean, sum, batchmean)",
        ),
        (
            ("reduction: [none, mean]", "reduction: [none, batchmean]"),
            8,
            "cases[0].matrix.reduction[1]",
            "cross_entropy has no reduction 'batchmean' (its reductions: none, mean, sum)",
        ),
        (("seed: 7", "seed: seven"), 4, "cases[0].input.seed", "expected integer, got str"),
        (
            ("weight: [1, 2, 3, 4]", "weight: [1, 2, 3]"),
            6,
            "cases[0].params.weight",
            "must have length C=4",
        ),
        (
            ("shape: [3, 4, 5]", "shape: [3000, 4000, 5000]"),
            4,
            "cases[0].input.shape",
            "exceeds the limit",
        ),
        (("    loss: cross_entropy\n", ""), 2, "cases[0]", "'loss' is required"),
        (
            ("ignore_share: 0.4", "ignore_share: 0.4, one_hot: true"),
            5,
            "cases[0].target.one_hot",
            "only probs targets can be one-hot masks",
        ),
        (
            ("ignore_share: 0.4", "ignore_share: 1.4"),
            5,
            "cases[0].target.ignore_share",
            "1.4 is greater than the maximum of 1",
        ),
    ],
)
def test_each_problem_is_located(write_yaml, edit, line, field, text):
    path = write_yaml(GOOD.replace(*edit))
    (msg,) = errors_of(path)
    assert msg.startswith(f"{path}:{line}: {field}: "), msg
    assert text in msg


def test_literal_targets_are_checked(write_yaml):
    base = (
        "cases:\n  - id: lit\n    loss: cross_entropy\n"
        "    input:\n      values: [[1, 2, 3], [3, 2, 1]]\n"
        "    target:\n      values: {t}\n"
    )
    assert "outside [0, 3)" in errors_of(write_yaml(base.format(t="[0, 3]")))[0]
    assert "must be integers" in errors_of(write_yaml(base.format(t="[0, 1.5]")))[0]
    assert "shape (N, d1, ..., dk) = [2]" in errors_of(write_yaml(base.format(t="[0, 1, 2]")))[0]
    assert (
        ":5: cases[0].input.values: nested lists are ragged"
        in errors_of(write_yaml(base.replace("[3, 2, 1]", "[3, 2]").format(t="[0, 1]")))[0]
    )
    # an out-of-range label is fine when the case is about the error
    ok = write_yaml(base.format(t="[0, 3]") + "    expect_error: label 3 is out of range\n")
    assert cases.load_file(ok)[0].expect_error == "label 3 is out of range"


def test_alias_bomb_is_refused_without_expanding(write_yaml):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    bomb += "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
        for p, c in zip("bcdefgh", "cdefghi", strict=True)
    )
    (msg,) = errors_of(write_yaml(bomb))
    assert msg.endswith(":2: yaml: aliases (*name) are not allowed; write the values out")


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("cases:\n  - id: caf\xe9\n".encode("latin-1"))
    (msg,) = errors_of(path)
    assert msg == f"{path}:2: file: not UTF-8 (byte 0xe9 at offset 18)"


def test_yaml_syntax_error_and_duplicate_key(write_yaml):
    (msg,) = errors_of(write_yaml("cases:\n  - id: x\n    loss: [unclosed\n"))
    assert (": yaml: " in msg and ":4:" in msg) or ":3:" in msg
    (msg,) = errors_of(
        write_yaml(
            GOOD.replace(
                "    loss: cross_entropy\n", "    loss: cross_entropy\n    loss: cross_entropy\n"
            )
        )
    )
    assert msg.endswith(":4: cases[0].loss: duplicate key")


def test_python_tags_are_not_constructed(write_yaml):
    (msg,) = errors_of(write_yaml("cases: !!python/object/apply:os.system ['true']\n"))
    assert msg.endswith(":1: cases: YAML tag !!python/object/apply:os.system is not allowed")
    (msg,) = errors_of(write_yaml("cases:\n  - id: !!python/name:os.system x\n"))
    assert msg.endswith(":2: cases[0].id: YAML tag !!python/name:os.system is not allowed")


def test_all_problems_are_reported_in_one_pass(write_yaml):
    text = GOOD.replace("reduction: [none, mean]", "reduction: [meen]").replace(
        "seed: 7", "seed: -1"
    )
    assert len(errors_of(write_yaml(text))) == 2


def test_duplicate_ids_across_files(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(cases.CaseErrors) as info:
        cases.load_paths([tmp_path])
    assert "is already used at" in str(info.value)


def test_shipped_cases_are_valid_and_cover_the_issue():
    loaded = cases.load_paths([CASES])
    shapes = {len(c.arrays()[0].shape) for c in loaded}
    assert {2, 4, 5} <= shapes  # N,C / N,C,H,W / N,C,d1,d2,d3
    assert {c.params["reduction"] for c in loaded} == {"none", "mean", "sum", "batchmean"}
    assert {c.target_kind for c in loaded} == {"index", "probs", "binary", "real", "none"}
    assert {c.loss for c in loaded} == set(oracle.LOSSES)  # every declared loss has cases
    assert {c.params["ignore_index"] for c in loaded if c.base_id.startswith("ce-")} >= {-100, 255}
    assert any(c.params.get("weight") for c in loaded)
    assert any(c.params.get("label_smoothing") for c in loaded)
    assert any(c.expect_error for c in loaded)


def test_a_literal_that_overflows_the_case_dtype_is_refused(write_yaml):
    text = (
        "cases:\n  - id: big\n    loss: cross_entropy\n    input:\n"
        "      values: [[1.0, 70000.0], [.inf, 0.0]]\n    target:\n      values: [0, 1]\n"
        "    matrix:\n      dtype: [float32, float16]\n"
    )
    (msg,) = errors_of(write_yaml(text))
    assert msg.endswith(
        ":5: cases[0].input.values: 70000 overflows float16 (largest 65504); "
        "write .inf or -.inf for an infinity"
    )
    # an explicit infinity is an intent, and float32 holds 70000
    ok = write_yaml(text.replace(", float16", ""))
    x, _ = cases.load_file(ok)[0].arrays()
    assert np.isinf(x[1, 0]) and x[0, 1] == 70000.0


def test_integers_must_fit_int64_and_integral_floats_become_ints(write_yaml):
    huge = GOOD.replace("ignore_index: 255", "ignore_index: 9223372036854775808")
    (msg,) = errors_of(write_yaml(huge))
    assert ":6: cases[0].params.ignore_index: " in msg and "greater than the maximum" in msg
    case = cases.load_file(write_yaml(GOOD.replace("ignore_index: 255", "ignore_index: 255.0")))[0]
    assert case.params["ignore_index"] == 255 and isinstance(case.params["ignore_index"], int)


# Inputs the loader allows only as the subject of an error case (expect_error), and the
# empty batch, which is a value case (cases/cross_entropy_errors.yaml holds the decisions).
SMALL = (
    "cases:\n  - id: s\n    loss: cross_entropy\n"
    "    input: {{shape: {shape}, seed: 1}}\n"
    "    target: {target}\n"
    "{extra}"
)


def small(shape: str = "[4, 3]", target: str = "{values: [0, 1, 2, 1]}", extra: str = "") -> str:
    return SMALL.format(shape=shape, target=target, extra=extra)


def test_a_weight_of_the_wrong_shape_is_allowed_only_in_error_cases(write_yaml):
    two_d = small(extra="    params: {weight: [[1.0, 2.0, 0.5]]}\n")
    (msg,) = errors_of(write_yaml(two_d))
    assert msg.endswith(
        ":6: cases[0].params.weight: must be a flat list of C=3 numbers; received shape "
        "[1, 3] (set expect_error to test how frameworks reject it)"
    )
    (case,) = cases.load_file(write_yaml(two_d + "    expect_error: 2-D weight\n"))
    assert case.weight() is not None and case.weight().shape == (1, 3)
    x, t = case.arrays()
    assert runner.expected_for(case, x, t).problem.startswith("oracle has no value")
    longer = small(extra="    params: {weight: [1, 2, 3, 4]}\n    expect_error: long\n")
    assert cases.load_file(write_yaml(longer))[0].weight().shape == (4,)
    # an error case still needs a weight that is an array of numbers
    ragged = small(extra="    params: {weight: [[1.0, 2.0], [1.0]]}\n    expect_error: x\n")
    (msg,) = errors_of(write_yaml(ragged))
    assert "cases[0].params.weight: nested lists are ragged" in msg
    text = small(extra="    params: {weight: [[1.0, 'a', 1.0]]}\n    expect_error: x\n")
    (msg,) = errors_of(write_yaml(text))
    assert msg.endswith("cases[0].params.weight[0][1]: expected a number, got str 'a'")
    (msg,) = errors_of(write_yaml(small(extra="    params: {weight: [1.0, 'a', 1.0]}\n")))
    assert msg.endswith("cases[0].params.weight[1]: expected number or array, got str 'a'")


def test_float_class_labels_are_allowed_only_in_error_cases_and_stay_floats(write_yaml):
    floats = small(target="{values: [0, 1.0, 2.5, 1]}")
    (msg,) = errors_of(write_yaml(floats))
    assert "cases[0].target.values: class indices must be integers (set expect_error" in msg
    (case,) = cases.load_file(write_yaml(floats + "    expect_error: no class 2.5\n"))
    x, t = case.arrays()
    assert case.target_kind == "index"
    assert t.dtype == np.float32 and t.tolist() == [0.0, 1.0, 2.5, 1.0]  # not truncated to 2
    assert runner.expected_for(case, x, t).problem.startswith("oracle has no value")
    nan = small(target="{values: [0, .nan, 2, 1]}", extra="    expect_error: NaN label\n")
    assert np.isnan(cases.load_file(write_yaml(nan))[0].arrays()[1][1])
    # whole-number floats are class indices, exact int64 as before
    (case,) = cases.load_file(write_yaml(small(target="{values: [0, 1.0, 2.0, 1]}")))
    assert case.arrays()[1].dtype == np.int64
    big = small(
        target="{values: [0, 1, 70000.5, 1]}",
        extra="    dtype: float16\n    expect_error: x\n",
    )
    (msg,) = errors_of(write_yaml(big))
    assert msg.endswith(
        "cases[0].target.values: 70000.5 overflows float16 (largest 65504); "
        "write .inf or -.inf for an infinity"
    )


def test_an_empty_batch_is_a_value_case(write_yaml):
    for target in ("{kind: index, seed: 2}", "{values: []}", "{kind: probs, seed: 2}"):
        text = small(
            shape="[0.0, 3]", target=target, extra="    matrix: {reduction: [none, mean, sum]}\n"
        )
        loaded = cases.load_file(write_yaml(text))
        assert loaded[0].input_spec["shape"] == [0, 3]
        assert isinstance(loaded[0].input_spec["shape"][0], int)
        got = {}
        for case in loaded:
            x, t = case.arrays()
            assert x.shape == (0, 3) and t.shape[0] == 0
            expected = runner.expected_for(case, x, t)
            assert not expected.problem
            assert expected.values["grad"].shape == (0, 3)
            got[case.params["reduction"]] = expected.values["loss"]
        assert got["none"].shape == (0,)
        assert np.isnan(got["mean"]) and got["sum"] == 0.0  # 0/0 and the empty sum
    # only the batch dimension may be 0
    for shape, field in (("[2, 0]", "shape[1]"), ("[2, 3, 0]", "shape[2]")):
        (msg,) = errors_of(write_yaml(small(shape=shape, target="{kind: index, seed: 2}")))
        assert msg.endswith(f"cases[0].input.{field}: 0 is less than the minimum of 1"), msg
    # a literal input says the same through its nesting: [[]] is N=1, C=0
    lit = small(target="{values: [[]]}").replace("{shape: [4, 3], seed: 1}", "{values: [[]]}")
    (msg,) = errors_of(write_yaml(lit))
    assert msg.endswith(
        "cases[0].input.values: only the batch dimension N may be 0; received shape=[1, 0]"
    ), msg


def test_the_shipped_error_file_marks_value_decisions_by_name():
    loaded = cases.load_file(CASES / "cross_entropy_errors.yaml")
    for case in loaded:
        assert case.base_id.startswith("err-")
        assert case.base_id.endswith("-value") == (case.expect_error is None), case.id
        assert case.description or case.expect_error

"""Execution modes: eager plus each framework's compiled modes, as the `mode` column."""

from __future__ import annotations

import pytest
from conftest import CASES, have

from conformance import adapters, cases, cli, results, runner

SEED = "seed-2x3-logits[reduction=mean,dtype=float32]"
COMPILED = {
    "torch": ("torch", "compile"),
    "tensorflow": ("tensorflow", "tf.function"),
    "tensorflow-xla": ("tensorflow", "tf.function-xla"),
    "jax": ("jax", "jit"),
    "paddle": ("paddle", "to_static"),
}


def test_mode_names_are_checked(capsys):
    assert cli.parse_modes("default") == list(runner.DEFAULT_MODES)
    assert set(cli.parse_modes("all")) >= {"eager", "jit", "tf.function", "to_static", "compile"}
    assert cli.parse_modes("eager,jit,eager") == ["eager", "jit"]
    assert "unknown mode 'jitt'" in str(cli.parse_modes("jitt"))
    assert cli.main(["run", "--mode", "jitt"]) == cli.EXIT_USAGE
    assert "unknown mode 'jitt'" in capsys.readouterr().err


def test_every_entry_runs_eager_and_declares_its_modes():
    for name in adapters.MODULES:
        for entry in adapters.load(name).ENTRIES:
            assert "eager" in entry.modes, entry.api


def test_an_entry_without_a_mode_gets_no_rows_for_it(tmp_path, fake_framework):
    selected = [c for c in cases.load_paths([CASES]) if c.id == SEED]
    runner.run(selected, tmp_path, frameworks=[fake_framework], modes=("eager", "jit"))
    assert set(results.load(tmp_path)["mode"]) == {"eager"}


@pytest.mark.parametrize("key", list(COMPILED))
def test_a_compiled_mode_gives_the_eager_verdicts(key, tmp_path):
    framework, mode = COMPILED[key]
    missing = [m for m in adapters.load(framework).REQUIRES if not have(m)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    selected = [c for c in cases.load_paths([CASES]) if c.id == SEED]
    runner.run(selected, tmp_path, frameworks=[framework], modes=("eager", mode))
    frame = results.load(tmp_path)
    assert set(frame["mode"]) == {"eager", mode}
    by_mode = {
        m: sorted(zip(g.api, g.output, g.verdict, strict=True)) for m, g in frame.groupby("mode")
    }
    assert by_mode[mode] == by_mode["eager"]
    assert {v for _, _, v in by_mode[mode]} <= {"pass", "unsupported", "semantic-difference"}

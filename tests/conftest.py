from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

from conformance import adapters, cases, ledger, results, runner
from conformance.compare import compare

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def installed(*frameworks: str) -> list[str]:
    """Those of ``frameworks`` whose adapter's requirements are installed."""
    return [fw for fw in frameworks if all(have(r) for r in adapters.load(fw).REQUIRES)]


def run_case_file(
    tmp_path_factory: pytest.TempPathFactory, name: str, frameworks: list[str], **kw: Any
) -> pd.DataFrame:
    """The rows of a real run of cases/``name`` on ``frameworks`` with the shipped ledger."""
    if not frameworks:
        pytest.skip("none of the frameworks this test needs is installed")
    out = tmp_path_factory.mktemp(name.replace(".", "-"))
    runner.run(
        cases.load_paths([CASES / name]),
        out,
        frameworks=frameworks,
        ledger=ledger.load_paths([CASES / "known.yaml"]),
        **kw,
    )
    return results.load(out)


Judged = tuple[cases.Case, np.ndarray, np.ndarray | None, runner.Expected]


def judged_cases(name: str) -> list[Judged]:
    """Every case of cases/``name`` with its inputs and canonical expectations."""
    out = []
    for case in cases.load_paths([CASES / name]):
        x, target = case.arrays()
        expected = runner.expected_for(case, x, target)
        assert not expected.problem, expected.problem
        out.append((case, x, target, expected))
    return out


def failing_ids(
    judged: list[Judged],
    outputs: Callable[..., Mapping[str, Any]],
    *,
    skip_raising: bool = False,
) -> list[str]:
    """Ids of the cases whose canonical comparison fails when a framework returns
    ``outputs(x, target, **kwargs)`` in the case dtype; ``kwargs`` are the oracle's keyword
    arguments for the case (its parameters; a target-less case's ``grad_output``). With
    ``skip_raising``, a case on which ``outputs`` raises ValueError (an option choice that
    has no value there) is left out rather than failing the test."""
    ids = []
    for case, x, target, expected in judged:
        if expected.diagnoser is not None:
            kwargs = dict(expected.diagnoser.params)
        else:
            kwargs = {"grad_output": expected.grad_output}
        try:
            got = outputs(x, target, **kwargs)
        except ValueError:
            if not skip_raising:
                raise
            continue
        for name in runner.OUTPUTS:
            with np.errstate(over="ignore", invalid="ignore"):
                value = np.asarray(got[name]).astype(case.dtype)
            if not compare(
                value,
                expected.values[name],
                expected.magnitudes[name],
                dtype=case.dtype,
                n_terms=expected.n_terms,
                factor=case.tolerance_factor,
            ).passed:
                ids.append(case.id)
    return ids


@pytest.fixture
def fake_framework(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Register tests/fake_adapter.py as framework "fake" for this test."""
    monkeypatch.setitem(adapters.MODULES, "fake", "fake_adapter")
    yield "fake"


@pytest.fixture
def write_yaml(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "cases.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


# Hypothesis: deterministic by default so CI is reproducible; HYPOTHESIS_PROFILE=explore
# draws fresh random examples (and more of them) when hunting for bugs.
settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

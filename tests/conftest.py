from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from conformance import adapters

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


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

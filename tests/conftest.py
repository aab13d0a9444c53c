from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

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

"""A fake framework for the census test: a loss namespace and an adapter in one module.

``losses`` holds two covered losses (one under an alias), one out-of-scope loss, one helper
that is not loss-like, and ``new_focal_loss``: a loss a framework upgrade added."""

from __future__ import annotations

import importlib
import sys
from types import SimpleNamespace
from typing import Any


def _loss(*_: Any) -> float:
    return 0.0


def _other(*_: Any) -> float:
    return 1.0


covered_loss, aliased_loss, margin_loss, new_focal_loss = _loss, _other, max, min
losses = SimpleNamespace(
    covered_loss=covered_loss,
    aliased_loss=aliased_loss,
    margin_loss=margin_loss,
    new_focal_loss=new_focal_loss,
    make_grid=sorted,  # a public callable that is not loss-like
)

REQUIRES = ("numpy",)
ENTRIES = (
    SimpleNamespace(api="census_fake.losses.covered_loss"),
    SimpleNamespace(api="census_fake.aliased_loss[variant]"),  # the same object, another name
)
OUT_OF_SCOPE_APIS = (("census_fake.losses.margin_loss", "a margin loss"),)


def resolve(dotted: str) -> Any:
    head, *rest = dotted.split(".")
    obj: Any = importlib.import_module(head) if head not in sys.modules else sys.modules[head]
    for part in rest:
        obj = getattr(obj, part)
    return obj

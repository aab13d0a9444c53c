"""Diagnosis: which definition reproduces a framework's numbers when canonical does not.

A row whose output misses the canonical oracle is re-judged against the oracle under other
semantic options (conformance/oracle/options.py), in this order:

1. the options the entry *declares* (each one alone, then all together): a match is a
   ``semantic-difference``, a documented definition rather than a defect;
2. each single alternative choice on top of the declared ones, then each pair: a match is
   still a ``mismatch`` (the entry does not document that definition), but its reason says
   which definition it computes, e.g. "matches: index_mean=elements (… ignored ones
   included)", which tells a porting team what to change;
3. nothing matches: a ``mismatch`` that no known definition explains.

Alternative outputs are computed once per case and shared by every framework and entry.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance.compare import Comparison, compare
from conformance.oracle import (
    binary,
    dice,
    focal,
    kl,
    multilabel,
    probs,
    regression,
    variants,
)
from conformance.oracle import options as opts
from conformance.oracle.options import Declared

__all__ = ["Diagnoser", "Diagnosis"]

Choices = tuple[tuple[str, str], ...]  # sorted (option, choice) pairs: a cache key
COMPARISON_OPTIONS = frozenset({"precision"})
DIAGNOSABLE: dict[str, Callable[..., Any]] = {
    "cross_entropy": variants.cross_entropy,
    "nll_loss": variants.nll_loss,
    "binary_cross_entropy": binary.binary_cross_entropy_outputs,
    "binary_cross_entropy_with_logits": binary.binary_cross_entropy_with_logits_outputs,
    "multilabel_soft_margin_loss": multilabel.multilabel_soft_margin_loss_outputs,
    "cross_entropy_on_probs": probs.cross_entropy_on_probs_outputs,
    "sigmoid_focal_loss": focal.sigmoid_focal_loss_outputs,
    "softmax_focal_loss": focal.softmax_focal_loss_outputs,
    "mse_loss": regression.mse_loss_outputs,
    "l1_loss": regression.l1_loss_outputs,
    "huber_loss": regression.huber_loss_outputs,
    "smooth_l1_loss": regression.smooth_l1_loss_outputs,
    "kl_div": kl.kl_div_outputs,
    "dice_loss": dice.dice_loss_outputs,
    "tversky_loss": dice.tversky_case(dice.tversky_loss_outputs),
}


@dataclass(frozen=True)
class Diagnosis:
    """What reproduces the framework's output: ``declared`` says whether the entry documents
    it; ``choices`` is empty when nothing does."""

    choices: dict[str, str]
    declared: bool
    sources: tuple[str, ...] = ()
    # Other alternatives that reproduce the numbers just as well (e.g. on an all-ignored
    # batch both "divide by all elements" and "empty mean is 0" give 0).
    also: tuple[dict[str, str], ...] = ()

    @property
    def explanation(self) -> str:
        return " or ".join(opts.describe(c) for c in (self.choices, *self.also))


class Diagnoser:
    """The oracle under alternative options for one case's (rounded) inputs."""

    def __init__(
        self,
        loss: str,
        x: np.ndarray,
        target: np.ndarray,
        params: Mapping[str, Any],
        *,
        dtype: str,
        n_terms: int,
        factor: float,
    ) -> None:
        self.loss, self.x, self.target, self.params = loss, x, target, dict(params)
        self.dtype, self.n_terms, self.factor = dtype, n_terms, factor
        self._cache: dict[Choices, dict[str, np.ndarray] | None] = {}

    def outputs(self, choices: Mapping[str, str]) -> dict[str, np.ndarray] | None:
        """Loss and grad under ``choices`` (comparison-only options ignored), or None when
        the variant oracle has no value here (too large, or it raised)."""
        narrowed = choices.get("precision") == "float32" and self.dtype == "float64"
        key = tuple(sorted((k, v) for k, v in choices.items() if k not in COMPARISON_OPTIONS))
        key = (*key, ("precision", "float32")) if narrowed else key
        if key not in self._cache:
            x, target, params = self.x, self.target, self.params
            if narrowed:  # what a float32 computation sees: the inputs rounded to float32
                x = x.astype(np.float32)
                if target.dtype.kind == "f":
                    target = target.astype(np.float32)
                for name in ("weight", "pos_weight"):
                    if params.get(name) is not None:
                        params = {**params, name: np.asarray(params[name], np.float32)}
            computational = {k: v for k, v in key if k not in COMPARISON_OPTIONS}
            try:
                self._cache[key] = DIAGNOSABLE[self.loss](
                    x, target, **params, choices=computational
                )
            except (ValueError, FloatingPointError):
                self._cache[key] = None
        return self._cache[key]

    def matches(
        self, output: str, got: np.ndarray, magnitude: np.ndarray, choices: Mapping[str, str]
    ) -> bool:
        values = self.outputs(choices)
        if values is None:
            return False
        want = values[output]
        canonical = self.outputs({})
        with np.errstate(over="ignore", invalid="ignore"):
            overflows = np.isfinite(want) & ~np.isfinite(want.astype(self.dtype))
            if canonical is not None:
                base = canonical[output]
                base_overflows = np.isfinite(base) & ~np.isfinite(base.astype(self.dtype))
                if base.shape == want.shape:
                    overflows &= ~base_overflows
                elif np.any(base_overflows):  # another shape (a mean over an axis): the
                    overflows[...] = False  # case's own overflow, wherever it lands
            if np.any(overflows):
                # An alternative whose value overflows the case dtype where the canonical
                # value does not "matches" any framework that overflowed for its own
                # reasons: that explains nothing. (Where both overflow, as a squared 1e4 in
                # float16, the overflow is the case's, and the other elements decide.)
                return False
        mag = _magnitude_for(np.asarray(magnitude, dtype=np.float64), want.shape)
        if mag is None:
            mag = np.abs(want)
        # The canonical error scale can be 0 where the alternative has a value (a NaN
        # canonical mean has magnitude 0): never scale below the alternative's own size.
        with np.errstate(invalid="ignore"):
            mag = np.fmax(mag, np.abs(want))
        dtype = "float32" if choices.get("precision") == "float32" else self.dtype
        if dtype == "float32" and self.dtype in ("float16", "bfloat16"):
            dtype = self.dtype  # a wider compute dtype never loosens a narrower case
        result: Comparison = compare(
            got, want, mag, dtype=dtype, n_terms=self.n_terms, factor=self.factor
        )
        return result.passed

    def diagnose(
        self,
        output: str,
        got: np.ndarray,
        magnitude: np.ndarray,
        declared: Sequence[Declared],
    ) -> Diagnosis:
        if self.loss not in DIAGNOSABLE:
            return Diagnosis({}, declared=False)
        base = {d.option: d.choice for d in declared}
        for subset in _declared_subsets(declared):
            chosen = {d.option: d.choice for d in subset}
            if self.matches(output, got, magnitude, chosen):
                return Diagnosis(chosen, declared=True, sources=tuple(d.source for d in subset))
        found: list[dict[str, str]] = []
        for extra in _alternatives(self.loss, base):
            if found and len(extra) > len(found[0]):
                break  # a pair is only tried when no single alternative explains it
            if self.matches(output, got, magnitude, {**base, **extra}):
                found.append(extra)
        if found:
            return Diagnosis(found[0], declared=False, also=tuple(found[1:]))
        return Diagnosis({}, declared=False)


def _magnitude_for(mag: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """The canonical error scale carried to an alternative's output shape: reshaped (a kept
    size-1 axis), or summed over the one axis the alternative reduces (a sum or mean over
    the last or the class axis; the magnitude of a sum is the sum of the magnitudes, and a
    mean's is smaller). Where several axes fit, the largest scale; None where none does."""
    if mag.shape == shape:
        return mag
    if mag.size == int(np.prod(shape)):
        return mag.reshape(shape)
    sums = [
        np.sum(mag, axis=axis)
        for axis in range(mag.ndim)
        if mag.shape[:axis] + mag.shape[axis + 1 :] == shape
    ]
    return np.maximum.reduce(sums) if sums else None


def _declared_subsets(declared: Sequence[Declared]) -> Iterator[tuple[Declared, ...]]:
    """Each declared option alone, then all of them together (the whole profile)."""
    for d in declared:
        yield (d,)
    if len(declared) > 1:
        yield tuple(declared)


def _alternatives(loss: str, base: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """Single alternative choices relative to ``base`` (canonical where it is silent), then
    pairs of them on different options."""
    singles = [
        (o.name, choice)
        for o in opts.options_for(loss)
        for choice in o.choices
        if choice != base.get(o.name, o.canonical)
    ]
    for name, choice in singles:
        yield {name: choice}
    for (n1, c1), (n2, c2) in itertools.combinations(singles, 2):
        if n1 != n2:
            yield {n1: c1, n2: c2}

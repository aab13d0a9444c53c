"""The comparator: classify before measuring; tolerance from eps and reduction size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conformance.compare import compare, tolerance, ulp_distance


def test_tolerance_table_is_derived_from_eps_and_size():
    eps32 = float(np.finfo(np.float32).eps)
    assert tolerance("float32", 5) == (8 + 3) * eps32
    assert tolerance("float32", 1024) == (8 + 10) * eps32
    assert tolerance("float64", 2) == 9 * float(np.finfo(np.float64).eps)
    assert tolerance("float16", 1) == 9 * float(np.finfo(np.float16).eps)


def test_nan_versus_zero_is_a_mismatch_never_hidden():
    r = compare(np.float32(0.0), np.float64("nan"), np.float64(0.0), dtype="float32", n_terms=4)
    assert not r.passed
    assert r.reason.startswith("NaN/Inf pattern differs at 1 element(s)")
    assert "expected NaN, got 0.0" in r.reason


def test_matching_nan_and_inf_pass():
    e = np.array([np.nan, np.inf, -np.inf, 1.0])
    a = e.astype(np.float32)
    assert compare(a, e, np.abs(np.nan_to_num(e)), dtype="float32", n_terms=4).passed


def test_shape_is_checked_first():
    r = compare(
        np.zeros((1,), np.float32), np.float64(0.0), np.float64(0.0), dtype="float32", n_terms=2
    )
    assert not r.passed and r.reason == "shape [1] != expected []"


def test_bound_scales_with_magnitude_not_value():
    # lse - x_y cancels: a tiny loss may carry an absolute error of the size of the logits
    e = np.array([1e-6])
    a = np.array([1e-6 + 2e-6], dtype=np.float64)
    assert compare(a.astype(np.float32), e, np.array([100.0]), dtype="float32", n_terms=4).passed
    assert not compare(a.astype(np.float32), e, np.array([1e-6]), dtype="float32", n_terms=4).passed


def test_one_ulp_off_passes_and_many_ulps_fail():
    e = np.linspace(0.5, 2.0, 16)
    a = np.nextafter(e.astype(np.float32), np.float32(np.inf))
    ok = compare(a, e, np.abs(e), dtype="float32", n_terms=16)
    assert ok.passed and ok.max_ulp is not None and ok.max_ulp <= 2
    bad = e.astype(np.float32) * np.float32(1 + 1e-4)
    r = compare(bad, e, np.abs(e), dtype="float32", n_terms=16)
    assert not r.passed
    (i,) = r.worst_index or [-1]
    assert math.isclose(r.worst_expected or 0, e[i]) and r.worst_actual == float(bad[i])
    assert "16 element(s) beyond tolerance" in r.reason


def test_ulp_distance_uses_case_dtype_spacing():
    e = np.array([1.0])
    assert ulp_distance(np.array([1.0 + 2 * 2.0**-23]), e, "float32")[0] == pytest.approx(2.0)


def test_a_narrower_output_dtype_is_named_in_the_reason():
    e = np.array([2.839804330792605])
    r = compare(e.astype(np.float32), e, np.abs(e), dtype="float64", n_terms=5)
    assert not r.passed and r.reason.endswith("; output is float32, case is float64")
    assert r.dtype_actual == "float32"

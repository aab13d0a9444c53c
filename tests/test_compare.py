"""The comparator: classify before measuring; tolerance from eps and reduction size."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

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


# --- item 6 of issue 11: regressions found by trying unusual inputs -------------------------


def test_a_nan_magnitude_never_fails_an_exact_value():
    e = np.array([1.0, 2.0])
    r = compare(e.astype(np.float32), e, np.array([np.nan, 1.0]), dtype="float32", n_terms=4)
    assert r.passed, r.reason
    assert r.reason == "magnitude non-finite at 1 element(s); bound uses |expected| there"
    assert r.max_abs_err == 0.0


def test_an_inf_magnitude_does_not_accept_any_value():
    e = np.array([1.0, 2.0])
    a = np.array([1.5, 2.0], dtype=np.float32)
    r = compare(a, e, np.array([np.inf, 2.0]), dtype="float32", n_terms=4)
    assert not r.passed
    assert r.reason.startswith("1 element(s) beyond tolerance; worst at [0]")
    assert r.reason.endswith("; magnitude non-finite at 1 element(s); bound uses |expected| there")


def test_singleton_axes_are_aligned_and_the_shape_still_fails():
    e = np.linspace(0.5, 2.0, 4)
    r = compare(e.reshape(4, 1).astype(np.float32), e, e, dtype="float32", n_terms=4)
    assert not r.passed
    assert r.reason == "shape [4, 1] != expected [4]; values agree after dropping size-1 axes"
    assert r.shape_actual == [4, 1] and r.shape_expected == [4]
    assert r.max_abs_err is not None and r.max_abs_err < 1e-7
    assert r.tolerance == tolerance("float32", 4)


def test_singleton_aligned_values_that_differ_are_counted():
    e = np.linspace(0.5, 2.0, 4)
    a = e.copy()
    a[1] *= 1.001
    a[3] *= 1.01
    r = compare(a.reshape(1, 4, 1), e, e, dtype="float64", n_terms=4)
    assert not r.passed
    assert r.reason.startswith(
        "shape [1, 4, 1] != expected [4]; and 2 element(s) beyond tolerance; worst at [3]"
    )
    assert r.worst_index == [3] and r.worst_actual == a[3]


def test_a_size_one_array_where_a_scalar_was_expected_is_compared():
    r = compare(
        np.zeros((1,), np.float32), np.float64(0.0), np.float64(0.0), dtype="float32", n_terms=2
    )
    assert not r.passed
    assert r.reason == "shape [1] != expected []; values agree after dropping size-1 axes"
    r = compare(np.float32(0.5), np.array([[0.25]]), np.array([[0.25]]), dtype="float32", n_terms=2)
    assert r.reason.startswith("shape [] != expected [1, 1]; and 1 element(s) beyond tolerance")


def test_shapes_that_differ_in_more_than_size_one_axes_are_not_compared():
    r = compare(np.zeros((2, 3)), np.zeros((3, 2)), np.zeros((3, 2)), dtype="float64", n_terms=2)
    assert not r.passed and r.max_abs_err is None
    assert r.reason == (
        "shape [2, 3] != expected [3, 2]; values not compared (the shapes differ in more than "
        "size-1 axes)"
    )


def test_a_zero_gradient_residue_far_below_the_output_scale_passes():
    # an ignored row's gradient is exactly 0 in the oracle; a kernel may leave 1e-28 there
    e = np.array([0.0, -0.75, 0.25, 0.5])
    a = np.array([1e-28, -0.75, 0.25, 0.5], dtype=np.float32)
    r = compare(a, e, np.array([0.0, 1.5, 0.25, 0.5]), dtype="float32", n_terms=4)
    assert r.passed, r.reason
    assert r.max_norm_err == pytest.approx(float(np.float32(1e-28)) / 1.5)
    assert r.norm_scale == 1.5


def test_a_residue_beyond_the_normwise_bound_still_fails():
    e = np.array([0.0, 1.0])
    a = np.array([1e-4, 1.0], dtype=np.float32)
    r = compare(a, e, np.array([0.0, 1.0]), dtype="float32", n_terms=2)
    assert not r.passed
    assert "worst at [0]: expected 0.0" in r.reason
    assert "> normwise bound" in r.reason


def test_a_resolvable_small_element_keeps_its_own_relative_bound():
    # 1e-4 is far above the output's noise floor (k*eps*1 ~ 1e-6): a 0.1 % error in it is a
    # defect even though it is below the normwise bound (a plain normwise rule would pass it)
    e = np.array([1e-4, 1.0])
    a = e * np.array([1.001, 1.0])
    r = compare(a, e, np.abs(e), dtype="float32", n_terms=2)
    assert r.max_norm_err is not None and r.max_norm_err < tolerance("float32", 2)
    assert not r.passed and "worst at [0]" in r.reason


def test_the_normwise_rule_never_applies_where_the_output_has_no_scale():
    # all magnitudes 0: the oracle says every element is exactly 0, so only tiny() is allowed
    r = compare(np.array([1e-30, 0.0]), np.zeros(2), np.zeros(2), dtype="float32", n_terms=2)
    assert not r.passed and r.max_norm_err == math.inf and r.norm_scale == 0.0
    assert compare(np.zeros(2, np.float32), np.zeros(2), np.zeros(2), dtype="float32", n_terms=2)


_E = np.array([1.0, 2.0])
_RAGGED = [[1.0], [2.0, 3.0]]


@pytest.mark.parametrize(
    ("actual", "expected", "magnitude", "dtype", "passed", "reason"),
    [
        pytest.param(np.zeros((0, 3), np.float32), np.zeros((0, 3)), np.zeros((0, 3)), "float32",
                     True, "no elements to compare", id="empty"),
        pytest.param(np.zeros((0, 1)), np.zeros((0,)), np.zeros((0,)), "float64", False,
                     "shape [0, 1] != expected [0]; values agree after dropping size-1 axes",
                     id="empty-with-size-1-axis"),
        pytest.param(np.float32(1.5), np.float64(1.5), np.float64(1.5), "float32", True, "",
                     id="0d-vs-0d"),
        pytest.param(np.array([1, 2]), _E, _E, "float32", False,
                     "output dtype int64 is not floating-point; values agree", id="int"),
        pytest.param(np.array([True, True]), np.ones(2), np.ones(2), "float32", False,
                     "output dtype bool is not floating-point; values agree", id="bool"),
        pytest.param(np.array([1.0, 2.0 + 1j]), _E, _E, "float64", False,
                     "output dtype complex128 is not real (max |imag| 1, real part compared); "
                     "values agree", id="complex"),
        pytest.param(np.array([1.0, 2.0], np.complex64), _E, _E, "float32", False,
                     "output dtype complex64 is not real (real part compared); values agree",
                     id="complex-real"),
        pytest.param(np.array([1.0, np.float32(2.0)], dtype=object), _E, _E, "float32", False,
                     "output dtype object is not a numeric array; values agree",
                     id="object-of-numbers"),
        pytest.param(np.array([1.0, None], dtype=object), _E, _E, "float32", False,
                     "output dtype object holds NoneType at [1]; values not compared",
                     id="object-with-none"),
        pytest.param(np.array(["1", "2"]), _E, _E, "float32", False,
                     "output dtype <U1 is not numeric; values not compared", id="strings"),
        pytest.param(np.array([1e-6, 1.0], np.float16), np.array([1e-6, 1.0]),
                     np.array([1e-6, 1.0]), "float16", True, "", id="float16-subnormal"),
        pytest.param(np.array([0.0, 1.0], np.float16), np.array([1e-6, 1.0]),
                     np.array([1e-6, 1.0]), "float16", True, "", id="float16-subnormal-flushed"),
        pytest.param(np.zeros(3, np.float32), np.zeros(3), np.zeros(3), "float32", True, "",
                     id="expected-all-zeros"),
        pytest.param(_E.astype(np.float32), _E, np.ones(3), "float32", True,
                     "magnitude shape [3] does not fit expected [2]; bound uses |expected|",
                     id="magnitude-shape"),
        pytest.param(_E.astype(np.float32), _E, np.float64(2.0), "float32", True, "",
                     id="magnitude-scalar-broadcasts"),
        pytest.param(_E.astype(np.float32), _E, None, "float32", True,
                     "magnitude missing; bound uses |expected|", id="magnitude-none"),
        pytest.param(_E.astype(np.float32), _E, np.array(["a", "b"]), "float32", True,
                     "magnitude unusable (ValueError); bound uses |expected|",
                     id="magnitude-strings"),
        pytest.param(_E, _E, _E, "float8_e4m3fn", False,
                     "case dtype 'float8_e4m3fn' has no row in the tolerance table "
                     "(float16, bfloat16, float32, float64)", id="unknown-dtype"),
        pytest.param(_E, np.array([1.0, None], dtype=object), _E, "float64", False,
                     "oracle output dtype object holds NoneType at [1]; values not compared",
                     id="oracle-not-numeric"),
    ],
)  # fmt: skip
def test_unusual_inputs_end_in_a_comparison_with_a_reason(
    actual, expected, magnitude, dtype, passed, reason
):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = compare(actual, expected, magnitude, dtype=dtype, n_terms=4)
    assert (r.passed, r.reason) == (passed, reason)


def test_a_ragged_output_is_not_an_array():
    r = compare(_RAGGED, _E, _E, dtype="float64", n_terms=2)
    assert not r.passed and r.reason.startswith("output is not an array (ValueError: ")


@pytest.mark.parametrize(("n_terms", "factor"), [(4, math.nan), (4, -1.0), (math.inf, 1.0)])
def test_an_ill_posed_tolerance_is_a_failure_not_an_exception(n_terms, factor):
    r = compare(_E, _E, _E, dtype="float64", n_terms=n_terms, factor=factor)
    assert not r.passed and r.reason.startswith("no finite tolerance from n_terms")


def test_an_expected_value_beyond_the_dtype_range_has_a_finite_ulp_figure():
    e = np.array([7e4])  # beyond float16's largest finite number (65504)
    r = compare(e.astype(np.float32), e, e, dtype="float16", n_terms=2)
    assert r.passed and r.max_ulp == 0.0


def test_the_comparator_never_raises(monkeypatch):
    import conformance.compare as module

    def boom(*args: object) -> None:
        raise RuntimeError("unforeseen")

    monkeypatch.setattr(module, "_classes", boom)
    r = compare(_E, _E, _E, dtype="float64", n_terms=2)
    assert not r.passed and r.reason == "comparator error: RuntimeError: unforeseen"
    assert r.shape_actual == [2] and r.dtype_actual == "float64"


# --- properties --------------------------------------------------------------------------------

_DTYPES = st.sampled_from(["float16", "float32", "float64"])
_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def _finite(dtype: str) -> st.SearchStrategy[float]:
    # within half the dtype's range, so rounding to it cannot overflow; subnormals included
    top = float(np.finfo(dtype).max) / 2
    return st.floats(-top, top, allow_nan=False, allow_infinity=False)


@st.composite
def _cases(draw: st.DrawFn, min_size: int = 0) -> tuple[np.ndarray, str]:
    dtype = draw(_DTYPES)
    shape = draw(_SHAPES.filter(lambda s: math.prod(s) >= min_size))
    return draw(hnp.arrays(np.float64, shape, elements=_finite(dtype))), dtype


@pytest.mark.filterwarnings("error")
@given(case=_cases(), n_terms=st.integers(1, 10**6))
def test_property_exact_and_rounded_values_pass(case, n_terms):
    e, dtype = case
    exact = compare(e, e, np.abs(e), dtype=dtype, n_terms=n_terms)
    assert exact.passed, exact.reason
    rounded = compare(e.astype(dtype), e, np.abs(e), dtype=dtype, n_terms=n_terms)
    assert rounded.passed, rounded.reason


@pytest.mark.filterwarnings("error")
@given(
    case=_cases(),
    magnitude=st.sampled_from([np.nan, np.inf, -np.inf, -1.0, 0.0]),
)
def test_property_exact_values_pass_whatever_the_magnitude(case, magnitude):
    e, dtype = case
    r = compare(e, e, np.full(e.shape, magnitude), dtype=dtype, n_terms=4)
    assert r.passed, r.reason


@pytest.mark.filterwarnings("error")
@given(
    case=_cases(min_size=1),
    where=st.integers(0, 10**6),
    sign=st.sampled_from([-1.0, 1.0]),
    n_terms=st.integers(1, 10**6),
)
def test_property_a_perturbation_beyond_the_bound_fails_and_within_it_passes(
    case, where, sign, n_terms
):
    e, dtype = case
    e = np.array(np.clip(e, -1e300, 1e300))  # e + delta must stay finite
    m = np.abs(e)
    rtol = tolerance(dtype, n_terms)
    i = np.unravel_index(where % e.size, e.shape)
    # no element's bound exceeds the normwise one plus tiny(); 3x that is beyond any of them
    beyond = e.copy()
    beyond[i] += sign * 3 * (rtol * m.max() + float(np.finfo(dtype).tiny))
    r = compare(beyond, e, m, dtype=dtype, n_terms=n_terms)
    assert not r.passed and r.worst_index == [int(j) for j in i], r.reason
    within = e.copy()
    within[i] += sign * 0.5 * (rtol * m[i] + float(np.finfo(dtype).tiny))
    r = compare(within, e, m, dtype=dtype, n_terms=n_terms)
    assert r.passed, r.reason


_FIGURES = ("max_abs_err", "max_rel_err", "max_ulp", "max_norm_err", "norm_scale", "tolerance")


@pytest.mark.filterwarnings("error")
@given(
    case=_cases(),
    data=st.data(),
    noise=st.sampled_from([0.0, 1e-17, 1e-9, 1e-3]),
)
def test_property_size_one_axes_change_only_the_shape_verdict(case, data, noise):
    e, dtype = case
    a = e * (1 + noise * data.draw(hnp.arrays(np.float64, e.shape, elements=st.floats(-1, 1))))
    m = np.abs(e)
    # insert one or more size-1 axes anywhere
    positions = data.draw(st.lists(st.integers(0, e.ndim), min_size=1, max_size=3))
    shape = list(e.shape)
    for p in sorted(positions, reverse=True):
        shape.insert(p, 1)
    plain = compare(a, e, m, dtype=dtype, n_terms=8)
    padded = compare(a.reshape(shape), e, m, dtype=dtype, n_terms=8)
    assert not padded.passed
    head = f"shape {shape} != expected {list(e.shape)}; "
    if plain.passed:
        assert padded.reason == head + "values agree after dropping size-1 axes"
    else:
        assert padded.reason == head + "and " + plain.reason
    for name in (*_FIGURES, "worst_index", "worst_expected", "worst_actual"):
        assert getattr(padded, name) == getattr(plain, name), name
    # the same axes on all three sides: the same verdict and figures
    both = compare(a.reshape(shape), e.reshape(shape), m.reshape(shape), dtype=dtype, n_terms=8)
    assert both.passed == plain.passed
    for name in _FIGURES:
        assert getattr(both, name) == getattr(plain, name), name


def test_an_overflow_to_inf_in_the_case_dtype_is_the_correctly_rounded_answer():
    e = np.array([86313.0, 1.0])  # a float16 sum beyond 65504 rounds to +Inf
    got = np.array([np.inf, 1.0], dtype=np.float16)
    r = compare(got, e, np.abs(e), dtype="float16", n_terms=4)
    assert r.passed, r.reason
    assert "beyond the float16 range" in r.reason
    wrong = np.array([-np.inf, 1.0], dtype=np.float16)
    assert not compare(wrong, e, np.abs(e), dtype="float16", n_terms=4).passed

"""The boundary checks' building blocks (the messages are tested in test_boundary.py)."""
import numpy as np
import pytest

from gdcore import _backend, _validation


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 7, 64, 1001])
def test_all_finite_matches_numpy_on_every_special_value(dtype, size):
    info = np.finfo(dtype)
    specials = [np.inf, -np.inf, np.nan, -np.nan, info.max, -info.max, info.tiny,
                info.smallest_subnormal, 0.0, -0.0, 1.0]
    checks = [_validation._all_finite_numpy]
    if _backend._core is not None:
        checks.append(_backend._core.all_finite)
    for value in specials:
        for position in {0, size // 2, size - 1}:
            x = np.ones(size, dtype)
            x[position] = value
            for check in checks:
                assert check(x) == bool(np.isfinite(x).all()), (check, value, position)
    if _backend._core is not None:
        assert _backend._core.all_finite(np.ones((3, 4), dtype))
        with pytest.raises(TypeError, match="C-contiguous"):
            _backend._core.all_finite(np.ones((4, 4), dtype)[:, ::2])
        with pytest.raises(TypeError, match="float32 or float64"):
            _backend._core.all_finite(np.ones(3, np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("largest", [3e38, 1e308, 1.0, 0.75, 1e-45, 5e-324, 7.0])
def test_sample_weights_are_scaled_by_a_power_of_two(dtype, largest):
    # Ratios stay exact and the largest weight lands in [0.5, 1): both engines then sum
    # weights without overflow and divide by a sum far from zero.
    w = np.array([largest, largest / 2, largest / 4, 0.0])
    out = _validation.sample_weights(w, 4, np.dtype(dtype))
    assert out.dtype == dtype and out.flags.c_contiguous
    assert 0.5 <= out.max() < 1.0
    if w[2] * 4 == w[0]:  # (not for 5e-324, whose quarter is 0)
        np.testing.assert_array_equal(out, out[0] * np.array([1.0, 0.5, 0.25, 0.0], dtype))


def test_sample_weights_in_range_are_not_copied():
    w = np.array([0.5, 0.75, 0.0])
    assert _validation.sample_weights(w, 3, np.dtype(np.float64)) is w

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

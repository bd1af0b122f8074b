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


# --- the declarative constraints' short paths agree with the full checks ----------------------

def _outcome(check):
    """``("ok", repr(value))`` or ``(exception type, message)`` of ``check()``."""
    try:
        return "ok", repr(check())
    except (TypeError, ValueError) as exc:
        return type(exc).__name__, str(exc)


_SPECIAL_REALS = [0.0, -0.0, 0.5, 1.0, -1.0, 2.0, 1e-300, -1e-300, 1.0 - 1e-16, 5e300,
                  float("inf"), float("-inf"), float("nan"), 1, 0, True, np.float32(0.5),
                  np.float64(-0.0), "0.5", None]


@pytest.mark.parametrize("constraint", [
    _validation.FRACTION, _validation.POSITIVE, _validation.NON_NEGATIVE, _validation.Real(),
    _validation.Real(-1.0, 1.0, closed="neither"), _validation.Real(0.0, 1.0, closed="right"),
    _validation.Real(0.0, 1.0), _validation.Real(0.0, 1.0, finite=False)])
def test_real_constraint_agrees_with_real(constraint):
    for value in _SPECIAL_REALS:
        fast = _outcome(lambda: constraint(value, "x"))
        full = _outcome(lambda: _validation.real(
            value, "x", low=constraint.low, high=constraint.high,
            low_open=constraint.closed in ("right", "neither"),
            high_open=constraint.closed in ("left", "neither"), finite=constraint.finite))
        assert fast == full, value
    # -0.0 passes as itself (the sign is kept)
    assert str(_validation.NON_NEGATIVE(-0.0, "x")) == "-0.0"


def test_integer_options_and_flag_constraints_agree_with_their_functions():
    values = [0, 1, 5, -3, True, False, 1.0, np.int64(4), np.bool_(True), "raise", "x", None]
    integer = _validation.Integer(low=1, high=5)
    options = _validation.Options(("raise", "stop"))
    for value in values:
        assert _outcome(lambda: integer(value, "n")) == \
            _outcome(lambda: _validation.integer(value, "n", 1, 5))
        assert _outcome(lambda: options(value, "o")) == \
            _outcome(lambda: _validation.option(value, "o", ("raise", "stop")))
    assert _validation.FLAG(np.bool_(True), "f") is True
    with pytest.raises(TypeError, match="f must be True or False, got 1"):
        _validation.FLAG(1, "f")


def test_checked_params_remembers_only_what_passed_unchanged():
    table = {"n": _validation.Integer(low=1), "rate": _validation.FRACTION,
             "flag": _validation.FLAG, "how": _validation.Options(("a", "b"))}
    checks = _validation.CheckedParams(table)

    def expected(*values):
        return tuple(_validation.check_params(table, dict(zip(table, values))).values())

    cases = [(1, 0.5, True, "a"), (1, 0.5, True, "a"), (1, -0.0, False, "b"),
             (1, 0.0, False, "b"), (2, 0, True, "a"), (2, 0, True, "a"),
             (np.int64(3), np.float64(0.25), np.bool_(False), "a")]
    for values in cases:
        got = checks(*values)
        assert got == expected(*values)
        assert [type(g) for g in got] == [type(e) for e in expected(*values)]
    assert str(checks(1, -0.0, False, "b")[1]) == "-0.0"  # remembered as 0.0: sign kept
    # Converted values (int -> float, NumPy scalars) are checked every time, not remembered.
    assert all(int in key[1] or bool in key[1] for key in checks._passed)
    assert not any(np.int64 in key[1] or np.float64 in key[1] for key in checks._passed)
    assert (2, 0, True, "a") not in {key[0] for key in checks._passed}
    # Equal values of other types are told apart: True == 1, yet True is no count.
    checks(1, 0.5, True, "a")
    with pytest.raises(TypeError, match="n must be an integer, got bool True"):
        checks(True, 0.5, True, "a")
    with pytest.raises(ValueError, match=r"rate must be < 1.0, got 1.0"):
        checks(1, 1.0, True, "a")
    with pytest.raises(ValueError, match="how must be one of"):
        checks(1, 0.5, True, ["a"])  # unhashable: checked (and refused), not looked up


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_targets_range_edges(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    for ok in ([0.0, 1.0], [-0.0, 1.0], [tiny, 1.0 - np.finfo(dtype).epsneg]):
        y = np.array(ok, dtype=dtype)
        out = _validation.targets(y, "bce", 1, 2, np.dtype(dtype))
        np.testing.assert_array_equal(out[:, 0], y)
    for bad in ([0.0, 1.0 + np.finfo(dtype).eps], [-tiny, 0.5], [2.0, -1.0]):
        with pytest.raises(ValueError, match=r"y for bce must hold targets in \[0, 1\]"):
            _validation.targets(np.array(bad, dtype=dtype), "bce", 1, 2, np.dtype(dtype))
    # (a single sample, and float64 targets for a float32 network: cast first, then checked)
    assert _validation.targets([1.0], "bce", 1, 1, np.dtype(dtype)).shape == (1, 1)


def test_checked_params_hashes_no_user_object():
    class Odd:
        def __hash__(self):
            raise RuntimeError("hashed")

    checks = _validation.CheckedParams({"rate": _validation.FRACTION})
    with pytest.raises(TypeError, match="rate must be a real number, got Odd"):
        checks(Odd())


def test_within_reads_the_extremes():
    assert _validation._within(np.zeros((0, 1), np.float32), 0.0, 1.0)
    assert _validation._within(np.array([[0.25], [1.0], [0.0]]), 0.0, 1.0)
    assert not _validation._within(np.array([[0.25], [1.5], [0.0]]), 0.0, 1.0)
    assert not _validation._within(np.array([[0.25], [0.5], [-0.5]]), 0.0, 1.0)

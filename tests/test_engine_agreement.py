"""The same answer from both engines.

Sample weights and optimizer hyper-parameters are checked and normalised in the shared Python
layer, before either engine sees them: huge or tiny sample weights give the loss, gradients and
training of the same weights scaled to a moderate range, and a hyper-parameter assigned after
construction is refused by the constructor's own rule, with its public name.
"""
import math
import pickle

import numpy as np
import pytest

import gdcore as gd
from gdcore import _backend
from gdcore.optimizers import _BY_NAME, HYPER_RULES

from helpers import tolerance

#: rtol of a result computed with huge weights against the same weights scaled down.
RTOL = {"float32": 1e-5, "float64": 1e-12}
#: A huge finite weight of each dtype: its sum over a few samples overflows even in float64.
HUGE = {"float32": 3e38, "float64": 1e308}
#: The smallest positive (denormal) weight of each dtype.
TINY = {"float32": float(np.finfo(np.float32).smallest_subnormal),
        "float64": float(np.finfo(np.float64).smallest_subnormal)}


def _backends():
    """The backend names a cross-engine test compares (the compiled one only when built)."""
    return ["numpy", "cpp"] if _backend._core_engines_available() else ["numpy"]


def _on(backend_name, make):
    """``make()`` with ``backend_name`` selected, restoring the previous backend after."""
    with gd.use_backend(backend_name):
        return make()


def _data(n=24):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    pattern = rng.uniform(0.1, 1.0, size=n)  # the relative weights, all <= 1
    return X, y, pattern


def _net(dtype):
    return gd.Network.from_sizes([3, 5, 2], activation="tanh", output_activation="softmax",
                                 loss="cross_entropy", dtype=dtype, seed=0)


def _weights(pattern, scale, dtype):
    """``pattern * scale`` in ``dtype`` (rounded once, as a user's array would be)."""
    return (pattern * scale).astype(dtype)


def _results(dtype, w, X, y):
    """Loss, gradients and the weights after a 3-epoch mini-batch fit, for weights ``w``."""
    net = _net(dtype)
    loss = net.loss(X, y, sample_weight=w)
    grads = [g for pair in net.gradients(X, y, sample_weight=w) for g in pair]
    history = net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=3, batch_size=8, seed=0,
                      sample_weight=w)
    return loss, grads, [p.copy() for p in net.parameters()], history.loss


def _assert_close_arrays(actual, expected, rtol):
    for a, e in zip(actual, expected):
        scale = float(np.max(np.abs(e))) or 1.0
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale)


# --- sample weights -------------------------------------------------------------------------------

@pytest.mark.parametrize("extreme", ["huge", "tiny"])
def test_extreme_weights_give_the_scaled_down_result(backend, dtype, extreme):
    X, y, pattern = _data()
    scale = HUGE[dtype] if extreme == "huge" else TINY[dtype] * 2 ** 20
    if extreme == "tiny":
        pattern = np.round(pattern * 8) / 8  # few significant bits: exact as denormals too
    loss, grads, params, epoch_losses = _results(dtype, _weights(pattern, scale, dtype), X, y)
    ref_loss, ref_grads, ref_params, ref_epoch_losses = _results(
        dtype, _weights(pattern, 1.0, dtype), X, y)
    assert math.isfinite(loss)
    assert loss == pytest.approx(ref_loss, rel=RTOL[dtype])
    _assert_close_arrays(grads, ref_grads, RTOL[dtype])
    _assert_close_arrays(params, ref_params, tolerance(dtype))
    np.testing.assert_allclose(epoch_losses, ref_epoch_losses, rtol=tolerance(dtype))


def test_the_smallest_denormal_weights_give_the_unweighted_loss(backend, dtype):
    X, y, _ = _data()
    net = _net(dtype)
    w = np.full(len(y), TINY[dtype], dtype=dtype)
    assert net.loss(X, y, sample_weight=w) == pytest.approx(net.loss(X, y), rel=RTOL[dtype])
    _assert_close_arrays([g for pair in net.gradients(X, y, sample_weight=w) for g in pair],
                         [g for pair in net.gradients(X, y) for g in pair], RTOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_huge_weights_agree_between_engines(dtype):
    X, y, pattern = _data()
    w = _weights(pattern, HUGE[dtype], dtype)
    results = {name: _on(name, lambda: _results(dtype, w, X, y)) for name in _backends()}
    ref_loss, ref_grads, ref_params, ref_epoch_losses = results["numpy"]
    for name, (loss, grads, params, epoch_losses) in results.items():
        assert math.isfinite(loss), name
        assert loss == pytest.approx(ref_loss, rel=RTOL[dtype]), name
        _assert_close_arrays(grads, ref_grads, RTOL[dtype])
        _assert_close_arrays(params, ref_params, tolerance(dtype))
        np.testing.assert_allclose(epoch_losses, ref_epoch_losses, rtol=tolerance(dtype))


def test_the_issue_example_agrees(backend):
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    net = gd.Network.from_sizes([3, 4, 2], activation="relu", output_activation="softmax",
                                loss="cross_entropy", dtype="float32", seed=0)
    w = np.full(20, 3e38, np.float32)
    assert net.loss(X, y, sample_weight=w) == pytest.approx(net.loss(X, y), rel=1e-5)


def test_float64_weights_beyond_float32_range_are_fine_for_a_float32_network(backend):
    X, y, pattern = _data()
    net = _net("float32")
    loss = net.loss(X, y, sample_weight=pattern * 1e300)  # float64, scaled before the cast
    assert loss == pytest.approx(net.loss(X, y, sample_weight=pattern), rel=RTOL["float32"])


@pytest.mark.parametrize("w", [np.zeros(24), np.r_[np.zeros(23), -0.0]], ids=["zeros", "-0"])
def test_zero_sum_weights_still_raise(backend, dtype, w):
    X, y, _ = _data()
    net = _net(dtype)
    for call in (lambda: net.loss(X, y, sample_weight=w),
                 lambda: net.gradients(X, y, sample_weight=w),
                 lambda: net.fit(X, y, epochs=1, sample_weight=w)):
        with pytest.raises(ValueError, match="sample_weight must have a positive sum"):
            call()


# --- optimizer hyper-parameters assigned after construction ---------------------------------------

BAD_ASSIGNMENTS = [
    # (optimizer factory, attribute, bad value, error type)
    (lambda: gd.SGD(lr=0.1, momentum=0.5), "momentum", math.nan, ValueError),
    (lambda: gd.SGD(lr=0.1, momentum=0.5), "momentum", 1.0, ValueError),
    (lambda: gd.SGD(lr=0.1, momentum=0.5), "momentum", -0.1, ValueError),
    (lambda: gd.SGD(lr=0.1, momentum=0.5), "momentum", "0.9", TypeError),
    (lambda: gd.SGD(lr=0.1, momentum=0.5), "momentum", True, TypeError),
    (lambda: gd.SGD(lr=0.1, momentum=0.5, nesterov=True), "nesterov", "yes", TypeError),
    (lambda: gd.SGD(lr=0.1, momentum=0.5), "nesterov", 1, TypeError),
    (lambda: gd.SGD(lr=0.1), "weight_decay", math.inf, ValueError),
    (lambda: gd.SGD(lr=0.1), "weight_decay", -1.0, ValueError),
    (lambda: gd.SGD(lr=0.1), "lr", -3, ValueError),
    (lambda: gd.SGD(lr=0.1), "lr", math.nan, ValueError),
    (lambda: gd.SGD(lr=0.1), "lr", None, TypeError),
    (lambda: gd.SGD(lr=0.1), "lr", "fast", ValueError),
    (lambda: gd.Adam(lr=0.01), "betas", (1.5, 0.9), ValueError),
    (lambda: gd.Adam(lr=0.01), "betas", (0.9, math.nan), ValueError),
    (lambda: gd.Adam(lr=0.01), "betas", 0.9, TypeError),
    (lambda: gd.Adam(lr=0.01), "betas", (0.9,), TypeError),
    (lambda: gd.Adam(lr=0.01), "eps", -1.0, ValueError),
    (lambda: gd.Adam(lr=0.01), "lr", 0.0, ValueError),
    (lambda: gd.AdamW(lr=0.01), "weight_decay", math.inf, ValueError),
    (lambda: gd.AdamW(lr=0.01), "eps", math.nan, ValueError),
    (lambda: gd.RMSprop(lr=0.01), "alpha", 2.0, ValueError),
    (lambda: gd.RMSprop(lr=0.01), "alpha", math.nan, ValueError),
    (lambda: gd.RMSprop(lr=0.01), "eps", -1.0, ValueError),
    (lambda: gd.RMSprop(lr=0.01, momentum=0.5), "momentum", 1.0, ValueError),
]


def _case_id(case):
    make, name, value, _ = case
    return f"{type(make()).__name__}.{name}={value!r}"


def _fit_works(opt, dtype="float64"):
    X, y, _ = _data()
    batch_size = None if opt.full_batch_solver else 8  # (LBFGS takes full batches only)
    history = _net(dtype).fit(X, y, optimizer=opt, epochs=2, batch_size=batch_size, seed=0)
    assert all(math.isfinite(loss) for loss in history.loss)


@pytest.mark.parametrize("case", BAD_ASSIGNMENTS, ids=_case_id)
def test_bad_assignment_is_refused_with_the_public_name(backend, case):
    make, name, value, error = case
    opt = make()
    before = getattr(opt, name)
    with pytest.raises(error) as info:
        setattr(opt, name, value)
    message = str(info.value)
    assert name in message and "hyper[" not in message, message
    assert getattr(opt, name) == before  # unchanged
    _fit_works(opt)


@pytest.mark.parametrize("case", BAD_ASSIGNMENTS, ids=_case_id)
def test_assignment_and_constructor_share_one_rule(case):
    make, name, value, error = case
    with pytest.raises(error) as assigned:
        setattr(make(), name, value)
    with pytest.raises(error) as constructed:
        type(make())(**{name: value})
    assert str(assigned.value) == str(constructed.value)


def _nan_values(name):
    """Each way to put NaN into hyper-parameter ``name``."""
    if name == "betas":
        return [(math.nan, 0.999), (0.9, math.nan)]
    return [math.nan]


@pytest.mark.parametrize("cls", list(_BY_NAME.values()), ids=lambda cls: cls.__name__)
def test_every_optimizer_refuses_nan_in_each_hyper_parameter(backend, cls):
    assert cls._HYPER and set(cls._HYPER) <= set(HYPER_RULES)  # every one has a rule
    for name in ("lr", *cls._HYPER):
        for value in _nan_values(name):
            opt = cls(lr=0.01)
            before = getattr(opt, name)
            with pytest.raises((ValueError, TypeError), match=name):
                setattr(opt, name, value)
            assert getattr(opt, name) == before
            _fit_works(opt)


def test_the_issue_examples_are_refused_identically_on_both_engines():
    messages = {}
    for name in _backends():
        def attempt():
            got = []
            for make, attr, value in [(lambda: gd.SGD(lr=0.1, momentum=0.5), "momentum", math.nan),
                                      (gd.Adam, "betas", (1.5, 0.9))]:
                with pytest.raises(ValueError) as info:
                    setattr(make(), attr, value)
                got.append(str(info.value))
            return got
        messages[name] = _on(name, attempt)
    assert messages["numpy"] == ["momentum must be finite, got nan",
                                 "betas[0] must be < 1.0, got 1.5"]
    assert all(got == messages["numpy"] for got in messages.values())


def test_good_assignments_are_stored_as_the_constructor_would(backend):
    opt = gd.Adam(lr=0.01)
    opt.betas = [0.8, 0.99]
    opt.eps = 0
    assert opt.betas == (0.8, 0.99) and opt.eps == 0.0 and type(opt.eps) is float
    sgd = gd.SGD(lr=0.1, momentum=0.5)
    sgd.nesterov = np.bool_(True)
    assert sgd.nesterov is True
    assert repr(sgd) == "SGD(lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.0)"
    _fit_works(opt)
    _fit_works(sgd)


def test_lr_assignment_follows_the_constructor(backend):
    opt = gd.SGD(lr=0.1)
    opt.lr = 0.05
    assert opt.lr == 0.05 and not opt.lr_is_auto and opt.lr_found is None
    opt.lr = gd.schedules.Step(0.2, step_size=1, gamma=0.5)
    assert opt.lr == 0.2
    opt.lr = "auto"
    assert opt.lr_is_auto
    X, y, _ = _data()
    history = _net("float64").fit(X, y, optimizer=opt, epochs=2, batch_size=8, seed=0)
    assert not opt.lr_is_auto and history.lr_found is not None and opt.lr == opt.lr_found
    opt.resolve_lr(0.02)
    assert opt.lr == 0.02 and opt.lr_found == 0.02


# --- rules between hyper-parameters: checked on use, so any order of assignment works -------------

def test_nesterov_needs_momentum_when_used_not_on_each_assignment(backend):
    X, y, _ = _data()
    net = _net("float64")
    before = [p.copy() for p in net.parameters()]
    opt = gd.SGD(lr=0.1, momentum=0.9, nesterov=True)
    opt.momentum = 0.0  # allowed: nesterov may be switched off next
    with pytest.raises(ValueError, match=r"nesterov=True needs momentum > 0"):
        net.fit(X, y, optimizer=opt, epochs=2)
    with pytest.raises(ValueError, match=r"nesterov=True needs momentum > 0"):
        opt.state_dict()  # load_state_dict could not take it
    for p, q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)
    assert opt._bound() is None and opt.steps_done == 0
    opt.nesterov = False
    _fit_works(opt)
    # The other order: nesterov first, then momentum.
    other = gd.SGD(lr=0.1)
    other.nesterov = True
    other.momentum = 0.9
    _fit_works(other)
    with pytest.raises(ValueError, match=r"nesterov=True needs momentum > 0"):
        gd.SGD(nesterov=True)  # the constructor checks at once


def test_hyper_vector_follows_every_change_of_the_hyper_parameters():
    # hyper() keeps the vector it built until a hyper-parameter changes: every way of changing
    # one must show in the next vector, and a broken rule between them must raise every time.
    def fresh(opt, lr):  # the vector built from the attributes, as nothing were kept
        values = dict.fromkeys(gd.reference.codes.HYPER, 0.0)
        values.update(lr=lr, weight_decay=opt.weight_decay, **opt._hyper_values())
        return np.array(list(values.values()))

    opt = gd.SGD(lr=0.1, momentum=0.5)
    first = opt.hyper(0.1)
    first[:] = -1.0  # the caller's copy: writing it changes nothing kept
    np.testing.assert_array_equal(opt.hyper(0.25), fresh(opt, 0.25))
    opt.momentum, opt.weight_decay = 0.9, 1e-3
    np.testing.assert_array_equal(opt.hyper(0.1), fresh(opt, 0.1))
    opt.nesterov = True
    np.testing.assert_array_equal(opt.hyper(0.1), fresh(opt, 0.1))
    opt.momentum = 0.0
    for _ in range(2):
        with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
            opt.hyper(0.1)
    opt.nesterov = False
    np.testing.assert_array_equal(opt.hyper(0.1), fresh(opt, 0.1))
    other = gd.SGD(lr=0.1, momentum=0.3, nesterov=True, weight_decay=0.2)
    opt.load_state_dict(other.state_dict())
    np.testing.assert_array_equal(opt.hyper(0.1), fresh(other, 0.1))
    copy = pickle.loads(pickle.dumps(opt))
    copy.momentum = 0.7
    np.testing.assert_array_equal(copy.hyper(0.1), fresh(copy, 0.1))
    np.testing.assert_array_equal(opt.hyper(0.1), fresh(other, 0.1))
    rprop = gd.Rprop(lr=0.01)  # weight_decay is no hyper-parameter of Rprop, yet in the vector
    rprop.hyper(0.01)
    rprop.weight_decay, rprop.etas = 0.5, (0.4, 1.3)
    np.testing.assert_array_equal(rprop.hyper(0.01), fresh(rprop, 0.01))


@pytest.mark.parametrize("cls", [gd.SGD, gd.RMSprop], ids=lambda cls: cls.__name__)
def test_momentum_may_cross_zero_between_fits_on_both_engines(cls):
    X, y, _ = _data()

    def run():
        net = _net("float64")
        opt = cls(lr=0.01)
        losses = list(net.fit(X, y, optimizer=opt, epochs=2, shuffle=False).loss)
        opt.momentum = 0.9  # the momentum buffers are added, zero, at the next fit
        losses += net.fit(X, y, optimizer=opt, epochs=2, shuffle=False).loss
        sd = opt.state_dict()
        opt.momentum = 0.0  # and dropped again
        losses += net.fit(X, y, optimizer=opt, epochs=2, shuffle=False).loss
        return losses, [p.copy() for p in net.parameters()], sd

    results = {name: _on(name, run) for name in _backends()}
    ref_losses, ref_params, sd = results["numpy"]
    assert len(sd["state"]) == 4 * (2 if cls is gd.RMSprop else 1)
    for losses, params, _ in results.values():
        np.testing.assert_allclose(losses, ref_losses, rtol=1e-9)
        _assert_close_arrays(params, ref_params, 1e-9)


def test_assigned_hyper_parameters_survive_pickle_and_state_dict():
    opt = gd.RMSprop(lr=0.01)
    opt.alpha, opt.eps, opt.momentum = 0.9, 1e-6, 0.5
    loaded = gd.RMSprop()
    loaded.load_state_dict(opt.state_dict())
    for copy in (pickle.loads(pickle.dumps(opt)), loaded):
        assert copy._hyper_args() == {"alpha": 0.9, "eps": 1e-6, "momentum": 0.5,
                                      "weight_decay": 0.0}
        with pytest.raises(ValueError, match="alpha"):
            copy.alpha = 1.5  # the copies check assignments too
        assert copy.alpha == 0.9

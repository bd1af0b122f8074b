"""Network.train_epoch: one bare epoch, the engine call fit makes per epoch."""
import numpy as np
import pytest

import gdcore as gd


def problem(loss="cross_entropy", n=50, dtype="float32"):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, 4))
    if loss == "cross_entropy":
        y = rng.integers(0, 3, n)
        sizes, out = [4, 8, 3], "softmax"
    else:
        y = rng.standard_normal(n)
        sizes, out = [4, 8, 1], "identity"
    net = gd.Network.from_sizes(sizes, activation="tanh", output_activation=out, loss=loss,
                                dtype=dtype, seed=0)
    return net, X, y


def same_state(a, b):
    """Parameters, optimizer state and counters equal (bit for bit)."""
    net_a, opt_a = a
    net_b, opt_b = b
    assert all(np.array_equal(p, q) for p, q in zip(net_a.parameters(), net_b.parameters()))
    assert len(opt_a.state) == len(opt_b.state)
    assert all(np.array_equal(s, t) for s, t in zip(opt_a.state, opt_b.state))
    assert opt_a.steps_done == opt_b.steps_done and opt_a.epochs_done == opt_b.epochs_done


@pytest.mark.parametrize("batch_size", [None, 7, 16])
@pytest.mark.parametrize("make_opt", [lambda: gd.SGD(lr=0.1, momentum=0.9),
                                      lambda: gd.Adam(lr=0.01),
                                      lambda: gd.RMSprop(lr=0.01, momentum=0.5)],
                         ids=["sgd", "adam", "rmsprop"])
def test_equals_one_epoch_of_fit(backend, dtype, batch_size, make_opt):
    net, X, y = problem(dtype=dtype)
    bare = net.copy()
    opt_fit, opt_bare = make_opt(), make_opt()
    for _ in range(3):  # and consecutive calls equal consecutive epochs
        history = net.fit(X, y, optimizer=opt_fit, epochs=1, batch_size=batch_size,
                          shuffle=False)
        loss = bare.train_epoch(X, y, opt_bare, batch_size=batch_size)
        assert isinstance(loss, float)
        assert loss == history.loss[0]
        same_state((net, opt_fit), (bare, opt_bare))


def test_sample_weight_and_shuffle_as_fit(backend):
    net, X, y = problem(loss="mse")
    bare = net.copy()
    w = np.linspace(0.5, 2.0, len(X))
    opt_fit, opt_bare = gd.SGD(lr=0.05), gd.SGD(lr=0.05)
    history = net.fit(X, y, optimizer=opt_fit, epochs=1, batch_size=8, shuffle=True, seed=5,
                      sample_weight=w)
    loss = bare.train_epoch(X, y, opt_bare, batch_size=8, shuffle=True, seed=5, sample_weight=w)
    assert loss == history.loss[0]
    same_state((net, opt_fit), (bare, opt_bare))


def test_fit_continues_after_train_epoch(backend):
    """The optimizer keeps its state as in fit: train_epoch then fit equals fit(epochs=2)."""
    net, X, y = problem()
    other = net.copy()
    sched = lambda: gd.SGD(lr=gd.schedules.Step(0.1, step_size=1, gamma=0.5), momentum=0.9)
    opt_a, opt_b = sched(), sched()
    both = net.fit(X, y, optimizer=opt_a, epochs=2, batch_size=10, shuffle=False)
    first = other.train_epoch(X, y, opt_b, batch_size=10)
    assert opt_b.lr == pytest.approx(0.05)  # the schedule moved on to epoch 1
    second = other.fit(X, y, optimizer=opt_b, epochs=1, batch_size=10, shuffle=False)
    assert [first, second.loss[0]] == both.loss
    same_state((net, opt_a), (other, opt_b))


def errors_of(call):
    try:
        call()
    except (TypeError, ValueError) as e:
        return type(e), str(e)
    return None


BAD = {
    "X-shape": dict(X=np.zeros((50, 5))),
    "X-nan": dict(X=np.full((50, 4), np.nan)),
    "y-length": dict(y=np.zeros(49, dtype=np.int64)),
    "y-label": dict(y=np.full(50, 7)),
    "batch_size-zero": dict(batch_size=0),
    "batch_size-float": dict(batch_size=2.5),
    "shuffle-str": dict(shuffle="yes"),
    "seed-str": dict(seed="seed"),
    "sample_weight-negative": dict(sample_weight=-np.ones(50)),
    "sample_weight-length": dict(sample_weight=np.ones(3)),
    "optimizer-name": dict(optimizer="nope"),
    "optimizer-type": dict(optimizer=3.0),
    "nesterov-without-momentum": dict(optimizer="nesterov"),
}


def bad_arguments(name, X, y, opt):
    args = dict(X=X, y=y, optimizer=opt, batch_size=10, shuffle=False, seed=None,
                sample_weight=None)
    args.update(BAD[name])
    if isinstance(args["optimizer"], str) and args["optimizer"] == "nesterov":
        args["optimizer"] = gd.SGD(lr=0.1)
        args["optimizer"].nesterov = True  # refused when the optimizer is next used
    return args


@pytest.mark.parametrize("name", BAD)
def test_refuses_as_fit_and_changes_nothing(backend, name):
    net, X, y = problem()
    opt = gd.SGD(lr=0.1, momentum=0.9)
    net.fit(X, y, optimizer=opt, epochs=1, batch_size=10, shuffle=False)  # bound, with state
    before_net, before_opt = net.copy(), opt.state_dict()

    fit_args = bad_arguments(name, X, y, opt)
    fit_error = errors_of(lambda: net.fit(fit_args.pop("X"), fit_args.pop("y"), epochs=1,
                                          **fit_args))
    assert fit_error is not None
    bare_args = bad_arguments(name, X, y, opt)
    bare_error = errors_of(lambda: net.train_epoch(**bare_args))
    assert bare_error == fit_error

    assert all(np.array_equal(p, q) for p, q in zip(net.parameters(), before_net.parameters()))
    after = opt.state_dict()
    assert after["step"] == before_opt["step"] and after["epochs_done"] == 1
    # the optimizer still continues exactly: one more epoch equals fit's second epoch
    ref_net, ref_X, ref_y = problem()
    ref_opt = gd.SGD(lr=0.1, momentum=0.9)
    ref = ref_net.fit(ref_X, ref_y, optimizer=ref_opt, epochs=2, batch_size=10, shuffle=False)
    assert net.train_epoch(X, y, opt, batch_size=10) == ref.loss[1]
    same_state((net, opt), (ref_net, ref_opt))


def test_optimizer_of_another_network_is_refused_as_fit(backend):
    net, X, y = problem()
    other, _, _ = problem()
    opt = gd.SGD(lr=0.1, momentum=0.9)
    other.train_epoch(X, y, opt, batch_size=10)
    before = [p.copy() for p in net.parameters()]
    state = [s.copy() for s in opt.state]
    with pytest.raises(ValueError) as from_fit:
        net.fit(X, y, optimizer=opt, epochs=1)
    with pytest.raises(ValueError) as from_bare:
        net.train_epoch(X, y, opt)
    assert str(from_bare.value) == str(from_fit.value)
    assert "state of another network" in str(from_bare.value)
    assert all(np.array_equal(p, q) for p, q in zip(net.parameters(), before))
    assert all(np.array_equal(s, t) for s, t in zip(opt.state, state))
    assert opt.steps_done == 5 and opt.epochs_done == 1


def test_refused_fresh_optimizer_stays_unbound(backend):
    """A call refused after binding (the schedule gives no usable rate) leaves a fresh
    optimizer unbound, as fit does: another network may still use it."""
    net, X, y = problem()

    class Broken(gd.schedules.Constant):
        def _lr(self, epoch):
            return float("nan")

    opt = gd.SGD(lr=Broken(0.1))
    with pytest.raises(ValueError, match="learning rate for epoch 0 is nan"):
        net.train_epoch(X, y, opt)
    assert opt.steps_done == 0 and opt.state == []
    opt.lr = 0.1
    other, _, _ = problem()
    other.train_epoch(X, y, opt)  # not refused: it holds no network's state
    assert opt.steps_done == 1


def test_no_divergence_check(backend):
    """No history and no divergence check: a blown-up epoch is kept and returns its loss
    (fit would undo it and raise DivergenceError)."""
    net, X, y = problem(loss="mse")
    with pytest.raises(gd.DivergenceError):
        net.copy().fit(X, y, optimizer=gd.SGD(lr=1e3), epochs=1, batch_size=5, shuffle=False)
    opt = gd.SGD(lr=1e3)
    with np.errstate(all="ignore"):
        losses = [net.train_epoch(X, y, opt, batch_size=5) for _ in range(2)]
    assert not np.isfinite(losses).any()
    assert opt.epochs_done == 2 and opt.steps_done >= 2  # (an engine may stop at a blow-up)

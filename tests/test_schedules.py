"""gdcore.schedules: values by hand, against torch.optim.lr_scheduler, state, bad arguments."""
import json
import math

import numpy as np
import pytest

import gdcore as gd
from gdcore import schedules as S

EPOCHS = 30


# -- values by hand ----------------------------------------------------------------------------

def test_constant():
    s = S.Constant(0.3)
    assert [s(e) for e in range(4)] == [0.3, 0.3, 0.3, 0.3]
    assert s.initial_lr == 0.3


def test_step():
    # 0.1 for epochs 0-2, 0.05 for 3-5, 0.025 for 6-8
    s = S.Step(0.1, step_size=3, gamma=0.5)
    expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125]
    assert [s(e) for e in range(10)] == pytest.approx(expected, rel=1e-15)
    assert S.Step(1.0, step_size=1)(2) == pytest.approx(0.01)     # default gamma 0.1


def test_exponential():
    s = S.Exponential(0.2, gamma=0.9)
    # 0.2, 0.18, 0.162, 0.1458
    assert [s(e) for e in range(4)] == pytest.approx([0.2, 0.18, 0.162, 0.1458], rel=1e-14)


def test_exponential_growth_overflows_to_inf_not_an_exception():
    assert S.Exponential(1.0, gamma=2.0)(5000) == math.inf


def test_inverse_time():
    s = S.InverseTime(0.1, decay_rate=0.5)
    # 0.1 / (1 + 0.5 e): 0.1, 0.1/1.5, 0.1/2, 0.1/2.5
    assert [s(e) for e in range(4)] == pytest.approx([0.1, 0.1 / 1.5, 0.05, 0.04], rel=1e-15)
    s = S.InverseTime(1.0, decay_rate=1.0, decay_steps=10)
    # 1 / (1 + e / 10): e = 10 -> 0.5, e = 30 -> 0.25
    assert s(10) == pytest.approx(0.5) and s(30) == pytest.approx(0.25)
    assert S.InverseTime(0.1, decay_rate=0.0)(100) == 0.1


def test_cosine():
    s = S.Cosine(1.0, T_max=4, eta_min=0.2)
    # 0.2 + 0.8 (1 + cos(pi e / 4)) / 2: e=0 -> 1, e=1 -> 0.2 + 0.4 (1 + 0.7071) = 0.88284,
    # e=2 -> 0.6, e=3 -> 0.2 + 0.4 (1 - 0.7071) = 0.31716, e=4 -> 0.2, then 0.2 for good
    expected = [1.0, 0.2 + 0.4 * (1 + math.sqrt(0.5)), 0.6, 0.2 + 0.4 * (1 - math.sqrt(0.5)),
                0.2, 0.2, 0.2]
    assert [s(e) for e in range(7)] == pytest.approx(expected, rel=1e-14)
    assert s(1000) == 0.2


def test_reduce_on_plateau_by_hand():
    s = S.ReduceOnPlateau(0.1, factor=0.5, patience=2)
    used = []
    for epoch in range(8):
        used.append(s(epoch))
        s.observe(epoch, 1.0)   # never improves after the first epoch
    # bad epochs after epochs 1, 2, 3 -> 3 > patience: cut after epoch 3, again after epoch 6
    assert used == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])


def test_reduce_on_plateau_threshold_is_relative_and_min_lr_is_a_floor():
    s = S.ReduceOnPlateau(1.0, factor=0.1, patience=0, threshold=0.1, min_lr=0.05)
    s.observe(0, 10.0)          # best 10
    s.observe(1, 9.5)           # 9.5 is not < 10 * 0.9: bad epoch, patience 0 -> cut
    assert s(2) == pytest.approx(0.1)
    s.observe(2, 8.9)           # 8.9 < 9: improvement, best 8.9
    assert s(3) == pytest.approx(0.1) and s.best == 8.9
    s.observe(3, 8.9)           # cut, but not below min_lr
    assert s(4) == 0.05
    s.observe(4, 100.0)         # already at the floor
    assert s(5) == 0.05


def test_reduce_on_plateau_nan_is_not_an_improvement():
    s = S.ReduceOnPlateau(0.1, patience=0)
    s.observe(0, 1.0)
    s.observe(1, float("nan"))
    assert s(2) == pytest.approx(0.01)
    assert s.best == 1.0


def test_epoch_schedules_ignore_observe_and_have_no_state():
    s = S.Step(0.1, step_size=2)
    s.observe(0, 123.0)
    assert s(0) == 0.1 and s.state_dict() == {}
    s.load_state_dict({})
    with pytest.raises(ValueError, match="keys"):
        s.load_state_dict({"lr": 1.0})


def test_reduce_on_plateau_state_round_trip_through_json():
    a = S.ReduceOnPlateau(0.1, factor=0.5, patience=1)
    assert a.state_dict() == {"lr": 0.1, "best": None, "num_bad_epochs": 0}
    for epoch, loss in enumerate([3.0, 2.0, 2.0, 2.0, 2.0]):
        a.observe(epoch, loss)
    state = json.loads(json.dumps(a.state_dict()))
    b = S.ReduceOnPlateau(0.1, factor=0.5, patience=1)
    b.load_state_dict(state)
    assert b.state_dict() == a.state_dict()
    for epoch, loss in enumerate([2.0, 2.0, 1.0, 1.0, 1.0], start=5):
        a.observe(epoch, loss)
        b.observe(epoch, loss)
        assert a(epoch + 1) == b(epoch + 1)
    assert a.lr < 0.1 / 2


def test_as_schedule():
    s = S.as_schedule(0.01)
    assert isinstance(s, S.Constant) and s(7) == 0.01
    assert S.as_schedule(1)(0) == 1.0
    cos = S.Cosine(0.1, T_max=10)
    assert S.as_schedule(cos) is cos
    with pytest.raises(TypeError, match="lr"):
        S.as_schedule("0.1")
    with pytest.raises(TypeError, match="lr"):
        S.as_schedule(None)
    with pytest.raises(ValueError, match="lr"):
        S.as_schedule(-0.1)


def test_reprs():
    assert repr(S.Step(0.1, step_size=3)) == "Step(lr=0.1, step_size=3, gamma=0.1)"
    assert repr(S.Cosine(0.1, T_max=5)) == "Cosine(lr=0.1, T_max=5, eta_min=0)"
    r = repr(S.ReduceOnPlateau(0.1))
    assert r.startswith("ReduceOnPlateau(lr=0.1, factor=0.1, patience=10") and "current_lr" in r


def test_all_are_schedules():
    for s in [S.Constant(0.1), S.Step(0.1, 1), S.Exponential(0.1, 0.9),
              S.InverseTime(0.1, 1.0), S.Cosine(0.1, 5), S.ReduceOnPlateau(0.1)]:
        assert isinstance(s, S.Schedule) and s.initial_lr == 0.1 and s(0) == 0.1
        assert isinstance(s(3), float)


# -- against torch -----------------------------------------------------------------------------

def _torch_lrs(make_scheduler, lr, losses=None):
    """Learning rates torch uses in epochs 0 .. EPOCHS-1 with the scheduler stepped per epoch."""
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    sched = make_scheduler(torch.optim.lr_scheduler, opt)
    lrs = []
    for epoch in range(EPOCHS):
        lrs.append(opt.param_groups[0]["lr"])
        param.grad = torch.zeros(1)
        opt.step()
        if losses is None:
            sched.step()
        else:
            sched.step(losses[epoch])
    return lrs


def _ours(schedule, losses=None):
    lrs = []
    for epoch in range(EPOCHS):
        lrs.append(schedule(epoch))
        schedule.observe(epoch, 0.0 if losses is None else losses[epoch])
    return lrs


TORCH_CASES = [
    ("constant", S.Constant(0.05), lambda m, o: m.LambdaLR(o, lambda e: 1.0)),
    ("step", S.Step(0.1, step_size=7, gamma=0.5), lambda m, o: m.StepLR(o, 7, gamma=0.5)),
    ("step-default", S.Step(0.1, step_size=10), lambda m, o: m.StepLR(o, 10)),
    ("exponential", S.Exponential(0.1, gamma=0.93), lambda m, o: m.ExponentialLR(o, 0.93)),
    ("inverse-time", S.InverseTime(0.1, decay_rate=0.3, decay_steps=4),
     lambda m, o: m.LambdaLR(o, lambda e: 1.0 / (1.0 + 0.3 * e / 4))),
    ("cosine", S.Cosine(0.1, T_max=EPOCHS, eta_min=0.001),
     lambda m, o: m.CosineAnnealingLR(o, T_max=EPOCHS, eta_min=0.001)),
    ("cosine-long", S.Cosine(0.1, T_max=45),
     lambda m, o: m.CosineAnnealingLR(o, T_max=45)),
]


@pytest.mark.parametrize("ours, make", [c[1:] for c in TORCH_CASES],
                         ids=[c[0] for c in TORCH_CASES])
def test_matches_torch(ours, make):
    expected = _torch_lrs(make, ours.initial_lr)
    assert _ours(ours) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_cosine_matches_torch_up_to_T_max_then_stays_at_eta_min():
    # torch's CosineAnnealingLR climbs back after T_max; ours holds eta_min (no restarts)
    T_max = 10
    expected = _torch_lrs(lambda m, o: m.CosineAnnealingLR(o, T_max=T_max, eta_min=0.01), 0.1)
    got = _ours(S.Cosine(0.1, T_max=T_max, eta_min=0.01))
    assert got[: T_max + 1] == pytest.approx(expected[: T_max + 1], rel=1e-12)
    assert got[T_max:] == [0.01] * (EPOCHS - T_max)


# decreasing, flat, improvements smaller than the threshold, noise, a rise, more progress
PLATEAU_LOSSES = [
    1.0, 0.9, 0.8, 0.8, 0.8, 0.8, 0.79995, 0.79999, 0.8, 0.7,
    0.7, 0.71, 0.69995, 0.72, 0.6, 0.6, 0.6, 0.6, 0.6, 0.5,
    0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.4, 0.4,
]


@pytest.mark.parametrize("kwargs", [
    dict(factor=0.5, patience=2),
    dict(factor=0.3, patience=0, threshold=1e-3, min_lr=0.002),
    dict(factor=0.5, patience=1, threshold=0.0),
    dict(),
])
def test_reduce_on_plateau_matches_torch(kwargs):
    assert len(PLATEAU_LOSSES) == EPOCHS
    expected = _torch_lrs(lambda m, o: m.ReduceLROnPlateau(o, mode="min", **kwargs), 0.1,
                          PLATEAU_LOSSES)
    got = _ours(S.ReduceOnPlateau(0.1, **kwargs), PLATEAU_LOSSES)
    assert got == pytest.approx(expected, rel=1e-12)
    assert len(set(expected)) > 1 or kwargs == {}   # the script does trigger reductions


# -- bad arguments -----------------------------------------------------------------------------

BAD = [
    (S.Constant, dict(lr=0.0), ValueError, "lr"),
    (S.Constant, dict(lr=-1.0), ValueError, "lr"),
    (S.Constant, dict(lr=float("nan")), ValueError, "lr"),
    (S.Constant, dict(lr=float("inf")), ValueError, "lr"),
    (S.Constant, dict(lr="0.1"), TypeError, "lr"),
    (S.Constant, dict(lr=True), TypeError, "lr"),
    (S.Step, dict(lr=0.1, step_size=0), ValueError, "step_size"),
    (S.Step, dict(lr=0.1, step_size=2.0), TypeError, "step_size"),
    (S.Step, dict(lr=0.1, step_size=2, gamma=0.0), ValueError, "gamma"),
    (S.Step, dict(lr=0.1, step_size=2, gamma=-0.5), ValueError, "gamma"),
    (S.Exponential, dict(lr=0.1, gamma=0.0), ValueError, "gamma"),
    (S.Exponential, dict(lr=0.1, gamma=float("inf")), ValueError, "gamma"),
    (S.InverseTime, dict(lr=0.1, decay_rate=-1.0), ValueError, "decay_rate"),
    (S.InverseTime, dict(lr=0.1, decay_rate=1.0, decay_steps=0), ValueError, "decay_steps"),
    (S.Cosine, dict(lr=0.1, T_max=0), ValueError, "T_max"),
    (S.Cosine, dict(lr=0.1, T_max=1.5), TypeError, "T_max"),
    (S.Cosine, dict(lr=0.1, T_max=10, eta_min=-0.1), ValueError, "eta_min"),
    (S.Cosine, dict(lr=0.1, T_max=10, eta_min=0.2), ValueError, "eta_min"),
    (S.ReduceOnPlateau, dict(lr=0.1, factor=1.0), ValueError, "factor"),
    (S.ReduceOnPlateau, dict(lr=0.1, factor=0.0), ValueError, "factor"),
    (S.ReduceOnPlateau, dict(lr=0.1, patience=-1), ValueError, "patience"),
    (S.ReduceOnPlateau, dict(lr=0.1, patience=1.5), TypeError, "patience"),
    (S.ReduceOnPlateau, dict(lr=0.1, threshold=-1e-4), ValueError, "threshold"),
    (S.ReduceOnPlateau, dict(lr=0.1, min_lr=-1.0), ValueError, "min_lr"),
    (S.ReduceOnPlateau, dict(lr=0.1, min_lr=1.0), ValueError, "min_lr"),
]


@pytest.mark.parametrize("cls, kwargs, exc, name", BAD)
def test_bad_hyper_parameters_raise(cls, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        cls(**kwargs)


@pytest.mark.parametrize("epoch, exc", [(-1, ValueError), (1.0, TypeError), ("3", TypeError),
                                        (None, TypeError)])
def test_bad_epoch_raises(epoch, exc):
    s = S.Exponential(0.1, 0.9)
    with pytest.raises(exc, match="epoch"):
        s(epoch)
    with pytest.raises(exc, match="epoch"):
        S.ReduceOnPlateau(0.1).observe(epoch, 1.0)


def test_bad_loss_raises():
    with pytest.raises(TypeError, match="loss"):
        S.ReduceOnPlateau(0.1).observe(0, "1.0")


# --- BoldDriver -------------------------------------------------------------------------------

def test_bold_driver_by_hand():
    s = gd.schedules.BoldDriver(0.1, increase=1.1, decrease=0.5)
    assert s(0) == 0.1 and s.undoes_epochs
    assert s.accepts(5.0)          # nothing to compare with yet
    s.observe(0, 5.0)
    assert s(1) == 0.1             # the first loss only sets the reference
    assert s.accepts(4.0)
    s.observe(1, 4.0)
    assert s(2) == pytest.approx(0.11)
    assert not s.accepts(4.5) and not s.accepts(math.nan)
    assert s.accepts(4.0 * (1 + 1e-5)) and not s.accepts(4.0 * (1 + 1e-3))  # threshold 1e-4
    s.rejected(0.11)               # fit undid the epoch, then cuts the rate that failed
    assert s(2) == pytest.approx(0.055)
    assert s.state_dict() == {"lr": pytest.approx(0.055), "last_loss": 4.0}


def test_bold_driver_state_round_trip_and_repr():
    s = gd.schedules.BoldDriver(0.1)
    fresh = s.state_dict()
    assert json.loads(json.dumps(fresh)) == {"lr": 0.1, "last_loss": None}
    s.observe(0, 2.0)
    s.observe(1, 1.0)
    t = gd.schedules.BoldDriver(0.1)
    t.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert t(5) == s(5) and t.last_loss == 1.0
    t.load_state_dict(fresh)
    assert t(0) == 0.1 and math.isinf(t.last_loss)
    assert repr(s) == ("BoldDriver(lr=0.1, increase=1.05, decrease=0.5, threshold=0.0001, "
                       "current_lr=0.105)")


@pytest.mark.parametrize("kwargs, match", [
    ({"increase": 0.9}, "increase must be >= 1"),
    ({"decrease": 1.0}, "decrease must be < 1"),
    ({"decrease": 0.0}, "decrease must be > 0"),
    ({"threshold": -1.0}, "threshold must be >= 0"),
])
def test_bold_driver_bad_factors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gd.schedules.BoldDriver(0.1, **kwargs)


def _sine_net(dtype):
    X, y = gd.datasets.sine(seed=0)
    return X, y, gd.Network.from_sizes([1, 32, 1], activation="tanh", dtype=dtype, seed=0)


def test_bold_driver_started_far_too_small_catches_up(backend, dtype):
    X, y, net = _sine_net(dtype)
    plain = net.copy().fit(X, y, optimizer=gd.SGD(lr=1e-5), epochs=300)
    history = net.fit(X, y, optimizer=gd.SGD(lr=gd.schedules.BoldDriver(1e-5)), epochs=300)
    assert max(history.lr) > 1e-2          # the rate grew by orders of magnitude
    assert history.loss[-1] < 0.1 * plain.loss[-1]
    assert not history.diverged or history.backoffs > 0


@pytest.mark.parametrize("batch_size", [None, 32])
def test_bold_driver_started_far_too_large_recovers_without_divergence_error(
        backend, dtype, batch_size):
    X, y, net = _sine_net(dtype)
    opt = gd.SGD(lr=gd.schedules.BoldDriver(1000.0), momentum=0.5)
    history = net.fit(X, y, optimizer=opt, epochs=100, batch_size=batch_size, seed=0)
    assert history.stop_reason == "epochs" and history.epochs == opt.epochs_done == 100
    assert history.backoffs >= 5 and history.lr[-1] < 1.0
    assert net.loss(X, y) < 0.5 * history.start_loss
    steps_per_epoch = 1 if batch_size is None else -(-X.shape[0] // batch_size)
    assert opt.steps_done == steps_per_epoch * history.epochs  # undone epochs left no steps


def test_bold_driver_undo_equals_a_replay_of_the_kept_epochs(backend):
    """After undone epochs, the weights equal training epoch by epoch at the kept rates."""
    X, y, start = _sine_net("float64")
    net = start.copy()
    history = net.fit(X, y, optimizer=gd.SGD(lr=gd.schedules.BoldDriver(0.5)), epochs=30,
                      shuffle=False)
    assert history.backoffs >= 1
    replay = start.copy()
    opt = gd.SGD(lr=1.0)
    for rate in history.lr:
        opt.lr_scale = rate  # the schedule's value is 1.0: the scale sets this epoch's rate
        replay.fit(X, y, optimizer=opt, epochs=1, shuffle=False)
    for p, q in zip(net.parameters(), replay.parameters()):
        np.testing.assert_array_equal(p, q)

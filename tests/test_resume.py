"""Resuming training exactly: optimizer state_dict, pickling, save/load with the optimizer.

The yardstick everywhere: with ``shuffle=False``, ``fit(epochs=2)`` must equal ``fit(epochs=1)``,
then a save/load (or pickle, or state_dict) round trip, then ``fit(epochs=1)`` on what came back
-- bit for bit, in the parameters and in the optimizer's state, step and schedule.
"""
import json
import os
import pickle

import numpy as np
import pytest

import gdcore as gd
from gdcore.optimizers import InvalidLearningRate

S = gd.schedules

#: (the optimizer to train with, a fresh one of the same kind with other hyper-parameters)
OPTIMIZERS = {
    "sgd": (lambda: gd.SGD(lr=0.05), lambda: gd.SGD(lr=0.5, momentum=0.5)),
    "sgd-nesterov": (lambda: gd.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                     lambda: gd.SGD()),
    "adam": (lambda: gd.Adam(lr=0.01), lambda: gd.Adam(lr=0.5, betas=(0.5, 0.6), eps=1e-3)),
    "adamw": (lambda: gd.AdamW(lr=0.01, weight_decay=0.1), lambda: gd.AdamW(weight_decay=0.0)),
    "rmsprop": (lambda: gd.RMSprop(lr=0.01, momentum=0.5), lambda: gd.RMSprop()),
    "plateau": (lambda: gd.Adam(lr=S.ReduceOnPlateau(0.01, patience=0, threshold=0.5)),
                lambda: gd.Adam()),
    "step": (lambda: gd.SGD(lr=S.Step(0.05, step_size=1, gamma=0.5), momentum=0.9),
             lambda: gd.SGD(lr=S.Cosine(0.1, T_max=3))),
}
if hasattr(S, "BoldDriver"):  # a schedule that undoes epochs: its state must travel too
    OPTIMIZERS["bold-driver"] = (lambda: gd.SGD(lr=S.BoldDriver(0.3), momentum=0.5),
                                 lambda: gd.SGD())

N = 12
BATCH = 5  # three steps per epoch, the last one short


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    return rng.normal(size=(N, 3)), rng.normal(size=(N, 2))


def make_net(dtype):
    return gd.Network.from_sizes([3, 5, 2], activation="tanh", dtype=dtype, seed=0)


def train(net, opt, data, epochs):
    return net.fit(*data, optimizer=opt, epochs=epochs, batch_size=BATCH, shuffle=False)


def assert_same(net_a, opt_a, net_b, opt_b):
    """Parameters, optimizer state and everything else that drives the next epoch: equal."""
    for pa, pb in zip(net_a.parameters(), net_b.parameters()):
        np.testing.assert_array_equal(pa, pb)
        assert pa.dtype == pb.dtype
    assert len(opt_a.state) == len(opt_b.state)
    for sa, sb in zip(opt_a.state, opt_b.state):
        np.testing.assert_array_equal(sa, sb)
        assert sa.dtype == sb.dtype
    np.testing.assert_array_equal(opt_a.step, opt_b.step)
    assert opt_a.epochs_done == opt_b.epochs_done
    assert opt_a.lr_scale == opt_b.lr_scale
    assert repr(opt_a) == repr(opt_b)
    assert opt_a.schedule.state_dict() == opt_b.schedule.state_dict()


def two_epochs(dtype, data, make_opt):
    """The reference: two epochs in one fit."""
    net, opt = make_net(dtype), make_opt()
    train(net, opt, data, 2)
    return net, opt


def snapshot(opt):
    """Everything a failed call must leave alone."""
    return (repr(opt), [(a.dtype.str, a.shape, a.tobytes()) for a in opt.state],
            opt.step.tobytes(), opt.epochs_done, opt.lr_scale, repr(opt.schedule.state_dict()),
            opt._bound(), opt._adopt, opt.lr_is_auto, opt.lr_found)


# --- resuming bit for bit ------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(OPTIMIZERS))
def test_save_and_load_resume_bit_for_bit(backend, dtype, data, tmp_path, case):
    make_opt, make_other = OPTIMIZERS[case]
    ref_net, ref_opt = two_epochs(dtype, data, make_opt)
    net, opt = make_net(dtype), make_opt()
    train(net, opt, data, 1)
    path = tmp_path / "model.npz"
    net.save(path, optimizer=opt)
    opt2 = make_other()
    net2 = gd.Network.load(path, optimizer=opt2)
    assert opt2._bound() is net2 and net2.backend == backend
    assert_same(net, opt, net2, opt2)  # the state came back as it was saved
    train(net2, opt2, data, 1)
    assert_same(ref_net, ref_opt, net2, opt2)


@pytest.mark.parametrize("case", sorted(OPTIMIZERS))
def test_pickle_resumes_bit_for_bit(backend, dtype, data, case):
    make_opt, _ = OPTIMIZERS[case]
    ref_net, ref_opt = two_epochs(dtype, data, make_opt)
    net, opt = make_net(dtype), make_opt()
    train(net, opt, data, 1)
    net2, opt2 = pickle.loads(pickle.dumps((net, opt)))
    assert opt2._bound() is net2  # still bound: fit continues instead of starting over
    train(net2, opt2, data, 1)
    assert_same(ref_net, ref_opt, net2, opt2)


@pytest.mark.parametrize("case", ["sgd-nesterov", "adam", "plateau"])
def test_state_dict_into_fresh_optimizer_resumes_bit_for_bit(backend, dtype, data, case):
    make_opt, make_other = OPTIMIZERS[case]
    ref_net, ref_opt = two_epochs(dtype, data, make_opt)
    net, opt = make_net(dtype), make_opt()
    train(net, opt, data, 1)
    net2, opt2 = net.copy(), make_other()
    opt2.load_state_dict(opt.state_dict())  # unbound: checked when fit binds it to net2
    train(net2, opt2, data, 1)
    assert_same(ref_net, ref_opt, net2, opt2)


def test_optimizer_pickled_alone_carries_its_state_to_the_next_network(backend, data):
    ref_net, ref_opt = two_epochs("float64", data, OPTIMIZERS["adam"][0])
    net, opt = make_net("float64"), gd.Adam(lr=0.01)
    train(net, opt, data, 1)
    opt2 = pickle.loads(pickle.dumps(opt))  # the network copy pickled with it is freed at once
    assert opt2._bound() is None
    net2 = net.copy()
    train(net2, opt2, data, 1)
    assert_same(ref_net, ref_opt, net2, opt2)
    # and state that does not fit is refused before anything changes
    opt3 = pickle.loads(pickle.dumps(opt))
    other = gd.Network.from_sizes([3, 4, 2], dtype="float64", seed=0)
    before, weights = snapshot(opt3), [p.copy() for p in other.parameters()]
    with pytest.raises(ValueError, match="restored optimizer state: array 0 has shape"):
        other.fit(*data, optimizer=opt3, epochs=1)
    assert snapshot(opt3) == before
    for p, q in zip(other.parameters(), weights):
        np.testing.assert_array_equal(p, q)


def test_load_rebinds_an_optimizer_of_another_network(backend, data, tmp_path):
    net, opt = make_net("float64"), gd.SGD(lr=0.05, momentum=0.9)
    train(net, opt, data, 1)
    net.save(tmp_path / "a.npz", optimizer=opt)
    busy = gd.SGD(momentum=0.9)
    train(make_net("float64"), busy, data, 2)  # bound to a network that is still alive
    net2 = gd.Network.load(tmp_path / "a.npz", optimizer=busy)
    assert busy._bound() is net2
    assert_same(net, opt, net2, busy)


def test_unused_optimizer_is_saved_with_empty_state(backend, data, tmp_path):
    net, opt = make_net("float32"), gd.RMSprop(lr=0.01, momentum=0.5)
    net.save(tmp_path / "m.npz", optimizer=opt)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        assert not [k for k in f.files if k.startswith("opt_state")]
    assert meta["optimizer"]["n_state"] == 0 and meta["optimizer"]["step"] == 0
    opt2 = gd.RMSprop(lr=0.01, momentum=0.5)
    net2 = gd.Network.load(tmp_path / "m.npz", optimizer=opt2)
    assert opt2._bound() is net2 and len(opt2.state) == 2 * 4
    assert all(a.dtype == np.float32 and not a.any() for a in opt2.state)
    train(net, opt, data, 2)
    train(net2, opt2, data, 2)
    assert_same(net, opt, net2, opt2)


def test_file_with_optimizer_is_plain_npz(data, tmp_path):
    net, opt = make_net("float64"), gd.Adam(lr=S.Step(0.01, step_size=2))
    train(net, opt, data, 1)
    net.save(tmp_path / "m.npz", optimizer=opt)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        files = sorted(f.files)
        meta = json.loads(str(f["meta"]))
    assert files == sorted(["meta", "W0", "b0", "W1", "b1"]
                           + [f"opt_state_{i}" for i in range(8)])
    assert meta["version"] == 2
    entry = meta["optimizer"]
    assert entry["name"] == "adam" and entry["n_state"] == 8 and entry["step"] == 3
    assert entry["schedule"] == {"class": "Step", "params": {"lr": 0.01, "step_size": 2,
                                                             "gamma": 0.1}, "state": {}}
    assert entry["hyper"] == {"betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}
    # and without optimizer= the same file loads as a plain network
    np.testing.assert_array_equal(gd.Network.load(tmp_path / "m.npz").forward(data[0]),
                                  net.forward(data[0]))


# --- state_dict ----------------------------------------------------------------------------

def test_state_dict_layout_and_copies(data):
    net, opt = make_net("float64"), gd.SGD(lr=S.ReduceOnPlateau(0.1, patience=0), momentum=0.9)
    train(net, opt, data, 2)
    sd = opt.state_dict()
    assert list(sd) == ["name", "hyper", "lr_auto", "lr_found", "schedule", "state", "step",
                        "epochs_done", "lr_scale"]
    assert sd["name"] == "sgd" and sd["step"] == 6 and sd["epochs_done"] == 2
    assert sd["hyper"] == {"momentum": 0.9, "nesterov": False, "weight_decay": 0.0}
    assert sd["schedule"]["class"] == "ReduceOnPlateau"
    assert sd["schedule"]["state"] == opt.schedule.state_dict()
    assert sd["lr_auto"] is False and sd["lr_found"] is None and sd["lr_scale"] == 1.0
    json.dumps({k: val for k, val in sd.items() if k != "state"})  # JSON-able but the arrays
    assert len(sd["state"]) == 4
    for a, b in zip(sd["state"], opt.state):
        np.testing.assert_array_equal(a, b)
        assert not np.shares_memory(a, b)
    # loading copies too: changing the dict afterwards changes nothing
    opt2 = gd.SGD(momentum=0.9)
    opt2.load_state_dict(sd)
    sd["state"][0][...] = 123.0
    sd["schedule"]["state"]["num_bad_epochs"] = 99
    assert not (opt2.state[0] == 123.0).any()
    assert opt2.schedule.state_dict() == opt.schedule.state_dict()
    assert opt2.state_dict()["schedule"] == opt.state_dict()["schedule"]


def test_load_state_dict_into_bound_optimizer_checks_now(backend, data):
    net, opt = make_net("float64"), gd.Adam(lr=0.01)
    train(net, opt, data, 1)
    sd = opt.state_dict()
    train(net, opt, data, 1)
    opt.load_state_dict(sd)  # back to the end of epoch 1, still bound to net
    assert opt._bound() is net and opt.steps_done == 3 and opt.epochs_done == 1
    small = gd.Network.from_sizes([3, 4, 2], dtype="float64", seed=0)
    small_opt = gd.Adam()
    train(small, small_opt, data, 1)
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"array 0 has shape \(3, 4\) .* shape \(3, 5\)"):
        opt.load_state_dict(small_opt.state_dict())
    assert snapshot(opt) == before
    f32 = gd.Network.from_sizes([3, 5, 2], activation="tanh", dtype="float32", seed=0)
    f32_opt = gd.Adam()
    train(f32, f32_opt, data, 1)
    with pytest.raises(ValueError, match="dtype float32, .* dtype float64"):
        opt.load_state_dict(f32_opt.state_dict())
    assert snapshot(opt) == before


def _damaged(sd, key, value):
    sd = dict(sd)
    if value is KeyError:
        del sd[key]
    else:
        sd[key] = value
    return sd


@pytest.mark.parametrize("key, value, error, match", [
    ("name", "adam", ValueError, "is of a 'adam' optimizer; SGD"),
    ("name", KeyError, ValueError, r"missing \['name'\]"),
    ("extra", 1, ValueError, r"unknown \['extra'\]"),
    ("hyper", {"momentum": 1.5, "nesterov": False, "weight_decay": 0.0}, ValueError,
     "momentum must be < 1"),
    ("hyper", {"momentum": 0.9}, ValueError, "hyper'] must be a dict with the keys"),
    ("schedule", {"class": "Nope", "params": {}, "state": {}}, ValueError,
     "unknown schedule class 'Nope'"),
    ("schedule", {"class": "Step", "params": {"lr": 0.1}, "state": {}}, TypeError,
     r"schedule'\] \(Step\)"),
    ("schedule", {"class": "ReduceOnPlateau", "params": {"lr": 0.1},
                  "state": {"lr": -1.0, "best": None, "num_bad_epochs": 0}}, ValueError,
     r"state\['lr'\] must be > 0"),
    ("state", "nope", TypeError, "must be a list of arrays"),
    ("state", [[0.0]], TypeError, r"state'\]\[0\] must be a NumPy array"),
    ("state", [np.zeros(3, dtype=np.int64)], ValueError, "must be float32 or float64"),
    ("state", [np.full(3, np.nan)], ValueError, "contains NaN"),
    ("state", [np.zeros((3, 5))], ValueError, "has 1 arrays, but this network needs 1 per"),
    ("step", -1, ValueError, "step'] must be >= 0"),
    ("step", 1.5, TypeError, "step'] must be an integer"),
    ("epochs_done", None, TypeError, "epochs_done'] must be an integer"),
    ("lr_scale", 0.0, ValueError, "lr_scale'] must be > 0"),
    ("lr_auto", "yes", TypeError, "lr_auto'] must be a bool"),
    ("lr_found", float("nan"), ValueError, "lr_found'] must be finite"),
])
def test_bad_state_dict_raises_and_changes_nothing(backend, data, key, value, error, match):
    net, opt = make_net("float64"), gd.SGD(lr=0.05, momentum=0.9)
    train(net, opt, data, 1)
    sd = opt.state_dict()
    before = snapshot(opt)
    with pytest.raises(error, match=match):
        opt.load_state_dict(_damaged(sd, key, value))
    assert snapshot(opt) == before
    with pytest.raises(TypeError, match="state_dict must be a dict"):
        opt.load_state_dict([sd])
    assert snapshot(opt) == before


# --- save/load errors ----------------------------------------------------------------------

def test_save_with_optimizer_of_another_network_raises(backend, data, tmp_path):
    net, opt = make_net("float64"), gd.Adam()
    train(net, opt, data, 1)
    other = make_net("float64")
    with pytest.raises(ValueError, match="holds the state of another network"):
        other.save(tmp_path / "m.npz", optimizer=opt)
    with pytest.raises(TypeError, match="optimizer must be None or an optimizer object"):
        net.save(tmp_path / "m.npz", optimizer="adam")
    assert os.listdir(tmp_path) == []


def test_load_optimizer_errors_leave_it_unchanged(backend, data, tmp_path):
    net, opt = make_net("float64"), gd.Adam(lr=0.01)
    train(net, opt, data, 1)
    plain, with_adam = tmp_path / "plain.npz", tmp_path / "adam.npz"
    net.save(plain)
    net.save(with_adam, optimizer=opt)
    target = gd.Adam(lr=0.05)
    train(make_net("float64"), target, data, 1)
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"plain\.npz' holds no optimizer state"):
        gd.Network.load(plain, optimizer=target)
    assert snapshot(target) == before
    sgd = gd.SGD()
    sgd_before = snapshot(sgd)
    with pytest.raises(ValueError, match="holds the state of a 'adam' optimizer; SGD"):
        gd.Network.load(with_adam, optimizer=sgd)
    assert snapshot(sgd) == sgd_before
    with pytest.raises(ValueError, match="'adam' optimizer; AdamW"):
        gd.Network.load(with_adam, optimizer=gd.AdamW())
    with pytest.raises(TypeError, match="optimizer must be None or an optimizer"):
        gd.Network.load(with_adam, optimizer=gd.Adam)


def _rewrite(path, meta=None, **arrays):
    with np.load(path, allow_pickle=False) as f:
        contents = {k: f[k] for k in f.files}
    if meta is not None:
        contents["meta"] = np.array(json.dumps(meta))
    contents.update(arrays)
    with open(path, "wb") as f:
        np.savez(f, **{k: a for k, a in contents.items() if a is not None})


@pytest.mark.parametrize("damage", [
    "entry-not-dict", "name-not-str", "n_state-missing", "n_state-huge", "state-missing",
    "state-shape", "state-int", "state-nan", "step-negative", "step-float", "hyper-bad",
    "schedule-class", "schedule-params", "missing-key", "unknown-key",
])
def test_damaged_optimizer_entries_raise_value_error(backend, data, tmp_path, damage):
    net, opt = make_net("float64"), gd.SGD(lr=S.Step(0.05, step_size=1), momentum=0.9)
    train(net, opt, data, 1)
    path = tmp_path / "m.npz"
    net.save(path, optimizer=opt)
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
    entry = meta["optimizer"]
    arrays = {}
    if damage == "entry-not-dict":
        meta["optimizer"] = [entry]
    elif damage == "name-not-str":
        entry["name"] = 3
    elif damage == "n_state-missing":
        del entry["n_state"]
    elif damage == "n_state-huge":
        entry["n_state"] = 10 ** 12
    elif damage == "state-missing":
        arrays["opt_state_3"] = None
    elif damage == "state-shape":
        arrays["opt_state_0"] = np.zeros((5, 3))
    elif damage == "state-int":
        arrays["opt_state_1"] = np.zeros(5, dtype=np.int64)
    elif damage == "state-nan":
        arrays["opt_state_2"] = np.full((5, 2), np.nan)
    elif damage == "step-negative":
        entry["step"] = -3
    elif damage == "step-float":
        entry["step"] = 3.5
    elif damage == "hyper-bad":
        entry["hyper"]["nesterov"] = "yes"
    elif damage == "schedule-class":
        entry["schedule"]["class"] = "os.system"
    elif damage == "schedule-params":
        entry["schedule"]["params"]["step_size"] = 0
    elif damage == "missing-key":
        del entry["lr_scale"]
    elif damage == "unknown-key":
        entry["surprise"] = 1
    _rewrite(path, meta, **arrays)
    target = gd.SGD()
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"m\.npz' is not a readable gdcore network file"):
        gd.Network.load(path, optimizer=target)
    assert snapshot(target) == before
    gd.Network.load(path)  # the network itself is intact and loads without optimizer=


def test_version_1_file_still_loads(backend, data, tmp_path):
    net = make_net("float32")
    path = tmp_path / "v1.npz"
    net.save(path)
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
    assert meta["version"] == 2 and "optimizer" not in meta
    _rewrite(path, {**meta, "version": 1})
    back = gd.Network.load(path)
    np.testing.assert_array_equal(back.forward(data[0]), net.forward(data[0]))
    with pytest.raises(ValueError, match="holds no optimizer state"):
        gd.Network.load(path, optimizer=gd.SGD())


# --- lr="auto" -----------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [gd.SGD, gd.Adam, gd.AdamW, gd.RMSprop])
def test_lr_auto_is_accepted_and_round_trips(cls, data, tmp_path):
    opt = cls(lr="auto")
    assert opt.lr_is_auto and opt.lr_found is None
    assert repr(opt).startswith(f"{cls.__name__}(lr='auto', ")
    assert opt.schedule.initial_lr == cls.default_lr  # the placeholder
    with pytest.raises(RuntimeError, match=r"lr='auto'\) has no learning rate yet"):
        opt.lr
    sd = opt.state_dict()
    assert sd["lr_auto"] is True and sd["lr_found"] is None
    for back in (pickle.loads(pickle.dumps(opt)), _loaded_state(cls, sd)):
        assert back.lr_is_auto and repr(back) == repr(opt)
    net = make_net("float64")
    net.save(tmp_path / "auto.npz", optimizer=opt)
    fresh = cls(lr=0.123)
    gd.Network.load(tmp_path / "auto.npz", optimizer=fresh)
    assert fresh.lr_is_auto and repr(fresh) == repr(opt)

    opt.resolve_lr(0.0321)
    assert not opt.lr_is_auto and opt.lr_found == 0.0321 and opt.lr == 0.0321
    assert repr(opt).startswith(f"{cls.__name__}(lr=0.0321, ")
    sd = opt.state_dict()
    assert sd["lr_auto"] is False and sd["lr_found"] == 0.0321
    for back in (pickle.loads(pickle.dumps(opt)), _loaded_state(cls, sd)):
        assert not back.lr_is_auto and back.lr_found == 0.0321 and back.lr == 0.0321
    opt.reset()  # forgets the state, keeps the learning rate found
    assert opt.lr == 0.0321


def _loaded_state(cls, sd):
    opt = cls()
    opt.load_state_dict(sd)
    return opt


def test_lr_strings_and_bad_resolve(data):
    with pytest.raises(ValueError, match="a gdcore.schedules.Schedule or 'auto', got the "
                                         "string 'fast'"):
        gd.Adam(lr="fast")
    with pytest.raises(InvalidLearningRate):
        gd.SGD(lr="AUTO")
    with pytest.raises(TypeError, match="lr must be a positive number"):  # as before 'auto'
        gd.SGD(lr="0.1")
    with pytest.raises(TypeError, match="or 'auto', got NoneType"):
        gd.RMSprop(lr=None)
    opt = gd.SGD(lr="auto")
    before = snapshot(opt)
    for bad in (0.0, -1.0, float("nan"), "0.1"):
        with pytest.raises((TypeError, ValueError)):
            opt.resolve_lr(bad)
        assert snapshot(opt) == before

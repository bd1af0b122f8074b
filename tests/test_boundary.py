"""Bad input at every public entry point, on both backends: a clear error, nothing changed.

One table of ``Case(id, call, error, match)``: ``call(w)`` makes one bad call on the world ``w``
(networks already trained for two epochs, so their optimizers hold state, and the History of
that training). Each must raise ``error`` with a message matching ``match`` (which names the
argument), and leave every network's weights, every optimizer's state, step, epoch count,
back-off scale and schedule state, and the earlier History, bit for bit as they were.

Then a few accepted inputs that are not bad (tied layers, a Perceptron as entry point, inputs
never written). Layouts are in test_layouts.py, edge cases (one sample, a huge batch size) in
test_edge_cases.py.
"""
import copy
import math
import os
import types
from typing import Any, Callable, NamedTuple

import numpy as np
import pytest

import gdcore as gd
from gdcore.schedules import Schedule

N = 12  # training samples in the world


class Case(NamedTuple):
    id: str
    call: Callable[[Any], Any]
    error: type
    match: str


class NanSchedule(Schedule):
    """A user schedule that gives a NaN learning rate (a bug in user code)."""

    def __init__(self) -> None:
        super().__init__(0.1)

    def _lr(self, epoch: int) -> float:
        return math.nan

    def _params(self) -> dict:
        return {}


def make_world() -> types.SimpleNamespace:
    """Networks of each kind, trained two epochs with a stateful optimizer; data to call with."""
    rng = np.random.default_rng(0)
    w = types.SimpleNamespace()
    w.X = rng.normal(size=(N, 3))
    w.y_reg = rng.normal(size=(N, 2))
    w.y_clf = rng.integers(0, 3, size=N)
    w.y_bce = rng.integers(0, 2, size=N).astype(float)
    w.reg = gd.Network.from_sizes([3, 4, 2], activation="tanh", loss="mse", seed=0)  # float32
    w.clf = gd.Network.from_sizes([3, 5, 3], output_activation="softmax", loss="cross_entropy",
                                  dtype="float64", seed=1)
    w.bce = gd.Network.from_sizes([3, 1], output_activation="sigmoid", loss="bce", seed=2)
    w.perc = gd.Perceptron(3, seed=3)
    w.reg_opt = gd.Adam(lr=gd.schedules.ReduceOnPlateau(0.01, patience=0))
    w.clf_opt = gd.SGD(lr=0.1, momentum=0.9)
    w.bce_opt = gd.RMSprop(lr=0.01, momentum=0.5)
    w.perc_opt = gd.AdamW(lr=0.01)
    w.history = w.reg.fit(w.X, w.y_reg, optimizer=w.reg_opt, epochs=2, batch_size=5, seed=0)
    w.clf.fit(w.X, w.y_clf, optimizer=w.clf_opt, epochs=2, batch_size=5, seed=0)
    w.bce.fit(w.X, w.y_bce, optimizer=w.bce_opt, epochs=2, seed=0)
    w.perc.fit(w.X, w.y_bce, optimizer=w.perc_opt, epochs=2, seed=0)
    w.nets = [w.reg, w.clf, w.bce, w.perc.network]
    w.opts = [w.reg_opt, w.clf_opt, w.bce_opt, w.perc_opt]
    return w


def snapshot(w) -> list:
    """Everything a failed call must leave alone, as bytes and plain values."""
    def arr(a):
        return (a.dtype.str, a.shape, a.tobytes())

    state = [[arr(p) for p in net.parameters()] for net in w.nets]
    for opt in w.opts:
        state.append(([arr(s) for s in opt.state], arr(opt.step), opt.epochs_done,
                      opt.lr_scale, repr(opt.schedule.state_dict()),
                      opt._owner() if opt._owner is not None else None))
    state.append(copy.deepcopy(w.history))
    return state


def _fit(net_name, y_name, **kwargs):
    """``fit`` of that network with its own (stateful) optimizer and valid data, plus kwargs."""
    def call(w):
        args = dict(optimizer=getattr(w, net_name + "_opt"), epochs=1, batch_size=4)
        args.update(kwargs)
        return getattr(w, net_name).fit(w.X, getattr(w, y_name), **args)
    return call


# ------------------------------------------------------------------------------- the table

CASES: list[Case] = []


def add(id, call, error, match):
    CASES.append(Case(id, call, error, match))


# --- X, at every call that takes it (reg: float32, 3 inputs) -------------------------------
BAD_X = [
    ("3d", lambda: np.zeros((N, 3, 1)), ValueError, r"X must be 2-D .* got 3-D"),
    ("0d", lambda: np.array(1.0), ValueError, r"X must be 2-D .* got 0-D"),
    ("features", lambda: np.zeros((N, 2)), ValueError,
     "X has 2 features but the network expects 3"),
    ("1d-length", lambda: np.zeros(5), ValueError, "X is 1-D with 5 values"),
    ("empty", lambda: np.zeros((0, 3)), ValueError, "X is empty"),
    ("nan", lambda: np.full((N, 3), np.nan), ValueError, "X contains NaN"),
    ("inf", lambda: np.r_[np.zeros((N - 1, 3)), [[0, -np.inf, 0]]], ValueError,
     "X contains infinity"),
    ("overflows-float32", lambda: np.full((N, 3), 1e300), ValueError, "X contains infinity"),
    ("object", lambda: np.zeros((N, 3), dtype=object), TypeError, "X must hold real numbers"),
    ("strings", lambda: np.full((N, 3), "1.0"), TypeError, "X must hold real numbers"),
    ("complex", lambda: np.zeros((N, 3), dtype=complex), TypeError, "X must hold real numbers"),
    ("none", lambda: None, TypeError, "X must hold real numbers"),
    ("ragged", lambda: [[1.0, 2.0, 3.0], [1.0]], ValueError, "X could not be read as an array"),
]
X_CALLS = {
    "forward": lambda w, X: w.reg.forward(X),
    "predict": lambda w, X: w.reg.predict(X),
    "call": lambda w, X: w.reg(X),
    "layer.forward": lambda w, X: w.reg.layers[0].forward(X),
    "loss": lambda w, X: w.reg.loss(X, w.y_reg),
    "gradients": lambda w, X: w.reg.gradients(X, w.y_reg),
    "fit": lambda w, X: w.reg.fit(X, w.y_reg, optimizer=w.reg_opt, epochs=1),
    "find_lr": lambda w, X: gd.find_lr(w.reg, X, w.y_reg, steps=5),
    "check_gradients": lambda w, X: gd.check_gradients(w.reg, X, w.y_reg),
    "perceptron.forward": lambda w, X: w.perc.forward(X),
    "perceptron.loss": lambda w, X: w.perc.loss(X, w.y_bce),
    "perceptron.fit": lambda w, X: w.perc.fit(X, w.y_bce, optimizer=w.perc_opt, epochs=1),
    "validation_data": lambda w, X: w.reg.fit(w.X, w.y_reg, optimizer=w.reg_opt, epochs=1,
                                              validation_data=(X, w.y_reg)),
}
for call_id, call in X_CALLS.items():
    for x_id, make_X, error, match in BAD_X:
        if x_id == "overflows-float32" and (call_id.startswith("perceptron")
                                            or call_id == "check_gradients"):
            continue  # float64 there (check_gradients works on a float64 copy): 1e300 is fine
        if call_id == "validation_data":
            match = "validation_data " + match  # every X message starts with "X "
        add(f"{call_id}-X-{x_id}", lambda w, c=call, m=make_X: c(w, m()), error, match)

# --- y: shapes and values (reg: mse with 2 outputs; clf: 3 classes; bce: 1 output) --------
BAD_Y = [
    ("reg-samples", "reg", lambda w: np.zeros((5, 2)), ValueError,
     "y has 5 samples but X has 12"),
    ("reg-1d", "reg", lambda w: np.zeros(N), ValueError, "y is 1-D but the network has 2 outputs"),
    ("reg-columns", "reg", lambda w: np.zeros((N, 3)), ValueError, r"y must have shape \(12, 2\)"),
    ("reg-3d", "reg", lambda w: np.zeros((N, 2, 1)), ValueError, r"y must have shape \(12, 2\)"),
    ("reg-scalar", "reg", lambda w: 1.0, ValueError, "y must be an array with one entry per"),
    ("reg-empty", "reg", lambda w: np.zeros((0, 2)), ValueError, "y has 0 samples but X has 12"),
    ("reg-nan", "reg", lambda w: np.full((N, 2), np.nan), ValueError, "y contains NaN"),
    ("reg-inf", "reg", lambda w: np.full((N, 2), np.inf), ValueError, "y contains infinity"),
    ("reg-strings", "reg", lambda w: np.full((N, 2), "a"), TypeError, "y must hold real numbers"),
    ("reg-complex", "reg", lambda w: np.zeros((N, 2), complex), TypeError, "y must hold real"),
    ("reg-none", "reg", lambda w: None, TypeError, "y must hold real numbers"),
    ("clf-label-high", "clf", lambda w: np.r_[w.y_clf[:-1], 3], ValueError,
     r"labels must be in \[0, 2\]"),
    ("clf-label-negative", "clf", lambda w: np.r_[w.y_clf[:-1], -1], ValueError,
     r"labels must be in \[0, 2\]"),
    ("clf-label-huge-float", "clf", lambda w: np.r_[w.y_clf[:-1], 1e30], ValueError,
     r"labels must be in \[0, 2\]"),
    ("clf-label-huge-uint", "clf",
     lambda w: np.r_[w.y_clf[:-1].astype(np.uint64), np.uint64(2**63 + 5)],
     ValueError, r"labels must be in \[0, 2\]"),
    ("clf-label-fraction", "clf", lambda w: np.r_[w.y_clf[:-1], 0.5], ValueError,
     "integer class labels"),
    ("clf-label-nan", "clf", lambda w: np.r_[w.y_clf[:-1], np.nan], ValueError,
     "y contains NaN or infinity"),
    ("clf-label-strings", "clf", lambda w: w.y_clf.astype(str), TypeError, "y must hold real"),
    ("clf-onehot-sum", "clf", lambda w: np.eye(3)[w.y_clf] * 0.5, ValueError, "must sum to 1"),
    ("clf-onehot-negative", "clf", lambda w: np.eye(3)[w.y_clf] * 2 - np.eye(3)[0], ValueError,
     "negative probabilities"),
    ("clf-onehot-columns", "clf", lambda w: np.eye(2)[w.y_clf % 2], ValueError,
     r"probabilities of shape \(12, 3\)"),
    ("clf-onehot-nan", "clf", lambda w: np.full((N, 3), np.nan), ValueError, "y contains NaN"),
    ("clf-3d", "clf", lambda w: np.zeros((N, 3, 1)), ValueError, "class indices of shape"),
    ("bce-above-one", "bce", lambda w: np.r_[w.y_bce[:-1], 2.0], ValueError,
     r"y for bce must hold targets in \[0, 1\]"),
    ("bce-negative", "bce", lambda w: np.r_[w.y_bce[:-1], -0.5], ValueError,
     r"targets in \[0, 1\]"),
    ("bce-columns", "bce", lambda w: np.zeros((N, 2)), ValueError, r"y must have shape \(12, 1\)"),
]
Y_CALLS = {
    "loss": lambda w, net, y: net.loss(w.X, y),
    "gradients": lambda w, net, y: net.gradients(w.X, y),
    "fit": lambda w, net, y: net.fit(w.X, y, optimizer=w.opts[w.nets.index(net)], epochs=1),
    "find_lr": lambda w, net, y: gd.find_lr(net, w.X, y, steps=5),
    "check_gradients": lambda w, net, y: gd.check_gradients(net, w.X, y),
    "validation_data": lambda w, net, y: net.fit(
        w.X, {"reg": w.y_reg, "clf": w.y_clf, "bce": w.y_bce}[net_name(w, net)],
        optimizer=w.opts[w.nets.index(net)], epochs=1, validation_data=(w.X, y)),
}


def net_name(w, net):
    return {id(w.reg): "reg", id(w.clf): "clf", id(w.bce): "bce"}[id(net)]


for call_id, call in Y_CALLS.items():
    for y_id, net_attr, make_y, error, match in BAD_Y:
        if call_id == "validation_data":
            match = "validation_data " + match if match.startswith("y ") else match
        add(f"{call_id}-y-{y_id}",
            lambda w, c=call, a=net_attr, m=make_y: c(w, getattr(w, a), m(w)), error, match)
add("perceptron.fit-y-columns", lambda w: w.perc.fit(w.X, np.zeros((N, 2))), ValueError,
    r"y must have shape \(12, 1\)")
add("perceptron.loss-y-bce-range", lambda w: w.perc.loss(w.X, np.full(N, 3.0)), ValueError,
    r"targets in \[0, 1\]")

# --- sample_weight -------------------------------------------------------------------------
BAD_W = [
    ("length", lambda: np.ones(N - 1), ValueError, r"sample_weight must have shape \(12,\)"),
    ("2d", lambda: np.ones((N, 1)), ValueError, r"sample_weight must have shape \(12,\)"),
    ("negative", lambda: np.r_[np.ones(N - 1), -1.0], ValueError,
     "sample_weight must be non-negative"),
    ("zero-sum", lambda: np.zeros(N), ValueError, "sample_weight must have a positive sum"),
    ("nan", lambda: np.r_[np.ones(N - 1), np.nan], ValueError, "sample_weight contains NaN"),
    ("inf", lambda: np.r_[np.ones(N - 1), np.inf], ValueError, "sample_weight contains infinity"),
    ("strings", lambda: np.full(N, "1"), TypeError, "sample_weight must hold real numbers"),
]
W_CALLS = {
    "loss": lambda w, sw: w.reg.loss(w.X, w.y_reg, sample_weight=sw),
    "gradients": lambda w, sw: w.reg.gradients(w.X, w.y_reg, sample_weight=sw),
    "fit": lambda w, sw: w.reg.fit(w.X, w.y_reg, optimizer=w.reg_opt, epochs=1, sample_weight=sw),
    "perceptron.loss": lambda w, sw: w.perc.loss(w.X, w.y_bce, sample_weight=sw),
}
for call_id, call in W_CALLS.items():
    for w_id, make_w, error, match in BAD_W:
        add(f"{call_id}-sample_weight-{w_id}", lambda w, c=call, m=make_w: c(w, m()), error, match)
add("validation_data-sample_weight", lambda w: w.reg.fit(
    w.X, w.y_reg, optimizer=w.reg_opt, validation_data=(w.X, w.y_reg, -np.ones(N))),
    ValueError, "validation_data sample_weight must be non-negative")

# --- fit's other arguments -----------------------------------------------------------------
FIT_ARGS = [
    ("epochs-zero", dict(epochs=0), ValueError, "epochs must be >= 1"),
    ("epochs-negative", dict(epochs=-3), ValueError, "epochs must be >= 1"),
    ("epochs-float", dict(epochs=2.5), TypeError, "epochs must be an integer"),
    ("epochs-nan", dict(epochs=math.nan), TypeError, "epochs must be an integer"),
    ("epochs-string", dict(epochs="10"), TypeError, "epochs must be an integer"),
    ("epochs-none", dict(epochs=None), TypeError, "epochs must be an integer"),
    ("batch_size-zero", dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    ("batch_size-negative", dict(batch_size=-4), ValueError, "batch_size must be >= 1"),
    ("batch_size-float", dict(batch_size=4.0), TypeError, "batch_size must be an integer"),
    ("batch_size-bool", dict(batch_size=True), TypeError, "batch_size must be an integer"),
    ("batch_size-string", dict(batch_size="4"), TypeError, "batch_size must be an integer"),
    ("tol-negative", dict(tol=-1e-3), ValueError, "tol must be >= 0"),
    ("tol-nan", dict(tol=math.nan), ValueError, "tol must be finite"),
    ("tol-inf", dict(tol=math.inf), ValueError, "tol must be finite"),
    ("tol-string", dict(tol="0.1"), TypeError, "tol must be a real number"),
    ("n_iter_no_change-zero", dict(n_iter_no_change=0), ValueError, "n_iter_no_change must be"),
    ("max_time-zero", dict(max_time=0), ValueError, "max_time must be > 0"),
    ("max_time-nan", dict(max_time=math.nan), ValueError, "max_time must be finite"),
    ("validation_split-one", dict(validation_split=1.0), ValueError,
     "validation_split must be < 1"),
    ("validation_split-negative", dict(validation_split=-0.1), ValueError,
     "validation_split must be >= 0"),
    ("validation_split-nan", dict(validation_split=math.nan), ValueError,
     "validation_split must be finite"),
    ("validation_split-empty-train", dict(validation_split=0.99), ValueError,
     "leaves 0 for training"),
    ("validation_split-and-data", dict(validation_split=0.2, validation_data=(np.zeros((2, 3)),
                                                                               np.zeros((2, 2)))),
     ValueError, "either validation_data or validation_split"),
    ("validation_data-array", dict(validation_data=np.zeros((2, 3))), TypeError,
     "validation_data must be a tuple"),
    ("validation_data-one", dict(validation_data=(np.zeros((2, 3)),)), TypeError,
     "validation_data must be a tuple"),
    ("validation_data-four", dict(validation_data=(1, 2, 3, 4)), TypeError,
     "validation_data must be a tuple"),
    ("validation_data-mismatch", dict(validation_data=(np.zeros((4, 3)), np.zeros((5, 2)))),
     ValueError, "validation_data y has 5 samples but X has 4"),
    ("on_divergence", dict(on_divergence="ignore"), ValueError, "on_divergence must be one of"),
    ("on_divergence-none", dict(on_divergence=None), ValueError, "on_divergence must be one of"),
    ("optimizer-name", dict(optimizer="newton"), ValueError, "optimizer must be one of"),
    ("optimizer-type", dict(optimizer=42), TypeError, "optimizer must be a name"),
    ("optimizer-class", dict(optimizer=gd.Adam), TypeError, "optimizer must be a name"),
    ("callbacks-item", dict(callbacks=[42]), TypeError, r"callbacks\[0\] must be callable"),
    ("callbacks-type", dict(callbacks=42), TypeError, "callbacks must be a sequence"),
    ("shuffle", dict(shuffle="yes"), TypeError, "shuffle must be True or False"),
    ("restore_best_weights", dict(restore_best_weights=1), TypeError,
     "restore_best_weights must be True or False"),
    ("progress", dict(progress=None), TypeError, "progress must be True or False"),
    ("seed-negative", dict(seed=-1), ValueError, "seed must be a non-negative int"),
    ("seed-string", dict(seed="abc"), TypeError, "seed must be None, an int"),
    ("seed-float", dict(seed=1.5, shuffle=False), TypeError, "seed must be None, an int"),
    ("schedule-nan", dict(optimizer=gd.SGD(lr=NanSchedule())), ValueError,
     "learning rate for epoch 0 is nan"),
]
for arg_id, kwargs, error, match in FIT_ARGS:
    add(f"fit-{arg_id}", _fit("reg", "y_reg", **kwargs), error, match)
    if arg_id in ("epochs-zero", "batch_size-zero", "seed-negative", "optimizer-name"):
        add(f"perceptron.fit-{arg_id}", lambda w, k=kwargs: w.perc.fit(w.X, w.y_bce, **k),
            error, match)
def _read_only_then(call):
    def run(w):
        w.clf.layers[1].bias.setflags(write=False)
        return call(w)
    return run


add("fit-read-only-parameters", _read_only_then(lambda w: w.clf.fit(w.X, w.y_clf,
                                                                    optimizer=w.clf_opt)),
    ValueError, r"bias of layers\[1\] are read-only")
add("find_lr-read-only-parameters", _read_only_then(lambda w: gd.find_lr(w.clf, w.X, w.y_clf)),
    ValueError, r"bias of layers\[1\] are read-only")
add("fit-optimizer-of-another-network", lambda w: w.reg.fit(w.X, w.y_reg, optimizer=w.clf_opt),
    ValueError, "state of another network")

# --- find_lr and check_gradients -----------------------------------------------------------
for arg_id, kwargs, error, match in [
    ("lr_min-zero", dict(lr_min=0.0), ValueError, "lr_min must be > 0"),
    ("lr_min-negative", dict(lr_min=-1.0), ValueError, "lr_min must be > 0"),
    ("lr_min-nan", dict(lr_min=math.nan), ValueError, "lr_min must be finite"),
    ("lr_max-inf", dict(lr_max=math.inf), ValueError, "lr_max must be finite"),
    ("lr_max-below-min", dict(lr_min=1.0, lr_max=0.1), ValueError, "lr_max must be > lr_min"),
    ("steps-one", dict(steps=1), ValueError, "steps must be >= 2"),
    ("steps-float", dict(steps=10.0), TypeError, "steps must be an integer"),
    ("batch_size-zero", dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    ("batch_size-string", dict(batch_size="8"), TypeError, "batch_size must be an integer"),
]:
    add(f"find_lr-{arg_id}", lambda w, k=kwargs: gd.find_lr(w.reg, w.X, w.y_reg, **k), error,
        match)
add("find_lr-network", lambda w: gd.find_lr("net", w.X, w.y_reg), TypeError,
    "network must be a gdcore Network")
for arg_id, kwargs, error, match in [
    ("eps-zero", dict(eps=0.0), ValueError, "eps must be > 0"),
    ("eps-nan", dict(eps=math.nan), ValueError, "eps must be finite"),
    ("eps-string", dict(eps="1e-6"), TypeError, "eps must be a real number"),
    ("max_checks-zero", dict(max_checks=0), ValueError, "max_checks must be >= 1"),
    ("seed-negative", dict(seed=-1), ValueError, "seed must be a non-negative int"),
]:
    add(f"check_gradients-{arg_id}",
        lambda w, k=kwargs: gd.check_gradients(w.clf, w.X, w.y_clf, **k), error, match)
add("check_gradients-network", lambda w: gd.check_gradients(None, w.X, w.y_reg), TypeError,
    "network must be a gdcore Network")

# --- construction: Layer, Network, from_sizes, Perceptron ----------------------------------
for args, kwargs, error, match in [
    ((0, 3), {}, ValueError, "n_inputs must be >= 1"),
    ((3, -1), {}, ValueError, "n_outputs must be >= 1"),
    ((2.5, 3), {}, TypeError, "n_inputs must be an integer"),
    ((True, 3), {}, TypeError, "n_inputs must be an integer"),
    (("3", 3), {}, TypeError, "n_inputs must be an integer"),
    ((3, 3, "swish"), {}, ValueError, "activation must be one of"),
    ((3, 3, None), {}, ValueError, "activation must be one of"),
    ((3, 3, "relu", "orthogonal"), {}, ValueError, "init must be one of"),
    ((3, 3), dict(dtype="int32"), ValueError, "dtype must be 'float32' or 'float64'"),
    ((3, 3), dict(dtype=[1, 2]), ValueError, "dtype must be 'float32' or 'float64'"),
    ((3, 3), dict(dtype="float16"), ValueError, "dtype must be 'float32' or 'float64'"),
    ((3, 3), dict(seed=-1), ValueError, "seed must be a non-negative int"),
    ((3, 3), dict(seed="x"), TypeError, "seed must be None, an int"),
]:
    add(f"Layer-{args}-{kwargs}", lambda w, a=args, k=kwargs: gd.Layer(*a, **k), error, match)

for id_, make, error, match in [
    ("empty", lambda w: dict(layers=[]), ValueError, "at least one Layer"),
    ("string", lambda w: dict(layers="abc"), TypeError, "layers must be a list of Layer"),
    ("single-layer", lambda w: dict(layers=gd.Layer(2, 1)), TypeError, "list of Layer"),
    ("item", lambda w: dict(layers=[gd.Layer(2, 3), 3]), TypeError, r"layers\[1\] must be a Layer"),
    ("chain", lambda w: dict(layers=[gd.Layer(2, 3), gd.Layer(4, 1)]), ValueError,
     r"layers\[1\] takes 4 inputs but layers\[0\] gives 3"),
    ("softmax-hidden", lambda w: dict(layers=[gd.Layer(2, 3, "softmax"), gd.Layer(3, 2)]),
     ValueError, "softmax is for the output layer only"),
    ("softmax-one-output", lambda w: dict(layers=[gd.Layer(2, 1, "softmax")]), ValueError,
     "softmax output layer needs at least two outputs"),
    ("loss-name", lambda w: dict(layers=[gd.Layer(2, 1)], loss="nope"), ValueError,
     "loss must be one of"),
    ("loss-type", lambda w: dict(layers=[gd.Layer(2, 1)], loss=None), ValueError,
     "loss must be one of"),
    ("bce-relu", lambda w: dict(layers=[gd.Layer(2, 1, "relu")], loss="bce"), ValueError,
     "loss 'bce' needs a 'sigmoid' output layer"),
    ("bce-softmax", lambda w: dict(layers=[gd.Layer(2, 2, "softmax")], loss="bce"), ValueError,
     "loss 'bce' needs a 'sigmoid' output layer"),
    ("ce-sigmoid", lambda w: dict(layers=[gd.Layer(2, 3, "sigmoid")], loss="cross_entropy"),
     ValueError, "loss 'cross_entropy' needs a 'softmax' output layer"),
    ("ce-identity", lambda w: dict(layers=[gd.Layer(2, 3)], loss="cross_entropy"), ValueError,
     "needs a 'softmax' output layer"),
    ("dtype", lambda w: dict(layers=[gd.Layer(2, 1)], dtype="int32"), ValueError,
     "dtype must be"),
    ("seed", lambda w: dict(layers=[gd.Layer(2, 1)], seed=2.0), TypeError, "seed must be None"),
    # a layer of the (float32) reg network converted to float64 would leave reg behind
    ("shared-layer-dtype", lambda w: dict(layers=[w.reg.layers[0], gd.Layer(4, 2)],
                                          dtype="float64"),
     ValueError, r"layers\[0\] \(float32\) belongs to another network"),
]:
    add(f"Network-{id_}", lambda w, m=make: gd.Network(**m(w)), error, match)

for id_, kwargs, error, match in [
    ("short", dict(sizes=[3]), ValueError, "sizes needs at least two entries"),
    ("string", dict(sizes="34"), TypeError, "sizes must be a sequence of ints"),
    ("zero", dict(sizes=[3, 0, 1]), ValueError, r"sizes\[1\] must be >= 1"),
    ("float", dict(sizes=[3, 2.5, 1]), TypeError, r"sizes\[1\] must be an integer"),
    ("activation", dict(sizes=[3, 1], activation="swish"), ValueError, "activation must be"),
    ("output_activation", dict(sizes=[3, 1], output_activation="nope"), ValueError,
     "output_activation must be one of"),
    ("softmax-hidden", dict(sizes=[3, 4, 2], activation="softmax"), ValueError,
     "softmax is for the output layer only"),
    ("loss-mismatch", dict(sizes=[3, 2], output_activation="sigmoid", loss="cross_entropy"),
     ValueError, "needs a 'softmax' output layer"),
    ("bce-mismatch", dict(sizes=[3, 1], loss="bce"), ValueError, "needs a 'sigmoid' output"),
    ("dtype", dict(sizes=[3, 1], dtype="float16"), ValueError, "dtype must be"),
    ("seed", dict(sizes=[3, 1], seed=-5), ValueError, "seed must be a non-negative int"),
]:
    add(f"from_sizes-{id_}", lambda w, k=kwargs: gd.Network.from_sizes(**k), error, match)

for id_, kwargs, error, match in [
    ("n_inputs", dict(n_inputs=0), ValueError, "n_inputs must be >= 1"),
    ("softmax", dict(n_inputs=2, activation="softmax"), ValueError, "softmax needs at least two"),
    ("activation", dict(n_inputs=2, activation="swish"), ValueError, "activation must be one of"),
    ("loss", dict(n_inputs=2, loss="cross_entropy"), ValueError, "needs a 'softmax' output"),
    ("bce-identity", dict(n_inputs=2, activation="identity", loss="bce"), ValueError,
     "needs a 'sigmoid' output"),
    ("dtype", dict(n_inputs=2, dtype="int8"), ValueError, "dtype must be"),
]:
    add(f"Perceptron-{id_}", lambda w, k=kwargs: gd.Perceptron(**k), error, match)

# --- assigning parameters ------------------------------------------------------------------
for id_, call, error, match in [
    ("layer.weights-shape", lambda w: setattr(w.reg.layers[0], "weights", np.zeros((4, 3))),
     ValueError, r"weights must have shape \(3, 4\)"),
    ("layer.weights-nan", lambda w: setattr(w.reg.layers[0], "weights", np.full((3, 4), np.nan)),
     ValueError, "weights contains NaN"),
    ("layer.weights-strings", lambda w: setattr(w.reg.layers[0], "weights", np.full((3, 4), "a")),
     TypeError, "weights must hold real numbers"),
    ("layer.bias-shape", lambda w: setattr(w.clf.layers[1], "bias", np.zeros(4)), ValueError,
     r"bias must have shape \(3,\)"),
    ("layer.bias-inf", lambda w: setattr(w.clf.layers[1], "bias", np.full(3, np.inf)),
     ValueError, "bias contains infinity"),
    ("layer.bias-overflow", lambda w: setattr(w.reg.layers[1], "bias", np.full(2, 1e300)),
     ValueError, "bias contains infinity"),  # float32
    ("perceptron.weights-shape", lambda w: setattr(w.perc, "weights", np.zeros(2)), ValueError,
     r"weights must have shape \(3,\)"),
    ("perceptron.weights-nan", lambda w: setattr(w.perc, "weights", [0.0, np.nan, 0.0]),
     ValueError, "weights contains NaN"),
    ("perceptron.bias-nan", lambda w: setattr(w.perc, "bias", math.nan), ValueError,
     "bias must be finite"),
    ("perceptron.bias-string", lambda w: setattr(w.perc, "bias", "1"), TypeError,
     "bias must be a real number"),
]:
    add(id_, call, error, match)

# --- optimizers and schedules --------------------------------------------------------------
for id_, make, error, match in [
    ("SGD-lr-zero", lambda: gd.SGD(lr=0.0), ValueError, "lr must be > 0"),
    ("SGD-lr-negative", lambda: gd.SGD(lr=-0.1), ValueError, "lr must be > 0"),
    ("SGD-lr-nan", lambda: gd.SGD(lr=math.nan), ValueError, "lr must be finite"),
    ("SGD-lr-inf", lambda: gd.SGD(lr=math.inf), ValueError, "lr must be finite"),
    ("SGD-lr-string", lambda: gd.SGD(lr="0.1"), TypeError, "lr must be a positive number"),
    ("SGD-lr-none", lambda: gd.SGD(lr=None), TypeError, "lr must be a positive number"),
    ("SGD-momentum-one", lambda: gd.SGD(momentum=1.0), ValueError, "momentum must be < 1"),
    ("SGD-momentum-negative", lambda: gd.SGD(momentum=-0.5), ValueError, "momentum must be >= 0"),
    ("SGD-momentum-nan", lambda: gd.SGD(momentum=math.nan), ValueError, "momentum must be finite"),
    ("SGD-nesterov-no-momentum", lambda: gd.SGD(nesterov=True), ValueError, "nesterov=True needs"),
    ("SGD-nesterov-type", lambda: gd.SGD(momentum=0.9, nesterov="yes"), TypeError,
     "nesterov must be True or False"),
    ("SGD-weight_decay", lambda: gd.SGD(weight_decay=-1e-3), ValueError,
     "weight_decay must be >= 0"),
    ("Adam-lr-zero", lambda: gd.Adam(lr=0), ValueError, "lr must be > 0"),
    ("Adam-lr-nan", lambda: gd.Adam(lr=math.nan), ValueError, "lr must be finite"),
    ("Adam-betas-one", lambda: gd.Adam(betas=(1.0, 0.999)), ValueError, r"betas\[0\] must be < 1"),
    ("Adam-betas-nan", lambda: gd.Adam(betas=(0.9, math.nan)), ValueError,
     r"betas\[1\] must be finite"),
    ("Adam-betas-length", lambda: gd.Adam(betas=(0.9,)), TypeError, "betas must be a pair"),
    ("Adam-betas-type", lambda: gd.Adam(betas="ab"), TypeError, "betas must be a pair"),
    ("Adam-eps", lambda: gd.Adam(eps=-1e-8), ValueError, "eps must be >= 0"),
    ("AdamW-weight_decay", lambda: gd.AdamW(weight_decay=math.nan), ValueError,
     "weight_decay must be finite"),
    ("RMSprop-alpha", lambda: gd.RMSprop(alpha=1.5), ValueError, "alpha must be <= 1"),
    ("RMSprop-momentum", lambda: gd.RMSprop(momentum=1.0), ValueError, "momentum must be < 1"),
    ("RMSprop-lr", lambda: gd.RMSprop(lr=-1), ValueError, "lr must be > 0"),
    ("Constant-nan", lambda: gd.schedules.Constant(math.nan), ValueError, "lr must be finite"),
    ("Step-step_size", lambda: gd.schedules.Step(0.1, step_size=0), ValueError,
     "step_size must be >= 1"),
    ("Step-gamma", lambda: gd.schedules.Step(0.1, step_size=2, gamma=0.0), ValueError,
     "gamma must be > 0"),
    ("Exponential-gamma", lambda: gd.schedules.Exponential(0.1, gamma=-1.0), ValueError,
     "gamma must be > 0"),
    ("InverseTime-decay_rate", lambda: gd.schedules.InverseTime(0.1, decay_rate=-1.0),
     ValueError, "decay_rate must be >= 0"),
    ("Cosine-T_max", lambda: gd.schedules.Cosine(0.1, T_max=0), ValueError, "T_max must be >= 1"),
    ("Cosine-eta_min", lambda: gd.schedules.Cosine(0.1, T_max=5, eta_min=0.2), ValueError,
     "eta_min must be in"),
    ("ReduceOnPlateau-factor", lambda: gd.schedules.ReduceOnPlateau(0.1, factor=1.0), ValueError,
     "factor must be < 1"),
    ("ReduceOnPlateau-patience", lambda: gd.schedules.ReduceOnPlateau(0.1, patience=-1),
     ValueError, "patience must be >= 0"),
    ("schedule-epoch", lambda: gd.schedules.Constant(0.1)(-1), ValueError, "epoch must be >= 0"),
    ("schedule-epoch-type", lambda: gd.schedules.Constant(0.1)(1.5), TypeError,
     "epoch must be an int"),
]:
    add(id_, lambda w, m=make: m(), error, match)

# --- backends, threads, minimize -----------------------------------------------------------
def _enter(context):
    with context:
        pass


for id_, make, error, match in [
    ("set_backend-name", lambda: gd.set_backend("cuda"), ValueError, "backend name must be one of"),
    ("set_backend-none", lambda: gd.set_backend(None), ValueError, "backend name must be one of"),
    ("use_backend-name", lambda: _enter(gd.use_backend("cuda")), ValueError,
     "backend name must be one of"),
    ("use_backend-none", lambda: _enter(gd.use_backend(None)), ValueError,
     "backend name must be one of"),
    ("set_num_threads-zero", lambda: gd.set_num_threads(0), ValueError, "n must be a positive"),
    ("set_num_threads-negative", lambda: gd.set_num_threads(-2), ValueError,
     "n must be a positive"),
    ("set_num_threads-string", lambda: gd.set_num_threads("2"), (TypeError, ValueError),
     "n must be"),
    ("set_num_threads-float", lambda: gd.set_num_threads(2.0), (TypeError, ValueError),
     "n must be"),
    ("minimize-fun", lambda: gd.minimize(42, [1.0]), TypeError, "fun must be callable"),
    ("minimize-grad", lambda: gd.minimize(lambda x: x @ x, [1.0], grad=1), TypeError,
     "grad must be callable"),
    ("minimize-x0-empty", lambda: gd.minimize(lambda x: 0.0, []), ValueError,
     "x0 must not be empty"),
    ("minimize-x0-nan", lambda: gd.minimize(lambda x: 0.0, [np.nan]), ValueError,
     "x0 must be finite"),
    ("minimize-x0-2d", lambda: gd.minimize(lambda x: 0.0, np.zeros((2, 2))), ValueError,
     "x0 must be a scalar or 1-d"),
    ("minimize-x0-strings", lambda: gd.minimize(lambda x: 0.0, ["a"]), TypeError,
     "x0 must be real numbers"),
    ("minimize-lr-zero", lambda: gd.minimize(lambda x: x @ x, [1.0], lr=0.0), ValueError,
     "lr must be > 0"),
    ("minimize-lr-nan", lambda: gd.minimize(lambda x: x @ x, [1.0], lr=math.nan), ValueError,
     "lr must be finite"),
    ("minimize-momentum", lambda: gd.minimize(lambda x: x @ x, [1.0], momentum=1.0),
     ValueError, "momentum must be < 1"),
    ("minimize-max_iter", lambda: gd.minimize(lambda x: x @ x, [1.0], max_iter=-1), ValueError,
     "max_iter must be >= 0"),
    ("minimize-max_iter-float", lambda: gd.minimize(lambda x: x @ x, [1.0], max_iter=10.0),
     TypeError, "max_iter must be an int"),
    ("minimize-tol", lambda: gd.minimize(lambda x: x @ x, [1.0], tol=-1.0), ValueError,
     "tol must be >= 0"),
    ("minimize-fun-nan", lambda: gd.minimize(lambda x: math.nan, [1.0]), ValueError,
     "fun must return a finite value at x0"),
    ("minimize-fun-vector", lambda: gd.minimize(lambda x: x, [1.0, 2.0]), ValueError,
     "fun must return a scalar"),
    ("minimize-grad-shape", lambda: gd.minimize(lambda x: x @ x, [1.0, 2.0],
                                                grad=lambda x: np.zeros(3)), ValueError,
     r"grad must return an array of shape \(2,\)"),
]:
    add(id_, lambda w, m=make: m(), error, match)


# --- files ---------------------------------------------------------------------------------
def _missing_folder(w):
    w.reg.save(os.path.join(w.tmp, "no", "such", "folder", "model.npz"))


for id_, call, error, match in [
    ("save-missing-folder", _missing_folder, FileNotFoundError, "folder .* does not exist"),
    ("save-to-folder", lambda w: w.reg.save(w.tmp), IsADirectoryError, "it is a folder"),
    ("save-path-type", lambda w: w.reg.save(123), TypeError, "path must be a str"),
    ("save-path-none", lambda w: w.clf.save(None), TypeError, "path must be a str"),
    ("load-missing", lambda w: gd.Network.load(os.path.join(w.tmp, "missing.npz")),
     FileNotFoundError, "no such file"),
    ("load-path-type", lambda w: gd.Network.load(3.5), TypeError, "path must be a str"),
    ("load-text-file", lambda w: gd.Network.load(w.text_file), ValueError,
     "not a readable gdcore network file"),
]:
    add(id_, call, error, match)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_raises_and_changes_nothing(backend, case, tmp_path):
    world = make_world()
    world.tmp = str(tmp_path)
    world.text_file = str(tmp_path / "notes.txt")
    with open(world.text_file, "w") as f:
        f.write("not a network\n")
    before = snapshot(world)
    previous_backend = gd.backend()
    with pytest.raises(case.error, match=case.match):
        case.call(world)
    assert gd.backend() == previous_backend
    after = snapshot(world)
    for i, (a, b) in enumerate(zip(before, after)):
        assert a == b, f"entry {i} of the snapshot changed"
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]  # no file, no temporary left behind


def test_table_covers_every_public_entry_point():
    ids = " ".join(c.id for c in CASES)
    for name in ["Layer", "Network", "from_sizes", "Perceptron", "forward", "predict", "call",
                 "loss", "gradients", "fit", "find_lr", "check_gradients", "minimize", "save",
                 "load", "SGD", "Adam", "AdamW", "RMSprop", "Step", "Cosine", "ReduceOnPlateau",
                 "set_backend", "use_backend", "set_num_threads", "validation_data",
                 "sample_weight"]:
        assert name in ids, name


def test_world_is_deterministic():
    """The snapshot comparison is meaningful: two worlds built alike are bit-identical."""
    a, b = snapshot(make_world()), snapshot(make_world())
    for x, y in zip(a[:4], b[:4]):
        assert x == y


def test_inputs_are_never_written(backend, rng):
    X, y, sw = rng.normal(size=(8, 2)), rng.normal(size=8), rng.uniform(1, 2, size=8)
    copies = [a.copy() for a in (X, y, sw)]
    net = gd.Network.from_sizes([2, 3, 1], dtype="float64", seed=0)
    net.forward(X)
    net.loss(X, y, sw)
    net.gradients(X, y, sw)
    net.fit(X, y, epochs=2, batch_size=3, sample_weight=sw, validation_split=0.25)
    gd.find_lr(net, X, y, steps=5)
    gd.check_gradients(net, X, y)
    for a, b in zip((X, y, sw), copies):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ accepted edge inputs

def test_perceptron_accepts_a_network_entry_point(backend, rng):
    """find_lr and check_gradients take a Perceptron as well as a Network."""
    X, y = rng.normal(size=(8, 2)), rng.integers(0, 2, size=8)
    p = gd.Perceptron(2, seed=0)
    before = p.weights.copy()
    gd.find_lr(p, X, y, steps=5)
    np.testing.assert_array_equal(p.weights, before)
    assert gd.check_gradients(p, X, y) < 1e-6


def test_shared_layer_of_the_same_dtype_is_allowed(backend, rng):
    """Layers may be shared (tied weights) as long as no dtype conversion detaches them."""
    layer = gd.Layer(2, 2, "tanh", seed=0)
    a = gd.Network([layer, gd.Layer(2, 1)], seed=0)
    b = gd.Network([layer, gd.Layer(2, 1)], seed=0)
    X = rng.normal(size=(4, 2))
    layer.weights, layer.bias = np.eye(2), np.zeros(2)
    np.testing.assert_allclose(a.layers[0].forward(X), np.tanh(X), rtol=1e-6)
    assert a.layers[0] is b.layers[0]
    # once the first network is gone, the layer may be converted
    del a
    import gc
    gc.collect()
    del b
    gc.collect()
    c = gd.Network([layer], dtype="float64")
    assert c.layers[0].weights.dtype == np.float64


@pytest.mark.skipif(not gd._backend._core_engines_available(), reason="needs both engines")
def test_check_gradients_checks_the_networks_own_engine(rng, monkeypatch):
    """A NumPy-backed network is checked on the NumPy engine even when the default is C++."""
    from gdcore.reference.engine import Engine
    X, y = rng.normal(size=(6, 3)), rng.normal(size=6)
    with gd.use_backend("numpy"):
        net = gd.Network.from_sizes([3, 4, 1], activation="tanh", dtype="float64", seed=0)
    real = Engine.gradients

    def doubled(self, X, Y, w, dW, db):  # a broken NumPy backpropagation
        value = real(self, X, Y, w, dW, db)
        for g in (*dW, *db):
            g *= 2
        return value

    monkeypatch.setattr(Engine, "gradients", doubled)
    with gd.use_backend("cpp"):
        assert gd.check_gradients(net, X, y) > 0.1
        assert gd.check_gradients(gd.Network.from_sizes([3, 4, 1], activation="tanh",
                                                        dtype="float64", seed=0), X, y) < 1e-6

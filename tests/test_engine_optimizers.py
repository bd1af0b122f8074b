"""The optimizer rules: three steps worked by hand on both engines, the state contract, and
five steps against torch.optim.

The steps by hand run through the ``run`` fixture: the reference rule called directly
(``optimizer_update``, numpy engine only: it is that engine's implementation) and each engine's
``train_epoch`` (``engine_factory``), where the hand-chosen gradient is produced exactly by a
one-layer identity network with mse loss and a zero input (see :func:`run_engine`). The
contract and torch tests call the rule directly; the compiled core's rules are compared
against it through ``train_epoch`` in test_engine_train_epoch.py as well.
"""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from gdcore.reference.codes import OPTIMIZERS
from gdcore.reference.optimizers import OptimizerConfig, optimizer_update
from helpers import make_hyper, make_state, reference_step


def run_rule(name, hyper, grad_sequence, p0=(1.0, -2.0), dtype=np.float64):
    """Steps optimizer ``name`` over one parameter; returns p after each step, the final state
    and the step counter."""
    p = np.array(p0, dtype=dtype)
    kind = OPTIMIZERS[name]
    config = OptimizerConfig.from_hyper(kind, hyper)
    state = [np.zeros_like(p) for _ in range(config.n_slots())]
    step = np.zeros(1, dtype=np.int64)
    path = []
    for g in grad_sequence:
        optimizer_update(config, int(step[0]) + 1, p, np.array(g, dtype=dtype), state)
        step[0] += 1
        path.append(p.copy())
    return np.array(path), state, step


def run_engine(factory, name, hyper, grad_sequence, p0=(1.0, -2.0), dtype=np.float64):
    """``run_rule`` through an engine's ``train_epoch``: the parameter is the bias b of a
    one-layer identity network (W of shape (1, 2)) under mse with one sample x = 0, so the output
    is b and the gradient is b - y; each step is a one-batch epoch with y = b - g. Returns p
    after each step, b's optimizer state and the step counter (W, whose gradient is zero, only
    decays)."""
    b = np.array(p0, dtype=dtype)
    W = np.zeros((1, b.size), dtype=dtype)
    engine = factory([W], [b], ["identity"], "mse")
    kind = OPTIMIZERS[name]
    state = make_state([W], [b], kind, hyper)
    k = len(state) // 2
    step = np.zeros(1, dtype=np.int64)
    X = np.zeros((1, 1), dtype=dtype)
    path = []
    for g in grad_sequence:
        Y = (b - np.array(g, dtype=dtype)).reshape(1, -1)
        engine.train_epoch(X, Y, None, np.arange(1), 1, kind, hyper, state, step)
        path.append(b.copy())
    return np.array(path), state[k:], step


@pytest.fixture(params=["optimizer_update", "train_epoch"])
def run(request, engine_factory):
    """Steps an optimizer over p = [1, -2]: by the reference rule (numpy engine only) or by the
    engine's train_epoch."""
    if request.param == "optimizer_update":
        if engine_factory.is_core:
            pytest.skip("optimizer_update is the numpy engine's rule")
        return run_rule
    return lambda *args, **kwargs: run_engine(engine_factory, *args, **kwargs)


CONSTANT = [[0.5, -1.0]] * 3                        # the same gradient three times
VARYING = [[1.0, -2.0], [3.0, 0.0], [-1.0, 2.0]]    # g1, g2, g3


# ---------------------------------------------------------------------------- by hand
# p0 = [1, -2] throughout.

def test_sgd_plain_and_weight_decay_by_hand(run):
    path, _, _ = run("sgd", make_hyper(lr=0.1), CONSTANT)
    # p -= 0.1 g = p - [0.05, -0.1] each step
    assert_allclose(path, [[0.95, -1.9], [0.9, -1.8], [0.85, -1.7]], rtol=1e-14)

    path, _, _ = run("sgd", make_hyper(lr=0.1, weight_decay=0.1), CONSTANT)
    # 1: g = [0.5 + 0.1*1, -1 + 0.1*(-2)] = [0.6, -1.2];       p = [0.94, -1.88]
    # 2: g = [0.5 + 0.094, -1 - 0.188] = [0.594, -1.188];      p = [0.8806, -1.7612]
    # 3: g = [0.5 + 0.08806, -1 - 0.17612] = [0.58806, -1.17612]; p = [0.821794, -1.643588]
    assert_allclose(path, [[0.94, -1.88], [0.8806, -1.7612], [0.821794, -1.643588]], rtol=1e-14)


def test_sgd_momentum_by_hand(run):
    path, (buf,), _ = run("sgd", make_hyper(lr=0.1, momentum=0.9), CONSTANT)
    # 1: buf = 0.9*0 + g = [0.5, -1];                     p = [1 - 0.05, -2 + 0.1] = [0.95, -1.9]
    # 2: buf = 0.9*[0.5, -1] + g = [0.95, -1.9];          p = [0.855, -1.71]
    # 3: buf = 0.9*[0.95, -1.9] + g = [1.355, -2.71];     p = [0.855 - 0.1355, -1.71 + 0.271]
    assert_allclose(path, [[0.95, -1.9], [0.855, -1.71], [0.7195, -1.439]], rtol=1e-14)
    assert_allclose(buf, [1.355, -2.71], rtol=1e-14)


def test_sgd_nesterov_by_hand(run):
    path, _, _ = run("sgd", make_hyper(lr=0.1, momentum=0.9, nesterov=True), CONSTANT)
    # 1: buf = g;          step g + 0.9 buf = 1.9 g = [0.95, -1.9];     p = [0.905, -1.81]
    # 2: buf = 1.9 g;      step g + 0.9*1.9 g = 2.71 g = [1.355, -2.71]; p = [0.7695, -1.539]
    # 3: buf = 2.71 g;     step g + 0.9*2.71 g = 3.439 g = [1.7195, -3.439]
    #                      p = [0.7695 - 0.17195, -1.539 + 0.3439] = [0.59755, -1.1951]
    assert_allclose(path, [[0.905, -1.81], [0.7695, -1.539], [0.59755, -1.1951]], rtol=1e-14)


ADAM = dict(lr=0.1, beta1=0.5, beta2=0.75, eps=0.1)  # round betas, a visible eps


def test_adam_by_hand(run):
    path, (m, v), step = run("adam", make_hyper(**ADAM), VARYING)
    # t=1, g = [1, -2]:  m = 0.5 g = [0.5, -1];  v = 0.25 g^2 = [0.25, 1]
    #   step size 0.1/(1 - 0.5) = 0.2;  sqrt(1 - 0.75) = 0.5
    #   denom = sqrt(v)/0.5 + 0.1 = [1.1, 2.1]
    #   p = [1 - 0.2*0.5/1.1, -2 + 0.2*1/2.1] = [0.9090909091, -1.9047619048]
    # t=2, g = [3, 0]:   m = 0.5 [0.5, -1] + 0.5 [3, 0] = [1.75, -0.5]
    #   v = 0.75 [0.25, 1] + 0.25 [9, 0] = [2.4375, 0.75]
    #   step size 0.1/(1 - 0.25) = 0.1333333333;  sqrt(1 - 0.5625) = 0.6614378278
    #   denom = [1.5612494996, 0.8660254038]/0.6614378278 + 0.1 = [2.4603873774, 1.4093073414]
    #   p = [0.9090909091 - 0.1333333333*1.75/2.4603873774,
    #        -1.9047619048 + 0.1333333333*0.5/1.4093073414] = [0.8142548945, -1.8574573427]
    # t=3, g = [-1, 2]:  m = [0.875 - 0.5, -0.25 + 1] = [0.375, 0.75]
    #   v = [1.828125 + 0.25, 0.5625 + 1] = [2.078125, 1.5625]
    #   step size 0.1/(1 - 0.125) = 0.1142857143;  sqrt(1 - 0.421875) = 0.7603453163
    #   denom = [1.4415703243, 1.25]/0.7603453163 + 0.1 = [1.9959416116, 1.7439898731]
    #   p = [0.8142548945 - 0.1142857143*0.375/1.9959416116,
    #        -1.8574573427 - 0.1142857143*0.75/1.7439898731] = [0.7927827519, -1.9066057276]
    assert_allclose(path, [[0.9090909091, -1.9047619048],
                           [0.8142548945, -1.8574573427],
                           [0.7927827519, -1.9066057276]], rtol=1e-9)
    assert_allclose(m, [0.375, 0.75], rtol=1e-14)
    assert_allclose(v, [2.078125, 1.5625], rtol=1e-14)
    assert step[0] == 3


def test_adamw_by_hand(run):
    path, _, _ = run("adamw", make_hyper(weight_decay=0.5, **ADAM), VARYING)
    # each step first p *= 1 - 0.1*0.5 = 0.95, then the Adam step above (same m, v, denom):
    # t=1: p = [0.95, -1.9] -> [0.95 - 0.0909090909, -1.9 + 0.0952380952]
    #        = [0.8590909091, -1.8047619048]
    # t=2: p = [0.8161363636, -1.7145238095] -> [0.8161363636 - 0.0948360146,
    #        -1.7145238095 + 0.0473045621] = [0.7213003490, -1.6672192474]
    # t=3: p = [0.6852353316, -1.5838582850] -> [0.6852353316 - 0.0214721426,
    #        -1.5838582850 - 0.0491483850] = [0.6637631890, -1.6330066700]
    assert_allclose(path, [[0.8590909091, -1.8047619048],
                           [0.7213003490, -1.6672192474],
                           [0.6637631890, -1.6330066700]], rtol=1e-9)


def test_adam_weight_decay_is_l2_added_to_the_gradient(run):
    # Adam's weight_decay adds wd*p to g (coupled), unlike AdamW: t=1, wd=1, g = [1, -2]
    # g' = [1 + 1, -2 - 2] = [2, -4]; m = [1, -2]; v = [1, 4]; denom = [2, 4] + 0.1
    # p = [1 - 0.2*1/2.1, -2 + 0.2*2/4.1] = [0.9047619048, -1.9024390244]
    path, _, _ = run("adam", make_hyper(weight_decay=1.0, **ADAM), VARYING[:1])
    assert_allclose(path, [[0.9047619048, -1.9024390244]], rtol=1e-9)


RMS = dict(lr=0.1, alpha=0.75, eps=0.1)


def test_rmsprop_by_hand(run):
    path, (sq,), _ = run("rmsprop", make_hyper(**RMS), VARYING)
    # t=1, g = [1, -2]:  sq = 0.25 g^2 = [0.25, 1];  avg = [0.5, 1] + 0.1 = [0.6, 1.1]
    #   p = [1 - 0.1*1/0.6, -2 + 0.1*2/1.1] = [0.8333333333, -1.8181818182]
    # t=2, g = [3, 0]:   sq = [0.1875 + 2.25, 0.75 + 0] = [2.4375, 0.75]
    #   avg = [1.5612494996, 0.8660254038] + 0.1 = [1.6612494996, 0.9660254038]
    #   p = [0.8333333333 - 0.3/1.6612494996, -1.8181818182 - 0] = [0.6527463715, -1.8181818182]
    # t=3, g = [-1, 2]:  sq = [1.828125 + 0.25, 0.5625 + 1] = [2.078125, 1.5625]
    #   avg = [1.4415703243, 1.25] + 0.1 = [1.5415703243, 1.35]
    #   p = [0.6527463715 + 0.1/1.5415703243, -1.8181818182 - 0.2/1.35]
    #     = [0.7176152902, -1.9663299663]
    assert_allclose(path, [[0.8333333333, -1.8181818182],
                           [0.6527463715, -1.8181818182],
                           [0.7176152902, -1.9663299663]], rtol=1e-9)
    assert_allclose(sq, [2.078125, 1.5625], rtol=1e-14)


def test_rmsprop_momentum_by_hand(run):
    path, (sq, buf), _ = run("rmsprop", make_hyper(momentum=0.9, **RMS), VARYING)
    # same sq and avg as above;  buf = 0.9 buf + g/avg;  p -= 0.1 buf
    # t=1: buf = [1/0.6, -2/1.1] = [1.6666666667, -1.8181818182]; p = [0.8333333333, -1.8181818182]
    # t=2: buf = [1.5 + 3/1.6612494996, -1.6363636364 + 0] = [3.3058696185, -1.6363636364]
    #      p = [0.8333333333 - 0.3305869618, -1.8181818182 + 0.1636363636]
    #        = [0.5027463715, -1.6545454545]
    # t=3: buf = [2.9752826566 - 1/1.5415703243, -1.4727272727 + 2/1.35]
    #          = [2.3265934699, 0.0087542088]
    #      p = [0.5027463715 - 0.2326593470, -1.6545454545 - 0.0008754209]
    #        = [0.2700870245, -1.6554208754]
    assert_allclose(path, [[0.8333333333, -1.8181818182],
                           [0.5027463715, -1.6545454545],
                           [0.2700870245, -1.6554208754]], rtol=1e-9)
    assert_allclose(buf, [2.3265934699, 0.0087542088], rtol=1e-8)


# ---------------------------------------------------------------------------- contract

@pytest.mark.parametrize("name, hyper, slots", [
    ("sgd", make_hyper(), 0), ("sgd", make_hyper(momentum=0.5), 1),
    ("adam", make_hyper(), 2), ("adamw", make_hyper(), 2),
    ("rmsprop", make_hyper(), 1), ("rmsprop", make_hyper(momentum=0.5), 2),
    ("rprop", make_hyper(), 2), ("rprop", make_hyper(momentum=0.5), 2),
])
def test_n_slots(name, hyper, slots):
    assert OptimizerConfig.from_hyper(OPTIMIZERS[name], hyper).n_slots() == slots


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# (lbfgs has no per-batch rule: tests/test_lbfgs.py checks it)
@pytest.mark.parametrize("name", [name for name in OPTIMIZERS if name != "lbfgs"])
def test_updates_in_place_keeps_dtype_and_leaves_grads_alone(name, dtype):
    kind = OPTIMIZERS[name]
    hyper = make_hyper(lr=0.1, momentum=0.9, weight_decay=0.1)
    params = [np.ones((2, 3), dtype), np.full(3, -1.0, dtype)]
    grads = [np.full((2, 3), 0.5, dtype), np.full(3, 0.25, dtype)]
    grads_before = [g.copy() for g in grads]
    slots = OptimizerConfig.from_hyper(kind, hyper).n_slots()
    state = [np.zeros_like(p) for p in params for _ in range(slots)]
    ids = [id(a) for a in params + state]
    start = 0 if name == "rprop" else 7  # (Rprop's step sizes are set to lr at step 1)
    step = np.array([start], dtype=np.int64)

    reference_step(kind, params, grads, state, hyper, step)

    assert step[0] == start + 1 and step.dtype == np.int64
    assert [id(a) for a in params + state] == ids
    assert all(a.dtype == dtype for a in params + state)
    assert not np.allclose(params[0], 1.0)  # it did move
    for g, g0 in zip(grads, grads_before):
        assert np.array_equal(g, g0)


def test_adam_bias_correction_uses_the_step_counter():
    # resuming at step 99 means t = 100: with zero state and g = 0.5,
    # m = 0.1*0.5 = 0.05, v = 0.001*0.25 = 0.00025,
    # p = 1 - (0.1/(1 - 0.9^100)) * 0.05 / (sqrt(0.00025)/sqrt(1 - 0.999^100) + 1e-8) = 0.90243...
    # (at t = 1 it would be 1 - 0.1 * 0.5/(0.5 + 1e-8) = 0.9)
    p = np.array([1.0])
    step = np.array([99], dtype=np.int64)
    reference_step(OPTIMIZERS["adam"], [p], [np.array([0.5])], [np.zeros(1), np.zeros(1)],
                   make_hyper(lr=0.1), step)
    expected = 1 - (0.1 / (1 - 0.9**100)) * 0.05 / (math.sqrt(0.00025) / math.sqrt(1 - 0.999**100)
                                                    + 1e-8)
    assert p[0] == pytest.approx(expected, rel=1e-12)
    assert p[0] == pytest.approx(0.90243, abs=1e-5)
    assert step[0] == 100


def test_train_epoch_bias_correction_uses_the_step_counter(engine_factory):
    """As above, through each engine's train_epoch (run_engine's construction, g = 0.5)."""
    b, W = np.array([1.0]), np.zeros((1, 1))
    engine = engine_factory([W], [b], ["identity"], "mse")
    step = np.array([99], dtype=np.int64)
    # one output: the mse gradient is 2 (b - y) = 0.5
    engine.train_epoch(np.zeros((1, 1)), (b - 0.25).reshape(1, 1), None, np.arange(1), 1,
                       OPTIMIZERS["adam"], make_hyper(lr=0.1), [np.zeros((1, 1)), np.zeros((1, 1)),
                                                                np.zeros(1), np.zeros(1)], step)
    expected = 1 - (0.1 / (1 - 0.9**100)) * 0.05 / (math.sqrt(0.00025) / math.sqrt(1 - 0.999**100)
                                                    + 1e-8)
    assert b[0] == pytest.approx(expected, rel=1e-12)
    assert step[0] == 100


# ---------------------------------------------------------------------------- torch.optim

TORCH_CASES = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("adam", dict(lr=0.01)),
    ("adam", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    ("adamw", dict(lr=0.01, weight_decay=0.01)),  # torch's AdamW default wd, spelled out
    ("adamw", dict(lr=0.05, betas=(0.7, 0.95), weight_decay=0.5)),
    ("rmsprop", dict(lr=0.01)),
    ("rmsprop", dict(lr=0.02, alpha=0.9, eps=1e-6, momentum=0.7, weight_decay=0.1)),
    ("rprop", dict(lr=0.01)),
    ("rprop", dict(lr=0.3, etas=(0.3, 1.5), step_sizes=(0.05, 0.4))),  # both clamps reached
]


def hyper_from_torch(kwargs):
    betas = kwargs.get("betas", (0.9, 0.999))
    return make_hyper(lr=kwargs["lr"], momentum=kwargs.get("momentum", 0.0),
                      nesterov=kwargs.get("nesterov", False),
                      weight_decay=kwargs.get("weight_decay", 0.0), beta1=betas[0],
                      beta2=betas[1], eps=kwargs.get("eps", 1e-8),
                      alpha=kwargs.get("alpha", 0.99),
                      eta_minus=kwargs.get("etas", (0.5, 1.2))[0],
                      eta_plus=kwargs.get("etas", (0.5, 1.2))[1],
                      step_size_min=kwargs.get("step_sizes", (1e-6, 50))[0],
                      step_size_max=kwargs.get("step_sizes", (1e-6, 50))[1])


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("name, kwargs", TORCH_CASES)
def test_five_steps_equal_torch(name, kwargs, dtype, rtol):
    torch = pytest.importorskip("torch")
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
           "rmsprop": torch.optim.RMSprop, "rprop": torch.optim.Rprop}[name]
    rng = np.random.default_rng(0)
    params = [rng.normal(size=(3, 4)).astype(dtype), rng.normal(size=4).astype(dtype)]
    grad_steps = [[rng.normal(size=p.shape).astype(dtype) for p in params] for _ in range(5)]

    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = cls(tparams, foreach=False, **kwargs)
    for grads in grad_steps:
        for tp, g in zip(tparams, grads):
            tp.grad = torch.tensor(g)
        opt.step()

    kind, hyper = OPTIMIZERS[name], hyper_from_torch(kwargs)
    slots = OptimizerConfig.from_hyper(kind, hyper).n_slots()
    state = [np.zeros_like(p) for p in params for _ in range(slots)]
    step = np.zeros(1, dtype=np.int64)
    for grads in grad_steps:
        reference_step(kind, params, grads, state, hyper, step)

    assert step[0] == 5
    for p, tp in zip(params, tparams):
        assert p.dtype == dtype
        assert_allclose(p, tp.detach().numpy(), rtol=rtol, atol=rtol)
    # the state too, slot by slot, under torch's names
    names = {"sgd": ["momentum_buffer"] if kwargs.get("momentum") else [],
             "adam": ["exp_avg", "exp_avg_sq"], "adamw": ["exp_avg", "exp_avg_sq"],
             "rmsprop": ["square_avg"] + (["momentum_buffer"] if kwargs.get("momentum") else []),
             "rprop": ["prev", "step_size"]}
    slots = names[name]
    for i, tp in enumerate(tparams):
        for s, key in enumerate(slots):
            assert_allclose(state[i * len(slots) + s], opt.state[tp][key].numpy(),
                            rtol=rtol, atol=rtol)

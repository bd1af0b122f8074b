"""gd.LBFGS: the engines' lbfgs_step against each other and against SciPy's L-BFGS-B, the line
search (its port against SciPy's dcsrch, and the strong Wolfe conditions on every accepted
step), and the public optimizer: arguments, fit, stop reasons, state, rollback."""
import math
import pickle

import numpy as np
import pytest

import gdcore as gd
from gdcore.reference import codes
from gdcore.reference.line_search import LineSearch, SearchTask

from helpers import assert_close, make_params
from scipy_lbfgsb import SCIPY_FTOL, scipy_lbfgsb

RUN = {name: i for i, name in enumerate(codes.LBFGS_RUN)}


# ------------------------------------------------------------------------------- engine level

def _config(**overrides):
    values = dict(lr=1.0, history_size=5, max_iter=3, max_eval=100, tolerance_grad=1e-12,
                  tolerance_change=0.0, line_search=1.0, max_fun=math.inf, max_ls=20)
    values.update(overrides)
    return np.array([float(values[name]) for name in codes.LBFGS_CONFIG])


def _problem(kind, dtype, seed=0):
    """(sizes, activations, loss, X, Y, sample_weight) of a small problem."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((30, 3)).astype(dtype)
    if kind == "mse":
        Y = np.c_[np.sin(X[:, 0]), X[:, 1] * X[:, 2]].astype(dtype)
        return [3, 7, 2], ["tanh", "identity"], "mse", X, Y, None
    if kind == "cross_entropy":
        Y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
        return [3, 6, 3], ["softplus", "softmax"], "cross_entropy", X, Y, None
    Y = (X[:, :1] * X[:, 1:2] > 0).astype(dtype)  # bce, weighted
    w = rng.uniform(0.5, 2.0, 30).astype(dtype)
    return [3, 5, 4, 1], ["relu", "tanh", "sigmoid"], "bce", X, Y, w


def _engine_run(factory, kind, dtype, steps, **config):
    sizes, acts, loss, X, Y, w = _problem(kind, dtype)
    weights, biases = make_params(sizes, dtype, seed=1)
    engine = factory(weights, biases, acts, loss)
    cfg = _config(**config)
    n_slots = codes.state_slots("lbfgs", False, int(cfg[1]))
    params = [p for pair in zip(weights, biases) for p in pair]
    state = [np.zeros_like(p) for p in params for _ in range(n_slots)]
    run, step = np.zeros(len(codes.LBFGS_RUN)), np.zeros(1, np.int64)
    losses = [engine.lbfgs_step(X, Y, w, cfg, state, run, step) for _ in range(steps)]
    return losses, params, run, step


@pytest.mark.parametrize("kind", ["mse", "cross_entropy", "bce"])
@pytest.mark.parametrize("config", [{}, {"line_search": 0.0, "lr": 0.2}, {"history_size": 2}])
def test_both_engines_take_the_same_steps(engine_factory, kind, config, dtype):
    from helpers import EngineFactory
    ours = _engine_run(engine_factory, kind, dtype, 4, **config)
    reference = _engine_run(EngineFactory("numpy"), kind, dtype, 4, **config)
    rtol = 1e-10 if dtype == "float64" else 2e-3  # float32: a loose bound on a few iterations
    assert_close(ours[0], reference[0], rtol, "losses")
    for p, q in zip(ours[1], reference[1]):
        assert_close(p, q, rtol, "parameters")
    counts = ["iterations", "n_pairs", "newest", "status", "skipped", "resets"]
    if dtype == "float64":
        counts.append("evaluations")
    assert [ours[2][RUN[c]] for c in counts] == [reference[2][RUN[c]] for c in counts]
    assert ours[3][0] == reference[3][0] == 4
    assert ours[2][RUN["iterations"]] >= 4  # it did iterate (3 per step, unless converged)
    assert ours[0][-1] < ours[0][0]


def test_each_accepted_step_satisfies_the_strong_wolfe_conditions(engine_factory):
    sizes, acts, loss, X, Y, w = _problem("mse", "float64")
    weights, biases = make_params(sizes, "float64", seed=1)
    engine = engine_factory(weights, biases, acts, loss)
    cfg = _config(max_iter=1)
    n_slots = codes.state_slots("lbfgs", False, 5)
    params = [p for pair in zip(weights, biases) for p in pair]
    state = [np.zeros_like(p) for p in params for _ in range(n_slots)]
    run, step = np.zeros(len(codes.LBFGS_RUN)), np.zeros(1, np.int64)
    engine.lbfgs_step(X, Y, w, cfg, state, run, step)  # the first step: now g is kept
    checked = 0
    for _ in range(15):
        x0 = np.concatenate([p.ravel() for p in params])
        g0 = np.concatenate([state[p * n_slots].ravel() for p in range(len(params))])
        f0 = run[RUN["loss"]]
        engine.lbfgs_step(X, Y, w, cfg, state, run, step)
        s = np.concatenate([p.ravel() for p in params]) - x0
        g1 = np.concatenate([state[p * n_slots].ravel() for p in range(len(params))])
        f1 = run[RUN["loss"]]
        slope = g0 @ s
        assert slope < 0  # a descent direction
        assert f1 <= f0 + 1e-3 * slope + 1e-15 * abs(f0)  # sufficient decrease (ftol 1e-3)
        assert abs(g1 @ s) <= 0.9 * abs(slope) * (1 + 1e-9)  # curvature (gtol 0.9)
        checked += 1
    assert checked == 15 and run[RUN["iterations"]] == 16


def test_lbfgs_step_argument_errors_match_and_change_nothing(engine_factory):
    sizes, acts, loss, X, Y, w = _problem("mse", "float64")
    weights, biases = make_params(sizes, "float64", seed=1)
    engine = engine_factory(weights, biases, acts, loss)
    params = [p for pair in zip(weights, biases) for p in pair]
    before = [p.copy() for p in params]
    n_slots = codes.state_slots("lbfgs", False, 5)
    state = [np.zeros_like(p) for p in params for _ in range(n_slots)]
    run, step = np.zeros(len(codes.LBFGS_RUN)), np.zeros(1, np.int64)
    bad_run = run.copy()
    bad_run[RUN["n_pairs"]] = 6
    cases = [
        (dict(config=_config()[:-1]), ValueError, "shape", r"config must have shape"),
        (dict(config=_config(history_size=0)), ValueError, "index",
         r"\(history_size\) must be a whole number in \[1, 100000\]"),
        (dict(config=_config(history_size=2.5)), ValueError, "index", "whole number"),
        (dict(config=_config(history_size=4)), ValueError, "shape",
         r"state must hold 48 arrays \(12 per parameter for lbfgs with history_size 4\)"),
        (dict(run=bad_run), ValueError, "index", "n_pairs in"),
        (dict(run=run.astype(np.float32)), TypeError, "dtype", "run must be a float64"),
        (dict(step=np.zeros(2, np.int64)), ValueError, "shape", "step must have shape"),
    ]
    for change, error, code, match in cases:
        args = {**dict(config=_config(), state=state, run=run, step=step), **change}
        with pytest.raises(error, match=match) as info:
            engine.lbfgs_step(X, Y, w, args["config"], args["state"], args["run"], args["step"])
        assert info.value.code == code
    assert all(np.array_equal(p, q) for p, q in zip(params, before))
    assert not run.any() and step[0] == 0 and not any(a.any() for a in state)


@pytest.mark.skipif(not __import__("helpers").core_available(), reason="needs the core")
def test_lbfgs_step_errors_read_the_same_on_both_engines():
    from helpers import EngineFactory
    messages = {}
    for kind in ("numpy", "cpp"):
        sizes, acts, loss, X, Y, w = _problem("mse", "float64")
        weights, biases = make_params(sizes, "float64", seed=1)
        engine = EngineFactory(kind)(weights, biases, acts, loss)
        params = [p for pair in zip(weights, biases) for p in pair]
        state = [np.zeros_like(p) for p in params
                 for _ in range(codes.state_slots("lbfgs", False, 5))]
        run, step = np.zeros(len(codes.LBFGS_RUN)), np.zeros(1, np.int64)
        bad_run = run.copy()
        bad_run[RUN["newest"]] = 5.0
        got = []
        for args in [(_config(history_size=0.5), state, run), (_config(history_size=4), state, run),
                     (_config(), state, bad_run), (_config()[:3], state, run)]:
            with pytest.raises((ValueError, TypeError)) as info:
                engine.lbfgs_step(X, Y, w, *args, step)
            got.append((type(info.value), info.value.code, str(info.value)))
        messages[kind] = got
    assert messages["numpy"] == messages["cpp"]


def test_train_epoch_refuses_the_lbfgs_code(engine_factory):
    from helpers import make_hyper
    sizes, acts, loss, X, Y, w = _problem("mse", "float64")
    weights, biases = make_params(sizes, "float64", seed=1)
    engine = engine_factory(weights, biases, acts, loss)
    with pytest.raises(ValueError, match="full-batch solver: call lbfgs_step") as info:
        engine.train_epoch(X, Y, w, np.arange(30, dtype=np.int64), 8, codes.OPTIMIZERS["lbfgs"],
                           make_hyper(), [], np.zeros(1, np.int64))
    assert info.value.code == "index"


# ------------------------------------------------------------------------------- line search

def _scalar_problems():
    """phi(a), phi'(a) along a descent direction of three functions, and a first step."""
    def rosenbrock(a):
        x, y = -1.2 + a, 1.0 + 0.5 * a
        f = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        gx, gy = -2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)
        return f, gx + 0.5 * gy
    yield (lambda a: (math.exp(-a) + a * a / 10 - 2 * a, -math.exp(-a) + a / 5 - 2), 1.0)
    yield (lambda a: ((a - 3.0) ** 4 - 20 * a, 4 * (a - 3.0) ** 3 - 20), 0.1)
    yield (rosenbrock, 1e-3)
    yield (rosenbrock, 1.0)


@pytest.mark.parametrize("case", range(4))
def test_line_search_takes_scipys_dcsrch_steps(case):
    """The port against SciPy's own Python dcsrch: the same trial steps, the same answer."""
    from scipy.optimize._dcsrch import DCSRCH
    phi, stp = list(_scalar_problems())[case]
    f0, g0 = phi(0.0)
    theirs = []
    search_scipy = DCSRCH(lambda a: theirs.append(a) or phi(a)[0], lambda a: phi(a)[1],
                          ftol=1e-3, gtol=0.9, xtol=0.1, stpmin=0.0, stpmax=1e10)
    their_step, _, _, their_task = search_scipy(stp, phi0=f0, derphi0=g0, maxiter=30)
    ours = []
    search = LineSearch()
    task = search.start(f0, g0, stp)
    while task == SearchTask.fg:
        ours.append(stp)
        f, g = phi(stp)
        task, stp = search.iterate(stp, f, g)
    assert ours == theirs
    assert their_task.startswith(b"CONV") and task == SearchTask.convergence
    assert stp == their_step
    f, g = phi(stp)
    assert f <= f0 + 1e-3 * stp * g0 and abs(g) <= 0.9 * abs(g0)  # strong Wolfe


def test_line_search_refuses_an_ascent_direction():
    assert LineSearch().start(1.0, 0.5, 1.0) == SearchTask.error
    assert LineSearch().start(1.0, -0.5, 2e10) == SearchTask.error


# ------------------------------------------------------------------------------- against SciPy

SCIPY_SUITE = {
    "moons-tanh-ce": lambda: (gd.datasets.two_moons(200, noise=0.1, seed=0), dict(
        sizes=[2, 16, 2], activation="tanh", output_activation="softmax",
        loss="cross_entropy", seed=0)),
    "moons-relu-bce": lambda: (gd.datasets.two_moons(200, noise=0.2, seed=0), dict(
        sizes=[2, 8, 1], activation="relu", output_activation="sigmoid", loss="bce", seed=1)),
    "sine-tanh-mse": lambda: (gd.datasets.sine(60, seed=1), dict(
        sizes=[1, 4, 1], activation="tanh", loss="mse", seed=1)),
}


@pytest.mark.parametrize("name", sorted(SCIPY_SUITE))
def test_fit_follows_scipy_lbfgsb(backend, name):
    """One L-BFGS iteration per epoch (as scikit-learn's solver="lbfgs" drives it) from the
    network's start: the loss after each of the first 40 iterations agrees with SciPy's to
    1e-6 (the paths then part by rounding: bench/lbfgs_vs_scipy.py; SciPy itself changes its
    iteration count by up to a third when the gradients differ in the last bit), and both
    end at the same loss within 1e-3 (relative) with iteration counts within 15%."""
    (X, y), spec = SCIPY_SUITE[name]()
    net = gd.Network.from_sizes(spec.pop("sizes"), dtype="float64", **spec)
    twin = net.copy()
    result = scipy_lbfgsb(net, X, y, maxiter=300, maxfun=15000, gtol=1e-5)
    trace = result.trace
    opt = gd.LBFGS(max_iter=1, tolerance_grad=1e-5, tolerance_change=SCIPY_FTOL, max_fun=15000)
    history = twin.fit(X, y, optimizer=opt, epochs=300)
    ours = history.loss + [twin.loss(X, y)]
    lead = min(40, len(trace), len(ours))
    np.testing.assert_allclose(ours[:lead], trace[:lead], rtol=1e-6)
    assert twin.loss(X, y) == pytest.approx(result.fun, rel=1e-3, abs=1e-7)
    assert abs(opt.n_iter - result.nit) <= max(2, 0.15 * result.nit)
    assert opt.n_iter == history.epochs or history.stop_reason != "epochs"
    scipy_converged = result.status == 0
    assert (history.stop_reason in ("tolerance_grad", "tolerance_change")) == scipy_converged


def test_scipy_counts_exactly_on_a_short_run():
    """On a run short enough for rounding not to matter, the very same iterations and
    evaluations (the first evaluation included) as SciPy."""
    (X, y), spec = SCIPY_SUITE["moons-tanh-ce"]()
    net = gd.Network.from_sizes(spec.pop("sizes"), dtype="float64", **spec)
    twin = net.copy()
    result = scipy_lbfgsb(net, X, y, maxiter=300, maxfun=15000, gtol=1e-5)
    opt = gd.LBFGS(max_iter=1, tolerance_grad=1e-5, tolerance_change=SCIPY_FTOL)
    history = twin.fit(X, y, optimizer=opt, epochs=300)
    assert (opt.n_iter, opt.func_evals) == (result.nit, result.nfev) == (31, 34)
    assert history.stop_reason == "tolerance_grad" and history.converged
    assert twin.loss(X, y) == pytest.approx(result.fun, rel=1e-8)


def test_max_fun_stops_as_scipy_maxfun(backend):
    (X, y), spec = SCIPY_SUITE["moons-tanh-ce"]()
    net = gd.Network.from_sizes(spec.pop("sizes"), dtype="float64", **spec)
    twin = net.copy()
    result = scipy_lbfgsb(net, X, y, maxiter=300, maxfun=12, gtol=1e-5)
    opt = gd.LBFGS(max_iter=1, tolerance_grad=1e-5, tolerance_change=SCIPY_FTOL, max_fun=12)
    history = twin.fit(X, y, optimizer=opt, epochs=300)
    assert history.stop_reason == "max_fun" and not history.converged
    assert (opt.n_iter, opt.func_evals) == (result.nit, result.nfev)
    assert opt.func_evals > 12 and opt.status == "max_fun"


# ------------------------------------------------------------------------------- public API

def test_defaults_config_and_repr():
    opt = gd.LBFGS()
    assert (opt.lr, opt.history_size, opt.max_iter, opt.max_eval, opt.tolerance_grad,
            opt.tolerance_change, opt.line_search, opt.max_fun) == (
        1.0, 10, 20, None, 1e-7, 1e-9, "strong_wolfe", None)
    assert gd.optimizers.get_optimizer("lbfgs").name == "lbfgs"
    config = dict(zip(codes.LBFGS_CONFIG, opt.config(0.5)))
    assert config == dict(lr=0.5, history_size=10, max_iter=20, max_eval=25,
                          tolerance_grad=1e-7, tolerance_change=1e-9, line_search=1.0,
                          max_fun=math.inf, max_ls=20)
    assert dict(zip(codes.LBFGS_CONFIG, gd.LBFGS(line_search=None, max_fun=7).config(1.0)))[
        "line_search"] == 0.0
    assert repr(opt) == ("LBFGS(lr=1.0, history_size=10, max_iter=20, max_eval=None, "
                         "tolerance_grad=1e-07, tolerance_change=1e-09, "
                         "line_search='strong_wolfe', max_fun=None)")
    assert (opt.n_iter, opt.func_evals, opt.status, opt.converged) == (0, 0, "running", False)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(history_size=0), ValueError, "history_size must be >= 1"),
    (dict(history_size=2.0), TypeError, "history_size must be an int"),
    (dict(max_iter=0), ValueError, "max_iter must be >= 1"),
    (dict(max_eval=0), ValueError, "max_eval must be >= 1"),
    (dict(tolerance_grad=-1.0), ValueError, "tolerance_grad must be >= 0"),
    (dict(tolerance_change=math.nan), ValueError, "tolerance_change must be finite"),
    (dict(line_search="armijo"), ValueError, "line_search must be 'strong_wolfe' or None"),
    (dict(max_fun=0), ValueError, "max_fun must be >= 1"),
    (dict(lr=0.0), ValueError, "lr must be > 0"),
    (dict(lr="auto"), ValueError, "LBFGS does not take lr='auto'"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        gd.LBFGS(**kwargs)


def test_assignment_is_checked_as_the_constructor():
    opt = gd.LBFGS()
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        opt.max_iter = -3
    assert opt.max_iter == 20


def test_fit_refuses_mini_batches_and_the_range_test(backend):
    X, y = gd.datasets.two_moons(40, seed=0)
    net = gd.Network.from_sizes([2, 4, 2], output_activation="softmax", loss="cross_entropy",
                                seed=0)
    before = [p.copy() for p in net.parameters()]
    opt = gd.LBFGS()
    with pytest.raises(ValueError, match="LBFGS works on the full batch: batch_size must be "
                                         "None"):
        net.fit(X, y, optimizer=opt, epochs=2, batch_size=8)
    with pytest.raises(ValueError, match="LBFGS chooses its steps by a line search"):
        gd.find_lr(net, X, y, optimizer=opt)
    assert all(np.array_equal(p, q) for p, q in zip(net.parameters(), before))
    assert opt.state == [] and opt.steps_done == 0
    history = net.fit(X, y, optimizer=opt, epochs=2, batch_size=40)  # = the full batch
    assert history.epochs == 2


def test_an_epoch_is_a_step_of_max_iter_iterations(backend, dtype):
    X, y = gd.datasets.sine(80, seed=0)
    net = gd.Network.from_sizes([1, 10, 1], activation="tanh", loss="mse", dtype=dtype, seed=0)
    opt = gd.LBFGS(max_iter=5, max_eval=100, tolerance_change=0.0, tolerance_grad=0.0)
    history = net.fit(X, y, optimizer=opt, epochs=4)
    assert history.epochs == 4 and opt.steps_done == 4 and opt.n_iter == 20
    assert history.loss == sorted(history.loss, reverse=True)  # the line search only descends
    assert net.loss(X, y) < history.loss[-1] < history.loss[0]


def test_fit_continues_exactly_across_calls(backend):
    X, y = gd.datasets.two_moons(100, noise=0.2, seed=3)
    make = lambda: gd.Network.from_sizes([2, 8, 2], activation="tanh",  # noqa: E731
                                         output_activation="softmax", loss="cross_entropy",
                                         dtype="float64", seed=2)
    straight, opt = make(), gd.LBFGS(max_iter=3, max_eval=100, tolerance_change=0.0)
    straight.fit(X, y, optimizer=opt, epochs=6)
    split, opt2 = make(), gd.LBFGS(max_iter=3, max_eval=100, tolerance_change=0.0)
    split.fit(X, y, optimizer=opt2, epochs=2)
    middle = split.loss(X, y)
    second = split.fit(X, y, optimizer=opt2, epochs=4)
    for p, q in zip(straight.parameters(), split.parameters()):
        np.testing.assert_array_equal(p, q)
    assert opt2.n_iter == opt.n_iter == 18
    assert opt2.func_evals == opt.func_evals + 1  # the second call measured its start again
    assert second.loss[0] == pytest.approx(middle, rel=1e-12)  # where the first call ended


def test_state_dict_pickle_and_save_resume_exactly(backend, tmp_path):
    X, y = gd.datasets.sine(60, seed=1)
    net = gd.Network.from_sizes([1, 6, 1], activation="tanh", loss="mse", dtype="float64",
                                seed=0)
    opt = gd.LBFGS(history_size=4, max_iter=2, max_eval=100, tolerance_change=0.0)
    net.fit(X, y, optimizer=opt, epochs=3)
    make_opt = lambda: gd.LBFGS(history_size=4, max_iter=2, max_eval=100,  # noqa: E731
                                tolerance_change=0.0)
    copy_net, copy_opt = net.copy(), make_opt()
    copy_opt.load_state_dict(opt.state_dict())
    pickled_net, pickled_opt = pickle.loads(pickle.dumps((net, opt)))
    net.save(tmp_path / "m.npz", optimizer=opt)
    loaded_opt = make_opt()
    loaded_net = gd.Network.load(tmp_path / "m.npz", optimizer=loaded_opt)
    assert loaded_opt.n_iter == copy_opt.n_iter == pickled_opt.n_iter == opt.n_iter == 6
    net.fit(X, y, optimizer=opt, epochs=3)
    for other_net, other_opt in [(copy_net, copy_opt), (pickled_net, pickled_opt),
                                 (loaded_net, loaded_opt)]:
        other_net.fit(X, y, optimizer=other_opt, epochs=3)
        for p, q in zip(net.parameters(), other_net.parameters()):
            np.testing.assert_array_equal(p, q)
        np.testing.assert_array_equal(other_opt.run_state, opt.run_state)


def test_load_state_dict_refuses_a_bad_run_state_and_changes_nothing():
    X, y = gd.datasets.sine(30, seed=1)
    net = gd.Network.from_sizes([1, 4, 1], activation="tanh", loss="mse", seed=0)
    opt = gd.LBFGS(history_size=3)
    net.fit(X, y, optimizer=opt, epochs=1)
    good = opt.state_dict()
    before = opt.run_state.copy()
    for key, value, match in [("n_pairs", 4.0, "n_pairs must be <= history_size"),
                              ("status", 9.0, "status"), ("iterations", 1.5, "whole number"),
                              ("ready", 2.0, "ready")]:
        bad = opt.state_dict()
        bad["run_state"][key] = value
        with pytest.raises(ValueError, match=match):
            opt.load_state_dict(bad)
        np.testing.assert_array_equal(opt.run_state, before)
    bad = dict(good)
    del bad["run_state"]
    with pytest.raises(ValueError, match="missing"):
        opt.load_state_dict(bad)


def test_changing_history_size_restarts_the_history(backend):
    X, y = gd.datasets.sine(60, seed=1)
    net = gd.Network.from_sizes([1, 6, 1], activation="tanh", loss="mse", seed=0)
    opt = gd.LBFGS(history_size=4, max_iter=3, max_eval=100, tolerance_change=0.0)
    net.fit(X, y, optimizer=opt, epochs=2)
    iterations = opt.n_iter
    opt.history_size = 2
    net.fit(X, y, optimizer=opt, epochs=1)
    n_params = len(net.parameters())
    assert len(opt.state) == n_params * codes.state_slots("lbfgs", False, 2)
    assert opt.n_iter == iterations + 3 and opt.run_state[RUN["n_pairs"]] == 2


def test_converged_fit_stops_and_says_why(backend):
    X, y = gd.datasets.two_moons(100, noise=0.1, seed=0)
    net = gd.Network.from_sizes([2, 8, 2], activation="tanh", output_activation="softmax",
                                loss="cross_entropy", dtype="float64", seed=0)
    opt = gd.LBFGS(tolerance_grad=1e-3)
    history = net.fit(X, y, optimizer=opt, epochs=200)
    assert history.stop_reason == "tolerance_grad" and history.converged and opt.converged
    assert history.epochs < 200 and "tolerance_grad" in history.summary()
    gradient = max(np.abs(g).max() for pair in net.gradients(X, y) for g in pair)
    assert gradient <= 1e-3
    again = net.fit(X, y, optimizer=opt, epochs=5)  # already there: one epoch, no iteration
    assert again.epochs == 1 and again.stop_reason == "tolerance_grad"


def test_divergence_rolls_back_the_run_state(backend):
    X, y = gd.datasets.sine(60, seed=1)
    net = gd.Network.from_sizes([1, 6, 1], activation="tanh", loss="mse", dtype="float64",
                                seed=0)
    opt = gd.LBFGS(max_iter=2, tolerance_change=0.0)
    net.fit(X, y, optimizer=opt, epochs=2)
    start = [p.copy() for p in net.parameters()]
    run, state = opt.run_state.copy(), [a.copy() for a in opt.state]
    opt.line_search, opt.lr = None, 1e4  # fixed steps far too long
    history = net.fit(X, y, optimizer=opt, epochs=3, on_divergence="stop")
    # Epoch 0's loss is the start's (sane), epoch 1 starts far away: undone back to the start
    # of epoch 0, which it forgets.
    assert history.stop_reason == "diverged" and history.epochs == 0
    for p, q in zip(net.parameters(), start):
        np.testing.assert_array_equal(p, q)
    run[RUN["ready"]] = 0.0  # (cleared by the fit's start: the next fit measures it again)
    np.testing.assert_array_equal(opt.run_state, run)
    assert len(opt.state) == len(state)
    assert all(np.array_equal(a, b) for a, b in zip(opt.state, state))


# ------------------------------------------------------------------------------- interrupts

class _Stop(Exception):
    pass


@pytest.mark.skipif(not hasattr(__import__("signal"), "setitimer"), reason="needs setitimer")
@pytest.mark.parametrize("engine_factory", ["cpp"], indirect=True)
def test_a_signal_ends_the_step_after_a_whole_iteration(engine_factory):
    """A signal handler's exception stops the compiled step within ~50 ms; the parameters,
    the state and the counts are those after the whole iterations kept: replaying that many
    iterations from the start gives exactly them."""
    import signal
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1500, 20))
    Y = np.tanh(X[:, :2] @ rng.standard_normal((2, 1)))
    sizes, acts = [20, 64, 64, 1], ["tanh", "tanh", "identity"]

    def setup():
        weights, biases = make_params(sizes, "float64", seed=1)
        engine = engine_factory(weights, biases, acts, "mse")
        params = [p for pair in zip(weights, biases) for p in pair]
        state = [np.zeros_like(p) for p in params
                 for _ in range(codes.state_slots("lbfgs", False, 5))]
        return engine, params, state, np.zeros(len(codes.LBFGS_RUN)), np.zeros(1, np.int64)

    import time
    engine, params, state, run, step = setup()
    started = time.perf_counter()  # how long a few iterations take on this (busy) machine
    engine.lbfgs_step(X, Y, None, _config(max_iter=3, max_eval=10**9), state, run, step)
    delay = max(0.2, 3 * (time.perf_counter() - started))
    engine, params, state, run, step = setup()
    start = [p.copy() for p in params]

    def handler(signum, frame):
        raise _Stop()
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, delay)
        with pytest.raises(_Stop):
            engine.lbfgs_step(X, Y, None, _config(max_iter=10**6, max_eval=10**9), state, run,
                              step)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    kept = int(run[RUN["step_iterations"]])
    assert run[RUN["iterations"]] == kept and step[0] == (1 if kept else 0)
    if kept == 0:  # (stopped inside the first iteration: nothing kept)
        assert all(np.array_equal(p, q) for p, q in zip(params, start))
        return
    engine2, params2, state2, run2, step2 = setup()
    engine2.lbfgs_step(X, Y, None, _config(max_iter=kept, max_eval=10**9), state2, run2, step2)
    for p, q in zip(params, params2):
        np.testing.assert_array_equal(p, q)
    for name in ("iterations", "evaluations", "n_pairs", "newest", "loss"):
        assert run[RUN[name]] == run2[RUN[name]], name

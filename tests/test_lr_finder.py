"""find_lr and check_gradients."""
import functools
import importlib.util
import pathlib
import sys

import numpy as np
import pytest

import gdcore as gd
from gdcore import _backend
from gdcore.lr_finder import _suggest, valley


@functools.lru_cache(maxsize=None)
def _suite():
    """bench/lr_finder_suite.py, the evidence behind find_lr's suggestion rule."""
    path = pathlib.Path(__file__).resolve().parents[1] / "bench" / "lr_finder_suite.py"
    spec = importlib.util.spec_from_file_location("gdcore_bench_lr_finder_suite", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _spirals_net(dtype="float32"):
    return gd.Network.from_sizes([2, 64, 64, 3], activation="relu", output_activation="softmax",
                                 loss="cross_entropy", dtype=dtype, seed=0)


def test_find_lr_leaves_weights_bit_identical_and_suggests_in_range(backend):
    X, y = gd.datasets.spirals(n_samples=300, seed=0)
    net = gd.Network.from_sizes([2, 32, 3], output_activation="softmax", loss="cross_entropy",
                                seed=0)
    before = [p.copy() for p in net.parameters()]
    result = gd.find_lr(net, X, y, lr_min=1e-5, lr_max=10.0, steps=100)
    for p, q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)
    assert 1e-5 <= result.suggestion <= 10.0
    assert len(result.lrs) == len(result.losses) >= 10
    assert np.all(np.diff(result.lrs) > 0)
    # the rate it suggests trains: the loss falls in a few epochs
    history = net.copy().fit(X, y, optimizer=gd.SGD(lr=result.suggestion), epochs=20,
                             batch_size=32, seed=0)
    assert history.loss[-1] < history.loss[0]


def test_find_lr_stops_when_loss_blows_up(backend):
    X, y = gd.datasets.sine(n_samples=100, seed=0)
    net = gd.Network.from_sizes([1, 16, 1], activation="tanh", seed=0)
    result = gd.find_lr(net, X, y, lr_min=1e-4, lr_max=1e4, steps=200)
    assert len(result.lrs) < 200  # stopped early: the loss exploded past 4x its best


def test_find_lr_argument_errors():
    net = gd.Network.from_sizes([1, 1], seed=0)
    X, y = np.zeros((4, 1)), np.zeros(4)
    with pytest.raises(ValueError, match="lr_max must be > lr_min"):
        gd.find_lr(net, X, y, lr_min=1.0, lr_max=0.1)
    with pytest.raises(ValueError, match="steps must be >= 2"):
        gd.find_lr(net, X, y, steps=1)
    with pytest.raises(ValueError, match="lr_min must be > 0"):
        gd.find_lr(net, X, y, lr_min=0.0)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "elu", "softplus", "gelu", "identity"])
def test_check_gradients_small_for_smooth_activations(backend, dtype, rng, activation):
    net = gd.Network.from_sizes([3, 4, 2], activation=activation, dtype=dtype, seed=0)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    assert gd.check_gradients(net, X, y) < 1e-6


def test_check_gradients_detects_wrong_gradients(backend, rng, monkeypatch):
    net = gd.Network.from_sizes([3, 4, 1], activation="tanh", dtype="float64", seed=0)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=6)
    real = gd.Network.gradients
    monkeypatch.setattr(gd.Network, "gradients",
                        lambda self, *a, **k: [(2 * dW, db) for dW, db in real(self, *a, **k)])
    assert gd.check_gradients(net, X, y) > 0.1


# ----------------------------------------------------------------------- the optimizer swept

def test_find_lr_optimizer_none_name_and_object_agree(backend):
    X, y = gd.datasets.two_moons(n_samples=100, seed=0)
    net = gd.Network.from_sizes([2, 8, 2], output_activation="softmax", loss="cross_entropy",
                                seed=0)
    plain = gd.find_lr(net, X, y, steps=30)
    assert plain.optimizer == "sgd"
    for same in ("sgd", "SGD", gd.SGD(lr=0.5)):  # the object's own rate plays no part
        other = gd.find_lr(net, X, y, optimizer=same, steps=30)
        np.testing.assert_array_equal(other.raw_losses, plain.raw_losses)
        assert other.suggestion == plain.suggestion
    adam = gd.find_lr(net, X, y, optimizer="adam", steps=30)
    assert adam.optimizer == "adam"
    np.testing.assert_array_equal(
        gd.find_lr(net, X, y, optimizer=gd.Adam(lr=3.0), steps=30).raw_losses, adam.raw_losses)
    assert not np.array_equal(adam.raw_losses, plain.raw_losses)
    # the hyper-parameters are used: momentum changes the curve, so does AdamW's decay
    momentum = gd.find_lr(net, X, y, optimizer=gd.SGD(momentum=0.9), steps=30)
    assert not np.array_equal(momentum.raw_losses, plain.raw_losses)
    for name in ("adamw", "rmsprop"):
        assert gd.find_lr(net, X, y, optimizer=name, steps=30).optimizer == name


def _snapshot(opt):
    return {"state": [s.copy() for s in opt.state], "state_ids": [id(s) for s in opt.state],
            "step": int(opt.step[0]), "step_id": id(opt.step), "owner": opt._owner,
            "epochs_done": opt.epochs_done, "lr_scale": opt.lr_scale}


def _assert_same(after, before):
    assert len(after["state"]) == len(before["state"])
    for a, b in zip(after["state"], before["state"]):
        np.testing.assert_array_equal(a, b)
    assert {k: v for k, v in after.items() if k != "state"} == \
        {k: v for k, v in before.items() if k != "state"}


@pytest.mark.parametrize("make", [lambda: gd.SGD(lr=0.01, momentum=0.9), lambda: gd.Adam(),
                                  lambda: gd.AdamW(), lambda: gd.RMSprop(momentum=0.5)])
def test_find_lr_leaves_the_optimizer_object_untouched(backend, make):
    X, y = gd.datasets.sine(n_samples=64, seed=0)
    net = gd.Network.from_sizes([1, 8, 1], activation="tanh", dtype="float64", seed=0)
    fresh = make()
    before = _snapshot(fresh)
    gd.find_lr(net, X, y, optimizer=fresh, steps=20)
    _assert_same(_snapshot(fresh), before)
    assert fresh._owner is None and fresh.state == []  # not bound: usable on any network
    # an optimizer already in use on this network: its state and step are not touched either
    used = make()
    net.fit(X, y, optimizer=used, epochs=2, batch_size=16)
    before = _snapshot(used)
    gd.find_lr(net, X, y, optimizer=used, steps=20)
    _assert_same(_snapshot(used), before)
    # and fit goes on with it as if find_lr had not run
    net.fit(X, y, optimizer=used, epochs=1, batch_size=16)
    assert used.steps_done == 3 * 4


def test_find_lr_reads_only_the_optimizer_kind_and_hyper_parameters(backend):
    class NoRate(gd.Adam):
        @property
        def lr(self):  # e.g. lr="auto" one day: find_lr must not need it
            raise AssertionError("find_lr read the optimizer's lr")

    X, y = gd.datasets.sine(n_samples=64, seed=0)
    net = gd.Network.from_sizes([1, 8, 1], activation="tanh", seed=0)
    result = gd.find_lr(net, X, y, optimizer=NoRate(), steps=20)
    np.testing.assert_array_equal(
        result.raw_losses, gd.find_lr(net, X, y, optimizer="adam", steps=20).raw_losses)


@pytest.mark.parametrize("optimizer, error", [
    ("nope", ValueError), ("", ValueError), (3, TypeError), (gd.SGD, TypeError),
    (object(), TypeError)])
def test_find_lr_bad_optimizer_is_named(optimizer, error):
    net = gd.Network.from_sizes([1, 1], seed=0)
    with pytest.raises(error, match="optimizer"):
        gd.find_lr(net, np.zeros((4, 1)), np.zeros(4), optimizer=optimizer)


# ------------------------------------------------------------------ seed, engines, weights

def test_find_lr_is_reproducible_and_seeded(backend):
    X, y = gd.datasets.spirals(n_samples=150, seed=0)
    net = gd.Network.from_sizes([2, 16, 3], output_activation="softmax", loss="cross_entropy",
                                seed=0)
    a = gd.find_lr(net, X, y, optimizer="adam", seed=3)
    b = gd.find_lr(net, X, y, optimizer="adam", seed=3)
    np.testing.assert_array_equal(a.lrs, b.lrs)
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.raw_losses, b.raw_losses)
    assert (a.suggestion, a.index) == (b.suggestion, b.index)
    c = gd.find_lr(net, X, y, optimizer="adam", seed=np.random.default_rng(3))
    np.testing.assert_array_equal(c.raw_losses, a.raw_losses)  # a Generator as seed works too
    other = gd.find_lr(net, X, y, optimizer="adam", seed=4)
    assert not np.array_equal(other.raw_losses, a.raw_losses)
    # seed=None: the network's seed (0 here), so a default call is reproducible as well
    np.testing.assert_array_equal(gd.find_lr(net, X, y).raw_losses,
                                  gd.find_lr(net, X, y, seed=0).raw_losses)
    unseeded = gd.Network.from_sizes([2, 16, 3], output_activation="softmax",
                                     loss="cross_entropy", seed=np.random.default_rng(0))
    assert unseeded.seed is None
    np.testing.assert_array_equal(gd.find_lr(unseeded, X, y).raw_losses,
                                  gd.find_lr(unseeded, X, y, seed=0).raw_losses)


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (1.5, TypeError), ("0", TypeError),
                                         (True, TypeError)])
def test_find_lr_bad_seed_is_named(seed, error):
    net = gd.Network.from_sizes([1, 1], seed=0)
    with pytest.raises(error, match="seed"):
        gd.find_lr(net, np.zeros((4, 1)), np.zeros(4), seed=seed)


def test_find_lr_engines_agree_in_float64():
    if not _backend._core_engines_available():
        pytest.skip("the compiled core is not built in this installation")
    X, y = gd.datasets.spirals(n_samples=300, n_classes=3, seed=0)
    results = {}
    for name in ("numpy", "cpp"):
        with gd.use_backend(name):
            for opt in ("sgd", "adam"):
                results[name, opt] = gd.find_lr(_spirals_net("float64"), X, y, optimizer=opt)
    for opt in ("sgd", "adam"):
        ref, cpp = results["numpy", opt], results["cpp", opt]
        n = min(len(ref.lrs), len(cpp.lrs))
        np.testing.assert_allclose(cpp.raw_losses[:n], ref.raw_losses[:n], rtol=1e-6)
        assert cpp.suggestion == pytest.approx(ref.suggestion, rel=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", gd.SGD(momentum=0.9, nesterov=True)])
def test_find_lr_weights_bit_identical_after(backend, dtype, optimizer):
    X, y = gd.datasets.two_moons(n_samples=80, seed=0)
    net = gd.Network.from_sizes([2, 8, 2], output_activation="softmax", loss="cross_entropy",
                                dtype=dtype, seed=0)
    before = [p.copy() for p in net.parameters()]
    live = net.parameters()
    gd.find_lr(net, X, y, optimizer=optimizer, steps=40)
    for p, q, buffer in zip(net.parameters(), before, live):
        assert p is buffer  # the same arrays, written back in place
        np.testing.assert_array_equal(p, q)


def test_find_lr_restores_weights_when_a_step_fails(monkeypatch):
    with gd.use_backend("numpy"):  # the reference engine's methods can be patched
        X, y = gd.datasets.sine(n_samples=64, seed=0)
        net = gd.Network.from_sizes([1, 8, 1], activation="tanh", seed=0)
        before = [p.copy() for p in net.parameters()]
        real, calls = net._engine.train_epoch, []

        def failing(*args):
            calls.append(1)
            if len(calls) == 10:
                raise RuntimeError("boom")
            return real(*args)

        monkeypatch.setattr(net._engine, "train_epoch", failing)
        with pytest.raises(RuntimeError, match="boom"):
            gd.find_lr(net, X, y, optimizer="adam", lr_min=1e-2, lr_max=1.0)
        for p, q in zip(net.parameters(), before):
            np.testing.assert_array_equal(p, q)


# ------------------------------------------------------------------------- the suggestion

def test_suggest_degenerate_curves():
    lrs = np.geomspace(1e-3, 1.0, 4)
    assert _suggest(lrs[:0], np.zeros(0), 1e-7) == (-1, 1e-7)
    index, lr = _suggest(lrs[:1], np.array([1.0]), 1e-7)
    assert (index, lr) == (0, 1e-3)  # a tenth of the only rate, kept inside the range
    index, lr = _suggest(lrs, np.array([1.0, 0.5, 0.2, 0.1]), 1e-7)  # too short for a valley
    assert lr == pytest.approx(0.1) and index == 2
    flat = np.geomspace(1e-7, 10, 100)
    index, lr = _suggest(flat, np.ones(100), 1e-7)
    assert flat[0] <= lr <= flat[-1] and 0 <= index < 100


def test_valley_is_fastais(rng):
    def fastai(losses):  # fastai.callback.schedule.valley's loop, index only
        n = len(losses)
        lds, max_start, max_end = [1] * n, 0, 0
        for i in range(1, n):
            for j in range(0, i):
                if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                    lds[i] = lds[j] + 1
                if lds[max_end] < lds[i]:
                    max_end = i
                    max_start = max_end - lds[max_end]
        sections = (max_end - max_start) / 3
        return max_start + int(sections) + int(sections / 2)

    for n in (5, 20, 85):
        for _ in range(20):
            losses = np.cumsum(rng.normal(size=n))
            assert valley(losses) == max(fastai(losses), 0)
    assert valley(np.array([2.0, 1.0, 3.0, 4.0, 5.0])) == 0  # not -1, the last point


def test_suggest_lands_on_the_way_down_not_at_the_noisy_start():
    lrs = np.geomspace(1e-7, 10, 100)
    rng = np.random.default_rng(0)
    x = np.log10(lrs)  # flat until 1e-4, falls until 1e-1, then blows up
    curve = np.where(x < -4, 1.0, np.where(x < -1, 1.0 - 0.3 * (x + 4), 0.1 + 30 * (x + 1) ** 2))
    raw = curve * (1 + 0.2 * rng.standard_normal(100))
    index, lr = _suggest(lrs, raw, 1e-7)
    assert 1e-4 < lr < 1e-1
    assert lrs[index] == pytest.approx(lr, rel=0.2)


def test_find_lr_suggestion_is_useful_on_spirals(backend):
    X, y = gd.datasets.spirals(n_samples=300, n_classes=3, seed=0)
    for opt in ("sgd", gd.SGD(momentum=0.9), "adam"):
        result = gd.find_lr(_spirals_net(), X, y, optimizer=opt)
        assert 1e-4 < result.suggestion < 1.0  # the old rule said ~1e-7 here
        assert result.lrs[0] <= result.suggestion <= result.lrs[-1]
        assert result.raw_losses.shape == result.losses.shape == result.lrs.shape


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_readme_spirals_example_trains_at_the_suggestion(backend, optimizer):
    """README: find_lr(net, X, y, optimizer=gd.Adam()) then 200 epochs reach >= 95%."""
    suggestion, accuracy = _suite().readme_spirals(backend, optimizer)
    assert accuracy >= 0.95, (suggestion, accuracy)


# ------------------------------------------------------------------------ the evidence suite

def _check_suite(backend, names):
    """The suite's check on ``names``; the NumPy engine (~6x slower) skips the costliest."""
    suite = _suite()
    quick = backend == "numpy"
    rows = suite.run(backends=[backend], names=names, quick=quick, out=None)
    failed = [f"{r.problem}/{r.optimizer}: suggestion {r.suggestion:.3g}, best {r.best:g}, "
              f"loss {r.loss_suggestion:.4g} > {r.loss_best10:.4g} at best/10, score "
              f"{r.score_suggestion:.3f} < {r.score_best:.3f}" for _, r in rows if not r.passed]
    expected = [n for n in names if not (quick and n in suite.QUICK_SKIP)]
    assert sorted({r.problem for _, r in rows}) == sorted(expected)
    assert len(rows) == 2 * len(expected)  # SGD with momentum and Adam
    assert not failed, failed


def test_suggestion_trains_as_well_as_a_grid_search_gd_datasets(backend):
    _check_suite(backend, ["xor", "two_moons", "spirals", "sine"])


def test_suggestion_trains_as_well_as_a_grid_search_sklearn_datasets(backend):
    pytest.importorskip("sklearn")
    _check_suite(backend, ["digits", "iris", "wine", "breast_cancer", "diabetes"])

"""What fit reports: metrics per epoch, callback hooks, the progress bar, History.summary()."""
import numpy as np
import pytest

import gdcore as gd


def _moons(dtype="float32"):
    X, y = gd.datasets.two_moons(n_samples=200, noise=0.1, seed=0)
    net = gd.Network.from_sizes([2, 16, 2], output_activation="softmax", loss="cross_entropy",
                                dtype=dtype, seed=0)
    return X, y, net


def test_accuracy_and_val_accuracy_per_epoch(backend, dtype):
    X, y, net = _moons(dtype)
    history = net.fit(X[:150], y[:150], optimizer=gd.Adam(lr=0.01), epochs=5, batch_size=32,
                      validation_data=(X[150:], y[150:]), metrics=("accuracy",), seed=0)
    accuracy, val_accuracy = history.metrics["accuracy"], history.metrics["val_accuracy"]
    assert len(accuracy) == len(val_accuracy) == 5
    # the last entries are those of the final weights
    assert accuracy[-1] == pytest.approx((net.predict(X[:150]).argmax(1) == y[:150]).mean())
    assert val_accuracy[-1] == pytest.approx((net.predict(X[150:]).argmax(1) == y[150:]).mean())


def test_bce_accuracy_mse_mae_r2(backend):
    X, y = gd.datasets.xor(n_samples=100, noise=0.1, seed=0)
    net = gd.Network.from_sizes([2, 8, 1], activation="tanh", output_activation="sigmoid",
                                loss="bce", dtype="float64", seed=0)
    history = net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=3, batch_size=20,
                      metrics=["accuracy", "mse", "mae", "r2"], seed=0)
    out = net.predict(X)[:, 0]
    assert history.metrics["accuracy"][-1] == pytest.approx(((out > 0.5) == (y > 0.5)).mean())
    assert history.metrics["mse"][-1] == pytest.approx(((out - y) ** 2).mean())
    assert history.metrics["mae"][-1] == pytest.approx(np.abs(out - y).mean())
    r2 = 1 - ((out - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert history.metrics["r2"][-1] == pytest.approx(r2)


@pytest.mark.parametrize("metrics, error, match", [
    (("accuracy",), ValueError, "'accuracy' needs a classification loss"),
    (("f1",), ValueError, "unknown metric 'f1'"),
    (3, TypeError, "metrics must be a sequence"),
])
def test_bad_metrics_are_refused_before_training(backend, metrics, error, match):
    X, y = gd.datasets.sine(n_samples=20, seed=0)
    net = gd.Network.from_sizes([1, 4, 1], seed=0)
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(error, match=match):
        net.fit(X, y, epochs=2, metrics=metrics)
    for p, q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)


def test_callback_objects_get_keras_hooks_and_any_true_value_stops(backend):
    X, y, net = _moons()
    calls = []

    class Recorder:
        def on_train_begin(self, logs):
            calls.append(("begin", sorted(logs)))

        def on_epoch_end(self, epoch, logs):
            calls.append(("epoch", epoch, logs["loss"] > 0, "accuracy" in logs))
            return "stop please" if epoch == 2 else None  # truthy, not True

        def on_train_end(self, logs):
            calls.append(("end", logs["stop_reason"]))

    history = net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=10, batch_size=50,
                      callbacks=[Recorder()], metrics=("accuracy",), seed=0)
    assert history.stop_reason == "callback" and history.epochs == 3
    assert calls[0] == ("begin", ["history", "network"])
    assert calls[1:4] == [("epoch", e, True, True) for e in range(3)]
    assert calls[-1] == ("end", "callback")


def test_progress_bar_shows_val_loss_and_why_it_stopped(backend, capsys):
    pytest.importorskip("tqdm")
    X, y, net = _moons()
    net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=3, validation_split=0.2, progress=True)
    err = capsys.readouterr().err
    assert "val_loss=" in err and "fit: epochs" in err and "3/3" in err


def test_summary_reports_reason_best_rates_and_advice(backend):
    X, y = gd.datasets.sine(seed=0)
    net = gd.Network.from_sizes([1, 32, 1], activation="tanh", seed=0)
    history = net.fit(X, y, optimizer=gd.SGD(lr=50.0), epochs=40, on_divergence="backoff")
    text = history.summary()
    assert text.startswith("stopped: epochs (ran all the epochs asked for) after 40 epochs")
    assert f"best: epoch {history.best_epoch}" in text
    assert "undone: epoch" in text and "rate cut to 25" in text
    short = gd.Network.from_sizes([1, 32, 1], activation="tanh", seed=0).fit(
        X, y, optimizer=gd.SGD(lr=0.01), epochs=10)
    assert "advice: the loss still fell" in short.summary()
    stopped = gd.Network.from_sizes([1, 32, 1], activation="tanh", seed=0).fit(
        X, y, optimizer=gd.SGD(lr=50.0), epochs=10, on_divergence="stop")
    assert stopped.suggested_lr is not None
    assert f"try find_lr's suggestion {stopped.suggested_lr:.3g}" in stopped.summary()


def test_divergence_error_suggests_a_rate_from_find_lr(backend):
    X, y = gd.datasets.sine(seed=0)
    net = gd.Network.from_sizes([1, 32, 1], activation="tanh", seed=0)
    with pytest.raises(gd.DivergenceError) as info:
        net.fit(X, y, optimizer=gd.SGD(lr=50.0), epochs=10)
    assert info.value.suggestion is not None and info.value.suggestion < 50.0
    assert f"gd.find_lr suggests {info.value.suggestion:.3g}" in str(info.value)

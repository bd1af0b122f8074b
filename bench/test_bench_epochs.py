"""One training epoch of each benchmark workload, and predict-1, on each backend."""
import numpy as np
import pytest

from workloads import PREDICT_WORKLOAD, WORKLOADS, restore, snapshot


@pytest.mark.parametrize("workload", WORKLOADS.values(), ids=WORKLOADS.keys())
def test_epoch(benchmark, backend, workload):
    """``fit(epochs=1, shuffle=False)`` from the same initial weights and a fresh optimizer."""
    X, y = workload.data()
    network = workload.network()
    initial = snapshot(network)

    def reset():
        restore(network, initial)
        return (workload.optimizer(),), {}

    def epoch(optimizer):
        return network.fit(X, y, optimizer=optimizer, epochs=1,
                           batch_size=workload.batch_size, shuffle=False)

    # The NumPy reference takes seconds per large epoch: one round is enough to see it.
    slow = backend == "numpy" and workload.name == "large"
    benchmark.extra_info["gflop_per_epoch"] = (
        workload.train_flops_per_sample * workload.n_samples / 1e9)
    history = benchmark.pedantic(epoch, setup=reset, rounds=1 if slow else 5,
                                 warmup_rounds=0 if slow else 1)
    assert history.epochs == 1 and np.isfinite(history.loss[0])


def test_predict_one(benchmark, backend):
    """``forward`` on a single row (1-D, float32) of the small network, per call."""
    workload = WORKLOADS[PREDICT_WORKLOAD]
    network = workload.network()
    x_row = workload.data()[0][0]
    out = benchmark(network.forward, x_row)
    assert out.shape == (1, workload.n_outputs) and np.isfinite(out).all()

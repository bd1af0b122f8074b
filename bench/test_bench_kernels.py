"""The kernels on their own: GEMM-bound dense passes, activations, optimizer updates."""
import numpy as np
import pytest

import gdcore as gd
from workloads import WORKLOADS

DENSE = WORKLOADS["large"]      # 1024-2048-2048-10: the GEMMs dominate
DENSE_BATCH = 512
ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu",
               "softmax"]
OPTIMIZERS = {
    "sgd": lambda: gd.SGD(lr=0.01),
    "sgd_momentum": lambda: gd.SGD(lr=0.01, momentum=0.9),
    "adam": lambda: gd.Adam(lr=1e-3),
    "adamw": lambda: gd.AdamW(lr=1e-3),
    "rmsprop": lambda: gd.RMSprop(lr=1e-3),
}


@pytest.fixture(scope="module")
def dense_data():
    X, y = DENSE.data()
    return X[:DENSE_BATCH], y[:DENSE_BATCH]


def test_dense_forward(benchmark, backend, dense_data):
    X, _ = dense_data
    network = DENSE.network()
    benchmark.extra_info["gflop"] = 2 * DENSE.multiply_adds * DENSE_BATCH / 1e9
    out = benchmark(network.forward, X)
    assert out.shape == (DENSE_BATCH, DENSE.n_outputs) and np.isfinite(out).all()


def test_dense_gradients(benchmark, backend, dense_data):
    """Forward and backward (``net.gradients``): 6 FLOPs per weight multiply-add."""
    X, y = dense_data
    network = DENSE.network()
    benchmark.extra_info["gflop"] = 6 * DENSE.multiply_adds * DENSE_BATCH / 1e9
    grads = benchmark(network.gradients, X, y)
    dW0, _ = grads[0]
    assert dW0.shape == (DENSE.n_inputs, DENSE.sizes[1]) and np.abs(dW0).max() > 0


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_forward(benchmark, backend, activation):
    """A one-layer network 16 -> 1024 on 4096 rows: 4M activations behind a thin GEMM."""
    X = np.random.default_rng(0).standard_normal((4096, 16), dtype=np.float32)
    network = gd.Network([gd.Layer(16, 1024, activation)], loss="mse", seed=0)
    out = benchmark(network.forward, X)
    assert out.shape == (4096, 1024) and np.isfinite(out).all()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_fit(benchmark, backend, name):
    """One full-batch epoch (a single update of 262k parameters) of a 512 -> 512 layer.

    The optimizer object is reused, so its state carries over from round to round as in
    consecutive ``fit`` calls; every round does the same work.
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 512), dtype=np.float32)
    Y = rng.standard_normal((32, 512), dtype=np.float32)
    network = gd.Network([gd.Layer(512, 512)], loss="mse", seed=0)
    optimizer = OPTIMIZERS[name]()
    history = benchmark(network.fit, X, Y, optimizer=optimizer, epochs=1, shuffle=False)
    assert history.epochs == 1 and np.isfinite(history.loss[0])

"""The compiled core's own kernels against the reference engine, on every instruction set.

The core multiplies small products with its own vectorised kernels (one build per instruction
set, picked at run time) and larger ones with OpenBLAS; float32 tanh/sigmoid/exp/bce use
polynomial approximations. The shapes below sit at and around every dispatch threshold
(vector width 8/16, the n == 1 dot path, the narrow transposed path, the packing and depth
limits, OpenBLAS beyond), on every instruction set this CPU runs (the ``isa`` fixture, which
skips the numpy engine: it has no kernels of its own).
"""
import numpy as np
import pytest

from gdcore import _backend
from helpers import (DTYPES, RTOL, assert_close, core_only, gradient_buffers, make_data,
                     make_pair, run_epochs)


def check_against_reference(factory, sizes, n, acts, loss, targets, dtype):
    eng, weights, biases, ref, _, _ = make_pair(factory, sizes, acts, loss, dtype,
                                                seed=len(sizes) + n)
    X, Y, _ = make_data(n, sizes[0], sizes[-1], targets, dtype, seed=n)
    rtol = RTOL[dtype]
    assert_close(eng.forward(X), ref.forward(X), rtol, "forward")
    assert_close(eng.predict(X), ref.forward(X), rtol, "predict")
    dW, db = gradient_buffers(weights, biases)
    rW, rb = gradient_buffers(weights, biases)
    assert_close(eng.gradients(X, Y, None, dW, db), ref.gradients(X, Y, None, rW, rb), rtol)
    for i in range(len(dW)):
        assert_close(dW[i], rW[i], rtol, f"dW[{i}]")
        assert_close(db[i], rb[i], rtol, f"db[{i}]")
    assert np.abs(db[-1]).max() > 0  # (dead relu units may zero every dW on tiny shapes)


# (n_inputs, n_hidden, n_outputs, batch): widths around 8 and 16 lanes, one output (dot path),
# narrow outputs under wide inputs (transposed path), depth 512/513 (own-kernel limit),
# n_out * n_in around 4096 (packing limit of dZ @ W^T), m n k around 2^17 (OpenBLAS beyond)
# and, for forward products (both operands as stored, n >= 32), around 2^18; one sample,
# one feature.
KERNEL_SHAPES = [
    (1, 1, 1, 1), (2, 16, 1, 32), (1, 7, 1, 5), (3, 8, 2, 4), (5, 9, 3, 3), (16, 15, 1, 17),
    (17, 16, 7, 9), (15, 17, 8, 2), (31, 32, 9, 8), (33, 31, 16, 12), (16, 33, 17, 31),
    (64, 128, 10, 32), (64, 128, 10, 1), (128, 10, 1, 40), (40, 64, 1, 7),
    (512, 8, 3, 6), (513, 8, 3, 6), (8, 512, 3, 5), (4, 513, 2, 3),
    (64, 64, 64, 16), (65, 64, 65, 16), (32, 128, 16, 16), (64, 256, 4, 17),
    (96, 128, 24, 64), (128, 129, 10, 63), (200, 160, 130, 40), (256, 100, 3, 40),
    (64, 64, 8, 32), (65, 64, 8, 32),
    (64, 128, 10, 31), (64, 129, 10, 32), (128, 128, 10, 16), (128, 64, 10, 33),
    (64, 31, 32, 132), (64, 32, 31, 128),
    # around the per-table limits (build_info()["own_gemm_limits"]): Aᵀ dZ of 2^12, 2^14, 2^15
    # multiply-adds and one more row; A W of 2^19 (batch 32 x 128 x 128) and beyond
    (16, 16, 4, 16), (17, 16, 4, 16), (32, 32, 4, 16), (32, 32, 4, 32), (33, 32, 4, 32),
    (128, 128, 8, 32), (129, 128, 8, 32),
]


@core_only
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("hidden", ["tanh", "relu"])  # relu: fused into the products
@pytest.mark.parametrize("shape", KERNEL_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_kernel_shapes_match_reference(engine_factory, shape, hidden, dtype, isa):
    n_in, n_hidden, n_out, n = shape
    check_against_reference(engine_factory, [n_in, n_hidden, n_out], n, [hidden, "identity"],
                            "mse", "dense", dtype)


@core_only
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("sizes,n", [([65, 64, 65, 3], 16), ([300, 200, 130, 4], 40),
                                     ([5, 6, 7, 2], 1)])
def test_relu_stacks_match_reference(engine_factory, sizes, n, dtype, isa):
    """relu after relu: the backward mask of a relu layer applied by the own kernel or after an
    OpenBLAS product (shapes past its limits), and a relu output layer."""
    check_against_reference(engine_factory, sizes, n, ["relu", "relu", "identity"], "mse",
                            "dense", dtype)
    check_against_reference(engine_factory, sizes, n, ["relu", "tanh", "relu"], "mse", "dense",
                            dtype)


@core_only
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("opt", ["sgd", "sgd_momentum", "sgd_nesterov", "sgd_wd"])
def test_small_workload_epochs_match_reference(engine_factory, opt, dtype, isa):
    """The issue's tiny/small workloads in miniature: bce and cross_entropy, two epochs."""
    for sizes, acts, loss, targets in [([2, 16, 1], ["tanh", "sigmoid"], "bce", "binary"),
                                       ([64, 128, 10], ["relu", "softmax"], "cross_entropy",
                                        "labels")]:
        eng, weights, biases, ref, ref_w, ref_b = make_pair(engine_factory, sizes, acts, loss,
                                                            dtype)
        X, Y, _ = make_data(100, sizes[0], sizes[-1], targets, dtype)
        orders = [np.arange(100, dtype=np.int64)] * 2
        got = run_epochs(eng, weights, biases, X, Y, None, orders, 32, opt)
        want = run_epochs(ref, ref_w, ref_b, X, Y, None, orders, 32, opt)
        rtol = 1e-6 if dtype == np.float64 else 1e-4
        assert_close(got[0], want[0], rtol, "epoch losses")
        for i, (a, b) in enumerate(zip(weights + biases, ref_w + ref_b)):
            assert_close(a, b, rtol, f"parameter {i}")


def one_layer(factory, code, loss, n, dtype=np.float32):
    """An engine whose output is f(X) itself: one layer, W = I, b = 0."""
    return factory([np.eye(n, dtype=dtype)], [np.zeros(n, dtype)], [code], loss)


def _expit(z):
    """The logistic function in float64, stable on both sides (no scipy needed)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@core_only
def test_float32_math_accuracy(engine_factory, isa):
    z = np.concatenate([np.linspace(-87, 87, 20001), np.linspace(-1e-3, 1e-3, 2001),
                        [0.0, -0.0, 1e-30, -1e-30, 7.9, 8.0, -9.0]]).astype(np.float32)
    zd = z.astype(np.float64)
    col = z.reshape(-1, 1)
    f = engine_factory

    def ulps(got, want):
        return np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)

    assert ulps(one_layer(f, 2, 0, 1).forward(col).ravel(), np.tanh(zd)).max() <= 8
    assert ulps(one_layer(f, 1, 0, 1).forward(col).ravel(), _expit(zd)).max() <= 4
    # beyond the normal range: limits, no overflow, NaN propagates
    extreme = np.array([[-1e4], [-100.0], [100.0], [1e4], [np.inf], [-np.inf], [np.nan]],
                       np.float32)
    t = one_layer(f, 2, 0, 1).forward(extreme).ravel()
    s = one_layer(f, 1, 0, 1).forward(extreme).ravel()
    np.testing.assert_array_equal(t[:6], [-1, -1, 1, 1, 1, -1])
    np.testing.assert_allclose(s[:6], [0, 0, 1, 1, 1, 0], atol=1e-30)
    assert np.isnan(t[6]) and np.isnan(s[6])
    # softmax (exp of z - max) and the bce loss (log1p(exp(-|z|)))
    X = (np.random.default_rng(0).standard_normal((500, 6)) * 30).astype(np.float32)
    want = np.exp(X - X.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(one_layer(f, 8, 4, 6).forward(X), want, rtol=1e-5, atol=1e-7)
    zb = np.linspace(-60, 60, 4001).astype(np.float32).reshape(-1, 1)
    for y in (0.0, 1.0):
        Y = np.full_like(zb, y)
        zz = zb.astype(np.float64)
        want = np.mean(np.maximum(zz, 0) - zz * y + np.log1p(np.exp(-np.abs(zz))))
        assert abs(one_layer(f, 1, 3, 1).loss(zb, Y, None) - want) <= 1e-6 * want


@core_only
def test_kernel_isa_selection(engine_factory):
    core = _backend._core
    isas = core._kernel_isas()
    assert isas[0] in ("x86-64", "generic") and core.build_info()["kernels_isa"] == isas[-1]
    with pytest.raises(ValueError, match="unknown or unsupported"):
        core._set_kernel_isa("sse9")
    assert core.build_info()["kernels_isa"] == isas[-1]


@core_only
def test_own_gemm_limits_follow_the_isa(engine_factory):
    """Each kernel table reports its own limits against OpenBLAS, within small_gemm_limit."""
    core = _backend._core
    seen = {}
    try:
        for isa in core._kernel_isas():
            core._set_kernel_isa(isa)
            info = core.build_info()
            limits = info["own_gemm_limits"]
            assert info["kernels_isa"] == isa
            assert set(limits) == {"wide", "transpose_a", "other"}
            assert all(0 < v <= info["small_gemm_limit"] for v in limits.values()), limits
            assert info["split_gemm_limit"] >= max(limits.values())
            seen[isa] = limits
    finally:
        core._set_kernel_isa("auto")
    if "x86-64" in seen and "avx2" in seen:  # SSE2 hands more products to OpenBLAS than AVX2
        assert seen["x86-64"]["wide"] < seen["avx2"]["wide"]

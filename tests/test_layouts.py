"""Memory layouts the public calls accept on both engines: unaligned, non-contiguous,
byte-swapped and read-only arrays give the same results as a plain C-contiguous copy;
Fortran-ordered, strided, read-only and integer arrays give exactly the results of their
contiguous float copies; class labels in any integer type or layout."""
import numpy as np
import pytest

import gdcore as gd
from helpers import assert_same_params, tolerance


def unaligned(values: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``values`` whose data starts one byte past an aligned address."""
    raw = np.zeros(values.nbytes + 1, np.uint8)
    out = raw[1:].view(values.dtype).reshape(values.shape)
    out[...] = values
    assert out.flags.c_contiguous and not out.flags.aligned
    return out


def layouts(values: np.ndarray) -> dict:
    """``values`` in several layouts, all holding the same numbers."""
    fortran = np.asfortranarray(values)
    strided = np.repeat(values, 2, axis=-1)[..., ::2] if values.ndim == 2 else values[::1]
    swapped = values.astype(values.dtype.newbyteorder(">"))
    readonly = values.copy()
    readonly.flags.writeable = False
    return {"unaligned": unaligned(values), "fortran": fortran, "strided": strided,
            "byteswapped": swapped, "readonly": readonly}


@pytest.mark.parametrize("layout", ["unaligned", "fortran", "strided", "byteswapped",
                                    "readonly"])
def test_every_call_accepts_the_layout(backend, dtype, layout, rng):
    net = gd.Network.from_sizes([5, 7, 3], output_activation="softmax", loss="cross_entropy",
                                dtype=dtype, seed=0)
    X = rng.normal(size=(12, 5)).astype(dtype)
    y = rng.integers(0, 3, size=12)
    w = rng.uniform(0.5, 2.0, size=12).astype(dtype)
    Xl, yl, wl = (layouts(X)[layout], layouts(y)[layout], layouts(w)[layout])
    tol = tolerance(dtype)
    np.testing.assert_allclose(net.predict(Xl), net.predict(X), rtol=tol, atol=tol)
    np.testing.assert_allclose(net.predict(layouts(X[0])[layout]), net.predict(X[0]),
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(net.layers[0].forward(Xl), net.layers[0].forward(X),
                               rtol=tol, atol=tol)
    assert net.loss(Xl, yl, sample_weight=wl) == pytest.approx(
        net.loss(X, y, sample_weight=w), rel=tol)
    for layer_l, layer in zip(net.gradients(Xl, yl, sample_weight=wl),
                              net.gradients(X, y, sample_weight=w)):
        for a, b in zip(layer_l, layer):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    twin = net.copy()
    h1 = net.fit(Xl, yl, sample_weight=wl, epochs=2, batch_size=4, shuffle=False,
                 optimizer=gd.SGD(lr=0.1))
    h2 = twin.fit(X, y, sample_weight=w, epochs=2, batch_size=4, shuffle=False,
                  optimizer=gd.SGD(lr=0.1))
    np.testing.assert_allclose(h1.loss, h2.loss, rtol=tol)
    for a, b in zip(net.parameters(), twin.parameters()):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    net.layers[0].weights = unaligned(net.layers[0].weights.copy())  # assigning copies


def _variants(a):
    """``a`` (float64, C order) as Fortran-ordered, strided, read-only copies."""
    fortran = np.asfortranarray(a)
    strided = np.repeat(a, 2, axis=0)[::2]
    readonly = a.copy()
    readonly.setflags(write=False)
    out = {"fortran": fortran, "strided": strided, "readonly": readonly}
    if a.ndim == 2:
        out["transposed-view"] = np.ascontiguousarray(a.T).T
    return out


@pytest.mark.parametrize("what", ["X", "y", "sample_weight"])
def test_layouts_give_the_results_of_contiguous_copies(backend, dtype, rng, what):
    X = rng.normal(size=(10, 3))
    y = rng.normal(size=(10, 2))
    sw = rng.uniform(0.5, 2.0, size=10)
    net = gd.Network.from_sizes([3, 4, 2], activation="tanh", dtype=dtype, seed=0)
    ref_out = net.forward(X)
    ref_loss = net.loss(X, y, sample_weight=sw)
    ref_grads = net.gradients(X, y, sample_weight=sw)
    ref_net = net.copy()
    ref_net.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=2, batch_size=3, sample_weight=sw,
                seed=0)
    original = {"X": X, "y": y, "sample_weight": sw}[what]
    for name, variant in _variants(original).items():
        args = {"X": X, "y": y, "sample_weight": sw, what: variant}
        if what == "X":
            np.testing.assert_array_equal(net.forward(variant), ref_out, err_msg=name)
        assert net.loss(*args.values()) == ref_loss, name
        for (gw, gb), (rw, rb) in zip(net.gradients(*args.values()), ref_grads):
            np.testing.assert_array_equal(gw, rw, err_msg=name)
            np.testing.assert_array_equal(gb, rb, err_msg=name)
        trained = net.copy()
        trained.fit(args["X"], args["y"], optimizer=gd.Adam(lr=0.01), epochs=2, batch_size=3,
                    sample_weight=args["sample_weight"], seed=0)
        assert_same_params(trained, ref_net)
    np.testing.assert_array_equal(original, {"X": X, "y": y, "sample_weight": sw}[what])


def test_integer_arrays_equal_their_float_copies(backend, dtype, rng):
    X = rng.integers(-3, 4, size=(10, 3))
    y = rng.integers(-2, 3, size=(10, 2))
    sw = rng.integers(1, 4, size=10)
    net = gd.Network.from_sizes([3, 4, 2], activation="tanh", dtype=dtype, seed=0)
    Xf, yf, swf = X.astype(float), y.astype(float), sw.astype(float)
    np.testing.assert_array_equal(net.forward(X), net.forward(Xf))
    np.testing.assert_array_equal(net(X[0]), net(Xf[0]))  # one sample, 1-D
    assert net.loss(X, y, sw) == net.loss(Xf, yf, swf)
    for (a, b), (c, d) in zip(net.gradients(X, y, sw), net.gradients(Xf, yf, swf)):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    a, b = net.copy(), net.copy()
    a.fit(X, y, optimizer=gd.SGD(lr=0.05, momentum=0.9), epochs=2, batch_size=4,
          sample_weight=sw, seed=1)
    b.fit(Xf, yf, optimizer=gd.SGD(lr=0.05, momentum=0.9), epochs=2, batch_size=4,
          sample_weight=swf, seed=1)
    assert_same_params(a, b)
    # bool and small integer types too
    np.testing.assert_array_equal(net.forward(X.astype(np.int8)), net.forward(Xf))
    np.testing.assert_array_equal(net.forward(X > 0), net.forward((X > 0).astype(float)))


@pytest.mark.parametrize("labels", ["int32", "uint8", "float", "strided", "readonly",
                                    "fortran-onehot"])
def test_class_labels_in_any_integer_layout(backend, rng, labels):
    X = rng.normal(size=(9, 2))
    y = rng.integers(0, 3, size=9)
    net = gd.Network.from_sizes([2, 4, 3], output_activation="softmax", loss="cross_entropy",
                                dtype="float64", seed=0)
    readonly = y.copy()
    readonly.setflags(write=False)
    variant = {
        "int32": y.astype(np.int32), "uint8": y.astype(np.uint8), "float": y.astype(float),
        "strided": np.repeat(y, 2)[::2], "readonly": readonly,
        "fortran-onehot": np.asfortranarray(np.eye(3, dtype=int)[y]),
    }[labels]
    if labels != "fortran-onehot":  # the same int64 labels reach the engine
        assert net.loss(X, variant) == net.loss(X, y)
    np.testing.assert_allclose(net.loss(X, variant), net.loss(X, y), rtol=1e-12)
    a, b = net.copy(), net.copy()
    a.fit(X, variant, optimizer=gd.Adam(lr=0.01), epochs=3, batch_size=4, seed=0)
    b.fit(X, y, optimizer=gd.Adam(lr=0.01), epochs=3, batch_size=4, seed=0)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-15)

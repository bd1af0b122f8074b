"""Memory layouts the public calls accept on both engines: unaligned, non-contiguous,
byte-swapped and read-only arrays give the same results as a plain C-contiguous copy."""
import numpy as np
import pytest

import gdcore as gd

from conftest import tolerance


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

"""gd.minimize and gd.minimize_many over compiled objectives.

The compiled case proper: C functions built here with the system compiler (skipped without
one) and loaded with ctypes. Each has a Python twin written with the same operations in the same
order, so the compiled descent (C++ engine), the same compiled function in the NumPy reference
loop (through ctypes) and the Python path (fun + grad) must give the same iterates (1e-9
relative; in practice bitwise). Also: every way of passing a function (ctypes, a ctypes callback
wrapping Python, scipy.LowLevelCallable, PyCapsule, numba when installed), ``data``, the
divergence rules, the unwritten-grad check, wrong prototypes, Ctrl-C, minimize_many and
plot_descent with its results.
"""
from __future__ import annotations

import _thread
import ctypes
import importlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import gdcore as gd
from gdcore import _backend, _compiled

sys.path.insert(0, str(Path(__file__).parent / "compiled_objectives"))
from objectives_build import build_objectives  # noqa: E402

needs_core = pytest.mark.skipif(_backend._core is None, reason="needs the compiled core")


@pytest.fixture(scope="session")
def lib(tmp_path_factory):
    """The test functions compiled into a shared library with the system C compiler."""
    library = build_objectives(tmp_path_factory.mktemp("objectives"),
                               _compiled.PROTOTYPE._argtypes_)
    if library is None:
        pytest.skip("needs a C compiler")
    return library


# ---- the Python twins: same operations, same order --------------------------------------------

def rosen(x):
    a = x[1:] - x[:-1] * x[:-1]
    b = 1.0 - x[:-1]
    return float(np.sum(100.0 * a * a + b * b))


def rosen_grad(x):
    a = x[1:] - x[:-1] * x[:-1]
    b = 1.0 - x[:-1]
    g = np.zeros_like(x)
    g[:-1] += -400.0 * x[:-1] * a - 2.0 * b
    g[1:] += 200.0 * a
    return g


CURVATURES = np.array([1.0, 4.0, 9.0])


def quad(x):
    return float(np.sum(0.5 * CURVATURES * x * x))


def quad_grad(x):
    return CURVATURES * x


def quartic(x):
    with np.errstate(over="ignore"):
        return float(np.sum(0.25 * x * x * x * x))


def quartic_grad(x):
    with np.errstate(over="ignore"):
        return x * x * x


def cliff(x):
    return float(np.sum(x * x))


def cliff_grad(x):
    return np.where(np.abs(x) < 3.0, 2.0 * x, np.inf)


def nan_beyond(x):
    return float("nan") if abs(x[0]) > 5.0 else float(np.sum(x * x))


def nan_beyond_grad(x):
    return 2.0 * x


TWINS = {"rosen": (rosen, rosen_grad), "quad": (quad, quad_grad),
         "quartic": (quartic, quartic_grad), "cliff": (cliff, cliff_grad),
         "nan_beyond": (nan_beyond, nan_beyond_grad)}


def data_for(name):
    return CURVATURES if name == "quad" else None


QUAD_X0 = [1.0, -2.0, 0.5]  # the quadratic's start, where a test does not need another


def python_descent(name, x0, **kwargs):
    """gd.minimize on the Python twin of the compiled function ``name`` (fun and grad)."""
    fun, grad = TWINS[name]
    return gd.minimize(fun, x0, grad=grad, **kwargs)


def assert_same(a, b, rtol=1e-9):
    """Two MinimizeResults with the same iterates (rtol) and the same outcome."""
    assert (a.nit, a.converged, a.diverged, a.message) == (b.nit, b.converged, b.diverged,
                                                            b.message)
    assert a.path.shape == b.path.shape
    np.testing.assert_allclose(a.path, b.path, rtol=rtol, atol=0)
    np.testing.assert_allclose(a.x, b.x, rtol=rtol, atol=0)
    np.testing.assert_allclose(a.fun, b.fun, rtol=rtol, atol=0)
    np.testing.assert_allclose(a.grad_norm, b.grad_norm, rtol=rtol, atol=0)


def three_ways(lib, name, x0, **kwargs):
    """(C++ compiled, reference loop over the compiled function, Python path)."""
    compiled = dict(kwargs, data=data_for(name))
    with gd.use_backend("numpy"):
        reference = gd.minimize(getattr(lib, name), x0, **compiled)
    with gd.use_backend("cpp"):
        cpp = gd.minimize(getattr(lib, name), x0, **compiled)
    return cpp, reference, python_descent(name, x0, **kwargs)


# ---- equal to the Python path -------------------------------------------------------------------

CASES = [
    ("rosen", [-1.2, 1.0, -1.2, 1.0], dict(lr=1e-3, momentum=0.9, max_iter=20000, tol=1e-6)),
    ("rosen", [-1.2, 1.0], dict(lr=1e-3, max_iter=3000)),
    ("rosen", [0.5, 0.5, 0.5], dict(lr=2e-3, momentum=0.5, max_iter=5000, tol=1e-10)),
    ("quad", [1.0, -2.0, 0.5], dict(lr=0.2)),                           # converges
    ("quad", [1.0, -2.0, 0.5], dict(lr=0.2, momentum=0.3)),
    ("quad", [1.0, -2.0, 0.5], dict(lr=0.23, max_iter=100_000)),       # 2/9 < lr: blows up
    ("quartic", [10.0, -3.0], dict(lr=0.5)),                            # overshoots to inf
    ("quartic", [2.0, -3.0], dict(lr=0.9, momentum=0.5)),
    ("quad", [1.0, -2.0, 0.5], dict(lr=1e308)),                         # iterate overflows
    ("cliff", [2.0, 1.0], dict(lr=0.9)),
    ("cliff", [2.0, 1.0], dict(lr=1.1)),                                # gradient inf
    ("nan_beyond", [2.0, 1.0], dict(lr=1.2)),                           # value NaN
    ("rosen", [1.0, 1.0, 1.0, 1.0], dict(lr=1e-3)),                     # tol met at x0
    ("rosen", [-1.2, 1.0, 0.3], dict(lr=1e-3, max_iter=0)),             # no step
    ("quad", [1.0, 2.0, 3.0], dict(lr=0.1, tol=0.0, max_iter=50)),
]


@needs_core
@pytest.mark.parametrize("name, x0, kwargs", CASES)
def test_compiled_descent_equals_the_python_path(lib, name, x0, kwargs):
    cpp, reference, python = three_ways(lib, name, np.array(x0), **kwargs)
    assert_same(cpp, python)
    assert_same(reference, python)
    np.testing.assert_array_equal(cpp.path, reference.path)  # the twins: the same operations
    assert cpp.path.flags.writeable is False and cpp.x.flags.writeable is False
    np.testing.assert_array_equal(cpp.path[0], x0)
    np.testing.assert_array_equal(cpp.path[-1], cpp.x)


def test_the_cases_cover_every_ending(lib):
    """Each way a descent ends appears in CASES above."""
    messages = []
    for name, x0, kwargs in CASES:
        with gd.use_backend("numpy"):
            messages.append(gd.minimize(getattr(lib, name), np.array(x0), data=data_for(name),
                                        **kwargs).message)
    for start in ("converged: gradient norm <= tol", "stopped: max_iter",
                  "diverged: the gradient is not finite", "diverged: the next iterate is not",
                  "diverged: fun is not finite at step", "diverged: fun grew past"):
        assert any(m.startswith(start) for m in messages), (start, messages)


def test_rosenbrock_converges_to_the_minimum(lib):
    r = gd.minimize(lib.rosen, [-1.2, 1.0, -1.2, 1.0], lr=1e-3, momentum=0.9, max_iter=20000,
                    tol=1e-6)
    assert r.converged and not r.diverged
    np.testing.assert_allclose(r.x, np.ones(4), atol=1e-5)
    assert r.path.shape == (r.nit + 1, 4)


def test_x0_is_not_modified(lib):
    x0 = np.array([-1.2, 1.0])
    gd.minimize(lib.rosen, x0, lr=1e-3, max_iter=10)
    np.testing.assert_array_equal(x0, [-1.2, 1.0])


# ---- every way of passing a compiled function -----------------------------------------------

def test_ctypes_callback_wrapping_python_is_called_back_without_the_gil(lib):
    """A CFUNCTYPE around a Python function: the C++ descent calls it with the GIL released
    (ctypes takes it), and it gives the same iterates as the compiled one."""
    calls = []

    @_compiled.PROTOTYPE
    def py_rosen(n, x, grad, data):
        calls.append(threading.get_ident())
        xs = np.ctypeslib.as_array(x, (n,))
        if grad:
            np.ctypeslib.as_array(grad, (n,))[:] = rosen_grad(xs)
        return rosen(xs)

    x0 = [-1.2, 1.0, 0.5]
    via_python = gd.minimize(py_rosen, x0, lr=1e-3, momentum=0.9, max_iter=500)
    assert_same(via_python, gd.minimize(lib.rosen, x0, lr=1e-3, momentum=0.9, max_iter=500))
    assert len(calls) == via_python.nit + 1
    assert set(calls) == {threading.get_ident()}


DATA_FORMS = {  # the other ways of passing an array ``a`` as data, besides ``a`` itself
    "int": lambda a: a.ctypes.data,
    "POINTER(c_double)": lambda a: a.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
    "c_void_p": lambda a: ctypes.c_void_p(a.ctypes.data),
    "c_double_array": lambda a: (ctypes.c_double * len(a))(*a),
}


@pytest.mark.parametrize("form", DATA_FORMS.values(), ids=list(DATA_FORMS))
def test_data_as_an_address_or_a_ctypes_object_equals_the_ndarray(lib, form):
    a = CURVATURES.copy()
    kwargs = dict(lr=0.2, max_iter=40)
    assert_same(gd.minimize(lib.quad, QUAD_X0, data=form(a), **kwargs),
                gd.minimize(lib.quad, QUAD_X0, data=a, **kwargs), rtol=0)


def test_data_reaches_the_function(lib):
    """Other curvatures, other descent."""
    kwargs = dict(lr=0.2, max_iter=40)
    base = gd.minimize(lib.quad, QUAD_X0, data=CURVATURES, **kwargs)
    steeper = gd.minimize(lib.quad, QUAD_X0, data=2 * CURVATURES, **kwargs)
    assert not np.array_equal(steeper.path, base.path)


def test_scipy_low_level_callable_with_user_data(lib):
    scipy = pytest.importorskip("scipy")
    a = CURVATURES.copy()
    llc = scipy.LowLevelCallable(lib.quad, ctypes.cast(a.ctypes.data, ctypes.c_void_p))
    assert _compiled.compiled_objective(llc).data == a.ctypes.data
    assert_same(gd.minimize(llc, QUAD_X0, lr=0.2), python_descent("quad", QUAD_X0, lr=0.2))
    plain = scipy.LowLevelCallable(lib.rosen)
    assert_same(gd.minimize(plain, [-1.2, 1.0], lr=1e-3, max_iter=200),
                python_descent("rosen", [-1.2, 1.0], lr=1e-3, max_iter=200))
    with pytest.raises(TypeError, match="user_data"):
        gd.minimize(llc, [1.0, 2.0, 3.0], data=a)


def _capsule(address, name, context=0):
    new = ctypes.pythonapi.PyCapsule_New
    new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p,
                                                   ctypes.c_void_p]
    capsule = new(address, name, None)
    if context:
        set_context = ctypes.pythonapi.PyCapsule_SetContext
        set_context.restype, set_context.argtypes = ctypes.c_int, [ctypes.py_object,
                                                                   ctypes.c_void_p]
        assert set_context(capsule, context) == 0
    return capsule


@pytest.mark.parametrize("name", [b"double (int, double *, double *, void *)",
                                  b"double (int, const double *, double *, void *)",
                                  b"double(int,double const*,double*,void*)"])
def test_pycapsule_named_by_the_signature(lib, name):
    a = CURVATURES.copy()
    address = ctypes.cast(lib.quad, ctypes.c_void_p).value
    expected = python_descent("quad", QUAD_X0, lr=0.2)
    with_context = _capsule(address, name, a.ctypes.data)
    assert_same(gd.minimize(with_context, QUAD_X0, lr=0.2), expected)
    # data= overrides a capsule's context
    bare = _capsule(address, name)
    assert_same(gd.minimize(bare, QUAD_X0, lr=0.2, data=a), expected)


def test_numba_cfunc(lib):
    numba = pytest.importorskip("numba")
    from numba import types

    sig = types.float64(types.intc, types.CPointer(types.float64), types.CPointer(types.float64),
                        types.voidptr)

    @numba.cfunc(sig)
    def nb_rosen(n, x, grad, data):
        f = 0.0
        for i in range(n):
            grad[i] = 0.0
        for i in range(n - 1):
            a = x[i + 1] - x[i] * x[i]
            b = 1.0 - x[i]
            f += 100.0 * a * a + b * b
            grad[i] += -400.0 * x[i] * a - 2.0 * b
            grad[i + 1] += 200.0 * a
        return f

    x0, kwargs = [-1.2, 1.0, -1.2, 1.0], dict(lr=1e-3, momentum=0.9, max_iter=2000)
    r = gd.minimize(nb_rosen.ctypes, x0, **kwargs)
    assert_same(r, gd.minimize(lib.rosen, x0, **kwargs), rtol=1e-9)
    # the cfunc itself (callable from Python as its Python function) is taken as its .ctypes,
    # in minimize_many and plot_descent's evaluation too (which must pass a grad buffer)
    assert _compiled.is_compiled(nb_rosen)
    assert_same(gd.minimize(nb_rosen, x0, **kwargs), r, rtol=0)
    many = gd.minimize_many(nb_rosen, [-1.2, 1.0], [1e-4, 1e-3], momentum=0.9, max_iter=100)
    assert [m.nit for m in many] == [100, 100]
    assert _compiled.python_function(nb_rosen)(np.array([-1.2, 1.0])) == rosen(
        np.array([-1.2, 1.0]))


# ---- wrong functions and arguments ------------------------------------------------------------

def test_function_that_ignores_grad_is_a_clear_error(lib, backend):
    with pytest.raises(ValueError, match=r"did not write grad\[0\] at x0"):
        gd.minimize(lib.ignores_grad, [1.0, 2.0])
    calls = ctypes.c_longlong(0)
    with pytest.raises(ValueError, match=r"did not write grad\[2\] at iterate 1"):
        gd.minimize(lib.partial_grad, [1.0, 2.0, 3.0], data=ctypes.pointer(calls))


def test_not_finite_at_x0(lib):
    with pytest.raises(ValueError, match="finite value at x0"):
        gd.minimize(lib.nan_beyond, [6.0, 0.0])


def _other(restype, *argtypes):
    return ctypes.CFUNCTYPE(restype, *argtypes)(lambda *args: 0)


D, I, V = ctypes.c_double, ctypes.c_int, ctypes.c_void_p
PD = ctypes.POINTER(ctypes.c_double)
WRONG_PROTOTYPES = [
    _other(ctypes.c_int, I, PD, PD, V),         # returns int
    _other(D, I, PD, PD),                       # no data
    _other(D, ctypes.c_long, PD, PD, V),        # n not an int
    _other(D, I, ctypes.POINTER(ctypes.c_float), PD, V),
    _other(D, D),
]


@pytest.mark.parametrize("fun", WRONG_PROTOTYPES)
def test_ctypes_function_of_another_prototype_is_a_type_error(fun):
    with pytest.raises(TypeError, match="prototype"):
        gd.minimize(fun, [1.0, 2.0])


def test_cdll_function_without_argtypes_is_a_type_error(lib, tmp_path):
    raw = ctypes.CDLL(lib._name).rosen  # restype c_int, argtypes None: not declared
    with pytest.raises(TypeError, match="restype c_int and argtypes"):
        gd.minimize(raw, [1.0, 2.0])


def test_capsule_or_low_level_callable_of_another_signature_is_a_type_error(lib):
    address = ctypes.cast(lib.rosen, ctypes.c_void_p).value
    for name in (b"double (double)", b"float (int, float *, float *, void *)", None):
        with pytest.raises(TypeError, match="signature"):
            gd.minimize(_capsule(address, name), [1.0, 2.0])
    scipy = pytest.importorskip("scipy")
    other = scipy.LowLevelCallable(_other(D, D))
    with pytest.raises(TypeError, match="signature"):
        gd.minimize(other, [1.0, 2.0])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(grad=rosen_grad), TypeError, "grad must be None"),
    (dict(data="abc"), TypeError, "data must be"),
    (dict(data=True), TypeError, "data must be"),
    (dict(data=-1), ValueError, "address"),
    (dict(data=np.zeros((3, 3))[:, 0]), ValueError, "C-contiguous"),
    (dict(lr=0.0), ValueError, "lr"),
    (dict(x0=[]), ValueError, "x0"),
])
def test_bad_arguments_with_a_compiled_function(lib, kwargs, error, match):
    args = dict(fun=lib.rosen, x0=[1.0, 2.0])
    args.update(kwargs)
    with pytest.raises(error, match=match):
        gd.minimize(**args)


def test_data_with_a_python_function_is_a_type_error():
    with pytest.raises(TypeError, match="data is for compiled"):
        gd.minimize(rosen, [1.0, 2.0], grad=rosen_grad, data=3)
    with pytest.raises(TypeError, match="fun must be callable or a compiled function"):
        gd.minimize(3.0, [1.0, 2.0])


@needs_core
def test_binding_checks_its_arrays():
    core = _backend._core
    lrs = np.array([0.1])
    with pytest.raises(TypeError) as info:
        core.descend(1, 0, np.zeros(2, dtype=np.float32), lrs, 0.0, 10, 0.0)
    assert info.value.code == "dtype"
    with pytest.raises(ValueError) as info:
        core.descend(1, 0, np.zeros(0), lrs, 0.0, 10, 0.0)
    assert info.value.code == "shape"
    with pytest.raises(ValueError) as info:
        core.descend(0, 0, np.zeros(2), lrs, 0.0, 10, 0.0)
    assert info.value.code == "index"
    with pytest.raises(TypeError) as info:
        core.descend(1.5, 0, np.zeros(2), lrs, 0.0, 10, 0.0)
    assert info.value.code == "type"


# ---- Ctrl-C ---------------------------------------------------------------------------------

@needs_core
def test_a_long_compiled_descent_stops_on_ctrl_c(lib):
    """max_iter=10**12 would run for hours: an interrupt (as Ctrl-C) ends it promptly."""
    a = np.array([1e-12, 1e-12])  # creeps: never converges at tol 0
    timer = threading.Timer(0.3, _thread.interrupt_main)
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            gd.minimize(lib.quad, [1.0, 1.0], data=a, lr=1e-3, max_iter=10**12, tol=0.0)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 5.0


# ---- minimize_many --------------------------------------------------------------------------

RATES = [0.01, 0.1, 0.2, 0.3]   # heavy ball 0.1: stable below 2.2 / 9; too small ... too large


def test_minimize_many_equals_one_minimize_per_rate(lib, backend):
    many = gd.minimize_many(lib.quad, QUAD_X0, RATES, data=CURVATURES, momentum=0.1,
                            max_iter=500)
    singles = [gd.minimize(lib.quad, QUAD_X0, lr=lr, data=CURVATURES, momentum=0.1,
                           max_iter=500) for lr in RATES]
    assert len(many) == len(RATES)
    for m, s in zip(many, singles):
        assert_same(m, s, rtol=0)
    assert [m.converged for m in many] == [False, True, True, False]
    assert many[-1].diverged
    python = gd.minimize_many(quad, QUAD_X0, np.array(RATES), grad=quad_grad,
                              momentum=0.1, max_iter=500)
    for m, p in zip(many, python):
        assert_same(m, p)


@pytest.mark.parametrize("lrs, error", [([], ValueError), (0.1, TypeError), ("0.1", TypeError),
                                        ([0.1, 0.0], ValueError), ([0.1, float("nan")], ValueError),
                                        ([[0.1]], ValueError), ([0.1, "a"], TypeError)])
def test_minimize_many_bad_rates(lib, lrs, error):
    with pytest.raises(error, match="lrs"):
        gd.minimize_many(lib.rosen, [1.0, 2.0], lrs)


def test_plot_descent_takes_minimize_many_and_a_compiled_function(lib):
    matplotlib = pytest.importorskip("matplotlib", minversion="3.8")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from gdcore.plot import plot_descent

    a = CURVATURES[:2].copy()
    rates = [0.05, 0.3, 0.45]   # 2 / 4 = 0.5: slow, right, oscillating
    results = gd.minimize_many(lib.quad, [2.0, 1.5], rates, data=a, max_iter=40)
    fig, ax = plt.subplots()
    try:
        out = plot_descent(lib.quad, results, ax=ax, data=a, labels=[f"lr={r}" for r in rates])
        assert out is ax
        lines = [line for line in ax.get_lines() if line.get_label().startswith("lr=")]
        assert len(lines) == 3
        for line, r in zip(lines, results):
            np.testing.assert_array_equal(line.get_xdata(), r.path[:, 0])
        # the compiled function's values on the grid are the Python twin's
        value = _compiled.python_function(lib.quad, a)
        assert value(np.array([0.5, -1.0])) == pytest.approx(0.5 * 0.25 + 0.5 * 4.0)
        results[0].plot(lib.quad, ax=ax, data=a)
    finally:
        plt.close(fig)


CYTHON_SOURCE = """# cython: language_level=3
cdef api double rosen(int n, const double *x, double *grad, void *data) noexcept nogil:
    cdef double f = 0.0, a, b
    cdef int i
    if grad != NULL:
        for i in range(n):
            grad[i] = 0.0
    for i in range(n - 1):
        a = x[i + 1] - x[i] * x[i]
        b = 1.0 - x[i]
        f += 100.0 * a * a + b * b
        if grad != NULL:
            grad[i] += -400.0 * x[i] * a - 2.0 * b
            grad[i + 1] += 200.0 * a
    return f
"""


def test_cython_function_through_its_capsule(lib, tmp_path, monkeypatch):
    """The README's Cython example: `cdef api` exports a capsule named by the signature (with
    `double const *`); gd.minimize takes it as it is, and as scipy's LowLevelCallable."""
    pytest.importorskip("Cython")
    (tmp_path / "gd_cy_objectives.pyx").write_text(CYTHON_SOURCE)
    done = subprocess.run([sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-q",
                           "gd_cy_objectives.pyx"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"could not build the Cython module: {done.stderr[-500:]}")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("gd_cy_objectives")
    capsule = module.__pyx_capi__["rosen"]
    kwargs = dict(lr=1e-3, momentum=0.9, max_iter=3000)
    expected = gd.minimize(lib.rosen, [-1.2, 1.0, -1.2, 1.0], **kwargs)
    assert_same(gd.minimize(capsule, [-1.2, 1.0, -1.2, 1.0], **kwargs), expected)
    scipy = pytest.importorskip("scipy")
    llc = scipy.LowLevelCallable.from_cython(module, "rosen")
    assert_same(gd.minimize(llc, [-1.2, 1.0, -1.2, 1.0], **kwargs), expected)


def test_exception_in_a_python_ctypes_callback_stops_with_a_clear_error(monkeypatch, backend):
    """An exception cannot cross C: ctypes reports it to sys.unraisablehook and returns 0.0
    without writing grad, which the unwritten-grad check then turns into ValueError."""
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: reported.append(info.exc_value))
    calls = [0]

    @_compiled.PROTOTYPE
    def failing(n, x, grad, data):
        calls[0] += 1
        if calls[0] == 4:
            raise RuntimeError("boom")
        xs = np.ctypeslib.as_array(x, (n,))
        np.ctypeslib.as_array(grad, (n,))[:] = 2.0 * xs
        return float(xs @ xs)

    with pytest.raises(ValueError, match=r"did not write grad\[0\] at iterate 3"):
        gd.minimize(failing, [1.0, 2.0], lr=0.1)
    assert len(reported) == 1
    assert isinstance(reported[0], RuntimeError) and str(reported[0]) == "boom"


@needs_core
def test_a_path_too_large_for_memory_is_a_memory_error(lib):
    """The path grows with every step: past the address space left (RLIMIT_AS, in a child
    process) the compiled descent raises MemoryError, not abort, and the next call works."""
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("an address-space limit starves AddressSanitizer's own shadow memory")
    code = textwrap.dedent(f"""
        import ctypes, resource
        import numpy as np
        import gdcore as gd
        gd.set_backend("cpp")
        quad = ctypes.CDLL({lib._name!r}).quad
        quad.restype = ctypes.c_double
        quad.argtypes = gd._compiled.PROTOTYPE._argtypes_
        d = 10000                                   # 80 kB a row of the path
        a = np.full(d, 1e-9)                        # creeps: never converges
        size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (size + (256 << 20), resource.RLIM_INFINITY))
        try:
            gd.minimize(quad, np.ones(d), data=a, lr=1e-3, tol=0.0, max_iter=10**7)
            print("no error")
        except MemoryError as exc:
            print("MemoryError", exc)
        r = gd.minimize(quad, np.ones(d), data=a, lr=1e-3, tol=0.0, max_iter=10)
        print("then", r.nit, r.path.shape)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("MemoryError not enough memory for the path"), lines
    assert lines[1] == "then 10 (11, 10000)", lines

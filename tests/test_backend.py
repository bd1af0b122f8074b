"""Backend choice and threads: gd.backend() must tell the truth."""
import os
import subprocess
import sys

import pytest

import gdcore as gd
from gdcore import _backend


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_backend_reports_the_engine_networks_use():
    net = gd.Network.from_sizes([2, 1])
    assert net.backend == gd.backend()
    engine_module = type(net._engine).__module__
    assert (engine_module == "gdcore._core") == (gd.backend() == "cpp")


def test_environment_variable_selects_numpy():
    out = _run("import gdcore as gd; n = gd.Network.from_sizes([2, 1]); "
               "print(gd.backend(), type(n._engine).__module__)", GDCORE_BACKEND="numpy")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["numpy", "gdcore.reference.engine"]


def test_bad_environment_value_fails_clearly():
    out = _run("import gdcore", GDCORE_BACKEND="fortran")
    assert out.returncode != 0 and "GDCORE_BACKEND must be one of" in out.stderr


def test_set_backend_validates():
    with pytest.raises(ValueError, match="backend name must be one of"):
        gd.set_backend("cuda")
    if not _backend._core_engines_available():
        with pytest.raises(RuntimeError, match="compiled core is not available"):
            gd.set_backend("cpp")


def test_use_backend_switches_for_the_block_and_restores():
    before = gd.backend()
    with gd.use_backend("numpy") as name:
        assert name == "numpy" and gd.backend() == "numpy"
        net = gd.Network.from_sizes([2, 1])
        assert net.backend == "numpy"
        assert type(net._engine).__module__ == "gdcore.reference.engine"
    assert gd.backend() == before
    assert net.backend == "numpy"  # a network keeps the engine it was built with
    assert gd.Network.from_sizes([2, 1]).backend == before
    if _backend._core_engines_available():
        with gd.use_backend("CPP") as name:  # spelled as set_backend accepts it
            assert name == "cpp" and gd.backend() == "cpp"
            assert type(gd.Network.from_sizes([2, 1])._engine).__module__ == "gdcore._core"
            with gd.use_backend("numpy"):  # nested blocks restore one level at a time
                assert gd.backend() == "numpy"
            assert gd.backend() == "cpp"
        assert gd.backend() == before


def test_use_backend_restores_on_an_exception():
    before = gd.backend()
    with pytest.raises(KeyError, match="inside"):
        with gd.use_backend("numpy"):
            assert gd.backend() == "numpy"
            raise KeyError("inside")
    assert gd.backend() == before


def test_use_backend_validates_like_set_backend():
    before = gd.backend()
    for bad in ("cuda", "", 3, None):
        with pytest.raises(ValueError, match="backend name must be one of"):
            with gd.use_backend(bad):
                pytest.fail("the block must not run")  # pragma: no cover
        assert gd.backend() == before
    if not _backend._core_engines_available():
        with pytest.raises(RuntimeError, match="compiled core is not available"):
            with gd.use_backend("cpp"):
                pytest.fail("the block must not run")  # pragma: no cover
    assert gd.backend() == before
    assert "use_backend" in gd.__all__


def test_backend_fixture_switches_through_use_backend(backend):
    assert gd.backend() == backend
    assert gd.Network.from_sizes([2, 1]).backend == backend


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        gd.set_num_threads(0)
    gd.set_num_threads(1)
    assert gd.get_num_threads() == 1
    gd.set_num_threads(2)


def test_build_info_names_compiler():
    info = gd.build_info()
    assert info["backend"] == gd.backend()
    assert "compiler" in info and info["version"] == gd.__version__


def test_set_num_threads_caps_at_the_available_cores():
    """A huge n is accepted and capped (not a pybind11 cast error)."""
    from gdcore import _backend
    before = gd.get_num_threads()
    try:
        gd.set_num_threads(10**20)
        if _backend._core is not None:
            assert gd.get_num_threads() == _backend.available_cores()
    finally:
        gd.set_num_threads(before)


_FAILING_CORE = """
import importlib.abc, sys, warnings
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "gdcore._core":
            raise {error}
sys.meta_path.insert(0, Refuse())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import gdcore as gd
print(gd.backend())
for w in caught:
    print(w.category.__name__, str(w.message))
"""


def test_a_core_that_fails_to_load_says_why():
    """Built but not loadable (here: a missing shared library): the NumPy engine, and a
    RuntimeWarning naming the cause; never a silent fallback."""
    code = _FAILING_CORE.format(error='ImportError("libscipy_openblas.so: cannot open shared '
                                      'object file")')
    out = _run(code)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "numpy"
    assert any(line.startswith("RuntimeWarning") and "libscipy_openblas.so" in line
               and "could not be loaded" in line for line in lines[1:]), lines


def test_a_core_that_was_never_built_is_the_numpy_engine_without_a_warning():
    code = _FAILING_CORE.format(error='ModuleNotFoundError("no", name="gdcore._core")')
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["numpy"]

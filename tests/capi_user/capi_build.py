"""Build the user extension user_forward.pyx against the installed gdcore, as a user would
(Cython + setuptools, ``include_dirs=[gdcore.get_include()]``): shared by tests/test_capi.py
and bench/capi_overhead.py."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

PYX = Path(__file__).parent / "user_forward.pyx"

# setup.py of the user's extension: argv = pyx, build folder, "openmp" or "plain", and
# gdcore.get_include() (passed in: this process need not import gdcore, so it runs without the
# sanitizer runtime that an instrumented gdcore needs, tools/sanitize.sh).
SETUP = r"""
import sys
from Cython.Build import cythonize
from setuptools import Extension, setup
pyx, build, mode, include = sys.argv[1:5]
flags = ["-fopenmp"] if mode == "openmp" else []
ext = Extension("user_forward", [pyx], include_dirs=[include],
                extra_compile_args=flags, extra_link_args=flags)
setup(ext_modules=cythonize([ext], quiet=True, build_dir=build),
      script_args=["build_ext", "--build-lib", build, "--build-temp", build + "/tmp"])
"""


def c_compiler() -> str | None:
    """The C compiler Python's extensions are built with, or None."""
    cc = (sysconfig.get_config_var("CC") or os.environ.get("CC") or "cc").split()
    return shutil.which(cc[0]) if cc else None


def build(folder: Path) -> tuple[Path, bool]:
    """Compile user_forward.pyx into `folder`, with OpenMP if the compiler has it: the module's
    path and whether OpenMP is in. AssertionError with the compiler's output if it fails."""
    import gdcore
    # Cython and the compiler are not what is under test: no sanitizer runtime preloaded.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    log = []
    for mode in ("openmp", "plain"):
        out = Path(folder) / mode
        done = subprocess.run([sys.executable, "-c", SETUP, str(PYX), str(out), mode,
                               gdcore.get_include()],
                              capture_output=True, text=True, env=env, cwd=folder)
        built = sorted(out.glob("user_forward*" + sysconfig.get_config_var("EXT_SUFFIX")))
        if done.returncode == 0 and built:
            return built[0], mode == "openmp"
        log.append(f"--- {mode}:\n{done.stdout}\n{done.stderr}")
    raise AssertionError("the user extension did not build:\n" + "\n".join(log))


def load(path: Path):
    """Import the built module from its path."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("user_forward", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

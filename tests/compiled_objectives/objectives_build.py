"""Compile objectives.c into a shared library with the system C compiler and declare its
functions with gdcore's compiled-objective prototype: shared by tests/test_minimize_compiled.py
and bench/minimize_compiled.py."""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path
from typing import Optional

SOURCE = Path(__file__).parent / "objectives.c"
FUNCTIONS = ("rosen", "quad", "quartic", "cliff", "nan_beyond", "ignores_grad", "partial_grad")


def build_objectives(folder: Path, argtypes) -> Optional[ctypes.CDLL]:
    """The library built in ``folder`` with its FUNCTIONS declared (restype double, the given
    argtypes), or None when there is no C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        return None
    out = Path(folder) / "libobjectives.so"
    # No FMA contraction: the Python twins round every product as the C does.
    subprocess.run([cc, "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-o", str(out),
                    str(SOURCE), "-lm"], check=True)
    library = ctypes.CDLL(str(out))
    for name in FUNCTIONS:
        f = getattr(library, name)
        f.restype = ctypes.c_double
        f.argtypes = argtypes
    return library

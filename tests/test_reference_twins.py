"""The reference engine is the literal twin of the C++ core, mechanically.

For each ``csrc/gd/X.cpp`` with a twin, every function and class member declared in
``csrc/gd/X.hpp`` exists in ``gdcore.reference.X`` under the same name, with the same
parameters in the same order (names compared lowercased). The differences NumPy makes are
listed below, each with its reason; anything else (a rename or reorder on either side, a new
C++ function without a twin) fails here. The fused passes the ``.cpp`` files keep private
(``cross_entropy_fused``, the optimizer rules, ...) are held to the same rule, and the integer
codes and the ``hyper`` layout to ``codes.hpp`` and ``optimizers.cpp``.
"""
from __future__ import annotations

import importlib
import inspect
import re
import types
from pathlib import Path

import numpy as np
import pytest

from gdcore.reference import codes

CSRC = Path(__file__).resolve().parents[1] / "csrc" / "gd"
pytestmark = pytest.mark.skipif(not CSRC.is_dir(), reason="needs the C++ sources (a checkout)")

# The csrc/gd files with a twin module gdcore.reference.<name>. blas.cpp and kernels*.cpp have
# none: NumPy's matmul and ufuncs are the reference for them. threads.cpp and train_lanes.cpp
# only decide who computes what (train_lanes: each lane equals train's train_epoch).
TWINS = ["activations", "dense", "losses", "optimizers", "random", "dropout", "network",
         "objective", "train", "line_search", "lbfgs", "descent"]

# C++ parameters that no twin has: the sizes (NumPy arrays carry them) and the interrupt hook
# (Python's own KeyboardInterrupt stops the reference).
SIZES_AND_HOOKS = {"n", "k", "rows", "cols", "size", "n_in", "n_out", "stop", "interrupt"}
# Per function: C++ output buffers that the twin returns (or keeps) instead, and C++ scratch.
RETURNED = {
    "activation_forward": {"a"}, "activation_backward": {"dz"}, "row_shifted_exp": {"e"},
    "dense_forward": {"z"}, "loss_gradient": {"dz"}, "cross_entropy_fused": {"dz"},
    "fused_grad": {"dz"}, "loss_sum": {"scratch"},
    "Network.forward": {"out"}, "Network.predict": {"out", "scratch"},
    "smooth_targets": {"out"}, "random_bits": {"out"}, "dropout_mask": {"mask"},
    "dropout_apply": {"out"}, "objective_value": {"value"}, "objective_gradient": {"value"},
    "descend": {"path"}, "output_objective": {"dz"},
    "bce_gradient_lanes": {"terms", "dz", "values"},
}
# Per function: a C++ parameter spelled otherwise in Python, in the same place.
RENAMED = {
    "loss_gradient": {"out": ["out_activation"]},     # `out` reads as an output buffer in NumPy
    "dense_backward": {"da_prev": ["need_da_prev"]},  # the C++ buffer is null when not needed
    "train_epoch": {"data": ["x", "y", "sample_weight", "order"]},  # EpochData spelled out
    "EpochRun.EpochRun": {"data": ["x", "y", "sample_weight", "order"]},
    # the rules' `c` is optimizer_update's `config`
    "sgd": {"c": ["config"]}, "adam": {"c": ["config"]}, "rmsprop": {"c": ["config"]},
}
# Per function: Python parameters the C++ reads from elsewhere.
ADDED = {"Network.backward": {"dz"},  # the C++ reads dL/dZ from output_gradient()
         # sizes and the element type, which the C++ knows from its arguments' types
         "smooth_targets": {"k", "dtype"}, "random_bits": {"size"},
         "dropout_mask": {"shape", "dtype"},
         "sample_weight_sum": {"n"}}  # the count of rows without weights: no array carries it
# C++ classes with methods and their members without a twin: the workspace the C++ grows once
# and reuses; NumPy allocates each pass's arrays.
NO_TWIN_MEMBERS = {
    "Network": {"reserve", "reserve_batch", "capacity", "workspace_bytes", "predict_scratch",
                "output_gradient", "batch_x", "batch_y", "batch_labels", "batch_weights",
                "reserve_dropout", "target_buffer"},
    # Accessors of the epoch's arguments (the twin's are its attributes of the same names).
    "EpochRun": {"config", "state"},
}
NO_TWIN_CLASSES = {"Scratch"}  # the workspace buffer
# Functions private to a .cpp that have a twin too (the granularity of the fused passes).
PRIVATE_TWINS = {
    "losses": ["cross_entropy_fused", "fused_grad", "loss_sum"],
    "optimizers": ["sgd", "adam", "rmsprop"],
    "train": ["parameters_finite"],
    "lbfgs": ["two_loop"],
}


# ---------------------------------------------------------------------------- C++ side

def _strip(source: str) -> str:
    """The source without comments, preprocessor lines and string literals."""
    source = re.sub(r"//[^\n]*", "", source)
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    source = re.sub(r"^\s*#[^\n]*", "", source, flags=re.M)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', source)


def _parameter_names(params: str) -> list:
    """Names of a C++ parameter list, in order (defaults dropped)."""
    parts, depth, current = [], 0, ""
    for ch in params:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    names = []
    for part in parts:
        part = part.split("=")[0].strip()
        if part and part != "void":
            names.append(re.findall(r"\w+", part)[-1])
    return names


def declarations(source: str) -> dict:
    """``{qualified name: [parameter names]}`` of the functions declared or defined at namespace
    scope (``name``) and in classes (``Class.name``; a constructor is ``Class.Class``), plus
    ``{Class: None}`` for every class or struct. Function bodies are skipped."""
    text = _strip(source)
    found, scopes, buffer, i = {}, [], "", 0  # scopes: ("namespace" | "class" | "body", name)

    def record(statement: str) -> None:
        m = re.search(r"(\w+)\s*\(", statement)
        if m is None or re.match(r"\s*(return|using|typedef)\b", statement):
            return
        start = m.end()
        depth, j = 1, start
        while depth:
            depth += {"(": 1, ")": -1}.get(statement[j], 0)
            j += 1
        classes = [name for kind, name in scopes if kind == "class"]
        qualified = ".".join(classes[-1:] + [m.group(1)])
        found.setdefault(qualified, _parameter_names(statement[start:j - 1]))

    while i < len(text):
        ch = text[i]
        in_body = any(kind == "body" for kind, _ in scopes)
        if ch == "{":
            # the last struct/class keyword: "template <class T> struct Targets" is Targets
            m = re.search(r"\b(?:struct|class)\s+(\w+)[^()]*$", buffer.split(">")[-1])
            if in_body:
                scopes.append(("body", ""))
            elif re.search(r"\bnamespace\b[^()]*$", buffer):
                scopes.append(("namespace", ""))
            elif m and "enum" not in buffer:
                scopes.append(("class", m.group(1)))
                found[m.group(1)] = None
            else:
                if "(" in buffer:
                    record(buffer)  # a definition
                scopes.append(("body", ""))
            buffer = ""
        elif ch == "}":
            if scopes:
                scopes.pop()
            buffer = ""
        elif ch == ";":
            if not in_body and "(" in buffer:
                record(buffer)  # a declaration
            buffer = ""
        elif ch == ":" and not in_body and re.search(r"\b(public|private|protected)\s*$", buffer):
            buffer = ""
        else:
            buffer += ch
        i += 1
    return found


def header_api(name: str) -> dict:
    return declarations((CSRC / f"{name}.hpp").read_text())


# ---------------------------------------------------------------------------- comparison

def expected_python_parameters(qualified: str, cpp_params: list) -> list:
    """The parameter names the twin must have, from the C++ ones, by the rules above."""
    expected = []
    for p in cpp_params:
        p = p.lower()
        if p in SIZES_AND_HOOKS or p in RETURNED.get(qualified, ()):
            continue
        expected.extend(RENAMED.get(qualified, {}).get(p, [p]))
    return expected


def python_parameters(qualified: str, obj) -> list:
    names = [p.lower() for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
    return [p for p in names if p not in ADDED.get(qualified, ())]


def python_twin(module, qualified: str):
    """The Python object of a C++ qualified name (``Class.Class`` is the constructor)."""
    parts = qualified.split(".")
    if len(parts) == 2 and parts[0] == parts[1]:
        return getattr(module, parts[0]).__init__
    obj = module
    for part in parts:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def mismatches(module, api: dict) -> list:
    """What differs between a header's declarations and the twin module (empty: twins)."""
    problems = []
    classes = {name for name, params in api.items() if params is None}
    with_methods = {q.split(".")[0] for q in api if "." in q}
    for cls in sorted(with_methods - NO_TWIN_CLASSES):
        if not inspect.isclass(getattr(module, cls, None)):
            problems.append(f"class {cls}: no twin in {module.__name__}")
    for qualified, cpp_params in sorted((q, p) for q, p in api.items() if p is not None):
        cls, _, member = qualified.rpartition(".")
        if cls in NO_TWIN_CLASSES or member in NO_TWIN_MEMBERS.get(cls, ()):
            continue
        if cls and cls not in classes:
            continue
        twin = python_twin(module, qualified)
        if twin is None or not callable(twin):
            problems.append(f"{qualified}: no twin in {module.__name__}")
            continue
        want = expected_python_parameters(qualified, cpp_params)
        got = python_parameters(qualified, twin)
        if got != want:
            problems.append(f"{qualified}: parameters {got}, the C++ {cpp_params} means {want}")
    return problems


# ---------------------------------------------------------------------------- the tests

@pytest.mark.parametrize("name", TWINS)
def test_header_functions_have_twins_with_the_same_parameters(name):
    api = header_api(name)
    assert any(p is not None for p in api.values()), f"nothing parsed from {name}.hpp"
    assert mismatches(importlib.import_module(f"gdcore.reference.{name}"), api) == []


@pytest.mark.parametrize("name", sorted(PRIVATE_TWINS))
def test_private_passes_have_twins_with_the_same_parameters(name):
    defined = declarations((CSRC / f"{name}.cpp").read_text())
    api = {f: defined.get(f) for f in PRIVATE_TWINS[name]}
    missing = [f for f, params in api.items() if params is None]
    assert missing == [], f"not defined in {name}.cpp: {missing}"
    assert mismatches(importlib.import_module(f"gdcore.reference.{name}"), api) == []


def test_every_twin_module_is_listed_and_every_cpp_file_accounted_for():
    import gdcore.reference as reference
    assert set(TWINS) | {"codes", "engine"} == set(reference.__all__)
    for cpp in sorted(CSRC.glob("*.cpp")):
        assert (cpp.stem in TWINS or cpp.stem in ("blas", "threads", "train_lanes")
                or cpp.stem.startswith("kernels")), cpp
        assert cpp.stem in (reference.__doc__ or "") or cpp.stem.startswith("kernels"), cpp


def test_codes_come_from_the_one_table():
    """codes.hpp defines no code of its own: its enums and hyper indices are built from
    gdcore/codes.def, the file reference/codes.py parses; OptimizerConfig::from_hyper reads each
    field from the index of the same name, in the table's order."""
    header = (CSRC / "codes.hpp").read_text()
    assert header.count('#include "../../python/gdcore/codes.def"') >= 8
    assert not re.search(r"\b\w+\s*=\s*\d+\s*,", _strip(header))  # no enumerator literals
    table = (CSRC.parent.parent / "python" / "gdcore" / "codes.def").read_text()
    for name in codes.ACTIVATIONS:
        assert f"GD_ACTIVATION({name}, {codes.ACTIVATIONS[name]})" in table
    reads = re.findall(r"c\.(\w+) = hyper\[hyper_index::(\w+)\]",
                       (CSRC / "optimizers.cpp").read_text())
    assert [field for field, _ in reads] == [index for _, index in reads] == list(codes.HYPER)
    # LbfgsConfig::from_config likewise reads lbfgs_step's configuration vector (GD_LBFGS).
    reads = re.findall(r"c\.(\w+) = (?:\w+\()*config\[lbfgs_index::(\w+)\]",
                       (CSRC / "lbfgs.cpp").read_text())
    assert [field for field, _ in reads] == [index for _, index in reads] == list(
        codes.LBFGS_CONFIG)


def test_the_check_catches_a_rename_on_either_side():
    """Honesty of the rules above: a renamed or reordered parameter on either side fails."""
    from gdcore.reference import dense
    api = header_api("dense")
    assert mismatches(dense, api) == []
    renamed_cpp = declarations((CSRC / "dense.hpp").read_text().replace("a_prev", "x_prev"))
    assert len(mismatches(dense, renamed_cpp)) == 2

    def dense_forward(W, a_prev, b, relu=False):  # a_prev and W swapped
        pass
    swapped = types.ModuleType("swapped")
    swapped.dense_forward, swapped.dense_backward = dense_forward, dense.dense_backward
    assert [m.split(":")[0] for m in mismatches(swapped, api)] == ["dense_forward"]
    del swapped.dense_backward
    assert mismatches(swapped, api)[0] == "dense_backward: no twin in swapped"


def struct_fields(header: str, struct: str) -> dict:
    """``{field: default or None}`` of a C++ struct's data members, in order."""
    source = _strip((CSRC / header).read_text())
    body = re.search(r"struct %s\s*\{(.*?)\n\};" % struct, source, flags=re.S).group(1)
    body = re.sub(r"\{[^{}]*\}", ";", body)  # inline member function bodies
    fields = {}
    for statement in body.split(";"):
        if "(" in statement or not statement.strip():
            continue  # a member function
        m = re.search(r"(\w+)\s*(?:=\s*(.+))?$", statement.strip())
        fields[m.group(1)] = m.group(2)
    return fields


def test_struct_twins_have_the_fields():
    import dataclasses
    from gdcore.reference.network import DenseLayer
    from gdcore.reference.optimizers import OptimizerConfig
    layer = DenseLayer(np.zeros((2, 3)), np.zeros(3))
    for field in struct_fields("network.hpp", "DenseLayer"):
        assert hasattr(layer, field), field
    cpp = struct_fields("optimizers.hpp", "OptimizerConfig")
    python = {f.name: f.default for f in dataclasses.fields(OptimizerConfig)}
    assert list(python) == list(cpp)
    for name, default in cpp.items():
        if name == "optimizer":
            assert default == "Optimizer::sgd" and python[name] == codes.OPTIMIZERS["sgd"]
        elif name == "nesterov":
            assert default == "false" and python[name] is False
        else:
            assert python[name] == float(default), name


def test_lbfgs_config_twin_has_the_fields_and_defaults():
    import dataclasses
    from gdcore.reference.lbfgs import LbfgsConfig
    cpp = struct_fields("lbfgs.hpp", "LbfgsConfig")
    python = {f.name: f.default for f in dataclasses.fields(LbfgsConfig)}
    assert list(python) == list(cpp) == list(codes.LBFGS_CONFIG)
    for name, default in cpp.items():
        if name == "line_search":
            assert default == "true" and python[name] is True
        else:
            assert python[name] == float(default), name


def test_descent_structs_twins_have_the_fields_and_defaults():
    import dataclasses
    from gdcore.reference import descent
    for struct in ("DescentConfig", "DescentResult"):
        cpp = struct_fields("descent.hpp", struct)
        python = {f.name: f.default for f in dataclasses.fields(getattr(descent, struct))}
        assert list(python) == list(cpp), struct
        for name, default in cpp.items():
            if name == "status":
                assert default == "DescentStatus::max_iter"
                assert python[name] == codes.DESCENT_STATUS["max_iter"]
            else:
                assert python[name] == float(default), (struct, name)
    header = (CSRC / "descent.hpp").read_text()
    assert f"0x{descent.UNWRITTEN_GRAD_BITS:x}ULL" in header

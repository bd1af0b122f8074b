"""Saving and loading networks: ``.npz`` arrays plus JSON metadata, never pickle.

The file holds ``meta`` (a JSON string: format name and version, the gdcore version, the
architecture, loss and dtype) and the parameters ``W0, b0, W1, b1, ...``. It is read with
``allow_pickle=False``, so loading executes nothing from the file. Writing goes to a temporary
file in the same folder, then ``os.replace``: a crash mid-write leaves any previous file whole.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

FORMAT = "gdcore-network"
FORMAT_VERSION = 1


def save(network: Any, path: Any) -> None:
    """Write ``network`` to ``path`` atomically (the name is used exactly as given)."""
    path = os.fspath(path)
    from . import __version__
    with network._lock:
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "gdcore_version": __version__,
                **network._spec()}
        arrays = {"meta": np.array(json.dumps(meta))}
        for i, layer in enumerate(network._layers):
            arrays[f"W{i}"] = layer.weights
            arrays[f"b{i}"] = layer.bias
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".gdcore-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def _bad(path: str, why: str) -> ValueError:
    return ValueError(f"{path!r} is not a readable gdcore network file: {why}")


def load(path: Any) -> Any:
    """Read a network written by :func:`save`.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for anything that is not
    a valid gdcore file of a supported version (truncated, corrupted, shapes that do not match
    the metadata, pickled objects).
    """
    from .network import Network
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            contents = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise _bad(path, f"{type(exc).__name__}: {exc}") from None
    except ValueError as exc:  # includes "Object arrays cannot be loaded when allow_pickle=False"
        raise _bad(path, str(exc)) from None
    if "meta" not in contents or contents["meta"].dtype.kind != "U" or contents["meta"].ndim:
        raise _bad(path, "no metadata")
    try:
        meta = json.loads(str(contents["meta"]))
    except json.JSONDecodeError as exc:
        raise _bad(path, f"metadata is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _bad(path, "metadata does not describe a gdcore network")
    if meta.get("version") != FORMAT_VERSION:
        raise _bad(path, f"format version {meta.get('version')!r} is not supported "
                         f"(this gdcore reads version {FORMAT_VERSION})")
    layers = meta.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _bad(path, "metadata lists no layers")
    arrays = []
    for i, spec in enumerate(layers):
        try:
            shape = (int(spec["n_inputs"]), int(spec["n_outputs"]))
        except (TypeError, KeyError, ValueError):
            raise _bad(path, f"layer {i} is described incompletely") from None
        for key, expected in ((f"W{i}", shape), (f"b{i}", shape[1:])):
            arr = contents.get(key)
            if arr is None:
                raise _bad(path, f"array {key} is missing")
            if arr.dtype.kind != "f" or arr.shape != expected:
                raise _bad(path, f"array {key} has dtype {arr.dtype} and shape {arr.shape}, "
                                 f"expected floats of shape {expected}")
            arrays.append(arr)
    try:
        return Network._from_spec(meta, arrays)
    except (TypeError, ValueError, KeyError) as exc:
        raise _bad(path, str(exc)) from None

"""Saving and loading networks: ``.npz`` arrays plus JSON metadata, never pickle.

The file holds ``meta`` (a JSON string: format name and version, the gdcore version, the
architecture, loss and dtype) and the parameters ``W0, b0, W1, b1, ...``. It is read with
``allow_pickle=False``, so loading executes nothing from the file. Writing goes to a temporary
file in the same folder, then ``os.replace``: a crash mid-write leaves any previous file whole.
"""
from __future__ import annotations

import json
import os
import secrets
from typing import Any

import numpy as np

FORMAT = "gdcore-network"
FORMAT_VERSION = 1


def _fspath(path: Any) -> str:
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__} "
                        f"{path!r}") from None


def _create_temporary(folder: str) -> tuple:
    """A new file in ``folder`` (fd, name), created exclusively. Unlike ``tempfile.mkstemp``
    (mode 0600) it gets the permissions a plain ``open`` would give (0666 minus the umask)."""
    for _ in range(100):
        tmp = os.path.join(folder, f".gdcore-{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {folder!r}")


def save(network: Any, path: Any) -> None:
    """Write ``network`` to ``path`` atomically (the name is used exactly as given).

    Raises ``FileNotFoundError`` when the folder does not exist and ``IsADirectoryError`` when
    ``path`` is a folder; on any failure an existing file at ``path`` is left as it was.
    """
    path = _fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path!r}: the folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path!r}: it is a folder; give a file name")
    from . import __version__
    with network._lock:
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "gdcore_version": __version__,
                **network._spec()}
        arrays = {"meta": np.array(json.dumps(meta))}
        for i, layer in enumerate(network._layers):
            arrays[f"W{i}"] = layer.weights
            arrays[f"b{i}"] = layer.bias
        fd, tmp = _create_temporary(folder)
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
    path = _fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    contents = None
    try:
        with open(path, "rb") as fh:
            data = np.load(fh, allow_pickle=False)
            if isinstance(data, np.lib.npyio.NpzFile):
                with data:
                    contents = {key: data[key] for key in data.files}
    except ValueError as exc:  # includes "Object arrays cannot be loaded when allow_pickle=False"
        raise _bad(path, str(exc)) from None
    except Exception as exc:  # anything else a damaged archive raises (zip, zlib, EOF, OS...)
        raise _bad(path, f"{type(exc).__name__}: {exc}") from None
    if contents is None:
        raise _bad(path, "it is a single .npy array, not an .npz archive")
    meta_array = contents.get("meta")
    if not isinstance(meta_array, np.ndarray) or meta_array.dtype.kind != "U" or meta_array.ndim:
        raise _bad(path, "no metadata")
    try:
        meta = json.loads(str(meta_array))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise _bad(path, f"metadata is not JSON ({type(exc).__name__}: {exc})") from None
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
        except (TypeError, KeyError, ValueError, OverflowError):
            raise _bad(path, f"layer {i} is described incompletely") from None
        for key, expected in ((f"W{i}", shape), (f"b{i}", shape[1:])):
            arr = contents.get(key)
            if arr is None:
                raise _bad(path, f"array {key} is missing")
            if not isinstance(arr, np.ndarray):
                raise _bad(path, f"{key} is not an array")
            if arr.dtype.kind != "f" or arr.shape != expected:
                raise _bad(path, f"array {key} has dtype {arr.dtype} and shape {arr.shape}, "
                                 f"expected floats of shape {expected}")
            arrays.append(arr)
    try:
        return Network._from_spec(meta, arrays)
    except (TypeError, ValueError, KeyError) as exc:
        raise _bad(path, str(exc)) from None

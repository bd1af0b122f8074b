"""Saving and loading networks: ``.npz`` arrays plus JSON metadata, never pickle.

The file holds ``meta`` (a JSON string: format name and version, the gdcore version, the
architecture, loss and dtype) and the parameters ``W0, b0, W1, b1, ...``. It is read with
``allow_pickle=False``, so loading executes nothing from the file. Writing goes to a temporary
file in the same folder, then ``os.replace``: a crash mid-write leaves any previous file whole.

Version 2 (version-1 files, which never hold an optimizer, are still read) adds, when saved
with ``optimizer=``, the key ``"optimizer"`` to ``meta``: the optimizer's
:meth:`~gdcore.optimizers.Optimizer.state_dict` without its arrays (``name``, ``hyper``,
``lr_auto``, ``lr_found``, ``schedule``, ``step``, ``epochs_done``, ``lr_scale``) plus
``n_state``, the number of state arrays, stored as ``opt_state_0, opt_state_1, ...``.
"""
from __future__ import annotations

import json
import os
import secrets
from typing import Any

import numpy as np

FORMAT = "gdcore-network"
FORMAT_VERSION = 2
#: The versions this gdcore reads (1: no optimizer state).
READABLE_VERSIONS = (1, 2)


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


def _check_optimizer(optimizer: Any) -> Any:
    from .optimizers import Optimizer
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be None or an optimizer object (e.g. gd.Adam()), got "
                        f"{type(optimizer).__name__} {optimizer!r}")
    return optimizer


def save(network: Any, path: Any, optimizer: Any = None) -> None:
    """Write ``network`` (and ``optimizer``'s state, if given) to ``path`` atomically (the
    name is used exactly as given).

    ``optimizer`` must hold the state of ``network`` or be unused (then it is saved with
    empty state: ``load`` gives it zero state).

    Raises ``FileNotFoundError`` when the folder does not exist, ``IsADirectoryError`` when
    ``path`` is a folder, ``TypeError`` when ``optimizer`` is not an optimizer, ``ValueError``
    when it holds the state of another network; on any failure an existing file at ``path`` is
    left as it was.
    """
    path = _fspath(path)
    _check_optimizer(optimizer)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path!r}: the folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path!r}: it is a folder; give a file name")
    from . import __version__
    with network._lock:
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "gdcore_version": __version__,
                **network._spec()}
        opt_arrays: list = []
        if optimizer is not None:
            entry = optimizer._state_dict_for(network)
            opt_arrays = entry.pop("state")
            meta["optimizer"] = {**entry, "n_state": len(opt_arrays)}
        try:
            meta_json = json.dumps(meta)
        except (TypeError, ValueError) as exc:  # a user schedule with exotic parameters
            raise ValueError(f"cannot save: the optimizer's schedule is not JSON-serializable "
                             f"({exc}); use a gdcore.schedules schedule or pickle") from None
        arrays = {"meta": np.array(meta_json)}
        for i, layer in enumerate(network._layers):
            arrays[f"W{i}"] = layer.weights
            arrays[f"b{i}"] = layer.bias
        for i, arr in enumerate(opt_arrays):
            arrays[f"opt_state_{i}"] = arr
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


def load(path: Any, optimizer: Any = None) -> Any:
    """Read a network written by :func:`save`; with ``optimizer``, restore the optimizer state
    saved with it into ``optimizer`` and bind it to the new network (whatever network it held
    the state of before).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for anything that is not
    a valid gdcore file of a supported version (truncated, corrupted, shapes that do not match
    the metadata, pickled objects), for a file saved without an optimizer when ``optimizer`` is
    given, and for an optimizer of another kind than the saved one. ``optimizer`` is changed
    only when everything succeeded.
    """
    from .network import Network
    path = _fspath(path)
    _check_optimizer(optimizer)
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
    version = meta.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        readable = " and ".join(map(str, READABLE_VERSIONS))
        raise _bad(path, f"format version {version!r} is not supported "
                         f"(this gdcore reads versions {readable})")
    opt_state = None if optimizer is None else _optimizer_entry(path, meta, contents, optimizer)
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
        network = Network._from_spec(meta, arrays)
    except (TypeError, ValueError, KeyError) as exc:
        raise _bad(path, str(exc)) from None
    if opt_state is not None:
        try:
            optimizer._restore(opt_state, network)
        except (TypeError, ValueError, KeyError) as exc:
            raise _bad(path, f"optimizer state: {exc}") from None
    return network


def _optimizer_entry(path: str, meta: dict, contents: dict, optimizer: Any) -> dict:
    """The optimizer's state_dict as saved in the file (not yet validated beyond its layout).

    A file without one, or of another kind of optimizer, is the caller's mistake (plain
    ValueError); a malformed entry is a damaged file (``_bad``).
    """
    entry = meta.get("optimizer") if meta["version"] >= 2 else None
    if entry is None:
        raise ValueError(f"{path!r} holds no optimizer state (it was saved without "
                         f"optimizer=); load it without optimizer=")
    if not isinstance(entry, dict):
        raise _bad(path, "the optimizer entry of the metadata is not a JSON object")
    name = entry.get("name")
    if not isinstance(name, str):
        raise _bad(path, "the optimizer entry names no optimizer")
    if name != optimizer.name:
        raise ValueError(f"{path!r} holds the state of a {name!r} optimizer; "
                         f"{type(optimizer).__name__} ({optimizer.name!r}) cannot take it")
    n_state = entry.get("n_state")
    if type(n_state) is not int or not 0 <= n_state <= len(contents):
        raise _bad(path, f"the optimizer entry has an invalid n_state {n_state!r}")
    state = []
    for i in range(n_state):
        arr = contents.get(f"opt_state_{i}")
        if not isinstance(arr, np.ndarray):
            raise _bad(path, f"array opt_state_{i} is missing")
        state.append(arr)
    state_dict = {key: value for key, value in entry.items() if key != "n_state"}
    state_dict["state"] = state
    return state_dict

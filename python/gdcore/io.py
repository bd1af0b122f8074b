"""Saving and loading networks: ``.npz`` arrays plus JSON metadata, never pickle.

The file is a zip archive as ``numpy.savez`` writes it, with a fixed set of ``.npy`` members:
``meta.npy`` (a JSON string: format name and version, the gdcore version, the architecture,
loss, dtype and seed) and the parameters ``W0.npy, b0.npy, W1.npy, b1.npy, ...``. Loading
reads only these members, one at a time; before decompressing one it checks the member's
declared uncompressed size and its ``.npy`` header against the shape the metadata gives, so a
small file cannot make it decompress (or allocate) much more than the network it describes.
Object arrays are refused (no pickle), so loading executes nothing from the file. Any other
member is refused without being read.

Writing goes to a temporary file ``.<name>.gdcore-tmp-<pid>-<random>`` in the same folder,
then ``os.replace``: a crash (even SIGKILL) mid-write leaves any previous file whole, and the
next save to the same name removes such temporaries whose process has ended. ``save`` runs the
checks ``load`` makes before writing anything, so it never writes a file ``load`` refuses.

Version 2 (version-1 files, which never hold an optimizer, are still read) adds, when saved
with ``optimizer=``, the key ``"optimizer"`` to ``meta``: the optimizer's
:meth:`~gdcore.optimizers.Optimizer.state_dict` without its arrays (``name``, ``hyper``,
``lr_auto``, ``lr_found``, ``schedule``, ``step``, ``epochs_done``, ``lr_scale``) plus
``n_state``, the number of state arrays, stored as ``opt_state_0, opt_state_1, ...``.

Either version may carry the key ``"metadata"`` in ``meta``: a JSON object the caller gave
``save`` (``metadata=``), returned as it was by :func:`read_metadata` and ignored by
:func:`load` (and by gdcore versions before it). The command line stores its preprocessing
there (see ``gdcore.tabular``).
"""
from __future__ import annotations

import json
import math
import numbers
import os
import re
import secrets
import stat
import zipfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from . import _validation as v

FORMAT = "gdcore-network"
FORMAT_VERSION = 2
#: The versions this gdcore reads (1: no optimizer state).
READABLE_VERSIONS = (1, 2)

#: Room for a member's ``.npy`` header (magic, version, length and the padded header dict;
#: numpy writes 128 bytes for gdcore's arrays) in the size a member may declare.
_NPY_HEADER_MAX = 4096
#: The largest metadata load reads and save writes (UTF-32 text): ~250,000 layers.
_META_MAX_BYTES = 64 * 2 ** 20
#: The widest parameter dtype load takes (float64); float16 and float32 are cast.
_PARAM_MAX_ITEMSIZE = 8
#: Members are decompressed in pieces of this size into their array: no second full copy.
_CHUNK = 16 * 2 ** 20
#: A temporary file is ``.<name>.gdcore-tmp-<pid>-<16 hex digits>`` (name cut to 100
#: characters so that the whole stays under the usual 255-byte limit).
_TMP_MARK = ".gdcore-tmp-"
_TMP_NAME_MAX = 100
_TMP_TAIL = re.compile(r"([1-9][0-9]{0,9})-[0-9a-f]{16}")
_OPT_STATE_MEMBER = re.compile(r"opt_state_(0|[1-9][0-9]*)\.npy")
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


class _Invalid(Exception):
    """Contents that break the format (the message says how). One set of checks serves both
    ends: ``load`` reports a damaged file, ``save`` refuses to write."""


class _WrongOptimizer(Exception):
    """A sound file that cannot fill the optimizer given to ``load`` (a plain ValueError)."""


def _fspath(path: Any) -> str:
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__} "
                        f"{path!r}") from None


def _check_optimizer(optimizer: Any) -> Any:
    from .optimizers import Optimizer
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be None or an optimizer object (e.g. gd.Adam()), got "
                        f"{type(optimizer).__name__} {optimizer!r}")
    return optimizer


# --- the checks shared by save and load ----------------------------------------------------

def _check_meta(meta: Any) -> List[Tuple[int, ...]]:
    """The parameter shapes ``[W0, b0, W1, b1, ...]`` that ``meta`` describes, after checking
    the fields load relies on (format, version, layer sizes, dtype, seed). Raises _Invalid.

    load runs it on the file's metadata, save on the metadata it is about to write. The
    activations, the loss and how the layers chain are checked by the Network constructor when
    loading; a live network cannot hold invalid ones.
    """
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _Invalid("metadata does not describe a gdcore network")
    version = meta.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        readable = " and ".join(map(str, READABLE_VERSIONS))
        raise _Invalid(f"format version {version!r} is not supported "
                       f"(this gdcore reads versions {readable})")
    layers = meta.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _Invalid("metadata lists no layers")
    shapes: List[Tuple[int, ...]] = []
    for i, spec in enumerate(layers):
        sizes = [spec.get(key) if isinstance(spec, dict) else None
                 for key in ("n_inputs", "n_outputs")]
        if any(type(n) is not int or n < 1 for n in sizes):
            raise _Invalid(f"layer {i} is described incompletely (n_inputs and n_outputs "
                           f"must be positive ints)")
        shapes += [(sizes[0], sizes[1]), (sizes[1],)]
    for key, check in (("dtype", v.as_dtype), ("seed", v.seed)):
        try:
            check(meta.get(key))
        except (TypeError, ValueError) as exc:
            raise _Invalid(str(exc)) from None
    if not isinstance(meta.get("metadata", {}), dict):
        raise _Invalid("the metadata entry \"metadata\" is not a JSON object")
    return shapes


def _parameter_keys(n_params: int) -> List[str]:
    return [f"{'Wb'[k % 2]}{k // 2}" for k in range(n_params)]


def _check_parameter_header(key: str, dtype: np.dtype, shape: tuple, expected: tuple) -> None:
    """An array of ``dtype`` and ``shape`` may be parameter ``key``. Raises _Invalid."""
    if dtype.kind != "f" or dtype.itemsize > _PARAM_MAX_ITEMSIZE or shape != expected:
        raise _Invalid(f"array {key} has dtype {dtype} and shape {shape}, expected floats of "
                       f"shape {expected}")


def _check_parameter(key: str, arr: Any, expected: tuple) -> None:
    """Parameter ``key`` (``W<i>`` or ``b<i>``) as load takes it: floats of the ``expected``
    shape, every value finite. Raises _Invalid naming the layer."""
    if not isinstance(arr, np.ndarray):
        raise _Invalid(f"{key} is not an array")
    _check_parameter_header(key, arr.dtype, arr.shape, expected)
    if arr.dtype in (np.float32, np.float64) and arr.flags.c_contiguous and arr.flags.aligned:
        finite = v.all_finite(arr)  # the compiled core's one-pass check when it is built
    else:
        finite = bool(np.isfinite(arr).all())
    if not finite:
        bad = "NaN" if np.isnan(arr).any() else "infinity"
        what = "weights" if key[0] == "W" else "biases"
        raise _Invalid(f"the {what} of layer {key[1:]} ({key}) contain {bad}; every value "
                       f"must be finite")


def _saved_n_state(meta: dict, n_params: int, n_members: int) -> Optional[int]:
    """How many ``opt_state_<i>`` arrays the file holds; None when it holds no optimizer.
    Raises _Invalid for a malformed optimizer entry."""
    entry = meta.get("optimizer") if meta["version"] >= 2 else None
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise _Invalid("the optimizer entry of the metadata is not a JSON object")
    n_state = entry.get("n_state")
    # n_slots arrays per parameter, each one a member of the archive.
    if type(n_state) is not int or not 0 <= n_state <= n_members or n_state % n_params:
        raise _Invalid(f"the optimizer entry has an invalid n_state {n_state!r}")
    return n_state


# --- save ----------------------------------------------------------------------------------

def _target(path: str) -> str:
    """The file ``save`` replaces for ``path``: ``path`` itself or, when it is a symbolic link,
    the file it points to (the link survives). Raises when saving there would fail or do what
    ``numpy.save`` would not; nothing is written."""
    target = os.path.realpath(path) if os.path.islink(path) else path
    if os.path.islink(target):  # realpath stops at a loop of links
        raise OSError(f"cannot save to {path!r}: too many levels of symbolic links")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path!r}: the folder {folder!r} does not exist")
    if os.path.isdir(target):
        raise IsADirectoryError(f"cannot save to {path!r}: it is a folder; give a file name")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    if not stat.S_ISREG(mode):  # renaming over a device or a pipe would replace it
        raise ValueError(f"cannot save to {path!r}: it is not a regular file (a device, pipe "
                         f"or socket); save replaces the file as a whole")
    # No write bit at all refuses even root (who may write anyway): as numpy.save's open(path,
    # "wb") would for everybody else. os.access covers files of other users.
    if not mode & _WRITE_BITS or not os.access(target, os.W_OK):
        raise PermissionError(f"cannot save to {path!r}: the file is read-only (give it write "
                              f"permission or remove it first)")
    return target


def _user_metadata(metadata: Any) -> Optional[dict]:
    """``save``'s ``metadata=`` as it will be stored: None, or a dict that strict JSON (no
    NaN or infinity, string keys) writes and reads back unchanged in meaning."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be None or a dict, got {type(metadata).__name__}")

    def str_keys(value: Any) -> None:  # json.dumps would turn other keys into strings
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError(f"key {key!r} is not a str")
                str_keys(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                str_keys(item)

    try:
        str_keys(metadata)
        return json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"metadata must be JSON-serializable (str keys; str, finite numbers, "
                         f"bool, None, lists and dicts): {exc}") from None


def _contents(network: Any, path: str, optimizer: Any,
              metadata: Optional[dict] = None) -> Dict[str, np.ndarray]:
    """The arrays ``save`` writes (``meta`` first), after the checks ``load`` will make; a
    ValueError (or the optimizer's TypeError) otherwise. The caller holds the network's lock."""
    from . import __version__
    seed = network.seed
    if isinstance(seed, np.random.Generator):
        seed = None  # a generator's state is not saved
    elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        seed = int(seed)  # e.g. np.int64, which JSON does not take
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "gdcore_version": __version__,
            **network._spec(), "seed": seed}
    if metadata is not None:
        meta["metadata"] = metadata
    params = network.parameters()
    keys = _parameter_keys(len(params))
    opt_arrays: list = []
    if optimizer is not None:
        entry = optimizer._state_dict_for(network)
        opt_arrays = entry.pop("state")
        meta["optimizer"] = {**entry, "n_state": len(opt_arrays)}
    refused = f"cannot save to {path!r}"
    try:
        shapes = _check_meta(meta)
        for key, arr, shape in zip(keys, params, shapes):
            _check_parameter(key, arr, shape)
    except _Invalid as exc:
        raise ValueError(f"{refused}: {exc} (load would refuse the file)") from None
    try:
        meta_json = json.dumps(meta)
    except (TypeError, ValueError) as exc:  # a user schedule with exotic parameters
        raise ValueError(f"cannot save: the optimizer's schedule is not JSON-serializable "
                         f"({exc}); use a gdcore.schedules schedule or pickle") from None
    meta_array = np.array(meta_json)
    if meta_array.nbytes > _META_MAX_BYTES:
        raise ValueError(f"{refused}: the metadata takes {meta_array.nbytes} bytes, more than "
                         f"the {_META_MAX_BYTES} load reads")
    if optimizer is not None:
        saved = json.loads(meta_json)  # what load will see
        state_dict = {k: val for k, val in saved["optimizer"].items() if k != "n_state"}
        state_dict["state"] = opt_arrays
        try:
            _saved_n_state(saved, len(params), 1 + len(params) + len(opt_arrays))
            optimizer._checked(state_dict, params)  # what load's optimizer._restore checks
        except _Invalid as exc:
            raise ValueError(f"{refused}: {exc}") from None
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{refused}: optimizer state: {exc} (load would refuse the "
                             f"file)") from None
    arrays = {"meta": meta_array, **dict(zip(keys, params))}
    arrays.update((f"opt_state_{i}", arr) for i, arr in enumerate(opt_arrays))
    return arrays


def _temporary_prefix(name: str) -> str:
    return f".{name[:_TMP_NAME_MAX]}{_TMP_MARK}"


def _create_temporary(folder: str, name: str) -> tuple:
    """A new file (fd, path) in ``folder`` for the target ``name``, created exclusively and
    named after the target and this process. Unlike ``tempfile.mkstemp`` (mode 0600) it gets
    the permissions a plain ``open`` would give (0666 minus the umask)."""
    prefix = _temporary_prefix(name)
    for _ in range(100):
        tmp = os.path.join(folder, f"{prefix}{os.getpid()}-{secrets.token_hex(8)}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {folder!r}")


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # PermissionError: alive, another user's
        return False
    return False


def _remove_stale_temporaries(folder: str, name: str) -> None:
    """Remove the temporary files that saves to ``name`` left in ``folder`` when their process
    was killed. Those of live processes (this one included: another thread may be saving)
    are kept; so is anything that merely looks similar."""
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return
    prefix = _temporary_prefix(name)
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        match = _TMP_TAIL.fullmatch(entry[len(prefix):]) if entry.startswith(prefix) else None
        if match is None:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and _process_gone(pid):
            try:
                os.unlink(os.path.join(folder, entry))
            except OSError:  # removed meanwhile by another save, or not ours to remove
                pass


def save(network: Any, path: Any, optimizer: Any = None,
         metadata: Optional[dict] = None) -> None:
    """Write ``network`` (and ``optimizer``'s state, if given) to ``path`` atomically (the
    name is used exactly as given).

    ``metadata`` (a dict that strict JSON can hold: str keys, finite numbers) is stored with
    the architecture and read back by :func:`read_metadata`; it is never pickled.

    ``optimizer`` must hold the state of ``network`` or be unused (then it is saved with
    empty state: ``load`` gives it zero state).

    The new file is written to a temporary file in the same folder, then renamed over
    ``path``, so ``path`` holds either the old file or the whole new one, even if the process
    is killed. As with ``numpy.save``:

    - a symbolic link at ``path`` is followed: the file it points to is replaced (a new one
      is created for a dangling link) and the link stays;
    - an existing file without write permission is not replaced (``PermissionError``). A file
      with no write permission bit at all is refused even for root, who could write it.

    Unlike ``numpy.save``, which writes into the existing file, the file is replaced: other
    hard links to it keep the old contents, and the new file gets the permissions of a newly
    created one (0666 minus the umask). The folder must be writable. A save killed before the
    rename leaves a hidden ``.<name>.gdcore-tmp-<pid>-<random>`` file; the next save to the
    same name removes those whose process is gone.

    Raises ``FileNotFoundError`` when the folder does not exist, ``IsADirectoryError`` when
    ``path`` is a folder, ``PermissionError`` as above, ``TypeError`` when ``optimizer`` is
    not an optimizer or ``metadata`` not a dict, and ``ValueError`` when ``metadata`` is not
    JSON-serializable, when ``path`` is a device or pipe, when ``optimizer``
    holds the state of another network, or when :func:`load` would refuse the file: weights
    or biases that are not finite (the message names the layer), an invalid ``network.seed``,
    optimizer state that is not finite. On any failure nothing is written and an existing
    file at ``path`` is left as it was.
    """
    path = _fspath(path)
    _check_optimizer(optimizer)
    metadata = _user_metadata(metadata)
    target = _target(path)
    folder, name = os.path.split(os.path.abspath(target))
    with network._lock:
        arrays = _contents(network, path, optimizer, metadata)
        _remove_stale_temporaries(folder, name)
        fd, tmp = _create_temporary(folder, name)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


# --- load ----------------------------------------------------------------------------------

def _bad(path: str, why: str) -> ValueError:
    return ValueError(f"{path!r} is not a readable gdcore network file: {why}")


class _Counting:
    """A file object's ``read``, counting the bytes read (a member's header length)."""

    def __init__(self, f: Any) -> None:
        self.f, self.count = f, 0

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.count += len(data)
        return data


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_size: int, limit: str,
                 check: Callable[[np.dtype, tuple], None]) -> np.ndarray:
    """Member ``info`` as an array. Nothing is decompressed unless its declared uncompressed
    size is at most ``max_size`` (``limit`` says why); its data only after
    ``check(dtype, shape)`` accepted its header and the header and data take exactly the
    declared size."""
    name = info.filename
    if info.file_size > max_size:
        raise _Invalid(f"member {name!r} declares {info.file_size} bytes uncompressed, but "
                       f"{limit} allows at most {max_size}; it was not read")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # bzip2 and lzma inflate a whole block at once: no bound on one read
        raise _Invalid(f"member {name!r} uses compression method {info.compress_type}; "
                       f"gdcore files are stored or deflated, as numpy.savez writes them")
    with zf.open(info) as member:
        f = _Counting(member)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                f, max_header_size=_NPY_HEADER_MAX)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                f, max_header_size=_NPY_HEADER_MAX)
        else:
            raise _Invalid(f"member {name!r} is in .npy format version {version}, which "
                           f"gdcore files do not use")
        if dtype.hasobject:
            raise _Invalid(f"member {name!r} holds Python objects (pickled data), which "
                           f"gdcore files never do")
        check(dtype, shape)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if f.count + nbytes != info.file_size:
            raise _Invalid(f"member {name!r} declares {info.file_size} bytes uncompressed, but "
                           f"its header and data take {f.count + nbytes}")
        arr = np.empty(count, dtype)
        buffer = arr.view(np.uint8)
        done = 0
        while done < nbytes:
            chunk = member.read(min(_CHUNK, nbytes - done))
            if not chunk:
                raise _Invalid(f"member {name!r} is truncated")
            buffer[done:done + len(chunk)] = np.frombuffer(chunk, np.uint8)
            done += len(chunk)
    return arr.reshape(shape, order="F" if fortran else "C")


def _read_meta(zf: zipfile.ZipFile, members: Dict[str, zipfile.ZipInfo]) -> Any:
    info = members.get("meta.npy")
    if info is None:
        raise _Invalid("no metadata (no member meta.npy)")

    def check(dtype: np.dtype, shape: tuple) -> None:
        if dtype.kind != "U" or shape != ():
            raise _Invalid(f"no metadata (meta.npy holds {dtype} of shape {shape}, not text)")

    arr = _read_member(zf, info, _META_MAX_BYTES + _NPY_HEADER_MAX, "the limit on metadata",
                       check)
    try:
        return json.loads(str(arr[()]))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise _Invalid(f"metadata is not JSON ({type(exc).__name__}: {exc})") from None


def _optimizer_entry(path: str, meta: dict, optimizer: Any) -> dict:
    """The optimizer's entry in ``meta`` (layout not yet checked). A file without one, or of
    another kind of optimizer, is the caller's mistake (_WrongOptimizer); a malformed entry is
    a damaged file (_Invalid)."""
    entry = meta.get("optimizer") if meta["version"] >= 2 else None
    if entry is None:
        raise _WrongOptimizer(f"{path!r} holds no optimizer state (it was saved without "
                              f"optimizer=); load it without optimizer=")
    if not isinstance(entry, dict):
        raise _Invalid("the optimizer entry of the metadata is not a JSON object")
    name = entry.get("name")
    if not isinstance(name, str):
        raise _Invalid("the optimizer entry names no optimizer")
    if name != optimizer.name:
        raise _WrongOptimizer(f"{path!r} holds the state of a {name!r} optimizer; "
                              f"{type(optimizer).__name__} ({optimizer.name!r}) cannot take it")
    return entry


def _read_network(path: str, fh: Any, optimizer: Any) -> Any:
    """The network in the open file ``fh``, restoring ``optimizer`` when given (only once
    everything else succeeded). Raises _Invalid, _WrongOptimizer, or whatever a damaged
    archive makes zipfile, zlib or numpy raise."""
    from .network import Network
    if fh.read(len(np.lib.format.MAGIC_PREFIX)) == np.lib.format.MAGIC_PREFIX:
        raise _Invalid("it is a single .npy array, not an .npz archive")
    fh.seek(0)
    with zipfile.ZipFile(fh) as zf:
        members: Dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():  # the central directory: nothing is decompressed
            if info.filename in members:
                raise _Invalid(f"member {info.filename!r} appears twice")
            members[info.filename] = info
        meta = _read_meta(zf, members)
        shapes = _check_meta(meta)
        keys = _parameter_keys(len(shapes))
        entry = None if optimizer is None else _optimizer_entry(path, meta, optimizer)
        try:
            n_state = _saved_n_state(meta, len(shapes), len(members))
        except _Invalid:
            if optimizer is not None:
                raise
            n_state = -1  # a damaged entry goes unused without optimizer=; so do its arrays
        known = {"meta.npy", *(f"{key}.npy" for key in keys),
                 *(f"opt_state_{i}.npy" for i in range(n_state or 0))}
        unknown = sorted(name for name in members if name not in known and not (
            n_state == -1 and _OPT_STATE_MEMBER.fullmatch(name)))
        if unknown:
            shown = ", ".join(map(repr, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
            raise _Invalid(f"it holds members a gdcore file does not have: {shown} (not read)")
        opt_keys = [f"opt_state_{i}" for i in range(n_state or 0)] if entry is not None else []
        for key in keys + opt_keys:
            if f"{key}.npy" not in members:
                raise _Invalid(f"array {key} is missing")

        arrays = []
        for key, shape in zip(keys, shapes):
            def check(dtype: np.dtype, got: tuple, key: str = key, shape: tuple = shape) -> None:
                _check_parameter_header(key, dtype, got, shape)

            arr = _read_member(zf, members[f"{key}.npy"],
                               math.prod(shape) * _PARAM_MAX_ITEMSIZE + _NPY_HEADER_MAX,
                               f"the metadata (floats of shape {shape}, plus the header)", check)
            _check_parameter(key, arr, shape)
            arrays.append(arr)

        state = []
        if opt_keys:
            dtype = v.as_dtype(meta["dtype"])
            n_slots = len(opt_keys) // len(shapes)
            for i, key in enumerate(opt_keys):
                shape = shapes[i // n_slots]  # n_slots arrays per parameter, in order

                def check_state(got_dtype: np.dtype, got: tuple, key: str = key,
                                shape: tuple = shape) -> None:
                    if got_dtype != dtype or got != shape:
                        raise _Invalid(f"array {key} has dtype {got_dtype} and shape {got}, "
                                       f"expected {dtype} of shape {shape}")

                state.append(_read_member(
                    zf, members[f"{key}.npy"], math.prod(shape) * dtype.itemsize + _NPY_HEADER_MAX,
                    f"the metadata ({dtype} of shape {shape}, plus the header)", check_state))
    try:
        network = Network._from_spec(meta, arrays)
    except (TypeError, ValueError, KeyError) as exc:
        raise _Invalid(str(exc)) from None
    if entry is not None:
        state_dict = {key: value for key, value in entry.items() if key != "n_state"}
        state_dict["state"] = state
        try:
            optimizer._restore(state_dict, network)
        except (TypeError, ValueError, KeyError) as exc:
            raise _Invalid(f"optimizer state: {exc}") from None
    return network


def load(path: Any, optimizer: Any = None) -> Any:
    """Read a network written by :func:`save`; with ``optimizer``, restore the optimizer state
    saved with it into ``optimizer`` and bind it to the new network (whatever network it held
    the state of before).

    A gdcore file has a fixed set of members (``meta.npy``, ``W<i>.npy`` and ``b<i>.npy`` for
    each layer, ``opt_state_<i>.npy`` for a saved optimizer): a file with any other member is
    refused without that member being read. Only the members needed are decompressed, each
    after its declared size and ``.npy`` header matched the metadata, never with pickle.
    ``opt_state_<i>`` members are read only with ``optimizer=``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for anything that is not
    a valid gdcore file of a supported version (truncated, corrupted, unknown members, sizes
    or shapes that do not match the metadata, values that are not finite, pickled objects),
    for a file saved without an optimizer when ``optimizer`` is given, and for an optimizer of
    another kind than the saved one. ``optimizer`` is changed only when everything succeeded.
    """
    path = _fspath(path)
    _check_optimizer(optimizer)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        with open(path, "rb") as fh:
            return _read_network(path, fh, optimizer)
    except _WrongOptimizer as exc:
        raise ValueError(str(exc)) from None
    except _Invalid as exc:
        raise _bad(path, str(exc)) from None
    except ValueError as exc:  # numpy's header checks, UnicodeDecodeError, ...
        raise _bad(path, str(exc)) from None
    except Exception as exc:  # anything else a damaged archive raises (zip, zlib, EOF, OS...)
        raise _bad(path, f"{type(exc).__name__}: {exc}") from None


def read_metadata(path: Any) -> dict:
    """The ``metadata`` dict ``save`` stored in ``path`` (``{}`` when none was given).

    Reads only the file's ``meta.npy`` member, with :func:`load`'s checks on it (declared size,
    ``.npy`` header, no pickle, the architecture's fields); the parameters are not read, so a
    file whose metadata is sound may still fail to :func:`load`. Raises ``FileNotFoundError``
    for a missing file and ``ValueError`` for a file that is not a gdcore network file.
    """
    path = _fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        with open(path, "rb") as fh:
            if fh.read(len(np.lib.format.MAGIC_PREFIX)) == np.lib.format.MAGIC_PREFIX:
                raise _Invalid("it is a single .npy array, not an .npz archive")
            fh.seek(0)
            with zipfile.ZipFile(fh) as zf:
                meta = _read_meta(zf, {info.filename: info for info in zf.infolist()})
        _check_meta(meta)
    except _Invalid as exc:
        raise _bad(path, str(exc)) from None
    except ValueError as exc:
        raise _bad(path, str(exc)) from None
    except Exception as exc:  # anything else a damaged archive raises (zip, zlib, EOF, OS...)
        raise _bad(path, f"{type(exc).__name__}: {exc}") from None
    return meta.get("metadata", {})

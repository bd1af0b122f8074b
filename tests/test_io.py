"""save/load: round trips, atomic writes, and files that must be refused."""
import json
import os
import pickle
import re
import signal
import stat
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest

import gdcore as gd
from gdcore import io


@pytest.fixture
def net():
    return gd.Network.from_sizes([3, 5, 2], activation="tanh", output_activation="softmax",
                                 loss="cross_entropy", dtype="float64", seed=0)


def test_round_trip_gives_identical_predictions(backend, net, tmp_path, rng):
    path = tmp_path / "model.npz"
    net.save(path)
    back = gd.Network.load(path)
    X = rng.normal(size=(4, 3))
    np.testing.assert_array_equal(back.forward(X), net.forward(X))
    assert back.loss_name == net.loss_name and back.dtype == net.dtype
    assert [layer.activation for layer in back.layers] == ["tanh", "softmax"]
    assert repr(pickle.loads(pickle.dumps(back))) == repr(back)


def test_file_is_plain_npz_without_pickle(net, tmp_path):
    path = tmp_path / "model.npz"
    net.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["W0", "W1", "b0", "b1", "meta"]
        meta = json.loads(str(data["meta"]))
    assert meta["format"] == "gdcore-network" and meta["version"] == 2


def test_save_is_atomic(net, tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    net.save(path)
    before = path.read_bytes()
    other = gd.Network.from_sizes([3, 5, 2], activation="tanh", output_activation="softmax",
                                  loss="cross_entropy", dtype="float64", seed=99)

    def failing_savez(f, **arrays):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(io.np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        other.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temp file left behind


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **{k: v for k, v in arrays.items() if v is not None})


def test_truncated_and_corrupted_files_raise(net, tmp_path):
    path = tmp_path / "model.npz"
    net.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable gdcore network file"):
        gd.Network.load(path)
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="not a readable gdcore network file"):
        gd.Network.load(path)
    with pytest.raises(FileNotFoundError):
        gd.Network.load(tmp_path / "missing.npz")


def test_wrong_version_shape_and_meta_raise(net, tmp_path):
    path = tmp_path / "model.npz"
    net.save(path)
    meta = json.loads(str(np.load(path)["meta"]))
    _rewrite(path, meta=np.array(json.dumps({**meta, "version": 99})))
    with pytest.raises(ValueError, match="format version 99 is not supported"):
        gd.Network.load(path)
    net.save(path)
    _rewrite(path, W0=np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"W0 .* expected floats of shape \(3, 5\)"):
        gd.Network.load(path)
    net.save(path)
    _rewrite(path, meta=np.array("{not json"))
    with pytest.raises(ValueError, match="not JSON"):
        gd.Network.load(path)
    net.save(path)
    _rewrite(path, W1=np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match=r"the weights of layer 1 \(W1\) contain NaN"):
        gd.Network.load(path)


def test_pickle_carrying_file_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open("meta.npy", "w") as f:
            np.lib.format.write_array(f, np.array([Evil()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a readable gdcore network file"):
        gd.Network.load(path)
    assert not marker.exists()


# --- more damaged files: each is refused with ValueError and executes nothing ---------------

def _saved(net, tmp_path):
    path = tmp_path / "model.npz"
    net.save(path)
    return path


def _evil(marker):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    return Evil()


@pytest.mark.parametrize("damage", [
    "empty", "flipped-bytes", "truncated-header", "one-byte", "npy-not-npz", "text",
    "raw-zip-member", "deflate-garbage", "pickle-file", "pickle-in-W0", "deep-json",
    "huge-size", "int-weights", "complex-weights", "missing-W1", "meta-not-dict",
    "layers-not-list", "bad-activation", "bad-dtype", "bad-seed", "no-layers",
])
def test_damaged_files_raise_value_error_and_execute_nothing(net, tmp_path, damage):
    path = _saved(net, tmp_path)
    data = path.read_bytes()
    marker = tmp_path / "executed"
    meta = json.loads(str(np.load(path)["meta"]))
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "flipped-bytes":
        middle = bytearray(data)
        for i in range(len(middle) // 3, len(middle) // 3 + 64):
            middle[i] ^= 0xFF
        path.write_bytes(bytes(middle))
    elif damage == "truncated-header":
        path.write_bytes(data[:30])
    elif damage == "one-byte":
        path.write_bytes(data[:-1])
    elif damage == "npy-not-npz":
        with open(path, "wb") as f:
            np.save(f, np.zeros((3, 5)))
    elif damage == "text":
        path.write_text("W0 = [[1, 2], [3, 4]]\n")
    elif damage == "raw-zip-member":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("meta", json.dumps(meta))  # not a .npy member: np.load returns bytes
    elif damage == "deflate-garbage":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("meta.npy", b"\x93NUMPY" + os.urandom(200))
        raw = bytearray(path.read_bytes())
        raw[60:120] = os.urandom(60)
        path.write_bytes(bytes(raw))
    elif damage == "pickle-file":
        with open(path, "wb") as f:
            pickle.dump(_evil(marker), f)
    elif damage == "pickle-in-W0":
        _rewrite(path, W0=np.array([_evil(marker)], dtype=object))
    elif damage == "deep-json":
        _rewrite(path, meta=np.array("[" * 100_000 + "]" * 100_000))
    elif damage == "huge-size":
        layers = [{**meta["layers"][0], "n_inputs": 1e400}] + meta["layers"][1:]
        _rewrite(path, meta=np.array(json.dumps({**meta, "layers": layers})
                                     .replace("Infinity", "1e400")))
    elif damage == "int-weights":
        _rewrite(path, W0=np.zeros((3, 5), dtype=np.int64))
    elif damage == "complex-weights":
        _rewrite(path, W0=np.zeros((3, 5), dtype=complex))
    elif damage == "missing-W1":
        _rewrite(path, W1=None)
    elif damage == "meta-not-dict":
        _rewrite(path, meta=np.array(json.dumps([meta])))
    elif damage == "layers-not-list":
        _rewrite(path, meta=np.array(json.dumps({**meta, "layers": "tanh"})))
    elif damage == "bad-activation":
        layers = [{**meta["layers"][0], "activation": "__import__('os')"}] + meta["layers"][1:]
        _rewrite(path, meta=np.array(json.dumps({**meta, "layers": layers})))
    elif damage == "bad-dtype":
        _rewrite(path, meta=np.array(json.dumps({**meta, "dtype": "object"})))
    elif damage == "bad-seed":
        _rewrite(path, meta=np.array(json.dumps({**meta, "seed": "os.system"})))
    elif damage == "no-layers":
        _rewrite(path, meta=np.array(json.dumps({**meta, "layers": []})))
    with pytest.raises(ValueError, match="not a readable gdcore network file"):
        gd.Network.load(path)
    assert not marker.exists()


def test_load_error_names_the_problem(net, tmp_path):
    path = _saved(net, tmp_path)
    _rewrite(path, W1=None)
    with pytest.raises(ValueError, match="array W1 is missing"):
        gd.Network.load(path)
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match="single .npy array, not an .npz archive"):
        gd.Network.load(path)


# --- atomic saves: a failure at any point leaves the previous file whole --------------------

def _other():
    return gd.Network.from_sizes([3, 5, 2], activation="tanh", output_activation="softmax",
                                 loss="cross_entropy", dtype="float64", seed=99)


def _assert_untouched(tmp_path, path, before, net):
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]  # no temporary left
    back = gd.Network.load(path)
    for p, q in zip(back.parameters(), net.parameters()):
        np.testing.assert_array_equal(p, q)


def test_save_failing_at_the_rename_keeps_the_previous_file(net, tmp_path, monkeypatch):
    path = _saved(net, tmp_path)
    before = path.read_bytes()

    def failing_replace(src, dst):
        assert os.path.getsize(src) > 0  # the new file was fully written
        raise OSError("rename failed")

    monkeypatch.setattr(io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        _other().save(path)
    monkeypatch.undo()
    _assert_untouched(tmp_path, path, before, net)


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_save_interrupted_inside_savez_keeps_the_previous_file(net, tmp_path, monkeypatch, exc):
    path = _saved(net, tmp_path)
    before = path.read_bytes()
    real_savez = np.savez
    written = []

    def savez_then_fail(f, **arrays):
        real_savez(f, **arrays)  # a complete archive's bytes reach the temporary file...
        written.append(f.tell())
        raise exc               # ...and then the write fails

    monkeypatch.setattr(io.np, "savez", savez_then_fail)
    with pytest.raises(type(exc)):
        _other().save(path)
    monkeypatch.undo()
    assert written and written[0] > 100
    _assert_untouched(tmp_path, path, before, net)


def test_save_to_a_missing_folder_or_a_folder_is_a_clear_error(net, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"folder .*nowhere.* does not exist"):
        net.save(tmp_path / "nowhere" / "model.npz")
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        net.save(tmp_path)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        net.save(42)
    assert list(tmp_path.iterdir()) == []


def test_saved_file_gets_the_usual_permissions(net, tmp_path):
    """The temporary file is created like open() would (0666 minus the umask), not 0600."""
    umask = os.umask(0o022)
    try:
        path = _saved(net, tmp_path)
        assert (path.stat().st_mode & 0o777) == 0o644
        os.umask(0o002)
        net.save(path)
        assert (path.stat().st_mode & 0o777) == 0o664
    finally:
        os.umask(umask)


def test_save_and_load_keep_names_exactly_and_accept_path_types(net, tmp_path, rng):
    for path in (str(tmp_path / "model"), tmp_path / "model.bin", os.fsencode(tmp_path / "b.npz")):
        net.save(path)
        assert os.path.exists(path)
        back = gd.Network.load(path)
        X = rng.normal(size=(2, 3))
        np.testing.assert_array_equal(back.forward(X), net.forward(X))


# --- load reads only the members the format names, each after its declared size -----------

_MiB = 2 ** 20


def _deflated_zeros(n_mib):
    """Raw deflate data for ``n_mib`` MiB of zeros (about 1 KiB per MiB), made in
    milliseconds: one compressed MiB ends in a full flush, so every piece is the same."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(bytes(_MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    assert c.compress(bytes(_MiB)) + c.flush(zlib.Z_FULL_FLUSH) == piece
    return piece * n_mib + c.flush()


def _write_zip(path, members):
    """A zip archive of ``(name, method, data as stored, uncompressed size, crc)`` members,
    written by hand so that a member can declare the size it really has (2 GiB) without
    this test compressing 2 GiB."""
    out, central = bytearray(), bytearray()
    for name, method, data, size, crc in members:
        raw, offset = name.encode(), len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data),
                           size, len(raw), 0) + raw + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21,
                               crc, len(data), size, len(raw), 0, 0, 0, 0, 0, offset) + raw
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central),
                      len(out), 0)
    path.write_bytes(bytes(out + central + end))


def _stored_members(path, leave_out=()):
    with zipfile.ZipFile(path) as zf:
        return [(info.filename, zipfile.ZIP_STORED, zf.read(info), info.file_size, info.CRC)
                for info in zf.infolist() if info.filename not in leave_out]


def test_deflated_zeros_helper_is_a_real_deflate_stream():
    assert zlib.decompress(_deflated_zeros(3), -15) == bytes(3 * _MiB)


@pytest.mark.parametrize("member", ["junk.npy", "W0.npy", "meta.npy"])
def test_a_2_gib_member_is_refused_without_decompressing_it(backend, net, tmp_path, member):
    """A 2 MiB file with a member of 2 GiB of zeros: unknown, or in place of a parameter or of
    the metadata. Its CRC is left wrong on purpose: a reader sees that only after
    decompressing all 2 GiB, which is exactly what load must not do."""
    path = _saved(net, tmp_path)
    huge = (member, zipfile.ZIP_DEFLATED, _deflated_zeros(2048), 2 ** 31, 0)
    _write_zip(path, _stored_members(path, leave_out=[member]) + [huge])
    assert path.stat().st_size < 3 * _MiB
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo(member).file_size == 2 ** 31
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(ValueError, match=r"not a readable gdcore network file: .*"
                                             + re.escape(repr(member))):
            gd.Network.load(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * _MiB, f"load allocated {peak} bytes"
    assert elapsed < 5.0  # milliseconds in fact; decompressing the member takes many seconds


@pytest.mark.parametrize("extra", ["notes.txt", "W2.npy", "meta", "opt_state_0.npy",
                                   "W0.npy.bak", "sub/W0.npy"])
def test_unknown_members_are_refused_and_named(net, tmp_path, extra):
    path = _saved(net, tmp_path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(extra, b"anything")
    with pytest.raises(ValueError, match="members a gdcore file does not have: "
                                         + re.escape(repr(extra))):
        gd.Network.load(path)


def test_unknown_member_next_to_an_optimizer_is_refused(net, tmp_path, rng):
    opt = gd.SGD(lr=0.1, momentum=0.9)
    net.fit(rng.normal(size=(8, 3)), rng.integers(0, 2, size=8), optimizer=opt, epochs=1)
    path = tmp_path / "model.npz"
    net.save(path, optimizer=opt)
    with zipfile.ZipFile(path, "a") as zf:
        # one momentum array per parameter: opt_state_0 to opt_state_3
        assert len(zf.namelist()) == 9 and "opt_state_3.npy" in zf.namelist()
        zf.writestr("opt_state_4.npy", b"anything")
    for optimizer in (None, gd.SGD()):
        with pytest.raises(ValueError, match="does not have: 'opt_state_4.npy'"):
            gd.Network.load(path, optimizer=optimizer)


def _npy(arr=None, header=None, tail=b""):
    """The bytes of a .npy file of ``arr``, or of only a header (a dict) claiming any shape."""
    import io as _io
    f = _io.BytesIO()
    if header is None:
        np.lib.format.write_array(f, arr)
    else:
        np.lib.format.write_array_header_1_0(f, header)
    return f.getvalue() + tail


def _huge_header(shape):
    return {"descr": "<f8", "fortran_order": False, "shape": shape}


@pytest.mark.parametrize("case, match", [
    ("too-big", r"member 'W0.npy' declares 1200128 bytes uncompressed, but the metadata "
                r"\(floats of shape \(3, 5\), plus the header\) allows at most 4216; "
                r"it was not read"),
    ("trailing-bytes", r"member 'W0.npy' declares 312 bytes uncompressed, but its header and "
                       r"data take 248"),
    ("header-claims-huge-shape", r"array W0 has dtype float64 and shape \(100000, 100000\), "
                                 r"expected floats of shape \(3, 5\)"),
    ("meta-and-header-claim-huge-layer", r"member 'W0.npy' declares 128 bytes uncompressed, "
                                         r"but its header and data take 8000000000128"),
    ("bzip2", "member 'W0.npy' uses compression method 12"),
    ("duplicate", "member 'W0.npy' appears twice"),
    ("object-header", "member 'W0.npy' holds Python objects"),
])
def test_member_sizes_and_headers_are_checked_before_reading(net, tmp_path, case, match):
    path = _saved(net, tmp_path)
    replace = {}
    method = zipfile.ZIP_STORED
    if case == "too-big":
        replace["W0.npy"] = _npy(np.zeros((300, 500)))
    elif case == "trailing-bytes":
        replace["W0.npy"] = _npy(np.zeros((3, 5)), tail=bytes(64))
    elif case == "header-claims-huge-shape":
        replace["W0.npy"] = _npy(header=_huge_header((100_000, 100_000)))
    elif case == "meta-and-header-claim-huge-layer":
        meta = json.loads(str(np.load(path)["meta"]))
        meta["layers"][0].update(n_inputs=10 ** 6, n_outputs=10 ** 6)
        _rewrite(path, meta=np.array(json.dumps(meta)))
        replace["W0.npy"] = _npy(header=_huge_header((10 ** 6, 10 ** 6)))
    elif case == "bzip2":
        method = zipfile.ZIP_BZIP2
    elif case == "object-header":
        replace["W0.npy"] = _npy(header={"descr": "|O", "fortran_order": False,
                                         "shape": (3, 5)})
    with zipfile.ZipFile(path) as zf:
        contents = {name: zf.read(name) for name in zf.namelist()}
    contents.update(replace)
    with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        for name, data in contents.items():
            zf.writestr(name, data, compress_type=method if name == "W0.npy" else None)
        if case == "duplicate":
            zf.writestr("W0.npy", contents["W0.npy"])
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="not a readable gdcore network file: " + match):
            gd.Network.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * _MiB  # nothing as large as a claimed shape was allocated


def test_compressed_files_load(net, tmp_path, rng):
    """np.savez_compressed writes the same members, deflated: gdcore reads them."""
    path = _saved(net, tmp_path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    X = rng.normal(size=(4, 3))
    np.testing.assert_array_equal(gd.Network.load(path).forward(X), net.forward(X))


# --- save over symbolic links, read-only files and other things that are not plain files ---

def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def _assert_same_parameters(a, b):
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)


def test_save_through_a_symlink_replaces_its_target_and_keeps_the_link(net, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    net.save(real / "model.npz")
    link = tmp_path / "link.npz"
    link.symlink_to(os.path.join("real", "model.npz"))  # relative, as ln -s makes them
    other = _other()
    other.save(link)
    assert link.is_symlink() and os.readlink(link) == os.path.join("real", "model.npz")
    _assert_same_parameters(gd.Network.load(real / "model.npz"), other)
    assert _names(tmp_path) == ["link.npz", "real"] and _names(real) == ["model.npz"]

    dangling = tmp_path / "new.npz"
    dangling.symlink_to(os.path.join("real", "new.npz"))
    net.save(dangling)  # creates the file the link names
    assert dangling.is_symlink() and (real / "new.npz").is_file()
    _assert_same_parameters(gd.Network.load(dangling), net)

    loop = tmp_path / "loop.npz"
    loop.symlink_to("loop.npz")
    with pytest.raises(OSError, match="too many levels of symbolic links"):
        net.save(loop)
    assert loop.is_symlink()
    assert _names(tmp_path) == ["link.npz", "loop.npz", "new.npz", "real"]


def test_save_over_a_read_only_file_raises_and_keeps_it(net, tmp_path):
    """Refused even for root (who may write any file): no write bit at all means read-only,
    as a numpy.save user who is not root would see it."""
    path = _saved(net, tmp_path)
    before = path.read_bytes()
    link = tmp_path / "link.npz"
    link.symlink_to("model.npz")
    path.chmod(0o444)
    try:
        for target in (path, link):
            with pytest.raises(PermissionError, match=r"cannot save to .* the file is "
                                                      r"read-only"):
                _other().save(target)
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    finally:
        path.chmod(0o644)
    assert path.read_bytes() == before and _names(tmp_path) == ["link.npz", "model.npz"]
    _other().save(path)  # writable again
    _assert_same_parameters(gd.Network.load(path), _other())


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_save_does_not_replace_a_pipe(net, tmp_path):
    pipe = tmp_path / "model.npz"
    os.mkfifo(pipe)
    with pytest.raises(ValueError, match="it is not a regular file"):
        net.save(pipe)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode) and _names(tmp_path) == ["model.npz"]


# --- a save killed mid-write, and the temporary file it leaves ------------------------------

_KILLED_SAVE = r"""
import sys, time
import numpy as np
import gdcore as gd

path, ready = sys.argv[1], sys.argv[2]


def stalled_savez(f, **arrays):
    f.write(b"partial archive")  # the temporary file holds part of the new file...
    f.flush()
    open(ready, "w").close()
    time.sleep(60)               # ...when the parent SIGKILLs this process


np.savez = stalled_savez
gd.Network.from_sizes([3, 5, 2], activation="tanh", output_activation="softmax",
                      loss="cross_entropy", dtype="float64", seed=99).save(path)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_save_keeps_the_old_file_and_the_next_save_removes_its_temporary(
        backend, net, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "model.npz"
    net.save(path)
    before = path.read_bytes()
    ready = tmp_path / "ready"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_SAVE, str(path), str(ready)],
                             env={**os.environ, "GDCORE_BACKEND": backend})
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert child.poll() is None, "the child ended before its save got going"
            assert time.monotonic() < deadline, "the child's save did not start"
            time.sleep(0.01)
    finally:
        child.kill()  # SIGKILL: no exception handler, no cleanup runs
        child.wait()
    assert child.returncode == -signal.SIGKILL
    left = [name for name in _names(folder) if name != "model.npz"]
    assert len(left) == 1 and left[0].startswith(f".model.npz.gdcore-tmp-{child.pid}-")
    assert path.read_bytes() == before
    _assert_same_parameters(gd.Network.load(path), net)

    other = _other()
    other.save(path)
    assert _names(folder) == ["model.npz"]
    _assert_same_parameters(gd.Network.load(path), other)


def test_save_removes_only_temporaries_of_ended_processes(net, tmp_path):
    path = _saved(net, tmp_path)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    kept = [
        f".model.npz.gdcore-tmp-1-{'1' * 16}",                 # pid 1 always runs
        f".model.npz.gdcore-tmp-{os.getpid()}-{'2' * 16}",     # another thread's save
        f".other.npz.gdcore-tmp-{ended.pid}-{'3' * 16}",       # another file's
        f".model.npz.gdcore-tmp-{ended.pid}-partial",          # not a name save makes
        f".gdcore-{'4' * 16}.tmp",                             # an older gdcore's
    ]
    stale = f".model.npz.gdcore-tmp-{ended.pid}-{'0' * 16}"
    for name in kept + [stale]:
        (tmp_path / name).write_bytes(b"partial archive")
    net.save(path)
    assert _names(tmp_path) == sorted(kept + ["model.npz"])


# --- save refuses what load would refuse, before writing anything ---------------------------

@pytest.mark.parametrize("damage, match", [
    ("nan-weights", r"the weights of layer 0 \(W0\) contain NaN"),
    ("inf-biases", r"the biases of layer 1 \(b1\) contain infinity"),
    ("negative-seed", "seed must be a non-negative int, got -1"),
    ("text-seed", "seed must be None, an int or a numpy Generator, got 'abc'"),
    ("bool-seed", "seed must be None, an int or a numpy Generator, got True"),
    ("nan-optimizer-state", r"optimizer state: .*contains NaN"),
])
def test_save_refuses_what_load_would_refuse(backend, net, tmp_path, rng, damage, match):
    path = _saved(net, tmp_path)
    before = path.read_bytes()
    optimizer = None
    if damage == "nan-weights":
        net.layers[0].weights[1, 2] = np.nan  # in place: the setter would refuse it
    elif damage == "inf-biases":
        net.layers[1].bias[0] = np.inf
    elif damage == "negative-seed":
        net.seed = -1
    elif damage == "text-seed":
        net.seed = "abc"
    elif damage == "bool-seed":
        net.seed = True
    elif damage == "nan-optimizer-state":
        optimizer = gd.Adam(lr=0.01)
        net.fit(rng.normal(size=(8, 3)), rng.integers(0, 2, size=8), optimizer=optimizer,
                epochs=1)
        optimizer.state[0][0, 0] = np.nan
        before = path.read_bytes()
    for target in (path, tmp_path / "new.npz"):
        with pytest.raises(ValueError, match=r"cannot save to .*\.npz'?: " + match):
            net.save(target, optimizer=optimizer)
        assert path.read_bytes() == before
        assert _names(tmp_path) == ["model.npz"]  # no new file, no temporary left behind


def test_save_keeps_a_numpy_integer_seed_and_drops_a_generator(net, tmp_path):
    path = tmp_path / "model.npz"
    net.seed = np.int64(7)
    net.save(path)
    assert gd.Network.load(path).seed == 7
    net.seed = np.random.default_rng(0)  # its state is not saved
    net.save(path)
    assert gd.Network.load(path).seed is None

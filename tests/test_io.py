"""save/load: round trips, atomic writes, and files that must be refused."""
import json
import os
import pickle
import zipfile

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
    with pytest.raises(ValueError, match="contains NaN"):
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

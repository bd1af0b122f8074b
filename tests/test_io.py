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
    assert meta["format"] == "gdcore-network" and meta["version"] == 1


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

"""save(metadata=...) and read_metadata: the caller's JSON stored beside the network."""
import json
import zipfile

import numpy as np
import pytest

import gdcore as gd
from gdcore import io


@pytest.fixture
def net():
    return gd.Network.from_sizes([3, 4, 2], activation="tanh", output_activation="softmax",
                                 loss="cross_entropy", dtype="float64", seed=0)


def test_metadata_round_trip(net, tmp_path):
    path = tmp_path / "model.npz"
    metadata = {"labels": ["a", "é", "c"], "mean": [0.1, -2.5e-300, 1e300], "n": 3,
                "nested": {"ok": True, "none": None}}
    net.save(path, metadata=metadata)
    assert io.read_metadata(path) == metadata
    back = gd.Network.load(path)  # load ignores the metadata
    np.testing.assert_array_equal(back.forward(np.ones((2, 3))), net.forward(np.ones((2, 3))))
    with np.load(path, allow_pickle=False) as data:  # stored as JSON text, not pickled
        assert json.loads(str(data["meta"]))["metadata"] == metadata


def test_without_metadata_reads_empty(net, tmp_path):
    path = tmp_path / "model.npz"
    net.save(path)
    assert io.read_metadata(path) == {}


@pytest.mark.parametrize("metadata, error, match", [
    ([1, 2], TypeError, "metadata must be None or a dict"),
    ({"x": float("nan")}, ValueError, "JSON-serializable"),
    ({"x": np.arange(3)}, ValueError, "JSON-serializable"),
    ({1: "int key"}, ValueError, "JSON-serializable"),
])
def test_bad_metadata_is_refused_and_nothing_written(net, tmp_path, metadata, error, match):
    path = tmp_path / "model.npz"
    with pytest.raises(error, match=match):
        net.save(path, metadata=metadata)
    assert not path.exists()


def _rewrite_meta(path, change):
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def test_metadata_that_is_not_an_object_is_a_damaged_file(net, tmp_path):
    path = tmp_path / "model.npz"
    net.save(path, metadata={"a": 1})
    _rewrite_meta(path, lambda meta: meta.update(metadata=[1, 2]))
    for read in (io.read_metadata, gd.Network.load):
        with pytest.raises(ValueError, match="not a readable gdcore network file.*metadata"):
            read(path)


def test_read_metadata_refuses_damaged_and_missing_files(net, tmp_path):
    with pytest.raises(FileNotFoundError):
        io.read_metadata(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip archive")
    with pytest.raises(ValueError, match="not a readable gdcore network file"):
        io.read_metadata(bad)
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.array("{}"))
    with pytest.raises(ValueError, match="does not describe a gdcore network"):
        io.read_metadata(other)
    pickled = tmp_path / "pickled.npz"
    with zipfile.ZipFile(pickled, "w") as zf:
        with zf.open("meta.npy", "w") as f:
            np.lib.format.write_array(f, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a readable gdcore network file"):
        io.read_metadata(pickled)

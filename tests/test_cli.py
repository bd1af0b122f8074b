"""The gdcore command line end to end: the installed console script on files the tests write
(a CSV of the wine data with string labels and raw features; .npz files), and every bad input
as one line on stderr with a non-zero status."""
import csv
import importlib.util
import io as _io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import gdcore as gd
from gdcore import cli, io, tabular

SCRIPT = os.path.join(os.path.dirname(sys.executable), "gdcore")


@pytest.fixture(scope="module")
def gdcore_script():
    if not os.path.exists(SCRIPT):
        pytest.skip(f"the gdcore console script is not installed next to {sys.executable} "
                    f"(pip install the package)")
    return SCRIPT


def run(script, *args, cwd=None):
    return subprocess.run([script, *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def one_error_line(stderr):
    """stderr is exactly one line, gdcore's error line, and no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and stderr.endswith("\n"), stderr
    assert lines[0].startswith("gdcore: error: ")
    return lines[0]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    """wine.csv: scikit-learn's wine data, raw features, labels class_0..class_2 in a column
    'cultivar' placed between the features (not last)."""
    from sklearn.datasets import load_wine
    data = load_wine()
    labels = np.array([f"class_{k}" for k in data.target])
    header = list(data.feature_names[:5]) + ["cultivar"] + list(data.feature_names[5:])
    rows = [[*map(repr, x[:5]), label, *map(repr, x[5:])]
            for x, label in zip(data.data.tolist(), labels)]
    path = write_csv(tmp_path_factory.mktemp("wine") / "wine.csv", header, rows)
    return path, data.data, labels


@pytest.fixture(scope="module")
def wine_model(gdcore_script, wine):
    """The README's command: gdcore train wine.csv --target cultivar --out m.npz."""
    path, _, _ = wine
    model = path.parent / "m.npz"
    out = run(gdcore_script, "train", path, "--target", "cultivar", "--out", model)
    assert out.returncode == 0, out.stderr
    return model, out


def test_train_then_predict_wine_with_string_labels(wine, wine_model, gdcore_script):
    path, X, labels = wine
    model, trained = wine_model
    for expected in ("stopped: epochs", "loss:", "training accuracy:", "time:", "engine",
                     f"model: {model}", "classify 'cultivar' into 3 classes"):
        assert expected in trained.stdout
    assert trained.stderr == ""  # no progress bar without a terminal
    out = run(gdcore_script, "predict", model, path)
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader(_io.StringIO(out.stdout)))
    assert rows[0] == ["cultivar"] and len(rows) == len(labels) + 1
    predicted = np.array([row[0] for row in rows[1:]])
    assert set(predicted) <= {"class_0", "class_1", "class_2"}
    accuracy = (predicted == labels).mean()
    assert accuracy > 0.9
    assert f"accuracy {100 * accuracy:.1f}% against 'cultivar'" in out.stderr
    # the preprocessing in the file: the raw features' statistics, the labels as strings
    prep = io.read_metadata(model)["preprocessing"]
    np.testing.assert_allclose(prep["mean"], X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(prep["scale"], X.std(axis=0), rtol=1e-12)
    assert prep["classes"] == ["class_0", "class_1", "class_2"] and prep["task"] == "classify"
    from sklearn.datasets import load_wine
    assert prep["features"] == list(load_wine().feature_names)  # the target column left out


def test_predict_proba_to_a_file_and_info(wine, wine_model, gdcore_script, tmp_path):
    path, _, labels = wine
    model, _ = wine_model
    target = tmp_path / "predictions.csv"
    out = run(gdcore_script, "predict", model, path, "--proba", "--out", target)
    assert out.returncode == 0, out.stderr
    assert f"{len(labels)} predictions; accuracy" in out.stdout
    with open(target, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["cultivar", "proba_class_0", "proba_class_1", "proba_class_2"]
    proba = np.array([[float(p) for p in row[1:]] for row in rows[1:]])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert [row[0] for row in rows[1:]] == [f"class_{k}" for k in proba.argmax(axis=1)]

    out = run(gdcore_script, "info", model)
    assert out.returncode == 0, out.stderr
    for expected in ("gdcore network 13-64-64-3", "relu, relu, softmax", "cross_entropy",
                     "float32", "5251 parameters", "classify 'cultivar' into 3 classes",
                     "class_0, class_1, class_2", "standardized", "trained on wine.csv",
                     "stopped: epochs", "training accuracy:"):
        assert expected in out.stdout


def test_lr_find_prints_a_suggestion(wine, gdcore_script):
    path, _, _ = wine
    out = run(gdcore_script, "lr-find", path, "--target", "cultivar", "--optimizer", "sgd")
    assert out.returncode == 0, out.stderr
    line = out.stdout.splitlines()[-1]
    assert line.startswith("suggested learning rate: ")
    assert 1e-5 < float(line.split(": ")[1]) < 10


def test_npz_regression_and_integer_classes(gdcore_script, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)) * [1, 10, 100, 0.1] + [0, 5, -50, 3]
    y = X @ [1.0, 0.2, 0.01, 5.0] * 30 + 1000  # far from standardized scale
    data = tmp_path / "reg.npz"
    np.savez(data, X=X, y=y)
    model = tmp_path / "reg_model.npz"
    out = run(gdcore_script, "train", data, "--out", model, "--epochs", "60", "--hidden", "16",
              "--activation", "tanh", "--validation-split", "0.2", "--lr", "0.01")
    assert out.returncode == 0, out.stderr
    assert "regress 'y'" in out.stdout and "training R²" in out.stdout
    assert "240 training rows, 60 validation rows" in out.stdout
    out = run(gdcore_script, "predict", model, data)
    assert out.returncode == 0, out.stderr
    rows = list(csv.reader(_io.StringIO(out.stdout)))
    predicted = np.array([float(row[0]) for row in rows[1:]])
    assert rows[0] == ["y"]
    assert 1 - ((predicted - y) ** 2).sum() / ((y - y.mean()) ** 2).sum() > 0.95



def test_npz_integer_classes_stay_integers(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    X = np.random.default_rng(0).normal(size=(200, 3))
    labels = (X[:, 0] > 0).astype(np.int64) * 7 + 2  # classes 2 and 9
    np.savez("cls.npz", X=X, y=labels)
    assert cli.main(["train", "cls.npz", "--out", "m.npz", "--epochs", "20"]) == 0
    assert "classify 'y' into 2 classes: 2, 9" in capsys.readouterr().out
    assert io.read_metadata("m.npz")["preprocessing"]["classes"] == [2, 9]
    np.savez("x.npz", X=X)  # predict needs X only
    assert cli.main(["predict", "m.npz", "x.npz"]) == 0
    out, err = capsys.readouterr()
    predicted = np.array([int(row[0]) for row in list(csv.reader(_io.StringIO(out)))[1:]])
    assert set(predicted) <= {2, 9} and (predicted == labels).mean() > 0.9
    assert err == "200 predictions\n"


# --- bad input through the console script: one line, a non-zero status ---------------------

@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    write_csv(folder / "text.csv", ["a", "b", "label"], [["1", "2", "x"], ["3", "oops", "y"]])
    write_csv(folder / "ok.csv", ["a", "b", "label"], [["1", "2", "x"], ["3", "4", "y"]])
    (folder / "damaged.npz").write_bytes(b"PK\x03\x04" + os.urandom(200))
    return folder


@pytest.mark.parametrize("args, status, message", [
    (["train", "missing.csv", "--target", "label"], 1, "no such file: 'missing.csv'"),
    (["train", "text.csv", "--target", "label"], 1,
     "'text.csv' line 3: feature 'b' is not numeric ('oops')"),
    (["train", "ok.csv", "--target", "label", "--epochs", "0"], 2,
     "argument --epochs: must be >= 1, got 0"),
    (["predict", "damaged.npz", "ok.csv"], 1,
     "'damaged.npz' is not a readable gdcore network file"),
])
def test_bad_input_through_the_script(gdcore_script, bad_files, args, status, message):
    out = run(gdcore_script, *args, cwd=bad_files)
    assert out.returncode == status
    assert message in one_error_line(out.stderr)
    assert out.stdout == ""


# --- bad input in process (the same main) ---------------------------------------------------

@pytest.fixture
def files(tmp_path, monkeypatch):
    """A folder with small valid and invalid inputs and a trained model; the cwd."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    write_csv("ok.csv", ["a", "b", "label"],
              [[f"{a:.4f}", f"{b:.4f}", "yes" if a > 0 else "no"] for a, b in X])
    write_csv("reg.csv", ["a", "b", "value"], [[f"{a:.4f}", f"{b:.4f}", f"{a - b:.4f}"]
                                               for a, b in X])
    assert cli.main(["train", "ok.csv", "--target", "label", "--epochs", "2",
                     "--out", "cls.npz"]) == 0
    assert cli.main(["train", "reg.csv", "--target", "value", "--epochs", "2",
                     "--out", "reg.npz"]) == 0
    return tmp_path


def error_of(capsys, argv, status):
    capsys.readouterr()
    assert cli.main(argv) == status
    out, err = capsys.readouterr()
    return one_error_line(err)


def edit_npz(path, **members):
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    arrays.update(members)
    np.savez(path, **arrays)


def test_usage_errors_exit_2(files, capsys):
    cases = [
        ([], "the following arguments are required: COMMAND"),
    (["train", "ok.csv", "--target", "label", "--epochs", "0"], "--epochs: must be >= 1, got 0"),
        (["fly"], "invalid choice: 'fly'"),
        (["train"], "the following arguments are required: DATA"),
        (["train", "ok.csv", "--target", "label", "--epochs", "x"],
         "argument --epochs: must be an integer, got 'x'"),
        (["train", "ok.csv", "--target", "label", "--epochs", "-3"], "must be >= 1, got -3"),
        (["train", "ok.csv", "--target", "label", "--batch-size", "0"], "--batch-size: must be"),
        (["train", "ok.csv", "--target", "label", "--lr", "-1"], "--lr: must be a finite"),
        (["train", "ok.csv", "--target", "label", "--lr", "fast"], "a number or 'auto'"),
        (["train", "ok.csv", "--target", "label", "--hidden", "64,0"], "widths must be >= 1"),
        (["train", "ok.csv", "--target", "label", "--hidden", "a,b"], "comma-separated"),
        (["train", "ok.csv", "--target", "label", "--validation-split", "1"], "in [0, 1)"),
        (["train", "ok.csv", "--target", "label", "--optimizer", "newton"], "invalid choice"),
        (["train", "ok.csv", "--target", "label", "--seed", "-1"], "--seed: must be >= 0"),
        (["train", "ok.csv", "--target", "label", "--wat"], "unrecognized arguments: --wat"),
        (["export", "cls.npz"], "the following arguments are required: --onnx"),
    ]
    for argv, message in cases:
        assert message in error_of(capsys, argv, 2), argv


def test_data_errors_exit_1(files, capsys):
    write_csv("ragged.csv", ["a", "b", "label"], [["1", "2", "x"], ["3", "y"]])
    write_csv("empty_cell.csv", ["a", "b", "label"], [["1", "", "x"], ["3", "4", "y"]])
    write_csv("nan.csv", ["a", "b", "label"], [["1", "nan", "x"], ["3", "4", "y"]])
    write_csv("one_class.csv", ["a", "b", "label"], [["1", "2", "x"], ["3", "4", "x"]])
    write_csv("dup.csv", ["a", "a", "label"], [["1", "2", "x"]])
    write_csv("only_b.csv", ["b"], [["1"]])
    open("empty.csv", "w").close()
    write_csv("header.csv", ["a", "b", "label"], [])
    np.savez("noy.npz", X=np.ones((3, 2)))
    np.savez("objects.npz", X=np.ones((3, 2)), y=np.array([{}, {}, {}], dtype=object))
    np.savez("x1d.npz", X=np.ones(3), y=np.ones(3))
    np.save("single.npy", np.ones((3, 2)))
    cases = [
        (["train", "ok.csv"], "name its target column (--target COLUMN)"),
    (["train", "ok.csv", "--target", "nope"],
     "'ok.csv' has no target column 'nope' (columns: a, b, label)"),
        (["train", "ragged.csv", "--target", "label"], "line 3 has 2 fields, the header has 3"),
        (["train", "empty_cell.csv", "--target", "label"], "feature 'b' is empty"),
        (["train", "nan.csv", "--target", "label"], "'nan'; features must be finite"),
        (["train", "one_class.csv", "--target", "label"], "one class only ('x')"),
        (["train", "dup.csv", "--target", "label"], "column 'a' appears twice"),
        (["train", "empty.csv", "--target", "label"], "is empty"),
        (["train", "header.csv", "--target", "label"], "has a header but no data rows"),
        (["train", "noy.npz"], "holds no target array 'y'"),
        (["train", "objects.npz"], "holds Python objects (pickled data)"),
        (["train", "x1d.npz"], "X must be a non-empty 2-D array"),
        (["train", "single.npy"], "a single .npy array"),
        (["train", ".", "--target", "label"], "is a folder"),
        (["train", "ok.csv", "--target", "label", "--task", "regress"],
         "the target 'label' is not numeric"),
        (["train", "ok.csv", "--target", "label", "--out", "no/such/dir/m.npz"],
         "the folder"),
        (["lr-find", "ok.csv", "--target", "label", "--optimizer", "rprop"],
         "Rprop adapts its own step sizes"),
        (["predict", "cls.npz", "only_b.csv"], "has no feature column 'a'"),
        (["predict", "cls.npz", "missing.csv"], "no such file: 'missing.csv'"),
        (["predict", "missing.npz", "ok.csv"], "no such file: 'missing.npz'"),
        (["predict", "reg.npz", "reg.csv", "--proba"], "--proba needs a classification model"),
        (["predict", "cls.npz", "ok.csv", "--out", "no/such/dir/p.csv"],
         "No such file or directory: 'no/such/dir/p.csv'"),
        (["info", "ok.csv"], "'ok.csv' is not a readable gdcore network file"),
        (["export", "missing.npz", "--onnx", "out.onnx"], "no such file: 'missing.npz'"),
    ]
    for argv, message in cases:
        assert message in error_of(capsys, argv, 1), argv
    assert not os.path.exists("no")


def test_damaged_model_files_exit_1(files, capsys):
    with open("cls.npz", "rb") as f:
        data = f.read()
    with open("truncated.npz", "wb") as f:
        f.write(data[: len(data) // 2])
    for argv in (["predict", "truncated.npz", "ok.csv"], ["info", "truncated.npz"],
                 ["export", "truncated.npz", "--onnx", "x.onnx"]):
        assert "'truncated.npz' is not a readable gdcore network file" in \
            error_of(capsys, argv, 1)

    def damage(name, change):
        with np.load("cls.npz") as npz:
            meta = json.loads(str(npz["meta"]))
        change(meta["metadata"]["preprocessing"])
        with open(name, "wb") as f:
            f.write(data)
        edit_npz(name, meta=np.array(json.dumps(meta)))
        return name

    cases = [
        (lambda p: p.update(classes=["yes", "yes"]), "classes is not a list of 2 distinct"),
        (lambda p: p.update(scale=[1.0, 0.0]), "scale is not a list of 2 finite positive"),
        (lambda p: p.update(mean=[1.0]), "mean is not a list of 2 finite numbers"),
        (lambda p: p.update(features=["a"]), "1 features for a network of 2 inputs"),
        (lambda p: p.update(task="cluster"), "task 'cluster'"),
        (lambda p: p.update(version=99), "version 99"),
        (lambda p: p.clear(), "not a gdcore-tabular entry"),
    ]
    for change, message in cases:
        line = error_of(capsys, ["predict", damage("bad.npz", change), "ok.csv"], 1)
        assert "'bad.npz' has damaged preprocessing metadata" in line and message in line

    gd.Network.from_sizes([2, 3, 2]).save("plain.npz")  # no preprocessing: predict refuses
    assert "holds no preprocessing metadata (it was not written by gdcore train)" in \
        error_of(capsys, ["predict", "plain.npz", "ok.csv"], 1)
    capsys.readouterr()
    assert cli.main(["info", "plain.npz"]) == 0  # info describes any network file
    assert "preprocessing: none" in capsys.readouterr().out


def test_label_and_width_mismatches_in_predict(files, capsys):
    np.savez("wide.npz", X=np.ones((3, 5)))
    assert "X has 5 columns, the model takes 2 features" in \
        error_of(capsys, ["predict", "cls.npz", "wide.npz"], 1)
    # a target column with labels the model never saw: predicted anyway, counted as wrong
    write_csv("new_labels.csv", ["label", "b", "a"], [["maybe", "1", "2"], ["yes", "0", "5"]])
    capsys.readouterr()
    assert cli.main(["predict", "cls.npz", "new_labels.csv"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "label" and len(out.splitlines()) == 3
    assert err.startswith("2 predictions; accuracy ")
    write_csv("text_value.csv", ["a", "b", "value"], [["1", "2", "high"]])
    capsys.readouterr()
    assert cli.main(["predict", "reg.npz", "text_value.csv"]) == 0
    assert "1 predictions; no score (the target 'value' is not numeric)" in \
        capsys.readouterr().err


def test_demo_command_and_its_errors(capsys):
    assert cli.main(["demo", "--epochs", "3", "--samples", "90", "--lr", "0.01",
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "training accuracy:" in out and "backend:" in out
    assert "epochs must be" in error_of(capsys, ["demo", "--epochs", "0", "--no-progress"], 1)


# --- the pieces behind the commands --------------------------------------------------------

@pytest.mark.parametrize("task", ["classify", "regress"])
def test_folded_network_takes_raw_features(task, backend):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 3)) * [1, 100, 0.01] + [5, -300, 2]
    y = (X[:, 0] > 5).astype(int) if task == "classify" else np.c_[X[:, 1], X[:, 0]]
    table = tabular.Table(X, y, ["a", "b", "c"], "t")
    prep = tabular.Preprocessing.fit(table, task)
    net = gd.Network.from_sizes([3, 8, prep.n_outputs], activation="tanh",
                                output_activation="softmax" if task == "classify" else "identity",
                                loss="cross_entropy" if task == "classify" else "mse",
                                dtype="float64", seed=0)
    expected = net.predict(prep.inputs(X))
    if task == "regress":
        expected = prep.decode(expected)
    np.testing.assert_allclose(prep.folded(net).predict(X), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("y, task, classes", [
    (np.array(["b", "a", "b"]), "classify", ["a", "b"]),
    (np.array(["10", "9", "10"]), "classify", ["9", "10"]),  # numeric order, kept as text
    (np.array([3, 1, 3]), "classify", [1, 3]),
    (np.array([True, False, True]), "classify", [False, True]),
    (np.array([0.5, 1.5, 2.0]), "regress", None),
    (np.arange(30), "regress", None),  # more than 20 distinct integers
    (np.array(["1.5", "2", "3"]), "regress", None),
])
def test_task_auto(y, task, classes):
    table = tabular.Table(np.arange(len(y), dtype=float)[:, None], y, ["x"], "t")
    prep = tabular.Preprocessing.fit(table)
    assert prep.task == task and prep.classes == classes
    if classes is not None:
        assert [type(c) for c in prep.classes] == [type(c) for c in classes]
        np.testing.assert_array_equal(prep.decode(np.eye(len(classes))[prep.encode(y)]), y)


def test_python_m_gdcore_dispatches_commands(files, capsys):
    from gdcore.__main__ import main
    capsys.readouterr()
    assert main(["info", "cls.npz"]) == 0
    assert "gdcore network 2-64-64-2" in capsys.readouterr().out
    assert main(["predict", "missing.npz", "ok.csv"]) == 1
    one_error_line(capsys.readouterr().err)


def test_plot_works_or_says_what_is_missing(files, capsys):
    have_plot = importlib.util.find_spec("matplotlib") is not None and \
        importlib.util.find_spec("gdcore.plot") is not None
    for argv, png in ((["train", "ok.csv", "--target", "label", "--epochs", "2", "--out",
                        "p.npz"], "curve.png"), (["lr-find", "ok.csv", "--target", "label"],
                                                 "lr.png")):
        status = cli.main(argv + ["--plot", png])
        out, err = capsys.readouterr()
        if have_plot:
            assert status == 0 and os.path.getsize(png) > 0, err
        else:  # refused before any work
            assert status == 1 and "--plot" in one_error_line(err) and out == ""
            assert not os.path.exists("p.npz")


def _raw_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows


@pytest.mark.parametrize("model, data", [("cls.npz", "ok.csv"), ("reg.npz", "reg.csv")])
def test_onnx_export_takes_raw_features(files, capsys, model, data):
    have_onnx = importlib.util.find_spec("onnx") is not None and hasattr(gd.Network, "to_onnx")
    status = cli.main(["export", model, "--onnx", "m.onnx"])
    out, err = capsys.readouterr()
    if not have_onnx:
        assert status == 1 and "onnx" in one_error_line(err) and not os.path.exists("m.onnx")
        return
    assert status == 0, err
    if model == "cls.npz":
        assert "gives class probabilities in the order no, yes" in out
    ort = pytest.importorskip("onnxruntime")
    rows = _raw_rows(data)
    X = np.array([[float(row["a"]), float(row["b"])] for row in rows], dtype=np.float32)
    session = ort.InferenceSession("m.onnx", providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: X})[0]
    network = gd.Network.load(model)
    prep = tabular.Preprocessing.from_metadata(io.read_metadata(model)["preprocessing"],
                                               network, model)
    expected = network.predict(prep.inputs(X.astype(np.float64)))
    if model == "reg.npz":
        expected = prep.decode(expected)
    np.testing.assert_allclose(onnx_out, expected, rtol=1e-4, atol=1e-4)

"""Tables for the command line: reading CSV and ``.npz`` data, and the preprocessing a model
file keeps with the network (feature standardization, class labels, target scaling).

A CSV file has a header row; every column but the target holds numbers; the target may hold
strings (class labels) or numbers. An ``.npz`` file holds ``X`` (n_samples, n_features) and the
targets ``y`` (n_samples,) or (n_samples, n_outputs); it is read with ``allow_pickle=False``.

:class:`Preprocessing` is what ``gdcore train`` learns from the training rows besides the
weights. It is stored as plain JSON in the model file's metadata (``gdcore.io`` ``metadata=``,
key ``"preprocessing"``): feature names, per-feature mean and scale, the class labels (strings
or numbers, as read), or for regression the targets' mean and scale. Every problem with the
data or with that metadata is a :class:`DataError` (a ValueError) whose message is one line.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import zipfile
from typing import Any, List, Optional, Sequence

import numpy as np

#: A numeric target with integral values and at most this many distinct values is a class
#: label for ``--task auto``; anything else numeric is a regression target.
MAX_AUTO_CLASSES = 20
#: The ``"preprocessing"`` metadata layout this gdcore writes and reads.
FORMAT = "gdcore-tabular"
FORMAT_VERSION = 1
TASKS = ("classify", "regress")

_ZIP_MAGIC = b"PK\x03\x04"


class DataError(ValueError):
    """Data or model metadata the command line cannot use; the message is one line."""


@dataclasses.dataclass
class Table:
    """Rows read from a file: numeric features and, when the file has them, raw targets.

    Attributes
    ----------
    X : ndarray (n_samples, n_features), float64, finite
    y : ndarray or None
        Targets as read: (n_samples,) of str for a CSV column (stripped), the ``.npz`` array
        (numbers or str, (n_samples,) or (n_samples, n_outputs)) for an ``.npz`` file.
    features : list of str
        Column names of X (``x0, x1, ...`` for an ``.npz`` file).
    target : str or None
        Name of the target column (the ``.npz`` member's name).
    """

    X: np.ndarray
    y: Optional[np.ndarray]
    features: List[str]
    target: Optional[str]


# --- reading ---------------------------------------------------------------------------------

def _kind(path: str) -> str:
    """``"npz"``, ``"csv"``; raises DataError for a missing, unreadable or .npy file."""
    if not os.path.exists(path):
        raise DataError(f"no such file: {path!r}")
    if os.path.isdir(path):
        raise DataError(f"{path!r} is a folder, not a data file")
    try:
        with open(path, "rb") as f:
            head = f.read(len(np.lib.format.MAGIC_PREFIX))
    except OSError as exc:
        raise DataError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    if head == np.lib.format.MAGIC_PREFIX:
        raise DataError(f"{path!r} is a single .npy array; give an .npz file with X and y, "
                        f"or a CSV file")
    if head.startswith(_ZIP_MAGIC) or path.lower().endswith(".npz"):
        return "npz"
    return "csv"


def read_table(path: Any, target: Optional[str] = None, features: Optional[Sequence[str]] = None,
               require_target: bool = True) -> Table:
    """Read a CSV or ``.npz`` file.

    Parameters
    ----------
    path : str or os.PathLike
    target : str or None
        The target column of a CSV file; for an ``.npz`` file the member holding the
        targets (None: ``"y"``).
    features : sequence of str or None
        The feature columns, in this order (a model's); None takes every column but the
        target (CSV) or all of ``X`` (``.npz``, whose width must then equal
        ``len(features)`` when given).
    require_target : bool
        Refuse a file without the target; otherwise ``Table.y`` is None when it is absent.
    """
    path = os.fsdecode(os.fspath(path))
    if _kind(path) == "npz":
        return _read_npz(path, target or "y", features, require_target)
    if target is None and require_target:
        raise DataError(f"{path!r} is a CSV file: name its target column (--target COLUMN)")
    return _read_csv(path, target, features, require_target)


def _read_csv(path: str, target: Optional[str], features: Optional[Sequence[str]],
              require_target: bool) -> Table:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(number, [cell.strip() for cell in row])
                    for number, row in enumerate(csv.reader(f), start=1)
                    if any(cell.strip() for cell in row)]  # blank lines are skipped
    except UnicodeDecodeError:
        raise DataError(f"{path!r} is not a UTF-8 text (CSV) file") from None
    except csv.Error as exc:
        raise DataError(f"{path!r} is not a valid CSV file: {exc}") from None
    except OSError as exc:
        raise DataError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    if not rows:
        raise DataError(f"{path!r} is empty (a CSV file needs a header row and data rows)")
    _, header = rows[0]
    rows = rows[1:]
    if any(not name for name in header):
        raise DataError(f"{path!r}: the header row has an empty column name")
    seen = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path!r}: column {name!r} appears twice in the header")
        seen.add(name)
    if not rows:
        raise DataError(f"{path!r} has a header but no data rows")
    for number, row in rows:
        if len(row) != len(header):
            raise DataError(f"{path!r} line {number} has {len(row)} fields, the header "
                            f"has {len(header)}")

    def column(name: str, role: str) -> int:
        if name not in header:
            shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
            raise DataError(f"{path!r} has no {role} column {name!r} (columns: {shown})")
        return header.index(name)

    has_target = target is not None and (require_target or target in header)
    target_index = column(target, "target") if has_target else None
    if features is None:
        features = [name for i, name in enumerate(header) if i != target_index]
        if not features:
            raise DataError(f"{path!r} has no feature columns besides the target {target!r}")
    X = np.empty((len(rows), len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        i = column(name, "feature")
        for k, (number, row) in enumerate(rows):
            X[k, j] = _number(row[i], path, name, number)
    y = None
    if target_index is not None:
        y = np.array([row[target_index] for _, row in rows], dtype=str)
        for (number, _), value in zip(rows, y):
            if not value:
                raise DataError(f"{path!r} line {number}: the target {target!r} is empty "
                                f"(missing values are not supported)")
    return Table(X, y, list(features), target if target_index is not None else None)


def _number(cell: str, path: str, name: str, line: int) -> float:
    if not cell:
        raise DataError(f"{path!r} line {line}: feature {name!r} is empty (missing values are "
                        f"not supported)")
    try:
        value = float(cell)
    except ValueError:
        raise DataError(f"{path!r} line {line}: feature {name!r} is not numeric ({cell!r}); "
                        f"features must be numbers") from None
    if not math.isfinite(value):
        raise DataError(f"{path!r} line {line}: feature {name!r} is {cell!r}; features must "
                        f"be finite numbers")
    return value


def _read_npz(path: str, target: str, features: Optional[Sequence[str]],
              require_target: bool) -> Table:
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            if "X" not in names:
                raise DataError(f"{path!r} holds no array X (members: "
                                f"{', '.join(sorted(names)) or 'none'})")
            X = npz["X"]
            y = npz[target] if target in names else None
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        what = "holds Python objects (pickled data), which are not read" \
            if "allow_pickle" in str(exc) else f"{type(exc).__name__}: {exc}"
        raise DataError(f"{path!r} is not a readable .npz file: {what}") from None
    if y is None and require_target:
        raise DataError(f"{path!r} holds no target array {target!r} (members: "
                        f"{', '.join(sorted(names))})")
    if X.ndim != 2 or X.dtype.kind not in "biuf" or X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{path!r}: X must be a non-empty 2-D array of numbers, got "
                        f"{X.dtype} of shape {X.shape}")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        row, col = np.argwhere(~np.isfinite(X))[0]
        raise DataError(f"{path!r}: X[{row}, {col}] is {X[row, col]}; features must be finite")
    if y is not None:
        if y.dtype.kind == "S":
            y = np.char.decode(y, "utf-8", errors="replace")
        if y.dtype.kind not in "biufU" or y.ndim not in (1, 2) or len(y) != len(X):
            raise DataError(f"{path!r}: {target} must be numbers or strings of shape "
                            f"({len(X)},) or ({len(X)}, n_outputs), got {y.dtype} of "
                            f"shape {y.shape}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise DataError(f"{path!r}: {target} holds values that are not finite")
        if y.dtype.kind == "U" and y.ndim != 1:
            raise DataError(f"{path!r}: string labels {target} must be one column, got shape "
                            f"{y.shape}")
    names = [f"x{i}" for i in range(X.shape[1])]
    if features is not None and len(features) != X.shape[1]:
        raise DataError(f"{path!r}: X has {X.shape[1]} columns, the model takes "
                        f"{len(features)} features")
    return Table(X, y, list(features) if features is not None else names,
                 target if y is not None else None)


# --- preprocessing ---------------------------------------------------------------------------

def _label(value: Any) -> Any:
    """A class label as JSON keeps it: str, int, float or bool."""
    return value.item() if isinstance(value, np.generic) else value


def _numeric(y: np.ndarray) -> Optional[np.ndarray]:
    """``y`` as float64 when every value is a number (strings are parsed), else None."""
    if y.dtype.kind in "biuf":
        return y.astype(np.float64)
    try:
        values = np.array([float(s) for s in y.ravel()], dtype=np.float64).reshape(y.shape)
    except ValueError:
        return None
    return values if np.isfinite(values).all() else None


def infer_task(y: np.ndarray) -> str:
    """``--task auto``: ``"classify"`` for strings, booleans, and integral numbers with at
    most :data:`MAX_AUTO_CLASSES` distinct values (one column); ``"regress"`` otherwise."""
    if y.dtype.kind == "b":
        return "classify"
    numbers = _numeric(y)
    if numbers is None:
        return "classify"
    if y.ndim == 1 and (numbers == np.round(numbers)).all() \
            and len(np.unique(numbers)) <= MAX_AUTO_CLASSES:
        return "classify"
    return "regress"


def _sorted_labels(y: np.ndarray) -> list:
    """The distinct labels of ``y``, numbers in numeric order (also when read as text)."""
    labels = np.unique(y)
    if y.dtype.kind == "U":
        numbers = _numeric(labels)
        if numbers is not None:
            labels = labels[np.argsort(numbers, kind="stable")]
    return [_label(value) for value in labels]


def _finite_list(values: np.ndarray) -> list:
    return [float(x) for x in np.asarray(values, dtype=np.float64).ravel()]


@dataclasses.dataclass
class Preprocessing:
    """What turns a table's rows into the network's inputs and targets, and outputs back.

    Attributes
    ----------
    task : {"classify", "regress"}
    features : list of str
        Feature columns, in the network's input order.
    targets : list of str
        Target column names (one for classification).
    mean, scale : list of float or None
        Feature standardization ``(x - mean) / scale`` (None: features are used as read).
    classes : list or None
        Classification: the labels in output order (str, int, float or bool as read).
    target_mean, target_scale : list of float or None
        Regression: the network learns ``(y - target_mean) / target_scale``.
    """

    task: str
    features: List[str]
    targets: List[str]
    mean: Optional[List[float]] = None
    scale: Optional[List[float]] = None
    classes: Optional[list] = None
    target_mean: Optional[List[float]] = None
    target_scale: Optional[List[float]] = None

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "classify" else len(self.targets)

    @classmethod
    def fit(cls, table: Table, task: str = "auto", standardize: bool = True) -> "Preprocessing":
        """Learn the preprocessing from the training rows of ``table`` (which has targets)."""
        y, name = table.y, table.target
        if task == "auto":
            task = infer_task(y)
        if task not in TASKS:
            raise DataError(f"task must be 'auto' or one of {TASKS}, got {task!r}")
        mean = scale = None
        if standardize:
            mean = table.X.mean(axis=0)
            scale = table.X.std(axis=0)
            scale[scale == 0] = 1.0  # a constant feature is only centred
            mean, scale = _finite_list(mean), _finite_list(scale)
        if task == "classify":
            if y.ndim != 1:
                raise DataError(f"classification needs one target column, {name!r} has "
                                f"{y.shape[1]}")
            classes = _sorted_labels(y)
            if len(classes) < 2:
                raise DataError(f"the target {name!r} holds one class only ({classes[0]!r}); "
                                f"classification needs at least two")
            return cls(task, list(table.features), [name], mean, scale, classes=classes)
        values = _numeric(y)
        if values is None:
            raise DataError(f"the target {name!r} is not numeric; regression needs numbers "
                            f"(use --task classify for labels)")
        values = values.reshape(len(values), -1)
        target_mean, target_scale = values.mean(axis=0), values.std(axis=0)
        target_scale[target_scale == 0] = 1.0
        targets = [name] if values.shape[1] == 1 else [f"{name}{i}" for i in
                                                       range(values.shape[1])]
        return cls(task, list(table.features), targets, mean, scale,
                   target_mean=_finite_list(target_mean), target_scale=_finite_list(target_scale))

    # --- arrays --------------------------------------------------------------------------
    def inputs(self, X: np.ndarray) -> np.ndarray:
        """The network's inputs for raw features ``X`` (n_samples, n_features)."""
        if self.mean is None:
            return np.asarray(X, dtype=np.float64)
        return (X - np.array(self.mean)) / np.array(self.scale)

    def encode(self, y: np.ndarray) -> np.ndarray:
        """The network's targets for raw targets ``y``: class indices (int64) or scaled
        values (n_samples, n_outputs). Raises DataError for a label it does not know."""
        if self.task == "classify":
            index = {str(label): i for i, label in enumerate(self.classes)}
            try:
                return np.array([index[str(_label(value))] for value in y], dtype=np.int64)
            except KeyError as exc:
                raise DataError(f"label {exc.args[0]!r} of {self.targets[0]!r} is not one "
                                f"of the model's classes") from None
        values = _numeric(y)
        if values is None:
            raise DataError(f"the target {self.targets[0]!r} is not numeric")
        values = values.reshape(len(values), -1)
        return (values - np.array(self.target_mean)) / np.array(self.target_scale)

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        """Predictions from the network's outputs: labels (object array (n,)) for
        classification, values on the targets' scale (n_samples, n_outputs) for regression."""
        if self.task == "classify":
            labels = np.empty(len(outputs), dtype=object)
            labels[:] = [self.classes[k] for k in np.argmax(outputs, axis=1)]
            return labels
        return outputs.astype(np.float64) * np.array(self.target_scale) + \
            np.array(self.target_mean)

    def score(self, outputs: np.ndarray, y: np.ndarray) -> tuple:
        """``("accuracy", fraction)`` or ``("R²", r2)`` of the outputs against raw targets ``y``
        (unknown labels count as wrong)."""
        if self.task == "classify":
            predicted = [str(label) for label in self.decode(outputs)]
            truth = [str(_label(value)) for value in y]
            return "accuracy", float(np.mean([p == t for p, t in zip(predicted, truth)]))
        from .metrics import r2
        target = _numeric(y)
        if target is None:
            raise DataError(f"the target {self.targets[0]!r} is not numeric")
        return "R²", r2(self.decode(outputs), target.reshape(len(target), -1), None, "mse")

    def folded(self, network: Any) -> Any:
        """A copy of ``network`` that takes raw features and, for regression, outputs values
        on the targets' scale: the standardization folded into the first layer
        (``W / scale[:, None]``, ``b - (mean / scale) @ W``) and the target scaling into the
        last (identity) layer. Computed in float64, then cast to the network's dtype."""
        net = network.copy()
        if self.mean is not None:
            first = net.layers[0]
            W = first.weights.astype(np.float64)
            mean, scale = np.array(self.mean), np.array(self.scale)
            first.bias = first.bias - (mean / scale) @ W
            first.weights = W / scale[:, None]
        if self.task == "regress":
            last = net.layers[-1]
            if last.activation != "identity":
                raise DataError(f"cannot fold the target scaling into a "
                                f"{last.activation!r} output layer")
            scale, mean = np.array(self.target_scale), np.array(self.target_mean)
            last.bias = last.bias.astype(np.float64) * scale + mean
            last.weights = last.weights.astype(np.float64) * scale
        return net

    # --- metadata ------------------------------------------------------------------------
    def to_metadata(self) -> dict:
        """The JSON object stored as the model file's ``metadata["preprocessing"]``."""
        return {"format": FORMAT, "version": FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_metadata(cls, entry: Any, network: Any, source: str) -> "Preprocessing":
        """Read :meth:`to_metadata`'s object back, checked against ``network``; DataError
        naming ``source`` for anything missing or inconsistent."""
        def bad(why: str) -> DataError:
            return DataError(f"{source!r} has damaged preprocessing metadata: {why}")

        if entry is None:
            raise DataError(f"{source!r} holds no preprocessing metadata (it was not written "
                            f"by gdcore train)")
        if not isinstance(entry, dict) or entry.get("format") != FORMAT:
            raise bad("not a gdcore-tabular entry")
        if entry.get("version") != FORMAT_VERSION:
            raise bad(f"version {entry.get('version')!r} (this gdcore reads {FORMAT_VERSION})")
        fields = {f.name: entry.get(f.name) for f in dataclasses.fields(cls)}
        task = fields["task"]
        if task not in TASKS:
            raise bad(f"task {task!r}")

        def strings(key: str) -> None:
            value = fields[key]
            if not isinstance(value, list) or not value \
                    or not all(isinstance(s, str) for s in value):
                raise bad(f"{key} is not a list of names")

        def numbers(key: str, length: int, positive: bool = False) -> None:
            value = fields[key]
            if not isinstance(value, list) or len(value) != length or not all(
                    type(x) in (int, float) and math.isfinite(x) and (x > 0 or not positive)
                    for x in value):
                raise bad(f"{key} is not a list of {length} finite"
                          f"{' positive' if positive else ''} numbers")

        strings("features")
        strings("targets")
        n_features = len(fields["features"])
        if n_features != network.n_inputs:
            raise bad(f"{n_features} features for a network of {network.n_inputs} inputs")
        if (fields["mean"] is None) != (fields["scale"] is None):
            raise bad("mean and scale must be given together")
        if fields["mean"] is not None:
            numbers("mean", n_features)
            numbers("scale", n_features, positive=True)
        if task == "classify":
            classes = fields["classes"]
            if not isinstance(classes, list) or len(classes) != network.n_outputs or not all(
                    type(c) in (str, int, float, bool) for c in classes) \
                    or len({str(c) for c in classes}) != len(classes):
                raise bad(f"classes is not a list of {network.n_outputs} distinct labels")
            fields["target_mean"] = fields["target_scale"] = None
        else:
            numbers("target_mean", network.n_outputs)
            numbers("target_scale", network.n_outputs, positive=True)
            if len(fields["targets"]) != network.n_outputs:
                raise bad(f"{len(fields['targets'])} target names for "
                          f"{network.n_outputs} outputs")
            fields["classes"] = None
        return cls(**fields)

"""The ``gdcore`` command line: demo, train, predict, lr-find, info, export.

``gdcore train DATA --target COLUMN`` reads a CSV file (header row, numeric features; the
target may hold strings) or an ``.npz`` file (``X``, ``y``), standardizes the features, trains
a dense network and writes one model file: the network (``Network.save``'s ``.npz``) with the
preprocessing (:class:`gdcore.tabular.Preprocessing`: feature names, mean and scale, class
labels or the target's scale) and a training summary in its JSON metadata. ``gdcore predict``
reads that file back and prints the original labels. See ``gdcore COMMAND --help``.

Bad input (a missing file, an unknown column, a non-numeric feature, ``--epochs 0``, a damaged
model file) prints one line, ``gdcore: error: <what>``, on stderr and exits with status 2 for
a wrong command line and 1 for anything else; never a traceback (``GDCORE_DEBUG=1`` shows it).
"""
from __future__ import annotations

import argparse
import csv
import io as _io
import os
import sys
import warnings
from typing import Any, List, Optional, Sequence

import numpy as np

from . import tabular
from .reference.codes import ACTIVATIONS

PROG = "gdcore"
COMMANDS = ("demo", "train", "predict", "lr-find", "info", "export")
#: The metadata key of the training summary (``"preprocessing"`` holds the Preprocessing).
SUMMARY_KEY = "training"
PREPROCESSING_KEY = "preprocessing"


class UsageError(Exception):
    """A command line argparse refuses (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports an error as one line (no usage block) through ``main``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


# --- argument types (argparse reports their messages as "argument --x: <message>") ----------

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _rate(text: str) -> Any:
    """``--lr``: a positive number or ``auto`` (the range test picks it)."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number or 'auto', got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _hidden(text: str) -> List[int]:
    """``--hidden 64,64``: the hidden layer widths (an empty string: no hidden layer)."""
    if not text.strip():
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated layer widths such as "
                                         f"64,64, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer widths must be >= 1, got {text!r}")
    return sizes


def _optimizer_names() -> List[str]:
    from .optimizers import _BY_NAME
    return sorted(_BY_NAME)


# --- the parser --------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Train dense networks by gradient descent on "
                     "tables (CSV or .npz), predict with them, inspect and export them.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"gdcore {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser("demo", help="train on the spirals problem and report "
                               "(python -m gdcore)", description="Train a 2-64-64-3 network on "
                               "the spirals problem and report.")
    from .__main__ import add_arguments
    add_arguments(demo)

    # Options shared by train and lr-find: the data and the network they build.
    model = _Parser(add_help=False)
    model.add_argument("data", metavar="DATA", help="CSV file with a header, or .npz with X "
                       "and y")
    model.add_argument("--target", metavar="COLUMN", help="target column of a CSV file "
                       "(required for CSV; for .npz the member holding the targets, default y)")
    model.add_argument("--hidden", type=_hidden, default=[64, 64], metavar="W1,W2",
                       help="hidden layer widths (default 64,64)")
    model.add_argument("--activation", default="relu",
                       choices=[a for a in ACTIVATIONS if a != "softmax"],
                       help="hidden activation (default relu)")
    model.add_argument("--task", default="auto", choices=("auto",) + tabular.TASKS,
                       help="auto (default): classify strings and integer labels with at most "
                       f"{tabular.MAX_AUTO_CLASSES} values, else regress")
    model.add_argument("--optimizer", default="adam", choices=_optimizer_names(),
                       help="update rule (default adam)")
    model.add_argument("--batch-size", type=_positive_int, default=32, metavar="N",
                       help="samples per step (default 32)")
    model.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                       help="the network's dtype (default float32)")
    model.add_argument("--no-standardize", dest="standardize", action="store_false",
                       help="use the features as read (default: standardize them)")
    model.add_argument("--seed", type=_seed, default=0, help="seed of weights, shuffling and "
                       "the validation split (default 0)")

    train = commands.add_parser(
        "train", parents=[model], help="train a network and write a model file",
        description="Train a network on DATA and write the model file (weights, "
        "preprocessing and the training summary).")
    train.add_argument("--lr", type=_rate, default=None,
                       help="learning rate, or 'auto' for the range test (default: the "
                       "optimizer's, 0.001 for adam)")
    train.add_argument("--epochs", type=_positive_int, default=100, metavar="N",
                       help="epochs (default 100)")
    train.add_argument("--validation-split", type=_fraction, default=0.0, metavar="F",
                       help="fraction of the rows held out (at random) for validation "
                       "(default 0)")
    train.add_argument("--out", default="model.npz", metavar="MODEL",
                       help="model file to write (default model.npz)")
    train.add_argument("--plot", metavar="PNG", help="save the loss curve (needs matplotlib)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (shown "
                       "only on a terminal anyway)")

    predict = commands.add_parser(
        "predict", help="predict with a model file",
        description="Predict the target of every row of DATA (CSV with the model's feature "
        "columns, or .npz with X) and print them as CSV, with the original labels.")
    predict.add_argument("model", metavar="MODEL", help="model file written by gdcore train")
    predict.add_argument("data", metavar="DATA", help="CSV file or .npz")
    predict.add_argument("--out", metavar="CSV", help="write the predictions here (default: "
                         "standard output)")
    predict.add_argument("--proba", action="store_true", help="add each class's probability")

    lr_find = commands.add_parser(
        "lr-find", parents=[model], help="learning-rate range test",
        description="Run the learning-rate range test (gd.find_lr) with the network train "
        "would build, and print the suggested rate.")
    lr_find.add_argument("--plot", metavar="PNG", help="save the loss-versus-rate curve "
                         "(needs matplotlib)")

    info = commands.add_parser("info", help="describe a model file",
                               description="Print the architecture, dtype, preprocessing and "
                               "training summary of a model file.")
    info.add_argument("model", metavar="MODEL")

    export = commands.add_parser(
        "export", help="export a model file (ONNX)",
        description="Export the network with its standardization folded into the first layer "
        "(the exported model takes the raw features).")
    export.add_argument("model", metavar="MODEL")
    export.add_argument("--onnx", required=True, metavar="OUT", help="ONNX file to write "
                        "(needs onnx)")
    return parser


# --- shared pieces ---------------------------------------------------------------------------

def _optional(module: str, name: str, feature: str, package: str, extra: str) -> Any:
    """``module.name`` from an optional part of gdcore, or a one-line error saying what to
    install (``package``, in the extra ``gdcore[extra]``)."""
    import importlib
    import importlib.util
    if importlib.util.find_spec(module) is None and module.startswith("gdcore."):
        raise tabular.DataError(f"{feature} is not available in this gdcore ({module} is "
                                f"missing)")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        raise tabular.DataError(f"{feature} needs {package}: pip install "
                                f"'gdcore[{extra}]'") from None
    except AttributeError:
        raise tabular.DataError(f"{feature} is not available in this gdcore ({module}.{name} "
                                f"is missing)") from None


def _plotter(name: str) -> Any:
    """``gdcore.plot.<name>``, drawing off screen (checked before any work)."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # a command line draws into files only
    return _optional("gdcore.plot", name, "--plot", "matplotlib", "plot")


def _save_plot(function: Any, value: Any, path: str) -> None:
    axes = function(value)
    figure = axes.figure if hasattr(axes, "figure") else axes
    try:
        figure.savefig(path)
    finally:
        import matplotlib.pyplot as plt
        plt.close(figure)
    print(f"plot: {path}")


def _network_for(prep: tabular.Preprocessing, args: argparse.Namespace) -> Any:
    from .network import Network
    classify = prep.task == "classify"
    sizes = [len(prep.features), *args.hidden, prep.n_outputs]
    return Network.from_sizes(sizes, activation=args.activation,
                              output_activation="softmax" if classify else "identity",
                              loss="cross_entropy" if classify else "mse",
                              dtype=args.dtype, seed=args.seed)


def _describe_task(prep: tabular.Preprocessing) -> str:
    if prep.task == "classify":
        shown = ", ".join(map(str, prep.classes[:10])) + (", ..." if len(prep.classes) > 10
                                                          else "")
        return f"classify {prep.targets[0]!r} into {len(prep.classes)} classes: {shown}"
    return f"regress {', '.join(map(repr, prep.targets))}"


def _percent_or_number(metric: str, value: float) -> str:
    return f"{value:.1%}" if metric == "accuracy" else f"{value:.4f}"


def _summary_lines(summary: dict) -> List[str]:
    """The training summary (as stored in the model file) in a few lines."""
    from .training import STOP_REASONS
    reason = summary.get("stop_reason", "")
    lines = [f"stopped: {reason} ({STOP_REASONS.get(reason, 'unknown')}) after "
             f"{summary.get('epochs')} epochs"]
    loss = f"loss: {summary.get('first_loss', float('nan')):.4g} -> {summary.get('loss'):.4g}"
    if summary.get("val_loss") is not None:
        loss += f" (validation {summary['val_loss']:.4g})"
    lines.append(loss)
    metric = summary.get("metric", "")
    score = f"training {metric}: {_percent_or_number(metric, summary.get('score'))}"
    if summary.get("val_score") is not None:
        score += f" (validation {_percent_or_number(metric, summary['val_score'])})"
    lines.append(score)
    found = (f" (lr auto: the range test chose {summary['lr_found']:.3g})"
             if summary.get("lr_found") is not None else "")
    lines.append(f"time: {summary.get('time'):.2f} s on the {summary.get('backend')} engine; "
                 f"{summary.get('optimizer')} lr {summary.get('lr'):.3g}{found}, batch "
                 f"{summary.get('batch_size')}, {summary.get('n_train')} training rows"
                 + (f", {summary['n_validation']} validation rows"
                    if summary.get("n_validation") else ""))
    return lines


def _split(table: tabular.Table, fraction: float, seed: int) -> tuple:
    """(training table, validation table or None): a seeded random ``fraction`` of the rows
    held out (at least one row when ``fraction > 0``)."""
    n = len(table.X)
    if fraction == 0.0:
        return table, None
    n_val = max(1, int(round(fraction * n)))
    if n_val >= n:
        raise tabular.DataError(f"--validation-split {fraction} leaves no training rows "
                                f"({n} rows in all)")
    order = np.random.default_rng(seed).permutation(n)

    def rows(index: np.ndarray) -> tabular.Table:
        return tabular.Table(table.X[index], table.y[index], table.features, table.target)

    return rows(order[:n - n_val]), rows(order[n - n_val:])


def _prepared(args: argparse.Namespace) -> tuple:
    """(table, training table, validation table, Preprocessing) for train and lr-find."""
    table = tabular.read_table(args.data, target=args.target, require_target=True)
    train, val = _split(table, getattr(args, "validation_split", 0.0), args.seed)
    return table, train, val, tabular.Preprocessing.fit(train, args.task, args.standardize)


def _progress_wanted(args: argparse.Namespace) -> bool:
    """A progress bar only on a terminal, and only when tqdm is installed."""
    import importlib.util
    return not args.no_progress and sys.stderr.isatty() \
        and importlib.util.find_spec("tqdm") is not None


def _load_model(path: str) -> tuple:
    """(network, metadata dict) of a model file."""
    from .io import read_metadata
    from .network import Network
    network = Network.load(path)
    return network, read_metadata(path)


# --- the commands --------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from .__main__ import run
    return run(args)


def cmd_train(args: argparse.Namespace) -> int:
    from .optimizers import get_optimizer
    plot = _plotter("plot_history") if args.plot else None
    for path in filter(None, (args.out, args.plot)):  # fail before training, not after
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise tabular.DataError(f"cannot write {path!r}: the folder {folder!r} does not "
                                    f"exist")
    table, train, val, prep = _prepared(args)
    network = _network_for(prep, args)
    optimizer = get_optimizer(args.optimizer)
    if args.lr is not None:
        optimizer = type(optimizer)(lr=args.lr)
    X, Y = prep.inputs(train.X), prep.encode(train.y)
    validation = None if val is None else (prep.inputs(val.X), prep.encode(val.y))
    print(f"{args.data}: {len(table.X)} rows, {len(prep.features)} features; "
          f"{_describe_task(prep)}")
    print(f"network {'-'.join(map(str, network.sizes))} ({args.activation}, "
          f"{network.loss_name}, {network.dtype}); {optimizer.name}, {args.epochs} epochs, "
          f"batch {args.batch_size}")
    history = network.fit(X, Y, optimizer=optimizer, epochs=args.epochs,
                          batch_size=args.batch_size, validation_data=validation,
                          seed=args.seed, progress=_progress_wanted(args))
    metric, score = prep.score(network.predict(X), train.y)
    val_score = None if val is None else prep.score(network.predict(validation[0]), val.y)[1]
    from . import __version__
    summary = {
        "data": os.path.basename(args.data), "n_train": len(train.X),
        "n_validation": 0 if val is None else len(val.X), "optimizer": optimizer.name,
        "lr": float(history.lr[0]) if history.lr else None, "lr_found": history.lr_found,
        "epochs": history.epochs, "batch_size": args.batch_size, "seed": args.seed,
        "stop_reason": history.stop_reason, "first_loss": history.loss[0],
        "loss": history.loss[-1], "val_loss": history.val_loss[-1] if history.val_loss else None,
        "metric": metric, "score": score, "val_score": val_score, "time": history.time,
        "backend": history.backend, "gdcore_version": __version__,
    }
    network.save(args.out, metadata={PREPROCESSING_KEY: prep.to_metadata(),
                                     SUMMARY_KEY: summary})
    for line in _summary_lines(summary):
        print(line)
    print(f"model: {args.out}")
    if plot is not None:
        _save_plot(plot, history, args.plot)
    return 0


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.10g}"
    return str(value)


def cmd_predict(args: argparse.Namespace) -> int:
    network, metadata = _load_model(args.model)
    prep = tabular.Preprocessing.from_metadata(metadata.get(PREPROCESSING_KEY), network,
                                               args.model)
    if args.proba and prep.task != "classify":
        raise tabular.DataError(f"--proba needs a classification model; {args.model!r} "
                                f"regresses {prep.targets[0]!r}")
    table = tabular.read_table(args.data, target=prep.targets[0], features=prep.features,
                               require_target=False)
    outputs = network.predict(prep.inputs(table.X))
    predictions = prep.decode(outputs)
    header = list(prep.targets)
    rows: List[list] = []
    if prep.task == "classify":
        if args.proba:
            header += [f"proba_{label}" for label in prep.classes]
            rows = [[label, *(f"{p:.6g}" for p in row)] for label, row in
                    zip(predictions, outputs.astype(np.float64))]
        else:
            rows = [[label] for label in predictions]
    else:
        rows = [[_cell(x) for x in row] for row in predictions]
    text = _io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    report = f"{len(rows)} predictions"
    if table.y is not None:  # the file has the target column: say how well we did
        try:
            metric, score = prep.score(outputs, table.y)
            report += f"; {metric} {_percent_or_number(metric, score)} against {table.target!r}"
        except tabular.DataError as exc:  # e.g. text in a regression target: no score
            report += f"; no score ({exc})"
    if args.out is None:
        sys.stdout.write(text.getvalue())
        sys.stdout.flush()
        print(report, file=sys.stderr)
    else:
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            f.write(text.getvalue())
        print(f"{report}: {args.out}")
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from .lr_finder import find_lr
    plot = _plotter("plot_lr_finder") if args.plot else None
    table, train, _, prep = _prepared(args)
    network = _network_for(prep, args)
    print(f"{args.data}: {len(table.X)} rows, {len(prep.features)} features; "
          f"{_describe_task(prep)}")
    result = find_lr(network, prep.inputs(train.X), prep.encode(train.y),
                     optimizer=args.optimizer, batch_size=args.batch_size, seed=args.seed)
    print(f"range test: {args.optimizer}, network {'-'.join(map(str, network.sizes))}, batch "
          f"{args.batch_size}, {len(result.lrs)} rates from {result.lrs[0]:.3g} to "
          f"{result.lrs[-1]:.3g}" if len(result.lrs) else "range test: no step could be "
          "measured")
    print(f"suggested learning rate: {result.suggestion:.3g}")
    if plot is not None:
        _save_plot(plot, result, args.plot)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    network, metadata = _load_model(args.model)
    n_params = sum(p.size for p in network.parameters())
    activations = ", ".join(layer.activation for layer in network.layers)
    print(f"{args.model}: gdcore network {'-'.join(map(str, network.sizes))}")
    print(f"layers: {len(network.layers)} ({activations}); loss {network.loss_name}; dtype "
          f"{network.dtype}; {n_params} parameters")
    entry = metadata.get(PREPROCESSING_KEY)
    if entry is None:
        print("preprocessing: none (not written by gdcore train)")
        return 0
    prep = tabular.Preprocessing.from_metadata(entry, network, args.model)
    print(f"task: {_describe_task(prep)}")
    shown = ", ".join(prep.features[:12]) + (", ..." if len(prep.features) > 12 else "")
    print(f"features ({len(prep.features)}, "
          f"{'standardized' if prep.mean is not None else 'as read'}): {shown}")
    summary = metadata.get(SUMMARY_KEY)
    if isinstance(summary, dict):
        try:
            lines = _summary_lines(summary)
        except (TypeError, ValueError, KeyError):
            raise tabular.DataError(f"{args.model!r} has a damaged training summary") from None
        print(f"trained on {summary.get('data')} with gdcore {summary.get('gdcore_version')}")
        for line in lines:
            print(line)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .network import Network
    network, metadata = _load_model(args.model)
    if not hasattr(Network, "to_onnx"):
        raise tabular.DataError("export --onnx is not available in this gdcore "
                                "(Network.to_onnx is missing)")
    entry = metadata.get(PREPROCESSING_KEY)
    prep = None if entry is None else tabular.Preprocessing.from_metadata(entry, network,
                                                                          args.model)
    exported = network if prep is None else prep.folded(network)
    try:
        exported.to_onnx(args.onnx)
    except ImportError:
        raise tabular.DataError("export --onnx needs onnx: pip install 'gdcore[onnx]'") from None
    if prep is None:
        what = "the network's outputs"
    elif prep.task == "classify":
        what = "class probabilities in the order " + ", ".join(map(str, prep.classes))
    else:
        what = "predictions of " + ", ".join(map(repr, prep.targets))
    print(f"{args.onnx}: input X (N, {network.n_inputs}) takes the raw features "
          f"({', '.join(prep.features) if prep else 'as the network'}); output Y "
          f"(N, {network.n_outputs}) gives {what}")
    return 0


HANDLERS = {"demo": cmd_demo, "train": cmd_train, "predict": cmd_predict,
            "lr-find": cmd_lr_find, "info": cmd_info, "export": cmd_export}


# --- errors as one line ----------------------------------------------------------------------

def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` as one line, without Python's decorations."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        message = f"{exc.strerror}: {exc.filename!r}"
    elif isinstance(exc, KeyError) and exc.args:
        message = str(exc.args[0])
    elif isinstance(exc, (tabular.DataError, ValueError, TypeError, OSError, ArithmeticError,
                          UsageError, MemoryError, RuntimeError)):
        message = str(exc) or type(exc).__name__
    else:
        message = f"{type(exc).__name__}: {exc}"
    return " ".join(message.split())


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                  line: Any = None) -> None:
    print(f"{PROG}: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    debug = os.environ.get("GDCORE_DEBUG", "") not in ("", "0")
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                args = build_parser().parse_args(argv)
            except SystemExit as exc:  # --help, --version
                return exc.code if isinstance(exc.code, int) else 0
            return HANDLERS[args.command](args)
    except UsageError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of standard output went away (| head)
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
    except Exception as exc:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover - the console script calls main itself
    sys.exit(main())

"""``python -m gdcore``: train a network on the three-class spirals problem and report.

Prints the loss curve's summary, the training accuracy, the backend that ran and the time.
``python -m gdcore train ...`` (any command of :mod:`gdcore.cli`) runs that command instead.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

import numpy as np

import gdcore as gd


def _sparkline(values: Sequence[float], width: int = 40) -> str:
    """The curve in one line of block characters (log scale)."""
    blocks = "▁▂▃▄▅▆▇█"
    vals = np.log(np.maximum(np.asarray(values, dtype=np.float64), 1e-12))
    idx = np.linspace(0, len(vals) - 1, min(width, len(vals))).round().astype(int)
    vals = vals[idx]
    span = vals.max() - vals.min()
    levels = np.zeros(len(vals), int) if span == 0 else ((vals - vals.min()) / span * 7).round()
    return "".join(blocks[int(k)] for k in levels)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options (``python -m gdcore`` and ``gdcore demo``)."""
    from .cli import _rate  # (the command line's own parser of --lr)
    parser.add_argument("--epochs", type=int, default=300, help="epochs (default 300)")
    parser.add_argument("--samples", type=int, default=600, help="samples (default 600)")
    parser.add_argument("--lr", type=_rate, default="auto",
                        help="Adam learning rate, or 'auto' for the range test (default)")
    parser.add_argument("--seed", type=int, default=0, help="seed for data and weights (0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Train on the spirals problem and print the report."""
    X, y = gd.datasets.spirals(n_samples=args.samples, n_classes=3, noise=0.2, seed=args.seed)
    net = gd.Network.from_sizes([2, 64, 64, 3], activation="relu", output_activation="softmax",
                                loss="cross_entropy", seed=args.seed)
    print(f"gdcore {gd.__version__} · backend {gd.backend()} · {net}")
    print(f"spirals: {X.shape[0]} samples, 3 classes; Adam(lr={args.lr!r}), batch 32, "
          f"{args.epochs} epochs")
    start = time.perf_counter()
    history = net.fit(X, y, optimizer=gd.Adam(lr=args.lr), epochs=args.epochs, batch_size=32,
                      seed=args.seed, progress=not args.no_progress, metrics=("accuracy",))
    elapsed = time.perf_counter() - start
    accuracy = float((net.predict(X).argmax(axis=1) == y).mean())

    losses = history.loss
    print(f"loss: first {losses[0]:.4f} -> last {losses[-1]:.4f} "
          f"(min {min(losses):.4f} at epoch {int(np.argmin(losses))}, "
          f"{history.epochs} epochs, stop: {history.stop_reason})")
    print(f"loss curve (log): {_sparkline(losses)}")
    print(f"training accuracy: {accuracy:.1%}")
    print(f"backend: {net.backend}  time: {elapsed:.2f} s "
          f"({elapsed / max(history.epochs, 1) * 1e3:.2f} ms/epoch)")
    print(history.summary())
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The demo; with a command of the ``gdcore`` command line first (``python -m gdcore
    train ...``), that command (see :mod:`gdcore.cli`)."""
    args = sys.argv[1:] if argv is None else list(argv)
    from .cli import COMMANDS
    if args and args[0] in COMMANDS:
        from .cli import main as cli_main
        return cli_main(args)
    parser = argparse.ArgumentParser(
        prog="python -m gdcore",
        description="Train a 2-64-64-3 network on the spirals problem and report. "
                    f"Also runs the gdcore commands: {', '.join(COMMANDS)}.")
    add_arguments(parser)
    return run(parser.parse_args(args))


if __name__ == "__main__":
    sys.exit(main())

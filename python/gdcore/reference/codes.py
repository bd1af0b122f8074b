"""The integer codes and layouts both engines share, read from their one definition,
``gdcore/codes.def`` (which the C++ core includes as X-macros).

``ACTIVATIONS``, ``LOSSES``, ``OPTIMIZERS``: name -> code; the ``*_NAMES`` dicts go the other way.
``HYPER``: the names of the float64 hyper-parameter vector of ``train_epoch``, in index order.
``SLOTS``: optimizer name -> (state arrays per parameter, extra arrays when momentum > 0).
``LOSS_OUTPUT_ACTIVATION``: loss name -> the output activation it requires (absent: any).
``HISTORY_SLOTS``: optimizer name -> state arrays per parameter per history pair (L-BFGS).
``LBFGS_CONFIG``, ``LBFGS_RUN``: the names of ``lbfgs_step``'s float64 configuration and
run-state vectors, in index order; ``LBFGS_STATUS``: status name -> code.
``DESCENT_STATUS``: why a descent of ``gd.minimize`` ended, name -> code.
:func:`state_slots` counts an optimizer's state arrays from ``SLOTS`` and ``HISTORY_SLOTS``.
"""
from __future__ import annotations

import re
from pathlib import Path

# An entry: GD_KIND(name, integer, ...) alone on its line (the comments' templates have no
# integer).
_KINDS = ("ACTIVATION", "LOSS", "OPTIMIZER", "HYPER", "HISTORY_SLOTS", "LBFGS", "LBFGS_RUN",
          "LBFGS_STATUS", "DESCENT_STATUS")
_ENTRY = re.compile(r"^GD_(%s)\((\w+\s*,\s*\d+\s*(?:,\s*\w+\s*)*)\)$" % "|".join(_KINDS))


def _read_table(path: Path) -> dict[str, list[list[str]]]:
    """The entries of ``codes.def`` by kind, each as its list of arguments."""
    table: dict[str, list[list[str]]] = {kind: [] for kind in _KINDS}
    for line in path.read_text(encoding="ascii").splitlines():
        match = _ENTRY.match(line.strip())
        if match:
            table[match[1]].append([arg.strip() for arg in match[2].split(",")])
    return table


_TABLE = _read_table(Path(__file__).resolve().parent.parent / "codes.def")

ACTIVATIONS: dict[str, int] = {name: int(code) for name, code in _TABLE["ACTIVATION"]}
LOSSES: dict[str, int] = {name: int(code) for name, code, _ in _TABLE["LOSS"]}
OPTIMIZERS: dict[str, int] = {name: int(code) for name, code, _, _ in _TABLE["OPTIMIZER"]}
HYPER: tuple[str, ...] = tuple(name for name, _ in sorted(_TABLE["HYPER"], key=lambda e: int(e[1])))
LBFGS_CONFIG: tuple[str, ...] = tuple(
    name for name, _ in sorted(_TABLE["LBFGS"], key=lambda e: int(e[1])))
LBFGS_RUN: tuple[str, ...] = tuple(
    name for name, _ in sorted(_TABLE["LBFGS_RUN"], key=lambda e: int(e[1])))
LBFGS_STATUS: dict[str, int] = {name: int(code) for name, code in _TABLE["LBFGS_STATUS"]}
DESCENT_STATUS: dict[str, int] = {name: int(code) for name, code in _TABLE["DESCENT_STATUS"]}
HISTORY_SLOTS: dict[str, int] = {name: int(slots) for name, slots in _TABLE["HISTORY_SLOTS"]}
SLOTS: dict[str, tuple[int, int]] = {
    name: (int(slots), int(momentum_slots)) for name, _, slots, momentum_slots in _TABLE["OPTIMIZER"]}
LOSS_OUTPUT_ACTIVATION: dict[str, str] = {
    name: output for name, _, output in _TABLE["LOSS"] if output != "any"}

ACTIVATION_NAMES = {code: name for name, code in ACTIVATIONS.items()}
LOSS_NAMES = {code: name for name, code in LOSSES.items()}
OPTIMIZER_NAMES = {code: name for name, code in OPTIMIZERS.items()}


def state_slots(optimizer: str, momentum: bool, history_size: int = 0) -> int:
    """State arrays per parameter of ``optimizer`` (a name), its momentum buffers only with
    momentum, its history pairs (``history_size`` of them) for L-BFGS: the twin of
    ``state_slots`` in ``codes.hpp``."""
    always, with_momentum = SLOTS[optimizer]
    return (always + (with_momentum if momentum else 0)
            + HISTORY_SLOTS.get(optimizer, 0) * history_size)

"""Learning-rate schedules: the base learning rate as a function of the (0-based) epoch.

Pass one wherever a learning rate goes, e.g. ``gd.SGD(lr=gd.schedules.Cosine(0.1, T_max=50))``.
During :meth:`Network.fit`, epoch ``e`` is trained with ``schedule(e)``, and after it
``schedule.observe(e, loss)`` is called with the monitored loss (only :class:`ReduceOnPlateau`
uses it). The formulas are those of ``torch.optim.lr_scheduler``:

- ``Constant``: ``lr``
- ``Step``: ``lr * gamma ** (epoch // step_size)`` (StepLR)
- ``Exponential``: ``lr * gamma ** epoch`` (ExponentialLR)
- ``InverseTime``: ``lr / (1 + decay_rate * epoch / decay_steps)``
- ``Cosine``: ``eta_min + (lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2`` up to
  ``epoch = T_max``, then ``eta_min`` (CosineAnnealingLR, closed form)
- ``ReduceOnPlateau``: multiply by ``factor`` after more than ``patience`` epochs without a
  relative improvement of ``threshold`` (ReduceLROnPlateau, mode "min")
- ``BoldDriver``: the classic "bold driver" rule: after an epoch whose loss fell, multiply by
  ``increase``; after one whose loss rose, undo it and multiply by ``decrease``

A schedule may also judge an epoch before it is kept: ``fit`` asks ``accepts(loss)``, and when
the answer is no it undoes the epoch (weights, optimizer state and the schedule's own state go
back together) and calls ``rejected(lr)``. Only schedules with ``undoes_epochs = True`` say no.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Dict

from . import _validation as v

__all__ = [
    "Schedule", "Constant", "Step", "Exponential", "InverseTime", "Cosine", "ReduceOnPlateau",
    "BoldDriver", "as_schedule",
]


# factor, decrease: in (0, 1)
_OPEN_UNIT = v.Real(low=0.0, high=1.0, closed="neither")


def _scaled(lr: float, gamma: float, power: int) -> float:
    """lr * gamma ** power, inf (not OverflowError) when gamma > 1 and power is huge."""
    try:
        return lr * gamma ** power
    except OverflowError:
        return math.inf


def _fmt(value: float) -> str:
    return f"{value:g}"


# -- the schedules -----------------------------------------------------------------------------

class Schedule:
    """Base class: a learning rate per epoch.

    Subclasses set ``initial_lr`` and implement ``_lr(epoch)``; stateful ones override
    :meth:`observe`, :meth:`state_dict` and :meth:`load_state_dict`.

    Attributes
    ----------
    initial_lr : float
        The learning rate of epoch 0.
    """

    initial_lr: float
    #: Whether :meth:`accepts` can refuse an epoch (then fit undoes it and calls
    #: :meth:`rejected`, and a diverged epoch is handed to the schedule the same way).
    undoes_epochs: bool = False

    def __init__(self, lr: float) -> None:
        self.initial_lr = v.POSITIVE(lr, "lr")

    def __call__(self, epoch: int) -> float:
        """The base learning rate for the 0-based ``epoch`` (an int >= 0)."""
        if type(epoch) is not int or epoch < 0:  # (fit's epochs need no more checking)
            epoch = v.integer(epoch, "epoch", low=0)
        return float(self._lr(epoch))

    def _lr(self, epoch: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe(self, epoch: int, loss: float) -> None:
        """Called after ``epoch`` with its monitored loss. A no-op for epoch-only schedules."""
        if type(epoch) is not int or epoch < 0:  # (fit's arguments need no more checking)
            v.integer(epoch, "epoch", low=0)
        if type(loss) is not float:
            v.real(loss, "loss", finite=False)

    def accepts(self, loss: float) -> bool:
        """Whether the epoch that just ended with monitored ``loss`` is kept (always, here)."""
        return True

    def rejected(self, lr: float) -> None:
        """Called after fit undid an epoch this schedule refused (and restored this schedule's
        state to the point it went back to); ``lr`` is the rate the refused epoch used."""

    def state_dict(self) -> Dict[str, Any]:
        """The mutable state (empty for epoch-only schedules), as plain Python values."""
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ValueError(f"state must have the keys {sorted(expected)}, "
                             f"got {sorted(state)}")

    def _params(self) -> Dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_fmt(v) if isinstance(v, float) else repr(v)}"
                         for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """The same learning rate every epoch.

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    """

    def __init__(self, lr: float) -> None:
        super().__init__(lr)

    def _lr(self, epoch: int) -> float:
        return self.initial_lr

    def _params(self) -> Dict[str, Any]:
        return {"lr": self.initial_lr}


class Step(Schedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs (torch ``StepLR``).

    ``lr(epoch) = lr * gamma ** (epoch // step_size)``.

    Parameters
    ----------
    lr : float
        Initial learning rate, > 0.
    step_size : int
        Epochs between decays, >= 1.
    gamma : float, default 0.1
        Decay factor, > 0.
    """

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(lr)
        self.step_size = v.integer(step_size, "step_size", low=1)
        self.gamma = v.POSITIVE(gamma, "gamma")

    def _lr(self, epoch: int) -> float:
        return _scaled(self.initial_lr, self.gamma, epoch // self.step_size)

    def _params(self) -> Dict[str, Any]:
        return {"lr": self.initial_lr, "step_size": self.step_size, "gamma": self.gamma}


class Exponential(Schedule):
    """Multiply the learning rate by ``gamma`` every epoch (torch ``ExponentialLR``).

    ``lr(epoch) = lr * gamma ** epoch``.

    Parameters
    ----------
    lr : float
        Initial learning rate, > 0.
    gamma : float
        Factor per epoch, > 0 (below 1 to decay).
    """

    def __init__(self, lr: float, gamma: float) -> None:
        super().__init__(lr)
        self.gamma = v.POSITIVE(gamma, "gamma")

    def _lr(self, epoch: int) -> float:
        return _scaled(self.initial_lr, self.gamma, epoch)

    def _params(self) -> Dict[str, Any]:
        return {"lr": self.initial_lr, "gamma": self.gamma}


class InverseTime(Schedule):
    """Inverse-time decay: ``lr(epoch) = lr / (1 + decay_rate * epoch / decay_steps)``.

    Parameters
    ----------
    lr : float
        Initial learning rate, > 0.
    decay_rate : float
        >= 0; 0 keeps the learning rate constant.
    decay_steps : float, default 1
        Epochs over which the denominator grows by ``decay_rate``, > 0.
    """

    def __init__(self, lr: float, decay_rate: float, decay_steps: float = 1) -> None:
        super().__init__(lr)
        self.decay_rate = v.NON_NEGATIVE(decay_rate, "decay_rate")
        self.decay_steps = v.POSITIVE(decay_steps, "decay_steps")

    def _lr(self, epoch: int) -> float:
        return self.initial_lr / (1.0 + self.decay_rate * epoch / self.decay_steps)

    def _params(self) -> Dict[str, Any]:
        return {"lr": self.initial_lr, "decay_rate": self.decay_rate,
                "decay_steps": self.decay_steps}


class Cosine(Schedule):
    """Cosine annealing from ``lr`` down to ``eta_min`` over ``T_max`` epochs.

    ``lr(epoch) = eta_min + (lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2`` for
    ``epoch <= T_max`` (the closed form of torch ``CosineAnnealingLR``), and ``eta_min``
    afterwards (no restart).

    Parameters
    ----------
    lr : float
        Initial learning rate, > 0.
    T_max : int
        Epochs to reach ``eta_min``, >= 1.
    eta_min : float, default 0.0
        Final learning rate, in ``[0, lr]``.
    """

    def __init__(self, lr: float, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__(lr)
        self.T_max = v.integer(T_max, "T_max", low=1)
        self.eta_min = v.real(eta_min, "eta_min")
        if not 0.0 <= self.eta_min <= self.initial_lr:  # (a bound that depends on lr)
            raise ValueError(f"eta_min must be in [0, lr={self.initial_lr:g}], "
                             f"got {self.eta_min}")

    def _lr(self, epoch: int) -> float:
        if epoch >= self.T_max:
            return self.eta_min
        cos = math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (self.initial_lr - self.eta_min) * (1.0 + cos) / 2.0

    def _params(self) -> Dict[str, Any]:
        return {"lr": self.initial_lr, "T_max": self.T_max, "eta_min": self.eta_min}


class ReduceOnPlateau(Schedule):
    """Cut the learning rate when the monitored loss stops improving (torch
    ``ReduceLROnPlateau`` with ``mode="min"``, ``threshold_mode="rel"``, ``cooldown=0``).

    After each epoch, :meth:`observe` compares the loss with the best so far: it is an
    improvement when ``loss < best * (1 - threshold)``. After more than ``patience``
    consecutive epochs without one, the learning rate becomes
    ``max(lr * factor, min_lr)`` (unless that changes it by less than 1e-8) and the count
    restarts. ``schedule(epoch)`` returns the current learning rate, whatever ``epoch``.

    Parameters
    ----------
    lr : float
        Initial learning rate, > 0.
    factor : float, default 0.1
        Multiplier on a reduction, in (0, 1).
    patience : int, default 10
        Epochs without improvement tolerated before a reduction, >= 0.
    threshold : float, default 1e-4
        Relative improvement that counts, >= 0.
    min_lr : float, default 0.0
        Floor of the learning rate, in ``[0, lr]``.

    Attributes
    ----------
    lr : float
        The current learning rate.
    best : float
        The best loss seen (``inf`` before the first).
    num_bad_epochs : int
        Consecutive epochs without improvement.
    """

    _EPS = 1e-8  # torch's eps: smaller reductions are ignored

    def __init__(self, lr: float, factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, min_lr: float = 0.0) -> None:
        super().__init__(lr)
        self.factor = _OPEN_UNIT(factor, "factor")
        self.patience = v.integer(patience, "patience", low=0)
        self.threshold = v.NON_NEGATIVE(threshold, "threshold")
        self.min_lr = v.real(min_lr, "min_lr")
        if not 0.0 <= self.min_lr <= self.initial_lr:  # (a bound that depends on lr)
            raise ValueError(f"min_lr must be in [0, lr={self.initial_lr:g}], got {self.min_lr}")
        self.lr = self.initial_lr
        self.best = math.inf
        self.num_bad_epochs = 0

    def _lr(self, epoch: int) -> float:
        return self.lr

    def observe(self, epoch: int, loss: float) -> None:
        """Record ``loss`` of ``epoch``; reduce the learning rate after a long enough plateau.

        A nan loss never counts as an improvement.
        """
        v.integer(epoch, "epoch", low=0)
        loss = v.real(loss, "loss", finite=False)
        if loss < self.best * (1.0 - self.threshold):
            self.best = loss
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > self._EPS:
                self.lr = new_lr
            self.num_bad_epochs = 0

    def state_dict(self) -> Dict[str, Any]:
        """``{"lr", "best", "num_bad_epochs"}``; ``best`` is None before the first loss, so
        the dict is JSON-safe."""
        return {"lr": self.lr, "best": None if math.isinf(self.best) else self.best,
                "num_bad_epochs": self.num_bad_epochs}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        super().load_state_dict(state)
        lr = v.POSITIVE(state["lr"], "state['lr']")
        best = (math.inf if state["best"] is None
                else v.real(state["best"], "state['best']", finite=False))
        num_bad = v.integer(state["num_bad_epochs"], "state['num_bad_epochs']", low=0)
        self.lr, self.best, self.num_bad_epochs = lr, best, num_bad

    def _params(self) -> Dict[str, Any]:
        return {"lr": self.initial_lr, "factor": self.factor, "patience": self.patience,
                "threshold": self.threshold, "min_lr": self.min_lr}

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, current_lr={_fmt(self.lr)})"


class BoldDriver(Schedule):
    """The "bold driver": raise the rate while the loss falls, undo and cut it when it rises.

    After an epoch whose monitored loss fell below the previous epoch's, the rate is
    multiplied by ``increase``. An epoch whose loss rose (or diverged) is refused: ``fit``
    undoes it (weights, optimizer state and this schedule's state go back together, see
    :func:`gdcore.training.fit`) and the rate is multiplied by ``decrease``. Started far too
    small, the rate grows geometrically until progress stops; started far too large, it is
    cut until an epoch converges, without ``DivergenceError`` (``fit`` gives up with
    ``stop_reason="stalled"`` after 30 refused epochs in a row).

    Parameters
    ----------
    lr : float
        Initial learning rate, > 0.
    increase : float, default 1.05
        Factor after an epoch whose loss fell, >= 1.
    decrease : float, default 0.5
        Factor after a refused epoch, in (0, 1).
    threshold : float, default 1e-4
        A rise counts when the loss exceeds the last kept one by more than this fraction of
        it, >= 0 (so that rounding, e.g. a new summation order at an unchanged loss, never
        counts as a rise).

    Attributes
    ----------
    lr : float
        The current learning rate.
    last_loss : float
        The monitored loss of the last kept epoch (``inf`` before the first).
    """

    undoes_epochs = True

    def __init__(self, lr: float, increase: float = 1.05, decrease: float = 0.5,
                 threshold: float = 1e-4) -> None:
        super().__init__(lr)
        self.threshold = v.NON_NEGATIVE(threshold, "threshold")
        self.increase = v.Real(low=1.0)(increase, "increase")
        self.decrease = _OPEN_UNIT(decrease, "decrease")
        self.lr = self.initial_lr
        self.last_loss = math.inf

    def _lr(self, epoch: int) -> float:
        return self.lr

    def accepts(self, loss: float) -> bool:
        """False when ``loss`` rose above the last kept epoch's (or is nan)."""
        loss = v.real(loss, "loss", finite=False)
        return loss <= self.last_loss + self.threshold * abs(self.last_loss)

    def observe(self, epoch: int, loss: float) -> None:
        """A kept epoch: grow the rate if its loss fell."""
        v.integer(epoch, "epoch", low=0)
        loss = v.real(loss, "loss", finite=False)
        if loss < self.last_loss and not math.isinf(self.last_loss):
            self.lr = _scaled(self.lr, self.increase, 1)
        self.last_loss = loss

    def rejected(self, lr: float) -> None:
        """Cut the rate that failed (not the restored one: repeated refusals compound)."""
        self.lr = v.real(lr, "lr") * self.decrease

    def state_dict(self) -> Dict[str, Any]:
        """``{"lr", "last_loss"}``; ``last_loss`` is None before the first epoch (JSON-safe)."""
        return {"lr": self.lr,
                "last_loss": None if math.isinf(self.last_loss) else self.last_loss}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        super().load_state_dict(state)
        lr = v.POSITIVE(state["lr"], "state['lr']")
        last = (math.inf if state["last_loss"] is None
                else v.real(state["last_loss"], "state['last_loss']", finite=False))
        self.lr, self.last_loss = lr, last

    def _params(self) -> Dict[str, Any]:
        return {"lr": self.initial_lr, "increase": self.increase, "decrease": self.decrease,
                "threshold": self.threshold}

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, current_lr={_fmt(self.lr)})"


def as_schedule(lr) -> Schedule:
    """A :class:`Schedule` from a learning rate: a number gives :class:`Constant`, a
    :class:`Schedule` is returned as is.

    Raises
    ------
    TypeError
        Neither a real number nor a Schedule.
    ValueError
        A number that is not > 0 and finite.
    """
    if isinstance(lr, Schedule):
        return lr
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be a positive number or a gdcore.schedules.Schedule, "
                        f"got {type(lr).__name__} {lr!r}")
    return Constant(lr)

"""Optimizers: the update rules of ``torch.optim``, with their state kept in NumPy arrays.

An optimizer object holds hyper-parameters and, once it has been used by ``fit``, the state of
one network (momentum buffers, Adam's moments, the step count, the epoch count of its learning
rate schedule). Passing the same object to ``fit`` again continues exactly where the last call
stopped. The arithmetic itself runs in the network's engine (C++ or the NumPy reference); the
formulas are in ``docs/design.md`` and ``gdcore/reference/optimizers.py``.
"""
from __future__ import annotations

import weakref
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _validation as v
from .reference.codes import OPTIMIZERS
from .schedules import Constant, Schedule, as_schedule

LearningRate = Union[float, Schedule]


class Optimizer:
    """Base class: hyper-parameters, a learning-rate schedule and the per-network state.

    Subclasses set ``name`` and the hyper-parameters; everything else is shared.
    """

    name: str = ""

    def __init__(self, lr: LearningRate, weight_decay: float = 0.0) -> None:
        self.schedule: Schedule = as_schedule(lr)
        self.weight_decay = v.real(weight_decay, "weight_decay", low=0.0)
        self.reset()

    # --- the hyper-parameters the engines read --------------------------------------------
    @property
    def kind(self) -> int:
        """The engine's integer code for this update rule."""
        return OPTIMIZERS[self.name]

    @property
    def lr(self) -> float:
        """The learning rate the next epoch will use (schedule value times any back-off)."""
        return self.schedule(self.epochs_done) * self.lr_scale

    def _n_slots(self) -> int:
        raise NotImplementedError

    def _hyper_values(self) -> tuple:
        """(momentum, nesterov, beta1, beta2, eps, alpha) for the engine; unused ones 0."""
        raise NotImplementedError

    def hyper(self, lr: float) -> np.ndarray:
        """The engine's float64 ``(8,)`` hyper-parameter vector for learning rate ``lr``."""
        momentum, nesterov, beta1, beta2, eps, alpha = self._hyper_values()
        return np.array([lr, momentum, float(nesterov), self.weight_decay, beta1, beta2, eps,
                         alpha], dtype=np.float64)

    # --- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all state: the next ``fit`` starts from zero buffers and epoch 0."""
        self.state: list[np.ndarray] = []
        self.step = np.zeros(1, dtype=np.int64)
        self.epochs_done = 0
        self.lr_scale = 1.0
        self._owner: Optional[weakref.ReferenceType] = None

    @property
    def steps_done(self) -> int:
        """How many updates this optimizer has applied."""
        return int(self.step[0])

    def bind(self, network: Any, params: Sequence[np.ndarray]) -> None:
        """Allocate zero state for ``params`` of ``network`` on first use.

        An optimizer carries the state of one network; using it on another one is refused
        (``reset()`` it first, or make a new one).
        """
        owner = self._owner() if self._owner is not None else None
        if owner is network:
            return
        if owner is not None:
            raise ValueError(
                "this optimizer holds the state of another network; call optimizer.reset() "
                "or pass a new optimizer"
            )
        self.state = [np.zeros_like(p) for p in params for _ in range(self._n_slots())]
        self.step = np.zeros(1, dtype=np.int64)
        self._owner = weakref.ref(network)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args().items())
        return f"{type(self).__name__}({args})"

    def _repr_args(self) -> dict:
        lr: Any = self.schedule
        if isinstance(self.schedule, Constant):
            lr = self.schedule.initial_lr
        return {"lr": lr}


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    Parameters
    ----------
    lr : float or Schedule
        Learning rate, > 0.
    momentum : float
        Heavy-ball momentum in [0, 1): ``buf = momentum * buf + g``.
    nesterov : bool
        Use Nesterov momentum (needs ``momentum > 0``).
    weight_decay : float
        L2 penalty added to the gradient: ``g += weight_decay * p``.
    """

    name = "sgd"

    def __init__(self, lr: LearningRate = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        self.momentum = v.real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be a bool, got {nesterov!r}")
        if nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        super().__init__(lr, weight_decay)

    def _n_slots(self) -> int:
        return 1 if self.momentum > 0 else 0

    def _hyper_values(self) -> tuple:
        return (self.momentum, self.nesterov, 0.0, 0.0, 0.0, 0.0)

    def _repr_args(self) -> dict:
        return {**super()._repr_args(), "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (L2 ``weight_decay`` added to the gradient).

    Parameters
    ----------
    lr : float or Schedule
        Learning rate, > 0.
    betas : (float, float)
        Decay rates of the first and second moment estimates, each in [0, 1).
    eps : float
        Added to the denominator for numerical stability, >= 0.
    weight_decay : float
        L2 penalty added to the gradient.
    """

    name = "adam"

    def __init__(self, lr: LearningRate = 0.001, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair of floats, got {betas!r}")
        self.betas = (v.real(betas[0], "betas[0]", low=0.0, high=1.0, high_open=True),
                      v.real(betas[1], "betas[1]", low=0.0, high=1.0, high_open=True))
        self.eps = v.real(eps, "eps", low=0.0)
        super().__init__(lr, weight_decay)

    def _n_slots(self) -> int:
        return 2

    def _hyper_values(self) -> tuple:
        return (0.0, False, self.betas[0], self.betas[1], self.eps, 0.0)

    def _repr_args(self) -> dict:
        return {**super()._repr_args(), "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay}


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: decoupled weight decay ``p *= 1 - lr * weight_decay``."""

    name = "adamw"

    def __init__(self, lr: LearningRate = 0.001, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01) -> None:
        super().__init__(lr, betas, eps, weight_decay)


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop`` (not centered).

    Parameters
    ----------
    lr : float or Schedule
        Learning rate, > 0.
    alpha : float
        Smoothing constant of the squared-gradient average, in [0, 1].
    eps : float
        Added to the denominator, >= 0.
    momentum : float
        Momentum on the scaled step, in [0, 1).
    weight_decay : float
        L2 penalty added to the gradient.
    """

    name = "rmsprop"

    def __init__(self, lr: LearningRate = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        self.alpha = v.real(alpha, "alpha", low=0.0, high=1.0)
        self.eps = v.real(eps, "eps", low=0.0)
        self.momentum = v.real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        super().__init__(lr, weight_decay)

    def _n_slots(self) -> int:
        return 2 if self.momentum > 0 else 1

    def _hyper_values(self) -> tuple:
        return (self.momentum, False, 0.0, 0.0, self.eps, self.alpha)

    def _repr_args(self) -> dict:
        return {**super()._repr_args(), "alpha": self.alpha, "eps": self.eps,
                "momentum": self.momentum, "weight_decay": self.weight_decay}


_BY_NAME = {cls.name: cls for cls in (SGD, Adam, AdamW, RMSprop)}


def get_optimizer(optimizer: Union[None, str, Optimizer]) -> Optimizer:
    """An optimizer object from ``None`` (``SGD(lr=0.01)``), a name, or an optimizer."""
    if optimizer is None:
        return SGD(lr=0.01)
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        try:
            return _BY_NAME[optimizer.lower()]()
        except KeyError:
            raise ValueError(
                f"optimizer must be one of {sorted(_BY_NAME)} or an optimizer object, "
                f"got {optimizer!r}") from None
    raise TypeError(
        f"optimizer must be a name, an optimizer object or None, got {type(optimizer).__name__}")

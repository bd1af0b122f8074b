"""The training loop around the engines: epochs, validation, stopping rules, divergence.

Each epoch is one engine call (``train_epoch``: every mini-batch's forward pass, loss
gradient, backward pass and update, in C++ or NumPy). Everything between epochs lives here
and is shared by both backends, so both see the same batches and the same decisions.
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from typing import Any, Callable, Optional, Sequence

import numpy as np

from . import _validation as v
from .optimizers import get_optimizer

ON_DIVERGENCE = ("raise", "stop", "backoff")
#: "backoff" gives up after halving the learning rate this many times in one fit.
MAX_BACKOFFS = 30


class DivergenceError(ArithmeticError):
    """Training produced a non-finite loss or weights.

    The network's weights (and the optimizer's state) are those of the last finite epoch.
    ``history`` holds what was recorded up to then.
    """

    def __init__(self, epoch: int, loss: float, lr: float, history: "History") -> None:
        self.epoch, self.loss, self.lr, self.history = epoch, loss, lr, history
        super().__init__(
            f"training diverged at epoch {epoch}: loss {loss} with learning rate {lr:g}. "
            f"The weights were restored to the last finite epoch. Try a smaller learning rate "
            f"(gd.find_lr(network, X, y) suggests one) or fit(..., on_divergence='backoff').")


@dataclasses.dataclass
class History:
    """What ``fit`` recorded, one entry per completed epoch.

    Attributes
    ----------
    loss : list of float
        Training loss of each epoch (the sample-weighted mean of its batch losses, each
        measured before that batch's update).
    val_loss : list of float
        Validation loss after each epoch (empty without validation data).
    lr : list of float
        Learning rate used in each epoch.
    epochs : int
        Epochs completed.
    best_epoch : int or None
        Index of the epoch with the lowest validation loss (training loss without validation).
    converged : bool
        Stopped because the loss improved by less than ``tol`` for ``n_iter_no_change`` epochs.
    diverged : bool
        A non-finite loss was met (and, with "stop", training ended there).
    stop_reason : str
        ``"epochs"``, ``"converged"``, ``"max_time"``, ``"callback"`` or ``"diverged"``.
    backoffs : int
        How many times "backoff" halved the learning rate.
    time : float
        Wall time of the fit in seconds.
    """

    loss: list = dataclasses.field(default_factory=list)
    val_loss: list = dataclasses.field(default_factory=list)
    lr: list = dataclasses.field(default_factory=list)
    epochs: int = 0
    best_epoch: Optional[int] = None
    converged: bool = False
    diverged: bool = False
    stop_reason: str = ""
    backoffs: int = 0
    time: float = 0.0

    def __repr__(self) -> str:
        last = f"{self.loss[-1]:.6g}" if self.loss else "n/a"
        return (f"History(epochs={self.epochs}, loss={last}, best_epoch={self.best_epoch}, "
                f"stop_reason={self.stop_reason!r})")


def _callbacks(callbacks: Any) -> list[Callable]:
    if callable(callbacks) or hasattr(callbacks, "on_epoch_end"):
        callbacks = (callbacks,)
    try:
        items = list(callbacks)
    except TypeError:
        raise TypeError("callbacks must be a sequence of callables") from None
    out = []
    for i, cb in enumerate(items):
        if hasattr(cb, "on_epoch_end"):
            out.append(cb.on_epoch_end)
        elif callable(cb):
            out.append(cb)
        else:
            raise TypeError(f"callbacks[{i}] must be callable or have on_epoch_end, got {cb!r}")
    return out


def _progress_bar(enabled: bool, epochs: int) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn("progress=True needs tqdm (pip install 'gdcore[progress]'); "
                      "training without a progress bar", RuntimeWarning, stacklevel=3)
        return None
    return tqdm(total=epochs, unit="epoch", desc="fit", leave=True)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


#: A loss above this multiple of the loss of the starting weights (or of 1, if larger) counts
#: as diverged.
DIVERGENCE_RATIO = 1e4
#: The starting loss is measured on at most this many training samples (the first ones).
REFERENCE_SAMPLES = 256


def _sane(loss: float, starting_loss: Callable[[], Optional[float]]) -> bool:
    """Whether an epoch ended without diverging: a finite loss that did not explode.

    (The engines return NaN when a parameter is not finite after an epoch.) ``starting_loss()``
    gives the loss of the weights fit started from (None if not finite); it is only asked for
    when ``loss`` is large enough to possibly be an explosion.
    """
    if not math.isfinite(loss):
        return False
    if loss > DIVERGENCE_RATIO:
        reference = starting_loss()
        if reference is not None and loss > DIVERGENCE_RATIO * max(reference, 1.0):
            return False
    return True


class _Snapshots:
    """Divergence recovery: where to go back to, at the cost of one copy per epoch.

    An epoch's loss vouches for the weights it started from, so on divergence we go back to
    the start of the last epoch with a sane loss (``last_sane``: parameters, optimizer state,
    step count). Each epoch's starting state is copied into a spare buffer, which becomes
    ``last_sane`` when the epoch turns out sane; no copy is needed while the live state still
    equals ``last_sane`` (at the start of fit and after a rollback).
    """

    def __init__(self, params: list, opt: Any) -> None:
        self.n_params = len(params)
        self.live = [*params, *opt.state, opt.step]
        self.last_sane = [a.copy() for a in self.live]
        self.spare: Optional[list] = None
        self.epoch_start = self.last_sane  # the snapshot of the running epoch's start
        self.live_is_last_sane = True
        self.initial: Optional[list] = None  # the starting parameters, once last_sane moves on

    def begin_epoch(self) -> None:
        if self.live_is_last_sane:
            self.epoch_start = self.last_sane
        else:
            if self.spare is None:
                self.spare = [np.empty_like(a) for a in self.live]
            for snapshot, a in zip(self.spare, self.live):
                np.copyto(snapshot, a)
            self.epoch_start = self.spare
        self.live_is_last_sane = False

    def epoch_was_sane(self) -> None:
        if self.epoch_start is not self.last_sane:
            if self.initial is None:
                self.initial = [a.copy() for a in self.last_sane[:self.n_params]]
            self.spare, self.last_sane = self.last_sane, self.epoch_start

    def roll_back(self) -> None:
        """Live state <- the start of the last sane epoch."""
        for a, good in zip(self.live, self.last_sane):
            np.copyto(a, good)
        self.live_is_last_sane = True

    def back_to_epoch_start(self) -> None:
        for a, good in zip(self.live, self.epoch_start):
            np.copyto(a, good)

    def starting_params(self) -> list:
        """The parameters fit started from."""
        return self.initial if self.initial is not None else self.last_sane[:self.n_params]


def _forget_last_epoch(history: History, opt: Any) -> None:
    """Drop the last recorded epoch (its weights were rolled back)."""
    history.epochs -= 1
    opt.epochs_done -= 1
    for record in (history.loss, history.lr, history.val_loss):
        if len(record) > history.epochs:
            record.pop()
    if history.best_epoch is not None and history.best_epoch >= history.epochs:
        history.best_epoch = (int(np.argmin(history.val_loss or history.loss))
                              if history.loss else None)


def fit(network: Any, X: Any, y: Any, optimizer: Any = None, epochs: int = 100,
        batch_size: Optional[int] = None, shuffle: bool = True, validation_data: Any = None,
        validation_split: float = 0.0, sample_weight: Any = None, tol: Optional[float] = None,
        n_iter_no_change: int = 5, restore_best_weights: bool = False,
        max_time: Optional[float] = None, on_divergence: str = "raise",
        callbacks: Sequence = (), progress: bool = False, seed: Any = None) -> History:
    """Train ``network`` on ``(X, y)`` by mini-batch gradient descent.

    Parameters
    ----------
    X : array (n_samples, n_inputs)
    y : array
        Targets: ``(n_samples, n_outputs)`` (or ``(n_samples,)`` for one output); for
        cross_entropy, integer class indices ``(n_samples,)`` or probabilities.
    optimizer : Optimizer, str or None
        An optimizer object (its state carries over between fit calls), a name
        (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``), or None for ``SGD(lr=0.01)``.
    epochs : int
        Passes over the training samples, >= 1.
    batch_size : int or None
        Samples per update; None means full-batch gradient descent (one step per epoch).
        A batch size above the number of training samples is clamped to it.
    shuffle : bool
        Visit the samples in a new random order each epoch (from ``seed``).
    validation_data : (X_val, y_val) or (X_val, y_val, w_val), optional
    validation_split : float in [0, 1)
        Hold out this last fraction of the samples (before shuffling) for validation.
    sample_weight : array (n_samples,), optional
        The loss becomes ``sum(w_i l_i) / sum(w_i)``.
    tol : float or None
        Stop when the monitored loss (validation loss if any, else training loss) has not
        improved on its best by at least ``tol`` for ``n_iter_no_change`` epochs in a row.
    restore_best_weights : bool
        End with the weights of the epoch with the best monitored loss.
    max_time : float or None
        Seconds; stop after the epoch that crosses it.
    on_divergence : {"raise", "stop", "backoff"}
        An epoch diverges when its loss or the weights are not finite, or its loss exceeds
        ``DIVERGENCE_RATIO`` (1e4) times the loss of the starting weights (measured on up to
        256 training samples before the first epoch), or 1e4 if that is larger. The
        weights and optimizer state then go back to the start of the last epoch with a sane
        loss, and that epoch is dropped from the history; then: "raise" raises
        :class:`DivergenceError`; "stop" returns; "backoff" halves the learning rate and goes
        on (at most 30 times in one fit).
    callbacks : sequence
        Each is called after every epoch as ``cb(epoch, logs)`` (or ``cb.on_epoch_end(epoch,
        logs)``), ``logs`` a dict with ``loss``, ``val_loss``, ``lr``, ``network``; a callback
        returning True stops training.
    progress : bool
        Show a tqdm progress bar (needs ``tqdm``).
    seed : int, Generator or None
        Shuffling seed; None uses the network's ``seed``.

    Returns
    -------
    History

    Notes
    -----
    Invalid arguments raise ``ValueError``/``TypeError`` before anything changes. Ctrl-C
    (``KeyboardInterrupt``) stops training: the compiled core finishes the current step, the
    NumPy engine goes back to the start of the interrupted epoch; either way the weights, the
    optimizer's state and its step count stay consistent and ``fit`` may be called again.
    """
    # --- validate everything before touching the network ----------------------------------
    epochs = v.positive_int(epochs, "epochs")
    shuffle = _bool(shuffle, "shuffle")
    restore_best_weights = _bool(restore_best_weights, "restore_best_weights")
    progress = _bool(progress, "progress")
    validation_split = v.real(validation_split, "validation_split", low=0.0, high=1.0,
                              high_open=True)
    if tol is not None:
        tol = v.real(tol, "tol", low=0.0)
    n_iter_no_change = v.positive_int(n_iter_no_change, "n_iter_no_change")
    if max_time is not None:
        max_time = v.real(max_time, "max_time", low=0.0, low_open=True)
    if on_divergence not in ON_DIVERGENCE:
        raise ValueError(f"on_divergence must be one of {ON_DIVERGENCE}, got {on_divergence!r}")
    cbs = _callbacks(callbacks)
    X, Y, w = network._data(X, y, sample_weight)
    if validation_data is not None and validation_split > 0:
        raise ValueError("pass either validation_data or validation_split, not both")
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise TypeError("validation_data must be a tuple (X_val, y_val) or "
                            "(X_val, y_val, sample_weight_val)")
        val = network._data(*validation_data, names=("validation_data X", "validation_data y",
                                                     "validation_data sample_weight"))
    elif validation_split > 0:
        n_train = int(X.shape[0] * (1.0 - validation_split))
        if n_train < 1 or n_train >= X.shape[0]:
            raise ValueError(
                f"validation_split={validation_split} of {X.shape[0]} samples leaves "
                f"{n_train} for training and {X.shape[0] - n_train} for validation; "
                f"both need at least one")
        val = (X[n_train:], Y[n_train:], None if w is None else w[n_train:])
        X, Y, w = X[:n_train], Y[:n_train], (None if w is None else w[:n_train])
        # Slices of C-contiguous rows stay C-contiguous: no copy.
    n = X.shape[0]
    if batch_size is None:
        batch_size = n
    batch_size = min(v.positive_int(batch_size, "batch_size"), n)
    seed = v.seed(network.seed if seed is None else seed, "seed")  # checked even when unused
    rng = np.random.default_rng(seed) if shuffle else None
    opt = get_optimizer(optimizer)
    params = network.parameters()
    v.trainable(params)

    # --- train -----------------------------------------------------------------------------
    history = History()
    order = np.arange(n, dtype=np.int64)
    # The lock covers the optimizer's binding and every snapshot, so another thread's call on
    # this network can neither interleave with the epochs nor be half-copied into a snapshot.
    with network._lock:
        opt.bind(network, params)
        engine = network._engine
        snapshots = _Snapshots(params, opt)
        sane_epoch = 0
        # The yardstick for an exploding loss is the loss of the starting weights (not the
        # first epoch's: with mini-batches, a far-too-large rate can blow the loss up within
        # the first epoch already). Only a loss above DIVERGENCE_RATIO needs it: computed then.
        reference: list = []

        def starting_loss() -> Optional[float]:
            if not reference:
                m = min(n, REFERENCE_SAMPLES)
                wm = None if w is None or not w[:m].sum(dtype=np.float64) > 0 else w[:m]
                current = [p.copy() for p in params]
                try:
                    for p, q in zip(params, snapshots.starting_params()):
                        np.copyto(p, q)
                    value = float(engine.loss(X[:m], Y[:m], wm))
                finally:
                    for p, q in zip(params, current):
                        np.copyto(p, q)
                reference.append(value if math.isfinite(value) else None)
            return reference[0]

        best_params = [p.copy() for p in params] if restore_best_weights else None
        best_monitored = math.inf
        tol_best, no_improvement = math.inf, 0
        bar = _progress_bar(progress, epochs)
        start = time.perf_counter()
        epoch = 0
        in_epoch = False  # an engine call is running (the live arrays may be mid-update)
        try:
            while epoch < epochs:
                lr = opt.lr
                if not (math.isfinite(lr) and lr >= 0.0):
                    raise ValueError(
                        f"the learning rate for epoch {epoch} is {lr}: the optimizer's schedule "
                        f"must give a finite rate >= 0")
                if rng is not None:
                    order = rng.permutation(n).astype(np.int64, copy=False)
                snapshots.begin_epoch()
                in_epoch = True
                loss = float(engine.train_epoch(X, Y, w, order, batch_size, opt.kind,
                                                opt.hyper(lr), opt.state, opt.step))
                in_epoch = False
                if not _sane(loss, starting_loss):
                    snapshots.roll_back()
                    history.diverged = True
                    failed_epoch = epoch
                    if epoch > sane_epoch:  # back to the start of the last epoch, forget it
                        epoch -= 1
                        forgot_best = history.best_epoch == epoch
                        _forget_last_epoch(history, opt)
                        if forgot_best:
                            remaining = history.val_loss or history.loss
                            if best_params is not None and history.epochs:
                                # The kept "best" weights were those the failed epoch started
                                # from; the restored ones (the end of the last remaining
                                # epoch) replace them.
                                history.best_epoch = history.epochs - 1
                                best_monitored = remaining[-1]
                                for target, p in zip(best_params, params):
                                    np.copyto(target, p)
                            else:
                                best_monitored = min(remaining, default=math.inf)
                    if on_divergence == "backoff" and history.backoffs < MAX_BACKOFFS:
                        history.backoffs += 1
                        opt.lr_scale *= 0.5
                        continue  # go on from there at half the rate
                    history.stop_reason = "diverged"
                    if on_divergence == "stop":
                        break
                    raise DivergenceError(failed_epoch, loss, lr, history)
                snapshots.epoch_was_sane()
                sane_epoch = epoch
                opt.epochs_done += 1
                history.epochs += 1
                history.loss.append(loss)
                history.lr.append(lr)
                monitored = loss
                if val is not None:
                    monitored = float(engine.loss(*val))
                    history.val_loss.append(monitored)
                opt.schedule.observe(opt.epochs_done - 1, monitored)
                if monitored < best_monitored:
                    best_monitored, history.best_epoch = monitored, epoch
                    if best_params is not None:
                        for target, p in zip(best_params, params):
                            np.copyto(target, p)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
                epoch += 1
                if tol is not None:
                    no_improvement = no_improvement + 1 if monitored > tol_best - tol else 0
                    tol_best = min(tol_best, monitored)
                    if no_improvement >= n_iter_no_change:
                        history.converged, history.stop_reason = True, "converged"
                        break
                logs = {"loss": loss, "val_loss": history.val_loss[-1] if val else None,
                        "lr": lr, "network": network}
                if any([cb(epoch - 1, logs) is True for cb in cbs]):  # call every one
                    history.stop_reason = "callback"
                    break
                if max_time is not None and time.perf_counter() - start > max_time:
                    history.stop_reason = "max_time"
                    break
            else:
                history.stop_reason = "epochs"
            if best_params is not None and history.best_epoch is not None:
                for target, p in zip(params, best_params):
                    np.copyto(target, p)
        except KeyboardInterrupt:
            # The compiled engine stops between two steps, leaving parameters, state and step
            # consistent. The NumPy one can be interrupted inside a step (some parameters
            # updated, the step not counted): go back to the start of the epoch.
            if in_epoch and network.backend == "numpy":
                snapshots.back_to_epoch_start()
            raise
        finally:
            history.time = time.perf_counter() - start
            if bar is not None:
                bar.close()
    return history

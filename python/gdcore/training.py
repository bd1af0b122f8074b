"""The training loop around the engines: epochs, validation, stopping rules, divergence.

Each epoch is one engine call (``train_epoch``: every mini-batch's forward pass, loss
gradient, backward pass and update, in C++ or NumPy). Everything between epochs lives here
and is shared by both backends, so both see the same batches and the same decisions.

``fit`` is a short sequence of named phases: :func:`_validate` (every argument, before
anything changes), :class:`_Run` (prepare: bind the optimizer, find the rate for
``lr="auto"``, take the first checkpoint), then per epoch ``train``, ``check`` (divergence and
the schedule's verdict, both handled by one rollback), ``record`` and the stop rules.
:func:`train_epoch` is the same validation, binding and engine call for one epoch, without
the checkpoints, checks and records around it. :func:`fit_many` runs one ``_Run`` per network
through the same steps in lock-step, with one engine call (``train_epoch_many``) per epoch for
all of them.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import math
import time
import warnings
from typing import Any, Optional, Sequence

import numpy as np

from . import _validation as v
from .metrics import get_metrics
from .optimizers import get_optimizer

ON_DIVERGENCE = ("raise", "stop", "backoff")
#: "backoff" gives up after halving the learning rate this many times in one fit; a schedule
#: that undoes epochs (BoldDriver) gives up after this many undone epochs in a row.
MAX_BACKOFFS = 30
#: An epoch diverges when its loss exceeds this multiple of the starting loss (plus a floor of
#: sqrt(machine epsilon) of the network's dtype, so a converged loss near zero may wobble).
DIVERGENCE_FACTOR = 1.5
#: With mini-batches the starting loss is measured on at most this many training samples,
#: evenly spaced through the set (with full batches the first epoch's loss is exactly it).
START_LOSS_SAMPLES = 256
#: A fresh mini-batch fit first measures the loss of the starting weights on this many evenly
#: spaced samples only (an eighth of the cost); a first epoch whose loss is at most
#: SCREEN_MARGIN times that is sane without the full measurement, which runs only when it is
#: above. (To pass the screen yet diverge, the first epoch's loss would have to exceed 1.5x the
#: starting loss while 32 samples overestimate it by a quarter; a later epoch is then still
#: judged against the full measurement.)
SCREEN_SAMPLES = 32
SCREEN_MARGIN = 1.2

#: lr="auto" sweeps with the fit's batch size, at most this many samples per step (full-batch
#: sweeps of a large set would cost one pass per step).
AUTO_LR_MAX_BATCH = 256

#: The summary advises training longer when the loss fell by more than this fraction over the
#: last tenth of the epochs (at least 2) of a run that ended by its epoch count.
FAST_FALL = 0.1

STOP_REASONS = {
    "epochs": "ran all the epochs asked for",
    "tolerance_grad": "the optimizer's largest gradient entry fell to tolerance_grad",
    "tolerance_change": "the loss fell by less than tolerance_change (relative) in an iteration",
    "max_fun": "the optimizer used its budget of function evaluations (max_fun)",
    "line_search": "the optimizer's line search could not lower the loss any more",
    "converged": "the monitored loss stopped improving by tol",
    "max_time": "reached max_time",
    "callback": "a callback asked to stop",
    "diverged": "the loss diverged",
    "stalled": "the schedule undid too many epochs in a row",
}


class DivergenceError(ArithmeticError):
    """Training diverged: a non-finite loss or weights, or a loss clearly above the start.

    The network's weights and the optimizer's state are those of the start of the last
    accepted epoch (the message says which). ``history`` holds what was recorded up to then; ``suggestion`` is
    ``find_lr``'s suggestion from there (None if it could not be computed).
    """

    def __init__(self, epoch: int, loss: float, lr: float, history: "History",
                 suggestion: Optional[float] = None) -> None:
        self.epoch, self.loss, self.lr, self.history = epoch, loss, lr, history
        self.suggestion = suggestion
        where = ("the starting weights" if history.epochs == 0
                 else f"the weights after epoch {history.epochs - 1}")
        hint = (f"gd.find_lr suggests {suggestion:.3g} with this optimizer"
                if suggestion is not None else "gd.find_lr(network, X, y) suggests one")
        started = ("" if math.isnan(history.start_loss)
                   else f" (started at {history.start_loss:.6g})")
        super().__init__(
            f"training diverged at epoch {epoch}: loss {loss} with learning rate {lr:g}"
            f"{started}. The network and optimizer were restored to {where}. Try a smaller "
            f"learning rate ({hint}), lr='auto', fit(..., on_divergence='backoff') or "
            f"gd.schedules.BoldDriver.")


@dataclasses.dataclass
class History:
    """What ``fit`` recorded, one entry per kept epoch.

    Attributes
    ----------
    loss : list of float
        Training loss of each epoch: the sample-weighted mean of its batch losses, each
        measured before that batch's update (with full batches: the loss of the weights the
        epoch started from).
    val_loss : list of float
        Validation loss after each epoch (empty without validation data).
    lr : list of float
        Learning rate used in each epoch.
    metrics : dict of str to list of float
        Per-epoch values of the requested metrics (``"accuracy"``...) on the training data
        with the weights at the end of each epoch, and ``"val_<name>"`` on the validation
        data; ``"train_loss"`` when ``restore_best_weights`` monitors it (see ``monitor``).
    epochs : int
        Epochs kept (an epoch undone by a rollback is not counted).
    best_epoch : int or None
        Index of the epoch with the lowest monitored loss.
    monitor : str
        What the stopping rules, the schedule and ``restore_best_weights`` watched:
        ``"val_loss"``, ``"loss"`` or ``"train_loss"``.
    converged : bool
        Stopped because the loss improved by less than ``tol`` for ``n_iter_no_change`` epochs,
        or because the optimizer converged (:class:`gdcore.LBFGS`: ``"tolerance_grad"`` or
        ``"tolerance_change"``).
    diverged : bool
        An epoch diverged (and was undone) at least once.
    stop_reason : str
        ``"epochs"``, ``"converged"``, ``"max_time"``, ``"callback"``, ``"diverged"`` or
        ``"stalled"``; with :class:`gdcore.LBFGS` also ``"tolerance_grad"``,
        ``"tolerance_change"``, ``"max_fun"`` or ``"line_search"`` (see ``STOP_REASONS``);
        empty while training runs or if an exception ended it.
    backoffs : int
        How many times the rate was cut after an undone epoch.
    events : list of dict
        Each undone epoch: ``{"epoch", "reason" ("diverged" or "loss rose"), "loss", "lr",
        "new_lr"}`` (``new_lr`` None when training stopped there).
    start_loss : float
        The training loss of the weights fit started from (see ``DIVERGENCE_FACTOR``); NaN
        when it was not needed: the first epoch's loss was not above a cheaper yardstick (the
        loss the last fit with this optimizer ended at, or the starting loss on 32 samples),
        and no later check needed it.
    lr_found : float or None
        The rate ``lr="auto"`` chose with the range test.
    suggested_lr : float or None
        After a divergence that ended training: ``find_lr``'s suggestion from there.
    time : float
        Wall time of the fit in seconds.
    backend : str
        The engine that trained: ``"cpp"`` or ``"numpy"``.
    """

    loss: list = dataclasses.field(default_factory=list)
    val_loss: list = dataclasses.field(default_factory=list)
    lr: list = dataclasses.field(default_factory=list)
    metrics: dict = dataclasses.field(default_factory=dict)
    epochs: int = 0
    best_epoch: Optional[int] = None
    monitor: str = "loss"
    converged: bool = False
    diverged: bool = False
    stop_reason: str = ""
    backoffs: int = 0
    events: list = dataclasses.field(default_factory=list)
    start_loss: float = math.nan
    lr_found: Optional[float] = None
    suggested_lr: Optional[float] = None
    time: float = 0.0
    backend: str = ""

    def __repr__(self) -> str:
        last = f"{self.loss[-1]:.6g}" if self.loss else "n/a"
        return (f"History(epochs={self.epochs}, loss={last}, best_epoch={self.best_epoch}, "
                f"stop_reason={self.stop_reason!r})")

    def _monitored(self) -> list:
        if self.monitor == "val_loss":
            return self.val_loss
        if self.monitor == "train_loss":
            return self.metrics.get("train_loss", [])
        return self.loss

    def summary(self) -> str:
        """A short report: why training stopped, epochs, best epoch and loss, time, the
        divergences and back-offs with their rates, and advice where it is plain."""
        reason = STOP_REASONS.get(self.stop_reason, "interrupted by an exception")
        lines = [f"stopped: {self.stop_reason or 'exception'} ({reason}) after {self.epochs} "
                 f"epoch{'s' if self.epochs != 1 else ''} in {self.time:.3g} s"
                 + (f" on the {self.backend} engine" if self.backend else "")]
        if self.loss:
            start = "" if math.isnan(self.start_loss) else f"{self.start_loss:.4g} at the start, "
            lines.append(f"loss: {start}{self.loss[0]:.4g} in epoch 0, {self.loss[-1]:.4g} in "
                         f"epoch {self.epochs - 1}")
        monitored = self._monitored()
        if self.best_epoch is not None and self.best_epoch < len(monitored):
            lines.append(f"best: epoch {self.best_epoch}, {self.monitor} "
                         f"{monitored[self.best_epoch]:.4g}")
        for name, values in self.metrics.items():
            if values and name != "train_loss":
                lines.append(f"{name}: {values[-1]:.4g} at the end")
        if self.lr:
            rates = f"{self.lr[0]:.3g}" if min(self.lr) == max(self.lr) else (
                f"{self.lr[0]:.3g} -> {self.lr[-1]:.3g} (min {min(self.lr):.3g}, "
                f"max {max(self.lr):.3g})")
            found = f" (lr='auto': the range test chose {self.lr_found:.3g})" \
                if self.lr_found is not None else ""
            lines.append(f"learning rate: {rates}{found}")
        shown = self.events if len(self.events) <= 6 else [*self.events[:3], None,
                                                          *self.events[-2:]]
        for e in shown:
            if e is None:
                lines.append(f"  ... {len(self.events) - 5} more undone epochs ...")
                continue
            then = (f"rate cut to {e['new_lr']:.3g}" if e["new_lr"] is not None
                    else "training stopped")
            lines.append(f"undone: epoch {e['epoch']} ({e['reason']}, loss {e['loss']:.4g} at "
                         f"rate {e['lr']:.3g}); {then}")
        advice = self._advice()
        if advice:
            lines.append(f"advice: {advice}")
        return "\n".join(lines)

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Draw the loss per epoch, the rate and the undone epochs with matplotlib: a shortcut
        for :func:`gdcore.plot.plot_history` (needs the extra ``gdcore[plot]``); returns the
        matplotlib Axes."""
        from .plot import plot_history
        return plot_history(self, ax=ax, **kwargs)

    def _advice(self) -> str:
        if self.stop_reason == "diverged":
            rate = self.events[-1]["lr"] if self.events else (self.lr[-1] if self.lr else None)
            at = f" at rate {rate:.3g}" if rate is not None else ""
            if self.suggested_lr is not None:
                return (f"diverged{at}: try find_lr's suggestion {self.suggested_lr:.3g}, "
                        f"or on_divergence='backoff'")
            return f"diverged{at}: try a smaller rate (gd.find_lr) or on_divergence='backoff'"
        if self.stop_reason == "epochs" and len(self.loss) >= 4:
            tail = max(2, len(self.loss) // 10)
            before, last = self.loss[-tail - 1], self.loss[-1]
            if before > 0 and (before - last) / before > FAST_FALL:
                return (f"the loss still fell {100 * (before - last) / before:.2g}% over the "
                        f"last {tail} epochs: train longer, or raise the rate")
        if self.stop_reason == "stalled":
            return "the rate kept overshooting: start from a smaller rate"
        return ""


# --- phase 1: validate ----------------------------------------------------------------------

class _Callback:
    """One user callback seen through Keras' three hooks (a plain callable is on_epoch_end)."""

    def __init__(self, cb: Any) -> None:
        self.begin = getattr(cb, "on_train_begin", None)
        self.epoch_end = getattr(cb, "on_epoch_end", None)
        self.end = getattr(cb, "on_train_end", None)
        if self.epoch_end is None and self.begin is None and self.end is None:
            self.epoch_end = cb


def _callbacks(callbacks: Any) -> list:
    if callbacks == ():  # the default: nothing to inspect
        return []
    if callable(callbacks) or any(hasattr(callbacks, h) for h in
                                  ("on_epoch_end", "on_train_begin", "on_train_end")):
        callbacks = (callbacks,)
    try:
        items = list(callbacks)
    except TypeError:
        raise TypeError("callbacks must be a sequence of callables or callback objects") \
            from None
    out = []
    for i, cb in enumerate(items):
        hooks = [getattr(cb, h, None) for h in ("on_train_begin", "on_epoch_end", "on_train_end")]
        if not (callable(cb) or any(callable(h) for h in hooks)):
            raise TypeError(f"callbacks[{i}] must be callable or have on_epoch_end / "
                            f"on_train_begin / on_train_end, got {cb!r}")
        out.append(_Callback(cb))
    return out


#: fit's scalar arguments (``train_epoch``'s too: the ones it shares).
FIT_CONSTRAINTS = {
    "epochs": v.Integer(low=1),
    "shuffle": v.FLAG,
    "restore_best_weights": v.FLAG,
    "progress": v.FLAG,
    "validation_split": v.FRACTION,
    "tol": v.OrNone(v.NON_NEGATIVE),
    "n_iter_no_change": v.Integer(low=1),
    "max_time": v.OrNone(v.POSITIVE),
    "on_divergence": v.Options(ON_DIVERGENCE),
    "batch_size": v.OrNone(v.Integer(low=1)),
    **v.REGULARISER_CONSTRAINTS,
}
_FIT_CHECKS = v.CheckedParams(FIT_CONSTRAINTS)


@dataclasses.dataclass
class _Plan:
    """Everything ``fit`` was asked to do, validated."""

    X: np.ndarray
    Y: np.ndarray
    w: Optional[np.ndarray]
    val: Optional[tuple]
    params: list
    epochs: int
    batch_size: int
    shuffle: bool
    seed: Any
    optimizer: Any
    tol: Optional[float]
    n_iter_no_change: int
    restore_best_weights: bool
    max_time: Optional[float]
    on_divergence: str
    callbacks: list
    progress: bool
    metrics: dict
    # The regularisers as train_epoch takes them: l2 times the sample weights' scale, the
    # label smoothing, the layers' dropout rates (None: none) and the masks' seed.
    regularisers: dict = dataclasses.field(default_factory=dict)
    #: l2 as given (the sampled yardstick may drop the weights, and with them their scale).
    l2: float = 0.0

    @functools.cached_property
    def rng(self) -> Optional[np.random.Generator]:
        """The shuffling Generator of ``seed`` (None without shuffling), made on first use:
        the runs of fit_many that share an integer seed draw from one Generator of their own,
        so theirs are never needed (making one costs tens of microseconds)."""
        return np.random.default_rng(self.seed) if self.shuffle else None


def _validate(network: Any, X: Any, y: Any, optimizer: Any, epochs: Any, batch_size: Any,
              shuffle: Any, validation_data: Any, validation_split: Any, sample_weight: Any,
              tol: Any, n_iter_no_change: Any, restore_best_weights: Any, max_time: Any,
              on_divergence: Any, callbacks: Any, progress: Any, seed: Any,
              metrics: Any, l2: Any = 0.0, label_smoothing: Any = 0.0, *,
              converted: Optional[dict] = None) -> _Plan:
    """Check every argument of fit and put the data in the engines' layout. Changes nothing.

    ``converted``: fit_many's dict of the data sets converted so far (see _network_data).
    """
    (epochs, shuffle, restore_best_weights, progress, validation_split, tol, n_iter_no_change,
     max_time, on_divergence, batch_size, l2, label_smoothing) = _FIT_CHECKS(
        epochs, shuffle, restore_best_weights, progress, validation_split, tol,
        n_iter_no_change, max_time, on_divergence, batch_size, l2, label_smoothing)
    v.check_label_smoothing(label_smoothing, network.loss_name)
    rates = network._dropout_rates()
    cbs = _callbacks(callbacks)
    chosen_metrics = get_metrics(metrics, network.loss_name) if metrics else {}
    X, Y, w, weight_shift = _network_data(network, converted, "training", X, y, sample_weight,
                                          with_scale=True)
    if validation_data is not None and validation_split > 0:
        raise ValueError("pass either validation_data or validation_split, not both")
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise TypeError("validation_data must be a tuple (X_val, y_val) or "
                            "(X_val, y_val, sample_weight_val)")
        val = _network_data(network, converted, "validation", *validation_data,
                            names=("validation_data X", "validation_data y",
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
        for part, weights in (("training", w), ("validation", val[2])):
            if weights is not None and not weights.sum(dtype=np.float64) > 0:
                raise ValueError(
                    f"sample_weight: the {part} part of validation_split={validation_split} "
                    f"has zero total weight; it needs a positive one")
    n = X.shape[0]
    opt = get_optimizer(optimizer)
    if opt.full_batch_solver and batch_size is not None and batch_size < n:
        raise ValueError(
            f"{type(opt).__name__} works on the full batch: batch_size must be None (or at "
            f"least the {n} training samples), got {batch_size}")
    if opt.full_batch_solver and rates is not None:
        raise ValueError(
            f"{type(opt).__name__} needs one deterministic objective: it cannot train layers "
            f"with dropout; set their dropout to 0 or use a mini-batch optimizer")
    batch_size = n if batch_size is None else min(batch_size, n)
    seed = v.seed(network.seed if seed is None else seed, "seed")  # checked even when unused
    params = network.parameters()
    v.trainable(params)
    # Only the regularisers in use become keywords: without any, the engine call is the plain one.
    regularisers: dict = {}
    if l2 > 0:
        regularisers["l2"] = v.scaled_l2(l2, weight_shift)
    if label_smoothing > 0:
        regularisers["label_smoothing"] = label_smoothing
    if rates is not None:
        regularisers.update(dropout=rates, dropout_seed=_dropout_seed(seed))
    return _Plan(X, Y, w, val, params, epochs, batch_size, shuffle, seed, opt, tol,
                 n_iter_no_change, restore_best_weights, max_time, on_divergence, cbs, progress,
                 chosen_metrics, regularisers, l2)


def _network_data(network: Any, converted: Optional[dict], which: str, *args: Any,
                  **kwargs: Any) -> tuple:
    """``network._data(*args, **kwargs)``. For fit_many (``converted`` a dict): the result
    for an earlier network of the same numbers of inputs and outputs, dtype and loss, all
    that the conversion depends on, so that its shared data is validated and converted once,
    not once per network, and such networks train on the same arrays (the engine runs
    networks of one shape as lanes of one pass only on the same data)."""
    if converted is None:
        return network._data(*args, **kwargs)
    key = (which, network.n_inputs, network.n_outputs, network.dtype, network.loss_name)
    if key not in converted:
        converted[key] = network._data(*args, **kwargs)
    return converted[key]


def _dropout_seed(seed: Any) -> int:
    """The seed of the dropout masks: fit's seed (or the network's), reduced modulo 2^64; one
    drawn from a Generator seed; one drawn from fresh entropy when there is none."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2 ** 63))
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    return int(seed) % 2 ** 64


# --- rollback: one checkpoint object owns everything an undo restores --------------------------

class Checkpoint:
    """A copy of all the training state one rollback restores, together: the parameters, the
    optimizer's state arrays and step count, its epoch count and back-off scale, and its
    schedule's ``state_dict()``.

    ``save()`` copies the live state into the checkpoint's own buffers (no allocation after
    the first); ``restore()`` copies it back, and may be repeated (it is idempotent, so an
    exception arriving in the middle of one is repaired by running it again).
    """

    def __init__(self, params: Sequence[np.ndarray], optimizer: Any) -> None:
        self._optimizer = optimizer
        self._n_params = len(params)
        self._live = [*params, *optimizer.state, optimizer.step, *optimizer._extra_state()]
        self._saved = [a.copy() for a in self._live]
        self._scalars = self._read_scalars()

    def _read_scalars(self) -> tuple:
        opt = self._optimizer
        state = opt.schedule.state_dict()
        return (opt.epochs_done, opt.lr_scale, copy.deepcopy(state) if state else {})

    @property
    def params(self) -> list:
        """The saved parameters (the checkpoint's own arrays: read, don't write)."""
        return self._saved[:self._n_params]

    def save(self) -> None:
        for saved, live in zip(self._saved, self._live):
            saved[...] = live  # (a third cheaper than np.copyto for small arrays)
        self._scalars = self._read_scalars()

    def save_scalars(self) -> None:
        """Save only the counts, scale and schedule state (after a rate cut at this point)."""
        self._scalars = self._read_scalars()

    def restore(self) -> None:
        for live, saved in zip(self._live, self._saved):
            np.copyto(live, saved)
        opt = self._optimizer
        opt.epochs_done, opt.lr_scale, schedule_state = self._scalars
        opt.schedule.load_state_dict(copy.deepcopy(schedule_state) if schedule_state else {})


def _restore(checkpoint: Checkpoint) -> None:
    """``checkpoint.restore()``, finished even if an exception (Ctrl-C) lands inside it."""
    try:
        checkpoint.restore()
    except BaseException:
        checkpoint.restore()
        raise


class _Rollback:
    """Where an undo goes back to, at the cost of one copy per epoch.

    An epoch's loss vouches for the weights it started from (with full batches it *is* their
    loss), so an undo goes back to the start of the last epoch whose loss was accepted
    (``accepted``) and forgets that epoch: the weights that are left are exactly those a kept
    loss describes. Each epoch's start is copied into a spare checkpoint, which becomes
    ``accepted`` when the epoch is accepted; no copy is needed while the live state still
    equals ``accepted`` (at the start of fit and right after an undo).
    """

    def __init__(self, params: Sequence[np.ndarray], optimizer: Any,
                 writing: Any = contextlib.nullcontext) -> None:
        self._params, self._optimizer = params, optimizer
        self._writing = writing  # the network's _writing_parameters (the C API's forwards wait)
        self.accepted = Checkpoint(params, optimizer)
        self.accepted_epoch = 0  # the epoch that starts at ``accepted``
        self.epoch_start = self.accepted
        self._spare: Optional[Checkpoint] = None
        self._live_is_accepted = True

    @property
    def live_is_accepted(self) -> bool:
        """Whether the live state still equals ``accepted`` (nothing ran since it was taken)."""
        return self._live_is_accepted

    def begin_epoch(self) -> None:
        if self._live_is_accepted:
            self.epoch_start = self.accepted
        else:
            if self._spare is None:
                self._spare = Checkpoint(self._params, self._optimizer)
            else:
                self._spare.save()
            self.epoch_start = self._spare
        self._live_is_accepted = False

    def accept(self, epoch: int) -> None:
        if self.epoch_start is not self.accepted:
            self._spare, self.accepted = self.accepted, self.epoch_start
        self.accepted_epoch = epoch

    def undo(self) -> int:
        """Back to ``accepted``; returns the epoch that starts there."""
        with self._writing():
            _restore(self.accepted)
        self._live_is_accepted = True
        return self.accepted_epoch

    def back_to_epoch_start(self) -> None:
        with self._writing():
            _restore(self.epoch_start)


# --- phases 2 and 3: prepare, then train epoch by epoch ----------------------------------------

def _progress_bar(enabled: bool, epochs: int) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn("progress=True needs tqdm (pip install 'gdcore[progress]'); "
                      "training without a progress bar", RuntimeWarning, stacklevel=4)
        return None
    return tqdm(total=epochs, unit="epoch", desc="fit", leave=True)


#: The optimizer attributes a failed first fit puts back (binding, lr="auto", counters).
_BINDING = ("_owner", "state", "step", "_adopt", "schedule", "_lr_auto", "lr_found",
            "lr_scale", "epochs_done")
#: sqrt(machine epsilon) per dtype: the divergence rule's absolute floor.
_FLOOR = {np.dtype(name): math.sqrt(float(np.finfo(name).eps)) for name in ("float32", "float64")}


class _Run:
    """One call of fit on a validated plan: prepare, then the epochs (under the network's lock)."""

    def __init__(self, network: Any, plan: _Plan) -> None:
        # What the engine's epochs need (train_epoch's too); fit's own state is made by open.
        self.network, self.plan, self.opt = network, plan, plan.optimizer
        self.engine = network._engine
        # The visiting order without shuffling (engine_epoch draws one per epoch with it).
        self.order = None if plan.shuffle else np.arange(plan.X.shape[0], dtype=np.int64)

    def _new_history(self) -> None:
        """The History and the bookkeeping of fit's epochs (open)."""
        plan, network = self.plan, self.network
        self.history = History(backend=network.backend)
        if plan.val is not None:
            self.history.monitor = "val_loss"
        elif plan.restore_best_weights and plan.batch_size < plan.X.shape[0]:
            # An epoch's mean batch loss describes weights that changed during the epoch;
            # restoring "the best" needs the loss of weights that exist: measure it.
            self.history.monitor = "train_loss"
        for name in plan.metrics:
            self.history.metrics[name] = []
            if plan.val is not None:
                self.history.metrics[f"val_{name}"] = []
        if self.history.monitor == "train_loss":
            self.history.metrics["train_loss"] = []
        self.best_monitored = math.inf
        self.best_params: Optional[list] = None
        self.tol_best, self.no_improvement = math.inf, 0
        self.undone_in_a_row = 0
        self.previous_loss: Optional[float] = None
        self.screen_loss: Optional[float] = None
        self.start_loss_ahead: Optional[float] = None
        self.full_batch = plan.batch_size >= plan.X.shape[0]
        self.floor = _FLOOR[network.dtype]  # (dtype.name is slow: keyed by the dtype)

    # --- prepare ------------------------------------------------------------------------
    def prepare(self) -> None:
        plan, opt, network = self.plan, self.opt, self.network
        params = plan.params
        # A fit that picks up where the last one on this network stopped knows that epoch's
        # loss: an epoch 0 not above it needs no measurement of the starting loss.
        last = getattr(opt, "_last_epoch", None)
        if opt._bound() is network and last is not None and last[0] == opt.steps_done:
            self.previous_loss = last[1]
        self.bind()
        self.history.lr_found = opt.lr_found
        self.rollback = _Rollback(params, opt, network._writing_parameters)
        if plan.restore_best_weights:
            self.best_params = [p.copy() for p in params]
        # The starting loss: full batch, the first epoch's loss is exactly it; a continued fit
        # measures it only if its first epoch rises (see diverged); otherwise now, while the
        # live weights are the starting ones.
        if not self.full_batch and self.previous_loss is None:
            self.screen_loss = self._sampled_loss(SCREEN_SAMPLES)
        # From epoch 1 on the starting loss itself is needed (diverged): measured now, it
        # needs no copying of the starting weights in and out then. It is kept aside until
        # then, so history.start_loss is what it would be. (Not with dropout: its masks follow
        # the optimizer's step, so the value depends on when it is measured.)
        if not self.full_batch and plan.epochs > 1 and "dropout" not in plan.regularisers:
            self.start_loss_ahead = self._sampled_loss()

    def bind(self) -> None:
        """Bind the optimizer to the network (refused if it holds another network's state)
        and resolve ``lr="auto"`` with the range test."""
        plan, opt, network = self.plan, self.opt, self.network
        opt.bind(network, plan.params)
        opt._begin_call()
        if opt.lr_is_auto:
            from .lr_finder import find_lr
            found = find_lr(network, plan.X, plan.Y, optimizer=opt,
                            batch_size=min(plan.batch_size, AUTO_LR_MAX_BATCH), seed=plan.seed)
            opt.resolve_lr(found.suggestion)

    def _starting_loss(self) -> float:
        """The loss of the weights fit started from: recorded once, when first needed (as
        measured ahead by prepare, or measured now).

        Until epoch 1 is kept the checkpoint ``accepted`` still holds the starting state (later
        the loss is always known already); NaN if it cannot be measured any more.
        """
        history, rollback = self.history, self.rollback
        if math.isnan(history.start_loss) and rollback.accepted_epoch == 0:
            if self.start_loss_ahead is not None:
                history.start_loss = self.start_loss_ahead
            elif rollback.live_is_accepted:
                history.start_loss = self._sampled_loss()
            else:
                params = self.network.parameters()
                current = [p.copy() for p in params]
                try:
                    with self.network._writing_parameters():
                        for p, start in zip(params, rollback.accepted.params):
                            np.copyto(p, start)
                    history.start_loss = self._sampled_loss()
                finally:  # (an exception here is repaired by fit's undo of the epoch)
                    with self.network._writing_parameters():
                        for p, now in zip(params, current):
                            np.copyto(p, now)
        return history.start_loss

    def _sampled_loss(self, samples: int = START_LOSS_SAMPLES) -> float:
        """The loss of the live weights on up to ``samples`` evenly spaced training samples."""
        X, Y, w = self.plan.X, self.plan.Y, self.plan.w
        n = X.shape[0]
        if n > samples:
            # Every step-th row: a strided copy is several times cheaper than fancy indexing.
            rows = slice(None, (n // samples) * samples, n // samples)
            X, Y = np.ascontiguousarray(X[rows]), np.ascontiguousarray(Y[rows])
            w = None if w is None else np.ascontiguousarray(w[rows])
        # The yardstick of divergence measures what the epochs measure: the objective, with
        # dropout (the masks of the next step) when the layers have it.
        keywords = dict(self.plan.regularisers)
        if w is not None and not w.sum(dtype=np.float64) > 0:
            w = None
            if "l2" in keywords:
                keywords["l2"] = self.plan.l2  # (no weights: no scale on l2 either)
        if "dropout" in keywords:
            keywords["dropout_step"] = int(self.opt.step[0]) + 1
        return float(self.engine.loss(X, Y, w, **keywords))

    def _objective(self) -> dict:
        """The engine keywords of the training objective without dropout: l2 and label
        smoothing (when in use)."""
        return {key: value for key, value in self.plan.regularisers.items()
                if key in ("l2", "label_smoothing")}

    # --- one epoch ----------------------------------------------------------------------
    def engine_epoch(self, lr: float) -> float:
        """The engine's call for one epoch at rate ``lr`` (no checkpoint): its mean loss."""
        plan, opt = self.plan, self.opt
        if opt.full_batch_solver:  # the whole set, in its order
            return float(opt._engine_step(self.engine, plan.X, plan.Y, plan.w, lr,
                                          **self._objective()))
        if plan.shuffle:
            self.order = plan.rng.permutation(plan.X.shape[0]).astype(np.int64, copy=False)
        return float(self.engine.train_epoch(plan.X, plan.Y, plan.w, self.order,
                                             plan.batch_size, opt.code, opt.hyper(lr),
                                             opt.state, opt.step, **plan.regularisers))

    def epoch_job(self, lr: float) -> tuple:
        """The engine and its ``train_epoch`` arguments for an epoch at rate ``lr`` over
        ``self.order`` (all of them positional: ``train_epoch_many``'s job tuple)."""
        plan, opt = self.plan, self.opt
        reg = plan.regularisers
        return (self.engine, plan.X, plan.Y, plan.w, self.order, plan.batch_size, opt.code,
                opt.hyper(lr), opt.state, opt.step, reg.get("l2", 0.0),
                reg.get("label_smoothing", 0.0), reg.get("dropout"), reg.get("dropout_seed", 0))

    def rate(self, epoch: int) -> float:
        """The optimizer's learning rate for the next epoch (``epoch`` of this call), checked."""
        lr = self.opt.lr
        if not (math.isfinite(lr) and lr >= 0.0):
            raise ValueError(
                f"the learning rate for epoch {epoch} is {lr}: the optimizer's schedule "
                f"must give a finite rate >= 0")
        return lr

    def diverged(self, epoch: int, loss: float) -> bool:
        """Not finite (the engines return NaN for non-finite weights), or clearly above the
        loss the network started from."""
        if not math.isfinite(loss):
            return True
        if epoch == 0 and math.isnan(self.history.start_loss):
            # Not above a cheaper yardstick: the last epoch's loss of the fit this one
            # continues, or the starting loss on a few samples. Sane without measuring more.
            if self.previous_loss is not None:
                if loss <= self.previous_loss:
                    return False
            elif self.screen_loss is not None and loss <= SCREEN_MARGIN * self.screen_loss:
                return False
        start = self.history.start_loss
        if math.isnan(start):  # (known after the first epochs: no call then)
            start = self._starting_loss()
            if math.isnan(start):
                return False
        return loss > DIVERGENCE_FACTOR * start + self.floor

    def undo(self, epoch: int, reason: str, loss: float, lr: float) -> int:
        """Roll back to the start of the last accepted epoch and forget the epoch that started there;
        returns the epoch to run next."""
        history = self.history
        history.diverged |= reason == "diverged"
        back_to = self.rollback.undo()
        if back_to < epoch:  # the kept record of that epoch describes undone weights
            self._forget_last_epoch()
        history.events.append({"epoch": epoch, "reason": reason, "loss": loss, "lr": lr,
                               "new_lr": None})
        return back_to

    def _forget_last_epoch(self) -> None:
        history = self.history
        history.epochs -= 1
        for record in (history.loss, history.lr, history.val_loss, *history.metrics.values()):
            if len(record) > history.epochs:
                record.pop()
        # The undone epoch may have been the best. Its record is gone, but the weights we are
        # back at are at least as good as any kept (the kept best weights were these or
        # later ones): they end the last kept epoch, which becomes the best. (With full
        # batches they are in fact the weights of the forgotten loss, which a retry of that
        # epoch records again.)
        monitored = history._monitored()
        if history.best_epoch is not None and history.best_epoch >= history.epochs:
            if not monitored:
                history.best_epoch, self.best_monitored = None, math.inf
            elif self.best_params is not None:
                history.best_epoch = history.epochs - 1
                self.best_monitored = monitored[-1]
                self._keep_best(self.network.parameters())
            else:
                history.best_epoch = int(np.argmin(monitored))
                self.best_monitored = monitored[history.best_epoch]
        self.tol_best = min(monitored, default=math.inf)
        self.no_improvement = 0

    def _best_weights_now(self) -> list:
        """The weights the last recorded monitored loss describes."""
        if self.history.monitor == "loss":
            return self.rollback.epoch_start.params  # the loss of the epoch's start
        return self.network.parameters()

    def _keep_best(self, params: list) -> None:
        for target, p in zip(self.best_params, params):
            np.copyto(target, p)

    def record(self, epoch: int, loss: float, lr: float, monitored: float) -> None:
        plan, history = self.plan, self.history
        self.rollback.accept(epoch)
        self.opt.epochs_done += 1  # from here on the epoch is kept, whatever happens next
        self.undone_in_a_row = 0
        history.epochs += 1
        history.loss.append(loss)
        history.lr.append(lr)
        if plan.val is not None:
            history.val_loss.append(monitored)
        elif history.monitor == "train_loss":
            history.metrics["train_loss"].append(monitored)
        if plan.metrics:
            self._record_metrics()
        self.opt.schedule.observe(self.opt.epochs_done - 1, monitored)
        if monitored < self.best_monitored:
            self.best_monitored, history.best_epoch = monitored, epoch
            if self.best_params is not None:
                self._keep_best(self._best_weights_now())

    def _record_metrics(self) -> None:
        plan, metrics = self.plan, self.history.metrics
        loss_name = self.network.loss_name
        outputs = self.engine.forward(plan.X)
        for name, fn in plan.metrics.items():
            metrics[name].append(fn(outputs, plan.Y, plan.w, loss_name))
        if plan.val is not None:
            X_val, Y_val, w_val = plan.val
            outputs = self.engine.forward(X_val)
            for name, fn in plan.metrics.items():
                metrics[f"val_{name}"].append(fn(outputs, Y_val, w_val, loss_name))

    def monitored_loss(self, loss: float) -> float:
        # The validation loss is the plain data loss (no penalty, no smoothing), as the
        # network would be judged; the training loss is the objective the epochs report.
        if self.plan.val is not None:
            return float(self.engine.loss(*self.plan.val))
        if self.history.monitor == "train_loss":
            plan = self.plan
            return float(self.engine.loss(plan.X, plan.Y, plan.w, **self._objective()))
        return loss

    def stop_rule(self, epoch: int, loss: float, lr: float, monitored: float,
                  started: float) -> Optional[str]:
        plan, history = self.plan, self.history
        solver = self.opt._stop_reason()  # a full-batch solver that converged or gave up
        if solver is not None:
            history.converged = solver in ("tolerance_grad", "tolerance_change")
            return solver
        if plan.tol is not None:
            self.no_improvement = (self.no_improvement + 1
                                   if monitored > self.tol_best - plan.tol else 0)
            self.tol_best = min(self.tol_best, monitored)
            if self.no_improvement >= plan.n_iter_no_change:
                history.converged = True
                return "converged"
        if plan.callbacks:
            logs = {"epoch": epoch, "loss": loss,
                    "val_loss": history.val_loss[-1] if plan.val is not None else None,
                    "lr": lr, "network": self.network, "history": history}
            for name, values in history.metrics.items():
                logs[name] = values[-1]
            if any([bool(cb.epoch_end(epoch, logs)) for cb in plan.callbacks
                    if cb.epoch_end is not None]):  # call every one
                return "callback"
        if plan.max_time is not None and time.perf_counter() - started > plan.max_time:
            return "max_time"
        return None

    # --- the loop -----------------------------------------------------------------------
    # fit is run(); fit_many drives several runs through the same steps in lock-step (open,
    # start, then per epoch next_rate, begin_train, the engine's epoch, check, after_epoch;
    # finish; failed on an exception; close always), so each run decides as fit would.
    def run(self) -> History:
        self.open()
        try:
            self.start()
            while self.wants_epoch():
                lr = self.next_rate()
                try:
                    self.begin_train()
                    loss = self.engine_epoch(lr)
                    outcome = self.check(lr, loss)
                except BaseException:
                    self.abandon_epoch()
                    raise
                self.after_epoch(lr, loss, outcome)
            self.finish()
        except BaseException:
            self.failed()
            raise
        finally:
            self.close()
        return self.history

    def open(self) -> None:
        """Start the history, the clock and the progress bar; note what a failed call puts
        back."""
        plan, opt = self.plan, self.opt
        self._new_history()
        self.bar = _progress_bar(plan.progress, plan.epochs)
        self.started = time.perf_counter()
        # A call that fails before keeping any epoch leaves the optimizer as it was: unbound
        # if it was, with its lr="auto" unresolved if it was.
        self.binding = self._unbound_state()
        self.epochs_before = opt.epochs_done
        self.epoch = 0
        self.in_epoch = False
        self.kept_before = opt.epochs_done

    def start(self) -> None:
        """Prepare, then the callbacks' on_train_begin."""
        plan, history = self.plan, self.history
        self.prepare()
        if plan.callbacks:
            logs = {"network": self.network, "history": history}
            if any([bool(cb.begin(logs)) for cb in plan.callbacks
                    if cb.begin is not None]):
                history.stop_reason = "callback"

    def wants_epoch(self) -> bool:
        """Whether another epoch is to run."""
        return self.epoch < self.plan.epochs and not self.history.stop_reason

    def next_rate(self) -> float:
        """The rate of the next epoch (checked), before anything of that epoch runs."""
        lr = self.rate(self.epoch)
        self.kept_before = self.opt.epochs_done
        self.in_epoch = False
        return lr

    def begin_train(self) -> None:
        """The epoch's checkpoint; from here an exception undoes the epoch (abandon_epoch)."""
        self.in_epoch = True
        self.rollback.begin_epoch()

    def check(self, lr: float, loss: float) -> tuple:
        """Divergence first, then the schedule's verdict on the monitored loss; a sane epoch
        is recorded. Returns ``(reason, monitored)``: reason None when the epoch was kept."""
        history, opt = self.history, self.opt
        if (self.epoch == 0 and self.full_batch and math.isnan(history.start_loss)
                and math.isfinite(loss)):
            history.start_loss = loss  # full batch: the loss of the start weights
        reason = None
        monitored = math.nan
        if self.diverged(self.epoch, loss):
            reason = "diverged"
        else:
            monitored = self.monitored_loss(loss)
            if not opt.schedule.accepts(monitored):
                reason = "loss rose"
        if reason is None:
            self.record(self.epoch, loss, lr, monitored)
        return reason, monitored

    def abandon_epoch(self) -> None:
        """Anything that ends training before the epoch is kept (Ctrl-C, a signal handler's
        exception inside a step of either engine, a failing schedule) undoes the epoch: the
        model is left after the epochs kept so far."""
        if self.in_epoch and self.opt.epochs_done == self.kept_before:
            self.rollback.back_to_epoch_start()
        self.in_epoch = False

    def after_epoch(self, lr: float, loss: float, outcome: tuple) -> None:
        """Undo a refused epoch (and back off or stop), or count a kept one and apply the stop
        rules."""
        plan, history, bar = self.plan, self.history, self.bar
        reason, monitored = outcome
        self.in_epoch = False
        if reason is not None:
            self.epoch = self._after_undo(self.epoch, reason, loss, lr)
            return
        if bar is not None:
            bar.update(1)
            postfix = {"loss": f"{loss:.4g}"}
            if plan.val is not None:
                postfix["val_loss"] = f"{monitored:.4g}"
            bar.set_postfix(postfix, refresh=False)
        self.epoch += 1
        history.stop_reason = self.stop_rule(self.epoch - 1, loss, lr, monitored,
                                             self.started) or ""

    def finish(self) -> None:
        """The stop reason, the best weights and the callbacks' on_train_end."""
        plan, history = self.plan, self.history
        if not history.stop_reason:
            history.stop_reason = "epochs"
        if self.best_params is not None and history.best_epoch is not None:
            with self.network._writing_parameters():
                for target, p in zip(self.network.parameters(), self.best_params):
                    np.copyto(target, p)
        if plan.callbacks:
            logs = {"network": self.network, "history": history,
                    "stop_reason": history.stop_reason}
            for cb in plan.callbacks:
                if cb.end is not None:
                    cb.end(logs)

    def failed(self) -> None:
        """An exception ends the call: with no epoch kept, the optimizer's binding goes back."""
        if self.opt.epochs_done == self.epochs_before:
            self._put_back(self.binding)

    def close(self) -> None:
        """Always, last: the time, the optimizer's last epoch, the progress bar."""
        history, opt, bar = self.history, self.opt, self.bar
        history.time = time.perf_counter() - self.started
        if history.loss:
            opt._last_epoch = (opt.steps_done, history.loss[-1])
        if bar is not None:
            bar.set_description(f"fit: {history.stop_reason or 'interrupted'}",
                                refresh=False)
            bar.close()

    def _unbound_state(self) -> Optional[dict]:
        """What a call that fails before keeping an epoch puts back: the optimizer's binding,
        lr="auto" and counters if it is unbound (None if it is bound already)."""
        opt = self.opt
        keys = _BINDING + opt._EXTRA_BINDING
        return {key: getattr(opt, key) for key in keys} if opt._owner is None else None

    def _put_back(self, binding: Optional[dict]) -> None:
        if binding is not None:
            for key, value in binding.items():
                setattr(self.opt, key, value)

    def one_epoch(self) -> float:
        """``train_epoch``: bind as fit does, then one engine epoch, kept without checks."""
        opt = self.opt
        binding = self._unbound_state()
        try:
            self.bind()
            lr = self.rate(0)
        except BaseException:
            self._put_back(binding)
            raise
        loss = self.engine_epoch(lr)
        # Kept as fit keeps an epoch (no validation data: the epoch's loss is the monitored one).
        opt.epochs_done += 1
        opt.schedule.observe(opt.epochs_done - 1, loss)
        opt._last_epoch = (opt.steps_done, loss)
        return loss

    def _after_undo(self, epoch: int, reason: str, loss: float, lr: float) -> int:
        """Roll back, then back off (on_divergence="backoff" or a schedule that undoes
        epochs) or end training (stop / raise). Returns the epoch to run next."""
        plan, opt, history = self.plan, self.opt, self.history
        # The cut applies to the rate that failed, not to the one the undo restores, so that
        # repeated failures of the same epoch compound.
        failed_scale, failed_rate = opt.lr_scale, opt.schedule(opt.epochs_done)
        next_epoch = self.undo(epoch, reason, loss, lr)
        schedule_undoes = opt.schedule.undoes_epochs
        self.undone_in_a_row += 1
        if schedule_undoes and self.undone_in_a_row <= MAX_BACKOFFS:
            opt.schedule.rejected(failed_rate)
        elif (not schedule_undoes and plan.on_divergence == "backoff"
              and history.backoffs < MAX_BACKOFFS):
            opt.lr_scale = failed_scale * 0.5
        else:
            history.stop_reason = "stalled" if reason == "loss rose" else "diverged"
            if reason == "diverged":
                self._starting_loss()  # for the report (we are back where it can be measured)
                history.suggested_lr = self._suggestion()
                if plan.on_divergence != "stop":  # raise; or backoff gave up
                    raise DivergenceError(epoch, loss, lr, history, history.suggested_lr)
            return next_epoch
        # The cut belongs to the point we are back at: a later undo to it must keep it.
        self.rollback.accepted.save_scalars()
        history.backoffs += 1
        history.events[-1]["new_lr"] = opt.lr
        return next_epoch

    def _suggestion(self) -> Optional[float]:
        """find_lr's suggestion from the restored weights, for the advice (None if it fails)."""
        from .lr_finder import find_lr
        try:
            return float(find_lr(self.network, self.plan.X, self.plan.Y, optimizer=self.opt,
                                 batch_size=min(self.plan.batch_size, AUTO_LR_MAX_BATCH),
                                 seed=self.plan.seed).suggestion)
        except Exception:  # noqa: BLE001 - advice only; the divergence is the error to report
            return None


def fit(network: Any, X: Any, y: Any, optimizer: Any = None, epochs: int = 100,
        batch_size: Optional[int] = None, shuffle: bool = True, validation_data: Any = None,
        validation_split: float = 0.0, sample_weight: Any = None, tol: Optional[float] = None,
        n_iter_no_change: int = 5, restore_best_weights: bool = False,
        max_time: Optional[float] = None, on_divergence: str = "raise",
        callbacks: Sequence = (), progress: bool = False, seed: Any = None,
        metrics: Sequence[str] = (), l2: float = 0.0, label_smoothing: float = 0.0) -> History:
    """Train ``network`` on ``(X, y)`` by mini-batch gradient descent.

    Parameters
    ----------
    X : array (n_samples, n_inputs)
    y : array
        Targets: ``(n_samples, n_outputs)`` (or ``(n_samples,)`` for one output); for
        cross_entropy, integer class indices ``(n_samples,)`` or probabilities.
    optimizer : Optimizer, str or None
        An optimizer object (its state carries over between fit calls), a name
        (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"rprop"``, ``"lbfgs"``), or None
        for ``SGD(lr=0.01)``. :class:`gdcore.LBFGS` is a full-batch solver: each epoch is one
        of its steps (up to ``max_iter`` iterations) on the whole training set; it refuses a
        ``batch_size`` below the number of training samples, and fit stops when it converges
        or gives up (``stop_reason`` ``"tolerance_grad"``, ``"tolerance_change"``,
        ``"max_fun"`` or ``"line_search"``).
        An optimizer made with ``lr="auto"`` runs the learning-rate range test
        (:func:`gdcore.find_lr`, with this optimizer's kind and hyper-parameters, on the
        training data, seeded by ``seed``) at the start of its first fit and trains at its
        suggestion (``history.lr_found``).
    epochs : int
        Epochs to keep, >= 1 (an epoch undone by a rollback is run again).
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
        Stop when the monitored loss has not improved on its best by at least ``tol`` for
        ``n_iter_no_change`` epochs in a row.
    restore_best_weights : bool
        End with the weights whose monitored loss was the lowest. The monitored loss is the
        validation loss (of the weights at the end of each epoch) when there is validation
        data; else, with full batches, the epoch's training loss, which is the loss of the
        weights the epoch started from (those are restored, so ``net.loss(X, y)`` equals
        ``min(history.loss)``); else (mini-batches, no validation data) the training loss of
        the weights at the end of each epoch, measured with one more pass over the training
        data and recorded as ``history.metrics["train_loss"]``.
    max_time : float or None
        Seconds; stop after the epoch that crosses it.
    on_divergence : {"raise", "stop", "backoff"}
        An epoch diverges when its loss or the weights are not finite, or its loss exceeds
        ``DIVERGENCE_FACTOR`` (1.5) times the loss of the starting weights (plus
        sqrt(machine epsilon)); the starting loss is exact with full batches and measured on
        up to 256 evenly spaced training samples with mini-batches (only when the first
        epoch's loss is above 1.2 times the loss of 32 of them, or above the last epoch's loss
        of the fit this one continues with the same optimizer: a cheaper first look). The network,
        the optimizer (state, step and epoch counts, back-off scale) and its schedule then go
        back to the start of the last epoch whose loss was sane, and that epoch is dropped from the
        history (its loss described the weights it started from): "raise" raises
        :class:`DivergenceError`, "stop" returns, "backoff" halves the learning rate and goes
        on (at most 30 times in one fit). A schedule that undoes epochs
        (:class:`gdcore.schedules.BoldDriver`) handles divergence itself: it cuts its rate.
    callbacks : sequence
        Callables ``cb(epoch, logs)`` called after every epoch, or objects with any of
        ``on_train_begin(logs)``, ``on_epoch_end(epoch, logs)``, ``on_train_end(logs)`` (as
        Keras). ``logs`` holds ``loss``, ``val_loss``, ``lr``, the metrics, ``network`` and
        ``history``. Any true return value of ``on_train_begin`` or ``on_epoch_end`` stops
        training (every callback is still called for that epoch).
    progress : bool
        Show a tqdm progress bar with the loss and validation loss (needs ``tqdm``); when it
        closes it says why training stopped.
    seed : int, Generator or None
        Shuffling seed (and the range test's for ``lr="auto"``, and the seed of the dropout
        masks); None uses the network's. Without either, layers with dropout draw their
        masks' seed from fresh entropy (one from the Generator for a Generator seed).
    metrics : sequence of str
        ``"accuracy"`` (classification losses), ``"mse"``, ``"mae"``, ``"r2"``: recorded in
        ``history.metrics[name]`` per epoch on the training data with the weights at the end
        of the epoch (one more forward pass), and ``["val_" + name]`` on the validation data.
    l2 : float >= 0
        L2 penalty on the weights (not the biases), scikit-learn's ``alpha``: each batch's
        objective is its loss plus ``0.5 * l2 * sum_i ||W_i||^2 / sum(w)``, ``sum(w)`` the
        batch's sample count (or the sum of its sample weights), so the gradient gains
        ``l2 * W_i / sum(w)``. Unlike an optimizer's ``weight_decay``, it is part of the loss
        (``history.loss`` includes it) and is scaled by the batch size as scikit-learn's.
    label_smoothing : float in [0, 1)
        cross_entropy and bce only: the targets become ``(1 - eps) y + eps / k`` (k classes;
        ``eps / 2`` for bce), as ``torch.nn.CrossEntropyLoss(label_smoothing=eps)``.

    Dropout is a property of the layers (``Layer(..., dropout=p)``,
    ``Network.from_sizes(..., dropout=p)``): during the epochs every hidden layer with a rate
    drops its outputs with a fresh mask per optimizer step (inverted dropout; masks from the
    seed above, the step count and the layer, the same on both engines).

    The training loss (``history.loss``, the divergence rule's starting loss, and the
    ``"train_loss"`` that ``restore_best_weights`` may monitor) is the objective: data loss
    with label smoothing plus the l2 penalty (and, for the epochs and the starting loss, under
    dropout). The validation loss (``history.val_loss``) is the plain data loss of the
    network as it predicts: no penalty, no smoothing, no dropout.

    Returns
    -------
    History

    Notes
    -----
    Invalid arguments raise ``ValueError``/``TypeError`` before anything changes. Any
    exception that ends fit (Ctrl-C, an exception raised by a signal handler, a schedule, a
    metric or a callback that raises) leaves the network and optimizer after the epochs kept
    so far: an epoch that had not been recorded when the exception came (the compiled core
    stops between two steps, the NumPy engine possibly inside one) is undone, back to its
    start, on both engines. So parameters, optimizer state and ``step`` always equal a replay
    of whole epochs (``epochs_done`` of them; none: the state at the start of fit), and fit may
    be called again to go on. ``restore_best_weights`` is not applied when an exception ends
    fit.
    """
    plan = _validate(network, X, y, optimizer, epochs, batch_size, shuffle, validation_data,
                     validation_split, sample_weight, tol, n_iter_no_change,
                     restore_best_weights, max_time, on_divergence, callbacks, progress, seed,
                     metrics, l2, label_smoothing)
    # The lock covers the optimizer's binding and every checkpoint, so another thread's call
    # on this network can neither interleave with the epochs nor be half-copied.
    with network._lock:
        return _Run(network, plan).run()


def train_epoch(network: Any, X: Any, y: Any, optimizer: Any, batch_size: Optional[int] = None,
                shuffle: bool = False, seed: Any = None, sample_weight: Any = None,
                l2: float = 0.0, label_smoothing: float = 0.0) -> float:
    """One epoch of ``optimizer`` on ``network``: the engine call ``fit`` makes per epoch.

    No history, no divergence check, no callbacks: for benchmarks and custom training loops.
    The arguments are checked by the same public rules as :func:`fit` (same messages), before
    anything changes. The optimizer is bound as in ``fit`` (one that holds another network's
    state is refused; ``lr="auto"`` runs the range test first) and keeps its state: its
    ``step`` and ``epochs_done`` advance and its schedule observes the epoch's loss, so with
    ``shuffle=False`` a call equals one epoch of ``fit(..., epochs=1, shuffle=False)`` and
    consecutive calls equal consecutive epochs.

    Parameters
    ----------
    X, y, sample_weight, batch_size, seed, l2, label_smoothing
        As in :func:`fit` (``batch_size=None``: full batch, one step; the layers' dropout
        applies, its masks seeded by ``seed`` as in fit).
    optimizer : Optimizer or str
        An optimizer object (its state carries over between calls) or a name.
    shuffle : bool
        Visit the samples in a random order drawn from ``seed`` (None: the network's seed);
        False (the default) visits them in order.

    Returns
    -------
    float
        The epoch's loss: the sample-weighted mean of its batch losses, each measured before
        that batch's update (NaN when the weights became non-finite).

    Notes
    -----
    Nothing rolls back: an exception inside the epoch (Ctrl-C) leaves the network and the
    optimizer after the steps done so far, whereas ``fit`` would undo that epoch.
    """
    plan = _validate(network, X, y, optimizer, 1, batch_size, shuffle, None, 0.0,
                     sample_weight, None, 5, False, None, "raise", (), False, seed, (), l2,
                     label_smoothing)
    with network._lock:
        return _Run(network, plan).one_epoch()


# --- fit_many: several networks, one engine call per epoch ---------------------------------

def _fit_keywords() -> dict:
    """fit's keyword arguments after ``(network, X, y, optimizer)`` and their defaults."""
    import inspect
    params = list(inspect.signature(fit).parameters.values())[4:]
    return {p.name: p.default for p in params}


_FIT_KEYWORDS = _fit_keywords()


def _many_networks(networks: Any) -> list:
    """The Networks of ``networks`` (Perceptrons give theirs), checked to train together."""
    from .network import Network, Perceptron
    if isinstance(networks, (Network, Perceptron)) or not isinstance(networks, Sequence):
        raise TypeError(f"networks must be a list of Networks, got {type(networks).__name__}")
    nets = []
    for i, net in enumerate(networks):
        if isinstance(net, Perceptron):
            net = net.network
        if not isinstance(net, Network):
            raise TypeError(f"networks[{i}] must be a gdcore Network or Perceptron, got "
                            f"{type(net).__name__}")
        for j, other in enumerate(nets):
            if other is net:
                raise ValueError(f"networks[{i}] is networks[{j}] again: each network may "
                                 f"appear once")
        nets.append(net)
    if not nets:
        raise ValueError("networks must hold at least one network")
    first = nets[0]
    for i, net in enumerate(nets[1:], 1):
        for what, mine, theirs in (("inputs", net.n_inputs, first.n_inputs),
                                   ("outputs", net.n_outputs, first.n_outputs)):
            if mine != theirs:
                raise ValueError(f"networks[{i}] has {mine} {what}, networks[0] has {theirs}: "
                                 f"fit_many trains networks of the same input and output "
                                 f"sizes")
        if net.dtype != first.dtype:
            raise ValueError(f"networks[{i}] is {net.dtype.name}, networks[0] is "
                             f"{first.dtype.name}: fit_many trains networks of one dtype")
        if net.backend != first.backend:
            raise ValueError(f"networks[{i}] runs on the {net.backend} engine, networks[0] on "
                             f"the {first.backend} engine: fit_many trains networks of one "
                             f"engine")
    return nets


def _many_optimizers(optimizers: Any, n: int) -> list:
    """One optimizer argument per network: None or a name given once are repeated (each
    network gets its own fresh optimizer, as fit makes one); optimizer objects come in a list,
    one per network, since each holds the state of one network."""
    from .optimizers import Optimizer
    if optimizers is None or isinstance(optimizers, str):
        return [optimizers] * n
    if isinstance(optimizers, Optimizer):
        raise TypeError(
            "optimizers must be None, a name or a list of one optimizer per network: an "
            "optimizer object holds the state of one network (for copies of one, pass "
            "[copy.deepcopy(opt) for _ in networks])")
    if not isinstance(optimizers, Sequence):
        raise TypeError(f"optimizers must be None, a name or a list, got "
                        f"{type(optimizers).__name__}")
    items = list(optimizers)
    if len(items) != n:
        raise ValueError(f"optimizers holds {len(items)} entries for {n} networks; it needs "
                         f"one per network")
    for i, opt in enumerate(items):
        if isinstance(opt, Optimizer):
            for j in range(i):
                if items[j] is opt:
                    raise ValueError(f"optimizers[{i}] is optimizers[{j}] again: an optimizer "
                                     f"holds the state of one network")
    return items


class _SharedOrders:
    """The visiting orders of runs that shuffle from the same integer seed: each such run
    draws the same permutations as its own fit would (a Generator of that seed, one per
    epoch it trains, undone ones included), so the group draws each one once."""

    def __init__(self, runs: Sequence["_Run"]) -> None:
        self._groups: dict = {}   # seed -> [Generator, first draw kept, permutations]
        self._draws: dict = {}    # run -> permutations the run has taken
        for run in runs:
            plan = run.plan
            if plan.shuffle and isinstance(plan.seed, int) \
                    and not run.opt.full_batch_solver:
                if plan.seed not in self._groups:  # (one Generator per seed: ~40 us each)
                    self._groups[plan.seed] = [np.random.default_rng(plan.seed), 0, []]
                self._draws[run] = 0

    def next_order(self, run: "_Run") -> None:
        """Set ``run.order`` to the permutation of its next epoch."""
        plan = run.plan
        if not plan.shuffle:
            return
        drawn = self._draws.get(run)
        if drawn is None:  # a Generator seed, or fresh entropy: its own stream
            run.order = plan.rng.permutation(plan.X.shape[0]).astype(np.int64, copy=False)
            return
        group = self._groups[plan.seed]
        orders = group[2]
        k = drawn - group[1]
        while len(orders) <= k:
            orders.append(group[0].permutation(plan.X.shape[0]).astype(np.int64, copy=False))
        run.order = orders[k]
        self._draws[run] = drawn + 1

    def forget(self, live: Sequence["_Run"]) -> None:
        """Drop the permutations no live run will take any more."""
        for seed, group in self._groups.items():
            drawn = [self._draws[r] for r in live if r in self._draws and r.plan.seed == seed]
            done = (min(drawn) if drawn else group[1] + len(group[2])) - group[1]
            if done > 0:
                del group[2][:done]
                group[1] += done


def fit_many(networks: Sequence[Any], X: Any, y: Any, optimizers: Any = None,
             **fit_kwargs: Any) -> list:
    """Train several networks on the same data at once: ``[fit(net, X, y, opt, **fit_kwargs)
    for net, opt in zip(networks, optimizers)]`` in one engine call per epoch.

    Each network's result (weights, optimizer state, History) equals that of its own
    :func:`fit` call with the same arguments: the same batches (the same shuffling order for
    the same seed), the same arithmetic, the same per-epoch decisions (divergence checks and
    rollbacks, schedules, stopping rules, callbacks, restore_best_weights). The epochs run in
    lock-step: each epoch, one engine call (``train_epoch_many``) trains every network that is
    still training, interleaved batch by batch and, on the compiled engine, split over
    :func:`gdcore.get_num_threads` threads; a network that stops early (tol, divergence,
    max_time, callbacks) drops out, one whose epoch was undone runs it again. On the compiled
    engine, networks of one shape (all layers alike) with small products and no dropout run as
    the vector lanes of one pass per batch (up to 16 float32 or 8 float64 networks a group): a
    sweep of small networks then shares the work of each step, and each network still equals
    its own fit.

    Parameters
    ----------
    networks : list of Network (or Perceptron)
        Distinct networks with the same numbers of inputs and outputs, the same dtype and the
        same engine (ValueError naming the first that differs). Their layers may differ.
    X, y
        As in :func:`fit`, shared by all the networks.
    optimizers : None, str or list
        None: each network gets fit's default, its own ``SGD(lr=0.01)``; a name: each its own
        fresh optimizer of that kind; a list of one entry per network (an optimizer object, a
        name or None each). A single optimizer object is refused (TypeError): an optimizer
        holds the state of one network (after fit_many each object holds its network's state,
        so a later ``fit(net, X, y, opt)`` continues it), so pass one per network, e.g.
        ``[gd.SGD(lr=r) for r in rates]`` or ``[copy.deepcopy(opt) for _ in networks]``.
    **fit_kwargs
        Any keyword argument of :func:`fit` (``epochs``, ``batch_size``, ``seed``,
        ``on_divergence``, ...), applied to every network.

    Returns
    -------
    list of History
        One per network, in order.

    Notes
    -----
    Every argument of every network is validated before anything changes. An exception that
    ends the call (a DivergenceError with ``on_divergence="raise"``, Ctrl-C, a callback's
    exception) leaves each network and optimizer after the epochs it kept so far, as fit does
    (a network that kept none: as it was); for sweeps, ``on_divergence="stop"`` or
    ``"backoff"`` lets a too-large rate end or cut back alone. Shuffling from a shared
    ``numpy.random.Generator`` seed draws from it in the lock-step order (network 0's epoch 0,
    network 1's epoch 0, ...), not in the order sequential fit calls would; an integer seed
    (or each network's own) gives each network exactly its own fit's orders.
    """
    from . import _backend
    nets = _many_networks(networks)
    opts = _many_optimizers(optimizers, len(nets))
    unknown = sorted(set(fit_kwargs) - set(_FIT_KEYWORDS))
    if unknown:
        raise TypeError(f"fit_many() got unexpected keyword arguments {unknown}; it takes "
                        f"fit's: {sorted(_FIT_KEYWORDS)}")
    kwargs = {**_FIT_KEYWORDS, **fit_kwargs}
    converted: dict = {}
    plans = [_validate(net, X, y, opt, **kwargs, converted=converted)
             for net, opt in zip(nets, opts)]
    for i, plan in enumerate(plans):
        for j in range(i):
            if plans[j].optimizer is plan.optimizer:
                raise ValueError(f"optimizers[{i}] is optimizers[{j}] again: an optimizer "
                                 f"holds the state of one network")
    n_threads = _backend.get_num_threads()
    with contextlib.ExitStack() as stack:
        # Every network's lock, in one global order (no deadlock with another fit_many).
        for net in sorted(nets, key=id):
            stack.enter_context(net._lock)
        runs = [_Run(net, plan) for net, plan in zip(nets, plans)]
        return _run_many(runs, n_threads)


def _run_many(runs: list, n_threads: int) -> list:
    """The runs of fit_many in lock-step (see _Run.run, the same steps for one run)."""
    engine_class = type(runs[0].engine)
    orders = _SharedOrders(runs)
    opened: list = []
    try:
        for run in runs:
            run.open()
            opened.append(run)
        for run in runs:
            run.start()
        live = [run for run in runs if run.wants_epoch()]
        while live:
            rates = [run.next_rate() for run in live]
            try:
                jobs = []
                for run, lr in zip(live, rates):
                    run.begin_train()
                    if not run.opt.full_batch_solver:
                        orders.next_order(run)
                        jobs.append(run.epoch_job(lr))
                # One engine call for the mini-batch runs, then the full-batch solvers' epochs;
                # the losses in live's order.
                batched = iter(engine_class.train_epoch_many(jobs, n_threads) if jobs else ())
                losses = [run.engine_epoch(lr) if run.opt.full_batch_solver
                          else float(next(batched)) for run, lr in zip(live, rates)]
                outcomes = [run.check(lr, loss) for run, lr, loss in zip(live, rates, losses)]
            except BaseException:
                for run in live:
                    run.abandon_epoch()
                raise
            # Every run settles its epoch (an undo, the stop rules) even when one raises (a
            # DivergenceError, a callback's exception), so none is left on an epoch it refused;
            # then the first exception ends the call.
            error: Optional[BaseException] = None
            for run, lr, loss, outcome in zip(live, rates, losses, outcomes):
                try:
                    run.after_epoch(lr, loss, outcome)
                except BaseException as exc:  # noqa: B036 - re-raised below
                    error = error or exc
            if error is not None:
                raise error
            live = [run for run in runs if run.wants_epoch()]
            orders.forget(live)
        for run in runs:
            run.finish()
    except BaseException:
        for run in opened:
            run.failed()
        raise
    finally:
        for run in opened:
            run.close()
    return [run.history for run in runs]

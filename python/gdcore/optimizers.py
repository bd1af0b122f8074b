"""Optimizers: the update rules of ``torch.optim``, with their state kept in NumPy arrays.

An optimizer object holds hyper-parameters and, once it has been used by ``fit``, the state of
one network (momentum buffers, Adam's moments, the step count, the epoch count of its learning
rate schedule). Passing the same object to ``fit`` again continues exactly where the last call
stopped. The arithmetic itself runs in the network's engine (C++ or the NumPy reference); the
formulas are in ``docs/design.md`` and ``gdcore/reference/optimizers.py``.

Resuming
--------
:meth:`Optimizer.state_dict` / :meth:`Optimizer.load_state_dict` work as in ``torch.optim``;
``network.save(path, optimizer=opt)`` and ``Network.load(path, optimizer=opt)`` store and
restore an optimizer along with its network (no pickle), and optimizers pickle: pickled
together, ``pickle.loads(pickle.dumps((net, opt)))`` gives an optimizer bound to the new
network. Either way, training resumes bit for bit where it stopped.

Changing hyper-parameters
-------------------------
Every constructor argument is also an attribute that may be assigned later
(``opt.momentum = 0.9``, ``opt.betas = (0.8, 0.99)``, ``opt.lr = 0.05``): an assignment runs
the constructor's check of that argument (:data:`HYPER_RULES`), so a value the constructor
refuses is refused with the same message, naming the attribute, on both engines, and the
attribute keeps its old value. Rules between attributes (``nesterov=True`` needs
``momentum > 0``) are checked when the optimizer is next used (the start of ``fit``, any
engine step), so they may be set in either order.
"""
from __future__ import annotations

import contextlib
import copy
import math
import numbers
import weakref
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from . import _validation as v
from . import schedules as _schedules
from .reference.codes import (HYPER, LBFGS_CONFIG, LBFGS_RUN, LBFGS_STATUS, OPTIMIZERS,
                              state_slots)
from .schedules import Constant, Schedule

LearningRate = Union[float, Schedule, str]

#: The keys of :meth:`Optimizer.state_dict`.
STATE_DICT_KEYS = ("name", "hyper", "lr_auto", "lr_found", "schedule", "state", "step",
                   "epochs_done", "lr_scale")
_SCHEDULE_KEYS = ("class", "params", "state")


class InvalidLearningRate(ValueError, TypeError):
    """A string other than ``"auto"`` given as the learning rate.

    A ValueError (the documented error) that is also a TypeError, since before ``lr="auto"``
    existed every string was rejected as a wrong type (callers may catch either).
    """


def _schedule_of(lr: Any) -> Schedule:
    """The schedule for a numeric or Schedule ``lr`` (``"auto"`` is handled by the caller)."""
    if isinstance(lr, Schedule):
        return lr
    expected = "lr must be a positive number, a gdcore.schedules.Schedule or 'auto'"
    if isinstance(lr, str):
        raise InvalidLearningRate(f"{expected}, got the string {lr!r}")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"{expected}, got {type(lr).__name__} {lr!r}")
    return Constant(lr)


def _pair(value: Any, name: str, element: v.Constraint) -> tuple:
    """A pair (tuple or list) of numbers, each checked by ``element``, stored as a tuple."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair of floats, got {value!r}")
    return (element(value[0], f"{name}[0]"), element(value[1], f"{name}[1]"))


def _line_search(value: Any, name: str) -> Optional[str]:
    """LBFGS's ``line_search``: ``"strong_wolfe"`` or None (fixed steps), as torch.optim.LBFGS."""
    if value is None or (isinstance(value, str) and value == "strong_wolfe"):
        return value
    raise ValueError(f"{name} must be 'strong_wolfe' or None, got {value!r}")


def _betas(value: Any, name: str) -> tuple:
    """Adam's ``betas``: a pair (tuple or list) of numbers in [0, 1), stored as a tuple."""
    return _pair(value, name, v.FRACTION)


#: The check of each hyper-parameter besides ``lr``, by its public name. The constructors and
#: attribute assignment (``opt.momentum = 0.9``) both run it, so they accept the same values
#: and refuse the others with the same message; it returns the value to store. ``lr`` has the
#: same rule in the constructor and in its setter (:attr:`Optimizer.lr`). Rules between
#: hyper-parameters are checked on use instead: see :meth:`Optimizer._check_combination`.
HYPER_RULES: Dict[str, v.Constraint] = {
    "momentum": v.FRACTION,
    "nesterov": v.FLAG,
    "betas": v.Constraint.of(_betas, "betas"),
    "eps": v.NON_NEGATIVE,
    "alpha": v.Real(low=0.0, high=1.0),
    "weight_decay": v.NON_NEGATIVE,
    "etas": v.Constraint.of(lambda value, name: _pair(value, name, v.POSITIVE), "etas"),
    "step_sizes": v.Constraint.of(lambda value, name: _pair(value, name, v.NON_NEGATIVE),
                                  "step_sizes"),
    # LBFGS (the engines take at most 100000 pairs)
    "history_size": v.Integer(low=1, high=100000),
    "max_iter": v.Integer(low=1),
    "max_eval": v.OrNone(v.Integer(low=1)),
    "tolerance_grad": v.NON_NEGATIVE,
    "tolerance_change": v.NON_NEGATIVE,
    "line_search": v.Constraint.of(lambda value, name: _line_search(value, name), "line_search"),
    "max_fun": v.OrNone(v.Integer(low=1)),
}


class Optimizer:
    """Base class: hyper-parameters, a learning-rate schedule and the per-network state.

    Subclasses set ``name``, ``default_lr`` and ``_HYPER`` (the constructor arguments besides
    ``lr``, each stored under its own name and checked by :data:`HYPER_RULES` whenever it is
    assigned, in the constructor or later); everything else is shared.

    Parameters
    ----------
    lr : float, Schedule or "auto"
        Learning rate (> 0 and finite), a schedule, or ``"auto"``: the learning-rate range test
        picks it at the start of ``fit`` (see :meth:`resolve_lr`). Until then the schedule is
        a placeholder ``Constant(default_lr)`` and reading :attr:`lr` raises RuntimeError.
    weight_decay : float
        >= 0.

    Raises
    ------
    TypeError
        ``lr`` is neither a number, a Schedule nor a string.
    ValueError
        ``lr`` is a number that is not > 0 and finite, or a string other than ``"auto"``
        (:class:`InvalidLearningRate`, also a TypeError).
    """

    name: str = ""
    #: True for a solver that works on the whole training set at once (fit refuses
    #: mini-batches); its engine call is :meth:`_engine_step` instead of ``train_epoch``.
    full_batch_solver: bool = False
    #: The keys of :meth:`state_dict` (a subclass may add its own).
    _STATE_DICT_KEYS: tuple = STATE_DICT_KEYS
    #: Attributes besides ``_BINDING``'s that a failed first fit puts back.
    _EXTRA_BINDING: tuple = ()
    #: The constructor's default learning rate (also the placeholder while ``lr="auto"``).
    default_lr: float = 0.01
    #: The hyper-parameters besides ``lr``: constructor arguments and attribute names alike.
    _HYPER: tuple = ("weight_decay",)
    #: The engines' hyper-parameter vector without ``lr``, kept by :meth:`hyper` until a
    #: hyper-parameter is assigned (see :meth:`_hyper_changed`); None: not built yet.
    _hyper_base: Optional[np.ndarray] = None

    def __init__(self, lr: LearningRate, weight_decay: float = 0.0) -> None:
        self._set_lr(lr)  # the lr setter's rule (subclasses may override the property)
        self.weight_decay = weight_decay
        self.reset()

    def __setattr__(self, name: str, value: Any) -> None:
        # The constructor's check of a hyper-parameter runs on every assignment, before
        # anything is stored: a refused value leaves the attribute as it was.
        if name in HYPER_RULES or name in self._HYPER:
            if name in HYPER_RULES and name in self._HYPER:
                value = HYPER_RULES[name](value, name)
            self._hyper_changed()
        object.__setattr__(self, name, value)

    def _hyper_changed(self) -> None:
        """Forget the vector :meth:`hyper` keeps: called on every assignment of a
        hyper-parameter (any name of ``HYPER_RULES`` or ``_HYPER``) and whenever the attributes
        are replaced wholesale (load_state_dict, unpickling)."""
        self.__dict__.pop("_hyper_base", None)

    def _check_combination(self) -> None:
        """The rules between hyper-parameters (none here; SGD: nesterov needs momentum).

        Checked by the constructor and whenever the optimizer is used (:meth:`bind` at the
        start of ``fit``, :meth:`hyper` before every engine call, :meth:`state_dict`), not on
        each assignment, so that related attributes can be set one at a time in any order.
        """

    # --- the hyper-parameters the engines read --------------------------------------------
    @property
    def code(self) -> int:
        """The engines' integer code of this update rule (their ``optimizer`` argument,
        ``codes.def``); ``name`` is its string name."""
        return OPTIMIZERS[self.name]

    @property
    def lr_is_auto(self) -> bool:
        """True while ``lr="auto"`` has not been resolved to a number (see :meth:`resolve_lr`)."""
        return self._lr_auto

    @property
    def lr(self) -> float:
        """The learning rate the next epoch will use (schedule value times any back-off).

        Assignable, with the constructor's rule for ``lr`` (a number > 0 and finite, a
        Schedule or ``"auto"``): ``opt.lr = 0.05`` replaces the schedule (a new one is
        evaluated at the optimizer's epoch count) and clears :attr:`lr_found` and the
        divergence back-off, so a number reads back as itself. A refused value changes
        nothing (TypeError or ValueError, as the constructor).

        Raises
        ------
        RuntimeError
            While ``lr="auto"`` is unresolved: there is no learning rate yet (returning the
            placeholder would silently train with a rate nobody chose).
        """
        if self._lr_auto:
            raise RuntimeError(
                f"{type(self).__name__}(lr='auto') has no learning rate yet: fit runs the "
                f"learning-rate range test at its start, or call resolve_lr(value)")
        return self.schedule(self.epochs_done) * self.lr_scale

    @lr.setter
    def lr(self, value: LearningRate) -> None:
        self._set_lr(value)

    def _set_lr(self, value: LearningRate) -> None:
        """The rule of ``lr``, for the constructor and the setter: every check runs first."""
        auto = isinstance(value, str) and value == "auto"
        schedule = Constant(self.default_lr) if auto else _schedule_of(value)
        self.schedule: Schedule = schedule
        self._lr_auto = auto
        #: The learning rate :meth:`resolve_lr` set (the range test's pick), else None.
        self.lr_found: Optional[float] = None
        self.lr_scale = 1.0

    def resolve_lr(self, value: float) -> None:
        """Fix the learning rate to ``value`` (what the range test found for ``lr="auto"``).

        The schedule becomes ``Constant(value)`` and :attr:`lr_found` records ``value``;
        :attr:`lr_is_auto` is False afterwards. It may be called on any optimizer (it replaces
        the schedule); :meth:`reset` keeps the resolved value.

        Raises
        ------
        TypeError, ValueError
            ``value`` is not a number > 0 and finite (nothing changes then).
        """
        schedule = Constant(value)
        self.schedule, self.lr_found, self._lr_auto = schedule, schedule.initial_lr, False

    def _n_slots(self) -> int:
        """State arrays per parameter (``codes.SLOTS``: more with momentum)."""
        return state_slots(self.name, getattr(self, "momentum", 0.0) > 0)

    def _hyper_values(self) -> Dict[str, float]:
        """This rule's entries of the engines' hyper-parameter vector besides ``lr`` and
        ``weight_decay``, by their names in ``codes.HYPER`` (those it does not use are 0).

        They may depend on the hyper-parameters only (the names in ``_HYPER`` and
        ``HYPER_RULES``): :meth:`hyper` keeps the vector until one of them is assigned."""
        raise NotImplementedError

    def hyper(self, lr: float) -> np.ndarray:
        """The engine's float64 hyper-parameter vector for learning rate ``lr``, laid out by
        ``codes.HYPER`` (``gdcore/codes.def``).

        Raises
        ------
        ValueError
            The hyper-parameters break a rule between them (see :meth:`_check_combination`).
        """
        # Built and checked once until a hyper-parameter changes (fit asks every epoch); the
        # rules between them depend on nothing else. Only lr is written per call.
        base = self._hyper_base
        if base is None:
            self._check_combination()
            # (The zeros first: the entries keep HYPER's order when the values replace them.)
            values = {**_ZERO_HYPER, "weight_decay": self.weight_decay, **self._hyper_values()}
            base = np.fromiter(values.values(), np.float64, len(HYPER))
            self._hyper_base = base
        vector = base.copy()
        vector[_LR_SLOT] = lr
        return vector

    def _hyper_args(self) -> Dict[str, Any]:
        """The constructor arguments besides ``lr``, as their current values."""
        return {key: getattr(self, key) for key in self._HYPER}

    # --- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all state: the next ``fit`` starts from zero buffers and epoch 0.

        Hyper-parameters, the schedule and a resolved ``lr="auto"`` are kept.
        """
        self.state: List[np.ndarray] = []
        self.step = np.zeros(1, dtype=np.int64)
        self.epochs_done = 0
        self.lr_scale = 1.0
        self._owner: Optional[weakref.ReferenceType] = None
        # True when the state came from load_state_dict or unpickling without a live network:
        # the next network it is used with takes it over if the shapes and dtypes fit.
        self._adopt = False

    @property
    def steps_done(self) -> int:
        """How many updates this optimizer has applied."""
        return int(self.step[0])

    def _bound(self) -> Any:
        """The network this optimizer holds the state of, or None (never used, or gone)."""
        return self._owner() if self._owner is not None else None

    @staticmethod
    @contextlib.contextmanager
    def _locked(*networks: Any) -> Iterator[None]:
        """Hold the lock of each network given (None entries skipped), so no fit on it runs
        while the state is read or replaced."""
        with contextlib.ExitStack() as stack:
            for network in networks:
                if network is not None:
                    stack.enter_context(network._lock)
            yield

    def bind(self, network: Any, params: Sequence[np.ndarray]) -> None:
        """Allocate zero state for ``params`` of ``network`` on first use.

        An optimizer carries the state of one network; using it on another one is refused
        (``reset()`` it first, or make a new one). State restored by :meth:`load_state_dict`
        on an unbound optimizer, or unpickled without its network, is taken over by the first
        network it is used with, after checking that it fits.

        If ``momentum`` was changed between zero and non-zero since the state was made, the
        momentum buffers are added (zero, as on a first step) or dropped to match.

        Raises
        ------
        ValueError
            The hyper-parameters break a rule between them (see :meth:`_check_combination`),
            bound to another network, or the restored state does not fit ``params`` (nothing
            changes then).
        """
        self._check_combination()
        owner = self._bound()
        if owner is network:
            # (Assigned only when they change: every assignment runs __setattr__, and fit
            # binds on every call.)
            if self._adopt:
                self._adopt = False
            state = self._with_slots(self.state, params)
            if state is not self.state:
                self.state = state
            return
        if owner is not None:
            raise ValueError(
                "this optimizer holds the state of another network; call optimizer.reset() "
                "or pass a new optimizer"
            )
        if self._adopt:
            state = self._fitted_state(self._with_slots(self.state, params), params,
                                       self._n_slots(), "the restored optimizer state")
            step = self.step
        else:
            state, step = self.zero_state(params)
        self.state, self.step, self._adopt = state, step, False
        self._owner = weakref.ref(network)

    def _with_slots(self, state: List[np.ndarray], params: Sequence[np.ndarray],
                    ) -> List[np.ndarray]:
        """``state`` with one momentum buffer per parameter added or dropped, when it holds
        one slot per parameter fewer or more than this optimizer needs now (``momentum`` was
        set between zero and non-zero); otherwise ``state`` itself.

        The momentum buffer is the last slot of each parameter (SGD: ``[buf]``; RMSprop:
        ``[square_avg, buf]``), and a zero buffer is what a first step starts from.
        """
        n, new = len(params), self._n_slots()
        if not n or len(state) == n * new or len(state) % n:
            return state
        old = len(state) // n
        if old == new + 1:
            return [a for i, a in enumerate(state) if i % old != old - 1]
        if old == new - 1:
            return [a for j, p in enumerate(params)
                    for a in [*state[j * old:(j + 1) * old], np.zeros_like(p)]]
        return state  # not a momentum change: _fitted_state or the engine says what is wrong

    def zero_state(self, params: Sequence[np.ndarray]) -> tuple:
        """Fresh ``(state, step)`` for ``params``: this rule's zero slot arrays (``n_slots`` per
        parameter, in engine order) and a zero step counter. Nothing is bound."""
        return _zeros(params, self._n_slots()), np.zeros(1, dtype=np.int64)

    @staticmethod
    def _fitted_state(state: Sequence[np.ndarray], params: Sequence[np.ndarray], n_slots: int,
                      what: str) -> List[np.ndarray]:
        """``state`` checked against ``params`` (``n_slots`` arrays per parameter, each of its
        shape and dtype); an empty ``state`` means not allocated yet and gives zeros."""
        if not state:
            return _zeros(params, n_slots)
        if len(state) != len(params) * n_slots:
            raise ValueError(
                f"{what} has {len(state)} arrays, but this network needs {n_slots} per "
                f"parameter array, {len(params) * n_slots} in all")
        for i, arr in enumerate(state):
            p = params[i // n_slots]
            if arr.shape != p.shape or arr.dtype != p.dtype:
                raise ValueError(
                    f"{what}: array {i} has shape {arr.shape} and dtype {arr.dtype}, but "
                    f"parameter {i // n_slots} of the network has shape {p.shape} and dtype "
                    f"{p.dtype}")
        return list(state)

    # --- state_dict, load_state_dict, pickling -----------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to resume, as a new dict (no array is shared with the optimizer).

        Returns
        -------
        dict
            ``name`` (the update rule, e.g. ``"adam"``); ``hyper`` (the constructor arguments
            besides ``lr``: e.g. ``momentum``, ``nesterov``, ``betas``, ``eps``, ``alpha``,
            ``weight_decay``); ``lr_auto`` (True while ``lr="auto"`` is unresolved) and
            ``lr_found`` (the value :meth:`resolve_lr` set, or None); ``schedule``
            (``{"class": its class name in gdcore.schedules, "params": schedule._params(),
            "state": schedule.state_dict()}``, which carries the learning rate); ``state``
            (list of copies of the slot arrays, ``n_slots`` per parameter in the order
            ``W0, b0, W1, b1, ...``; empty before the first ``fit``); ``step`` (int, updates
            applied); ``epochs_done`` (int); ``lr_scale`` (the divergence back-off factor).
            Everything but ``state`` is plain JSON-able Python (for gdcore's schedules).

        Raises
        ------
        ValueError
            The hyper-parameters break a rule between them (see :meth:`_check_combination`):
            :meth:`load_state_dict` could not take the result.
        """
        self._check_combination()
        owner = self._bound()
        with self._locked(owner):  # no fit may be half-way through the arrays
            # As the next use will have it, should momentum have crossed zero since.
            state = self.state if owner is None else self._with_slots(self.state,
                                                                      owner.parameters())
            return {
                "name": self.name,
                "hyper": copy.deepcopy(self._hyper_args()),
                "lr_auto": self._lr_auto,
                "lr_found": self.lr_found,
                "schedule": {"class": type(self.schedule).__name__,
                             "params": copy.deepcopy(self.schedule._params()),
                             "state": copy.deepcopy(self.schedule.state_dict())},
                "state": [a.copy() for a in state],
                "step": int(self.step[0]),
                "epochs_done": int(self.epochs_done),
                "lr_scale": float(self.lr_scale),
            }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (arrays are copied, not shared).

        The kind must match (a state of ``"adam"`` does not go into an SGD); hyper-parameters,
        the schedule (rebuilt from its class name and parameters, then its state loaded), the
        state arrays, ``step``, ``epochs_done``, ``lr_scale`` and ``lr="auto"`` are replaced.
        If the optimizer is bound to a live network, the arrays are checked against its
        parameters now; otherwise they are kept and checked against the first network the
        optimizer is used with (``fit`` then raises ValueError if they do not fit).

        Raises
        ------
        ValueError
            Another kind of optimizer, missing or unknown keys, invalid values, or arrays that
            do not fit the bound network.
        TypeError
            ``state_dict`` or one of its entries has the wrong type.

        On any error the optimizer is left exactly as it was.
        """
        owner = self._bound()
        with self._locked(owner):
            params = owner.parameters() if owner is not None else None
            new = self._checked(state_dict, params)
            new["_adopt"] = owner is None
            self.__dict__.update(new)  # all checks passed: assign in one go
            self._hyper_changed()

    def _restore(self, state_dict: Dict[str, Any], network: Any) -> None:
        """Load ``state_dict`` and bind to ``network`` (checked against its parameters),
        whatever network this optimizer was bound to before. Unchanged on any error."""
        previous = self._bound()
        with self._locked(network, previous if previous is not network else None):
            new = self._checked(state_dict, network.parameters())
            new["_adopt"] = False
            new["_owner"] = weakref.ref(network)
            self.__dict__.update(new)
            self._hyper_changed()

    def _state_dict_for(self, network: Any) -> Dict[str, Any]:
        """:meth:`state_dict` as it will be once bound to ``network`` (for saving with it).

        Raises ValueError if the optimizer holds the state of another network, or restored
        state that does not fit ``network``. Unused: empty state, step 0.
        """
        owner = self._bound()
        if owner is not None and owner is not network:
            raise ValueError(
                "this optimizer holds the state of another network, not of the one being "
                "saved; save that network with it, or pass optimizer.reset() first")
        result = self.state_dict()
        if owner is None:
            if self._adopt:
                params = network.parameters()
                result["state"] = self._fitted_state(
                    self._with_slots(result["state"], params), params, self._n_slots(),
                    "the restored optimizer state")
            else:  # what bind would do: fresh zero state
                result["state"], result["step"] = [], 0
        return result

    def _checked(self, state_dict: Any, params: Optional[Sequence[np.ndarray]],
                 ) -> Dict[str, Any]:
        """The attributes ``state_dict`` gives this optimizer, all validated (nothing assigned).

        ``params``: the network's parameter arrays to check the state against, or None.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        keys = self._STATE_DICT_KEYS
        missing = [k for k in keys if k not in state_dict]
        unknown = sorted(str(k) for k in state_dict if k not in keys)
        if missing or unknown:
            raise ValueError(f"state_dict must have the keys {list(keys)}; "
                             f"missing {missing}, unknown {unknown}")
        name = state_dict["name"]
        if name != self.name:
            raise ValueError(f"the state_dict is of a {name!r} optimizer; {type(self).__name__} "
                             f"({self.name!r}) cannot take it")
        new: Dict[str, Any] = {}

        # Hyper-parameters: a throw-away instance runs the constructor's own checks.
        hyper = state_dict["hyper"]
        if not isinstance(hyper, dict) or set(hyper) != set(self._HYPER):
            raise ValueError(f"state_dict['hyper'] must be a dict with the keys "
                             f"{sorted(self._HYPER)}, got {hyper!r}")
        try:
            probe = type(self)(**copy.deepcopy(hyper))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"state_dict['hyper']: {exc}") from None
        new.update(probe._hyper_args())
        n_slots = probe._n_slots()

        lr_auto = state_dict["lr_auto"]
        if not isinstance(lr_auto, (bool, np.bool_)):
            raise TypeError(f"state_dict['lr_auto'] must be a bool, got {lr_auto!r}")
        new["_lr_auto"] = bool(lr_auto)
        lr_found = state_dict["lr_found"]
        if lr_found is not None:
            lr_found = v.real(lr_found, "state_dict['lr_found']", low=0.0, low_open=True)
        new["lr_found"] = lr_found

        new["schedule"] = self._checked_schedule(state_dict["schedule"])

        state = state_dict["state"]
        if not isinstance(state, (list, tuple)):
            raise TypeError(f"state_dict['state'] must be a list of arrays, got "
                            f"{type(state).__name__}")
        arrays = []
        for i, arr in enumerate(state):
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"state_dict['state'][{i}] must be a NumPy array, got "
                                f"{type(arr).__name__}")
            if arr.dtype not in (np.float32, np.float64):
                raise ValueError(f"state_dict['state'][{i}] must be float32 or float64, got "
                                 f"{arr.dtype}")
            if not np.isfinite(arr).all():
                raise ValueError(f"state_dict['state'][{i}] contains NaN or infinity")
            arrays.append(np.array(arr, order="C", copy=True))  # own, C-contiguous copies
        if params is not None:
            arrays = self._fitted_state(arrays, params, n_slots, "state_dict['state']")
        new["state"] = arrays
        new["step"] = np.array([v.positive_int(state_dict["step"], "state_dict['step']", 0)],
                               dtype=np.int64)
        new["epochs_done"] = v.positive_int(state_dict["epochs_done"],
                                            "state_dict['epochs_done']", 0)
        new["lr_scale"] = v.real(state_dict["lr_scale"], "state_dict['lr_scale']", low=0.0,
                                 low_open=True)
        self._checked_extra(state_dict, new)
        return new

    def _checked_extra(self, state_dict: Dict[str, Any], new: Dict[str, Any]) -> None:
        """A subclass's own ``state_dict`` entries, checked into ``new`` (none here)."""

    def _extra_state(self) -> List[np.ndarray]:
        """State arrays besides ``state`` and ``step`` that the engine updates in place and a
        rollback restores (LBFGS: its run vector)."""
        return []

    def _stop_reason(self) -> Optional[str]:
        """Why training should stop after the last epoch, as the optimizer sees it (a
        converged solver), or None."""
        return None

    def _begin_call(self) -> None:
        """Called by fit and train_epoch once the optimizer is bound, before the first epoch
        (LBFGS: its kept objective is recomputed, since the data may have changed)."""

    def _checked_schedule(self, entry: Any) -> Schedule:
        """A new schedule from ``{"class", "params", "state"}``.

        The class is looked up in ``gdcore.schedules``; a user schedule is rebuilt only when
        the optimizer's current schedule is of a class with that name (nothing is imported).
        """
        if not isinstance(entry, dict) or set(entry) != set(_SCHEDULE_KEYS):
            raise ValueError(f"state_dict['schedule'] must be a dict with the keys "
                             f"{list(_SCHEDULE_KEYS)}, got {entry!r}")
        name, params, state = entry["class"], entry["params"], entry["state"]
        cls = getattr(_schedules, name, None) if isinstance(name, str) else None
        if not (isinstance(cls, type) and issubclass(cls, Schedule)):
            cls = type(self.schedule) if type(self.schedule).__name__ == name else None
        if cls is None:
            raise ValueError(f"state_dict['schedule']: unknown schedule class {name!r} (not "
                             f"in gdcore.schedules)")
        if not isinstance(params, dict) or not isinstance(state, dict):
            raise TypeError("state_dict['schedule'] params and state must be dicts")
        try:
            schedule = cls(**copy.deepcopy(params))
            schedule.load_state_dict(copy.deepcopy(state))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"state_dict['schedule'] ({name}): {exc}") from None
        return schedule

    def __getstate__(self) -> Dict[str, Any]:
        # The weakref to the network cannot be pickled: a strong reference takes its place, so
        # the network is pickled too (as torch pickles an optimizer's parameters) and, pickled
        # together, (net, opt) come back bound to each other.
        owner = self._bound()
        with self._locked(owner):
            state = dict(self.__dict__)
            state["state"] = [a.copy() for a in self.state]
            state["step"] = self.step.copy()
        state["_owner"] = owner
        state.pop("_hyper_base", None)  # (a cache: hyper() builds it again)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        owner = state.pop("_owner", None)
        self.__dict__.update(state)
        self._hyper_changed()
        self._owner = weakref.ref(owner) if owner is not None else None
        # Unpickled alone, the network copy is freed at once: the next network the optimizer
        # is used with then takes the state over (if it fits).
        self._adopt = bool(state.get("_adopt")) or owner is not None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._repr_args().items())
        return f"{type(self).__name__}({args})"

    def _repr_args(self) -> dict:
        lr: Any = self.schedule
        if self._lr_auto:
            lr = "auto"
        elif isinstance(self.schedule, Constant):
            lr = self.schedule.initial_lr
        return {"lr": lr, **self._hyper_args()}


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    Parameters
    ----------
    lr : float, Schedule or "auto"
        Learning rate, > 0 (``"auto"``: found by the range test at the start of ``fit``).
    momentum : float
        Heavy-ball momentum in [0, 1): ``buf = momentum * buf + g``.
    nesterov : bool
        Use Nesterov momentum (needs ``momentum > 0``).
    weight_decay : float
        L2 penalty added to the gradient: ``g += weight_decay * p``.
    """

    name = "sgd"
    default_lr = 0.01
    _HYPER = ("momentum", "nesterov", "weight_decay")

    def __init__(self, lr: LearningRate = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        self.momentum = momentum  # each checked by HYPER_RULES on assignment
        self.nesterov = nesterov
        self._check_combination()
        super().__init__(lr, weight_decay)

    def _check_combination(self) -> None:
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0 (set momentum > 0 or "
                             "nesterov = False)")

    def _hyper_values(self) -> Dict[str, float]:
        return {"momentum": self.momentum, "nesterov": float(self.nesterov)}


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (L2 ``weight_decay`` added to the gradient).

    Parameters
    ----------
    lr : float, Schedule or "auto"
        Learning rate, > 0 (``"auto"``: found by the range test at the start of ``fit``).
    betas : (float, float)
        Decay rates of the first and second moment estimates, each in [0, 1).
    eps : float
        Added to the denominator for numerical stability, >= 0.
    weight_decay : float
        L2 penalty added to the gradient.
    """

    name = "adam"
    default_lr = 0.001
    _HYPER = ("betas", "eps", "weight_decay")

    def __init__(self, lr: LearningRate = 0.001, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        self.betas = betas  # each checked by HYPER_RULES on assignment
        self.eps = eps
        super().__init__(lr, weight_decay)

    def _hyper_values(self) -> Dict[str, float]:
        return {"beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps}


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
    lr : float, Schedule or "auto"
        Learning rate, > 0 (``"auto"``: found by the range test at the start of ``fit``).
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
    default_lr = 0.01
    _HYPER = ("alpha", "eps", "momentum", "weight_decay")

    def __init__(self, lr: LearningRate = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        self.alpha = alpha  # each checked by HYPER_RULES on assignment
        self.eps = eps
        self.momentum = momentum
        super().__init__(lr, weight_decay)

    def _hyper_values(self) -> Dict[str, float]:
        return {"momentum": self.momentum, "eps": self.eps, "alpha": self.alpha}


class Rprop(Optimizer):
    """Rprop (resilient backpropagation), as ``torch.optim.Rprop``: each weight has its own
    step size, grown by ``etas[1]`` while its gradient keeps its sign and shrunk by ``etas[0]``
    when it flips (that step is then skipped), within ``step_sizes``; the update is
    ``p -= sign(g) * step size``. Best with full batches (``batch_size=None``), as FANN uses it.

    Parameters
    ----------
    lr : float, Schedule or "auto"
        The initial step size of every weight, > 0. As in torch, later changes of the rate (a
        schedule, a back-off after divergence) do not change the step sizes already adapted.
    etas : (float, float)
        ``(eta_minus, eta_plus)`` with ``0 < eta_minus < 1 < eta_plus``.
    step_sizes : (float, float)
        ``(minimum, maximum)`` step size, ``0 <= minimum <= maximum``.
    """

    name = "rprop"
    default_lr = 0.01
    _HYPER = ("etas", "step_sizes")

    def __init__(self, lr: LearningRate = 0.01, etas: tuple = (0.5, 1.2),
                 step_sizes: tuple = (1e-6, 50.0)) -> None:
        self.etas = etas  # each checked by HYPER_RULES on assignment
        self.step_sizes = step_sizes
        self._check_combination()
        super().__init__(lr, 0.0)

    def _check_combination(self) -> None:
        if not self.etas[0] < 1.0 < self.etas[1]:
            raise ValueError(f"etas must satisfy 0 < etas[0] < 1 < etas[1], got {self.etas}")
        if not self.step_sizes[0] <= self.step_sizes[1]:
            raise ValueError(f"step_sizes must be (minimum, maximum) with minimum <= maximum, "
                             f"got {self.step_sizes}")

    def _hyper_values(self) -> Dict[str, float]:
        return {"eta_minus": self.etas[0], "eta_plus": self.etas[1],
                "step_size_min": self.step_sizes[0], "step_size_max": self.step_sizes[1]}


class LBFGS(Optimizer):
    """L-BFGS on the full batch, with torch.optim.LBFGS's arguments and SciPy's L-BFGS-B rules.

    Each optimizer step (one epoch of ``fit``) runs up to ``max_iter`` iterations on the whole
    training set: the direction from the two-loop recursion over the last ``history_size``
    pairs (s, y) with H0 = (s'y / y'y) I, a step along it found by the Moré–Thuente line search
    (strong Wolfe conditions, ftol 1e-3, gtol 0.9, xtol 0.1, at most 20 evaluations), the
    first trial step ``lr / ||g||`` on the very first iteration and ``lr`` afterwards. Pairs
    with ``s'y <= eps * (-g's)`` are skipped; a failed line search forgets the pairs and
    retries along ``-g`` once. As L-BFGS-B (``scipy.optimize.minimize(method="L-BFGS-B")``
    without bounds) it stops when ``max |g| <= tolerance_grad`` (SciPy's ``gtol``) or when
    ``(f_old - f) <= tolerance_change * max(|f_old|, |f|, 1)`` (SciPy's ``ftol``), and
    ``fit`` then stops with that ``stop_reason``. The history, the gradient and the loss where
    it stands are kept between epochs and between ``fit`` calls (a new call recomputes the
    loss and gradient once: the data may differ).

    Parameters
    ----------
    lr : float or Schedule
        Scales every first trial step, > 0 (1, the default, is L-BFGS-B's); without a line
        search, the fixed step. Not ``"auto"``: the step comes from the line search.
    history_size : int
        Pairs kept, >= 1 (SciPy's ``maxcor``; scikit-learn uses its default 10). Assigned on
        a used optimizer, it restarts the history (the counts are kept).
    max_iter : int
        Iterations per optimizer step (per epoch), >= 1.
    max_eval : int or None
        Evaluations per step, checked after each iteration; None: ``max_iter * 5 // 4``.
    tolerance_grad, tolerance_change : float
        The convergence tests above, >= 0.
    line_search : "strong_wolfe" or None
        None takes fixed steps of ``lr`` along the direction (torch's default).
    max_fun : int or None
        A budget of evaluations over all steps: once more have been made (checked after each
        iteration, as SciPy's ``maxfun``), the step ends and ``fit`` stops (``"max_fun"``).

    Attributes
    ----------
    n_iter, func_evals : int
        Iterations and evaluations done in all (scikit-learn's ``n_iter_``; the evaluations
        include the one at the start of each fit call).
    status : str
        Why the last step ended: ``"running"`` (its ``max_iter``/``max_eval`` share was done),
        ``"tolerance_grad"``, ``"tolerance_change"``, ``"max_fun"`` or ``"line_search"`` (no
        step along ``-g`` lowered the loss).
    converged : bool
        ``status`` is one of the two tolerances.
    run_state : ndarray
        The engines' run vector (``codes.LBFGS_RUN``), updated in place.
    """

    name = "lbfgs"
    default_lr = 1.0
    full_batch_solver = True
    _HYPER = ("history_size", "max_iter", "max_eval", "tolerance_grad", "tolerance_change",
              "line_search", "max_fun")
    _STATE_DICT_KEYS = STATE_DICT_KEYS + ("run_state",)
    _EXTRA_BINDING = ("run_state",)
    #: Evaluations per line search (SciPy's ``maxls``).
    max_ls = 20

    def __init__(self, lr: Union[float, Schedule] = 1.0, history_size: int = 10,
                 max_iter: int = 20, max_eval: Optional[int] = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 line_search: Optional[str] = "strong_wolfe", max_fun: Optional[int] = None,
                 ) -> None:
        self.history_size = history_size  # each checked by HYPER_RULES on assignment
        self.max_iter = max_iter
        self.max_eval = max_eval
        self.tolerance_grad = tolerance_grad
        self.tolerance_change = tolerance_change
        self.line_search = line_search
        self.max_fun = max_fun
        super().__init__(lr, 0.0)

    def _set_lr(self, value: LearningRate) -> None:
        if isinstance(value, str) and value == "auto":
            raise ValueError("LBFGS does not take lr='auto': its steps come from the line "
                             "search (lr only scales the first trial step); give a number "
                             "(1.0, the default, is L-BFGS-B's)")
        super()._set_lr(value)

    def reset(self) -> None:
        super().reset()
        self.run_state = np.zeros(len(LBFGS_RUN), dtype=np.float64)

    def _n_slots(self) -> int:
        return state_slots(self.name, False, self.history_size)

    def _hyper_values(self) -> Dict[str, float]:
        return {}

    # --- the engine call -----------------------------------------------------------------
    def config(self, lr: float) -> np.ndarray:
        """The engines' float64 configuration vector for learning rate ``lr``
        (``codes.LBFGS_CONFIG``)."""
        values = {"lr": lr, "history_size": self.history_size, "max_iter": self.max_iter,
                  "max_eval": (self.max_iter * 5 // 4 if self.max_eval is None
                               else self.max_eval),
                  "tolerance_grad": self.tolerance_grad,
                  "tolerance_change": self.tolerance_change,
                  "line_search": 1.0 if self.line_search == "strong_wolfe" else 0.0,
                  "max_fun": math.inf if self.max_fun is None else self.max_fun,
                  "max_ls": self.max_ls}
        return np.array([float(values[name]) for name in LBFGS_CONFIG], dtype=np.float64)

    def _engine_step(self, engine: Any, X: np.ndarray, Y: np.ndarray,
                     w: Optional[np.ndarray], lr: float, **objective: float) -> float:
        """One step on the full batch; ``objective``: the engine's ``l2`` and
        ``label_smoothing`` keywords, when in use."""
        return engine.lbfgs_step(X, Y, w, self.config(lr), self.state, self.run_state,
                                 self.step, **objective)

    def _extra_state(self) -> List[np.ndarray]:
        return [self.run_state]

    def _begin_call(self) -> None:
        self.run_state[_RUN_INDEX["ready"]] = 0.0

    def _stop_reason(self) -> Optional[str]:
        status = self.status
        return None if status == "running" else status

    # --- what it reports -------------------------------------------------------------------
    @property
    def n_iter(self) -> int:
        """L-BFGS iterations done in all."""
        return int(self.run_state[_RUN_INDEX["iterations"]])

    @property
    def func_evals(self) -> int:
        """Objective and gradient evaluations done in all."""
        return int(self.run_state[_RUN_INDEX["evaluations"]])

    @property
    def status(self) -> str:
        """Why the last step ended (see the class docstring)."""
        return _STATUS_NAMES.get(int(self.run_state[_RUN_INDEX["status"]]), "running")

    @property
    def converged(self) -> bool:
        return self.status in ("tolerance_grad", "tolerance_change")

    # --- state: the history is tied to history_size ----------------------------------------
    def _with_slots(self, state: List[np.ndarray], params: Sequence[np.ndarray],
                    ) -> List[np.ndarray]:
        """``state`` if it has this history_size's layout (or is empty); otherwise fresh zero
        arrays (a changed history_size restarts the history)."""
        if not state or len(state) == len(params) * self._n_slots():
            return state
        return _zeros(params, self._n_slots())

    def _run_for(self, state: List[np.ndarray], params: Sequence[np.ndarray]) -> np.ndarray:
        """The run vector that goes with ``state`` once laid out for ``params``: without the
        history and the kept objective when the arrays are (re)made."""
        run = self.run_state
        if not state or len(state) != len(params) * self._n_slots():
            run = run.copy()
            for key in ("n_pairs", "newest", "ready"):
                run[_RUN_INDEX[key]] = 0.0
        return run

    def bind(self, network: Any, params: Sequence[np.ndarray]) -> None:
        fresh = self._bound() is not network and not self._adopt
        run = self._run_for(self.state, params)
        super().bind(network, params)
        self.run_state = np.zeros(len(LBFGS_RUN), dtype=np.float64) if fresh else run

    def state_dict(self) -> Dict[str, Any]:
        owner = self._bound()
        result = super().state_dict()
        with self._locked(owner):
            run = self.run_state if owner is None else self._run_for(self.state,
                                                                     owner.parameters())
            result["run_state"] = {name: float(run[i]) for i, name in enumerate(LBFGS_RUN)}
        # The direction, the line search's start and its last trial gradient are scratch of
        # a step (possibly not finite after a failed search): saved as zeros.
        n_slots = self._n_slots()
        result["state"] = [np.zeros_like(a) if i % n_slots in (1, 2, 3) else a
                           for i, a in enumerate(result["state"])]
        return result

    def _state_dict_for(self, network: Any) -> Dict[str, Any]:
        result = super()._state_dict_for(network)
        if self._bound() is None and not self._adopt:  # what bind would do: a fresh run
            result["run_state"] = {name: 0.0 for name in LBFGS_RUN}
        return result

    def _checked_extra(self, state_dict: Dict[str, Any], new: Dict[str, Any]) -> None:
        entry = state_dict["run_state"]
        if not isinstance(entry, dict) or set(entry) != set(LBFGS_RUN):
            raise ValueError(f"state_dict['run_state'] must be a dict with the keys "
                             f"{list(LBFGS_RUN)}, got {entry!r}")
        run = np.zeros(len(LBFGS_RUN), dtype=np.float64)
        for i, key in enumerate(LBFGS_RUN):
            name = f"state_dict['run_state'][{key!r}]"
            if key == "loss":
                run[i] = v.real(entry[key], name, finite=False)
                continue
            value = v.real(entry[key], name, low=0.0)
            if value != math.floor(value):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
            run[i] = value
        history = new["history_size"]
        if run[_RUN_INDEX["ready"]] not in (0.0, 1.0):
            raise ValueError("state_dict['run_state']['ready'] must be 0 or 1")
        if int(run[_RUN_INDEX["status"]]) not in _STATUS_NAMES:
            raise ValueError(f"state_dict['run_state']['status'] must be one of "
                             f"{sorted(_STATUS_NAMES)}")
        if not (run[_RUN_INDEX["n_pairs"]] <= history and run[_RUN_INDEX["newest"]] < history):
            raise ValueError(f"state_dict['run_state']: n_pairs must be <= history_size "
                             f"({history}) and newest < history_size")
        if not new["state"]:  # no arrays: nothing kept with them
            for key in ("n_pairs", "newest", "ready"):
                run[_RUN_INDEX[key]] = 0.0
        new["run_state"] = run


_RUN_INDEX = {name: i for i, name in enumerate(LBFGS_RUN)}
#: Every entry of the engines' hyper-parameter vector at 0, in order (``codes.HYPER``).
_ZERO_HYPER = dict.fromkeys(HYPER, 0.0)
_LR_SLOT = HYPER.index("lr")
_STATUS_NAMES = {code: name for name, code in LBFGS_STATUS.items()}

_BY_NAME = {cls.name: cls for cls in (SGD, Adam, AdamW, RMSprop, Rprop, LBFGS)}


def _zeros(params: Sequence[np.ndarray], n_slots: int) -> List[np.ndarray]:
    """``n_slots`` zero arrays shaped like each parameter, parameters in order."""
    return [np.zeros_like(p) for p in params for _ in range(n_slots)]


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

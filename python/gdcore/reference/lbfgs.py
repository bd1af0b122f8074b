"""L-BFGS on the full-batch objective of a network: the two-loop recursion with
H0 = (s'y / y'y) I over the last ``history_size`` pairs, steps found by the Moré–Thuente line
search (``line_search.py``), with the rules SciPy's L-BFGS-B follows when no variable is
bounded (``docs/design.md``, "L-BFGS").

Twin of ``csrc/gd/lbfgs.{hpp,cpp}``: :class:`LbfgsConfig` (``from_config``, ``n_slots``) and
:func:`lbfgs_step` with the C++ argument order (the sizes are the arrays'; Python's own
KeyboardInterrupt is the interrupt). Vectors are the parameters W0, b0, W1, b1, ... taken
together; a *slot* names one state array per parameter. Scalars are Python floats (double);
vector arithmetic runs in the parameters' dtype, each scalar cast to it first, as in C++; dot
products are summed in float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence

import numpy as np

from .codes import LBFGS_CONFIG, LBFGS_RUN, LBFGS_STATUS, state_slots
from .line_search import LineSearch, SearchTask
from .network import Network
from .objective import Regularisers, objective_gradient

# The slots of each parameter's state arrays: gradient, direction, start of the line search,
# gradient at the trial point, then s_k, y_k for k = 0 .. history_size - 1.
SLOT_G, SLOT_D, SLOT_X0, SLOT_G_TRIAL, SLOT_PAIRS = 0, 1, 2, 3, 4
_RUN = {name: i for i, name in enumerate(LBFGS_RUN)}
_MACHINE_EPS = float(np.finfo(np.float64).eps)
_MOST = float(2**62)


def _count(v: float) -> int:
    """A count from the float64 vector: whole, clamped to [0, 2^62] (infinity: no limit)."""
    if not v >= 0.0:
        return 0
    return int(_MOST) if v >= _MOST else int(v)


@dataclass
class LbfgsConfig:
    """The solver's settings (the C++ ``LbfgsConfig``, same defaults), from the float64
    configuration vector (``codes.LBFGS_CONFIG``)."""
    lr: float = 1.0
    history_size: int = 10
    max_iter: int = 20
    max_eval: int = 25
    tolerance_grad: float = 1e-7
    tolerance_change: float = 1e-9
    line_search: bool = True
    max_fun: float = 0.0
    max_ls: int = 20

    @classmethod
    def from_config(cls, config: Sequence[float]) -> "LbfgsConfig":
        c = {name: float(value) for name, value in zip(LBFGS_CONFIG, config)}
        return cls(lr=c["lr"], history_size=_count(c["history_size"]),
                   max_iter=_count(c["max_iter"]), max_eval=_count(c["max_eval"]),
                   tolerance_grad=c["tolerance_grad"], tolerance_change=c["tolerance_change"],
                   line_search=c["line_search"] != 0.0, max_fun=c["max_fun"],
                   max_ls=_count(c["max_ls"]))

    def n_slots(self) -> int:
        """State arrays per parameter: [g, d, x0, g_trial, s_0, y_0, s_1, y_1, ...]."""
        return state_slots("lbfgs", False, self.history_size)


class _Vectors:
    """The parameters as one vector, and the slots of the state (the C++ ``Vectors``)."""

    def __init__(self, params: List[np.ndarray], state: Sequence[np.ndarray], n_slots: int):
        self.params, self.state, self.n_slots = params, state, n_slots

    def slot(self, s: int) -> List[np.ndarray]:
        return [self.state[p * self.n_slots + s] for p in range(len(self.params))]

    def dot(self, a: int, b: int) -> float:
        total = 0.0
        for u, v in zip(self.slot(a), self.slot(b)):
            total += float(np.dot(u.ravel().astype(np.float64), v.ravel().astype(np.float64)))
        return total

    def max_abs(self, a: int) -> float:
        return float(max(np.max(np.abs(u)) for u in self.slot(a)))

    def axpy(self, alpha: float, x: int, y: int) -> None:
        for u, v in zip(self.slot(x), self.slot(y)):
            v += v.dtype.type(alpha) * u

    def scale(self, alpha: float, a: int) -> None:
        for v in self.slot(a):
            v *= v.dtype.type(alpha)

    def copy(self, src: int, dst: int) -> None:
        for u, v in zip(self.slot(src), self.slot(dst)):
            np.copyto(v, u)

    def negate(self, src: int, dst: int) -> None:
        for u, v in zip(self.slot(src), self.slot(dst)):
            np.negative(u, out=v)

    def save_params(self, dst: int) -> None:
        for p, v in zip(self.params, self.slot(dst)):
            np.copyto(v, p)

    def load_params(self, src: int) -> None:
        for p, u in zip(self.params, self.slot(src)):
            np.copyto(p, u)

    def move_params(self, stp: float) -> None:
        """params = x0 + stp * d"""
        for p, x0, d in zip(self.params, self.slot(SLOT_X0), self.slot(SLOT_D)):
            np.add(x0, p.dtype.type(stp) * d, out=p)

    def store_pair(self, stp: float, s: int, y: int) -> None:
        """s = stp * d, y = g_trial - g"""
        for d, g, gt, sv, yv in zip(self.slot(SLOT_D), self.slot(SLOT_G),
                                    self.slot(SLOT_G_TRIAL), self.slot(s), self.slot(y)):
            np.multiply(sv.dtype.type(stp), d, out=sv)
            np.subtract(gt, g, out=yv)

    def params_finite(self) -> bool:
        return all(np.isfinite(p).all() for p in self.params)


def _s_slot(k: int) -> int:
    return SLOT_PAIRS + 2 * k


def _y_slot(k: int) -> int:
    return SLOT_PAIRS + 2 * k + 1


def two_loop(v: _Vectors, history_size: int, n_pairs: int, newest: int) -> None:
    """d = -H g by the two-loop recursion over the ``n_pairs`` newest pairs (ring buffer
    ending at ``newest``), H0 = (s'y / y'y) I from the newest pair; d = -g without pairs."""
    v.negate(SLOT_G, SLOT_D)
    alpha, rho = [0.0] * n_pairs, [0.0] * n_pairs
    for j in range(n_pairs):  # newest to oldest
        k = (newest - j + history_size) % history_size
        rho[j] = 1.0 / v.dot(_y_slot(k), _s_slot(k))
        alpha[j] = rho[j] * v.dot(_s_slot(k), SLOT_D)
        v.axpy(-alpha[j], _y_slot(k), SLOT_D)
    if n_pairs > 0:
        v.scale(v.dot(_s_slot(newest), _y_slot(newest))
                / v.dot(_y_slot(newest), _y_slot(newest)), SLOT_D)
    for j in range(n_pairs - 1, -1, -1):  # oldest to newest
        k = (newest - j + history_size) % history_size
        beta = rho[j] * v.dot(_y_slot(k), SLOT_D)
        v.axpy(alpha[j] - beta, _s_slot(k), SLOT_D)


def lbfgs_step(net: Network, x: np.ndarray, y: np.ndarray, sample_weight: Optional[np.ndarray],
               reg: Regularisers, config: LbfgsConfig, state: Sequence[np.ndarray],
               run: np.ndarray, step: np.ndarray) -> float:
    """One optimizer step: up to ``config.max_iter`` iterations on the objective of all rows
    of ``x`` (with the l2 and label smoothing of ``reg``, never its dropout: the line search
    needs one deterministic objective), updating the parameters (views in ``net``), ``state`` (``config.n_slots()``
    arrays per parameter), ``run`` (``codes.LBFGS_RUN``) and ``step`` in place.

    Returns the objective where the step started (NaN if the parameters are not finite after
    it). A KeyboardInterrupt (or any exception) inside a line search puts the parameters back
    at the last whole iteration before it propagates.
    """
    params: List[np.ndarray] = []
    for i in range(net.n_layers()):
        params += [net.layer(i).weights, net.layer(i).bias]
    v = _Vectors(params, state, config.n_slots())
    g_w, g_b = v.slot(SLOT_G)[0::2], v.slot(SLOT_G)[1::2]
    gt_w, gt_b = v.slot(SLOT_G_TRIAL)[0::2], v.slot(SLOT_G_TRIAL)[1::2]

    objective_reg = replace(reg, dropout=None)

    def evaluate(trial: bool) -> float:
        return objective_gradient(net, x, y, sample_weight, objective_reg, 0,
                                  gt_w if trial else g_w, gt_b if trial else g_b)

    m = config.history_size
    limits = LineSearch()
    run[_RUN["status"]] = LBFGS_STATUS["running"]
    run[_RUN["step_iterations"]] = 0.0
    run[_RUN["step_evaluations"]] = 0.0

    # The objective where we stand, kept from the last step unless `ready` was cleared.
    if run[_RUN["ready"]] == 0.0:
        f0 = evaluate(False)
        run[_RUN["loss"]] = f0
        run[_RUN["ready"]] = 1.0
        run[_RUN["evaluations"]] += 1.0
        run[_RUN["step_evaluations"]] += 1.0
    f = float(run[_RUN["loss"]])
    result = f
    if not math.isfinite(f):  # diverged: nothing to follow
        step[0] += 1
        return result

    def finish(status: str) -> None:
        run[_RUN["status"]] = LBFGS_STATUS[status]

    def restart(n_pairs: int) -> bool:
        """After a failed direction or line search: forget the pairs and retry along -g
        (L-BFGS-B's restart), True; False when there were none, and the run gives up."""
        if n_pairs == 0:
            return False
        run[_RUN["n_pairs"]] = 0.0
        run[_RUN["resets"]] += 1.0
        return True

    if run[_RUN["evaluations"]] > config.max_fun:
        finish("max_fun")
    elif v.max_abs(SLOT_G) <= config.tolerance_grad:
        finish("tolerance_grad")
    else:
        while True:
            # 1. Direction and first trial step (1/||d|| on the very first iteration), times lr.
            n_pairs = int(run[_RUN["n_pairs"]])
            newest = int(run[_RUN["newest"]])
            two_loop(v, m, n_pairs, newest)
            gd = v.dot(SLOT_G, SLOT_D)
            if not gd < 0.0:  # not a descent direction
                if restart(n_pairs):
                    continue
                finish("line_search")
                break
            dnorm = math.sqrt(v.dot(SLOT_D, SLOT_D))
            stp = (min(1.0 / dnorm, limits.stpmax) * config.lr if run[_RUN["iterations"]] == 0.0
                   else config.lr)
            stp = min(stp, limits.stpmax)
            v.save_params(SLOT_X0)

            # 2. Line search: evaluations at x0 + stp d until dcsrch accepts a step.
            f_trial, gd_trial, evaluations, accepted = math.nan, 0.0, 0, False
            try:
                if config.line_search:
                    search = LineSearch()
                    task = search.start(f, gd, stp)
                    while task == SearchTask.fg:
                        if evaluations >= config.max_ls:
                            task = SearchTask.error
                            break
                        v.move_params(stp)
                        f_trial = evaluate(True)
                        evaluations += 1
                        gd_trial = v.dot(SLOT_G_TRIAL, SLOT_D)
                        if not (math.isfinite(f_trial) and math.isfinite(gd_trial)):
                            # Overflow at this step: halve the way from the best step so far.
                            stp = search.stx + 0.5 * (stp - search.stx)
                            continue
                        task, stp = search.iterate(stp, f_trial, gd_trial)
                    accepted = task in (SearchTask.convergence, SearchTask.warning)
                else:
                    v.move_params(stp)
                    f_trial = evaluate(True)
                    evaluations = 1
                    gd_trial = v.dot(SLOT_G_TRIAL, SLOT_D)
                    accepted = True
            except BaseException:  # undo the search in progress: back to the last iteration
                v.load_params(SLOT_X0)
                if run[_RUN["step_iterations"]] > 0:
                    step[0] += 1  # as the C++ counts a step cut short after an iteration
                raise
            run[_RUN["evaluations"]] += evaluations
            run[_RUN["step_evaluations"]] += evaluations
            if not accepted:  # back to x0
                v.load_params(SLOT_X0)
                if restart(n_pairs):
                    continue
                finish("line_search")
                break

            # 3. Accept: the pair (s, y) unless its curvature s'y is not clearly positive.
            f_old, f = f, f_trial
            sy = (gd_trial - gd) * stp
            if sy > _MACHINE_EPS * (-gd * stp):
                k = 0 if n_pairs == 0 else (newest + 1) % m
                v.store_pair(stp, _s_slot(k), _y_slot(k))
                run[_RUN["newest"]] = k
                run[_RUN["n_pairs"]] = min(n_pairs + 1, m)
            else:
                run[_RUN["skipped"]] += 1.0
            v.copy(SLOT_G_TRIAL, SLOT_G)
            run[_RUN["loss"]] = f
            run[_RUN["iterations"]] += 1.0
            run[_RUN["step_iterations"]] += 1.0

            # 4. Stop: converged, out of budget, or this step's share done.
            if v.max_abs(SLOT_G) <= config.tolerance_grad:
                finish("tolerance_grad")
                break
            # (SciPy's signed test after a line search, which only descends; |change| for
            # fixed steps, which may climb, as torch.)
            change = f_old - f if config.line_search else abs(f_old - f)
            if change <= config.tolerance_change * max(abs(f_old), abs(f), 1.0):
                finish("tolerance_change")
                break
            if run[_RUN["evaluations"]] > config.max_fun:
                finish("max_fun")
                break
            if (run[_RUN["step_iterations"]] >= config.max_iter
                    or run[_RUN["step_evaluations"]] >= config.max_eval):
                break
    step[0] += 1
    if not v.params_finite():
        result = math.nan
    return result

"""The line search of MINPACK-2 by Moré and Thuente (``dcsrch``, ``dcstep``), as L-BFGS-B and
SciPy use it: a step satisfying the strong Wolfe conditions
``f(stp) <= f(0) + ftol stp f'(0)`` and ``|f'(stp)| <= gtol |f'(0)|``.

Twin of ``csrc/gd/line_search.{hpp,cpp}``, ported like it from SciPy's
``scipy/optimize/_dcsrch.py`` statement by statement. Reverse communication: the caller
evaluates f and f' wherever :meth:`LineSearch.iterate` asks.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

_P5, _P66, _XTRAPL, _XTRAPU = 0.5, 0.66, 1.1, 4.0


class SearchTask(enum.IntEnum):
    """What the search wants next (the C++ ``SearchTask``)."""
    fg = 0           # evaluate f and f' at stp
    convergence = 1  # both conditions hold at stp
    warning = 2      # the best step it could find (accepted, as L-BFGS-B does)
    error = 3        # invalid arguments


def _sign(v: float) -> float:
    return 1.0 if v > 0.0 else (-1.0 if v < 0.0 else 0.0)


@dataclass
class LineSearch:
    """L-BFGS-B's tolerances and step bounds, and the state of one search (dcsrch's
    isave/dsave)."""
    ftol: float = 1e-3
    gtol: float = 0.9
    xtol: float = 0.1
    stpmin: float = 0.0
    stpmax: float = 1e10

    brackt: bool = False
    stage: int = 1
    finit: float = 0.0
    ginit: float = 0.0
    gtest: float = 0.0
    stx: float = 0.0
    fx: float = 0.0
    gx: float = 0.0
    sty: float = 0.0
    fy: float = 0.0
    gy: float = 0.0
    stmin: float = 0.0
    stmax: float = 0.0
    width: float = 0.0
    width1: float = 0.0

    def start(self, f: float, g: float, stp: float) -> SearchTask:
        """Begin from ``f = f(0)``, ``g = f'(0) < 0`` with the first trial step ``stp``."""
        if (stp < self.stpmin or stp > self.stpmax or not g < 0.0 or self.ftol < 0.0
                or self.gtol < 0.0 or self.xtol < 0.0 or self.stpmin < 0.0
                or self.stpmax < self.stpmin):
            return SearchTask.error
        self.brackt = False
        self.stage = 1
        self.finit, self.ginit = f, g
        self.gtest = self.ftol * self.ginit
        self.width = self.stpmax - self.stpmin
        self.width1 = self.width / _P5
        self.stx, self.fx, self.gx = 0.0, self.finit, self.ginit
        self.sty, self.fy, self.gy = 0.0, self.finit, self.ginit
        self.stmin = 0.0
        self.stmax = stp + _XTRAPU * stp
        return SearchTask.fg

    def iterate(self, stp: float, f: float, g: float) -> tuple:
        """Given ``f = f(stp)``, ``g = f'(stp)``: ``(task, next stp)``; with convergence or a
        warning, ``stp`` is the accepted step (the one just evaluated)."""
        ftest = self.finit + stp * self.gtest
        if self.stage == 1 and f <= ftest and g >= 0.0:
            self.stage = 2
        task = SearchTask.fg
        if self.brackt and (stp <= self.stmin or stp >= self.stmax):
            task = SearchTask.warning  # rounding errors prevent progress
        if self.brackt and self.stmax - self.stmin <= self.xtol * self.stmax:
            task = SearchTask.warning  # xtol test satisfied
        if stp == self.stpmax and f <= ftest and g <= self.gtest:
            task = SearchTask.warning
        if stp == self.stpmin and (f > ftest or g >= self.gtest):
            task = SearchTask.warning
        if f <= ftest and abs(g) <= self.gtol * -self.ginit:
            task = SearchTask.convergence
        if task != SearchTask.fg:
            return task, stp

        # First stage, no sufficient decrease yet but f(stp) <= f(stx): the modified function.
        if self.stage == 1 and f <= self.fx and f > ftest:
            fm = f - stp * self.gtest
            fxm = self.fx - self.stx * self.gtest
            fym = self.fy - self.sty * self.gtest
            gm = g - self.gtest
            gxm = self.gx - self.gtest
            gym = self.gy - self.gtest
            self.stx, fxm, gxm, self.sty, fym, gym, stp, self.brackt = dcstep(
                self.stx, fxm, gxm, self.sty, fym, gym, stp, fm, gm, self.brackt, self.stmin,
                self.stmax)
            self.fx = fxm + self.stx * self.gtest
            self.fy = fym + self.sty * self.gtest
            self.gx = gxm + self.gtest
            self.gy = gym + self.gtest
        else:
            (self.stx, self.fx, self.gx, self.sty, self.fy, self.gy, stp,
             self.brackt) = dcstep(self.stx, self.fx, self.gx, self.sty, self.fy, self.gy, stp,
                                   f, g, self.brackt, self.stmin, self.stmax)

        # Bisect when the interval does not shrink enough.
        if self.brackt:
            if abs(self.sty - self.stx) >= _P66 * self.width1:
                stp = self.stx + _P5 * (self.sty - self.stx)
            self.width1 = self.width
            self.width = abs(self.sty - self.stx)
        if self.brackt:
            self.stmin = min(self.stx, self.sty)
            self.stmax = max(self.stx, self.sty)
        else:
            self.stmin = stp + _XTRAPL * (stp - self.stx)
            self.stmax = stp + _XTRAPU * (stp - self.stx)
        stp = min(max(stp, self.stpmin), self.stpmax)
        if ((self.brackt and (stp <= self.stmin or stp >= self.stmax))
                or (self.brackt and self.stmax - self.stmin <= self.xtol * self.stmax)):
            stp = self.stx  # no more progress possible: the best step so far
        return SearchTask.fg, stp


def dcstep(stx: float, fx: float, dx: float, sty: float, fy: float, dy: float, stp: float,
           fp: float, dp: float, brackt: bool, stpmin: float, stpmax: float) -> tuple:
    """One safeguarded step: ``(stx, fx, dx, sty, fy, dy, stp, brackt)`` updated
    (MINPACK-2's dcstep; the C++ updates them in place)."""
    sgnd = _sign(dp) * _sign(dx)
    if fp > fx:
        # 1. Higher function value: the minimum is bracketed; cubic or quadratic step.
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt((theta / s) * (theta / s) - (dx / s) * (dp / s))
        if stp < stx:
            gamma = -gamma
        p = (gamma - dx) + theta
        q = ((gamma - dx) + gamma) + dp
        r = p / q
        stpc = stx + r * (stp - stx)
        stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
        stpf = stpc if abs(stpc - stx) <= abs(stpq - stx) else stpc + (stpq - stpc) / 2.0
        brackt = True
    elif sgnd < 0.0:
        # 2. Lower value, derivatives of opposite sign: bracketed; cubic or secant step.
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt((theta / s) * (theta / s) - (dx / s) * (dp / s))
        if stp > stx:
            gamma = -gamma
        p = (gamma - dp) + theta
        q = ((gamma - dp) + gamma) + dx
        r = p / q
        stpc = stp + r * (stx - stp)
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        stpf = stpc if abs(stpc - stp) > abs(stpq - stp) else stpq
        brackt = True
    elif abs(dp) < abs(dx):
        # 3. Lower value, same sign, derivative decreasing in magnitude.
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        s = max(abs(theta), abs(dx), abs(dp))
        gamma = s * math.sqrt(max(0.0, (theta / s) * (theta / s) - (dx / s) * (dp / s)))
        if stp > stx:
            gamma = -gamma
        p = (gamma - dp) + theta
        q = (gamma + (dx - dp)) + gamma
        r = p / q
        if r < 0.0 and gamma != 0.0:
            stpc = stp + r * (stx - stp)
        elif stp > stx:
            stpc = stpmax
        else:
            stpc = stpmin
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        if brackt:
            stpf = stpc if abs(stpc - stp) < abs(stpq - stp) else stpq
            if stp > stx:
                stpf = min(stp + _P66 * (sty - stp), stpf)
            else:
                stpf = max(stp + _P66 * (sty - stp), stpf)
        else:
            stpf = stpc if abs(stpc - stp) > abs(stpq - stp) else stpq
            stpf = min(max(stpf, stpmin), stpmax)
    else:
        # 4. Lower value, same sign, derivative not decreasing: step to the far end.
        if brackt:
            theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp
            s = max(abs(theta), abs(dy), abs(dp))
            gamma = s * math.sqrt((theta / s) * (theta / s) - (dy / s) * (dp / s))
            if stp > sty:
                gamma = -gamma
            p = (gamma - dp) + theta
            q = ((gamma - dp) + gamma) + dy
            r = p / q
            stpf = stp + r * (sty - stp)
        elif stp > stx:
            stpf = stpmax
        else:
            stpf = stpmin

    # The new interval.
    if fp > fx:
        sty, fy, dy = stp, fp, dp
    else:
        if sgnd < 0.0:
            sty, fy, dy = stx, fx, dx
        stx, fx, dx = stp, fp, dp
    return stx, fx, dx, sty, fy, dy, stpf, brackt

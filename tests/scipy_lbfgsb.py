"""SciPy's L-BFGS-B on a gdcore network's objective: the peer that gd.LBFGS is checked against,
by tests/test_lbfgs.py, tests/test_lbfgs_regularisers.py and bench/lbfgs_vs_scipy.py."""
from __future__ import annotations

import numpy as np
import scipy.optimize

#: ``minimize(method="L-BFGS-B")``'s default ftol (gd.LBFGS's ``tolerance_change`` to match).
SCIPY_FTOL = 2.220446049250313e-09


def scipy_lbfgsb(net, X, y, sample_weight=None, *, objective=None, keep_solution=True,
                 **options) -> scipy.optimize.OptimizeResult:
    """``scipy.optimize.minimize(method="L-BFGS-B", options=options)`` on
    ``net.loss(X, y, sample_weight, **objective)`` with ``net.gradients`` as its Jacobian
    (flattened W0, b0, W1, b1, ..., in float64), from the network's current parameters.

    The result's ``trace`` holds the objective at the start and after each iteration. The
    network is left at SciPy's solution, or with ``keep_solution=False`` at its start.
    """
    params = net.parameters()
    start = [p.copy() for p in params]
    objective = objective or {}

    def unpack(v):
        offset = 0
        for p in params:
            p[...] = v[offset:offset + p.size].reshape(p.shape)
            offset += p.size

    def fun(v):
        unpack(v)
        grads = net.gradients(X, y, sample_weight, **objective)
        flat = np.concatenate([g.ravel() for pair in grads for g in pair]).astype(np.float64)
        return float(net.loss(X, y, sample_weight, **objective)), flat

    x0 = np.concatenate([p.ravel() for p in params]).astype(np.float64)
    trace = [fun(x0)[0]]

    def record(intermediate_result):  # (SciPy passes the result to a parameter of this name)
        trace.append(float(intermediate_result.fun))

    result = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", callback=record,
                                     options=options)
    if keep_solution:
        unpack(result.x)
    else:
        for p, p0 in zip(params, start):
            p[...] = p0
    result.trace = trace
    return result

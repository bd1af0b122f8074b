"""L-BFGS minimises the regularised objective: fit's l2 and label smoothing reach the
full-batch solver exactly as they reach the mini-batch ones, and dropout is refused."""
import numpy as np
import pytest
import scipy.optimize

import gdcore as gd


def _scipy_path(net, X, y, maxiter, **objective):
    """SciPy's L-BFGS-B on net.loss(X, y, **objective) from the network's parameters: the
    objective at the start and after each iteration."""
    params = net.parameters()
    start = [p.copy() for p in params]

    def fun(v):
        offset = 0
        for p in params:
            p[...] = v[offset:offset + p.size].reshape(p.shape)
            offset += p.size
        grads = net.gradients(X, y, **objective)
        return (net.loss(X, y, **objective),
                np.concatenate([g.ravel() for pair in grads for g in pair]))

    x0 = np.concatenate([p.ravel() for p in params])
    trace = [fun(x0)[0]]

    def record(intermediate_result):
        trace.append(float(intermediate_result.fun))

    scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", callback=record,
                            options=dict(maxiter=maxiter, gtol=0.0))
    for p, p0 in zip(params, start):  # put the start back
        p[...] = p0
    return trace


@pytest.mark.parametrize("objective", [dict(l2=0.05), dict(label_smoothing=0.2),
                                       dict(l2=0.01, label_smoothing=0.1)])
def test_fit_with_lbfgs_follows_scipy_on_the_regularised_objective(objective):
    X, y = gd.datasets.two_moons(150, noise=0.2, seed=1)
    net = gd.Network.from_sizes([2, 12, 2], activation="tanh", output_activation="softmax",
                                loss="cross_entropy", dtype="float64", seed=0)
    theirs = _scipy_path(net, X, y, maxiter=15, **objective)
    history = net.fit(X, y, optimizer=gd.LBFGS(max_iter=1, tolerance_grad=0.0,
                                               tolerance_change=0.0),
                      epochs=15, **objective)
    # Each epoch's loss is the objective where its iteration started.
    ours = history.loss + [net.loss(X, y, **objective)]
    assert len(ours) == 16
    np.testing.assert_allclose(ours, theirs[:16], rtol=1e-7)


def test_l2_changes_where_lbfgs_ends():
    X, y = gd.datasets.two_moons(150, noise=0.2, seed=1)
    plain = gd.Network.from_sizes([2, 12, 2], activation="tanh", output_activation="softmax",
                                  loss="cross_entropy", dtype="float64", seed=0)
    ridge = plain.copy()
    plain.fit(X, y, optimizer=gd.LBFGS(max_iter=1), epochs=30)
    ridge.fit(X, y, optimizer=gd.LBFGS(max_iter=1), epochs=30, l2=1.0)
    norm = lambda net: sum(float((layer.weights ** 2).sum()) for layer in net.layers)  # noqa: E731
    assert norm(ridge) < 0.5 * norm(plain)


def test_lbfgs_refuses_dropout_and_changes_nothing():
    X, y = gd.datasets.two_moons(60, noise=0.2, seed=1)
    net = gd.Network.from_sizes([2, 8, 2], activation="tanh", output_activation="softmax",
                                loss="cross_entropy", dtype="float64", seed=0, dropout=0.5)
    before = [p.copy() for p in net.parameters()]
    opt = gd.LBFGS()
    with pytest.raises(ValueError, match="dropout"):
        net.fit(X, y, optimizer=opt, epochs=2)
    for p, q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)
    assert opt.steps_done == 0

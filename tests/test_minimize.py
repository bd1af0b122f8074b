"""gdcore.minimize: convergence, divergence at lr > 2/L, the path, a step by hand, bad input."""
import dataclasses
import math

import numpy as np
import pytest

from gdcore.minimize import MinimizeResult, minimize

# A 3-d quadratic f(x) = 0.5 x^T A x - b^T x, minimum at A^{-1} b.
A = np.array([[4.0, 1.0, 0.0],
              [1.0, 3.0, 0.5],
              [0.0, 0.5, 2.0]])
B = np.array([1.0, -2.0, 0.5])
L = np.linalg.eigvalsh(A).max()          # largest curvature
X_STAR = np.linalg.solve(A, B)


def quad(x):
    return 0.5 * x @ A @ x - B @ x


def quad_grad(x):
    return A @ x - B


def rosen(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def rosen_grad(x):
    return np.array([-2.0 * (1.0 - x[0]) - 400.0 * x[0] * (x[1] - x[0] ** 2),
                     200.0 * (x[1] - x[0] ** 2)])


@pytest.mark.parametrize("grad", [quad_grad, None], ids=["analytic", "finite-differences"])
def test_quadratic_converges_to_the_solution(grad):
    res = minimize(quad, np.zeros(3), grad=grad, lr=1.0 / L, tol=1e-8)
    assert res.converged and not res.diverged
    assert res.grad_norm <= 1e-8
    assert 0 < res.nit < 10_000
    np.testing.assert_allclose(res.x, X_STAR, atol=1e-7)
    assert res.fun == pytest.approx(quad(res.x))


@pytest.mark.parametrize("grad", [rosen_grad, None], ids=["analytic", "finite-differences"])
def test_rosenbrock_with_momentum(grad):
    res = minimize(rosen, [-1.2, 1.0], grad=grad, lr=1e-3, momentum=0.9,
                   max_iter=20_000, tol=1e-6)
    assert res.converged and not res.diverged
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-3)


def test_rosenbrock_without_momentum_is_slower():
    # same lr, same budget: the heavy ball gets there, plain descent is still in the valley
    budget = 3_500
    heavy = minimize(rosen, [-1.2, 1.0], grad=rosen_grad, lr=1e-3, momentum=0.9,
                     max_iter=budget, tol=1e-6)
    plain = minimize(rosen, [-1.2, 1.0], grad=rosen_grad, lr=1e-3, max_iter=budget, tol=1e-6)
    assert heavy.converged
    assert not plain.converged and plain.nit == budget
    assert plain.fun > heavy.fun


def test_lr_just_under_two_over_L_converges():
    res = minimize(quad, np.zeros(3), grad=quad_grad, lr=1.9 / L)
    assert res.converged and not res.diverged
    np.testing.assert_allclose(res.x, X_STAR, atol=1e-7)


@pytest.mark.parametrize("x0", [np.zeros(3), np.full(3, 100.0)])
def test_lr_just_over_two_over_L_diverges(x0):
    with np.errstate(over="ignore", invalid="ignore"):
        res = minimize(quad, x0, grad=quad_grad, lr=2.05 / L, max_iter=100_000)
    assert res.diverged and not res.converged
    assert res.nit < 100_000
    assert np.all(np.isfinite(res.x)) and math.isfinite(res.fun)
    np.testing.assert_array_equal(res.path[-1], res.x)
    # stopped at the first value past 1e12 * max(1, |f(x0)|); along the top eigenvector the
    # error is multiplied by |1 - 2.05| = 1.05 per step, so f by about 1.05**2 = 1.1025
    limit = 1e12 * max(1.0, abs(quad(x0)))
    assert limit < res.fun < 1.2 * limit
    assert "grew past" in res.message


def test_divergence_to_non_finite_keeps_the_last_finite_iterate():
    # f(x) = exp(x^2) with a big step: the iterates overflow quickly
    def f(x):
        return float(np.exp(x[0] ** 2))

    def g(x):
        return 2.0 * x * np.exp(x ** 2)

    with np.errstate(over="ignore", invalid="ignore"):
        res = minimize(f, [1.0], grad=g, lr=10.0, max_iter=100)
    assert res.diverged and not res.converged
    assert np.all(np.isfinite(res.path))
    np.testing.assert_array_equal(res.path[-1], res.x)
    assert res.path.shape == (res.nit + 1, 1)


def test_max_iter_reached_is_neither_converged_nor_diverged():
    res = minimize(quad, np.zeros(3), grad=quad_grad, lr=0.01, max_iter=5)
    assert res.nit == 5 and not res.converged and not res.diverged
    assert "max_iter" in res.message


def test_max_iter_zero_and_start_at_the_minimum():
    res = minimize(quad, np.ones(3), grad=quad_grad, max_iter=0)
    assert res.nit == 0 and res.path.shape == (1, 3) and not res.converged
    np.testing.assert_array_equal(res.x, np.ones(3))
    # already converged at x0: no step is taken, even with max_iter left
    res = minimize(quad, X_STAR, grad=quad_grad, tol=1e-6)
    assert res.converged and res.nit == 0


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_path_has_every_iterate(momentum):
    x0 = np.array([0.5, -1.0, 2.0])
    res = minimize(quad, x0, grad=quad_grad, lr=0.1, momentum=momentum, max_iter=50, tol=0.0)
    assert res.path.shape == (res.nit + 1, 3) == (51, 3)
    np.testing.assert_array_equal(res.path[0], x0)
    np.testing.assert_array_equal(res.path[-1], res.x)
    # path[k + 1] follows from path[k] by the heavy-ball rule
    v = np.zeros(3)
    x = x0.copy()
    for k in range(res.nit):
        v = momentum * v + quad_grad(x)
        x = x - 0.1 * v
        np.testing.assert_allclose(res.path[k + 1], x, rtol=1e-12, atol=1e-15)


def test_one_step_by_hand():
    # f(x, y) = x^2 + 3 y^2, grad = (2x, 6y); at x0 = (1, 2): grad = (2, 12)
    # one step with lr = 0.05: x1 = (1 - 0.1, 2 - 0.6) = (0.9, 1.4); f(x1) = 0.81 + 5.88 = 6.69
    res = minimize(lambda x: x[0] ** 2 + 3 * x[1] ** 2, [1.0, 2.0],
                   grad=lambda x: np.array([2 * x[0], 6 * x[1]]), lr=0.05, max_iter=1)
    assert res.nit == 1
    np.testing.assert_allclose(res.x, [0.9, 1.4], rtol=1e-15)
    assert res.fun == pytest.approx(6.69, rel=1e-14)
    # gradient at x1 = (1.8, 8.4): norm sqrt(3.24 + 70.56) = sqrt(73.8)
    assert res.grad_norm == pytest.approx(math.sqrt(73.8), rel=1e-14)


def test_momentum_two_steps_by_hand():
    # f(x) = x^2 / 2, grad = x; lr = 0.5, momentum = 0.5, x0 = 4
    # v1 = 4,             x1 = 4 - 2 = 2
    # v2 = 0.5*4 + 2 = 4, x2 = 2 - 2 = 0
    res = minimize(lambda x: 0.5 * x[0] ** 2, 4.0, grad=lambda x: x, lr=0.5, momentum=0.5,
                   max_iter=2, tol=0.0)
    np.testing.assert_allclose(res.path[:, 0], [4.0, 2.0, 0.0])


def test_finite_differences_match_the_analytic_gradient_in_one_step():
    x0 = np.array([-1.2, 1.0])
    a = minimize(rosen, x0, grad=rosen_grad, lr=1e-4, max_iter=1)
    n = minimize(rosen, x0, lr=1e-4, max_iter=1)
    np.testing.assert_allclose(n.x, a.x, rtol=1e-10)
    assert n.grad_norm == pytest.approx(a.grad_norm, rel=1e-7)


def test_scalar_x0_and_list_x0():
    res = minimize(lambda x: (x[0] - 3.0) ** 2, 0, grad=lambda x: 2 * (x - 3.0), lr=0.25)
    assert res.x.shape == (1,) and res.path.shape[1] == 1
    assert res.x[0] == pytest.approx(3.0)
    assert res.x.dtype == np.float64


def test_result_is_frozen_readonly_and_repr_is_short():
    res = minimize(quad, np.zeros(3), grad=quad_grad, lr=0.1)
    assert isinstance(res, MinimizeResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.nit = 0
    with pytest.raises(ValueError):
        res.x[0] = 1.0
    text = repr(res)
    assert text.startswith("MinimizeResult(") and "converged=True" in text
    assert "path" not in text and len(text) < 400


def test_x0_is_not_modified_and_fun_cannot_corrupt_the_run():
    x0 = np.array([1.0, 2.0, 3.0])

    def nasty(x):
        value = quad(x)
        x[:] = 1e9  # scribbles on its argument
        return value

    res = minimize(nasty, x0, grad=quad_grad, lr=1.0 / L)
    np.testing.assert_array_equal(x0, [1.0, 2.0, 3.0])
    assert res.converged
    np.testing.assert_allclose(res.x, X_STAR, atol=1e-7)


BAD = [
    (dict(fun=3.0), TypeError, "fun"),
    (dict(grad="grad"), TypeError, "grad"),
    (dict(lr=0.0), ValueError, "lr"),
    (dict(lr=-0.1), ValueError, "lr"),
    (dict(lr=float("inf")), ValueError, "lr"),
    (dict(lr="0.1"), TypeError, "lr"),
    (dict(momentum=1.0), ValueError, "momentum"),
    (dict(momentum=-0.1), ValueError, "momentum"),
    (dict(max_iter=-1), ValueError, "max_iter"),
    (dict(max_iter=10.0), TypeError, "max_iter"),
    (dict(tol=-1e-3), ValueError, "tol"),
    (dict(tol=float("nan")), ValueError, "tol"),
    (dict(x0=[]), ValueError, "x0"),
    (dict(x0=[1.0, float("nan"), 0.0]), ValueError, "x0"),
    (dict(x0=np.zeros((3, 1))), ValueError, "x0"),
    (dict(x0=["a", "b", "c"]), TypeError, "x0"),
    (dict(fun=lambda x: float("nan")), ValueError, "fun"),
    (dict(fun=lambda x: x), ValueError, "fun"),            # not a scalar
    (dict(fun=lambda x: "1.0"), TypeError, "fun"),
    (dict(grad=lambda x: x[:2]), ValueError, "grad"),
    (dict(grad=lambda x: np.zeros((3, 1))), ValueError, "grad"),
]


@pytest.mark.parametrize("kwargs, exc, name", BAD)
def test_bad_arguments_raise(kwargs, exc, name):
    args = dict(fun=quad, x0=np.zeros(3), grad=quad_grad)
    args.update(kwargs)
    with pytest.raises(exc, match=name):
        minimize(**args)

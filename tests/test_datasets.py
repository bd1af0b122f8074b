"""gdcore.datasets: shapes, dtypes, seeding, balance, and argument checks."""
import numpy as np
import pytest

from gdcore import datasets

# (generator, kwargs, n_features, classification?)
GENERATORS = [
    (datasets.xor, dict(n_samples=40, noise=0.1), 2, True),
    (datasets.two_moons, dict(n_samples=50, noise=0.1), 2, True),
    (datasets.spirals, dict(n_samples=60, n_classes=3, noise=0.2), 2, True),
    (datasets.sine, dict(n_samples=30, noise=0.1), 1, False),
]
IDS = [g[0].__name__ for g in GENERATORS]


@pytest.mark.parametrize("gen, kwargs, n_features, classification", GENERATORS, ids=IDS)
def test_shapes_and_dtypes(gen, kwargs, n_features, classification):
    X, y = gen(**kwargs, seed=0)
    n = kwargs["n_samples"]
    assert X.shape == (n, n_features)
    assert X.dtype == np.float64
    assert y.shape == (n,)
    assert y.dtype == (np.int64 if classification else np.float64)
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(y))


@pytest.mark.parametrize("gen, kwargs, n_features, classification", GENERATORS, ids=IDS)
def test_same_seed_same_data_other_seed_other_data(gen, kwargs, n_features, classification):
    X1, y1 = gen(**kwargs, seed=123)
    X2, y2 = gen(**kwargs, seed=123)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, _ = gen(**kwargs, seed=124)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("gen, kwargs, n_features, classification", GENERATORS, ids=IDS)
def test_generator_seed_is_accepted(gen, kwargs, n_features, classification):
    X1, _ = gen(**kwargs, seed=np.random.default_rng(5))
    X2, _ = gen(**kwargs, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(X1, X2)


def test_xor_defaults_are_the_canonical_points():
    X, y = datasets.xor()
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y, [0, 1, 1, 0])
    assert y.dtype == np.int64


def test_xor_noisy_points_stay_near_their_corner_and_label():
    X, y = datasets.xor(n_samples=400, noise=0.05, seed=1)
    corners = np.rint(X)
    # 0.5 away is 10 standard deviations: every point rounds to its own corner
    np.testing.assert_array_equal(y, np.logical_xor(corners[:, 0], corners[:, 1]))
    assert np.bincount(y).tolist() == [200, 200]
    assert 0.0 < np.abs(X - corners).max() < 0.5


@pytest.mark.parametrize("n", [1, 2, 3, 7, 200, 201])
def test_two_moons_balance(n):
    _, y = datasets.two_moons(n, seed=0)
    counts = np.bincount(y, minlength=2)
    assert counts.sum() == n
    assert set(np.unique(y)) <= {0, 1}
    assert abs(counts[0] - counts[1]) <= 1


def test_two_moons_without_noise_lie_on_the_half_circles():
    X, y = datasets.two_moons(100, noise=0.0, seed=0)
    upper = X[y == 0]
    lower = X[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0)
    assert np.all(upper[:, 1] >= -1e-12) and np.all(lower[:, 1] <= 0.5 + 1e-12)
    # shuffled: not all of class 0 first
    assert not np.array_equal(y, np.sort(y))


@pytest.mark.parametrize("n, k", [(300, 3), (301, 3), (10, 2), (50, 5)])
def test_spirals_balance_and_radius(n, k):
    X, y = datasets.spirals(n, n_classes=k, seed=0)
    counts = np.bincount(y, minlength=k)
    assert counts.sum() == n and len(counts) == k
    assert counts.max() - counts.min() <= 1
    assert np.all(np.hypot(X[:, 0], X[:, 1]) <= 1.0 + 1e-12)


def test_spirals_without_noise_follow_the_cs231n_formula():
    X, y = datasets.spirals(30, n_classes=3, noise=0.0, seed=0)
    for k in range(3):
        m = 10
        r = np.linspace(0, 1, m)
        t = np.linspace(4 * k, 4 * (k + 1), m)
        expected = np.column_stack([r * np.sin(t), r * np.cos(t)])
        got = X[y == k]
        got = got[np.argsort(np.hypot(got[:, 0], got[:, 1]))]
        np.testing.assert_allclose(got, expected, atol=1e-15)


def test_sine_range_and_noise():
    X, y = datasets.sine(2000, noise=0.0, seed=0)
    assert np.all(np.abs(X) <= np.pi)
    np.testing.assert_array_equal(y, np.sin(X[:, 0]))
    X, y = datasets.sine(2000, noise=0.1, seed=0)
    residual = y - np.sin(X[:, 0])
    assert 0.08 < residual.std() < 0.12


BAD = [
    (datasets.xor, dict(n_samples=0), ValueError, "n_samples"),
    (datasets.xor, dict(n_samples=4.0), TypeError, "n_samples"),
    (datasets.xor, dict(n_samples=True), TypeError, "n_samples"),
    (datasets.xor, dict(noise=-0.1), ValueError, "noise"),
    (datasets.two_moons, dict(noise=float("nan")), ValueError, "noise"),
    (datasets.two_moons, dict(noise=float("inf")), ValueError, "noise"),
    (datasets.two_moons, dict(noise="0.1"), TypeError, "noise"),
    (datasets.two_moons, dict(n_samples=-5), ValueError, "n_samples"),
    (datasets.spirals, dict(n_classes=1), ValueError, "n_classes"),
    (datasets.spirals, dict(n_classes=2.5), TypeError, "n_classes"),
    (datasets.spirals, dict(n_samples=2, n_classes=3), ValueError, "n_samples"),
    (datasets.sine, dict(n_samples="10"), TypeError, "n_samples"),
    (datasets.sine, dict(seed=-1), ValueError, "seed"),
    (datasets.sine, dict(seed="abc"), TypeError, "seed"),
    (datasets.sine, dict(seed=1.5), TypeError, "seed"),
]


@pytest.mark.parametrize("gen, kwargs, exc, name", BAD)
def test_bad_arguments_raise(gen, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        gen(**kwargs)


def test_all_is_exported():
    assert set(datasets.__all__) == {"xor", "two_moons", "spirals", "sine"}

"""The reference activations: closed forms, finite differences, dtypes, and PyTorch."""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from gdcore.reference.activations import activation_backward, activation_forward
from gdcore.reference.codes import ACTIVATIONS
from helpers import central_differences

NAMES = list(ACTIVATIONS)


def pre_activations(name, rng, shape=(4, 5)):
    """Random Z kept away from the kinks (z = 0; z = 20 for softplus), where central
    differences straddle two branches."""
    Z = rng.normal(scale=2.0, size=shape)
    Z = np.where(np.abs(Z) < 0.05, 0.5, Z)
    if name == "softplus":  # both branches of the threshold
        Z[0, :3] = [19.0, 21.5, 30.0]
    return Z


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_central_differences(name):
    rng = np.random.default_rng(ACTIVATIONS[name])
    code = ACTIVATIONS[name]
    Z = pre_activations(name, rng)
    dA = rng.normal(size=Z.shape)
    analytic = activation_backward(code, Z, activation_forward(code, Z), dA)

    # d/dz_ij of sum(dA * f(Z)), the quantity activation_backward returns
    numeric, = central_differences(lambda: np.sum(dA * activation_forward(code, Z)), [Z],
                                   eps=1e-6)

    assert np.max(np.abs(numeric)) > 1e-2  # guard: a zero gradient would pass trivially
    assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


LN2, LN3 = math.log(2.0), math.log(3.0)
GELU1 = 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (1 + 0.044715)))  # gelu(1) = 0.841192...

CLOSED_FORMS = [
    # (name, z, f(z), f'(z))
    ("identity", -3.5, -3.5, 1.0),
    ("sigmoid", 0.0, 0.5, 0.25),                 # 1/(1+1); a(1-a) = 1/4
    ("sigmoid", LN3, 0.75, 0.1875),              # 1/(1+1/3) = 3/4; 3/4 * 1/4
    ("sigmoid", -LN3, 0.25, 0.1875),
    ("tanh", 0.0, 0.0, 1.0),
    ("tanh", LN2, 0.6, 0.64),                    # (4-1)/(4+1) = 3/5; 1 - 9/25
    ("relu", -1.0, 0.0, 0.0),
    ("relu", 0.0, 0.0, 0.0),                     # derivative 0 at 0, as PyTorch
    ("relu", 2.0, 2.0, 1.0),
    ("leaky_relu", -2.0, -0.02, 0.01),
    ("leaky_relu", 3.0, 3.0, 1.0),
    ("elu", -LN2, -0.5, 0.5),                    # e^-ln2 - 1 = -1/2; a + 1 = 1/2
    ("elu", 1.5, 1.5, 1.0),
    ("softplus", 0.0, LN2, 0.5),                 # log(1 + 1); sigmoid(0)
    ("softplus", LN3, math.log(4.0), 0.75),      # log(1 + 3); sigmoid(ln 3)
    ("softplus", 25.0, 25.0, 1.0),               # above the threshold 20: linear
    ("gelu", 0.0, 0.0, 0.5),                     # 0.5 * 0 * ...; 0.5 (1 + tanh 0)
    ("gelu", 1.0, GELU1, None),
    ("gelu", 40.0, 40.0, 1.0),                   # tanh(...) = 1 in float64
]


@pytest.mark.parametrize("name, z, value, slope", CLOSED_FORMS)
def test_closed_forms(name, z, value, slope):
    code = ACTIVATIONS[name]
    Z = np.array([[z]])
    A = activation_forward(code, Z)
    assert_allclose(A, [[value]], rtol=1e-14, atol=1e-15)
    if slope is not None:
        dZ = activation_backward(code, Z, A, np.ones_like(Z))
        assert_allclose(dZ, [[slope]], rtol=1e-14, atol=1e-15)


def test_softmax_closed_form():
    # exp([0, ln2, ln3]) = [1, 2, 3] -> [1/6, 2/6, 3/6]
    A = activation_forward(ACTIVATIONS["softmax"], np.array([[0.0, LN2, LN3]]))
    assert_allclose(A, [[1 / 6, 1 / 3, 1 / 2]], rtol=1e-14)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(name, dtype):
    code = ACTIVATIONS[name]
    Z = np.random.default_rng(1).normal(size=(3, 4)).astype(dtype)
    A = activation_forward(code, Z)
    dZ = activation_backward(code, Z, A, np.ones_like(Z))
    assert A.dtype == dtype and dZ.dtype == dtype
    assert A.shape == dZ.shape == Z.shape


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs_are_finite_and_quiet(name, dtype):
    # filterwarnings = error: an overflow warning in exp would fail here
    code = ACTIVATIONS[name]
    Z = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=dtype)
    A = activation_forward(code, Z)
    dZ = activation_backward(code, Z, A, np.ones_like(Z))
    assert np.all(np.isfinite(A)) and np.all(np.isfinite(dZ))


def test_softmax_rows_sum_to_one_and_large_logits_are_stable():
    softmax = ACTIVATIONS["softmax"]
    Z = np.random.default_rng(2).normal(scale=5.0, size=(6, 4))
    assert_allclose(activation_forward(softmax, Z).sum(axis=1), 1.0, rtol=1e-14)
    # a shift does not change softmax; at 1000 a naive exp would overflow
    big = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1e4, 1e4]])
    A = activation_forward(softmax, big)
    assert np.all(np.isfinite(A))
    assert_allclose(A[0], activation_forward(softmax, big[:1] - 1000.0)[0], rtol=1e-14)
    assert_allclose(A[1], [0.0, 0.0, 1.0])


def test_softmax_float32_rows_sum_to_one():
    Z = np.random.default_rng(3).normal(scale=30.0, size=(5, 7)).astype(np.float32)
    A = activation_forward(ACTIVATIONS["softmax"], Z)
    assert A.dtype == np.float32
    assert_allclose(A.sum(axis=1), 1.0, rtol=1e-6)


def test_unknown_code_is_a_value_error():
    with pytest.raises(ValueError, match="activation code"):
        activation_forward(99, np.zeros((1, 1)))


def torch_activation(name):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    return {
        "identity": lambda z: z,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": F.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
        "elu": lambda z: F.elu(z, alpha=1.0),
        "softplus": lambda z: F.softplus(z, beta=1.0, threshold=20.0),
        "gelu": lambda z: F.gelu(z, approximate="tanh"),
        "softmax": lambda z: F.softmax(z, dim=1),
    }[name]


@pytest.mark.parametrize("name", NAMES)
def test_values_and_gradients_equal_torch(name):
    torch = pytest.importorskip("torch")
    f = torch_activation(name)
    rng = np.random.default_rng(4)
    Z = rng.normal(scale=3.0, size=(6, 5))
    Z[0] = [0.0, 20.0, 20.5, -30.0, 50.0]  # the kinks and the softplus threshold, on purpose
    dA = rng.normal(size=Z.shape)
    code = ACTIVATIONS[name]

    A = activation_forward(code, Z)
    dZ = activation_backward(code, Z, A, dA)

    z = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    a = f(z)
    a.backward(torch.tensor(dA))
    # atol: torch's vectorised tanh/exp differ from libm in the last bit, and gelu' cancels
    # terms of order 1 into values of order 1e-5 for z near -3
    assert_allclose(A, a.detach().numpy(), rtol=1e-13, atol=1e-15)
    assert_allclose(dZ, z.grad.numpy(), rtol=1e-12, atol=1e-14)

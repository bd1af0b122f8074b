"""The reference losses: hand-checked values, finite differences, stability, and PyTorch."""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from gdcore.reference.activations import activation_forward
from gdcore.reference.codes import ACTIVATIONS, LOSSES
from gdcore.reference.losses import loss_gradient, loss_value
from gdcore.reference.network import DenseLayer, Network
from helpers import central_differences

ACT = ACTIVATIONS
LN2, LN3 = math.log(2.0), math.log(3.0)


def value(loss, act, Z, Y, w=None):
    return loss_value(LOSSES[loss], Z, activation_forward(ACT[act], Z), Y, w)


def grad(loss, act, Z, Y, w=None):
    return loss_gradient(LOSSES[loss], ACT[act], Z, activation_forward(ACT[act], Z), Y, w)[1]


# ---------------------------------------------------------------------------- closed forms

def test_mse_mae_by_hand():
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    Y = np.array([[0.0, 2.0], [3.0, 2.0]])
    # d = [[1, 0], [0, 2]]
    # mse: l = [(1 + 0)/2, (0 + 4)/2] = [0.5, 2];  L = 2.5/2 = 1.25
    # mae: l = [(1 + 0)/2, (0 + 2)/2] = [0.5, 1];  L = 1.5/2 = 0.75
    assert value("mse", "identity", A, Y) == pytest.approx(1.25, rel=1e-15)
    assert value("mae", "identity", A, Y) == pytest.approx(0.75, rel=1e-15)
    # weights [1, 3]: mse (0.5*1 + 2*3)/4 = 1.625;  mae (0.5*1 + 1*3)/4 = 0.875
    w = np.array([1.0, 3.0])
    assert value("mse", "identity", A, Y, w) == pytest.approx(1.625, rel=1e-15)
    assert value("mae", "identity", A, Y, w) == pytest.approx(0.875, rel=1e-15)


def test_huber_by_hand():
    A = np.array([[0.5, 0.0], [3.0, -1.0]])
    Y = np.zeros((2, 2))
    # |d| = [0.5, 0, 3, 1] -> [0.5*0.25, 0, 3 - 0.5, 1 - 0.5] = [0.125, 0, 2.5, 0.5]
    # (|d| = 1 is not < 1: the linear branch, equal to the quadratic one there)
    # l = [0.0625, 1.5];  L = 1.5625/2 = 0.78125
    assert value("huber", "identity", A, Y) == pytest.approx(0.78125, rel=1e-15)
    # dL/da = clip(d, -1, 1) / (n * n_out) = [0.5, 0, 1, -1] / 4
    assert_allclose(grad("huber", "identity", A, Y), [[0.125, 0.0], [0.25, -0.25]])


def test_bce_by_hand():
    Z = np.array([[0.0, LN3, LN3]])
    Y = np.array([[1.0, 1.0, 0.0]])
    # sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4
    # l_k = [-ln(1/2), -ln(3/4), -ln(1 - 3/4)] = [ln 2, ln(4/3), ln 4]
    # L = (ln 2 + ln(4/3) + ln 4)/3 = ln(32/3)/3
    assert value("bce", "sigmoid", Z, Y) == pytest.approx(math.log(32 / 3) / 3, rel=1e-14)
    # dL/dz = (sigmoid(z) - y)/3 = [-1/2, -1/4, 3/4]/3
    assert_allclose(grad("bce", "sigmoid", Z, Y), [[-1 / 6, -1 / 12, 1 / 4]], rtol=1e-14)


def test_cross_entropy_by_hand():
    Z = np.array([[0.0, LN2, LN3], [0.0, LN2, LN3]])  # softmax = [1/6, 2/6, 3/6]
    labels = np.array([2, 0])
    # l = [-ln(1/2), -ln(1/6)] = [ln 2, ln 6];  L = (ln 2 + ln 6)/2 = ln(12)/2
    assert value("cross_entropy", "softmax", Z, labels) == pytest.approx(math.log(12) / 2)
    # probability targets: row 0 = [1/2, 0, 1/2]: -(ln(1/6) + ln(1/2))/2 = ln(12)/2;
    # row 1 = one-hot(0): ln 6;  L = (ln(12)/2 + ln 6)/2
    P = np.array([[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]])
    expected = (math.log(12) / 2 + math.log(6)) / 2
    assert value("cross_entropy", "softmax", Z, P) == pytest.approx(expected, rel=1e-14)
    # weights [3, 1] with the labels: (3 ln 2 + ln 6)/4
    w = np.array([3.0, 1.0])
    assert value("cross_entropy", "softmax", Z, labels, w) == pytest.approx(
        (3 * LN2 + math.log(6)) / 4, rel=1e-14)
    # dL/dz = (softmax - onehot) w_j / sum w: row 0 = ([1/6, 2/6, 3/6] - [0, 0, 1]) * 3/4
    assert_allclose(grad("cross_entropy", "softmax", Z, labels, w)[0],
                    [1 / 8, 1 / 4, -3 / 8], rtol=1e-14)


def test_mse_gradient_by_hand():
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    Y = np.array([[0.0, 2.0], [3.0, 2.0]])
    # 2d / (n * n_out) = 2 [[1, 0], [0, 2]] / 4;  weighted [1, 3]: row j times w_j/(4 * 2)
    assert_allclose(grad("mse", "identity", A, Y), [[0.5, 0.0], [0.0, 1.0]])
    assert_allclose(grad("mse", "identity", A, Y, np.array([1.0, 3.0])),
                    [[0.25, 0.0], [0.0, 1.5]])


# ---------------------------------------------------------------------------- finite differences

CASES = [  # (loss, output activation, target kind)
    ("mse", "identity", "real"), ("mse", "sigmoid", "real"), ("mse", "tanh", "real"),
    ("mse", "softmax", "real"), ("mse", "softplus", "real"), ("mse", "leaky_relu", "real"),
    ("mse", "relu", "real"), ("mae", "identity", "real"), ("mae", "tanh", "real"),
    ("huber", "identity", "real"), ("huber", "elu", "real"), ("huber", "gelu", "real"),
    ("bce", "sigmoid", "binary"), ("bce", "sigmoid", "soft"),
    ("cross_entropy", "softmax", "index"), ("cross_entropy", "softmax", "probability"),
]


def make_case(kind, rng, n=5, k=3):
    Z = rng.normal(scale=1.5, size=(n, k))
    Z = np.where(np.abs(Z) < 0.05, 0.5, Z)  # away from the relu kink
    if kind == "real":
        Y = rng.normal(scale=1.5, size=(n, k))
    elif kind == "binary":
        Y = rng.integers(0, 2, size=(n, k)).astype(float)
    elif kind == "soft":
        Y = rng.uniform(size=(n, k))
    elif kind == "index":
        Y = rng.integers(0, k, size=n)
    else:
        Y = rng.dirichlet(np.ones(k), size=n)
    return Z, Y


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss, act, kind", CASES)
def test_gradient_matches_central_differences(loss, act, kind, weighted):
    rng = np.random.default_rng(len(loss) * 10 + ACT[act])
    Z, Y = make_case(kind, rng)
    w = rng.uniform(0.1, 3.0, size=len(Z)) if weighted else None
    analytic = grad(loss, act, Z, Y, w)

    numeric, = central_differences(lambda: value(loss, act, Z, Y, w), [Z], eps=1e-6)

    assert np.max(np.abs(numeric)) > 1e-3  # guard against a trivially zero gradient
    assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------------------- properties

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_and_cross_entropy_are_stable_for_huge_logits(dtype):
    Z = np.array([[1e4, -1e4, 1e4], [-1e4, 1e4, 0.0]], dtype=dtype)
    Y = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0]], dtype=dtype)
    # bce: l = [(0 + 0 + 1e4)/3, (1e4 + 1e4 + ln 2)/3]
    L = value("bce", "sigmoid", Z, Y)
    assert L == pytest.approx((1e4 / 3 + (2e4 + LN2) / 3) / 2, rel=1e-6)
    assert np.all(np.isfinite(grad("bce", "sigmoid", Z, Y)))
    # cross-entropy, row 0 label 1: logsumexp = 1e4 + ln 2 (two maxima), so
    # -log_softmax = 1e4 + ln 2 - (-1e4) = 2e4 + ln 2;  row 1 label 1 (the max): ~0
    labels = np.array([1, 1])
    L = value("cross_entropy", "softmax", Z, labels)
    assert L == pytest.approx((2e4 + LN2) / 2, rel=1e-6)
    dZ = grad("cross_entropy", "softmax", Z, labels)
    assert np.all(np.isfinite(dZ)) and dZ.dtype == dtype


@pytest.mark.parametrize("loss, act, kind", CASES)
def test_float32_gradient_keeps_dtype(loss, act, kind):
    Z, Y = make_case(kind, np.random.default_rng(5))
    Z = Z.astype(np.float32)
    Y = Y if kind == "index" else Y.astype(np.float32)
    w = np.linspace(0.5, 2.0, len(Z), dtype=np.float32)
    assert grad(loss, act, Z, Y, w).dtype == np.float32
    assert isinstance(value(loss, act, Z, Y, w), float)


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_index_labels_equal_one_hot(weighted):
    rng = np.random.default_rng(6)
    Z, labels = make_case("index", rng, n=7, k=4)
    onehot = np.eye(4)[labels]
    w = rng.uniform(0.5, 2.0, size=7) if weighted else None
    assert value("cross_entropy", "softmax", Z, labels, w) == pytest.approx(
        value("cross_entropy", "softmax", Z, onehot, w), rel=1e-14)
    assert_allclose(grad("cross_entropy", "softmax", Z, labels, w),
                    grad("cross_entropy", "softmax", Z, onehot, w), rtol=1e-14, atol=1e-17)


@pytest.mark.parametrize("loss, act, kind", CASES)
def test_unit_sample_weights_equal_no_weights(loss, act, kind):
    Z, Y = make_case(kind, np.random.default_rng(7))
    ones = np.ones(len(Z))
    assert value(loss, act, Z, Y, ones) == pytest.approx(value(loss, act, Z, Y), rel=1e-14)
    assert_allclose(grad(loss, act, Z, Y, ones), grad(loss, act, Z, Y), rtol=1e-14, atol=1e-17)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss, act, kind", CASES)
def test_loss_gradient_value_is_loss_value(loss, act, kind, weighted):
    """loss_gradient returns loss_value's value; cross_entropy's fused pass reads Z only, so
    it gives the same without the softmax output (as Network.forward(x, False) leaves it)."""
    rng = np.random.default_rng(11)
    Z, Y = make_case(kind, rng)
    w = rng.uniform(0.5, 2.0, size=len(Z)) if weighted else None
    A = activation_forward(ACT[act], Z)
    batch_loss, dZ = loss_gradient(LOSSES[loss], ACT[act], Z, A, Y, w)
    assert batch_loss == loss_value(LOSSES[loss], Z, A, Y, w)
    if loss == "cross_entropy":
        value_without_a, dZ_without_a = loss_gradient(LOSSES[loss], ACT[act], Z, None, Y, w)
        assert value_without_a == batch_loss
        assert_array_equal(dZ_without_a, dZ)


def test_fused_loss_with_the_wrong_output_activation_is_a_value_error():
    # checked where the C++ checks it: when the network is built
    W, b = np.zeros((2, 2)), np.zeros(2)
    with pytest.raises(ValueError, match="bce"):
        Network([DenseLayer(W, b, ACT["identity"])], LOSSES["bce"])
    with pytest.raises(ValueError, match="cross_entropy"):
        Network([DenseLayer(W, b, ACT["sigmoid"])], LOSSES["cross_entropy"])


# ---------------------------------------------------------------------------- PyTorch

def torch_activation(name):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    return {
        "identity": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
        "relu": F.relu, "leaky_relu": lambda z: F.leaky_relu(z, 0.01),
        "elu": lambda z: F.elu(z, alpha=1.0), "softplus": F.softplus,
        "gelu": lambda z: F.gelu(z, approximate="tanh"), "softmax": lambda z: F.softmax(z, dim=1),
    }[name]


def torch_loss(loss, kind):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    return {
        "mse": nn.MSELoss, "mae": nn.L1Loss, "huber": lambda **kw: nn.HuberLoss(delta=1.0, **kw),
        "bce": nn.BCEWithLogitsLoss, "cross_entropy": nn.CrossEntropyLoss,
    }[loss]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss, act, kind", CASES)
def test_values_and_gradients_equal_torch(loss, act, kind, weighted):
    torch = pytest.importorskip("torch")

    rng = np.random.default_rng(8)
    Z, Y = make_case(kind, rng)
    w = rng.uniform(0.1, 3.0, size=len(Z)) if weighted else None
    L = value(loss, act, Z, Y, w)
    dZ = grad(loss, act, Z, Y, w)

    z = torch.tensor(Z, requires_grad=True)
    y = torch.tensor(Y)
    fused = loss in ("bce", "cross_entropy")  # these torch losses take the logits
    out = z if fused else torch_activation(act)(z)
    if w is None:
        lt = torch_loss(loss, kind)()(out, y)
    else:  # the per-sample loss, then sum(w l) / sum(w)
        per = torch_loss(loss, kind)(reduction="none")(out, y)
        per = per if per.ndim == 1 else per.mean(dim=1)
        wt = torch.tensor(w)
        lt = (wt * per).sum() / wt.sum()
    lt.backward()
    assert L == pytest.approx(lt.item(), rel=1e-13, abs=1e-15)
    assert_allclose(dZ, z.grad.numpy(), rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("k", [1, 3])
def test_bce_gradient_lanes_is_each_networks_loss_gradient(rng, k, weighted):
    """The lane form (element e of network l at e * lanes + l) of bce's loss_gradient: each
    network's value and dZ as its own call (the twin of losses.cpp's bce_gradient_lanes)."""
    from gdcore.reference.losses import bce_gradient_lanes
    lanes, n = 5, 7
    Zs = [rng.normal(size=(n, k)) for _ in range(lanes)]
    Y = (rng.uniform(size=(n, k)) > 0.5).astype(float)
    w = rng.uniform(0.5, 2.0, size=n) if weighted else None
    As = [activation_forward(ACT["sigmoid"], Z) for Z in Zs]
    Z_lanes = np.stack(Zs, axis=-1).reshape(n, k * lanes)
    A_lanes = np.stack(As, axis=-1).reshape(n, k * lanes)
    dZ_lanes, values = bce_gradient_lanes(Z_lanes, A_lanes, Y, w, lanes)
    dZ_each = dZ_lanes.reshape(n, k, lanes)
    for l in range(lanes):
        value_l, dZ_l = loss_gradient(LOSSES["bce"], ACT["sigmoid"], Zs[l], As[l], Y, w)
        assert values[l] == value_l
        assert_array_equal(dZ_each[:, :, l], dZ_l)

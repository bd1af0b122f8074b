"""The engines compare.py measures, behind one interface.

Each ``*_epoch`` function prepares its engine for a workload and returns an :class:`Epoch`:
``reset`` (untimed) puts back the initial weights and a fresh optimizer, ``run`` (timed)
trains one epoch and returns its loss. gdcore is used through its public API only.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
from typing import Callable

import numpy as np

import gdcore as gd
from workloads import Workload, cpp_available, restore

ENGINES = ("gdcore", "numpy", "torch", "sklearn", "jax")
#: The engines that are gdcore, and the backend each one uses.
GDCORE_BACKENDS = {"gdcore": "cpp", "numpy": "numpy"}


class Skipped(Exception):
    """An engine cannot run this measurement; the message says why."""


def optional_import(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise Skipped(f"{module.split('.')[0]} not installed") from None


@contextlib.contextmanager
def gdcore_backend(name: str):
    """Networks built inside use gdcore backend ``name`` ("cpp" or "numpy")."""
    if name == "cpp" and not cpp_available():
        raise Skipped("gdcore C++ core not built")
    previous = gd.backend()
    gd.set_backend(name)
    try:
        yield
    finally:
        gd.set_backend(previous)


@dataclasses.dataclass
class Epoch:
    reset: Callable[[], None]
    run: Callable[[], float]


# --- gdcore (compiled core or NumPy reference) ----------------------------------------------

def gdcore_epoch(w: Workload, data, initial, backend: str, bare: bool = False) -> Epoch:
    """``fit(epochs=1)``; with ``bare``, ``train_epoch``: the engine call fit makes per epoch,
    without fit's history, divergence check and callbacks."""
    with gdcore_backend(backend):
        net = w.network()
    X, y = data
    current = {}

    def reset():
        restore(net, initial)
        current["opt"] = w.optimizer()

    def fit():
        history = net.fit(X, y, optimizer=current["opt"], epochs=1, batch_size=w.batch_size,
                          shuffle=False)
        return history.loss[0]

    def train_epoch():
        return net.train_epoch(X, y, current["opt"], batch_size=w.batch_size, shuffle=False)

    return Epoch(reset, train_epoch if bare else fit)


# --- PyTorch ---------------------------------------------------------------------------------

TORCH_ACTIVATIONS = {"identity": "Identity", "sigmoid": "Sigmoid", "tanh": "Tanh",
                     "relu": "ReLU", "softmax": "Softmax"}


def torch_model(w: Workload, initial, with_output_activation: bool):
    """``nn.Sequential`` with gdcore's initial weights; the output layer gives logits unless
    ``with_output_activation`` (the losses below take logits, as gdcore's fused ones do)."""
    torch = optional_import("torch")
    nn = torch.nn
    layers = []
    n_layers = len(w.sizes) - 1
    for i in range(n_layers):
        linear = nn.Linear(w.sizes[i], w.sizes[i + 1])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(initial[2 * i].T.copy()))  # (out, in)
            linear.bias.copy_(torch.from_numpy(initial[2 * i + 1]))
        layers.append(linear)
        name = w.activation if i < n_layers - 1 else w.output_activation
        if i < n_layers - 1 or with_output_activation:
            module = getattr(nn, TORCH_ACTIVATIONS[name])
            layers.append(module(dim=-1) if name == "softmax" else module())
    return nn.Sequential(*layers)


def torch_epoch(w: Workload, data, initial) -> Epoch:
    """A plain loop over the same batches: zero_grad, forward, loss, backward, step."""
    torch = optional_import("torch")
    model = torch_model(w, initial, with_output_activation=False)
    if w.loss == "bce":
        loss_fn = torch.nn.BCEWithLogitsLoss()
        targets = torch.from_numpy(data[1]).reshape(-1, 1)
    else:
        loss_fn = torch.nn.CrossEntropyLoss()
        targets = torch.from_numpy(data[1])
    batches = list(zip(torch.from_numpy(data[0]).split(w.batch_size),
                       targets.split(w.batch_size)))
    params = list(model.parameters())
    start = [p.detach().clone() for p in params]
    current = {}

    def reset():
        with torch.no_grad():
            for p, p0 in zip(params, start):
                p.copy_(p0)
        current["opt"] = torch.optim.SGD(params, lr=w.lr, momentum=w.momentum)

    def run():
        opt, total = current["opt"], 0.0
        for xb, yb in batches:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        return total / w.n_samples

    return Epoch(reset, run)


# --- scikit-learn ----------------------------------------------------------------------------

SKLEARN_ACTIVATIONS = {"identity": "identity", "sigmoid": "logistic", "tanh": "tanh",
                       "relu": "relu"}


def sklearn_epoch(w: Workload, data, initial) -> Epoch:
    """``MLPClassifier.partial_fit`` once over the data (its epoch), plain SGD settings."""
    neural_network = optional_import("sklearn.neural_network")
    # MLPClassifier ends in a logistic unit (2 classes, log-loss = bce) or a softmax
    # (cross-entropy), and knows four hidden activations.
    expressible = ((w.loss, w.output_activation) in
                   (("bce", "sigmoid"), ("cross_entropy", "softmax"))
                   and w.activation in SKLEARN_ACTIVATIONS)
    if not expressible:
        raise Skipped(f"MLPClassifier cannot express {w.name}")
    X, y = data
    classes = np.unique(y)
    current = {}

    def reset():
        clf = neural_network.MLPClassifier(
            hidden_layer_sizes=w.sizes[1:-1], activation=SKLEARN_ACTIVATIONS[w.activation],
            solver="sgd", batch_size=w.batch_size, learning_rate="constant",
            learning_rate_init=w.lr, momentum=w.momentum, nesterovs_momentum=False, alpha=0.0,
            shuffle=False, random_state=0)
        # One call on one batch builds the model; then load gdcore's initial weights into its
        # arrays and drop its optimizer (scikit-learn's private attribute) so that the timed
        # call starts a fresh one with zero velocity over those same arrays.
        clf.partial_fit(X[:w.batch_size], y[:w.batch_size], classes=classes)
        for target, value in zip(clf.coefs_ + clf.intercepts_, initial[0::2] + initial[1::2]):
            np.copyto(target, value)
        del clf._optimizer
        current["clf"] = clf

    def run():
        clf = current["clf"]
        clf.partial_fit(X, y)
        return clf.loss_

    return Epoch(reset, run)


# --- JAX ------------------------------------------------------------------------------------

def jax_epoch(w: Workload, data, initial) -> Epoch:
    """The whole epoch as one ``jit``-compiled function: ``lax.scan`` over the batches of a
    step (forward, the loss on logits, ``jax.grad``, SGD with torch's momentum rule), and the
    last, shorter batch (if any) as one more step. The warm-up run compiles it; the timed runs
    do not (compare.py times after one warm-up)."""
    jax = optional_import("jax")
    jnp = jax.numpy
    jax.config.update("jax_platforms", "cpu")
    hidden = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid,
              "identity": lambda z: z}[w.activation]

    def logits(params, x):
        for i, (W, b) in enumerate(params):
            x = x @ W + b
            if i < len(params) - 1:
                x = hidden(x)
        return x

    def loss(params, x, y):
        z = logits(params, x)
        if w.loss == "bce":
            z = z[:, 0]
            return jnp.mean(jnp.maximum(z, 0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z))))
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=1))

    def step(carry, batch):
        params, velocity = carry
        value, grads = jax.value_and_grad(loss)(params, *batch)
        velocity = jax.tree_util.tree_map(lambda v, g: w.momentum * v + g, velocity, grads)
        params = jax.tree_util.tree_map(lambda p, v: p - w.lr * v, params, velocity)
        return (params, velocity), value * batch[0].shape[0]

    X, y = data
    whole = (len(X) // w.batch_size) * w.batch_size
    shape = (-1, w.batch_size)
    xs = (jnp.asarray(X[:whole]).reshape(*shape, X.shape[1]), jnp.asarray(y[:whole]).reshape(shape))
    tail = (jnp.asarray(X[whole:]), jnp.asarray(y[whole:])) if whole < len(X) else None

    @jax.jit
    def epoch(params, velocity):
        (params, velocity), values = jax.lax.scan(step, (params, velocity), xs)
        total = values.sum()
        if tail is not None:
            (params, velocity), value = step((params, velocity), tail)
            total = total + value
        return params, velocity, total / len(X)

    start = [(jnp.asarray(initial[2 * i]), jnp.asarray(initial[2 * i + 1]))
             for i in range(len(w.sizes) - 1)]
    current = {}

    def reset():
        current["params"] = start
        current["velocity"] = jax.tree_util.tree_map(jnp.zeros_like, start)

    def run():
        params, velocity, value = epoch(current["params"], current["velocity"])
        current["params"], current["velocity"] = params, velocity
        return float(value)  # waits for the result

    return Epoch(reset, run)


EPOCH_RUNNERS = {
    "gdcore": functools.partial(gdcore_epoch, backend="cpp"),
    "numpy": functools.partial(gdcore_epoch, backend="numpy"),
    "torch": torch_epoch,
    "sklearn": sklearn_epoch,
    "jax": jax_epoch,
}


# --- predict-1: one row through the network ------------------------------------------------

def predict_callables(engine: str, w: Workload, x_row: np.ndarray, initial):
    """A zero-argument function that predicts ``x_row`` once, and a context to call it in."""
    if engine in GDCORE_BACKENDS:
        with gdcore_backend(GDCORE_BACKENDS[engine]):
            net = w.network()
        restore(net, initial)
        return (lambda: net.forward(x_row)), contextlib.nullcontext()
    if engine == "torch":
        torch = optional_import("torch")
        model = torch_model(w, initial, with_output_activation=True)
        x = torch.from_numpy(x_row.reshape(1, -1))
        return (lambda: model(x)), torch.no_grad()
    raise Skipped("no single-row predict measured for this engine")


def load_libraries(threads: int) -> None:
    """Load every engine's libraries, then give each the same thread count (threadpoolctl
    limits only what is loaded)."""
    for module in ("torch", "sklearn.neural_network", "jax"):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)
    gd.set_num_threads(threads)
    with contextlib.suppress(ImportError):
        importlib.import_module("torch").set_num_threads(threads)

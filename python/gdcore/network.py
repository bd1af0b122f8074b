"""Perceptron, Layer, Network: the public model classes.

A layer computes ``A = f(X @ W + b)``; layers stacked form a network. The classes here own the
parameters (NumPy arrays) and validate every input; the arithmetic runs in the network's
engine, the compiled core or the NumPy reference (see ``gd.backend()``), with the same results.
"""
from __future__ import annotations

import contextlib
import threading
import weakref
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence, Union

import numpy as np

from . import _backend
from . import _validation as v
from . import training
from .reference.codes import ACTIVATIONS, LOSSES

if TYPE_CHECKING:
    from .training import History

ArrayLike = Any
Seed = Union[None, int, np.random.Generator]

#: The initialisation schemes of :func:`initial_weights`; a Layer's default is "sklearn".
INITS = ("sklearn", "xavier", "he", "torch", "zeros")
#: Serialises Layer.forward (an engine runs one call at a time; standalone layers are a
#: convenience, not a hot path, so one lock for all of them keeps layers picklable).
_LAYER_LOCK = threading.RLock()
#: The networks whose engine holds views of each layer's arrays.
_NETWORKS_OF_LAYER: "weakref.WeakKeyDictionary[Layer, weakref.WeakSet]" = \
    weakref.WeakKeyDictionary()


_ACTIVATION = v.Options(ACTIVATIONS)


def _check_activation(activation: Any, name: str = "activation") -> str:
    return _ACTIVATION(activation, name)


def _rng(seed: Seed) -> np.random.Generator:
    return v.generator(seed, "seed")


def initial_weights(n_inputs: int, n_outputs: int, init: str, rng: np.random.Generator,
                    activation: str = "identity") -> tuple:
    """Float64 ``(weights (n_inputs, n_outputs), bias (n_outputs,))`` for the scheme ``init``.

    With ``fan_in = n_inputs``, ``fan_out = n_outputs`` and ``U(+-a)`` uniform on ``[-a, a]``:

    - ``"he"``: ``W ~ N(0, 2 / fan_in)`` (PyTorch's ``kaiming_normal_``), ``b = 0``.
    - ``"xavier"``: ``W ~ U(+-sqrt(6 / (fan_in + fan_out)))`` (``xavier_uniform_``), ``b = 0``.
    - ``"sklearn"``: scikit-learn's MLP (``_init_coef``): ``W, b ~ U(+-sqrt(k / (fan_in +
      fan_out)))`` with ``k = 2`` for a sigmoid layer and ``k = 6`` otherwise.
    - ``"torch"``: PyTorch's ``nn.Linear`` default (``kaiming_uniform_(a=sqrt(5))``):
      ``W, b ~ U(+-1 / sqrt(fan_in))``.
    - ``"zeros"``: ``W = 0``, ``b = 0``.

    The weights are drawn from ``rng`` before the bias, so a seed fixes both.
    """
    shape = (n_inputs, n_outputs)
    if init == "zeros":
        return np.zeros(shape), np.zeros(n_outputs)
    if init == "he":
        return rng.normal(0.0, np.sqrt(2.0 / n_inputs), size=shape), np.zeros(n_outputs)
    if init == "xavier":
        limit = np.sqrt(6.0 / (n_inputs + n_outputs))
        return rng.uniform(-limit, limit, size=shape), np.zeros(n_outputs)
    if init == "sklearn":
        limit = np.sqrt((2.0 if activation == "sigmoid" else 6.0) / (n_inputs + n_outputs))
    elif init == "torch":
        limit = 1.0 / np.sqrt(n_inputs)
    else:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    weights = rng.uniform(-limit, limit, size=shape)
    return weights, rng.uniform(-limit, limit, size=n_outputs)


class Layer:
    """A dense layer of ``n_outputs`` perceptrons: ``A = f(X @ W + b)``.

    Parameters
    ----------
    n_inputs, n_outputs : int
        Sizes, each >= 1. ``weights`` has shape ``(n_inputs, n_outputs)``, ``bias`` ``(n_outputs,)``.
    activation : str
        One of ``identity, sigmoid, tanh, relu, leaky_relu, elu, softplus, gelu, softmax``.
    init : {"sklearn", "xavier", "he", "torch", "zeros"} or None
        Initialisation of the weights and bias (formulas in :func:`initial_weights`). None
        (the default) is ``"sklearn"``, scikit-learn's MLP scheme for every activation:
        ``W, b ~ U(+-sqrt(6 / (n_inputs + n_outputs)))``, ``+-sqrt(2 / (...))`` for sigmoid.
        Chosen on ``bench/init_study.py``: it matches ``MLPClassifier`` on iris and is as good
        as the best other scheme on the other problems there, deep relu stacks included
        (He's init, the former relu default, lost up to 3 points). ``"xavier"`` and ``"he"``
        start the bias at zero.
    dropout : float in [0, 1)
        Inverted dropout on this layer's output activations while training (``fit``,
        ``train_epoch``): each is zeroed with this probability and the others scaled by
        ``1 / (1 - dropout)``, with a new mask per optimizer step drawn from a counter-based
        generator (the same masks on both engines, see docs/design.md). ``forward``,
        ``predict`` and ``loss`` never drop. Not allowed on a network's output layer.
    dtype : {"float32", "float64"}
        Parameter dtype; a :class:`Network` converts its layers to its own dtype.
    seed : int, numpy Generator or None
        Randomness of the initial weights.
    """

    def __init__(self, n_inputs: int, n_outputs: int, activation: str = "identity",
                 init: Optional[str] = None, *, dropout: float = 0.0, dtype: Any = "float32",
                 seed: Seed = None) -> None:
        n_inputs = v.positive_int(n_inputs, "n_inputs")
        n_outputs = v.positive_int(n_outputs, "n_outputs")
        self._dropout = v.DROPOUT_RATE(dropout, "dropout")
        self._activation = _check_activation(activation)
        if init is None:
            init = "sklearn"
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS} or None, got {init!r}")
        dtype = v.as_dtype(dtype)
        weights, bias = initial_weights(n_inputs, n_outputs, init, _rng(seed), activation)
        self._weights = np.ascontiguousarray(weights, dtype=dtype)
        self._bias = np.ascontiguousarray(bias, dtype=dtype)
        self._engine: Any = None  # built on the first Layer.forward

    # The arrays are never rebound after construction (only written into), so an engine
    # holding views of them stays valid for the layer's life.
    @property
    def weights(self) -> np.ndarray:
        """Weights, shape ``(n_inputs, n_outputs)``; assigning copies into the same buffer."""
        return self._weights

    @weights.setter
    def weights(self, value: ArrayLike) -> None:
        self._assign(self._weights, value, "weights")

    @property
    def bias(self) -> np.ndarray:
        """Bias, shape ``(n_outputs,)``; assigning copies into the same buffer."""
        return self._bias

    @bias.setter
    def bias(self, value: ArrayLike) -> None:
        self._assign(self._bias, value, "bias")

    @staticmethod
    def _assign(target: np.ndarray, value: ArrayLike, name: str) -> None:
        arr = v._numeric_array(value, name)
        if arr.shape != target.shape:
            raise ValueError(f"{name} must have shape {target.shape}, got {arr.shape}")
        arr = v._cast(arr, target.dtype)
        v._check_finite(arr, name)
        np.copyto(target, arr)

    @property
    def activation(self) -> str:
        """The activation's name."""
        return self._activation

    @property
    def dropout(self) -> float:
        """Dropout rate of this layer's outputs while training, in [0, 1) (see :class:`Layer`)."""
        return self._dropout

    @dropout.setter
    def dropout(self, value: float) -> None:
        rate = v.DROPOUT_RATE(value, "dropout")
        for network in list(_NETWORKS_OF_LAYER.get(self, ())):
            if network._layers[-1] is self:
                v.output_dropout(rate, "this layer is the output layer of a network")
        self._dropout = rate

    @property
    def n_inputs(self) -> int:
        return self._weights.shape[0]

    @property
    def n_outputs(self) -> int:
        return self._weights.shape[1]

    @property
    def dtype(self) -> np.dtype:
        return self._weights.dtype

    def _set_dtype(self, dtype: np.dtype) -> None:
        if self._weights.dtype != dtype:
            self._weights = self._weights.astype(dtype)
            self._bias = self._bias.astype(dtype)
            self._engine = None

    def forward(self, X: ArrayLike) -> np.ndarray:
        """This layer's activations ``(n_samples, n_outputs)`` for ``X`` ``(n_samples, n_inputs)``.

        Safe to call from several threads at once (calls on one layer are serialised).
        """
        X = v.features(X, self.n_inputs, self.dtype)
        with _LAYER_LOCK:
            if self._engine is None:
                self._engine = _backend.make_engine([self._weights], [self._bias],
                                                    [ACTIVATIONS[self._activation]],
                                                    LOSSES["mse"])
            return self._engine.forward(X)

    __call__ = forward

    def __getstate__(self) -> dict:
        # The engine built by forward holds views of this layer's arrays: not part of its
        # state (a copy builds its own on its first forward).
        return {**self.__dict__, "_engine": None}

    def __setstate__(self, state: dict) -> None:
        state.setdefault("_dropout", 0.0)  # pickles made before layers had a dropout rate
        self.__dict__.update(state)

    def __repr__(self) -> str:
        extra = f", dropout={self._dropout:g}" if self._dropout else ""
        return (f"Layer({self.n_inputs}, {self.n_outputs}, activation={self._activation!r}"
                f"{extra})")


class Network:
    """Layers stacked: the output of each is the input of the next, trained by a loss.

    Parameters
    ----------
    layers : sequence of Layer
        Consecutive sizes must chain; ``softmax`` only on the last layer.
    loss : {"mse", "mae", "huber", "bce", "cross_entropy", "squared_error"}
        ``bce`` needs a sigmoid output layer, ``cross_entropy`` a softmax one;
        ``squared_error`` is half the mse (scikit-learn's squared loss).
    dtype : {"float32", "float64"}
        The layers are converted to it.
    seed : int or None
        Default seed for ``fit``'s shuffling and dropout masks.

    Calls on one network are serialised by a lock, so a network may be shared between threads.
    """

    def __init__(self, layers: Sequence[Layer], loss: str = "mse", dtype: Any = "float32",
                 seed: Seed = None) -> None:
        if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
            raise TypeError("layers must be a list of Layer objects")
        if len(layers) == 0:
            raise ValueError("layers must hold at least one Layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a Layer, got {type(layer).__name__}")
        v.layer_stack([(layer.n_inputs, layer.n_outputs, layer.activation) for layer in layers],
                      loss)
        v.output_dropout(layers[-1].dropout,
                         f"the output layer layers[{len(layers) - 1}] has dropout={{rate}}")
        v.seed(seed, "seed")  # validates it (without making a Generator: ~20 us)
        dtype = v.as_dtype(dtype)
        for i, layer in enumerate(layers):
            # Converting a layer gives it new arrays; a network already built on the old ones
            # would silently stop seeing (and training) this layer.
            if layer.dtype != dtype and len(_NETWORKS_OF_LAYER.get(layer, ())):
                raise ValueError(
                    f"layers[{i}] ({layer.dtype.name}) belongs to another network; converting it "
                    f"to {dtype.name} would detach it from that network. Use new layers, or "
                    f"network.copy() and its layers")
        self._dtype = dtype
        self._layers = list(layers)
        for layer in self._layers:
            layer._set_dtype(self._dtype)
        self._loss_name = loss
        self.seed = seed
        self._lock = threading.RLock()
        self._backend = _backend.backend()
        self._engine = _backend.make_engine(
            [layer._weights for layer in self._layers], [layer._bias for layer in self._layers],
            [ACTIVATIONS[layer.activation] for layer in self._layers], LOSSES[loss],
            self._backend)
        self._predict = getattr(self._engine, "predict", None) if self._backend == "cpp" else None
        for layer in self._layers:
            _NETWORKS_OF_LAYER.setdefault(layer, weakref.WeakSet()).add(self)

    @classmethod
    def from_sizes(cls, sizes: Sequence[int], activation: str = "relu",
                   output_activation: str = "identity", loss: str = "mse",
                   dtype: Any = "float32", seed: Seed = None,
                   init: Optional[str] = None, dropout: Any = 0.0) -> "Network":
        """A network of dense layers with the given sizes, e.g. ``[2, 16, 1]``.

        Hidden layers use ``activation``, the last one ``output_activation``; every layer is
        initialised by ``init`` (see :class:`Layer`; None is the default rule) from ``seed``.
        ``dropout``: one rate for every hidden layer, or a sequence of one rate per hidden
        layer (``len(sizes) - 2`` of them); the output layer has none.
        """
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
            raise TypeError(f"sizes must be a sequence of ints, got {sizes!r}")
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least two entries (inputs, outputs), got {sizes!r}")
        sizes = [v.positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes)]
        _check_activation(activation, "activation")
        _check_activation(output_activation, "output_activation")
        if init is not None and init not in INITS:
            raise ValueError(f"init must be one of {INITS} or None, got {init!r}")
        n_hidden = len(sizes) - 2
        rates = v.hidden_dropout(dropout, n_hidden)
        rng = _rng(seed)
        layers = [Layer(sizes[i], sizes[i + 1],
                        activation if i < n_hidden else output_activation,
                        init=init, dropout=rates[i] if i < n_hidden else 0.0, dtype=dtype,
                        seed=rng)
                  for i in range(len(sizes) - 1)]
        return cls(layers, loss=loss, dtype=dtype, seed=seed if not isinstance(
            seed, np.random.Generator) else None)

    # --- description --------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The layers, first to last (a new list; the Layer objects are the network's own)."""
        return list(self._layers)

    @property
    def loss_name(self) -> str:
        return self._loss_name

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def backend(self) -> str:
        """Which engine computes for this network: ``"cpp"`` or ``"numpy"``."""
        return self._backend

    @property
    def n_inputs(self) -> int:
        return self._layers[0].n_inputs

    @property
    def n_outputs(self) -> int:
        return self._layers[-1].n_outputs

    @property
    def sizes(self) -> list[int]:
        return [self.n_inputs] + [layer.n_outputs for layer in self._layers]

    def parameters(self) -> list[np.ndarray]:
        """The parameter arrays in engine order ``W0, b0, W1, b1, ...`` (the live buffers)."""
        return [p for layer in self._layers for p in (layer._weights, layer._bias)]

    @contextlib.contextmanager
    def _writing_parameters(self) -> Iterator[None]:
        """A context for Python code that writes the parameter arrays in place (with ``_lock``
        held): the compiled engine holds them exclusively, so that the C API's forwards, which
        run without the GIL and outside ``_lock`` (gdcore/capi.h), never read them half-written.
        No engine call may be made inside it."""
        engine = self._engine
        lock = getattr(engine, "_lock_parameters", None)  # (the NumPy engine has no C API)
        if lock is None:
            yield
            return
        lock()
        try:
            yield
        finally:
            engine._unlock_parameters()

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self._layers)
        return (f"Network([{inner}], loss={self._loss_name!r}, dtype={self._dtype.name!r}, "
                f"backend={self._backend!r})")

    # --- computing ----------------------------------------------------------------------
    def forward(self, X: ArrayLike) -> np.ndarray:
        """Output-layer activations ``(n_samples, n_outputs)`` for ``X`` ``(n_samples, n_inputs)``.

        A 1-D ``X`` of length ``n_inputs`` is one sample and gives ``(1, n_outputs)``.
        """
        predict = self._predict
        if predict is not None:
            # The compiled core computes an array that is ready as it is (the right dtype,
            # layout and shape, finite) in one call; it returns None for anything else, which
            # is validated and converted here, then ready. The lock keeps it from seeing the
            # temporary weights of find_lr or a rollback.
            # (acquire/release rather than `with`: half the lock's cost on a 4 us call)
            lock = self._lock
            lock.acquire()
            try:
                out = predict(X)
            finally:
                lock.release()
            if out is None:
                X = v.features(X, self.n_inputs, self._dtype)
                with lock:
                    out = predict(X)
            return out
        X = v.features(X, self.n_inputs, self._dtype)
        with self._lock:
            return self._engine.forward(X)

    __call__ = forward

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Same as :meth:`forward`."""
        return self.forward(X)

    def _data(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike = None,
              names: tuple = ("X", "y", "sample_weight"), with_scale: bool = False) -> tuple:
        """Validated ``(X, Y, sample_weight)`` in the layout the engines take; with
        ``with_scale`` also the exponent of the power of two the sample weights were scaled by
        (:func:`gdcore._validation.sample_weights`), which scales ``l2`` for the engines."""
        X = v.features(X, self.n_inputs, self._dtype, names[0])
        Y = v.targets(y, self._loss_name, self.n_outputs, X.shape[0], self._dtype, names[1])
        w, shift = v.sample_weights(sample_weight, X.shape[0], self._dtype, names[2],
                                    with_scale=True)
        return (X, Y, w, shift) if with_scale else (X, Y, w)

    def _dropout_rates(self) -> Optional[np.ndarray]:
        """The layers' dropout rates as the engines take them (float64, one per layer), or
        None when no layer drops out."""
        return v.dropout_rates([layer.dropout for layer in self._layers])

    def _objective(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike, l2: Any,
                   label_smoothing: Any, dropout: Any, dropout_seed: Any,
                   dropout_step: Any) -> tuple:
        """The validated data and the engine keywords of :meth:`loss` and :meth:`gradients`."""
        l2, label_smoothing = v.regularisers(l2, label_smoothing, self._loss_name)
        dropout = v.flag(dropout, "dropout")
        dropout_seed = v.integer(dropout_seed, "dropout_seed", low=0)
        dropout_step = v.integer(dropout_step, "dropout_step", low=0)
        rates = self._dropout_rates() if dropout else None
        X, Y, w, shift = self._data(X, y, sample_weight, with_scale=True)
        # Only the regularisers in use become keywords (the plain engine call otherwise).
        keywords: dict = {}
        if l2 > 0:
            keywords["l2"] = v.scaled_l2(l2, shift)
        if label_smoothing > 0:
            keywords["label_smoothing"] = label_smoothing
        if rates is not None:
            keywords.update(dropout=rates, dropout_seed=dropout_seed % 2 ** 64,
                            dropout_step=dropout_step)
        return X, Y, w, keywords

    def loss(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike = None, *,
             l2: float = 0.0, label_smoothing: float = 0.0, dropout: bool = False,
             dropout_seed: int = 0, dropout_step: int = 0) -> float:
        """The mean loss over ``(X, y)`` (weighted by ``sample_weight`` when given).

        With the regularisers, the training objective instead: ``l2`` adds
        ``0.5 * l2 * sum_i ||W_i||^2 / sum(sample_weight)`` (the sample count without weights;
        scikit-learn's ``alpha``), ``label_smoothing`` smooths the targets of cross_entropy
        and bce (torch's formula). ``dropout=True`` applies the layers' dropout with the masks
        of ``dropout_seed`` at optimizer step ``dropout_step``, as a training step would (for
        gradient checks; off by default: a network is evaluated without dropout).
        """
        X, Y, w, keywords = self._objective(X, y, sample_weight, l2, label_smoothing, dropout,
                                            dropout_seed, dropout_step)
        with self._lock:
            return float(self._engine.loss(X, Y, w, **keywords))

    def gradients(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike = None, *,
                  l2: float = 0.0, label_smoothing: float = 0.0, dropout: bool = False,
                  dropout_seed: int = 0, dropout_step: int = 0,
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Backpropagation: ``[(dW, db), ...]`` of ``loss(X, y, ...)`` for each layer, with the
        same keywords (the l2 term adds ``l2 * W_i / sum(sample_weight)`` to each ``dW``)."""
        X, Y, w, keywords = self._objective(X, y, sample_weight, l2, label_smoothing, dropout,
                                            dropout_seed, dropout_step)
        dW = [np.zeros_like(layer._weights) for layer in self._layers]
        db = [np.zeros_like(layer._bias) for layer in self._layers]
        with self._lock:
            self._engine.gradients(X, Y, w, dW, db, **keywords)
        return list(zip(dW, db))

    def fit(self, X: ArrayLike, y: ArrayLike, optimizer: Any = None, epochs: int = 100,
            batch_size: Optional[int] = None, shuffle: bool = True, validation_data: Any = None,
            validation_split: float = 0.0, sample_weight: ArrayLike = None,
            tol: Optional[float] = None, n_iter_no_change: int = 5,
            restore_best_weights: bool = False, max_time: Optional[float] = None,
            on_divergence: str = "raise", callbacks: Sequence = (), progress: bool = False,
            seed: Seed = None, metrics: Sequence[str] = (), l2: float = 0.0,
            label_smoothing: float = 0.0) -> "History":
        """Train by mini-batch gradient descent; see :func:`gdcore.training.fit`."""
        return training.fit(self, X, y, optimizer=optimizer, epochs=epochs,
                            batch_size=batch_size, shuffle=shuffle,
                            validation_data=validation_data, validation_split=validation_split,
                            sample_weight=sample_weight, tol=tol,
                            n_iter_no_change=n_iter_no_change,
                            restore_best_weights=restore_best_weights, max_time=max_time,
                            on_divergence=on_divergence, callbacks=callbacks, progress=progress,
                            seed=seed, metrics=metrics, l2=l2, label_smoothing=label_smoothing)

    def train_epoch(self, X: ArrayLike, y: ArrayLike, optimizer: Any,
                    batch_size: Optional[int] = None, shuffle: bool = False, seed: Seed = None,
                    sample_weight: ArrayLike = None, l2: float = 0.0,
                    label_smoothing: float = 0.0) -> float:
        """One epoch of ``optimizer`` on this network, with no history, no divergence check
        and no callbacks: the engine call ``fit`` makes per epoch, for benchmarks and custom
        loops. The arguments are validated by the same public checks as :meth:`fit` (nothing
        changes when one is refused); the optimizer keeps its state as in ``fit``. Returns the
        epoch's mean loss. See :func:`gdcore.training.train_epoch`."""
        return training.train_epoch(self, X, y, optimizer, batch_size=batch_size,
                                    shuffle=shuffle, seed=seed, sample_weight=sample_weight,
                                    l2=l2, label_smoothing=label_smoothing)

    # --- copies, files, pickling ---------------------------------------------------------
    def _spec(self) -> dict:
        """JSON-able description of the architecture (no weights)."""
        return {"layers": [{"n_inputs": layer.n_inputs, "n_outputs": layer.n_outputs,
                            "activation": layer.activation, "dropout": layer.dropout}
                           for layer in self._layers],
                "loss": self._loss_name, "dtype": self._dtype.name,
                "seed": self.seed if isinstance(self.seed, (int, type(None))) else None}

    @classmethod
    def _from_spec(cls, spec: dict, arrays: Sequence[np.ndarray]) -> "Network":
        """A network with the architecture ``spec`` and parameters ``arrays`` (W0, b0, ...)."""
        layers = []
        for i, ls in enumerate(spec["layers"]):
            layer = Layer(ls["n_inputs"], ls["n_outputs"], ls["activation"], init="zeros",
                          dropout=ls.get("dropout", 0.0), dtype=spec["dtype"])
            layer.weights = arrays[2 * i]
            layer.bias = arrays[2 * i + 1]
            layers.append(layer)
        return cls(layers, loss=spec["loss"], dtype=spec["dtype"], seed=spec.get("seed"))

    def _use_backend(self, name: str) -> None:
        """Run this network on the engine of backend ``name`` (the same parameter arrays)."""
        if name != self._backend:
            self._engine = _backend.make_engine(
                [layer._weights for layer in self._layers],
                [layer._bias for layer in self._layers],
                [ACTIVATIONS[layer.activation] for layer in self._layers],
                LOSSES[self._loss_name], name)
            self._backend = name

    def copy(self) -> "Network":
        """An independent network with the same architecture and a copy of the weights."""
        with self._lock:
            return self._from_spec(self._spec(), self.parameters())

    def __reduce__(self) -> tuple:
        with self._lock:
            return (Network._from_spec, (self._spec(), [p.copy() for p in self.parameters()]))

    def save(self, path: Any, optimizer: Any = None, metadata: Optional[dict] = None) -> None:
        """Write the network to ``path`` (.npz with JSON metadata, no pickle), atomically.

        Parameters
        ----------
        path : str or os.PathLike
            The file name, used as given.
        optimizer : Optimizer or None
            Also store this optimizer (hyper-parameters, schedule, state, step count) so that
            ``Network.load(path, optimizer=...)`` resumes training exactly. It must hold the
            state of this network or be unused; one bound to another network is a ValueError.
        metadata : dict or None
            Your own JSON-serializable data (str keys, finite numbers), stored with the
            network and read back by ``gdcore.io.read_metadata(path)``; never pickled.
        """
        from .io import save
        save(self, path, optimizer, metadata)

    @classmethod
    def load(cls, path: Any, optimizer: Any = None) -> "Network":
        """Read a network written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
        optimizer : Optimizer or None
            Restore the optimizer saved with the network into this one (of the same kind, e.g.
            a fresh ``gd.Adam()``: its hyper-parameters are replaced by the saved ones) and
            bind it to the loaded network, even if it held the state of another network.
            A file saved without an optimizer, or with another kind, is a ValueError, and
            ``optimizer`` is left unchanged on any error.
        """
        from .io import load
        return load(path, optimizer)

    def to_onnx(self, path: Any = None) -> Any:
        """The forward pass as an ONNX model (``onnx.ModelProto``), built with ``onnx.helper``.

        Input ``"X"`` ``(N, n_inputs)`` and output ``"Y"`` ``(N, n_outputs)`` in the network's
        dtype, ``N`` dynamic; onnxruntime gives :meth:`predict`'s values. With ``path``
        (str or os.PathLike) the model is also written there. Needs the extra ``gdcore[onnx]``
        (ImportError otherwise); see :mod:`gdcore.onnx_export`.
        """
        from .onnx_export import network_to_onnx
        return network_to_onnx(self, path)


class Perceptron:
    """One unit: ``a = f(x . w + b)``, a :class:`Network` of one ``Layer(n_inputs, 1)``.

    Parameters
    ----------
    n_inputs : int
        Number of inputs.
    activation : str
        Its non-linearity (``"sigmoid"`` by default; ``"identity"`` gives linear regression).
    loss : str or None
        Defaults to ``"bce"`` for a sigmoid unit, else ``"mse"``.
    dtype, seed
        As for :class:`Network`.
    """

    def __init__(self, n_inputs: int, activation: str = "sigmoid", loss: Optional[str] = None,
                 dtype: Any = "float64", seed: Seed = None) -> None:
        _check_activation(activation)
        if activation == "softmax":
            raise ValueError("a Perceptron has one output; softmax needs at least two")
        if loss is None:
            loss = "bce" if activation == "sigmoid" else "mse"
        self.network = Network([Layer(n_inputs, 1, activation, dtype=dtype, seed=seed)],
                               loss=loss, dtype=dtype, seed=seed)

    @property
    def layer(self) -> Layer:
        return self.network._layers[0]

    @property
    def weights(self) -> np.ndarray:
        """The weights, shape ``(n_inputs,)`` (a view of the layer's column)."""
        return self.layer.weights[:, 0]

    @weights.setter
    def weights(self, value: ArrayLike) -> None:
        arr = v._numeric_array(value, "weights")
        if arr.shape != (self.layer.n_inputs,):
            raise ValueError(f"weights must have shape ({self.layer.n_inputs},), got {arr.shape}")
        self.layer.weights = arr.reshape(-1, 1)

    @property
    def bias(self) -> float:
        return float(self.layer.bias[0])

    @bias.setter
    def bias(self, value: float) -> None:
        self.layer.bias = np.array([v.real(value, "bias")])

    @property
    def activation(self) -> str:
        return self.layer.activation

    def forward(self, X: ArrayLike) -> np.ndarray:
        """The unit's output for each sample, shape ``(n_samples,)``."""
        return self.network.forward(X)[:, 0]

    __call__ = forward

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Same as :meth:`forward`."""
        return self.forward(X)

    def loss(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike = None,
             **kwargs: Any) -> float:
        """The mean loss; takes the keywords of :meth:`Network.loss` (``l2``, ...)."""
        return self.network.loss(X, y, sample_weight, **kwargs)

    def fit(self, X: ArrayLike, y: ArrayLike, **kwargs: Any) -> "History":
        """Train the unit; takes the arguments of :meth:`Network.fit`."""
        return self.network.fit(X, y, **kwargs)

    def to_onnx(self, path: Any = None) -> Any:
        """The unit as an ONNX model: input ``"X"`` ``(N, n_inputs)``, output ``"Y"`` ``(N,)``
        (:meth:`predict`'s values); ``path`` as for :meth:`Network.to_onnx`."""
        from .onnx_export import network_to_onnx
        return network_to_onnx(self.network, path, flat=True)

    def __repr__(self) -> str:
        return (f"Perceptron({self.layer.n_inputs}, activation={self.activation!r}, "
                f"loss={self.network.loss_name!r})")


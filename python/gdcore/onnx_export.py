"""ONNX export: a network's forward pass as an ``onnx.ModelProto``.

Each layer is ``MatMul`` + ``Add`` followed by its activation, spelled out in ONNX operators
exactly as gdcore computes it (``reference/activations.py``), in the dtype of the network
(float32 or float64). The graph has one input ``"X"`` of shape ``(N, n_inputs)`` with a dynamic
batch dimension ``N`` and, for a network, one output ``"Y"`` of shape ``(N, n_outputs)``.

Activations with an ONNX operator that computes gdcore's formula in both dtypes use it
(``Tanh``, ``Relu``, ``Softmax`` on the last axis); the others are composed from elementwise
operators, which keeps gdcore's exact definitions where the ONNX operator differs
(onnxruntime's ``Elu`` and ``Softplus`` have no float64 kernels, nor ``LeakyRelu`` in older
versions; its ``Sigmoid`` returns 0 far in the negative tail, ``Softplus`` has no threshold
and ``Elu`` computes ``exp(z) - 1``, which is 0 for ``z = -1e-8`` in float32):

- ``sigmoid``: ``e = exp(-|z|)``, ``s = 1 / (1 + e)``, ``Where(z >= 0, s, e s)``;
- ``leaky_relu``: ``Where(z > 0, z, 0.01 z)``;
- ``elu``: ``Where(z > 0, z, expm1(min(z, 0)))`` with ``expm1(x) = tanh(x/2) (exp(x) + 1)``,
  an identity accurate to a few ulp for every ``x <= 0`` (ONNX has no ``Expm1``);
- ``softplus``: ``Where(z > 20, z, log1p(exp(min(z, 20))))`` with
  ``log1p(u) = u if 1 + u == 1 else log(1 + u) u / ((1 + u) - 1)`` (Goldberg's rounding
  correction; ONNX has no ``Log1p``);
- ``gelu``: ``0.5 z (1 + tanh(c (z + 0.044715 z^3)))``, ``c = sqrt(2/pi)``, in that order.

:func:`estimator_to_onnx` builds the graph of a scikit-learn-style estimator (``network_``,
``classes_``, ``out_activation_``): a classifier's outputs ``"label"`` and ``"probabilities"``, a
regressor's ``"prediction"``.

``onnx`` is imported here only; ``import gdcore`` never imports it (the extra ``gdcore[onnx]``).
The module is not called ``onnx`` so that it cannot shadow the ``onnx`` package.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .reference.activations import GELU_C, GELU_K, LEAKY_SLOPE, SOFTPLUS_THRESHOLD

if TYPE_CHECKING:  # pragma: no cover
    import onnx

#: The operator set the graphs use (onnx >= 1.14 and onnxruntime >= 1.16 support it).
OPSET = 17
INPUT = "X"
OUTPUT = "Y"
#: scikit-learn's ``out_activation_`` names -> gdcore's activation names
_SKLEARN_OUT = {"logistic": "sigmoid", "softmax": "softmax", "identity": "identity"}


def _import_onnx() -> Any:
    try:
        import onnx
        import onnx.helper  # noqa: F401
        import onnx.numpy_helper  # noqa: F401
    except ImportError as exc:
        raise ImportError("ONNX export needs the onnx package: pip install gdcore[onnx]"
                          ) from exc
    return onnx


def _check_path(path: Any) -> Optional[str]:
    """``path`` as a str (None stays None); anything but str/os.PathLike is a TypeError."""
    if path is None:
        return None
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str, an os.PathLike or None, got {type(path).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str):  # an os.PathLike that gives bytes
        raise TypeError(f"path must name a file as str, got {type(path).__name__}")
    return path


class _Graph:
    """Nodes and initializers of one graph under construction, with fresh names."""

    def __init__(self, onnx: Any, dtype: np.dtype) -> None:
        self.onnx = onnx
        self.dtype = np.dtype(dtype)
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: Any, hint: str = "c", dtype: Any = None) -> str:
        """An initializer holding ``value`` (in the graph's dtype unless ``dtype`` is given)."""
        name = self.name(hint)
        arr = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, *inputs: str, hint: Optional[str] = None, **attrs: Any) -> str:
        """Append one node; returns the name of its (single) output."""
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    # --- the activations, as gdcore computes them ------------------------------------------
    def activation(self, name: str, z: str) -> str:
        if name == "identity":
            return z
        if name == "sigmoid":
            return self._sigmoid(z)
        if name == "tanh":
            return self.op("Tanh", z)
        if name == "relu":
            return self.op("Relu", z)
        if name == "softmax":
            return self.op("Softmax", z, axis=-1)
        if name == "leaky_relu":
            positive = self.op("Greater", z, self.const(0.0))
            return self.op("Where", positive, z, self.op("Mul", z, self.const(LEAKY_SLOPE)))
        if name == "elu":
            positive = self.op("Greater", z, self.const(0.0))
            negative_part = self._expm1(self.op("Min", z, self.const(0.0)))
            return self.op("Where", positive, z, negative_part)
        if name == "softplus":
            threshold = self.const(SOFTPLUS_THRESHOLD)
            above = self.op("Greater", z, threshold)
            u = self.op("Exp", self.op("Min", z, threshold))
            return self.op("Where", above, z, self._log1p(u))
        if name == "gelu":
            z3 = self.op("Mul", self.op("Mul", z, z), z)
            inner = self.op("Add", z, self.op("Mul", self.const(GELU_K), z3))
            t = self.op("Tanh", self.op("Mul", self.const(GELU_C), inner))
            half_z = self.op("Mul", self.const(0.5), z)
            return self.op("Mul", half_z, self.op("Add", self.const(1.0), t))
        raise ValueError(f"unknown activation {name!r}")

    def _sigmoid(self, z: str) -> str:
        """``s = 1 / (1 + exp(-|z|))``, then ``s`` for ``z >= 0`` else ``exp(-|z|) s``: as
        gdcore, accurate far into the tails (onnxruntime's Sigmoid clamps them to 0)."""
        e = self.op("Exp", self.op("Neg", self.op("Abs", z)))
        s = self.op("Reciprocal", self.op("Add", self.const(1.0), e))
        nonnegative = self.op("GreaterOrEqual", z, self.const(0.0))
        return self.op("Where", nonnegative, s, self.op("Mul", e, s))

    def _expm1(self, x: str) -> str:
        """``exp(x) - 1`` for ``x <= 0`` as ``tanh(x/2) (exp(x) + 1)``: no cancellation near 0."""
        t = self.op("Tanh", self.op("Mul", x, self.const(0.5)))
        return self.op("Mul", t, self.op("Add", self.op("Exp", x), self.const(1.0)))

    def _log1p(self, u: str) -> str:
        """``log(1 + u)`` for ``u >= 0`` with the rounding of ``1 + u`` corrected."""
        one = self.const(1.0)
        w = self.op("Add", one, u)
        w_minus_1 = self.op("Sub", w, one)
        exact = self.op("Equal", w, one)  # 1 + u rounded to 1: log1p(u) = u to working precision
        safe = self.op("Where", exact, one, w_minus_1)  # no 0/0 in the branch not taken
        corrected = self.op("Div", self.op("Mul", self.op("Log", w), u), safe)
        return self.op("Where", exact, u, corrected)

    # --- layers --------------------------------------------------------------------------
    def network(self, network: Any, x: str) -> str:
        """The forward pass of ``network`` on ``x``; returns the output's name."""
        a = x
        for i, layer in enumerate(network.layers):
            W = self.const(layer.weights, f"W{i}")
            b = self.const(layer.bias, f"b{i}")
            z = self.op("Add", self.op("MatMul", a, W, hint=f"XW{i}"), b, hint=f"Z{i}")
            a = self.activation(layer.activation, z)
        return a

    def model(self, inputs: list, outputs: list, graph_name: str, doc: str) -> "onnx.ModelProto":
        helper = self.onnx.helper
        graph = helper.make_graph(self.nodes, graph_name, inputs, outputs, self.initializers)
        opset = [helper.make_opsetid("", OPSET)]
        # The oldest IR version that carries this opset, so that older runtimes load the model.
        ir_version = helper.find_min_ir_version_for(opset)
        model = helper.make_model(graph, opset_imports=opset, ir_version=ir_version,
                                  producer_name="gdcore", producer_version=_version(),
                                  doc_string=doc)
        self.onnx.checker.check_model(model)
        return model

    def tensor(self, name: str, elem_dtype: Any, shape: list) -> Any:
        elem = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(elem_dtype))
        return self.onnx.helper.make_tensor_value_info(name, elem, shape)


def _version() -> str:
    from . import __version__
    return __version__


def _save(onnx: Any, model: Any, path: Optional[str]) -> None:
    if path is not None:
        onnx.save(model, path)


def network_to_onnx(network: Any, path: Any = None, flat: bool = False) -> "onnx.ModelProto":
    """The forward pass of a :class:`gdcore.Network` as an ONNX model.

    Parameters
    ----------
    network : gdcore.Network
    path : str, os.PathLike or None
        Also write the model to this file (``onnx.save``).
    flat : bool
        Output ``(N,)`` instead of ``(N, 1)`` (a network with one output: a Perceptron's).

    Returns
    -------
    onnx.ModelProto
        Input ``"X"`` ``(N, n_inputs)``, output ``"Y"`` ``(N, n_outputs)`` (the values of
        ``network.predict``), both of the network's dtype; ``N`` is dynamic.
    """
    path = _check_path(path)
    onnx = _import_onnx()
    with network._lock:  # the weights as one consistent snapshot
        g = _Graph(onnx, network.dtype)
        y = g.network(network, INPUT)
    if flat:
        if network.n_outputs != 1:
            raise ValueError(f"flat output needs one output, the network has {network.n_outputs}")
        g.nodes.append(onnx.helper.make_node(
            "Squeeze", [y, g.const([1], "axis", np.int64)], [OUTPUT]))
        shape = ["N"]
    else:
        g.nodes.append(onnx.helper.make_node("Identity", [y], [OUTPUT]))
        shape = ["N", network.n_outputs]
    model = g.model([g.tensor(INPUT, g.dtype, ["N", network.n_inputs])],
                    [g.tensor(OUTPUT, g.dtype, shape)],
                    "gdcore_network", f"gdcore network {network.sizes}")
    _save(onnx, model, path)
    return model


def _label_classes(classes: Any) -> Optional[np.ndarray]:
    """``classes_`` as an array ONNX can hold (numbers, bools or strings), else None."""
    arr = np.asarray(classes)
    if arr.ndim != 1:
        return None
    if arr.dtype.kind in "biuf":
        return arr
    if arr.dtype.kind == "U" or (arr.dtype.kind == "O" and all(isinstance(c, str) for c in arr)):
        return arr.astype(object)
    return None


def estimator_to_onnx(estimator: Any, path: Any = None) -> "onnx.ModelProto":
    """The prediction graph of a fitted ``gdcore.sklearn`` estimator as an ONNX model.

    Reads ``estimator.network_`` (a fitted :class:`gdcore.Network`), ``out_activation_``
    (``"logistic"``, ``"softmax"`` or ``"identity"``) and, for a classifier, ``classes_``.

    A classifier (it has ``classes_``) gives two outputs:

    - ``"label"`` ``(N,)``: ``classes_[argmax(probabilities)]`` (ArgMax then Gather of the
      classes; the first of equal maxima, as ``np.argmax``), present when ``classes_`` is a 1-D
      array of numbers, bools or strings (strings come out as an ONNX string tensor);
    - ``"probabilities"`` ``(N, n_classes)``: the softmax output, or ``[1 - p, p]`` for a binary
      classifier with one sigmoid output ``p``.

    A regressor gives ``"prediction"``: ``(N,)`` for one output, else ``(N, n_outputs)``.
    The input is ``"X"`` ``(N, n_features)`` of the network's dtype.

    Raises
    ------
    ValueError
        The attributes do not describe a supported estimator (no ``network_``, an unknown
        ``out_activation_``, a last layer that does not match it, or a classifier whose number
        of outputs does not fit ``classes_``).
    """
    path = _check_path(path)
    network = getattr(estimator, "network_", None)
    if network is None or not hasattr(network, "layers"):
        raise ValueError("the estimator is not fitted (it has no network_)")
    out = getattr(estimator, "out_activation_", None)
    if out not in _SKLEARN_OUT:
        raise ValueError(f"out_activation_ must be one of {sorted(_SKLEARN_OUT)}, got {out!r}")
    last = network.layers[-1].activation
    if last != _SKLEARN_OUT[out]:
        raise ValueError(f"out_activation_={out!r} but the network's last layer is {last!r}")
    onnx = _import_onnx()
    is_classifier = hasattr(estimator, "classes_")
    n_outputs = network.n_outputs
    with network._lock:
        g = _Graph(onnx, network.dtype)
        a = g.network(network, INPUT)
    inputs = [g.tensor(INPUT, g.dtype, ["N", network.n_inputs])]
    name = type(estimator).__name__

    if not is_classifier:
        if n_outputs == 1:
            g.nodes.append(onnx.helper.make_node(
                "Squeeze", [a, g.const([1], "axis", np.int64)], ["prediction"]))
            outputs = [g.tensor("prediction", g.dtype, ["N"])]
        else:
            g.nodes.append(onnx.helper.make_node("Identity", [a], ["prediction"]))
            outputs = [g.tensor("prediction", g.dtype, ["N", n_outputs])]
        model = g.model(inputs, outputs, "gdcore_regressor", f"gdcore {name}")
        _save(onnx, model, path)
        return model

    n_classes = len(np.asarray(estimator.classes_).reshape(-1))
    if out == "logistic" and n_outputs == 1 and n_classes == 2:  # binary: [1 - p, p]
        q = g.op("Sub", g.const(1.0), a)
        probabilities = g.op("Concat", q, a, axis=1)
    elif out == "softmax" and n_outputs == n_classes:
        probabilities = a
    else:
        raise ValueError(
            f"a classifier needs one logistic output for two classes or a softmax output per "
            f"class; got out_activation_={out!r}, {n_outputs} outputs, {n_classes} classes")
    g.nodes.append(onnx.helper.make_node("Identity", [probabilities], ["probabilities"]))
    outputs = [g.tensor("probabilities", g.dtype, ["N", n_classes])]

    classes = _label_classes(estimator.classes_)
    if classes is not None:
        index = g.op("ArgMax", "probabilities", axis=1, keepdims=0)
        table = g.name("classes")
        g.initializers.append(onnx.numpy_helper.from_array(classes, table))
        g.nodes.append(onnx.helper.make_node("Gather", [table, index], ["label"], axis=0))
        label_dtype = np.dtype(object) if classes.dtype == object else classes.dtype
        elem = (onnx.TensorProto.STRING if label_dtype == object
                else onnx.helper.np_dtype_to_tensor_dtype(label_dtype))
        outputs.insert(0, onnx.helper.make_tensor_value_info("label", elem, ["N"]))
    model = g.model(inputs, outputs, "gdcore_classifier", f"gdcore {name}")
    _save(onnx, model, path)
    return model

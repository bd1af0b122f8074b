"""A dense network over caller-owned parameters: construction checks, forward and backward passes.

Twin of ``csrc/gd/network.{hpp,cpp}`` (``gd::DenseLayer<T>``, ``gd::Network<T>``): the same
checks with the same meaning, the same layer loops, the same method names and argument order.
The C++ row counts are the arrays' shapes here, and its output buffers are return values.
What the C++ class adds for speed has no twin: the workspace it grows once and reuses
(``reserve``, ``reserve_batch``, ``capacity``, ``workspace_bytes``, ``predict_scratch``,
``output_gradient`` and the ``batch_*`` gather buffers); NumPy allocates each pass's arrays.

As in C++, an identity layer's A is its Z and a relu is applied by the product itself
(``dense_forward(..., relu=True)``), whose backward pass then reads the mask from A
(``dense_backward(..., relu_prev=True)``).

Shapes: ``weights`` (n_inputs, n_outputs), ``bias`` (n_outputs,), ``x`` (n_samples, n_inputs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from .activations import activation_backward, activation_forward
from .codes import (ACTIVATION_NAMES, ACTIVATIONS, LOSS_NAMES, LOSS_OUTPUT_ACTIVATION,
                    LOSSES)
from .dense import dense_backward, dense_forward
from .dropout import DropoutStep, dropout_apply, dropout_mask

IDENTITY, RELU, SOFTMAX = ACTIVATIONS["identity"], ACTIVATIONS["relu"], ACTIVATIONS["softmax"]
CROSS_ENTROPY = LOSSES["cross_entropy"]


@dataclass
class DenseLayer:
    """One layer: views (never copies) of the caller's ``weights`` and ``bias``, and the
    code of its activation (``codes.ACTIVATIONS``)."""
    weights: np.ndarray
    bias: np.ndarray
    activation: int = IDENTITY

    @property
    def n_inputs(self) -> int:
        return self.weights.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.weights.shape[1]


def fused(act: int) -> bool:
    """Activations the dense product applies itself as it stores Z (A is then Z)."""
    return act == IDENTITY or act == RELU


class Network:
    """The layers (views of the caller's arrays), the loss, and the last forward pass.

    Parameters
    ----------
    layers : list of DenseLayer
    loss : int
        Code of ``codes.LOSSES``.

    Raises
    ------
    ValueError
        When the layers do not chain, a layer's arrays are not a 2-D ``weights`` and a
        ``bias`` of its output size, a size is zero, an activation or loss code is unknown,
        softmax is not on the last layer, or the loss does not fit the output
        (``codes.LOSS_OUTPUT_ACTIVATION``: bce needs sigmoid, cross_entropy softmax).
    """

    def __init__(self, layers: Sequence[DenseLayer], loss: int) -> None:
        self._layers = list(layers)
        self._loss = loss
        if not self._layers:
            raise ValueError("a network needs at least one layer")
        n = len(self._layers)
        for i, l in enumerate(self._layers):
            name = f"layer {i}"
            if (np.ndim(l.weights) != 2 or np.ndim(l.bias) != 1
                    or l.bias.shape[0] != l.weights.shape[1]):
                raise ValueError(f"{name}: weights must be (n_inputs, n_outputs) and bias "
                                 f"(n_outputs,), got shapes {np.shape(l.weights)} and "
                                 f"{np.shape(l.bias)}")
            if l.n_inputs < 1 or l.n_outputs < 1:
                raise ValueError(f"{name}: sizes must be at least 1")
            if l.activation not in ACTIVATION_NAMES:
                raise ValueError(f"{name}: unknown activation code {l.activation!r}")
            if i > 0 and l.n_inputs != self._layers[i - 1].n_outputs:
                raise ValueError(f"{name}: {l.n_inputs} inputs, but the previous layer has "
                                 f"{self._layers[i - 1].n_outputs} outputs")
            if l.activation == SOFTMAX and i + 1 != n:
                raise ValueError(f"{name}: softmax is only allowed on the output layer")
        if loss not in LOSS_NAMES:
            raise ValueError(f"unknown loss code {loss!r}")
        out = ACTIVATION_NAMES[self._layers[-1].activation]
        needed = LOSS_OUTPUT_ACTIVATION.get(LOSS_NAMES[loss])
        if needed is not None and out != needed:
            raise ValueError(f"loss {LOSS_NAMES[loss]!r} needs a {needed!r} output layer, "
                             f"got {out!r}")

        self._z: List[Optional[np.ndarray]] = [None] * n  # this pass's Z and A per layer
        self._a: List[Optional[np.ndarray]] = [None] * n  # (A is Z for identity and relu)
        # this pass's dropout mask and A * mask per layer (None: no dropout there)
        self._mask: List[Optional[np.ndarray]] = [None] * n
        self._dropped: List[Optional[np.ndarray]] = [None] * n
        # train_epoch's gradients, parameter shapes
        self._dw = [np.zeros_like(l.weights) for l in self._layers]
        self._db = [np.zeros_like(l.bias) for l in self._layers]

    @classmethod
    def from_arrays(cls, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
                    activations: Sequence[int], loss: int) -> "Network":
        """The network of layers ``DenseLayer(weights[i], biases[i], activations[i])``."""
        return cls([DenseLayer(W, b, int(a)) for W, b, a in zip(weights, biases, activations)],
                   int(loss))

    def n_inputs(self) -> int:
        return self._layers[0].n_inputs

    def n_outputs(self) -> int:
        return self._layers[-1].n_outputs

    def n_layers(self) -> int:
        return len(self._layers)

    def layer(self, i: int) -> DenseLayer:
        return self._layers[i]

    def loss(self) -> int:
        return self._loss

    def forward(self, x: np.ndarray, output_activation: bool = True,
                dropout: Optional[DropoutStep] = None) -> None:
        """Forward pass of ``x`` (n_samples, n_inputs); keeps every layer's Z and A.

        With ``output_activation`` False and a softmax output under cross_entropy, the softmax
        is not applied (the loss works from the logits): :meth:`output_activations` is then
        None. With ``dropout`` (a :class:`DropoutStep` with rates), every hidden layer ``i``
        with ``rates[i] > 0`` passes ``A_i * mask_i`` on (:func:`dropout_mask` of ``(seed,
        step, i)``); ``A_i`` itself is kept for the backward pass.
        """
        last = len(self._layers) - 1
        a_prev = x
        for i, l in enumerate(self._layers):
            z = dense_forward(a_prev, l.weights, l.bias, l.activation == RELU)
            if (i == last and not output_activation and self._loss == CROSS_ENTROPY
                    and l.activation == SOFTMAX):
                a = None  # the fused cross_entropy gradient computes the softmax itself
            elif fused(l.activation):
                a = z  # identity, or relu applied by the product
            else:
                a = activation_forward(l.activation, z)
            self._z[i] = z
            self._a[i] = a
            a_prev = a
            self._mask[i] = self._dropped[i] = None
            rate = (float(dropout.rates[i]) if dropout is not None and dropout.rates is not None
                    and i < last else 0.0)
            if rate > 0.0:  # the next layer sees A * mask; A stays for f'(Z)
                mask = dropout_mask(dropout.seed, dropout.step, i, rate, a.shape, a.dtype)
                self._mask[i] = mask
                self._dropped[i] = a_prev = dropout_apply(a, mask)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Output activations (n_samples, n_outputs) of ``x``, touching no member: any number
        of calls may run at once (while no call changes the parameters)."""
        a_prev = x
        for l in self._layers:
            z = dense_forward(a_prev, l.weights, l.bias, l.activation == RELU)
            a_prev = z if fused(l.activation) else activation_forward(l.activation, z)
        return a_prev

    def output_logits(self) -> np.ndarray:
        """The last forward pass's output Z (n_samples, n_outputs)."""
        return self._z[-1]

    def output_activations(self) -> Optional[np.ndarray]:
        """The last forward pass's output A (n_samples, n_outputs), or None (see
        :meth:`forward`)."""
        return self._a[-1]

    def backward(self, x: np.ndarray, dZ: np.ndarray, dW: Sequence[np.ndarray],
                 db: Sequence[np.ndarray]) -> None:
        """Backward pass of the last ``forward(x)``, from ``dZ`` = dL/dZ of the output layer
        (the C++ reads it from ``output_gradient()``): fills ``dW[i]`` (shape of W_i) and
        ``db[i]`` in place. A layer that forward dropped out scales its dL/dA by the same mask
        (and its successor's dW reads the dropped activations)."""
        for i in reversed(range(len(self._layers))):
            l = self._layers[i]
            mask_prev = self._mask[i - 1] if i > 0 else None  # dropout on layer i - 1
            if i == 0:
                a_prev = x
            else:
                a_prev = self._dropped[i - 1] if mask_prev is not None else self._a[i - 1]
            relu_prev = (i > 0 and self._layers[i - 1].activation == RELU
                         and mask_prev is None)
            da_prev = dense_backward(a_prev, dZ, l.weights, dW[i], db[i], i > 0, relu_prev)
            if i > 0:
                prev = self._layers[i - 1]
                # Through the dropout: dL/dA = dL/d(A * mask) * mask.
                if mask_prev is not None:
                    da_prev = dropout_apply(da_prev, mask_prev)
                # dZ_prev = dA_prev * f'(Z_prev) (for relu, done by the product)
                if not relu_prev:
                    da_prev = activation_backward(prev.activation, self._z[i - 1],
                                                  self._a[i - 1], da_prev)
                dZ = da_prev

    def weight_gradients(self) -> List[np.ndarray]:
        """Gradient buffers owned by the network, shapes of the weights (train_epoch's)."""
        return self._dw

    def bias_gradients(self) -> List[np.ndarray]:
        """Gradient buffers owned by the network, shapes of the biases (train_epoch's)."""
        return self._db

"""The full-batch objective of a network and its gradient: the one function full-batch solvers
(L-BFGS) minimise through. Twin of ``csrc/gd/objective.{hpp,cpp}``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .losses import loss_gradient
from .network import Network


def objective_gradient(net: Network, x: np.ndarray, y: np.ndarray,
                       sample_weight: Optional[np.ndarray], dw: Sequence[np.ndarray],
                       db: Sequence[np.ndarray]) -> float:
    """The loss of ``net`` on all rows of ``x`` (targets ``y``, sample weights or None), as
    ``loss_value`` computes it; its gradient goes into ``dw[i]`` (shape of W_i) and ``db[i]``
    in place."""
    net.forward(x, output_activation=False)
    out = net.layer(net.n_layers() - 1).activation
    value, dz = loss_gradient(net.loss(), out, net.output_logits(), net.output_activations(),
                              y, sample_weight)
    net.backward(x, dz, dw, db)
    return float(value)

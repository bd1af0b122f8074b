"""The NumPy reference engine: the oracle the C++ core (``csrc/gd/``) is tested against.

Each module is the literal twin of a C++ file, with the same function names, argument order
and granularity, so that the two read side by side (``tests/test_reference_twins.py`` checks
the names and argument order against the headers):

- ``codes`` ↔ ``csrc/gd/codes.hpp``: the integer codes both engines share, the ``hyper``
  layout, the optimizer state slots and the output activation each loss requires.
- ``activations`` ↔ ``csrc/gd/activations.cpp``: ``activation_forward``,
  ``activation_backward``, ``row_shifted_exp``.
- ``dense`` ↔ ``csrc/gd/dense.cpp``: ``dense_forward``, ``dense_backward`` (one layer's affine
  part).
- ``losses`` ↔ ``csrc/gd/losses.cpp``: ``loss_value``, ``loss_gradient`` and the fused
  softmax-cross-entropy pass ``cross_entropy_fused``.
- ``optimizers`` ↔ ``csrc/gd/optimizers.cpp``: ``OptimizerConfig``, ``optimizer_update`` (one
  parameter).
- ``random`` ↔ ``csrc/gd/random.hpp``: the counter-based generator (splitmix64) of the dropout
  masks, in NumPy uint64 arithmetic.
- ``dropout`` ↔ ``csrc/gd/dropout.cpp``: ``dropout_mask``, ``dropout_apply``.
- ``objective`` ↔ ``csrc/gd/objective.cpp``: ``Regularisers``, ``objective_value``,
  ``objective_gradient`` (data loss with label smoothing, the l2 penalty, dropout).
- ``network`` ↔ ``csrc/gd/network.cpp``: ``DenseLayer``, ``Network`` (construction checks,
  ``forward``, ``predict``, ``backward``).
- ``train`` ↔ ``csrc/gd/train.cpp``: ``train_epoch``.
- ``objective`` ↔ ``csrc/gd/objective.cpp``: ``objective_gradient`` (the full-batch objective
  and its gradient, what full-batch solvers minimise).
- ``line_search`` ↔ ``csrc/gd/line_search.cpp``: ``LineSearch`` (MINPACK-2's dcsrch, the
  strong Wolfe line search of L-BFGS-B), ``dcstep``.
- ``lbfgs`` ↔ ``csrc/gd/lbfgs.cpp``: ``LbfgsConfig``, ``lbfgs_step`` (one L-BFGS step).
- ``descent`` ↔ ``csrc/gd/descent.cpp``: ``DescentConfig``, ``descend`` (the heavy-ball descent
  of ``gd.minimize``; the loop a Python ``fun`` runs in).
- ``engine`` ↔ ``csrc/bindings/bind_engine.cpp``: the object a network builds.

``csrc/gd/blas.cpp`` and ``csrc/gd/kernels*.cpp`` have no twin: NumPy's matmul and ufuncs are
the reference for them. ``csrc/gd/threads.cpp`` (the helper threads that split large products)
has none either: it decides only which thread computes a piece, never what is computed. Nor
does ``csrc/gd/train_lanes.cpp`` (fit_many's lane groups): it runs ``train``'s epochs of several
networks in one pass, each equal to its own ``train_epoch`` bit for bit, so ``train`` is its twin.
"""
from . import (codes, activations, losses, dense, optimizers, random, dropout, network, objective,
               train, line_search, lbfgs, engine, descent)

__all__ = ["codes", "activations", "losses", "dense", "optimizers", "random", "dropout",
           "network", "objective", "train", "line_search", "lbfgs", "engine", "descent"]

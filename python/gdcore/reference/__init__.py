"""The NumPy reference engine: the oracle the C++ core (``csrc/gd/``) is tested against.

One module per concern, each the twin of a ``csrc/gd`` file: ``activations``, ``losses``,
``dense`` (one layer), ``optimizers``, ``train`` (the epoch loop) and ``engine`` (the object
a network builds). ``codes`` holds the integer codes both engines share.
"""
from . import codes, activations, losses, dense, optimizers, train, engine

__all__ = ["codes", "activations", "losses", "dense", "optimizers", "train", "engine"]

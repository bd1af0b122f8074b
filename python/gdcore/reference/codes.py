"""The integer codes shared by both engines (``docs/design.md``), as name -> code dicts.

The ``*_NAMES`` dicts go the other way, code -> name.
"""

ACTIVATIONS = {
    "identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "leaky_relu": 4,
    "elu": 5, "softplus": 6, "gelu": 7, "softmax": 8,
}
LOSSES = {"mse": 0, "mae": 1, "huber": 2, "bce": 3, "cross_entropy": 4}
OPTIMIZERS = {"sgd": 0, "adam": 1, "adamw": 2, "rmsprop": 3}

ACTIVATION_NAMES = {code: name for name, code in ACTIVATIONS.items()}
LOSS_NAMES = {code: name for name, code in LOSSES.items()}
OPTIMIZER_NAMES = {code: name for name, code in OPTIMIZERS.items()}

# The meaning of each entry of the float64 ``hyper`` array handed to ``train_epoch``.
HYPER = ("lr", "momentum", "nesterov", "weight_decay", "beta1", "beta2", "eps", "alpha")
SLOTS = {"sgd": (0, 1), "adam": (2, 0), "adamw": (2, 0), "rmsprop": (1, 1)}  # state arrays per parameter: (always, extra when momentum > 0)
LOSS_OUTPUT_ACTIVATION = {"bce": "sigmoid", "cross_entropy": "softmax"}  # the output activation a loss requires

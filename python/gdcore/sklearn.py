"""scikit-learn estimators: drop-in replacements for ``sklearn.neural_network``'s MLPs.

:class:`MLPClassifier` and :class:`MLPRegressor` take scikit-learn's parameter names, defaults
and meanings and set its fitted attributes, but train a :class:`gdcore.Network` in gdcore's
engine (the compiled core, or the NumPy reference): one ``Network.fit(..., epochs=max_iter)``
call runs all the epochs, every mini-batch step in C++, and a fit callback (``_Epochs``) does
scikit-learn's work after each epoch, so an undone (diverged) epoch can reach back past the
last one. Around the epochs this module follows scikit-learn's ``BaseMultilayerPerceptron._fit_stochastic`` line by line:
the validation split and score of ``early_stopping``, the ``tol`` / ``n_iter_no_change`` rule,
the ``"constant"``, ``"invscaling"`` and ``"adaptive"`` rates of ``solver="sgd"``, ``t_``
counting samples, ``ConvergenceWarning`` when ``max_iter`` ends training.

scikit-learn is an optional dependency (``pip install gdcore[sklearn]``); only this module
imports it.
"""
from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import Any, Optional

import numpy as np

try:
    import scipy.sparse as _sparse
    from sklearn.base import (BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context,
                              is_classifier)
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils._param_validation import Interval, Options, StrOptions
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (_check_partial_fit_first_call, type_of_target,
                                          unique_labels)
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("gdcore.sklearn needs scikit-learn >= 1.6: pip install 'gdcore[sklearn]'"
                      ) from exc

from .network import Layer, Network
from .optimizers import SGD, Adam
from .schedules import Schedule
from .training import ON_DIVERGENCE, DivergenceError, History

__all__ = ["MLPClassifier", "MLPRegressor"]

_STOCHASTIC_SOLVERS = ("sgd", "adam")
#: scikit-learn's activation names -> gdcore's.
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
#: gdcore's output activations -> scikit-learn's ``out_activation_``.
_OUT_ACTIVATIONS = {"identity": "identity", "sigmoid": "logistic", "softmax": "softmax"}
#: solver="sgd" with learning_rate="adaptive" stops once its rate is at most this (sklearn's).
_ADAPTIVE_MIN_LR = 1e-6
#: learning_rate_init="auto": the range test's mini-batch is at most this many samples.
_AUTO_LR_MAX_BATCH = 256
#: SciPy's default ftol of L-BFGS-B (factr 1e7 times float64's epsilon), which scikit-learn
#: keeps.
_SCIPY_FTOL = 1e7 * np.finfo(np.float64).eps


def _seed_from(rng: np.random.RandomState) -> int:
    """An int seed for one gdcore call, drawn from the estimator's random state."""
    return int(rng.randint(np.iinfo(np.int32).max))


class _EpochRates(Schedule):
    """The rates scikit-learn's schedules chose, by the optimizer's epoch count: each holds
    from the epoch it was set for on. Keyed by that count, which fit's rollback restores, an
    undone epoch runs again at its own rate."""

    def __init__(self, lr: float, epoch: int) -> None:
        super().__init__(lr)
        self._rates = {int(epoch): float(lr)}
        self._last = (int(epoch), float(lr))

    def set(self, epoch: int, lr: float) -> None:
        """Train from optimizer epoch ``epoch`` on at ``lr`` (forgets later entries)."""
        for later in [e for e in self._rates if e > epoch]:
            del self._rates[later]
        self._rates[epoch] = float(lr)

    def _lr(self, epoch: int) -> float:
        rate = self._rates.get(epoch)
        if rate is None:
            rate = self._rates[max((e for e in self._rates if e <= epoch),
                                   default=min(self._rates))]
        return rate

    def _params(self) -> dict:
        return {"rates": dict(self._rates)}


class _Epochs:
    """The fit callback that does scikit-learn's work after each epoch of ``_fit_stochastic``:
    ``loss_curve_``, ``t_``, ``n_iter_``, verbose output, the validation score of
    early_stopping, the ``tol`` / ``n_iter_no_change`` rule (a true return ends fit) and the
    sgd rate schedules, set for the optimizer's next epoch.

    fit can undo an epoch it already reported (a divergence, a rollback): then it reports
    again from that epoch, and the attributes go back to their values before it (``state``).
    """

    def __init__(self, est: "_BaseMLP", n_samples: int, validation: Optional[tuple]) -> None:
        self.est, self.n_samples, self.validation = est, n_samples, validation
        self.t0, self.n_curve = est.t_, len(est.loss_curve_)
        self.n_scores = len(est.validation_scores_) if validation is not None else 0
        self.states: list = []  # the scalars before each epoch's report
        self.sgd = est.solver == "sgd"
        self.invscaling = self.sgd and est.learning_rate == "invscaling"

    def _state(self) -> tuple:
        est = self.est
        return (est._no_improvement_count, est.best_loss_, est.best_validation_score_,
                est._rate)

    def __call__(self, epoch: int, logs: dict) -> bool:
        est = self.est
        if epoch < len(self.states):  # an epoch reported before was undone: forget it
            (est._no_improvement_count, est.best_loss_, est.best_validation_score_,
             est._rate) = self.states[epoch]
            del self.states[epoch:]
            del est.loss_curve_[self.n_curve + epoch:]
            if self.validation is not None:
                del est.validation_scores_[self.n_scores + epoch:]
                del est.history_.metrics["validation_score"][self.n_scores + epoch:]
        self.states.append(self._state())
        est.n_iter_ = epoch + 1
        est.loss_ = logs["loss"] * est._loss_scale
        est.t_ = self.t0 + (epoch + 1) * self.n_samples
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print("Iteration %d, loss = %.8f" % (est.n_iter_, est.loss_))
        est._update_no_improvement_count(self.validation)
        if self.invscaling:
            est._rate = est._rate_init() / (est.t_ + 1) ** est.power_t
        stop = False
        if est._no_improvement_count > est.n_iter_no_change:
            if self.validation is not None:
                msg = ("Validation score did not improve more than tol=%f for %d "
                       "consecutive epochs." % (est.tol, est.n_iter_no_change))
            else:
                msg = ("Training loss did not improve more than tol=%f for %d consecutive "
                       "epochs." % (est.tol, est.n_iter_no_change))
            stop = est._trigger_stopping(msg)
            if not stop:
                est._no_improvement_count = 0
        if not stop and self.sgd:
            est._set_rate(est._rate)  # for the optimizer's next epoch
        return stop


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: scikit-learn's ``BaseMultilayerPerceptron``
    on a gdcore network. Not for direct use."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        # gdcore's own
        "dtype": [StrOptions({"float32", "float64"}), None],
        "on_divergence": [StrOptions(set(ON_DIVERGENCE))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    # --- what the subclasses define -----------------------------------------------------
    _loss: str = ""  # the network's loss (the classifier's depends on its targets)

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        raise NotImplementedError

    def _output_activation(self) -> str:
        raise NotImplementedError

    def _targets(self, y: np.ndarray) -> np.ndarray:
        """The network's float targets (n_samples, n_outputs) for the validated ``y``."""
        raise NotImplementedError

    def _sample_weight(self, y: np.ndarray, sample_weight: Optional[np.ndarray],
                       incremental: bool) -> Optional[np.ndarray]:
        return sample_weight

    def _fit_kwargs(self) -> dict:
        """The regularisers of Network.fit (contract with the regularisers branch)."""
        kwargs = {}
        if self.alpha:
            # sklearn's gradient is that of its data loss summed over the outputs plus the
            # penalty 0.5 * alpha * sum ||W||^2 / sw_sum; gdcore's losses average over the
            # outputs, so the penalty is divided by their count (see _grad_scale).
            kwargs["l2"] = float(self.alpha) / self._grad_scale
        return kwargs

    # --- fitted attributes the network holds -------------------------------------------
    @property
    def coefs_(self) -> list:
        """The weight matrices, ``coefs_[i]`` of shape (n_units_i, n_units_{i+1}): the live
        arrays of ``network_`` (writing into them changes the model)."""
        return [layer.weights for layer in self.network_.layers]

    @property
    def intercepts_(self) -> list:
        """The bias vectors, ``intercepts_[i]`` of shape (n_units_{i+1},) (live, as coefs_)."""
        return [layer.bias for layer in self.network_.layers]

    @property
    def _grad_scale(self) -> float:
        """sklearn's gradient over gdcore's. sklearn's output error ``a - y`` (divided by the
        sample count only) is the gradient of its loss summed over the outputs, where gdcore's
        bce and squared_error average over them (cross_entropy sums over the classes, as
        sklearn); so the l2 rate is divided by n_outputs, SGD's rate multiplied by it (Adam's
        step and L-BFGS's direction do not depend on the scale), and L-BFGS's gradient
        tolerance divided by it."""
        return 1.0 if self._loss == "cross_entropy" else float(self.n_outputs_)

    @property
    def _loss_scale(self) -> float:
        """sklearn's reported loss over gdcore's: n_outputs for the binary log loss, which
        sklearn sums over the logistic outputs of a multilabel problem; 1 for the squared
        error, which sklearn reports as a mean over all the outputs (so ``loss_`` of a
        multi-output regression counts the penalty divided by n_outputs: the objective whose
        gradient, times n_outputs, sklearn follows)."""
        if self._loss == "bce":
            return float(self.n_outputs_)
        return 1.0

    # --- fitting -------------------------------------------------------------------------
    def _hidden_layer_sizes(self) -> list:
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _network_dtype(self, X: Any) -> np.dtype:
        if self.dtype is None:
            return np.dtype(X.dtype)
        return np.dtype(self.dtype)

    def _initialize(self, layer_units: list, dtype: np.dtype) -> None:
        """A new network with scikit-learn's initial weights (``_init_coef``, drawn from
        ``random_state`` in its order: each layer's weights, then its bias), and the
        attributes of a first fit."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(layer_units)
        out = self._output_activation()
        self.out_activation_ = _OUT_ACTIVATIONS[out]
        hidden = _ACTIVATIONS[self.activation]
        layers = []
        for i in range(self.n_layers_ - 1):
            fan_in, fan_out = layer_units[i], layer_units[i + 1]
            bound = np.sqrt((2.0 if self.activation == "logistic" else 6.0) / (fan_in + fan_out))
            coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = self._random_state.uniform(-bound, bound, fan_out)
            last = i == self.n_layers_ - 2
            layer = self._layer(fan_in, fan_out, out if last else hidden, dtype, last)
            layer.weights = coef.astype(dtype)
            layer.bias = intercept.astype(dtype)
            layers.append(layer)
        self.network_ = Network(layers, loss=self._loss, dtype=dtype)
        self.history_ = History(backend=self.network_.backend)
        self._best_params = [p.copy() for p in self.network_.parameters()]
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _layer(self, fan_in: int, fan_out: int, activation: str, dtype: np.dtype,
               last: bool) -> Layer:
        if self.dropout and not last:
            # contract with the regularisers branch: dropout on a hidden layer's outputs
            return Layer(fan_in, fan_out, activation, init="zeros", dtype=dtype,
                         dropout=float(self.dropout))
        return Layer(fan_in, fan_out, activation, init="zeros", dtype=dtype)

    def _fit(self, X: Any, y: Any, sample_weight: Any = None, incremental: bool = False):
        hidden_layer_sizes = self._hidden_layer_sizes()
        first_pass = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        sample_weight = self._sample_weight(y, sample_weight, incremental)
        dtype = self._network_dtype(X) if first_pass else self.network_.dtype
        if _sparse.issparse(X):
            X = X.toarray()  # the engines take dense arrays
        X = np.ascontiguousarray(X, dtype=dtype)
        Y = self._targets(y).astype(dtype, copy=False)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
        layer_units = [X.shape[1]] + hidden_layer_sizes + [Y.shape[1]]
        if not first_pass and self.network_.sizes != layer_units:
            raise ValueError(f"the network has layer sizes {self.network_.sizes}; this fit "
                             f"needs {layer_units} (change of hidden_layer_sizes or of the "
                             f"number of outputs with warm_start or partial_fit)")
        self.n_outputs_ = Y.shape[1]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(layer_units, dtype)
        if self.solver in _STOCHASTIC_SOLVERS:
            self._fit_stochastic(X, Y, y, sample_weight, incremental)
        else:
            self._fit_lbfgs(X, Y, sample_weight)
        if not all(np.isfinite(p).all() for p in self.network_.parameters()):
            raise ValueError("Solver produced non-finite parameter weights. The input data may"
                             " contain large values and need to be preprocessed.")
        return self

    def _new_optimizer(self) -> Any:
        lr = 0.001 if self.learning_rate_init == "auto" else float(self.learning_rate_init)
        if self.solver == "sgd":
            momentum = float(self.momentum)
            return SGD(lr=lr, momentum=momentum,
                       nesterov=bool(self.nesterovs_momentum) and momentum > 0)
        return Adam(lr=lr, betas=(float(self.beta_1), float(self.beta_2)),
                    eps=float(self.epsilon))

    def _initial_rate(self, X: np.ndarray, Y: np.ndarray, w: Optional[np.ndarray],
                      batch_size: int) -> float:
        """learning_rate_init, or the range test's suggestion for "auto" (gd.find_lr with this
        optimizer's kind and hyper-parameters; the weights are left as they are)."""
        if self.learning_rate_init != "auto":
            return float(self.learning_rate_init)
        from .lr_finder import find_lr
        del w  # the range test runs on unweighted mini-batches
        found = find_lr(self.network_, X, Y, optimizer=self._optimizer,
                        batch_size=min(batch_size, _AUTO_LR_MAX_BATCH),
                        seed=_seed_from(self._random_state)).suggestion
        self.history_.lr_found = float(found)
        return float(found)

    def _set_rate(self, base: float) -> None:
        """Train the optimizer's next epoch at sklearn's rate ``base`` (times gdcore's
        divergence back-off, and times the gradient scale for SGD, whose step is not
        scale-free): an entry of the :class:`_EpochRates` schedule at the optimizer's epoch
        count, so that an epoch fit undoes and runs again gets the rate it had."""
        opt = self._optimizer
        rate = base * (self._grad_scale if self.solver == "sgd" else 1.0)
        if not isinstance(opt.schedule, _EpochRates):
            scale = opt.lr_scale
            opt.lr = _EpochRates(rate, opt.epochs_done)
            opt.lr_scale = scale
        opt.schedule.set(opt.epochs_done, rate)

    def _fit_stochastic(self, X: np.ndarray, Y: np.ndarray, y: np.ndarray,
                        sample_weight: Optional[np.ndarray], incremental: bool) -> None:
        """scikit-learn's epochs in one ``Network.fit`` call (``max_iter`` epochs, one for
        partial_fit); :class:`_Epochs`, its callback, does sklearn's work after each."""
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        new_optimizer = not incremental or not hasattr(self, "_optimizer")
        if new_optimizer:
            self._optimizer = self._new_optimizer()
        early_stopping = self.early_stopping
        if early_stopping:
            # sklearn's split: stratified for single-output classification
            stratify = y if (is_classifier(self) and self.n_outputs_ == 1) else None
            arrays = [X, Y, y] + ([sample_weight] if sample_weight is not None else [])
            parts = train_test_split(*arrays, random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            X_train, X_val, Y_train, _, _, y_val = parts[:6]
            w_train, w_val = (parts[6], parts[7]) if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            # converted once here, not by every epoch's fit and score
            X_train, Y_train = np.ascontiguousarray(X_train), np.ascontiguousarray(Y_train)
            X_val = np.ascontiguousarray(X_val)
            validation = (X_val, y_val, w_val)
        else:
            X_train, Y_train, w_train = X, Y, sample_weight
            validation = None
        n_samples = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        if new_optimizer:
            self._rate = self._initial_rate(X_train, Y_train, w_train, batch_size)
        self._set_rate(self._rate)
        self.n_iter_ = 0
        epochs = _Epochs(self, n_samples, validation)
        try:
            run = self.network_.fit(
                X_train, Y_train, optimizer=self._optimizer,
                epochs=1 if incremental else int(self.max_iter), batch_size=batch_size,
                shuffle=bool(self.shuffle), sample_weight=w_train,
                seed=_seed_from(self._random_state),  # the order and the dropout masks
                on_divergence=self.on_divergence, callbacks=[epochs], **self._fit_kwargs())
        except DivergenceError as exc:  # keep the record of the epochs before it
            self._record(exc.history)
            self.history_.stop_reason = exc.history.stop_reason
            raise
        self._record(run)
        history = self.history_
        if run.stop_reason == "callback":  # sklearn's tol / n_iter_no_change rule
            history.converged = True
            history.stop_reason = "converged"
        else:
            history.stop_reason = run.stop_reason
            if run.stop_reason == "epochs" and not incremental:
                warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                              "optimization hasn't converged yet." % self.max_iter,
                              ConvergenceWarning)
        if early_stopping:
            with self.network_._writing_parameters():  # (the C API's forwards wait)
                for target, best in zip(self.network_.parameters(), self._best_params):
                    np.copyto(target, best)

    def _rate_init(self) -> float:
        found = self.history_.lr_found
        return found if self.learning_rate_init == "auto" and found else \
            float(self.learning_rate_init)

    def _trigger_stopping(self, msg: str) -> bool:
        """sklearn's optimizers' trigger_stopping: stop, or (sgd, adaptive) divide the rate by
        5 and go on while it is above 1e-6."""
        if self.solver == "sgd" and self.learning_rate == "adaptive" \
                and self._rate > _ADAPTIVE_MIN_LR:
            self._rate /= 5.0
            if self.verbose:
                print(msg + " Setting learning rate to %f" % self._rate)
            return False
        if self.verbose:
            print(msg + (" Learning rate too small. Stopping." if self.solver == "sgd" else
                         " Stopping."))
        return True

    def _record(self, run: History) -> None:
        """Append one fit call's record to ``history_``."""
        history = self.history_
        history.loss.extend(loss * self._loss_scale for loss in run.loss)
        history.lr.extend(run.lr)
        history.epochs += run.epochs
        history.diverged |= run.diverged
        history.backoffs += run.backoffs
        history.events.extend(run.events)
        history.time += run.time
        if math.isnan(history.start_loss) and not math.isnan(run.start_loss):
            history.start_loss = run.start_loss * self._loss_scale
        history.suggested_lr = run.suggested_lr
        history.backend = run.backend
        history.best_epoch = (int(np.argmin(history.loss)) if history.loss else None)

    def _update_no_improvement_count(self, validation: Optional[tuple]) -> None:
        if validation is not None:
            val_score = self._validation_score(*validation)
            self.validation_scores_.append(val_score)
            self.history_.metrics.setdefault("validation_score", []).append(val_score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                for target, p in zip(self._best_params, self.network_.parameters()):
                    np.copyto(target, p)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _validation_score(self, X: np.ndarray, y: np.ndarray, sample_weight: Any) -> float:
        """The score of early_stopping on the held-out part (validated and converted once)."""
        return self._score(X, y, sample_weight=sample_weight)

    def _fit_lbfgs(self, X: np.ndarray, Y: np.ndarray, sample_weight: Optional[np.ndarray]
                   ) -> None:
        """solver="lbfgs": gd.LBFGS on the full batch, one iteration per epoch, SciPy's
        L-BFGS-B rules as scikit-learn calls it (gtol=tol, its default ftol, maxfun=max_fun,
        maxiter=max_iter); ConvergenceWarning unless a tolerance ended it."""
        from .optimizers import LBFGS
        fit_kwargs = self._fit_kwargs()
        optimizer = LBFGS(max_iter=1, tolerance_grad=float(self.tol) / self._grad_scale,
                          tolerance_change=_SCIPY_FTOL, max_fun=int(self.max_fun))
        history = self.network_.fit(X, Y, optimizer=optimizer, epochs=int(self.max_iter),
                                    batch_size=None, shuffle=False, sample_weight=sample_weight,
                                    on_divergence=self.on_divergence, **fit_kwargs)
        self._record(history)
        self.history_.stop_reason = history.stop_reason
        self.history_.converged = optimizer.converged
        self.n_iter_ = optimizer.n_iter
        self.loss_ = float(self.network_.loss(X, Y, sample_weight, **fit_kwargs)) \
            * self._loss_scale
        if not optimizer.converged:
            warnings.warn("lbfgs failed to converge after %d iteration(s) (%s). Increase the "
                          "number of iterations (max_iter) or scale the data as shown in "
                          "https://scikit-learn.org/stable/modules/preprocessing.html"
                          % (self.n_iter_, history.stop_reason), ConvergenceWarning)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data (sparse matrices are densified for the engine).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classification) or real numbers (regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "%s is not stochastic." % self.solver)
        return True

    # --- predicting ----------------------------------------------------------------------
    def _forward(self, X: Any, check_input: bool = True) -> np.ndarray:
        """The output layer's activations, (n_samples, n_outputs), in the network's dtype."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        if _sparse.issparse(X):
            X = X.toarray()
        return self.network_.predict(np.asarray(X))

    def _score_with_function(self, X: Any, y: Any, sample_weight: Any, score_function: Any):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def to_onnx(self, path: Any = None) -> Any:
        """The fitted estimator's prediction graph as an ``onnx.ModelProto`` (the extra
        ``gdcore[onnx]``), input ``"X"`` ``(N, n_features_in_)`` of the network's dtype: a
        classifier's outputs ``"label"`` and ``"probabilities"``, a regressor's ``"prediction"``
        (:func:`gdcore.onnx_export.estimator_to_onnx`). With ``path``, also saved there."""
        check_is_fitted(self)
        from .onnx_export import estimator_to_onnx
        return estimator_to_onnx(self, path)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, trained by gdcore.

    Every parameter of ``sklearn.neural_network.MLPClassifier`` has its name, default and
    meaning (see scikit-learn's documentation); the fitted attributes are its own
    (``classes_``, ``loss_``, ``best_loss_``, ``loss_curve_``, ``validation_scores_``,
    ``best_validation_score_``, ``t_``, ``coefs_``, ``intercepts_``, ``n_features_in_``,
    ``feature_names_in_``, ``n_iter_``, ``n_layers_``, ``n_outputs_``, ``out_activation_``).
    Binary targets train one logistic output, multilabel targets (a 2-D 0/1 ``y``) one
    logistic output per label, more classes a softmax output; the loss is the log loss plus
    ``0.5 * alpha * sum ||W||^2 / sum(sample_weight)``, as scikit-learn's.

    Differences: the network trains in gdcore's engine (C++ or NumPy), with PyTorch's update
    rules (SGD's momentum buffer and Adam's epsilon as ``torch.optim``: the same steps at a
    constant rate, slightly different ones when the rate changes); sparse ``X`` is densified.

    gdcore's own parameters
    -----------------------
    dtype : {"float32", "float64"} or None, default="float32"
        The network's dtype; None follows the dtype of ``X`` (float64 unless it is float32),
        as scikit-learn does. Predictions come in this dtype.
    learning_rate_init : float or "auto", default=0.001
        "auto" runs the learning-rate range test (:func:`gdcore.find_lr`, with the solver's
        optimizer) at the start of a fresh fit and trains at its suggestion
        (``history_.lr_found``).
    on_divergence : {"raise", "stop", "backoff"}, default="raise"
        What an epoch that diverges does (see :meth:`gdcore.Network.fit`): the epoch is undone,
        then ``DivergenceError``, the end of training, or half the rate.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight`` (``"balanced"``:
        ``n_samples / (n_classes * np.bincount(y))``, as ``compute_class_weight``; refused by
        ``partial_fit``, which cannot see all the data).
    dropout : float in [0, 1), default=0.0
        Inverted dropout on every hidden layer's outputs during training.
    label_smoothing : float in [0, 1), default=0.0
        Smoothed targets: ``(1 - eps) * y + eps / K`` for softmax, ``y * (1 - eps) + eps / 2``
        for logistic outputs.

    Attributes
    ----------
    network_ : gdcore.Network
        The trained network (``coefs_`` and ``intercepts_`` are its live arrays).
    history_ : gdcore.History
        Every epoch of the last fit (or of every partial_fit since the last fresh start): loss
        (as ``loss_curve_``), rate, divergences, stop reason, ``lr_found``.
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype="float32", on_divergence="raise", class_weight=None, dropout=0.0,
                 label_smoothing=0.0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.on_divergence = on_divergence
        self.class_weight = class_weight
        self.dropout = dropout
        self.label_smoothing = label_smoothing

    @property
    def _loss(self) -> str:  # type: ignore[override]
        return "cross_entropy" if self._label_binarizer.y_type_ == "multiclass" else "bce"

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "sigmoid"

    def _fit_kwargs(self) -> dict:
        kwargs = super()._fit_kwargs()
        if self.label_smoothing:
            kwargs["label_smoothing"] = float(self.label_smoothing)
        return kwargs

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        return X, y

    def _targets(self, y: np.ndarray) -> np.ndarray:
        Y = self._label_binarizer.transform(y)
        if _sparse.issparse(Y):
            Y = Y.toarray()
        return np.asarray(Y, dtype=np.float64)

    def _sample_weight(self, y: np.ndarray, sample_weight: Optional[np.ndarray],
                       incremental: bool) -> Optional[np.ndarray]:
        if self.class_weight is None:
            return sample_weight
        if incremental and self.class_weight == "balanced":
            raise ValueError("class_weight 'balanced' is not supported for partial_fit: it "
                             "needs every sample's class. Compute the weights with "
                             "sklearn.utils.class_weight.compute_class_weight and pass a dict.")
        if self._label_binarizer.y_type_.startswith("multilabel"):
            raise ValueError("class_weight is not supported for multilabel targets")
        weights = compute_sample_weight(self.class_weight, y)
        return weights if sample_weight is None else weights * sample_weight

    def _predict(self, X: Any, check_input: bool = True) -> np.ndarray:
        y_pred = self._forward(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted classes, (n_samples,) or (n_samples, n_classes) for multilabel."""
        check_is_fitted(self)
        return self._predict(X)

    def _score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None):
        """One epoch over the given data (the optimizer's state carries over between calls).

        ``classes`` (all the classes, e.g. ``np.unique(y_all)``) is required on the first call.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of each class, (n_samples, n_classes), in the order of ``classes_``."""
        check_is_fitted(self)
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, trained by gdcore.

    Every parameter of ``sklearn.neural_network.MLPRegressor`` (but ``loss``: only
    scikit-learn's default, the half squared error) has its name, default and meaning, and the
    fitted attributes are its own; several outputs (a 2-D ``y``) train together. gdcore's own
    parameters ``dtype``, ``learning_rate_init="auto"``, ``on_divergence`` and ``dropout``, and
    the attributes ``network_`` and ``history_``, are those of :class:`MLPClassifier`.
    """

    _loss = "squared_error"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype="float32", on_divergence="raise", dropout=0.0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.on_divergence = on_divergence
        self.dropout = dropout

    def _output_activation(self) -> str:
        return "identity"

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _targets(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _predict(self, X: Any, check_input: bool = True) -> np.ndarray:
        y_pred = self._forward(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def predict(self, X: Any) -> np.ndarray:
        """The predicted values, (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        return self._score_with_function(X, y, sample_weight, r2_score)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None):
        """One epoch over the given data (the optimizer's state carries over between calls)."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

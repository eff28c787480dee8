"""Bridge from 3-D trial data to ordinary 2-D scikit-learn estimators."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils import check_array
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ..persistence import SaveMixin


def _estimator_has(attr):
    def check(self):
        getattr(self.estimator_ if hasattr(self, "estimator_") else self.estimator, attr)
        return True

    return check


class PerBin(SaveMixin, MetaEstimatorMixin, BaseEstimator):
    """Fit a 2-D estimator on every (trial, time bin) of trial-structured data.

    ``X`` of shape ``(n_trials, n_time, n_features)`` becomes ``n_trials * n_time`` rows;
    ``y`` of shape ``(n_trials, n_time, n_targets)`` or ``(n_trials, n_time)`` is flattened the
    same way, and a per-trial ``y`` of shape ``(n_trials,)`` labels every bin of its trial.
    Predictions come back as ``(n_trials, n_time, ...)``. Put it last in a ``Pipeline`` after
    :class:`~sklearn_blend.BlendEstimator` so that cross-validation still splits by trial.
    This is how the Neural Latents Benchmark decodes velocity: one ridge regression from the
    rates of each bin to the behavior of that bin, with R^2 pooled over all bins.

    Rows whose target is NaN (e.g. behavior missing at trial edges) are left out of ``fit`` and
    ``score``, as ``nlb_tools`` does. 2-D ``X`` ``(n_samples, n_features)`` passes through
    unchanged.

    Parameters
    ----------
    estimator : estimator object
        A scikit-learn estimator for 2-D data, e.g. ``RidgeCV()`` or ``LogisticRegression()``.

    Attributes
    ----------
    estimator_ : estimator object
        The fitted clone of ``estimator``.
    n_features_in_ : int
        Features (last axis of ``X``) seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn_blend import PerBin
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(10, 5, 3))
    >>> y = X @ np.array([[1.0], [2.0], [0.0]])
    >>> model = PerBin(Ridge(alpha=1e-6)).fit(X, y)
    >>> model.predict(X).shape
    (10, 5, 1)
    >>> round(model.score(X, y), 6)
    1.0
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def _flatten_X(self, X, *, reset):
        X = check_array(
            X, accept_sparse=True, allow_nd=True, ensure_2d=False,
            ensure_all_finite="allow-nan", dtype=None, input_name="X",
        )
        if X.ndim not in (2, 3):
            raise ValueError(
                "X must be 3-D (n_trials, n_time, n_features) or 2-D (n_samples, n_features); "
                f"got a {X.ndim}-D array of shape {X.shape}. Reshape your data: "
                "X.reshape(1, -1) if it is a single sample."
            )
        if reset:
            self.n_features_in_ = X.shape[-1]
        elif X.shape[-1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[-1]} features, but PerBin is expecting {self.n_features_in_} "
                "features as input (the last axis of X)."
            )
        if X.ndim == 2:  # plain 2-D data (dense or sparse) passes through
            return X, X.shape[:1]
        return X.reshape(-1, X.shape[-1]), X.shape[:-1]

    @staticmethod
    def _flatten_y(y, lead):
        if y is None:
            raise ValueError("PerBin requires y to be passed, but the target y is None.")
        y = np.asarray(y)
        if len(lead) == 1:  # 2-D X: y is already per sample
            if len(y) != lead[0]:
                raise ValueError(
                    f"X and y disagree on the number of samples: {lead[0]} and {len(y)}."
                )
            return y
        n_trials, n_time = lead
        if y.shape[:1] != (n_trials,):
            raise ValueError(
                f"X and y disagree on the number of trials: X has {n_trials}, y has shape "
                f"{y.shape}."
            )
        if y.ndim == 1:
            return np.repeat(y, n_time)
        if y.shape[1] != n_time:
            raise ValueError(
                f"y must be (n_trials, n_time[, n_targets]) = ({n_trials}, {n_time}, ...) or "
                f"(n_trials,) to match X; got shape {y.shape}."
            )
        return y.reshape(n_trials * n_time, *y.shape[2:])

    @staticmethod
    def _flatten_weight(sample_weight, n_rows):
        """``sample_weight`` per flattened row: given per row or as ``(n_trials, n_time)``."""
        if sample_weight is None:
            return None
        weight = np.asarray(sample_weight, dtype=float).reshape(-1)
        if len(weight) != n_rows:
            raise ValueError(
                f"sample_weight must have one weight per bin ({n_rows}: n_trials * n_time, or "
                f"n_samples for 2-D X); got shape {np.shape(sample_weight)}."
            )
        return weight

    @staticmethod
    def _drop_missing(X, y, sample_weight=None):
        """Drop the rows whose target is missing (NaN), with their sample weights."""
        if y.dtype.kind != "f":
            return X, y, sample_weight
        keep = ~np.isnan(y).reshape(len(y), -1).any(axis=1)
        return X[keep], y[keep], None if sample_weight is None else sample_weight[keep]

    def fit(self, X, y, **fit_params):
        """Fit a clone of ``estimator`` on the flattened bins.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_features)
        y : array-like of shape (n_trials, n_time, n_targets), (n_trials, n_time) or (n_trials,)
        **fit_params : dict
            Passed to the estimator's ``fit``.

        Returns
        -------
        self : PerBin
        """
        X2, lead = self._flatten_X(X, reset=True)
        weight = self._flatten_weight(fit_params.pop("sample_weight", None), X2.shape[0])
        X2, y2, weight = self._drop_missing(X2, self._flatten_y(y, lead), weight)
        if weight is not None:
            fit_params["sample_weight"] = weight
        self.estimator_ = clone(self.estimator).fit(X2, y2, **fit_params)
        self._target_shape = y2.shape[1:]
        return self

    def _unflatten(self, values, lead):
        return values.reshape(*lead, *values.shape[1:])

    def predict(self, X):
        """Predict every bin; returns ``(n_trials, n_time[, n_targets])``."""
        check_is_fitted(self)
        X2, lead = self._flatten_X(X, reset=False)
        prediction = self.estimator_.predict(X2)
        return prediction.reshape(*lead, *self._target_shape)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of every bin; returns ``(n_trials, n_time, n_classes)``."""
        check_is_fitted(self)
        X2, lead = self._flatten_X(X, reset=False)
        return self._unflatten(self.estimator_.predict_proba(X2), lead)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of every bin, reshaped to ``(n_trials, n_time, ...)``."""
        check_is_fitted(self)
        X2, lead = self._flatten_X(X, reset=False)
        return self._unflatten(self.estimator_.decision_function(X2), lead)

    def score(self, X, y, sample_weight=None):
        """The estimator's own score (R^2 or accuracy) pooled over all bins.

        ``sample_weight`` is per row of the flattened data (``n_trials * n_time``, or
        ``(n_trials, n_time)``), or per sample for 2-D ``X``. Bins whose target is missing
        (NaN) are left out, with their weights.
        """
        check_is_fitted(self)
        X2, lead = self._flatten_X(X, reset=False)
        weight = self._flatten_weight(sample_weight, X2.shape[0])
        X2, y2, weight = self._drop_missing(X2, self._flatten_y(y, lead), weight)
        if weight is None:
            return self.estimator_.score(X2, y2)
        return self.estimator_.score(X2, y2, sample_weight=weight)

    @property
    def classes_(self):
        """Class labels of a fitted classifier."""
        return self.estimator_.classes_

    def __sklearn_tags__(self):
        tags = clone(self.estimator).__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

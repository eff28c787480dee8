"""Seed ensembles: the average of models that differ only in their seed."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, TransformerMixin, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ..persistence import SaveMixin


def _estimator_has(attr):
    def check(self):
        getattr(self.estimators_[0] if hasattr(self, "estimators_") else self.estimator, attr)
        return True

    return check


class SeedEnsemble(SaveMixin, MetaEstimatorMixin, TransformerMixin, BaseEstimator):
    """The average of ``n_members`` fits of one estimator that differ only in their seed.

    Every member is a clone of ``estimator`` fitted on the same data with its own
    ``random_state`` (initialisation, masks, dropout, the teacher's and the student's seeds);
    :meth:`predict_rates` averages the members' firing rates, as the best entries of the
    Neural Latents Benchmark average the rates of several models. A member costs one fit of
    ``estimator``: ``n_members`` times the time and memory of one model in ``fit`` and in
    prediction.

    Parameters
    ----------
    estimator : estimator object
        A rate model of this package (:class:`BlendEstimator`, :class:`BlendTeacher`),
        unfitted.
    n_members : int, default=5
        Number of fits averaged.
    random_state : int, RandomState instance or None, default=None
        Where the members' seeds come from. An int ``r``: members get ``r, r + 1, ...``.
        ``None``: from ``estimator``'s own ``random_state`` likewise when it is an int (the
        first member is then the estimator as it stands), drawn at random when it is not.
    n_jobs : int, default=None
        Members fitted in parallel (joblib processes; ``None``: one at a time).

    Attributes
    ----------
    estimators_ : list of estimator
        The fitted members.
    random_states_ : list of int
        Each member's ``random_state``.
    n_features_in_ : int
        Neurons of the training ``X`` (as the members').

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend import BlendEstimator, SeedEnsemble
    >>> rng = np.random.default_rng(0)
    >>> X = rng.poisson(1.0, size=(16, 10, 6))
    >>> b = rng.normal(size=(16, 10, 2))
    >>> model = BlendEstimator(hidden_size=8, n_layers=1,
    ...                        max_epochs=2, random_state=0)
    >>> ensemble = SeedEnsemble(model, n_members=2).fit(X, b)
    >>> ensemble.random_states_
    [0, 1]
    >>> ensemble.predict_rates(X).shape
    (16, 10, 6)
    """

    def __init__(self, estimator, n_members=5, *, random_state=None, n_jobs=None):
        self.estimator = estimator
        self.n_members = n_members
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check_params(self):
        if (not isinstance(self.n_members, numbers.Integral) or isinstance(self.n_members, bool)
                or self.n_members < 1):
            raise ValueError(f"n_members must be an int >= 1, got {self.n_members!r}.")
        if not isinstance(self.estimator, BaseEstimator) or (
                "random_state" not in self.estimator.get_params(deep=False)):
            raise TypeError("estimator must be a scikit-learn estimator with a random_state "
                            f"parameter (say BlendEstimator()), got {self.estimator!r}.")
        if not (hasattr(self.estimator, "predict_rates")
                and hasattr(self.estimator, "_score_pair")):
            raise TypeError(f"estimator must be a rate model of this package (BlendEstimator, "
                            f"BlendTeacher); {type(self.estimator).__name__} is not.")

    def _seeds(self):
        """Each member's ``random_state`` (see the ``random_state`` parameter)."""
        source = self.random_state
        if source is None:
            source = self.estimator.get_params(deep=False)["random_state"]
        if isinstance(source, numbers.Integral) and not isinstance(source, bool):
            return [int(source) + k for k in range(self.n_members)]
        from sklearn.utils import check_random_state

        return [int(s) for s in check_random_state(source).randint(0, 2**31 - 1,
                                                                    self.n_members)]

    def fit(self, X, y=None, **fit_params):
        """Fit ``n_members`` clones of ``estimator``, each with its own seed.

        Parameters
        ----------
        X : array-like
            As ``estimator.fit`` takes it.
        y : array-like, optional
            As ``estimator.fit`` takes it (behavior for a BLEND model).
        **fit_params : dict
            Passed to every member's ``fit``.

        Returns
        -------
        self : SeedEnsemble
        """
        self._check_params()
        seeds = self._seeds()
        members = [clone(self.estimator).set_params(random_state=seed) for seed in seeds]
        if self.n_jobs in (None, 1):
            fitted = [member.fit(X, y, **fit_params) for member in members]
        else:
            from joblib import Parallel, delayed

            fitted = Parallel(n_jobs=self.n_jobs)(delayed(_fit)(member, X, y, fit_params)
                                                 for member in members)
        self.estimators_, self.random_states_ = list(fitted), seeds
        n_features = getattr(self.estimators_[0], "n_features_in_", None)
        if n_features is not None:
            self.n_features_in_ = n_features
        return self

    def predict_rates(self, X, **kwargs):
        """The members' firing rates, averaged.

        Parameters
        ----------
        X : array-like
            As the members' ``predict_rates`` take it.
        **kwargs : dict
            Passed to every member's ``predict_rates`` (say ``forward=True``).

        Returns
        -------
        rates : ndarray
            Of the members' shape, in expected counts per bin.
        """
        check_is_fitted(self)
        return np.mean([member.predict_rates(X, **kwargs) for member in self.estimators_],
                       axis=0).astype(np.float32)

    @available_if(_estimator_has("transform"))
    def transform(self, X):
        """The members' outputs: averaged where they are rates (``output="rates"``, the
        default of BLEND's estimators), concatenated along the last axis where they are
        latents (the members' latents are not aligned with each other; a linear decoder after
        the ensemble reads them all).

        Parameters
        ----------
        X : array-like

        Returns
        -------
        Xt : ndarray
        """
        check_is_fitted(self)
        outputs = [member.transform(X) for member in self.estimators_]
        if getattr(self.estimators_[0], "output", "rates") == "rates":
            return np.mean(outputs, axis=0).astype(np.float32)
        return np.concatenate(outputs, axis=-1)

    def score(self, X, y=None):
        """The members' score of the averaged rates: with held-out neurons co-smoothing bits
        per spike of their averaged rates, without them masked bits per spike of every bin's
        rates averaged over the members' masked passes (as the members' ``score``).

        Parameters
        ----------
        X : array-like of shape (n_trials, n_time, n_neurons)
            All neurons, held-out last.
        y : array-like, optional
            Behavior, where the members' ``score`` needs it (a teacher's).

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        pairs = [member._score_pair(X, y) for member in self.estimators_]
        rates = np.mean([rates for rates, _ in pairs], axis=0)
        return self.estimators_[0].signal.score(rates, pairs[0][1])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.input_tags = inner.input_tags
        tags.target_tags.required = inner.target_tags.required
        if inner.transformer_tags is not None:
            tags.transformer_tags = inner.transformer_tags
        return tags


def _fit(member, X, y, fit_params):
    return member.fit(X, y, **fit_params)


__all__ = ["SeedEnsemble"]

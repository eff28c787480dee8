"""Scorers for ``GridSearchCV(scoring=...)`` and NLB's velocity decoder as a pipeline step.

The metrics themselves are the pure functions of :mod:`sklearn_blend.metrics`; this module
applies them to fitted estimators (a ``BlendEstimator``, a ``Pipeline`` ending in
:class:`~sklearn_blend.PerBin`, a ``NedsEstimator``).
"""

from __future__ import annotations

from .estimators.adapters import PerBin
from .metrics import NLB_RIDGE_ALPHAS, bits_per_spike, bits_per_spike_per_neuron

__all__ = [
    "co_bps_scorer", "vel_r2_scorer", "encoding_bps_scorer", "encoding_bps_per_neuron_scorer",
    "nlb_velocity_decoder",
]


def _blend_model(estimator):
    """The first step of a pipeline (or the estimator itself): the model that makes rates."""
    steps = getattr(estimator, "steps", None)
    model = steps[0][1] if steps else estimator
    if not hasattr(model, "predict_rates") or not hasattr(model, "n_heldout"):
        raise TypeError(
            "co_bps_scorer needs a BlendEstimator (or a Pipeline that starts with one), got "
            f"{type(model).__name__}."
        )
    return model


def co_bps_scorer(estimator, X, y=None):
    """Scorer: co-bps of a fitted ``BlendEstimator`` (or Pipeline starting with one) on ``X``.

    ``X`` holds all neurons, the estimator's ``n_heldout`` held-out ones last; their rates are
    predicted from the held-in columns alone. Use as ``GridSearchCV(..., scoring=co_bps_scorer)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend import BlendEstimator
    >>> from sklearn_blend.datasets import make_synthetic
    >>> X, b = make_synthetic("simple", n_trials=12, n_time=10, n_neurons=8, random_state=0)
    >>> est = BlendEstimator(n_heldout=2, hidden_size=8, n_layers=1,
    ...                      max_epochs=1, batch_size=8, early_stopping=False,
    ...                      random_state=0).fit(X, b)
    >>> score = co_bps_scorer(est, X)  # the last 2 neurons predicted from the first 6
    >>> bool(np.isfinite(score)), score == est.score(X)
    (True, True)
    """
    model = _blend_model(estimator)
    if not model.n_heldout:
        raise ValueError("co_bps_scorer needs an estimator fitted with n_heldout > 0.")
    return model.score(X)


def vel_r2_scorer(estimator, X, y):
    """Scorer: velocity-decoding R^2 of a fitted ``Pipeline`` ending in ``PerBin(decoder)``.

    The pipeline's rates of the scored trials go through the decoder fitted on the training
    trials' rates, R^2 pooled over bins and averaged over behavior channels: NLB's Vel-R2 when
    the decoder is :func:`nlb_velocity_decoder`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn_blend import BlendEstimator
    >>> from sklearn_blend.datasets import make_synthetic
    >>> X, b = make_synthetic("simple", n_trials=12, n_time=10, n_neurons=8, random_state=0)
    >>> blend = BlendEstimator(strategy=None, hidden_size=8, n_layers=1,
    ...                        max_epochs=1, batch_size=8, early_stopping=False, random_state=0)
    >>> pipe = Pipeline([("blend", blend), ("decoder", nlb_velocity_decoder())]).fit(X, b)
    >>> score = vel_r2_scorer(pipe, X, b)
    >>> bool(np.isfinite(score)), score <= 1.0
    (True, True)
    """
    steps = getattr(estimator, "steps", None)
    if not steps or not isinstance(steps[-1][1], PerBin):
        raise TypeError("vel_r2_scorer needs a Pipeline whose last step is PerBin(decoder).")
    return estimator.score(X, y)


def encoding_bps_scorer(estimator, X, y):
    """Scorer: bits per spike (NLB's pooled form) of spikes ``X`` encoded from behavior ``y``
    alone by a fitted :class:`~sklearn_blend.NedsEstimator` (``predict_rates(b=y)``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend import NedsEstimator
    >>> from sklearn_blend.datasets import make_synthetic
    >>> X, b = make_synthetic("simple", n_trials=12, n_time=10, n_neurons=8, random_state=0)
    >>> neds = NedsEstimator(hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=1,
    ...                      batch_size=8, early_stopping=False, random_state=0).fit(X, b)
    >>> neds.predict_rates(b=b).shape  # spikes predicted from behavior alone
    (12, 10, 8)
    >>> score = encoding_bps_scorer(neds, X, b)
    >>> bool(np.isfinite(score)), score == bits_per_spike(neds.predict_rates(b=b), X)
    (True, True)
    """
    return bits_per_spike(estimator.predict_rates(b=y), X)


def encoding_bps_per_neuron_scorer(estimator, X, y):
    """Scorer: as :func:`encoding_bps_scorer`, but NEDS's per-neuron average
    (:func:`bits_per_spike_per_neuron`); the two differ, so name the one you report.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend import NedsEstimator
    >>> from sklearn_blend.datasets import make_synthetic
    >>> X, b = make_synthetic("simple", n_trials=12, n_time=10, n_neurons=8, random_state=0)
    >>> neds = NedsEstimator(hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=1,
    ...                      batch_size=8, early_stopping=False, random_state=0).fit(X, b)
    >>> per_neuron = encoding_bps_per_neuron_scorer(neds, X, b)
    >>> bool(np.isfinite(per_neuron)), per_neuron != encoding_bps_scorer(neds, X, b)
    (True, True)
    """
    return bits_per_spike_per_neuron(estimator.predict_rates(b=y), X)


def nlb_velocity_decoder():
    """NLB's velocity decoder as a pipeline step: per-bin ridge, alpha chosen by 5-fold CV.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> rates = rng.gamma(2.0, 0.5, size=(20, 10, 5))  # (trials, bins, neurons)
    >>> velocity = rates @ rng.normal(size=(5, 2))
    >>> decoder = nlb_velocity_decoder().fit(rates, velocity)
    >>> decoder.predict(rates).shape
    (20, 10, 2)
    >>> round(decoder.score(rates, velocity), 3)
    1.0
    >>> bool(decoder.estimator_.best_params_["alpha"] in NLB_RIDGE_ALPHAS)
    True
    """
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    return PerBin(GridSearchCV(Ridge(), {"alpha": NLB_RIDGE_ALPHAS}))

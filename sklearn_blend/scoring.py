"""Scorers for ``GridSearchCV(scoring=...)`` and NLB's velocity decoder as a pipeline step.

The metrics themselves are the pure functions of :mod:`sklearn_blend.metrics`; this module
applies them to fitted estimators (a ``BlendEstimator``, a ``Pipeline`` ending in
:class:`~sklearn_blend.PerBin`, a ``NedsEstimator``).
"""

from __future__ import annotations

from .estimators.adapters import PerBin
from .metrics import NLB_RIDGE_ALPHAS, bits_per_spike, bits_per_spike_per_neuron


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
    """
    steps = getattr(estimator, "steps", None)
    if not steps or not isinstance(steps[-1][1], PerBin):
        raise TypeError("vel_r2_scorer needs a Pipeline whose last step is PerBin(decoder).")
    return estimator.score(X, y)


def encoding_bps_scorer(estimator, X, y):
    """Scorer: bits per spike (NLB's pooled form) of spikes ``X`` encoded from behavior ``y``
    alone by a fitted :class:`~sklearn_blend.NedsEstimator` (``predict_rates(b=y)``)."""
    return bits_per_spike(estimator.predict_rates(b=y), X)


def encoding_bps_per_neuron_scorer(estimator, X, y):
    """Scorer: as :func:`encoding_bps_scorer`, but NEDS's per-neuron average
    (:func:`bits_per_spike_per_neuron`); the two differ, so name the one you report."""
    return bits_per_spike_per_neuron(estimator.predict_rates(b=y), X)


def nlb_velocity_decoder():
    """NLB's velocity decoder as a pipeline step: per-bin ridge, alpha chosen by 5-fold CV."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    return PerBin(GridSearchCV(Ridge(), {"alpha": NLB_RIDGE_ALPHAS}))

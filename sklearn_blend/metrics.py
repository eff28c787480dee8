"""Evaluation metrics as pure NumPy functions (formulas as in ``nlb_tools.evaluation``)."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln


def poisson_log_likelihood_terms(rates, spikes):
    """Per-entry Poisson negative log-likelihood ``r - n log r + log n!``; NaN spikes skipped.

    ``rates`` are expected counts per bin and must be non-negative; exact zeros are replaced by
    ``1e-9`` as ``nlb_tools`` does.
    """
    rates = np.asarray(rates, dtype=np.float64)
    spikes = np.asarray(spikes, dtype=np.float64)
    if rates.shape != spikes.shape:
        raise ValueError(
            f"rates and spikes must have the same shape, got {rates.shape} and {spikes.shape}."
        )
    if np.isnan(rates).any() or np.isinf(rates).any() or (rates < 0).any():
        raise ValueError("rates must be finite and non-negative expected counts per bin.")
    rates = np.where(rates == 0, 1e-9, rates)
    keep = ~np.isnan(spikes)
    return np.where(
        keep, rates - spikes * np.log(rates) + gammaln(np.where(keep, spikes, 0) + 1), 0.0
    )


def bits_per_spike(rates, spikes):
    """Bits per spike of ``rates`` on ``spikes`` against a per-neuron mean-rate null.

    ``(NLL_null - NLL_model) / (total spikes * ln 2)`` where the null predicts each neuron's
    mean count over trials and bins of ``spikes`` itself. Arrays are ``(..., n_neurons)``
    (usually ``(n_trials, n_time, n_neurons)``) of counts per bin; NaN spikes are ignored.

    Examples
    --------
    >>> import numpy as np
    >>> spikes = np.array([[[0.0], [2.0]]])
    >>> round(bits_per_spike(np.array([[[0.1], [1.9]]]), spikes), 3)
    0.926
    """
    spikes = np.asarray(spikes, dtype=np.float64)
    total = np.nansum(spikes)
    if total <= 0:
        raise ValueError("bits per spike is undefined when spikes contain no spikes.")
    axes = tuple(range(spikes.ndim - 1))
    null_rates = np.broadcast_to(np.nanmean(spikes, axis=axes, keepdims=True), spikes.shape)
    nll_model = poisson_log_likelihood_terms(rates, spikes).sum()
    nll_null = poisson_log_likelihood_terms(null_rates, spikes).sum()
    return float((nll_null - nll_model) / total / np.log(2))

import numpy as np
import pytest
from scipy.stats import poisson

from sklearn_blend.metrics import bits_per_spike


def test_bits_per_spike_matches_the_definition():
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.05, 2, size=(4, 6, 3))
    spikes = rng.poisson(rates).astype(float)
    null = np.broadcast_to(spikes.mean(axis=(0, 1)), spikes.shape)
    ll_model = poisson.logpmf(spikes, rates).sum()
    ll_null = poisson.logpmf(spikes, null).sum()
    expected = (ll_model - ll_null) / spikes.sum() / np.log(2)
    assert bits_per_spike(rates, spikes) == pytest.approx(expected, rel=1e-10)


def test_null_rates_score_zero_and_true_rates_score_above_zero():
    rng = np.random.default_rng(1)
    rates = rng.uniform(0.05, 3, size=(50, 20, 4))
    spikes = rng.poisson(rates).astype(float)
    null = np.broadcast_to(spikes.mean(axis=(0, 1)), spikes.shape)
    assert bits_per_spike(null, spikes) == pytest.approx(0.0, abs=1e-12)
    assert bits_per_spike(rates, spikes) > 0.1


def test_nan_spikes_are_ignored():
    rng = np.random.default_rng(2)
    rates = rng.uniform(0.1, 1, size=(5, 4, 2))
    spikes = rng.poisson(rates).astype(float)
    with_nan = spikes.copy()
    with_nan[0, 0, 0] = np.nan
    kept = bits_per_spike(rates, with_nan)
    assert np.isfinite(kept)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="no spikes"):
        bits_per_spike(np.ones((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="same shape"):
        bits_per_spike(np.ones((2, 2, 3)), np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        bits_per_spike(-np.ones((2, 2, 2)), np.ones((2, 2, 2)))

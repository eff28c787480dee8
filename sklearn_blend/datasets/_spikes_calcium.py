"""Simulated simultaneous calcium imaging, spikes and behavior: a small test bed of
cross-modal distillation from spikes (privileged) into fluorescence (everyday).

Recipe. All draws come from one NumPy ``Generator`` seeded from ``random_state``. Latents: 3
smooth processes per trial, AR(1) per bin with coefficient ``a = exp(-1 / tau)`` (``tau`` =
``latent_timescale`` bins), stationary with unit variance. Behavior: a 2-D linear readout
``N(0, 1/3)`` of the latents plus noise of s.d. 0.1. Two populations read the same latents
through their own loadings ``N(0, 0.6^2 / 3)``:

* ``n_spiking`` neurons recorded electrically: baseline log-rate ``log U(0.1, 0.5)`` counts per
  bin, counts ``~ Poisson(exp(baseline + loadings . z))``;
* ``n_imaged`` neurons imaged: their own spikes drawn as above, convolved with the calcium
  kernel ``exp(-t / decay)`` (``decay`` bins) over the trial, times a gain ``U(0.5, 1.5)`` per
  neuron, plus Gaussian noise of s.d. ``noise`` (the fluorescence, ``dF/F`` in arbitrary units,
  any sign).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state


def make_spikes_calcium(n_trials=64, n_time=30, *, n_spiking=12, n_imaged=10,
                        latent_timescale=6.0, decay=4.0, noise=0.2, random_state=None):
    """Simulated fluorescence, spike counts and behavior of the same trials.

    Parameters
    ----------
    n_trials, n_time : int, default=64, 30
        Trials and bins per trial.
    n_spiking, n_imaged : int, default=12, 10
        Neurons recorded as spike counts, and neurons imaged (other cells, the same latents).
    latent_timescale : float, default=6.0
        Time constant of the latents, in bins.
    decay : float, default=4.0
        Decay time constant of the calcium kernel, in bins.
    noise : float, default=0.2
        Standard deviation of the fluorescence noise.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    fluorescence : ndarray of shape (n_trials, n_time, n_imaged)
    spikes : ndarray of shape (n_trials, n_time, n_spiking)
    behavior : ndarray of shape (n_trials, n_time, 2)

    Examples
    --------
    >>> from sklearn_blend.datasets import make_spikes_calcium
    >>> fluorescence, spikes, behavior = make_spikes_calcium(n_trials=8, random_state=0)
    >>> fluorescence.shape, spikes.shape, behavior.shape
    ((8, 30, 10), (8, 30, 12), (8, 30, 2))
    """
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    rng = np.random.default_rng(seed)
    a = np.exp(-1.0 / latent_timescale)
    z = np.empty((n_trials, n_time, 3))
    z[:, 0] = rng.normal(size=(n_trials, 3))
    for t in range(1, n_time):
        z[:, t] = a * z[:, t - 1] + np.sqrt(1 - a**2) * rng.normal(size=(n_trials, 3))
    behavior = z @ rng.normal(0, np.sqrt(1 / 3), size=(3, 2))
    behavior += 0.1 * rng.normal(size=behavior.shape)

    def counts(n):
        baseline = np.log(rng.uniform(0.1, 0.5, size=n))
        loadings = rng.normal(0, 0.6 / np.sqrt(3), size=(3, n))
        return rng.poisson(np.exp(baseline + z @ loadings)).astype(np.float32)

    spikes = counts(n_spiking)
    imaged = counts(n_imaged)
    kernel = np.exp(-np.arange(n_time) / decay)
    calcium = np.stack([np.convolve(trace, kernel)[:n_time]
                        for trace in imaged.transpose(0, 2, 1).reshape(-1, n_time)])
    calcium = calcium.reshape(n_trials, n_imaged, n_time).transpose(0, 2, 1)
    fluorescence = calcium * rng.uniform(0.5, 1.5, size=n_imaged)
    fluorescence += noise * rng.normal(size=fluorescence.shape)
    return (fluorescence.astype(np.float32), spikes, behavior.astype(np.float32))

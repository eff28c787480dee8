"""Synthetic spikes-and-behavior families of the BLEND paper's appendix A.9.

The paper describes its generators in words only; these are our exact recipes. Shared parts:

* time ``t = 0 .. n_time - 1``; ``n_time`` bins per trial;
* each neuron ``i`` has a baseline log-rate ``c_i = log(r_i)``, ``r_i ~ U(0.02, 0.2)`` expected
  counts per bin;
* spike counts are Poisson draws of ``exp(log_rate)``; behavior is returned noise-free.

``"simple"``
    Behavior channel ``k`` of each trial is ``a sin(2 pi f t / n_time + phi)`` with
    ``a ~ U(0.5, 1.5)``, ``f ~ U(1, 3)`` cycles per trial, ``phi ~ U(0, 2 pi)``. Log-rates are
    a linear map of behavior: ``log_rate_i(t) = c_i + W_i . b(t)``, ``W_ik ~ N(0, 0.5^2)``.
``"hierarchical"``
    Behavior as in ``"simple"``. Neurons fall in three equal groups that see behavior through
    a causal moving average over 1, 5 and 10 bins (fast, medium, slow):
    ``log_rate_i(t) = c_i + W_i . mean(b(t - w + 1 .. t))``.
``"complex"``
    Decaying sinusoids: ``b_k(t) = a exp(-t / (s n_time)) sin(2 pi f t / n_time + phi)`` with
    ``s ~ U(0.3, 1)``. Neurons form five equal assemblies; assembly ``j`` has a loading
    ``u_j ~ N(0, 0.5^2 I)`` and its neurons ``W_i = u_j + N(0, 0.15^2 I)``. Log-rates add
    correlated noise: ``log_rate_i(t) = c_i + W_i . b(t) + 0.5 e_i(t)``, where ``e`` has unit
    variance, correlation 0.3 between neurons of one assembly (0 across) and AR(1) temporal
    correlation 0.8 from bin to bin. The noise is independent of behavior, so behavior explains
    only part of the activity.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from ..data.validation import check_in, check_number

KINDS = ("simple", "hierarchical", "complex")


def _sinusoids(rng, n_trials, n_time, n_behavior, *, decaying):
    t = np.arange(n_time)[None, :, None]
    shape = (n_trials, 1, n_behavior)
    amplitude = rng.uniform(0.5, 1.5, shape)
    frequency = rng.uniform(1.0, 3.0, shape)
    phase = rng.uniform(0.0, 2 * np.pi, shape)
    behavior = amplitude * np.sin(2 * np.pi * frequency * t / n_time + phase)
    if decaying:
        behavior *= np.exp(-t / (rng.uniform(0.3, 1.0, shape) * n_time))
    return behavior


def _causal_moving_average(x, width):
    if width == 1:
        return x
    cumulative = np.cumsum(x, axis=1)
    shifted = np.concatenate(
        [np.zeros_like(cumulative[:, :width]), cumulative[:, :-width]], axis=1
    )
    counts = np.minimum(np.arange(1, x.shape[1] + 1), width)[None, :, None]
    return (cumulative - shifted) / counts


def _groups(n_neurons, n_groups):
    return np.array_split(np.arange(n_neurons), n_groups)


def _assembly_noise(rng, n_trials, n_time, n_neurons, assemblies, *, within=0.3, ar=0.8):
    shared = np.zeros((n_trials, n_neurons))
    noise = np.empty((n_trials, n_time, n_neurons))
    innovation_scale = np.sqrt(1 - ar**2)
    state = None
    for t in range(n_time):
        for members in assemblies:
            shared[:, members] = rng.standard_normal((n_trials, 1))
        fresh = np.sqrt(within) * shared + np.sqrt(1 - within) * rng.standard_normal(
            (n_trials, n_neurons)
        )
        state = fresh if state is None else ar * state + innovation_scale * fresh
        noise[:, t] = state
    return noise


def make_synthetic(
    kind, n_trials=2869, n_time=140, n_neurons=182, n_behavior=2, random_state=None, *,
    n_sessions=1,
):
    """Simulate spike counts driven by behavior (appendix A.9 of the BLEND paper).

    Parameters
    ----------
    kind : {"simple", "hierarchical", "complex"}
        Family; the module docstring gives each recipe in full.
    n_trials, n_time, n_neurons, n_behavior : int
        Sizes; the defaults are the paper's (MC_Maze-sized). With several sessions,
        ``n_trials`` is per session and ``n_neurons`` may be a list (one count per session).
    random_state : int, RandomState instance or None
    n_sessions : int, default=1
        Sessions of the same family: each records its own neurons (its own count, baselines
        and readout weights) of the same behavior-driven dynamics, with its own trials.

    Returns
    -------
    X : ndarray of shape (n_trials, n_time, n_neurons), float32, or SessionTrials
        Poisson spike counts per bin; with ``n_sessions > 1`` a
        :class:`~sklearn_blend.SessionTrials` (keys ``0 .. n_sessions - 1``).
    b : ndarray of shape (n_trials, n_time, n_behavior), float32
        Behavior (with several sessions: every session's trials, in the order of ``X``).

    Examples
    --------
    >>> from sklearn_blend.datasets import make_synthetic
    >>> X, b = make_synthetic("hierarchical", n_trials=10, n_time=50, n_neurons=30,
    ...                       random_state=0)
    >>> X.shape, b.shape
    ((10, 50, 30), (10, 50, 2))
    >>> X, b = make_synthetic("simple", n_trials=10, n_time=50, n_neurons=[20, 30],
    ...                       random_state=0, n_sessions=2)
    >>> len(X), X.n_neurons, b.shape
    (20, (20, 30), (20, 50, 2))
    """
    check_in(kind, "kind", KINDS)
    check_number(n_sessions, "n_sessions", low=1, integer=True)
    counts = list(n_neurons) if isinstance(n_neurons, (list, tuple, np.ndarray)) \
        else [n_neurons] * n_sessions
    if len(counts) != n_sessions:
        raise ValueError(f"n_neurons lists {len(counts)} counts for n_sessions={n_sessions}; "
                         "give one count per session (or one int for all).")
    low = 1 if kind == "simple" else {"hierarchical": 3}.get(kind, 5)
    for name, value, minimum in (("n_trials", n_trials, 1), ("n_time", n_time, 1),
                                 *(("n_neurons", c, low) for c in counts),
                                 ("n_behavior", n_behavior, 1)):
        check_number(value, name, low=minimum, integer=True)
    rng = check_random_state(random_state)
    sessions = [_session(rng, kind, n_trials, n_time, c, n_behavior) for c in counts]
    if n_sessions == 1:
        return sessions[0]
    from ..data.trials import SessionTrials

    return (SessionTrials([spikes for spikes, _ in sessions]),
            np.concatenate([behavior for _, behavior in sessions]))


def _session(rng, kind, n_trials, n_time, n_neurons, n_behavior):
    """Spikes and behavior of one session of ``kind`` (the recipes of the module docstring)."""
    baseline = np.log(rng.uniform(0.02, 0.2, n_neurons))
    behavior = _sinusoids(rng, n_trials, n_time, n_behavior, decaying=kind == "complex")

    if kind == "simple":
        weights = rng.normal(0.0, 0.5, (n_behavior, n_neurons))
        log_rates = baseline + behavior @ weights
    elif kind == "hierarchical":
        log_rates = np.empty((n_trials, n_time, n_neurons))
        for members, width in zip(_groups(n_neurons, 3), (1, 5, 10)):
            weights = rng.normal(0.0, 0.5, (n_behavior, len(members)))
            log_rates[..., members] = (
                baseline[members] + _causal_moving_average(behavior, width) @ weights
            )
    else:
        assemblies = _groups(n_neurons, 5)
        weights = np.empty((n_behavior, n_neurons))
        for members in assemblies:
            loading = rng.normal(0.0, 0.5, (n_behavior, 1))
            weights[:, members] = loading + rng.normal(0.0, 0.15, (n_behavior, len(members)))
        noise = _assembly_noise(rng, n_trials, n_time, n_neurons, assemblies)
        log_rates = baseline + behavior @ weights + 0.5 * noise

    spikes = rng.poisson(np.exp(log_rates)).astype(np.float32)
    return spikes, behavior.astype(np.float32)

"""Evaluation metrics as pure NumPy functions (formulas as in ``nlb_tools.evaluation``)."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

__all__ = [
    "bits_per_spike", "bits_per_spike_per_neuron", "co_bps", "fp_bps", "vel_r2", "psth_r2",
    "poisson_log_likelihood_terms", "NLB_RIDGE_ALPHAS",
]


def poisson_log_likelihood_terms(rates, spikes):
    """Per-entry Poisson negative log-likelihood ``r - n log r + log n!``; NaN spikes skipped.

    ``rates`` are expected counts per bin and must be non-negative; exact zeros are replaced by
    ``1e-9`` as ``nlb_tools`` does.

    Examples
    --------
    >>> import numpy as np
    >>> spikes = np.array([0.0, 1.0, 2.0, np.nan])
    >>> terms = poisson_log_likelihood_terms(np.ones(4), spikes)  # 1 - n log 1 + log n!
    >>> np.round(terms, 3).tolist()  # the NaN entry counts 0
    [1.0, 1.0, 1.693, 0.0]
    """
    rates = np.asarray(rates, dtype=np.float64)
    spikes = np.asarray(spikes, dtype=np.float64)
    if rates.shape != spikes.shape:
        raise ValueError(
            f"rates and spikes must have the same shape, got {rates.shape} and {spikes.shape}."
        )
    if np.isnan(rates).any() or np.isinf(rates).any() or (rates < 0).any():
        raise ValueError("rates must be finite and non-negative expected counts per bin.")
    if np.isinf(spikes).any() or (spikes < 0).any():
        raise ValueError(
            "spikes must be non-negative counts per bin (NaN marks a missing entry); found "
            f"{int((spikes < 0).sum())} negative and {int(np.isinf(spikes).sum())} infinite."
        )
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
    gain, total = _likelihood_gain(rates, spikes)
    if total <= 0:
        raise ValueError("bits per spike is undefined when spikes contain no spikes.")
    return float(gain / total / np.log(2))


def bits_per_spike_per_neuron(rates, spikes):
    """Bits per spike of each neuron against its own mean rate, averaged over neurons.

    NEDS's encoding metric: for neuron ``n``, ``(NLL_null_n - NLL_model_n) / (spikes_n ln 2)``,
    then the mean over the neurons that spiked. Unlike :func:`bits_per_spike` (NLB's, which
    pools every neuron's log-likelihood and spikes in one ratio, so high-rate neurons weigh
    more), every neuron counts the same here, and a quiet neuron's ratio can be large either
    way. Arrays ``(..., n_neurons)``; NaN spikes are ignored.

    Examples
    --------
    >>> import numpy as np
    >>> spikes = np.array([[[0.0, 1.0], [2.0, 1.0]]])
    >>> rates = np.array([[[0.1, 1.0], [1.9, 1.0]]])
    >>> round(bits_per_spike_per_neuron(rates, spikes), 3)  # (0.926 + 0) / 2
    0.463
    """
    gain, totals = _likelihood_gain(rates, spikes, per_neuron=True)
    spiking = totals > 0
    if not spiking.any():
        raise ValueError("bits per spike is undefined when spikes contain no spikes.")
    return float(np.mean(gain[spiking] / totals[spiking] / np.log(2)))


def _likelihood_gain(rates, spikes, per_neuron=False):
    """``(NLL_null - NLL_model, spike count)`` summed over all entries, or per neuron (last
    axis); the null predicts each neuron's mean count over the other axes."""
    spikes = np.asarray(spikes, dtype=np.float64)
    if np.shape(rates) != spikes.shape:
        raise ValueError(
            f"rates and spikes must have the same shape, got {np.shape(rates)} and "
            f"{spikes.shape}."
        )
    axes = tuple(range(spikes.ndim - 1))
    null_rates = np.broadcast_to(np.nanmean(spikes, axis=axes, keepdims=True), spikes.shape)
    gain = (poisson_log_likelihood_terms(null_rates, spikes)
            - poisson_log_likelihood_terms(rates, spikes))
    sum_axes = axes if per_neuron else None
    return gain.sum(axis=sum_axes), np.nansum(spikes, axis=sum_axes)


# --- Neural Latents Benchmark metrics (same formulas as ``nlb_tools.evaluation``) -------------

#: ridge penalties NLB searches for velocity decoding
NLB_RIDGE_ALPHAS = np.logspace(-4, 0, 9)


def co_bps(eval_rates_heldout, eval_spikes_heldout):
    """Co-smoothing bits per spike: held-out neurons' rates (predicted from held-in spikes).

    Both arrays ``(n_trials, n_time, n_heldout)``, counts per bin.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> rates = rng.uniform(0.2, 5.0, size=(4, 10, 2))  # true rates of 2 held-out neurons
    >>> spikes = rng.poisson(rates).astype(float)
    >>> mean_rates = np.broadcast_to(spikes.mean(axis=(0, 1)), spikes.shape)
    >>> round(co_bps(mean_rates, spikes), 3)  # the null model itself scores 0
    0.0
    >>> co_bps(rates, spikes) > co_bps(mean_rates, spikes)
    True
    """
    return bits_per_spike(eval_rates_heldout, eval_spikes_heldout)


def fp_bps(eval_rates_forward, eval_spikes_forward):
    """Forward-prediction bits per spike over the bins after the window, all neurons.

    Arrays ``(n_trials, n_forward_bins, n_heldin + n_heldout)`` (held-in and held-out
    concatenated along the last axis, as ``nlb_tools`` stacks them).

    Examples
    --------
    >>> import numpy as np
    >>> spikes = np.array([[[0.0, 1.0], [2.0, 1.0]]])  # 2 forward bins, held-in + held-out
    >>> rates = np.array([[[0.1, 1.0], [1.9, 1.0]]])
    >>> round(fp_bps(rates, spikes), 3)  # the first neuron's 0.926 over all 4 spikes
    0.463
    """
    return bits_per_spike(eval_rates_forward, eval_spikes_forward)


def _drop_missing_behavior(rates, behavior):
    keep = ~np.isnan(behavior[:, 0])
    return rates[keep], behavior[keep]


def vel_r2(train_rates, train_behavior, eval_rates, eval_behavior, train_decode_mask=None,
           eval_decode_mask=None):
    """NLB velocity decoding R^2 from rates of all neurons.

    For each decode-mask column (one column of all trials by default), bins are pooled over
    trials, rows with NaN behavior dropped, a ``GridSearchCV(Ridge(), alpha in
    logspace(-4, 0, 9))`` (5-fold, unshuffled) is fit on the training trials' rates and scored
    (R^2 averaged over behavior channels) on the evaluation trials; the result is the mean over
    masks.

    Parameters
    ----------
    train_rates, eval_rates : ndarray (n_trials, n_time, n_neurons)
    train_behavior, eval_behavior : ndarray (n_trials, n_time, n_behavior)
    train_decode_mask, eval_decode_mask : ndarray (n_trials, n_masks) of bool, optional

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> weights = rng.normal(size=(5, 2))
    >>> train_rates = rng.gamma(2.0, 0.5, size=(20, 10, 5))
    >>> eval_rates = rng.gamma(2.0, 0.5, size=(8, 10, 5))
    >>> round(vel_r2(train_rates, train_rates @ weights, eval_rates, eval_rates @ weights), 3)
    1.0
    >>> unrelated = vel_r2(train_rates, rng.normal(size=(20, 10, 2)),
    ...                    eval_rates, rng.normal(size=(8, 10, 2)))
    >>> unrelated < 0.1
    True
    """
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV

    arrays = [np.asarray(a, dtype=np.float64)
              for a in (train_rates, train_behavior, eval_rates, eval_behavior)]
    train_rates, train_behavior, eval_rates, eval_behavior = arrays
    for split, rates, behavior in (("train", train_rates, train_behavior),
                                   ("eval", eval_rates, eval_behavior)):
        if rates.ndim != 3 or behavior.ndim != 3 or rates.shape[:2] != behavior.shape[:2]:
            raise ValueError(
                f"{split}_rates (n_trials, n_time, n_neurons) and {split}_behavior (n_trials, "
                f"n_time, n_behavior) must agree on trials and bins; got {rates.shape} and "
                f"{behavior.shape}."
            )
    if train_rates.shape[2] != eval_rates.shape[2]:
        raise ValueError(
            f"train_rates and eval_rates must have the same neurons, got "
            f"{train_rates.shape[2]} and {eval_rates.shape[2]}."
        )
    if train_decode_mask is None:
        train_decode_mask = np.ones((len(train_rates), 1), dtype=bool)
    if eval_decode_mask is None:
        eval_decode_mask = np.ones((len(eval_rates), 1), dtype=bool)
    for name, mask, rates in (("train_decode_mask", train_decode_mask, train_rates),
                              ("eval_decode_mask", eval_decode_mask, eval_rates)):
        if np.ndim(mask) != 2 or len(mask) != len(rates):
            raise ValueError(
                f"{name} must be (n_trials, n_masks) with {len(rates)} trials, got shape "
                f"{np.shape(mask)}."
            )
    if np.shape(train_decode_mask)[1] != np.shape(eval_decode_mask)[1]:
        raise ValueError("train_decode_mask and eval_decode_mask must have as many columns.")
    scores = []
    for column in range(train_decode_mask.shape[1]):
        pooled = [
            a[m[:, column]].reshape(-1, a.shape[-1])
            for a, m in ((train_rates, train_decode_mask), (train_behavior, train_decode_mask),
                         (eval_rates, eval_decode_mask), (eval_behavior, eval_decode_mask))
        ]
        fit_x, fit_y = _drop_missing_behavior(pooled[0], pooled[1])
        test_x, test_y = _drop_missing_behavior(pooled[2], pooled[3])
        if np.isnan(fit_x).any() or np.isnan(test_x).any():
            raise ValueError("rates contain NaN within the decoded bins.")
        decoder = GridSearchCV(Ridge(), {"alpha": NLB_RIDGE_ALPHAS}).fit(fit_x, fit_y)
        scores.append(decoder.score(test_x, test_y))
    return float(np.mean(scores))


def _shift_trial(rates, shift):
    """Delay (``shift > 0``) or advance a trial's rates by ``shift`` bins, padding with NaN."""
    if shift == 0:
        return rates
    pad = np.full((abs(shift), rates.shape[1]), np.nan)
    if shift > 0:
        return np.vstack([pad, rates[:-shift]])
    return np.vstack([rates[-shift:], pad])


def psth_r2(psth, eval_rates, eval_cond_idx, jitter=None):
    """NLB PSTH R^2: condition-averaged predicted rates against the true PSTHs.

    Parameters
    ----------
    psth : ndarray (n_conditions, n_time, n_neurons)
        True PSTHs; bins that are NaN (in the first neuron) are left out.
    eval_rates : ndarray (n_trials, n_time, n_neurons)
    eval_cond_idx : sequence of integer arrays
        Evaluation-trial indices of each condition (empty conditions are skipped).
    jitter : ndarray (n_trials,) of int, optional
        Per-trial shift in bins applied before averaging.

    Returns
    -------
    float
        ``r2_score`` with conditions x bins as rows and neurons as outputs, averaged uniformly
        over neurons.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> psth = rng.gamma(2.0, 0.5, size=(2, 6, 3))  # 2 conditions, 6 bins, 3 neurons
    >>> eval_rates = psth[[0, 0, 1]]  # trials 0 and 1 of condition 0, trial 2 of condition 1
    >>> cond_idx = [np.array([0, 1]), np.array([2])]
    >>> round(psth_r2(psth, eval_rates, cond_idx), 3)
    1.0
    >>> noisy = eval_rates + rng.normal(scale=0.5, size=eval_rates.shape)
    >>> psth_r2(psth, noisy, cond_idx) < 1.0
    True
    """
    from sklearn.metrics import r2_score

    psth = np.asarray(psth, dtype=np.float64)
    eval_rates = np.asarray(eval_rates, dtype=np.float64)
    if jitter is None:
        jitter = np.zeros(len(eval_rates), dtype=int)
    true_rows, predicted_rows = [], []
    for condition, trials in enumerate(eval_cond_idx):
        trials = np.asarray(trials)
        if trials.size == 0:
            continue
        predicted = np.mean([_shift_trial(eval_rates[i], int(jitter[i])) for i in trials], axis=0)
        keep = ~np.isnan(psth[condition, :, 0])
        if np.isnan(predicted[keep]).any():
            raise ValueError("rates contain NaN within the PSTH bins (check jitter).")
        true_rows.append(psth[condition][keep])
        predicted_rows.append(predicted[keep])
    return float(r2_score(np.vstack(true_rows), np.vstack(predicted_rows)))

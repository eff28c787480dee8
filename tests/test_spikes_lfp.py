"""make_spikes_lfp: simultaneous spikes, LFP and behavior for spike-to-LFP distillation."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from scipy.signal import butter, resample_poly, sosfiltfilt, welch
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.metrics import r2_score

from sklearn_blend.data.trials import SessionTrials
from sklearn_blend.datasets import make_spikes_lfp
from sklearn_blend.modalities import LFP, SPIKES

SMALL = dict(n_trials=12, n_time=40, n_neurons=15, n_channels=6)


def test_one_session_gives_plain_arrays_of_the_documented_shapes():
    data = make_spikes_lfp(**SMALL, random_state=0)
    assert data.spikes.shape == (12, 40, 15) and data.spikes.dtype == np.float32
    assert data.lfp.shape == (12, 400, 6) and data.lfp.dtype == np.float32  # 10 ms at 1 kHz
    assert data.behavior.shape == (12, 40, 2) and data.behavior.dtype == np.float32
    assert data.latents.shape == (12, 40, 7) and data.latents.dtype == np.float32
    np.testing.assert_array_equal(data.session, np.zeros(12))
    assert data.condition.shape == (12,) and set(data.condition) <= set(range(8))
    assert data.lfp_rate == 1000.0 and data.bin_size_ms == 10.0
    assert "make_spikes_lfp" in data.DESCR and "Recipe" in data.DESCR


def test_lfp_has_lfp_rate_times_bin_size_samples_per_bin():
    data = make_spikes_lfp(**SMALL, bin_size_ms=20, lfp_rate=250, line_freq=50.0,
                           random_state=0)
    assert data.spikes.shape == (12, 40, 15)
    assert data.lfp.shape == (12, 40 * 5, 6)
    # the LFP may run at the bin rate itself (then without line noise above its Nyquist)
    data = make_spikes_lfp(**SMALL, lfp_rate=100, line_freq=None, random_state=0)
    assert data.lfp.shape == (12, 40, 6) and np.isfinite(data.lfp).all()


def test_several_sessions_give_session_trials_aligned_with_behavior():
    data = make_spikes_lfp(3, n_trials=[5, 6, 7], n_time=30, n_neurons=[10, 20, 30],
                           n_channels=[4, 8, 12], random_state=0)
    spikes, lfp = data.spikes, data.lfp
    assert isinstance(spikes, SessionTrials) and isinstance(lfp, SessionTrials)
    assert spikes.modality is SPIKES and lfp.modality is LFP
    assert spikes.keys == lfp.keys == [0, 1, 2]
    assert len(spikes) == len(lfp) == 18
    assert spikes.n_neurons == (10, 20, 30) and lfp.n_neurons == (4, 8, 12)
    assert [a.shape for a in lfp.arrays] == [(5, 300, 4), (6, 300, 8), (7, 300, 12)]
    assert all(a.dtype == np.float32 for a in spikes.arrays + lfp.arrays)
    assert data.behavior.shape == (18, 30, 2) and data.latents.shape == (18, 30, 7)
    np.testing.assert_array_equal(data.session, np.repeat([0, 1, 2], [5, 6, 7]))
    np.testing.assert_array_equal(spikes.session, data.session)
    np.testing.assert_array_equal(lfp.session, data.session)
    rows = np.array([17, 0, 9, 5])
    assert spikes[rows].session.tolist() == lfp[rows].session.tolist() == [2, 0, 1, 1]
    assert lfp[rows].padded().shape == (4, 300, 12)
    # one int for every session
    data = make_spikes_lfp(2, n_trials=4, n_time=20, n_neurons=5, n_channels=3, random_state=0)
    assert data.spikes.n_neurons == (5, 5) and data.lfp.n_neurons == (3, 3)
    assert len(data.lfp) == 8 and data.behavior.shape == (8, 20, 2)


def _fields(data):
    out = {"behavior": data.behavior, "latents": data.latents, "condition": data.condition}
    for name in ("spikes", "lfp"):
        value = data[name]
        arrays = value.arrays if isinstance(value, SessionTrials) else [value]
        out.update({f"{name}{i}": a for i, a in enumerate(arrays)})
    return out


@pytest.mark.parametrize("n_sessions", [1, 2])
def test_random_state_makes_it_reproducible(n_sessions):
    a = _fields(make_spikes_lfp(n_sessions, **SMALL, random_state=3))
    b = _fields(make_spikes_lfp(n_sessions, **SMALL, random_state=np.random.RandomState(3)))
    c = _fields(make_spikes_lfp(n_sessions, **SMALL, random_state=4))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    for name in ("behavior", "latents", "spikes0", "lfp0"):
        assert not np.array_equal(a[name], c[name])


def test_spikes_are_counts_at_realistic_rates_and_lfp_is_a_finite_signed_signal():
    data = make_spikes_lfp(n_trials=40, n_channels=8, random_state=0)
    spikes = data.spikes
    assert spikes.min() == 0 and np.all(spikes == np.round(spikes))
    rates = spikes.mean(axis=(0, 1)) / (data.bin_size_ms / 1000)  # Hz per neuron
    assert 1.0 < rates.min() and rates.max() < 80.0 and 5.0 < rates.mean() < 25.0
    lfp = data.lfp
    assert np.isfinite(lfp).all() and (lfp < 0).any() and (lfp > 0).any()
    assert 10.0 < lfp.std() < 500.0  # microvolts


def _spectrum(lfp, fs):
    frequency, power = welch(lfp, fs=fs, nperseg=500, axis=1)  # 2 Hz resolution
    return frequency, power.mean(axis=(0, 2))


def _peak_ratio(frequency, power, f0):
    at = power[np.argmin(np.abs(frequency - f0))]
    around = power[(np.abs(frequency - f0) > 6) & (np.abs(frequency - f0) < 20)]
    return at / np.median(around)


def test_lfp_spectrum_has_line_noise_peaks_and_falls_with_frequency():
    data = make_spikes_lfp(n_trials=20, n_neurons=10, n_channels=8, random_state=0)
    frequency, power = _spectrum(data.lfp, data.lfp_rate)
    assert _peak_ratio(frequency, power, 60.0) > 20  # line noise
    assert _peak_ratio(frequency, power, 120.0) > 3  # its harmonic
    low = power[(frequency >= 2) & (frequency <= 10)].mean()
    high = power[(frequency >= 150) & (frequency <= 250)].mean()
    assert low > 10 * high  # 1/f
    # the line frequency is a parameter, and line noise can be left out
    frequency, power = _spectrum(make_spikes_lfp(n_trials=20, n_neurons=10, n_channels=8,
                                                 line_freq=50.0, random_state=0).lfp, 1000)
    assert _peak_ratio(frequency, power, 50.0) > 20 and _peak_ratio(frequency, power, 60) < 2
    frequency, power = _spectrum(make_spikes_lfp(n_trials=20, n_neurons=10, n_channels=8,
                                                 line_freq=None, random_state=0).lfp, 1000)
    assert _peak_ratio(frequency, power, 60.0) < 2


def test_sessions_share_the_task_but_mix_it_differently():
    data = make_spikes_lfp(2, n_trials=60, n_neurons=40, n_channels=16, lfp_rate=500,
                           lfp_noise=0.0, random_state=0)
    first, second = data.session == 0, data.session == 1
    latents, behavior = data.latents, data.behavior
    # the same velocity readout of the same latent dynamics
    readout = LinearRegression().fit(latents[first].reshape(-1, 7),
                                      behavior[first].reshape(-1, 2))
    assert readout.score(latents[second].reshape(-1, 7), behavior[second].reshape(-1, 2)) > 0.999
    means = [np.stack([behavior[s & (data.condition == c)].mean(0) for c in range(8)])
             for s in (first, second)]
    assert np.corrcoef(means[0].ravel(), means[1].ravel())[0, 1] > 0.7
    # ... seen by each session's LFP channels through a mixing of its own
    lfp = [a.reshape(len(a), 100, 5, 16).mean(2).reshape(-1, 16) for a in data.lfp.arrays]
    mixing = LinearRegression().fit(latents[first].reshape(-1, 7), lfp[0])
    assert mixing.score(latents[first].reshape(-1, 7), lfp[0]) > 0.3
    assert mixing.score(latents[second].reshape(-1, 7), lfp[1]) < 0.0


def _velocity_r2(data, n_train):
    """Per-bin ridge decoding of velocity, fit on the first n_train trials (the docstring's)."""
    q = int(round(data.lfp_rate * data.bin_size_ms / 1000))
    spikes = gaussian_filter1d(data.spikes.astype(float), 25 / data.bin_size_ms, axis=1)
    lfp = sosfiltfilt(butter(4, 50, fs=data.lfp_rate, output="sos"), data.lfp.astype(float),
                      axis=1)
    lfp = resample_poly(lfp, 1, q, axis=1)
    y = data.behavior
    scores = {}
    for name, X in (("spikes", spikes), ("lfp", lfp)):
        flat = X[:n_train].reshape(-1, X.shape[-1])
        mean, sd = flat.mean(0), flat.std(0)
        X = (X - mean) / sd
        model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(
            X[:n_train].reshape(-1, X.shape[-1]), y[:n_train].reshape(-1, 2))
        scores[name] = r2_score(y[n_train:].reshape(-1, 2),
                                model.predict(X[n_train:].reshape(-1, X.shape[-1])))
    return scores


@pytest.mark.parametrize("seed", [0, 1])
def test_lfp_carries_less_behavior_information_than_spikes(seed):
    config = dict(n_trials=100, n_channels=16, lfp_rate=500, random_state=seed)
    noisy = _velocity_r2(make_spikes_lfp(**config), 75)
    assert noisy["spikes"] > 0.5
    assert noisy["spikes"] > noisy["lfp"] + 0.15
    assert noisy["lfp"] > 0.05
    # without noise the LFP tells more, but still less than the spikes
    clean = _velocity_r2(make_spikes_lfp(**config, lfp_noise=0.0), 75)
    assert noisy["lfp"] + 0.05 < clean["lfp"] < clean["spikes"]


def test_degenerate_sizes_still_work():
    data = make_spikes_lfp(n_trials=1, n_time=1, n_neurons=1, n_channels=1, random_state=0)
    assert data.spikes.shape == (1, 1, 1) and data.lfp.shape == (1, 10, 1)
    assert np.isfinite(data.lfp).all() and np.isfinite(data.behavior).all()


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_sessions=0), ValueError, "n_sessions"),
    (dict(n_sessions=1.5), TypeError, "n_sessions"),
    (dict(n_sessions=2, n_neurons=[10, 20, 30]), ValueError, "n_neurons lists 3"),
    (dict(n_sessions=2, n_channels=[4]), ValueError, "n_channels lists 1"),
    (dict(n_sessions=3, n_trials=[5, 6]), ValueError, "n_trials lists 2"),
    (dict(n_sessions=2, n_neurons=[10, 0]), ValueError, "n_neurons"),
    (dict(n_trials=0), ValueError, "n_trials"),
    (dict(n_time=0), ValueError, "n_time"),
    (dict(n_channels=0), ValueError, "n_channels"),
    (dict(bin_size_ms=0), ValueError, "bin_size_ms"),
    (dict(lfp_rate=250), ValueError, "lfp_rate must be a multiple of the bin rate"),
    (dict(lfp_rate=50), ValueError, "lfp_rate must be a multiple of the bin rate"),
    (dict(lfp_rate=-1000), ValueError, "lfp_rate"),
    (dict(lfp_rate=100), ValueError, "line_freq"),
    (dict(line_freq=500.0), ValueError, "line_freq"),
    (dict(line_freq=0.0), ValueError, "line_freq"),
    (dict(lfp_noise=-0.1), ValueError, "lfp_noise"),
    (dict(random_state="seed"), TypeError, "random_state"),
])
def test_bad_arguments_raise_errors_naming_them(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_spikes_lfp(**{**dict(n_trials=2, n_time=5, n_neurons=3, n_channels=2), **kwargs})


# ---------------------------------------------------------------- harder LFP (issue: collapse)
QUIET = dict(n_trials=60, n_time=60, n_neurons=40, n_channels=8, lfp_rate=500, line_freq=None,
             lfp_noise=0.0, random_state=0)


def test_a_lag_delays_the_lfp_and_leaves_the_spikes():
    plain = make_spikes_lfp(**QUIET)
    late = make_spikes_lfp(**QUIET, lfp_lag_ms=100)
    np.testing.assert_array_equal(late.spikes, plain.spikes)
    shift = 10 * 5  # 10 bins of 5 samples
    np.testing.assert_allclose(late.lfp[:, shift:], plain.lfp[:, :-shift], atol=1e-3)
    assert not np.allclose(late.lfp, plain.lfp, atol=1e-3)


def _spikes_to_lfp_r2(data):
    """R2 of a ridge from smoothed spikes to the LFP at the bin rate (trials 0-44 -> 45-59);
    low, as the LFP is a slow, lagging mixture, but above 0 when the spikes share it."""
    spikes = gaussian_filter1d(data.spikes.astype(float), 2.5, axis=1)
    lfp = resample_poly(data.lfp.astype(float), 1, 5, axis=1)
    model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(
        spikes[:45].reshape(-1, spikes.shape[-1]), lfp[:45].reshape(-1, lfp.shape[-1]))
    return r2_score(lfp[45:].reshape(-1, lfp.shape[-1]),
                    model.predict(spikes[45:].reshape(-1, spikes.shape[-1])))


def test_private_latents_are_lfp_the_spikes_cannot_explain():
    shared = _spikes_to_lfp_r2(make_spikes_lfp(**QUIET))
    private = _spikes_to_lfp_r2(make_spikes_lfp(**QUIET, private_latents=3))
    assert shared > 0.1 and private < 0.0


def test_band_power_coupling_puts_behavior_in_a_beta_rhythm_not_the_raw_lfp():
    config = dict(QUIET, n_trials=100, n_time=100)
    linear = make_spikes_lfp(**config)
    rhythm = make_spikes_lfp(**config, coupling="band_power")
    frequency, power = _spectrum(rhythm.lfp, 500)
    assert _peak_ratio(frequency, power, 20.0) > 5
    assert _peak_ratio(*_spectrum(linear.lfp, 500), 20.0) < 2
    # a linear read of the raw LFP finds less velocity than where the coupling is linear
    assert _velocity_r2(rhythm, 75)["lfp"] < _velocity_r2(linear, 75)["lfp"] - 0.1


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(lfp_lag_ms=-10), ValueError, "lfp_lag_ms"),
    (dict(tuned_weight=-0.1), ValueError, "tuned_weight"),
    (dict(private_latents=1.5), TypeError, "private_latents"),
    (dict(coupling="power"), ValueError, "coupling must be 'linear' or 'band_power'"),
])
def test_bad_harder_settings_raise_errors_naming_them(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_spikes_lfp(**{**dict(n_trials=2, n_time=5, n_neurons=3, n_channels=2), **kwargs})


# ---------------------------------------------------------------- one probe over days (zero-shot)
def _zero_shot_r2(data):
    """R2 of a ridge from session 0's LFP (at the bin rate) to velocity, on session 0's held-out
    trials and on session 1 read as if it were session 0."""
    lfp = [resample_poly(a.astype(float), 1, 5, axis=1) for a in data.lfp.arrays]
    velocity = [data.behavior[data.session == s] for s in (0, 1)]
    width = lfp[0].shape[-1]
    model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(lfp[0][:45].reshape(-1, width),
                                                       velocity[0][:45].reshape(-1, 2))

    def r2(x, v):
        return r2_score(v.reshape(-1, 2), model.predict(x.reshape(-1, width)))

    return r2(lfp[0][45:], velocity[0][45:]), r2(lfp[1], velocity[1])


def test_one_probe_over_sessions_lets_a_model_of_one_session_read_another():
    config = dict(QUIET, tuned_weight=1.0)
    own = make_spikes_lfp(2, **config)
    same = make_spikes_lfp(2, **config, array_drift=0.0)
    drifted = make_spikes_lfp(2, **config, array_drift=0.5)
    # the option changes only the later sessions' spatial mixing: every draw is the same
    for data in (same, drifted):
        np.testing.assert_array_equal(data.spikes.arrays[1], own.spikes.arrays[1])
        np.testing.assert_array_equal(data.behavior, own.behavior)
        np.testing.assert_array_equal(data.lfp.arrays[0], own.lfp.arrays[0])
        assert not np.allclose(data.lfp.arrays[1], own.lfp.arrays[1])
    within, across = _zero_shot_r2(same)
    assert within > 0.5 and across > within - 0.15
    assert _zero_shot_r2(own)[1] < across - 0.3
    assert _zero_shot_r2(own)[1] < _zero_shot_r2(drifted)[1] < across
    assert "one probe, drift 0.5" in drifted.DESCR


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(array_drift=1.5), ValueError, "array_drift"),
    (dict(array_drift="0.1"), TypeError, "array_drift"),
    (dict(array_drift=0.1, n_channels=[2, 3]), ValueError, "same n_channels"),
])
def test_bad_array_settings_raise_errors_naming_them(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_spikes_lfp(2, **{**dict(n_trials=2, n_time=5, n_neurons=3, n_channels=2),
                              **kwargs})

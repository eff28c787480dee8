"""LFP preprocessing (sklearn_blend.lfp) and the NWB LFP loader (datasets._nwb_lfp)."""

import pickle
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_blend.datasets._nwb_lfp import load_nwb_lfp
from sklearn_blend.lfp import BandPower, LFPPreprocessor

LFP_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfp"

#: filters, re-referencing, resampling and z-scoring all off: each test turns on its step
OFF = dict(l_freq=None, h_freq=None, notch=None, common_average=False, target_rate=None,
           zscore=False)


def _sine(freq, n_samples, sfreq, phase=0.0):
    return np.sin(2 * np.pi * freq * np.arange(n_samples) / sfreq + phase)


def _amplitude(x, freq, sfreq, start=0):
    """Amplitude of the ``freq`` Hz component of 1-D ``x`` (least squares on sin and cos)."""
    t = (start + np.arange(len(x))) / sfreq
    basis = np.column_stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)])
    coefficients = np.linalg.lstsq(basis, x, rcond=None)[0]
    return float(np.hypot(*coefficients))


# -- LFPPreprocessor: what each step does --------------------------------------------------


def test_band_pass_keeps_the_band_and_attenuates_both_sides():
    sfreq, n = 1000.0, 4000
    X = np.stack([_sine(f, n, sfreq) for f in (1.0, 20.0, 150.0)], axis=-1)
    X = np.stack([X, 2 * X])  # two segments, the second twice as large
    pre = LFPPreprocessor(sfreq=sfreq, **{**OFF, "l_freq": 5.0, "h_freq": 50.0})
    out = pre.fit_transform(X)
    assert out.shape == X.shape and out.dtype == np.float32
    middle = slice(1000, 3000)  # away from the edges (the 5 Hz high-pass rings 185 samples)
    for k, gain in enumerate((1.0, 2.0)):
        kept = [_amplitude(out[k, middle, c], f, sfreq, 1000) / gain
                for c, f in enumerate((1.0, 20.0, 150.0))]
        assert kept[1] > 0.9
        assert kept[0] < 0.1 and kept[2] < 0.1
    assert pre.min_samples_ == 186


def test_notch_removes_line_noise_and_its_harmonic_and_keeps_40_hz():
    sfreq, n = 1000.0, 3000
    x = _sine(40.0, n, sfreq) + _sine(60.0, n, sfreq, 0.3) + 0.5 * _sine(120.0, n, sfreq)
    out = LFPPreprocessor(sfreq=sfreq, **{**OFF, "notch": 60.0}).fit_transform(x[None, :, None])
    middle = out[0, 1000:2000, 0]
    assert _amplitude(middle, 40.0, sfreq, 1000) > 0.95
    assert _amplitude(middle, 60.0, sfreq, 1000) < 0.05
    assert _amplitude(middle, 120.0, sfreq, 1000) < 0.05 * 0.5


def test_common_average_removes_what_all_channels_share():
    rng = np.random.default_rng(0)
    own = rng.standard_normal((3, 500, 4))
    shared = 10 * _sine(8.0, 500, 500.0)[None, :, None]
    out = LFPPreprocessor(sfreq=500.0, **{**OFF, "common_average": True}).fit_transform(
        own + shared)
    np.testing.assert_allclose(out, own - own.mean(axis=2, keepdims=True), atol=1e-5)
    for channel in range(4):  # amplitude 10 before, the noise's share of 8 Hz after
        assert _amplitude(out[0, :, channel], 8.0, 500.0) < 0.3


@pytest.mark.parametrize("sfreq, target, n_in, n_out", [
    (1000.0, 100.0, 2000, 200),
    (1250.0, 100.0, 2500, 200),   # factor 2/25
    (250.0, 1000.0, 500, 2000),   # up-sampling
])
def test_resampling_gives_the_right_length_and_keeps_an_in_band_sine(sfreq, target, n_in,
                                                                    n_out):
    X = np.repeat(_sine(7.0, n_in, sfreq)[None, :, None], 2, axis=2)
    pre = LFPPreprocessor(sfreq=sfreq, **{**OFF, "target_rate": target})
    out = pre.fit_transform(X)
    assert out.shape == (1, n_out, 2)
    assert pre.sfreq_out_ == target
    middle = slice(n_out // 4, 3 * n_out // 4)
    expected = _sine(7.0, n_out, target)[middle]
    np.testing.assert_allclose(out[0, middle, 0], expected, atol=0.02)


def test_a_rate_without_a_small_fraction_is_approximated_and_reported():
    pre = LFPPreprocessor(sfreq=1017.25, **{**OFF, "target_rate": 100.0})
    out = pre.fit_transform(np.zeros((2, 3000, 2)) + _sine(5.0, 3000, 1017.25)[:, None])
    up, down = pre._resample
    assert down <= 1000 and abs(pre.sfreq_out_ - 100.0) < 0.1
    assert pre.sfreq_out_ == pytest.approx(1017.25 * up / down)
    assert out.shape == (2, int(np.ceil(3000 * up / down)), 2)


def test_zscore_uses_training_statistics():
    rng = np.random.default_rng(1)
    scales = np.array([1.0, 5.0, 0.1])
    X_train = 3.0 + scales * rng.standard_normal((6, 200, 3))
    pre = LFPPreprocessor(sfreq=100.0, **{**OFF, "zscore": True})
    Z = pre.fit_transform(X_train)
    np.testing.assert_allclose(Z.mean(axis=(0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose(Z.std(axis=(0, 1)), 1, atol=1e-5)
    np.testing.assert_allclose(pre.mean_, X_train.mean(axis=(0, 1)))
    np.testing.assert_allclose(pre.scale_, X_train.std(axis=(0, 1)))
    np.testing.assert_allclose(pre.transform(X_train), Z, atol=1e-6)  # fit_transform == both
    shifted = pre.transform(X_train + 2.0 * pre.scale_)  # not re-centred: 2 sd above
    np.testing.assert_allclose(shifted.mean(axis=(0, 1)), 2.0, atol=1e-5)


def test_a_constant_channel_gets_scale_one_and_no_zscore_leaves_no_statistics():
    X = np.random.default_rng(2).standard_normal((2, 50, 3))
    X[:, :, 1] = 7.0
    pre = LFPPreprocessor(sfreq=100.0, **{**OFF, "zscore": True}).fit(X)
    assert pre.scale_[1] == 1.0
    assert np.all(pre.transform(X)[:, :, 1] == 0)
    off = LFPPreprocessor(sfreq=100.0, **OFF).fit(X)
    assert off.mean_ is None and off.scale_ is None
    np.testing.assert_allclose(off.transform(X), X.astype(np.float32))


def test_default_pipeline_on_a_long_recording_2d_in_2d_out():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20_000, 3)) + 5.0  # 20 s at 1 kHz: the 0.05 Hz high-pass fits
    pre = LFPPreprocessor(sfreq=1000.0)
    out = pre.fit_transform(X)
    assert out.shape == (2000, 3) and out.dtype == np.float32
    assert pre.min_samples_ == 18367 and pre.sfreq_out_ == 100.0
    np.testing.assert_allclose(out, pre.transform(X[None])[0], atol=1e-6)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-4)


# -- LFPPreprocessor: errors ---------------------------------------------------------------


def test_parameters_are_checked_in_fit_not_init():
    X = np.zeros((1, 100, 2))
    pre = LFPPreprocessor(sfreq=-1.0)  # stored as given
    assert pre.get_params()["sfreq"] == -1.0
    with pytest.raises(ValueError, match=r"sfreq must be in \(0, inf\], got -1.0"):
        pre.fit(X)
    with pytest.raises(TypeError, match="sfreq"):
        LFPPreprocessor()  # sfreq is required


@pytest.mark.parametrize("params, match", [
    (dict(l_freq=None, h_freq=500.0), r"h_freq=500.0 Hz must be below the Nyquist .* 500 Hz"),
    (dict(l_freq=600.0, h_freq=None), r"l_freq=600.0 Hz must be below the Nyquist"),
    (dict(l_freq=None, h_freq=None, notch=500.0), "notch=500.0 Hz must be below the Nyquist"),
    (dict(l_freq=30.0, h_freq=30.0), r"l_freq=30.0 Hz must be below h_freq=30.0 Hz"),
    (dict(l_freq=40.0, h_freq=10.0), r"l_freq=40.0 Hz must be below h_freq=10.0 Hz"),
    (dict(l_freq=0.0), r"l_freq must be in \(0, inf\]"),
    (dict(filter_order=0), r"filter_order must be in \[1, inf\]"),
    (dict(target_rate=-5.0), r"target_rate must be in \(0, inf\]"),
    (dict(zscore="yes"), "zscore must be one of"),
])
def test_bad_band_edges_and_parameters_are_clear_errors(params, match):
    with pytest.raises(ValueError, match=match):
        LFPPreprocessor(sfreq=1000.0, **params).fit(np.zeros((1, 5000, 2)))


def test_bad_input_is_a_clear_error_naming_x_and_the_shape():
    pre = LFPPreprocessor(sfreq=100.0, **OFF)
    X = np.zeros((2, 50, 3))
    for bad in (np.nan, np.inf, -np.inf):
        Y = X.copy()
        Y[1, 4, 2] = bad
        with pytest.raises(ValueError, match=r"X \(LFP \(n_segments, n_samples, n_channels\)\) "
                                             r"contains NaN or inf: 1 entries.*\(1, 4, 2\)"):
            pre.fit(Y)
    with pytest.raises(ValueError, match=r"3-D array of LFP.*got a 1-D array.*Reshape your"):
        pre.fit(np.zeros(50))
    with pytest.raises(ValueError, match=r"3-D array of LFP.*got a 4-D array of shape"):
        pre.fit(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="non-empty"):
        pre.fit(np.zeros((2, 0, 3)))
    with pytest.raises(ValueError, match="Complex"):
        pre.fit(X + 1j)
    from scipy import sparse

    with pytest.raises(TypeError, match="dense array of LFP"):
        pre.fit(sparse.csr_matrix(np.ones((5, 3))))
    pre.fit(X)
    with pytest.raises(ValueError, match=r"X has 4 features, but LFPPreprocessor is expecting "
                                         r"3 features as input \(channels"):
        pre.transform(np.zeros((2, 50, 4)))
    with pytest.raises(ValueError, match="contains NaN"):
        pre.transform(np.full((1, 50, 3), np.nan))


def test_segments_shorter_than_the_filter_padding_are_a_clear_error():
    pre = LFPPreprocessor(sfreq=1000.0, common_average=False)  # default 0.05 Hz high-pass
    with pytest.raises(ValueError, match=r"segments of 1000 sample\(s\) \(1 s\), too short for "
                                         r"the 0.05 Hz high-pass.*18366 samples \(18.366 s"
                                         r".*higher l_freq"):
        pre.fit(np.zeros((3, 1000, 1)))
    short = LFPPreprocessor(sfreq=1000.0, **{**OFF, "notch": 60.0})
    short.fit(np.zeros((1, 3000, 1)))
    with pytest.raises(ValueError, match=r"too short for the 60 Hz notch.*at least 736 samples"):
        short.transform(np.zeros((1, 500, 1)))


def test_common_average_needs_two_channels():
    with pytest.raises(ValueError, match=r"single channel.*common_average=False"):
        LFPPreprocessor(sfreq=100.0, **{**OFF, "common_average": True}).fit(np.ones((1, 9, 1)))


# -- BandPower -------------------------------------------------------------------------------


def test_band_power_of_a_20_hz_sine_is_mostly_in_the_beta_band():
    sfreq = 500.0
    rng = np.random.default_rng(4)
    X = np.stack([_sine(20.0, 3000, sfreq), _sine(6.0, 3000, sfreq)], axis=-1)
    X = X[None] + 0.01 * rng.standard_normal((2, 3000, 2))
    bp = BandPower(sfreq=sfreq, window_s=1.0, step_s=0.5, log=False)
    P = bp.fit_transform(X)
    assert P.shape == (2, 11, 2 * 5) and P.dtype == np.float32  # windows start at 0, .5, .. 5 s
    beta = P[:, :, 3]  # channel 0, band (13, 30)
    assert np.all(beta / P[:, :, :5].sum(axis=-1) > 0.95)
    assert np.all(np.argmax(P[:, :, 5:], axis=-1) == 1)  # channel 1: (4, 8)
    logged = BandPower(sfreq=sfreq, window_s=1.0, step_s=0.5).fit_transform(X)
    np.testing.assert_allclose(logged, np.log10(P), rtol=1e-5)
    # power, not amplitude: a sine of amplitude 2 has 4 times the power
    np.testing.assert_allclose(bp.transform(2 * X)[:, :, 3], 4 * beta, rtol=1e-3)


def test_band_power_shapes_2d_input_and_flat_channels():
    X = np.zeros((1234, 3))
    X[:, 0] = _sine(10.0, 1234, 250.0)
    P = BandPower(sfreq=250.0, bands=((8, 12), (12, 20)), window_s=0.4).fit_transform(X)
    assert P.shape == ((1234 - 100) // 100 + 1, 3 * 2)
    assert np.isfinite(P).all()  # log10 of zero power is floored
    assert P[:, 2:].max() < -30 and P[:, 0].min() > -3


@pytest.mark.parametrize("params, X, error, match", [
    (dict(bands=((1, 2),), window_s=0.1), np.zeros((1, 500, 1)), ValueError,
     r"band \(1, 2\) in bands holds none of the window's frequencies, which are 10 Hz apart"),
    (dict(bands=((30, 60),)), np.zeros((1, 500, 1)), ValueError,
     r"band \(30, 60\) in bands must satisfy 0 <= low < high <= the Nyquist .* 50 Hz"),
    (dict(bands=((5, 1),)), np.zeros((1, 500, 1)), ValueError, "0 <= low < high"),
    (dict(bands=(1, 2)), np.zeros((1, 500, 1)), TypeError, r"bands must be .* \(low, high\)"),
    (dict(window_s=0.01), np.zeros((1, 500, 1)), ValueError, "at least 2 samples"),
    (dict(), np.zeros((1, 50, 1)), ValueError,
     r"segments of 50 sample\(s\), shorter than one window of 100 samples"),
    (dict(), np.full((1, 500, 1), np.inf), ValueError, "contains NaN or inf"),
])
def test_band_power_errors(params, X, error, match):
    with pytest.raises(error, match=match):
        BandPower(sfreq=100.0, **params).fit(X)


def test_band_power_checks_channels_in_transform():
    bp = BandPower(sfreq=100.0).fit(np.zeros((1, 200, 2)))
    with pytest.raises(ValueError, match="X has 3 features, but BandPower is expecting 2"):
        bp.transform(np.zeros((1, 200, 3)))


# -- scikit-learn conventions ------------------------------------------------------------------

# A 2-D array is one recording: its rows are consecutive samples, not independent ones, so
# filtering couples them and band power has one row per window. The checks below that assume
# independent rows cannot hold for those configurations; every other check runs and passes.
ROWS_ARE_TIME = {
    "check_methods_subset_invariance": "rows are time samples of one recording",
    "check_methods_sample_order_invariance": "rows are time samples of one recording",
}
ONE_ROW_PER_WINDOW = {
    **ROWS_ARE_TIME,
    "check_transformer_general": "one output row per window, not per input row",
    "check_transformer_data_not_an_array": "one output row per window, not per input row",
}
CHECKED = [
    LFPPreprocessor(sfreq=100.0, **{**OFF, "zscore": True}),  # z-scoring alone: rows independent
    # filters that ring for 8 samples, so that the checks' 10-row arrays are long enough
    LFPPreprocessor(sfreq=100.0, l_freq=20.0, h_freq=30.0, target_rate=None),
    BandPower(sfreq=4.0, bands=((0, 1), (1, 2)), window_s=1.0),
]


def _expected_failed_checks(estimator):
    if isinstance(estimator, BandPower):
        return ONE_ROW_PER_WINDOW
    return ROWS_ARE_TIME if estimator.l_freq is not None else {}


@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


@pytest.mark.parametrize("estimator", [
    LFPPreprocessor(sfreq=1000.0, l_freq=1.0, h_freq=40.0, notch=60.0),
    BandPower(sfreq=1000.0, window_s=0.5),
])
def test_clone_params_and_pickle_round_trip_on_3d_data(estimator):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3, 2000, 4))
    params = estimator.get_params()
    fresh = clone(estimator)
    assert fresh.get_params() == params and not hasattr(fresh, "n_features_in_")
    fitted = fresh.fit(X)
    out = fitted.transform(X)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(X), out)
    assert restored.n_features_in_ == 4
    changed = clone(estimator).set_params(sfreq=500.0)
    assert changed.get_params()["sfreq"] == 500.0 and estimator.get_params() == params
    piped = make_pipeline(clone(estimator)).fit(X)
    np.testing.assert_array_equal(piped.transform(X), out)


def test_preprocessor_then_band_power_in_a_pipeline():
    X = np.random.default_rng(6).standard_normal((4, 3000, 3))
    pipe = make_pipeline(LFPPreprocessor(sfreq=1000.0, l_freq=1.0, h_freq=45.0),
                         BandPower(sfreq=100.0, bands=((1, 4), (4, 8), (8, 13), (13, 30)),
                                   window_s=1.0))
    assert pipe.fit_transform(X).shape == (4, 3, 3 * 4)


# -- NWB loader ------------------------------------------------------------------------------

SFREQ = 1000.0
N_TOTAL = 4000  # 4 s
FREQS = (5.0, 10.0, 15.0, 20.0)
TRIALS = ((0.5, 1.5), (1.5, 2.6), (2.7, 3.6))  # 1.0, 1.1, 0.9 s: cropped to 900 samples
SPIKES = (
    [0.505, 1.505, 2.705],                  # first bin of every trial
    [0.5199, 0.52, 1.6, 3.59, 3.601],       # edges: 0.52 starts bin 2; 3.601 is past trial 2
)


def _microvolts():
    """int16 data (µV) of 4 channels of sines, stored with conversion 1e-6 (to volts)."""
    return np.stack([np.round(100 * _sine(f, N_TOTAL, SFREQ)) for f in FREQS],
                    axis=-1).astype(np.int16)


def _write_lfp_nwb(path, *, where="acquisition", trials=True, units=True, timestamps=False):
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ecephys import LFP, ElectricalSeries

    nwb = NWBFile(session_description="lfp test", identifier="lfp-test",
                  session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    device = nwb.create_device(name="probe")
    group = nwb.create_electrode_group(name="shank0", description="shank", location="CA1",
                                       device=device)
    for _ in range(5):
        nwb.add_electrode(group=group, location="CA1")
    region = nwb.create_electrode_table_region(region=[1, 2, 3, 4], description="lfp channels")
    timing = (dict(timestamps=np.arange(N_TOTAL) / SFREQ) if timestamps
              else dict(rate=SFREQ, starting_time=0.0))
    lfp = ElectricalSeries(name="lfp", data=_microvolts(), electrodes=region, conversion=1e-6,
                           **timing)
    if where == "acquisition":
        nwb.add_acquisition(lfp)
    else:  # the ecephys module's LFP container, beside a raw series in acquisition
        module = nwb.create_processing_module(name="ecephys", description="processed")
        container = LFP()
        module.add(container)
        container.add_electrical_series(lfp)
        raw_region = nwb.create_electrode_table_region(region=[0], description="raw channel")
        nwb.add_acquisition(ElectricalSeries(name="raw", data=np.zeros((8000, 1)),
                                             electrodes=raw_region, rate=2000.0))
    if trials:
        for start, stop in TRIALS:
            nwb.add_trial(start_time=start, stop_time=stop)
    if units:
        for spike_times in SPIKES:
            nwb.add_unit(spike_times=spike_times)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def _volts():
    return (_microvolts() * 1e-6).astype(np.float32)


@pytest.mark.parametrize("timestamps", [False, True])
def test_nwb_trials_are_cut_and_cropped_to_the_shortest(tmp_path, timestamps):
    path = _write_lfp_nwb(tmp_path / "lfp.nwb", timestamps=timestamps)
    data = load_nwb_lfp(path)
    assert data.lfp.shape == (3, 900, 4) and data.lfp.dtype == np.float32
    assert data.sfreq == pytest.approx(SFREQ)
    np.testing.assert_array_equal(data.channel_ids, [1, 2, 3, 4])
    np.testing.assert_allclose(data.start_times, [0.5, 1.5, 2.7])
    np.testing.assert_array_equal(data.trial_ids, [0, 1, 2])
    volts = _volts()
    for k, first in enumerate((500, 1500, 2700)):
        np.testing.assert_allclose(data.lfp[k], volts[first:first + 900], rtol=1e-6)
    assert data.series == "acquisition/lfp" and data.preprocessor is None
    # the known spikes, in 10-ms bins from each trial's first sample
    assert data.spikes.shape == (3, 90, 2) and data.bin_size_ms == 10
    np.testing.assert_array_equal(data.spikes[:, 0, 0], [1, 1, 1])
    assert data.spikes[..., 0].sum() == 3
    assert data.spikes[0, 1, 1] == 1 and data.spikes[0, 2, 1] == 1  # 0.5199 and 0.52
    assert data.spikes[1, 10, 1] == 1 and data.spikes[2, 89, 1] == 1
    assert data.spikes[..., 1].sum() == 4  # 3.601 s is after trial 2's 900 ms
    np.testing.assert_array_equal(data.unit_ids, [0, 1])


def test_nwb_aligned_windows_and_their_errors(tmp_path):
    path = _write_lfp_nwb(tmp_path / "lfp.nwb")
    data = load_nwb_lfp(path, align_range_ms=(-100, 200), bin_size_ms=50)
    assert data.lfp.shape == (3, 300, 4) and data.spikes.shape == (3, 6, 2)
    np.testing.assert_allclose(data.start_times, [0.4, 1.4, 2.6])
    np.testing.assert_allclose(data.lfp[1], _volts()[1400:1700], rtol=1e-6)
    np.testing.assert_array_equal(data.spikes[:, 2, 0], [1, 1, 1])  # 105 ms into the window
    with pytest.raises(ValueError, match=r"reaches outside the recording.*trials \[0\]"):
        load_nwb_lfp(path, align_range_ms=(-600, 0))
    with pytest.raises(ValueError, match="align_field='go' is not a column"):
        load_nwb_lfp(path, align_field="go")


def test_nwb_segments_and_the_whole_recording(tmp_path):
    path = _write_lfp_nwb(tmp_path / "lfp.nwb")
    data = load_nwb_lfp(path, trials=False, segment_s=1.5, bin_size_ms=100)
    assert data.lfp.shape == (2, 1500, 4) and data.trial_ids is None  # 1 s remainder dropped
    np.testing.assert_allclose(data.start_times, [0.0, 1.5])
    np.testing.assert_allclose(data.lfp.reshape(-1, 4), _volts()[:3000], rtol=1e-6)
    assert data.spikes.shape == (2, 15, 2)
    np.testing.assert_array_equal(data.spikes[0, 5, 0], 1)  # 0.505 s
    np.testing.assert_array_equal(data.spikes[1, 0, 0], 1)  # 1.505 s
    assert data.spikes[..., 1].sum() == 3  # 0.5199, 0.52, 1.6
    whole = load_nwb_lfp(path, trials=False)
    assert whole.lfp.shape == (1, N_TOTAL, 4) and whole.spikes[..., 0].sum() == 3
    with pytest.raises(ValueError, match="needs trials=False"):
        load_nwb_lfp(path, segment_s=1.0)
    with pytest.raises(ValueError, match="between 1 sample and the recording's 4000"):
        load_nwb_lfp(path, trials=False, segment_s=5.0)


def test_nwb_lfp_container_in_ecephys_is_found_and_series_are_named(tmp_path):
    path = _write_lfp_nwb(tmp_path / "lfp.nwb", where="ecephys", units=False)
    data = load_nwb_lfp(path)  # preferred over the raw series in acquisition
    assert data.series == "processing/ecephys/LFP/lfp"
    assert data.lfp.shape == (3, 900, 4) and data.spikes is None and data.unit_ids is None
    same = load_nwb_lfp(path, series="processing/ecephys/LFP/lfp")
    np.testing.assert_array_equal(same.lfp, data.lfp)
    raw = load_nwb_lfp(path, series="raw")
    assert raw.sfreq == 2000.0 and raw.lfp.shape == (3, 1800, 1)
    np.testing.assert_array_equal(raw.channel_ids, [0])
    with pytest.raises(ValueError, match=r"no ElectricalSeries 'nope'; it holds "
                                         r"\['acquisition/raw', 'processing/ecephys/LFP/lfp'\]"):
        load_nwb_lfp(path, series="nope")


def test_nwb_loader_applies_a_preprocessor(tmp_path):
    path = _write_lfp_nwb(tmp_path / "lfp.nwb")
    pre = LFPPreprocessor(sfreq=SFREQ, l_freq=None, h_freq=40.0)
    data = load_nwb_lfp(path, preprocess=pre)
    assert data.lfp.shape == (3, 90, 4) and data.sfreq == 100.0
    assert data.spikes.shape == (3, 90, 2)  # one LFP sample per 10-ms bin
    assert data.preprocessor is not pre and data.preprocessor.n_features_in_ == 4
    assert not hasattr(pre, "n_features_in_")  # cloned, the argument is left unfitted
    again = load_nwb_lfp(path, preprocess=data.preprocessor)  # fitted: transform only
    np.testing.assert_array_equal(again.lfp, data.lfp)
    with pytest.raises(ValueError, match=r"sfreq=500.0 Hz but .* sampled at 1000 Hz"):
        load_nwb_lfp(path, preprocess=LFPPreprocessor(sfreq=500.0))
    with pytest.raises(TypeError, match="preprocess must be an LFPPreprocessor"):
        load_nwb_lfp(path, preprocess="zscore")


def test_nwb_loader_preprocesses_the_recording_before_cutting_it(tmp_path):
    path = _write_lfp_nwb(tmp_path / "lfp.nwb")
    pre = LFPPreprocessor(sfreq=SFREQ, l_freq=2.0, h_freq=40.0, zscore=False)
    data = load_nwb_lfp(path, preprocess=pre)  # preprocess_on="recording", the default
    whole = pre.fit_transform(_volts().astype(np.float64))  # the recording, filtered once
    assert data.lfp.shape == (3, 90, 4) and data.spikes.shape == (3, 90, 2)
    for k, first in enumerate((50, 150, 270)):
        np.testing.assert_allclose(data.lfp[k], whole[first:first + 90], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(data.start_times, [0.5, 1.5, 2.7])
    # each trial filtered on its own rings at its edges (a 2 Hz high-pass: 0.46 s)
    cut = load_nwb_lfp(path, preprocess=pre, preprocess_on="windows")
    np.testing.assert_array_equal(cut.spikes, data.spikes)
    edge = np.abs(cut.lfp[:, :10] - data.lfp[:, :10]).max()
    middle = np.abs(cut.lfp[:, 40:50] - data.lfp[:, 40:50]).max()
    assert edge > 10 * middle
    with pytest.raises(ValueError, match="preprocess_on"):
        load_nwb_lfp(path, preprocess=pre, preprocess_on="trials")


def test_preprocess_and_cut_windows_and_its_errors():
    from sklearn_blend.lfp import preprocess_and_cut

    recording = np.random.default_rng(0).standard_normal((3001, 2))
    pre = LFPPreprocessor(sfreq=1000.0, l_freq=None, h_freq=40.0, target_rate=300.0)
    windows, starts, fitted = preprocess_and_cut(pre, recording, np.array([0, 1001]), 1000)
    assert windows.shape == (2, 300, 2) and starts.tolist() == [0, 301]  # 300.3 rounded up
    np.testing.assert_array_equal(windows[1], fitted.transform(recording)[301:601])
    assert not hasattr(pre, "sfreq_out_")  # cloned
    with pytest.raises(ValueError, match=r"windows \[1\] .* reach outside"):
        preprocess_and_cut(pre, recording, np.array([0, 2500]), 1000)
    last, _, _ = preprocess_and_cut(pre, recording, np.array([2001]), 1000)  # to the end
    np.testing.assert_array_equal(last[0], fitted.transform(recording)[601:901])
    with pytest.raises(TypeError, match="starts must be a 1-D array of sample indices"):
        preprocess_and_cut(pre, recording, np.array([0.5]), 1000)
    with pytest.raises(ValueError, match=r"recording must be one continuous recording"):
        preprocess_and_cut(pre, recording[None], np.array([0]), 1000)
    with pytest.raises(TypeError, match="preprocessor must be an LFPPreprocessor"):
        preprocess_and_cut("lowpass", recording, np.array([0]), 1000)


def test_nwb_loader_errors(tmp_path, monkeypatch):
    path = _write_lfp_nwb(tmp_path / "lfp.nwb", trials=False)
    with pytest.raises(ValueError, match="no trial table.*trials=False"):
        load_nwb_lfp(path)
    with pytest.raises(FileNotFoundError, match="no NWB file"):
        load_nwb_lfp(tmp_path / "missing.nwb")
    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(ImportError, match=r"pip install sklearn-blend\[nwb\]"):
        load_nwb_lfp(path)


# -- real recordings -------------------------------------------------------------------------


def _real(name):
    if not (LFP_DATA / name).exists():
        pytest.skip(f"needs {LFP_DATA / name} (../shared/data/lfp beside the repo)")
    return LFP_DATA / name


def test_real_dbs_recording_in_segments():
    x = np.load(_real("neurodsp_sample_data_1.npy"))  # 10 s at 1 kHz, one channel
    X = x.reshape(5, 2000, 1)
    pre = LFPPreprocessor(sfreq=1000.0, l_freq=1.0, h_freq=40.0, common_average=False)
    Z = pre.fit_transform(X)
    assert Z.shape == (5, 200, 1) and np.isfinite(Z).all()
    np.testing.assert_allclose(Z.std(), 1.0, atol=1e-4)
    P = BandPower(sfreq=100.0, window_s=1.0).fit_transform(Z)
    assert P.shape == (5, 2, 5) and np.isfinite(P).all()


def test_real_kramer_trials():
    from scipy.io import loadmat

    y = loadmat(_real("kramer_spikes-LFP-1.mat"))["y"]  # 100 trials x 1000 samples at 1 kHz
    assert y.shape == (100, 1000)
    pre = LFPPreprocessor(sfreq=1000.0, l_freq=2.0, h_freq=40.0, common_average=False)
    Z = pre.fit_transform(y[:, :, None])
    assert Z.shape == (100, 100, 1) and np.isfinite(Z).all()
    np.testing.assert_allclose(Z.mean(), 0.0, atol=1e-4)
    np.testing.assert_allclose(Z.std(), 1.0, atol=1e-4)

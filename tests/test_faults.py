"""Faults are never silent: divergence and interrupts stop a fit and nothing is cached, and
strided views of the user's arrays are accepted everywhere."""

import numpy as np
import pandas as pd
import pytest

from sklearn_blend import BlendEstimator, BlendTeacher, NeuronEmbedding
from sklearn_blend.datasets import make_cell_types
from sklearn_blend.training import core, teacher_cache

from .helpers import TINY, TINY_GRU, TINY_LFADS, TINY_NEURONS


@pytest.mark.parametrize("make", [
    lambda: BlendEstimator(**dict(TINY, lr=1e6), random_state=0),
    lambda: BlendTeacher(**dict(TINY, lr=1e6), random_state=0),
])
def test_divergence_stops_the_fit_with_a_clear_error(trials, make):
    X, b = trials
    with pytest.raises(ValueError, match=r"training of the teacher diverged: .* Lower lr"):
        make().fit(X, b)
    assert teacher_cache._in_process == {}


def test_an_extreme_count_stops_the_fit_and_the_prediction(trials):
    X, b = trials
    extreme = X.copy()
    extreme[0, 0, 0] = 1e30
    with pytest.raises(ValueError, match="diverged"):
        BlendEstimator(**TINY, random_state=0).fit(extreme, b)
    est = BlendEstimator(strategy=None, **TINY, random_state=0).fit(X)
    with pytest.raises(ValueError, match="non-finite|overflow"):
        est.transform(extreme)


def test_divergence_of_a_neuron_model():
    data = make_cell_types(n_sessions=1, n_neurons=12, n_frames=64, random_state=0)
    with pytest.raises(ValueError, match="diverged"):
        NeuronEmbedding(strategy=None, **dict(TINY_NEURONS, lr=1e8), random_state=0).fit(
            data.X)


def test_an_interrupt_propagates_and_nothing_is_cached(trials, monkeypatch, tmp_path):
    X, b = trials
    calls = []
    original = core.ObjectiveNet.get_loss

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(core.ObjectiveNet, "get_loss", interrupted)
    for cache in (True, str(tmp_path)):
        calls.clear()
        with pytest.raises(KeyboardInterrupt, match="teacher was interrupted"):
            BlendEstimator(**TINY, teacher_cache=cache, random_state=0).fit(X, b)
    assert teacher_cache._in_process == {}
    assert not list(tmp_path.rglob("output.pkl"))
    # early stopping, which skorch also signals with KeyboardInterrupt, is not an interrupt
    monkeypatch.setattr(core.ObjectiveNet, "get_loss", original)
    settings = dict(TINY, max_epochs=30, early_stopping=True, n_iter_no_change=1)
    est = BlendEstimator(strategy=None, **settings, random_state=0).fit(X)
    assert est.n_iter_ < 30


def test_reversed_and_reordered_inputs_are_accepted(trials):
    X, b = trials
    est = BlendEstimator(**TINY, random_state=0).fit(X, b)
    np.testing.assert_allclose(est.transform(X[::-1]), est.transform(X)[::-1], rtol=1e-5,
                               atol=1e-6)
    BlendTeacher(**TINY, random_state=0).fit(X[:, ::-1], b[:, ::-1])
    BlendEstimator(**TINY, random_state=0).fit(X[..., ::-1], b[::-1])
    frame = pd.DataFrame(b[:, 0, :], columns=["vx", "vy"])[["vy", "vx"]]  # reordered columns
    teacher = BlendTeacher(**TINY, random_state=0).fit(X, frame)
    assert np.isfinite(teacher.predict_rates(X[::-1], frame[::-1])).all()


@pytest.mark.parametrize("n_heldout", [0, 2])
def test_smoothing_trials_shorter_than_the_kernel(n_heldout):
    from sklearn_blend.estimators.smoothing import SmoothingGLM

    X = np.random.default_rng(0).poisson(0.5, size=(6, 20, 5)).astype(float)
    model = SmoothingGLM(n_heldout=n_heldout).fit(X)  # a 72-bin kernel at the defaults
    assert model.predict_rates(X).shape == X.shape


def test_smoothing_uses_the_datas_bin_size():
    from sklearn.utils import Bunch

    from sklearn_blend.evaluation import evaluate_split

    rng = np.random.default_rng(0)
    data = Bunch(spikes=rng.poisson(1.0, size=(10, 12, 4)).astype(float),
                 spikes_heldout=rng.poisson(1.0, size=(10, 12, 2)).astype(float),
                 bin_size_ms=20)
    (result,) = evaluate_split(data, np.arange(8), np.arange(8, 10), ["smoothing"])
    assert result.model.bin_size_ms == 20 and result.test_rates.shape == (2, 12, 6)


def test_a_disk_cache_entry_of_other_data_is_never_used(trials, tmp_path):
    import shutil

    X, b = trials
    settings = dict(TINY, teacher_cache=str(tmp_path), random_state=0)
    first = BlendEstimator(**settings).fit(X, b)
    (entry,) = tmp_path.rglob("output.pkl")
    other = BlendEstimator(**settings).fit(X[:20], b[:20])
    other_entry = next(p for p in tmp_path.rglob("output.pkl") if p != entry)
    shutil.copyfile(other_entry, entry)  # a copied or planted entry under the first key
    with pytest.warns(UserWarning, match="fitted on other data or settings"):
        again = BlendEstimator(**settings).fit(X, b)
    assert again.teacher_._teacher_cache_key == first.teacher_._teacher_cache_key
    assert again.teacher_.n_iter_ == first.teacher_.n_iter_
    np.testing.assert_array_equal(again.transform(X), first.transform(X))
    assert other.teacher_._teacher_cache_key != first.teacher_._teacher_cache_key
    with pytest.raises(ValueError, match="teacher_cache='' names no directory"):
        BlendEstimator(**dict(settings, teacher_cache="")).fit(X, b)


def test_perbin_drops_missing_targets_with_their_weights():
    from sklearn.linear_model import Ridge

    from sklearn_blend import PerBin

    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 5, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=(6, 5))
    weight = rng.uniform(0.5, 2.0, size=(6, 5))
    y_missing = y.copy()
    y_missing[0, :2] = np.nan
    keep = ~np.isnan(y_missing.ravel())
    model = PerBin(Ridge()).fit(X, y_missing, sample_weight=weight)
    reference = Ridge().fit(X.reshape(-1, 3)[keep], y.ravel()[keep],
                            sample_weight=weight.ravel()[keep])
    np.testing.assert_allclose(model.estimator_.coef_, reference.coef_)
    expected = reference.score(X.reshape(-1, 3)[keep], y.ravel()[keep],
                               sample_weight=weight.ravel()[keep])
    assert model.score(X, y_missing, sample_weight=weight) == pytest.approx(expected)
    with pytest.raises(ValueError, match="one weight per bin"):
        model.score(X, y, sample_weight=np.ones(7))


def test_metrics_reject_negative_counts_and_mismatched_shapes():
    from sklearn_blend.metrics import bits_per_spike, co_bps, vel_r2

    rates = np.ones((2, 3, 4))
    spikes = np.ones((2, 3, 4))
    spikes[0, 0, 0] = -1
    with pytest.raises(ValueError, match="non-negative counts"):
        co_bps(rates, spikes)
    with pytest.raises(ValueError, match="same shape"):
        bits_per_spike(np.ones((2, 3, 5)), np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="agree on trials and bins"):
        vel_r2(np.ones((4, 3, 2)), np.ones((4, 2, 1)), np.ones((2, 3, 2)), np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match="same neurons"):
        vel_r2(np.ones((4, 3, 2)), np.ones((4, 3, 1)), np.ones((2, 3, 5)), np.ones((2, 3, 1)))
    with pytest.raises(ValueError, match="train_decode_mask must be"):
        vel_r2(np.ones((4, 3, 2)), np.ones((4, 3, 1)), np.ones((2, 3, 2)), np.ones((2, 3, 1)),
               train_decode_mask=np.ones((3, 1), bool))


def test_complex_behavior_and_activity_are_rejected(trials):
    from sklearn_blend import Recordings

    X, b = trials
    with pytest.raises(TypeError, match="complex"):
        BlendTeacher(**TINY).fit(X, b + 1j)
    with pytest.raises(TypeError, match="complex"):
        BlendTeacher(**TINY).fit(X, pd.DataFrame({"v": b[:, 0, 0] + 1j}))
    with pytest.raises(TypeError, match="complex"):
        Recordings([np.ones((10, 3)) + 1j])


@pytest.mark.parametrize("magnitude", [1e160, 1e-300])
def test_behavior_of_extreme_magnitude_keeps_its_information(trials, magnitude):
    from sklearn_blend.data.behavior import BehaviorEncoding, read_behavior

    X, b = trials
    b = b.astype(np.float64)
    raw = read_behavior(b * magnitude, X)
    encoded = BehaviorEncoding(raw).transform(raw, "b")
    reference = BehaviorEncoding(read_behavior(b, X)).transform(read_behavior(b, X), "b")
    np.testing.assert_allclose(encoded, reference, rtol=1e-5, atol=1e-6)


def test_loaders_name_a_file_they_cannot_read(tmp_path):
    from sklearn_blend.datasets import load_nlb_h5, load_nwb

    for suffix, load in ((".h5", load_nlb_h5), (".nwb", load_nwb)):
        broken = tmp_path / f"broken{suffix}"
        broken.write_bytes(b"not an HDF5 file")
        with pytest.raises(OSError, match=f"cannot read .*broken{suffix}"):
            load(broken)


def test_progress_bars_stay_out_of_logs(trials, capsys):
    X, b = trials
    BlendEstimator(**TINY, verbose=1, random_state=0).fit(X, b)  # captured: not a terminal
    captured = capsys.readouterr()
    assert "teacher" not in captured.err and "student" not in captured.err


@pytest.mark.parametrize("make", [
    lambda seed: BlendEstimator(**TINY, random_state=seed),
    lambda seed: BlendEstimator(base="gru", **TINY_GRU, random_state=seed),
    lambda seed: BlendEstimator(base="lfads", **TINY_LFADS, random_state=seed),
])
def test_seeded_fits_in_threads_equal_the_same_fits_in_sequence(trials, make):
    from concurrent.futures import ThreadPoolExecutor

    import torch

    X, b = trials

    def fit(seed):
        return make(seed).set_params(teacher_cache=False).fit(X, b).transform(X)

    sequential = [fit(seed) for seed in range(4)]
    state = torch.get_rng_state()
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(fit, range(4)))
    for one, other in zip(sequential, threaded):
        np.testing.assert_array_equal(one, other)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is left alone


def test_ndt_and_neuprint_train_on_their_own_generator(trials):
    from sklearn_blend.seeding import draws_from_fit_generator

    X, b = trials
    assert draws_from_fit_generator(BlendEstimator(**TINY).fit(X, b).student_)
    assert draws_from_fit_generator(
        BlendEstimator(**dict(TINY, base="neuprint")).fit(X, b).student_)
    lfads = BlendEstimator(base="gru", **TINY_GRU).fit(X, b)
    assert not draws_from_fit_generator(lfads.student_)  # nn.GRU draws from torch's own

"""NLB-style use: held-out neurons, forward prediction, metrics identical to nlb_tools."""

import numpy as np
import pytest
from nlb_tools import evaluation as nlb
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from sklearn_blend import BlendEstimator
from sklearn_blend.datasets import load_mc_maze_small, make_synthetic
from sklearn_blend.metrics import (
    co_bps,
    co_bps_scorer,
    fp_bps,
    nlb_velocity_decoder,
    psth_r2,
    vel_r2,
    vel_r2_scorer,
)
from sklearn_blend.estimators.smoothing import SmoothingGLM

pytestmark = pytest.mark.filterwarnings("ignore:early stopping needs")


@pytest.fixture(scope="module")
def nlb_trials():
    """20 trials x 12 bins: 6 held-in + 2 held-out neurons, 3 forward bins, 2-D behavior."""
    X, b = make_synthetic("simple", n_trials=20, n_time=15, n_neurons=8, random_state=0)
    return X[:, :12], b[:, :12], X[:, 12:]


def test_heldout_neurons_and_forward_bins(nlb_trials, tiny):
    X, b, forward = nlb_trials
    est = BlendEstimator(n_heldout=2, forward_bins=3, random_state=0, **tiny)
    est.fit(X, b, spikes_forward=forward)
    heldin = X[..., :6]
    rates = est.predict_rates(heldin)
    assert rates.shape == (20, 12, 8)
    # the held-out columns of X are never read
    scrambled = X.copy()
    scrambled[..., 6:] = 99
    np.testing.assert_array_equal(est.predict_rates(scrambled), rates)
    with_forward = est.predict_rates(heldin, forward=True)
    assert with_forward.shape == (20, 15, 8)
    np.testing.assert_allclose(with_forward[:, :12], rates, rtol=1e-6)
    assert est.transform(X).shape == (20, 12, 8)
    assert np.isfinite(est.score(X))
    assert est.teacher_.predict_rates(heldin, b, forward=True).shape == (20, 15, 8)
    assert np.isfinite(est.teacher_.score(X, b))
    assert est.student_.n_inputs == 6 and est.student_.n_outputs == 8
    assert est.student_.base.config.n_inputs == 6  # the NDT inside the adapter


def test_heldout_and_forward_errors(nlb_trials, tiny):
    X, b, forward = nlb_trials
    with pytest.raises(ValueError, match=r"needs spikes_forward.*\(20, 3, 8\)"):
        BlendEstimator(forward_bins=3, **tiny).fit(X, b)
    with pytest.raises(ValueError, match=r"spikes_forward must be .* = \(20, 3, 8\)"):
        BlendEstimator(forward_bins=3, **tiny).fit(X, b, spikes_forward=forward[:, :2])
    with pytest.raises(ValueError, match="spikes_forward was given but forward_bins=0"):
        BlendEstimator(**tiny).fit(X, b, spikes_forward=forward)
    with pytest.raises(ValueError, match="n_heldout=8 must leave at least one held-in"):
        BlendEstimator(n_heldout=8, **tiny).fit(X, b)
    est = BlendEstimator(n_heldout=2, random_state=0, **tiny).fit(X, b)
    with pytest.raises(ValueError, match="score needs the held-out neurons"):
        est.score(X[..., :6])
    with pytest.raises(ValueError, match=r"expecting 8 features as input \(or the 6 held-in"):
        est.predict_rates(X[..., :5])
    with pytest.raises(ValueError, match="forward=True needs a model fitted with forward_bins"):
        est.predict_rates(X, forward=True)


def test_search_with_forward_spikes_and_nlb_scorers(nlb_trials, tiny):
    X, b, forward = nlb_trials
    pipe = Pipeline([
        ("blend", BlendEstimator(n_heldout=2, forward_bins=3, random_state=0, **tiny)),
        ("decoder", nlb_velocity_decoder()),
    ])
    search = GridSearchCV(pipe, {"blend__alpha": [0.3, 0.7]}, cv=KFold(2),
                          scoring={"co-bps": co_bps_scorer, "vel-R2": vel_r2_scorer},
                          refit="vel-R2")
    search.fit(X, b, blend__spikes_forward=forward)
    for name in ("co-bps", "vel-R2"):
        assert np.all(np.isfinite(search.cv_results_[f"mean_test_{name}"]))
    with pytest.raises(TypeError, match="Pipeline whose last step is PerBin"):
        vel_r2_scorer(search.best_estimator_["blend"], X, b)


def test_metrics_equal_nlb_tools_on_random_arrays():
    rng = np.random.default_rng(0)
    train_rates = rng.gamma(2.0, 0.3, (30, 20, 10))
    eval_rates = rng.gamma(2.0, 0.3, (12, 20, 10))
    train_behavior = rng.normal(size=(30, 20, 2))
    eval_behavior = rng.normal(size=(12, 20, 2))
    train_behavior[0, :3] = np.nan  # NLB drops bins without behavior
    spikes = rng.poisson(eval_rates).astype(float)
    assert co_bps(eval_rates, spikes) == pytest.approx(
        nlb.bits_per_spike(eval_rates.copy(), spikes), abs=1e-6)
    assert fp_bps(eval_rates[:, :5], spikes[:, :5]) == pytest.approx(
        nlb.bits_per_spike(eval_rates[:, :5].copy(), spikes[:, :5]), abs=1e-6)
    masks = (np.ones((30, 1), bool), np.ones((12, 1), bool))
    assert vel_r2(train_rates, train_behavior, eval_rates, eval_behavior) == pytest.approx(
        nlb.velocity_decoding(train_rates, train_behavior, masks[0], eval_rates,
                              eval_behavior, masks[1]), abs=1e-6)
    two_masks = (rng.random((30, 2)) < 0.6, rng.random((12, 2)) < 0.6)
    assert vel_r2(train_rates, train_behavior, eval_rates, eval_behavior,
                  *two_masks) == pytest.approx(
        nlb.velocity_decoding(train_rates, train_behavior, two_masks[0], eval_rates,
                              eval_behavior, two_masks[1]), abs=1e-6)
    psth = rng.gamma(2.0, 0.3, (3, 20, 10))
    psth[:, :2] = np.nan
    psth[:, -2:] = np.nan
    conditions = [np.array([0, 1, 2, 3]), np.array([], dtype=int), np.array([4, 5, 6])]
    jitter = rng.integers(-2, 3, 12)
    assert psth_r2(psth, eval_rates, conditions, jitter) == pytest.approx(
        nlb.eval_psth(psth, eval_rates, conditions, jitter), abs=1e-6)


def test_metrics_equal_nlb_tools_on_mc_maze_small():
    data = load_mc_maze_small()
    train, test = np.arange(60), np.arange(60, 75)
    X = np.concatenate([data.spikes, data.spikes_heldout], axis=-1)
    rates = SmoothingGLM().fit(X[train]).predict_rates(X)  # smoothed counts of all neurons
    heldout = slice(107, None)
    assert co_bps(rates[test, :, heldout], X[test, :, heldout]) == pytest.approx(
        nlb.bits_per_spike(rates[test, :, heldout].copy(), X[test, :, heldout]), abs=1e-6)
    forward = np.concatenate([data.spikes_forward, data.spikes_heldout_forward], axis=-1)
    forward_rates = np.broadcast_to(forward[train].mean(axis=(0, 1)), forward[test].shape)
    assert fp_bps(forward_rates, forward[test]) == pytest.approx(
        nlb.bits_per_spike(forward_rates.copy(), forward[test]), abs=1e-6)
    b = data.behavior
    ours = vel_r2(rates[train], b[train], rates[test], b[test])
    theirs = nlb.velocity_decoding(rates[train], b[train], np.ones((60, 1), bool), rates[test],
                                   b[test], np.ones((15, 1), bool))
    assert ours == pytest.approx(theirs, abs=1e-6)
    assert ours > 0.2  # smoothed rates do carry velocity


def test_smoothing_baseline_predicts_heldout_neurons():
    data = load_mc_maze_small()
    X = np.concatenate([data.spikes, data.spikes_heldout[..., :4]], axis=-1)
    model = SmoothingGLM(n_heldout=4).fit(X[:60])
    assert len(model.glms_) == 4
    assert model.score(X[60:]) > 0.02
    assert model.transform(X[60:, :, :107]).shape == (15, 140, 111)

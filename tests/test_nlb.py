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
    fp_bps,
    psth_r2,
    vel_r2,
)
from sklearn_blend.scoring import co_bps_scorer, nlb_velocity_decoder, vel_r2_scorer
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


# --- NLB'21 submission files (sklearn_blend.nlb) ------------------------------------------------
# nlb_tools 0.0.4 is read, not trusted blindly: its writer (make_tensors.save_to_h5), reader and
# scorer (evaluation.evaluate) run as they are under numpy 2 / pandas 3; only NWBDataset.resample
# fails under pandas 3 (a read-only array), so its 1 ms tensors are summed to 5 ms here instead.

import inspect  # noqa: E402
from pathlib import Path  # noqa: E402

import h5py  # noqa: E402
import joblib  # noqa: E402
from nlb_tools import make_tensors  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.utils import Bunch  # noqa: E402

from sklearn_blend import BlendTeacher, PerBin  # noqa: E402
from sklearn_blend import nlb as submission_module  # noqa: E402
from sklearn_blend.cli import main  # noqa: E402
from sklearn_blend.nlb import (  # noqa: E402
    FORWARD_MS,
    NLB_DATASETS,
    group_name,
    load_mc_maze_small_test,
    load_nlb_test_nwb,
    make_submission,
)

from .helpers import write_small_nwb  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mc_maze_small"
TEST_NWB = SHARED / "sub-Jenkins_ses-small_desc-test_ecephys.nwb"
needs_test_nwb = pytest.mark.skipif(not TEST_NWB.exists(),
                                    reason="needs ../shared/data beside the repo")
#: nlb_tools' NWBDataset uses pandas keywords that pandas 3 deprecates
pandas_deprecations = pytest.mark.filterwarnings("ignore:The (copy|inplace) keyword")
NAMES = ["eval_rates_heldin", "eval_rates_heldout", "eval_rates_heldin_forward",
         "eval_rates_heldout_forward", "train_rates_heldin", "train_rates_heldout"]
TRAIN, EVAL = np.arange(60), np.arange(60, 75)  # training trials posing as evaluation trials


@pytest.fixture(scope="module")
def maze():
    """Bundled MC_Maze_Small: all neurons, forward bins, behavior, held-in spikes."""
    data = load_mc_maze_small()
    X = np.concatenate([data.spikes, data.spikes_heldout], axis=-1)
    forward = np.concatenate([data.spikes_forward, data.spikes_heldout_forward], axis=-1)
    return Bunch(X=X, forward=forward, behavior=data.behavior, heldin=data.spikes)


@pytest.fixture(scope="module")
def maze_model(maze):
    """A plain NDT (no teacher) fitted for one epoch on 16 trials: 107 + 35 neurons, 40 bins."""
    return BlendEstimator(base="ndt", strategy=None, n_heldout=35, forward_bins=40,
                          hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=1, batch_size=8,
                          early_stopping=False, random_state=0).fit(
        maze.X[:16], spikes_forward=maze.forward[:16])


class FakeModel:
    """Duck-typed fitted model: make_submission needs nothing more than this."""

    def __init__(self, n_heldin=107, n_heldout=35, forward_bins=40, n_time=140, value=0.1):
        self.n_heldout, self.forward_bins, self.value = n_heldout, forward_bins, value
        self.n_features_in_, self.n_time_in_ = n_heldin + n_heldout, n_time

    def fit(self, X):
        return self

    def predict_rates(self, X, *, forward=False):
        n_time = X.shape[1] + (self.forward_bins if forward else 0)
        return np.full((len(X), n_time, self.n_features_in_), self.value)


def _read(path):
    """``{group: {name: (shape, dtype, compression, values)}}`` of an h5 file."""
    with h5py.File(path, "r") as f:
        return {group: {name: (d.shape, d.dtype, d.compression, d.chunks, d[()])
                        for name, d in f[group].items()} for group in f}


def test_submission_layout_equals_nlb_tools_writer(maze, maze_model, tmp_path):
    ours = tmp_path / "ours.h5"
    written = make_submission(maze_model, maze.heldin[EVAL], ours, X_train=maze.heldin[TRAIN])
    theirs = tmp_path / "theirs.h5"
    # nlb_tools' own writer, given the same rates as float64 (it stores float32 itself)
    make_tensors.save_to_h5({g: {k: v.astype(np.float64) for k, v in arrays.items()}
                             for g, arrays in written.items()}, str(theirs))
    a, b = _read(ours), _read(theirs)
    assert list(a) == list(b) == ["mc_maze_small"]
    assert sorted(a["mc_maze_small"]) == sorted(b["mc_maze_small"]) == sorted(NAMES)
    for name in NAMES:
        *layout_a, values_a = a["mc_maze_small"][name]
        *layout_b, values_b = b["mc_maze_small"][name]
        assert layout_a == layout_b  # shape, float32, gzip, chunks
        np.testing.assert_array_equal(values_a, values_b)
    shapes = {name: a["mc_maze_small"][name][0] for name in NAMES}
    assert shapes == {"eval_rates_heldin": (15, 140, 107), "eval_rates_heldout": (15, 140, 35),
                      "eval_rates_heldin_forward": (15, 40, 107),
                      "eval_rates_heldout_forward": (15, 40, 35),
                      "train_rates_heldin": (60, 140, 107), "train_rates_heldout": (60, 140, 35)}
    rates = maze_model.predict_rates(maze.heldin[EVAL], forward=True)
    np.testing.assert_array_equal(a["mc_maze_small"]["eval_rates_heldout_forward"][-1],
                                  rates[:, 140:, 107:])


def _target(maze, path):
    """An nlb_tools eval target (make_eval_target_tensors' layout) for the EVAL trials."""
    target = {"mc_maze_small": {
        "eval_spikes_heldout": maze.X[EVAL][..., 107:],
        "train_behavior": maze.behavior[TRAIN],
        "eval_behavior": maze.behavior[EVAL],
        "eval_spikes_heldin_forward": maze.forward[EVAL][..., :107],
        "eval_spikes_heldout_forward": maze.forward[EVAL][..., 107:],
    }}
    make_tensors.save_to_h5(target, str(path))
    return str(path)


def test_nlb_tools_evaluate_scores_our_file_like_our_metrics(maze, maze_model, tmp_path):
    path = tmp_path / "submission.h5"
    make_submission(maze_model, maze.heldin[EVAL], path, X_train=maze.heldin[TRAIN])
    [result] = nlb.evaluate(_target(maze, tmp_path / "target.h5"), str(path))
    scores = result["mc_maze_scaling_split"]
    assert sorted(scores) == ["[100] co-bps", "[100] fp-bps", "[100] vel R2"]
    rates = maze_model.predict_rates(maze.heldin[EVAL], forward=True)
    train_rates = maze_model.predict_rates(maze.heldin[TRAIN])
    # the file holds float32, and so do the model's rates: the scores agree to rounding
    assert scores["[100] co-bps"] == pytest.approx(
        co_bps(rates[:, :140, 107:], maze.X[EVAL][..., 107:]), rel=1e-6)
    assert scores["[100] fp-bps"] == pytest.approx(
        fp_bps(rates[:, 140:], maze.forward[EVAL]), rel=1e-6)
    assert scores["[100] vel R2"] == pytest.approx(
        vel_r2(train_rates, maze.behavior[TRAIN], rates[:, :140], maze.behavior[EVAL]),
        rel=1e-6)


def test_without_train_rates_evaluate_cannot_score(maze, maze_model, tmp_path):
    path = tmp_path / "submission.h5"
    with pytest.warns(UserWarning, match="evaluate fails without them"):
        written = make_submission(maze_model, maze.heldin[EVAL], path)
    assert sorted(written["mc_maze_small"]) == sorted(NAMES[:4])
    with pytest.raises(KeyError, match="train_rates_heldin"):
        nlb.evaluate(_target(maze, tmp_path / "target.h5"), str(path))


def test_20_ms_bins_write_the_group_nlb_tools_reads(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.poisson(0.5, (12, 35, 142)).astype(np.float32)
    forward = rng.poisson(0.5, (12, 10, 142)).astype(np.float32)
    model = BlendEstimator(base="ndt", strategy=None, n_heldout=35, forward_bins=10,
                           hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=1,
                           early_stopping=False, random_state=0).fit(X, spikes_forward=forward)
    path = tmp_path / "submission.h5"
    make_submission(model, X[:4, :, :107], path, bin_size_ms=20, X_train=X[4:, :, :107])
    assert group_name("mc_maze_small", 20) == "mc_maze_small_20"
    target = {"mc_maze_small_20": {
        "eval_spikes_heldout": X[:4, :, 107:], "train_behavior": rng.normal(size=(8, 35, 2)),
        "eval_behavior": rng.normal(size=(4, 35, 2)),
        "eval_spikes_heldin_forward": forward[:4, :, :107],
        "eval_spikes_heldout_forward": forward[:4, :, 107:]}}
    [result] = nlb.evaluate(target, str(path))
    assert sorted(result["mc_maze_scaling_20_split"]) == [
        "[100] co-bps", "[100] fp-bps", "[100] vel R2"]
    with pytest.raises(ValueError, match="forward_bins=40 .*got forward_bins=10"):
        make_submission(model, X[:4, :, :107], tmp_path / "s.h5", X_train=X[4:, :, :107])


def test_dataset_table_matches_nlb_tools_params():
    assert FORWARD_MS == 200
    for name, spec in NLB_DATASETS.items():
        params = make_tensors.PARAMS[name]
        assert params["fp_len"] == FORWARD_MS
        assert params["eval_make_params"]["align_field"] == spec.align_field
        assert tuple(params["eval_make_params"]["align_range"]) == spec.align_range_ms
        assert spec.window_ms == spec.align_range_ms[1] - spec.align_range_ms[0]
    # evaluate() scores these datasets at these bin widths (suffix "" and "_20")
    source = inspect.getsource(nlb.evaluate)
    assert all(f'"{name}"' in source for name in NLB_DATASETS)
    assert 'zip([5, 20], ["", "_20"])' in source


def test_a_pipeline_is_read_through_its_first_step(maze, maze_model, tmp_path):
    pipe = Pipeline([("blend", maze_model), ("decoder", PerBin(Ridge()))])
    a = make_submission(pipe, maze.heldin[EVAL], tmp_path / "a.h5", X_train=maze.heldin[:4])
    b = make_submission(maze_model, maze.heldin[EVAL], tmp_path / "b.h5",
                        X_train=maze.heldin[:4])
    for name in NAMES:
        np.testing.assert_array_equal(a["mc_maze_small"][name], b["mc_maze_small"][name])


@pytest.mark.parametrize("model, error, message", [
    (BlendEstimator(n_heldout=35, forward_bins=40), NotFittedError, r"not fitted yet"),
    (SmoothingGLM(n_heldout=35), TypeError, r"SmoothingGLM has no forward_bins"),
    (BlendTeacher(n_heldout=35, forward_bins=40), TypeError, r"BlendTeacher needs behavior"),
    (FakeModel(n_heldout=0), ValueError, r"n_heldout > 0"),
    (FakeModel(forward_bins=0), ValueError, r"forward_bins=40 .*got forward_bins=0"),
    (FakeModel(n_heldin=100, n_heldout=42), ValueError, r"107 held-in and 35 held-out .*100"),
    (FakeModel(n_time=100), ValueError, r"trials of 140 bins; .*fitted on trials of 100"),
    (FakeModel(value=np.nan), ValueError, r"predicted \d+ non-finite and 0 negative rates"),
    (FakeModel(value=-1.0), ValueError, r"predicted 0 non-finite and \d+ negative rates"),
])
def test_unusable_models_fail_clearly(maze, model, error, message, tmp_path):
    path = tmp_path / "submission.h5"
    with pytest.raises(error, match=message):
        make_submission(model, maze.heldin[EVAL], path, X_train=maze.heldin[TRAIN])
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_bad_arrays_and_options_fail_clearly(maze, maze_model, tmp_path):
    path = tmp_path / "submission.h5"
    X = maze.heldin[EVAL]
    cases = [
        (dict(X=maze.X[EVAL]), r"X must hold the held-in .*\(n_trials, 140, 107\); got shape "
         r"\(15, 140, 142\)\. It holds all 142 neurons: pass X\[\.\.\., :107\]"),
        (dict(X=X[:, :100]), r"X must hold .*\(n_trials, 140, 107\); got shape \(15, 100, 107\)"),
        (dict(X=X[:, 0]), r"X must hold .*got shape \(15, 107\)"),
        (dict(X=np.where(X > 0, np.nan, X)), r"Input X contains NaN"),
        (dict(X=-X), r"Negative values in data passed to X"),
        (dict(X_train=maze.heldin[TRAIN, :, :50]),
         r"X_train must hold .*got shape \(60, 140, 50\)"),
        (dict(dataset="mc_maze_tiny"), r"dataset must be one of the NLB'21 datasets"),
        (dict(dataset="dmfc_rsg"), r"dmfc_rsg' is not supported"),
        (dict(bin_size_ms=10), r"bin_size_ms must be one of \[5, 20\]"),
        (dict(path=tmp_path), r"is a folder"),
    ]
    for change, message in cases:
        kwargs = dict(X=X, path=path, X_train=maze.heldin[TRAIN]) | change
        with pytest.raises(ValueError, match=message):
            make_submission(maze_model, **kwargs)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_submission(maze_model, X, tmp_path / "absent" / "s.h5", X_train=X)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_write_leaves_no_partial_file(maze, maze_model, tmp_path, monkeypatch):
    path = tmp_path / "submission.h5"
    path.write_bytes(b"old")
    calls = []
    original = h5py.Group.create_dataset

    def fail_on_the_third(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", fail_on_the_third)
    with pytest.raises(OSError, match="disk full"):
        make_submission(maze_model, maze.heldin[EVAL], path, X_train=maze.heldin[TRAIN])
    assert len(calls) == 3
    assert path.read_bytes() == b"old"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.h5"]  # no temporary


@needs_test_nwb
def test_official_test_trials(maze):
    test = load_mc_maze_small_test()
    assert test.spikes.shape == (100, 140, 107) and test.spikes.dtype == np.float32
    assert list(test.trial_ids) == list(range(100)) and test.dataset == "mc_maze_small"
    assert np.all(np.diff(test.unit_ids) > 0)  # units sorted by id, as nlb_tools orders them
    assert "100 trials x 140 bins" in test.DESCR
    # same units in the same order as the bundled training tensors (which hold no unit ids):
    # per-unit mean rates agree, and matching units by their trial-averaged PSTHs recovers
    # the identity for most of them (a random order gives r ~ 0 and ~1% matches)
    a, b = test.spikes.mean(axis=(0, 1)), maze.heldin.mean(axis=(0, 1))
    assert np.corrcoef(a, b)[0, 1] > 0.99
    kernel = np.exp(-0.5 * (np.arange(-20, 21) / 8) ** 2)
    psth = [np.apply_along_axis(np.convolve, 0, s.mean(0), kernel, "same")
            for s in (test.spikes, maze.heldin)]
    _, match = linear_sum_assignment(((psth[0][:, :, None] - psth[1][:, None]) ** 2).mean(0))
    assert np.mean(match == np.arange(107)) > 0.8
    assert load_mc_maze_small_test(TEST_NWB, bin_size_ms=20).spikes.shape == (100, 35, 107)


def _nlb_tools_test_tensors():
    """nlb_tools' own eval input tensors of the test file: 1 ms bins summed to 5 ms (what its
    resample does for spikes; resample itself fails under pandas 3)."""
    from nlb_tools.nwb_interface import NWBDataset

    dataset = NWBDataset(str(TEST_NWB))
    assert dataset.bin_width == 1
    spikes = make_tensors.make_eval_input_tensors(
        dataset, "mc_maze_small", trial_split="test", save_file=False)["eval_spikes_heldin"]
    return spikes.reshape(100, 140, 5, 107).sum(axis=2), [c[1] for c in dataset.data.columns]


@needs_test_nwb
@pandas_deprecations
def test_official_test_trials_bin_exactly_like_nlb_tools():
    theirs, units = _nlb_tools_test_tensors()
    ours = load_mc_maze_small_test()
    assert list(ours.unit_ids) == units
    # spikes that lie exactly on a bin edge (e.g. at 1.88 s) fall in the bin that starts
    # there, as in nlb_tools (23 of the file's 32,897 spikes did not before load_nwb rounded)
    np.testing.assert_array_equal(ours.spikes, theirs.astype(np.float64))


def _write_nwb_with_split(path, split):
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(session_description="test", identifier="test",
                  session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    nwb.add_trial_column("move_onset_time", "movement onset (s)")
    nwb.add_trial_column("split", "NLB split")
    for i, (name, onset) in enumerate(split):
        nwb.add_trial(start_time=float(i), stop_time=i + 0.9, move_onset_time=onset, split=name)
    nwb.add_unit(spike_times=[0.301, 1.301, 2.301])
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def test_test_loader_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no NWB file"):
        load_nlb_test_nwb(tmp_path / "absent.nwb")
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_nlb_test_nwb(tmp_path / "absent.nwb", dataset="MC_Maze_Small")
    monkeypatch.setattr(submission_module, "_shared_folder", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match=r"download it from DANDI:000140"):
        load_mc_maze_small_test()
    train = tmp_path / "train.nwb"
    _write_nwb_with_split(train, [("train", 0.3), ("val", 1.3)])
    with pytest.raises(ValueError, match="no trials in the 'test' split"):
        load_nlb_test_nwb(train)
    gap = tmp_path / "gap.nwb"
    _write_nwb_with_split(gap, [("test", 0.3), ("test", np.nan), ("train", 2.3)])
    with pytest.raises(ValueError, match="1 of the 2 test trials .* have no 'move_onset_time'"):
        load_nlb_test_nwb(gap)
    mixed = tmp_path / "mixed.nwb"
    _write_nwb_with_split(mixed, [("train", 0.3), ("test", 1.3), ("test", 2.3)])
    data = load_nlb_test_nwb(mixed, bin_size_ms=20)
    assert data.spikes.shape == (2, 35, 1) and list(data.trial_ids) == [1, 2]
    small = tmp_path / "small.nwb"
    write_small_nwb(small)  # no split column: every trial, held-in units only
    assert load_nlb_test_nwb(small).spikes.shape == (3, 140, 2)
    with pytest.raises(ValueError, match=r"not the \(100, 140, 107\) of the official"):
        load_mc_maze_small_test(small)


def test_cli_submit(maze, maze_model, tmp_path, capsys):
    model = tmp_path / "ndt.safetensors"
    maze_model.save(model)
    eval_input = tmp_path / "eval_input.h5"  # an nlb_tools eval input tensor file
    make_tensors.save_to_h5({"eval_spikes_heldin": maze.heldin[EVAL]}, str(eval_input))
    out = tmp_path / "submission.h5"
    assert main(["submit", str(model), "--test-data", str(eval_input), "--out", str(out)]) == 0
    assert "wrote the NLB'21 submission for mc_maze_small" in capsys.readouterr().out
    expected = make_submission(maze_model, maze.heldin[EVAL], tmp_path / "api.h5",
                               X_train=maze.heldin)
    written = _read(out)
    assert sorted(written["mc_maze_small"]) == sorted(NAMES)
    for name in NAMES:
        np.testing.assert_array_equal(written["mc_maze_small"][name][-1],
                                      expected["mc_maze_small"][name])
    # eval rates only; the warning goes to stderr as one line
    assert main(["submit", str(model), "--test-data", str(eval_input), "--no-train-rates",
                 "--out", str(out)]) == 0
    assert "warning: no X_train" in capsys.readouterr().err
    assert sorted(_read(out)["mc_maze_small"]) == sorted(NAMES[:4])


def test_cli_submit_errors(maze, maze_model, tmp_path, capsys):
    model, teacher = tmp_path / "ndt.safetensors", tmp_path / "teacher.safetensors"
    maze_model.save(model)
    BlendTeacher(base="ndt", n_heldout=35, forward_bins=40, hidden_size=8, n_layers=1,
                 n_heads=2, ffn_size=16, max_epochs=1, batch_size=8, early_stopping=False,
                 random_state=0).fit(maze.X[:16], maze.behavior[:16],
                                     spikes_forward=maze.forward[:16]).save(teacher)
    pickled = tmp_path / "ndt.joblib"
    joblib.dump(maze_model, pickled)
    cases = [
        ([str(teacher)], "error: estimator must predict rates from spikes alone"),
        ([str(model), "--bin-size", "10"], "error: --bin-size must be 5 or 20"),
        ([str(tmp_path / "absent.safetensors")], "error: no model file"),
        ([str(pickled)], "looks like a pickle"),
        ([str(model), "--dataset", "mc_rtt"], "error: --test-data is required"),
        ([str(model), "--test-data", str(tmp_path / "t.csv")], "error: --test-data must be"),
    ]
    for argv, message in cases:
        assert main(["submit", *argv, "--out", str(tmp_path / "s.h5")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "s.h5").exists()


@needs_test_nwb
def test_cli_submit_on_the_official_test_trials(maze_model, tmp_path, capsys):
    model = tmp_path / "ndt.safetensors"
    maze_model.save(model)
    out = tmp_path / "submission.h5"
    assert main(["submit", str(model), "--out", str(out)]) == 0
    # the bundled data holds the 75 'train' trials, not the 100 train+val of the test phase
    assert "warning: X has the 100 MC_Maze_Small test trials" in capsys.readouterr().err
    written = _read(out)["mc_maze_small"]
    assert written["eval_rates_heldin"][0] == (100, 140, 107)
    assert written["eval_rates_heldout_forward"][0] == (100, 40, 35)
    assert written["train_rates_heldout"][0] == (75, 140, 35)


def test_test_phase_needs_the_100_train_and_val_trials(tmp_path):
    X, X_train = np.zeros((100, 140, 107)), np.zeros((75, 140, 107))
    path = tmp_path / "submission.h5"
    with pytest.warns(UserWarning, match="all 100 'train' and 'val' trials"):
        make_submission(FakeModel(), X, path, X_train=X_train)
    rng = np.random.default_rng(0)
    target = {"mc_maze_small": {  # the test phase: 100 eval and 100 train+val trials
        "eval_spikes_heldout": rng.poisson(0.1, (100, 140, 35)).astype(float),
        "train_behavior": rng.normal(size=(100, 140, 2)),
        "eval_behavior": rng.normal(size=(100, 140, 2)),
        "eval_spikes_heldin_forward": rng.poisson(0.1, (100, 40, 107)).astype(float),
        "eval_spikes_heldout_forward": rng.poisson(0.1, (100, 40, 35)).astype(float)}}
    with pytest.raises(IndexError):
        nlb.evaluate(target, str(path))

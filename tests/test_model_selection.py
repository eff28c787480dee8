"""Nested equal-budget selection, held-out early stopping, soft scale, fixed positions."""

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import get_scorer
from sklearn.pipeline import Pipeline

from sklearn_blend import BlendEstimator, BlendTeacher, losses, scoring
from sklearn_blend.distill import Soft
from sklearn_blend.model_selection import (
    check_equal_budget,
    grid_size,
    nested_compare,
    paired_differences,
)
from sklearn_blend.models.ndt import NDT, NDTConfig

from .helpers import TINY

SEEN = []


class Recorder(RegressorMixin, BaseEstimator):
    """Predicts the mean of y; records which samples (by their id in column 0) it was fit on."""

    def __init__(self, tag="a", shift=0.0, random_state=None):
        self.tag = tag
        self.shift = shift
        self.random_state = random_state

    def fit(self, X, y):
        SEEN.append((self.tag, tuple(np.asarray(X)[:, 0].astype(int)), self.random_state))
        self.mean_ = float(np.mean(y)) + self.shift
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


def _ids(n=30):
    rng = np.random.default_rng(0)
    X = np.column_stack([np.arange(n), rng.normal(size=n)])
    return X, rng.normal(size=n)


def test_grid_sizes_must_match_unless_allowed():
    assert grid_size({"a": [1, 2], "b": [3, 4, 5]}) == 6
    assert check_equal_budget({"x": {"a": [1, 2]}, "y": [{"b": [1]}, {"c": [2]}]}) == 2
    with pytest.raises(ValueError, match="unequal tuning budgets"):
        check_equal_budget({"x": {"a": [1, 2]}, "y": {"b": [1, 2, 3]}})
    X, y = _ids()
    searches = {"x": (Recorder("x"), {"shift": [0.0, 1.0]}),
                "y": (Recorder("y"), {"shift": [0.0]})}
    with pytest.raises(ValueError, match="unequal tuning budgets"):
        nested_compare(searches, X, y, scoring=get_scorer("r2"), outer_cv=2, inner_cv=2)
    rows = nested_compare(searches, X, y, scoring=get_scorer("r2"), outer_cv=2, inner_cv=2,
                          equal_budget=False)
    assert len(rows) == 4


def test_selection_never_sees_the_outer_test_trials_and_methods_share_inner_folds():
    SEEN.clear()
    X, y = _ids()
    grid = {"shift": [0.0, 0.5]}
    rows = nested_compare({"x": (Recorder("x"), grid), "y": (Recorder("y"), grid)}, X, y,
                          scoring=get_scorer("neg_mean_squared_error"), outer_cv=3,
                          inner_cv=2, seeds=[4, 5])
    assert len(rows) == 2 * 3 * 2
    assert {row["seed"] for row in rows} == {4, 5}
    # fits run in task order (seed, then outer fold), each task: per method 2 settings x 2
    # inner folds + 1 refit; every fit saw training trials of its own outer fold only
    from sklearn.model_selection import KFold

    splits = list(KFold(3, shuffle=True, random_state=0).split(X))
    per_task = 2 * (2 * 2 + 1)
    assert len(SEEN) == 2 * 3 * per_task
    fits = {"x": [], "y": []}
    for task in range(6):
        seed, (train, test) = (4, 5)[task // 3], splits[task % 3]
        for tag, ids, fit_seed in SEEN[task * per_task:(task + 1) * per_task]:
            assert fit_seed == seed
            assert set(ids) <= set(train) and not set(ids) & set(test)
            fits[tag].append((ids, fit_seed))
    # the same inner folds (and refits) for both methods, in the same order
    assert fits["x"] == fits["y"]
    for row in rows:
        assert row["params"]["shift"] in grid["shift"]
        assert np.isfinite(row["test_score"]) and np.isfinite(row["inner_score"])
    # the mean predictor with no shift wins on MSE
    assert all(row["params"]["shift"] == 0.0 for row in rows)


def test_dataframes_and_lists_are_indexed_by_trial():
    import pandas as pd

    SEEN.clear()
    X, y = _ids(12)
    frame = pd.DataFrame(X, columns=["id", "x"], index=np.arange(100, 112))
    rows = nested_compare({"x": (Recorder(), {"shift": [0.0]})}, frame,
                          pd.Series(y, index=frame.index), scoring=get_scorer("r2"),
                          outer_cv=2, inner_cv=2)
    assert len(rows) == 2 and all(np.isfinite(row["test_score"]) for row in rows)


def test_bad_arguments_are_named():
    X, y = _ids()
    scorers = {"r2": get_scorer("r2")}
    searches = {"x": (Recorder(), {"shift": [0.0]})}
    with pytest.raises(ValueError, match="refit"):
        nested_compare(searches, X, y, scoring=scorers)
    with pytest.raises(TypeError, match="searches"):
        nested_compare({"x": Recorder()}, X, y, scoring=get_scorer("r2"))
    with pytest.raises(ValueError, match="not in searches"):
        nested_compare(searches, X, y, scoring=get_scorer("r2"), params={"z": {}})


def test_paired_differences_pair_by_fold_and_seed():
    rows = []
    for seed in (0, 1):
        for fold in range(4):
            rows.append({"method": "a", "fold": fold, "seed": seed, "m": 1.0 + fold + seed})
            rows.append({"method": "b", "fold": fold, "seed": seed, "m": 0.5 + fold + seed
                         + (0.2 if fold == 3 else 0.0)})
    result = paired_differences(rows, "a", "b", "m")
    assert result["n"] == 8 and result["wins"] == 8
    assert result["mean"] == pytest.approx((6 * 0.5 + 2 * 0.3) / 8)
    assert 0 < result["p_wilcoxon"] < 0.05 and 0 < result["p_ttest"] < 0.001
    with pytest.raises(ValueError, match="no rows of method"):
        paired_differences(rows, "a", "c", "m")


def test_nested_compare_tunes_blend_pipelines_with_forward_bins(trials):
    X, b = trials  # 24 trials x 10 bins x 6 neurons, 2-D behavior
    n_heldout, forward_bins = 2, 3
    rng = np.random.default_rng(1)
    forward = rng.poisson(1.0, size=(len(X), forward_bins, X.shape[-1])).astype(np.float32)
    settings = dict(TINY, n_heldout=n_heldout, forward_bins=forward_bins)
    teacher = BlendTeacher(**settings)

    def pipe(model):
        return Pipeline([("model", model), ("decoder", scoring.nlb_velocity_decoder())])

    searches = {
        "plain": (pipe(BlendEstimator(strategy=None, **settings)),
                  {"model__mask_ratio": [0.2, 0.4]}),
        "hard": (pipe(BlendEstimator(teacher=teacher, **settings)),
                 {"model__alpha": [0.3, 0.7]}),
    }
    params = {name: {"model__spikes_forward": forward} for name in searches}
    rows = nested_compare(searches, X, b,
                          scoring={"co_bps": scoring.co_bps_scorer,
                                   "vel_r2": scoring.vel_r2_scorer},
                          refit="co_bps", outer_cv=2, inner_cv=2, seeds=[3], params=params,
                          return_estimator=True, error_score="raise")
    assert [row["method"] for row in rows] == ["plain", "hard"] * 2
    for row in rows:
        model = row["estimator"].best_estimator_.named_steps["model"]
        assert model.random_state == 3 and model.n_features_in_ == X.shape[-1]
        assert np.isfinite(row["test_co_bps"]) and np.isfinite(row["test_vel_r2"])
        if row["method"] == "hard":
            assert model.teacher_.random_state == 3


def test_heldout_early_stopping_records_and_watches_the_heldout_loss(trials):
    settings = dict(TINY, early_stopping=True, max_epochs=6, n_iter_no_change=2,
                    validation_fraction=0.25, n_heldout=2, random_state=0)
    model = BlendEstimator(strategy=None, early_stopping_on="heldout", **settings)
    model.fit(trials[0])
    history = model.student_net_.history
    heldout = history[:, "valid_heldout"]
    assert len(heldout) == model.n_iter_ and np.all(np.isfinite(heldout))
    # stopped (or ran out) no later than patience epochs after the best held-out epoch
    assert model.n_iter_ <= int(np.argmin(heldout)) + 1 + 2 or model.n_iter_ == 6
    masked = BlendEstimator(strategy=None, **settings).fit(trials[0])
    assert "valid_heldout" not in masked.student_net_.history[-1]
    with pytest.raises(ValueError, match="n_heldout > 0"):
        BlendEstimator(strategy=None, early_stopping_on="heldout",
                       **dict(settings, n_heldout=0)).fit(trials[0])
    with pytest.raises(ValueError, match="early_stopping_on"):
        BlendEstimator(strategy=None, early_stopping_on="best", **settings).fit(trials[0])


def test_the_teacher_built_from_a_student_stops_on_the_same_loss(trials):
    model = BlendEstimator(early_stopping_on="heldout", **dict(
        TINY, early_stopping=True, max_epochs=2, n_heldout=2, validation_fraction=0.25,
        random_state=0)).fit(*trials)
    assert "valid_heldout" in model.teacher_.net_.history[-1]


def test_soft_distillation_per_trial_is_n_time_times_per_bin():
    rng = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(3, 7, 5, generator=rng), torch.randn(3, 7, 5, generator=rng)
    per_bin = losses.soft_distillation(student, teacher, 2.0)
    per_trial = losses.soft_distillation(student, teacher, 2.0, reduction="trial")
    assert float(per_trial) == pytest.approx(7 * float(per_bin), rel=1e-6)
    assert Soft(reduction="trial").reduction == "trial"
    with pytest.raises(ValueError, match="reduction"):
        Soft(reduction="sum")


def test_a_student_trains_with_the_per_trial_soft_scale(trials):
    model = BlendEstimator(strategy=Soft(tau=2.0, reduction="trial"), random_state=0,
                           **TINY).fit(*trials)
    assert np.all(np.isfinite(model.transform(trials[0])))


def test_sinusoidal_positions_are_fixed_and_smooth():
    config = NDTConfig(n_inputs=4, n_outputs=4, n_time=20, hidden_size=8, position="sinusoidal")
    model = NDT(config)
    assert "position" not in dict(model.named_parameters())
    assert model.position.shape == (1, 20, 8)
    assert float(model.position[0, 0, 1]) == pytest.approx(1.0)  # cos(0)
    with pytest.raises(ValueError, match="position"):
        NDTConfig(n_inputs=4, n_outputs=4, n_time=20, position="rotary")


def test_forward_behavior_reaches_the_teacher_in_training_only(trials):
    X, b = trials
    rng = np.random.default_rng(0)
    forward = rng.poisson(1.0, size=(len(X), 3, X.shape[-1])).astype(np.float32)
    behavior_forward = rng.normal(size=(len(X), 3, b.shape[-1])).astype(np.float32)
    settings = dict(TINY, n_heldout=2, forward_bins=3, random_state=0)
    plain = BlendTeacher(**settings).fit(X, b, spikes_forward=forward)
    teacher = BlendTeacher(**settings).fit(X, b, spikes_forward=forward,
                                           behavior_forward=behavior_forward)
    # the forward bins of the encoded behavior hold the forward behavior, not zeros
    encoded = teacher.encode_behavior(b, X, behavior_forward=behavior_forward)
    zeros = teacher.encode_behavior(b, X)
    assert encoded.shape == zeros.shape == (len(X), 13, b.shape[-1])
    assert np.all(zeros[:, 10:] == 0) and not np.allclose(encoded[:, 10:], 0)
    np.testing.assert_allclose(encoded[:, :10], zeros[:, :10])
    assert not np.allclose(plain.predict_rates(X, b), teacher.predict_rates(X, b))
    # predictions need no forward behavior
    assert teacher.predict_rates(X[..., :-2], b, forward=True).shape == (len(X), 13, 6)
    student = BlendEstimator(**settings).fit(X, b, spikes_forward=forward,
                                             behavior_forward=behavior_forward)
    assert student.transform(X).shape == (len(X), 10, 6)
    with pytest.raises(ValueError, match="behavior_forward must be"):
        BlendTeacher(**settings).fit(X, b, spikes_forward=forward,
                                     behavior_forward=behavior_forward[:, :2])
    with pytest.raises(ValueError, match="forward_bins=0"):
        BlendTeacher(**dict(TINY, random_state=0)).fit(X, b, behavior_forward=behavior_forward)


def test_leak_controls_destroy_the_data_they_say(trials):
    from sklearn_blend.evaluation import _control_data

    X, b = trials
    X_b, b_b, _ = _control_data("control_behavior", X, b, None, seed=0)
    assert X_b is X and not np.any(np.all(b_b == b, axis=(1, 2)))
    assert sorted(map(bytes, b_b)) == sorted(map(bytes, b))  # a permutation of trials
    X_t, b_t, _ = _control_data("control_time", X, b, None, seed=0)
    assert b_t is b and not np.array_equal(X_t, X)
    np.testing.assert_array_equal(np.sort(X_t, axis=1), np.sort(X, axis=1))


def test_evaluate_split_runs_the_leak_controls_beside_the_plain_model():
    from sklearn.utils import Bunch

    from sklearn_blend.evaluation import evaluate_split

    rng = np.random.default_rng(0)
    data = Bunch(spikes=rng.poisson(1.0, size=(12, 10, 4)).astype(np.float32),
                 spikes_heldout=rng.poisson(1.0, size=(12, 10, 2)).astype(np.float32),
                 behavior=rng.normal(size=(12, 10, 2)).astype(np.float32))
    results = evaluate_split(data, np.arange(9), np.arange(9, 12),
                             ["ndt", "control_behavior", "control_time"], params=TINY)
    assert [r["method"] for r in results] == ["ndt", "control_behavior", "control_time"]
    for result in results:
        assert np.isfinite(result["co_bps"]) and np.isfinite(result["vel_r2"])
        assert result.test_rates.shape == (3, 10, 6)
    with pytest.raises(ValueError, match="unknown methods"):
        evaluate_split(data, np.arange(9), np.arange(9, 12), ["control_other"], params=TINY)

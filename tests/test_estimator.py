"""BlendEstimator and BlendTeacher: API, reproducibility, teacher reuse, distillation effects."""

import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from sklearn_blend import BlendEstimator, BlendTeacher, PerBin

from .helpers import TINY, TINY_GRU, TINY_LFADS, TINY_TRAINING, TinyGRU, assert_same

pytestmark = pytest.mark.filterwarnings("ignore:early stopping needs")


@pytest.mark.parametrize("strategy", ["hard", "soft", "feature", "correlation", None])
def test_every_strategy_fits_and_transforms(trials, tiny, strategy):
    X, b = trials
    est = BlendEstimator(strategy=strategy, random_state=0, **tiny).fit(X, b)
    rates = est.transform(X)
    assert rates.shape == X.shape and rates.dtype == np.float32
    assert np.all(rates > 0) and np.all(np.isfinite(rates))
    np.testing.assert_allclose(est.predict_rates(X), rates)
    assert np.isfinite(est.score(X))
    assert est.n_features_in_ == 6 and est.n_time_in_ == 10
    assert est.n_iter_ == tiny["max_epochs"]
    history = est.student_net_.history
    assert np.all(np.isfinite(history[:, "train_loss"]))
    if strategy is None:
        assert est.teacher_ is None
    else:
        assert isinstance(est.teacher_, BlendTeacher)
        assert np.all(np.isfinite(history[:, "train_distill"]))


def test_latents_output_and_teacher_rates(trials, tiny):
    X, b = trials
    est = BlendEstimator(output="latents", random_state=0, **tiny).fit(X, b)
    assert est.transform(X).shape == (24, 10, tiny["hidden_size"])
    assert est.predict_rates(X).shape == X.shape  # rates whatever the output
    teacher_rates = est.teacher_.predict_rates(X, b)
    assert teacher_rates.shape == X.shape and np.all(teacher_rates > 0)
    assert np.isfinite(est.teacher_.score(X, b))
    with pytest.raises(ValueError, match="behavior channels"):
        est.teacher_.predict_rates(X, b[..., :1])


@pytest.fixture(params=["ndt", "gru", "lfads", "user base"])
def any_base(request):
    """Tiny settings of each kind of base: the built-in NDT, GRU model and LFADS, and a
    user's module."""
    return {"ndt": dict(TINY), "gru": dict(TINY_GRU, base="gru"),
            "lfads": dict(TINY_LFADS, base="lfads"),
            "user base": dict(TINY_TRAINING, base=TinyGRU)}[request.param]


def test_same_seed_gives_bit_identical_results_and_leaves_global_rng_alone(trials, any_base):
    X, b = trials
    tiny = any_base
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = BlendEstimator(strategy="soft", random_state=7, **tiny).fit(X, b).transform(X)
    assert torch.equal(torch.get_rng_state(), before)
    c = BlendEstimator(strategy="soft", random_state=7, teacher_cache=False, **tiny)
    assert_same(a, c.fit(X, b).transform(X))
    d = BlendEstimator(strategy="soft", random_state=8, **tiny).fit(X, b).transform(X)
    assert not np.array_equal(a, d)


def test_early_stopping_uses_a_validation_split(trials, tiny):
    X, b = trials
    tiny.update(early_stopping=True, max_epochs=40, n_iter_no_change=2, lr=0.05)
    est = BlendEstimator(strategy=None, random_state=0, **tiny).fit(X, b)
    history = est.student_net_.history
    assert "valid_loss" in history[-1]
    assert est.n_iter_ < 40  # stopped early
    with pytest.warns(UserWarning, match="early stopping needs"):
        BlendEstimator(strategy=None, random_state=0, **tiny).fit(X[:4], b[:4])


def test_clone_params_and_pickle_round_trip(trials, any_base):
    X, b = trials
    tiny = any_base
    est = BlendEstimator(strategy="correlation", alpha=0.3, random_state=0, **tiny)
    assert clone(est).get_params() == est.get_params()
    est.set_params(tau=3.0)
    assert est.tau == 3.0
    est.fit(X, b)
    restored = pickle.loads(pickle.dumps(est))
    assert_same(restored.transform(X), est.transform(X))
    assert_same(restored.teacher_.predict_rates(X, b), est.teacher_.predict_rates(X, b))
    assert restored.score(X) == est.score(X)


def _feature_distance(est, X, b):
    """Mean squared distance between student and teacher hidden states, summed over layers."""
    spikes = torch.as_tensor(X)
    behavior = torch.as_tensor(est.teacher_.encode_behavior(b, X))
    with torch.no_grad():
        student = est.student_.eval()(spikes).features
        teacher = est.teacher_.model_.eval()(spikes, behavior).features
    return sum(((s - t) ** 2).mean().item() for s, t in zip(student, teacher))


@pytest.mark.parametrize("base", ["ndt", "gru"])
def test_feature_distillation_changes_the_student(trials, tiny, base):
    X, b = trials
    tiny.update(max_epochs=30, lr=3e-3)
    tiny["base"] = base
    if base == "gru":
        del tiny["n_heads"], tiny["ffn_size"]
    hard = BlendEstimator(strategy="hard", random_state=0, **tiny).fit(X, b)
    feature = BlendEstimator(strategy="feature", random_state=0, **tiny).fit(X, b)
    assert feature.teacher_ is hard.teacher_  # same teacher, from the cache
    assert not np.allclose(hard.transform(X), feature.transform(X), atol=1e-4)
    # the feature term is really optimised: its hidden states end up nearer the teacher's
    assert _feature_distance(feature, X, b) < 0.8 * _feature_distance(hard, X, b)


def test_feature_distillation_projects_a_narrower_student(trials, tiny):
    X, b = trials
    est = BlendEstimator(strategy="feature", teacher_hidden_size=12, random_state=0, **tiny)
    est.fit(X, b)
    assert est.teacher_.hidden_size == 12
    projections = est.student_net_.criterion_.strategy.projections
    assert [tuple(p.weight.shape) for p in projections] == [(12, tiny["hidden_size"])]


def test_teacher_is_trained_once_across_a_search_over_student_parameters(trials, any_base,
                                                                          monkeypatch):
    X, b = trials
    tiny = any_base
    fits = []
    original = BlendTeacher.fit
    monkeypatch.setattr(BlendTeacher, "fit",
                        lambda self, *a, **k: fits.append(1) or original(self, *a, **k))
    pipe = Pipeline([("blend", BlendEstimator(random_state=0, **tiny)),
                     ("ridge", PerBin(RidgeCV()))])
    grid = {"blend__alpha": [0.3, 0.7], "blend__tau": [1.0, 2.0],
            "blend__strategy": ["hard", "soft"]}
    GridSearchCV(pipe, grid, cv=KFold(3)).fit(X, b)
    # one teacher per fold plus one for the refit on all trials, not one per candidate
    assert len(fits) == 3 + 1
    fits.clear()
    pipe.set_params(blend__teacher_cache=False)
    GridSearchCV(pipe, {"blend__alpha": [0.3, 0.7]}, cv=KFold(3)).fit(X, b)
    assert len(fits) == 2 * 3 + 1


def test_teacher_parameters_and_data_are_part_of_the_cache_key(trials, tiny):
    X, b = trials
    first = BlendEstimator(random_state=0, **tiny).fit(X, b)
    assert BlendEstimator(random_state=0, alpha=0.9, **tiny).fit(X, b).teacher_ is first.teacher_
    assert BlendEstimator(random_state=1, **tiny).fit(X, b).teacher_ is not first.teacher_
    assert BlendEstimator(random_state=0, mask_ratio=0.5, **tiny).fit(X, b).teacher_ is not (
        first.teacher_)
    assert BlendEstimator(random_state=0, **tiny).fit(X[:20], b[:20]).teacher_ is not (
        first.teacher_)


def test_disk_cache_is_shared(trials, tiny, tmp_path, monkeypatch):
    X, b = trials
    fits = []
    original = BlendTeacher.fit
    monkeypatch.setattr(BlendTeacher, "fit",
                        lambda self, *a, **k: fits.append(1) or original(self, *a, **k))
    memory = joblib.Memory(str(tmp_path), verbose=0)
    a = BlendEstimator(random_state=0, teacher_cache=memory, **tiny).fit(X, b)
    c = BlendEstimator(random_state=0, alpha=0.2, teacher_cache=tmp_path, **tiny).fit(X, b)
    assert len(fits) == 1
    assert_same(a.teacher_.predict_rates(X, b), c.teacher_.predict_rates(X, b))


def test_behavior_can_arrive_by_metadata_routing(trials, tiny):
    from sklearn import config_context
    from sklearn.linear_model import LogisticRegression

    X, b = trials
    labels = (b[:, 0, 0] > 0).astype(int)  # a per-trial target that is not the behavior
    with config_context(enable_metadata_routing=True):
        blend = BlendEstimator(random_state=0, **tiny).set_fit_request(behavior=True)
        pipe = Pipeline([("blend", blend), ("clf", PerBin(LogisticRegression()))])
        pipe.fit(X, labels, behavior=b)
        assert pipe.predict(X).shape == (24, 10)
        search = GridSearchCV(pipe, {"blend__alpha": [0.3, 0.6]}, cv=KFold(2))
        search.fit(X, labels, behavior=b)
    assert search.best_estimator_.named_steps["blend"].n_behavior_in_ == 2


def test_grid_search_over_alpha_and_tau_in_parallel(trials, tiny):
    X, b = trials
    pipe = Pipeline([("blend", BlendEstimator(strategy="soft", random_state=0, **tiny)),
                     ("ridge", PerBin(RidgeCV()))])
    grid = {"blend__alpha": [0.3, 0.7], "blend__tau": [1.0, 2.0]}
    serial = GridSearchCV(pipe, grid, cv=KFold(2)).fit(X, b)
    parallel = GridSearchCV(pipe, grid, cv=KFold(2), n_jobs=2).fit(X, b)
    # same folds and seeds: the same scores, whichever process trained each candidate
    np.testing.assert_allclose(serial.cv_results_["mean_test_score"],
                               parallel.cv_results_["mean_test_score"], rtol=1e-5)
    assert serial.best_score_ == pytest.approx(parallel.best_score_, rel=1e-5)
    assert np.isfinite(serial.best_score_)


def _condition_locked_trials(n_trials, rng):
    """Trials that share one rate profile (as repeated conditions do), Poisson counts."""
    t = np.linspace(0, 1, 30)[:, None]
    log_rates = np.log(0.3) + 1.5 * np.sin(2 * np.pi * (t + np.linspace(0, 1, 12)))
    return rng.poisson(np.exp(log_rates), size=(n_trials, 30, 12)).astype(np.float32)


def test_training_learns_real_structure():
    # the student predicts hidden bins of unseen trials better than the mean-rate null, and
    # better than the same model trained on spikes whose time order was shuffled
    rng = np.random.default_rng(0)
    X = _condition_locked_trials(64, rng)
    b = rng.normal(size=(64, 30, 2)).astype(np.float32)
    params = dict(base="ndt", hidden_size=16, n_layers=1, ffn_size=32, dropout=0.1,
                  max_epochs=40, batch_size=16, lr=3e-3, early_stopping=False, random_state=0)
    est = BlendEstimator(strategy="hard", **params).fit(X[:48], b[:48])
    assert est.score(X[48:]) > 0.1
    shuffled = rng.permuted(X[:48], axis=1)
    control = BlendEstimator(strategy="hard", **params).fit(shuffled, b[:48])
    assert control.score(X[48:]) < est.score(X[48:]) - 0.05


def test_two_dimensional_input_is_one_bin_per_sample(tiny):
    rng = np.random.default_rng(0)
    X = rng.poisson(1.0, size=(30, 5)).astype(float)
    b = rng.normal(size=(30, 2))
    est = BlendEstimator(random_state=0, **tiny).fit(X, b)
    assert est.transform(X).shape == (30, 5) and est.n_time_in_ == 1


def test_shorter_trials_at_transform(trials, tiny):
    X, b = trials
    est = BlendEstimator(random_state=0, **tiny).fit(X, b)
    assert est.transform(X[:, :6]).shape == (24, 6, 6)
    with pytest.raises(ValueError, match="time bins"):
        est.transform(np.concatenate([X, X], axis=1))


def test_teacher_data_that_cannot_be_hashed_is_fitted_without_the_cache(trials, tiny):
    from sklearn_blend.training import teacher_cache as _teacher_cache

    X, b = trials
    teacher = BlendTeacher(random_state=0, **tiny)
    unhashable = {"key": lambda: None}  # e.g. an object column holding something unpicklable
    with pytest.warns(UserWarning, match="the teacher cannot be cached"):
        fitted = _teacher_cache.fitted_teacher(teacher, (X, b), {}, True,
                                               key_params=unhashable)
    assert fitted is teacher and _teacher_cache._in_process == {}


def test_bfloat16_precision_trains_under_autocast_and_infers_in_float32(trials, any_base):
    X, b = trials
    exact = BlendEstimator(random_state=0, **any_base).fit(X, b)
    fast = BlendEstimator(random_state=0, precision="bfloat16", **any_base).fit(X, b)
    assert fast.teacher_.precision == "bfloat16"
    assert fast.teacher_ is not exact.teacher_  # precision is part of the teacher cache key
    rates = fast.transform(X)
    assert rates.dtype == np.float32 and np.all(np.isfinite(rates)) and np.all(rates > 0)
    # same seed, same masks and dropout: only rounding differs
    np.testing.assert_allclose(rates, exact.transform(X), rtol=0.1)
    assert not np.array_equal(rates, exact.transform(X))
    assert np.isfinite(fast.score(X))
    again = BlendEstimator(random_state=0, precision="bfloat16", teacher_cache=False, **any_base)
    assert_same(again.fit(X, b).transform(X), rates)  # reproducible per seed
    # inference is float32 whatever the training precision
    assert_same(fast.set_params(precision="float32").transform(X), rates)


def test_run_model_multiplies_in_bfloat16_and_returns_float32():
    from sklearn_blend.training.core import run_model
    from sklearn_blend.models import build_model

    model = build_model("ndt", n_inputs=5, n_outputs=6, n_behavior=0, n_time=8,
                        options=dict(hidden_size=8, n_layers=1, ffn_size=16, dropout=0.0))
    seen = []
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    x = torch.rand(3, 8, 5)
    exact = run_model(model, x)
    assert set(seen) == {torch.float32}
    seen.clear()
    fast = run_model(model, x, precision="bfloat16")
    assert set(seen) == {torch.bfloat16}
    assert fast.log_rates.dtype == torch.float32
    assert all(feature.dtype == torch.float32 for feature in fast.features)
    torch.testing.assert_close(fast.log_rates, exact.log_rates, rtol=0.05, atol=0.05)


def test_bfloat16_without_native_support_warns(trials, tiny, monkeypatch):
    from sklearn_blend.training import objective

    X, b = trials
    monkeypatch.setattr(objective, "cpu_has_native_bfloat16", lambda: False)
    with pytest.warns(UserWarning, match="without native bfloat16"):
        BlendEstimator(strategy=None, precision="bfloat16", **tiny).fit(X)


def test_defaults_left_at_none_depend_on_the_role(trials):
    """The plain NDT trains with the nested selection's choice for it (dropout 0.7, mask ratio
    0.5); students, their teacher and other bases keep 0.25 and the base's dropout; values
    set by the user always win."""
    X, b = trials
    plain = BlendEstimator(base="ndt", strategy=None, max_epochs=1, random_state=0).fit(X)
    assert plain.student_.base.input_dropout.p == 0.7
    assert plain.student_net_.criterion_.masking.ratio == 0.5
    student = BlendEstimator(base="ndt", strategy="hard", max_epochs=1,
                             random_state=0).fit(X, b)
    assert student.student_.base.input_dropout.p == 0.5
    assert student.student_net_.criterion_.masking.ratio == 0.25
    assert student.teacher_.net_.criterion_.masking.ratio == 0.25
    assert student.teacher_.model_.base.input_dropout.p == 0.5
    assert BlendEstimator(strategy=None, base="gru")._architecture()["dropout"] == 0.5
    chosen = BlendEstimator(base="ndt", strategy=None, dropout=0.1, mask_ratio=0.3,
                            max_epochs=1, random_state=0).fit(X)
    assert chosen.student_.base.input_dropout.p == 0.1
    assert chosen.student_net_.criterion_.masking.ratio == 0.3

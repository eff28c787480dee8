"""SeedEnsemble: the averaged rates of fits that differ only in their seed."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sklearn_blend import BlendEstimator, PerBin, SeedEnsemble, load, metrics
from sklearn_blend.datasets import make_synthetic

from .helpers import TINY, assert_same


@pytest.fixture(scope="module")
def data():
    X, b = make_synthetic("simple", n_trials=24, n_time=12, n_neurons=10, random_state=0)
    return X.astype(np.float32), b.astype(np.float32)


def test_members_differ_only_in_their_seed_and_their_rates_are_averaged(data):
    X, b = data
    model = BlendEstimator(n_heldout=3, **TINY, random_state=4)
    ensemble = SeedEnsemble(model, n_members=3).fit(X, b)
    assert ensemble.random_states_ == [4, 5, 6] and len(ensemble.estimators_) == 3
    assert ensemble.n_features_in_ == 10
    lone = clone(model).fit(X, b)  # the first member is the estimator as it stands
    assert_same(ensemble.estimators_[0].predict_rates(X), lone.predict_rates(X))
    members = [member.predict_rates(X) for member in ensemble.estimators_]
    assert not np.allclose(members[0], members[1])
    np.testing.assert_allclose(ensemble.predict_rates(X), np.mean(members, axis=0), rtol=1e-6)
    np.testing.assert_allclose(ensemble.transform(X), ensemble.predict_rates(X), rtol=1e-6)
    # co-bps of the averaged held-out rates
    expected = metrics.co_bps(ensemble.predict_rates(X)[..., -3:], X[..., -3:])
    assert ensemble.score(X) == pytest.approx(expected, rel=1e-5)
    # one member scores as the estimator does (masked bits/spike without held-out neurons)
    plain = BlendEstimator(**TINY, random_state=0)
    one = SeedEnsemble(plain, n_members=1).fit(X, b)
    assert one.score(X) == pytest.approx(clone(plain).fit(X, b).score(X), rel=1e-5)
    # its own random_state overrides the estimator's
    assert SeedEnsemble(model, 2, random_state=10)._seeds() == [10, 11]
    drawn = SeedEnsemble(BlendEstimator(random_state=None), 3)._seeds()
    assert len(set(drawn)) == 3


def test_latents_are_concatenated_and_the_ensemble_is_a_pipeline_step(data):
    X, b = data
    model = BlendEstimator(output="latents", **TINY, random_state=0)
    ensemble = SeedEnsemble(model, n_members=2).fit(X, b)
    assert ensemble.transform(X).shape == (24, 12, 2 * TINY["hidden_size"])
    pipe = Pipeline([("blend", SeedEnsemble(model, n_members=2)), ("decoder", PerBin(Ridge()))])
    search = GridSearchCV(pipe, {"blend__estimator__alpha": [0.3, 0.7]}, cv=2).fit(X, b)
    assert search.best_estimator_.predict(X).shape == b.shape


def test_members_fitted_in_parallel_are_the_members_fitted_in_turn(data):
    X, b = data
    model = BlendEstimator(**TINY, random_state=0)
    alone = SeedEnsemble(model, n_members=2).fit(X, b)
    parallel = SeedEnsemble(model, n_members=2, n_jobs=2).fit(X, b)
    assert parallel.random_states_ == alone.random_states_
    assert_same(parallel.predict_rates(X), alone.predict_rates(X))


def test_bad_settings_are_refused_with_their_name(data):
    X, b = data
    with pytest.raises(ValueError, match="n_members must be an int >= 1"):
        SeedEnsemble(BlendEstimator(**TINY), n_members=0).fit(X, b)
    with pytest.raises(TypeError, match="estimator must be a scikit-learn estimator with a "
                                        "random_state"):
        SeedEnsemble(LinearRegression()).fit(X, b)
    with pytest.raises(TypeError, match="must be a rate model of this package"):
        SeedEnsemble(Ridge()).fit(X, b)


def test_an_ensemble_is_saved_and_loaded(data, tmp_path):
    X, b = data
    ensemble = SeedEnsemble(BlendEstimator(**TINY, random_state=0), n_members=2).fit(X, b)
    path = tmp_path / "ensemble.safetensors"
    ensemble.save(path)
    loaded = load(path)
    assert loaded.random_states_ == [0, 1]
    assert_same(loaded.predict_rates(X), ensemble.predict_rates(X))

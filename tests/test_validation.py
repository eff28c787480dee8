"""Bad input gives a clear ValueError/TypeError naming the argument and the expected shape."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_blend import BlendEstimator, BlendTeacher, PerBin

pytestmark = pytest.mark.filterwarnings("ignore:early stopping needs")


@pytest.fixture
def fitted(trials, tiny):
    X, b = trials
    return BlendEstimator(random_state=0, **tiny).fit(X, b)


def with_value(array, value):
    bad = array.copy()
    bad[0, 0, 0] = value
    return bad


@pytest.mark.parametrize(
    "make_X, error, match",
    [
        (lambda X: with_value(X, np.nan), ValueError, "Input X contains NaN"),
        (lambda X: with_value(X, np.inf), ValueError, "Input X contains infinity"),
        (lambda X: with_value(X, -1.0), ValueError, r"Negative values in data passed to X"),
        (lambda X: X[0, 0], ValueError, r"3-D array of spike counts \(n_trials, n_time"),
        (lambda X: X[None], ValueError, r"got a 4-D array"),
        (lambda X: sp.csr_matrix(X[:, 0]), TypeError, "X must be a dense array"),
        (lambda X: X[:, :, :0], ValueError, "non-empty"),
        (lambda X: np.full(X.shape, "a"), ValueError, "X must hold numbers"),
    ],
)
def test_bad_spikes_in_fit(trials, tiny, make_X, error, match):
    X, b = trials
    with pytest.raises(error, match=match):
        BlendEstimator(**tiny).fit(make_X(X), b)


@pytest.mark.parametrize(
    "make_b, match",
    [
        (lambda b: b[:-1], r"disagree on the number of trials: X has 24, y \(behavior\) has 23"),
        (lambda b: b[:, :-1], r"disagree on the number of time bins: X has 10"),
        (lambda b: b[:, :, 0], r"ambiguous: per-bin behavior must be 3-D .* = \(24, 10, n_be"),
        (lambda b: b[None], r"per-bin behavior .* or trial-level behavior"),
        (lambda b: with_value(b, np.inf), "contains infinity"),
        (lambda b: b[:, :, :0], "no behavior channels"),
        (lambda b: np.full(b.shape, "a"), "must hold numbers"),
    ],
)
def test_bad_behavior_in_fit(trials, tiny, make_b, match):
    X, b = trials
    with pytest.raises(ValueError, match=match):
        BlendEstimator(**tiny).fit(X, make_b(b))


def test_behavior_is_never_rounded(trials, tiny):
    X, b = trials
    est = BlendEstimator(random_state=0, **tiny).fit(X, b * 0.001)  # all |b| < 1
    encoding = est.teacher_.behavior_encoding_
    np.testing.assert_allclose(list(encoding.mean.values()), b.mean(axis=(0, 1)) * 0.001,
                               rtol=1e-4)
    assert min(encoding.scale.values()) < 0.01  # the true scale, not a rounded one
    encoded = est.teacher_.encode_behavior(b * 0.001, X)
    assert len(np.unique(encoded[..., 0])) > 100


def test_distillation_needs_behavior(trials, tiny):
    X, _ = trials
    with pytest.raises(ValueError,
                       match="strategy='feature' distils a teacher that needs behavior"):
        BlendEstimator(**tiny).fit(X)
    BlendEstimator(strategy=None, **tiny).fit(X)  # the plain model does not


def test_keyword_behavior_is_checked_by_its_name(trials, tiny):
    X, b = trials
    with pytest.raises(ValueError, match="X and behavior disagree"):
        BlendEstimator(**tiny).fit(X, None, behavior=b[:3])


def test_transform_checks_neurons_and_bins(fitted, trials):
    X, _ = trials
    with pytest.raises(ValueError, match="X has 5 features, but BlendEstimator is expecting 6"):
        fitted.transform(X[..., :5])
    with pytest.raises(ValueError, match="1-D array"):
        fitted.transform(X[0, 0])
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict_rates(with_value(X, np.nan))
    with pytest.raises(ValueError, match="X has 7 features"):
        fitted.score(np.zeros((2, 10, 7)))


def test_unfitted_estimators_say_so(trials):
    from sklearn.exceptions import NotFittedError

    X, b = trials
    with pytest.raises(NotFittedError):
        BlendEstimator().transform(X)
    with pytest.raises(NotFittedError):
        BlendTeacher().predict_rates(X, b)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(strategy="kd"), ValueError, "strategy must be one of"),
        (dict(base="lstm"), ValueError, "base must be one of"),
        (dict(alpha=1.5), ValueError, r"alpha must be in \[0, 1\]"),
        (dict(tau=0), ValueError, r"tau must be in \(0, inf\]"),
        (dict(mask_ratio=1.0), ValueError, r"mask_ratio must be in \(0, 1\)"),
        (dict(base="ndt", hidden_size=10, n_heads=3), ValueError, "divisible by n_heads"),
        (dict(max_epochs=2.5), TypeError, "max_epochs must be an int"),
        (dict(output="spikes"), ValueError, "output must be one of"),
        (dict(device="cuda:0"), ValueError, "CUDA is not available"),
        (dict(device="gpu0"), ValueError, "not a PyTorch device"),
        (dict(random_state="0"), TypeError, "random_state must be"),
        (dict(teacher_cache=3), TypeError, "teacher_cache must be"),
        (dict(early_stopping="yes"), TypeError, "early_stopping must be True or False"),
        (dict(precision="float16"), ValueError, "precision must be one of"),
    ],
)
def test_bad_parameters_fail_in_fit_not_in_init(trials, params, error, match):
    X, b = trials
    est = BlendEstimator(**params)  # __init__ only stores
    with pytest.raises(error, match=match):
        est.fit(X, b)


def test_teacher_needs_behavior(trials, tiny):
    X, _ = trials
    with pytest.raises(ValueError, match="b \\(behavior"):
        BlendTeacher(**tiny).fit(X, None)


def test_perbin_checks_shapes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 4, 3))
    from sklearn.linear_model import Ridge

    with pytest.raises(ValueError, match="disagree on the number of trials"):
        PerBin(Ridge()).fit(X, rng.normal(size=(5, 4)))
    with pytest.raises(ValueError, match=r"y must be \(n_trials, n_time"):
        PerBin(Ridge()).fit(X, rng.normal(size=(6, 3)))
    model = PerBin(Ridge()).fit(X, rng.normal(size=(6, 4, 2)))
    with pytest.raises(ValueError, match="X has 2 features, but PerBin is expecting 3"):
        model.predict(X[..., :2])


def test_perbin_drops_bins_with_missing_targets_like_nlb():
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 5, 3))
    y = X @ np.array([[1.0], [-1.0], [2.0]])
    y_missing = y.copy()
    y_missing[0, :2] = np.nan
    model = PerBin(LinearRegression()).fit(X, y_missing)
    assert model.score(X, y_missing) == pytest.approx(1.0)
    assert model.predict(X).shape == (8, 5, 1)

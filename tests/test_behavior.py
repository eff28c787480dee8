"""Behavior of every form: per bin, per trial, categorical, partly missing."""

import numpy as np
import pandas as pd
import pytest

from sklearn_blend import BlendEstimator
from sklearn_blend.data.behavior import BehaviorEncoding, read_behavior
from sklearn_blend.models import TrialBehaviorEmbedding

pytestmark = pytest.mark.filterwarnings("ignore:early stopping needs")

SPIKES = np.zeros((4, 3, 2), dtype=np.float32)


def encode(b, **kwargs):
    raw = read_behavior(b, SPIKES, **kwargs)
    encoding = BehaviorEncoding(raw)
    return encoding, encoding.transform(raw)


def test_per_bin_continuous_behavior_is_standardised_not_rounded():
    b = np.arange(24, dtype=float).reshape(4, 3, 2) * 0.01
    encoding, encoded = encode(b)
    assert encoding.per_bin and encoding.width == 2 and not encoding.missing
    assert encoded.shape == (4, 3, 2)
    np.testing.assert_allclose(encoded.mean(axis=(0, 1)), 0, atol=1e-6)
    np.testing.assert_allclose(encoded.std(axis=(0, 1)), 1, atol=1e-5)


def test_trial_level_array_with_a_declared_categorical_column():
    b = np.array([[0.5, 2], [1.5, 7], [np.nan, 2], [1.0, 7]])
    encoding, encoded = encode(b, categorical=[1])
    assert not encoding.per_bin and encoding.categories == {1: [2.0, 7.0]}
    # continuous, two one-hot channels, then one "observed" channel per column
    assert encoded.shape == (4, 1 + 2 + 2)
    np.testing.assert_array_equal(encoded[:, 1:3], [[1, 0], [0, 1], [1, 0], [0, 1]])
    np.testing.assert_array_equal(encoded[:, 3], [1, 1, 0, 1])  # trial 2's value is missing
    assert encoded[2, 0] == 0.0


def test_dataframe_categories_come_from_the_dtype_or_the_declaration():
    df = pd.DataFrame({
        "theta": pd.Categorical(["left", "right", None, "left"]),
        "is_eye": [1, 0, 0, 1],
        "tp": [0.8, 1.1, 0.9, np.nan],
    })
    encoding, encoded = encode(df, categorical=["is_eye"])
    assert encoding.categories == {0: ["left", "right"], 1: [0, 1]}
    assert encoded.shape == (4, 2 + 2 + 1 + 3)
    np.testing.assert_array_equal(encoded[2, :2], [0, 0])  # missing category: no channel on
    with pytest.raises(ValueError, match=r"column 'theta' has categories \['up'\]"):
        encoding.transform(read_behavior(
            df.assign(theta=pd.Categorical(["up"] * 4)), SPIKES, categorical=["is_eye"]))


def test_nullable_missing_values_are_missing_not_a_category():
    df = pd.DataFrame({"choice": pd.array([1, 2, None, 1], dtype="Int64"),
                       "label": pd.array(["a", None, "b", "a"], dtype="string")})
    encoding, encoded = encode(df, categorical=["choice", "label"])
    assert encoding.categories == {0: [1, 2], 1: ["a", "b"]} and encoding.missing
    np.testing.assert_array_equal(encoded[:, -2:], [[1, 1], [1, 0], [0, 1], [1, 1]])


def test_dataframe_columns_are_matched_by_name():
    df = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [100.0, 200, 300, 400]})
    encoding, _ = encode(df)
    with pytest.raises(ValueError, match=r"has columns \['b', 'a'\], but fit saw \['a', 'b'\]"):
        encoding.transform(read_behavior(df[["b", "a"]], SPIKES))
    with pytest.raises(ValueError, match="is an array, but fit saw a DataFrame"):
        encoding.transform(read_behavior(df.to_numpy(), SPIKES))
    # a Series is one trial-level column
    assert encode(df["a"])[1].shape == (4, 1)


def test_strings_must_be_declared_categorical():
    df = pd.DataFrame({"choice": ["a", "b", "a", "b"]})
    with pytest.raises(TypeError, match="column 'choice' is not numeric; declare it"):
        read_behavior(df, SPIKES)
    assert encode(df, categorical="choice")[1].shape == (4, 2)


def test_per_bin_categorical_task_phase():
    phase = np.tile([0, 1, 2], (4, 1))[..., None]
    encoding, encoded = encode(phase, categorical=0)
    assert encoded.shape == (4, 3, 3)
    np.testing.assert_array_equal(encoded[0], np.eye(3))


def test_missing_values_need_missing_values_in_fit():
    b = np.ones((4, 3, 1))
    encoding, _ = encode(b)
    b[0, 0] = np.nan
    with pytest.raises(ValueError, match="fitted on behavior without any"):
        encoding.transform(read_behavior(b, SPIKES))


@pytest.mark.parametrize(
    "b, kwargs, match",
    [
        (np.full((4, 3, 1), np.inf), {}, "contains infinity"),
        (np.ones((4, 3)), {}, "is ambiguous"),
        (np.ones((4, 2)), {"categorical": [5]}, "names column 5"),
        (pd.DataFrame({"a": [1, 2, 3]}), {}, "disagree on the number of trials"),
        (pd.DataFrame({"a": [1, 2, 3, 4]}), {"categorical": ["b"]}, "does not have"),
        (np.array([[1.0], [np.inf], [1], [2]]), {"categorical": [0]}, "infinity in categorical"),
    ],
)
def test_bad_behavior_is_a_clear_error(b, kwargs, match):
    with pytest.raises(ValueError, match=match):
        read_behavior(b, SPIKES, **kwargs)


@pytest.fixture
def small(tiny):
    return dict(tiny, random_state=0)


def test_trial_level_behavior_is_embedded_per_bin(trials, small):
    X, b = trials
    trial_b = b.mean(axis=1)  # (24, 2): one row per trial
    est = BlendEstimator(strategy="hard", **small).fit(X, trial_b)
    assert isinstance(est.teacher_.model_.embedding, TrialBehaviorEmbedding)
    assert est.transform(X).shape == X.shape  # the student needs spikes only
    rates = est.teacher_.predict_rates(X, trial_b)
    assert not np.allclose(rates, est.teacher_.predict_rates(X, trial_b + 1.0))
    with pytest.raises(ValueError, match="must be trial-level behavior"):
        est.teacher_.predict_rates(X, b)


def test_discrete_trial_labels_from_a_dataframe(trials, small):
    X, _ = trials
    rng = np.random.default_rng(0)
    labels = pd.DataFrame({
        "is_short": pd.Categorical(rng.choice(["short", "long"], 24)),
        "theta": rng.choice([0, 180], 24),
        "ts": rng.uniform(0.5, 1.0, 24),
    })
    est = BlendEstimator(strategy="correlation", categorical_behavior=["theta"], **small)
    est.fit(X, labels)
    assert est.teacher_.behavior_encoding_.width == 2 + 2 + 1
    assert est.n_behavior_in_ == 3
    assert est.teacher_.predict_rates(X, labels).shape == X.shape


def test_partly_missing_behavior_bins_and_trials(trials, small):
    X, b = trials
    b = b.copy()
    b[:12] = np.nan        # half of the trials without behavior
    b[12:, :3, 1] = np.nan  # and some missing bins in the others
    est = BlendEstimator(strategy="hard", **small).fit(X, b)
    encoding = est.teacher_.behavior_encoding_
    assert encoding.missing and encoding.width == 4
    assert encoding.observed_fraction == pytest.approx(1 - 0.5 - 0.5 * 0.3 / 2)
    assert np.all(np.isfinite(est.transform(X)))
    assert np.all(np.isfinite(est.student_net_.history[:, "train_distill"]))
    assert np.all(np.isfinite(est.teacher_.predict_rates(X, b)))


def test_all_missing_behavior_warns_that_it_is_self_distillation(trials, small):
    X, b = trials
    with pytest.warns(UserWarning, match="self-distillation"):
        BlendEstimator(strategy="hard", **small).fit(X, np.full_like(b, np.nan))


def test_student_beats_the_no_behavior_model_when_half_the_trials_lack_behavior():
    # synthetic "simple" family: rates are a function of behavior; the teacher sees behavior
    # on 60 of the 120 training trials only, the student distils on all of them
    from sklearn_blend.datasets import make_synthetic
    from sklearn_blend.metrics import vel_r2

    X, b = make_synthetic("simple", n_trials=160, n_time=40, n_neurons=80, random_state=0)
    train, test = slice(0, 120), slice(120, None)
    partial = b[train].copy()
    partial[np.random.default_rng(0).permutation(120)[:60]] = np.nan
    params = dict(base="ndt", hidden_size=32, n_layers=1, ffn_size=64, dropout=0.2, max_epochs=150,
                  batch_size=16, lr=3e-3, warmup_steps=5, early_stopping=False, random_state=0)
    plain = BlendEstimator(strategy=None, **params).fit(X[train])
    student = BlendEstimator(strategy="hard", **params).fit(X[train], partial)
    assert student.teacher_.behavior_encoding_.observed_fraction == 0.5

    def decoded(model):
        return vel_r2(model.transform(X[train]), b[train], model.transform(X[test]), b[test])

    assert decoded(student) > decoded(plain) + 0.1
    assert student.score(X[test]) > plain.score(X[test])

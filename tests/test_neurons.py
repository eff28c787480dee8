"""Per-neuron samples: Recordings, the NeuPRINT model, its masking and NeuronEmbedding."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing

from sklearn_blend import BlendEstimator, NeuronEmbedding, Recordings
from sklearn_blend.training import teacher_cache as _teacher_cache
from sklearn_blend.training.neurons import neuron_samples
from sklearn_blend.losses import masked_mse_loss
from sklearn_blend.masking import corrupt_entries, random_entry_mask
from sklearn_blend.models import NeuPRINT, NeuPRINTConfig
from sklearn_blend.models.neuprint import population_statistics

from .helpers import TINY, TINY_NEURONS, assert_same


@pytest.fixture(scope="module")
def sessions():
    """Two sessions (80 and 64 frames, 12 and 9 neurons) with 2 behavior channels, and labels.

    Half the neurons ("IN") follow the first behavior channel, the others do not.
    """
    rng = np.random.default_rng(0)
    activity, behavior, labels = [], [], []
    for n_frames, n_neurons in ((80, 12), (64, 9)):
        b = rng.normal(size=(n_frames, 2)).astype(np.float32)
        label = np.array(["IN", "EC"] * (n_neurons // 2) + ["EC"] * (n_neurons % 2))
        gain = np.where(label == "IN", 1.0, 0.0)
        a = gain * b[:, :1] + rng.normal(size=(n_frames, n_neurons))
        activity.append(a.astype(np.float32))
        behavior.append(b)
        labels.append(label)
    return Recordings(activity, behavior), np.concatenate(labels)


# ---------------------------------------------------------------- Recordings
def test_recordings_select_neurons_and_keep_sessions(sessions):
    recordings, labels = sessions
    assert recordings.shape == (21, 1) and len(recordings) == len(labels)
    assert recordings.n_sessions == 2 and recordings.n_behavior == 2
    view = recordings[[0, 12, 20]]
    assert_same(view.sessions, [0, 1, 1])
    assert_same(view.neuron_index, [0, 0, 8])
    assert view.activity is recordings.activity  # shared, not copied
    assert len(recordings[recordings.sessions == 1]) == 9
    assert len(recordings[3:7]) == 4 and len(recordings[5]) == 1
    # what scikit-learn's splitters and search use
    picked = _safe_indexing(recordings, np.array([1, 2]))
    assert isinstance(picked, Recordings) and len(picked) == 2
    assert view.neuron_keys() == [recordings.neuron_keys()[i] for i in (0, 12, 20)]


def test_recordings_reject_bad_input():
    good = np.zeros((10, 3))
    with pytest.raises(ValueError, match=r"activity\[0\] must be 2-D"):
        Recordings([np.zeros(10)])
    with pytest.raises(ValueError, match="NaN"):
        Recordings(np.full((10, 3), np.nan))
    with pytest.raises(ValueError, match="behavior has 2 sessions"):
        Recordings([good], [np.zeros((10, 2))] * 2)
    with pytest.raises(ValueError, match=r"behavior\[0\] has 9 frames"):
        Recordings(good, np.zeros((9, 2)))
    with pytest.raises(ValueError, match="same columns"):
        Recordings([good, good], [np.zeros((10, 2)), np.zeros((10, 3))])
    with pytest.raises(ValueError, match=r"not a \(session, neuron\) pair"):
        Recordings(good, neurons=[[0, 3]])
    with pytest.raises(TypeError, match="2-D array"):
        Recordings("activity")
    with pytest.raises(IndexError, match="indexed by neuron"):
        Recordings(good)[0, 1]
    with pytest.raises(IndexError, match="indexed by neuron"):
        Recordings(good)[[0, 1], np.array([0, 1])]


# ---------------------------------------------------------------- model and masking
def test_neuprint_is_causal_and_equivariant_over_neurons():
    torch.manual_seed(0)
    model = NeuPRINT(NeuPRINTConfig(n_neurons=6, hidden_size=8, embedding_dim=4, ffn_size=8,
                                    dropout=0.0)).eval()
    x = torch.randn(2, 12, 6)
    population = population_statistics(x)
    out = model(x, population=population).log_rates
    # causal: changing frames after t leaves frames up to t unchanged
    later = x.clone()
    later[:, 7:] = torch.randn(2, 5, 6)
    torch.testing.assert_close(model(later, population=population).log_rates[:, :7],
                               out[:, :7])
    # permuting neurons (with their embeddings) permutes the predictions
    order = torch.tensor([3, 1, 5, 0, 2, 4])
    permuted = model(x[..., order], neuron_ids=order, population=population).log_rates
    torch.testing.assert_close(permuted, out[..., order])
    torch.testing.assert_close(population_statistics(x[..., order]), population)


def test_entry_mask_and_corruption():
    generator = torch.Generator().manual_seed(0)
    mask = random_entry_mask((200, 50, 20), 0.25, generator=generator)
    assert mask[:, -1].all()
    assert abs(mask[:, :-1].float().mean().item() - 0.25) < 0.01
    x = torch.randn(200, 50, 20) + 10.0
    corrupted = corrupt_entries(x, mask, generator=generator)
    assert_same(corrupted[~mask], x[~mask])
    masked = corrupted[mask]
    kept = (masked == x[mask]).float().mean().item()
    zero = (masked == 0).float().mean().item()
    assert abs(zero - 0.8) < 0.01 and abs(kept - 0.1) < 0.01


def test_masked_mse_loss():
    predictions, targets = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 0.0])
    assert masked_mse_loss(predictions, targets).item() == pytest.approx(20 / 3)
    mask = torch.tensor([True, True, False])
    assert masked_mse_loss(predictions, targets, mask).item() == pytest.approx(2.0)


def test_neuprint_base_of_blend_estimator(trials):
    X, b = trials
    est = BlendEstimator(strategy="feature", n_heldout=2, random_state=0,
                         base_params={"embedding_dim": 4},
                         **dict(TINY, base="neuprint")).fit(X, b)
    rates = est.transform(X)
    assert rates.shape == X.shape and np.isfinite(rates).all()


def test_samples_cut_windows_of_neuron_groups_with_standardised_behavior(sessions):
    recordings, _ = sessions
    scaled = Recordings(recordings.activity, [100 + 30 * b for b in recordings.behavior])
    rows = np.arange(len(scaled))
    data = neuron_samples(scaled, rows, n_window=16, group_size=4, seed=0, with_behavior=True)
    # session 0: 5 windows x 3 groups; session 1: 4 windows x 3 groups (9 neurons, 1 refilled)
    assert data["activity"].shape == (27, 16, 4) and data["neuron_ids"].shape == (27, 4)
    assert data["population"].shape == (27, 16, 2) and data["behavior"].shape == (27, 16, 2)
    np.testing.assert_allclose(data["behavior"].reshape(-1, 2).mean(0), 0, atol=0.2)
    np.testing.assert_allclose(data["behavior"].reshape(-1, 2).std(0), 1, atol=0.2)
    # each sample's columns are the activity of the neurons its ids name, in window order
    first = data["neuron_ids"][0]
    assert_same(data["activity"][0], recordings.activity[0][:16, first])
    assert set(np.unique(data["neuron_ids"])) == set(rows)


# ---------------------------------------------------------------- NeuronEmbedding
@pytest.mark.parametrize("strategy", ["hard", "soft", "feature", "correlation", None])
def test_fit_transform_shapes_and_reproducibility(sessions, strategy):
    recordings, _ = sessions
    emb = NeuronEmbedding(strategy, random_state=0, **TINY_NEURONS)
    Z = emb.fit_transform(recordings)
    assert Z.shape == (21, 4) and Z.dtype == np.float32 and np.isfinite(Z).all()
    assert (emb.teacher_net_ is None) == (strategy is None)
    assert_same(clone(emb).fit(recordings).embeddings_, emb.embeddings_)
    assert emb.get_feature_names_out().tolist() == [f"neuronembedding{i}" for i in range(4)]


def test_unseen_neurons_get_embeddings_with_frozen_dynamics(sessions):
    recordings, _ = sessions
    train, test = recordings[:14], recordings[14:]
    emb = NeuronEmbedding(None, random_state=0, **TINY_NEURONS).fit(train)
    before = {k: v.clone() for k, v in emb.student_.state_dict().items()}
    Z_test = emb.transform(test)
    assert Z_test.shape == (7, 4) and np.isfinite(Z_test).all()
    assert not np.allclose(Z_test, emb.embeddings_.mean(0))  # they moved from the start
    for name, value in emb.student_.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert_same(emb.transform(test), Z_test)  # seeded
    assert_same(emb.transform(recordings)[:14], emb.embeddings_)  # seen: the fitted table
    # a neuron is known by its trace, whatever object it comes in
    copy = Recordings([a.copy() for a in recordings.activity])
    assert_same(emb.transform(copy[:14]), emb.embeddings_)


def test_pipeline_grid_search_over_alpha_and_tau(sessions, monkeypatch):
    recordings, labels = sessions
    fits = []
    original = _teacher_cache._fit
    monkeypatch.setattr(_teacher_cache, "_fit", lambda *a: fits.append(1) or original(*a))
    pipe = Pipeline([("emb", NeuronEmbedding("soft", random_state=0, **TINY_NEURONS)),
                     ("clf", LogisticRegression())])
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    search = GridSearchCV(pipe, {"emb__alpha": [0.3, 0.7], "emb__tau": [1.0, 4.0]}, cv=cv)
    search.fit(recordings, labels)
    assert set(search.best_params_) == {"emb__alpha", "emb__tau"}
    assert len(fits) == 2 + 1  # one teacher per fold, and one for the refit on all neurons
    assert search.predict(recordings[:5]).shape == (5,)
    scores = cross_val_score(pipe, recordings, labels, cv=cv)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


def test_two_d_array_is_one_session_of_neuron_rows(sessions):
    recordings, _ = sessions
    rows = recordings.activity[0].T  # (12 neurons, 80 frames)
    emb = NeuronEmbedding(None, random_state=0, **TINY_NEURONS).fit(rows)
    assert emb.n_features_in_ == 80
    assert_same(emb.transform(rows[3:5]), emb.embeddings_[3:5])
    with pytest.raises(ValueError, match="80 features"):
        emb.transform(rows[:, :40])


def test_refit_on_recordings_forgets_the_frame_count_of_a_two_d_fit(sessions):
    recordings, _ = sessions
    emb = NeuronEmbedding(None, random_state=0, **TINY_NEURONS).fit(recordings.activity[0].T)
    emb.fit(recordings)
    assert not hasattr(emb, "n_features_in_")
    assert emb.transform(recordings.activity[1].T).shape == (9, 4)  # 64 frames, not 80


def test_identical_traces_share_an_embedding_with_a_warning(sessions):
    recordings, _ = sessions
    activity = recordings.activity[0].copy()
    activity[:, 1] = activity[:, 0]
    with pytest.warns(UserWarning, match="1 selected neuron"):
        emb = NeuronEmbedding(None, random_state=0, **TINY_NEURONS).fit(Recordings(activity))
    Z = emb.transform(Recordings(activity))
    assert_same(Z[0], Z[1])


def test_pickle_round_trip(sessions):
    recordings, _ = sessions
    emb = NeuronEmbedding("hard", random_state=0, **TINY_NEURONS).fit(recordings[:10])
    restored = pickle.loads(pickle.dumps(emb))
    assert_same(restored.transform(recordings), emb.transform(recordings))


def test_clear_errors(sessions):
    recordings, _ = sessions
    no_behavior = Recordings(recordings.activity)
    with pytest.raises(ValueError, match="strategy='hard' distils a teacher that reads"):
        NeuronEmbedding("hard", **TINY_NEURONS).fit(no_behavior)
    with pytest.raises(ValueError, match="loss='poisson' needs non-negative"):
        NeuronEmbedding(None, loss="poisson", **TINY_NEURONS).fit(recordings)
    with pytest.raises(TypeError, match="wrap the sessions as Recordings"):
        NeuronEmbedding(None).fit(recordings.activity)
    with pytest.raises(ValueError, match="strategy must be one of"):
        NeuronEmbedding("kd").fit(recordings)
    with pytest.raises(ValueError, match="group_size must be in"):
        NeuronEmbedding(None, group_size=0).fit(recordings)
    with pytest.raises(ValueError, match="divisible by n_heads"):
        NeuronEmbedding(None, hidden_size=9).fit(recordings)
    with pytest.raises(ValueError, match="0 samples"):
        NeuronEmbedding(None, **TINY_NEURONS).fit(recordings[[]])


def test_poisson_loss_on_counts(sessions):
    recordings, _ = sessions
    counts = Recordings([np.abs(np.round(a)) for a in recordings.activity])
    Z = NeuronEmbedding(None, loss="poisson", random_state=0, **TINY_NEURONS).fit_transform(
        counts)
    assert np.isfinite(Z).all()


def test_behavior_inputs_is_the_students_teacher(sessions, monkeypatch):
    recordings, _ = sessions
    fits = []
    original = _teacher_cache._fit
    monkeypatch.setattr(_teacher_cache, "_fit", lambda *a: fits.append(1) or original(*a))
    reference = NeuronEmbedding(None, behavior_inputs=True, random_state=0,
                                **TINY_NEURONS).fit(recordings)
    assert reference.teacher_net_ is None and reference.n_behavior_in_ == 2
    assert reference.student_.config.n_population == 4  # mean, sd, 2 behavior channels
    student = NeuronEmbedding("hard", random_state=0, **TINY_NEURONS).fit(recordings)
    assert len(fits) == 1  # the student's teacher is the reference model, from the cache
    teacher_table = student.teacher_net_.module_.model.embedding.weight.detach().numpy()
    assert_same(reference.embeddings_, teacher_table)
    # without the cache the same model is trained again, bit for bit
    fresh = NeuronEmbedding(None, behavior_inputs=True, random_state=0, teacher_cache=False,
                            **TINY_NEURONS).fit(recordings)
    assert_same(fresh.embeddings_, reference.embeddings_)


def test_behavior_inputs_embeds_unseen_neurons_with_their_behavior(sessions):
    recordings, _ = sessions
    emb = NeuronEmbedding(None, behavior_inputs=True, random_state=0,
                          **TINY_NEURONS).fit(recordings[:14])
    Z = emb.transform(recordings[14:])
    assert Z.shape == (7, 4) and np.isfinite(Z).all()
    assert_same(emb.transform(recordings[14:]), Z)
    # seen neurons need no behavior; unseen ones do, with fit's channels
    assert_same(emb.transform(Recordings(recordings.activity)[:14]), emb.embeddings_)
    with pytest.raises(ValueError, match=r"not seen in fit.*behavior \(n_frames, 2\)"):
        emb.transform(Recordings(recordings.activity)[14:])
    one_channel = Recordings(recordings.activity, [b[:, :1] for b in recordings.behavior])
    with pytest.raises(ValueError, match=r"behavior \(n_frames, 2\)"):
        emb.transform(one_channel[14:])


def test_behavior_inputs_errors(sessions):
    recordings, _ = sessions
    with pytest.raises(ValueError, match="behavior_inputs=True reads behavior"):
        NeuronEmbedding(None, behavior_inputs=True, **TINY_NEURONS).fit(
            Recordings(recordings.activity))
    with pytest.raises(ValueError, match="a student .strategy='hard'. never reads it"):
        NeuronEmbedding("hard", behavior_inputs=True, **TINY_NEURONS).fit(recordings)
    with pytest.raises(TypeError, match="behavior_inputs must be True or False"):
        NeuronEmbedding(None, behavior_inputs="yes", **TINY_NEURONS).fit(recordings)

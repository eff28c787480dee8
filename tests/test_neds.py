"""NEDS: the multi-task token mask, the model's streams and sessions, and its training recipe."""

import dataclasses

import numpy as np
import pytest
import torch

from sklearn_blend.masking import SCHEMES, multitask_mask
from sklearn_blend.models.neds import NEDS, NedsConfig
from sklearn_blend.training.core import GRAD_CLIP, TrainingConfig, fit_net
from sklearn_blend.training.neds import MultiTaskMasking, NedsBuilder, neds_modalities
from sklearn_blend.training.objective import Objective, pack

CONFIG = NedsConfig(n_neurons=(6, 4), n_time=12, behavior_groups=((0, 1), (2,)), n_trial=1,
                    n_classes=(3,), hidden_size=8, n_layers=1, n_heads=2, ffn_size=16,
                    dropout=0.0, embedding_dropout=0.0)
PER_BIN = [True, True, True, False, False]  # spikes, 2 behavior groups, trial, label0


def _mask(scheme, n=200, n_time=50, ratio=0.3, seed=0):
    schemes = torch.full((n,), SCHEMES.index(scheme))
    return multitask_mask(schemes, n_time, PER_BIN, ratio,
                          generator=torch.Generator().manual_seed(seed))


def test_encoding_hides_every_spike_token_and_no_behavior():
    mask = _mask("encoding")
    assert mask[..., 0].all() and not mask[..., 1:].any()


def test_decoding_hides_every_behavior_token_and_no_spike():
    mask = _mask("decoding")
    assert not mask[..., 0].any() and mask[..., 1:].all()


def test_self_spike_hides_spike_bins_at_the_ratio_only():
    mask = _mask("self_spike")
    assert not mask[..., 1:].any()
    assert abs(mask[..., 0].float().mean().item() - 0.3) < 0.02
    assert not torch.equal(mask[0, :, 0], mask[1, :, 0])  # each sample draws its own bins


def test_self_behavior_draws_each_behavior_stream_apart_and_trial_streams_whole():
    mask = _mask("self_behavior")
    assert not mask[..., 0].any()
    assert abs(mask[..., 1].float().mean().item() - 0.3) < 0.02
    assert not torch.equal(mask[..., 1], mask[..., 2])  # drawn per stream
    for stream in (3, 4):  # per-trial streams: all bins or none
        per_sample = mask[..., stream].float().mean(1)
        assert set(per_sample.unique().tolist()) <= {0.0, 1.0}
        assert 0.15 < per_sample.mean().item() < 0.45


def test_cross_modal_hides_the_same_bins_in_every_per_bin_stream():
    mask = _mask("cross_modal")
    assert torch.equal(mask[..., 0], mask[..., 1]) and torch.equal(mask[..., 0], mask[..., 2])
    assert abs(mask[..., 0].float().mean().item() - 0.3) < 0.02


def test_ratio_acts_and_draws_do_not_depend_on_the_schemes():
    assert abs(_mask("self_spike", ratio=0.6)[..., 0].float().mean().item() - 0.6) < 0.03
    mixed = multitask_mask(torch.tensor([2, 4]), 50, PER_BIN, 0.3,
                           generator=torch.Generator().manual_seed(0))
    alone = multitask_mask(torch.tensor([2, 2]), 50, PER_BIN, 0.3,
                           generator=torch.Generator().manual_seed(0))
    assert torch.equal(mixed[0], alone[0])


def test_scheme_probs_pick_the_schemes():
    masking = MultiTaskMasking(CONFIG, [0, 1, 0, 0, 0], 0.3)
    schemes, mask = masking.draw(100, 12, torch.Generator().manual_seed(0))
    assert (schemes == 1).all() and mask[..., 1:].all() and not mask[..., 0].any()


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    session = np.array([0, 1] * (n // 2))
    spikes = rng.poisson(1.0, size=(n, 12, 6)).astype(np.float32)
    spikes[session == 1, :, 4:] = 0  # session 1 has 4 neurons
    behavior = rng.normal(size=(n, 12, 3)).astype(np.float32)
    trial = rng.normal(size=(n, 1)).astype(np.float32)
    labels = rng.integers(0, 3, size=(n, 1))
    return dict(spikes=spikes, behavior=behavior, trial=trial, labels=labels,
                session=session.astype(np.int64))


def _tensors(batch):
    return {k: torch.as_tensor(v) for k, v in batch.items()}


def test_missing_behavior_is_hidden_and_not_scored_and_padding_is_not_scored():
    batch = _batch()
    batch["behavior"][0, 3:5, 2] = np.nan  # group 1 (column 2) missing in two bins
    batch["trial"][1] = np.nan
    batch["labels"][2] = -1
    inputs = _tensors(batch)
    targets = {"spikes": inputs["spikes"], "behavior": inputs["behavior"],
               "trial": inputs["trial"], "label0": inputs["labels"][:, 0]}
    masking = MultiTaskMasking(CONFIG, [0, 0, 1, 0, 0], 0.3)  # self_spike: behavior visible
    view = masking(inputs, targets, {}, training=True)
    mask = view.inputs["token_mask"]
    assert mask[0, 3:5, 2].all() and not mask[0, :3, 2].any()  # the missing bins only
    assert mask[1, :, 3].all() and mask[2, :, 4].all()
    assert not view.scored["behavior"][0, 3:5, 2].any()
    assert not view.scored["trial"][1].any() and not view.scored["label0"][2]
    for name in ("behavior", "trial"):
        assert torch.isfinite(view.inputs[name]).all() and torch.isfinite(view.targets[name]).all()
    assert (view.inputs["labels"] >= 0).all()
    assert not view.scored["spikes"][1, :, 4:].any()  # padding of session 1's trials
    assert torch.equal(view.scored["spikes"][0, :, 0], mask[0, :, 0])  # hidden bins only


@pytest.mark.parametrize("rotary", [True, False])
def test_hidden_tokens_do_not_reach_the_outputs(rotary):
    torch.manual_seed(0)
    model = NEDS(dataclasses.replace(CONFIG, rotary=rotary)).eval()
    inputs = _tensors(_batch())
    mask = torch.zeros(8, 12, 5, dtype=torch.bool)
    mask[..., 1] = True  # behavior group 0 hidden everywhere
    out = model(**{k: inputs[k] for k in ("spikes", "behavior", "trial", "labels")},
                session=inputs["session"], token_mask=mask)
    changed = inputs["behavior"].clone()
    changed[..., :2] += 5.0
    again = model(inputs["spikes"], changed, inputs["trial"], inputs["labels"],
                  session=inputs["session"], token_mask=mask)
    assert torch.allclose(out.log_rates, again.log_rates)
    changed[..., 2] += 5.0  # group 1 is visible: it matters
    third = model(inputs["spikes"], changed, inputs["trial"], inputs["labels"],
                  session=inputs["session"], token_mask=mask)
    assert not torch.allclose(out.log_rates, third.log_rates)


def test_each_session_reads_and_predicts_its_own_neurons():
    torch.manual_seed(0)
    model = NEDS(CONFIG).eval()
    inputs = _tensors(_batch())
    mask = torch.zeros(8, 12, 5, dtype=torch.bool)
    args = (inputs["behavior"], inputs["trial"], inputs["labels"])
    out = model(inputs["spikes"], *args, session=inputs["session"], token_mask=mask)
    assert out.log_rates.shape == (8, 12, 6)
    assert (out.log_rates[1::2, :, 4:] == 0).all()  # padding of session 1
    noisy = inputs["spikes"].clone()
    noisy[1::2, :, 4:] = 100.0  # beyond session 1's neurons: ignored
    again = model(noisy, *args, session=inputs["session"], token_mask=mask)
    assert torch.allclose(out.log_rates[1::2], again.log_rates[1::2])
    other = model(inputs["spikes"], *args, session=torch.zeros(8, dtype=torch.long),
                  token_mask=mask)
    assert not torch.allclose(out.log_rates[1::2], other.log_rates[1::2])


def test_objective_weights_scale_each_modality():
    torch.manual_seed(0)
    model_config = CONFIG
    masking = MultiTaskMasking(model_config, [0.2] * 5, 0.3)
    inputs = _tensors(_batch())
    targets = {"spikes": inputs["spikes"], "behavior": inputs["behavior"],
               "trial": inputs["trial"], "label0": inputs["labels"][:, 0]}
    view = masking(inputs, targets, {"valid_mask": torch.ones(8, 12, 5, dtype=torch.bool)},
                   training=False)
    builder = NedsBuilder(model_config, [0.2] * 5, 0.3, [np.ones(6), np.ones(4)])
    model, _ = builder()
    output = model.eval()(view.inputs)
    modalities = neds_modalities(model_config)
    plain = Objective(masking, modalities)(output, view)
    weighted = Objective(masking, modalities, weights={"behavior": 0.0, "label0": 2.0})(
        output, view)
    expected = plain["recon_spikes"] + plain["recon_trial"] + 2 * plain["recon_label0"]
    assert torch.allclose(weighted["recon"], expected)
    with pytest.raises(ValueError, match="weights name"):
        Objective(masking, modalities, weights={"lfp": 1.0})


def test_neds_trains_through_the_core_and_learns():
    rng = np.random.default_rng(0)
    n, n_time, n_neurons = 48, 16, 6
    velocity = np.cumsum(rng.normal(size=(n, n_time, 2)), 1).astype(np.float32) * 0.3
    spikes = rng.poisson(np.exp(0.3 + np.tanh(velocity) @ rng.normal(size=(2, n_neurons))))
    spikes = spikes.astype(np.float32)
    config = NedsConfig(n_neurons=(n_neurons,), n_time=n_time, behavior_groups=((0, 1),),
                        hidden_size=16, n_layers=1, n_heads=2, ffn_size=32)
    data = pack({"spikes": spikes, "behavior": velocity, "session": np.zeros(n, np.int64)},
                {"spikes": spikes, "behavior": velocity})
    training = TrainingConfig(max_epochs=30, batch_size=16, lr=3e-3, weight_decay=0.0,
                              warmup_steps=2, grad_clip=GRAD_CLIP, early_stopping=True,
                              validation_fraction=0.25, n_iter_no_change=20, device="cpu",
                              verbose=0)
    builder = NedsBuilder(config, [0.2] * 5, 0.3, [spikes.mean((0, 1))])
    net = fit_net(builder, data, training, seed=0, description="NEDS")
    losses = net.history[:, "valid_recon_behavior"]
    assert losses[-1] < 0.8 * losses[0]
    again = fit_net(builder, data, training, seed=0, description="NEDS")
    assert np.array_equal(net.history[:, "valid_loss"], again.history[:, "valid_loss"])


# ---------------------------------------------------------------- NedsEstimator
TINY_NEDS = dict(hidden_size=16, n_layers=1, n_heads=2, ffn_size=32, max_epochs=3,
                 batch_size=8, warmup_steps=1, early_stopping=False, random_state=0)


@pytest.fixture(scope="module")
def reaching():
    """Velocity per bin, a per-trial choice and an interval, and spikes tuned to velocity."""
    rng = np.random.default_rng(0)
    n, n_time, n_neurons = 40, 16, 8
    velocity = np.cumsum(rng.normal(size=(n, n_time, 2)), 1) * 0.3
    spikes = rng.poisson(np.exp(0.3 + np.tanh(velocity) @ rng.normal(size=(2, n_neurons))))
    choice = np.where(velocity[:, -1, 0] > 0, "right", "left")
    interval = rng.normal(size=n)
    return spikes, velocity, choice, interval


def test_outputs_have_the_shapes_and_units_of_the_inputs(reaching):
    from sklearn_blend import NedsEstimator

    spikes, velocity, choice, interval = reaching
    b = np.concatenate([velocity, np.repeat(interval[:, None, None], 16, 1)], axis=-1)
    b = b.astype(object)
    b = np.concatenate([b, np.repeat(choice[:, None, None], 16, 1)], axis=-1)
    neds = NedsEstimator(categorical_behavior=[3], trial_behavior=[2, 3], **TINY_NEDS)
    neds.fit(spikes, b)
    assert neds.config_.streams == ("spikes", "behavior0", "behavior1", "trial", "label0")
    decoded = neds.predict(spikes[:5])
    assert decoded.shape == (5, 16, 4) and decoded.dtype == object
    assert set(decoded[..., 3].ravel()) <= {"left", "right"}
    assert (decoded[:, :1, 2] == decoded[:, :, 2]).all()  # per-trial: repeated over bins
    proba = neds.predict_proba(spikes[:5])
    assert len(proba) == 1 and proba[0].shape == (5, 2)
    assert np.allclose(proba[0].sum(1), 1) and list(neds.classes_[0]) == ["left", "right"]
    for rates in (neds.predict_rates(spikes[:5]), neds.predict_rates(b=b[:5]),
                  neds.predict_rates(spikes[:5], b[:5])):
        assert rates.shape == (5, 16, 8) and (rates > 0).all()
    assert neds.transform(spikes[:5]).shape == (5, 16, 16)
    # behavior is standardised with training statistics: in other units, the same model
    # decodes the same values in those units
    plain = NedsEstimator(**TINY_NEDS).fit(spikes, velocity)
    scaled = NedsEstimator(**TINY_NEDS).fit(spikes, 1000 * velocity + 5)
    assert np.allclose(scaled.predict(spikes), 1000 * plain.predict(spikes) + 5, rtol=1e-3,
                       atol=1e-2)


def test_trial_level_behavior_as_a_two_d_array(reaching):
    from sklearn_blend import NedsEstimator

    spikes, _, _, interval = reaching
    b = np.stack([interval, 2 * interval], axis=1)
    neds = NedsEstimator(**TINY_NEDS).fit(spikes, b)
    assert neds.config_.streams == ("spikes", "trial")
    assert neds.predict(spikes).shape == (40, 2)
    assert np.isfinite(neds.score(spikes, b))


def test_missing_behavior_trains_and_is_never_a_target(reaching):
    from sklearn_blend import NedsEstimator

    spikes, velocity, _, _ = reaching
    b = velocity.copy()
    b[:10] = np.nan  # ten trials without behavior
    b[10:20, 5:9, 1] = np.nan
    neds = NedsEstimator(behavior_groups=[[0, 1]], **TINY_NEDS).fit(spikes, b)
    assert np.isfinite(neds.net_.history[:, "train_recon_behavior"]).all()
    assert np.isfinite(neds.predict(spikes)).all()
    assert np.isfinite(neds.score(spikes, b))  # NaN targets are skipped


def test_scheme_probs_and_mask_ratio_change_training(reaching):
    from sklearn_blend import NedsEstimator

    spikes, velocity, _, _ = reaching
    base = NedsEstimator(**TINY_NEDS).fit(spikes, velocity)
    losses = base.net_.history[:, "train_loss"]
    for change in ({"mask_ratio": 0.6}, {"scheme_probs": {"decoding": 1.0}}):
        other = NedsEstimator(**dict(TINY_NEDS, **change)).fit(spikes, velocity)
        assert not np.allclose(other.net_.history[:, "train_loss"], losses), change
    decoding_only = NedsEstimator(**dict(TINY_NEDS, scheme_probs={"decoding": 1.0}))
    history = decoding_only.fit(spikes, velocity).net_.history
    assert all(v == 0 for v in history[:, "train_recon_spikes"])  # spikes never hidden


def test_encoding_from_behavior_beats_the_mean_rate(reaching):
    from sklearn_blend import NedsEstimator
    from sklearn_blend.metrics import bits_per_spike

    spikes, velocity, _, _ = reaching
    neds = NedsEstimator(**dict(TINY_NEDS, max_epochs=40, lr=3e-3,
                                scheme_probs={"encoding": 1.0}))
    neds.fit(spikes[:30], velocity[:30])
    assert bits_per_spike(neds.predict_rates(b=velocity[30:]), spikes[30:]) > 0.05


def test_seeded_fits_are_reproducible(reaching):
    from sklearn_blend import NedsEstimator

    spikes, velocity, _, _ = reaching
    a = NedsEstimator(**TINY_NEDS).fit(spikes, velocity).predict(spikes)
    b = NedsEstimator(**TINY_NEDS).fit(spikes, velocity).predict(spikes)
    assert np.array_equal(a, b)


def test_clear_errors(reaching):
    from sklearn_blend import NedsEstimator

    spikes, velocity, choice, _ = reaching
    with pytest.raises(ValueError, match="requires y to be passed"):
        NedsEstimator(**TINY_NEDS).fit(spikes, None)
    with pytest.raises(ValueError, match="unknown schemes"):
        NedsEstimator(scheme_probs={"decode": 1.0}).fit(spikes, velocity)
    with pytest.raises(ValueError, match="must list every per-bin"):
        NedsEstimator(behavior_groups=[[0]], **TINY_NEDS).fit(spikes, velocity)
    with pytest.raises(ValueError, match="vary per bin"):
        labels = np.repeat(choice[:, None, None], 16, 1)
        NedsEstimator(categorical_behavior=[0], **TINY_NEDS).fit(spikes, labels)
    changing = np.concatenate([velocity, velocity[..., :1]], axis=-1)
    with pytest.raises(ValueError, match="changes within trial"):
        NedsEstimator(trial_behavior=[2], **TINY_NEDS).fit(spikes, changing)
    neds = NedsEstimator(**TINY_NEDS).fit(spikes, velocity)
    with pytest.raises(ValueError, match=r"X must be \(n_trials, n_time <= 16, 8\)"):
        neds.predict(spikes[..., :5])
    with pytest.raises(ValueError, match="2 behavior channels"):
        neds.predict_rates(b=velocity[..., :1])
    with pytest.raises(ValueError, match="modality_weights"):
        NedsEstimator(modality_weights={"lfp": 1.0}).fit(spikes, velocity)
    with pytest.raises(ValueError, match="even head width"):
        NedsEstimator(hidden_size=6, n_heads=2).fit(spikes, velocity)


def test_per_neuron_bits_per_spike_weighs_every_neuron_the_same():
    from sklearn_blend.metrics import bits_per_spike, bits_per_spike_per_neuron

    rng = np.random.default_rng(0)
    rates = np.concatenate([np.full((20, 10, 1), 5.0), np.full((20, 10, 1), 0.2)], -1)
    spikes = rng.poisson(rates).astype(float)
    good = rates * np.array([1.0, 1.0])
    bad = rates * np.array([1.0, 4.0])  # the quiet neuron predicted badly
    each = [bits_per_spike(good[..., [k]], spikes[..., [k]]) for k in range(2)]
    assert np.isclose(bits_per_spike_per_neuron(good, spikes), np.mean(each))
    # pooled, the busy neuron dominates; per neuron, the quiet one's error counts as much
    drop_pooled = bits_per_spike(good, spikes) - bits_per_spike(bad, spikes)
    drop_each = (bits_per_spike_per_neuron(good, spikes)
                 - bits_per_spike_per_neuron(bad, spikes))
    assert drop_each > 3 * drop_pooled > 0


def test_encoding_scorers_read_predict_rates_from_behavior(reaching):
    from sklearn_blend import NedsEstimator
    from sklearn_blend.metrics import bits_per_spike
    from sklearn_blend.scoring import encoding_bps_per_neuron_scorer, encoding_bps_scorer

    spikes, velocity, _, _ = reaching
    neds = NedsEstimator(**TINY_NEDS).fit(spikes, velocity)
    rates = neds.predict_rates(b=velocity)
    assert encoding_bps_scorer(neds, spikes, velocity) == bits_per_spike(rates, spikes)
    assert np.isfinite(encoding_bps_per_neuron_scorer(neds, spikes, velocity))


# ---------------------------------------------------------------- several sessions
@pytest.fixture(scope="module")
def sessions():
    """Three sessions (10, 6, 8 neurons) whose neurons read the same kind of velocity."""
    from sklearn_blend.data.trials import SessionTrials

    rng = np.random.default_rng(1)
    spikes, behavior = [], []
    for n_neurons in (10, 6, 8):
        velocity = np.cumsum(rng.normal(size=(12, 16, 2)), 1) * 0.3
        readout = rng.normal(size=(2, n_neurons))
        spikes.append(rng.poisson(np.exp(0.3 + np.tanh(velocity) @ readout)))
        behavior.append(velocity)
    return SessionTrials(spikes, keys=["a", "b", "c"]), np.concatenate(behavior)


def test_session_trials_split_like_an_array(sessions):
    from sklearn.model_selection import KFold
    from sklearn.utils import _safe_indexing

    from sklearn_blend.data.trials import SessionTrials

    trials, behavior = sessions
    assert len(trials) == 36 and trials.n_neurons == (10, 6, 8) and trials.shape == (36,)
    train, test = next(KFold(3, shuffle=True, random_state=0).split(trials))
    subset = _safe_indexing(trials, test)
    assert len(subset) == 12 and subset.arrays is trials.arrays
    padded = subset.padded()
    assert padded.shape == (12, 16, 10)
    row = int(np.flatnonzero(subset.session == 1)[0])
    assert (padded[row, :, 6:] == 0).all()
    assert np.array_equal(padded[row, :, :6], trials.arrays[1][subset.trial[row]])
    with pytest.raises(ValueError, match="same n_time"):
        SessionTrials([np.zeros((2, 16, 3)), np.zeros((2, 12, 3))])
    with pytest.raises(ValueError, match="keys must name each"):
        SessionTrials([np.zeros((2, 16, 3))] * 2, keys=["a", "a"])
    with pytest.raises(TypeError, match="list of arrays"):
        SessionTrials(np.zeros((2, 16, 3)))


def test_one_model_over_sessions_with_different_neurons(sessions):
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from sklearn_blend import NedsEstimator

    trials, behavior = sessions
    neds = NedsEstimator(**TINY_NEDS).fit(trials, behavior)
    assert neds.sessions_ == ["a", "b", "c"] and neds.config_.n_neurons == (10, 6, 8)
    assert neds.predict(trials[:5]).shape == (5, 16, 2)
    rates = neds.predict_rates(trials[[0, 14]])
    assert rates.shape == (2, 16, 10)
    assert np.isfinite(rates[0]).all() and np.isnan(rates[1, :, 6:]).all()
    assert neds.predict_rates(b=behavior[:3], session="b").shape == (3, 16, 6)
    # folds split trials, each training fold holding trials of every session
    cv = StratifiedKFold(2, shuffle=True, random_state=0).split(trials, trials.session)
    scores = cross_val_score(NedsEstimator(**TINY_NEDS), trials, behavior, cv=list(cv))
    assert scores.shape == (2,) and np.isfinite(scores).all()
    with pytest.raises(ValueError, match="pass X as SessionTrials"):
        neds.predict(trials.arrays[0])
    with pytest.raises(ValueError, match="say whose neurons"):
        neds.predict_rates(b=behavior[:3])


def test_finetuning_a_new_session_touches_only_what_it_should(sessions):
    from sklearn_blend import NedsEstimator
    from sklearn_blend.data.trials import SessionTrials

    trials, behavior = sessions
    first_two = trials[trials.session < 2]
    neds = NedsEstimator(**TINY_NEDS).fit(first_two, behavior[:24])
    before = {k: v.clone() for k, v in neds.net_.module_.model.state_dict().items()}
    with pytest.raises(ValueError, match="has not seen"):
        neds.predict(trials[30:])
    new = SessionTrials([trials.arrays[2]], keys=["c"])
    neds.finetune(new, behavior[24:], max_epochs=2)
    after = neds.net_.module_.model.state_dict()
    assert neds.sessions_ == ["a", "b", "c"] and neds.config_.n_neurons == (10, 6, 8)
    untouched = [name for name in before if name.startswith("spike_in.0.")]
    assert untouched  # the first session's input map
    for name in untouched + ["spike_out.1.bias", "session_embedding.0", "session_embedding.1"]:
        assert torch.equal(before[name], after[name]), name  # sessions without trials
    assert not torch.equal(before["position"], after["position"])  # shared layers train
    assert neds.predict(trials[30:]).shape == (6, 16, 2)
    assert neds.predict_rates(b=behavior[:2], session="c").shape == (2, 16, 8)
    wrong = SessionTrials([trials.arrays[2][..., :5]], keys=["c"])
    with pytest.raises(ValueError, match="model knows it with 8"):
        neds.predict(wrong)
    with pytest.raises(TypeError, match="SessionTrials"):
        neds.finetune(trials.arrays[2], behavior[24:])


def test_unseen_categories_and_mismatched_behavior_are_clear_errors(reaching):
    from sklearn_blend import NedsEstimator

    spikes, velocity, choice, _ = reaching
    b = np.stack([velocity[:, 0, 0], choice], axis=1).astype(object)
    neds = NedsEstimator(categorical_behavior=[1], **TINY_NEDS).fit(spikes, b)
    unseen = b.copy()
    unseen[0, 1] = "up"
    with pytest.raises(ValueError, match="categories"):
        neds.predict_rates(b=unseen)
    with pytest.raises(ValueError, match="trial-level behavior"):
        neds.predict_rates(spikes, b=velocity)


def test_make_synthetic_draws_sessions_of_one_family():
    from sklearn_blend.datasets import make_synthetic

    X, b = make_synthetic("hierarchical", n_trials=6, n_time=20, n_neurons=[9, 12, 15],
                          random_state=0, n_sessions=3)
    assert X.n_neurons == (9, 12, 15) and len(X) == 18 and b.shape == (18, 20, 2)
    assert X.session.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    same, _ = make_synthetic("hierarchical", n_trials=6, n_time=20, n_neurons=12,
                             random_state=0, n_sessions=3)
    assert same.n_neurons == (12, 12, 12)
    with pytest.raises(ValueError, match="one count per session"):
        make_synthetic("simple", n_neurons=[5, 6], n_sessions=3)


def test_held_out_neurons_are_predicted_but_never_read(reaching):
    from sklearn_blend import NedsEstimator
    from sklearn_blend.metrics import co_bps

    spikes, velocity, _, _ = reaching
    neds = NedsEstimator(n_heldout=3, **TINY_NEDS).fit(spikes, velocity)
    assert neds.net_.module_.model.spike_in[0].in_features == 5
    changed = spikes.copy()
    changed[..., -3:] = 7  # other counts of the held-out neurons
    rates = neds.predict_rates(spikes)
    assert np.array_equal(rates, neds.predict_rates(changed))
    assert np.array_equal(rates, neds.predict_rates(spikes[..., :5]))  # held-in only
    assert np.array_equal(neds.predict(spikes), neds.predict(spikes[..., :5]))
    assert rates.shape == (40, 16, 8) and np.isfinite(co_bps(rates[..., 5:], spikes[..., 5:]))
    # in the decoding scheme no spike token is hidden, but the held-out neurons are scored
    decoding = NedsEstimator(n_heldout=3, **dict(TINY_NEDS, scheme_probs={"decoding": 1.0}))
    history = decoding.fit(spikes, velocity).net_.history
    assert all(v != 0 for v in history[:, "train_recon_spikes"])
    # fine-tuning needs the held-out neurons too (they are targets)
    from sklearn_blend import SessionTrials

    with pytest.raises(ValueError, match="fine-tuning needs all 8"):
        neds.finetune(SessionTrials([spikes[..., :5]], keys=[0]), velocity)


def test_forward_bins_are_hidden_in_training_and_predicted(reaching):
    from sklearn_blend import NedsEstimator

    spikes, velocity, _, _ = reaching
    window, forward = spikes[:, :12], spikes[:, 12:]
    neds = NedsEstimator(forward_bins=4, **TINY_NEDS)
    with pytest.raises(ValueError, match="needs spikes_forward"):
        neds.fit(window, velocity[:, :12])
    neds.fit(window, velocity[:, :12], spikes_forward=forward)
    assert neds.config_.n_time == 16 and neds.n_time_in_ == 12
    assert neds.predict_rates(window).shape == (40, 12, 8)
    assert neds.predict_rates(window, forward=True).shape == (40, 16, 8)
    assert neds.predict_rates(b=velocity[:, :12], forward=True).shape == (40, 16, 8)
    assert neds.predict(window).shape == (40, 12, 2)
    # the counts of the forward bins never reach the model, only its loss
    masking = neds.net_.criterion_.masking
    batch = {"spikes": torch.ones(2, 16, 8), "session": torch.zeros(2, dtype=torch.long),
             "behavior": torch.zeros(2, 16, 2),
             "token_mask": torch.zeros(2, 16, 3, dtype=torch.bool)}
    assert masking(batch, {}, {}, training=False).inputs["token_mask"][:, 12:, 0].all()
    with_behavior = NedsEstimator(forward_bins=4, **TINY_NEDS).fit(
        window, velocity[:, :12], spikes_forward=forward, behavior_forward=velocity[:, 12:])
    assert not np.allclose(with_behavior.net_.history[:, "train_loss"],
                           neds.net_.history[:, "train_loss"])
    with pytest.raises(ValueError, match="forward=True follows trials of the fitted length"):
        neds.predict_rates(window[:, :8], forward=True)
    interval = velocity[:, 0, :1]  # trial-level behavior with forward bins
    per_trial = NedsEstimator(forward_bins=4, **TINY_NEDS).fit(window, interval,
                                                               spikes_forward=forward)
    assert per_trial.predict_rates(b=interval, forward=True).shape == (40, 16, 8)
    assert per_trial.predict_rates(b=interval).shape == (40, 12, 8)
    with pytest.raises(ValueError, match="behavior_forward must be"):
        NedsEstimator(forward_bins=4, **TINY_NEDS).fit(
            window, velocity[:, :12], spikes_forward=forward, behavior_forward=velocity)


def test_the_teacher_model_hides_the_bins_the_student_hid(reaching):
    from sklearn_blend import NedsEstimator

    spikes, velocity, _, _ = reaching
    neds = NedsEstimator(n_heldout=3, **TINY_NEDS).fit(spikes, velocity)
    model = neds.model_.eval()
    behavior = torch.as_tensor(neds.encode_behavior(velocity[:4], spikes[:4]))
    held_in = torch.as_tensor(spikes[:4, :, :5], dtype=torch.float32)
    hidden = torch.zeros(4, 16, dtype=torch.bool)
    hidden[:, 3:7] = True
    zeroed = held_in.masked_fill(hidden[..., None], 0.0)
    with torch.no_grad():
        out = model({"spikes": zeroed, "behavior": behavior, "hidden": hidden})
        other = model({"spikes": held_in + 5, "behavior": behavior, "hidden": hidden})
        as_zeros = model({"spikes": zeroed, "behavior": behavior, "hidden": None})
        contentless = model({"spikes": held_in.masked_fill(hidden[..., None], 9.0),
                             "behavior": behavior, "hidden": hidden})
    assert out.log_rates.shape == (4, 16, 8) and len(out.features) == 1
    # hidden bins are mask tokens, not zero counts: their content does not matter, the
    # visible bins' does, and zeros read as counts give other rates
    assert torch.allclose(out.log_rates, contentless.log_rates)
    assert not torch.allclose(out.log_rates, other.log_rates)
    assert not torch.allclose(out.log_rates, as_zeros.log_rates)
    # ... and the pass equals the estimator's own rates with the same spike tokens hidden
    mask = np.zeros((4, 16, len(neds.config_.streams)), dtype=bool)
    mask[:, 3:7, 0] = True
    own, _ = neds._run(spikes[:4].astype(np.float32), np.zeros(4, np.int64),
                       neds._encoded_b(velocity[:4], spikes[:4]), mask)
    assert np.allclose(own["spikes"], out.log_rates.numpy(), atol=1e-5)


@pytest.mark.parametrize("strategy", ["hard", "soft", "correlation", "feature"])
def test_neds_is_a_blend_teacher(reaching, strategy):
    from sklearn_blend import BlendEstimator, NedsEstimator

    spikes, velocity, _, _ = reaching
    window, forward = spikes[:, :12], spikes[:, 12:]
    teacher = NedsEstimator(**dict(TINY_NEDS, n_layers=2))
    student = BlendEstimator(base="ndt", strategy=strategy, teacher=teacher, n_heldout=3,
                             forward_bins=4, hidden_size=16, n_heads=2, ffn_size=32, max_epochs=2,
                             batch_size=8, random_state=0)
    from sklearn_blend.training.neds import NedsTeacherModel

    seen = []
    original = NedsTeacherModel.forward

    def spy(self, inputs):  # the training core must hand the student's hidden bins over
        seen.append(inputs.get("hidden"))
        return original(self, inputs)

    NedsTeacherModel.forward = spy
    try:
        student.fit(window, velocity[:, :12], spikes_forward=forward)
    finally:
        NedsTeacherModel.forward = original
    assert seen and all(h is not None and h.dtype == torch.bool for h in seen)
    assert 0 < float(torch.cat([h.float().ravel() for h in seen]).mean()) < 1
    fitted = student.teacher_
    assert isinstance(fitted, NedsEstimator) and fitted is not teacher
    assert (fitted.n_heldout, fitted.forward_bins, fitted.n_features_in_) == (3, 4, 8)
    assert np.isfinite(student.student_net_.history[:, "train_distill"]).all()
    assert student.transform(window).shape == (40, 12, 8)  # rates (output="rates")
    assert student.predict_rates(window[..., :5], forward=True).shape == (40, 16, 8)
    # a fitted NEDS teacher is used as it is
    again = BlendEstimator(**dict(student.get_params(deep=False), teacher=fitted)).fit(
        window, velocity[:, :12], spikes_forward=forward)
    assert again.teacher_ is fitted


def test_decoding_beats_ridge_where_the_mapping_is_nonlinear():
    """Half the neurons follow latent z1, half z2 (log-linear, no neuron sees both); the
    behavior is z1 * z2, so no linear map of (smoothed) counts decodes it, and a model that
    combines the two populations nonlinearly does."""
    from scipy.ndimage import gaussian_filter1d
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score

    from sklearn_blend import NedsEstimator

    rng = np.random.default_rng(0)
    n, n_time, n_neurons = 400, 10, 24
    z = gaussian_filter1d(rng.normal(size=(n, n_time + 8, 2)), 2, axis=1)[:, 4:-4]
    z /= z.std()
    weights = np.zeros((2, n_neurons))
    weights[0, :12], weights[1, 12:] = rng.normal(size=12), rng.normal(size=12)
    spikes = rng.poisson(np.exp(1.5 + 0.5 * z @ weights)).astype(np.float32)
    b = z[..., :1] * z[..., 1:]
    train, test = slice(0, 300), slice(300, None)
    smoothed = gaussian_filter1d(spikes, 1.0, axis=1).reshape(n * n_time, n_neurons)
    rows = np.arange(n * n_time).reshape(n, n_time)
    ridge = RidgeCV(alphas=np.logspace(-2, 3, 10)).fit(smoothed[rows[train].ravel()],
                                                       b[train].ravel())
    ridge_r2 = r2_score(b[test].ravel(), ridge.predict(smoothed[rows[test].ravel()]))
    neds = NedsEstimator(hidden_size=32, n_layers=2, n_heads=2, ffn_size=64, max_epochs=150,
                         lr=3e-3, batch_size=32, warmup_steps=5, n_iter_no_change=40,
                         random_state=0).fit(spikes[train], b[train])
    assert ridge_r2 < 0.05
    assert neds.score(spikes[test], b[test]) > ridge_r2 + 0.15


# ---------------------------------------------------------------- selection on task metrics
def test_task_metrics_score_the_decoding_and_encoding_passes():
    from sklearn_blend.metrics import bits_per_spike_per_neuron
    from sklearn_blend.training.neds import TaskMetrics

    rng = np.random.default_rng(0)
    config = NedsConfig(n_neurons=(6, 4), n_time=10, behavior_groups=((0, 1),), n_trial=1,
                        n_classes=(3,))
    metrics = TaskMetrics(config, ("decoding", "encoding"), n_forward=2)
    behavior = rng.normal(size=(20, 10, 2))
    behavior[:, -2:] = np.nan  # forward bins: missing, and left out anyway
    labels = np.array([0] * 16 + [1, 1, 2, 2])
    logits = np.eye(3)[np.zeros(20, int)]  # always the most frequent class
    perfect = {"behavior": np.nan_to_num(behavior), "target.behavior": behavior,
               "trial": np.arange(20.0)[:, None], "target.trial": np.arange(20.0)[:, None],
               "label0": logits, "target.label0": labels}
    # R2 1 and 1, balanced accuracy 1/3 (the plain accuracy would be 0.8)
    assert metrics.decoding(perfect) == pytest.approx((1 + 1 + 1 / 3) / 3)
    counts = rng.poisson(2.0, size=(20, 10, 6)).astype(float)
    log_rates = np.log(rng.uniform(1, 3, size=(20, 10, 6)))
    sessions = np.array([0] * 12 + [1] * 8)
    collected = {"spikes": log_rates, "target.spikes": counts, "session": sessions}
    first = bits_per_spike_per_neuron(np.exp(log_rates[:12, :8]), counts[:12, :8])
    second = bits_per_spike_per_neuron(np.exp(log_rates[12:, :8, :4]), counts[12:, :8, :4])
    assert metrics.encoding(collected) == pytest.approx((6 * first + 4 * second) / 10)


def test_the_kept_weights_are_the_best_task_epoch_after_the_warmup(reaching):
    from sklearn_blend import NedsEstimator

    spikes, velocity, _, _ = reaching
    params = dict(TINY_NEDS, early_stopping=True, max_epochs=12, n_iter_no_change=4,
                  warmup_steps=8)  # 32 training trials in batches of 8: 2 warm-up epochs
    neds = NedsEstimator(**params).fit(spikes, velocity)
    history = neds.net_.history
    task = np.asarray(history[:, "valid_task"])
    assert np.allclose(task, (np.asarray(history[:, "valid_decoding"])
                              + np.asarray(history[:, "valid_encoding"])) / 2)
    stopper = dict(neds.net_.callbacks_)["early_stopping"]
    best = int(np.argmax(task[2:])) + 2
    assert stopper.best_epoch_ == best + 1 and stopper.monitor == "valid_task"
    # single-task models select on their own task; "loss" keeps the masked loss
    decoding = NedsEstimator(scheme_probs={"decoding": 1.0}, **params).fit(spikes, velocity)
    assert "valid_decoding" in decoding.net_.history[-1]
    assert "valid_encoding" not in decoding.net_.history[-1]
    encoding = NedsEstimator(scheme_probs={"encoding": 1.0}, **params).fit(spikes, velocity)
    assert "valid_decoding" not in encoding.net_.history[-1]
    loss = NedsEstimator(monitor="loss", **params).fit(spikes, velocity)
    assert "valid_task" not in loss.net_.history[-1]
    assert dict(loss.net_.callbacks_)["early_stopping"].monitor == "valid_loss"
    with pytest.raises(ValueError, match="monitor"):
        NedsEstimator(monitor="r2").fit(spikes, velocity)


def test_held_out_rates_come_from_one_full_pass_and_held_in_bins_hide_every_stream(reaching):
    from sklearn_blend import NedsEstimator

    spikes, velocity, _, _ = reaching
    neds = NedsEstimator(n_heldout=3, **TINY_NEDS).fit(spikes, velocity)
    rates = neds.predict_rates(spikes)
    # the held-out neurons: one pass, whatever bins the interleaved passes hide
    other = neds.set_params(mask_ratio=0.5).predict_rates(spikes)
    np.testing.assert_array_equal(rates[..., 5:], other[..., 5:])
    assert not np.array_equal(rates[..., :5], other[..., :5])
    neds.set_params(mask_ratio=0.3)
    # with behavior: a held-in bin's rates come from a pass hiding that bin's spikes and
    # behavior, so neither reaches its own bin
    with_b = neds.predict_rates(spikes, velocity)
    changed_x, changed_b = spikes.copy(), velocity.copy()
    changed_x[:, 5] += 4
    changed_b[:, 5] += 3.0
    again = neds.predict_rates(changed_x, changed_b)
    np.testing.assert_allclose(again[:, 5, :5], with_b[:, 5, :5], rtol=1e-5)
    assert not np.allclose(again[:, 5, 5:], with_b[:, 5, 5:])


def test_balanced_accuracy_scores_labels():
    from sklearn_blend.modalities import LABELS

    logits = np.eye(2)[[0, 0, 0, 0, 1]]
    assert LABELS.score(logits, np.array([0, 0, 0, 1, 1])) == pytest.approx((1 + 0.5) / 2)
    assert LABELS.score(logits, np.array([0, -1, 0, 1, 1])) == pytest.approx((1 + 0.5) / 2)


def test_the_official_softsign_input_maps_are_the_default(reaching, tmp_path):
    from sklearn_blend import NedsEstimator, load
    from sklearn_blend.models.layers import SoftsignMap

    spikes, velocity, _, _ = reaching
    linear = NedsEstimator(input_map="linear", **TINY_NEDS).fit(spikes, velocity)
    assert type(linear.net_.module_.model.spike_in[0]) is torch.nn.Linear
    neds = NedsEstimator(n_heldout=2, **TINY_NEDS).fit(spikes, velocity)
    assert neds.input_map == "softsign"
    model = neds.net_.module_.model
    assert isinstance(model.spike_in[0], SoftsignMap)
    assert model.spike_in[0].expand.weight.shape == (12, 6)  # held-in 6 -> 12 -> hidden
    assert isinstance(model.behavior_in[0], SoftsignMap)
    neds.save(tmp_path / "neds.safetensors")
    np.testing.assert_array_equal(load(tmp_path / "neds.safetensors").predict(spikes),
                                  neds.predict(spikes))


def test_patience_in_steps_spans_the_epochs_it_takes(reaching):
    from sklearn_blend import NedsEstimator

    spikes, velocity, _, _ = reaching
    # 24 training trials of batch 8: 3 steps per epoch; 7 steps of patience are 3 epochs
    params = dict(TINY_NEDS, max_epochs=40, batch_size=8, validation_fraction=0.2,
                  early_stopping=True, monitor="loss")
    neds = NedsEstimator(patience_steps=7, **params).fit(spikes[:30], velocity[:30])
    stopper = dict(neds.net_.callbacks_)["early_stopping"]
    assert stopper.patience == 3
    assert len(neds.net_.history) < 40  # it stopped
    assert dict(NedsEstimator(**params).fit(spikes[:30], velocity[:30]).net_.callbacks_)[
        "early_stopping"].patience == 30  # n_iter_no_change
    with pytest.raises(ValueError, match="patience_steps"):
        NedsEstimator(patience_steps=0).fit(spikes, velocity)

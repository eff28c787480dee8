"""Cross-modal distillation: a spike teacher's latents guide an LFP model (CrossModalEstimator)."""

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from sklearn_blend import CrossModalEstimator, MaskedAutoencoder, PerBin, SessionTrials
from sklearn_blend.datasets import make_spikes_calcium
from sklearn_blend.distill import LatentAlignment
from sklearn_blend.modalities import LFP

TINY = dict(hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=3, batch_size=8,
            warmup_steps=1, early_stopping=False, random_state=0)


def _session(rng, n_trials, n_time, n_neurons, n_channels):
    """Latents drive Poisson spikes; LFP is a noisy mixture of the latents (any sign)."""
    phase = rng.uniform(0, 2 * np.pi, size=(n_trials, 1, 1))
    t = np.arange(n_time)[None, :, None]
    latents = np.concatenate([np.sin(t / 3 + phase), np.cos(t / 5 + phase)], axis=-1)
    spikes = rng.poisson(np.exp(0.5 + latents @ rng.normal(size=(2, n_neurons))))
    lfp = latents @ rng.normal(size=(2, n_channels)) + rng.normal(size=(n_trials, n_time,
                                                                        n_channels)) - 2.0
    return lfp.astype(np.float32), spikes.astype(np.float32), latents.astype(np.float32)


@pytest.fixture(scope="module")
def recording():
    return _session(np.random.default_rng(0), 32, 12, 10, 6)


@pytest.fixture(scope="module")
def sessions():
    rng = np.random.default_rng(1)
    a = _session(rng, 20, 12, 10, 5)
    b = _session(rng, 16, 12, 7, 8)
    lfp = SessionTrials([a[0], b[0]], keys=["a", "b"], modality=LFP)
    spikes = SessionTrials([a[1], b[1]], keys=["a", "b"])
    return lfp, spikes, a, b


def test_shapes_and_lfp_of_any_sign(recording):
    lfp, spikes, _ = recording
    assert (lfp < 0).any()
    model = CrossModalEstimator(**TINY).fit(lfp, privileged=spikes)
    assert model.transform(lfp).shape == (32, 12, 8)
    assert model.transform(lfp[:3, :7]).shape == (3, 7, 8)  # shorter trials
    assert model.transform(lfp[:, 0]).shape == (32, 8)  # 2-D: one bin per sample
    assert isinstance(model.teacher_, MaskedAutoencoder) and model.teacher_.modality == "spikes"
    assert model.teacher_.transform(spikes).shape == (32, 12, 8)
    # the same values as spike counts are rejected
    with pytest.raises(ValueError, match="non-negative"):
        MaskedAutoencoder(**TINY).fit(lfp)
    baseline = CrossModalEstimator(strategy=None, **TINY).fit(lfp)  # no spikes needed
    assert baseline.teacher_ is None and baseline.transform(lfp).shape == (32, 12, 8)


def test_clear_errors(recording, sessions):
    lfp, spikes, _ = recording
    model = CrossModalEstimator(**TINY)
    with pytest.raises(ValueError, match=r"pass the signal recorded with X as fit\(X, privileged="):
        model.fit(lfp)
    with pytest.raises(ValueError, match=r"privileged must be \(n_trials, n_time, n_channels\) of "
                                         r"spike counts with the trials and bins of X \(32, 12\)"):
        model.fit(lfp, privileged=spikes[:30])
    with pytest.raises(ValueError, match="the trials and bins of X"):
        model.fit(lfp, privileged=spikes[:, :10])
    for bad in (np.nan, np.inf):
        broken = lfp.copy()
        broken[0, 0, 0] = bad
        with pytest.raises(ValueError, match="NaN|infinit"):
            model.fit(broken, privileged=spikes)
    with pytest.raises(ValueError, match="strategy must be one of"):
        CrossModalEstimator(strategy="kl", **TINY).fit(lfp, privileged=spikes)
    fitted = CrossModalEstimator(strategy=None, **TINY).fit(lfp)
    with pytest.raises(ValueError, match="X has 4 features, but CrossModalEstimator is "
                                         "expecting 6 features"):
        fitted.transform(lfp[..., :4])
    with pytest.raises(ValueError, match="has 13 bins"):
        fitted.transform(np.concatenate([lfp, lfp[:, :1]], axis=1))
    many_lfp, many_spikes, _, b = sessions
    with pytest.raises(TypeError, match="both be arrays"):
        model.fit(many_lfp, privileged=spikes[:36])
    other = SessionTrials([many_spikes.arrays[0], many_spikes.arrays[1]], keys=["a", "c"])
    with pytest.raises(ValueError, match="same sessions trial for trial"):
        model.fit(many_lfp, privileged=other)
    multi = CrossModalEstimator(strategy=None, **TINY).fit(many_lfp)
    with pytest.raises(ValueError, match="name the session"):
        multi.transform(b[0])
    wrong = SessionTrials([b[0][..., :5]], keys=["b"], modality=LFP)  # session b, 5 channels
    with pytest.raises(ValueError, match="session 'b' of X has 5 channels, but the model "
                                         "knows it with 8"):
        multi.transform(wrong)
    with pytest.raises(ValueError, match="holds spike counts, but LFP are expected"):
        multi.fit(many_spikes)
    with pytest.raises(ValueError, match="teacher='labels' holds labels"):
        CrossModalEstimator(teacher="labels", **TINY).fit(lfp, privileged=spikes)
    with pytest.raises(ValueError, match="student must be a modality name, one of"):
        CrossModalEstimator(student="eeg", **TINY).fit(lfp, privileged=spikes)
    with pytest.raises(TypeError, match="teacher must be None, a modality name"):
        CrossModalEstimator(teacher=3, **TINY).fit(lfp, privileged=spikes)
    from sklearn.frozen import FrozenEstimator

    with pytest.raises(ValueError, match="wrapper .* around an unfitted teacher"):
        CrossModalEstimator(teacher=FrozenEstimator(MaskedAutoencoder(**TINY)),
                            **TINY).fit(lfp, privileged=spikes)
    two = MaskedAutoencoder(**TINY).fit(many_spikes)
    with pytest.raises(ValueError, match="the teacher cannot read privileged"):
        CrossModalEstimator(teacher=two, **TINY).fit(lfp, privileged=spikes)


@pytest.mark.parametrize("head", [None, "linear"])
def test_alignment_moves_the_student_toward_the_teacher(recording, head):
    import torch

    lfp, spikes, _ = recording
    settings = dict(TINY, max_epochs=30, lr=5e-3, warmup_steps=5)
    teacher = MaskedAutoencoder(**settings).fit(spikes)
    target = teacher.transform(spikes)
    alone = CrossModalEstimator(strategy=None, **settings).fit(lfp)
    for metric in ("mse", "cosine"):
        aligned = CrossModalEstimator(teacher=teacher,
                                      strategy=LatentAlignment(metric=metric, head=head),
                                      alpha=0.2,
                                      **settings).fit(lfp, privileged=spikes)
        assert aligned.teacher_ is teacher  # a fitted teacher is used as it is
        for latents in (aligned.transform(lfp), alone.transform(lfp)):
            assert latents.shape == target.shape
        compared = aligned.transform(lfp)  # what the strategy compares: through the head
        if head is not None:
            with torch.no_grad():
                compared = aligned.net_.criterion_.strategy.projection(
                    torch.as_tensor(compared)).numpy()
        mse = [np.mean((latents - target) ** 2) for latents in (compared, alone.transform(lfp))]
        cosine = [np.mean(np.sum(latents * target, -1) / np.linalg.norm(latents, axis=-1)
                          / np.linalg.norm(target, axis=-1))
                  for latents in (compared, alone.transform(lfp))]
        if metric == "mse":
            assert mse[0] < 0.5 * mse[1]
        else:
            assert cosine[0] > cosine[1] + 0.2
        history = aligned.net_.history
        assert history[-1, "train_distill"] < history[0, "train_distill"]


def test_a_wider_teacher_is_reached_through_a_learned_projection(recording):
    lfp, spikes, _ = recording
    model = CrossModalEstimator(teacher_hidden_size=16, **TINY).fit(lfp, privileged=spikes)
    assert model.teacher_.config_.hidden_size == 16
    projection = model.net_.criterion_.strategy.projection
    assert tuple(projection.weight.shape) == (16, 8)
    # of the same width: a linear head by default, none with head=None, an MLP with "mlp"
    same = CrossModalEstimator(**TINY).fit(lfp, privileged=spikes)
    assert tuple(same.net_.criterion_.strategy.projection.weight.shape) == (8, 8)
    bare = CrossModalEstimator(strategy=LatentAlignment(head=None), **TINY).fit(
        lfp, privileged=spikes)
    assert bare.net_.criterion_.strategy.projection is None
    mlp = CrossModalEstimator(strategy=LatentAlignment(head="mlp"), **TINY).fit(
        lfp, privileged=spikes)
    assert len(mlp.net_.criterion_.strategy.projection) == 3
    with pytest.raises(ValueError, match="head must be 'linear', 'mlp' or None"):
        LatentAlignment(head="deep")


def test_centred_alignment_distils_only_what_differs_from_trial_to_trial():
    """The default alignment removes each bin's mean over the batch's trials from both sides:
    a sequence every trial shares (a teacher's position embedding in windows cut from a
    continuous recording) adds nothing to the term, and a student that gives every trial
    the same latents gains nothing by matching it; ``centre=False`` compares them as they
    are."""
    import torch

    from sklearn_blend import losses
    from sklearn_blend.models.base import ModelOutput

    generator = torch.Generator().manual_seed(0)
    student = torch.randn(6, 5, 4, generator=generator)
    teacher = torch.randn(6, 5, 4, generator=generator)
    shared = torch.randn(1, 5, 4, generator=generator) * 10  # the same for every trial

    def term(strategy, s, t):
        strategy.setup(type("M", (), {"latent_width": 4})(), type("M", (), {"latent_width": 4})())
        with torch.no_grad():
            strategy.projection.weight.copy_(torch.eye(4)), strategy.projection.bias.zero_()
            return float(strategy(ModelOutput({}, s, []), ModelOutput({}, t, [])))

    centred, plain = LatentAlignment(), LatentAlignment(centre=False)
    assert centred.centre and not plain.centre
    assert term(centred, student, teacher + shared) == pytest.approx(term(centred, student,
                                                                          teacher), rel=1e-5)
    assert term(plain, student, teacher + shared) > 10 * term(plain, student, teacher)
    # a collapsed student (one sequence for every trial) matches the shared part exactly
    # uncentred, and earns no credit for it centred
    collapsed = shared.expand(6, 5, 4)
    assert term(plain, collapsed, teacher + shared) < 0.1 * term(plain, student,
                                                                   teacher + shared)
    assert term(centred, collapsed, teacher + shared) == pytest.approx(
        float(losses.centre_trials(teacher).pow(2).mean()), rel=1e-5)
    np.testing.assert_allclose(losses.centre_trials(teacher).mean(0).numpy(), 0, atol=1e-6)
    assert float(losses.centre_trials(teacher[:1]).abs().max()) == 0  # one trial: nothing
    for bad in ("yes", None, 2):
        with pytest.raises(TypeError, match="centre must be True or False"):
            LatentAlignment(centre=bad)


def test_the_distillation_weight_warms_up_over_training_steps(recording):
    """``distill_warmup_steps``: the distillation's weight rises from 0 to ``1 - alpha`` over
    that many steps (counted by the objective), so a long warm-up trains on the
    reconstruction alone."""
    lfp, spikes, _ = recording  # 32 trials, batches of 8, no validation split: 4 steps/epoch
    history = {}
    for warmup in (0, 4, 10**9):
        model = CrossModalEstimator(alpha=0.3, distill_warmup_steps=warmup, **TINY).fit(
            lfp, privileged=spikes)
        assert int(model.net_.criterion_.steps) == (12 if warmup else 0)
        history[warmup] = model.net_.history
    for warmup, weight in ((0, 0.7), (10**9, 0.0)):
        h = history[warmup]
        np.testing.assert_allclose(h[:, "train_loss"], 0.3 * np.array(h[:, "train_recon"])
                                   + weight * np.array(h[:, "train_distill"]), rtol=1e-5)
    h = history[4]  # from the second epoch on, the full weight
    np.testing.assert_allclose(h[1:, "train_loss"], 0.3 * np.array(h[1:, "train_recon"])
                               + 0.7 * np.array(h[1:, "train_distill"]), rtol=1e-5)
    assert h[0, "train_loss"] < 0.3 * h[0, "train_recon"] + 0.7 * h[0, "train_distill"]
    with pytest.raises(ValueError, match="distill_warmup_steps"):
        CrossModalEstimator(distill_warmup_steps=-1, **TINY).fit(lfp, privileged=spikes)


def test_a_student_whose_signal_the_teacher_cannot_explain_does_not_collapse():
    """Where the spikes carry nothing of part of the LFP (the LFP's own latents, its tuned part
    only in band power, late and weak), the distilled student still reconstructs the LFP
    better than chance and its latents still differ from trial to trial: the head keeps the
    student's latents its own (without it they collapse toward the teacher's average)."""
    from sklearn_blend.datasets import make_spikes_lfp

    data = make_spikes_lfp(n_trials=60, n_time=40, n_neurons=13, n_channels=3, lfp_rate=100,
                           line_freq=None, private_latents=2, coupling="band_power",
                           tuned_weight=0.1, lfp_lag_ms=100, random_state=0)
    settings = dict(hidden_size=16, n_layers=1, n_heads=2, ffn_size=32, max_epochs=40,
                    lr=5e-3, batch_size=8, random_state=0)
    spread = {}
    for head in ("linear", None):
        model = CrossModalEstimator(strategy=LatentAlignment(head=head), **settings).fit(
            data.lfp, privileged=data.spikes)
        latents = model.transform(data.lfp)
        spread[head] = float(latents.std(axis=0).mean() / latents.std().clip(1e-12))
        if head == "linear":
            assert min(model.net_.history[:, "valid_recon"]) < 0.9  # chance: 1 (z-scored)
    assert spread["linear"] > 0.3 and spread["linear"] > spread[None] + 0.1


def test_seeded_fits_repeat_and_the_teacher_is_cached(recording):
    lfp, spikes, _ = recording
    first = CrossModalEstimator(**TINY).fit(lfp, privileged=spikes)
    again = CrossModalEstimator(**TINY).fit(lfp, privileged=spikes)
    np.testing.assert_array_equal(first.transform(lfp), again.transform(lfp))
    other = CrossModalEstimator(**dict(TINY, random_state=1)).fit(lfp, privileged=spikes)
    assert not np.allclose(first.transform(lfp), other.transform(lfp))
    # a second student with another alpha reuses the cached teacher
    tuned = CrossModalEstimator(**dict(TINY, alpha=0.9)).fit(lfp, privileged=spikes)
    assert tuned.teacher_ is first.teacher_
    unfitted = MaskedAutoencoder(**dict(TINY, hidden_size=12, n_heads=3))
    given = CrossModalEstimator(teacher=unfitted, **TINY).fit(lfp, privileged=spikes)
    assert given.teacher_ is not unfitted and given.teacher_.config_.hidden_size == 12


def test_metadata_routing_through_a_pipeline_and_grid_search(recording):
    lfp, spikes, latents = recording
    velocity = latents  # the behavior a decoder reads from the LFP latents
    with sklearn.config_context(enable_metadata_routing=True):
        step = CrossModalEstimator(**TINY).set_fit_request(privileged=True)
        pipe = Pipeline([("lfp", step), ("decoder", PerBin(Ridge()))])
        pipe.fit(lfp, velocity, privileged=spikes)
        assert pipe.predict(lfp).shape == (32, 12, 2)
        search = GridSearchCV(pipe, {"lfp__alpha": [0.3, 0.7]},
                              cv=KFold(2, shuffle=True, random_state=0))
        search.fit(lfp, velocity, privileged=spikes)
        assert len(search.cv_results_["params"]) == 2
        assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_sessions_share_the_backbone_and_new_layouts_get_new_maps(sessions):
    lfp, spikes, a, b = sessions
    model = CrossModalEstimator(**TINY).fit(lfp, privileged=spikes)
    assert model.sessions_ == ["a", "b"] and model.n_channels_ == (5, 8)
    assert model.teacher_.n_channels_ == (10, 7)
    both = model.transform(lfp)
    assert both.shape == (36, 12, 8)
    np.testing.assert_allclose(model.transform(b[0], session="b"), both[20:], atol=1e-5)
    # a model distilled on one session reads another recording of the same layout through
    # that session's map, without being distilled again
    single = CrossModalEstimator(**TINY).fit(a[0], privileged=a[1])
    other = _session(np.random.default_rng(5), 6, 12, 10, 5)[0]
    read = single.transform(other)
    assert read.shape == (6, 12, 8) and np.isfinite(read).all()
    np.testing.assert_array_equal(read, single.transform(other, session=0))
    assert not np.allclose(read, single.transform(a[0][:6]))
    # a new layout: new maps under the frozen shared model; known sessions are untouched
    before = model.transform(lfp)
    shared = [p.detach().clone() for p in model.net_.module_.shared_parameters()]
    new = _session(np.random.default_rng(6), 10, 12, 9, 3)[0]
    model.add_sessions(SessionTrials([new], keys=["c"], modality=LFP), max_epochs=2)
    assert model.sessions_ == ["a", "b", "c"] and model.n_channels_ == (5, 8, 3)
    assert model.n_iter_ == 2
    for old, now in zip(shared, model.net_.module_.shared_parameters()):
        assert np.array_equal(old.numpy(), now.detach().numpy())
    np.testing.assert_allclose(model.transform(lfp), before, atol=1e-5)
    assert model.transform(new, session="c").shape == (10, 12, 8)
    with pytest.raises(ValueError, match="that the model knows"):
        model.add_sessions(SessionTrials([new], keys=["c"], modality=LFP))


# ------------------------------------------------------------------ roles: any pairing
def test_calcium_student_of_a_spike_teacher_end_to_end(tmp_path):
    """CrossModalEstimator(student="fluorescence", teacher="spikes"): the roles are
    parameters; the student reads fluorescence alone, is pulled toward the spike teacher's
    latents, and saves and loads."""
    from sklearn_blend import load
    from sklearn_blend.datasets import make_spikes_calcium
    from sklearn_blend.modalities import FLUORESCENCE

    fluorescence, spikes, behavior = make_spikes_calcium(n_trials=48, random_state=0)
    settings = dict(TINY, max_epochs=25, lr=5e-3, warmup_steps=5)
    model = CrossModalEstimator(student="fluorescence", teacher="spikes", alpha=0.2,
                                **settings).fit(fluorescence, privileged=spikes)
    assert model.teacher_.modality == "spikes" and model.config_.modality == "fluorescence"
    assert np.isfinite(model.net_.history[:, "train_distill"]).all()
    latents = model.transform(fluorescence)
    target = model.teacher_.transform(spikes)
    alone = CrossModalEstimator(student="fluorescence", strategy=None, **settings).fit(
        fluorescence)
    assert alone.teacher_ is None
    distances = [np.mean((m.transform(fluorescence) - target) ** 2) for m in (model, alone)]
    assert distances[0] < distances[1]
    # negative fluorescence is a valid signal; as spike counts it would not be
    assert (fluorescence < 0).any()
    with pytest.raises(ValueError, match="non-negative"):
        CrossModalEstimator(student="fluorescence", teacher="spikes", **TINY).fit(
            fluorescence, privileged=fluorescence)
    path = tmp_path / "calcium.safetensors"
    model.save(path)
    np.testing.assert_array_equal(load(path).transform(fluorescence), latents)
    # sessions of fluorescence go in SessionTrials of that modality
    trials = SessionTrials([fluorescence[:24], fluorescence[24:, :, :8]], keys=["a", "b"],
                           modality=FLUORESCENCE)
    spike_trials = SessionTrials([spikes[:24], spikes[24:]], keys=["a", "b"])
    multi = CrossModalEstimator(student="fluorescence", **TINY).fit(
        trials, privileged=spike_trials)
    assert multi.transform(trials).shape == (48, 30, TINY["hidden_size"])


def test_spikes_of_one_area_distilled_from_another():
    """student="spikes", teacher="spikes": a Poisson student of area A's neurons, taught by
    a model of area B's."""
    _, spikes, _ = make_spikes_calcium(
        n_trials=32, n_spiking=14, random_state=1)
    area_a, area_b = spikes[..., :6], spikes[..., 6:]
    model = CrossModalEstimator(student="spikes", teacher="spikes", **TINY).fit(
        area_a, privileged=area_b)
    assert model.net_.criterion_.modalities["spikes"].likelihood == "poisson"
    assert model.teacher_.n_channels_ == (8,) and model.n_channels_ == (6,)
    assert model.transform(area_a).shape == (32, 30, TINY["hidden_size"])

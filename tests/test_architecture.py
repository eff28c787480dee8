"""The modality-aware core: strategies as a registry, the teacher as a component, one training
stack for trials and neurons, modalities as data, each base with its own defaults."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_blend import BlendEstimator, BlendTeacher, NeuronEmbedding, register_strategy
from sklearn_blend.datasets import make_cell_types
from sklearn_blend.distill import STRATEGIES, Strategy, shared_predictions, strategy_names
from sklearn_blend.evaluation import method_names
from sklearn_blend.modalities import LABELS, LFP, SPIKES, Standardizer, get_modality
from sklearn_blend.training import teacher_cache
from sklearn_blend.training.core import TrainingConfig, TrialModelBuilder, fit_net, predict
from sklearn_blend.training.objective import pack

from .helpers import TINY, TINY_GRU, TINY_NEURONS

#: TINY without the width, for teachers whose width a test sets
TINY_NO_WIDTH = {k: v for k, v in TINY.items() if k != "hidden_size"}


class Cosine(Strategy):
    """A user's strategy: one minus the cosine similarity of the rates of each bin."""

    def __init__(self, weight=1.0):
        super().__init__()
        self.weight = weight

    def forward(self, student, teacher):
        return self.weight * sum(
            1 - torch.nn.functional.cosine_similarity(s, t, dim=-1).mean()
            for s, t in shared_predictions(student, teacher)
        )


@pytest.fixture
def cosine():
    register_strategy("test-cosine", Cosine)
    yield
    STRATEGIES.pop("test-cosine")


@pytest.fixture(scope="module")
def cells():
    return make_cell_types(n_sessions=2, n_neurons=12, n_frames=64, random_state=0)


# ------------------------------------------------------------------ strategies
@pytest.mark.parametrize("form", ["name", "class", "instance"])
def test_user_strategy_trains_a_blend_student(trials, cosine, form):
    X, b = trials
    strategy = {"name": "test-cosine", "class": Cosine, "instance": Cosine(weight=3.0)}[form]
    settings = dict(TINY, alpha=0.2, random_state=0)
    est = BlendEstimator(strategy=strategy, **settings).fit(X, b)
    hard = BlendEstimator(strategy="hard", **settings).fit(X, b)
    used = est.student_net_.criterion_.strategy
    assert isinstance(used, Cosine) and used is not strategy  # an instance is cloned per fit
    assert used.weight == (3.0 if form == "instance" else 1.0)
    assert np.isfinite(est.student_net_.history[:, "train_distill"]).all()
    assert not np.allclose(est.transform(X), hard.transform(X))


@pytest.mark.parametrize("form", ["name", "class", "instance"])
def test_user_strategy_trains_a_neuron_student(cells, cosine, form):
    strategy = {"name": "test-cosine", "class": Cosine, "instance": Cosine()}[form]
    settings = dict(TINY_NEURONS, alpha=0.2, random_state=0)
    emb = NeuronEmbedding(strategy=strategy, **settings).fit(cells.X)
    hard = NeuronEmbedding(strategy="hard", **settings).fit(cells.X)
    assert isinstance(emb.student_net_.criterion_.strategy, Cosine)
    assert not np.allclose(emb.embeddings_, hard.embeddings_)


class SavesTeacherForBackward(Strategy):
    """Uses ops that keep the teacher's outputs for the backward pass."""

    def forward(self, student, teacher):
        s, t = student.predictions["spikes"], teacher.predictions["spikes"]
        return torch.nn.functional.mse_loss(s, t) + (s * t).mean() * 0.0


def test_a_strategy_may_save_teacher_outputs_for_backward(trials):
    X, b = trials
    est = BlendEstimator(strategy=SavesTeacherForBackward, **TINY, random_state=0).fit(X, b)
    assert np.isfinite(est.student_net_.history[:, "train_distill"]).all()


def test_strategy_registry_errors_and_readers(cosine):
    assert strategy_names()[:4] == ("hard", "soft", "feature", "correlation")
    assert "test-cosine" in strategy_names() and "test-cosine" in method_names()
    with pytest.raises(ValueError, match="strategy must be one of .*register_strategy"):
        BlendEstimator(strategy="nope").fit(np.ones((4, 3, 2)), np.ones((4, 3, 1)))
    with pytest.raises(TypeError, match="Strategy"):
        NeuronEmbedding(strategy=3.5).fit(np.ones((4, 30)))
    with pytest.raises(TypeError, match="torch.nn.Module subclass"):
        register_strategy("bad", int)
    assert "latent" in strategy_names() and "latent" not in method_names()


def test_tau_reaches_a_named_strategy_and_an_instance_keeps_its_own(trials):
    from sklearn_blend.distill import Soft

    X, b = trials
    named = BlendEstimator(strategy="soft", tau=5.0, **TINY).fit(X, b)
    assert named.student_net_.criterion_.strategy.tau == 5.0
    own = BlendEstimator(strategy=Soft(tau=0.5), tau=5.0, **TINY).fit(X, b)
    assert own.student_net_.criterion_.strategy.tau == 0.5


# ------------------------------------------------------------------ the teacher as a component
def test_teacher_estimator_of_another_width(trials):
    X, b = trials
    est = BlendEstimator(teacher=BlendTeacher(hidden_size=16, **TINY_NO_WIDTH),
                         strategy="feature", **TINY).fit(X, b)
    assert est.teacher_.model_.base.config.hidden_size == 16
    assert est.student_.base.config.hidden_size == TINY["hidden_size"]
    projections = est.student_net_.criterion_.strategy.projections
    assert [tuple(p.weight.shape) for p in projections] == [(16, TINY["hidden_size"])]


def test_teacher_parameters_are_tunable_in_a_grid_search(trials, monkeypatch):
    X, b = trials
    fits = []
    original = teacher_cache._fit
    monkeypatch.setattr(teacher_cache, "_fit",
                        lambda *args: fits.append(args[0].hidden_size) or original(*args))
    search = GridSearchCV(
        BlendEstimator(teacher=BlendTeacher(**TINY), random_state=0, **TINY),
        {"teacher__hidden_size": [8, 16], "alpha": [0.3, 0.7]}, cv=KFold(2),
    ).fit(X, b)
    width = search.best_params_["teacher__hidden_size"]
    assert search.best_estimator_.teacher_.model_.base.config.hidden_size == width
    # one teacher per (fold, teacher setting), shared by both alphas, plus the refit's
    assert sorted(fits) == sorted([8, 8, 16, 16, width])


def test_a_fitted_teacher_is_used_as_is(trials, monkeypatch):
    X, b = trials
    teacher = BlendTeacher(**TINY, random_state=0).fit(X, b)
    fits = []
    original_fit = BlendTeacher.fit
    monkeypatch.setattr(BlendTeacher, "fit",
                        lambda self, *a, **k: fits.append(1) or original_fit(self, *a, **k))
    est = BlendEstimator(teacher=teacher, **TINY, random_state=0).fit(X, b)
    assert est.teacher_ is teacher and fits == []
    # through clone (GridSearchCV), a FrozenEstimator keeps it fitted
    search = GridSearchCV(BlendEstimator(teacher=FrozenEstimator(teacher), **TINY),
                          {"alpha": [0.3, 0.7]}, cv=KFold(2)).fit(X, b)
    assert fits == []
    assert search.best_estimator_.student_net_.criterion_.teacher is teacher.model_


def test_a_fitted_teacher_must_match_the_data(trials):
    X, b = trials
    teacher = BlendTeacher(**TINY, random_state=0).fit(X, b)
    with pytest.raises(ValueError, match="teacher does not match X"):
        BlendEstimator(teacher=teacher, n_heldout=2, **TINY).fit(X, b)
    with pytest.raises(ValueError, match="teacher_hidden_size applies"):
        BlendEstimator(teacher=BlendTeacher(), teacher_hidden_size=8, **TINY).fit(X, b)
    with pytest.raises(TypeError, match="teacher must be None or a BlendTeacher"):
        BlendEstimator(teacher="ndt", **TINY).fit(X, b)


def test_teachers_on_different_seeds_never_share_the_cache(trials):
    X, b = trials
    derived = BlendEstimator(**TINY, random_state=0).fit(X, b)
    own = BlendEstimator(teacher=BlendTeacher(**TINY, random_state=0), **TINY,
                         random_state=0).fit(X, b)
    assert own.teacher_ is not derived.teacher_
    assert len(teacher_cache._in_process) == 2
    again = BlendEstimator(teacher=BlendTeacher(**TINY, random_state=0), **TINY,
                           random_state=1).fit(X, b)
    assert again.teacher_ is own.teacher_  # its own seed: the student's seed does not matter


def test_a_prefit_teacher_of_longer_trials_with_forward_bins(trials):
    X, b = trials
    long_teacher = BlendTeacher(**TINY, forward_bins=2, random_state=0).fit(
        X[:, :8], b[:, :8], spikes_forward=X[:, 8:])
    est = BlendEstimator(teacher=long_teacher, forward_bins=2, **TINY).fit(
        X[:, :7], b[:, :7], spikes_forward=X[:, 7:9])
    assert est.predict_rates(X[:, :7], forward=True).shape == (len(X), 9, X.shape[2])


def test_a_wrapped_unfitted_teacher_is_an_error(trials):
    X, b = trials
    with pytest.raises(ValueError, match="wrapper .* around an unfitted teacher"):
        BlendEstimator(teacher=FrozenEstimator(BlendTeacher(**TINY)), **TINY).fit(X, b)


def test_the_cache_fingerprint_follows_a_bases_registration():
    from sklearn_blend.models import BASES, base_fingerprint, build_ndt, register_base

    register_base("test-ndt", build_ndt, estimator_params=("hidden_size",),
                  defaults={"hidden_size": 16})
    try:
        first = base_fingerprint("test-ndt")
        register_base("test-ndt", build_ndt, estimator_params=("hidden_size",),
                      defaults={"hidden_size": 32})
        assert base_fingerprint("test-ndt") != first
    finally:
        BASES.pop("test-ndt")


def test_a_teacher_of_another_base(trials):
    X, b = trials
    lfads = BlendTeacher(base="gru", **TINY_GRU, random_state=0)
    est = BlendEstimator(teacher=lfads, strategy="correlation", **TINY).fit(X, b)
    assert type(est.teacher_.model_.base).__name__ == "GRUModel"
    assert type(est.student_.base).__name__ == "NDT"
    assert np.isfinite(est.transform(X)).all()
    # the GRU model returns three feature stages, a one-layer NDT one: they cannot be paired
    with pytest.raises(ValueError, match="same non-empty number of per-layer features"):
        BlendEstimator(teacher=lfads, strategy="feature", **TINY).fit(X, b)


def test_the_frozen_teacher_sees_the_students_mask_and_never_changes(trials, monkeypatch):
    from sklearn_blend.training import core

    X, b = trials
    teacher = BlendTeacher(**dict(TINY, dropout=0.5), random_state=0).fit(X, b)
    before = {k: v.clone() for k, v in teacher.model_.state_dict().items()}
    seen = {"teacher": [], "teacher_training": []}
    student_inputs = []

    def on_teacher(module, args):
        seen["teacher"].append(args[0]["spikes"].clone())
        seen["teacher_training"].append(module.training)

    original = core.ObjectiveNet.infer

    def infer(net, x, precision=None, **kwargs):
        output, view = original(net, x, precision, **kwargs)
        if net.module_.training:
            student_inputs.append(view.inputs["spikes"].clone())
        return output, view

    monkeypatch.setattr(core.ObjectiveNet, "infer", infer)
    handle = teacher.model_.register_forward_pre_hook(on_teacher)
    try:
        BlendEstimator(strategy="hard", teacher=teacher, **dict(TINY, max_epochs=2),
                       random_state=0).fit(X, b)
    finally:
        handle.remove()
    assert len(seen["teacher"]) == len(student_inputs) > 0
    for teacher_in, student_in in zip(seen["teacher"], student_inputs):
        torch.testing.assert_close(teacher_in, student_in, rtol=0, atol=0)
    assert any((s == 0).all(-1).any() for s in student_inputs)  # masked bins were there
    assert not any(seen["teacher_training"])
    for name, value in teacher.model_.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    assert not any(p.requires_grad for p in teacher.model_.parameters())


def test_in_process_teacher_cache_is_bounded_in_memory(trials, monkeypatch):
    X, b = trials
    est = BlendEstimator(**TINY, random_state=0).fit(X, b)
    assert teacher_cache.teacher_nbytes(est.teacher_) > 0
    assert len(teacher_cache._in_process) == 1
    teacher_cache.clear()
    monkeypatch.setattr(teacher_cache, "MAX_CACHED_BYTES", 1)
    BlendEstimator(**TINY, random_state=0).fit(X, b)
    assert len(teacher_cache._in_process) == 0


# ------------------------------------------------------------------ one stack for neurons
def test_neuron_embedding_trains_in_bfloat16(cells):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # emulated bfloat16 on some CPUs
        emb = NeuronEmbedding(precision="bfloat16", **TINY_NEURONS, random_state=0).fit(cells.X)
        again = NeuronEmbedding(precision="bfloat16", **TINY_NEURONS, random_state=0).fit(cells.X)
    plain = NeuronEmbedding(**TINY_NEURONS, random_state=0).fit(cells.X)
    np.testing.assert_array_equal(emb.embeddings_, again.embeddings_)
    assert np.isfinite(emb.embeddings_).all()
    assert not np.array_equal(emb.embeddings_, plain.embeddings_)
    with pytest.raises(ValueError, match="precision must be one of"):
        NeuronEmbedding(precision="fp16").fit(cells.X)


def test_neuron_feature_distillation_across_widths(cells):
    emb = NeuronEmbedding(strategy="feature", teacher_hidden_size=16, **TINY_NEURONS,
                          random_state=0).fit(cells.X)
    projections = emb.student_net_.criterion_.strategy.projections
    assert [tuple(p.weight.shape) for p in projections] == [(16, TINY_NEURONS["hidden_size"])]
    assert emb.teacher_net_.module_.model.config.hidden_size == 16
    with pytest.raises(ValueError, match="teacher_hidden_size .* divisible by n_heads"):
        NeuronEmbedding(teacher_hidden_size=7).fit(cells.X)


# ------------------------------------------------------------------ modalities as data
def _config(**fields):
    """A CPU training configuration with early stopping on a quarter of the samples."""
    return TrainingConfig(**dict(weight_decay=0.0, grad_clip=1.0, early_stopping=True,
                                 validation_fraction=0.25, device="cpu", verbose=0, **fields))


def test_the_core_trains_a_continuous_modality_end_to_end():
    rng = np.random.default_rng(0)
    n_trials, n_time, n_channels = 64, 40, 6
    phase = rng.uniform(size=(n_trials, 1, 1))
    latent = np.sin(2 * np.pi * (np.arange(n_time)[None, :, None] / 20 + phase))
    signal = latent * rng.normal(size=(1, 1, n_channels)) + 0.1 * rng.normal(
        size=(n_trials, n_time, n_channels))
    signal = signal - 3.0  # any sign: LFP is not counts
    lfp, _ = LFP.validate(signal)
    encoder = LFP.encoder().fit(lfp)
    z = encoder.transform(lfp)
    builder = TrialModelBuilder(
        dict(base="ndt", n_inputs=n_channels, n_outputs=n_channels, n_behavior=0,
             n_time=n_time, options=dict(hidden_size=32, n_layers=1, dropout=0.0),
             modality="lfp"),
        0.25, None, modalities={"lfp": LFP},
    )
    config = _config(max_epochs=60, batch_size=8, lr=5e-3, warmup_steps=5, n_iter_no_change=60)
    net = fit_net(builder, pack({"lfp": z}, {"lfp": z}), config, seed=0)
    assert net.criterion_.modalities["lfp"].likelihood == "gaussian"
    valid = net.history[:, "valid_loss"]
    assert valid[-1] < 0.5 * valid[0]
    predictions, _ = predict(net, {"lfp": z}, mask_ratio=0.25)
    # every bin predicted from a pass in which it was hidden, back in the user's units
    restored = encoder.inverse_transform(predictions["lfp"])
    assert LFP.score(restored, lfp) > 0.5


def test_modalities_validate_encode_and_score():
    assert SPIKES.likelihood == "poisson" and LFP.likelihood == "gaussian"
    assert LABELS.likelihood == "categorical" and get_modality("lfp") is LFP
    with pytest.raises(ValueError, match="spike counts must be non-negative"):
        SPIKES.validate(-np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        LFP.validate(np.full((2, 3, 4), np.nan))
    lfp, was_2d = LFP.validate(-np.ones((2, 4)))  # any sign; 2-D is one bin per sample
    assert lfp.shape == (2, 1, 4) and was_2d
    with pytest.raises(ValueError, match="modality must be"):
        get_modality("eeg")
    x = np.random.default_rng(0).normal(5, 3, size=(4, 6, 2))
    scaler = Standardizer().fit(x)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(x)), x, rtol=1e-5)
    logits = torch.randn(2, 3, 4)
    labels = torch.randint(0, 4, (2, 3))
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 4), labels.reshape(-1))
    torch.testing.assert_close(LABELS.loss(logits, labels), expected)
    assert LABELS.score(np.eye(4)[[0, 1]], np.array([0, 2])) == 0.5
    codes = LABELS.encoder().fit(np.array(["b", "a", "c", "a"]))
    assert codes.transform(np.array([["c", "a"]])).tolist() == [[2, 0]]
    assert codes.inverse_transform(np.array([[0.1, 0.7, 0.2]])).tolist() == ["b"]
    with pytest.raises(ValueError, match="not seen in fit"):
        codes.transform(np.array(["d"]))


# ------------------------------------------------------------------ each base its own defaults
def test_each_base_keeps_its_own_defaults(trials):
    X, b = trials
    settings = dict(max_epochs=1, batch_size=8, warmup_steps=1, early_stopping=False,
                    hidden_size=8, n_layers=1)
    neuprint = BlendEstimator(base="neuprint", strategy=None, **settings).fit(X)
    config = neuprint.student_.base.model.config
    assert (config.dropout, config.context_forward, config.ffn_size) == (0.1, 0, 128)
    tuned = BlendEstimator(base="neuprint", strategy=None, **settings).set_params(
        dropout=0.3, context_forward=2).fit(X)
    assert tuned.student_.base.model.config.dropout == 0.3
    assert tuned.student_.base.model.config.context_forward == 2
    ndt = BlendEstimator(base="ndt", strategy=None,
                         **dict(settings, hidden_size=None, n_layers=None)).fit(X)
    # the plain NDT's dropout default is its own nested choice (0.7), a student's the base's
    assert (ndt.student_.base.config.hidden_size, ndt.student_.base.config.dropout) == (64, 0.7)
    student = BlendEstimator(base="ndt", strategy="hard",
                             **dict(settings, hidden_size=None, n_layers=None)).fit(X, b)
    assert student.student_.base.config.dropout == 0.5
    lfads = BlendEstimator(base="gru", strategy=None, max_epochs=1, early_stopping=False,
                           hidden_size=8).fit(X)
    assert lfads.student_.base.config.n_layers == 2
    with pytest.raises(ValueError, match="n_heads=2 does not apply to base='gru'"):
        BlendEstimator(base="gru", n_heads=2).fit(X, b)
    with pytest.raises(ValueError, match=r"hidden_size \(6\) must be divisible by n_heads \(4\)"):
        BlendEstimator(base="ndt", hidden_size=6, n_heads=4).fit(X, b)


def test_validation_reports_the_term_named_by_monitor():
    import dataclasses

    z = np.random.default_rng(0).normal(size=(12, 8, 3)).astype(np.float32)
    builder = TrialModelBuilder(
        dict(base="ndt", n_inputs=3, n_outputs=3, n_behavior=0, n_time=8,
             options=dict(hidden_size=8, n_layers=1), modality="lfp"),
        0.25, None, modalities={"lfp": LFP},
    )
    config = _config(max_epochs=2, batch_size=4, lr=1e-3, warmup_steps=1, n_iter_no_change=5)
    net = fit_net(builder, pack({"lfp": z}, {"lfp": z}), config, seed=0)
    assert net.history[:, "valid_loss"] == net.history[:, "valid_recon"]
    with pytest.raises(ValueError, match="monitor='nope' names no term"):
        fit_net(builder, pack({"lfp": z}, {"lfp": z}),
                dataclasses.replace(config, monitor="nope"), seed=0)

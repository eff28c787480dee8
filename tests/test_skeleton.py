"""One estimator skeleton and one teacher protocol (issue: six estimators share their
life-cycle; every distilling family takes ``teacher=`` and ``strategy=``)."""

import inspect

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

from sklearn_blend import (BlendEstimator, BlendTeacher, CrossModalEstimator, MaskedAutoencoder,
                           NedsEstimator, NeuronEmbedding, SessionTrials, load)
from sklearn_blend.datasets import make_cell_types
from sklearn_blend.distill import LatentAlignment
from sklearn_blend.estimators.base import TRAINING, ModelEstimator, Parameter, parameters
from sklearn_blend.modalities import LFP

from .helpers import TINY, TINY_NEURONS

ESTIMATORS = [BlendEstimator, BlendTeacher, NeuronEmbedding, NedsEstimator, CrossModalEstimator,
              MaskedAutoencoder]
SESSIONS = dict(hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=2,
                batch_size=8, warmup_steps=1, early_stopping=False, random_state=0)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_parameters_are_declared_once_as_data(cls):
    table = cls._parameters
    names = list(inspect.signature(cls).parameters)
    assert sorted(names) == sorted(table) == cls._get_param_names()
    defaults = cls().get_params()
    assert defaults == {name: parameter.default for name, parameter in table.items()}
    for name, shared in TRAINING.items():
        # the shared constraint is the one object; only the default may differ, and the
        # docstring says the class's own default
        assert table[name].constraint is shared.constraint
        if table[name].default != shared.default or name in ("max_epochs", "device"):
            assert f"{name} : " in cls.__doc__
            assert f"default={table[name].default!r}" in cls.__doc__ or (
                f"default={table[name].default}" in cls.__doc__)


def test_init_only_stores_and_rejects_unknown_names():
    est = BlendEstimator(alpha=0.3, hidden_size=8)
    assert vars(est) == dict(BlendEstimator().get_params(), alpha=0.3, hidden_size=8)
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpah'"):
        BlendEstimator(alpah=0.3)
    with pytest.raises(TypeError, match="positional argument"):
        BlendEstimator("hard")
    assert NeuronEmbedding("soft").strategy == "soft"  # its one positional parameter
    with pytest.raises(TypeError, match="multiple values for argument 'strategy'"):
        NeuronEmbedding("soft", strategy="hard")


def test_a_new_estimator_is_a_table_and_two_methods(trials):
    """What a contributor writes for a new model estimator: its own parameters, how it reads
    data and what it trains; checks, seeds, device, n_iter_ and saving come with the base."""
    from sklearn_blend.data.validation import Interval
    from sklearn_blend.training import core

    class RateAutoencoder(ModelEstimator):
        """Masked modelling of spike counts with an NDT (a toy).

        Parameters
        ----------
        width : int, default=8
            Transformer width.
        """

        _parameters = parameters({"width": Parameter(8, Interval(int, 2))},
                                 defaults=dict(max_epochs=2))

        def fit(self, X, y=None):
            return self._fit(X)

        def _read_fit_data(self, X, y=None):
            spikes, _ = core.SPIKES.validate(X) if hasattr(core, "SPIKES") else (X, None)
            return core.pack({"spikes": np.asarray(X, np.float32)},
                             {"spikes": np.asarray(X, np.float32)})

        def _builder(self, mean):
            return core.TrialModelBuilder(
                dict(base="ndt", n_inputs=self.n_channels_, n_outputs=self.n_channels_,
                     n_behavior=0, n_time=self.n_time_, options=dict(
                         hidden_size=self.width, n_layers=1, n_heads=2)),
                0.25, mean, modalities={"spikes": __import__("sklearn_blend").modalities.SPIKES})

        def _fit_models(self, data, seeds):
            self.n_time_, self.n_channels_ = data["inputs.spikes"].shape[1:]
            self.net_ = self._train(self._builder(data["targets.spikes"].mean(axis=(0, 1))),
                                    data, seeds["model"], "toy")

        def _net_builder(self, attribute, saved):
            return self._builder(np.ones(self.n_channels_))

    X, _ = trials
    model = RateAutoencoder(random_state=0, early_stopping=False).fit(X)
    assert model.n_iter_ == 2 and model.device_ == "cpu"
    assert "max_epochs : int, default=2" in RateAutoencoder.__doc__
    with pytest.raises(ValueError, match=r"width must be in \[2, inf\]"):
        RateAutoencoder(width=1).fit(X)
    again = RateAutoencoder(random_state=0, early_stopping=False).fit(X)
    np.testing.assert_array_equal(again.net_.history[:, "train_recon"],
                                  model.net_.history[:, "train_recon"])


class PlainMSE(torch.nn.Module):
    """A strategy that is no Strategy subclass: any module with forward(student, teacher)."""

    def forward(self, student, teacher):
        return ((student.predictions["spikes"] - teacher.predictions["spikes"]) ** 2).mean()


@pytest.mark.parametrize("form", ["class", "instance"])
def test_a_plain_module_is_a_strategy(trials, form):
    X, b = trials
    strategy = PlainMSE if form == "class" else PlainMSE()
    est = BlendEstimator(strategy=strategy, **TINY, random_state=0).fit(X, b)
    hard = BlendEstimator(strategy="hard", **TINY, random_state=0).fit(X, b)
    assert isinstance(est.student_net_.criterion_.strategy, PlainMSE)
    # the same term as the built-in hard strategy, so the same student
    np.testing.assert_array_equal(est.transform(X), hard.transform(X))


@pytest.fixture(scope="module")
def cells():
    return make_cell_types(n_sessions=2, n_neurons=12, n_frames=64, random_state=0)


def test_neuron_embedding_takes_a_teacher(cells):
    settings = dict(TINY_NEURONS, random_state=0)
    default = NeuronEmbedding("hard", **settings).fit(cells.X)
    assert isinstance(default.teacher_, NeuronEmbedding) and default.teacher_.behavior_inputs
    # an unfitted teacher is cloned and fitted; with the default's settings, the same model
    given = NeuronEmbedding("hard", teacher=NeuronEmbedding(None, behavior_inputs=True,
                                                            **settings), **settings)
    given.fit(cells.X)
    np.testing.assert_array_equal(given.embeddings_, default.embeddings_)
    # a fitted teacher is used as it is, also through clone in a FrozenEstimator
    teacher = NeuronEmbedding(None, behavior_inputs=True, **settings).fit(cells.X)
    reused = NeuronEmbedding("soft", teacher=teacher, **settings).fit(cells.X)
    assert reused.teacher_ is teacher
    frozen = clone(NeuronEmbedding("soft", teacher=FrozenEstimator(teacher), **settings))
    assert frozen.fit(cells.X).teacher_.estimator is teacher
    with pytest.raises(TypeError, match="reads behavior"):
        NeuronEmbedding("hard", teacher=NeuronEmbedding(None, **settings)).fit(cells.X)
    other = NeuronEmbedding(None, behavior_inputs=True, **settings).fit(cells.X[:10])
    with pytest.raises(ValueError, match="fitted on other neurons"):
        NeuronEmbedding("hard", teacher=other, **settings).fit(cells.X)


def test_cross_modal_takes_any_strategy(trials):
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(24, 10, 2))
    spikes = rng.poisson(np.exp(latent @ rng.normal(size=(2, 6)) * 0.5)).astype(float)
    lfp = latent @ rng.normal(size=(2, 4)) + rng.normal(size=(24, 10, 4))

    class LatentMSE(torch.nn.Module):
        def forward(self, student, teacher):
            return ((student.latents - teacher.latents) ** 2).mean()

    named = CrossModalEstimator(strategy=LatentAlignment(head=None, centre=False),
                                **SESSIONS).fit(lfp, privileged=spikes)
    own = CrossModalEstimator(strategy=LatentMSE(), **SESSIONS).fit(lfp, privileged=spikes)
    # the registered latent alignment without a head, uncentred (MSE, equal widths), is the
    # same term
    np.testing.assert_array_equal(own.transform(lfp), named.transform(lfp))
    assert "train_distill" in own.net_.history[-1] and own.net_.criterion_.online is False


# ------------------------------------------------------------------ all or nothing
def _state(model):
    return {key: value for key, value in vars(model).items()}


def test_failed_finetune_leaves_the_model_as_it_was(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    b = rng.normal(size=(20, 8, 2))
    X = rng.poisson(np.exp(b @ rng.normal(size=(2, 5)) * 0.5)).astype(float)
    neds = NedsEstimator(**SESSIONS).fit(X, b)
    before = _state(neds)
    predicted = neds.predict(X)
    new = SessionTrials([X[:, :, :4]], keys=["new"])
    with pytest.raises(ValueError, match="behavior channels"):
        neds.finetune(new, b[..., :1])  # a wrong behavior layout
    from sklearn_blend.estimators import base

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(base._training, "fit_net", interrupted)
    with pytest.raises(KeyboardInterrupt):
        neds.finetune(new, b)
    monkeypatch.undo()
    assert _state(neds).keys() == before.keys()
    assert all(_state(neds)[key] is value for key, value in before.items())
    np.testing.assert_array_equal(neds.predict(X), predicted)
    neds.save(tmp_path / "neds.safetensors")
    np.testing.assert_array_equal(load(tmp_path / "neds.safetensors").predict(X), predicted)


@pytest.mark.parametrize("cls", [MaskedAutoencoder, CrossModalEstimator])
def test_failed_add_sessions_leaves_the_model_as_it_was(cls, tmp_path, monkeypatch):
    lfp = np.random.default_rng(0).normal(size=(20, 8, 4))
    model = (cls(modality="lfp", **SESSIONS) if cls is MaskedAutoencoder
             else cls(strategy=None, **SESSIONS)).fit(lfp)
    before, latents = _state(model), model.transform(lfp)
    from sklearn_blend.estimators import base

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(base._training, "fit_net", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.add_sessions(SessionTrials([lfp[..., :3]], keys=["new"], modality=LFP))
    monkeypatch.undo()
    assert all(_state(model)[key] is value for key, value in before.items())
    assert model.sessions_ == [0]
    np.testing.assert_array_equal(model.transform(lfp), latents)
    model.save(tmp_path / "model.safetensors")
    np.testing.assert_array_equal(load(tmp_path / "model.safetensors").transform(lfp), latents)


def test_a_strategy_of_another_family_is_refused_before_any_fit(trials):
    X, b = trials
    with pytest.raises(ValueError, match="strategy='latent' compares latents, but "
                                         "BlendEstimator's teacher and student are compared "
                                         "by their predictions"):
        BlendEstimator(strategy="latent", **TINY).fit(X, b)
    with pytest.raises(ValueError, match="compares predictions, but CrossModalEstimator"):
        CrossModalEstimator(strategy="hard", **SESSIONS).fit(X - 1.0, privileged=X)
    with pytest.raises(ValueError, match="student must be a modality name"):
        CrossModalEstimator(student="eeg", **SESSIONS).fit(X - 1.0, privileged=X)


def test_the_neuron_teachers_stream_is_the_students(cells):
    """With a RandomState, the default teacher draws the student's own data and teacher
    seeds (from a copy of the state before the student drew), as with an int."""
    settings = dict(TINY_NEURONS)
    student = NeuronEmbedding("hard", **settings, random_state=np.random.RandomState(0))
    student.fit(cells.X)
    reference = NeuronEmbedding(None, behavior_inputs=True, **settings,
                                random_state=np.random.RandomState(0)).fit(cells.X)
    np.testing.assert_array_equal(student.teacher_.embeddings_, reference.embeddings_)
    assert "_stream_start" not in vars(student)


def test_shared_parameter_docs_go_to_the_end_of_the_parameters_section():
    class Toy(ModelEstimator):
        """A toy.

        Parameters
        ----------
        extra : int, default=1
            Extra.

        Notes
        -----
        Trains slowly.
        """

        _parameters = parameters({"extra": Parameter(1)}, defaults=dict(max_epochs=7))

    doc = Toy.__doc__
    parameters_section = doc.split("Parameters\n----------\n")[1].split("Notes\n-----\n")[0]
    assert "max_epochs : int, default=7" in parameters_section
    assert "distributed :" in parameters_section
    assert doc.rstrip().endswith("Trains slowly.")

"""Per-neuron models (NeuPRINT) in the training core: samples, the model adapter, embedding fits.

A training *sample* is a window of ``n_window`` frames of a group of ``group_size`` neurons of
one session, with the population inputs of those frames (mean and standard deviation over all
neurons the session recorded) and the behavior; :func:`neuron_samples` cuts them from a
:class:`~sklearn_blend.data.recordings.Recordings`. :class:`NeuronModel` puts a NeuPRINT under
the training core's model contract (reads and predicts modalities), so teacher, plain model and
student are trained by :func:`~sklearn_blend.training.core.fit_net` with entry masking
(:class:`~sklearn_blend.training.objective.EntryMasking`), exactly as trial models are:
precision, strategies (feature projections included) and the frozen teacher come from there.
:func:`fit_new_embeddings` fits embeddings of neurons a fitted model has not seen, everything
else frozen.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from ..models import ModelOutput
from ..models.neuprint import N_POPULATION_STATISTICS, NeuPRINT, NeuPRINTConfig
from .core import fit_net, pack, trained_model
from .objective import EntryMasking, Objective

__all__ = [
    "NeuronModel",
    "fit_new_embeddings",
    "neuron_samples",
    "mean_activity",
]


def session_population(activity):
    """Mean and standard deviation over all recorded neurons, per frame: ``(n_frames, 2)``."""
    return np.stack([activity.mean(axis=1), activity.std(axis=1)], axis=1).astype(np.float32)


def _groups(neurons, group_size, rng):
    """Split ``neurons`` (shuffled) into groups of exactly ``group_size``; the last group is
    filled up with neurons drawn again from the session, so every sample has the same width."""
    order = rng.permutation(neurons)
    n_groups = -(-len(order) // group_size)
    fill = n_groups * group_size - len(order)
    if fill:
        order = np.concatenate([order, rng.choice(neurons, fill, replace=fill > len(neurons))])
    return order.reshape(n_groups, group_size)


def behavior_scaling(recordings):
    """Mean and standard deviation of each behavior channel over the sessions of the selected
    neurons (frames pooled), so the teacher reads standardised behavior in any units."""
    sessions = np.unique(recordings.sessions)
    frames = np.concatenate([recordings.behavior[s] for s in sessions])
    scale = frames.std(axis=0)
    return frames.mean(axis=0), np.where(scale > 0, scale, 1.0)


def neuron_samples(recordings, rows, *, n_window, group_size, seed, with_behavior,
                   behavior_scale=None):
    """Cut training samples for the selected neurons of ``recordings``.

    Parameters
    ----------
    recordings : Recordings
    rows : ndarray of int (n_selected,)
        Embedding-table row of each selected neuron.
    n_window : int
        Frames per sample; each session gives ``n_frames // n_window`` non-overlapping windows.
    group_size : int
        Neurons per sample (at most the largest number selected in one session).
    seed : int
        Seeds the grouping of neurons.
    with_behavior : bool
        Include the behavior of each window, standardised by :func:`behavior_scaling`.
    behavior_scale : tuple of ndarray, optional
        ``(mean, std)`` per behavior channel to standardise with instead (a fitted model's,
        when new neurons are embedded).

    Returns
    -------
    dict of ndarray
        ``activity`` ``(n_samples, n_window, group_size)``, ``population``
        ``(n_samples, n_window, 2)``, ``neuron_ids`` ``(n_samples, group_size)`` and, with
        behavior, ``behavior`` ``(n_samples, n_window, n_behavior)``.
    """
    rng = np.random.default_rng(seed)
    if with_behavior:
        behavior_mean, behavior_scale = (behavior_scaling(recordings) if behavior_scale is None
                                         else behavior_scale)
    per_session = [np.flatnonzero(recordings.sessions == s) for s in range(recordings.n_sessions)]
    group_size = min(group_size, max(len(p) for p in per_session))
    parts = {"activity": [], "population": [], "neuron_ids": [], "behavior": []}
    for session, positions in enumerate(per_session):
        if not len(positions):
            continue
        activity = recordings.activity[session]
        n_windows = activity.shape[0] // n_window
        frames = (np.arange(n_windows)[:, None] * n_window + np.arange(n_window)).ravel()
        groups = _groups(positions, group_size, rng)  # positions in the selection
        columns = recordings.neuron_index[groups]  # (n_groups, group_size)
        windows = activity[frames].reshape(n_windows, n_window, -1)
        # (n_windows, n_window, n_groups, group_size) -> samples ordered window-major
        samples = windows[:, :, columns].transpose(0, 2, 1, 3)
        parts["activity"].append(samples.reshape(-1, n_window, group_size))
        population = session_population(activity)[frames].reshape(n_windows, n_window, -1)
        parts["population"].append(np.repeat(population, len(groups), axis=0))
        parts["neuron_ids"].append(np.tile(rows[groups], (n_windows, 1)))
        if with_behavior:
            behavior = (recordings.behavior[session][frames] - behavior_mean) / behavior_scale
            behavior = behavior.reshape(n_windows, n_window, -1).astype(np.float32)
            parts["behavior"].append(np.repeat(behavior, len(groups), axis=0))
    data = {k: np.concatenate(v) for k, v in parts.items() if v}
    data["activity"] = data["activity"].astype(np.float32)
    data["neuron_ids"] = data["neuron_ids"].astype(np.int64)
    return data


class NeuronModel(nn.Module):
    """A :class:`~sklearn_blend.models.NeuPRINT` under the training core's model contract.

    ``forward(inputs)`` reads the activity modality (``modality``: ``"fluorescence"`` for MSE,
    ``"spikes"`` for Poisson), the context ``"population"`` and ``"neuron_ids"`` and, for a
    model built with behavior (a teacher), ``"behavior"``; it returns a
    :class:`~sklearn_blend.models.ModelOutput` with ``{modality: predictions}`` and the
    hidden state of every layer as features. ``frozen_dynamics=True`` keeps the NeuPRINT in
    evaluation mode while training (an embedding fit: no dropout in the frozen dynamics).
    """

    def __init__(self, model, modality, *, reads_behavior, frozen_dynamics=False):
        super().__init__()
        self.model = model
        self.modality = modality
        self.reads_behavior = reads_behavior
        self.frozen_dynamics = frozen_dynamics

    @property
    def predicts(self):
        return (self.modality,)

    def train(self, mode=True):
        super().train(mode)
        if self.frozen_dynamics:
            self.model.eval()
        return self

    def feature_widths(self):
        """Width of each layer's hidden state (what feature distillation aligns)."""
        return [self.model.config.hidden_size] * self.model.config.n_layers

    def forward(self, inputs):
        behavior = inputs.get("behavior") if self.reads_behavior else None
        output = self.model(inputs[self.modality], behavior, neuron_ids=inputs["neuron_ids"],
                            population=inputs["population"])
        return ModelOutput({self.modality: output.log_rates}, None, output.features)


class NeuronModelBuilder:
    """Picklable recipe of a NeuPRINT and its objective (seeded weights are drawn when called)."""

    def __init__(self, model_config, modality, mask_ratio, mean_activity, *, teacher=None,
                 strategy=None, alpha=1.0, precision="float32"):
        self.model_config = model_config
        self.modality = modality
        self.mask_ratio = mask_ratio
        self.mean_activity = mean_activity
        self.teacher = teacher
        self.strategy = strategy
        self.alpha = alpha
        self.precision = precision

    def __call__(self):
        model = NeuPRINT(self.model_config)
        self.modality.init_readout(model, self.mean_activity)
        model = NeuronModel(model, self.modality.name,
                            reads_behavior=self.model_config.reads_behavior)
        objective = Objective(
            EntryMasking(self.mask_ratio, modality=self.modality.name),
            {self.modality.name: self.modality}, teacher=self.teacher, strategy=self.strategy,
            student=model, alpha=self.alpha, precision=self.precision,
        )
        return model, objective


def sample_data(samples, modality):
    """The flat batch dict of :func:`neuron_samples` for a model of ``modality``."""
    return pack({modality.name: samples["activity"], "population": samples["population"],
                 "neuron_ids": samples["neuron_ids"], "behavior": samples.get("behavior")})


def model_config(architecture, n_neurons, n_behavior):
    """A :class:`NeuPRINTConfig` for ``n_neurons`` embeddings; a teacher adds behavior inputs."""
    return NeuPRINTConfig(
        n_neurons=n_neurons, n_population=N_POPULATION_STATISTICS + n_behavior, **architecture
    )


def mean_activity(samples):
    """The mean (non-negative part of the) activity of ``samples``: where a Poisson readout
    starts."""
    return float(np.clip(samples["activity"], 0, None).mean())


def neuron_model_builder(*, architecture, n_neurons, n_behavior, modality, mask_ratio,
                         mean_activity, teacher=None, strategy=None, alpha=1.0,
                         precision="float32"):
    """The recipe of a NeuPRINT of ``architecture`` (``n_behavior`` behavior inputs: a
    teacher) and its objective, distilled from ``teacher`` (an online teacher model) by
    ``strategy`` when given; what the estimator trains and a saved model is rebuilt from
    (:mod:`sklearn_blend.persistence`)."""
    return NeuronModelBuilder(
        model_config(architecture, n_neurons, n_behavior), modality, mask_ratio,
        mean_activity, teacher=teacher, strategy=strategy, alpha=alpha, precision=precision,
    )


class _EmbeddingFitBuilder:
    def __init__(self, fitted, n_neurons, modality, mask_ratio, precision):
        self.fitted = fitted
        self.n_neurons = n_neurons
        self.modality = modality
        self.mask_ratio = mask_ratio
        self.precision = precision

    def __call__(self):
        fitted = self.fitted
        config = dataclasses.replace(fitted.config, n_neurons=self.n_neurons)
        model = NeuPRINT(config).to(fitted.embedding.weight.device)
        state = {name: value for name, value in fitted.state_dict().items()
                 if not name.startswith("embedding.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing != ["embedding.weight"] or unexpected:
            raise RuntimeError(f"unexpected NeuPRINT state: missing {missing}, extra {unexpected}")
        model.requires_grad_(False)
        with torch.no_grad():
            # every new neuron starts at the mean of the fitted embeddings
            model.embedding.weight.copy_(fitted.embedding.weight.mean(0).expand_as(
                model.embedding.weight))
        model.embedding.weight.requires_grad_(True)
        model = NeuronModel(model, self.modality.name,
                            reads_behavior=config.reads_behavior,
                            frozen_dynamics=True)
        objective = Objective(EntryMasking(self.mask_ratio, modality=self.modality.name),
                              {self.modality.name: self.modality}, precision=self.precision)
        return model, objective


def fit_new_embeddings(fitted, samples, *, n_neurons, modality, mask_ratio, config, seed,
                       precision="float32"):
    """Embeddings of neurons ``fitted`` has not seen, its dynamics frozen (as NeuPRINT does).

    ``fitted`` is a trained :class:`~sklearn_blend.models.NeuPRINT`; ``samples`` come from
    :func:`neuron_samples` with rows ``0 .. n_neurons - 1`` for the new neurons (with their
    behavior when ``fitted`` reads behavior). Trains only a new embedding table, by
    masked modelling, for ``config.max_epochs`` epochs; returns it as a
    ``(n_neurons, embedding_dim)`` float32 array.
    """
    if not fitted.config.reads_behavior:  # a student: no behavior
        samples = {k: v for k, v in samples.items() if k != "behavior"}
    builder = _EmbeddingFitBuilder(fitted, n_neurons, modality, mask_ratio, precision)
    net = fit_net(builder, sample_data(samples, modality), config, seed,
                  "new neuron embeddings")
    return embedding_table(trained_model(net).model)


def embedding_table(model):
    """The learned neuron embeddings of a NeuPRINT, ``(n_neurons, embedding_dim)`` float32."""
    return model.embedding.weight.detach().cpu().numpy().astype(np.float32)

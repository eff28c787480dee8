"""Training layer of the per-neuron models (NeuPRINT): samples, objectives, embedding fits.

The only module :mod:`sklearn_blend.estimators.neurons` uses to touch PyTorch. A training *sample* is a
window of ``n_window`` frames of a group of ``group_size`` neurons of one session, with the
population inputs of those frames (mean and standard deviation over all neurons the session
recorded) and the behavior; :func:`neuron_samples` cuts them from a
:class:`~sklearn_blend.data.recordings.Recordings`. Objectives and the skorch loop mirror
:mod:`sklearn_blend.training.core`: masked modelling of entries (:class:`NeuronMaskedModeling`),
distillation from a frozen teacher (:class:`NeuronDistillation`), and, for neurons a fitted
model has not seen, fitting their embeddings with everything else frozen
(:func:`fit_new_embeddings`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from .. import losses
from .core import TrainingConfig, fit_objective_net, trained_model
from ..masking import corrupt_entries, random_entry_mask
from ..models.neuprint import N_POPULATION_STATISTICS, NeuPRINT, NeuPRINTConfig

__all__ = [
    "NeuronDistillation",
    "NeuronMaskedModeling",
    "TrainingConfig",
    "fit_new_embeddings",
    "neuron_samples",
    "train_neuron_model",
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


def neuron_samples(recordings, rows, *, n_window, group_size, seed, with_behavior):
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

    Returns
    -------
    dict of ndarray
        ``activity`` ``(n_samples, n_window, group_size)``, ``population``
        ``(n_samples, n_window, 2)``, ``neuron_ids`` ``(n_samples, group_size)`` and, with
        behavior, ``behavior`` ``(n_samples, n_window, n_behavior)``.
    """
    rng = np.random.default_rng(seed)
    if with_behavior:
        behavior_mean, behavior_scale = behavior_scaling(recordings)
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


class NeuronMaskedModeling(nn.Module):
    """Masked modelling of entries: a plain NeuPRINT, a teacher, or an embedding fit.

    In training mode every batch gets a fresh entry mask (``mask_ratio`` plus the last frame)
    and BERT-style corruption; in evaluation mode the fixed ``valid_mask`` of the data is used
    and masked entries are zeroed, so the validation loss is comparable across epochs. The
    loss is the MSE (``loss="mse"``) or Poisson NLL of the log-rates (``loss="poisson"``) over
    the masked entries.
    """

    def __init__(self, model, mask_ratio, loss):
        super().__init__()
        self.model = model
        self.mask_ratio = mask_ratio
        self.loss = loss

    def masked_inputs(self, activity, valid_mask):
        if self.training or valid_mask is None:
            mask = random_entry_mask(activity.shape, self.mask_ratio, device=activity.device)
            return corrupt_entries(activity, mask), mask
        return activity.masked_fill(valid_mask, 0.0), valid_mask

    def reconstruction(self, predictions, targets, mask):
        if self.loss == "poisson":
            return losses.masked_poisson_loss(predictions, targets, mask)
        return losses.masked_mse_loss(predictions, targets, mask)

    def forward(self, activity, population, neuron_ids, behavior=None, valid_mask=None):
        inputs, mask = self.masked_inputs(activity, valid_mask)
        output = self.model(inputs, behavior, neuron_ids=neuron_ids, population=population)
        loss = self.reconstruction(output.log_rates, activity, mask)
        return {"loss": loss, "mtm": loss}


class NeuronDistillation(NeuronMaskedModeling):
    """Student objective: ``alpha * masked loss + (1 - alpha) * distillation`` from a teacher.

    The frozen teacher sees the student's masked activity plus the behavior, under
    :func:`torch.inference_mode`. The distillation terms act on the predictions
    ``(batch, time, neurons)``, whose neuron axis is the group of neurons of a sample (the
    softmax of ``"soft"`` and the correlations of ``"correlation"`` run over that group), and,
    for ``"feature"``, on the hidden state of every layer. Validation scores the masked loss.
    """

    def __init__(self, student, teacher, *, strategy, alpha, tau, mask_ratio, loss):
        super().__init__(student, mask_ratio, loss)
        self.teacher = teacher.requires_grad_(False).eval()
        self.strategy = strategy
        self.alpha = alpha
        self.tau = tau

    def train(self, mode=True):
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, activity, population, neuron_ids, behavior=None, valid_mask=None):
        if not self.training:
            return super().forward(activity, population, neuron_ids, valid_mask=valid_mask)
        inputs, mask = self.masked_inputs(activity, valid_mask)
        student = self.model(inputs, neuron_ids=neuron_ids, population=population)
        with torch.inference_mode():
            teacher = self.teacher(inputs, behavior, neuron_ids=neuron_ids, population=population)
        own = self.reconstruction(student.log_rates, activity, mask)
        distill = losses.distillation_loss(self.strategy, student, teacher, tau=self.tau)
        return {"loss": self.alpha * own + (1 - self.alpha) * distill, "mtm": own,
                "distill": distill}


class NeuronObjectiveFactory:
    """Picklable recipe for a per-neuron objective (seeded weights are drawn when called)."""

    def __init__(self, model_config, mask_ratio, loss, mean_activity, teacher=None, **distill):
        self.model_config = model_config
        self.mask_ratio = mask_ratio
        self.loss = loss
        self.mean_activity = mean_activity
        self.teacher = teacher
        self.distill = distill

    def __call__(self):
        model = NeuPRINT(self.model_config)
        if self.loss == "poisson":
            model.init_output_bias(self.mean_activity)
        if self.teacher is None:
            return NeuronMaskedModeling(model, self.mask_ratio, self.loss)
        return NeuronDistillation(
            model, self.teacher, mask_ratio=self.mask_ratio, loss=self.loss, **self.distill
        )


def _valid_mask(data, mask_ratio, seed):
    generator = torch.Generator().manual_seed(seed)
    return random_entry_mask(data["activity"].shape, mask_ratio, generator=generator).numpy()


def model_config(architecture, n_neurons, n_behavior):
    """A :class:`NeuPRINTConfig` for ``n_neurons`` embeddings; a teacher adds behavior inputs."""
    return NeuPRINTConfig(
        n_neurons=n_neurons, n_population=N_POPULATION_STATISTICS + n_behavior, **architecture
    )


def train_neuron_model(data, *, architecture, n_neurons, mask_ratio, loss, config, seed,
                       teacher=None, description="NeuPRINT", **distill):
    """Train a NeuPRINT on ``data`` (from :func:`neuron_samples`); return the fitted skorch net.

    With ``teacher`` (a fitted NeuPRINT that reads behavior), the model is a student trained by
    :class:`NeuronDistillation` with ``distill`` (``strategy``, ``alpha``, ``tau``); otherwise
    by masked modelling, reading the behavior in ``data`` if there is any (a teacher).
    """
    data = dict(data)
    n_behavior = data["behavior"].shape[-1] if teacher is None and "behavior" in data else 0
    data["valid_mask"] = _valid_mask(data, mask_ratio, seed)
    factory = NeuronObjectiveFactory(
        model_config(architecture, n_neurons, n_behavior), mask_ratio, loss,
        float(np.clip(data["activity"], 0, None).mean()), teacher, **distill,
    )
    return fit_objective_net(factory, data, config, seed, description)


class _FrozenDynamics(NeuronMaskedModeling):
    """Masked modelling with only the embedding table trainable; dropout off elsewhere."""

    def train(self, mode=True):
        super().train(mode)
        self.model.eval()
        return self


class _EmbeddingFitFactory:
    def __init__(self, fitted, n_neurons, mask_ratio, loss):
        self.fitted = fitted
        self.n_neurons = n_neurons
        self.mask_ratio = mask_ratio
        self.loss = loss

    def __call__(self):
        config = dataclasses.replace(self.fitted.config, n_neurons=self.n_neurons)
        model = NeuPRINT(config).to(self.fitted.embedding.weight.device)
        state = {name: value for name, value in self.fitted.state_dict().items()
                 if not name.startswith("embedding.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing != ["embedding.weight"] or unexpected:
            raise RuntimeError(f"unexpected NeuPRINT state: missing {missing}, extra {unexpected}")
        model.requires_grad_(False)
        with torch.no_grad():
            # every new neuron starts at the mean of the fitted embeddings
            model.embedding.weight.copy_(self.fitted.embedding.weight.mean(0).expand_as(
                model.embedding.weight))
        model.embedding.weight.requires_grad_(True)
        return _FrozenDynamics(model, self.mask_ratio, self.loss)


def fit_new_embeddings(fitted, data, *, n_neurons, mask_ratio, loss, config, seed):
    """Embeddings of neurons ``fitted`` has not seen, its dynamics frozen (as NeuPRINT does).

    ``data`` comes from :func:`neuron_samples` with rows ``0 .. n_neurons - 1`` for the new
    neurons. Trains only a new embedding table, by masked modelling, for ``config.max_epochs``
    epochs; returns it as a ``(n_neurons, embedding_dim)`` float32 array.
    """
    data = {k: v for k, v in data.items() if k != "behavior"}
    data["valid_mask"] = _valid_mask(data, mask_ratio, seed)
    factory = _EmbeddingFitFactory(fitted, n_neurons, mask_ratio, loss)
    net = fit_objective_net(factory, data, config, seed, "new neuron embeddings")
    return embedding_table(trained_model(net))


def embedding_table(model):
    """The learned neuron embeddings of a NeuPRINT, ``(n_neurons, embedding_dim)`` float32."""
    return model.embedding.weight.detach().cpu().numpy().astype(np.float32)

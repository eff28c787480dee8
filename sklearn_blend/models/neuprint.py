"""NeuPRINT in plain PyTorch: one sequence per neuron, read with its population.

NeuPRINT (Mi et al., ICLR 2023) learns a time-invariant embedding ``phi_i`` of every neuron
together with an implicit dynamical model that predicts the neuron's activity. Every neuron is
its own sequence; at frame ``t`` the token of neuron ``i`` joins

* its own (masked) activity ``x_i(t)``,
* its embedding ``phi_i`` (a row of a learned table, the same at every frame),
* permutation-invariant population inputs ``p(t)``: the mean and standard deviation of the
  activity over the recorded population, and for a BLEND teacher the behavior (running speed,
  pupil size),

through a linear map of their concatenation, plus a sinusoidal position code. A small pre-norm
transformer (1 layer, 2 heads, width 64 in the paper) whose attention is causal by default
(each frame sees itself and the past) predicts the activity of every frame; the loss
(``sklearn_blend.training.neurons``) scores the masked frames. As in NeuPRINT, the population
inputs of a frame come from the whole recorded population, the neuron itself included (a
``1 / n_neurons`` share of the mean), so sessions of very few neurons partly reveal a masked
frame through them. The student is the same model
without behavior among its population inputs.

Shapes: activity is ``(batch, time, neurons)``: a batch of time windows of a group of neurons
of one session; each (window, neuron) is one sequence, and the neurons of a window form the
"population" axis the soft and correlation distillation losses act on. ``predictions`` have
that shape too; the hidden state of each layer is ``(batch, time, neurons, hidden_size)``.

:func:`build_neuprint` registers the same model as ``base="neuprint"`` of
:class:`~sklearn_blend.BlendEstimator`, for trial data: the neurons are the columns of the
trials, each with its own embedding, and the population inputs are computed from the (masked)
input counts of the trial.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..persistence import registry
from .base import ModelOutput, set_log_mean_bias
from .layers import Dropout, EncoderLayer, banded_attention_mask, sinusoidal_positions

#: population inputs computed from the activity itself: mean and standard deviation over neurons
N_POPULATION_STATISTICS = 2


@registry.register("dataclass")
@dataclass(frozen=True)
class NeuPRINTConfig:
    """Shape and size of a :class:`NeuPRINT`.

    Parameters
    ----------
    n_neurons : int
        Rows of the embedding table (neurons the model knows).
    n_population : int
        Population inputs per frame (2: mean and standard deviation) plus behavior channels
        for a teacher.
    embedding_dim : int
        Width of the time-invariant neuron embedding (64 in the paper).
    hidden_size, n_layers, n_heads, ffn_size : int
        Transformer width, depth, attention heads and feed-forward width.
    dropout : float
        Dropout on the token and on the residual branches.
    context_backward, context_forward : int or None
        Attention window in frames before and after each frame (``None``: unlimited); the
        default ``context_forward=0`` is NeuPRINT's causal model.

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.models import NeuPRINT, NeuPRINTConfig
    >>> config = NeuPRINTConfig(n_neurons=20, n_population=4, embedding_dim=4, hidden_size=8,
    ...                         ffn_size=16)
    >>> config.reads_behavior, NeuPRINTConfig(n_neurons=20).reads_behavior
    (True, False)
    >>> out = NeuPRINT(config)(torch.zeros(2, 15, 6), torch.zeros(2, 15, 2))
    >>> tuple(out.log_rates.shape), tuple(out.features[0].shape)
    ((2, 15, 6), (2, 15, 6, 8))
    """

    n_neurons: int
    n_population: int = N_POPULATION_STATISTICS
    embedding_dim: int = 64
    hidden_size: int = 64
    n_layers: int = 1
    n_heads: int = 2
    ffn_size: int = 128
    dropout: float = 0.1
    context_backward: int | None = None
    context_forward: int | None = 0

    @property
    def reads_behavior(self):
        """Whether the population inputs include behavior channels (a teacher, or NeuPRINT
        with its published inputs)."""
        return self.n_population > N_POPULATION_STATISTICS


def population_statistics(activity):
    """Mean and standard deviation over neurons at every frame: ``(..., time, 2)``.

    ``activity`` is ``(..., time, neurons)``. The population inputs NeuPRINT reads; they do not
    depend on the order of the neurons.
    """
    mean = activity.mean(dim=-1, keepdim=True)
    std = (activity - mean).pow(2).mean(dim=-1, keepdim=True).sqrt()
    return torch.cat([mean, std], dim=-1)


class NeuPRINT(nn.Module):
    """Per-neuron transformer with a learned embedding per neuron and population inputs.

    Parameters
    ----------
    config : NeuPRINTConfig

    Examples
    --------
    >>> import torch
    >>> model = NeuPRINT(NeuPRINTConfig(n_neurons=100, hidden_size=16, embedding_dim=8))
    >>> activity = torch.randn(4, 30, 10)          # 4 windows, 30 frames, 10 neurons
    >>> ids = torch.arange(10)                      # their rows in the embedding table
    >>> out = model(activity, neuron_ids=ids)
    >>> tuple(out.log_rates.shape), tuple(out.features[0].shape)
    ((4, 30, 10), (4, 30, 10, 16))
    """

    #: every random draw in training (dropout) comes from the fit's generator (seeding)
    draws_from_fit_generator = True

    def __init__(self, config: NeuPRINTConfig):
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.embedding = nn.Embedding(config.n_neurons, config.embedding_dim)
        # the linear map of [activity, embedding, population] is the sum of three maps
        self.embed_activity = nn.Linear(1, d)
        self.embed_neuron = nn.Linear(config.embedding_dim, d, bias=False)
        self.embed_population = nn.Linear(config.n_population, d, bias=False)
        self.token_dropout = Dropout(config.dropout)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.readout = nn.Linear(d, 1)
        self.apply(self._init_weights)
        # small, like the other weights: the learned part of an embedding dominates it early
        nn.init.normal_(self.embedding.weight, std=0.02)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    @torch.no_grad()
    def init_output_bias(self, mean_activity):
        """Start the (shared) readout at the log of the mean activity (Poisson loss)."""
        mean = torch.as_tensor(mean_activity, dtype=torch.float32).mean().reshape(1)
        set_log_mean_bias(self.readout, mean)

    def forward(self, activity, behavior=None, *, neuron_ids=None, population=None):
        """Predict every frame of every (window, neuron) sequence.

        Parameters
        ----------
        activity : Tensor (batch, time, neurons)
            Masked activity (masked frames hold zeros or noise).
        behavior : Tensor (batch, time, n_behavior), optional
            Extra population inputs (a teacher's behavior).
        neuron_ids : LongTensor (neurons,) or (batch, neurons), optional
            Rows of the embedding table; default ``0 .. neurons - 1``.
        population : Tensor (batch, time, 2), optional
            Population mean and standard deviation; default computed from ``activity``.

        Returns
        -------
        ModelOutput
            ``log_rates`` ``(batch, time, neurons)``: the predicted activity (log-rates under
            a Poisson loss); ``latents`` ``None``; ``features`` the hidden state of each layer,
            ``(batch, time, neurons, hidden_size)``.
        """
        batch, n_time, n_neurons = activity.shape
        if neuron_ids is None:
            neuron_ids = torch.arange(n_neurons, device=activity.device)
        if population is None:
            population = population_statistics(activity)
        if behavior is not None:
            population = torch.cat([population, behavior], dim=-1)
        neuron = self.embed_neuron(self.embedding(neuron_ids))  # (neurons, d) or (batch, n, d)
        if neuron.dim() == 2:
            neuron = neuron[None]
        tokens = (
            self.embed_activity(activity[..., None])
            + neuron[:, None]
            + self.embed_population(population)[:, :, None]
            + sinusoidal_positions(n_time, self.config.hidden_size, activity.device)[:, None]
        )
        # one sequence per (window, neuron): (batch * neurons, time, d)
        x = self.token_dropout(tokens.transpose(1, 2).reshape(batch * n_neurons, n_time, -1))
        attn_mask = banded_attention_mask(
            n_time, self.config.context_backward, self.config.context_forward, x.device
        )
        features = []
        for layer in self.layers:
            x = layer(x, attn_mask)
            features.append(x.view(batch, n_neurons, n_time, -1).transpose(1, 2))
        predictions = self.readout(self.norm(x)).view(batch, n_neurons, n_time).transpose(1, 2)
        return ModelOutput(predictions, None, features)


class NeuPRINTForTrials(nn.Module):
    """``base="neuprint"``: NeuPRINT under the base-model protocol of trial data.

    Each of the ``n_outputs`` neurons has an embedding; the first ``n_inputs`` also give their
    (masked) counts as input, held-out neurons are predicted from their embedding and the
    population alone. The population inputs are the mean and standard deviation of the input
    counts of each bin; a teacher adds its behavior to them. Per-layer features are flattened
    over neurons, ``(batch, time, n_outputs * hidden_size)``, so feature distillation matches
    every neuron's hidden state.
    """

    #: every random draw in training (dropout) comes from the fit's generator (seeding)
    draws_from_fit_generator = True

    def __init__(self, config: NeuPRINTConfig, n_inputs):
        super().__init__()
        self.n_inputs = n_inputs
        self.model = NeuPRINT(config)

    @torch.no_grad()
    def init_output_bias(self, mean_counts):
        self.model.init_output_bias(mean_counts)

    def forward(self, spikes, behavior=None):
        population = population_statistics(spikes)
        n_outputs = self.model.config.n_neurons
        if n_outputs > self.n_inputs:
            spikes = nn.functional.pad(spikes, (0, n_outputs - self.n_inputs))
        output = self.model(spikes, behavior, population=population)
        batch, n_time = spikes.shape[:2]
        features = [f.reshape(batch, n_time, -1) for f in output.features]
        return ModelOutput(output.log_rates, None, features)


def build_neuprint(*, n_inputs, n_outputs, n_behavior=0, n_time=None, **options):
    """Builder of ``base="neuprint"`` (trial data): options are :class:`NeuPRINTConfig` fields.

    ``n_time`` is accepted and unused: the position code is not learned, so any length works.

    Examples
    --------
    Five input neurons and three held-out ones, predicted from their embeddings:

    >>> import torch
    >>> from sklearn_blend.models import build_neuprint
    >>> model = build_neuprint(n_inputs=5, n_outputs=8, n_time=15, embedding_dim=4,
    ...                        hidden_size=8, ffn_size=16)
    >>> out = model(torch.zeros(2, 15, 5))
    >>> model.model.config.n_neurons, tuple(out.log_rates.shape), tuple(out.features[0].shape)
    (8, (2, 15, 8), (2, 15, 64))
    """
    config = NeuPRINTConfig(
        n_neurons=n_outputs, n_population=N_POPULATION_STATISTICS + n_behavior, **options
    )
    return NeuPRINTForTrials(config, n_inputs)

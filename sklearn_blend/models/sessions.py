"""A transformer over one signal recorded in several sessions, with session-specific tokenization.

Used by cross-modal distillation (:class:`~sklearn_blend.CrossModalEstimator`): the spike
teacher and the LFP student are both this model, one over spike counts, one over z-scored LFP.
Sessions record different neurons or channels, so each session has its own input map (its
*tokenization*: the values of one bin to a ``hidden_size`` token) and its own output map, plus a
learned session embedding added to its tokens; the transformer between them (learned time
positions, pre-norm :class:`~sklearn_blend.models.layers.EncoderLayer` s, a final layer norm)
is shared by all sessions. One token per time bin; the final tokens are the model's *latents*
(what the student's latents are aligned to the teacher's on), the tokens after every layer its
*features*.

A new session (a new channel layout) gets fresh maps and a fresh embedding
(:meth:`SessionTransformer.load_shared` carries everything else over), which can train with the
shared transformer frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..persistence import registry
from .base import ModelOutput, set_session_biases
from .layers import Dropout, EncoderLayer, carry_weights, per_session


@registry.register("dataclass")
@dataclass(frozen=True)
class SessionConfig:
    """Shapes and size of a :class:`SessionTransformer`.

    Parameters
    ----------
    n_channels : tuple of int
        Channels (neurons) of each session.
    n_time : int
        Longest trial or segment, in bins (the learned position embedding's length).
    modality : str, default="lfp"
        The modality the model reads and predicts (``"spikes"``: log-rates out).
    hidden_size, n_layers, n_heads, ffn_size : int, default=64, 2, 2, 128
    dropout : float, default=0.2
        Dropout on the input values, the tokens and the residual branches.
    """

    n_channels: tuple
    n_time: int
    modality: str = "lfp"
    hidden_size: int = 64
    n_layers: int = 2
    n_heads: int = 2
    ffn_size: int = 128
    dropout: float = 0.2


class SessionTransformer(nn.Module):
    """The multi-session transformer of the module docstring.

    ``forward(inputs)`` reads ``inputs[config.modality]`` ``(batch, time, max_channels)``
    (zero past each session's channels) and ``inputs["session"]`` ``(batch,)`` (each row's
    session) and returns a :class:`~sklearn_blend.models.ModelOutput` with the predictions
    of every channel ``{modality: (batch, time, max_channels)}``, the latents
    ``(batch, time, hidden_size)`` and the per-layer features.

    Examples
    --------
    >>> import torch
    >>> model = SessionTransformer(SessionConfig(n_channels=(6, 4), n_time=10, hidden_size=8,
    ...                                          n_layers=1, ffn_size=16))
    >>> out = model({"lfp": torch.zeros(3, 10, 6), "session": torch.tensor([0, 1, 1])})
    >>> tuple(out.predictions["lfp"].shape), tuple(out.latents.shape)
    ((3, 10, 6), (3, 10, 8))
    """

    #: every random draw in training (dropout) comes from the fit's generator (seeding)
    draws_from_fit_generator = True

    def __init__(self, config: SessionConfig):
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.modality = config.modality
        self.inputs = nn.ModuleList(nn.Linear(n, d) for n in config.n_channels)
        self.outputs = nn.ModuleList(nn.Linear(d, n) for n in config.n_channels)
        self.session_embedding = nn.ParameterList(
            nn.Parameter(torch.zeros(d)) for _ in config.n_channels)
        self.position = nn.Parameter(torch.zeros(config.n_time, d))
        self.input_dropout = Dropout(config.dropout)
        self.token_dropout = Dropout(config.dropout)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        for parameter in (self.position, *self.session_embedding):
            nn.init.normal_(parameter, std=0.02)

    @property
    def predicts(self):
        return (self.modality,)

    @property
    def latent_width(self):
        return self.config.hidden_size

    def feature_widths(self):
        return [self.config.hidden_size] * self.config.n_layers

    @torch.no_grad()
    def init_output_bias(self, mean_counts):
        """Start each session's readout at ``log(mean count)`` of its neurons (counts models;
        ``None`` leaves a session as it is)."""
        set_session_biases(self.outputs, mean_counts)

    @torch.no_grad()
    def load_shared(self, other):
        """Copy every weight of ``other`` (a model of the first sessions of this one) into this
        model; sessions added after them keep their fresh maps and embeddings."""
        carry_weights(self, other, self.config.n_channels, other.config.n_channels,
                      "channels")

    def shared_parameters(self):
        """The parameters every session uses (positions, layers, final norm)."""
        return [self.position, *self.layers.parameters(), *self.norm.parameters()]

    def forward(self, inputs):
        values, session = inputs[self.modality], inputs["session"]
        n_time, d = values.shape[1], self.config.hidden_size
        x = per_session(self.inputs, self.input_dropout(values), session, d)
        sessions = torch.stack([self.session_embedding[s] for s in session.tolist()])
        x = self.token_dropout(x + self.position[None, :n_time] + sessions[:, None])
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        latents = self.norm(x)
        out = per_session(self.outputs, latents, session, values.shape[-1])
        return ModelOutput({self.modality: out}, latents, features)


__all__ = ["SessionConfig", "SessionTransformer"]

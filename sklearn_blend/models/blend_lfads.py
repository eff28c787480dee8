"""The GRU model BLEND's code calls LFADS (``base="blend_lfads"``), as that code builds it.

BLEND's paper reports "LFADS" rows made with a deterministic stack of GRUs, not with LFADS
(Pandarinath et al., 2018): no initial-condition or controller-output distributions, no KL
terms, trained by the masked time-step objective NDT is trained by
(``shared/reference/blend_and_base_models.md`` section 1.8; the official ``src/lfads.py``).
Per trial, the student:

* a bidirectional GRU encoder over the bins (``n_layers`` layers, ``hidden_size`` units per
  direction, dropout between layers) and a linear map of both directions to ``hidden_size``
  (no dropout on the input counts);
* a controller GRU and a generator GRU run forward in time, a linear map after the generator;
* a linear map to ``factor_size`` factors (the latents), then dropout;
* an MLP readout: linear to ``hidden_size``, ReLU, dropout, linear to the log-rates of every
  output neuron.

The teacher (``n_behavior > 0``) scales the counts by the square root of the neuron count and
the behavior by the square root of its width, encodes the behavior with its own one-layer
bidirectional GRU (``n_behavior`` units per direction, mapped back to ``n_behavior``),
concatenates both encodings, mixes them over time with one head of self-attention (no mask, no
position code) and encodes the result again with a two-layer bidirectional GRU; from there the
path is the student's. The features ``strategy="feature"`` aligns are the encoding, the
generator's output and the factors (the official code aligns features only for NDT).

:mod:`.gru` holds the package's other deterministic GRU model (``base="gru"``), which
differs from this one (input dropout, a linear readout, the behavior joined by concatenation
alone); :mod:`.lfads` holds LFADS itself (``base="lfads"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..persistence import registry
from .base import ModelOutput, set_log_mean_bias
from .gru import GRUConfig


@registry.register("dataclass")
@dataclass(frozen=True)
class BlendLFADSConfig(GRUConfig):
    """Shape and size of a :class:`BlendLFADS`: the fields of
    :class:`~sklearn_blend.models.GRUConfig` at the official MC_Maze settings (4 encoder
    layers, dropout 0.1). ``hidden_size`` also sizes the readout's hidden layer; ``dropout``
    acts between encoder layers, after the factors and in the readout (never on the input
    counts).

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.models import BlendLFADS, BlendLFADSConfig
    >>> config = BlendLFADSConfig(n_inputs=10, n_outputs=12, n_behavior=2, hidden_size=8,
    ...                           factor_size=3, n_layers=1)
    >>> config.dropout, BlendLFADSConfig(n_inputs=10, n_outputs=12).n_layers
    (0.1, 4)
    >>> out = BlendLFADS(config)(torch.zeros(2, 15, 10), torch.zeros(2, 15, 2))
    >>> tuple(out.log_rates.shape), tuple(out.latents.shape)
    ((2, 15, 12), (2, 15, 3))
    """

    n_layers: int = 4
    dropout: float = 0.1


class _Encoder(nn.Module):
    """A bidirectional GRU and a linear map of both directions to ``width``."""

    def __init__(self, n_inputs, width, n_layers, dropout):
        super().__init__()
        self.rnn = nn.GRU(n_inputs, width, num_layers=n_layers, batch_first=True,
                          bidirectional=True, dropout=dropout if n_layers > 1 else 0.0)
        self.project = nn.Linear(2 * width, width)

    def forward(self, x):
        return self.project(self.rnn(x)[0])


class BlendLFADS(nn.Module):
    """BLEND's deterministic GRU model ("LFADS" in its code), student and teacher.

    Parameters
    ----------
    config : BlendLFADSConfig

    Examples
    --------
    >>> import torch
    >>> config = BlendLFADSConfig(n_inputs=20, n_outputs=25, hidden_size=16, factor_size=4,
    ...                           n_layers=2)
    >>> out = BlendLFADS(config)(torch.zeros(3, 40, 20))
    >>> tuple(out.log_rates.shape), tuple(out.latents.shape), len(out.features)
    ((3, 40, 25), (3, 40, 4), 3)
    """

    def __init__(self, config: BlendLFADSConfig):
        super().__init__()
        self.config = config
        h, b = config.hidden_size, config.n_behavior
        self.encoder = _Encoder(config.n_inputs, h, config.n_layers, config.dropout)
        if b:
            self.behavior_encoder = _Encoder(b, b, 1, config.dropout)
            self.attention = nn.MultiheadAttention(h + b, num_heads=1, batch_first=True)
            self.mixed_encoder = _Encoder(h + b, h, 2, config.dropout)
        self.controller = nn.GRU(h, h, batch_first=True)
        self.generator = nn.GRU(h, h, batch_first=True)
        self.generator_out = nn.Linear(h, h)
        self.factors = nn.Linear(h, config.factor_size)
        self.factor_dropout = nn.Dropout(config.dropout)
        self.readout = nn.Sequential(nn.Linear(config.factor_size, h), nn.ReLU(),
                                     nn.Dropout(config.dropout),
                                     nn.Linear(h, config.n_outputs))

    @torch.no_grad()
    def init_output_bias(self, mean_counts):
        """Start the readout at ``log(mean count per bin)`` of each output neuron."""
        set_log_mean_bias(self.readout[-1], mean_counts)

    def forward(self, spikes, behavior=None) -> ModelOutput:
        """Map ``spikes`` ``(batch, time, n_inputs)`` (and a teacher's ``behavior``) to
        :class:`ModelOutput`."""
        if self.config.n_behavior:
            neural = self.encoder(spikes * math.sqrt(self.config.n_outputs))
            behavioral = self.behavior_encoder(behavior * math.sqrt(self.config.n_behavior))
            joined = torch.cat([neural, behavioral], dim=-1)
            mixed, _ = self.attention(joined, joined, joined, need_weights=False)
            encoded = self.mixed_encoder(mixed)
        else:
            encoded = self.encoder(spikes)
        controlled, _ = self.controller(encoded)
        generated = self.generator_out(self.generator(controlled)[0])
        factors = self.factor_dropout(self.factors(generated))
        log_rates = self.readout(factors)
        return ModelOutput(log_rates, factors, [encoded, generated, factors])


def build_blend_lfads(*, n_inputs, n_outputs, n_behavior=0, hidden_size=64, factor_size=32,
                      n_layers=4, dropout=0.1):
    """Builder of ``base="blend_lfads"`` (``factor_size`` comes from ``base_params``).

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.models import build_blend_lfads
    >>> model = build_blend_lfads(n_inputs=10, n_outputs=12, hidden_size=8, factor_size=3,
    ...                           n_layers=1)
    >>> out = model(torch.zeros(2, 15, 10))
    >>> type(model).__name__, tuple(out.log_rates.shape), len(out.features)
    ('BlendLFADS', (2, 15, 12), 3)
    """
    return BlendLFADS(BlendLFADSConfig(n_inputs, n_outputs, n_behavior, hidden_size,
                                       factor_size, n_layers, dropout))

"""``base="gru"``: a deterministic encoder-controller-generator GRU model (not LFADS).

The package's first "LFADS" base, renamed: a stack of GRUs in the shape of LFADS (Pandarinath
et al., 2018) without its variational parts, trained with the masked time-step objective NDT
is trained with. It differs from LFADS (:mod:`.lfads`, ``base="lfads"``: no initial-condition
bottleneck, no inferred inputs, no KL or L2 penalties, no coordinated dropout) and from the
model BLEND's code calls LFADS (:mod:`.blend_lfads`, ``base="blend_lfads"``: here dropout on
the input counts, a linear readout, and a teacher's behavior joined by concatenation instead of
BLEND's scaling, self-attention and second bidirectional GRU). Per trial:

* dropout on the input counts, then a bidirectional GRU encoder over the bins (``n_layers``
  layers, ``hidden_size`` units per direction);
* a teacher also encodes its behavior with a small bidirectional GRU; that encoding is
  concatenated with the neural one (the behavior joins the neural encoding);
* a linear fusion to ``hidden_size``, a controller GRU and a generator GRU run forward in time;
* dropout and a linear map to ``factor_size`` low-dimensional factors (the model's latents),
  then a linear readout to log-rates of every output neuron.

The features that ``strategy="feature"`` aligns are the three stages both teacher and student
have: the (fused) encoding, the generator states and the factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..persistence import registry
from .base import ModelOutput, set_log_mean_bias
from .layers import Dropout


@registry.register("dataclass")
@dataclass(frozen=True)
class GRUConfig:
    """Shape and size of a :class:`GRUModel`.

    Parameters
    ----------
    n_inputs, n_outputs : int
        Spike channels in, neurons out.
    n_behavior : int
        Behavior channels per bin (0 for a student).
    hidden_size : int
        Units of the encoder (per direction), controller and generator GRUs (paper: 64).
    factor_size : int
        Number of latent factors (paper: 32).
    n_layers : int
        Layers of the bidirectional encoder GRU.
    dropout : float
        Dropout on the input counts, between encoder layers and before the factors.

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.models import GRUConfig, GRUModel
    >>> config = GRUConfig(n_inputs=10, n_outputs=12, n_behavior=2, hidden_size=8,
    ...                    factor_size=3, n_layers=1)
    >>> out = GRUModel(config)(torch.zeros(2, 15, 10), torch.zeros(2, 15, 2))
    >>> tuple(out.log_rates.shape), tuple(out.latents.shape), config.dropout
    ((2, 15, 12), (2, 15, 3), 0.5)
    """

    n_inputs: int
    n_outputs: int
    n_behavior: int = 0
    hidden_size: int = 64
    factor_size: int = 32
    n_layers: int = 2
    dropout: float = 0.5


class GRUModel(nn.Module):
    """The deterministic GRU model of ``base="gru"``: log-rates, factors and per-stage
    features.

    Parameters
    ----------
    config : GRUConfig

    Examples
    --------
    >>> import torch
    >>> model = GRUModel(GRUConfig(n_inputs=30, n_outputs=30, hidden_size=16, factor_size=4))
    >>> out = model(torch.zeros(4, 50, 30))
    >>> tuple(out.log_rates.shape), tuple(out.latents.shape), len(out.features)
    ((4, 50, 30), (4, 50, 4), 3)
    """

    def __init__(self, config: GRUConfig):
        super().__init__()
        self.config = config
        h = config.hidden_size
        self.input_dropout = Dropout(config.dropout)
        self.encoder = nn.GRU(
            config.n_inputs, h, num_layers=config.n_layers, batch_first=True,
            bidirectional=True, dropout=config.dropout if config.n_layers > 1 else 0.0,
        )
        encoded = 2 * h
        self.behavior_encoder = None
        if config.n_behavior:
            behavior_width = max(h // 2, 1)
            self.behavior_encoder = nn.GRU(
                config.n_behavior, behavior_width, batch_first=True, bidirectional=True
            )
            encoded += 2 * behavior_width
        self.fuse = nn.Linear(encoded, h)
        self.controller = nn.GRU(h, h, batch_first=True)
        self.generator = nn.GRU(h, h, batch_first=True)
        self.factor_dropout = Dropout(config.dropout)
        self.factors = nn.Linear(h, config.factor_size)
        self.readout = nn.Linear(config.factor_size, config.n_outputs)

    @torch.no_grad()
    def init_output_bias(self, mean_counts):
        """Start the readout at ``log(mean count per bin)`` of each output neuron."""
        set_log_mean_bias(self.readout, mean_counts)

    def forward(self, spikes, behavior=None) -> ModelOutput:
        """Map ``spikes`` ``(batch, time, n_inputs)`` (and ``behavior``) to :class:`ModelOutput`."""
        encoded, _ = self.encoder(self.input_dropout(spikes))
        if self.behavior_encoder is not None:
            behavior_encoded, _ = self.behavior_encoder(behavior)
            encoded = torch.cat([encoded, behavior_encoded], dim=-1)
        fused = self.fuse(encoded)
        controlled, _ = self.controller(fused)
        generated, _ = self.generator(controlled)
        factors = self.factors(self.factor_dropout(generated))
        log_rates = self.readout(factors)
        return ModelOutput(log_rates, factors, [fused, generated, factors])


def build_gru(*, n_inputs, n_outputs, n_behavior=0, hidden_size=64, factor_size=32,
              n_layers=2, dropout=0.5):
    """Builder of ``base="gru"`` (``factor_size`` comes from ``base_params``).

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.models import build_gru
    >>> model = build_gru(n_inputs=10, n_outputs=12, hidden_size=8, factor_size=3)
    >>> out = model(torch.zeros(2, 15, 10))
    >>> type(model).__name__, model.config.n_layers, tuple(out.log_rates.shape)
    ('GRUModel', 2, (2, 15, 12))
    """
    return GRUModel(GRUConfig(n_inputs, n_outputs, n_behavior, hidden_size, factor_size,
                              n_layers, dropout))

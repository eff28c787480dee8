"""Neural Data Transformer (NDT) in plain PyTorch.

NDT (Ye & Pandarinath, 2021) reads binned spike counts ``(batch, time, neurons)`` and returns
log firing rates of the same shape. This version follows the NLB variant used by BLEND:

* dropout on the input counts of each neuron (as NDT's embedding dropout acts on its
  identity-embedded spikes), then a linear spike embedding; a teacher concatenates behavior to
  the spikes of each time bin before that (the paper's fusion), so teacher and student differ
  only in input width;
* a learned position embedding;
* pre-norm encoder layers (self-attention and feed-forward, residual dropout), with an optional
  banded attention window (``context_backward`` bins into the past, ``context_forward`` into the
  future; ``None`` means unlimited);
* a final layer norm (its output is the model's *latent factors*), dropout, and a linear readout
  to log-rates whose bias can be initialised at the log mean rate of each neuron.

Dropout is applied to the input and to the residual branches, not to the attention
probabilities or the wide feed-forward hidden tensor, which is where dropout costs the most on a
CPU (``shared/reference/cpu_performance.md``). On the CPU, two exact shortcuts keep a training
step fast (``benchmarks/cpu_kernels.py``): dropout masks come from a faster generator
(:class:`~sklearn_blend.models.layers.Dropout`), and the attention softmax is written out rather
than run through the flash kernel. The attention, the encoder layer, the attention window and the
dropout live in :mod:`sklearn_blend.models.layers` (shared with the other models); this module
holds what is NDT's own: :class:`NDTConfig`, :class:`NDT` and :func:`build_ndt`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..persistence import registry
from .base import ModelOutput, set_log_mean_bias
from .layers import Dropout, EncoderLayer, banded_attention_mask, sinusoidal_positions


@registry.register("dataclass")
@dataclass(frozen=True)
class NDTConfig:
    """Shape and size of an :class:`NDT`.

    Parameters
    ----------
    n_inputs : int
        Number of spike channels given as input.
    n_outputs : int
        Number of neurons whose log-rates are predicted.
    n_time : int
        Number of time bins covered by the learned position embedding (the longest input).
    n_behavior : int
        Behavior channels concatenated to the spikes of each bin (0 for a student).
    hidden_size, n_layers, n_heads, ffn_size : int
        Transformer width, depth, attention heads and feed-forward width.
    dropout : float
        Dropout on the input counts, the residual branches and before the readout.
    context_backward, context_forward : int or None
        Attention window in bins before and after each query bin (``None``: unlimited).
    position : {"learned", "sinusoidal"}, default="learned"
        A learned embedding per time bin (NDT's) or the fixed sine/cosine code. With few
        training trials a learned per-bin embedding fits each bin's noise, which the rates of
        every trial then share; the fixed code gives smooth rates, at equal scores for a
        distilled student, while a plain model on few trials then ignores its input
        (``benchmarks/rate_smoothness.py``).

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.models import NDT, NDTConfig
    >>> config = NDTConfig(n_inputs=10, n_outputs=12, n_time=20, n_behavior=2, hidden_size=8,
    ...                    n_layers=1, ffn_size=16, position="sinusoidal")
    >>> out = NDT(config)(torch.zeros(2, 20, 10), torch.zeros(2, 20, 2))
    >>> tuple(out.log_rates.shape), tuple(out.latents.shape), len(out.features)
    ((2, 20, 12), (2, 20, 8), 1)
    """

    n_inputs: int
    n_outputs: int
    n_time: int
    n_behavior: int = 0
    hidden_size: int = 64
    n_layers: int = 2
    n_heads: int = 2
    ffn_size: int = 256
    dropout: float = 0.5
    context_backward: int | None = None
    context_forward: int | None = None
    position: str = "learned"

    def __post_init__(self):
        if self.position not in ("learned", "sinusoidal"):
            raise ValueError(f"position must be 'learned' or 'sinusoidal', got "
                             f"{self.position!r}.")


class NDT(nn.Module):
    """Neural Data Transformer returning log-rates, latents and per-layer features.

    Parameters
    ----------
    config : NDTConfig

    Examples
    --------
    >>> import torch
    >>> model = NDT(NDTConfig(n_inputs=30, n_outputs=30, n_time=50, hidden_size=16))
    >>> out = model(torch.zeros(4, 50, 30))
    >>> tuple(out.log_rates.shape), tuple(out.latents.shape), len(out.features)
    ((4, 50, 30), (4, 50, 16), 2)
    """

    #: every random draw in training (dropout) comes from the fit's generator (seeding)
    draws_from_fit_generator = True

    def __init__(self, config: NDTConfig):
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.embed = nn.Linear(config.n_inputs + config.n_behavior, d)
        if config.position == "learned":
            self.position = nn.Parameter(torch.zeros(1, config.n_time, d))
        else:
            self.register_buffer("position", sinusoidal_positions(config.n_time, d)[None],
                                 persistent=False)
        self.input_dropout = Dropout(config.dropout)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.readout_dropout = Dropout(config.dropout)
        self.readout = nn.Linear(d, config.n_outputs)
        self.apply(self._init_weights)
        if config.position == "learned":
            nn.init.normal_(self.position, std=0.02)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    @torch.no_grad()
    def init_output_bias(self, mean_counts):
        """Start the readout at ``log(mean count per bin)`` of each output neuron."""
        set_log_mean_bias(self.readout, mean_counts)

    def forward(self, spikes, behavior=None) -> ModelOutput:
        """Map ``spikes`` ``(batch, time, n_inputs)`` (and ``behavior``) to :class:`ModelOutput`."""
        n_time = spikes.shape[1]
        if self.config.n_behavior:
            spikes = torch.cat([spikes, behavior], dim=-1)
        x = self.embed(self.input_dropout(spikes)) + self.position[:, :n_time]
        attn_mask = banded_attention_mask(
            n_time, self.config.context_backward, self.config.context_forward, x.device
        )
        features = []
        for layer in self.layers:
            x = layer(x, attn_mask)
            features.append(x)
        latents = self.norm(x)
        log_rates = self.readout(self.readout_dropout(latents))
        return ModelOutput(log_rates, latents, features)


def build_ndt(**config):
    """Builder of ``base="ndt"``: keyword arguments are the fields of :class:`NDTConfig`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.models import build_ndt
    >>> model = build_ndt(n_inputs=10, n_outputs=12, n_time=20, hidden_size=8, ffn_size=16)
    >>> out = model(torch.zeros(2, 20, 10))
    >>> model.config.n_layers, tuple(out.log_rates.shape)
    (2, (2, 20, 12))
    """
    return NDT(NDTConfig(**config))

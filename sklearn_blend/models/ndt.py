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
(:mod:`sklearn_blend.models.dropout`), and the attention softmax is written out rather than run
through the flash kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .base import ModelOutput, set_log_mean_bias
from .dropout import Dropout


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


def banded_attention_mask(n_time, backward, forward, device=None):
    """Boolean ``(n_time, n_time)`` mask, True where query ``t`` may attend key ``s``.

    Key ``s`` is visible when ``t - backward <= s <= t + forward``; ``None`` means unlimited on
    that side. Returns ``None`` when nothing is masked.
    """
    if backward is None and forward is None:
        return None
    t = torch.arange(n_time, device=device)
    offset = t[None, :] - t[:, None]  # key minus query
    allowed = torch.ones(n_time, n_time, dtype=torch.bool, device=device)
    if backward is not None:
        allowed &= offset >= -backward
    if forward is not None:
        allowed &= offset <= forward
    return allowed


def attention(q, k, v, attn_mask=None):
    """Scaled dot-product attention of one head: ``(batch, time, head_dim)`` queries, keys, values.

    ``attn_mask`` is boolean ``(time, time)``, True where a query may attend a key. The inputs
    may be strided views (one head's columns of the fused query-key-value output). On CUDA this
    is :func:`torch.nn.functional.scaled_dot_product_attention`; on the CPU the same softmax is
    written out: one ``baddbmm`` scales the scores and adds the mask as ``-inf`` (no copy of the
    strided inputs, no separate scaling or masking pass), faster than the CPU flash kernel at
    this model's odd head widths (e.g. 91 for 182 neurons and 2 heads), forward and backward
    (``benchmarks/cpu_kernels.py``).
    """
    if q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    scale = q.shape[-1] ** -0.5
    if attn_mask is None:
        scores = torch.bmm(q, k.transpose(-2, -1)).mul_(scale)
    else:
        bias = torch.zeros(attn_mask.shape, dtype=q.dtype, device=q.device)
        bias.masked_fill_(~attn_mask, float("-inf"))
        scores = torch.baddbmm(bias, q, k.transpose(-2, -1), alpha=scale)
    return scores.softmax(dim=-1) @ v


def multi_head_attention(qkv, n_heads, attn_mask=None):
    """Multi-head attention of a fused projection ``qkv`` ``(batch, time, 3 * width)``.

    Queries, keys and values are the three ``width`` blocks of the last axis, each split into
    ``n_heads`` heads. Every head attends over strided views of ``qkv`` (:func:`attention`):
    no head-major copies are made. Returns the heads' outputs concatenated,
    ``(batch, time, width)``.
    """
    batch, n_time, fused_width = qkv.shape
    width = fused_width // 3
    heads = qkv.view(batch, n_time, 3, n_heads, width // n_heads)
    q, k, v = (z.unbind(2) for z in heads.unbind(2))
    return torch.cat([attention(*head, attn_mask) for head in zip(q, k, v)], dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, hidden_size, n_heads):
        super().__init__()
        if hidden_size % n_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be divisible by n_heads ({n_heads})."
            )
        self.n_heads = n_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)

    def forward(self, x, attn_mask=None):
        return self.out(multi_head_attention(self.qkv(x), self.n_heads, attn_mask))


class FeedForward(nn.Module):
    def __init__(self, hidden_size, ffn_size):
        super().__init__()
        self.up = nn.Linear(hidden_size, ffn_size)
        self.down = nn.Linear(ffn_size, hidden_size)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer with dropout on both residual branches."""

    def __init__(self, config: NDTConfig):
        super().__init__()
        self.norm_attention = nn.LayerNorm(config.hidden_size)
        self.attention = SelfAttention(config.hidden_size, config.n_heads)
        self.norm_ffn = nn.LayerNorm(config.hidden_size)
        self.ffn = FeedForward(config.hidden_size, config.ffn_size)
        self.dropout = Dropout(config.dropout)

    def forward(self, x, attn_mask=None):
        x = x + self.dropout(self.attention(self.norm_attention(x), attn_mask))
        return x + self.dropout(self.ffn(self.norm_ffn(x)))


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

    def __init__(self, config: NDTConfig):
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.embed = nn.Linear(config.n_inputs + config.n_behavior, d)
        self.position = nn.Parameter(torch.zeros(1, config.n_time, d))
        self.input_dropout = Dropout(config.dropout)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.readout_dropout = Dropout(config.dropout)
        self.readout = nn.Linear(d, config.n_outputs)
        self.apply(self._init_weights)
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
    """Builder of ``base="ndt"``: keyword arguments are the fields of :class:`NDTConfig`."""
    return NDT(NDTConfig(**config))

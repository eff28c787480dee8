"""Blocks shared by more than one model: dropout with a fast CPU mask, the transformer layer and
the sine/cosine position code.

Used by :mod:`~sklearn_blend.models.ndt`, :mod:`~sklearn_blend.models.lfads`,
:mod:`~sklearn_blend.models.neuprint`, :mod:`~sklearn_blend.models.neds` and
:mod:`~sklearn_blend.models.sessions`; what is specific to one model stays in its module.

Per-session maps
    :func:`per_session` applies each session's own linear map (multi-session models: sessions
    record different neurons or channels) to that session's rows of a batch.

Dropout
    :class:`torch.nn.Dropout` on the CPU draws its mask with ``bernoulli_``, which is slow: for
    one ``64 x 140 x 182`` activation of an NDT at the paper's configuration it costs several
    times what :func:`keep_mask` does (``benchmarks/cpu_kernels.py``). :class:`Dropout` keeps the
    same semantics (each element kept independently with probability ``1 - p`` and scaled by
    ``1 / (1 - p)`` in training mode; identity in evaluation mode) but draws the mask from 32-bit
    uniform integers of NumPy's SFC64 generator. The keep probability is exact to ``2**-32``,
    finer than ``torch.rand``'s 24-bit floats.

    The generator is seeded for every call from PyTorch's default generator, so
    :func:`torch.manual_seed` and :func:`torch.random.fork_rng` control the masks as they do for
    :class:`torch.nn.Dropout`. On other devices the module falls back to :func:`F.dropout
    <torch.nn.functional.dropout>`, whose kernels are fast there.

Attention and the encoder layer
    :func:`banded_attention_mask` (an optional attention window), :func:`attention` and
    :func:`multi_head_attention` (on the CPU the softmax is written out over strided views of
    the fused query-key-value projection rather than run through the flash kernel),
    :class:`SelfAttention`, :class:`FeedForward` and the pre-norm :class:`EncoderLayer` (NDT's
    layers, also NeuPRINT's).

Rotary position codes
    :func:`rotary_codes` and :func:`rotate` (Su et al., RoFormer): queries and keys are rotated
    by angles proportional to their token's time bin, so that their dot product depends on the
    bins' offset only. Tokens of the same bin (NEDS's spike and behavior tokens) then meet at
    offset zero whatever their absolute position, which a learned absolute position embedding
    has to learn from data.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import seeding

_SEED_HIGH = 2**63 - 1


def keep_mask(shape, p, generator=None):
    """Boolean CPU tensor of ``shape``, each entry True with probability ``1 - p``.

    Seeded from ``generator`` (default: PyTorch's default generator), one draw per call, so it
    is reproducible under :func:`torch.manual_seed`.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> mask = keep_mask((1000, 100), 0.1)
    >>> mask.dtype, round(mask.float().mean().item(), 2)
    (torch.bool, 0.9)
    """
    n = int(np.prod(shape, dtype=np.int64))
    seed = int(torch.randint(_SEED_HIGH, (), dtype=torch.int64, generator=generator))
    words = np.random.SFC64(seed).random_raw((n + 1) // 2).view(np.uint32)[:n]
    threshold = np.uint32(min(round(p * 2.0**32), 2**32 - 1))
    return torch.from_numpy((words >= threshold).reshape(shape))


class Dropout(nn.Module):
    """Drop-in replacement of :class:`torch.nn.Dropout` with a faster CPU mask.

    Parameters
    ----------
    p : float
        Probability of zeroing an element, in ``[0, 1)``.

    Examples
    --------
    >>> import torch
    >>> layer = Dropout(0.5)
    >>> x = torch.ones(2, 3)
    >>> y = layer(x)
    >>> bool(((y == 0) | (y == 2)).all()), bool((layer.eval()(x) == x).all())
    (True, True)
    """

    def __init__(self, p=0.5):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"dropout probability p must be a real number, got {p!r}.")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p!r}.")
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        scale = torch.tensor(1.0 / (1.0 - self.p), dtype=x.dtype)
        mask = keep_mask(x.shape, self.p, seeding.current())  # the fit's own generator
        return x * mask.to(x.dtype).mul_(scale)

    def extra_repr(self):
        return f"p={self.p}"


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


def rotary_codes(positions, head_dim):
    """``(cos, sin)``, each ``(len(positions), head_dim // 2)``: the rotary angles of tokens at
    ``positions`` (a 1-D tensor of time bins), frequencies ``10000 ** (-2i / head_dim)``."""
    if head_dim % 2:
        raise ValueError(f"rotary position codes need an even head width, got {head_dim} "
                         "(hidden_size / n_heads).")
    frequency = torch.exp(torch.arange(0, head_dim, 2, dtype=torch.float32,
                                       device=positions.device) * (-math.log(1e4) / head_dim))
    angle = positions.to(torch.float32)[:, None] * frequency
    return angle.cos(), angle.sin()


def rotate(x, codes):
    """``x`` ``(batch, tokens, head_dim)`` with each pair of features ``(i, i + head_dim / 2)``
    rotated by its token's angle (``codes`` from :func:`rotary_codes`)."""
    cos, sin = (c.to(x.dtype) for c in codes)
    first, second = x.chunk(2, dim=-1)
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


def multi_head_attention(qkv, n_heads, attn_mask=None, rotary=None):
    """Multi-head attention of a fused projection ``qkv`` ``(batch, time, 3 * width)``.

    Queries, keys and values are the three ``width`` blocks of the last axis, each split into
    ``n_heads`` heads. Every head attends over strided views of ``qkv`` (:func:`attention`):
    no head-major copies are made. ``rotary`` (from :func:`rotary_codes`) rotates every head's
    queries and keys by their tokens' positions first. Returns the heads' outputs
    concatenated, ``(batch, time, width)``.
    """
    batch, n_time, fused_width = qkv.shape
    width = fused_width // 3
    heads = qkv.view(batch, n_time, 3, n_heads, width // n_heads)
    q, k, v = (z.unbind(2) for z in heads.unbind(2))
    if rotary is not None:
        q, k = [rotate(z, rotary) for z in q], [rotate(z, rotary) for z in k]
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

    def forward(self, x, attn_mask=None, rotary=None):
        return self.out(multi_head_attention(self.qkv(x), self.n_heads, attn_mask, rotary))


class FeedForward(nn.Module):
    def __init__(self, hidden_size, ffn_size):
        super().__init__()
        self.up = nn.Linear(hidden_size, ffn_size)
        self.down = nn.Linear(ffn_size, hidden_size)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer with dropout on both residual branches.

    ``config`` is any object with ``hidden_size``, ``n_heads``, ``ffn_size`` and ``dropout``
    (:class:`~sklearn_blend.models.ndt.NDTConfig`,
    :class:`~sklearn_blend.models.neuprint.NeuPRINTConfig`).
    """

    def __init__(self, config):
        super().__init__()
        self.norm_attention = nn.LayerNorm(config.hidden_size)
        self.attention = SelfAttention(config.hidden_size, config.n_heads)
        self.norm_ffn = nn.LayerNorm(config.hidden_size)
        self.ffn = FeedForward(config.hidden_size, config.ffn_size)
        self.dropout = Dropout(config.dropout)

    def forward(self, x, attn_mask=None, rotary=None):
        x = x + self.dropout(self.attention(self.norm_attention(x), attn_mask, rotary))
        return x + self.dropout(self.ffn(self.norm_ffn(x)))


def sinusoidal_positions(n_time, width, device=None):
    """The transformer's fixed sine/cosine position code, ``(n_time, width)``."""
    position = torch.arange(n_time, device=device, dtype=torch.float32)[:, None]
    frequency = torch.exp(
        torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / width)
    )
    code = torch.zeros(n_time, width, device=device)
    code[:, 0::2] = torch.sin(position * frequency)
    code[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return code


class SoftsignMap(nn.Module):
    """NEDS's official input map: ``n_in -> 2 n_in -> softsign -> out`` (two linear maps with
    a softsign between), where a plain input map is one ``nn.Linear``. ``in_features`` is
    what :func:`per_session` reads."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.in_features = in_features
        self.expand = nn.Linear(in_features, 2 * in_features)
        self.project = nn.Linear(2 * in_features, out_features)

    def forward(self, x):
        return self.project(nn.functional.softsign(self.expand(x)))


#: input maps by name (``NedsConfig.input_map``)
INPUT_MAPS = {"linear": nn.Linear, "softsign": SoftsignMap}


def per_session(maps, x, session, width):
    """``maps[s](x[rows of s])`` for every session ``s`` present in ``session``.

    ``x`` is ``(batch, ..., n_columns)``, zero-padded past a session's own columns: map ``s``
    reads the first ``maps[s].in_features`` of them. The result is ``(batch, ..., width)``,
    zero past each map's ``out_features``.
    """
    out = x.new_zeros(*x.shape[:-1], width)
    for s in torch.unique(session).tolist():
        rows = session == s
        value = maps[s](x[rows][..., : maps[s].in_features])
        out[rows, ..., : value.shape[-1]] = value.to(out.dtype)
    return out


@torch.no_grad()
def carry_weights(target, source, counts, source_counts, unit):
    """Copy every weight of ``source``, a model of the first sessions of ``target``, into the
    entry of the same name in ``target``; the sessions added after them keep their fresh maps.

    ``counts`` and ``source_counts`` are the two models' channels (``unit``) per session; a
    source whose sessions are not the first of the target's, a missing entry or another shape
    is an error.
    """
    if tuple(source_counts) != tuple(counts)[: len(source_counts)]:
        raise ValueError(
            f"the fitted model's sessions ({tuple(source_counts)} {unit}) must be the first "
            f"sessions of this one ({tuple(counts)} {unit})."
        )
    mine = target.state_dict()
    for name, value in source.state_dict().items():
        if name not in mine or mine[name].shape != value.shape:
            raise ValueError(f"cannot carry {name} {tuple(value.shape)} over to a model "
                             f"whose {name} is {tuple(mine.get(name, value).shape)}.")
        mine[name].copy_(value)

"""NEDS (Zhang et al., ICML 2025): one transformer over spike and behavior tokens.

Every trial becomes a sequence of tokens, one per *stream* per time bin. The streams are

* ``spikes``: the counts of all neurons of the trial's session in a bin, through that session's
  own input map (sessions record different neurons);
* one stream per group of per-bin continuous behavior channels (say hand velocity x and y);
* ``trial``: the per-trial continuous variables, expanded to per-bin tokens by a learned map
  (:class:`~sklearn_blend.models.TrialBehaviorEmbedding`);
* one stream per per-trial categorical variable (say the choice), its class embedding expanded
  to per-bin tokens the same way.

A token hidden by the mask (:attr:`NedsOutput` is computed for any mask given as ``token_mask``
``(batch, time, n_streams)``) has its content replaced by a learned mask token. Each token then
gets its stream's embedding, its bin's learned position embedding and its session's embedding,
and all ``time x streams`` tokens attend to each other in pre-norm encoder layers
(:class:`~sklearn_blend.models.layers.EncoderLayer`, shared with NDT and NeuPRINT). The heads
read the final tokens back: log-rates of the session's neurons per bin (that session's output
map), each behavior group's channels per bin, and, for the per-trial streams, a softmax-weighted
pool of the stream's tokens over time (learned weights) mapped to the trial's values or class
logits.

Where the official code differs: its behavior input maps are per session too (here they are
shared, as the behavior variables are the same in every session). Its input maps,
``n -> 2n -> softsign -> hidden``, are the default here (``NedsConfig.input_map="linear"``
gives one linear map instead). As there, queries and keys are
rotated by their token's bin inside attention (``NedsConfig.rotary``), so a behavior token meets
the spike token of its own bin at offset zero: with the learned absolute position embedding
alone, a small NEDS memorised the training trials' behavior instead of reading the same-bin
spikes (``docs`` of :class:`~sklearn_blend.NedsEstimator`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from ..persistence import registry
from .base import TrialBehaviorEmbedding, set_session_biases
from .layers import (INPUT_MAPS, Dropout, EncoderLayer, carry_weights, per_session,
                     rotary_codes)


@registry.register("dataclass")
@dataclass(frozen=True)
class NedsConfig:
    """Shapes and size of a :class:`NEDS`.

    Parameters
    ----------
    n_neurons : tuple of int
        Neurons of each session (the width of its spike output map).
    n_time : int
        Longest trial, in bins (the learned position embedding's length), forward bins
        included.
    behavior_groups : tuple of tuple of int, default=()
        Per-bin continuous behavior: each group lists the columns of the behavior array that
        form one token stream.
    n_trial : int, default=0
        Per-trial continuous variables (one token stream for all of them).
    n_classes : tuple of int, default=()
        Classes of each per-trial categorical variable (a token stream each).
    hidden_size, n_layers, n_heads, ffn_size : int, default=128, 4, 4, 256
        Transformer width, depth, heads and feed-forward width.
    dropout : float, default=0.2
        Dropout on the residual branches of every layer.
    embedding_dropout : float, default=0.1
        Dropout on the tokens after their embeddings are added.
    n_heldout : int, default=0
        The last ``n_heldout`` neurons of every session are predicted but never read (NLB's
        held-out neurons): a session's spike input map reads its first
        ``n_neurons - n_heldout``.
    rotary : bool, default=True
        Rotate queries and keys by their token's time bin inside attention
        (:func:`~sklearn_blend.models.layers.rotary_codes`), as the official code does, on top
        of the learned position embedding.
    input_map : {"softsign", "linear"}, default="softsign"
        How spikes and per-bin behavior become tokens: the official code's
        ``n -> 2n -> softsign -> hidden`` (:class:`~sklearn_blend.models.layers.SoftsignMap`),
        or one linear map.
    """

    n_neurons: tuple
    n_time: int
    behavior_groups: tuple = ()
    n_trial: int = 0
    n_classes: tuple = ()
    hidden_size: int = 128
    n_layers: int = 4
    n_heads: int = 4
    ffn_size: int = 256
    dropout: float = 0.2
    embedding_dropout: float = 0.1
    n_heldout: int = 0
    rotary: bool = True
    input_map: str = "softsign"

    @property
    def streams(self):
        """Names of the token streams, in token order: ``"spikes"``, ``"behavior<g>"`` per
        group, ``"trial"`` (if any per-trial continuous variable) and ``"label<v>"`` per
        categorical variable."""
        names = ["spikes", *(f"behavior{g}" for g in range(len(self.behavior_groups)))]
        if self.n_trial:
            names.append("trial")
        return tuple(names + [f"label{v}" for v in range(len(self.n_classes))])

    @property
    def n_behavior(self):
        """Per-bin continuous behavior channels (columns named by the groups)."""
        return sum(len(group) for group in self.behavior_groups)


class NedsOutput(NamedTuple):
    """What :class:`NEDS` returns.

    ``log_rates`` ``(batch, time, max_neurons)`` (columns past a session's neuron count are
    padding); ``behavior`` ``(batch, time, n_behavior)`` or ``None``; ``trial``
    ``(batch, n_trial)`` or ``None``; ``labels`` one ``(batch, n_classes)`` logits tensor per
    categorical variable; ``latents`` ``(batch, time, hidden)``: the final spike tokens;
    ``features``: the spike tokens after every layer (what feature distillation aligns).
    """

    log_rates: torch.Tensor
    behavior: torch.Tensor | None
    trial: torch.Tensor | None
    labels: list
    latents: torch.Tensor
    features: list


class _TimePool(nn.Module):
    """Softmax-weighted average over time with learned weights per bin."""

    def __init__(self, n_time):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n_time))

    def forward(self, tokens):  # (batch, time, hidden) -> (batch, hidden)
        weights = self.logits[: tokens.shape[1]].softmax(0)
        return torch.einsum("bth,t->bh", tokens, weights)


class NEDS(nn.Module):
    """The NEDS transformer over spike and behavior tokens (see the module docstring).

    Parameters
    ----------
    config : NedsConfig

    Examples
    --------
    >>> import torch
    >>> config = NedsConfig(n_neurons=(12, 8), n_time=20, behavior_groups=((0, 1),),
    ...                     n_classes=(3,), hidden_size=16, n_layers=1, n_heads=2, ffn_size=32)
    >>> model = NEDS(config)
    >>> spikes, behavior = torch.zeros(4, 20, 12), torch.zeros(4, 20, 2)
    >>> labels, session = torch.zeros(4, 1, dtype=torch.long), torch.tensor([0, 0, 1, 1])
    >>> mask = torch.zeros(4, 20, len(config.streams), dtype=torch.bool)
    >>> out = model(spikes, behavior, labels=labels, session=session, token_mask=mask)
    >>> tuple(out.log_rates.shape), tuple(out.behavior.shape), tuple(out.labels[0].shape)
    ((4, 20, 12), (4, 20, 2), (4, 3))
    """

    #: every random draw in training (dropout) comes from the fit's generator (seeding)
    draws_from_fit_generator = True

    def __init__(self, config: NedsConfig):
        super().__init__()
        self.config = config
        d, n_time = config.hidden_size, config.n_time
        if config.input_map not in INPUT_MAPS:
            raise ValueError(f"input_map={config.input_map!r} is none of {list(INPUT_MAPS)}")
        input_map = INPUT_MAPS[config.input_map]
        self.spike_in = nn.ModuleList(input_map(n - config.n_heldout, d)
                                      for n in config.n_neurons)
        self.spike_out = nn.ModuleList(nn.Linear(d, n) for n in config.n_neurons)
        self.behavior_in = nn.ModuleList(input_map(len(g), d) for g in config.behavior_groups)
        self.behavior_out = nn.ModuleList(nn.Linear(d, len(g)) for g in config.behavior_groups)
        self.trial_in = TrialBehaviorEmbedding(config.n_trial, d, n_time) if config.n_trial \
            else None
        self.trial_pool = _TimePool(n_time) if config.n_trial else None
        self.trial_out = nn.Linear(d, config.n_trial) if config.n_trial else None
        self.label_in = nn.ModuleList(nn.Embedding(k, d) for k in config.n_classes)
        self.label_position = nn.ParameterList(
            nn.Parameter(torch.zeros(1, n_time, d)) for _ in config.n_classes)
        self.label_pool = nn.ModuleList(_TimePool(n_time) for _ in config.n_classes)
        self.label_out = nn.ModuleList(nn.Linear(d, k) for k in config.n_classes)
        n_streams = len(config.streams)
        self.mask_token = nn.Parameter(torch.zeros(d))
        self.stream_embedding = nn.Parameter(torch.zeros(n_streams, d))
        self.position = nn.Parameter(torch.zeros(n_time, d))
        # one vector per session: a session absent from training gets no gradient at all
        # (so neither AdamW's weight decay), which keeps it as it was when fine-tuning others
        self.session_embedding = nn.ParameterList(
            nn.Parameter(torch.zeros(d)) for _ in config.n_neurons)
        self.embedding_dropout = Dropout(config.embedding_dropout)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.apply(self._init_weights)
        for parameter in (self.mask_token, self.stream_embedding, self.position,
                          *self.label_position, *self.session_embedding):
            nn.init.normal_(parameter, std=0.02)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    @torch.no_grad()
    def init_output_bias(self, mean_counts):
        """Start each session's spike readout at ``log(mean count per bin)`` of its neurons
        (``mean_counts``: one array per session, ``None`` to leave a session as it is)."""
        set_session_biases(self.spike_out, mean_counts)

    @torch.no_grad()
    def load_shared(self, other):
        """Copy every weight of ``other`` (a NEDS of the first sessions of this one) into this
        model: the shared transformer, embeddings and behavior maps, and the input and output
        maps and embedding of each of ``other``'s sessions. Sessions added after them keep
        their fresh weights."""
        carry_weights(self, other, self.config.n_neurons, other.config.n_neurons, "neurons")

    def forward(self, spikes, behavior=None, trial=None, labels=None, *, session, token_mask):
        """Predictions for every stream from the visible tokens.

        Parameters
        ----------
        spikes : Tensor (batch, time, n_columns)
            Counts; each session's input map reads its first ``n_neurons - n_heldout``
            columns, the rest is ignored.
        behavior : Tensor (batch, time, n_behavior), optional
            Per-bin continuous behavior in model units (needed when there are groups).
        trial : Tensor (batch, n_trial), optional
            Per-trial continuous variables in model units.
        labels : LongTensor (batch, n_categorical), optional
            Class codes of the per-trial categorical variables (any valid code where masked).
        session : LongTensor (batch,)
            Session of each trial.
        token_mask : BoolTensor (batch, time, n_streams)
            True for tokens hidden from the model (replaced by the mask token).
        """
        config = self.config
        n_time, d = spikes.shape[1], config.hidden_size
        tokens = [per_session(self.spike_in, spikes, session, d)]
        for g, group in enumerate(config.behavior_groups):
            tokens.append(self.behavior_in[g](behavior[..., list(group)]))
        if config.n_trial:
            tokens.append(self.trial_in(trial, n_time))
        for v in range(len(config.n_classes)):
            embedded = self.label_in[v](labels[:, v])[:, None, :]
            tokens.append(nn.functional.gelu(embedded + self.label_position[v][:, :n_time]))
        x = torch.stack(tokens, dim=2)  # (batch, time, streams, hidden)
        x = torch.where(token_mask[..., None], self.mask_token.to(x.dtype), x)
        sessions = torch.stack([self.session_embedding[s] for s in session.tolist()])
        x = (x + self.stream_embedding[None, None] + self.position[None, :n_time, None]
             + sessions[:, None, None])
        batch, n_streams = x.shape[0], x.shape[2]
        x = self.embedding_dropout(x.reshape(batch, n_time * n_streams, d))
        rotary = (rotary_codes(torch.arange(n_time, device=x.device).repeat_interleave(n_streams),
                               d // config.n_heads) if config.rotary else None)
        features = []
        for layer in self.layers:
            x = layer(x, rotary=rotary)
            features.append(x.view(batch, n_time, n_streams, d)[:, :, 0])
        x = self.norm(x).view(batch, n_time, n_streams, d)
        log_rates = per_session(self.spike_out, x[:, :, 0], session,
                                      max(config.n_neurons))
        stream = 1
        behavior_out = None
        if config.behavior_groups:
            outputs = [self.behavior_out[g](x[:, :, stream + g])
                       for g in range(len(config.behavior_groups))]
            # in the dtype the heads compute in (bfloat16 under autocast)
            behavior_out = outputs[0].new_zeros(batch, n_time, config.n_behavior)
            for group, value in zip(config.behavior_groups, outputs):
                behavior_out[..., list(group)] = value
            stream += len(config.behavior_groups)
        trial_out = None
        if config.n_trial:
            trial_out = self.trial_out(self.trial_pool(x[:, :, stream]))
            stream += 1
        label_logits = [self.label_out[v](self.label_pool[v](x[:, :, stream + v]))
                        for v in range(len(config.n_classes))]
        return NedsOutput(log_rates, behavior_out, trial_out, label_logits, x[:, :, 0], features)


def build_neds(**config):
    """A :class:`NEDS` from the fields of :class:`NedsConfig`."""
    return NEDS(NedsConfig(**config))

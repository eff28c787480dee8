"""LFADS (Pandarinath et al., 2018) as lfads-torch defines it (``base="lfads"``).

A sequential variational auto-encoder of spike counts, per trial:

* **encoders**: dropout on the input, then two bidirectional GRUs over the bins. The final
  states of the first (both directions, with dropout) give the Gaussian posterior of the
  *initial condition* (mean and variance, the variance floored at ``ic_post_var_min``); the
  per-bin outputs of the second, lagged by ``ci_lag`` bins (the forward direction later, the
  backward one earlier), are the *controller inputs*;
* **decoder**, run forward bin by bin from the generator's initial state (a linear map of the
  initial condition): the controller GRU cell reads the controller input and the previous
  factors (with dropout) and gives the Gaussian posterior of the *inferred input* of the bin;
  the generator GRU cell, autonomous apart from that input (and a teacher's behavior, LFADS's
  external inputs), updates its state; dropout and a bias-free linear map with unit-norm rows
  give the *factors*; a linear readout gives the log-rates of every output neuron;
* **priors and penalties**: a Gaussian prior on the initial condition (learned mean, variance
  ``ic_prior_var``) and an autoregressive AR(1) Gaussian prior on the inferred inputs (learned
  time constant, start ``co_prior_tau``, and noise variance, start ``co_prior_var``); the
  KL divergences of the posteriors from them (the initial condition's in closed form, the
  inferred inputs' from one sample) weighted by ``kl_ic_scale`` and ``kl_co_scale``, and an L2
  penalty on the recurrent kernels weighted by ``l2_*_scale``, both raised linearly from 0 over
  ``ramp_steps`` training steps. The model returns them in :attr:`ModelOutput.penalty`, which
  the training objective adds to the reconstruction.

In training the posteriors are sampled; in evaluation their means are used (lfads-torch's
``sample_posteriors=False``; its submissions average 50 samples instead). The model is trained
with **coordinated dropout** (the base's masking, ``mask_ratio`` its rate): each input entry is
dropped with that probability, the kept ones scaled by ``1 / (1 - rate)``, and the
reconstruction scores the dropped entries (with the held-out neurons and forward bins), so no
entry's rate is fitted from that entry's own count.

A teacher (``n_behavior > 0``) reads its behavior beside the spikes in both encoders and as
the generator's external input.

Where this differs from lfads-torch, on purpose:

* the encoders are :class:`torch.nn.GRU` (the cuDNN/oneDNN kernel: the reset gate scales
  ``W_hn h`` rather than ``h``, and no clipping, which cannot bind there: the encoders' states
  start within ``[-cell_clip, cell_clip]`` and a GRU never leaves ``[-max(1, |h_0|), ...]``);
  the decoder's two cells are lfads-torch's (TensorFlow's gate form, frozen zero recurrent
  bias, states clipped at ``cell_clip``);
* the reconstruction averages the scored entries only (lfads-torch keeps every entry's value
  and stops the gradient of the kept ones: the same gradients up to a constant factor), and
  validation scores the dropped entries of a fixed mask;
* optimisation is the package's (AdamW, warm-up then cosine decay, early stopping on the
  validation reconstruction) rather than lfads-torch's (Adam with plateau decay, an
  exponentially smoothed validation loss), and the ramps count steps, not epochs.

The features ``strategy="feature"`` aligns are the controller inputs (the encoder), the
generator states and the factors; the latents are the factors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..persistence import registry
from .base import ModelOutput, set_log_mean_bias


@registry.register("dataclass")
@dataclass(frozen=True)
class LFADSConfig:
    """Shape, size and penalties of an :class:`LFADS`.

    The sizes default to lfads-torch's MC_Maze_Small model (``configs/model/
    nlb_mc_maze_small.yaml``); the penalty scales, which that file leaves to population-based
    training, to the middle (log scale) of AutoLFADS's search ranges.

    Parameters
    ----------
    n_inputs, n_outputs : int
        Spike channels in, neurons out.
    n_behavior : int
        Behavior channels per bin (0 for a student).
    hidden_size : int
        Units of the generator (``gen_dim``).
    factor_size : int
        Latent factors (``fac_dim``).
    ic_encoder_size, ci_encoder_size, controller_size : int
        Units per direction of the initial-condition and controller-input encoders, units of
        the controller (``ic_enc_dim``, ``ci_enc_dim``, ``con_dim``).
    ic_size, co_size : int
        Dimensions of the initial condition and of the inferred inputs (``ic_dim``,
        ``co_dim``); ``co_size=0`` removes the controller (an autonomous generator).
    dropout : float
        Dropout (``dropout_rate``) on the input, the initial-condition encoder's final
        states, the controller's input, the generator's initial state and states, and a
        teacher's external inputs.
    ci_lag : int
        Bins the controller inputs lag the data.
    cell_clip : float
        Clip of the decoder cells' states.
    ic_post_var_min, ic_prior_var, co_prior_tau, co_prior_var : float
        Floor of the initial condition's posterior variance; the priors' variance, time
        constant (bins) and noise variance at the start.
    kl_ic_scale, kl_co_scale : float
        Weights of the KL terms of the initial condition and of the inferred inputs.
    l2_gen_scale, l2_con_scale, l2_ic_encoder_scale, l2_ci_encoder_scale : float
        Weights of the L2 penalties on the recurrent kernels of the generator, the controller
        and the two encoders.
    ramp_steps : int
        Training steps over which the penalties' weights rise linearly from 0.

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.models import LFADS, LFADSConfig
    >>> config = LFADSConfig(n_inputs=10, n_outputs=12, hidden_size=8, factor_size=3,
    ...                      ic_encoder_size=4, ci_encoder_size=4, controller_size=4, ic_size=4)
    >>> config.controlled, LFADSConfig(n_inputs=10, n_outputs=12, co_size=0).controlled
    (True, False)
    >>> out = LFADS(config).eval()(torch.zeros(2, 15, 10))
    >>> tuple(out.log_rates.shape), tuple(out.latents.shape)
    ((2, 15, 12), (2, 15, 3))
    """

    n_inputs: int
    n_outputs: int
    n_behavior: int = 0
    hidden_size: int = 100
    factor_size: int = 40
    ic_encoder_size: int = 100
    ci_encoder_size: int = 80
    controller_size: int = 80
    ic_size: int = 100
    co_size: int = 4
    dropout: float = 0.3
    ci_lag: int = 1
    cell_clip: float = 5.0
    ic_post_var_min: float = 1e-4
    ic_prior_var: float = 0.1
    co_prior_tau: float = 10.0
    co_prior_var: float = 0.1
    kl_ic_scale: float = 3e-5
    kl_co_scale: float = 1e-5
    l2_gen_scale: float = 1e-2
    l2_con_scale: float = 1e-2
    l2_ic_encoder_scale: float = 0.0
    l2_ci_encoder_scale: float = 0.0
    ramp_steps: int = 250

    @property
    def controlled(self):
        """Whether the model has a controller (inferred inputs)."""
        return self.co_size > 0 and self.controller_size > 0 and self.ci_encoder_size > 0


def _scaled_normal_(weight, fan):
    nn.init.normal_(weight, std=1.0 / math.sqrt(fan))


def _linear(n_in, n_out, bias=True):
    """A linear map initialised as lfads-torch's: normal weights of variance ``1 / n_in``."""
    layer = nn.Linear(n_in, n_out, bias=bias)
    _scaled_normal_(layer.weight, n_in)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def _init_gru_biases(biases_in, biases_hidden, width):
    """Gate biases 1 and candidate bias 0 on the input side; the recurrent biases 0, frozen."""
    with torch.no_grad():
        biases_in.fill_(1.0)
        biases_in[-width:] = 0.0
        biases_hidden.zero_()
    biases_hidden.requires_grad_(False)


class ClippedGRUCell(nn.Module):
    """lfads-torch's GRU cell: TensorFlow's gate form (the reset gate scales the state before
    the recurrent kernel), recurrent bias frozen at 0, state clipped to ``[-clip, clip]``."""

    def __init__(self, n_inputs, width, clip):
        super().__init__()
        self.width, self.clip = width, clip
        self.weight_ih = nn.Parameter(torch.empty(3 * width, n_inputs))
        self.weight_hh = nn.Parameter(torch.empty(3 * width, width))
        self.bias_ih = nn.Parameter(torch.empty(3 * width))
        self.bias_hh = nn.Parameter(torch.empty(3 * width))
        _scaled_normal_(self.weight_ih, max(n_inputs, 1))
        _scaled_normal_(self.weight_hh, width)
        _init_gru_biases(self.bias_ih, self.bias_hh, width)

    def forward(self, x, h):
        x_z, x_r, x_n = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, dim=-1)
        w_zr, w_n = self.weight_hh.split([2 * self.width, self.width])
        b_zr, b_n = self.bias_hh.split([2 * self.width, self.width])
        h_z, h_r = F.linear(h, w_zr, b_zr).chunk(2, dim=-1)
        z = torch.sigmoid(x_z + h_z)
        r = torch.sigmoid(x_r + h_r)
        n = torch.tanh(x_n + F.linear(r * h, w_n, b_n))
        return torch.clamp(z * h + (1 - z) * n, -self.clip, self.clip)


class _Encoder(nn.Module):
    """A bidirectional GRU with a learned initial state, initialised as lfads-torch's."""

    def __init__(self, n_inputs, width, clip):
        super().__init__()
        self.clip = clip
        self.rnn = nn.GRU(n_inputs, width, batch_first=True, bidirectional=True)
        self.h0 = nn.Parameter(torch.zeros(2, 1, width))
        for suffix in ("l0", "l0_reverse"):
            _scaled_normal_(getattr(self.rnn, f"weight_ih_{suffix}"), n_inputs + width)
            _scaled_normal_(getattr(self.rnn, f"weight_hh_{suffix}"), n_inputs + width)
            _init_gru_biases(getattr(self.rnn, f"bias_ih_{suffix}"),
                             getattr(self.rnn, f"bias_hh_{suffix}"), width)

    def recurrent_kernels(self):
        return [self.rnn.weight_hh_l0, self.rnn.weight_hh_l0_reverse]

    def forward(self, x):
        h0 = self.h0.clamp(-self.clip, self.clip).expand(-1, x.shape[0], -1).contiguous()
        return self.rnn(x, h0)


def kl_normal(mean, std, prior_mean, prior_logvar):
    """KL divergence of diagonal Gaussians ``N(mean, std^2)`` from ``N(prior_mean,
    exp(prior_logvar))``, summed over the last dimension and averaged over the batch."""
    var = std.square()
    kl = 0.5 * (prior_logvar - torch.log(var)
                + (var + (mean - prior_mean).square()) / prior_logvar.exp() - 1.0)
    return kl.sum(-1).mean()


def kl_autoregressive(mean, std, sample, log_tau, log_noise_var):
    """One-sample KL estimate of the inferred inputs' posterior ``N(mean, std^2)`` per
    ``(batch, time, dim)`` from an AR(1) Gaussian prior per dimension (time constant
    ``exp(log_tau)`` bins, noise variance ``exp(log_noise_var)``, stationary at the first bin):
    ``log q(sample) - log p(sample)`` summed over time and dimensions, averaged over the
    batch."""
    log_q = (-0.5 * ((sample - mean) / std).square() - torch.log(std)
             - 0.5 * math.log(2 * math.pi))
    alpha = torch.exp(-1.0 / log_tau.exp())
    noise_var = log_noise_var.exp()
    previous = torch.cat([torch.zeros_like(sample[:, :1]), alpha * sample[:, :-1]], dim=1)
    var = torch.cat([(noise_var / (1 - alpha.square())).expand_as(sample[:, :1]),
                     noise_var.expand_as(sample[:, 1:])], dim=1)
    log_p = -0.5 * ((sample - previous).square() / var + torch.log(var) + math.log(2 * math.pi))
    return (log_q - log_p).sum(dim=(1, 2)).mean()


class LFADS(nn.Module):
    """LFADS: log-rates, factors, per-stage features and, in training, its penalties.

    Parameters
    ----------
    config : LFADSConfig

    Examples
    --------
    >>> import torch
    >>> config = LFADSConfig(n_inputs=20, n_outputs=25, hidden_size=16, factor_size=4,
    ...                      ic_encoder_size=8, ci_encoder_size=8, controller_size=8, ic_size=8)
    >>> model = LFADS(config)
    >>> out = model(torch.zeros(3, 40, 20))
    >>> tuple(out.log_rates.shape), tuple(out.latents.shape), out.penalty.ndim
    ((3, 40, 25), (3, 40, 4), 0)
    >>> model.eval()(torch.zeros(3, 40, 20)).penalty is None
    True
    """

    #: the model adds penalties to the objective (``ModelOutput.penalty``)
    penalised = True

    def __init__(self, config: LFADSConfig):
        super().__init__()
        self.config = c = config
        n_read = c.n_inputs + c.n_behavior
        self.dropout = nn.Dropout(c.dropout)
        self.ic_encoder = _Encoder(n_read, c.ic_encoder_size, c.cell_clip)
        self.ic_posterior = _linear(2 * c.ic_encoder_size, 2 * c.ic_size)
        self.ic_prior_mean = nn.Parameter(torch.zeros(c.ic_size))
        self.register_buffer("ic_prior_logvar",
                             torch.full((c.ic_size,), math.log(c.ic_prior_var)))
        self.ic_to_generator = _linear(c.ic_size, c.hidden_size)
        generator_inputs = c.n_behavior
        if c.controlled:
            self.ci_encoder = _Encoder(n_read, c.ci_encoder_size, c.cell_clip)
            self.controller = ClippedGRUCell(2 * c.ci_encoder_size + c.factor_size,
                                             c.controller_size, c.cell_clip)
            self.controller_h0 = nn.Parameter(torch.zeros(1, c.controller_size))
            self.co_posterior = _linear(c.controller_size, 2 * c.co_size)
            self.co_prior_log_tau = nn.Parameter(torch.full((c.co_size,),
                                                            math.log(c.co_prior_tau)))
            self.co_prior_log_var = nn.Parameter(torch.full((c.co_size,),
                                                            math.log(c.co_prior_var)))
            generator_inputs += c.co_size
        self.generator = ClippedGRUCell(generator_inputs, c.hidden_size, c.cell_clip)
        self.factors = _linear(c.hidden_size, c.factor_size, bias=False)
        self.readout = _linear(c.factor_size, c.n_outputs)
        # training steps seen, for the penalties' ramp; not saved (it only matters in training)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long), persistent=False)

    @torch.no_grad()
    def init_output_bias(self, mean_counts):
        """Start the readout at ``log(mean count per bin)`` of each output neuron."""
        set_log_mean_bias(self.readout, mean_counts)

    def factor_map(self, states):
        """Factors of generator states: a linear map with unit-norm rows, no bias."""
        return F.linear(states, F.normalize(self.factors.weight, dim=1))

    def _controller_inputs(self, data):
        c = self.config
        encoded = self.ci_encoder(data)[0]
        forward, backward = encoded.split(c.ci_encoder_size, dim=-1)
        n_time, lag = data.shape[1], c.ci_lag
        forward = F.pad(forward, (0, 0, lag, 0))[:, :n_time]
        backward = F.pad(backward, (0, 0, 0, lag))[:, -n_time:] if lag else backward
        return torch.cat([forward, backward], dim=-1)

    def forward(self, spikes, behavior=None) -> ModelOutput:
        """Map ``spikes`` ``(batch, time, n_inputs)`` (and a teacher's ``behavior``) to a
        :class:`ModelOutput` (``penalty`` in training, ``None`` in evaluation)."""
        c = self.config
        sample = self.training
        data = spikes if not c.n_behavior else torch.cat([spikes, behavior], dim=-1)
        data = self.dropout(data)
        ic_encoded, last = self.ic_encoder(data)
        ic_mean, ic_logvar = self.ic_posterior(
            self.dropout(torch.cat([last[0], last[1]], dim=-1))).split(c.ic_size, dim=-1)
        ic_std = torch.sqrt(ic_logvar.exp() + c.ic_post_var_min)
        ic = ic_mean + ic_std * torch.randn_like(ic_std) if sample else ic_mean
        generator_init = self.ic_to_generator(ic)
        state = generator_init.clamp(-c.cell_clip, c.cell_clip)
        factor = self.factor_map(self.dropout(generator_init))
        n_batch, n_time = spikes.shape[:2]
        external = self.dropout(behavior) if c.n_behavior else None
        if c.controlled:
            ci = self._controller_inputs(data)
            controller = self.controller_h0.expand(n_batch, -1)
            co_means, co_stds, co_samples = [], [], []
        states, factors = [], []
        for t in range(n_time):
            inputs = [] if external is None else [external[:, t]]
            if c.controlled:
                controller = self.controller(
                    self.dropout(torch.cat([ci[:, t], factor], dim=-1)), controller)
                co_mean, co_logvar = self.co_posterior(controller).split(c.co_size, dim=-1)
                co_std = torch.exp(0.5 * co_logvar)
                co = co_mean + co_std * torch.randn_like(co_std) if sample else co_mean
                co_means.append(co_mean)
                co_stds.append(co_std)
                co_samples.append(co)
                inputs.insert(0, co)
            generator_input = (torch.cat(inputs, dim=-1) if inputs
                               else spikes.new_zeros(n_batch, 0))
            state = self.generator(generator_input, state)
            factor = self.factor_map(self.dropout(state))
            states.append(state)
            factors.append(factor)
        states, factors = torch.stack(states, dim=1), torch.stack(factors, dim=1)
        log_rates = self.readout(factors)
        encoded = ci if c.controlled else ic_encoded
        penalty = None
        if self.training:
            kl = c.kl_ic_scale * kl_normal(ic_mean, ic_std, self.ic_prior_mean,
                                           self.ic_prior_logvar)
            if c.controlled:
                kl = kl + c.kl_co_scale * kl_autoregressive(
                    torch.stack(co_means, 1), torch.stack(co_stds, 1),
                    torch.stack(co_samples, 1), self.co_prior_log_tau, self.co_prior_log_var)
            ramp = min(1.0, (float(self.steps) + 1.0) / (c.ramp_steps + 1.0))
            penalty = ramp * (kl + self.l2_penalty())
            self.steps += 1
        return ModelOutput(log_rates, factors, [encoded, states, factors], penalty)

    def l2_penalty(self):
        """lfads-torch's L2 penalty: ``sum(scale * ||W||^2 / 2)`` over the recurrent kernels
        with a positive scale, divided by their total number of weights."""
        c = self.config
        kernels = [(kernel, c.l2_ic_encoder_scale)
                   for kernel in self.ic_encoder.recurrent_kernels()]
        kernels.append((self.generator.weight_hh, c.l2_gen_scale))
        if c.controlled:
            kernels += [(kernel, c.l2_ci_encoder_scale)
                        for kernel in self.ci_encoder.recurrent_kernels()]
            kernels.append((self.controller.weight_hh, c.l2_con_scale))
        kernels = [(kernel, scale) for kernel, scale in kernels if scale > 0]
        if not kernels:
            return self.readout.weight.new_zeros(())
        total = sum(scale * 0.5 * kernel.square().sum() for kernel, scale in kernels)
        return total / sum(kernel.numel() for kernel, _ in kernels)


def build_lfads(*, n_inputs, n_outputs, n_behavior=0, hidden_size=100, dropout=0.3,
                **options):
    """Builder of ``base="lfads"``: the other fields of :class:`LFADSConfig` (sizes, penalty
    scales, ``ramp_steps``) come from ``base_params``; ``n_time``, which the estimators pass
    to builders that take keywords, is not needed.

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.models import build_lfads
    >>> model = build_lfads(n_inputs=10, n_outputs=12, hidden_size=8, n_time=15,
    ...                     factor_size=3, ic_encoder_size=4, ci_encoder_size=4,
    ...                     controller_size=4, ic_size=4, co_size=2)
    >>> out = model.eval()(torch.zeros(2, 15, 10))
    >>> model.config.dropout, tuple(out.log_rates.shape)
    (0.3, (2, 15, 12))
    >>> build_lfads(n_inputs=10, n_outputs=12, n_heads=2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: base='lfads' has no option ['n_heads']; ...
    """
    options.pop("n_time", None)
    fields = set(LFADSConfig.__dataclass_fields__) - {"n_inputs", "n_outputs", "n_behavior"}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise TypeError(f"base='lfads' has no option {unknown}; its options are "
                        f"{sorted(fields - {'hidden_size', 'dropout'})}")
    return LFADS(LFADSConfig(n_inputs=n_inputs, n_outputs=n_outputs, n_behavior=n_behavior,
                             hidden_size=hidden_size, dropout=dropout, **options))

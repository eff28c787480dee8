"""Masked time-step modelling: which bins are hidden from the model (pure functions).

BLEND and NDT mask *whole time bins*: each (trial, bin) is hidden with probability
``mask_ratio`` (a Bernoulli draw, not a fixed count) and its spike counts are replaced by zeros.
Teacher and student see the same masked spikes during distillation.

NeuPRINT, whose sequences are single neurons, masks *entries* instead
(:func:`random_entry_mask`): each (window, frame, neuron) with probability ``mask_ratio``, plus
the last frame of every sequence, and corrupts them BERT-style (:func:`corrupt_entries`).
"""

from __future__ import annotations

import math

import torch


def random_timestep_mask(n_trials, n_time, ratio, *, generator=None, device=None):
    """Boolean ``(n_trials, n_time, 1)`` mask, True for bins hidden from the model."""
    draws = torch.rand(n_trials, n_time, 1, generator=generator, device=device)
    return draws < ratio


def apply_mask(spikes, mask):
    """Zero the masked bins of ``spikes`` (zero replacement, as in NDT and BLEND)."""
    return spikes.masked_fill(mask, 0.0)


def interleaved_masks(n_time, ratio):
    """Deterministic masks that hide every bin exactly once, about ``ratio`` of bins each.

    Returns a boolean ``(n_passes, n_time)`` tensor with ``n_passes = ceil(1 / ratio)``: pass
    ``k`` hides bins ``t`` with ``t % n_passes == k``. Used to score every bin from a pass in
    which the model could not see it.
    """
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be in (0, 1), got {ratio!r}.")
    n_passes = min(math.ceil(1.0 / ratio), n_time)
    t = torch.arange(n_time)
    return t[None, :] % n_passes == torch.arange(n_passes)[:, None]


def scored_entries(time_mask, n_inputs, n_outputs, n_window):
    """Which (trial, bin, neuron) entries the masked-modelling loss scores.

    Masked bins of the neurons given as input (the first ``n_inputs`` outputs); every bin of
    the other, held-out neurons (they are never input, as in NLB co-smoothing); and every bin
    after the first ``n_window`` (forward prediction, whose input is always zero). Returns a
    boolean tensor broadcastable to ``(n_trials, n_time, n_outputs)``.
    """
    n_time = time_mask.shape[1]
    heldout = torch.arange(n_outputs, device=time_mask.device) >= n_inputs
    forward = torch.arange(n_time, device=time_mask.device) >= n_window
    return time_mask | heldout[None, None, :] | forward[None, :, None]


def random_entry_mask(shape, ratio, *, last_frame=True, generator=None, device=None):
    """Boolean mask of ``shape`` ``(batch, time, neurons)``, True for entries to predict.

    Each entry is masked with probability ``ratio``; with ``last_frame`` the last frame of every
    sequence is always masked, as in NeuPRINT (the causal model then predicts it from the
    neuron's past and the population inputs of that frame).
    """
    mask = torch.rand(shape, generator=generator, device=device) < ratio
    if last_frame:
        mask[:, -1] = True
    return mask


#: share of masked entries set to zero, and of the rest replaced by noise (NeuPRINT, BERT)
ZERO_SHARE, NOISE_SHARE_OF_REST = 0.8, 0.5


def corrupt_entries(activity, mask, *, generator=None):
    """Hide the masked entries of ``activity``: 80% set to 0, 10% to N(0, 1) noise, 10% kept.

    The kept and noised entries are still scored, so the model cannot trust any input value to
    be the target (NeuPRINT's masking, after BERT).
    """
    draw = torch.rand(activity.shape, generator=generator, device=activity.device)
    noise = torch.randn(activity.shape, generator=generator, device=activity.device)
    zero = mask & (draw < ZERO_SHARE)
    noised = mask & (draw >= ZERO_SHARE) & (
        draw < ZERO_SHARE + (1 - ZERO_SHARE) * NOISE_SHARE_OF_REST
    )
    return torch.where(zero, 0.0, torch.where(noised, noise, activity))


#: NEDS's masking schemes, in the order :func:`multitask_mask` numbers them
SCHEMES = ("encoding", "decoding", "self_spike", "self_behavior", "cross_modal")


def multitask_mask(schemes, n_time, per_bin, ratio, *, generator=None, device=None):
    """NEDS's token mask: which (sample, bin, stream) tokens are hidden, one scheme per sample.

    Stream 0 is the spikes, the others are behavior streams; ``per_bin[s]`` says whether
    stream ``s`` varies over bins (per-bin behavior) or holds one per-trial value repeated
    (per-trial variables). Per sample, the scheme ``SCHEMES[schemes[i]]`` decides:

    * ``encoding``: every spike token hidden, behavior visible (behavior to spikes);
    * ``decoding``: every behavior token hidden, spikes visible (spikes to behavior);
    * ``self_spike``: spike bins hidden with probability ``ratio`` each, behavior visible;
    * ``self_behavior``: each behavior stream's bins hidden with probability ``ratio``, drawn
      per stream, spikes visible;
    * ``cross_modal``: one draw of bins hidden with probability ``ratio``, the same bins in
      every stream.

    A per-trial stream cannot be hidden in part (its visible tokens would give the value
    away), so in the last three schemes it is hidden whole with probability ``ratio``.

    Parameters
    ----------
    schemes : LongTensor (n_samples,)
        Index into :data:`SCHEMES` of each sample's scheme.
    n_time : int
    per_bin : sequence of bool (n_streams,)
    ratio : float in (0, 1)

    Returns
    -------
    BoolTensor (n_samples, n_time, n_streams)
        True for hidden tokens. The random draws do not depend on the schemes, so the same
        seed gives the same draws whichever schemes were picked.
    """
    n, n_streams = len(schemes), len(per_bin)
    schemes = torch.as_tensor(schemes, device=device)
    varies = torch.as_tensor(list(per_bin), dtype=torch.bool, device=device)
    each = torch.rand(n, n_time, n_streams, generator=generator, device=device) < ratio
    shared = torch.rand(n, n_time, 1, generator=generator, device=device) < ratio
    whole = torch.rand(n, 1, n_streams, generator=generator, device=device) < ratio
    each = torch.where(varies, each, whole)
    shared = torch.where(varies, shared, whole)
    spike = torch.zeros(n_streams, dtype=torch.bool, device=device)
    spike[0] = True
    by_scheme = torch.stack([
        spike.expand(n, n_time, n_streams),  # encoding
        (~spike).expand(n, n_time, n_streams),  # decoding
        each & spike,  # self_spike
        each & ~spike,  # self_behavior
        shared.expand(n, n_time, n_streams),  # cross_modal
    ])
    return by_scheme[schemes, torch.arange(n, device=device)]

"""Masked time-step modelling: which bins are hidden from the model (pure functions).

BLEND and NDT mask *whole time bins*: each (trial, bin) is hidden with probability
``mask_ratio`` (a Bernoulli draw, not a fixed count) and its spike counts are replaced by zeros.
Teacher and student see the same masked spikes during distillation.
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

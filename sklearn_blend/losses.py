"""Training objectives as pure functions of tensors: masked modelling and the four distillations.

Conventions: model outputs are **log-rates** (log of expected counts per bin) of shape
``(batch, time, neurons)``; ``mask`` arguments are boolean and broadcast against that shape
(``(batch, time, 1)`` selects whole time bins). Every loss is a mean over what it selects, so
its scale does not grow with the window length or the batch size, and returns 0 (with zero,
finite gradients) when nothing is selected.

How these relate to the paper (Guo et al., ICLR 2025, eqs. 1-6) and to its official code
(``shared/reference/blend_and_base_models.md`` section 1.5):

* :func:`masked_poisson_loss` is eq. 1 with a Poisson reconstruction loss, coded like NDT's
  ``PoissonNLLLoss(log_input=True)`` (no Stirling term).
* :func:`hard_distillation` is eq. 3 averaged over all entries (the code's ``F.mse_loss``).
* :func:`soft_distillation` is eq. 4 with the softmax over neurons in each (trial, bin), as in
  the code, averaged over (trial, bin); the code's ``batchmean`` instead sums over bins.
* :func:`feature_distillation` is eq. 5 through learned projections where widths differ. In the
  official code this term is silently empty (the student returns no layers).
* The strategies of :mod:`sklearn_blend.distill` compose these terms as the official code does:
  feature and correlation add the hard term.
* :func:`correlation_distillation` is eq. 6 with the squared Frobenius norm (appendix A.1.2)
  divided by the N^2 matrix entries, averaged over trials: the official code's element mean.
* :func:`latent_alignment` is cross-modal distillation's term (Erturk, Hashemi, Shanechi): the
  student's per-bin latents against the teacher's, by squared error or cosine distance;
  :func:`centre_trials` keeps what differs from trial to trial (its default comparison).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _masked_mean(values, mask):
    """Mean of ``values`` over the entries selected by ``mask`` (all if ``None``); 0 if none."""
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype).expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def poisson_nll(log_rates, counts):
    """Element-wise Poisson negative log-likelihood without the ``log(counts!)`` term.

    ``exp(log_rates) - counts * log_rates``; for a fixed count ``y`` it is minimised at
    ``log_rates = log(y)``, and in expectation over ``y ~ Poisson(r)`` at ``log(r)``.
    """
    return torch.exp(log_rates) - counts * log_rates


def masked_poisson_loss(log_rates, counts, mask=None):
    """Masked time-step modelling loss (eq. 1): mean Poisson NLL over the ``mask`` entries."""
    return _masked_mean(poisson_nll(log_rates, counts), mask)


def masked_mse_loss(predictions, targets, mask=None):
    """Mean squared error over the ``mask`` entries (NeuPRINT's loss on normalised activity)."""
    return _masked_mean((predictions - targets) ** 2, mask)


def masked_cross_entropy(logits, labels, mask=None):
    """Mean cross-entropy of ``logits`` ``(..., n_classes)`` against integer ``labels`` ``(...)``
    over the ``mask`` entries (a categorical modality's reconstruction loss)."""
    values = F.cross_entropy(logits.flatten(0, -2), labels.flatten().long(), reduction="none")
    return _masked_mean(values.reshape(labels.shape), mask)


def hard_distillation(student, teacher, mask=None):
    """Mean squared error between student and teacher log-rates (eq. 3)."""
    return _masked_mean((student - teacher) ** 2, mask)


def soft_distillation(student, teacher, tau=2.0, mask=None, reduction="bin"):
    """``tau**2 * KL(softmax(teacher / tau) || softmax(student / tau))`` (eq. 4).

    The softmax runs over neurons, one distribution per (trial, bin). ``reduction="bin"``
    averages the KL divergence over (trial, bin); ``"trial"`` sums it over the bins of each
    trial and averages over trials (PyTorch's ``batchmean`` over trials, the scale of BLEND's
    official code), which weighs distillation ``n_time`` times more against a reconstruction
    averaged per entry (with a ``mask``: the masked mean times ``n_time``). Adding a constant to
    all logits of a (trial, bin) changes nothing.
    """
    if reduction not in ("bin", "trial"):
        raise ValueError(f"reduction must be 'bin' or 'trial', got {reduction!r}.")
    log_p_teacher = F.log_softmax(teacher / tau, dim=-1)
    log_p_student = F.log_softmax(student / tau, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1, keepdim=True)
    scale = kl.shape[1] if reduction == "trial" and kl.dim() == 3 else 1
    return tau**2 * scale * _masked_mean(kl, mask)


def feature_distillation(student_features, teacher_features, projections=None, mask=None):
    """Sum over layers of the mean squared error between aligned hidden states (eq. 5).

    ``projections[l]`` maps student layer ``l`` to the teacher's width (``None`` or a missing
    entry means identity, for layers of equal width).
    """
    if len(student_features) != len(teacher_features):
        raise ValueError(
            f"feature distillation needs as many student layers as teacher layers, got "
            f"{len(student_features)} and {len(teacher_features)}."
        )
    total = student_features[0].new_zeros(())
    for layer, (h_student, h_teacher) in enumerate(zip(student_features, teacher_features)):
        if projections is not None and projections[layer] is not None:
            h_student = projections[layer](h_student)
        if h_student.shape != h_teacher.shape:
            raise ValueError(
                f"layer {layer}: student features {tuple(h_student.shape)} do not match "
                f"teacher features {tuple(h_teacher.shape)}; give a projection."
            )
        total = total + _masked_mean((h_student - h_teacher) ** 2, mask)
    return total


def latent_alignment(student, teacher, metric="mse", mask=None):
    """Distance between student and teacher latents ``(batch, time, width)`` per bin.

    ``"mse"``: mean squared difference over (trial, bin, unit); ``"cosine"``: mean over
    (trial, bin) of ``1 - cos`` of the angle between the two latent vectors (blind to their
    norms). ``mask`` ``(batch, time)`` keeps only some bins.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"student latents {tuple(student.shape)} do not match teacher "
                         f"latents {tuple(teacher.shape)}; give a projection.")
    if metric == "mse":
        return _masked_mean((student - teacher) ** 2,
                            None if mask is None else mask[..., None].expand_as(student))
    if metric == "cosine":
        distance = 1.0 - F.cosine_similarity(student, teacher, dim=-1, eps=1e-8)
        return _masked_mean(distance, mask)
    raise ValueError(f"metric must be 'mse' or 'cosine', got {metric!r}.")


def centre_trials(latents):
    """``latents`` ``(batch, time, width)`` less their mean over the batch's trials at each bin
    and unit: what differs from trial to trial (zeros for a batch of one trial)."""
    return latents - latents.mean(dim=0, keepdim=True)


def correlation_matrix(outputs, mask=None, eps=1e-8):
    """Per-trial Pearson correlation between neurons over time: ``(batch, N, N)``.

    ``outputs`` is ``(batch, time, N)``; ``mask`` ``(batch, time, 1)`` restricts the bins used.
    A neuron that is constant over the selected bins gets a zero row and column (never NaN,
    and finite gradients).
    """
    weights = (
        torch.ones_like(outputs[..., :1]) if mask is None else mask.to(outputs.dtype)
    )
    n_bins = weights.sum(1, keepdim=True).clamp_min(1.0)
    centered = (outputs - (outputs * weights).sum(1, keepdim=True) / n_bins) * weights
    squared_norm = centered.pow(2).sum(1, keepdim=True)
    varies = squared_norm > (eps * (1.0 + outputs.abs().amax(1, keepdim=True))) ** 2
    # the square root only sees safe values, so constant neurons get zero, finite gradients
    safe_norm = torch.where(varies, squared_norm, torch.ones_like(squared_norm)).sqrt()
    z = torch.where(varies, centered / safe_norm, torch.zeros_like(centered))
    return z.transpose(1, 2) @ z


def correlation_distillation(student, teacher, mask=None):
    """Squared Frobenius distance between per-trial correlation matrices, per matrix entry.

    ``mean_b ||Corr(student_b) - Corr(teacher_b)||_F^2 / N^2`` (eq. 6 divided by the number of
    entries, as the official code's ``mse_loss`` does): the mean squared difference of
    correlation coefficients. Without the ``1 / N^2`` the term grows with the square of the
    neuron count and swamps the masked-modelling loss at any ``alpha < 1``. Unchanged by
    positive per-neuron affine rescaling of either output.
    """
    difference = correlation_matrix(student, mask) - correlation_matrix(teacher, mask)
    return difference.pow(2).mean(dim=(1, 2)).mean()

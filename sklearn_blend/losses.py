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

__all__ = [
    "poisson_nll", "masked_poisson_loss", "masked_mse_loss", "masked_cross_entropy",
    "hard_distillation", "soft_distillation", "feature_distillation", "latent_alignment",
    "centre_trials", "correlation_matrix", "correlation_distillation",
]


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

    Examples
    --------
    >>> import torch
    >>> counts = torch.tensor([2.0])
    >>> round(float(poisson_nll(torch.log(counts), counts)), 3)  # 2 - 2 log 2
    0.614
    >>> nll = poisson_nll(torch.log(torch.tensor([1.0, 2.0, 3.0])), torch.tensor(2.0))
    >>> int(nll.argmin())  # lowest at rate 2 for a count of 2
    1
    """
    return torch.exp(log_rates) - counts * log_rates


def masked_poisson_loss(log_rates, counts, mask=None):
    """Masked time-step modelling loss (eq. 1): mean Poisson NLL over the ``mask`` entries.

    Examples
    --------
    >>> import math, torch
    >>> log_rates = torch.full((1, 2, 1), math.log(2.0))  # rate 2 in both bins
    >>> counts = torch.tensor([[[0.0], [3.0]]])
    >>> round(float(masked_poisson_loss(log_rates, counts)), 3)  # (2 + (2 - 3 log 2)) / 2
    0.96
    >>> first_bin = torch.tensor([[[True], [False]]])
    >>> round(float(masked_poisson_loss(log_rates, counts, first_bin)), 3)  # 2 - 0 log 2
    2.0
    >>> float(masked_poisson_loss(log_rates, counts, torch.zeros(1, 2, 1, dtype=torch.bool)))
    0.0
    """
    return _masked_mean(poisson_nll(log_rates, counts), mask)


def masked_mse_loss(predictions, targets, mask=None):
    """Mean squared error over the ``mask`` entries (NeuPRINT's loss on normalised activity).

    Examples
    --------
    >>> import torch
    >>> predictions = torch.tensor([[[1.0], [2.0]]])
    >>> targets = torch.zeros(1, 2, 1)
    >>> round(float(masked_mse_loss(predictions, targets)), 3)  # (1 + 4) / 2
    2.5
    >>> round(float(masked_mse_loss(predictions, targets, torch.tensor([[[False], [True]]]))), 3)
    4.0
    """
    return _masked_mean((predictions - targets) ** 2, mask)


def masked_cross_entropy(logits, labels, mask=None):
    """Mean cross-entropy of ``logits`` ``(..., n_classes)`` against integer ``labels`` ``(...)``
    over the ``mask`` entries (a categorical modality's reconstruction loss).

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])  # (1 trial, 2 bins, 3)
    >>> labels = torch.tensor([[0, 2]])
    >>> round(float(masked_cross_entropy(logits, labels, torch.tensor([[True, False]]))), 3)
    0.0
    >>> round(float(masked_cross_entropy(logits, labels, torch.tensor([[False, True]]))), 3)
    1.099
    >>> round(float(masked_cross_entropy(logits, labels)), 3)  # (0 + log 3) / 2
    0.549
    """
    values = F.cross_entropy(logits.flatten(0, -2), labels.flatten().long(), reduction="none")
    return _masked_mean(values.reshape(labels.shape), mask)


def hard_distillation(student, teacher, mask=None):
    """Mean squared error between student and teacher log-rates (eq. 3).

    Examples
    --------
    >>> import torch
    >>> teacher = torch.zeros(2, 3, 4)
    >>> round(float(hard_distillation(teacher + 0.5, teacher)), 3)  # 0.5 ** 2
    0.25
    >>> float(hard_distillation(teacher, teacher))
    0.0
    """
    return _masked_mean((student - teacher) ** 2, mask)


def soft_distillation(student, teacher, tau=2.0, mask=None, reduction="bin"):
    """``tau**2 * KL(softmax(teacher / tau) || softmax(student / tau))`` (eq. 4).

    The softmax runs over neurons, one distribution per (trial, bin). ``reduction="bin"``
    averages the KL divergence over (trial, bin); ``"trial"`` sums it over the bins of each
    trial and averages over trials (PyTorch's ``batchmean`` over trials, the scale of BLEND's
    official code), which weighs distillation ``n_time`` times more against a reconstruction
    averaged per entry (with a ``mask``: the masked mean times ``n_time``). Adding a constant to
    all logits of a (trial, bin) changes nothing.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> teacher = torch.randn(2, 3, 4)  # (trials, bins, neurons)
    >>> bool(soft_distillation(teacher + 5.0, teacher).abs() < 1e-6)  # shift per bin: no loss
    True
    >>> per_bin = soft_distillation(torch.zeros(2, 3, 4), teacher)
    >>> bool(per_bin > 0)
    True
    >>> per_trial = soft_distillation(torch.zeros(2, 3, 4), teacher, reduction="trial")
    >>> round(float(per_trial / per_bin), 3)  # summed over the 3 bins of each trial
    3.0
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

    Examples
    --------
    >>> import torch
    >>> student = [torch.zeros(1, 2, 4), torch.ones(1, 2, 4)]
    >>> teacher = [torch.ones(1, 2, 4), torch.ones(1, 2, 4)]
    >>> round(float(feature_distillation(student, teacher)), 3)  # 1 + 0 over the two layers
    1.0
    >>> _ = torch.manual_seed(0)
    >>> narrow = [torch.randn(1, 2, 3), torch.randn(1, 2, 3)]  # student width 3, teacher 4
    >>> projections = [torch.nn.Linear(3, 4), torch.nn.Linear(3, 4)]
    >>> loss = feature_distillation(narrow, teacher, projections)
    >>> loss.shape, loss.requires_grad  # a scalar that trains the projections
    (torch.Size([]), True)
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

    Examples
    --------
    >>> import torch
    >>> student = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])  # (1 trial, 2 bins, width 2)
    >>> teacher = torch.tensor([[[0.0, 1.0], [2.0, 2.0]]])
    >>> round(float(latent_alignment(student, teacher)), 3)  # every difference is +-1
    1.0
    >>> round(float(latent_alignment(student, teacher, "cosine")), 3)  # (1 + 0) / 2
    0.5
    >>> first_bin = torch.tensor([[True, False]])  # orthogonal latents: cosine distance 1
    >>> round(float(latent_alignment(student, teacher, "cosine", mask=first_bin)), 3)
    1.0
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
    and unit: what differs from trial to trial (zeros for a batch of one trial).

    Examples
    --------
    >>> import torch
    >>> latents = torch.tensor([[[1.0, 5.0]], [[3.0, 5.0]]])  # (2 trials, 1 bin, width 2)
    >>> centre_trials(latents).tolist()
    [[[-1.0, 0.0]], [[1.0, 0.0]]]
    >>> float(centre_trials(latents[:1]).abs().sum())
    0.0
    """
    return latents - latents.mean(dim=0, keepdim=True)


def correlation_matrix(outputs, mask=None, eps=1e-8):
    """Per-trial Pearson correlation between neurons over time: ``(batch, N, N)``.

    ``outputs`` is ``(batch, time, N)``; ``mask`` ``(batch, time, 1)`` restricts the bins used.
    A neuron that is constant over the selected bins gets a zero row and column (never NaN,
    and finite gradients).

    Examples
    --------
    >>> import torch
    >>> t = torch.arange(5.0)
    >>> outputs = torch.stack([t, 2 * t + 1, -t], dim=-1)[None]  # (1 trial, 5 bins, 3 neurons)
    >>> corr = correlation_matrix(outputs)
    >>> corr.shape
    torch.Size([1, 3, 3])
    >>> [[round(v, 3) for v in row] for row in corr[0].tolist()]
    [[1.0, 1.0, -1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]]
    >>> with_constant = torch.cat([outputs, torch.ones(1, 5, 1)], dim=-1)
    >>> float(correlation_matrix(with_constant)[0, 3].abs().sum())  # zero row, not NaN
    0.0
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

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> teacher = torch.randn(2, 6, 3)  # (trials, bins, neurons)
    >>> bool(correlation_distillation(2.0 * teacher + 1.0, teacher) < 1e-6)
    True
    >>> t = torch.arange(5.0)
    >>> student = torch.stack([t, t], dim=-1)[None]  # two neurons correlated: +1
    >>> anti = torch.stack([t, -t], dim=-1)[None]  # anti-correlated: -1
    >>> round(float(correlation_distillation(student, anti)), 3)  # (2**2 + 2**2) / 2**2
    2.0
    """
    difference = correlation_matrix(student, mask) - correlation_matrix(teacher, mask)
    return difference.pow(2).mean(dim=(1, 2)).mean()

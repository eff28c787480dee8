"""Cross-modal distillation under the training core: session-aware masking, the teacher's
latents as targets, and the recipe of a :class:`~sklearn_blend.models.SessionTransformer`.

The spike teacher and the LFP student are both session transformers trained by masked
time-step modelling of their own signal (:class:`SessionMasking`: Poisson for spikes, Gaussian
on z-scored LFP; padded channels of sessions with fewer channels are never scored). The
student is also pulled toward the teacher: the teacher's latents of the simultaneously
recorded spikes are computed once, before the student trains (the teacher is frozen and reads
the whole, unmasked spikes, its privileged view), and travel in the batch as
``inputs.teacher_latents``; :class:`LatentTargets` plays the teacher's part in the
:class:`~sklearn_blend.training.objective.Objective` by returning them, and
:class:`~sklearn_blend.distill.LatentAlignment` compares them with the student's latents.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.base import ModalityOutput
from ..models.sessions import SessionConfig, SessionTransformer
from .objective import MaskedView, Objective, TimestepMasking


class SessionMasking(TimestepMasking):
    """:class:`~sklearn_blend.training.objective.TimestepMasking` for padded multi-session
    batches: the loss scores only each row's own session's channels (``n_channels``)."""

    def __init__(self, ratio, n_channels, *, modality):
        super().__init__(ratio, modality=modality)
        self.n_channels = tuple(n_channels)

    def __call__(self, inputs, targets, extra, *, training):
        view = super().__call__(inputs, targets, extra, training=training)
        if not targets:
            return view
        values = inputs[self.modality]
        widths = torch.as_tensor(self.n_channels, device=values.device)[inputs["session"]]
        own = torch.arange(values.shape[-1], device=values.device)[None] < widths[:, None]
        scored = dict(view.scored)
        scored[self.modality] = scored[self.modality] & own[:, None, :]
        return MaskedView(view.inputs, view.targets, scored, view.hidden)


class LatentTargets(nn.Module):
    """The teacher's part in a student's objective: its precomputed latents, read from the
    batch (``inputs["teacher_latents"]``, ``(batch, time, width)``)."""

    def __init__(self, width):
        super().__init__()
        self.latent_width = width

    def forward(self, inputs):
        return ModalityOutput({}, inputs["teacher_latents"], [])


class SessionBuilder:
    """Picklable recipe of a :class:`~sklearn_blend.models.SessionTransformer` and its objective.

    Parameters
    ----------
    config : SessionConfig
    modalities : dict
        ``{config.modality: Modality}``: the likelihood of the reconstruction.
    mask_ratio : float
    mean_counts : list of ndarray or None
        For counts: where each session's readout bias starts (``None`` entries: keep).
    teacher_width : int, optional
        The teacher's latent width: with it, the objective adds
        :class:`~sklearn_blend.distill.LatentAlignment` (``metric``) weighted ``1 - alpha``.
    metric : {"mse", "cosine"}
    alpha : float
    start : SessionTransformer, optional
        A fitted model of the first sessions of ``config``: its weights are carried over.
    train_only_sessions : sequence of int, optional
        Train only these sessions' maps and embeddings; everything else is frozen (a new
        channel layout fitted under a frozen backbone).
    precision : {"float32", "bfloat16"}
    """

    def __init__(self, config, modalities, mask_ratio, mean_counts=None, *, teacher_width=None,
                 metric="mse", alpha=1.0, start=None, train_only_sessions=None,
                 precision="float32"):
        self.config = config
        self.modalities = modalities
        self.mask_ratio = mask_ratio
        self.mean_counts = mean_counts
        self.teacher_width = teacher_width
        self.metric = metric
        self.alpha = alpha
        self.start = start
        self.train_only_sessions = train_only_sessions
        self.precision = precision

    def __call__(self):
        from ..distill import LatentAlignment

        model = SessionTransformer(self.config)
        if self.start is not None:
            model.load_shared(self.start)
        if self.mean_counts is not None:
            model.init_output_bias(self.mean_counts)
        if self.train_only_sessions is not None:
            model.requires_grad_(False)
            for s in self.train_only_sessions:
                for module in (model.inputs[s], model.outputs[s]):
                    module.requires_grad_(True)
                model.session_embedding[s].requires_grad_(True)
        teacher = strategy = None
        if self.teacher_width is not None:
            teacher, strategy = LatentTargets(self.teacher_width), LatentAlignment(self.metric)
        objective = Objective(
            SessionMasking(self.mask_ratio, self.config.n_channels,
                           modality=self.config.modality),
            self.modalities, teacher=teacher, strategy=strategy, student=model,
            alpha=self.alpha if teacher is not None else 1.0, precision=self.precision,
        )
        return model, objective


__all__ = ["LatentTargets", "SessionBuilder", "SessionConfig", "SessionMasking"]

"""Cross-modal distillation under the training core: session-aware masking and the recipe of a
:class:`~sklearn_blend.models.SessionTransformer`.

Teacher and student are both session transformers trained by masked time-step modelling of
their own signal (:class:`SessionMasking`: Poisson for counts, Gaussian on z-scored continuous
signals; padded channels of sessions with fewer channels are never scored). The student is
also pulled toward the teacher, an offline one: the teacher's latents of the simultaneously
recorded privileged signal are computed once, before the student trains (the teacher is frozen
and reads the whole, unmasked signal), and travel in the batch as ``teacher.latents``
(:class:`~sklearn_blend.training.objective.Precomputed`), where the strategy (latent
alignment, :class:`~sklearn_blend.distill.LatentAlignment`, by default) compares them with the
student's latents.
"""

from __future__ import annotations

import torch

from ..models.sessions import SessionConfig, SessionTransformer
from .objective import MaskedView, Objective, Precomputed, TimestepMasking


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
        return MaskedView(view.inputs, view.targets, scored)


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
        The width of the offline teacher's latents: with it, the objective adds the
        ``strategy`` term weighted ``1 - alpha``.
    strategy : torch.nn.Module, optional
        The distillation term (needed with ``teacher_width``), fresh for this fit.
    alpha : float
    distill_warmup : int
        Steps over which the distillation's weight rises from 0 (see
        :class:`~sklearn_blend.training.objective.Objective`).
    start : SessionTransformer, optional
        A fitted model of the first sessions of ``config``: its weights are carried over.
    train_only_sessions : sequence of int, optional
        Train only these sessions' maps and embeddings; everything else is frozen (a new
        channel layout fitted under a frozen backbone).
    precision : {"float32", "bfloat16"}
    """

    def __init__(self, config, modalities, mask_ratio, mean_counts=None, *, teacher_width=None,
                 strategy=None, alpha=1.0, distill_warmup=0, start=None,
                 train_only_sessions=None,
                 precision="float32"):
        self.config = config
        self.modalities = modalities
        self.mask_ratio = mask_ratio
        self.mean_counts = mean_counts
        self.teacher_width = teacher_width
        self.strategy = strategy
        self.alpha = alpha
        self.distill_warmup = distill_warmup
        self.start = start
        self.train_only_sessions = train_only_sessions
        self.precision = precision

    def __call__(self):
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
        teacher = None if self.teacher_width is None else Precomputed(self.teacher_width)
        objective = Objective(
            SessionMasking(self.mask_ratio, self.config.n_channels,
                           modality=self.config.modality),
            self.modalities, teacher=teacher, strategy=self.strategy, student=model,
            alpha=self.alpha if teacher is not None else 1.0, precision=self.precision,
            distill_warmup=self.distill_warmup,
        )
        return model, objective


__all__ = ["SessionBuilder", "SessionConfig", "SessionMasking"]

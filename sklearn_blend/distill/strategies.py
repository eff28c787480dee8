"""Distillation strategies: how a student is pulled towards a frozen teacher.

A strategy is a :class:`torch.nn.Module` whose ``forward(student, teacher)`` takes the two
models' outputs (:class:`~sklearn_blend.models.ModelOutput`: predictions keyed by modality,
latents, per-layer features) and returns a scalar tensor. It owns its hyper-parameters (``tau``)
and may own parameters that train with the student (the feature projections): those that
depend on the two models are built in :meth:`Strategy.setup`, which the training core calls
once, with both models, before the student's first step. The losses themselves are the pure
functions of :mod:`sklearn_blend.losses`.

The built-ins compose their terms as the official BLEND code does: ``hard`` and ``soft`` alone;
``feature`` and ``correlation`` add their term to the hard term, which anchors the student's
rates (correlations are blind to each neuron's rate level and scale, hidden states to the
readout). Every term is summed over the modalities both models predict (for BLEND: spikes).
"""

from __future__ import annotations

from torch import nn

from .. import losses
from ..persistence import registry


def shared_predictions(student, teacher):
    """``(student, teacher)`` prediction pairs of every modality both models predict."""
    names = [name for name in student.predictions if name in teacher.predictions]
    if not names:
        raise ValueError(
            f"student and teacher predict no modality in common (student: "
            f"{sorted(student.predictions)}, teacher: {sorted(teacher.predictions)}); a "
            "strategy that compares predictions needs at least one."
        )
    return [(student.predictions[name], teacher.predictions[name]) for name in names]


class Strategy(nn.Module):
    """Base class of distillation strategies (a ``torch.nn.Module``).

    Subclasses implement ``forward(student, teacher) -> scalar tensor`` and may override
    :meth:`setup`; :attr:`compares` says which outputs they read (``"predictions"``, what
    BLEND's strategies compare, or ``"latents"``). Register one with
    :func:`sklearn_blend.register_strategy` to use it by name; a class or an instance works
    without registration.
    """

    #: the outputs the strategy compares: ``"predictions"`` or ``"latents"``
    compares = "predictions"

    def setup(self, student, teacher):
        """Build what depends on the two models (called once before training); return self.

        ``student`` and ``teacher`` are the models of the training core (they expose
        ``feature_widths()``: the width of each per-layer feature).
        """
        return self

    def forward(self, student, teacher):  # pragma: no cover - abstract
        raise NotImplementedError


@registry.register("strategy")
class Hard(Strategy):
    """Mean squared error between student and teacher predictions (BLEND eq. 3)."""

    def forward(self, student, teacher):
        return sum(losses.hard_distillation(s, t) for s, t in shared_predictions(student, teacher))


@registry.register("strategy")
class Soft(Strategy):
    """Temperature-softened KL divergence over channels (BLEND eq. 4).

    Parameters
    ----------
    tau : float > 0, default=2.0
        Softmax temperature (the estimators set it from their ``tau``).
    reduction : {"bin", "trial"}, default="bin"
        ``"bin"``: the KL divergence averaged over (trial, bin), the scale of the
        reconstruction loss (also an average per entry), so ``alpha`` weighs two comparable
        terms. ``"trial"``: summed over the bins of a trial, averaged over trials, as BLEND's
        official code does; distillation then weighs ``n_time`` times more (``alpha=0.5`` with
        "trial" weighs the two terms as ``alpha`` of about ``1 / (n_time + 1)`` does with
        "bin", up to a rescaling of the whole loss, which gradient clipping makes matter).
        Choose it as ``strategy=Soft(reduction="trial")``; ``benchmarks/soft_scale.py``
        compares the two.
    """

    def __init__(self, tau=2.0, reduction="bin"):
        super().__init__()
        if reduction not in ("bin", "trial"):
            raise ValueError(f"reduction must be 'bin' or 'trial', got {reduction!r}.")
        self.tau = tau
        self.reduction = reduction

    def forward(self, student, teacher):
        return sum(
            losses.soft_distillation(s, t, self.tau, reduction=self.reduction)
            for s, t in shared_predictions(student, teacher)
        )


@registry.register("strategy")
class Feature(Hard):
    """Hard term plus per-layer hidden-state MSE (BLEND eq. 5).

    Where a student layer is narrower or wider than the teacher's, a learned linear projection
    (built in :meth:`setup`, trained with the student) maps it to the teacher's width.
    """

    def __init__(self):
        super().__init__()
        self.projections = None

    def setup(self, student, teacher):
        student_widths, teacher_widths = student.feature_widths(), teacher.feature_widths()
        if not student_widths or len(student_widths) != len(teacher_widths):
            raise ValueError(
                f"strategy='feature' aligns the layers student and teacher both return as "
                f"features; the student returns {len(student_widths)} and the teacher "
                f"{len(teacher_widths)}. Give both models the same non-empty number of "
                "per-layer features (same base and depth), or choose another strategy."
            )
        self.projections = nn.ModuleList(
            None if width_in == width_out else nn.Linear(width_in, width_out)
            for width_in, width_out in zip(student_widths, teacher_widths)
        )
        return self

    def forward(self, student, teacher):
        return super().forward(student, teacher) + losses.feature_distillation(
            student.features, teacher.features, self.projections
        )


@registry.register("strategy")
class Correlation(Hard):
    """Hard term plus the distance between per-trial channel correlation matrices (eq. 6)."""

    def forward(self, student, teacher):
        return super().forward(student, teacher) + sum(
            losses.correlation_distillation(s, t)
            for s, t in shared_predictions(student, teacher)
        )


@registry.register("strategy")
class LatentAlignment(Strategy):
    """Cross-modal distillation: the student's latents per bin, through a learned head, pulled
    to the teacher's.

    Both models return latents ``(batch, time, width)`` (the teacher's may come precomputed: an
    offline teacher, :class:`~sklearn_blend.training.objective.Precomputed`). The student's
    latents go through a head built in :meth:`setup` and trained with the student, and the
    head's output is compared with the teacher's latents. A head keeps the student's latents
    its own: what the teacher does not carry (say the part of the LFP the spikes know nothing
    of) can stay in the head's null space, where comparing the latents as they are would pull
    every latent toward the teacher's.

    By default both sides are compared *centred*: each bin's mean over the batch's trials is
    removed from the head's output and from the teacher's latents, so only what differs from
    trial to trial is distilled. The part common to every trial at a bin (in windows cut from
    a continuous recording, mostly the teacher's position embedding) is known from the bin's
    index alone; distilling it teaches nothing of the everyday signal, and matching it is how
    a student lowers the term while ignoring its input: on a real recording whose spikes say
    little of the LFP, the uncentred term collapsed the student's latents to one sequence for
    every window, with its masked-LFP loss at chance, and the centred one does not
    (``benchmarks/crossmodal_real.py``). Centring needs batches of several trials (a batch of
    one trial contributes nothing).

    Parameters
    ----------
    metric : {"mse", "cosine"}, default="mse"
        :func:`sklearn_blend.losses.latent_alignment`'s distance.
    head : {"linear", "mlp"} or None, default="linear"
        ``"linear"``: a learned linear map from the student's width to the teacher's;
        ``"mlp"``: linear, GELU, linear; ``None``: the latents compared as they are where the
        widths match, through a linear map where they differ (sklearn_blend 0.2's alignment).
    centre : bool, default=True
        Compare the latents centred over the batch's trials at each bin (``False``: as they
        are, the alignment of model files of format 3 and earlier).
    """

    compares = "latents"
    HEADS = ("linear", "mlp", None)

    def __init__(self, metric="mse", head="linear", centre=True):
        super().__init__()
        if metric not in ("mse", "cosine"):
            raise ValueError(f"metric must be 'mse' or 'cosine', got {metric!r}.")
        if head not in self.HEADS:
            raise ValueError(f"head must be 'linear', 'mlp' or None, got {head!r}.")
        if centre not in (True, False):
            raise TypeError(f"centre must be True or False, got {centre!r}.")
        self.metric = metric
        self.head = head
        self.centre = bool(centre)
        self.projection = None

    def setup(self, student, teacher):
        width_in, width_out = student.latent_width, teacher.latent_width
        if self.head == "mlp":
            self.projection = nn.Sequential(nn.Linear(width_in, width_in), nn.GELU(),
                                            nn.Linear(width_in, width_out))
        elif self.head == "linear" or width_in != width_out:
            self.projection = nn.Linear(width_in, width_out)
        return self

    def forward(self, student, teacher):
        latents = student.latents
        if self.projection is not None:
            latents = self.projection(latents)
        target = teacher.latents
        if self.centre:
            latents, target = losses.centre_trials(latents), losses.centre_trials(target)
        return losses.latent_alignment(latents, target, self.metric)

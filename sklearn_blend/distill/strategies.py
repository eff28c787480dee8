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
    """``(student, teacher)`` prediction pairs of every modality both models predict.

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.distill import shared_predictions
    >>> from sklearn_blend.models import ModelOutput
    >>> student = ModelOutput(predictions={"spikes": torch.zeros(2, 5, 3),
    ...                                    "behavior": torch.zeros(2, 5, 2)})
    >>> teacher = ModelOutput(predictions={"spikes": torch.ones(2, 5, 3)})
    >>> pairs = shared_predictions(student, teacher)  # spikes only: the teacher has no behavior
    >>> len(pairs), tuple(pairs[0][0].shape), pairs[0][1].mean().item()
    (1, (2, 5, 3), 1.0)
    """
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

    Examples
    --------
    A strategy pulling the student's log-rates to the teacher's in absolute difference:

    >>> import torch
    >>> from sklearn_blend.distill import Strategy, shared_predictions
    >>> from sklearn_blend.models import ModelOutput
    >>> class MeanAbsolute(Strategy):
    ...     def forward(self, student, teacher):
    ...         return sum((s - t).abs().mean() for s, t in shared_predictions(student, teacher))
    >>> strategy = MeanAbsolute().setup(None, None)  # nothing to build: setup returns self
    >>> student = ModelOutput(predictions={"spikes": torch.zeros(2, 5, 3)})
    >>> teacher = ModelOutput(predictions={"spikes": torch.full((2, 5, 3), -2.0)})
    >>> strategy.compares, strategy(student, teacher).item()
    ('predictions', 2.0)
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
    """Mean squared error between student and teacher predictions (BLEND eq. 3).

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.distill import Hard
    >>> from sklearn_blend.models import ModelOutput
    >>> student = ModelOutput(predictions={"spikes": torch.zeros(2, 5, 3)})
    >>> teacher = ModelOutput(predictions={"spikes": torch.full((2, 5, 3), 0.5)})
    >>> Hard()(student, teacher).item()  # (0 - 0.5) ** 2 in every entry
    0.25
    """

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

    Examples
    --------
    A uniform student against a teacher giving its two neurons the shares 3/4 and 1/4: at
    ``tau=1`` the term is ``KL = 3/4 ln(3/2) + 1/4 ln(1/2)`` in every bin.

    >>> import math
    >>> import torch
    >>> from sklearn_blend.distill import Soft
    >>> from sklearn_blend.models import ModelOutput
    >>> student = ModelOutput(predictions={"spikes": torch.zeros(2, 5, 2)})
    >>> teacher = ModelOutput(predictions={"spikes": torch.tensor([math.log(3), 0.0])
    ...                                    .expand(2, 5, 2)})
    >>> round(Soft(tau=1.0)(student, teacher).item(), 4)
    0.1308
    >>> round(0.75 * math.log(1.5) + 0.25 * math.log(0.5), 4)
    0.1308
    >>> round(Soft(tau=1.0, reduction="trial")(student, teacher).item(), 4)  # times 5 bins
    0.6541
    >>> shifted = ModelOutput(predictions={"spikes": teacher.predictions["spikes"] + 1.0})
    >>> round(Soft()(shifted, teacher).item(), 4)  # the softmax ignores a common offset
    0.0
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

    Examples
    --------
    :meth:`setup` reads each model's ``feature_widths()``; a layer of another width gets a
    projection:

    >>> from types import SimpleNamespace
    >>> import torch
    >>> from sklearn_blend.distill import Feature
    >>> from sklearn_blend.models import ModelOutput
    >>> def widths(*values):
    ...     return SimpleNamespace(feature_widths=lambda: list(values))
    >>> list(Feature().setup(widths(4, 4), widths(4, 6)).projections)
    [None, Linear(in_features=4, out_features=6, bias=True)]

    Equal predictions, one layer of equal width: only the feature term, ``(0 - 1) ** 2``:

    >>> strategy = Feature().setup(widths(4), widths(4))
    >>> student = ModelOutput(predictions={"spikes": torch.zeros(2, 5, 3)},
    ...                       features=[torch.zeros(2, 5, 4)])
    >>> teacher = ModelOutput(predictions={"spikes": torch.zeros(2, 5, 3)},
    ...                       features=[torch.ones(2, 5, 4)])
    >>> strategy(student, teacher).item()
    1.0
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
    """Hard term plus the distance between per-trial channel correlation matrices (eq. 6).

    Examples
    --------
    Correlations are blind to each neuron's level: a student off by 1 everywhere pays the hard
    term, ``1 ** 2``, alone; one that flips a neuron's sign pays more than its hard term.

    >>> import torch
    >>> from sklearn_blend.distill import Correlation, Hard
    >>> from sklearn_blend.models import ModelOutput
    >>> log_rates = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    >>> teacher = ModelOutput(predictions={"spikes": log_rates})
    >>> shifted = ModelOutput(predictions={"spikes": log_rates + 1.0})
    >>> round(Correlation()(shifted, teacher).item(), 4)
    1.0
    >>> flipped = ModelOutput(predictions={"spikes": log_rates * torch.tensor([1.0, 1.0, -1.0])})
    >>> bool(Correlation()(flipped, teacher) > Hard()(flipped, teacher))
    True
    """

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

    Examples
    --------
    :meth:`setup` reads each model's ``latent_width``; ``head=None`` with equal widths compares
    the latents as they are:

    >>> from types import SimpleNamespace
    >>> import torch
    >>> from sklearn_blend.distill import LatentAlignment
    >>> from sklearn_blend.models import ModelOutput
    >>> width = SimpleNamespace(latent_width=4)
    >>> align = LatentAlignment(head=None).setup(width, width)
    >>> align.compares, align.projection is None
    ('latents', True)
    >>> student = ModelOutput(predictions={}, latents=torch.zeros(2, 5, 4))
    >>> common = ModelOutput(predictions={}, latents=torch.ones(2, 5, 4))
    >>> align(student, common).item()  # the same in every trial: centred away
    0.0
    >>> differs = ModelOutput(predictions={},
    ...                       latents=torch.stack([torch.ones(5, 4), -torch.ones(5, 4)]))
    >>> align(student, differs).item()  # centred teacher is +-1, the student 0
    1.0
    >>> LatentAlignment().setup(width, SimpleNamespace(latent_width=6)).projection
    Linear(in_features=4, out_features=6, bias=True)
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

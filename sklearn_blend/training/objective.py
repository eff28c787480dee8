"""The objective of every model: masked reconstruction of modalities plus distillation.

:class:`Objective` is the skorch *criterion* of :class:`~sklearn_blend.training.core.ObjectiveNet`
(the model being trained is the net's ``module_``). It owns

* a masking scheme (:class:`TimestepMasking` for trials, :class:`EntryMasking` for per-neuron
  sequences), which the net applies to the inputs before the model's forward;
* the reconstruction loss of every target modality, looked up from its
  :class:`~sklearn_blend.modalities.Modality` (Poisson for counts, MSE for continuous signals,
  cross-entropy for labels);
* for a student, the teacher and the distillation strategy (a
  :class:`~sklearn_blend.distill.Strategy` or any module with ``forward(student, teacher)``,
  whose own parameters, such as feature projections, train with the student):
  ``loss = alpha * reconstruction + (1 - alpha) * distillation``. The teacher teaches in one
  of two modes: **online**, a frozen model run on the student's (masked) batch, or
  **offline**, outputs it computed before the student trained, carried in the batch
  (:class:`Precomputed` says their shapes).

Batches are mappings with flat keys (skorch datasets do not nest): ``"inputs.<modality>"``,
``"targets.<modality>"``, ``"teacher.<output>"`` (offline teacher outputs: ``latents`` or a
modality's predictions) and ``"valid_mask"`` / ``"hidden"``; :func:`pack` and :func:`unpack`
convert. Time-step masking gives the models the bins it hid as ``inputs["hidden"]``
``(n, time)``, which a model may read (a NEDS teacher hides them behind its mask token) or
ignore.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .. import seeding
from ..models.base import ModelOutput
from ..masking import (
    apply_mask,
    corrupt_entries,
    random_entry_mask,
    random_timestep_mask,
    scored_entries,
)

#: ``precision=`` name -> dtype of the model's autocast region (``None``: plain float32)
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}


def pack(inputs, targets=None, *, teacher=None, **extra):
    """Flat batch dict from ``{modality: array}`` inputs and targets, and an offline teacher's
    outputs (``{"latents" or modality: array}``); ``None`` values are dropped.

    Every array that enters the training core passes here and leaves C-contiguous, so
    reversed or otherwise strided views of the user's arrays are safe for torch.
    """
    data = {f"inputs.{k}": v for k, v in inputs.items() if v is not None}
    data.update({f"targets.{k}": v for k, v in (targets or {}).items() if v is not None})
    data.update({f"teacher.{k}": v for k, v in (teacher or {}).items() if v is not None})
    data.update({k: v for k, v in extra.items() if v is not None})
    return {k: np.ascontiguousarray(v) for k, v in data.items()}


def unpack(batch):
    """``(inputs, targets, extra)`` mappings of a flat batch dict."""
    inputs, targets, extra = {}, {}, {}
    for key, value in batch.items():
        group, _, name = key.partition(".")
        if group == "inputs" and name:
            inputs[name] = value
        elif group == "targets" and name:
            targets[name] = value
        else:
            extra[key] = value
    return inputs, targets, extra


class MaskedView(NamedTuple):
    """A batch after masking: what the models read, what is reconstructed, and where.

    ``scored`` maps each target modality to the boolean mask of the entries its loss scores
    (``None``: every entry). ``teacher`` is an offline teacher's output for the batch (a
    :class:`~sklearn_blend.models.ModelOutput` of the ``teacher.*`` entries), or ``None``.
    """

    inputs: dict
    targets: dict
    scored: dict
    teacher: object = None


def precomputed_outputs(extra):
    """The offline teacher outputs of a batch (its ``teacher.*`` entries) as a
    :class:`~sklearn_blend.models.ModelOutput`, or ``None`` when there are none."""
    outputs = {key.partition(".")[2]: value for key, value in extra.items()
               if key.startswith("teacher.")}
    if not outputs:
        return None
    latents = outputs.pop("latents", None)
    return ModelOutput(outputs, latents, [])


class Precomputed:
    """An offline teacher in an :class:`Objective`: the shapes of the outputs it computed
    before the student trained (they come with each batch, :func:`precomputed_outputs`), for
    the strategy's :meth:`~sklearn_blend.distill.Strategy.setup`.

    Parameters
    ----------
    latent_width : int, optional
        Width of the precomputed latents.
    feature_widths : sequence of int, default=()
        Widths of precomputed per-layer features (none yet).
    """

    def __init__(self, latent_width=None, feature_widths=()):
        self.latent_width = latent_width
        self._feature_widths = list(feature_widths)

    def feature_widths(self):
        return list(self._feature_widths)


def run_model(model, inputs, precision="float32"):
    """``model(inputs)`` in ``precision``; its :class:`~sklearn_blend.models.ModelOutput` in
    float32.

    ``"bfloat16"`` runs the model under :func:`torch.autocast` (matrix products in bfloat16,
    weights and their gradients kept in float32); its outputs are cast back to float32, so
    losses, metrics and everything after the model stay in float32.
    """
    dtype = PRECISIONS[precision]
    if dtype is None:
        return model(inputs)
    first = inputs if isinstance(inputs, torch.Tensor) else next(iter(inputs.values()))
    with torch.autocast(first.device.type, dtype=dtype):
        output = model(inputs)
    return output.float()


def cpu_has_native_bfloat16():
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16 or AMX, via oneDNN)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def warn_if_bfloat16_is_emulated(precision, device):
    """Warn when bfloat16 training would run on a CPU that emulates it (much slower)."""
    if (precision == "bfloat16" and torch.device(device).type == "cpu"
            and not cpu_has_native_bfloat16()):
        warnings.warn(
            "precision='bfloat16' on a CPU without native bfloat16 instructions (AVX512-BF16 "
            "or AMX): matrix products are emulated and training is much slower than with "
            "precision='float32'.",
            UserWarning,
            stacklevel=3,
        )


class TimestepMasking:
    """Masked time-step modelling of one input modality (BLEND, NDT, LFADS).

    In training every (trial, bin) of ``modality`` is hidden with probability ``ratio`` (zeros);
    in validation the fixed ``valid_mask`` of the data is used, so the loss is comparable from
    epoch to epoch; at inference the bins in ``hidden`` (if any) are hidden. The hidden bins
    ``(n, time)`` go to the models as ``inputs["hidden"]``. The loss of the same modality
    scores masked bins of the input channels, every bin of the channels that are never input
    (held-out neurons) and the last ``n_forward`` bins (forward prediction).
    """

    def __init__(self, ratio, *, modality="spikes", n_forward=0):
        self.ratio = ratio
        self.modality = modality
        self.n_forward = n_forward

    def fixed_mask(self, inputs, generator):
        """A seeded validation mask ``(n, time)`` for the arrays ``inputs``."""
        n, n_time = inputs[self.modality].shape[:2]
        return random_timestep_mask(n, n_time, self.ratio, generator=generator)[..., 0]

    def __call__(self, inputs, targets, extra, *, training):
        values = inputs[self.modality]
        if not targets:  # inference
            hidden = extra.get("hidden")
            if hidden is None:
                return MaskedView(inputs, targets, {})
            mask = hidden[..., None]
        elif training or extra.get("valid_mask") is None:
            mask = random_timestep_mask(*values.shape[:2], self.ratio, device=values.device,
                                        generator=seeding.current())
        else:
            mask = extra["valid_mask"][..., None]
        masked = dict(inputs, **{self.modality: apply_mask(values, mask)}, hidden=mask[..., 0])
        scored = {}
        if self.modality in targets:
            target = targets[self.modality]
            scored[self.modality] = scored_entries(
                mask, values.shape[2], target.shape[2], target.shape[1] - self.n_forward
            )
        return MaskedView(masked, targets, scored)


class CoordinatedDropout(TimestepMasking):
    """LFADS's coordinated dropout of one input modality (lfads-torch's ``CoordinatedDropout``).

    In training each (trial, bin, input channel) entry is dropped with probability ``ratio``
    (zeroed) and the kept entries are scaled by ``1 / (1 - ratio)``; in validation the fixed
    entry mask ``valid_mask`` of the data is used the same way. The loss of the modality
    scores the dropped entries, every bin of the channels that are never input (held-out
    neurons) and the last ``n_forward`` bins, so no entry is reconstructed from itself. At
    inference the input is used as it is (the bins in ``hidden``, if any, zeroed), unscaled.
    """

    def fixed_mask(self, inputs, generator):
        """A seeded validation mask ``(n, time, channels)`` of entries to drop."""
        return random_entry_mask(inputs[self.modality].shape, self.ratio, last_frame=False,
                                 generator=generator)

    def __call__(self, inputs, targets, extra, *, training):
        if not targets:  # inference: as time-step masking (the hidden bins, if any, zeroed)
            return super().__call__(inputs, targets, extra, training=training)
        values = inputs[self.modality]
        if training or extra.get("valid_mask") is None:
            dropped = random_entry_mask(values.shape, self.ratio, last_frame=False,
                                        device=values.device, generator=seeding.current())
        else:
            dropped = extra["valid_mask"]
        kept = values.masked_fill(dropped, 0.0) / (1.0 - self.ratio)
        scored = {}
        if self.modality in targets:
            target = targets[self.modality]
            n_outputs, n_window = target.shape[2], target.shape[1] - self.n_forward
            entries = torch.nn.functional.pad(dropped, (0, n_outputs - values.shape[2]))
            scored[self.modality] = entries | scored_entries(
                torch.zeros_like(dropped[..., :1]), values.shape[2], n_outputs, n_window)
        return MaskedView(dict(inputs, **{self.modality: kept}), targets, scored)


#: a base's ``masking`` (:class:`~sklearn_blend.models.base.BaseEntry`) -> its masking class
MASKINGS = {"timestep": TimestepMasking, "coordinated": CoordinatedDropout}


class EntryMasking:
    """Masked modelling of entries of one modality (NeuPRINT: one sequence per neuron).

    In training each (sample, frame, channel) entry is masked with probability ``ratio``, plus
    the last frame, and corrupted BERT-style; in validation the fixed ``valid_mask`` entries are
    zeroed. The target is the unmasked input unless the batch gives one.
    """

    def __init__(self, ratio, *, modality):
        self.ratio = ratio
        self.modality = modality

    def fixed_mask(self, inputs, generator):
        return random_entry_mask(inputs[self.modality].shape, self.ratio, generator=generator)

    def __call__(self, inputs, targets, extra, *, training):
        values = inputs[self.modality]
        targets = dict(targets)
        targets.setdefault(self.modality, values)
        if training or extra.get("valid_mask") is None:
            generator = seeding.current()
            mask = random_entry_mask(values.shape, self.ratio, device=values.device,
                                     generator=generator)
            masked = corrupt_entries(values, mask, generator=generator)
        else:
            mask = extra["valid_mask"]
            masked = values.masked_fill(mask, 0.0)
        return MaskedView(dict(inputs, **{self.modality: masked}), targets,
                          {self.modality: mask})


class Objective(nn.Module):
    """skorch criterion: masked reconstruction of ``modalities``, plus distillation.

    Parameters
    ----------
    masking : TimestepMasking or EntryMasking
        Applied by the net to every batch before the model runs.
    modalities : dict of str to Modality
        The target modalities; each one's likelihood gives its reconstruction loss.
    teacher : torch.nn.Module or Precomputed, optional
        Online: a fitted model that reads the same inputs mapping (including privileged
        modalities the student does not read). Frozen here (its parameters stop requiring
        gradients, so the net's optimizer never sees them) and kept in evaluation mode; its
        outputs are computed without gradients, as constants of the loss. It must live on the
        device the student trains on. Offline: a :class:`Precomputed`, whose outputs each
        batch carries (``view.teacher``).
    strategy : torch.nn.Module, optional
        Distillation term ``strategy(student_output, teacher_output)`` (a
        :class:`~sklearn_blend.distill.Strategy`, whose ``setup`` is called with both models,
        or any module with that ``forward``).
    student : torch.nn.Module, optional
        The model being trained (to check that it predicts every target modality and to set
        the strategy up; not stored).
    alpha : float, default=1.0
        Weight of the reconstruction; ``1 - alpha`` weighs distillation.
    precision : {"float32", "bfloat16"}
        Compute precision of the teacher's forward (the net runs the student in the same).
    weights : dict of str to float, optional
        Weight of each modality's reconstruction in their sum (default 1 each).
    distill_warmup : int, default=0
        Training steps over which the distillation's weight rises linearly from 0 to
        ``1 - alpha`` (reconstruction first); counted by the objective from its creation.

    Returns (forward)
    -----------------
    dict of scalar tensors: ``"recon"`` (reconstruction, summed over modalities with
    ``weights``), one ``"recon_<modality>"`` per modality when there are several, ``"distill"``
    in training of a student, ``"penalty"`` in training of a model that returns one
    (:attr:`~sklearn_blend.models.ModelOutput.penalty`, added to the loss), and ``"loss"`` (what training minimises; validation scores
    reconstruction alone).
    """

    def __init__(self, masking, modalities, *, teacher=None, strategy=None, student=None,
                 alpha=1.0, precision="float32", weights=None, distill_warmup=0):
        super().__init__()
        self.distill_warmup = distill_warmup
        # training steps seen (for distill_warmup); not saved: it only matters in training
        self.register_buffer("steps", torch.zeros((), dtype=torch.long), persistent=False)
        self.masking = masking
        self.modalities = dict(modalities)
        self.weights = {name: 1.0 for name in self.modalities}
        unknown = sorted(set(weights or {}) - set(self.modalities))
        if unknown:
            raise ValueError(f"weights name {unknown}, which are not reconstructed "
                             f"({list(self.modalities)}).")
        self.weights.update(weights or {})
        self.alpha = alpha
        self.precision = precision
        predicts = getattr(student, "predicts", None)
        missing = [name for name in self.modalities if predicts is not None
                   and name not in predicts]
        if missing:
            raise ValueError(
                f"the objective reconstructs {missing}, which the model does not predict (it "
                f"predicts {list(predicts)})."
            )
        # a model with penalties of its own (ModelOutput.penalty) logs them as "penalty"
        self.penalised = bool(getattr(student, "penalised", False))
        self.online = isinstance(teacher, nn.Module)
        self.teacher = teacher.requires_grad_(False).eval() if self.online else teacher
        self.strategy = None
        if teacher is not None:
            if strategy is None:
                raise ValueError("a teacher needs a distillation strategy")
            setup = getattr(strategy, "setup", None)
            self.strategy = strategy if setup is None else setup(student, teacher)

    def train(self, mode=True):
        super().train(mode)
        if self.online:
            self.teacher.eval()  # frozen: no dropout, fixed normalisation statistics
        return self

    def term_names(self):
        """``{"train": [...], "valid": [...]}``: the terms :meth:`forward` returns besides
        ``"loss"`` in training and in validation (where a student skips its teacher)."""
        names = ["recon"]
        if len(self.modalities) > 1:
            names += [f"recon_{name}" for name in self.modalities]
        train = names + (["distill"] if self.teacher is not None else [])
        train += ["penalty"] if self.penalised else []
        return {"train": train, "valid": names}

    def reconstruction(self, output, view):
        """``{modality: loss}`` over the scored entries of every target modality."""
        return {
            name: modality.loss(output.predictions[name], view.targets[name],
                                view.scored.get(name))
            for name, modality in self.modalities.items()
        }

    def forward(self, output, view):
        terms = self.reconstruction(output, view)
        recon = (sum(self.weights[name] * value for name, value in terms.items())
                 if len(terms) > 1 else next(iter(terms.values())))
        result = {"recon": recon}
        if len(terms) > 1:
            result.update({f"recon_{name}": value for name, value in terms.items()})
        result["loss"] = self._training_loss(output, view, recon, result)
        if self.training and getattr(output, "penalty", None) is not None:
            result["penalty"] = output.penalty
            result["loss"] = result["loss"] + output.penalty
        return result

    def _training_loss(self, output, view, recon, result):
        """The reconstruction and, for a student in training, its distillation (recorded in
        ``result["distill"]``), weighted."""
        if self.teacher is None or not self.training:
            return recon
        if self.online:
            # no_grad, not inference_mode: a strategy may save teacher outputs for its backward
            with torch.no_grad():
                teacher_output = run_model(self.teacher, view.inputs, self.precision)
        else:
            teacher_output = view.teacher
        distill = self.strategy(output, teacher_output)
        result["distill"] = distill
        weight = 1.0 - self.alpha
        if self.distill_warmup:
            weight *= min(1.0, float(self.steps) / self.distill_warmup)
            self.steps += 1
        return self.alpha * recon + weight * distill

"""NEDS under the training core: its masking scheme, its model contract and its recipe.

:class:`MultiTaskMasking` is the criterion's masking scheme: for every training sample one of
NEDS's five schemes is drawn (``scheme_probs``) and its token mask
(:func:`~sklearn_blend.masking.multitask_mask`) is given to the model as ``token_mask``;
behavior that is missing (NaN bins, whole trials, label code ``-1``) is always hidden and never
a target. :class:`NedsModel` is the :class:`~sklearn_blend.models.NEDS` as the core sees it:
it reads the mapping ``{spikes, behavior, trial, labels, session, token_mask}`` and predicts
``{spikes, behavior, trial, label<v>}``; the objective sums each modality's loss over its hidden
tokens (Poisson for spikes, MSE for continuous behavior, cross-entropy for labels), weighted.

Batch entries (``inputs.<name>`` in the flat dicts of :func:`~sklearn_blend.training.objective.pack`):
``spikes`` ``(n, time, max_neurons)`` counts, zero-padded past each session's neurons;
``behavior`` ``(n, time, n_behavior)`` and ``trial`` ``(n, n_trial)`` in model units, NaN where
missing; ``labels`` ``(n, n_categorical)`` class codes, ``-1`` where missing; ``session``
``(n,)``. Targets repeat the behavior entries under the modality names (``label<v>`` one
column each).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import metrics, seeding
from ..masking import SCHEMES, multitask_mask
from ..modalities import BEHAVIOR, SPIKES, Modality
from ..models.base import ModelOutput
from ..models.neds import NEDS
from .core import Selection, validation_batches
from .objective import MaskedView, Objective, run_model


def label_modality(v):
    """The categorical modality of per-trial variable ``v`` (``"label<v>"``)."""
    return Modality(f"label{v}", "categorical", f"labels of categorical variable {v}")


TRIAL = Modality("trial", "continuous", "per-trial behavior")


def neds_modalities(config):
    """``{name: Modality}`` that a NEDS of ``config`` predicts (and its objective scores)."""
    modalities = {"spikes": SPIKES}
    if config.behavior_groups:
        modalities["behavior"] = BEHAVIOR
    if config.n_trial:
        modalities["trial"] = TRIAL
    modalities.update({f"label{v}": label_modality(v) for v in range(len(config.n_classes))})
    return modalities


class MultiTaskMasking:
    """NEDS's masking: a scheme per sample, hidden tokens replaced by the mask token.

    Parameters
    ----------
    config : NedsConfig
        The model's streams, behavior groups and neurons per session.
    scheme_probs : sequence of 5 float
        Probability of each scheme of :data:`~sklearn_blend.masking.SCHEMES`.
    ratio : float in (0, 1)
        The temporal masks' probability per bin.
    n_forward : int, default=0
        The last ``n_forward`` bins are forward bins (NLB forward prediction): their spike
        tokens are always hidden and their counts always scored.

    In training each sample draws its scheme and mask from the fit's generator; in validation
    the fixed ``valid_mask`` (drawn once, seeded) is used; at inference the caller gives the
    ``token_mask`` (say every behavior token hidden, to decode). In every case missing
    behavior and the spikes of forward bins are hidden as well, and NaN inputs become zeros
    behind the mask token. The spike loss scores every neuron of a hidden spike token and the
    held-out neurons (``config.n_heldout``, never read) in every bin.
    """

    modality = "spikes"

    def __init__(self, config, scheme_probs, ratio, *, n_forward=0):
        self.config = config
        self.scheme_probs = torch.as_tensor(scheme_probs, dtype=torch.float64)
        self.ratio = ratio
        self.n_forward = n_forward
        streams = config.streams
        self.per_bin = [not (name == "trial" or name.startswith("label")) for name in streams]
        self.stream_of_column = np.zeros(config.n_behavior, dtype=np.int64)
        for g, group in enumerate(config.behavior_groups):
            self.stream_of_column[list(group)] = 1 + g
        self.trial_stream = streams.index("trial") if config.n_trial else None
        self.label_streams = [streams.index(f"label{v}") for v in range(len(config.n_classes))]

    def draw(self, n, n_time, generator=None, device=None):
        """Scheme indices ``(n,)`` and token masks ``(n, n_time, n_streams)`` of ``n`` samples."""
        schemes = torch.multinomial(self.scheme_probs, n, replacement=True,
                                    generator=generator).to(device)
        return schemes, multitask_mask(schemes, n_time, self.per_bin, self.ratio,
                                       generator=generator, device=device)

    def fixed_mask(self, inputs, generator):
        spikes = inputs["spikes"]
        return self.draw(spikes.shape[0], spikes.shape[1], generator)[1]

    def missing(self, inputs):
        """Tokens always hidden, ``(n, time, n_streams)``: missing behavior and the spikes of
        the forward bins."""
        spikes = inputs["spikes"]
        n, n_time = spikes.shape[:2]
        missing = torch.zeros(n, n_time, len(self.per_bin), dtype=torch.bool,
                              device=spikes.device)
        if self.n_forward:
            missing[:, n_time - self.n_forward :, 0] = True
        behavior = inputs.get("behavior")
        for g, group in enumerate(self.config.behavior_groups):
            missing[..., 1 + g] = torch.isnan(behavior[..., list(group)]).any(-1)
        if self.trial_stream is not None:
            missing[..., self.trial_stream] = torch.isnan(inputs["trial"]).any(-1)[:, None]
        for v, stream in enumerate(self.label_streams):
            missing[..., stream] = (inputs["labels"][:, v] < 0)[:, None]
        return missing

    def __call__(self, inputs, targets, extra, *, training):
        spikes = inputs["spikes"]
        if not targets:  # inference: the caller's mask
            mask = inputs["token_mask"].bool()
        elif training or extra.get("valid_mask") is None:
            mask = self.draw(spikes.shape[0], spikes.shape[1], seeding.current(),
                             spikes.device)[1]
        else:
            mask = extra["valid_mask"].bool()
        mask = mask | self.missing(inputs)
        clean = dict(inputs, token_mask=mask)
        for name in ("behavior", "trial"):
            if name in inputs:
                clean[name] = torch.nan_to_num(inputs[name], nan=0.0)
        if "labels" in inputs:
            clean["labels"] = inputs["labels"].clamp_min(0)
        scored, clean_targets = {}, {}
        if targets:
            n_neurons = torch.as_tensor(self.config.n_neurons, device=spikes.device)
            column = torch.arange(spikes.shape[-1], device=spikes.device)[None]
            width = n_neurons[inputs["session"]][:, None]
            valid = column < width  # (n, neurons): the trial's session's own neurons
            heldout = column >= width - self.config.n_heldout
            scored["spikes"] = (mask[..., :1] | heldout[:, None, :]) & valid[:, None, :]
            clean_targets["spikes"] = targets["spikes"]
            if "behavior" in targets:
                target = targets["behavior"]
                columns = torch.as_tensor(self.stream_of_column, device=spikes.device)
                scored["behavior"] = mask[..., columns] & ~torch.isnan(target)
                clean_targets["behavior"] = torch.nan_to_num(target, nan=0.0)
            if "trial" in targets:
                target = targets["trial"]
                scored["trial"] = mask[:, 0, self.trial_stream][:, None] & ~torch.isnan(target)
                clean_targets["trial"] = torch.nan_to_num(target, nan=0.0)
            for v, stream in enumerate(self.label_streams):
                target = targets[f"label{v}"]
                scored[f"label{v}"] = mask[:, 0, stream] & (target >= 0)
                clean_targets[f"label{v}"] = target.clamp_min(0)
        return MaskedView(clean, clean_targets, scored)


#: the task metrics :class:`TaskMetrics` can select on
TASKS = ("decoding", "encoding")


class TaskMetrics(Selection):
    """NEDS's checkpoint selection, as its authors' trainer: the task metrics of the
    validation samples after every epoch.

    * ``valid_decoding``: every behavior token hidden, spikes visible (the decoding scheme);
      R2 of each per-bin behavior group (bins and trials pooled, channels averaged) and of the
      per-trial continuous variables, balanced accuracy of each categorical variable, averaged
      over the variables;
    * ``valid_encoding``: every spike token hidden, behavior visible (the encoding scheme);
      bits per spike of every neuron against its own mean rate, averaged over neurons (NEDS's
      encoding metric, :func:`~sklearn_blend.metrics.bits_per_spike_per_neuron`), per session,
      then over sessions weighted by their neurons.

    Both are over the trials' own bins (forward bins left out) and their observed values.
    ``tasks`` names the metrics whose mean is recorded as ``valid_task``, the score early
    stopping watches (higher is better); the epochs of the learning-rate warm-up are not
    selected. The passes draw nothing from the fit's random generators.

    Parameters
    ----------
    config : NedsConfig
    tasks : sequence of {"decoding", "encoding"}
    n_forward : int, default=0
        Forward bins at the end of every sample (left out of both metrics).
    """

    key = "valid_task"

    def __init__(self, config, tasks, *, n_forward=0):
        self.config = config
        self.tasks = tuple(tasks)
        self.n_forward = n_forward

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        passes = {task: {} for task in self.tasks}
        n_streams = len(self.config.streams)
        for inputs, targets in validation_batches(net, dataset_valid):
            n, n_time = inputs["spikes"].shape[:2]
            for task, collected in passes.items():
                mask = torch.zeros(n, n_time, n_streams, dtype=torch.bool,
                                   device=inputs["spikes"].device)
                if task == "decoding":
                    mask[..., 1:] = True
                else:
                    mask[..., 0] = True
                view = net.criterion_.masking(dict(inputs, token_mask=mask), {}, {},
                                              training=False)
                output = run_model(net.module_, view.inputs, "float32")
                collected.setdefault("session", []).append(inputs["session"].cpu())
                for name, value in output.predictions.items():
                    collected.setdefault(name, []).append(value.float().cpu())
                    collected.setdefault(f"target.{name}", []).append(
                        targets[name].float().cpu())
        scores = {}
        for task, collected in passes.items():
            collected = {name: torch.cat(parts).numpy() for name, parts in collected.items()}
            score = (self.decoding(collected) if task == "decoding"
                     else self.encoding(collected))
            net.history.record(f"valid_{task}", score)
            scores[task] = score
        # a task without a score here (no spikes, no observed behavior) is left out
        finite = [score for score in scores.values() if np.isfinite(score)]
        net.history.record(self.key, float(np.mean(finite)) if finite else float("nan"))

    def _window(self, values):
        return values[:, : values.shape[1] - self.n_forward]

    def decoding(self, collected):
        """The mean decoding score over the behavior variables (NaN when there is none)."""
        scores = []
        if "behavior" in collected:
            prediction = self._window(collected["behavior"])
            target = self._window(collected["target.behavior"])
            for group in self.config.behavior_groups:
                scores.append(BEHAVIOR.score(prediction[..., list(group)],
                                             target[..., list(group)]))
        if "trial" in collected:
            for k in range(collected["trial"].shape[-1]):
                scores.append(TRIAL.score(collected["trial"][:, k : k + 1],
                                          collected["target.trial"][:, k : k + 1]))
        for v in range(len(self.config.n_classes)):
            codes = collected[f"target.label{v}"].astype(np.int64)
            if (codes >= 0).any():
                scores.append(label_modality(v).score(collected[f"label{v}"], codes))
        return float(np.mean(scores)) if scores else float("nan")

    def encoding(self, collected):
        """NEDS's per-neuron bits per spike of the spikes from behavior alone."""
        rates = np.exp(self._window(collected["spikes"]).astype(np.float64))
        counts = self._window(collected["target.spikes"])
        sessions = collected["session"]
        total, weights = 0.0, 0
        for s, n_neurons in enumerate(self.config.n_neurons):
            rows = sessions == s
            if not rows.any() or not (counts[rows, :, :n_neurons] > 0).any():
                continue
            score = metrics.bits_per_spike_per_neuron(rates[rows, :, :n_neurons],
                                                      counts[rows, :, :n_neurons])
            total, weights = total + score * n_neurons, weights + n_neurons
        return total / weights if weights else float("nan")


class NedsModel(nn.Module):
    """A :class:`~sklearn_blend.models.NEDS` under the training core's model contract.

    ``forward(inputs)`` reads ``spikes``, ``behavior``, ``trial``, ``labels``, ``session`` and
    ``token_mask`` from the mapping and returns a
    :class:`~sklearn_blend.models.ModelOutput` with ``{spikes: log-rates, behavior, trial,
    label<v>: logits}``, the final spike tokens as latents and the spike tokens after every
    layer as features.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    @property
    def predicts(self):
        return tuple(neds_modalities(self.model.config))

    def feature_widths(self):
        return [self.model.config.hidden_size] * self.model.config.n_layers

    def forward(self, inputs):
        out = self.model(inputs["spikes"], inputs.get("behavior"), inputs.get("trial"),
                         inputs.get("labels"), session=inputs["session"],
                         token_mask=inputs["token_mask"])
        predictions = {"spikes": out.log_rates}
        if out.behavior is not None:
            predictions["behavior"] = out.behavior
        if out.trial is not None:
            predictions["trial"] = out.trial
        predictions.update({f"label{v}": logits for v, logits in enumerate(out.labels)})
        return ModelOutput(predictions, out.latents, out.features)


class NedsTeacherModel(nn.Module):
    """A fitted single-session NEDS as the teacher model of a BLEND student.

    It reads the student's batch: ``spikes`` ``(n, time, n_held_in)`` (the student's masked
    input, zero in hidden bins), ``hidden`` ``(n, time)`` (the bins the student's time-step masking hid) and ``behavior``
    ``(n, time, width)`` as :meth:`~sklearn_blend.NedsEstimator.encode_behavior` packs it:
    the per-bin continuous streams, then the per-trial continuous variables and the class
    codes of the categorical ones repeated over the bins (NaN / -1 where missing). The bins
    the student hid become hidden spike tokens (NEDS's mask token, as in its own training,
    rather than counts of zero); the last ``n_forward`` bins' spike tokens and missing behavior
    are hidden too. It predicts ``{"spikes": log-rates}`` of all neurons, with the spike
    tokens as latents and features.
    """

    def __init__(self, model, n_forward=0):
        super().__init__()
        self.model = model
        config = model.config
        self.masking = MultiTaskMasking(config, [1.0] * len(SCHEMES), 0.5, n_forward=n_forward)
        self.widths = (config.n_behavior, config.n_trial, len(config.n_classes))

    @property
    def predicts(self):
        return ("spikes",)

    def feature_widths(self):
        return [self.model.config.hidden_size] * self.model.config.n_layers

    def forward(self, inputs):
        spikes, packed = inputs["spikes"], inputs["behavior"]
        n, n_time = spikes.shape[:2]
        n_bin, n_trial, n_labels = self.widths
        parts = {"spikes": spikes, "session": torch.zeros(n, dtype=torch.long,
                                                          device=spikes.device)}
        if n_bin:
            parts["behavior"] = packed[..., :n_bin]
        if n_trial:
            parts["trial"] = packed[:, 0, n_bin : n_bin + n_trial]
        if n_labels:
            parts["labels"] = packed[:, 0, n_bin + n_trial :].round().long()
        mask = torch.zeros(n, n_time, len(self.masking.per_bin), dtype=torch.bool,
                           device=spikes.device)
        if inputs.get("hidden") is not None:
            mask[..., 0] = inputs["hidden"].bool()
        view = self.masking({**parts, "token_mask": mask}, {}, {}, training=False)
        out = self.model(view.inputs["spikes"], view.inputs.get("behavior"),
                         view.inputs.get("trial"), view.inputs.get("labels"),
                         session=parts["session"], token_mask=view.inputs["token_mask"])
        return ModelOutput({"spikes": out.log_rates}, out.latents, out.features)


class NedsBuilder:
    """Picklable recipe of a NEDS and its objective (seeded weights are drawn when called).

    Parameters
    ----------
    config : NedsConfig
    scheme_probs : sequence of 5 float
    mask_ratio : float
    mean_counts : list of ndarray
        Mean count per bin of each session's neurons, where the spike readouts start
        (``None`` for a session whose readout comes from ``start``).
    weights : dict of str to float, optional
        Weight of each modality's loss (default 1 each).
    precision : {"float32", "bfloat16"}
    start : NEDS, optional
        A fitted NEDS of the first sessions of ``config``: its weights are carried over
        (fine-tuning), the sessions added after them start fresh.
    frozen_sessions : sequence of int, default=()
        Sessions whose input and output maps and embedding do not train (those absent from
        the fine-tuning data).
    n_forward : int, default=0
        Forward bins at the end of every trial (see :class:`MultiTaskMasking`).
    """

    def __init__(self, config, scheme_probs, mask_ratio, mean_counts, *, weights=None,
                 precision="float32", start=None, frozen_sessions=(), n_forward=0):
        self.config = config
        self.n_forward = n_forward
        self.scheme_probs = scheme_probs
        self.mask_ratio = mask_ratio
        self.mean_counts = mean_counts
        self.weights = weights
        self.precision = precision
        self.start = start
        self.frozen_sessions = tuple(frozen_sessions)

    def __call__(self):
        network = NEDS(self.config)
        if self.start is not None:
            network.load_shared(self.start)
        network.init_output_bias(self.mean_counts)
        for s in self.frozen_sessions:
            for module in (network.spike_in[s], network.spike_out[s]):
                module.requires_grad_(False)
            network.session_embedding[s].requires_grad_(False)
        model = NedsModel(network)
        objective = Objective(
            MultiTaskMasking(self.config, self.scheme_probs, self.mask_ratio,
                             n_forward=self.n_forward),
            neds_modalities(self.config), student=model, precision=self.precision,
            weights=self.weights,
        )
        return model, objective


__all__ = ["MultiTaskMasking", "NedsBuilder", "NedsModel", "NedsTeacherModel", "SCHEMES",
           "TASKS", "TaskMetrics", "neds_modalities"]

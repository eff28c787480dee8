"""Training layer: the masked-modelling and distillation objectives, trained through skorch.

This is the only module the scikit-learn estimators use to touch PyTorch. It takes and returns
NumPy arrays and plain Python values; models come from :mod:`sklearn_blend.models`, losses from
:mod:`sklearn_blend.losses` and masks from :mod:`sklearn_blend.masking`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    GradientNormClipping,
    LRScheduler,
    PassthroughScoring,
)
from skorch.dataset import ValidSplit
from torch import nn

from .. import losses
from ..masking import apply_mask, interleaved_masks, random_timestep_mask, scored_entries
from ..models import (  # noqa: F401 (re-exported for the estimators)
    RESERVED_OPTIONS,
    ModelOutput,
    base_fingerprint,
    build_model,
    resolve_base,
)

#: fewest validation trials for early stopping; with fewer, training runs all ``max_epochs``
MIN_VALIDATION_TRIALS = 2
#: seeds handed to the training layer are drawn below this bound
MAX_SEED = np.iinfo(np.int32).max
#: gradient-norm clipping of every model
GRAD_CLIP = 1.0
#: ``precision=`` name -> dtype of the base model's autocast region (``None``: plain float32)
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}


def run_model(model, spikes, behavior=None, precision="float32"):
    """``model(spikes, behavior)`` in ``precision``; the :class:`ModelOutput` in float32.

    ``"bfloat16"`` runs the base model under :func:`torch.autocast` (matrix products in
    bfloat16, weights and their gradients kept in float32); its outputs are cast back to
    float32, so losses, metrics and everything after the model stay in float32.
    """
    dtype = PRECISIONS[precision]
    if dtype is None:
        return model(spikes, behavior)
    with torch.autocast(spikes.device.type, dtype=dtype):
        output = model(spikes, behavior)
    return ModelOutput(
        output.log_rates.float(),
        None if output.latents is None else output.latents.float(),
        [feature.float() for feature in output.features],
    )


def cpu_has_native_bfloat16():
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16 or AMX, via oneDNN)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _warn_if_bfloat16_is_emulated(precision, device):
    """Warn when bfloat16 training would run on a CPU that emulates it (much slower)."""
    if (precision == "bfloat16" and torch.device(device).type == "cpu"
            and not cpu_has_native_bfloat16()):
        warnings.warn(
            "precision='bfloat16' on a CPU without native bfloat16 instructions (AVX512-BF16 "
            "or AMX): matrix products are emulated and training is much slower than with "
            "precision='float32'.",
            UserWarning,
            stacklevel=2,
        )


class MaskedModeling(nn.Module):
    """Objective of a teacher or of a plain (no-distillation) model: masked Poisson loss.

    ``spikes`` are the model's inputs ``(batch, time, n_inputs)``: the held-in neurons, with
    ``n_forward`` all-zero bins appended for forward prediction; ``targets``
    ``(batch, time, n_outputs)`` are the counts of all neurons, held-out ones last. The loss
    scores masked input bins, every held-out entry and every forward bin
    (:func:`~sklearn_blend.masking.scored_entries`). In training mode a fresh random time-step
    mask is drawn for every batch; in evaluation mode the fixed ``valid_mask`` that comes with
    the data is used, so the validation loss is comparable from epoch to epoch. ``precision``
    is the base model's compute precision (:func:`run_model`); losses are float32.
    """

    def __init__(self, model, mask_ratio, n_forward=0, precision="float32"):
        super().__init__()
        self.model = model
        self.mask_ratio = mask_ratio
        self.n_forward = n_forward
        self.precision = precision

    def draw_mask(self, spikes, valid_mask):
        if self.training or valid_mask is None:
            n_trials, n_time = spikes.shape[:2]
            return random_timestep_mask(n_trials, n_time, self.mask_ratio, device=spikes.device)
        return valid_mask[..., None]

    def masked_loss(self, log_rates, spikes, targets, mask):
        scored = scored_entries(
            mask, spikes.shape[2], targets.shape[2], targets.shape[1] - self.n_forward
        )
        return losses.masked_poisson_loss(log_rates, targets, scored)

    def forward(self, spikes, targets, behavior=None, valid_mask=None):
        mask = self.draw_mask(spikes, valid_mask)
        output = run_model(self.model, apply_mask(spikes, mask), behavior, self.precision)
        mtm = self.masked_loss(output.log_rates, spikes, targets, mask)
        return {"loss": mtm, "mtm": mtm}


class Distillation(MaskedModeling):
    """Student objective: ``alpha * MTM + (1 - alpha) * distillation`` from a frozen teacher.

    The teacher sees the same masked spikes as the student, plus the unmasked behavior, and
    stays in evaluation mode, its outputs computed under :func:`torch.inference_mode` (they are
    constants of the loss). Validation (evaluation mode) scores the masked Poisson loss alone,
    so it skips the teacher. ``projections`` (feature strategy only) map each student layer to
    the teacher's width and are trained with the student.
    """

    def __init__(self, student, teacher, *, strategy, alpha, tau, mask_ratio, n_forward=0,
                 precision="float32"):
        super().__init__(student, mask_ratio, n_forward, precision)
        self.teacher = teacher.requires_grad_(False).eval()
        self.strategy = strategy
        self.alpha = alpha
        self.tau = tau
        self.projections = None
        if strategy == "feature":
            self.projections = _feature_projections(student, teacher)

    def train(self, mode=True):
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, spikes, targets, behavior=None, valid_mask=None):
        if not self.training:
            # validation scores the masked Poisson loss alone: the teacher is not needed
            return super().forward(spikes, targets, valid_mask=valid_mask)
        mask = self.draw_mask(spikes, valid_mask)
        masked = apply_mask(spikes, mask)
        student_output = run_model(self.model, masked, precision=self.precision)
        with torch.inference_mode():
            teacher_output = run_model(self.teacher, masked, behavior, self.precision)
        mtm = self.masked_loss(student_output.log_rates, spikes, targets, mask)
        distill = losses.distillation_loss(
            self.strategy, student_output, teacher_output, tau=self.tau,
            projections=self.projections,
        )
        loss = self.alpha * mtm + (1.0 - self.alpha) * distill
        return {"loss": loss, "mtm": mtm, "distill": distill}


def _feature_projections(student, teacher):
    """One learned linear map per aligned layer where student and teacher widths differ."""
    student_widths, teacher_widths = student.feature_widths(), teacher.feature_widths()
    if not student_widths or len(student_widths) != len(teacher_widths):
        raise ValueError(
            f"strategy='feature' aligns the layers student and teacher both return as "
            f"features; this base returns {len(student_widths)} (student) and "
            f"{len(teacher_widths)} (teacher). Return the same non-empty list of per-layer "
            "features from the base's forward, or choose another strategy."
        )
    return nn.ModuleList(
        None if width_in == width_out else nn.Linear(width_in, width_out)
        for width_in, width_out in zip(student_widths, teacher_widths)
    )


class ObjectiveNet(NeuralNet):
    """skorch net whose module computes its own loss terms.

    Training minimises ``loss``; validation reports the masked Poisson loss (``mtm``) alone, the
    quantity early stopping watches for teacher, baseline and student alike.
    """

    def get_loss(self, y_pred, y_true, X=None, training=False):
        prefix = "train" if training else "valid"
        for name in ("mtm", "distill"):
            if name in y_pred:
                self.history.record_batch(f"{prefix}_{name}", y_pred[name].item())
        return y_pred["loss"] if training else y_pred["mtm"]

    def get_all_learnable_params(self):
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param


class WarmupCosine:
    """Learning-rate factor: linear warm-up, then cosine decay to 0 (picklable)."""

    def __init__(self, warmup_steps, total_steps):
        self.warmup_steps = warmup_steps
        self.total_steps = max(total_steps, 1)

    def __call__(self, step):
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class EpochProgressBar(Callback):
    """One tqdm bar per training run, advanced each epoch, showing the validation loss."""

    def __init__(self, description):
        self.description = description

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(
            total=net.max_epochs, desc=self.description, leave=False, mininterval=1.0
        )

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        self.bar_.set_postfix(
            {k: f"{row[k]:.4f}" for k in ("train_loss", "valid_loss") if k in row}
        )
        self.bar_.update()

    def on_train_end(self, net, **kwargs):
        self.bar_.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("bar_", None)
        return state


@dataclass(frozen=True)
class TrainingConfig:
    """How a model is optimised (everything but its architecture and objective)."""

    max_epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_steps: int
    grad_clip: float
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    device: str
    verbose: int


def training_config(estimator, device, **overrides):
    """The :class:`TrainingConfig` of an estimator's parameters, with ``overrides`` (fields)."""
    config = TrainingConfig(
        max_epochs=estimator.max_epochs,
        batch_size=estimator.batch_size,
        lr=estimator.lr,
        weight_decay=estimator.weight_decay,
        warmup_steps=estimator.warmup_steps,
        grad_clip=GRAD_CLIP,
        early_stopping=estimator.early_stopping,
        validation_fraction=estimator.validation_fraction,
        n_iter_no_change=estimator.n_iter_no_change,
        device=device,
        verbose=estimator.verbose,
    )
    return dataclasses.replace(config, **overrides)


def _callbacks(config, n_train, use_validation, description, extra_scores):
    steps = math.ceil(n_train / config.batch_size) * config.max_epochs
    callbacks = [
        ("clip", GradientNormClipping(config.grad_clip)),
        (
            "schedule",
            LRScheduler(
                policy=torch.optim.lr_scheduler.LambdaLR,
                lr_lambda=WarmupCosine(config.warmup_steps, steps),
                step_every="batch",
            ),
        ),
    ]
    callbacks += [(name, PassthroughScoring(name, on_train=True)) for name in extra_scores]
    if use_validation:
        callbacks.append(
            (
                "early_stopping",
                EarlyStopping(patience=config.n_iter_no_change, threshold=0.0, load_best=True),
            )
        )
    if config.verbose == 1:
        callbacks.append(("progress", EpochProgressBar(description)))
    return callbacks


def train_objective(make_objective, spikes, targets, behavior, config, seed,
                    description="training"):
    """Build an objective with ``make_objective()`` and train it; return the fitted skorch net.

    Parameters
    ----------
    make_objective : callable
        Returns a :class:`MaskedModeling` (or subclass) module. Called under the seed, so the
        initial weights are reproducible. Exposes the ``mask_ratio`` and ``precision`` it
        trains with, as :class:`ObjectiveFactory` does.
    spikes : ndarray (n_trials, n_time, n_inputs), float32
        Model inputs: held-in counts, forward bins (if any) appended as zeros.
    targets : ndarray (n_trials, n_time, n_outputs), float32
        Counts of all neurons (held-out last) over window and forward bins.
    behavior : ndarray (n_trials, n_time, n_behavior) float32, or None
    config : TrainingConfig
    seed : int
        Seeds weights, masks, batch order, dropout and the validation split. On CPU the result
        is bit-for-bit reproducible. The global torch random state is left untouched.
    """
    _warn_if_bfloat16_is_emulated(make_objective.precision, config.device)
    n_trials, n_time = spikes.shape[:2]
    data = {"spikes": spikes, "targets": targets}
    if behavior is not None:
        data["behavior"] = behavior
    valid_generator = torch.Generator().manual_seed(seed)
    data["valid_mask"] = random_timestep_mask(
        n_trials, n_time, _mask_ratio_of(make_objective), generator=valid_generator
    )[..., 0].numpy()
    return fit_objective_net(make_objective, data, config, seed, description)


def fit_objective_net(make_objective, data, config, seed, description="training"):
    """Train the objective ``make_objective()`` on ``data`` with skorch; return the net.

    ``data`` is a dict of arrays with the samples on the first axis; each key is passed to the
    objective's ``forward`` by name. Holds out ``config.validation_fraction`` of the samples
    for early stopping (seeded split) when there are enough, otherwise trains all epochs with
    a warning. Weights, batch order, masks and dropout are seeded by ``seed``; the global
    torch random state is left untouched.
    """
    n_samples = len(next(iter(data.values())))
    n_valid = math.ceil(config.validation_fraction * n_samples)
    use_validation = config.early_stopping and (
        n_valid >= MIN_VALIDATION_TRIALS and n_samples - n_valid >= 1
    )
    if config.early_stopping and not use_validation:
        warnings.warn(
            f"early stopping needs at least {MIN_VALIDATION_TRIALS} validation samples; with "
            f"{n_samples} samples and validation_fraction={config.validation_fraction} the "
            f"model trains for all max_epochs={config.max_epochs} epochs instead.",
            UserWarning,
            stacklevel=4,
        )
    n_train = n_samples - n_valid if use_validation else n_samples
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        objective = make_objective()
        extra = ["train_mtm", "train_distill"] if hasattr(objective, "teacher") else []
        net = ObjectiveNet(
            module=objective,
            criterion=nn.Identity,
            optimizer=torch.optim.AdamW,
            lr=config.lr,
            optimizer__weight_decay=config.weight_decay,
            # one fused kernel per step instead of a Python loop over parameters (same update)
            optimizer__fused=torch.device(config.device).type in ("cpu", "cuda"),
            max_epochs=config.max_epochs,
            batch_size=config.batch_size,
            iterator_train__shuffle=True,
            train_split=(
                ValidSplit(config.validation_fraction, random_state=seed)
                if use_validation
                else None
            ),
            callbacks=_callbacks(config, n_train, use_validation, description, extra),
            device=config.device,
            verbose=int(config.verbose >= 2),
        )
        net.fit(data, y=None)
    return net


def _mask_ratio_of(make_objective):
    ratio = getattr(make_objective, "mask_ratio", None)
    if ratio is None:
        raise TypeError("make_objective must expose the mask_ratio it trains with")
    return ratio


class ObjectiveFactory:
    """Picklable recipe for an objective: base model config plus, for students, the teacher."""

    def __init__(self, model_config, mask_ratio, mean_counts, n_forward=0, teacher=None,
                 precision="float32", **distill):
        self.model_config = model_config
        self.mask_ratio = mask_ratio
        self.mean_counts = mean_counts
        self.n_forward = n_forward
        self.teacher = teacher
        self.precision = precision
        self.distill = distill

    def __call__(self):
        model = build_model(**self.model_config)
        model.init_output_bias(self.mean_counts)
        if self.teacher is None:
            return MaskedModeling(model, self.mask_ratio, self.n_forward, self.precision)
        return Distillation(
            model, self.teacher, mask_ratio=self.mask_ratio, n_forward=self.n_forward,
            precision=self.precision, **self.distill,
        )


def resolve_device(device):
    """Check that ``device`` names an available PyTorch device; return it as a string."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}.")
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device={device!r} is not a PyTorch device: {error}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was requested but MPS is not available.")
    return str(parsed)


def trained_model(net):
    """The base model inside a fitted net (the student, for a distillation objective)."""
    return net.module_.model


def _forward(model, spikes, behavior, hidden_bins, batch_size, device):
    model.eval()
    log_rates, latents = [], []
    with torch.inference_mode():
        for start in range(0, len(spikes), batch_size):
            x = torch.as_tensor(spikes[start : start + batch_size], device=device)
            if hidden_bins is not None:
                x = apply_mask(x, torch.as_tensor(hidden_bins, device=device)[None, :, None])
            b = None
            if behavior is not None:
                b = torch.as_tensor(behavior[start : start + batch_size], device=device)
            output = model(x, b)
            log_rates.append(output.log_rates.float().cpu().numpy())
            if output.latents is not None:
                latents.append(output.latents.float().cpu().numpy())
    return np.concatenate(log_rates), (np.concatenate(latents) if latents else None)


def predict(model, spikes, behavior=None, *, mask_ratio=None, n_window=None, batch_size=64,
            device="cpu"):
    """Run ``model`` in evaluation mode; return ``(log_rates, latents)`` as float32 NumPy arrays.

    ``spikes`` are model inputs ``(n_trials, n_time, n_inputs)``; the first ``n_window`` bins
    are observed (default: all), the rest are forward bins. With ``mask_ratio=None`` the model
    sees the whole input in one pass. With a ratio, the outputs of the input neurons in each
    observed bin, and the latents there, come from a pass in which that bin was hidden, as in
    training: interleaved masks (:func:`~sklearn_blend.masking.interleaved_masks`) hide about
    ``mask_ratio`` of the bins each and every bin once, so no rate contains its own bin's spikes.
    Held-out neurons and forward bins, never input, come from the full pass. ``latents`` is
    ``None`` for a base that returns none. It always computes in float32 (whatever precision
    the model was trained in).
    """
    log_rates, latents = _forward(model, spikes, behavior, None, batch_size, device)
    if mask_ratio is None:
        return log_rates, latents
    n_time, n_inputs = spikes.shape[1:]
    n_window = n_time if n_window is None else n_window
    for hidden in interleaved_masks(n_window, mask_ratio).numpy():
        hidden = np.concatenate([hidden, np.zeros(n_time - n_window, dtype=bool)])
        pass_log_rates, pass_latents = _forward(
            model, spikes, behavior, hidden, batch_size, device
        )
        log_rates[:, hidden, :n_inputs] = pass_log_rates[:, hidden, :n_inputs]
        if latents is not None:
            latents[:, hidden] = pass_latents[:, hidden]
    return log_rates, latents

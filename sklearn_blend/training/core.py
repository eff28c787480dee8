"""The training core: one skorch net trains and runs every model of the package.

The model being trained is the net's ``module_`` (a :class:`~sklearn_blend.models.BaseAdapter`
for trials, a :class:`~sklearn_blend.training.neurons.NeuronModel` for per-neuron sequences);
the objective is its criterion (:class:`~sklearn_blend.training.objective.Objective`: masked
reconstruction of modalities plus, for a student, distillation from a frozen teacher). skorch
hooks do the rest: :meth:`ObjectiveNet.infer` masks a batch and runs the model,
:meth:`ObjectiveNet.get_loss` asks the criterion for its terms and logs them, callbacks clip
gradients, schedule the learning rate and stop early on the validation term named by
``monitor``. Only parameters that require gradients reach the optimizer (the criterion's
strategy may own some; its frozen teacher owns none). Every random draw of a fit comes from
one seeded stream (:mod:`sklearn_blend.seeding`): its own generator where the model allows
it, so that seeded fits in threads are reproducible. Precision,
device, gradient clipping and seeding are set here for every estimator, and :func:`predict` is
the one inference path (masked interleaved inference included).

The estimators reach PyTorch only through this package; arrays in and out are NumPy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    GradientNormClipping,
    LRScheduler,
    PassthroughScoring,
)
from skorch.dataset import ValidSplit
from skorch.utils import to_tensor
from torch.utils.data import DataLoader

from .. import seeding
from ..masking import interleaved_masks
from ..models import (  # noqa: F401 (re-exported for the estimators)
    RESERVED_OPTIONS,
    base_fingerprint,
    build_model,
    resolve_base,
)
from .net import ObjectiveNet
from .objective import (  # noqa: F401 (re-exported for the estimators)
    MASKINGS,
    PRECISIONS,
    Objective,
    TimestepMasking,
    pack,
    run_model,
    unpack,
    warn_if_bfloat16_is_emulated,
)

#: fewest validation samples for early stopping; with fewer, training runs all ``max_epochs``
MIN_VALIDATION_TRIALS = 2
#: seeds handed to the training core are drawn below this bound
MAX_SEED = np.iinfo(np.int32).max
#: gradient-norm clipping of every model
GRAD_CLIP = 1.0


class StopEarly(EarlyStopping):
    """skorch's ``EarlyStopping``, telling the net when it is the one that stops training (it
    stops by raising ``KeyboardInterrupt``, as a user's Ctrl-C does). The first
    ``skip_epochs`` epochs (the learning-rate warm-up, where a selection asks for it) are
    neither candidates for the best weights nor count toward the patience."""

    def __init__(self, *args, skip_epochs=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_epochs = skip_epochs

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) <= self.skip_epochs:
            return
        try:
            super().on_epoch_end(net, **kwargs)
        except KeyboardInterrupt:
            net.stopped_early_ = True
            raise


def validation_batches(net, dataset):
    """``(inputs, targets)`` of each batch of ``dataset`` (the validation samples) on the net's
    device, with its model in evaluation mode and no gradients: what a callback that scores
    the validation samples its own way iterates over. The loader has its own generator
    (creating an iterator draws a seed from it), so the pass draws nothing from the fit's
    random generators and a fit follows the same random stream with or without it."""
    net.module_.eval()
    loader = DataLoader(dataset, batch_size=net.batch_size, generator=torch.Generator())
    with torch.inference_mode():
        for batch, _ in loader:
            inputs, targets, _ = unpack(to_tensor(batch, device=net.batch_device()))
            yield inputs, targets


class HeldoutLoss(Callback):
    """Records ``valid_heldout`` each epoch: the reconstruction loss of the channels the model
    never reads (NLB's held-out neurons), over the observed bins of the validation samples,
    with every input bin visible, as co-bps reads them. Early stopping on it selects the epoch
    whose held-out rates are best (the forward bins are not watched). Its pass over the
    validation samples draws nothing from the fit's random generators, so a fit stopping on it
    follows the same random stream as one stopping on the masked loss."""

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        masking = net.criterion_.masking
        name = masking.modality
        modality = net.criterion_.modalities[name]
        total, count = 0.0, 0
        for inputs, targets in validation_batches(net, dataset_valid):
            target = targets[name]
            n_inputs = inputs[name].shape[-1]
            n_window = target.shape[1] - masking.n_forward
            output = run_model(net.module_, inputs, "float32")
            prediction = output.predictions[name][:, :n_window, n_inputs:]
            loss = modality.loss(prediction.float(), target[:, :n_window, n_inputs:])
            total += float(loss) * len(target)
            count += len(target)
        net.history.record("valid_heldout", total / max(count, 1))


class Selection(Callback):
    """What early stopping may watch besides the validation loss: a callback that records
    ``key`` in the history at the end of every epoch (a task metric of the validation
    samples, say), ``lower_is_better`` saying its direction. With ``after_warmup`` the epochs
    of the learning-rate warm-up are neither selected nor count toward the patience. A
    subclass computes the score (:class:`~sklearn_blend.training.neds.TaskMetrics`)."""

    key = "valid_score"
    lower_is_better = False
    after_warmup = True


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

        # disable=None: tqdm's convention, no bar when the output is not a terminal (a log)
        self.bar_ = tqdm(
            total=net.max_epochs, desc=self.description, leave=False, mininterval=1.0,
            disable=None,
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
    #: the objective's term that validation reports (``valid_loss``)
    monitor: str = "recon"
    #: what early stopping watches: ``"masked"`` (the ``monitor`` term), ``"heldout"`` (the
    #: loss of the never-input channels of the validation samples, read with full input) or a
    #: :class:`Selection` (a score it records, a task metric)
    stop_on: object = "masked"
    #: ``None`` (one process) or ``"accelerate"`` (data-parallel over the processes that
    #: ``accelerate launch`` or ``torchrun`` started: :mod:`~sklearn_blend.training.distributed`)
    distributed: str | None = None
    #: patience in optimisation steps instead of ``n_iter_no_change`` epochs: the epochs it
    #: spans, rounded up (``None``: ``n_iter_no_change``)
    patience_steps: int | None = None


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
        stop_on=getattr(estimator, "early_stopping_on", "masked"),
        distributed=getattr(estimator, "distributed", None),
        patience_steps=getattr(estimator, "patience_steps", None),
    )
    return dataclasses.replace(config, **overrides)


def _callbacks(config, n_train, use_validation, description, terms):
    per_epoch = math.ceil(n_train / config.batch_size)
    steps = per_epoch * config.max_epochs
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
    # every term of the objective, averaged per epoch: train_<term> and valid_<term>
    callbacks += [(f"train_{name}", PassthroughScoring(f"train_{name}", on_train=True))
                  for name in terms["train"]]
    if use_validation:
        callbacks += [(f"valid_{name}", PassthroughScoring(f"valid_{name}"))
                      for name in terms["valid"]]
        watched, lower_is_better, skip = "valid_loss", True, 0
        if config.stop_on == "heldout":
            callbacks.append(("valid_heldout", HeldoutLoss()))
            watched = "valid_heldout"
        elif isinstance(config.stop_on, Selection):
            selection = config.stop_on
            callbacks.append((selection.key, selection))
            watched, lower_is_better = selection.key, selection.lower_is_better
            if selection.after_warmup:  # epochs whose steps all fall in the warm-up
                skip = config.warmup_steps // per_epoch
        patience = (config.n_iter_no_change if config.patience_steps is None
                    else math.ceil(config.patience_steps / per_epoch))
        callbacks.append(
            ("early_stopping",
             StopEarly(monitor=watched, patience=patience, threshold=0.0,
                       lower_is_better=lower_is_better, load_best=True, skip_epochs=skip))
        )
    if config.verbose == 1:
        callbacks.append(("progress", EpochProgressBar(description)))
    return callbacks


def fit_net(build, data, config, seed, description="training"):
    """Train the ``(model, objective) = build()`` pair on ``data`` with skorch; return the net.

    Parameters
    ----------
    build : callable
        Returns the model (the net's module) and its :class:`Objective` (the criterion).
        Called under the seed, so initial weights are reproducible.
    data : dict of arrays
        A flat batch dict (:func:`~sklearn_blend.training.objective.pack`) with the samples on
        the first axis. A seeded ``valid_mask`` from the objective's masking scheme is added,
        so the validation loss is comparable from epoch to epoch.
    config : TrainingConfig
    seed : int
        Seeds weights, masks, batch order, dropout and the validation split. On CPU the result
        is bit-for-bit reproducible. The global torch random state is left untouched.

    Holds out ``config.validation_fraction`` of the samples for early stopping (seeded split)
    when there are enough, otherwise trains all epochs with a warning.
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
    # the initial weights draw from torch's global generator: build under the lock, seeded,
    # and carry on from the state the build left (the stream of one seeded global generator)
    with seeding.GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, objective = build()
        state = torch.get_rng_state()
    if config.monitor not in objective.term_names()["valid"]:
        raise ValueError(
            f"monitor={config.monitor!r} names no term of this objective; its validation "
            f"terms are {objective.term_names()['valid']}."
        )
    warn_if_bfloat16_is_emulated(objective.precision, config.device)
    inputs, targets, _ = unpack(data)
    if not isinstance(config.stop_on, Selection) and config.stop_on not in ("masked",
                                                                             "heldout"):
        raise ValueError(f"early_stopping_on must be 'masked' or 'heldout', got "
                         f"{config.stop_on!r}.")
    name = getattr(objective.masking, "modality", None)
    if config.stop_on == "heldout" and (
        not isinstance(objective.masking, TimestepMasking) or name not in targets
        or targets[name].shape[-1] <= inputs[name].shape[-1]
    ):
        raise ValueError(
            "early_stopping_on='heldout' watches the held-out neurons of the validation "
            "trials, and this model has none: set n_heldout > 0 (the held-out neurons last in "
            "X) or early_stopping_on='masked'."
        )
    data = dict(data, valid_mask=objective.masking.fixed_mask(
        inputs, torch.Generator().manual_seed(seed)).numpy())
    own_generator = (torch.device(config.device).type == "cpu"
                     and seeding.draws_from_fit_generator(model))
    with contextlib.ExitStack() as stack:
        if own_generator:  # masks, dropout and batch order draw from this fit's generator
            generator = torch.Generator()
            generator.set_state(state)
            stack.enter_context(seeding.using(generator))
        else:  # the model draws from the global generator: one such fit at a time
            stack.enter_context(seeding.GLOBAL_RNG_LOCK)
            stack.enter_context(torch.random.fork_rng(devices=[]))
            torch.set_rng_state(state)
        net_class, placement = ObjectiveNet, {"device": config.device}
        if config.distributed == "accelerate":
            from . import distributed

            net_class = distributed.AcceleratedObjectiveNet
            placement = distributed.placement(config)
        net = net_class(
            **_net_arguments(model, objective, config, description),
            train_split=(
                ValidSplit(config.validation_fraction, random_state=seed)
                if use_validation
                else None
            ),
            callbacks=_callbacks(config, n_train, use_validation, description,
                                 objective.term_names()),
            **placement,
        )
        net.fit(data, y=None)
        if config.distributed is not None:
            net.release()
    if net.interrupted_:
        # never return (and so never cache or report) a model cut short by an interrupt
        raise KeyboardInterrupt(f"training of the {description} was interrupted in epoch "
                                f"{len(net.history)}")
    return net


def _net_arguments(model, objective, config, description):
    """The arguments of the net of ``model`` and ``objective`` that training and loading share
    (all but the validation split, the callbacks and the device placement)."""
    return dict(
        module=model,
        criterion=objective,
        optimizer=torch.optim.AdamW,
        lr=config.lr,
        optimizer__weight_decay=config.weight_decay,
        # one fused kernel per step instead of a Python loop over parameters (same update)
        optimizer__fused=torch.device(config.device).type in ("cpu", "cuda"),
        max_epochs=config.max_epochs,
        batch_size=config.batch_size,
        iterator_train__shuffle=True,
        verbose=int(config.verbose >= 2),
        monitor=config.monitor,
        description=description,
    )


def initialized_net(build, config, description="model"):
    """An initialized, untrained net of ``(model, objective) = build()`` on ``config.device``.

    The net :func:`fit_net` would train, made with the same arguments (one process, no
    validation split, no training callbacks), for loading fitted weights into: a saved model
    (:mod:`sklearn_blend.persistence`) is rebuilt this way, skorch's recommended path
    (re-create the net, ``initialize()``, load the parameters). The initial weights ``build``
    draws are thrown away by the load; torch's global random state is left as it was.
    """
    with seeding.GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        model, objective = build()
    net = ObjectiveNet(**_net_arguments(model, objective, config, description),
                       train_split=None, device=config.device)
    return net.initialize()


class TrialModelBuilder:
    """Picklable recipe of a trial model and its objective (teacher, plain model or student).

    Builds the base model of ``model_config`` (for counts, its readout started at the log mean
    counts ``mean_counts``), then the :class:`Objective`: masked time-step modelling of the
    model's modality (``model_config["modality"]``, default spikes) with that modality's
    likelihood and, with a ``teacher``, distillation by ``strategy`` (a
    :class:`~sklearn_blend.distill.Strategy`).
    """

    def __init__(self, model_config, mask_ratio, mean_counts, *, modalities, n_forward=0,
                 teacher=None, strategy=None, alpha=1.0, precision="float32"):
        self.model_config = model_config
        self.mask_ratio = mask_ratio
        self.mean_counts = mean_counts
        self.modalities = modalities
        self.n_forward = n_forward
        self.teacher = teacher
        self.strategy = strategy
        self.alpha = alpha
        self.precision = precision

    def __call__(self):
        model = build_model(**self.model_config)
        self.modalities[model.modality].init_readout(model, self.mean_counts)
        masking = MASKINGS[resolve_base(self.model_config["base"]).masking]
        objective = Objective(
            masking(self.mask_ratio, modality=model.modality, n_forward=self.n_forward),
            self.modalities,
            teacher=self.teacher, strategy=self.strategy, student=model, alpha=self.alpha,
            precision=self.precision,
        )
        return model, objective


def resolve_device(device):
    """The PyTorch device that ``device`` names, checked to be available here, as a string.

    ``"cpu"``, ``"cuda"`` (the current CUDA device), ``"cuda:N"`` (the N-th), ``"mps"``
    (Apple silicon) or ``"auto"``: ``"cuda"`` where CUDA is available, else ``"mps"`` where
    MPS is, else ``"cpu"`` (resolved on the machine that fits, so one setting serves workers
    with and without a GPU). A device this machine lacks is a ``ValueError`` naming it.
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu', 'cuda', 'cuda:0', 'mps' or "
                        f"'auto', got {device!r}.")
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device={device!r} is not a PyTorch device (use 'cpu', 'cuda', "
                         f"'cuda:N', 'mps' or 'auto'): {error}") from None
    if parsed.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r} is no device to train and predict on; use 'cpu', "
                         "'cuda', 'cuda:N', 'mps' or 'auto'.")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available on "
                             "this machine; use device='cpu', or device='auto' to take a GPU "
                             "only where there is one.")
        n_devices = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= n_devices:
            raise ValueError(f"device={device!r} was requested but this machine has "
                             f"{n_devices} CUDA device(s) (cuda:0 to cuda:{n_devices - 1}).")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was requested but MPS is not available on this "
                         "machine; use device='cpu' or device='auto'.")
    return str(parsed)


def trained_model(net):
    """The model a fitted net trained (the student, for a distillation objective)."""
    return net.module_


def _forward(net, inputs, hidden, batch_size):
    """Predictions (NumPy, float32) of every batch of ``inputs``; ``hidden`` bins masked."""
    predictions, latents = {}, []
    net.module_.eval()
    n_samples = len(next(iter(inputs.values())))
    with torch.inference_mode():
        for start in range(0, n_samples, batch_size):
            batch = {k: v[start : start + batch_size] for k, v in inputs.items()}
            if hidden is not None:
                n_batch = len(next(iter(batch.values())))
                batch["hidden"] = np.repeat(hidden[None], n_batch, axis=0)
            output, _ = net.infer(batch, precision="float32")
            for name, value in output.predictions.items():
                predictions.setdefault(name, []).append(value.float().cpu().numpy())
            if output.latents is not None:
                latents.append(output.latents.float().cpu().numpy())
    return ({name: np.concatenate(parts) for name, parts in predictions.items()},
            np.concatenate(latents) if latents else None)


def predict(net, inputs, *, mask_ratio=None, n_window=None, batch_size=64):
    """Run a fitted net's model in evaluation mode: ``(predictions, latents)`` as NumPy.

    ``inputs`` maps modalities to arrays ``(n_trials, n_time, channels)`` (spikes: the model's
    input neurons; behavior for a teacher); ``predictions`` maps each predicted modality to
    ``(n_trials, n_time, channels)`` in prediction units (log-rates for spikes). The first
    ``n_window`` bins are observed (default: all), the rest are forward bins. With
    ``mask_ratio=None`` the model sees the whole input in one pass. With a ratio, the outputs
    of the input channels in each observed bin, and the latents there, come from a pass in
    which that bin was hidden, as in training: interleaved masks
    (:func:`~sklearn_blend.masking.interleaved_masks`) hide about ``mask_ratio`` of the bins
    each and every bin once, so no prediction contains its own bin's input. Channels never
    input (held-out neurons) and forward bins come from the full pass. ``latents`` is ``None``
    for a model that returns none. It always computes in float32.
    """
    data = pack(inputs)
    predictions, latents = _forward(net, data, None, batch_size)
    if mask_ratio is not None:
        _interleave(net, data, inputs, predictions, latents, mask_ratio, n_window, batch_size)
    for name, value in [*predictions.items(), ("latents", latents)]:
        if value is not None and not np.isfinite(value).all():
            raise ValueError(
                f"the {net.description} predicts non-finite {name} for these inputs; check "
                "them for extreme values (such as counts far above those seen in fit)."
            )
    return predictions, latents


def _interleave(net, data, inputs, predictions, latents, mask_ratio, n_window, batch_size):
    """Replace the input channels' predictions (and latents) of every observed bin by those of
    a pass in which that bin was hidden (interleaved masks), in place."""
    masked = net.criterion_.masking.modality
    n_time, n_inputs = inputs[masked].shape[1:]
    n_window = n_time if n_window is None else n_window
    for hidden in interleaved_masks(n_window, mask_ratio).numpy():
        hidden = np.concatenate([hidden, np.zeros(n_time - n_window, dtype=bool)])
        pass_predictions, pass_latents = _forward(net, data, hidden, batch_size)
        predictions[masked][:, hidden, :n_inputs] = pass_predictions[masked][:, hidden, :n_inputs]
        if latents is not None:
            latents[:, hidden] = pass_latents[:, hidden]

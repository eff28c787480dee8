"""Data-parallel training of one model over several processes (GPUs or nodes) with Hugging Face
``accelerate``, through skorch's :class:`~skorch.hf.AccelerateMixin`.

An estimator fitted with ``distributed="accelerate"`` trains its net as
:class:`AcceleratedObjectiveNet`: the same :class:`~sklearn_blend.training.core.ObjectiveNet`
(masking, objective, callbacks), with the model, the objective, the optimizer, the learning-rate
schedule and the data loaders prepared by an :class:`accelerate.Accelerator`. Started by
``accelerate launch`` or ``torchrun``, every process runs the same script on the same data:
the seeded sampler draws the same batch order in every process, accelerate hands each process
its share of every batch, and gradients are averaged across processes (PyTorch's
DistributedDataParallel). The validation loss is averaged across processes too, so early
stopping picks the same epoch everywhere. Started as a plain ``python`` process it is a single
process (accelerate's CPU or single-GPU mode).

After training the model is unwrapped and the accelerator is dropped from the fitted net, so a
fitted estimator pickles, saves and predicts like any other.
"""

from __future__ import annotations

import torch
from skorch.dataset import unpack_data
from skorch.hf import AccelerateMixin

from .net import ObjectiveNet


def make_accelerator(device):
    """An :class:`accelerate.Accelerator` for a fit on ``device`` (``"cpu"`` forces the CPU;
    otherwise accelerate places each process on its own GPU). Mixed precision stays with the
    package's own ``precision`` (autocast), so accelerate's is off."""
    try:
        from accelerate import Accelerator
    except ImportError as error:
        raise ImportError(
            'distributed="accelerate" needs Hugging Face accelerate: pip install '
            '"sklearn-blend[accelerate]".'
        ) from error
    return Accelerator(cpu=torch.device(device).type == "cpu", mixed_precision="no")


def placement(config):
    """The keyword arguments that put an :class:`AcceleratedObjectiveNet` of ``config`` (a
    :class:`~sklearn_blend.training.core.TrainingConfig`) in accelerate's hands: its
    accelerator, no device of skorch's own, and the epoch table (``verbose=2``) printed by the
    main process only."""
    accelerator = make_accelerator(config.device)
    # unwrapped in release(), after the callbacks' on_train_end (early stopping's best weights
    # are loaded into the model as it was wrapped when they were saved)
    return {"device": None, "accelerator": accelerator, "unwrap_after_train": False,
            "callbacks__print_log__sink": accelerator.print if config.verbose >= 2 else print}


class AcceleratedObjectiveNet(AccelerateMixin, ObjectiveNet):
    """:class:`~sklearn_blend.training.core.ObjectiveNet` trained through ``accelerate``.

    Differences from the plain net: batches are moved to the accelerator's device (the
    process's own GPU, or the CPU); the validation loss is averaged across processes before
    skorch records it (every process then stops early at the same epoch and keeps the same best
    weights); evaluation returns the model's output as is (skorch's mixin would gather it across
    processes for scoring, which the objective's own terms make unnecessary). Once fitted,
    :meth:`release` drops the accelerator (the net then pickles, and predicts on the device
    the model trained on).
    """

    def release(self):
        """After training: unwrap the model and the objective, keep the device the model is on,
        replace accelerate's optimizer wrapper by a plain optimizer with the same state, end
        the finished learning-rate schedule (it holds the wrapper's ``step``) and drop the
        accelerator."""
        self._unwrap_accelerator()
        device = self.accelerator.device  # "cpu:0" in a multi-process CPU run: plain "cpu"
        self.device = "cpu" if device.type == "cpu" else str(device)
        state = self.optimizer_.state_dict()
        self._initialize_optimizer()
        self.optimizer_.load_state_dict(state)
        for _, callback in self.callbacks_:
            if hasattr(callback, "lr_scheduler_"):
                callback.lr_scheduler_ = None
            if getattr(callback, "sink", None) is not None:
                callback.sink = print
        self.callbacks__print_log__sink = print
        self.accelerator = None
        return self

    def _initialize_accelerator(self):
        # a criterion without trainable parameters (masked reconstruction, a frozen teacher)
        # is not prepared: DistributedDataParallel refuses a module with nothing to train
        if self._wrapped_with_accelerator:
            return self
        frozen = {}
        for name in self._criteria:
            criterion = getattr(self, name + "_")
            if isinstance(criterion, torch.nn.Module) and not any(
                    p.requires_grad for p in criterion.parameters()):
                frozen[name] = criterion
                setattr(self, name + "_", None)
        super()._initialize_accelerator()
        for name, criterion in frozen.items():
            setattr(self, name + "_", criterion.to(self.accelerator.device))
        return self

    def batch_device(self):
        accelerator = getattr(self, "accelerator", None)
        return self.device if accelerator is None else accelerator.device

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        accelerator = getattr(self, "accelerator", None)
        if not training and accelerator is not None and accelerator.num_processes > 1:
            loss = accelerator.reduce(loss.detach(), reduction="mean")
        return loss

    def evaluation_step(self, batch, training=False):
        self.check_is_fitted()
        x, _ = unpack_data(batch)
        with torch.set_grad_enabled(training):
            self._set_training(training)
            return self.infer(x)


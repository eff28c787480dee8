"""The skorch net of the package: the model is ``module_``, the objective its ``criterion_``.

:class:`ObjectiveNet` is what every model trains and predicts in (:mod:`.core` builds and fits
it; :mod:`.distributed` derives its data-parallel form).
"""

from __future__ import annotations

import math

from skorch import NeuralNet
from skorch.utils import to_tensor
from torch.utils.data import DataLoader

from .. import seeding
from .objective import precomputed_outputs, run_model, unpack


class ObjectiveNet(NeuralNet):
    """skorch net of the package: the model is ``module_``, the objective its ``criterion_``.

    ``infer`` masks the batch with the criterion's masking scheme and runs the model (in the
    criterion's precision while fitting, in float32 for inference); ``get_loss`` returns the
    criterion's ``"loss"`` in training and, in validation, the term named by ``monitor``
    (default ``"recon"``: masked reconstruction, the quantity early stopping watches for
    teacher, baseline and student alike), which skorch records as ``valid_loss``; every term
    is logged as ``train_<term>`` / ``valid_<term>``.
    """

    #: pickled through skorch's device mapping (a net fitted on a GPU loads on a machine without
    #: one): besides ``module_``, ``criterion_`` and ``optimizer_``, the model and objective
    #: instances given as ``module`` and ``criterion`` (the same objects) and the callbacks
    #: (the scheduler holds the optimizer; early stopping the best weights)
    cuda_dependent_attributes_ = ["module", "criterion", "callbacks"]

    def __init__(self, module, criterion, *, monitor="recon", description="model", **kwargs):
        super().__init__(module, criterion, **kwargs)
        self.monitor = monitor
        self.description = description

    def fit_loop(self, X, y=None, **fit_params):
        # skorch's partial_fit swallows KeyboardInterrupt, which its EarlyStopping also raises
        # to stop; remember a real interrupt so that fit_net re-raises it
        self.interrupted_ = self.stopped_early_ = False
        try:
            return super().fit_loop(X, y, **fit_params)
        except KeyboardInterrupt:
            self.interrupted_ = not self.stopped_early_
            raise

    def get_iterator(self, dataset, training=False):
        """skorch's data loader, drawing from the fit's own generator when there is one
        (:mod:`sklearn_blend.seeding`): the same batches as from torch's global generator."""
        generator = seeding.current()
        if generator is None:
            return super().get_iterator(dataset, training=training)
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        batch_size = kwargs.pop("batch_size", self.batch_size)
        if kwargs.pop("shuffle", False):
            kwargs["sampler"] = seeding.ReplaySampler(len(dataset), generator)
        return DataLoader(dataset, batch_size=batch_size, generator=generator, **kwargs)

    def batch_device(self):
        """Where batches go: the net's device (a data-parallel net: its process's device)."""
        return self.device

    def infer(self, x, precision=None, **fit_params):
        inputs, targets, extra = unpack(to_tensor(x, device=self.batch_device()))
        view = self.criterion_.masking(inputs, targets, extra, training=self.module_.training)
        view = view._replace(teacher=precomputed_outputs(extra))
        precision = self.criterion_.precision if precision is None else precision
        return run_model(self.module_, view.inputs, precision), view

    def get_loss(self, y_pred, y_true, X=None, training=False):
        output, view = y_pred
        terms = self.criterion_(output, view)
        prefix = "train" if training else "valid"
        for name, value in terms.items():
            value = value.item()
            if not math.isfinite(value):
                raise ValueError(
                    f"training of the {self.description} diverged: its {prefix} {name} "
                    f"became {value} in epoch {len(self.history)}. Lower lr (now "
                    f"{self.lr:g}), check the inputs for extreme values (counts of 1e30, "
                    "behavior far from its usual range), or train in precision='float32'."
                )
            if name != "loss":
                self.history.record_batch(f"{prefix}_{name}", value)
        return terms["loss"] if training else terms[self.monitor]

    def get_all_learnable_params(self):
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

"""Modalities as data: what a signal is, and everything that follows from it.

A :class:`Modality` says how arrays of one kind of signal are validated, how they are encoded
for a model (with an inverse, so predictions come back in the user's units), which
reconstruction likelihood a model of it is trained with, and how predictions of it are scored.
Models read and predict mappings keyed by modality name; the training core
(:mod:`sklearn_blend.training.core`) looks up each predicted modality's loss here. BLEND is then
a student that reads ``{spikes}`` and predicts ``{spikes}``, distilled from a teacher that reads
``{spikes, behavior}`` and predicts ``{spikes}``.

Kinds and their likelihoods:

* ``"counts"`` (spikes, deconvolved events): non-negative; the model predicts log-rates; Poisson
  negative log-likelihood; scored in bits per spike.
* ``"continuous"`` (LFP, calcium fluorescence, continuous behavior): any sign; z-scored with
  training statistics; Gaussian likelihood with unit variance, i.e. mean squared error; scored
  by R2.
* ``"categorical"`` (cell types, trial conditions): integer labels; the model predicts logits;
  cross-entropy; scored by accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import losses
from .data.validation import check_trials

#: modality kind -> the likelihood its reconstruction loss is
LIKELIHOODS = {"counts": "poisson", "continuous": "gaussian", "categorical": "categorical"}


class Standardizer:
    """Per-channel z-scoring of ``(n_trials, n_time, n_channels)`` arrays, NaN-aware.

    ``fit`` learns each channel's mean and standard deviation over trials and bins (a constant
    channel gets scale 1); ``transform`` and ``inverse_transform`` map to and from model units.
    """

    def fit(self, array):
        flat = np.asarray(array, dtype=np.float64).reshape(-1, np.shape(array)[-1])
        self.mean_ = np.nanmean(flat, axis=0)
        scale = np.nanstd(flat, axis=0)
        self.scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        self.mean_ = np.where(np.isfinite(self.mean_), self.mean_, 0.0)
        return self

    def transform(self, array):
        return ((array - self.mean_) / self.scale_).astype(np.float32)

    def inverse_transform(self, array):
        return (array * self.scale_ + self.mean_).astype(np.float32)


class LabelCodes:
    """The encoding of labels: integer codes ``0 .. n_classes - 1`` over the classes seen in
    ``fit`` (sorted); ``inverse_transform`` maps codes, or class probabilities on the last
    axis, back to the labels. An unseen label is an error."""

    def fit(self, array):
        self.classes_ = np.unique(np.asarray(array).ravel())
        return self

    def transform(self, array):
        array = np.asarray(array)
        codes = np.searchsorted(self.classes_, array)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        unseen = self.classes_[codes] != array
        if unseen.any():
            raise ValueError(
                f"labels {sorted(set(array[unseen].tolist()))[:5]} were not seen in fit "
                f"(classes {self.classes_.tolist()[:10]})."
            )
        return codes.astype(np.int64)

    def inverse_transform(self, array):
        array = np.asarray(array)
        codes = array.argmax(-1) if np.issubdtype(array.dtype, np.floating) else array
        return self.classes_[codes]


class Identity:
    """The encoding of counts: none (models read counts as they are)."""

    def fit(self, array):
        return self

    def transform(self, array):
        return np.asarray(array, dtype=np.float32)

    inverse_transform = transform


@dataclass(frozen=True)
class Modality:
    """One kind of signal.

    Parameters
    ----------
    name : str
        Key of this modality in the mappings models read and predict.
    kind : {"counts", "continuous", "categorical"}
        Decides validation, encoding, likelihood and score (see the module docstring).
    what : str
        How error messages name the data ("spike counts", "LFP").
    """

    name: str
    kind: str
    what: str

    def __post_init__(self):
        if self.kind not in LIKELIHOODS:
            raise ValueError(f"kind must be one of {tuple(LIKELIHOODS)}, got {self.kind!r}.")

    @property
    def likelihood(self):
        """``"poisson"``, ``"gaussian"`` or ``"categorical"``."""
        return LIKELIHOODS[self.kind]

    @property
    def non_negative(self):
        """Whether valid arrays of this modality are non-negative (counts)."""
        return self.kind == "counts"

    def validate(self, X, *, name="X"):
        """``(array, was_2d)``: float32 ``(n_trials, n_time, n_channels)``, or a clear error.

        Labels are validated after encoding (:meth:`encoder`), so this is for counts and
        continuous signals.
        """
        if self.kind == "categorical":
            raise TypeError(f"{self.name} holds labels: encode them with {self.name}.encoder().")
        return check_trials(X, name=name, what=self.what, non_negative=self.non_negative)

    def encoder(self):
        """A fresh, unfitted encoder (``fit``/``transform``/``inverse_transform``)."""
        if self.kind == "continuous":
            return Standardizer()
        return LabelCodes() if self.kind == "categorical" else Identity()

    def loss(self, prediction, target, mask=None):
        """Mean reconstruction loss over the ``mask`` entries (the likelihood of this kind).

        ``prediction`` is log-rates (counts), values in model units (continuous) or logits
        ``(..., n_classes)`` with integer ``target`` labels (categorical).
        """
        if self.kind == "counts":
            return losses.masked_poisson_loss(prediction, target, mask)
        if self.kind == "continuous":
            return losses.masked_mse_loss(prediction, target, mask)
        return losses.masked_cross_entropy(prediction, target, mask)

    def to_user(self, prediction):
        """Predictions in the modality's natural units (before any inverse encoding).

        Counts: expected counts per bin (``exp`` of log-rates); continuous: unchanged;
        categorical: class probabilities (softmax of the logits).
        """
        prediction = np.asarray(prediction, dtype=np.float32)
        if self.kind == "counts":
            return np.exp(prediction)
        if self.kind == "continuous":
            return prediction
        shifted = np.exp(prediction - prediction.max(-1, keepdims=True))
        return shifted / shifted.sum(-1, keepdims=True)

    def score(self, prediction, target):
        """Higher is better: bits per spike (counts), R2 (continuous), accuracy (categorical).

        ``prediction`` is in user units (:meth:`to_user`); ``target`` the observed array (for
        categorical data its integer codes, as the :meth:`encoder` gives them).
        """
        from . import metrics

        if self.kind == "counts":
            return metrics.bits_per_spike(prediction, target)
        if self.kind == "continuous":
            target = np.asarray(target, dtype=np.float64).reshape(-1, np.shape(target)[-1])
            prediction = np.asarray(prediction, dtype=np.float64).reshape(target.shape)
            residual = ((target - prediction) ** 2).sum(0)
            total = ((target - target.mean(0)) ** 2).sum(0)
            return float(np.mean(1.0 - residual / np.where(total > 0, total, 1.0)))
        return float(np.mean(np.argmax(prediction, -1) == np.asarray(target)))


SPIKES = Modality("spikes", "counts", "spike counts")
BEHAVIOR = Modality("behavior", "continuous", "behavior")
LFP = Modality("lfp", "continuous", "LFP")
FLUORESCENCE = Modality("fluorescence", "continuous", "fluorescence")
LABELS = Modality("labels", "categorical", "class labels")

#: modality name -> :class:`Modality`
MODALITIES = {m.name: m for m in (SPIKES, BEHAVIOR, LFP, FLUORESCENCE, LABELS)}


def get_modality(modality):
    """A :class:`Modality` from itself or a name in :data:`MODALITIES`."""
    if isinstance(modality, Modality):
        return modality
    if modality in MODALITIES:
        return MODALITIES[modality]
    raise ValueError(
        f"modality must be a Modality or one of {sorted(MODALITIES)}, got {modality!r}."
    )



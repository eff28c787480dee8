"""Modalities as data: what a signal is, and everything that follows from it.

A :class:`Modality` says how arrays of one kind of signal are validated, how they are encoded
for a model (with an inverse, so predictions come back in the user's units), which
reconstruction likelihood a model of it is trained with, and how predictions of it are scored.
Models read and predict mappings keyed by modality name; the training core
(:mod:`sklearn_blend.training.core`) looks up each predicted modality's loss here. BLEND is then
a student that reads ``{spikes}`` and predicts ``{spikes}``, distilled from a teacher that reads
``{spikes, behavior}`` and predicts ``{spikes}``.

Each kind of signal is one class (:class:`Kind`), registered by name in :data:`KINDS`; a
modality is a name and a kind, and every method of :class:`Modality` is its kind's:

* :class:`Counts` (``"counts"``: spikes, deconvolved events): non-negative; the model predicts
  log-rates, its readout starting at the log mean count; Poisson negative log-likelihood;
  scored in bits per spike.
* :class:`Continuous` (``"continuous"``: LFP, calcium fluorescence, continuous behavior): any
  sign; z-scored with training statistics; Gaussian likelihood with unit variance, i.e. mean
  squared error; scored by R2.
* :class:`Categorical` (``"categorical"``: cell types, trial conditions): integer labels; the
  model predicts logits; cross-entropy; scored by accuracy.

A new kind is one subclass of :class:`Kind` and one :func:`register_kind`; a new modality of a
known kind is one :class:`Modality` (add it to :data:`MODALITIES` to name it by a string).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import losses, metrics
from .persistence import registry
from .data.validation import check_trials

__all__ = [
    "Modality", "get_modality", "MODALITIES", "SPIKES", "BEHAVIOR", "LFP", "FLUORESCENCE",
    "LABELS", "Kind", "Counts", "Continuous", "Categorical", "register_kind", "KINDS",
    "Standardizer", "LabelCodes", "Identity",
]

class Standardizer:
    """Per-channel z-scoring of ``(n_trials, n_time, n_channels)`` arrays, NaN-aware.

    ``fit`` learns each channel's mean and standard deviation over trials and bins (a constant
    channel gets scale 1); ``transform`` and ``inverse_transform`` map to and from model units.

    Examples
    --------
    One trial of three bins and two channels, the second constant, one value missing:

    >>> import numpy as np
    >>> from sklearn_blend.modalities import Standardizer
    >>> X = np.array([[[1.0, 10.0], [3.0, 10.0], [np.nan, 10.0]]])
    >>> scaler = Standardizer().fit(X)
    >>> scaler.mean_, scaler.scale_
    (array([ 2., 10.]), array([1., 1.]))
    >>> scaler.transform(X)[0]
    array([[-1.,  0.],
           [ 1.,  0.],
           [nan,  0.]], dtype=float32)
    >>> np.allclose(scaler.inverse_transform(scaler.transform(X)), X, equal_nan=True)
    True
    """

    @classmethod
    def of(cls, mean, scale):
        """A fitted standardizer with these statistics."""
        scaler = cls()
        scaler.mean_, scaler.scale_ = mean, scale
        return scaler

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
    """The encoding of labels: integer codes from 0 over the classes seen in ``fit``.

    The codes run to ``n_classes - 1`` over the sorted classes; ``inverse_transform`` maps
    codes, or class probabilities on the last axis, back to the labels. An unseen label is an
    error.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend.modalities import LabelCodes
    >>> codes = LabelCodes().fit(np.array(["b", "a", "c", "a"]))
    >>> codes.classes_.tolist(), codes.transform(np.array(["c", "a"])).tolist()
    (['a', 'b', 'c'], [2, 0])
    >>> codes.inverse_transform(np.array([[0.1, 0.7, 0.2]])).tolist()  # most probable class
    ['b']
    >>> codes.transform(np.array(["d"]))
    Traceback (most recent call last):
        ...
    ValueError: labels ['d'] were not seen in fit (classes ['a', 'b', 'c']).
    """

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
    """The encoding of counts: none (models read counts as they are).

    Examples
    --------
    >>> from sklearn_blend.modalities import Identity
    >>> encoder = Identity().fit([[0, 3]])
    >>> encoder.transform([[0, 3]]), encoder.inverse_transform([[2, 1]])
    (array([[0., 3.]], dtype=float32), array([[2., 1.]], dtype=float32))
    """

    def fit(self, array):
        return self

    def transform(self, array):
        return np.asarray(array, dtype=np.float32)

    inverse_transform = transform


class Kind:
    """A kind of signal: how its arrays are checked and encoded, its likelihood and its score.

    Subclasses set :attr:`name`, :attr:`likelihood` and :attr:`non_negative` and implement the
    methods; :class:`Modality` delegates to the kind it names.

    Examples
    --------
    A kind of binary events (a model predicting logits, scored by accuracy), usable once
    :func:`register_kind` has registered it:

    >>> import numpy as np
    >>> import torch
    >>> from sklearn_blend.modalities import Identity, Kind
    >>> class Binary(Kind):
    ...     name, likelihood, non_negative = "binary", "bernoulli", True
    ...     def encoder(self):
    ...         return Identity()
    ...     def loss(self, prediction, target, mask=None):
    ...         values = torch.nn.functional.binary_cross_entropy_with_logits(
    ...             prediction, target, reduction="none")
    ...         return values.mean() if mask is None else values[mask].mean()
    ...     def to_user(self, prediction):
    ...         return 1.0 / (1.0 + np.exp(-np.asarray(prediction, dtype=np.float32)))
    ...     def score(self, prediction, target):
    ...         return float(np.mean((prediction > 0.5) == (target > 0.5)))
    >>> kind = Binary()
    >>> X, was_2d = kind.validate([[0, 1], [1, 1]], name="X", what="events")
    >>> X.shape, was_2d  # a 2-D array is one bin per sample
    ((2, 1, 2), True)
    >>> round(kind.loss(torch.zeros(4), torch.ones(4)).item(), 4)  # ln 2 at logit 0
    0.6931
    >>> probabilities = kind.to_user([[2.0, -1.0]])
    >>> probabilities.round(3), kind.score(probabilities, np.array([[1, 0]]))
    (array([[0.881, 0.269]], dtype=float32), 1.0)
    """

    #: the name modalities give as ``kind``
    name = None
    #: the likelihood the reconstruction loss is (``"poisson"``, ``"gaussian"``, ...)
    likelihood = None
    #: whether valid arrays are non-negative
    non_negative = False

    def validate(self, X, *, name, what):
        """``(array, was_2d)``: float32 ``(n_trials, n_time, n_channels)``, or a clear error."""
        return check_trials(X, name=name, what=what, non_negative=self.non_negative)

    def encoder(self):
        """A fresh, unfitted encoder (``fit``/``transform``/``inverse_transform``)."""
        raise NotImplementedError

    def loss(self, prediction, target, mask=None):
        """Mean reconstruction loss over the ``mask`` entries."""
        raise NotImplementedError

    def to_user(self, prediction):
        """Predictions (NumPy) in the natural units of the signal."""
        raise NotImplementedError

    def score(self, prediction, target):
        """Higher is better; ``prediction`` in user units, ``target`` observed (encoded
        labels for categorical data)."""
        raise NotImplementedError

    def init_readout(self, model, mean):
        """Start ``model``'s readout where this likelihood wants it (counts: the log mean
        count per channel, ``model.init_output_bias(mean)``); by default nothing."""


class Counts(Kind):
    """Counts (spikes): log-rates, Poisson likelihood, bits per spike.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklearn_blend.modalities import Counts
    >>> counts = Counts()
    >>> counts.name, counts.likelihood, counts.non_negative
    ('counts', 'poisson', True)
    >>> counts.to_user(np.log([[1.0, 2.0]]))  # log-rates to counts per bin
    array([[1., 2.]], dtype=float32)
    >>> counts.loss(torch.zeros(1, 2, 1), torch.ones(1, 2, 1)).item()  # exp(0) - 1 * 0
    1.0
    >>> spikes = np.array([[[0.0], [2.0]]])
    >>> counts.score(np.ones_like(spikes), spikes)  # the mean rate gains nothing
    0.0
    >>> round(counts.score(np.array([[[0.1], [1.9]]]), spikes), 3)
    0.926
    """

    name, likelihood, non_negative = "counts", "poisson", True

    def encoder(self):
        return Identity()

    def loss(self, prediction, target, mask=None):
        return losses.masked_poisson_loss(prediction, target, mask)

    def to_user(self, prediction):
        return np.exp(np.asarray(prediction, dtype=np.float32))

    def score(self, prediction, target):
        return metrics.bits_per_spike(prediction, target)

    def init_readout(self, model, mean):
        model.init_output_bias(mean)


class Continuous(Kind):
    """A continuous signal (LFP, fluorescence, behavior): z-scored, Gaussian likelihood (mean
    squared error), R2.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklearn_blend.modalities import Continuous
    >>> continuous = Continuous()
    >>> target = np.arange(6.0).reshape(1, 6, 1)
    >>> continuous.score(target, target), continuous.score(np.full_like(target, 2.5), target)
    (1.0, 0.0)
    >>> encoded = continuous.encoder().fit(target).transform(target)
    >>> round(float(encoded.mean()), 4), round(float(encoded.std()), 4)
    (0.0, 1.0)
    >>> continuous.loss(torch.zeros(1, 2, 1), torch.full((1, 2, 1), 2.0)).item()  # (0 - 2) ** 2
    4.0
    """

    name, likelihood = "continuous", "gaussian"

    def encoder(self):
        return Standardizer()

    def loss(self, prediction, target, mask=None):
        return losses.masked_mse_loss(prediction, target, mask)

    def to_user(self, prediction):
        return np.asarray(prediction, dtype=np.float32)

    def score(self, prediction, target):
        """R2 of each channel (trials and bins pooled), averaged over channels; NaN targets
        (missing values) are left out; a constant channel scores 0."""
        target = np.asarray(target, dtype=np.float64).reshape(-1, np.shape(target)[-1])
        prediction = np.asarray(prediction, dtype=np.float64).reshape(target.shape)
        scores = []
        for channel in range(target.shape[1]):
            observed = ~np.isnan(target[:, channel])
            values, guess = target[observed, channel], prediction[observed, channel]
            total = ((values - values.mean()) ** 2).sum()
            scores.append(1.0 - ((values - guess) ** 2).sum() / total if total > 0 else 0.0)
        return float(np.mean(scores))


class Categorical(Kind):
    """Labels: logits, cross-entropy, balanced accuracy.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklearn_blend.modalities import Categorical
    >>> categorical = Categorical()
    >>> categorical.to_user([[0.0, np.log(3.0)]])  # logits to class probabilities
    array([[0.25, 0.75]], dtype=float32)
    >>> round(categorical.loss(torch.zeros(3, 2), torch.tensor([0, 1, 1])).item(), 4)  # ln 2
    0.6931
    >>> target = np.array([0, 0, 0, 1])
    >>> always_zero = np.tile([0.9, 0.1], (4, 1))
    >>> categorical.score(always_zero, target)  # recall 1 on class 0, 0 on class 1
    0.5
    """

    name, likelihood = "categorical", "categorical"

    def validate(self, X, *, name, what):
        raise TypeError(f"{name} holds labels ({what}): encode them with the modality's "
                        "encoder().")

    def encoder(self):
        return LabelCodes()

    def loss(self, prediction, target, mask=None):
        return losses.masked_cross_entropy(prediction, target, mask)

    def to_user(self, prediction):
        prediction = np.asarray(prediction, dtype=np.float32)
        shifted = np.exp(prediction - prediction.max(-1, keepdims=True))
        return shifted / shifted.sum(-1, keepdims=True)

    def score(self, prediction, target):
        """Balanced accuracy (the recall of each class present in ``target``, averaged over
        them, as NEDS scores discrete behavior): a model that always answers the most frequent
        class scores ``1 / n_classes``, not that class's share. Label codes below 0 (missing)
        are left out."""
        target = np.asarray(target)
        observed = target >= 0
        guess, truth = np.argmax(prediction, -1)[observed], target[observed]
        if not truth.size:
            raise ValueError("no observed label to score (every label code is below 0).")
        return float(np.mean([np.mean(guess[truth == k] == k) for k in np.unique(truth)]))


#: ``kind=`` name -> :class:`Kind` instance; see :func:`register_kind`
KINDS = {}


def register_kind(kind):
    """Make modalities of ``kind.name`` use ``kind`` (a :class:`Kind` instance).

    Examples
    --------
    A kind of non-negative continuous signals (firing rates), registered, used by a modality,
    then removed again:

    >>> from sklearn_blend.modalities import KINDS, Continuous, Modality, register_kind
    >>> class Rates(Continuous):
    ...     name, non_negative = "rates", True
    >>> register_kind(Rates())
    >>> rates = Modality("rates", "rates", "firing rates")
    >>> rates.likelihood, rates.non_negative
    ('gaussian', True)
    >>> del KINDS["rates"]  # unregister the kind again
    >>> Modality("rates", "rates", "firing rates")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: kind must be one of ('counts', 'continuous', 'categorical'...), got 'rates'.
    """
    if not isinstance(kind, Kind) or not isinstance(kind.name, str):
        raise TypeError(f"register_kind needs an instance of a Kind subclass with a name, got "
                        f"{kind!r}.")
    KINDS[kind.name] = kind


for _kind in (Counts(), Continuous(), Categorical()):
    register_kind(_kind)


@registry.register("dataclass")
@dataclass(frozen=True)
class Modality:
    """One signal: a name and a kind.

    Parameters
    ----------
    name : str
        Key of this modality in the mappings models read and predict.
    kind : str
        A name in :data:`KINDS` (``"counts"``, ``"continuous"``, ``"categorical"``): decides
        validation, encoding, likelihood and score (see the module docstring).
    what : str
        How error messages name the data ("spike counts", "LFP").

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklearn_blend.modalities import Modality
    >>> calcium = Modality("calcium", "continuous", "calcium traces")
    >>> calcium.likelihood, calcium.non_negative, type(calcium.family).__name__
    ('gaussian', False, 'Continuous')
    >>> X, was_2d = calcium.validate(np.zeros((10, 4)))  # 10 samples, 4 cells
    >>> X.shape, X.dtype, was_2d
    ((10, 1, 4), dtype('float32'), True)
    >>> calcium.loss(torch.zeros(2, 3, 4), torch.ones(2, 3, 4)).item()
    1.0
    >>> Modality("calcium", "fluorescent", "calcium traces")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: kind must be one of (...), got 'fluorescent'.
    """

    name: str
    kind: str
    what: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {tuple(KINDS)}, got {self.kind!r}.")

    @property
    def family(self):
        """The :class:`Kind` of this modality."""
        return KINDS[self.kind]

    @property
    def likelihood(self):
        """``"poisson"``, ``"gaussian"`` or ``"categorical"``."""
        return self.family.likelihood

    @property
    def non_negative(self):
        """Whether valid arrays of this modality are non-negative (counts)."""
        return self.family.non_negative

    def validate(self, X, *, name="X"):
        """``(array, was_2d)``: float32 ``(n_trials, n_time, n_channels)``, or a clear error
        (labels are validated after encoding, :meth:`encoder`)."""
        return self.family.validate(X, name=name, what=self.what)

    def encoder(self):
        """A fresh, unfitted encoder (``fit``/``transform``/``inverse_transform``)."""
        return self.family.encoder()

    def loss(self, prediction, target, mask=None):
        """Mean reconstruction loss over the ``mask`` entries (the likelihood of the kind):
        ``prediction`` is log-rates (counts), values in model units (continuous) or logits
        ``(..., n_classes)`` with integer ``target`` labels (categorical)."""
        return self.family.loss(prediction, target, mask)

    def to_user(self, prediction):
        """Predictions in the modality's natural units (before any inverse encoding): counts
        per bin (``exp`` of log-rates), values, or class probabilities (softmax)."""
        return self.family.to_user(prediction)

    def score(self, prediction, target):
        """Higher is better: bits per spike (counts), R2 (continuous), accuracy (categorical).

        ``prediction`` is in user units (:meth:`to_user`); ``target`` the observed array (for
        categorical data its integer codes, as the :meth:`encoder` gives them).
        """
        return self.family.score(prediction, target)

    def init_readout(self, model, mean):
        """Start ``model``'s readout as the likelihood wants it (see :meth:`Kind.init_readout`)."""
        self.family.init_readout(model, mean)


SPIKES = Modality("spikes", "counts", "spike counts")
BEHAVIOR = Modality("behavior", "continuous", "behavior")
LFP = Modality("lfp", "continuous", "LFP")
FLUORESCENCE = Modality("fluorescence", "continuous", "fluorescence")
LABELS = Modality("labels", "categorical", "class labels")

#: modality name -> :class:`Modality`
MODALITIES = {m.name: m for m in (SPIKES, BEHAVIOR, LFP, FLUORESCENCE, LABELS)}


def get_modality(modality):
    """A :class:`Modality` from itself or a name in :data:`MODALITIES`.

    Examples
    --------
    >>> from sklearn_blend.modalities import SPIKES, get_modality
    >>> get_modality("spikes") is SPIKES, get_modality(SPIKES) is SPIKES
    (True, True)
    >>> get_modality("lfp")
    Modality(name='lfp', kind='continuous', what='LFP')
    >>> get_modality("eeg")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: modality must be a Modality or one of [...], got 'eeg'.
    """
    if isinstance(modality, Modality):
        return modality
    if modality in MODALITIES:
        return MODALITIES[modality]
    raise ValueError(
        f"modality must be a Modality or one of {sorted(MODALITIES)}, got {modality!r}."
    )



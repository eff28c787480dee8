"""sklearn_blend: privileged-modality distillation of neural population models for scikit-learn.

A teacher sees spike counts plus behavior; a student of the same kind sees spikes only and is
distilled from the teacher. :class:`BlendEstimator` trains both in ``fit(X, b)`` and needs only
spikes in ``transform(X)``; :class:`PerBin` puts an ordinary 2-D estimator (``RidgeCV``,
``LogisticRegression``) after it in a ``Pipeline``. For cell-type prediction, where the sample is
a neuron, :class:`NeuronEmbedding` turns the neurons of :class:`Recordings` into one feature
vector each (NeuPRINT, optionally distilled). :class:`NedsEstimator` is NEDS: one model over
spike and behavior tokens that decodes behavior from spikes and encodes spikes from behavior,
over the trials of several sessions held in :class:`SessionTrials`. :class:`CrossModalEstimator`
distils a spike teacher (:class:`MaskedAutoencoder`) into an LFP model that needs only LFP at
inference (:mod:`.lfp` preprocesses LFP). :class:`SeedEnsemble` averages the rates of fits
that differ only in their seed.
:func:`register_strategy` adds a distillation
strategy (:mod:`sklearn_blend.distill`) that every estimator accepts by name. ``est.save(path)``
and :func:`load` write and read a fitted model as one safetensors file that loading never runs
code from (:mod:`.persistence`).

Layout: :mod:`.estimators` (the scikit-learn estimators), :mod:`.training` (the one training
core, on skorch), :mod:`.distill` (strategies), :mod:`.losses` and :mod:`.metrics` (pure
functions), :mod:`.modalities`, :mod:`.models` (the PyTorch models and their registry),
:mod:`.data` (input validation, behavior, recordings), :mod:`.datasets`, :mod:`.evaluation`,
:mod:`.model_selection` (nested, equal-budget comparisons), :mod:`.nlb` (NLB'21 submissions).
"""

from ._version import __version__
from .distill import register_strategy
from .estimators import (BlendEstimator, BlendTeacher, CrossModalEstimator, MaskedAutoencoder,
                         NedsEstimator, NeuronEmbedding, PerBin, SeedEnsemble, SmoothingGLM)
from .data.recordings import Recordings
from .data.trials import SessionTrials
from .lfp import BandPower, LFPPreprocessor
from .persistence import load, save

__all__ = ["BandPower", "BlendEstimator", "BlendTeacher", "CrossModalEstimator",
           "LFPPreprocessor", "MaskedAutoencoder", "NedsEstimator", "NeuronEmbedding", "PerBin",
           "Recordings", "SeedEnsemble", "SessionTrials", "SmoothingGLM", "load",
           "register_strategy", "save", "__version__"]

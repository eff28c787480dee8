"""The scikit-learn estimators, on one skeleton (:mod:`.base`).

* :mod:`.base`: :class:`~.base.ModelEstimator`, what every torch estimator shares (parameters
  declared as data, the template ``fit``, seeds, device, the net, prediction helpers) and the
  teacher protocol of the distilling ones;
* :mod:`.trials`: :class:`BlendTeacher` and :class:`BlendEstimator` (trials of binned spikes);
* :mod:`.neds`: :class:`NedsEstimator` (NEDS: encoding and decoding with one model);
* :mod:`.crossmodal`: :class:`CrossModalEstimator` (a teacher of one modality distilled into a
  model of another, LFP from spikes by default) and :class:`MaskedAutoencoder` (its
  multi-session teacher, or the model of one modality alone);
* :mod:`.neurons`: :class:`NeuronEmbedding` (one feature vector per neuron, NeuPRINT);
* :mod:`.smoothing`: :class:`SmoothingGLM`, NLB's spike-smoothing baseline;
* :mod:`.adapters`: :class:`PerBin`, a 2-D estimator applied to every time bin;
* :mod:`.ensemble`: :class:`SeedEnsemble`, the averaged rates of fits that differ in their
  seed.

Importing this package defines (and so registers for model files) every estimator.
"""

from .adapters import PerBin
from .crossmodal import CrossModalEstimator, MaskedAutoencoder
from .ensemble import SeedEnsemble
from .neds import NedsEstimator
from .neurons import NeuronEmbedding
from .smoothing import SmoothingGLM
from .trials import BlendEstimator, BlendTeacher

__all__ = ["BlendEstimator", "BlendTeacher", "CrossModalEstimator", "MaskedAutoencoder",
           "NedsEstimator", "NeuronEmbedding", "PerBin", "SeedEnsemble", "SmoothingGLM"]

"""The scikit-learn estimators: thin wrappers that validate, seed and call the training core.

* :mod:`.trials`: :class:`BlendTeacher` and :class:`BlendEstimator` (trials of binned spikes);
* :mod:`.neds`: :class:`NedsEstimator` (NEDS: encoding and decoding with one model);
* :mod:`.crossmodal`: :class:`CrossModalEstimator` (a spike teacher distilled into an LFP
  model) and :class:`MaskedAutoencoder` (its multi-session teacher, or the LFP-only model);
* :mod:`.neurons`: :class:`NeuronEmbedding` (one feature vector per neuron, NeuPRINT);
* :mod:`.smoothing`: :class:`SmoothingGLM`, NLB's spike-smoothing baseline;
* :mod:`.adapters`: :class:`PerBin`, a 2-D estimator applied to every time bin.
"""

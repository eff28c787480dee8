"""The training core: every model of the package is trained and run through :mod:`.core`.

* :mod:`.objective`: the skorch criterion (masking schemes, reconstruction per modality, the
  frozen teacher and the distillation strategy) and the precision of a model's forward;
* :mod:`.core`: the skorch net, :func:`~.core.fit_net` (seeding, device, clipping, callbacks)
  and :func:`~.core.predict`, the one inference path;
* :mod:`.neurons`: training samples of the per-neuron models (NeuPRINT), their model adapter
  and embedding fits;
* :mod:`.teacher_cache`: reuse of fitted teachers across fits of a search.
"""

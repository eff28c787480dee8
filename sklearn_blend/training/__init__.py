"""The training core: every model of the package is trained and run through :mod:`.core`.

* :mod:`.objective`: the skorch criterion (masking schemes, reconstruction per modality, the
  teacher, online or offline, and the distillation strategy) and the precision of a model's
  forward;
* :mod:`.net`: the skorch net (the model is ``module_``, the objective its criterion);
* :mod:`.core`: :func:`~.core.fit_net` (seeding, device, clipping, callbacks) and
  :func:`~.core.predict`, the one inference path;
* :mod:`.neds`, :mod:`.crossmodal`: NEDS's and the session transformer's masking, model
  adapters and recipes; :mod:`.distributed`: data-parallel training through accelerate;
* :mod:`.neurons`: training samples of the per-neuron models (NeuPRINT), their model adapter
  and embedding fits;
* :mod:`.teacher_cache`: reuse of fitted teachers across fits of a search.
"""

"""The training core: every model of the package is trained and run through :mod:`.core`.

* :mod:`.core`: objectives as skorch criteria, the skorch net, inference;
* :mod:`.neurons`: training samples of the per-neuron models (NeuPRINT) and their embedding fits;
* :mod:`.teacher_cache`: reuse of fitted teachers across fits of a search.
"""

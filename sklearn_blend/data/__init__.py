"""Reading what users pass in: array validation, behavior of every form, recordings of neurons.

* :mod:`.validation`: shape, dtype and value checks shared by all estimators;
* :mod:`.behavior`: behavior per bin, per trial, categorical or partly missing, and its encoding;
* :mod:`.recordings`: :class:`Recordings`, sessions of neurons as an array of neurons.
"""

"""Safe, portable model files: :func:`save` and :func:`load` (``estimator.save(path)``).

A fitted estimator of the package, or a scikit-learn ``Pipeline`` that holds them together with
standard scikit-learn steps (``StandardScaler``, ``RidgeCV``, ``LogisticRegression``, ...), is
written as ONE `safetensors <https://huggingface.co/docs/safetensors>`_ file (extension
``.safetensors``):

* every NumPy array and PyTorch tensor (the weights of every fitted net, fitted arrays such as
  a ridge's ``coef_`` or a behavior encoding's statistics) is a safetensors tensor;
* everything else (the estimators' parameters, fitted numbers, lists and strings, each net's
  ``history``) is JSON in the file's header metadata, together with the format version
  (:data:`FORMAT_VERSION`), the package version and a SHA-256 checksum over the JSON text and
  the bytes of every tensor. The checksum catches accidental damage (a truncated download, a
  disk or transfer error) only: anyone who edits a file can recompute it, so it is no
  protection against a crafted file.

The safety boundary is the allow-list: :func:`load` never unpickles, and never imports or
calls anything that the file names. The JSON says which class each object is, and only classes
on an allow-list, built in this process, are rebuilt:

* the package's estimators (:class:`~sklearn_blend.BlendEstimator`,
  :class:`~sklearn_blend.BlendTeacher`, :class:`~sklearn_blend.NeuronEmbedding`,
  :class:`~sklearn_blend.NedsEstimator`, :class:`~sklearn_blend.CrossModalEstimator`,
  :class:`~sklearn_blend.MaskedAutoencoder`,
  :class:`~sklearn_blend.estimators.smoothing.SmoothingGLM`, :class:`~sklearn_blend.PerBin`,
  :class:`~sklearn_blend.LFPPreprocessor`, :class:`~sklearn_blend.BandPower`) and their
  subclasses, a user's included (stored as ``"<module>:<qualname>"``: the loading process must
  define the subclass too, as it must register a user's strategy), and the helper classes
  their fitted state holds (behavior encodings, model configs, modalities, the built-in
  distillation strategies). Each registers itself where it is defined
  (:mod:`~sklearn_blend.persistence.registry`); this package imports none of them;
* scikit-learn's public estimators, as ``sklearn.utils.discovery.all_estimators`` lists them
  for the installed scikit-learn (``Pipeline``, ``FeatureUnion`` and ``ColumnTransformer``
  included; never its tests or ``experimental`` modules, and not the searches, see below),
  stored by the public module that exposes them (``sklearn.linear_model:PoissonRegressor``)
  and looked up by that name, never imported from it; their state must be data (numbers,
  strings, arrays, nested estimators). Their attributes are restored as unpickling would,
  without calling ``fit``;
* bases and distillation strategies given as objects are stored by the name they are
  registered under (:func:`sklearn_blend.models.register_base`,
  :func:`sklearn_blend.register_strategy`) and looked up in the loading process, which must
  register them too.

Code cannot be stored: a user's own base or strategy that is not registered by name, a
function, an estimator class outside the allow-list or an object of another kind makes
:func:`save` raise a ``ValueError`` that names it; pickle such models with ``joblib`` or
``pickle``, which keep working, and load those files only from sources you trust.

A fitted search (``GridSearchCV``, ``RandomizedSearchCV``, ...) is not stored either: its
cross-validation splitter and candidate grid are not data of the format, and a grid could
name a ``teacher_cache`` folder for a later refit. :func:`save` refuses it and asks for its
``best_estimator_``, the model its ``predict`` uses; keep ``cv_results_`` as a table
(``pandas.DataFrame(search.cv_results_)``).

What a file holds is data, and :func:`load` checks it as such: arrays only of the dtypes
:func:`save` writes (no structured, void or object tensors; string items of at most
:data:`MAX_ITEM_BYTES`, string arrays no larger than the file's text can justify), nesting no
deeper than Python's recursion limit; anything else is a ``ValueError``. One parameter is not
restored as saved: a ``teacher_cache`` that names a folder is reset to ``True`` with a warning,
since a folder cache holds pickles that a later ``fit`` (or a clone of the model) would load;
set it again with ``set_params`` for a folder you trust.

A fitted skorch net is rebuilt the way skorch recommends: the estimator re-creates the net it
trained (its own builder of the model and objective, from its parameters and fitted shapes:
``_net_builder``), :func:`sklearn_blend.training.core.initialized_net` initializes it, and
the saved weights are loaded into it (the model's, and the objective's own ones such as the
learned projections of ``strategy="feature"``; a student's frozen teacher is the teacher
estimator's net, stored once). ``net.history`` is kept. The optimizer state is not: a loaded
model predicts, transforms and scores exactly as the saved one, and the methods that train on
from fitted weights (:meth:`NedsEstimator.finetune <sklearn_blend.NedsEstimator.finetune>`,
``add_sessions`` of the cross-modal models, the embeddings of new neurons in
:meth:`NeuronEmbedding.transform <sklearn_blend.NeuronEmbedding.transform>`) work as on the
saved model, each starting a fresh optimizer as it always does.

The package: :mod:`.registry` (the allow-list), :mod:`.codec` (objects to JSON nodes and
tensors, and back), :mod:`.nets` (fitted nets), :mod:`.files` (atomic writes, checksum,
header); :func:`save`, :func:`load` and :class:`SaveMixin` here.

Tensors are read to the CPU and the nets are placed on ``device``: by default the device the
model was fitted on (``device_``) when this machine has it, else the CPU, with a warning, so a
model fitted on a GPU loads and predicts anywhere.

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> from sklearn.linear_model import RidgeCV
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn_blend import BlendEstimator, PerBin, load
>>> from sklearn_blend.datasets import make_synthetic
>>> X, b = make_synthetic("simple", n_trials=24, n_time=10, n_neurons=6, random_state=0)
>>> pipe = make_pipeline(
...     BlendEstimator(hidden_size=8, n_layers=1, max_epochs=2,
...                    early_stopping=False, random_state=0),
...     PerBin(RidgeCV())).fit(X, b)
>>> with tempfile.TemporaryDirectory() as folder:
...     path = os.path.join(folder, "pipeline.safetensors")
...     save(pipe, path)
...     loaded = load(path)
>>> bool(np.array_equal(loaded.predict(X), pipe.predict(X)))
True
"""

from __future__ import annotations

import errno
import json
import os
import warnings
from pathlib import Path

from . import registry
from .codec import MAX_TEXT_BYTES, TEXT_EXPANSION, Decoder, Encoder, short
from .files import (FORMAT, checksum, not_a_model_file, read_header, read_model_bytes,
                    write_atomic)

__all__ = ["FORMAT_VERSION", "InconsistentVersionWarning", "SaveMixin", "load", "register",
           "save", "write_atomic"]

#: the version of the file format this package writes; it reads files up to this version.
#: 2 (sklearn_blend 0.2): estimators on one skeleton; files of version 1 are upgraded as they
#: are read, each class's ``_upgrade_state`` renaming what it renamed (see the classes).
#: 3 (sklearn_blend 0.3): NedsEstimator gained ``monitor`` and ``input_map`` (files of
#: versions 1 and 2 load with ``monitor="loss"``, the selection they were trained with)
#: 4 (sklearn_blend 0.3, later): LatentAlignment gained ``centre`` (cross-modal files of
#: versions 1 to 3 load with ``centre=False``, the alignment they were trained with)
#: 5 (sklearn_blend 0.4): NedsEstimator gained ``patience_steps`` (``None`` in earlier files)
FORMAT_VERSION = 5
#: :func:`registry.register`: allow a class in model files (see :mod:`.registry`)
register = registry.register


class InconsistentVersionWarning(UserWarning):
    """A model file written by another version of sklearn_blend is being loaded.

    As scikit-learn's warning of the same name: the model loads, but its behaviour may differ
    from the version that wrote it (new defaults, fixed bugs); refit it with this version to be
    sure. ``original_version`` and ``current_version`` say which.

    Examples
    --------
    >>> import warnings
    >>> from sklearn_blend.persistence import InconsistentVersionWarning
    >>> warning = InconsistentVersionWarning(original_version="0.3.0", current_version="0.4.0")
    >>> isinstance(warning, UserWarning), warning.original_version, warning.current_version
    (True, '0.3.0', '0.4.0')
    >>> print(warning)  # doctest: +ELLIPSIS
    this model file was written by sklearn_blend 0.3.0 and is loaded with sklearn_blend 0.4.0; ...
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn(warning)
    >>> caught[0].category is InconsistentVersionWarning
    True
    """

    def __init__(self, *, original_version, current_version):
        super().__init__(original_version, current_version)
        self.original_version = original_version
        self.current_version = current_version

    def __str__(self):
        return (f"this model file was written by sklearn_blend {self.original_version} and is "
                f"loaded with sklearn_blend {self.current_version}; it may behave differently. "
                "Refit it with this version to be sure.")


class SaveMixin:
    """Gives an estimator :meth:`save`: the safe model file of :mod:`sklearn_blend.persistence`.

    Every class that derives from it (the package's estimators, and subclasses of them) is
    put on the allow-list of model files when it is created (:mod:`.registry`), unless its
    name starts with an underscore (a private base).

    Examples
    --------
    A scikit-learn estimator of one's own, saved and loaded like the package's:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.base import BaseEstimator
    >>> from sklearn_blend.persistence import SaveMixin, load, registry
    >>> class ShiftedMean(SaveMixin, BaseEstimator):
    ...     def __init__(self, shift=0.0):
    ...         self.shift = shift
    ...     def fit(self, X, y=None):
    ...         self.mean_ = np.mean(X, axis=0) + self.shift
    ...         return self
    >>> name = registry.stored_name("estimator", ShiftedMean)  # allowed once defined
    >>> name.endswith(":ShiftedMean")
    True
    >>> model = ShiftedMean(shift=1.0).fit(np.arange(6.0).reshape(3, 2))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     model.save(os.path.join(folder, "mean.safetensors"))
    ...     again = load(os.path.join(folder, "mean.safetensors"))
    >>> type(again).__name__, again.shift, again.mean_
    ('ShiftedMean', 1.0, array([3., 4.]))
    >>> del registry._REGISTERED["estimator"][name]  # tidy up: take it off the allow-list
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_") and not cls.__dict__.get("_abstract", False):
            registry.register("estimator")(cls)

    def save(self, path):
        """Write this fitted estimator to ``path``, one safetensors file that
        :func:`sklearn_blend.load` reads without running code from it.

        Weights and arrays become tensors, parameters and fitted metadata JSON; the file is
        written under a temporary name and renamed, so it is never half-written. See
        :mod:`sklearn_blend.persistence` for what is stored and what cannot be.

        Parameters
        ----------
        path : str or path-like
            The file to write (by convention ``.safetensors``); its folder must exist.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            The estimator is not fitted.
        ValueError
            Something in it cannot be stored safely (a user's own base or strategy that is
            not registered by name, a function, an estimator class outside the allow-list):
            use ``joblib.dump`` for such models, and load those files only if you trust them.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from sklearn_blend import MaskedAutoencoder, load
        >>> X = np.random.default_rng(0).poisson(2.0, size=(20, 12, 6))
        >>> model = MaskedAutoencoder(hidden_size=8, n_layers=1, ffn_size=16, max_epochs=2,
        ...                           random_state=0).fit(X)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "model.safetensors")
        ...     model.save(path)
        ...     loaded = load(path)
        >>> bool(np.array_equal(loaded.transform(X), model.transform(X)))
        True
        >>> loaded.get_params() == model.get_params()
        True
        """
        save(self, path)


def _versions():
    import sklearn
    import torch

    from .._version import __version__

    return {"sklearn_blend_version": __version__, "sklearn_version": sklearn.__version__,
            "torch_version": torch.__version__}


def save(estimator, path):
    """Write a fitted estimator (or a ``Pipeline`` of them) to one safe safetensors file.

    Parameters
    ----------
    estimator : estimator
        A fitted estimator of the package, or a scikit-learn estimator (a ``Pipeline``) whose
        parts are on the allow-list of :mod:`sklearn_blend.persistence`.
    path : str or path-like
        The file to write (by convention ``.safetensors``). It is written under a temporary
        name in the same folder and renamed when complete: never half-written.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        ``estimator`` is not fitted.
    ValueError
        Something in it cannot be stored safely (code: a user's base or strategy not
        registered by name, a function; a class outside the allow-list). The message names
        it; ``joblib.dump`` stores such models, for trusted use only.

    See Also
    --------
    load : read the file back.
    SaveMixin.save : the same as a method of every estimator of the package.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn_blend import LFPPreprocessor, load, save
    >>> lfp = np.random.default_rng(0).normal(size=(4, 500, 3))
    >>> prep = LFPPreprocessor(sfreq=250, l_freq=1.0, h_freq=40.0, notch=50).fit(lfp)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save(prep, os.path.join(folder, "prep.safetensors"))
    ...     again = load(os.path.join(folder, "prep.safetensors"))
    >>> bool(np.array_equal(again.transform(lfp), prep.transform(lfp)))
    True
    """
    from sklearn.base import BaseEstimator
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(estimator, BaseEstimator):
        raise TypeError(f"save stores a fitted estimator, got {type(estimator).__name__}.")
    check_is_fitted(estimator)
    encoder = Encoder()
    tree = encoder.encode(estimator, type(estimator).__name__)
    fields = {"format": FORMAT, "format_version": str(FORMAT_VERSION), **_versions(),
              "content": json.dumps({"object": tree}, allow_nan=False, separators=(",", ":"))}
    metadata = dict(fields, checksum=checksum(fields, encoder.tensors))

    def write(tmp):
        from safetensors import SafetensorError
        from safetensors.numpy import save_file

        try:
            save_file(encoder.tensors, tmp, metadata=metadata)
        except SafetensorError as error:  # its I/O errors (a full disk) as the OSError they are
            text = " ".join(str(error).split())
            code = errno.ENOSPC if "No space left" in text else errno.EIO
            raise OSError(code, f"could not write the model file ({text})",
                          os.fspath(path)) from None

    write_atomic(path, write)


def load(path, *, device=None):
    """Read a model that :func:`save` (or ``estimator.save``) wrote; never runs code from it.

    Parameters
    ----------
    path : str or path-like
        A ``.safetensors`` model file.
    device : str, optional
        Where the nets go: ``None`` (default) the device the model was fitted on if this
        machine has it, else the CPU with a warning; ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
        ``"mps"`` or ``"auto"`` for that device (a ``ValueError`` if it is missing). The
        estimators' ``device_`` says where their nets are; their ``device`` parameter (used by
        the next ``fit``) is kept as saved.

    Returns
    -------
    estimator
        The estimator as it was saved: the same parameters (``get_params()``), fitted
        attributes, training history, and the same outputs.

    Raises
    ------
    ValueError
        The file is not a model file (a pickle, another format), is damaged (its checksum
        catches truncation and disk or transfer errors), was written by a newer format
        version, names a class outside the allow-list, or holds data that the safe format
        does not write (see :mod:`sklearn_blend.persistence`).

    Warns
    -----
    InconsistentVersionWarning
        The file was written by another version of sklearn_blend.
    UserWarning
        The file sets ``teacher_cache`` to a folder: it is reset to ``True``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn_blend import NedsEstimator, load
    >>> rng = np.random.default_rng(0)
    >>> b = rng.normal(size=(20, 10, 2))
    >>> X = rng.poisson(np.exp(b @ rng.normal(size=(2, 5)) * 0.5))
    >>> neds = NedsEstimator(hidden_size=16, n_layers=1, n_heads=2, ffn_size=32,
    ...                      max_epochs=2, random_state=0).fit(X, b)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     neds.save(os.path.join(folder, "neds.safetensors"))
    ...     again = load(os.path.join(folder, "neds.safetensors"), device="cpu")
    >>> bool(np.array_equal(again.predict(X), neds.predict(X)))
    True
    >>> again.net_.history[-1, "epoch"]
    2
    """
    from safetensors.numpy import load as load_tensors

    from ..training.core import resolve_device

    if device is not None:
        device = resolve_device(device)
    data = read_model_bytes(path)
    metadata = read_header(path, data)
    text = metadata.get("format_version", "")
    if not (text.isascii() and text.isdigit() and len(text) <= 9 and int(text) >= 1):
        raise not_a_model_file(path, data, f"its format version {text!r} is damaged (a "
                                           "positive whole number is written)")
    version = int(text)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} was written in model format {version} by sklearn_blend "
            f"{metadata.get('sklearn_blend_version', '?')}; this sklearn_blend reads formats up "
            f"to {FORMAT_VERSION}. Upgrade sklearn_blend to load it.")
    try:
        tensors = load_tensors(data)
    except Exception as error:  # noqa: BLE001 - safetensors raises its own error type
        raise not_a_model_file(path, data, f"its tensors cannot be read ({error}; truncated "
                                            "or damaged)") from None
    fields = {key: value for key, value in metadata.items() if key != "checksum"}
    if metadata.get("checksum") != checksum(fields, tensors):
        raise ValueError(
            f"{os.fspath(path)!r} is damaged: its checksum does not match its content (a "
            "truncated download, a disk or transfer error, or an edit). Nothing was loaded.")
    try:
        content = json.loads(metadata["content"], parse_constant=_reject_constant)
        tree = content["object"]
    except (KeyError, TypeError, ValueError, RecursionError):
        raise not_a_model_file(path, data, "its content is damaged") from None
    if type(tree) is not dict or tree.get("t") != "estimator":
        raise not_a_model_file(path, data, "its content is no estimator (save writes one "
                                           "estimator or pipeline per file)")
    current = _versions()
    if metadata.get("sklearn_blend_version") != current["sklearn_blend_version"]:
        warnings.warn(InconsistentVersionWarning(
            original_version=metadata.get("sklearn_blend_version"),
            current_version=current["sklearn_blend_version"]), stacklevel=2)
    decoder = Decoder(tensors, device, text_budget=(
        MAX_TEXT_BYTES + TEXT_EXPANSION * len(metadata["content"])), version=version)
    try:
        if metadata.get("sklearn_version") != current["sklearn_version"]:
            _warn_sklearn_version(tree, metadata.get("sklearn_version"),
                                  current["sklearn_version"])
        estimator = decoder.decode(tree)
    except (KeyError, IndexError, TypeError, AttributeError, RecursionError) as error:
        # a malformed node, or nesting deeper than any model's
        raise ValueError(f"{os.fspath(path)!r} is not a valid sklearn_blend model file: its "
                         f"content is malformed ({short(error)}).") from error
    if decoder.reset_caches:
        folders = ", ".join(f"{name}.{parameter}={short(folder)} (now {value!r})"
                            for name, parameter, folder, value in decoder.reset_caches)
        warnings.warn(
            f"the model file sets {folders}: loading resets each cache folder (a teacher "
            "cache to True, the in-process one; a Pipeline's memory to None). A cache folder "
            "holds pickles, which a later fit, refit or clone would load, and a model file "
            "must not choose that folder. Set it again with set_params for a folder you "
            "trust.", UserWarning, stacklevel=2)
    return estimator


def _reject_constant(name):
    raise ValueError(f"invalid JSON constant {name}")


def _warn_sklearn_version(tree, original, current):
    """scikit-learn's own warning for each of its estimator classes in the file."""
    from sklearn.exceptions import InconsistentVersionWarning as SklearnVersionWarning

    names = set()

    def walk(node):
        if isinstance(node, dict):
            if node.get("t") == "estimator" and isinstance(node.get("cls"), str) and not (
                    node["cls"].startswith("sklearn_blend:")):
                names.add(node["cls"].partition(":")[2])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    for name in sorted(names):
        warnings.warn(SklearnVersionWarning(estimator_name=name,
                                            current_sklearn_version=current,
                                            original_sklearn_version=original), stacklevel=3)

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
  :class:`~sklearn_blend.LFPPreprocessor`, :class:`~sklearn_blend.BandPower`; exactly these
  classes, not subclasses) and the helper classes their fitted state holds (behavior
  encodings, model configs, modalities, the built-in distillation strategies);
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
...     BlendEstimator(hidden_size=8, n_layers=1, ffn_size=16, max_epochs=2,
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

import dataclasses
import functools
import hashlib
import json
import math
import os
import secrets
import sys
import warnings
from pathlib import Path, PurePath

import numpy as np

__all__ = ["FORMAT_VERSION", "InconsistentVersionWarning", "SaveMixin", "load", "save",
           "write_atomic"]

#: the version of the file format this package writes; it reads files up to this version
FORMAT_VERSION = 1
#: ``format`` entry of the header metadata of every model file
FORMAT = "sklearn_blend"
#: the largest header read (safetensors' own limit)
MAX_HEADER_BYTES = 100_000_000
#: private attributes of scikit-learn estimators that hold code-backed objects (compiled loss
#: functions), rebuilt on load by calling the named method of the estimator, as ``fit`` does
REBUILT_ATTRIBUTES = {"_base_loss": "_get_loss"}
#: the largest item of a string or bytes array (or dtype) a file may hold, in bytes
MAX_ITEM_BYTES = 1 << 20
#: the string and bytes arrays of one file decode to at most this many bytes plus
#: :data:`TEXT_EXPANSION` times the length of its JSON: what its text can justify
MAX_TEXT_BYTES = 64 << 20
TEXT_EXPANSION = 16
#: builtin types that may appear as parameter values (say ``dtype=float``)
BUILTIN_TYPES = {"bool": bool, "int": int, "float": float, "complex": complex, "str": str,
                 "bytes": bytes, "object": object}


# ---------------------------------------------------------------------- atomic writes
def write_atomic(path, write):
    """Call ``write(tmp)`` with a new temporary path beside ``path``, then rename it to ``path``.

    The temporary file is created (exclusively) with the permissions a plain ``open`` gives,
    the process's umask applied; once ``write`` returns it is flushed to disk (``fsync``) and
    renamed over ``path``. A failure (an exception, a full disk) removes it and leaves
    ``path`` as it was, never half-written.
    """
    path = Path(path)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            mode = os.stat(tmp).st_mode & 0o777  # what a plain open gives, umask applied
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"could not create a temporary file beside {os.fspath(path)!r}")
    try:
        write(os.fspath(tmp))
        # a writer that replaces the file (safetensors' own writer does) leaves its own mode
        if os.stat(tmp).st_mode & 0o777 != mode:
            os.chmod(tmp, mode)
        handle = os.open(tmp, os.O_RDWR | getattr(os, "O_BINARY", 0))
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------- warnings, mixin
class InconsistentVersionWarning(UserWarning):
    """A model file written by another version of sklearn_blend is being loaded.

    As scikit-learn's warning of the same name: the model loads, but its behaviour may differ
    from the version that wrote it (new defaults, fixed bugs); refit it with this version to be
    sure. ``original_version`` and ``current_version`` say which.
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
    """Gives an estimator :meth:`save`: the safe model file of :mod:`sklearn_blend.persistence`."""

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


# ---------------------------------------------------------------------- the allow-list
@functools.cache
def _package_classes():
    """``{stored name: class}`` of the package's classes that a file may hold, by kind."""
    from .data.behavior import BehaviorEncoding
    from .distill import Correlation, Feature, Hard, LatentAlignment, Soft
    from .estimators.adapters import PerBin
    from .estimators.crossmodal import CrossModalEstimator, MaskedAutoencoder
    from .estimators.neds import NedsEstimator, _Roles
    from .estimators.neurons import NeuronEmbedding
    from .estimators.smoothing import SmoothingGLM
    from .estimators.trials import BlendEstimator, BlendTeacher
    from .lfp import BandPower, LFPPreprocessor
    from .modalities import Modality
    from .models import LFADSConfig, NDTConfig, NeuPRINTConfig
    from .models.neds import NedsConfig
    from .models.sessions import SessionConfig

    def named(*classes):
        return {f"sklearn_blend:{cls.__name__}": cls for cls in classes}

    return {
        "estimator": named(BlendEstimator, BlendTeacher, NeuronEmbedding, NedsEstimator,
                           CrossModalEstimator, MaskedAutoencoder, SmoothingGLM, PerBin,
                           LFPPreprocessor, BandPower),
        "object": {"sklearn_blend:BehaviorEncoding": BehaviorEncoding,
                   "sklearn_blend:NedsRoles": _Roles},
        "dataclass": named(NedsConfig, SessionConfig, NDTConfig, LFADSConfig, NeuPRINTConfig,
                           Modality),
        "strategy": named(Hard, Soft, Feature, Correlation, LatentAlignment),
    }


def _stored_name(kind, cls):
    """The name under which ``cls`` (of ``kind``) is stored, or ``None`` if not allowed."""
    for name, allowed in _package_classes()[kind].items():
        if allowed is cls:
            return name
    return None


@functools.cache
def _sklearn_classes():
    """``{"module:Class": class}`` of scikit-learn's public estimators, built once.

    ``sklearn.utils.discovery.all_estimators`` finds them: it imports scikit-learn's public
    modules only (never tests, ``conftest`` or ``experimental``) and keeps the non-abstract
    ``BaseEstimator`` subclasses they expose, ``Pipeline``, ``FeatureUnion`` and
    ``ColumnTransformer`` included, the searches (``GridSearchCV`` and the others deriving from
    ``BaseSearchCV``) left out: :func:`save` refuses them. Each is stored under the public module
    that exposes it (``sklearn.linear_model:PoissonRegressor``). Loading looks names up here
    and never imports a module named by a file.
    """
    from sklearn.model_selection._search import BaseSearchCV
    from sklearn.utils.discovery import all_estimators

    classes = {}
    for name, cls in all_estimators():
        if issubclass(cls, BaseSearchCV):
            continue  # searches are not stored (see _Encoder._estimator)
        parts = cls.__module__.split(".")
        public = ".".join(parts[: next((i for i, part in enumerate(parts)
                                        if part.startswith("_")), len(parts))])
        if getattr(sys.modules.get(public), name, None) is not cls:
            public = cls.__module__  # not exposed above its own module
        classes[f"{public}:{name}"] = cls
    return classes


@functools.cache
def _sklearn_names():
    """``{class: "module:Class"}``, the inverse of :func:`_sklearn_classes`."""
    return {cls: name for name, cls in _sklearn_classes().items()}


def _sklearn_class(name):
    """The allow-listed scikit-learn estimator class stored as ``name`` (never imported).

    ``name`` is ``"public.module:Class"``; files written before the public names stored the
    class's own module (``"sklearn.linear_model._ridge:RidgeCV"``), which is accepted when it
    is that allow-listed class's ``__module__``.
    """
    classes = _sklearn_classes()
    if name in classes:
        return classes[name]
    module, _, qualname = name.partition(":")
    for cls in classes.values():
        if cls.__name__ == qualname and cls.__module__ == module:
            return cls
    if module == "sklearn" or module.startswith("sklearn."):
        import sklearn

        raise ValueError(
            f"the file names class {name!r}, which is not on the allow-list: this scikit-learn "
            f"({sklearn.__version__}) has no public estimator {qualname} in {module}. If the "
            "file was written with another version of scikit-learn, load it with that version."
        )
    raise ValueError(f"the file names class {name!r}, which is not on the allow-list.")


def _registered_name(registry, obj, attribute=None):
    for name, entry in registry.items():
        if (entry if attribute is None else getattr(entry, attribute)) is obj:
            return name
    return None


def _net_types():
    from skorch import NeuralNet

    from .training.core import ObjectiveNet

    return NeuralNet, ObjectiveNet


# ---------------------------------------------------------------------- encoding
def _numeric(dtype):
    """Whether arrays of ``dtype`` are stored as safetensors tensors of that dtype."""
    return dtype.kind == "b" or (dtype.kind in "iu" and dtype.itemsize in (1, 2, 4, 8)) or (
        dtype.kind == "f" and dtype.itemsize in (2, 4, 8))


def _contiguous(array):
    """``array`` C-contiguous, of any dimension (``np.ascontiguousarray`` makes 0-d 1-d)."""
    array = np.asarray(array)
    return array if array.flags.c_contiguous else array.copy(order="C")


def _torch_to_numpy(tensor):
    """``(array, special dtype or None)`` of a tensor, on the CPU."""
    import torch

    tensor = tensor.detach().cpu().contiguous()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy(), "bfloat16"
    return tensor.numpy(), None


class _Encoder:
    """Turns an object tree into JSON-able nodes plus a dict of NumPy arrays (the tensors)."""

    def __init__(self):
        self.tensors = {}
        self.memo = {}  # id(object) -> (node id, object); keeps each object alive

    # -- helpers
    def _new_id(self, obj):
        node_id = len(self.memo)
        self.memo[id(obj)] = (node_id, obj)
        return node_id

    def _seen(self, obj):
        entry = self.memo.get(id(obj))
        return None if entry is None else {"t": "ref", "id": entry[0]}

    def _tensor(self, name, array):
        array = _contiguous(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        self.tensors[name] = array
        return name

    def _refuse(self, where, value, why=None):
        raise ValueError(
            f"cannot store {where} = {_short(value)}: "
            + (why or f"objects of type {type(value).__module__}.{type(value).__qualname__} "
                      "are not on the allow-list of the safe model format")
            + ". Save this model with joblib.dump or pickle instead, and load such files only "
              "from sources you trust (see sklearn_blend.persistence)."
        )

    # -- the dispatcher
    def encode(self, value, where):
        import torch

        if value is None or type(value) in (bool, str, int):
            return value
        if type(value) is float:
            if math.isfinite(value):
                return value
            return {"t": "float", "v": "nan" if math.isnan(value) else
                    ("inf" if value > 0 else "-inf")}
        if isinstance(value, np.generic):
            return self._scalar(value, where)
        if isinstance(value, np.ndarray):
            return self._array(value, where)
        if isinstance(value, torch.Tensor):
            return self._torch(value, where)
        if type(value) is list:
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if type(value) is tuple:
            return {"t": "tuple", "v": [self.encode(v, f"{where}[{i}]")
                                        for i, v in enumerate(value)]}
        if type(value) is dict:
            return self._dict(value, where)
        if type(value) in (set, frozenset):
            return {"t": type(value).__name__,
                    "v": [self.encode(v, f"{where} item") for v in value]}
        if type(value) is complex:
            return {"t": "complex", "v": [self.encode(value.real, where),
                                          self.encode(value.imag, where)]}
        if type(value) is bytes:
            return {"t": "bytes", "v": value.hex()}
        if isinstance(value, np.dtype):
            if value.fields is not None or value.subdtype is not None:
                self._refuse(where, value, "structured NumPy dtypes are not supported")
            return {"t": "dtype", "v": value.str}
        if isinstance(value, type) and issubclass(value, np.generic):
            return {"t": "nptype", "v": np.dtype(value).str}
        if isinstance(value, type) and value in BUILTIN_TYPES.values():
            return {"t": "type", "v": value.__name__}
        if type(value) is np.random.RandomState:
            return {"t": "RandomState",
                    "v": self.encode(value.get_state(legacy=True), f"{where} state")}
        if isinstance(value, PurePath):
            return {"t": "path", "v": os.fspath(value)}
        return self._object(value, where)

    def _scalar(self, value, where):
        dtype = value.dtype
        if dtype.kind not in "biufUS" or (dtype.kind == "f" and dtype.itemsize > 8):
            self._refuse(where, value, f"NumPy scalars of dtype {dtype} are not supported")
        return {"t": "npscalar", "dtype": dtype.str, "v": self.encode(value.item(), where)}

    def _array(self, value, where):
        seen = self._seen(value)
        if seen is not None:
            return seen
        if type(value) not in (np.ndarray, np.memmap):
            self._refuse(where, value, f"array subclasses ({type(value).__name__}) are not "
                                       "supported")
        node_id = self._new_id(value)
        dtype = value.dtype
        node = {"t": "ndarray", "id": node_id, "dtype": dtype.str,
                "shape": list(value.shape)}
        if value.ndim > 1 and value.flags.f_contiguous and not value.flags.c_contiguous:
            node["order"] = "F"
        if _numeric(dtype):
            node["tensor"] = self._tensor(f"array{node_id}", value)
        elif dtype.kind in "fcmM" and dtype.fields is None and dtype.itemsize <= 16:
            # numbers safetensors has no dtype for: their bytes, as uint8
            contiguous = _contiguous(value)
            node["tensor"] = self._tensor(f"array{node_id}",
                                          contiguous.reshape(-1).view(np.uint8))
            node["bytes"] = True
        elif dtype.kind in "USO":
            node["items"] = [self.encode(v, f"{where}[...]") for v in value.ravel().tolist()]
        else:
            self._refuse(where, value, f"NumPy arrays of dtype {dtype} are not supported")
        return node

    def _torch(self, value, where):
        seen = self._seen(value)
        if seen is not None:
            return seen
        node_id = self._new_id(value)
        array, special = _torch_to_numpy(value)
        node = {"t": "torch", "id": node_id, "tensor": self._tensor(f"tensor{node_id}", array),
                "requires_grad": bool(value.requires_grad)}
        if special:
            node["torch_dtype"] = special
        return node

    def _dict(self, value, where):
        if all(type(k) is str for k in value):
            return {"t": "dict", "s": {k: self.encode(v, f"{where}[{k!r}]")
                                       for k, v in value.items()}}
        keys, values = [], []
        for k, v in value.items():
            keys.append(self.encode(k, f"{where} key {k!r}"))
            values.append(self.encode(v, f"{where}[{k!r}]"))
        return {"t": "dict", "k": keys, "v": values}

    def _object(self, value, where):
        from sklearn.base import BaseEstimator
        from sklearn.utils._metadata_requests import MetadataRequest

        from .distill import STRATEGIES, Strategy
        from .models.base import BASES

        net_types = _net_types()
        if isinstance(value, net_types[0]):
            seen = self._seen(value)
            if seen is not None:
                return seen
            self._refuse(where, value, "a skorch net is stored only as a fitted attribute of "
                                       "the sklearn_blend estimator that trained it")
        if isinstance(value, BaseEstimator):
            return self._estimator(value, where)
        if type(value).__module__.startswith("joblib") and type(value).__name__ == "Memory":
            self._refuse(where, value, "a joblib.Memory is not stored; give the cache as its "
                                       "folder (a str) before saving")
        if type(value) is MetadataRequest:
            return self._metadata_request(value, where)
        if isinstance(value, Strategy):
            return self._strategy(value, where)
        if isinstance(value, type) and issubclass(value, Strategy):
            builtin = _stored_name("strategy", value)
            if builtin is not None:  # a built-in class, whatever its name maps to now
                return {"t": "registered_strategy", "cls": builtin}
            name = _registered_name(STRATEGIES, value)
            if name is not None:
                return {"t": "registered_strategy", "name": name}
            self._refuse(where, value, "a Strategy class is code; the safe format stores "
                                       "strategies by their registered name. Register it "
                                       "(sklearn_blend.register_strategy(name, cls)) and pass "
                                       "the name, also in the process that loads the file")
        if callable(value):
            name = _registered_name(BASES, value, "builder")
            if name is not None:
                return {"t": "registered_base", "name": name}
            self._refuse(where, value, "a function or class (a user's own base, strategy or "
                                       "callable) is code, which the safe format never stores; "
                                       "register a base with sklearn_blend.models.register_base "
                                       "(a strategy with sklearn_blend.register_strategy) and "
                                       "pass its name, also in the process that loads the file")
        name = _stored_name("dataclass", type(value))
        if name is not None:
            fields = {field.name: self.encode(getattr(value, field.name),
                                              f"{where}.{field.name}")
                      for field in dataclasses.fields(value) if field.init}
            return {"t": "dataclass", "cls": name, "fields": {"t": "dict", "s": fields}}
        name = _stored_name("object", type(value))
        if name is not None:
            seen = self._seen(value)
            if seen is not None:
                return seen
            node_id = self._new_id(value)
            return {"t": "object", "id": node_id, "cls": name,
                    "state": self._dict(dict(vars(value)), where)}
        self._refuse(where, value)

    def _strategy(self, value, where):
        import inspect

        from .distill import STRATEGIES

        cls = type(value)
        registered = _registered_name(STRATEGIES, cls)
        builtin = _stored_name("strategy", cls)
        if registered is None and builtin is None:
            self._refuse(where, value, f"strategy class {cls.__qualname__} is not registered by "
                                       "name; register it (sklearn_blend.register_strategy) in "
                                       "the processes that save and load the file")
        params = {}
        for name, parameter in inspect.signature(cls).parameters.items():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or not (
                    hasattr(value, name)):
                self._refuse(where, value, f"{cls.__qualname__} keeps no attribute {name!r} "
                                           "for its constructor argument, so it cannot be "
                                           "rebuilt from data")
            params[name] = self.encode(getattr(value, name), f"{where}.{name}")
        node = {"t": "strategy", "params": {"t": "dict", "s": params}}
        if builtin is not None:
            node["cls"] = builtin
        else:
            node["registered"] = registered
        return node

    def _metadata_request(self, value, where):
        requests = {}
        for method, request in vars(value).items():
            if method != "owner" and getattr(request, "_requests", None):
                requests[method] = self.encode(dict(request._requests), f"{where}.{method}")
        return {"t": "metadata_request", "owner": self.encode(value.owner, f"{where}.owner"),
                "requests": requests}

    def _estimator(self, value, where):
        seen = self._seen(value)
        if seen is not None:
            return seen
        cls = type(value)
        name = _stored_name("estimator", cls)
        package = name is not None
        if not package:
            name = _sklearn_names().get(cls)
            if name is None:
                from sklearn.model_selection._search import BaseSearchCV

                why = (f"estimator class {cls.__module__}.{cls.__qualname__} is not on the "
                       "allow-list (the package's estimators, exactly, and scikit-learn's "
                       "public estimators)")
                if isinstance(value, BaseSearchCV):  # off the list: its cv and grid are code
                    why = ("a fitted search is not stored by the safe format; save its "
                           "best_estimator_ (the model its predict uses), and keep "
                           "cv_results_ as a table")
                self._refuse(where, value, why)
        node_id = self._new_id(value)
        net_class = _net_types()[0]
        state = {}
        for attribute, item in vars(value).items():
            path = f"{where}.{attribute}"
            if isinstance(item, net_class):
                if not package or not hasattr(value, "_net_builder"):
                    self._refuse(path, item, "a skorch net is stored only as a fitted attribute "
                                             "of the sklearn_blend estimator that trained it")
                state[attribute] = self._net(item, path)
            elif (not package and attribute in REBUILT_ATTRIBUTES
                  and hasattr(value, REBUILT_ATTRIBUTES[attribute])):
                rebuilt = getattr(value, REBUILT_ATTRIBUTES[attribute])()
                if type(rebuilt) is not type(item):
                    self._refuse(path, item, "it differs from what the estimator rebuilds")
                state[attribute] = {"t": "rebuilt"}
            else:
                state[attribute] = self.encode(item, path)
        return {"t": "estimator", "id": node_id, "cls": name, "state": state}

    def _net(self, net, where):
        seen = self._seen(net)
        if seen is not None:
            return seen
        object_net = _net_types()[1]
        if not isinstance(net, object_net) or not getattr(net, "initialized_", False):
            self._refuse(where, net, "only initialized nets of the package's training core "
                                     "(ObjectiveNet) are stored")
        node_id = self._new_id(net)
        prefix = f"net{node_id}."
        parts = {"module": net.module_.state_dict(),
                 "criterion": {key: value for key, value in net.criterion_.state_dict().items()
                               if not key.startswith("teacher.")}}
        node = {"t": "net", "id": node_id, "description": str(net.description),
                "monitor": str(net.monitor)}
        special = {}
        for part, state in parts.items():
            for key, tensor in state.items():
                array, dtype = _torch_to_numpy(tensor)
                name = self._tensor(f"{prefix}{part}.{key}", array)
                if dtype:
                    special[name] = dtype
            node[part] = list(state)
        node["torch_dtypes"] = special
        # which weights are frozen (a teacher's, fixed sessions') and the mode: part of the
        # fitted state, and CPU kernels differ in the last bits with them (GRUs)
        node["frozen"] = {part: [name for name, parameter in _own_parameters(net, part)
                                 if not parameter.requires_grad] for part in parts}
        node["training"] = bool(net.module_.training)
        teacher = getattr(net.criterion_, "teacher", None)
        width = getattr(teacher, "latent_width", None)
        node["objective"] = {"teacher": teacher is not None,
                             "teacher_width": None if width is None else int(width)}
        node["history"] = self.encode(list(net.history_), f"{where}.history")
        node["flags"] = {flag: bool(getattr(net, flag, False))
                         for flag in ("interrupted_", "stopped_early_")}
        return node


def _own_parameters(net, part):
    """``(name, parameter)`` of the net's model (``part="module"``) or of its objective, less
    the frozen teacher's (stored with the teacher)."""
    if part == "module":
        return list(net.module_.named_parameters())
    return [(name, parameter) for name, parameter in net.criterion_.named_parameters()
            if not name.startswith("teacher.")]


def _short(value):
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken repr must not hide the real error
        text = object.__repr__(value)
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------- decoding
class _Decoder:
    """Rebuilds the object tree of the JSON nodes, the tensors and the allow-list."""

    def __init__(self, tensors, device, text_budget=MAX_TEXT_BYTES):
        self.tensors = tensors
        self.device = device
        self.memo = {}
        self.classes = _package_classes()
        self.warned_device = False
        self.text_budget = text_budget  # bytes left for string and bytes arrays
        self.reset_caches = []  # (estimator, folder) whose teacher_cache was reset

    def _fail(self, message):
        raise ValueError(f"invalid model file: {message}.")

    def _remember(self, node, obj):
        node_id = node.get("id")
        if not isinstance(node_id, int) or node_id in self.memo:
            self._fail("an object has a missing or repeated id")
        self.memo[node_id] = obj
        return obj

    def _array_of(self, name):
        if not isinstance(name, str) or name not in self.tensors:
            self._fail(f"tensor {name!r} is missing")
        return self.tensors[name]

    def decode(self, node):
        if node is None or type(node) in (bool, str, int, float):
            return node
        if type(node) is list:
            return [self.decode(v) for v in node]
        if type(node) is not dict or not isinstance(node.get("t"), str):
            self._fail(f"unexpected JSON value {_short(node)}")
        handler = self.HANDLERS.get(node["t"])
        if handler is None:
            self._fail(f"unknown kind of object {node['t']!r}")
        return handler(self, node)

    def _plain_dtype(self, text):
        """The dtype ``text`` names, if it is of a kind the encoder writes (numbers, times,
        strings and bytes of at most :data:`MAX_ITEM_BYTES` an item, objects; no structured,
        sub-array or void dtypes)."""
        if not isinstance(text, str):
            self._fail(f"bad dtype {_short(text)}")
        try:
            dtype = np.dtype(text)
        except Exception:  # noqa: BLE001 - NumPy raises several types for a bad string
            self._fail(f"bad dtype {_short(text)}")
        if dtype.fields is not None or dtype.subdtype is not None or (
                dtype.kind not in "biufcmMUSO"):
            self._fail(f"dtype {_short(text)} is not on the allow-list")
        if dtype.kind in "US" and dtype.itemsize > MAX_ITEM_BYTES:
            self._fail(f"dtype {dtype} has items of {dtype.itemsize} bytes, more than "
                       f"{MAX_ITEM_BYTES}")
        return dtype

    # -- plain data
    def _ref(self, node):
        if node.get("id") not in self.memo:
            self._fail(f"a reference to an unknown object {node.get('id')!r}")
        return self.memo[node["id"]]

    def _float(self, node):
        values = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
        if node.get("v") not in values:
            self._fail(f"bad float {node.get('v')!r}")
        return values[node["v"]]

    def _tuple(self, node):
        return tuple(self.decode(v) for v in node["v"])

    def _set(self, node):
        return {self.decode(v) for v in node["v"]}

    def _frozenset(self, node):
        return frozenset(self.decode(v) for v in node["v"])

    def _complex(self, node):
        real, imag = (self.decode(v) for v in node["v"])
        return complex(real, imag)

    def _bytes(self, node):
        return bytes.fromhex(node["v"])

    def _dict(self, node):
        if "s" in node:
            if type(node["s"]) is not dict:
                self._fail("bad mapping")
            return {key: self.decode(value) for key, value in node["s"].items()}
        keys, values = node.get("k"), node.get("v")
        if type(keys) is not list or type(values) is not list or len(keys) != len(values):
            self._fail("bad mapping")
        return {self.decode(k): self.decode(v) for k, v in zip(keys, values)}

    def _dtype(self, node):
        return self._plain_dtype(node["v"])

    def _nptype(self, node):
        return self._plain_dtype(node["v"]).type

    def _type(self, node):
        if node.get("v") not in BUILTIN_TYPES:
            self._fail(f"type {node.get('v')!r} is not on the allow-list")
        return BUILTIN_TYPES[node["v"]]

    def _npscalar(self, node):
        dtype = self._plain_dtype(node["dtype"])
        if dtype.kind not in "biufUS":
            self._fail(f"scalar dtype {dtype} is not on the allow-list")
        return dtype.type(self.decode(node["v"]))

    def _RandomState(self, node):  # noqa: N802 - the class's name
        state = np.random.RandomState()
        state.set_state(self.decode(node["v"]))
        return state

    def _path(self, node):
        return Path(node["v"])

    def _ndarray(self, node):
        dtype, shape = self._plain_dtype(node["dtype"]), node["shape"]
        if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape):
            self._fail(f"bad array shape {_short(shape)}")
        shape, size = tuple(shape), math.prod(shape)
        if "tensor" in node:  # as many bytes as the file holds
            stored = self._array_of(node["tensor"])
            if node.get("bytes"):  # numbers safetensors has no dtype for, as their bytes
                if dtype.kind not in "fcmM" or dtype.itemsize > 16 or stored.dtype != np.uint8 \
                        or stored.ndim != 1 or stored.size != size * dtype.itemsize:
                    self._fail(f"tensor {node['tensor']!r} is not the bytes of a {dtype} "
                               f"array of shape {shape}")
                array = stored.copy().view(dtype).reshape(shape)
            else:
                if not _numeric(dtype) or stored.dtype != dtype.newbyteorder("<"):
                    self._fail(f"tensor {node['tensor']!r} is {stored.dtype}, not {dtype}")
                array = stored.astype(dtype, copy=True)  # byte order as saved; writeable
            if array.shape != shape:
                self._fail(f"tensor {node['tensor']!r} has shape {array.shape}, not {shape}")
        elif dtype.kind in "USO":
            items = node["items"]
            if type(items) is not list or len(items) != size:
                self._fail(f"an array of shape {shape} without its {size} items")
            if dtype.kind != "O":
                self.text_budget -= size * dtype.itemsize
                if self.text_budget < 0:
                    self._fail("its string arrays are far larger than its text")
                array = np.array([self.decode(v) for v in items], dtype=dtype).reshape(shape)
            else:
                array = np.empty(size, dtype=object)
                for i, item in enumerate(items):  # one by one: lists stay objects
                    array[i] = self.decode(item)
                array = array.reshape(shape)
        else:
            self._fail(f"array dtype {dtype} is not on the allow-list")
        if node.get("order") == "F":
            array = np.asfortranarray(array)
        return self._remember(node, array)

    def _torch(self, node):
        import torch

        array = self._array_of(node["tensor"])
        special = node.get("torch_dtype")
        if special is not None and (special != "bfloat16" or array.dtype != np.int16):
            self._fail(f"tensor {node['tensor']!r} is {array.dtype}, not the bits of {special}")
        tensor = torch.from_numpy(array.copy())
        if special == "bfloat16":
            tensor = tensor.view(torch.bfloat16)
        tensor.requires_grad_(bool(node.get("requires_grad")))
        return self._remember(node, tensor)

    # -- allow-listed objects
    def _registered_strategy(self, node):
        from .distill import STRATEGIES

        if "cls" in node:
            if node["cls"] not in self.classes["strategy"]:
                self._fail(f"strategy class {node['cls']!r} is not on the allow-list")
            return self.classes["strategy"][node["cls"]]
        if node.get("name") not in STRATEGIES:
            raise ValueError(
                f"the model uses strategy {node.get('name')!r}, which is not registered in this "
                "process: register it with sklearn_blend.register_strategy before loading.")
        return STRATEGIES[node["name"]]

    def _registered_base(self, node):
        from .models.base import BASES

        if node.get("name") not in BASES:
            raise ValueError(
                f"the model uses base {node.get('name')!r}, which is not registered in this "
                "process: register it with sklearn_blend.models.register_base before loading.")
        return BASES[node["name"]].builder

    def _strategy(self, node):
        if "registered" in node:
            cls = self._registered_strategy({"name": node["registered"]})
        elif node.get("cls") in self.classes["strategy"]:
            cls = self.classes["strategy"][node["cls"]]
        else:
            self._fail(f"strategy class {node.get('cls')!r} is not on the allow-list")
        return cls(**self.decode(node["params"]))

    def _dataclass(self, node):
        cls = self.classes["dataclass"].get(node.get("cls"))
        if cls is None:
            self._fail(f"class {node.get('cls')!r} is not on the allow-list")
        return cls(**self.decode(node["fields"]))

    def _object(self, node):
        cls = self.classes["object"].get(node.get("cls"))
        if cls is None:
            self._fail(f"class {node.get('cls')!r} is not on the allow-list")
        obj = self._remember(node, cls.__new__(cls))
        obj.__dict__.update(self.decode(node["state"]))
        return obj

    def _metadata_request(self, node):
        from sklearn.utils._metadata_requests import MetadataRequest

        request = MetadataRequest(owner=self.decode(node["owner"]))
        for method, params in node["requests"].items():
            if not isinstance(getattr(request, method, None), type(request.fit)):
                self._fail(f"unknown metadata-routing method {method!r}")
            for param, alias in self.decode(params).items():
                getattr(request, method).add_request(param=param, alias=alias)
        return request

    def _estimator(self, node):
        name = node.get("cls")
        if not isinstance(name, str):
            self._fail("an estimator without a class")
        if name.startswith("sklearn_blend:"):
            cls = self.classes["estimator"].get(name)
            if cls is None:
                self._fail(f"class {name!r} is not on the allow-list")
        else:
            cls = _sklearn_class(name)
        obj = self._remember(node, cls.__new__(cls))
        nets, rebuilt = [], []
        state = node.get("state")
        if type(state) is not dict:
            self._fail(f"{name} has no state")
        for attribute, value in state.items():
            kind = value.get("t") if type(value) is dict else None
            if kind == "net":
                nets.append((attribute, value))
                obj.__dict__[attribute] = None  # keeps the attribute order
            elif kind == "rebuilt" and attribute in REBUILT_ATTRIBUTES:
                rebuilt.append(attribute)
                obj.__dict__[attribute] = None
            else:
                obj.__dict__[attribute] = self.decode(value)
        cache = obj.__dict__.get("teacher_cache")
        if isinstance(cache, (str, bytes, os.PathLike)):
            # a folder cache holds pickles that a later fit would load: a file must not
            # point the model at one
            obj.__dict__["teacher_cache"] = True
            self.reset_caches.append((type(obj).__name__, cache))
        if "device_" in obj.__dict__ and name.startswith("sklearn_blend:"):
            obj.__dict__["device_"] = self._device_for(obj.__dict__["device_"])
        for attribute, value in nets:
            obj.__dict__[attribute] = self._net(obj, attribute, value)
        for attribute in rebuilt:
            obj.__dict__[attribute] = getattr(obj, REBUILT_ATTRIBUTES[attribute])()
        return obj

    def _device_for(self, saved):
        from .training.core import resolve_device

        if self.device is not None:
            return self.device
        try:
            return resolve_device(saved)
        except (TypeError, ValueError) as error:
            if not self.warned_device:
                self.warned_device = True
                warnings.warn(
                    f"the model was fitted on device {saved!r}, which this machine does not "
                    f"have ({error}); it is loaded on the CPU. Choose the device with "
                    "sklearn_blend.load(path, device=...).",
                    UserWarning, stacklevel=4,
                )
            return "cpu"

    def _net(self, owner, attribute, node):
        import torch
        from skorch.history import History

        from .training import core

        if not hasattr(owner, "_net_builder"):
            self._fail(f"{type(owner).__name__} has no net to rebuild")
        self._remember(node, None)
        device = getattr(owner, "device_", None) or "cpu"
        what = f"{type(owner).__name__}.{attribute}"
        try:
            build = owner._net_builder(attribute, dict(node["objective"]))
            config = dataclasses.replace(core.training_config(owner, device),
                                         monitor=node["monitor"])
            net = core.initialized_net(build, config, node["description"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"could not rebuild the net {what} of the model file: "
                             f"{error}") from error
        special = node.get("torch_dtypes", {})

        def state(part):
            tensors = {}
            for key in node[part]:
                name = f"net{node['id']}.{part}.{key}"
                tensor = torch.from_numpy(self._array_of(name).copy())
                if special.get(name) == "bfloat16":
                    tensor = tensor.view(torch.bfloat16)
                tensors[key] = tensor
            return tensors

        try:
            missing, unexpected = net.module_.load_state_dict(state("module"), strict=False)
            if missing or unexpected:
                raise RuntimeError(f"missing weights {missing}, unexpected {unexpected}")
            own = [key for key in net.criterion_.state_dict() if not key.startswith("teacher.")]
            if sorted(own) != sorted(node["criterion"]):
                raise RuntimeError(f"the objective has weights {own}, the file "
                                   f"{node['criterion']}")
            net.criterion_.load_state_dict(state("criterion"), strict=False)
        except RuntimeError as error:
            raise ValueError(
                f"the weights of {what} in the file do not fit the net the estimator builds "
                f"from its parameters ({' '.join(str(error).split())[:500]}); was it saved "
                "after set_params changed its architecture without a refit?") from error
        frozen = node.get("frozen", {})
        for part in ("module", "criterion"):
            for name, parameter in _own_parameters(net, part):
                parameter.requires_grad_(name not in frozen.get(part, ()))
        net.module_.train(bool(node.get("training", False)))
        net.history_ = History(self.decode(node["history"]))
        for flag, value in node.get("flags", {}).items():
            if flag in ("interrupted_", "stopped_early_"):
                setattr(net, flag, bool(value))
        self.memo[node["id"]] = net
        return net


#: the decoder of each kind of node (the nets are decoded with their estimators)
_Decoder.HANDLERS = {
    "ref": _Decoder._ref, "float": _Decoder._float, "tuple": _Decoder._tuple,
    "set": _Decoder._set, "frozenset": _Decoder._frozenset, "complex": _Decoder._complex,
    "bytes": _Decoder._bytes, "dict": _Decoder._dict, "dtype": _Decoder._dtype,
    "nptype": _Decoder._nptype, "type": _Decoder._type, "npscalar": _Decoder._npscalar,
    "RandomState": _Decoder._RandomState, "path": _Decoder._path,
    "ndarray": _Decoder._ndarray, "torch": _Decoder._torch,
    "registered_strategy": _Decoder._registered_strategy,
    "registered_base": _Decoder._registered_base, "strategy": _Decoder._strategy,
    "dataclass": _Decoder._dataclass, "object": _Decoder._object,
    "metadata_request": _Decoder._metadata_request, "estimator": _Decoder._estimator,
}


# ---------------------------------------------------------------------- the file
def _checksum(fields, tensors):
    """SHA-256 over the header fields (JSON) and every tensor (name, dtype, shape, bytes)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(fields, sort_keys=True).encode())
    for name in sorted(tensors):
        array = _contiguous(tensors[name])
        digest.update(json.dumps([name, array.dtype.name, list(array.shape)]).encode())
        digest.update(array.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def _versions():
    import sklearn
    import torch

    from . import __version__

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
    encoder = _Encoder()
    tree = encoder.encode(estimator, type(estimator).__name__)
    fields = {"format": FORMAT, "format_version": str(FORMAT_VERSION), **_versions(),
              "content": json.dumps({"object": tree}, allow_nan=False, separators=(",", ":"))}
    metadata = dict(fields, checksum=_checksum(fields, encoder.tensors))

    def write(tmp):
        from safetensors.numpy import save_file

        save_file(encoder.tensors, tmp, metadata=metadata)

    write_atomic(path, write)


def _not_a_model_file(path, data, reason):
    if data[:1] == b"\x80" or data[:2] in (b"x\x9c", b"x\x01", b"x\xda"):
        hint = (" It looks like a pickle (a joblib.dump or pickle file): sklearn_blend.load "
                "reads only the safe format that save writes, because loading a pickle runs "
                "code. If you trust its source, load it with joblib.load.")
    elif data[:2] == b"PK":
        hint = " It looks like a zip archive (torch.save writes those)."
    else:
        hint = ""
    return ValueError(f"{os.fspath(path)!r} is not a valid sklearn_blend model file: "
                      f"{reason}.{hint}")


def _header(path, data):
    """The header metadata of a safetensors file (validated as ours)."""
    if len(data) < 8:
        raise _not_a_model_file(path, data, "the file is too short (truncated?)")
    size = int.from_bytes(data[:8], "little")
    if size > min(len(data) - 8, MAX_HEADER_BYTES):
        raise _not_a_model_file(path, data, "its header is cut off or not a safetensors "
                                            "header (truncated or another kind of file)")
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _not_a_model_file(path, data, "its header is not valid (a damaged file, or "
                                            "another kind of file)") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise _not_a_model_file(path, data, "it is not a model written by sklearn_blend.save "
                                            "(its header has no sklearn_blend metadata)")
    if not all(isinstance(v, str) for v in metadata.values()):
        raise _not_a_model_file(path, data, "its metadata is damaged")
    return metadata


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

    from .training.core import resolve_device

    if device is not None:
        device = resolve_device(device)
    data = Path(path).read_bytes()
    metadata = _header(path, data)
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise _not_a_model_file(path, data, "its format version is damaged") from None
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} was written in model format {version} by sklearn_blend "
            f"{metadata.get('sklearn_blend_version', '?')}; this sklearn_blend reads formats up "
            f"to {FORMAT_VERSION}. Upgrade sklearn_blend to load it.")
    try:
        tensors = load_tensors(data)
    except Exception as error:  # noqa: BLE001 - safetensors raises its own error type
        raise _not_a_model_file(path, data, f"its tensors cannot be read ({error}; truncated "
                                            "or damaged)") from None
    fields = {key: value for key, value in metadata.items() if key != "checksum"}
    if metadata.get("checksum") != _checksum(fields, tensors):
        raise ValueError(
            f"{os.fspath(path)!r} is damaged: its checksum does not match its content (a "
            "truncated download, a disk or transfer error, or an edit). Nothing was loaded.")
    try:
        content = json.loads(metadata["content"], parse_constant=_reject_constant)
        tree = content["object"]
    except (KeyError, TypeError, ValueError, RecursionError):
        raise _not_a_model_file(path, data, "its content is damaged") from None
    current = _versions()
    if metadata.get("sklearn_blend_version") != current["sklearn_blend_version"]:
        warnings.warn(InconsistentVersionWarning(
            original_version=metadata.get("sklearn_blend_version"),
            current_version=current["sklearn_blend_version"]), stacklevel=2)
    decoder = _Decoder(tensors, device, text_budget=(
        MAX_TEXT_BYTES + TEXT_EXPANSION * len(metadata["content"])))
    try:
        if metadata.get("sklearn_version") != current["sklearn_version"]:
            _warn_sklearn_version(tree, metadata.get("sklearn_version"),
                                  current["sklearn_version"])
        estimator = decoder.decode(tree)
    except (KeyError, IndexError, TypeError, AttributeError, RecursionError) as error:
        # a malformed node, or nesting deeper than any model's
        raise ValueError(f"{os.fspath(path)!r} is not a valid sklearn_blend model file: its "
                         f"content is malformed ({_short(error)}).") from error
    if decoder.reset_caches:
        folders = ", ".join(f"{name}.teacher_cache={_short(folder)}"
                            for name, folder in decoder.reset_caches)
        warnings.warn(
            f"the model file sets {folders}; loading resets it to True (the in-process "
            "cache). A folder cache holds pickles, which a later fit or clone would load, "
            "and a model file must not choose that folder. Set it again with "
            "set_params(teacher_cache=folder) for a folder you trust.",
            UserWarning, stacklevel=2)
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

"""The allow-list of the safe model format: the classes a model file may name.

It is filled where the classes are defined, never by importing them here:

* every estimator of the package, and every subclass of one (a user's too), is registered
  when its class is created (:class:`~sklearn_blend.persistence.SaveMixin` does it), under
  ``"sklearn_blend:<Name>"`` for the package's own classes and ``"<module>:<qualname>"`` for
  others; classes whose name starts with an underscore are not (private bases);
* the helper classes that fitted state holds (behavior encodings, model configs, modalities,
  the built-in distillation strategies) register with :func:`register` beside their
  definitions;
* scikit-learn's public estimators are listed by :func:`sklearn_classes`.

A file names classes; :func:`lookup` finds them among those registered in the loading process
and nothing else: a name that is not registered is refused, never imported. This module
imports nothing of the package, so any module may register its classes here.
"""

from __future__ import annotations

import functools
import sys

#: what kind of object a registered class is, and so how the codec stores it: an
#: ``"estimator"`` (parameters and fitted attributes, nets rebuilt), an ``"object"`` (its
#: ``__dict__``), a ``"dataclass"`` (its init fields) or a ``"strategy"`` (its constructor
#: arguments)
KINDS = ("estimator", "object", "dataclass", "strategy")

#: kind -> {stored name: class}
_REGISTERED = {kind: {} for kind in KINDS}


def default_name(cls):
    """The name ``cls`` is stored under: ``"sklearn_blend:<Name>"`` for the package's classes
    (the names of format 1), ``"<module>:<qualname>"`` for any other."""
    module = cls.__module__
    if module == "sklearn_blend" or module.startswith("sklearn_blend."):
        return f"sklearn_blend:{cls.__name__}"
    return f"{module}:{cls.__qualname__}"


def register(kind, name=None):
    """Class decorator: allow ``cls`` in model files as a ``kind`` (see :data:`KINDS`).

    ``name`` is the stored name (default :func:`default_name`). Registering a name again
    replaces the class (a class redefined in a notebook).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> from sklearn_blend.persistence import register, registry
    >>> @register("dataclass", name="example:Window")
    ... @dataclass(frozen=True)
    ... class Window:
    ...     start: float
    ...     stop: float
    >>> registry.lookup("dataclass", "example:Window") is Window
    True
    >>> registry.stored_name("dataclass", Window)
    'example:Window'
    >>> del registry._REGISTERED["dataclass"]["example:Window"]  # tidy up
    >>> registry.lookup("dataclass", "example:Window") is None
    True
    >>> register("widget")
    Traceback (most recent call last):
        ...
    ValueError: kind must be one of ('estimator', 'object', 'dataclass', 'strategy'), got 'widget'.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")

    def decorate(cls):
        _REGISTERED[kind][name or default_name(cls)] = cls
        return cls

    return decorate


def stored_name(kind, cls):
    """The name under which ``cls`` (of ``kind``) is stored, or ``None`` if it is not allowed."""
    for name, registered in _REGISTERED[kind].items():
        if registered is cls:
            return name
    return None


def lookup(kind, name):
    """The class registered as ``name`` of ``kind``, or ``None``."""
    if not isinstance(name, str):
        return None
    return _REGISTERED[kind].get(name)


@functools.cache
def sklearn_classes():
    """``{"module:Class": class}`` of scikit-learn's public estimators, built once.

    ``sklearn.utils.discovery.all_estimators`` finds them: it imports scikit-learn's public
    modules only (never tests, ``conftest`` or ``experimental``) and keeps the non-abstract
    ``BaseEstimator`` subclasses they expose, ``Pipeline``, ``FeatureUnion`` and
    ``ColumnTransformer`` included, the searches (``GridSearchCV`` and the others deriving from
    ``BaseSearchCV``) left out: :func:`~sklearn_blend.save` refuses them. Each is stored under
    the public module that exposes it (``sklearn.linear_model:PoissonRegressor``). Loading
    looks names up here and never imports a module named by a file.
    """
    from sklearn.model_selection._search import BaseSearchCV
    from sklearn.utils.discovery import all_estimators

    classes = {}
    for name, cls in all_estimators():
        if issubclass(cls, BaseSearchCV):
            continue  # searches are not stored (see the codec's estimators)
        parts = cls.__module__.split(".")
        public = ".".join(parts[: next((i for i, part in enumerate(parts)
                                        if part.startswith("_")), len(parts))])
        if getattr(sys.modules.get(public), name, None) is not cls:
            public = cls.__module__  # not exposed above its own module
        classes[f"{public}:{name}"] = cls
    return classes


@functools.cache
def sklearn_names():
    """``{class: "module:Class"}``, the inverse of :func:`sklearn_classes`."""
    return {cls: name for name, cls in sklearn_classes().items()}


def sklearn_class(name):
    """The allow-listed scikit-learn estimator class stored as ``name`` (never imported).

    ``name`` is ``"public.module:Class"``; files written before the public names stored the
    class's own module (``"sklearn.linear_model._ridge:RidgeCV"``), which is accepted when it
    is that allow-listed class's ``__module__``.
    """
    classes = sklearn_classes()
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


__all__ = ["KINDS", "default_name", "lookup", "register", "sklearn_class", "sklearn_classes",
           "sklearn_names", "stored_name"]

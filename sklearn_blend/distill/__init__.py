"""Distillation strategies and their registry (``strategy=`` of every estimator).

``strategy=`` takes a registered name, a :class:`Strategy` subclass or an instance (cloned for
every fit), or any :class:`torch.nn.Module` class or instance whose ``forward(student,
teacher)`` returns the distillation term. The built-in names: ``"hard"``, ``"soft"``,
``"feature"``, ``"correlation"`` (BLEND's, between predictions) and ``"latent"`` (latent
alignment, the cross-modal one). :func:`register_strategy` adds a name::

    from sklearn_blend import register_strategy
    from sklearn_blend.distill import Strategy

    class Cosine(Strategy):
        def forward(self, student, teacher):
            s, t = student.predictions["spikes"], teacher.predictions["spikes"]
            return 1 - torch.nn.functional.cosine_similarity(s, t, dim=-1).mean()

    register_strategy("cosine", Cosine)
    BlendEstimator(strategy="cosine")
"""

from __future__ import annotations

import copy
import inspect

from torch import nn

from .strategies import (Correlation, Feature, Hard, LatentAlignment, Soft, Strategy,
                         shared_predictions)

#: ``strategy=`` name -> strategy class (a :class:`torch.nn.Module`); see :func:`register_strategy`
STRATEGIES: dict = {}


def _is_module_class(value):
    return isinstance(value, type) and issubclass(value, nn.Module)


def register_strategy(name, cls):
    """Make ``strategy=name`` build ``cls`` (a :class:`torch.nn.Module` subclass).

    ``cls`` is instantiated once per fit, with ``tau`` from the estimator when its constructor
    takes a ``tau`` argument; its ``forward(student, teacher)`` returns a scalar tensor. A
    subclass of :class:`Strategy` may also build parameters that depend on both models in
    ``setup``; a plain module is used as it is. Registering an existing name replaces it.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_strategy needs a non-empty name (str), got {name!r}.")
    if not _is_module_class(cls):
        raise TypeError(
            f"register_strategy needs a torch.nn.Module subclass (such as a subclass of "
            f"sklearn_blend.distill.Strategy) whose forward(student, teacher) returns the "
            f"term, got {cls!r}."
        )
    STRATEGIES[name] = cls


for _name, _cls in (("hard", Hard), ("soft", Soft), ("feature", Feature),
                    ("correlation", Correlation), ("latent", LatentAlignment)):
    register_strategy(_name, _cls)


def strategy_names():
    """The registered ``strategy=`` names, in registration order."""
    return tuple(STRATEGIES)


def check_strategy(strategy):
    """Raise a clear error unless ``strategy`` is ``None``, a registered name, or a
    :class:`torch.nn.Module` class or instance (a :class:`Strategy` or any module whose
    ``forward(student, teacher)`` returns the distillation term)."""
    if strategy is None or isinstance(strategy, nn.Module) or _is_module_class(strategy):
        return
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {strategy_names()}, a Strategy class or instance, or "
                f"None; got {strategy!r}. Add a name with sklearn_blend.register_strategy."
            )
        return
    raise TypeError(
        f"strategy must be a registered name {strategy_names()}, a torch.nn.Module class or "
        f"instance whose forward(student, teacher) returns the term (such as a subclass of "
        f"sklearn_blend.distill.Strategy), or None; got {type(strategy).__name__} "
        f"{strategy!r}."
    )


def build_strategy(strategy, *, tau=None):
    """A fresh strategy module for one fit.

    A name or a class is instantiated (with ``tau`` when the class takes it); an instance is
    deep-copied, keeping its own hyper-parameters, so that no fit shares its parameters.
    """
    check_strategy(strategy)
    if isinstance(strategy, nn.Module):
        return copy.deepcopy(strategy)
    cls = STRATEGIES[strategy] if isinstance(strategy, str) else strategy
    takes_tau = "tau" in inspect.signature(cls).parameters
    return cls(tau=tau) if takes_tau and tau is not None else cls()


def strategy_name(strategy):
    """A short label of a ``strategy=`` value (for progress bars and tables)."""
    if strategy is None or isinstance(strategy, str):
        return strategy
    cls = strategy if isinstance(strategy, type) else type(strategy)
    return cls.__name__


__all__ = [
    "STRATEGIES",
    "Correlation",
    "Feature",
    "Hard",
    "LatentAlignment",
    "Soft",
    "Strategy",
    "build_strategy",
    "check_strategy",
    "register_strategy",
    "shared_predictions",
    "strategy_name",
    "strategy_names",
]

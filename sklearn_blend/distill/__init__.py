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

    Examples
    --------
    >>> from sklearn_blend.distill import (STRATEGIES, Strategy, build_strategy,
    ...                                    register_strategy, strategy_names)
    >>> class ScaledAbsolute(Strategy):
    ...     def __init__(self, tau=1.0):
    ...         super().__init__()
    ...         self.tau = tau
    ...     def forward(self, student, teacher):
    ...         s, t = student.predictions["spikes"], teacher.predictions["spikes"]
    ...         return (s - t).abs().mean() / self.tau
    >>> register_strategy("scaled_absolute", ScaledAbsolute)
    >>> "scaled_absolute" in strategy_names()
    True
    >>> build_strategy("scaled_absolute", tau=4.0).tau  # the estimator's tau reaches it
    4.0
    >>> del STRATEGIES["scaled_absolute"]  # unregister the name again
    >>> "scaled_absolute" in strategy_names()
    False
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
    """The registered ``strategy=`` names, in registration order.

    Examples
    --------
    >>> from sklearn_blend.distill import strategy_names
    >>> strategy_names()[:5]  # the built-ins come first
    ('hard', 'soft', 'feature', 'correlation', 'latent')
    """
    return tuple(STRATEGIES)


def check_strategy(strategy):
    """Raise a clear error unless ``strategy`` is ``None``, a registered name, or a
    :class:`torch.nn.Module` class or instance (a :class:`Strategy` or any module whose
    ``forward(student, teacher)`` returns the distillation term).

    Examples
    --------
    >>> import torch
    >>> from sklearn_blend.distill import Soft, check_strategy
    >>> check_strategy("soft"), check_strategy(Soft(tau=3.0)), check_strategy(torch.nn.L1Loss)
    (None, None, None)
    >>> check_strategy("sharp")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: strategy must be one of ('hard', 'soft', ...), ... got 'sharp'. ...
    >>> check_strategy(0.5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    TypeError: strategy must be a registered name ... or None; got float 0.5.
    """
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

    Examples
    --------
    >>> from sklearn_blend.distill import Hard, Soft, build_strategy
    >>> soft = build_strategy("soft", tau=3.0)
    >>> type(soft).__name__, soft.tau
    ('Soft', 3.0)
    >>> type(build_strategy(Hard, tau=3.0)).__name__  # Hard takes no tau
    'Hard'
    >>> template = Soft(tau=5.0, reduction="trial")
    >>> fresh = build_strategy(template, tau=3.0)  # an instance keeps its own tau
    >>> fresh is template, fresh.tau, fresh.reduction
    (False, 5.0, 'trial')
    """
    check_strategy(strategy)
    if isinstance(strategy, nn.Module):
        return copy.deepcopy(strategy)
    cls = STRATEGIES[strategy] if isinstance(strategy, str) else strategy
    takes_tau = "tau" in inspect.signature(cls).parameters
    return cls(tau=tau) if takes_tau and tau is not None else cls()


def strategy_name(strategy):
    """A short label of a ``strategy=`` value (for progress bars and tables).

    Examples
    --------
    >>> from sklearn_blend.distill import LatentAlignment, Soft, strategy_name
    >>> strategy_name("soft"), strategy_name(Soft), strategy_name(LatentAlignment(head="mlp"))
    ('soft', 'Soft', 'LatentAlignment')
    >>> strategy_name(None) is None
    True
    """
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

"""Distillation strategies and their registry (``strategy=`` of every estimator).

``strategy=`` takes a registered name, a :class:`Strategy` subclass or an instance (cloned for
every fit). :func:`register_strategy` adds a name::

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

from .strategies import (Correlation, Feature, Hard, LatentAlignment, Soft, Strategy,
                         shared_predictions)

#: ``strategy=`` name -> :class:`Strategy` subclass; see :func:`register_strategy`
STRATEGIES: dict = {}


def register_strategy(name, cls):
    """Make ``strategy=name`` build ``cls`` (a :class:`torch.nn.Module` subclass).

    ``cls`` is instantiated once per fit, with ``tau`` from the estimator when its constructor
    takes a ``tau`` argument; its ``forward(student, teacher)`` returns a scalar tensor.
    Registering an existing name replaces it.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_strategy needs a non-empty name (str), got {name!r}.")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(
            f"register_strategy needs a subclass of sklearn_blend.distill.Strategy, got "
            f"{cls!r}."
        )
    STRATEGIES[name] = cls


for _name, _cls in (("hard", Hard), ("soft", Soft), ("feature", Feature),
                    ("correlation", Correlation)):
    register_strategy(_name, _cls)


def strategy_names():
    """The registered ``strategy=`` names, in registration order."""
    return tuple(STRATEGIES)


def check_strategy(strategy):
    """Raise a clear error unless ``strategy`` is ``None``, a registered name, a class or an
    instance of :class:`Strategy`."""
    if strategy is None or isinstance(strategy, Strategy):
        return
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ValueError(
                f"strategy must be one of {strategy_names()}, a Strategy class or instance, or "
                f"None; got {strategy!r}. Add a name with sklearn_blend.register_strategy."
            )
        return
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return
    raise TypeError(
        f"strategy must be a registered name {strategy_names()}, a subclass or an instance of "
        f"sklearn_blend.distill.Strategy, or None; got {type(strategy).__name__} {strategy!r}."
    )


def build_strategy(strategy, *, tau=None):
    """A fresh :class:`Strategy` for one fit.

    A name or a class is instantiated (with ``tau`` when the class takes it); an instance is
    deep-copied, keeping its own hyper-parameters, so that no fit shares its parameters.
    """
    check_strategy(strategy)
    if isinstance(strategy, Strategy):
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

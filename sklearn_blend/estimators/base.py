"""The skeleton of every model estimator, and the teacher protocol of those that distil.

:class:`ModelEstimator` holds what the PyTorch-backed estimators share:

* **Parameters as data.** Each class lists its parameters in ``_parameters``
  (``{name: Parameter(default, constraint)}``): its own, then :data:`TRAINING` (declared once
  here), with ``_defaults`` overriding the shared defaults it needs otherwise (each override
  says why). ``__init__`` is generated from that table and only stores the parameters, as
  scikit-learn requires; ``fit`` checks every one against its constraint
  (:class:`~sklearn_blend.data.validation.Interval`, :class:`~sklearn_blend.data.validation.
  Options` or any callable ``(value, name)``), then the cross-parameter rules of
  ``_check_params``. The docstring of every shared parameter is generated from the table
  too, with the class's default.
* **The template fit** (:meth:`ModelEstimator._fit`): check the parameters, read the data
  (``_read_fit_data``: arrays validated, fitted shapes set), resolve the device, draw the
  seeds (``_seed_names``, one stream from ``random_state``), train (``_fit_models``), and set
  ``n_iter_`` from the trained net. Training goes through :meth:`ModelEstimator._train`, the
  one call of :func:`~sklearn_blend.training.core.fit_net`.

:class:`Distiller` adds the teacher protocol of :class:`~sklearn_blend.BlendEstimator`,
:class:`~sklearn_blend.NeuronEmbedding` and :class:`~sklearn_blend.CrossModalEstimator`:
``teacher=`` is ``None`` (the family's default teacher, built from the estimator's settings),
an unfitted estimator (cloned, fitted in ``fit``) or a fitted one (used as it is), every
fitted teacher shared through the teacher cache; ``strategy=`` is a registered name, a
:class:`~sklearn_blend.distill.Strategy` class or instance, or any ``torch.nn.Module`` whose
``forward(student, teacher)`` returns the distillation term. The fitted teacher then
teaches in one of two modes: **online**, its model (``teacher_.model_``) runs in the student's
objective on the student's batch, or **offline**, its outputs are computed once before the
student trains and travel in the batch (:class:`~sklearn_blend.training.objective.Precomputed`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import numbers
import textwrap
from typing import NamedTuple

from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state as random_state_of

from ..data.validation import (
    DISTRIBUTED,
    Flag,
    Interval,
    Options,
    check_device,
    check_params,
    check_random_state,
    check_teacher_cache,
    is_fitted,
)
from ..distill import STRATEGIES, check_strategy
from ..persistence import SaveMixin
from ..training import core as _training
from ..training import teacher_cache as _teacher_cache


#: the largest width (units, features, neurons of an embedding table) and depth a model
#: parameter may ask for: far above any model that trains, and what keeps a crafted model file
#: from building a model of millions of layers before its weights are compared
MAX_WIDTH = 1 << 16
MAX_LAYERS = 1024
#: the largest fitted size (features, time bins, trials seen) a loaded model may state
MAX_SIZE = 1 << 24


def width(default, *, none=False):
    """A width parameter: an int in ``[1, MAX_WIDTH]``."""
    return Parameter(default, Interval(int, 1, MAX_WIDTH, none=none))


def depth(default, *, none=False):
    """A depth parameter (layers): an int in ``[1, MAX_LAYERS]``."""
    return Parameter(default, Interval(int, 1, MAX_LAYERS, none=none))


class Parameter(NamedTuple):
    """One parameter of an estimator: its default, its constraint and, for the shared ones,
    the text of its docstring entry (``{default}`` is the class's default)."""

    default: object
    constraint: object = None
    doc: str = ""


#: the training parameters every model estimator has, declared once
TRAINING = {
    "max_epochs": Parameter(
        300, Interval(int, 1),
        "int, default={default}\n    Most epochs of each model trained (a teacher and its "
        "student each)."),
    "batch_size": Parameter(
        16, Interval(int, 1), "int, default={default}\n    Samples per optimisation step."),
    "lr": Parameter(
        1e-3, Interval(float, 0, closed="right"),
        "float, default={default}\n    Peak AdamW learning rate (linear warm-up, then cosine "
        "decay over ``max_epochs``)."),
    "weight_decay": Parameter(
        0.1, Interval(float, 0), "float, default={default}\n    AdamW weight decay."),
    "warmup_steps": Parameter(
        50, Interval(int, 0),
        "int, default={default}\n    Optimisation steps of linear learning-rate warm-up."),
    "early_stopping": Parameter(
        True, Flag(),
        "bool, default={default}\n    Hold out ``validation_fraction`` of the training "
        "samples and stop a model when its validation loss has not improved for "
        "``n_iter_no_change`` epochs; the best epoch's weights are kept."),
    "validation_fraction": Parameter(
        0.2, Interval(float, 0, 1, closed="neither"),
        "float in (0, 1), default={default}\n    Share of the samples held out for early "
        "stopping (drawn with ``random_state``)."),
    "n_iter_no_change": Parameter(
        50, Interval(int, 1),
        "int, default={default}\n    Patience of early stopping, in epochs."),
    "random_state": Parameter(
        None, check_random_state,
        "int, RandomState instance or None, default={default}\n    Seeds weights, masks, "
        "batch order, dropout and the validation split of every model the fit trains. With "
        "an int, two fits on the CPU give bit-identical results."),
    "device": Parameter(
        "cpu", check_device,
        "{{\"cpu\", \"cuda\", \"cuda:N\", \"mps\", \"auto\"}}, default={default!r}\n    "
        "PyTorch device of training and prediction: ``\"cuda\"`` the current GPU, "
        "``\"cuda:N\"`` the N-th, ``\"mps\"`` Apple silicon, ``\"auto\"`` the best one the "
        "machine that fits has (CUDA, else MPS, else CPU). Resolved in ``fit`` "
        "(``device_``); a device the machine lacks raises a ``ValueError``."),
    "precision": Parameter(
        "float32", Options(*_training.PRECISIONS),
        "{{\"float32\", \"bfloat16\"}}, default={default!r}\n    Compute precision of "
        "training: ``\"bfloat16\"`` runs the models' forward passes under "
        ":func:`torch.autocast` (weights, gradients, optimizer state and losses stay "
        "float32); much slower on a CPU without native bfloat16 (a warning says so). "
        "Predictions are always computed in float32."),
    "verbose": Parameter(
        0, Interval(int, 0),
        "int, default={default}\n    0: silent; 1: a progress bar per model; 2: skorch's "
        "per-epoch table."),
    "distributed": Parameter(
        None, Options(*DISTRIBUTED),
        "{{None, \"accelerate\"}}, default={default}\n    ``\"accelerate\"`` trains "
        "data-parallel over the processes that ``accelerate launch`` or ``torchrun`` started "
        "(one per GPU or node; Hugging Face accelerate, the ``[accelerate]`` extra), each "
        "running the same script on the same data; run as plain ``python`` it is one "
        "process."),
}


def parameters(own, *, defaults=None):
    """A class's parameter table: ``own`` then :data:`TRAINING`, with ``defaults`` replacing
    shared defaults (``{name: value}``)."""
    table = dict(own)
    for name, parameter in TRAINING.items():
        table.setdefault(name, parameter)
    for name, value in (defaults or {}).items():
        if name not in table:
            raise KeyError(f"no parameter {name!r} to give a default")
        table[name] = table[name]._replace(default=value)
    return table


def _generated_init(cls, table, positional):
    """An ``__init__`` that stores the parameters of ``table`` (keyword-only, except the
    ``positional`` ones), with the signature scikit-learn reads."""
    names = tuple(table)

    def __init__(self, *args, **params):
        if len(args) > len(positional):
            raise TypeError(f"{cls.__name__}() takes {len(positional)} positional argument(s) "
                            f"but {len(args)} were given")
        for name, value in zip(positional, args):
            if name in params:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
            params[name] = value
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument "
                            f"{unknown[0]!r}")
        for name in names:
            setattr(self, name, params.get(name, table[name].default))

    kind = {name: inspect.Parameter.POSITIONAL_OR_KEYWORD for name in positional}
    signature = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    signature += [inspect.Parameter(name, kind.get(name, inspect.Parameter.KEYWORD_ONLY),
                                    default=table[name].default)
                  for name in sorted(names, key=lambda n: n not in positional)]
    __init__.__signature__ = inspect.Signature(signature)
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__doc__ = "Store the parameters (see the class docstring); ``fit`` checks them."
    return __init__


def _documented(doc):
    """The parameter names a (cleaned) numpydoc docstring has an entry for."""
    names = set()
    for line in doc.splitlines():
        if " : " in line and not line.startswith(" "):
            names.update(name.strip() for name in line.split(" : ")[0].split(","))
    return names


def _with_shared_docs(doc, table):
    """``doc`` with a numpydoc entry for every parameter of :data:`TRAINING` in ``table``
    that it does not document itself, at the end of its Parameters section."""
    if not doc:
        return doc
    doc = inspect.cleandoc(doc)
    documented = _documented(doc)
    entries = []
    for name in TRAINING:
        if name in table and name not in documented:
            kind, _, text = table[name].doc.format(default=table[name].default).partition(
                "\n    ")
            entries.append(f"{name} : {kind}\n" + textwrap.fill(
                text, 92, initial_indent="    ", subsequent_indent="    "))
    if not entries:
        return doc
    text = "\n".join(entries) + "\n"
    lines = doc.splitlines()
    headings = [k for k in range(len(lines) - 1)
                if lines[k].strip() and set(lines[k + 1].strip()) == {"-"}]
    section = next((k for k in headings if lines[k].strip() == "Parameters"), None)
    if section is None:  # a Parameters section of its own, before the first section
        text = "Parameters\n----------\n" + text
    following = [k for k in headings if section is None or k > section]
    at = following[0] if following else len(lines)
    head = "\n".join(lines[:at]).rstrip("\n")
    tail = "\n".join(lines[at:])
    gap = "\n" if section is not None else "\n\n"
    return head + gap + text + ("\n" + tail if tail else "")


class ModelEstimator(SaveMixin, BaseEstimator):
    """Base of the package's PyTorch-backed estimators (see the module docstring).

    A subclass sets ``_parameters`` (:func:`parameters`), optionally ``_positional`` (names
    that may be passed by position), ``_seed_names`` (the seeds each fit draws, in order) and
    ``_net_attribute`` (where the trained net goes); it implements ``_read_fit_data`` and
    ``_fit_models``, may add cross-parameter rules in ``_check_params``, and rebuilds its nets
    for :func:`sklearn_blend.load` in ``_net_builder``.
    """

    _abstract = True
    _parameters = {}
    _positional = ()
    _seed_names = ("model",)
    _net_attribute = "net_"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "_parameters" in cls.__dict__:
            cls.__init__ = _generated_init(cls, cls._parameters, cls._positional)
            cls.__doc__ = _with_shared_docs(cls.__doc__, cls._parameters)

    # ------------------------------------------------------------------ checks
    def _validate_params(self):
        """Check every parameter against its constraint, then the cross-parameter rules."""
        check_params(self, {name: parameter.constraint
                            for name, parameter in self._parameters.items()})
        self._check_params()

    def _check_params(self):
        """Rules between parameters (say ``hidden_size`` divisible by ``n_heads``)."""

    def _check_sizes(self, *widths):
        """``hidden_size`` (and each of ``widths``, ``(name, value)``) divisible by
        ``n_heads``."""
        for name, width in (("hidden_size", self.hidden_size), *widths):
            if width is not None and width % self.n_heads:
                raise ValueError(f"{name} ({width}) must be divisible by n_heads "
                                 f"({self.n_heads}).")

    # ------------------------------------------------------------------ the template fit
    def _fit(self, X, y=None, **fit_params):
        """Check, read the data, resolve the device, draw the seeds, train; return self."""
        self._validate_params()
        data = self._read_fit_data(X, y, **fit_params)
        self.device_ = _training.resolve_device(self.device)
        seeds = self._draw_seeds()
        self._fit_models(data, seeds)
        self.n_iter_ = len(getattr(self, self._net_attribute).history)
        return self

    def _read_fit_data(self, X, y=None, **fit_params):
        """Validated training data (any form the class's ``_fit_models`` reads); sets the
        fitted shapes."""
        raise NotImplementedError

    def _fit_models(self, data, seeds):
        """Train the class's model(s) on ``data`` with ``seeds`` (``{name: int}``)."""
        raise NotImplementedError

    def _draw_seeds(self, names=None):
        """``{name: seed}`` for ``names`` (default ``_seed_names``), drawn in order from one
        stream of ``random_state``."""
        names = self._seed_names if names is None else names
        values = random_state_of(self.random_state).randint(_training.MAX_SEED,
                                                            size=len(names))
        return {name: int(value) for name, value in zip(names, values)}

    def _train(self, builder, data, seed, description, **overrides):
        """Train the ``(model, objective)`` of ``builder`` on the flat batch dict ``data``
        with this estimator's training parameters (``overrides`` replace some); the net."""
        config = _training.training_config(self, self.device_, **overrides)
        return _training.fit_net(builder, data, config, seed, description)

    def _net_builder(self, attribute, saved):
        """The builder ``fit`` trained the net in ``attribute`` from, for the fitted state
        (:func:`sklearn_blend.load` loads saved weights into it)."""
        raise NotImplementedError

    @classmethod
    def _upgrade_state(cls, state, version):
        """The saved state (JSON nodes by attribute) of a file of format ``version`` as this
        version of the class stores it; each class renames here what it renamed since."""
        return state

    def _check_loaded(self):
        """What :func:`sklearn_blend.load` checks of a decoded estimator before it builds its
        nets: every parameter in range, and every fitted size (an ``n_*`` attribute or field
        of ``config_``) a non-negative int of at most :data:`MAX_SIZE`, so that a crafted size
        cannot make the builder allocate before the weights' shapes are compared (the shapes
        themselves are compared with the net the parameters describe, on the meta device)."""
        self._validate_params()
        sizes = {name: value for name, value in vars(self).items()
                 if name.startswith("n_") and name.endswith("_")}
        config = getattr(self, "config_", None)
        if dataclasses.is_dataclass(config):
            sizes.update({f"config_.{field.name}": getattr(config, field.name)
                          for field in dataclasses.fields(config)
                          if field.name.startswith("n_")})
        for name, value in sizes.items():
            for item in (value if isinstance(value, (list, tuple)) else [value]):
                if item is None:
                    continue
                if (isinstance(item, bool) or not isinstance(item, numbers.Integral)
                        or not 0 <= item <= MAX_SIZE):
                    raise ValueError(f"{name}={' '.join(repr(value).split())[:80]} is not a "
                                     f"size: expected ints in [0, {MAX_SIZE}]")

    @contextlib.contextmanager
    def _atomic(self):
        """All or nothing: a method that changes a fitted model (fine-tuning, new sessions)
        runs in this block, and on any error or interrupt the model's attributes are put back
        as they were (they are replaced, never changed in place, inside the block)."""
        state = dict(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(state)
            raise


class Distiller:
    """The teacher protocol (see the module docstring); mixed into a :class:`ModelEstimator`
    with the parameters ``teacher``, ``strategy`` and ``teacher_cache``.

    A family says how its default teacher is built (``_default_teacher``), what a teacher it
    is given must provide (``_check_teacher_type``), and how a cloned teacher is adapted to
    the student (``_adapt_teacher``: say the held-out neurons it must predict).
    """

    #: which outputs the family's strategies compare (a strategy class may say which it
    #: compares, :attr:`~sklearn_blend.distill.Strategy.compares`)
    _compares = "predictions"

    #: constraints of the protocol's parameters (each family adds them to its table)
    PARAMETERS = {
        "strategy": Parameter("hard", lambda value, name: check_strategy(value)),
        "teacher": Parameter(None),
        "teacher_cache": Parameter(True, check_teacher_cache),
    }

    def _check_strategy_fits(self):
        """A ``ValueError`` naming ``strategy`` when it compares other outputs than this
        family's teacher and student share (latent alignment given to a BLEND student)."""
        strategy = self.strategy
        if strategy is None:
            return
        cls = STRATEGIES.get(strategy) if isinstance(strategy, str) else (
            strategy if isinstance(strategy, type) else type(strategy))
        compares = getattr(cls, "compares", self._compares)
        if compares != self._compares:
            names = [name for name, known in STRATEGIES.items()
                     if getattr(known, "compares", "predictions") == self._compares]
            raise ValueError(
                f"strategy={strategy!r} compares {compares}, but {type(self).__name__}'s "
                f"teacher and student are compared by their {self._compares} (strategies "
                f"{names}, or a module of your own).")

    def _default_teacher(self):
        """The unfitted teacher of ``teacher=None`` (or of a name, where a family gives
        ``teacher`` names a meaning) and whether it carries its own seed (``own_seed``;
        otherwise it is seeded from this estimator's teacher seed)."""
        raise NotImplementedError

    def _check_teacher_type(self, teacher):
        """Raise a ``TypeError`` unless ``teacher`` can teach this family."""

    def _adapt_teacher(self, teacher):
        """An unfitted teacher (a clone of ``teacher=``) set up for this student."""
        return teacher

    def _fitted_teacher(self, data, fit_params, seed):
        """The fitted teacher: ``teacher`` itself when fitted, else fitted now (or reused
        from the teacher cache) on ``data`` (positional arguments of its ``fit``) and
        ``fit_params``. A teacher built here or cloned from ``teacher`` without a
        ``random_state`` of its own is seeded with ``seed``."""
        if self.teacher is not None:
            self._check_teacher_type(self.teacher)
        if self.teacher is not None and not isinstance(self.teacher, str):
            if is_fitted(self.teacher):
                return self.teacher
            _teacher_cache.check_unwrapped(self.teacher)
            teacher = self._adapt_teacher(clone(self.teacher))
            if "random_state" not in teacher.get_params(deep=False):
                raise TypeError(f"an unfitted teacher is seeded here and needs a random_state "
                                f"parameter; {type(teacher).__name__} has none (fit it first).")
            own_seed = teacher.random_state is not None
        else:
            teacher, own_seed = self._default_teacher()
        return _teacher_cache.fit_teacher(teacher, data, fit_params, self.teacher_cache,
                                          own_seed=own_seed, random_state=self.random_state,
                                          seed=seed)


__all__ = ["Distiller", "ModelEstimator", "Parameter", "TRAINING", "parameters"]

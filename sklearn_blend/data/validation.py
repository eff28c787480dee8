"""Input checks for trial-structured arrays: clear errors that name the argument and the shape.

Spike counts are ``(n_trials, n_time, n_neurons)``; a 2-D ``(n_samples, n_neurons)`` array is
read as ``(n_samples, 1, n_neurons)`` (one bin per sample) so that scikit-learn's generic
estimator checks apply. Nothing is rounded: counts become float32 as given. Behavior, which
comes in several forms, is checked in :mod:`sklearn_blend.data.behavior`.
"""

from __future__ import annotations

import numbers

import joblib
import numpy as np
from scipy import sparse
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_array

SPIKES_SHAPE = "(n_trials, n_time, n_neurons)"


def reject_sparse(value, name, what):
    """Raise a ``TypeError`` naming ``name`` if ``value`` is a scipy sparse matrix."""
    if sparse.issparse(value):
        raise TypeError(
            f"{name} must be a dense array of {what}; got a sparse matrix. "
            f"Convert it with {name}.toarray()."
        )


def check_float32_range(array, name, what):
    """A ``ValueError`` when float64 values of ``array`` would become inf or 0 in float32:
    a magnitude above float32's largest (about 3.4e38), or every nonzero magnitude below its
    smallest normal number (about 1.2e-38). It names ``name`` and says how to rescale."""
    array = np.asarray(array)
    if array.dtype.kind != "f" or array.dtype.itemsize <= 4 or not array.size:
        return
    magnitude = np.abs(array[np.isfinite(array)])
    if not magnitude.size:
        return
    largest, info = float(magnitude.max()), np.finfo(np.float32)
    if largest > float(info.max):
        raise ValueError(f"{name} holds {what} up to {largest:.3g}, beyond the float32 range "
                         f"(at most {info.max:.3g}) the models compute in; rescale it (say to "
                         "other units) before passing it.")
    if 0 < largest < float(info.tiny):
        raise ValueError(f"{name} holds {what} of at most {largest:.3g}, below the float32 "
                         f"range (from {info.tiny:.3g}), where it would become 0; rescale it "
                         "(say to microvolts) before passing it.")


def _as_float32(value, name, what, shape):
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):  # check_array says what is wrong with it
        raw = None
    if raw is not None and raw.dtype.kind == "f":
        check_float32_range(raw, name, what)
    try:
        array = check_array(
            value,
            dtype=np.float32,
            ensure_2d=False,
            allow_nd=True,
            ensure_all_finite=True,
            input_name=name,
            copy=False,
        )
    except ValueError as error:
        if "convert" in str(error) or "could not" in str(error):
            raise ValueError(f"{name} must hold numbers ({what}): {error}") from error
        raise
    if array.ndim < 1 or array.ndim > 3:
        raise ValueError(
            f"{name} must be a 3-D array of {what} {shape}; got a {array.ndim}-D array "
            f"of shape {array.shape}."
        )
    return array


def check_trials(X, *, name="X", what="spike counts", non_negative=True):
    """Validate trial data; return ``(array, was_2d)``, float32 ``(n_trials, n_time, channels)``.

    Raises ``TypeError`` for sparse input and ``ValueError`` for 1-D or >3-D input, NaN or inf,
    empty axes and, with ``non_negative``, negative values. ``what`` names the data in errors.
    Each :class:`~sklearn_blend.modalities.Modality` validates its arrays through this.
    """
    reject_sparse(X, name, what)
    array = _as_float32(X, name, what, SPIKES_SHAPE)
    if array.ndim == 1:
        raise ValueError(
            f"{name} must be a 3-D array of {what} {SPIKES_SHAPE} (or 2-D "
            f"(n_samples, n_neurons), read as one bin per sample); got a 1-D array of shape "
            f"{array.shape}. Reshape your data: X.reshape(1, -1) if it is a single sample."
        )
    was_2d = array.ndim == 2
    if was_2d:
        array = array[:, None, :]
    if 0 in array.shape:
        raise ValueError(
            f"{name} must be non-empty {SPIKES_SHAPE}; got shape {array.shape}."
        )
    if non_negative and (array < 0).any():
        raise ValueError(
            f"Negative values in data passed to {name}: {what} must be non-negative; found "
            f"{int((array < 0).sum())} negative entries (minimum {array.min():g})."
        )
    return array, was_2d


def check_fitted_shape(spikes, estimator, *, name="X"):
    """Check neurons and bins of ``spikes`` against what ``estimator`` was fitted on.

    With held-out neurons (``estimator.n_heldout``), the held-in columns alone are accepted too.
    """
    n_neurons = spikes.shape[2]
    expected = estimator.n_features_in_
    n_heldin = expected - getattr(estimator, "n_heldout", 0)
    if n_neurons not in (expected, n_heldin):
        also = f" (or the {n_heldin} held-in ones)" if n_heldin != expected else ""
        raise ValueError(
            f"{name} has {n_neurons} features, but {type(estimator).__name__} is expecting "
            f"{expected} features as input{also} (neurons, the last axis of {SPIKES_SHAPE})."
        )
    if spikes.shape[1] > estimator.n_time_in_:
        raise ValueError(
            f"{name} has {spikes.shape[1]} time bins, but {type(estimator).__name__} was "
            f"fitted on trials of {estimator.n_time_in_} bins, and its models were built for "
            f"at most {estimator.n_time_in_} (shorter trials are fine)."
        )


def check_in(value, name, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {options!r}, got {value!r}.")


def check_number(value, name, *, low=None, high=None, low_open=False, high_open=False,
                 integer=False):
    """Validate a numeric hyper-parameter; the message names it and the allowed range."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(
            f"{name} must be {'an int' if integer else 'a real number'}, got "
            f"{type(value).__name__} {value!r}."
        )
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high or not np.isfinite(value):
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        bounds = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"{name} must be in {bounds}, got {value!r}.")


#: values of the model estimators' ``distributed`` parameter (the engines of
#: :mod:`sklearn_blend.training.distributed`)
DISTRIBUTED = (None, "accelerate")


# ------------------------------------------------------------------ parameter constraints
class Interval:
    """Constraint: a number (``int`` or ``float``) in a range, as :func:`check_number` checks
    it; scikit-learn's ``Interval`` of ``_parameter_constraints``, with this package's messages.

    ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``; ``none=True`` also
    accepts ``None`` (a default that depends on something else).
    """

    def __init__(self, kind, low=None, high=None, *, closed="both", none=False):
        self.kind, self.low, self.high, self.closed, self.none = kind, low, high, closed, none

    def __call__(self, value, name):
        if value is None and self.none:
            return
        check_number(value, name, low=self.low, high=self.high,
                     low_open=self.closed in ("right", "neither"),
                     high_open=self.closed in ("left", "neither"),
                     integer=self.kind is int)

    def __repr__(self):
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        kind = "an int" if self.kind is int else "a number"
        return f"{kind} in {left}{low}, {high}{right}" + (" or None" if self.none else "")


class Options:
    """Constraint: one of the given values, as :func:`check_in` checks it."""

    def __init__(self, *options):
        self.options = options

    def __call__(self, value, name):
        check_in(value, name, self.options)

    def __repr__(self):
        return " or ".join(repr(option) for option in self.options)


class Flag:
    """Constraint: ``True`` or ``False`` (a NumPy bool too); anything else is a ``TypeError``."""

    def __call__(self, value, name):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {value!r}.")

    def __repr__(self):
        return "True or False"


def check_random_state(value, name="random_state"):
    """Constraint of ``random_state``: ``None``, an int or a NumPy ``RandomState``."""
    if not (value is None or isinstance(value, (numbers.Integral, np.random.RandomState))):
        raise TypeError(
            f"{name} must be None, an int or a numpy RandomState, got {value!r}."
        )


def check_teacher_cache(value, name="teacher_cache"):
    """Constraint of ``teacher_cache``: a bool, a directory path or a ``joblib.Memory``."""
    if not (isinstance(value, (bool, str, joblib.Memory)) or hasattr(value, "__fspath__")):
        raise TypeError(
            f"{name} must be a bool, a directory path or a joblib.Memory, got {value!r}."
        )
    if isinstance(value, str) and not value.strip():
        raise ValueError(
            f"{name}='' names no directory; give a directory path, True (in-process) or False."
        )


def check_device(value, name="device"):
    """Constraint of ``device`` before it is resolved (in ``fit``): a string."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string such as 'cpu', 'cuda', 'cuda:0', 'mps' or "
                        f"'auto', got {value!r}.")


def check_params(estimator, constraints):
    """Check each parameter of ``estimator`` named in ``constraints`` (``{name: constraint}``,
    a constraint being a callable ``(value, name)`` that raises, or ``None``: anything)."""
    for name, constraint in constraints.items():
        if constraint is not None:
            constraint(getattr(estimator, name), name)


def is_fitted(estimator):
    """Whether ``estimator`` (a teacher, possibly in a ``FrozenEstimator``) is fitted; an
    object that is no estimator counts as unfitted."""
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(estimator)
    except (NotFittedError, TypeError):
        return False
    return True

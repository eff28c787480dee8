"""Behavior of every form, read and encoded for the teacher (NumPy and pandas only).

The teacher accepts behavior ``b`` as

* **per-bin** ``(n_trials, n_time, k)``: hand velocity, running speed, a task phase per bin;
* **trial-level** ``(n_trials, k)`` (an array or a pandas DataFrame): intervals, choices,
  conditions; the teacher embeds it per bin with a learnable temporal encoding
  (:class:`sklearn_blend.models.TrialBehaviorEmbedding`);
* **partly missing**: NaN in some bins or columns, or whole trials of NaN (for a DataFrame,
  also ``None``/``pd.NA``). Missing values are encoded as zeros plus, for every column, a
  channel saying whether it was observed, so the teacher trains on what is there and still
  models every trial.

Categorical columns are declared, never guessed: by ``categorical_behavior`` (column indices,
or names for a DataFrame) or by a pandas ``category`` dtype. They are one-hot encoded over the
categories seen in ``fit``; continuous columns are standardised with the mean and standard
deviation of their observed values. Infinite values are rejected, and nothing is rounded.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..persistence import registry
from .validation import reject_sparse

PER_BIN_SHAPE = "(n_trials, n_time, n_behavior)"
TRIAL_SHAPE = "(n_trials, n_behavior)"


@dataclass
class RawBehavior:
    """Validated behavior before encoding: one entry per column.

    ``columns[j]`` holds the values ``(n_trials, n_time)`` if ``per_bin`` else ``(n_trials,)``
    (float for continuous columns, any hashable values for categorical ones) and
    ``observed[j]`` a boolean array of the same shape.
    """

    columns: list
    observed: list
    names: list
    categorical: frozenset
    per_bin: bool
    from_dataframe: bool = False

    @property
    def any_observed(self):
        return any(mask.any() for mask in self.observed)


def _is_dataframe(b):
    return hasattr(b, "columns") and hasattr(b, "dtypes") and hasattr(b, "iloc")


def _is_series(b):
    return hasattr(b, "to_frame") and hasattr(b, "dtype") and hasattr(b, "iloc")


def _declared(categorical, names, name):
    """Column indices declared categorical by index or, for DataFrames, by name."""
    if categorical is None:
        return set()
    if isinstance(categorical, (str, numbers.Integral)):
        categorical = [categorical]
    declared = set()
    for item in categorical:
        if isinstance(item, bool):
            raise TypeError(
                f"categorical_behavior lists columns by index or name, got the bool {item!r}."
            )
        if isinstance(item, numbers.Integral):
            if not -len(names) <= item < len(names):
                raise ValueError(
                    f"categorical_behavior names column {item}, but {name} has "
                    f"{len(names)} behavior columns."
                )
            declared.add(int(item) % len(names))
        elif item in names:
            declared.add(names.index(item))
        else:
            raise ValueError(
                f"categorical_behavior names column {item!r}, which {name} does not have "
                f"(columns: {names})."
            )
    return declared


def _continuous(values, name, column):
    if np.iscomplexobj(values):
        raise TypeError(
            f"{name} column {column!r} holds complex numbers; behavior must be real (pass "
            "the real part, the magnitude or both as separate channels)."
        )
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} column {column!r} is not numeric; declare it in categorical_behavior "
            "(or give it a pandas 'category' dtype) if it holds categories."
        ) from None
    if np.isinf(values).any():
        raise ValueError(
            f"Input {name} contains infinity in column {column!r}: behavior must be finite "
            "(NaN marks a missing value)."
        )
    return values, ~np.isnan(values)


def _location_scale(seen):
    """Mean and standard deviation (1 for a constant column) of observed values, also for
    magnitudes whose squares overflow (~1e160) or underflow (~1e-300) in float64."""
    if not seen.size:
        return 0.0, 1.0
    with np.errstate(over="ignore", under="ignore"):
        mean, std = float(seen.mean()), float(seen.std())
        magnitude = float(np.abs(seen).max())
        if magnitude > 0 and not (np.isfinite(mean) and np.isfinite(std) and std > 0):
            unit = seen / magnitude  # O(1) values: their moments are exact enough
            mean, std = magnitude * float(unit.mean()), magnitude * float(unit.std())
    return mean, (std if std > 0 else 1.0)


def _categorical(values, name, column, observed=None):
    values = np.asarray(values, dtype=object)
    if observed is None:
        observed = np.array([not _is_missing(v) for v in values.ravel()], dtype=bool)
    observed = np.asarray(observed, dtype=bool).reshape(values.shape)
    for value in values[observed].ravel().tolist():
        if isinstance(value, numbers.Real) and not np.isfinite(value):
            raise ValueError(
                f"Input {name} contains infinity in categorical column {column!r}: a category "
                "must be a finite number or a label (NaN marks a missing value)."
            )
    return values, observed


def _is_missing(value):
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)  # NaN
    except (TypeError, ValueError):
        return False


def _from_dataframe(b, spikes, name, categorical):
    n_trials, n_time = spikes.shape[:2]
    if len(b) != n_trials:
        raise ValueError(
            f"X and {name} disagree on the number of trials: X has {n_trials}, {name} has "
            f"{len(b)} rows (a DataFrame is trial-level behavior {TRIAL_SHAPE})."
        )
    names = list(b.columns)
    declared = _declared(categorical, names, name)
    declared |= {j for j, dtype in enumerate(b.dtypes) if str(dtype) == "category"}
    columns, observed = [], []
    for j, column in enumerate(names):
        series = b.iloc[:, j]
        if j in declared:
            values, mask = _categorical(series.astype(object).to_numpy(), name, column,
                                        observed=~series.isna().to_numpy())
        else:
            numbers_ = series.to_numpy()  # as given, unless it converts to float
            if not np.iscomplexobj(numbers_):  # complex: _continuous rejects it by name
                try:
                    numbers_ = series.to_numpy(dtype=float, na_value=np.nan)
                except (TypeError, ValueError):
                    pass  # _continuous names the column in its error
            values, mask = _continuous(numbers_, name, column)
        columns.append(values)
        observed.append(mask)
    per_bin = n_time == 1  # one bin per sample: a row is that bin's behavior, as for arrays
    if per_bin:
        columns, observed = [c[:, None] for c in columns], [m[:, None] for m in observed]
    return RawBehavior(columns, observed, names, frozenset(declared), per_bin,
                       from_dataframe=True)


def read_behavior(b, spikes, *, name="b", categorical=None):
    """Validate behavior against validated ``spikes`` ``(n_trials, n_time, n_neurons)``.

    Returns a :class:`RawBehavior`, or ``None`` for ``b=None``. A 2-D ``b`` is trial-level
    ``(n_trials, n_behavior)``; when the spikes have a single bin (2-D ``X``), 1-D and 2-D
    ``b`` are per sample. Raises ``ValueError``/``TypeError`` naming ``name`` and the expected
    shape. A :class:`RawBehavior` (behavior read once already) is checked against ``spikes``
    and returned as it is.
    """
    if b is None:
        return None
    if isinstance(b, RawBehavior):
        return _check_read(b, spikes, name)
    reject_sparse(b, name, "behavior")
    if _is_series(b):
        b = b.to_frame()  # one trial-level variable
    if _is_dataframe(b):
        return _from_dataframe(b, spikes, name, categorical)
    n_trials, n_time = spikes.shape[:2]
    array = np.asarray(b)
    if np.iscomplexobj(array):
        raise TypeError(
            f"{name} holds complex numbers; behavior must be real (pass the real part, the "
            "magnitude or both as separate channels)."
        )
    if array.dtype.kind not in "biuf" and not categorical:
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name} must hold numbers (behavior); declare categorical columns with "
                "categorical_behavior, or pass a pandas DataFrame with 'category' columns."
            ) from None
    if array.ndim == 1 and n_time == 1:
        array = array[:, None]
    if array.ndim == 2 and n_time == 1:
        array = array[:, None, :]
    if array.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be per-bin behavior {PER_BIN_SHAPE} = ({n_trials}, {n_time}, "
            f"n_behavior) or trial-level behavior {TRIAL_SHAPE} = ({n_trials}, n_behavior) "
            f"to match X; got shape {array.shape}."
        )
    if array.shape[0] != n_trials:
        raise ValueError(
            f"X and {name} disagree on the number of trials: X has {n_trials}, {name} has "
            f"{array.shape[0]} (shape {array.shape}, expected {PER_BIN_SHAPE} or "
            f"{TRIAL_SHAPE})."
        )
    per_bin = array.ndim == 3
    if per_bin and array.shape[1] != n_time:
        raise ValueError(
            f"X and {name} disagree on the number of time bins: X has {n_time}, {name} has "
            f"{array.shape[1]} (shape {array.shape}, expected {PER_BIN_SHAPE})."
        )
    if not per_bin and array.shape[1] == n_time:
        raise ValueError(
            f"{name} of shape {array.shape} is ambiguous: per-bin behavior must be 3-D "
            f"{PER_BIN_SHAPE} = ({n_trials}, {n_time}, n_behavior) (add an axis: "
            f"{name}[..., None]); trial-level behavior is {TRIAL_SHAPE}, and with as many "
            "columns as time bins it must come as a pandas DataFrame."
        )
    if array.shape[-1] == 0:
        raise ValueError(f"{name} has no behavior channels (shape {array.shape}).")
    names = list(range(array.shape[-1]))
    declared = _declared(categorical, names, name)
    columns, observed = [], []
    for j in names:
        values = array[..., j]
        values, mask = (_categorical(values, name, j) if j in declared
                        else _continuous(values, name, j))
        columns.append(values)
        observed.append(mask)
    return RawBehavior(columns, observed, names, frozenset(declared), per_bin)


def _check_read(raw, spikes, name):
    """``raw`` if its trials (and bins, per bin) are those of ``spikes``."""
    shape = np.shape(raw.columns[0])
    expected = tuple(spikes.shape[:2]) if raw.per_bin else tuple(spikes.shape[:1])
    if shape != expected:
        raise ValueError(f"{name} was read for trials of shape {shape}, not those of X "
                         f"{expected}.")
    return raw


def _categories(values, observed):
    seen = values[observed]
    unique = list(dict.fromkeys(seen.ravel().tolist()))
    try:
        return sorted(unique)
    except TypeError:  # mixed types: keep order of appearance
        return unique


@registry.register("object")
class BehaviorEncoding:
    """Fitted encoding of behavior columns into the float channels the teacher reads.

    Per continuous column: the standardised value (0 where missing). Per categorical column:
    one channel per category seen in fit (all 0 where missing). If any value was missing in
    fit: one more channel per column, 1 where the column was observed.

    Parameters
    ----------
    raw : RawBehavior
        Training behavior.
    """

    def __init__(self, raw):
        self.per_bin = raw.per_bin
        self.from_dataframe = raw.from_dataframe
        self.names = list(raw.names)
        self.categorical = raw.categorical
        self.categories = {}
        self.mean = {}
        self.scale = {}
        for j, (values, mask) in enumerate(zip(raw.columns, raw.observed)):
            if j in raw.categorical:
                self.categories[j] = _categories(values, mask)
            else:
                self.mean[j], self.scale[j] = _location_scale(values[mask])
        self.missing = not all(mask.all() for mask in raw.observed)
        self.observed_fraction = float(
            np.mean([mask.mean() for mask in raw.observed])
        )

    @property
    def n_columns(self):
        return len(self.names)

    @property
    def width(self):
        """Number of encoded channels."""
        width = sum(len(c) for c in self.categories.values()) + len(self.mean)
        return width + (self.n_columns if self.missing else 0)

    def check_compatible(self, raw, name="b"):
        """Raise a ``ValueError`` unless ``raw`` has the form and columns seen in fit."""
        form = PER_BIN_SHAPE if self.per_bin else TRIAL_SHAPE
        if raw.per_bin != self.per_bin:
            raise ValueError(
                f"{name} must be {'per-bin' if self.per_bin else 'trial-level'} behavior "
                f"{form} as in fit."
            )
        if len(raw.names) != self.n_columns:
            raise ValueError(
                f"{name} must have {self.n_columns} behavior channels as in fit ({form} with "
                f"n_behavior={self.n_columns}), got {len(raw.names)}."
            )
        if raw.from_dataframe != self.from_dataframe:
            given = "a DataFrame" if raw.from_dataframe else "an array"
            fitted = "a DataFrame" if self.from_dataframe else "an array"
            raise ValueError(
                f"{name} is {given}, but fit saw {fitted}; pass behavior as in fit, so that "
                "its columns are matched by name (DataFrame) or position (array)."
            )
        if self.from_dataframe and list(raw.names) != self.names:
            raise ValueError(
                f"{name} has columns {list(raw.names)}, but fit saw {self.names} (same names, "
                f"same order; reorder with {name}[{self.names!r}])."
            )
        if raw.categorical != self.categorical:
            raise ValueError(
                f"{name} declares categorical columns {sorted(raw.categorical)}, but fit saw "
                f"{sorted(self.categorical)}."
            )

    def codes(self, j, values, mask, name="b"):
        """Integer codes of categorical column ``j`` over the categories seen in fit, ``-1``
        where ``mask`` is False; an unseen category is a ``ValueError`` naming the column."""
        index = {category: i for i, category in enumerate(self.categories[j])}
        seen = np.asarray(values)[mask].ravel().tolist()
        unknown = {v for v in seen if v not in index}
        if unknown:
            raise ValueError(
                f"{name} column {self.names[j]!r} has categories "
                f"{sorted(map(str, unknown))} that fit did not see (known: "
                f"{self.categories[j]})."
            )
        codes = np.full(np.shape(values), -1)
        codes[mask] = [index[v] for v in seen]
        return codes

    def transform(self, raw, name="b"):
        """Encoded float32 ``(n_trials, n_time, width)`` or ``(n_trials, width)``."""
        self.check_compatible(raw, name)
        channels = []
        for j, (values, mask) in enumerate(zip(raw.columns, raw.observed)):
            if j in self.categorical:
                codes = self.codes(j, values, mask, name)
                one_hot = codes[..., None] == np.arange(len(self.categories[j]))
                channels.extend(np.moveaxis(one_hot, -1, 0))
            else:
                filled = np.where(mask, values, self.mean[j])
                channels.append((filled - self.mean[j]) / self.scale[j])
        if self.missing:
            channels.extend(raw.observed)
        elif not all(mask.all() for mask in raw.observed):
            raise ValueError(
                f"{name} has missing values (NaN), but the teacher was fitted on behavior "
                "without any; refit with missing values in the training behavior."
            )
        shape = raw.columns[0].shape
        if not channels:
            return np.zeros((*shape, 0), dtype=np.float32)
        return np.stack(channels, axis=-1).astype(np.float32)

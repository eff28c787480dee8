"""Imaging sessions seen one neuron at a time: the sample container of the cell-type tasks.

For cell-type prediction the sample is a neuron, not a trial, but a neuron cannot be described
on its own: NeuPRINT reads it together with the population it was recorded in (population
mean and standard deviation at every frame) and the animal's behavior during that session.
:class:`Recordings` keeps whole sessions and a *selection* of their neurons. It behaves like an
array whose rows are the selected neurons: ``len``, ``shape[0]`` and integer, slice or boolean
indexing select neurons and keep the sessions, so scikit-learn's splitters, ``Pipeline`` and
``GridSearchCV`` split it by neuron while every fold still sees each neuron's full session
context. Only the selection changes; the session arrays are shared, never copied.
"""

from __future__ import annotations

import hashlib
import numbers

import numpy as np

from .validation import reject_sparse


def _session_array(value, name, index, *, n_frames=None):
    reject_sparse(value, name, "a 2-D array")
    if np.iscomplexobj(value):
        raise TypeError(f"{name}[{index}] holds complex numbers; it must be real.")
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name}[{index}] must be a numeric 2-D array, got {type(value).__name__}: {error}"
        ) from None
    expected = "(n_frames, n_neurons)" if n_frames is None else "(n_frames, n_behavior)"
    if array.ndim != 2:
        raise ValueError(
            f"{name}[{index}] must be 2-D {expected}, got an array of shape {array.shape}."
        )
    if n_frames is not None and array.shape[0] != n_frames:
        raise ValueError(
            f"{name}[{index}] has {array.shape[0]} frames but activity[{index}] has "
            f"{n_frames}; behavior must be {expected} with the session's frames."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name}[{index}] contains NaN or infinity.")
    if array.shape[0] < 2 or array.shape[1] < 1:
        raise ValueError(
            f"{name}[{index}] must have at least 2 frames and 1 column {expected}, got shape "
            f"{array.shape}."
        )
    return array


def _as_sessions(value, name):
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.ndim == 2 or hasattr(value, "toarray"):
        return [value]
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name} must hold at least one session, got an empty list.")
        return list(value)
    raise TypeError(
        f"{name} must be a 2-D array (n_frames, n_neurons) for one session or a list of them, "
        f"got {type(value).__name__}."
    )


class Recordings:
    """Neurons of one or more imaging sessions, as rows a scikit-learn pipeline can split.

    Parameters
    ----------
    activity : array-like (n_frames, n_neurons) or list of them
        Activity of every recorded neuron, one array per session (sessions may differ in
        frames and neurons). Use the same preprocessing for all sessions, e.g. z-scored
        fluorescence (``loss="mse"``) or non-negative deconvolved events (``loss="poisson"``).
    behavior : array-like (n_frames, n_behavior) or list of them, optional
        Behavior during each session (for example running speed and pupil size), frame by frame.
        The teacher of a distilled :class:`~sklearn_blend.NeuronEmbedding` reads it; all sessions
        need the same ``n_behavior``.
    neurons : array-like of int (n_selected, 2), optional
        The selected neurons as ``(session, neuron)`` index pairs. Default: every neuron of
        every session, session by session.

    Attributes
    ----------
    sessions : ndarray of int (n_selected,)
        The session of each selected neuron (an index into ``activity``).
    neuron_index : ndarray of int (n_selected,)
        Each selected neuron's column in its session's activity.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_blend import Recordings
    >>> rng = np.random.default_rng(0)
    >>> recordings = Recordings([rng.normal(size=(500, 40)), rng.normal(size=(300, 25))])
    >>> recordings.shape, len(recordings[::2])
    ((65, 1), 33)
    >>> recordings[[0, 64]].sessions
    array([0, 1])
    """

    def __init__(self, activity, behavior=None, *, neurons=None):
        sessions = _as_sessions(activity, "activity")
        self.activity = [_session_array(a, "activity", i) for i, a in enumerate(sessions)]
        behavior = _as_sessions(behavior, "behavior")
        if behavior is not None:
            if len(behavior) != len(self.activity):
                raise ValueError(
                    f"behavior has {len(behavior)} sessions but activity has "
                    f"{len(self.activity)}; give one (n_frames, n_behavior) array per session."
                )
            behavior = [
                _session_array(b, "behavior", i, n_frames=a.shape[0])
                for i, (a, b) in enumerate(zip(self.activity, behavior))
            ]
            widths = {b.shape[1] for b in behavior}
            if len(widths) > 1:
                raise ValueError(
                    f"every session's behavior must have the same columns, got widths "
                    f"{sorted(widths)}."
                )
        self.behavior = behavior
        self._keys = [None] * len(self.activity)
        if neurons is None:
            neurons = np.array(
                [(s, i) for s, a in enumerate(self.activity) for i in range(a.shape[1])],
                dtype=np.int64,
            ).reshape(-1, 2)
        self.neurons = self._check_neurons(neurons)

    def _check_neurons(self, neurons):
        neurons = np.asarray(neurons)
        if neurons.ndim != 2 or neurons.shape[1] != 2 or not (
            neurons.size == 0 or np.issubdtype(neurons.dtype, np.integer)
        ):
            raise ValueError(
                f"neurons must be integer (session, neuron) pairs of shape (n_selected, 2), "
                f"got shape {neurons.shape} and dtype {neurons.dtype}."
            )
        neurons = neurons.astype(np.int64)
        sizes = np.array([a.shape[1] for a in self.activity])
        bad = (neurons[:, 0] < 0) | (neurons[:, 0] >= len(sizes))
        if not bad.any():
            bad = (neurons[:, 1] < 0) | (neurons[:, 1] >= sizes[neurons[:, 0]])
        if bad.any():
            raise ValueError(
                f"neurons[{int(np.flatnonzero(bad)[0])}] = {tuple(neurons[bad][0].tolist())} "
                f"is not a (session, neuron) pair of these sessions (neurons per session: "
                f"{sizes.tolist()})."
            )
        return neurons

    @property
    def sessions(self):
        return self.neurons[:, 0]

    @property
    def neuron_index(self):
        return self.neurons[:, 1]

    @property
    def n_sessions(self):
        return len(self.activity)

    @property
    def n_behavior(self):
        return 0 if self.behavior is None else self.behavior[0].shape[1]

    @property
    def shape(self):
        """``(n_selected, 1)``: one row per selected neuron (what scikit-learn counts)."""
        return (len(self.neurons), 1)

    def __len__(self):
        return len(self.neurons)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            if len(key) == 2 and (key[1] is Ellipsis or (
                    isinstance(key[1], slice) and key[1] == slice(None))):
                key = key[0]
            else:
                raise IndexError("Recordings are indexed by neuron only: recordings[rows].")
        if isinstance(key, numbers.Integral):
            key = [key]
        selected = self.neurons[key]
        return self._with_neurons(selected.reshape(-1, 2))

    def _with_neurons(self, neurons):
        view = object.__new__(Recordings)
        view.activity, view.behavior, view._keys = self.activity, self.behavior, self._keys
        view.neurons = neurons
        return view

    def _column_keys(self, session):
        if self._keys[session] is None:
            activity = self.activity[session]
            self._keys[session] = [
                hashlib.sha1(np.ascontiguousarray(activity[:, i]).tobytes()).hexdigest()
                for i in range(activity.shape[1])
            ]
        return self._keys[session]

    def neuron_keys(self):
        """A content hash of each selected neuron's activity trace: how models recognise it.

        A fitted :class:`~sklearn_blend.NeuronEmbedding` knows a neuron by its trace, whatever
        object or selection it comes in; two neurons with identical traces are one neuron.
        """
        return [self._column_keys(s)[i] for s, i in self.neurons]

    def __repr__(self):
        return (
            f"Recordings({len(self)} neurons selected from {self.n_sessions} session(s), "
            f"n_behavior={self.n_behavior})"
        )

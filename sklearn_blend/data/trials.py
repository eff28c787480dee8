"""Trials of several sessions as one array of samples: the container of multi-session models.

Sessions record different neurons (or LFP channels), so their arrays cannot be stacked. :class:`SessionTrials`
keeps one array per session and a *selection* of trials; it behaves like an array whose rows
are the selected trials (``len``, ``shape[0]``, integer, slice and boolean indexing), so
scikit-learn's splitters, ``Pipeline`` and ``GridSearchCV`` split it by trial while each trial
keeps its session. The behavior goes beside it as an ordinary array, one row per trial in the
same order, so the splitters index both alike. The session arrays are shared, never copied.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..modalities import SPIKES, Standardizer


def pad_channels(values, width):
    """``values`` ``(n_trials, n_time, n)`` as ``(n_trials, n_time, width)`` float32: zero
    columns appended past ``n``, or cut to ``width``."""
    out = np.zeros((*values.shape[:2], width), dtype=np.float32)
    n = min(width, values.shape[2])
    out[..., :n] = values[..., :n]
    return out


class SessionTrials:
    """Trials from several sessions (spike counts, or another signal), as rows a scikit-learn
    pipeline can split.

    Parameters
    ----------
    spikes : list of array-like (n_trials_s, n_time, n_neurons_s)
        Counts per bin of each session's trials (or, with ``modality``, that signal's values
        per bin and channel); sessions may differ in trials and neurons (channels), not in
        bins (cut or pad trials to a common ``n_time``).
    keys : list of hashable, optional
        A name for each session (default ``0, 1, ...``); a fitted multi-session model knows
        sessions by these keys.
    modality : Modality, default=SPIKES
        What the arrays hold, which decides their validation:
        :data:`~sklearn_blend.modalities.SPIKES` (non-negative counts) or a continuous one
        such as :data:`~sklearn_blend.modalities.LFP` (any sign, finite).

    Attributes
    ----------
    arrays : list of ndarray
        The validated float32 arrays, one per session (all trials, selected or not).
    session : ndarray of int (n_selected,)
        Position in ``arrays`` of each selected trial's session.
    trial : ndarray of int (n_selected,)
        Index of each selected trial within its session.

    Examples
    --------
    >>> import numpy as np
    >>> trials = SessionTrials([np.zeros((5, 10, 3)), np.ones((4, 10, 7))], keys=["a", "b"])
    >>> len(trials), trials.n_neurons, trials[[0, 6]].session.tolist()
    (9, (3, 7), [0, 1])
    >>> trials[[0, 6]].padded().shape
    (2, 10, 7)
    """

    def __init__(self, spikes, keys=None, *, modality=SPIKES):
        name = "spikes" if modality is SPIKES else modality.name
        if isinstance(spikes, np.ndarray) or not isinstance(spikes, (list, tuple)) or not spikes:
            raise TypeError(
                f"{name} must be a non-empty list of arrays (n_trials, n_time, n_channels), "
                f"one per session; got {type(spikes).__name__}."
            )
        arrays = []
        for index, array in enumerate(spikes):
            array, _ = modality.validate(array, name=f"{name}[{index}]")
            arrays.append(array)
        n_time = {a.shape[1] for a in arrays}
        if len(n_time) > 1:
            raise ValueError(
                f"the sessions' trials have different numbers of bins {sorted(n_time)}; "
                "every session must be (n_trials, n_time, n_neurons) with the same n_time "
                "(cut or pad the trials)."
            )
        keys = list(range(len(arrays))) if keys is None else list(keys)
        for key in keys:  # a key must find itself: NaN never equals NaN
            try:
                hash(key)
                usable = key == key
            except TypeError:
                usable = False
            if usable is not True:
                raise ValueError(f"keys must be hashable values that equal themselves (a name "
                                 f"or a number), got {key!r}.")
        if len(keys) != len(arrays) or len(set(keys)) != len(keys):
            raise ValueError(
                f"keys must name each of the {len(arrays)} sessions once, got {keys!r}."
            )
        self.arrays = arrays
        self.keys = keys
        self.modality = modality
        self.session = np.concatenate([np.full(len(a), s) for s, a in enumerate(arrays)])
        self.trial = np.concatenate([np.arange(len(a)) for a in arrays])

    @classmethod
    def _subset(cls, parent, rows):
        new = cls.__new__(cls)
        new.arrays, new.keys, new.modality = parent.arrays, parent.keys, parent.modality
        new.session, new.trial = parent.session[rows], parent.trial[rows]
        return new

    def __len__(self):
        return len(self.session)

    @property
    def shape(self):
        """``(n_selected_trials,)``: what scikit-learn reads to count samples."""
        return (len(self),)

    @property
    def n_time(self):
        return self.arrays[0].shape[1]

    @property
    def n_neurons(self):
        """Neurons of each session, in ``keys`` order."""
        return tuple(a.shape[2] for a in self.arrays)

    def __getitem__(self, key):
        if isinstance(key, numbers.Integral):
            key = [key]
        rows = np.arange(len(self))[key]
        return self._subset(self, np.atleast_1d(rows))

    def padded(self):
        """Values of the selected trials ``(n_selected, n_time, max n_neurons)``, zeros past
        each session's neurons (channels)."""
        out = np.zeros((len(self), self.n_time, max(self.n_neurons)), dtype=np.float32)
        for s, array in enumerate(self.arrays):
            rows = self.session == s
            out[rows, :, : array.shape[2]] = array[self.trial[rows]]
        return out

    def __repr__(self):
        unit = "neurons" if self.modality.kind == "counts" else "channels"
        counts = ", ".join(f"{k!r}: {int((self.session == s).sum())} trials x "
                           f"{self.arrays[s].shape[2]} {unit}"
                           for s, k in enumerate(self.keys))
        return f"SessionTrials({counts}; {self.n_time} bins)"


def read_sessions(X, modality, *, name="X"):
    """Training trials of one or several sessions: ``(values, slots, keys, widths)``.

    ``X`` is an array of one session (key ``0``) or a :class:`SessionTrials` of ``modality``'s
    kind; the sessions with trials in ``X`` become slots ``0, 1, ...`` in their order in
    ``X``. ``values`` ``(n_trials, n_time, widest)`` are zero past each session's channels.
    """
    if not isinstance(X, SessionTrials):
        values, _ = modality.validate(X, name=name)
        return values, np.zeros(len(values), np.int64), [0], (values.shape[2],)
    _check_kind(X, modality, name)
    if not len(X):
        raise ValueError(f"{name} selects no trials (0 samples).")
    used = sorted(set(X.session.tolist()))
    slot = {s: k for k, s in enumerate(used)}
    values = X.padded()[..., : max(X.n_neurons[s] for s in used)]
    return (values, np.array([slot[s] for s in X.session], dtype=np.int64),
            [X.keys[s] for s in used], tuple(X.n_neurons[s] for s in used))


def read_known_sessions(X, modality, keys, widths, n_time, *, n_heldout=0, session=None,
                        name="X", owner="the model", add_with="add_sessions"):
    """Trials of sessions a fitted model knows: ``(values, slots, was_2d)``.

    ``keys`` and ``widths`` are the model's sessions and their channels, ``n_time`` its
    longest trial. A session's trials may hold all its channels or, with ``n_heldout``, the
    held-in ones only. An array is read as session ``session`` (default: the only one the
    model knows). ``values`` ``(n_trials, n_time, max(widths))`` are zero past each trial's
    channels; errors name ``owner`` and the method that adds sessions (``add_with``).
    """
    unit = "neurons" if modality.non_negative else "channels"
    was_2d = False
    if isinstance(X, SessionTrials):
        _check_kind(X, modality, name)
        if not len(X):
            raise ValueError(f"{name} selects no trials (0 samples).")
        used = sorted(set(X.session.tolist()))
        unknown = [X.keys[s] for s in used if X.keys[s] not in keys]
        if unknown:
            raise ValueError(f"{name} holds trials of sessions {unknown} that the model has "
                             f"not seen; it knows {list(keys)}. Add them first ({add_with}).")
        slot_of = {key: slot for slot, key in enumerate(keys)}
        for s in used:
            expected = widths[slot_of[X.keys[s]]]
            if X.n_neurons[s] not in (expected, expected - n_heldout):
                raise ValueError(
                    f"session {X.keys[s]!r} of {name} has {X.n_neurons[s]} {unit}, but the "
                    f"model knows it with {expected}"
                    + (f" ({expected - n_heldout} held-in)." if n_heldout else "."))
        slots = np.array([slot_of[X.keys[s]] for s in X.session], dtype=np.int64)
        values = X.padded()
    else:
        values, was_2d = modality.validate(X, name=name)
        if session is None:
            if len(keys) > 1:
                raise ValueError(
                    f"the model knows sessions {list(keys)}: pass {name} as SessionTrials "
                    f"(SessionTrials([...], keys=[...]), so that each trial names its session), "
                    f"or name the session whose input map reads this array with "
                    f"session=<key>.")
            session = keys[0]
        if session not in keys:
            raise ValueError(f"session={session!r} is not one of {list(keys)}.")
        s = list(keys).index(session)
        if values.shape[2] not in (widths[s], widths[s] - n_heldout):
            held_in = f" or the {widths[s] - n_heldout} held-in ones" if n_heldout else ""
            raise ValueError(
                f"{name} has {values.shape[2]} features, but {owner} is expecting "
                f"{widths[s]} features as input ({unit} of session {session!r}{held_in}): "
                f"{name} must be (n_trials, n_time <= {n_time}, {widths[s]}) "
                f"{modality.what} as in fit, got shape {values.shape}.")
        slots = np.full(len(values), s, np.int64)
    if values.shape[1] > n_time:
        raise ValueError(f"{name} has {values.shape[1]} bins; the model was fitted on trials of "
                         f"{n_time} ({name} must be (n_trials, n_time <= {n_time}, "
                         f"n_{unit})).")
    return pad_channels(values, max(widths)), slots, was_2d


def _check_kind(X, modality, name):
    if X.modality.kind != modality.kind:
        raise ValueError(f"{name} holds {X.modality.what}, but {modality.what} are expected: "
                         f"SessionTrials(..., modality={modality.name.upper()}).")


def fit_session_scaling(values, slots, widths, sessions, modality):
    """``{slot: (mean, scale)}`` of each of ``sessions``: the per-channel statistics of its
    trials in ``values`` (``modality``'s encoder: z-scoring for continuous signals, none for
    counts, whose mean and scale are then 0 and 1)."""
    statistics = {}
    for s in sessions:
        n = widths[s]
        encoder = modality.encoder().fit(values[slots == s][..., :n])
        statistics[s] = (getattr(encoder, "mean_", np.zeros(n)),
                         getattr(encoder, "scale_", np.ones(n)))
    return statistics


def scale_sessions(values, slots, widths, means, scales):
    """``values`` with each slot's channels standardised by its ``means`` and ``scales``."""
    out = np.array(values, dtype=np.float32, copy=True)
    for s in np.unique(slots):
        n, rows = widths[s], slots == s
        out[rows, :, :n] = Standardizer.of(means[s], scales[s]).transform(out[rows, :, :n])
    return out

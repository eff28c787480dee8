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

from ..modalities import SPIKES


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

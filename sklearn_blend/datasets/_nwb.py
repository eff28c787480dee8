"""Loader for raw NWB files (e.g. the DANDI sets behind the Neural Latents Benchmark)."""

from __future__ import annotations

import functools
import os

import numpy as np
from sklearn.utils import Bunch


def open_nwb(path, reader="load_nwb"):
    """An open ``pynwb.NWBHDF5IO`` reading ``path`` (use it in a ``with``), or a clear error:
    pynwb missing (how to install it), no such file, not an NWB file."""
    try:
        import pynwb  # noqa: F401 (installed?)
    except ImportError as error:
        raise ImportError(
            f"{reader} reads NWB files with pynwb, which is not installed: "
            "pip install sklearn-blend[nwb] (or pip install pynwb)."
        ) from error
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no NWB file at {path!r}.")
    try:
        return _reader_class()(path, "r", load_namespaces=True)
    except OSError as error:
        raise OSError(f"cannot read {path!r} as an NWB file: {error}") from error


@functools.cache
def _reader_class():
    """pynwb's ``NWBHDF5IO`` with a clear error for a file that is no NWB file (made on first
    use: pynwb is an optional dependency)."""
    from pynwb import NWBHDF5IO

    class CheckedIO(NWBHDF5IO):
        """pynwb's reader, whose ``read`` of a file that is no NWB file (an HDF5 file of
        another kind) is a ``ValueError`` naming the file."""

        def read(self, *args, **kwargs):
            try:
                return super().read(*args, **kwargs)
            except (TypeError, KeyError) as error:
                raise ValueError(f"{self.source!r} is not a valid NWB file ({error}).") from None

    return CheckedIO


def _time_series(nwbfile):
    """Every object with data and timing in acquisition and processing, by name."""
    found = {}

    def visit(container):
        for child in getattr(container, "children", []):
            if hasattr(child, "data") and (
                getattr(child, "timestamps", None) is not None
                or getattr(child, "rate", None) is not None
            ):
                found.setdefault(child.name, child)
            visit(child)

    for container in list(nwbfile.acquisition.values()) + list(nwbfile.processing.values()):
        if hasattr(container, "data"):
            found.setdefault(container.name, container)
        visit(container)
    return found


def _sample_times(series):
    if series.timestamps is not None:
        return np.asarray(series.timestamps[()], dtype=np.float64)
    start = series.starting_time or 0.0
    return start + np.arange(len(series.data)) / series.rate


def _bin_means(times, values, edges):
    """Mean of the samples in each bin; bins without samples are interpolated at their centre."""
    index = np.searchsorted(times, edges, side="left")
    cumulative = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    counts = np.diff(index)
    sums = cumulative[index[1:]] - cumulative[index[:-1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    empty = counts == 0
    if empty.any():
        centres = 0.5 * (edges[:-1] + edges[1:])[empty]
        means[empty] = np.column_stack(
            [np.interp(centres, times, values[:, k], left=np.nan, right=np.nan)
             for k in range(values.shape[1])]
        )
    return means


def available_memory():
    """Bytes of memory this machine can still give (``MemAvailable``, else the physical
    memory), or ``None`` where neither can be read."""
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits_in_memory(n_bytes, what):
    """A ``ValueError`` saying how large ``what`` would be when it cannot fit in memory."""
    available = available_memory()
    if available is not None and n_bytes > available:
        raise ValueError(f"{what} would take {n_bytes / 2**30:.1f} GiB, more than the "
                         f"{available / 2**30:.1f} GiB of memory available; bin more coarsely "
                         "or cut a shorter window.")


def load_nwb(path, *, align_field="move_onset_time", align_range_ms=(-250, 450),
             bin_size_ms=5, behavior=None, behavior_lag_ms=0, split=None):
    """Bin the spikes (and behavior) of an NWB file's trials into trial tensors.

    Trials come from the file's trial table, each aligned on the event column
    ``align_field`` and cut to ``[event + align_range_ms[0], event + align_range_ms[1])``.
    Spikes of every unit are counted in bins of ``bin_size_ms``; units whose ``heldout``
    column is True (NLB's held-out neurons) go to ``spikes_heldout``, the others, in the order
    of the units table, to ``spikes``.

    Parameters
    ----------
    path : str or path-like
        An NWB file (e.g. ``sub-Jenkins_ses-small_desc-train_behavior+ecephys.nwb`` from
        DANDI:000140).
    align_field : str, default="move_onset_time"
        Trial-table column with the alignment event time (seconds).
    align_range_ms : (float, float), default=(-250, 450)
        Window around the event, in ms; its length must be a multiple of ``bin_size_ms``.
    bin_size_ms : float, default=5
    behavior : str or list of str, optional
        Names of time series (in ``acquisition`` or ``processing``) to resample to the bins,
        e.g. ``"hand_vel"``; channels are concatenated. ``None``: spikes only.
    behavior_lag_ms : float, default=0
        Behavior window shifted this much later than the spike window (NLB uses +120 ms for
        MC_Maze_Small, so that bin ``t`` holds the velocity 120 ms after its spikes).
    split : str or list of str, optional
        Keep only trials whose ``split`` column is one of these (e.g. ``"train"``).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``spikes`` ``(n_trials, n_time, n_heldin)``, ``spikes_heldout``
        ``(n_trials, n_time, n_heldout)`` (``n_heldout`` may be 0), ``behavior``
        ``(n_trials, n_time, n_channels)`` or ``None``, ``trial_ids``, ``unit_ids``,
        ``unit_ids_heldout``, ``bin_size_ms``, ``DESCR``. Spike counts are float32.

    Examples
    --------
    A tiny NWB file (pynwb) with two trials, one held-in and one held-out unit and a hand
    velocity sampled at 1 kHz, binned at 10 ms around each movement onset:

    >>> import os, tempfile
    >>> from datetime import datetime, timezone
    >>> import numpy as np
    >>> from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    >>> from sklearn_blend.datasets import load_nwb
    >>> nwb = NWBFile(session_description="demo", identifier="demo",
    ...               session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    >>> nwb.add_trial_column("move_onset_time", "movement onset (s)")
    >>> for i in range(2):
    ...     nwb.add_trial(start_time=float(i), stop_time=i + 0.9, move_onset_time=i + 0.3)
    >>> nwb.add_unit_column("heldout", "held-out unit")
    >>> nwb.add_unit(spike_times=[0.301, 1.301], heldout=False)
    >>> nwb.add_unit(spike_times=[0.2501, 1.2501], heldout=True)
    >>> t = np.arange(0, 2.0, 0.001)
    >>> behavior = nwb.create_processing_module("behavior", "behavior")
    >>> _ = behavior.add(TimeSeries(name="hand_vel", data=np.column_stack([t, -t]),
    ...                             timestamps=t, unit="m/s"))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "demo.nwb")
    ...     with NWBHDF5IO(path, "w") as io:
    ...         io.write(nwb)
    ...     data = load_nwb(path, align_range_ms=(-100, 100), bin_size_ms=10,
    ...                     behavior="hand_vel")
    >>> data.spikes.shape, data.spikes_heldout.shape, data.behavior.shape
    ((2, 20, 1), (2, 20, 1), (2, 20, 2))
    >>> np.flatnonzero(data.spikes[0, :, 0]), np.flatnonzero(data.spikes_heldout[0, :, 0])
    (array([10]), array([5]))
    >>> round(float(data.behavior[1, 0, 0]), 4)  # mean of the samples 1.200 .. 1.209 s
    1.2045
    """
    path = os.fspath(path)
    start_ms, stop_ms = align_range_ms
    n_time = (stop_ms - start_ms) / bin_size_ms
    if stop_ms <= start_ms or abs(n_time - round(n_time)) > 1e-9:
        raise ValueError(
            f"align_range_ms={align_range_ms!r} must be increasing and span a multiple of "
            f"bin_size_ms={bin_size_ms}."
        )
    n_time = int(round(n_time))
    names = [behavior] if isinstance(behavior, str) else list(behavior or [])

    with open_nwb(path) as io:
        nwbfile = io.read()
        if nwbfile.trials is None:
            raise ValueError(f"{path!r} has no trial table (intervals/trials).")
        trials = nwbfile.trials.to_dataframe()
        if align_field not in trials.columns:
            raise ValueError(
                f"align_field={align_field!r} is not a column of the trial table of {path!r}; "
                f"its columns are {list(trials.columns)}."
            )
        if split is not None:
            if "split" not in trials.columns:
                raise ValueError(f"split={split!r} given but the trial table has no 'split'.")
            trials = trials[trials["split"].isin([split] if isinstance(split, str) else split)]
        trials = trials[np.isfinite(trials[align_field].to_numpy(dtype=float))]
        if trials.empty:
            raise ValueError(f"{path!r} has no trials with a {align_field!r} time.")
        events = trials[align_field].to_numpy(dtype=np.float64)
        units = nwbfile.units
        if units is None or len(units) == 0:
            raise ValueError(f"{path!r} has no units table with spike times.")
        # the bin edges (float64) and the counts (float32) of every trial, bin and unit
        check_fits_in_memory(len(events) * (n_time + 1) * (16 + 4 * len(units)),
                             f"{len(events)} trials x {n_time} bins of {bin_size_ms:g} ms x "
                             f"{len(units)} units")
        offsets = (start_ms + bin_size_ms * np.arange(n_time + 1)) / 1000.0
        edges = events[:, None] + offsets[None, :]

        heldout = (
            np.asarray(units["heldout"][:], dtype=bool)
            if "heldout" in units.colnames else np.zeros(len(units), dtype=bool)
        )
        counts = np.zeros((len(events), n_time, len(units)), dtype=np.float32)
        # edges and spike times rounded to the nanosecond: a spike exactly on an edge (1.88 s)
        # must fall in the bin that starts there, whatever the float error of event + offset
        spike_edges = np.round(edges, 9)
        for unit in range(len(units)):
            spike_times = np.round(
                np.sort(np.asarray(units["spike_times"][unit], dtype=np.float64)), 9)
            cumulative = np.searchsorted(spike_times, spike_edges, side="left")
            counts[:, :, unit] = np.diff(cumulative, axis=1)
        unit_ids = np.asarray(units.id[:])

        behavior_array = None
        if names:
            available = _time_series(nwbfile)
            missing = [name for name in names if name not in available]
            if missing:
                raise ValueError(
                    f"{path!r} has no behavior time series {missing}; it holds "
                    f"{sorted(available) or 'none (spikes only)'}."
                )
            lagged = edges + behavior_lag_ms / 1000.0
            channels = []
            for name in names:
                series = available[name]
                values = np.asarray(series.data[()], dtype=np.float64).reshape(
                    len(series.data), -1
                )
                times = _sample_times(series)
                channels.append(
                    np.stack([_bin_means(times, values, trial_edges) for trial_edges in lagged])
                )
            behavior_array = np.concatenate(channels, axis=-1).astype(np.float32)

    return Bunch(
        spikes=counts[..., ~heldout],
        spikes_heldout=counts[..., heldout],
        behavior=behavior_array,
        trial_ids=np.asarray(trials.index),
        unit_ids=unit_ids[~heldout],
        unit_ids_heldout=unit_ids[heldout],
        bin_size_ms=bin_size_ms,
        DESCR=(
            f"{os.path.basename(path)}: {len(events)} trials x {n_time} bins of "
            f"{bin_size_ms} ms aligned on {align_field} {tuple(align_range_ms)} ms; "
            f"{int((~heldout).sum())} held-in and {int(heldout.sum())} held-out units; "
            f"behavior {names or 'none'} lagged {behavior_lag_ms} ms."
        ),
    )

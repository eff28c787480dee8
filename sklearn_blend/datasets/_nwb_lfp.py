"""Loader for LFP (and the spikes recorded with it) in NWB files, cut into trials or segments."""

from __future__ import annotations

import math
import os

import numpy as np
from sklearn.utils import Bunch

from ..data.validation import check_float32_range, check_in, check_number
from ._nwb import _sample_times, open_nwb


def _electrical_series(nwbfile):
    """``[(path, series), ...]`` of every ElectricalSeries in acquisition and processing.

    A series may sit directly in ``acquisition`` or a processing module, or inside an ``LFP``
    (or ``FilteredEphys``) container there; its path names where, e.g.
    ``"processing/ecephys/LFP/lfp"``.
    """
    from pynwb.ecephys import LFP, ElectricalSeries, FilteredEphys

    found = []

    def visit(prefix, objects):
        for name, obj in objects.items():
            if isinstance(obj, ElectricalSeries):
                found.append((f"{prefix}/{name}", obj))
            elif isinstance(obj, (LFP, FilteredEphys)):
                for inner, series in obj.electrical_series.items():
                    found.append((f"{prefix}/{name}/{inner}", series))

    visit("acquisition", nwbfile.acquisition)
    for module_name, module in nwbfile.processing.items():
        visit(f"processing/{module_name}", module.data_interfaces)
    return found


def _pick_series(found, series, path):
    if not found:
        raise ValueError(
            f"{path!r} has no ElectricalSeries in acquisition or in a processing module (such "
            "as an LFP container in processing/ecephys)."
        )
    listing = [name for name, _ in found]
    if series is None:
        if len(found) == 1:
            return found[0]
        in_lfp = [item for item in found if type(_parent(item[1])).__name__ == "LFP"]
        return (in_lfp or found)[0]
    matches = [item for item in found if item[0] == series]
    if not matches:
        matches = [item for item in found if item[0].rsplit("/", 1)[-1] == series]
    if not matches:
        raise ValueError(f"{path!r} has no ElectricalSeries {series!r}; it holds {listing}.")
    if len(matches) > 1:
        raise ValueError(
            f"series={series!r} names several ElectricalSeries in {path!r}: "
            f"{[name for name, _ in matches]}; pass one of these paths."
        )
    return matches[0]


def _parent(series):
    return getattr(series, "parent", None)


def _rate(series, name):
    """Sampling rate (Hz) of ``series``, from ``rate`` or from regular timestamps."""
    if series.rate is not None:
        rate = float(series.rate)
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"ElectricalSeries {name!r} has a sampling rate of {rate:g} Hz; "
                             "a recording's rate is a positive number of samples per second.")
        return rate
    times = np.asarray(series.timestamps[()], dtype=np.float64)
    steps = np.diff(times)
    if len(steps) == 0 or np.median(steps) <= 0:
        raise ValueError(f"ElectricalSeries {name!r} has too few or unordered timestamps.")
    step = float(np.median(steps))
    if np.max(np.abs(steps - step)) > 0.01 * step:
        raise ValueError(
            f"ElectricalSeries {name!r} has irregular timestamps (steps from {steps.min():g} to "
            f"{steps.max():g} s); LFP must be regularly sampled to be filtered and cut."
        )
    return 1.0 / step


def _first_index(series, t, rate, timestamps):
    """Index of the first sample at or after time ``t`` (times rounded to the nanosecond).

    ``timestamps``: the series' sample times (rounded) when it has timestamps, else ``None`` (its
    samples are then ``starting_time + i / rate``, computed without building that array).
    """
    if timestamps is None:
        start = series.starting_time or 0.0
        return int(math.ceil(round((t - start) * rate, 6)))
    return int(np.searchsorted(timestamps, round(t, 9), side="left"))


def _read(series, start, stop):
    """Samples ``start:stop`` as float64 ``(n, n_channels)`` in the series' unit (volts)."""
    values = np.asarray(series.data[start:stop], dtype=np.float64)
    values = values.reshape(len(values), -1)
    scale = series.conversion
    channel_conversion = getattr(series, "channel_conversion", None)
    if channel_conversion is not None:
        scale = scale * np.asarray(channel_conversion[()], dtype=np.float64)
    return values * scale + (getattr(series, "offset", 0.0) or 0.0)


def _check_rate(preprocess, sfreq, series_path):
    if not math.isclose(float(preprocess.sfreq), sfreq, rel_tol=1e-6):
        raise ValueError(
            f"preprocess has sfreq={preprocess.sfreq!r} Hz but {series_path!r} is sampled "
            f"at {sfreq:g} Hz; set LFPPreprocessor(sfreq={sfreq:g}, ...)."
        )


def _check_finite(values, series_path, path):
    if not np.isfinite(values).all():
        raise ValueError(f"the LFP of {series_path!r} in {path!r} holds NaN or inf values.")


def _bin_spikes(units, starts, n_bins, bin_s):
    """Spike counts ``(n_windows, n_bins, n_units)`` in bins of ``bin_s`` from each start."""
    edges = np.round(starts[:, None] + bin_s * np.arange(n_bins + 1)[None, :], 9)
    counts = np.zeros((len(starts), n_bins, len(units)), dtype=np.float32)
    for unit in range(len(units)):
        spike_times = np.round(
            np.sort(np.asarray(units["spike_times"][unit], dtype=np.float64)), 9)
        counts[:, :, unit] = np.diff(np.searchsorted(spike_times, edges, side="left"), axis=1)
    return counts


def load_nwb_lfp(path, *, series=None, trials=True, align_field=None, align_range_ms=None,
                 segment_s=None, bin_size_ms=10, preprocess=None, preprocess_on="recording"):
    """Read LFP from an NWB file, cut into its trials or into fixed-length segments.

    The LFP is an ``ElectricalSeries``: in ``acquisition``, or in a processing module (the
    usual place is the ``LFP`` container of ``processing/ecephys``). Values are read in the
    series' unit (``data * conversion * channel_conversion + offset``, volts for a conforming
    file); without ``preprocess`` (or with ``preprocess_on="windows"``) only the samples of the
    windows asked for are read. When the file has a units
    table, the spikes of every unit are counted over the same windows.

    Windows:

    * ``trials=True`` (the file's trial table): with ``align_range_ms=None`` each trial runs
      from its ``align_field`` time (``start_time`` by default) to its ``stop_time``, and all
      are **cropped** to the shortest one (counted in samples; nothing is padded, so no value
      is made up); a trial that extends past the recording is cropped at its end. With
      ``align_range_ms=(a, b)``, each window is ``[event + a, event + b)`` ms and must lie
      inside the recording. Trials whose event time is NaN are left out (see ``trial_ids``).
    * ``trials=False``: consecutive segments of ``segment_s`` seconds from the first sample
      (the remainder at the end is dropped), or, with ``segment_s=None``, the whole recording
      as one segment.

    Each window starts at its first sample at or after the nominal start (times compared to
    the nanosecond).

    Parameters
    ----------
    path : str or path-like
        An NWB file.
    series : str, optional
        Which ElectricalSeries: its name (e.g. ``"lfp"``) or its path (e.g.
        ``"processing/ecephys/LFP/lfp"``). ``None``: the only one; if there are several, the
        first inside an ``LFP`` container, else the first found (acquisition first). The
        error for a missing name lists what the file holds.
    trials : bool, default=True
        Cut the file's trials (``True``) or segments of the recording (``False``).
    align_field : str, optional
        Trial-table column with the alignment time (s); ``None``: ``"start_time"``. Only with
        ``trials=True``.
    align_range_ms : (float, float), optional
        Fixed window around the alignment time, ms. Only with ``trials=True``.
    segment_s : float, optional
        Segment length, seconds (rounded to whole samples). Only with ``trials=False``.
    bin_size_ms : float, default=10
        Bin width for the spike counts; the bins start at each window's first LFP sample and
        cover its duration rounded down to whole bins.
    preprocess : LFPPreprocessor, optional
        Applied to the LFP (see ``preprocess_on``). An unfitted one is cloned and fitted
        (``fit_transform``: its z-scoring statistics then come from the whole recording, or
        from all the windows; for a train/test split give it ``zscore=False`` and scale with
        the training trials, e.g. in the model); a fitted one only transforms (e.g. one fitted
        on another file). Its ``sfreq`` must be the file's rate. ``None``: the LFP as stored.
    preprocess_on : {"recording", "windows"}, default="recording"
        ``"recording"``: the whole series is read and preprocessed as one continuous signal,
        then the windows are cut from the result
        (:func:`~sklearn_blend.lfp.preprocess_and_cut`), so filter edges fall only at the
        recording's ends; each window starts at the first output sample at or after its
        nominal start, and ``start_times`` and the spike bins follow it. ``"windows"``: only
        the windows are read and each is preprocessed on its own (less memory for a long
        recording, but every window has two filter edges: see the preprocessor's notes).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``lfp``: float32 ``(n, n_samples, n_channels)``; ``sfreq``: its rate in Hz (the
        preprocessor's output rate when ``preprocess`` is given); ``channel_ids``: indices of the
        series' rows in the electrodes table; ``start_times``: time (s) of each window's first
        sample; ``trial_ids``: trial-table ids (``None`` for segments); ``spikes``: float32
        counts ``(n, n_bins, n_units)`` or ``None`` without a units table; ``unit_ids`` (or
        ``None``); ``bin_size_ms``; ``series``: the path of the series read;
        ``preprocessor``: the fitted preprocessor or ``None``; ``DESCR``.

    Raises
    ------
    ImportError
        If pynwb is not installed (``pip install sklearn-blend[nwb]``).

    Examples
    --------
    A file's trials, its LFP (recorded at 1 kHz) low-passed and resampled to 100 Hz: when the
    windows last a whole number of 10-ms bins, there is one LFP sample per bin of spike counts
    (``data.lfp.shape[1] == data.spikes.shape[1]``):

    >>> from sklearn_blend.datasets._nwb_lfp import load_nwb_lfp
    >>> from sklearn_blend.lfp import LFPPreprocessor
    >>> pre = LFPPreprocessor(sfreq=1000.0, l_freq=None, h_freq=40.0, target_rate=100.0)
    >>> data = load_nwb_lfp("session.nwb", bin_size_ms=10, preprocess=pre)  # doctest: +SKIP
    """
    from ..lfp import LFPPreprocessor, _fit_or_transform, preprocess_and_cut

    check_in(trials, "trials", (True, False))
    check_number(bin_size_ms, "bin_size_ms", low=0, low_open=True)
    if trials and segment_s is not None:
        raise ValueError(
            f"segment_s={segment_s!r} cuts the recording into segments, which needs "
            "trials=False; with trials=True the trial table gives the windows."
        )
    if not trials and (align_field is not None or align_range_ms is not None):
        raise ValueError("align_field and align_range_ms apply to trials (trials=True) only.")
    if segment_s is not None:
        check_number(segment_s, "segment_s", low=0, low_open=True)
    if align_range_ms is not None:
        low, high = align_range_ms
        check_number(low, "align_range_ms[0]")
        check_number(high, "align_range_ms[1]")
        if high <= low:
            raise ValueError(f"align_range_ms={align_range_ms!r} must be increasing.")
    if preprocess is not None and not isinstance(preprocess, LFPPreprocessor):
        raise TypeError(
            f"preprocess must be an LFPPreprocessor or None, got {type(preprocess).__name__}."
        )
    check_in(preprocess_on, "preprocess_on", ("recording", "windows"))
    align_field = "start_time" if align_field is None else align_field

    with open_nwb(path, "load_nwb_lfp") as io:
        nwbfile = io.read()
        series_path, lfp_series = _pick_series(_electrical_series(nwbfile), series, path)
        sfreq = _rate(lfp_series, series_path)
        n_total = len(lfp_series.data)
        timestamps = (None if lfp_series.rate is not None
                      else np.round(_sample_times(lfp_series), 9))
        trial_ids = None

        if trials:
            if nwbfile.trials is None or len(nwbfile.trials) == 0:
                raise ValueError(
                    f"{path!r} has no trial table (intervals/trials); pass trials=False to cut "
                    "the recording into segments."
                )
            table = nwbfile.trials.to_dataframe()
            if align_field not in table.columns:
                raise ValueError(
                    f"align_field={align_field!r} is not a column of the trial table of "
                    f"{path!r}; its columns are {list(table.columns)}."
                )
            table = table[np.isfinite(table[align_field].to_numpy(dtype=float))]
            if table.empty:
                raise ValueError(f"{path!r} has no trials with a {align_field!r} time.")
            events = table[align_field].to_numpy(dtype=np.float64)
            trial_ids = np.asarray(table.index)
            if align_range_ms is None:
                stops = table["stop_time"].to_numpy(dtype=np.float64)
                bad = trial_ids[~np.isfinite(stops)]
                if len(bad):
                    raise ValueError(
                        f"trials {bad.tolist()[:10]} of {path!r} have no stop_time (NaN or "
                        "inf); give them one, or cut fixed windows with align_range_ms.")
                first = np.array(
                    [_first_index(lfp_series, t, sfreq, timestamps) for t in events])
                ends = np.minimum(
                    [_first_index(lfp_series, t, sfreq, timestamps) for t in stops], n_total)
            else:
                first = np.array([_first_index(lfp_series, t + low / 1000.0, sfreq,
                                               timestamps)
                                  for t in events])
                n_window = int(round((high - low) / 1000.0 * sfreq))
                ends = first + n_window
                outside = (ends > n_total) | (first < 0)
                if outside.any():
                    raise ValueError(
                        f"align_range_ms={tuple(align_range_ms)!r} around {align_field!r} "
                        f"reaches outside the recording of {series_path!r} (samples 0 to "
                        f"{n_total}) for trials {trial_ids[outside].tolist()}."
                    )
            bad = (first < 0) | (first >= n_total) | (ends <= first)
            if bad.any():
                raise ValueError(
                    f"trials {trial_ids[bad].tolist()} of {path!r} hold no samples of "
                    f"{series_path!r} (recorded from sample 0 to {n_total}); they start before "
                    "or after the recording, or are empty."
                )
            n_samples = int(np.min(ends - first))
        else:
            if segment_s is None:
                n_samples = n_total
                first = np.array([0])
            else:
                n_samples = int(round(segment_s * sfreq))
                if n_samples < 1 or n_samples > n_total:
                    raise ValueError(
                        f"segment_s={segment_s!r} s is {n_samples} samples at {sfreq:g} Hz; "
                        f"it must be between 1 sample and the recording's {n_total}."
                    )
                first = n_samples * np.arange(n_total // n_samples)

        t0 = (lfp_series.starting_time or 0.0) if timestamps is None else timestamps[0]
        if timestamps is None:
            times_first = t0 + first / sfreq
        else:
            times_first = timestamps[first]
        duration_s = n_samples / sfreq
        on_recording = preprocess is not None and preprocess_on == "recording"
        if on_recording:  # the continuous recording first, then the windows
            _check_rate(preprocess, sfreq, series_path)
            whole = _read(lfp_series, 0, n_total)
            _check_finite(whole, series_path, path)
            lfp, starts_out, fitted = preprocess_and_cut(preprocess, whole, first, n_samples)
            out_rate = fitted.sfreq_out_
            times_first = t0 + starts_out / out_rate
            duration_s = lfp.shape[1] / out_rate
        elif not trials and segment_s is None:
            lfp = _read(lfp_series, 0, n_total)[None]
        elif not trials:
            lfp = _read(lfp_series, 0, len(first) * n_samples).reshape(
                len(first), n_samples, -1)
        else:
            lfp = np.stack([_read(lfp_series, i, i + n_samples) for i in first])
        channel_ids = np.asarray(lfp_series.electrodes.data[()])

        spikes = unit_ids = None
        units = nwbfile.units
        if units is not None and len(units) > 0:
            bin_s = bin_size_ms / 1000.0
            n_bins = int(math.floor(round(duration_s / bin_s, 6)))
            if n_bins < 1:
                raise ValueError(
                    f"bin_size_ms={bin_size_ms!r} is longer than the windows "
                    f"({duration_s * 1000:g} ms); use a smaller bin."
                )
            spikes = _bin_spikes(units, times_first, n_bins, bin_s)
            unit_ids = np.asarray(units.id[:])

    if not on_recording:
        _check_finite(lfp, series_path, path)
        if preprocess is None:
            fitted, out_rate = None, sfreq
            check_float32_range(lfp, f"the LFP of {series_path!r}", "values")
            lfp = lfp.astype(np.float32)
        else:
            _check_rate(preprocess, sfreq, series_path)
            fitted, lfp = _fit_or_transform(preprocess, lfp)
            out_rate = fitted.sfreq_out_

    where = "trials" if trials else "segments"
    return Bunch(
        lfp=lfp,
        sfreq=out_rate,
        channel_ids=channel_ids,
        start_times=np.asarray(times_first, dtype=np.float64),
        trial_ids=trial_ids,
        spikes=spikes,
        unit_ids=unit_ids,
        bin_size_ms=bin_size_ms,
        series=series_path,
        preprocessor=fitted,
        DESCR=(
            f"{os.path.basename(path)}: {series_path}, {lfp.shape[0]} {where} x "
            f"{n_samples} samples at {sfreq:g} Hz x {lfp.shape[2]} channels"
            + (f", preprocessed to {lfp.shape[1]} samples at {out_rate:g} Hz" if fitted else "")
            + (f"; {spikes.shape[2]} units in {spikes.shape[1]} bins of {bin_size_ms} ms"
               if spikes is not None else "; no units")
            + "."
        ),
    )

"""Loader for the Bugeon et al. (2022) mouse V1 data in its published (figshare) file layout.

Bugeon, Duffield, Dipoppa, ..., Harris & Carandini (2022), "A transcriptomic axis predicts
state modulation of cortical interneurons", Nature 607:330-338, published two-photon imaging
of mouse V1 (layers 1-3) with running speed, pupil size and, for the inhibitory neurons matched
ex vivo, a transcriptomic type (t-type). The data are the figshare item
doi:10.6084/m9.figshare.19448531 (archive ``Bugeon et al 2022 v2.zip``), stored one file per
variable with ALF-style names (``object.attribute.npy``; columns as ``(n, 1)`` arrays).
:func:`load_bugeon` reads one stimulus block of every session into a
:class:`~sklearn_blend.data.recordings.Recordings` with per-neuron cell-type labels.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ..data.recordings import Recordings

#: inhibitory subclasses named by the first part of a t-type (``"Pvalb-Tpbg"`` -> ``"Pvalb"``)
SUBCLASSES = ("Lamp5", "Pvalb", "Vip", "Sncg", "Sst")
BEHAVIOR_NAMES = ("running_speed", "pupil_size")
#: ``neuron.ttype.txt`` entries read as "no transcriptomic label" (compared lower-case)
MISSING_LABELS = frozenset({"", "nan", "none", "unknown"})

DATA_DOI = "10.6084/m9.figshare.19448531"
CITATION = (
    "Bugeon S, Duffield J, Dipoppa M, Ritoux A, Prankerd I, Nicoloutsopoulos D, Orme D, "
    "Shinn M, Peng H, Forrest H, et al. (2022). A transcriptomic axis predicts state "
    "modulation of cortical interneurons. Nature 607:330-338. doi:10.1038/s41586-022-04915-7"
)

_SESSION_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ACTIVITY = "frame.neuralActivity.npy"
_FRAME_TIMES = "frame.times.npy"
_TTYPES = "neuron.ttype.txt"
#: (behavior values, their sample times), in the order of BEHAVIOR_NAMES
_BEHAVIOR_FILES = (("running.speed.npy", "running.times.npy"), ("eye.size.npy", "eye.times.npy"))
_LAYOUT = (
    "expected the unzipped figshare archive of Bugeon et al. 2022 (doi:" + DATA_DOI + "): "
    "<path>/<mouse>/<YYYY-MM-DD>/" + _TTYPES + " and <path>/<mouse>/<YYYY-MM-DD>/<stimulus>/"
    "<block>/{" + ", ".join([_ACTIVITY, _FRAME_TIMES] + [n for p in _BEHAVIOR_FILES for n in p])
    + "}, e.g. SB025/2019-10-07/Blank/01/" + _ACTIVITY
)


def ei_from_ttype(ttypes):
    """E/I class of each t-type: ``"EC"`` stays, ``""`` (unknown) stays, anything else is ``"IN"``.

    This is NeuPRINT's rule; the published files label each neuron ``"EC"``, ``"IN"`` or with a
    t-type.
    """
    ttypes = np.asarray(ttypes, dtype=str)
    return np.where((ttypes == "EC") | (ttypes == ""), ttypes, "IN")


def subclass_from_ttype(ttypes):
    """Subclass of each t-type: its prefix before ``"-"`` if in SUBCLASSES, else ``""``."""
    prefixes = [ttype.split("-", 1)[0] for ttype in np.asarray(ttypes, dtype=str).tolist()]
    return np.array([p if p in SUBCLASSES else "" for p in prefixes], dtype=str).reshape(-1)


def zscore_columns(array):
    """Each column minus its mean over rows, divided by its standard deviation (NaN ignored).

    Constant columns and NaN entries become 0, so the result is finite.
    """
    array = np.asarray(array, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean = np.nanmean(array, axis=0)
        std = np.nanstd(array, axis=0)
        constant = ~(np.nanmax(array, axis=0) > np.nanmin(array, axis=0))
    scaled = (array - mean) / np.where(constant, np.inf, std)
    return np.where(np.isfinite(scaled), scaled, 0.0)


def resample_at(sample_times, values, frame_times):
    """Linear interpolation of ``values`` sampled at ``sample_times`` at ``frame_times``.

    NaN samples are skipped (interpolated over); frames outside the sampled span take the first
    or last value.
    """
    finite = np.isfinite(sample_times) & np.isfinite(values)
    times, values = sample_times[finite], values[finite]
    order = np.argsort(times, kind="stable")
    return np.interp(frame_times, times[order], values[order])


def _require_file(file):
    if not file.is_file():
        raise FileNotFoundError(f"missing file {str(file)!r}; {_LAYOUT}.")


def _load_column(file):
    """A 1-D float64 array from an ALF ``(n,)`` or ``(n, 1)`` file."""
    values = np.asarray(np.load(file, allow_pickle=False), dtype=np.float64)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(
            f"{str(file)!r} must hold one value per sample, shape (n,) or (n, 1); got shape "
            f"{values.shape}."
        )
    return values


def _read_ttypes(file, n_neurons):
    """The t-type of each of ``n_neurons`` neurons, ``""`` where the file has no label."""
    with open(file, encoding="utf-8") as handle:
        labels = [line.strip() for line in handle.read().splitlines()]
    while len(labels) > n_neurons and labels[-1] == "":
        labels.pop()  # blank lines after the last neuron
    if len(labels) != n_neurons:
        raise ValueError(
            f"{str(file)!r} has {len(labels)} lines but the activity has {n_neurons} neurons; "
            f"it must hold one t-type per neuron, in the activity's column order."
        )
    return np.array(
        ["" if label.lower() in MISSING_LABELS else label for label in labels], dtype=str
    ).reshape(-1)


def _find_sessions(root):
    """``(mouse, date)`` of every ``<mouse>/<YYYY-MM-DD>`` folder under ``root``, sorted."""
    found = []
    for mouse_dir in sorted(root.iterdir()):
        if not mouse_dir.is_dir() or mouse_dir.name.startswith((".", "_")):
            continue
        for session_dir in sorted(mouse_dir.iterdir()):
            if session_dir.is_dir() and _SESSION_FOLDER.match(session_dir.name):
                found.append((mouse_dir.name, session_dir.name))
    return found


def _names(value, name):
    if value is None:
        return None
    names = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) for item in names):
        raise TypeError(f"{name} must be a string or a list of strings, got {value!r}.")
    return names


def _select_sessions(found, mice, sessions):
    available_mice = sorted({mouse for mouse, _ in found})
    available = [f"{mouse}/{date}" for mouse, date in found]
    if mice is not None:
        unknown = sorted(set(mice) - set(available_mice))
        if unknown:
            raise ValueError(f"mice {unknown} are not under path; it holds {available_mice}.")
    if sessions is not None:
        sessions = {item.replace("\\", "/").strip("/") for item in sessions}
        unknown = sorted(sessions - set(available))
        if unknown:
            raise ValueError(
                f"sessions {unknown} are not under path; it holds {available} "
                f"(names are '<mouse>/<YYYY-MM-DD>')."
            )
    selected = [
        (mouse, date)
        for (mouse, date), session_name in zip(found, available)
        if (mice is None or mouse in mice) and (sessions is None or session_name in sessions)
    ]
    if not selected:
        raise ValueError(
            f"mice={mice!r} and sessions={sorted(sessions or [])!r} select no session together."
        )
    return selected


def _stimulus_blocks(session_dir):
    return sorted(
        f"{stimulus.name}/{block.name}"
        for stimulus in session_dir.iterdir() if stimulus.is_dir()
        for block in stimulus.iterdir() if block.is_dir()
    )


def _load_session(session_dir, stimulus, block, zscore_behavior):
    """Z-scored activity, behavior at frame times, frame times and t-types of one session."""
    _require_file(session_dir / _TTYPES)
    block_dir = session_dir / stimulus / block
    if not block_dir.is_dir():
        raise FileNotFoundError(
            f"no stimulus block folder {str(block_dir)!r}; {str(session_dir)!r} holds "
            f"{_stimulus_blocks(session_dir) or 'no <stimulus>/<block> folders'}; {_LAYOUT}."
        )
    for file in (_ACTIVITY, _FRAME_TIMES, *[n for pair in _BEHAVIOR_FILES for n in pair]):
        _require_file(block_dir / file)

    activity = np.asarray(np.load(block_dir / _ACTIVITY, allow_pickle=False), dtype=np.float64)
    if activity.ndim != 2:
        raise ValueError(
            f"{str(block_dir / _ACTIVITY)!r} must be 2-D (n_frames, n_neurons); got shape "
            f"{activity.shape}."
        )
    frame_times = _load_column(block_dir / _FRAME_TIMES)
    if not np.isfinite(frame_times).all():
        raise ValueError(f"{str(block_dir / _FRAME_TIMES)!r} contains NaN or infinity.")
    if len(frame_times) != activity.shape[0]:
        raise ValueError(
            f"{str(block_dir / _FRAME_TIMES)!r} has {len(frame_times)} times but "
            f"{_ACTIVITY} has {activity.shape[0]} frames."
        )
    ttypes = _read_ttypes(session_dir / _TTYPES, activity.shape[1])

    columns = []
    for values_file, times_file in _BEHAVIOR_FILES:
        values = _load_column(block_dir / values_file)
        times = _load_column(block_dir / times_file)
        if len(values) != len(times):
            raise ValueError(
                f"{str(block_dir / values_file)!r} has {len(values)} samples but {times_file} "
                f"has {len(times)} times."
            )
        if not (np.isfinite(values) & np.isfinite(times)).any():
            raise ValueError(f"{str(block_dir / values_file)!r} has no finite sample.")
        columns.append(resample_at(times, values, frame_times))
    behavior = np.column_stack(columns)
    if zscore_behavior:
        behavior = zscore_columns(behavior)
    return (
        zscore_columns(activity).astype(np.float32),
        behavior.astype(np.float32),
        frame_times,
        ttypes,
    )


def load_bugeon(path, *, mice=None, sessions=None, stimulus="Blank", block="01",
                zscore_behavior=True):
    """Load one stimulus block of the Bugeon et al. (2022) sessions, with cell-type labels.

    Reads the unzipped figshare archive (doi:10.6084/m9.figshare.19448531) laid out as::

        path/
            states.names.txt, ttypes.names.txt, genes.names.txt, ...  (not read)
            SB025/                                 one folder per mouse
                2019-10-07/                        one folder per session, YYYY-MM-DD
                    neuron.ttype.txt               one label per line, one line per neuron
                    neuron.UniqueID.npy, ...       (not read)
                    Blank/                         stimulus: Blank, Drifting Gratings, ...
                        01/                        block of that stimulus
                            frame.neuralActivity.npy  (n_frames, n_neurons)
                            frame.times.npy           (n_frames, 1), seconds
                            running.speed.npy         (n_running, 1)
                            running.times.npy         (n_running, 1), seconds
                            eye.size.npy              (n_eye, 1), pupil size
                            eye.times.npy             (n_eye, 1), seconds
                            frame.states.npy, ...     (not read)

    Session folders are the ``YYYY-MM-DD`` folders inside each mouse folder (hidden folders and
    names starting with ``_``, such as ``__MACOSX``, are skipped); sessions come sorted by
    mouse, then date. Published: 17 sessions of mice SB025, SB026, SB028 and SB030.

    Preprocessing, after NeuPRINT (Mi et al. 2023), which reads these files the same way:

    * activity is z-scored per neuron over the session's frames (constant neurons and NaN
      entries become 0);
    * running speed and pupil size, sampled on their own clocks, are linearly interpolated at
      the frame times (NaN samples skipped; frames outside the sampled span take the edge
      value); NeuPRINT averages the two samples around each frame instead, which differs by
      less than one behavior sample. With ``zscore_behavior`` both columns are then z-scored
      per session, as NeuPRINT does.

    Parameters
    ----------
    path : str or path-like
        The folder holding the mouse folders (``SB025``, ...).
    mice : str or list of str, optional
        Keep only these mice, e.g. ``["SB025", "SB026"]``. Default: all.
    sessions : str or list of str, optional
        Keep only these sessions, named ``"<mouse>/<YYYY-MM-DD>"`` like ``session_names``.
        Combined with ``mice``, a session must pass both.
    stimulus : str, default="Blank"
        Stimulus folder: ``"Blank"`` (grey screen, spontaneous activity, the block NeuPRINT
        uses), ``"Drifting Gratings"`` or ``"Natural Scenes"``.
    block : str, default="01"
        Block folder inside the stimulus folder. Some sessions also have ``"02"``, whose
        neurons need not match ``neuron.ttype.txt`` (reported by Keijser et al.); check before
        using it.
    zscore_behavior : bool, default=True
        Z-score running speed and pupil size per session; ``False`` keeps the published units.

    Returns
    -------
    data : sklearn.utils.Bunch
        X : Recordings
            Every neuron of the selected sessions, session by session in column order: float32
            z-scored activity ``(n_frames, n_neurons)`` and behavior ``(n_frames, 2)`` per
            session.
        ei : ndarray of str (n_neurons,)
            ``"EC"`` (excitatory), ``"IN"`` (inhibitory: any label but ``"EC"``) or ``""`` (no
            label in ``neuron.ttype.txt``).
        subclass : ndarray of str (n_neurons,)
            ``"Lamp5"``, ``"Pvalb"``, ``"Vip"``, ``"Sncg"`` or ``"Sst"`` (the t-type's prefix),
            ``""`` otherwise (excitatory, inhibitory without t-type, unknown, or a t-type of
            another prefix such as ``"Serpinf1-..."``, which NeuPRINT also leaves out).
        ttype : ndarray of str (n_neurons,)
            The label as published (``"EC"``, ``"IN"`` or a t-type such as ``"Sst-Chodl"``);
            ``""`` where the line is blank or ``nan``/``none``/``unknown``.
        session : ndarray of int (n_neurons,)
            Index of each neuron's session in ``X`` and ``session_names``.
        mouse : ndarray of str (n_neurons,)
            The mouse of each neuron's session.
        session_names : list of str
            ``"<mouse>/<YYYY-MM-DD>"`` per session.
        behavior_names : list of str
            ``["running_speed", "pupil_size"]``, the columns of the behavior.
        frame_rate : float
            Imaging frames per second, from the frame times (median interval over all selected
            sessions; about 4.3 Hz).
        DESCR : str
            What was loaded, the preprocessing and the citation.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder, holds no session folder, or a session lacks one of the
        files read; the message names the file and the expected layout.
    ValueError
        If ``mice`` or ``sessions`` name nothing under ``path`` or the files disagree in shape.

    Notes
    -----
    Layout sources: the loaders of NeuPRINT (github.com/lumimim/NeuPRINT, ``main.py`` and
    ``data_preprocess.py``), of Keijser et al. (github.com/JoramKeijser/transcriptomic_axes,
    ``src/data_tools.py``) and of NuCLR (github.com/nerdslab/nuclr,
    ``preprocess/bugeon/prepare_data.py``), which agree on the names above. In those loaders
    every line of ``neuron.ttype.txt`` is ``"EC"``, ``"IN"`` or a t-type, so ``ei`` is ``""``
    only for blank or ``nan`` lines, which this loader treats as unknown rather than
    inhibitory. The units of running speed and pupil size are those of the published files.

    Data: figshare, doi:10.6084/m9.figshare.19448531. Cite Bugeon et al. (2022), Nature
    607:330-338, doi:10.1038/s41586-022-04915-7. The licence is stated on the figshare item
    page (not verified for this loader); check it before redistributing the data.

    Examples
    --------
    >>> from sklearn_blend.datasets import load_bugeon  # doctest: +SKIP
    >>> data = load_bugeon("Bugeon et al 2022", mice=["SB025"])  # doctest: +SKIP
    >>> data.X, data.behavior_names, sorted(set(data.subclass) - {""})  # doctest: +SKIP
    (Recordings(... neurons selected from 6 session(s), n_behavior=2),
     ['running_speed', 'pupil_size'], ['Lamp5', 'Pvalb', 'Sncg', 'Sst', 'Vip'])
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"no Bugeon et al. data folder at {str(root)!r}; {_LAYOUT}.")
    for value, name in ((stimulus, "stimulus"), (block, "block")):
        if not isinstance(value, str) or not value or "/" in value or "\\" in value:
            raise ValueError(
                f"{name} must be a folder name such as 'Blank' or '01', got {value!r}."
            )
    mice, sessions = _names(mice, "mice"), _names(sessions, "sessions")
    found = _find_sessions(root)
    if not found:
        raise FileNotFoundError(
            f"no session folders <mouse>/<YYYY-MM-DD> under {str(root)!r}; {_LAYOUT}."
        )
    selected = _select_sessions(found, mice, sessions)

    activity, behavior, intervals, ttypes = [], [], [], []
    for mouse, date in selected:
        session_activity, session_behavior, frame_times, session_ttypes = _load_session(
            root / mouse / date, stimulus, block, zscore_behavior
        )
        activity.append(session_activity)
        behavior.append(session_behavior)
        intervals.append(np.diff(frame_times))
        ttypes.append(session_ttypes)
    interval = float(np.median(np.concatenate(intervals)))
    if not interval > 0:
        raise ValueError(f"the frame times of {stimulus}/{block} do not increase.")

    n_neurons = [a.shape[1] for a in activity]
    ttype = np.concatenate(ttypes).astype(str)
    ei = ei_from_ttype(ttype)
    session_names = [f"{mouse}/{date}" for mouse, date in selected]
    descr = (
        f"Bugeon et al. (2022) mouse V1 two-photon imaging, stimulus block {stimulus}/{block}: "
        f"{len(selected)} session(s) of mice {sorted({m for m, _ in selected})}, "
        f"{sum(n_neurons)} neurons ({int((ei == 'EC').sum())} EC, "
        f"{int((ei == 'IN').sum())} IN, {int((ei == '').sum())} "
        f"unlabelled), {1.0 / interval:.2f} frames/s. Activity z-scored per neuron over each "
        f"session; running speed and pupil size interpolated at the frame times"
        f"{' and z-scored per session' if zscore_behavior else ''}.\n"
        f"Data: figshare doi:{DATA_DOI} (check the licence on the figshare page).\n"
        f"Cite: {CITATION}"
    )
    return Bunch(
        X=Recordings(activity, behavior),
        ei=ei,
        subclass=subclass_from_ttype(ttype),
        ttype=ttype,
        session=np.repeat(np.arange(len(selected)), n_neurons),
        mouse=np.repeat(np.array([mouse for mouse, _ in selected], dtype=str), n_neurons),
        session_names=session_names,
        behavior_names=list(BEHAVIOR_NAMES),
        frame_rate=1.0 / interval,
        DESCR=descr,
    )

"""Neural Latents Benchmark '21 submissions: the official test trials and the submission file.

:func:`load_mc_maze_small_test` (or :func:`load_nlb_test_nwb` for the other NLB'21 test NWB
files but dmfc_rsg's) bins the official test trials, whose held-out neurons and behavior NLB
withholds; :func:`make_submission` writes a fitted model's rates for them to an ``.h5`` file in
the layout the EvalAI leaderboard and ``nlb_tools.evaluation.evaluate`` read: one group per
dataset (``mc_maze_small``, or ``mc_maze_small_20`` at 20 ms) holding float32
``eval_rates_heldin``, ``eval_rates_heldout``, ``eval_rates_heldin_forward``,
``eval_rates_heldout_forward`` and, for the velocity decoder, ``train_rates_heldin`` and
``train_rates_heldout``, stored as ``nlb_tools.make_tensors.save_to_h5`` stores them (gzip,
float32)."""

from __future__ import annotations

import inspect
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from .data.validation import check_trials

__all__ = [
    "NLB_DATASETS", "make_submission", "write_submission", "load_nlb_test_nwb",
    "load_mc_maze_small_test", "group_name",
]


@dataclass(frozen=True)
class _Dataset:
    """What the leaderboard expects of one NLB'21 dataset (values of nlb_tools' ``PARAMS``)."""

    window_ms: int  # length of an evaluation trial
    align_field: str  # event the evaluation trials are aligned on
    align_range_ms: tuple
    neurons: tuple | None = None  # (held-in, held-out), where checked against the data here


#: forward prediction: every NLB'21 dataset scores the 200 ms after each evaluation trial
FORWARD_MS = 200

_MC_MAZE = dict(window_ms=700, align_field="move_onset_time", align_range_ms=(-250, 450))

#: the datasets of nlb_tools.evaluation.evaluate with a fixed evaluation window (all but
#: dmfc_rsg, whose trials run from set to go, NaN-padded in front to 1500 ms)
NLB_DATASETS = {
    "mc_maze": _Dataset(**_MC_MAZE),
    "mc_rtt": _Dataset(600, "start_time", (0, 600)),
    "area2_bump": _Dataset(600, "move_onset_time", (-100, 500)),
    "mc_maze_large": _Dataset(**_MC_MAZE),
    "mc_maze_medium": _Dataset(**_MC_MAZE),
    "mc_maze_small": _Dataset(**_MC_MAZE, neurons=(107, 35)),
}

#: bin widths the leaderboard evaluates -> suffix of the dataset's group name
BIN_SUFFIXES = {5: "", 20: "_20"}

#: the official MC_Maze_Small test file (DANDI:000140) and where a checkout finds it
MC_MAZE_SMALL_TEST_FILE = "sub-Jenkins_ses-small_desc-test_ecephys.nwb"
MC_MAZE_SMALL_TEST_TRIALS = 100
#: trials NLB fits the velocity decoder on in the test phase (75 'train' + 25 'val')
MC_MAZE_SMALL_TRAIN_VAL_TRIALS = 100


def _shared_folder():
    """``shared/data/mc_maze_small`` beside the repository checkout (a development layout)."""
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "mc_maze_small"


def _check_dataset(dataset, bin_size_ms):
    """The dataset's spec and the bin width as an int; clear errors for anything else."""
    if dataset == "dmfc_rsg":
        raise ValueError(
            "dataset='dmfc_rsg' is not supported: its evaluation trials have variable length "
            "(NaN-padded in front), which the estimators here do not take."
        )
    if not isinstance(dataset, str) or dataset not in NLB_DATASETS:
        raise ValueError(
            f"dataset must be one of the NLB'21 datasets {sorted(NLB_DATASETS)}, got "
            f"{dataset!r}."
        )
    if isinstance(bin_size_ms, bool) or not isinstance(bin_size_ms, (int, float, np.number)) \
            or bin_size_ms not in BIN_SUFFIXES:
        raise ValueError(
            f"bin_size_ms must be one of {sorted(BIN_SUFFIXES)} (the bin widths the NLB'21 "
            f"leaderboard evaluates), got {bin_size_ms!r}."
        )
    return NLB_DATASETS[dataset], int(bin_size_ms)


def group_name(dataset="mc_maze_small", bin_size_ms=5):
    """Name of the dataset's group in a submission file, as nlb_tools names it.

    Examples
    --------
    >>> from sklearn_blend.nlb import group_name
    >>> group_name("mc_maze_small"), group_name("mc_maze_small", 20)
    ('mc_maze_small', 'mc_maze_small_20')
    """
    _, bin_size_ms = _check_dataset(dataset, bin_size_ms)
    return dataset + BIN_SUFFIXES[bin_size_ms]


def _test_split(path):
    """``(number of 'test' trials, whether the trial table has a 'split' column)``."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            trials = f["intervals/trials"]
            if "split" not in trials:
                return None, False
            split = np.asarray(trials["split"][()]).astype(str)
    except (OSError, KeyError):
        return None, False  # load_nwb reports what is wrong with the file
    return int((split == "test").sum()), True


def load_nlb_test_nwb(path, *, dataset="mc_maze_small", bin_size_ms=5):
    """Bin the evaluation trials of an official NLB'21 test NWB file.

    The trials whose ``split`` is ``"test"`` (all trials when the table has no ``split``
    column), in the order of the file's trial table, are cut to the dataset's NLB window
    (``move_onset_time`` -250 to +450 ms for the MC_Maze datasets) and binned with
    :func:`sklearn_blend.datasets.load_nwb`. The test files hold held-in units only: NLB
    withholds the held-out neurons, the forward bins and the behavior of these trials.

    Parameters
    ----------
    path : str or path-like
        The test NWB file, e.g. ``sub-Jenkins_ses-small_desc-test_ecephys.nwb`` from DANDI:000140.
    dataset : str, default="mc_maze_small"
        One of ``mc_maze``, ``mc_rtt``, ``area2_bump``, ``mc_maze_large``, ``mc_maze_medium``,
        ``mc_maze_small`` (``dmfc_rsg``, whose evaluation trials have no fixed window, is not
        supported).
    bin_size_ms : {5, 20}, default=5

    Returns
    -------
    data : sklearn.utils.Bunch
        ``spikes`` (float32 ``(n_trials, n_time, n_heldin)``, the ``X`` of
        :func:`make_submission`), ``trial_ids``, ``unit_ids``, ``bin_size_ms``, ``dataset`` and
        ``DESCR``.

    Examples
    --------
    >>> from sklearn_blend.nlb import load_nlb_test_nwb
    >>> test = load_nlb_test_nwb("sub-Jenkins_ses-small_desc-test_ecephys.nwb")  # doctest: +SKIP
    >>> test.spikes.shape  # doctest: +SKIP
    (100, 140, 107)
    """
    from .datasets import load_nwb

    spec, bin_size_ms = _check_dataset(dataset, bin_size_ms)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no NWB file at {path!r}.")
    n_test, has_split = _test_split(path)
    if has_split and n_test == 0:
        raise ValueError(
            f"{path!r} has no trials in the 'test' split; pass the NLB test file "
            "(…_desc-test_ecephys.nwb), not a training file."
        )
    data = load_nwb(path, align_field=spec.align_field, align_range_ms=spec.align_range_ms,
                    bin_size_ms=bin_size_ms, split="test" if has_split else None)
    if has_split and len(data.trial_ids) != n_test:
        raise ValueError(
            f"{n_test - len(data.trial_ids)} of the {n_test} test trials of {path!r} have no "
            f"{spec.align_field!r} time, so they cannot be binned; the leaderboard expects "
            f"rates for all {n_test}."
        )
    n_trials, n_time, n_heldin = data.spikes.shape
    return Bunch(
        spikes=data.spikes,
        trial_ids=data.trial_ids,
        unit_ids=data.unit_ids,
        bin_size_ms=bin_size_ms,
        dataset=dataset,
        DESCR=(
            f"NLB'21 {dataset} evaluation trials from {os.path.basename(path)}: {n_trials} "
            f"trials x {n_time} bins of {bin_size_ms} ms ({spec.align_field} "
            f"{spec.align_range_ms[0]} to {spec.align_range_ms[1]} ms), {n_heldin} held-in "
            "units; no held-out units, forward bins or behavior (NLB withholds them)."
        ),
    )


def load_mc_maze_small_test(path=None, *, bin_size_ms=5):
    """Load the 100 official NLB'21 test trials of MC_Maze_Small (held-in spikes only).

    These are the trials the leaderboard scores: 100 trials x 140 bins of 5 ms (700 ms from
    250 ms before movement onset) x 107 held-in units, in the file's trial order, which is
    the order the submission's ``eval_rates_*`` must follow. The units are those of the
    bundled training trials (:func:`sklearn_blend.datasets.load_mc_maze_small`) in the same
    order (units sorted by id; the per-unit mean rates of the two sets correlate at r = 0.995).
    NLB withholds the 35 held-out units, the 40 forward bins and the behavior of these trials.

    Parameters
    ----------
    path : str or path-like, optional
        ``sub-Jenkins_ses-small_desc-test_ecephys.nwb`` (689,312 bytes), from DANDI:000140
        (https://dandiarchive.org/dandiset/000140). The package does not ship it; by default
        it is looked for in ``shared/data/mc_maze_small/`` beside the repository checkout.
    bin_size_ms : {5, 20}, default=5
        At 20 ms: 35 bins.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``spikes`` float32 ``(100, 140, 107)``, ``trial_ids``, ``unit_ids``, ``bin_size_ms``,
        ``dataset`` (``"mc_maze_small"``) and ``DESCR``.

    Examples
    --------
    >>> from sklearn_blend.nlb import load_mc_maze_small_test
    >>> test = load_mc_maze_small_test()  # doctest: +SKIP
    >>> test.spikes.shape  # doctest: +SKIP
    (100, 140, 107)
    """
    if path is None:
        path = _shared_folder() / MC_MAZE_SMALL_TEST_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"the MC_Maze_Small test file {MC_MAZE_SMALL_TEST_FILE} is not at {path}; "
                "download it from DANDI:000140 (https://dandiarchive.org/dandiset/000140, "
                "folder sub-Jenkins) and pass its path."
            )
    data = load_nlb_test_nwb(path, dataset="mc_maze_small", bin_size_ms=bin_size_ms)
    n_time = NLB_DATASETS["mc_maze_small"].window_ms // data.bin_size_ms
    expected = (MC_MAZE_SMALL_TEST_TRIALS, n_time, NLB_DATASETS["mc_maze_small"].neurons[0])
    if data.spikes.shape != expected:
        raise ValueError(
            f"{os.fspath(path)!r} gives test trials of shape {data.spikes.shape}, not the "
            f"{expected} of the official MC_Maze_Small test file {MC_MAZE_SMALL_TEST_FILE}."
        )
    return data


def _rate_model(estimator):
    """The fitted model that makes the rates: ``estimator`` or a Pipeline's first step."""
    steps = getattr(estimator, "steps", None)
    model = steps[0][1] if steps else estimator
    name = type(model).__name__
    needed = [a for a in ("predict_rates", "n_heldout", "forward_bins") if not hasattr(model, a)]
    if needed:
        raise TypeError(
            "estimator must be a fitted BlendEstimator (or a Pipeline starting with one): a "
            "model with predict_rates(X, forward=True), n_heldout and forward_bins; "
            f"{name} has no {', '.join(needed)}."
        )
    parameters = inspect.signature(model.predict_rates).parameters
    required = [p for p in parameters.values() if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if "forward" not in parameters or len(required) != 1:
        raise TypeError(
            f"estimator must predict rates from spikes alone, predict_rates(X, forward=True); "
            f"{name}.predict_rates{inspect.signature(model.predict_rates)} does not (a "
            "BlendTeacher needs behavior, which the NLB evaluation trials do not have: submit "
            "its student, a BlendEstimator)."
        )
    message = f"estimator ({name}) is not fitted yet: call fit before make_submission."
    if isinstance(model, BaseEstimator):
        check_is_fitted(model, msg=message)
    elif not hasattr(model, "n_features_in_"):  # a duck-typed model, fitted or not
        raise NotFittedError(message)
    return model


def _check_spikes(X, name, n_time, n_heldin, n_neurons):
    spikes, was_2d = check_trials(X, name=name)
    if was_2d or spikes.shape[1:] != (n_time, n_heldin):
        hint = ""
        if not was_2d and spikes.shape[1:] == (n_time, n_neurons):
            hint = f" It holds all {n_neurons} neurons: pass {name}[..., :{n_heldin}]."
        trials = "training" if name == "X_train" else "evaluation"
        raise ValueError(
            f"{name} must hold the held-in spike counts of the {trials} trials, shape "
            f"(n_trials, {n_time}, {n_heldin}); got shape "
            f"{np.shape(X) if was_2d else spikes.shape}.{hint}"
        )
    return spikes


def _checked_rates(model, X, name, n_time, n_neurons, forward_bins):
    rates = np.asarray(model.predict_rates(X, forward=bool(forward_bins)), dtype=np.float64)
    expected = (len(X), n_time + forward_bins, n_neurons)
    if rates.shape != expected:
        raise ValueError(
            f"the estimator's predict_rates({name}, forward={bool(forward_bins)}) returned "
            f"shape {rates.shape}, not {expected} (held-in then held-out neurons)."
        )
    if not np.isfinite(rates).all() or (rates < 0).any():
        raise ValueError(
            f"the estimator predicted {int((~np.isfinite(rates)).sum())} non-finite and "
            f"{int((rates < 0).sum())} negative rates for {name}; a submission needs finite, "
            "non-negative expected counts per bin."
        )
    return rates.astype(np.float32)


def make_submission(estimator, X, path, *, dataset="mc_maze_small", bin_size_ms=5,
                    X_train=None):
    """Write a fitted model's rates for the NLB evaluation trials as a leaderboard submission.

    The file holds one group, named by the dataset (``mc_maze_small``; ``mc_maze_small_20`` at
    20 ms), with float32 ``eval_rates_heldin`` ``(n_trials, n_time, n_heldin)``,
    ``eval_rates_heldout`` ``(n_trials, n_time, n_heldout)``, ``eval_rates_heldin_forward``
    and ``eval_rates_heldout_forward`` ``(n_trials, forward_bins, ...)`` and, when
    ``X_train`` is given, ``train_rates_heldin`` and ``train_rates_heldout``: the layout of
    ``nlb_tools.make_tensors.save_to_h5`` that the EvalAI leaderboard and
    ``nlb_tools.evaluation.evaluate`` read. The file is written under a temporary name and
    renamed, so a failure never leaves a partial file at ``path``.

    Parameters
    ----------
    estimator : BlendEstimator or Pipeline
        Fitted with ``n_heldout`` held-out neurons (the dataset's, last) and ``forward_bins`` =
        200 ms of bins (40 at 5 ms), on trials of the dataset's window (140 bins at 5 ms for the
        MC_Maze datasets). A ``Pipeline`` is read through its first step. Anything with
        ``predict_rates(X, forward=...)``, ``n_heldout`` and ``forward_bins`` works; a
        ``BlendTeacher`` does not (it needs behavior).
    X : array-like of shape (n_trials, n_time, n_heldin)
        Held-in spike counts of the evaluation trials, in the leaderboard's order, e.g.
        ``load_mc_maze_small_test().spikes`` (the 100 official test trials).
    path : str or path-like
        The ``.h5`` file to write (replaced if it exists); its folder must exist.
    dataset : str, default="mc_maze_small"
        The NLB'21 dataset: ``mc_maze``, ``mc_rtt``, ``area2_bump``, ``mc_maze_large``,
        ``mc_maze_medium`` or ``mc_maze_small`` (not ``dmfc_rsg``, whose evaluation trials
        vary in length).
    bin_size_ms : {5, 20}, default=5
    X_train : array-like of shape (n_train_trials, n_time, n_heldin), optional
        Held-in spike counts of the training trials: their rates are written as
        ``train_rates_*``, from which the leaderboard fits its velocity decoder (Vel R2).
        ``nlb_tools.evaluation.evaluate`` needs them for every dataset supported here; in the
        test phase they are NLB's 'train' and 'val' trials together (100 for MC_Maze_Small; the
        package ships only the 75 'train' ones), in the order of the training NWB file.

    Returns
    -------
    submission : dict
        ``{group: {name: float32 array}}``, what was written (``evaluate`` also accepts it).

    Warns
    -----
    UserWarning
        When ``X_train`` is missing (the leaderboard needs it), and when MC_Maze_Small's
        100 test trials come with training trials other than the 100 train+val ones.

    Examples
    --------
    A model fitted (very briefly) on a few bundled MC_Maze_Small training trials; a real
    submission uses all of them and ``X = load_mc_maze_small_test().spikes``:

    >>> import os, tempfile
    >>> import h5py
    >>> import numpy as np
    >>> from sklearn_blend import BlendEstimator
    >>> from sklearn_blend.datasets import load_mc_maze_small
    >>> from sklearn_blend.nlb import make_submission
    >>> data = load_mc_maze_small()
    >>> X = np.concatenate([data.spikes, data.spikes_heldout], axis=-1)[:16]
    >>> forward = np.concatenate([data.spikes_forward, data.spikes_heldout_forward], -1)[:16]
    >>> model = BlendEstimator(strategy=None, n_heldout=35, forward_bins=40, hidden_size=8,
    ...                        n_layers=1, max_epochs=1, early_stopping=False,
    ...                        random_state=0).fit(X, spikes_forward=forward)
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "submission.h5")
    >>> submission = make_submission(model, data.spikes[:4], path, X_train=data.spikes)
    >>> with h5py.File(path, "r") as f:
    ...     for name, array in sorted(f["mc_maze_small"].items()):
    ...         print(name, array.shape, array.dtype)
    eval_rates_heldin (4, 140, 107) float32
    eval_rates_heldin_forward (4, 40, 107) float32
    eval_rates_heldout (4, 140, 35) float32
    eval_rates_heldout_forward (4, 40, 35) float32
    train_rates_heldin (75, 140, 107) float32
    train_rates_heldout (75, 140, 35) float32
    >>> import shutil; shutil.rmtree(folder)
    """
    spec, bin_size_ms = _check_dataset(dataset, bin_size_ms)
    model = _rate_model(estimator)
    n_time, forward_bins = spec.window_ms // bin_size_ms, FORWARD_MS // bin_size_ms
    if not model.n_heldout:
        raise ValueError(
            "estimator must be fitted with n_heldout > 0 (the dataset's held-out neurons, the "
            "last columns of X in fit): the leaderboard scores their rates (co-bps)."
        )
    if model.forward_bins != forward_bins:
        raise ValueError(
            f"estimator must be fitted with forward_bins={forward_bins} ({FORWARD_MS} ms at "
            f"{bin_size_ms} ms per bin, the bins {dataset} scores for forward prediction), "
            f"got forward_bins={model.forward_bins}."
        )
    n_neurons = model.n_features_in_
    n_heldin = n_neurons - model.n_heldout
    if spec.neurons is not None and (n_heldin, model.n_heldout) != spec.neurons:
        raise ValueError(
            f"{dataset} has {spec.neurons[0]} held-in and {spec.neurons[1]} held-out neurons; "
            f"estimator was fitted with {n_heldin} and {model.n_heldout}."
        )
    if getattr(model, "n_time_in_", n_time) != n_time:
        raise ValueError(
            f"{dataset} at {bin_size_ms} ms has trials of {n_time} bins; estimator was fitted on "
            f"trials of {model.n_time_in_} bins."
        )
    X = _check_spikes(X, "X", n_time, n_heldin, n_neurons)
    if X_train is not None:
        X_train = _check_spikes(X_train, "X_train", n_time, n_heldin, n_neurons)
    else:
        warnings.warn(
            f"no X_train: the submission has no train_rates_heldin/_heldout, from which the "
            f"leaderboard decodes velocity for {dataset}; nlb_tools.evaluation.evaluate fails "
            "without them. Pass the held-in spikes of the training trials as X_train.",
            UserWarning, stacklevel=2,
        )
    if (dataset == "mc_maze_small" and len(X) == MC_MAZE_SMALL_TEST_TRIALS
            and X_train is not None and len(X_train) != MC_MAZE_SMALL_TRAIN_VAL_TRIALS):
        warnings.warn(
            f"X has the {MC_MAZE_SMALL_TEST_TRIALS} MC_Maze_Small test trials, but X_train has "
            f"{len(X_train)} trials: in the test phase the leaderboard fits its velocity "
            f"decoder on the rates of all {MC_MAZE_SMALL_TRAIN_VAL_TRIALS} 'train' and 'val' "
            "trials (in the order of the DANDI:000140 training NWB), and nlb_tools' evaluate, "
            "the leaderboard's scorer, fails on this file (IndexError).", UserWarning,
            stacklevel=2,
        )

    rates = _checked_rates(model, X, "X", n_time, n_neurons, forward_bins)
    arrays = {
        "eval_rates_heldin": rates[:, :n_time, :n_heldin],
        "eval_rates_heldout": rates[:, :n_time, n_heldin:],
        "eval_rates_heldin_forward": rates[:, n_time:, :n_heldin],
        "eval_rates_heldout_forward": rates[:, n_time:, n_heldin:],
    }
    if X_train is not None:
        train = _checked_rates(model, X_train, "X_train", n_time, n_neurons, 0)
        arrays["train_rates_heldin"] = train[..., :n_heldin]
        arrays["train_rates_heldout"] = train[..., n_heldin:]
    submission = {group_name(dataset, bin_size_ms): {
        name: np.ascontiguousarray(array, dtype=np.float32) for name, array in arrays.items()}}
    write_submission(submission, path)
    return submission


def write_submission(submission, path):
    """Write ``{group: {name: array}}`` to ``path`` as ``nlb_tools``' ``save_to_h5`` would.

    Floats become float32 datasets with gzip compression, one group per key; the file is
    written under a temporary name beside ``path`` and renamed, replacing any old file.

    Parameters
    ----------
    submission : dict
        ``{group name: {dataset name: float array}}``.
    path : str or path-like
        The ``.h5`` file; its folder must exist.

    Examples
    --------
    >>> import os, tempfile
    >>> import h5py
    >>> import numpy as np
    >>> from sklearn_blend.nlb import write_submission
    >>> rates = np.full((2, 140, 107), 0.5)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "submission.h5")
    ...     write_submission({"mc_maze_small": {"eval_rates_heldin": rates}}, path)
    ...     with h5py.File(path, "r") as f:
    ...         array = f["mc_maze_small/eval_rates_heldin"]
    ...         print(array.shape, array.dtype, array.compression, float(array[0, 0, 0]))
    (2, 140, 107) float32 gzip 0.5
    """
    from .persistence.files import write_h5_atomic

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path must be a file name, but {os.fspath(path)!r} is a folder.")
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {os.fspath(path)!r}: its folder {os.fspath(path.parent)!r} does not "
            "exist."
        )

    def fill(f):
        for group, arrays in submission.items():
            target = f.create_group(group)
            for name, array in arrays.items():
                target.create_dataset(name, data=array, dtype="float32", compression="gzip")

    write_h5_atomic(path, fill)

"""Command line: ``python -m sklearn_blend`` (or ``sklearn-blend``).

``fit`` trains the NLB smoothing baseline, the plain model, the teacher and the default BLEND
student (``--methods`` adds the other students; ``--set base=ndt`` changes the base) on
the training trials of a dataset (the bundled MC_Maze_Small by default, or an NLB ``.h5`` or
NWB file), scores them on held-out test trials, and writes the table, a velocity figure and
the fitted models to an output folder, each as one ``.safetensors`` file in the safe format
of :mod:`sklearn_blend.persistence` (loading it never runs code from it). ``predict`` loads a
saved model and writes its rates for a file's trials. ``submit`` writes a saved model's rates
for the official NLB'21 test trials (and its training trials) as a leaderboard submission
(:mod:`sklearn_blend.nlb`). Both read models with :func:`sklearn_blend.load`, which refuses
pickles.

Bad options fail before any work (``--set``, the numeric options and ``--out`` are checked
before the data is loaded). Exit statuses: 0 done; 2 a user error (bad options, a file that is
not what the command needs, a model that does not fit the data), one line ``error: ...``;
1 the system failed (a full disk, an I/O error), one line ``error: ...``; 130 interrupted
(Ctrl-C, or SIGTERM, which is handled as Ctrl-C). Every file is written under a temporary
name in its folder and then renamed, so a crash, an interrupt or a full disk never leaves a
truncated file under its final name.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import platform
import signal
import sys
import time
from pathlib import Path

import numpy as np

from .persistence.files import write_atomic, write_h5_atomic

#: ``BlendEstimator`` parameters the command line sets itself (from the data and its options)
SET_BY_THE_COMMAND = {"n_heldout": "the data's held-out neurons",
                      "forward_bins": "the data's forward bins (--forward-ms)",
                      "random_state": "--seed", "verbose": "--quiet"}
#: errors of the system, not of the user: exit status 1
SYSTEM_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG)


def _value(text):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"None": None, "True": True, "False": False}.get(text, text)


def parse_assignments(pairs):
    """``["alpha=0.3", "hidden_size=32"]`` -> ``{"alpha": 0.3, "hidden_size": 32}``."""
    params = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--set expects NAME=VALUE, got {pair!r}")
        name, text = pair.split("=", 1)
        params[name] = _value(text)
    return params


def _add_data_options(parser):
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data", default="mc_maze_small",
        help="'mc_maze_small' (bundled, default), an nlb_tools tensor file (.h5) or an NWB "
             "file (.nwb)",
    )
    data.add_argument("--bin-size", type=float, default=5, metavar="MS",
                      help="bin width in ms (NWB; recorded for .h5) [5]")
    data.add_argument("--align-field", default="move_onset_time",
                      help="NWB trial-table column to align trials on [move_onset_time]")
    data.add_argument("--align-range", type=float, nargs=2, default=(-250, 450),
                      metavar=("START", "STOP"),
                      help="NWB window around the event in ms [-250 450]")
    data.add_argument("--forward-ms", type=float, default=0,
                      help="NWB: also bin this many ms after the window, for forward "
                           "prediction [0]")
    data.add_argument("--behavior", nargs="*", default=None, metavar="NAME",
                      help="NWB time series to use as behavior, e.g. hand_vel [none]")
    data.add_argument("--behavior-lag", type=float, default=0, metavar="MS",
                      help="NWB: behavior shifted this much later than spikes (NLB: 120 for "
                           "MC_Maze_Small) [0]")
    data.add_argument("--split", default=None,
                      help="NWB: keep trials whose 'split' column equals this, e.g. train")
    return data


def check_data_options(args):
    """The numeric data options in range, before any work (a ``ValueError`` naming each)."""
    def finite(name, value):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number of ms, got {value!r}")

    finite("--bin-size", args.bin_size)
    if args.bin_size <= 0:
        raise ValueError(f"--bin-size must be a positive number of ms, got {args.bin_size:g}")
    start, stop = args.align_range
    finite("--align-range START", start), finite("--align-range STOP", stop)
    if stop <= start:
        raise ValueError(f"--align-range must be START STOP with START < STOP (ms), got "
                         f"{start:g} {stop:g}")
    finite("--forward-ms", args.forward_ms)
    if args.forward_ms < 0:
        raise ValueError(f"--forward-ms must be 0 or more (ms), got {args.forward_ms:g}")
    finite("--behavior-lag", args.behavior_lag)
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < 2 ** 32:
        raise ValueError(f"--seed must be a whole number in [0, 2**32 - 1], got {seed}")


def load_data(args):
    """The dataset Bunch the options describe."""
    from .datasets import load_mc_maze_small, load_nlb_h5, load_nwb

    check_data_options(args)

    if args.data == "mc_maze_small":
        return load_mc_maze_small()
    suffix = Path(args.data).suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return load_nlb_h5(args.data, bin_size_ms=args.bin_size)
    if suffix == ".nwb":
        start, stop = args.align_range
        data = load_nwb(args.data, align_field=args.align_field,
                        align_range_ms=(start, stop + args.forward_ms),
                        bin_size_ms=args.bin_size, behavior=args.behavior,
                        behavior_lag_ms=args.behavior_lag, split=args.split)
        n_forward = int(round(args.forward_ms / args.bin_size))
        if n_forward:
            for name in ("spikes", "spikes_heldout"):
                data[f"{name}_forward"] = data[name][:, -n_forward:]
                data[name] = data[name][:, :-n_forward]
            if data.behavior is not None:
                data.behavior = data.behavior[:, :-n_forward]
        return data
    raise ValueError(f"--data must be 'mc_maze_small', a .h5 or a .nwb file, got {args.data!r}")


def _writable_folder(folder):
    """Create ``folder`` (and parents) and check that files can be written there."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / ".write-check", lambda tmp: Path(tmp).write_text("ok"))
        (folder / ".write-check").unlink()
    except OSError as error:  # an OSError still: a full disk is the system's (exit 1)
        raise OSError(error.errno, f"cannot write to the output folder "
                                   f"{os.fspath(folder)!r}: "
                                   f"{os.strerror(error.errno) if error.errno else error}",
                      os.fspath(folder)) from None
    return folder


def _checked_settings(args):
    """The ``--set`` parameters, validated as BlendEstimator parameters before any work."""
    from .estimators.trials import BlendEstimator

    params = parse_assignments(args.set)
    for name, source in SET_BY_THE_COMMAND.items():
        if name in params:
            raise ValueError(f"--set {name}=...: the command sets {name} from {source}; leave "
                             "it out of --set")
    try:
        BlendEstimator(**params)._validate_params()
    except TypeError as error:
        raise ValueError(f"--set: {error}") from None
    if not 0 < args.test_fraction < 1:
        raise ValueError(f"--test-fraction must be in (0, 1), got {args.test_fraction}")
    return params


def _markdown(rows, columns):
    def cell(value):
        if isinstance(value, float):
            return "–" if np.isnan(value) else f"{value:.3f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def command_fit(args):
    from sklearn.model_selection import train_test_split

    from ._version import __version__
    from .evaluation import decoded_velocity, evaluate_split, plot_velocity

    params = _checked_settings(args)
    check_data_options(args)
    out = _writable_folder(args.out)
    _writable_folder(out / "models")
    data = load_data(args)
    methods = list(args.methods)
    if data.get("behavior") is None:
        dropped = [m for m in methods if m not in ("smoothing", "ndt")]
        if dropped:
            print(f"no behavior in {args.data}: skipping {dropped} (they need it)")
        methods = [m for m in methods if m in ("smoothing", "ndt")]
    if data.get("spikes_heldout") is None or data.spikes_heldout.shape[-1] == 0:
        if "smoothing" in methods:
            print("no held-out neurons: skipping 'smoothing' (it predicts held-out neurons)")
            methods.remove("smoothing")
    if not methods:
        raise ValueError("nothing to fit: no method applies to this dataset")
    trials = np.arange(len(data.spikes))
    train, test = train_test_split(trials, test_size=args.test_fraction,
                                   random_state=args.seed)
    print(f"{args.data}: {len(trials)} trials x {data.spikes.shape[1]} bins, "
          f"{data.spikes.shape[2]} held-in + "
          f"{0 if data.get('spikes_heldout') is None else data.spikes_heldout.shape[2]} "
          f"held-out neurons; training on {len(train)} trials, testing on {len(test)}")
    start = time.perf_counter()
    results = evaluate_split(data, train, test, methods, params=params,
                             seed=args.seed, verbose=0 if args.quiet else 1)
    columns = ["method", "co_bps", "fp_bps", "vel_r2", "epochs", "seconds"]
    table = _markdown(results, columns)
    print(table)
    # models first, the tables last: results.md never describes models that were not written
    for result in results:  # the safe format, each file written atomically
        result.model.save(out / "models" / f"{result['method']}.safetensors")
    csv = "\n".join([",".join(columns)]
                    + [",".join(str(row[c]) for c in columns) for row in results]) + "\n"
    write_atomic(out / "results.csv", lambda tmp: Path(tmp).write_text(csv))
    write_atomic(out / "results.md", lambda tmp: Path(tmp).write_text(
        f"{args.data}, {len(train)} training / {len(test)} test trials, seed {args.seed}\n\n"
        f"{table}\n"))
    behavior = data.get("behavior")
    scored = [r for r in results if r["method"] not in ("teacher",) and np.isfinite(r["vel_r2"])]
    if behavior is not None and scored:
        baseline = next((r for r in scored if r["method"] == "ndt"), scored[0])
        students = [r for r in scored if r["method"] not in ("ndt", "smoothing")]
        labels = {baseline["method"]: baseline}
        if students:
            best = max(students, key=lambda r: r["vel_r2"])
            labels[f"{best['method']} student"] = best
        decoded = {label: decoded_velocity(r, behavior, train, test)
                   for label, r in labels.items()}
        figure = plot_velocity(behavior[test], decoded, data.bin_size_ms or args.bin_size)
        write_atomic(out / "velocity.png", lambda tmp: figure.savefig(tmp, dpi=120))
    run = dict(vars(args), methods=methods, train_trials=train.tolist(),
               test_trials=test.tolist(), seconds=time.perf_counter() - start,
               versions={"sklearn_blend": __version__, "python": platform.python_version()})
    write_atomic(out / "run.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(run, indent=1, default=str)))
    print(f"wrote {out}/results.md, results.csv, run.json, models/*.safetensors"
          + (", velocity.png" if (out / "velocity.png").exists() else ""))
    print("load a model again with sklearn_blend.load(path): a safetensors file of weights "
          "and JSON, whose loading never runs code from the file")


def _check_neurons(model, data):
    """The data's held-in (and held-out) neurons are the model's, or a ``ValueError``."""
    n_heldout = getattr(model, "n_heldout", 0) or 0
    n_features = getattr(model, "n_features_in_", None)
    if n_features is None:
        return
    held_in = data.spikes.shape[-1]
    held_out = 0 if data.get("spikes_heldout") is None else data.spikes_heldout.shape[-1]
    if held_in != n_features - n_heldout or held_out not in (0, n_heldout):
        raise ValueError(
            f"the data has {held_in} held-in and {held_out} held-out neurons, but the model "
            f"was fitted on {n_features - n_heldout} held-in and {n_heldout} held-out "
            "neurons: give it data of the same neurons")


def command_predict(args):
    from .evaluation import split_arrays
    from .persistence import load

    check_data_options(args)
    out = Path(args.out)
    _writable_folder(out.parent)
    model = load(args.model)
    if not hasattr(model, "predict_rates"):
        raise ValueError(
            f"{args.model!r} holds a {type(model).__name__}, which predicts no rates; predict "
            "takes a model of spike rates (BlendEstimator, BlendTeacher, NedsEstimator or "
            "SmoothingGLM, as fit writes them)")
    data = load_data(args)
    _check_neurons(model, data)
    X, behavior, _ = split_arrays(data)
    if hasattr(model, "behavior_encoding_"):  # a teacher needs behavior
        if behavior is None:
            raise ValueError("this model is a teacher and needs behavior; the data has none")
        rates = model.predict_rates(X, behavior)
    else:
        rates = model.predict_rates(X)

    def fill(f):
        f["rates"] = rates
        f["rates"].attrs["model"] = os.fspath(args.model)

    write_h5_atomic(out, fill)
    print(f"wrote rates {rates.shape} to {out}")


def _submission_test_data(args):
    """The held-in spikes of the evaluation trials that ``--test-data`` names."""
    from .datasets import load_nlb_h5
    from .nlb import load_mc_maze_small_test, load_nlb_test_nwb

    if args.test_data is None:
        if args.dataset != "mc_maze_small":
            raise ValueError(f"--test-data is required for --dataset {args.dataset}")
        return load_mc_maze_small_test(bin_size_ms=args.bin_size).spikes
    suffix = Path(args.test_data).suffix.lower()
    if suffix == ".nwb":
        return load_nlb_test_nwb(args.test_data, dataset=args.dataset,
                                 bin_size_ms=args.bin_size).spikes
    if suffix in (".h5", ".hdf5"):
        return load_nlb_h5(args.test_data, split="eval", bin_size_ms=args.bin_size).spikes
    raise ValueError(f"--test-data must be an NLB test .nwb file or an nlb_tools eval tensor "
                     f".h5 file, got {args.test_data!r}")


def command_submit(args):
    import warnings

    from .nlb import group_name, make_submission
    from .persistence import load

    if args.bin_size not in (5, 20):
        raise ValueError(f"--bin-size must be 5 or 20 (the bin widths the NLB'21 leaderboard "
                         f"evaluates), got {args.bin_size:g}")
    check_data_options(args)
    group = group_name(args.dataset, args.bin_size)  # bad options fail before any work
    out = Path(args.out)
    _writable_folder(out.parent)
    if not Path(args.model).is_file():
        raise ValueError(f"no model file at {args.model!r}")
    model = load(args.model)
    X = _submission_test_data(args)
    X_train = None if args.no_train_rates else load_data(args).spikes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        submission = make_submission(model, X, out, dataset=args.dataset,
                                     bin_size_ms=args.bin_size, X_train=X_train)
    for warning in caught:
        print(f"warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
    shapes = ", ".join(f"{name} {array.shape}" for name, array in submission[group].items())
    print(f"wrote the NLB'21 submission for {group} to {out}: {shapes}")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="sklearn-blend",
        description="BLEND behavior-guided distillation for neural population models.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser(
        "fit", help="fit and compare the methods on a dataset, write table, figure, models",
        description="Fit the NLB smoothing baseline, the plain model, the teacher and the "
                    "default BLEND student (GRU base, feature distillation; --methods and "
                    "--set change them) on the training trials, score co-bps, fp-bps and "
                    "Vel-R2 on the test trials, and write results.md/.csv, velocity.png and "
                    "models/ (one <method>.safetensors per method: the safe format that "
                    "sklearn_blend.load reads without running code from the file).",
    )
    _add_data_options(fit)
    from .estimators import BlendEstimator
    from .evaluation import BASELINES, method_names

    default_methods = [*BASELINES, BlendEstimator().strategy]
    fit.add_argument("--methods", nargs="+", default=default_methods,
                     choices=method_names(),
                     help="what to fit: 'smoothing' (NLB's baseline), 'ndt' (the plain model of "
                          "the base, whatever it is), 'teacher' and students by strategy "
                          f"[{' '.join(default_methods)}: the baselines and the default "
                          "student]")
    fit.add_argument("--test-fraction", type=float, default=0.2,
                     help="share of trials held out for testing [0.2]")
    fit.add_argument("--seed", type=int, default=0,
                     help="random_state of the split and of every model [0]")
    fit.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                     help="BlendEstimator parameters for every model, e.g. --set alpha=0.3 "
                          "max_epochs=100")
    fit.add_argument("--out", default="output/mc_maze_small", help="output folder")
    fit.add_argument("--quiet", action="store_true", help="no progress bars")
    fit.set_defaults(handler=command_fit)

    predict = commands.add_parser(
        "predict", help="rates of a saved model for a dataset's trials",
        description="Load a model written by 'fit' (models/*.safetensors, read with "
                    "sklearn_blend.load, which refuses pickles) and save its rates for the "
                    "trials of --data to an .h5 file (dataset 'rates').",
    )
    predict.add_argument("model", help="a .safetensors model file written by 'fit' (or by "
                                       "estimator.save)")
    _add_data_options(predict)
    predict.add_argument("--out", default="rates.h5", help="output .h5 file [rates.h5]")
    predict.set_defaults(handler=command_predict)

    submit = commands.add_parser(
        "submit", help="write a saved model's NLB'21 leaderboard submission (.h5)",
        description="Load a model written by 'fit' (a student or 'ndt'; not 'teacher', which "
                    "needs behavior, nor 'smoothing', which predicts no forward bins) and write "
                    "its rates for the official NLB'21 test trials (--test-data), and for the "
                    "training trials of --data, to an .h5 file in the layout the EvalAI "
                    "leaderboard and nlb_tools.evaluation.evaluate read.",
    )
    submit.add_argument("model", help="a .safetensors model file written by 'fit' (or by "
                                      "estimator.save)")
    submit.add_argument(
        "--test-data", default=None, metavar="PATH",
        help="the NLB test NWB file (e.g. sub-Jenkins_ses-small_desc-test_ecephys.nwb from "
             "DANDI:000140) or an nlb_tools eval tensor file (.h5 with eval_spikes_heldin) "
             "[MC_Maze_Small's test NWB in shared/data/mc_maze_small beside the repository]",
    )
    from .nlb import NLB_DATASETS

    submit.add_argument("--dataset", default="mc_maze_small", choices=sorted(NLB_DATASETS),
                        help="the NLB'21 dataset, which names the file's group [mc_maze_small]")
    training = _add_data_options(submit)
    training.description = ("the training trials (--data): their rates go in train_rates_*, "
                            "from which the leaderboard decodes velocity; --bin-size is also "
                            "the submission's bin width (5 or 20)")
    submit.add_argument("--no-train-rates", action="store_true",
                        help="write the eval rates only (nlb_tools' evaluate then cannot "
                             "score Vel R2)")
    submit.add_argument("--out", default="submission.h5", help="output .h5 file "
                                                               "[submission.h5]")
    submit.set_defaults(handler=command_submit)
    return parser


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a scheduler's kill, ``timeout``) handled as Ctrl-C while a command runs, so
    that it unwinds the same way: temporary files removed, nothing half-written."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: signals stay as they are
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _message(error):
    """The error's text for the one line the command prints: an ``OSError`` without its
    ``[Errno N]`` prefix, its path added where the text does not name it."""
    if isinstance(error, OSError) and error.strerror:
        path = error.filename
        if path is None or os.fspath(path) in error.strerror:
            return error.strerror
        return f"{error.strerror}: {os.fspath(path)!r}"
    return str(error)


def main(argv=None):
    """Run the command line; return the exit status: 0 done, 2 a user error, 1 a system error
    (a full disk), 130 interrupted (Ctrl-C or SIGTERM)."""
    args = build_parser().parse_args(argv)
    try:
        with _sigterm_as_interrupt():
            args.handler(args)
    except (ValueError, TypeError, OSError) as error:
        message = " ".join(_message(error).split()) or type(error).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1 if isinstance(error, OSError) and error.errno in SYSTEM_ERRORS else 2
    except KeyboardInterrupt:
        print("interrupted: nothing was written for the unfinished step", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""NEDS on MC_Maze_Small: decoding, encoding, and NEDS as a BLEND teacher; and NEDS across
sessions (synthetic): pretraining, then fine-tuning on a new session.

**MC_Maze_Small part** (``--part mc_maze``, the default), leak-free like
``nlb_mc_maze_small.py``: the same 5 trial-wise folds (60 training, 15 test trials), every model
retrained on each fold's training trials and scored on its test trials, 3 seeds. NEDS reads the
107 held-in neurons and hand velocity (one behavior stream of both channels) and predicts all
142 neurons (``n_heldout=35``) and the 40 forward bins (``forward_bins=40``), so one fit gives
every number:

* decoding: R2 of ``NEDS.predict(X)`` (velocity from spikes alone; R2 pooled over bins,
  averaged over x and y, as NLB's Vel-R2) against NLB's ridge decoder on the rates of the
  smoothing baseline (ridge on smoothed spikes), of the plain NDT and of the hard BLEND
  student, and against a decoding-only NEDS of the same size (``scheme_probs={"decoding":
  1}``): the multi-task gain is NEDS minus that;
* encoding: bits/spike of all 142 neurons from behavior alone (``predict_rates(b=b)``), NLB's
  pooled form and NEDS's per-neuron average, against a Poisson GLM per neuron on the velocity
  at several lags (``GLM_LAGS``) and a basis of the bin's time in the trial (``GLM_TIME``
  Gaussian bumps: NEDS knows each bin's position, and the trials are aligned to movement
  onset), its penalty chosen by inner 3-fold CV on the training trials, and against an
  encoding-only NEDS of the same size (``scheme_probs={"encoding": 1}``);
* NEDS as a BLEND teacher: the hard student distilled from this NEDS (``teacher=`` the fitted
  model) beside the hard student of the ``BlendTeacher`` (co-bps, fp-bps, Vel-R2), and the
  teacher's own co-bps and fp-bps as the student sees it, with the behavior visible
  (``predict_rates(X, b)``).

``--methods`` trains some rows only (their CSV merges with the others'; ``--override`` lets
a rerun's rows replace older ones). The NDT models use the package defaults; the NEDS models
``NEDS_PARAMS`` (a small NEDS for 2 CPU cores). Each NEDS keeps the weights of its best epoch
by NEDS's task metrics on validation trials drawn from the training trials (``monitor="task"``,
as the authors' trainer: decoding R2 from a pass with every behavior token hidden, per-neuron
encoding bits/spike from a pass with every spike token hidden, each row the tasks it trains;
warm-up epochs not selected). Every NEDS row (multi-task, decoding-only, encoding-only) fits
each learning-rate schedule of ``SCHEDULES`` (``max_epochs``, the length of the cosine decay)
and keeps the fit with the best validation task score: the same budget, chosen on training
data only. ``--monitor loss`` reruns the earlier protocol (the masked validation loss).

**Sessions part** (``--part sessions``): ``make_synthetic("hierarchical", n_sessions=5)``
(sessions of one latent family, different neurons and readouts). NEDS is pretrained on 4
sessions, then fine-tuned (``finetune``) on the fifth with 10 / 20 / 50 / all training trials,
against a single-session NEDS trained from scratch on the same trials; decoding R2 on the
fifth session's test trials, 3 seeds, and a plot.

Run ``python benchmarks/neds_mc_maze_small.py`` (and ``--part sessions``); they write
``benchmarks/results/neds_mc_maze_small.{csv,md}`` (after every seed, so a stopped run keeps
the seeds it finished; ``--seeds 2 --append`` adds seeds later) and
``neds_sessions.{csv,md,png}``. Seeds run in parallel processes, each with its own ``--out``,
are combined by ``--merge CSV ...`` (which trains nothing and refuses a (method, fold, seed)
given twice); ``--override CSV ...`` then puts a rerun's rows in place of the merged ones. The
README says which runs its table merges (the command is in the table's header).
``--quick`` checks the script (1 seed, 2 folds, 5 epochs).
"""

from __future__ import annotations

import argparse
import copy
import os
import time
import warnings

import numpy as np
import pandas as pd

from common import RESULTS, save_figure, fold_arguments, mean_sd, paired_text, run_folds, \
    write_results
from sklearn_blend import BlendEstimator, NedsEstimator, metrics
from sklearn_blend.datasets import load_mc_maze_small, make_synthetic
from sklearn_blend.evaluation import evaluate_split, split_arrays
from sklearn_blend.model_selection import paired_differences

#: the NEDS of both parts: small enough for 2 CPU cores. The tables of this script, of
#: ``neds_rotary.py`` and of ``neds_diagnostics.py`` were made with the linear input map (the
#: default then); ``neds_nested.py`` selects the map
NEDS_PARAMS = dict(hidden_size=64, n_layers=2, n_heads=2, ffn_size=128, lr=3e-3,
                   n_iter_no_change=60, max_epochs=300, behavior_groups=[[0, 1]],
                   input_map="linear")
#: the ``max_epochs`` (the length of the cosine learning-rate schedule) each MC_Maze_Small NEDS
#: chooses from, by its validation loss on training trials (:func:`select_schedule`)
SCHEDULES = (300, 800)
#: velocity lags (bins; positive: the velocity after the bin, which the neurons lead) of the GLM
GLM_LAGS = (-10, -5, 0, 5, 10, 15, 20, 25, 30)
#: Gaussian bumps over the trial's bins (time in trial) in the GLM, evenly spaced
GLM_TIME = 10
GLM_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1)
N_HELDOUT, FORWARD_BINS = 35, 40
#: what identifies a row of the MC_Maze_Small results
ROW_KEY = ["method", "fold", "seed"]
LABELS = {"smoothing": "smoothing + NLB ridge (ridge on smoothed spikes)",
          "ndt": "NDT + NLB ridge", "hard": "BLEND hard (BlendTeacher) + NLB ridge",
          "neds": "NEDS", "neds_decoding": "NEDS, decoding only",
          "neds_encoding": "NEDS, encoding only",
          "glm": "Poisson GLM on lagged velocity and time in trial",
          "hard_neds": "BLEND hard (NEDS teacher) + NLB ridge"}


def lagged(velocity, lags=GLM_LAGS):
    """``(n_trials, n_time, 2 * len(lags))``: the velocity shifted by each lag (edge-padded)."""
    n_time = velocity.shape[1]
    index = np.clip(np.arange(n_time)[:, None] + np.asarray(lags)[None], 0, n_time - 1)
    shifted = velocity[:, index]  # (n_trials, n_time, n_lags, 2)
    return shifted.reshape(*velocity.shape[:2], -1)


def time_basis(n_trials, n_time, n_basis=GLM_TIME):
    """``(n_trials, n_time, n_basis)``: Gaussian bumps of the bin's time in the trial, centred
    evenly over the bins, each as wide as their spacing."""
    centres = np.linspace(0, n_time - 1, n_basis)
    width = centres[1] - centres[0]
    bumps = np.exp(-0.5 * ((np.arange(n_time)[:, None] - centres[None]) / width) ** 2)
    return np.broadcast_to(bumps, (n_trials, n_time, n_basis))


def glm_features(b):
    """The GLM's features of each bin: lagged velocity and the time-in-trial basis."""
    features = np.concatenate([lagged(b), time_basis(*b.shape[:2])], axis=-1)
    return features.reshape(-1, features.shape[-1])


def glm_rates(b_train, X_train, b_test, alphas=GLM_ALPHAS, n_inner=3):
    """Rates of every neuron from a Poisson GLM on lagged velocity and time in trial, its
    penalty (one for all neurons) chosen by inner ``n_inner``-fold CV over training trials
    (pooled bits/spike)."""
    from sklearn.linear_model import PoissonRegressor
    from sklearn.model_selection import KFold
    from sklearn.preprocessing import StandardScaler

    def fit_predict(alpha, b_fit, X_fit, b_eval):
        scaler = StandardScaler().fit(glm_features(b_fit))
        features = scaler.transform(glm_features(b_fit))
        evaluate = scaler.transform(glm_features(b_eval))
        counts = X_fit.reshape(-1, X_fit.shape[-1])
        rates = np.empty((len(evaluate), counts.shape[1]))
        for j in range(counts.shape[1]):
            glm = PoissonRegressor(alpha=alpha, max_iter=300).fit(features, counts[:, j])
            rates[:, j] = glm.predict(evaluate)
        return rates.reshape(*b_eval.shape[:2], -1)

    scores = {}
    for alpha in alphas:
        folds = KFold(n_inner, shuffle=True, random_state=0).split(b_train)
        scores[alpha] = np.mean([
            metrics.bits_per_spike(fit_predict(alpha, b_train[fit], X_train[fit], b_train[ev]),
                                   X_train[ev]) for fit, ev in folds])
    best = max(scores, key=scores.get)
    return fit_predict(best, b_train, X_train, b_test), best


def decoding_r2(true, predicted):
    """R2 pooled over trials and bins, averaged over the behavior channels (as Vel-R2)."""
    from sklearn.metrics import r2_score

    return float(r2_score(true.reshape(-1, true.shape[-1]),
                          predicted.reshape(-1, true.shape[-1])))


def _neds_row(name, model, X, b, forward, train, test, n_in, fold, seed, seconds):
    heldin = X[..., :n_in]
    rates = model.predict_rates(heldin[test], forward=True)
    window, ahead = rates[:, :-FORWARD_BINS], rates[:, -FORWARD_BINS:]
    encoded = model.predict_rates(b=b[test])
    return dict(method=name, fold=fold, seed=seed,
                co_bps=metrics.co_bps(window[..., n_in:], X[test][..., n_in:]),
                fp_bps=metrics.fp_bps(ahead, forward[test]),
                vel_r2=decoding_r2(b[test], model.predict(heldin[test])),
                vel_r2_rates=metrics.vel_r2(model.predict_rates(heldin[train]), b[train],
                                            window, b[test]),
                enc_bps=metrics.bits_per_spike(encoded, X[test]),
                enc_bps_neuron=metrics.bits_per_spike_per_neuron(encoded, X[test]),
                epochs=model.n_iter_, seconds=seconds)


#: the single-task NEDS of the same size: ``scheme_probs`` all on one scheme
SINGLE_TASK = {"neds_decoding": "decoding", "neds_encoding": "encoding"}


def selected_score(model):
    """The validation score of the weights a NEDS kept: its task score at the early-stopping
    callback's best epoch (``monitor="task"``), or minus its best masked validation loss."""
    if model.monitor == "loss":
        return -min(model.net_.history[:, "valid_loss"])
    stopper = dict(model.net_.callbacks_)["early_stopping"]
    return model.net_.history[stopper.best_epoch_ - 1, "valid_task"] if stopper.best_epoch_ \
        else model.net_.history[-1, "valid_task"]


def select_schedule(model, X, b, forward, schedules=SCHEDULES):
    """``model`` fitted with each ``max_epochs`` of ``schedules`` (the length of its cosine
    learning-rate schedule); the fit whose kept weights score best on its validation trials
    (drawn from the training trials; :func:`selected_score`). Training data only."""
    from sklearn.base import clone

    if model.max_epochs < min(schedules):
        schedules = [model.max_epochs]  # --quick
    fits = [clone(model).set_params(max_epochs=n).fit(X, b, spikes_forward=forward)
            for n in schedules]
    return max(fits, key=selected_score)


def run_mc_maze(fold, seed, train, test, methods, monitor, params, n_threads):
    """The rows of ``methods`` (names of :data:`LABELS`) on one fold and seed; the NEDS rows
    select their weights by ``monitor`` (``NedsEstimator``'s)."""
    import torch

    torch.set_num_threads(n_threads)
    warnings.filterwarnings("ignore", module="sklearn")
    data = load_mc_maze_small()
    X, b, forward = split_arrays(data)
    n_in = X.shape[-1] - N_HELDOUT
    rows = []
    baselines = [m for m in ("smoothing", "ndt", "hard") if m in methods]
    for result in (evaluate_split(data, train, test, baselines, params=dict(params, base="ndt"),
                                  seed=seed)
                   if baselines else []):
        rows.append(dict(method=result["method"], fold=fold, seed=seed,
                         **{k: result[k] for k in ("co_bps", "fp_bps", "vel_r2", "epochs",
                                                   "seconds")}))
    neds = {}
    for name in ("neds", *SINGLE_TASK):
        if name not in methods:
            continue
        extra = {"scheme_probs": {SINGLE_TASK[name]: 1.0}} if name in SINGLE_TASK else {}
        start = time.perf_counter()
        model = select_schedule(NedsEstimator(
            n_heldout=N_HELDOUT, forward_bins=FORWARD_BINS, random_state=seed, monitor=monitor,
            **dict(NEDS_PARAMS, **extra, **params)), X[train], b[train], forward[train])
        neds[name] = model
        rows.append(dict(_neds_row(name, model, X, b, forward, train, test, n_in, fold, seed,
                                   time.perf_counter() - start),
                         max_epochs=model.max_epochs, monitor=monitor,
                         valid_score=selected_score(model)))
    if "glm" in methods:
        start = time.perf_counter()
        rates, alpha = glm_rates(b[train], X[train], b[test])
        rows.append(dict(method="glm", fold=fold, seed=seed, glm_alpha=alpha,
                         enc_bps=metrics.bits_per_spike(rates, X[test]),
                         enc_bps_neuron=metrics.bits_per_spike_per_neuron(rates, X[test]),
                         seconds=time.perf_counter() - start))
    if "hard_neds" not in methods:
        return rows
    start = time.perf_counter()
    student = BlendEstimator(base="ndt", strategy="hard", teacher=neds["neds"], n_heldout=N_HELDOUT,
                             forward_bins=FORWARD_BINS, random_state=seed, **params)
    student.fit(X[train], b[train], spikes_forward=forward[train])
    heldin = X[..., :n_in]
    rates = student.predict_rates(heldin[test], forward=True)
    # the teacher as the student reads it: spikes and behavior visible
    teacher = neds["neds"].predict_rates(heldin[test], b[test], forward=True)
    rows.append(dict(method="hard_neds", fold=fold, seed=seed,
                     teacher_co_bps=metrics.co_bps(teacher[:, :-FORWARD_BINS, n_in:],
                                                   X[test][..., n_in:]),
                     teacher_fp_bps=metrics.fp_bps(teacher[:, -FORWARD_BINS:], forward[test]),
                     co_bps=metrics.co_bps(rates[:, :-FORWARD_BINS, n_in:],
                                           X[test][..., n_in:]),
                     fp_bps=metrics.fp_bps(rates[:, -FORWARD_BINS:], forward[test]),
                     vel_r2=metrics.vel_r2(student.predict_rates(heldin[train]), b[train],
                                           rates[:, :-FORWARD_BINS], b[test]),
                     epochs=student.n_iter_, seconds=time.perf_counter() - start))
    return rows


def _difference(results, method, baseline, metric, other=None):
    """Paired difference text; ``other`` compares ``metric`` of ``method`` with the ``other``
    column of ``baseline``."""
    if other is not None:
        base = results[results.method == baseline].copy()
        baseline = f"{baseline} ({other})"
        base[metric], base["method"] = base[other], baseline
        results = pd.concat([results[results.method == method], base])
    d = paired_differences(results, method, baseline, metric)
    if not d["n"]:
        return "–"
    return paired_text(d)


def summarize_mc_maze(results):
    lines = ["| method | (fold, seed) pairs | decoding R2 | co-bps | fp-bps | "
             "encoding bits/spike (pooled) | encoding bits/spike (per neuron) | epochs |",
             "|---|---|---|---|---|---|---|---|"]
    for method in LABELS:
        rows = results[results.method == method]
        if rows.empty:
            continue
        cells = [mean_sd(rows.get(c, pd.Series([np.nan])))
                 for c in ("vel_r2", "co_bps", "fp_bps", "enc_bps", "enc_bps_neuron")]
        epochs = rows.get("epochs", pd.Series([np.nan])).dropna()
        lines.append(f"| {LABELS[method]} | {len(rows)} | " + " | ".join(cells)
                     + (f" | {epochs.mean():.0f} |" if len(epochs) else " | – |"))
    comparisons = [
        ("decoding R2", "neds", "smoothing", "vel_r2", None),
        ("decoding R2", "neds", "ndt", "vel_r2", None),
        ("decoding R2", "neds", "hard", "vel_r2", None),
        ("decoding R2 (multi-task gain)", "neds", "neds_decoding", "vel_r2", None),
        ("decoding R2", "neds_decoding", "smoothing", "vel_r2", None),
        ("decoding R2", "neds_decoding", "hard", "vel_r2", None),
        ("decoding R2, own decoder vs rates", "neds", "neds", "vel_r2", "vel_r2_rates"),
        ("encoding bits/spike", "neds", "glm", "enc_bps", None),
        ("encoding bits/spike per neuron", "neds", "glm", "enc_bps_neuron", None),
        ("encoding bits/spike", "neds_encoding", "glm", "enc_bps", None),
        ("encoding bits/spike per neuron", "neds_encoding", "glm", "enc_bps_neuron", None),
        ("encoding bits/spike (multi-task gain)", "neds", "neds_encoding", "enc_bps", None),
        ("co-bps", "hard_neds", "hard", "co_bps", None),
        ("Vel-R2", "hard_neds", "hard", "vel_r2", None),
        ("co-bps", "hard_neds", "ndt", "co_bps", None),
        ("Vel-R2", "hard_neds", "ndt", "vel_r2", None),
        ("Vel-R2", "hard_neds", "smoothing", "vel_r2", None),
        ("Vel-R2", "hard_neds", "neds_decoding", "vel_r2", None),
    ]
    lines += ["", "Paired differences (mean +- sd over (fold, seed) pairs, wins/pairs, Wilcoxon "
              "p; optimistic, the pairs share training trials):", ""]
    present = set(results.method)
    for what, method, baseline, metric, other in comparisons:
        if not {method, baseline} <= present:
            continue  # a run of some methods only
        versus = LABELS[baseline] if other is None else "NLB ridge on its rates"
        lines.append(f"- {what}: {LABELS[method]} - {versus}: "
                     f"{_difference(results, method, baseline, metric, other)}")
    if "glm_alpha" in results:
        chosen = results.glm_alpha.dropna().value_counts().to_dict()
        lines.append(f"- GLM penalty chosen (inner CV): {chosen}")
    if "max_epochs" in results:
        chosen = {LABELS[method]: {int(k): v for k, v in
                                   rows.max_epochs.value_counts().sort_index().items()}
                  for method, rows in results.dropna(subset=["max_epochs"]).groupby(
                      "method", sort=False)}
        selection = ("the masked validation loss" if "monitor" not in results
                     or set(results.monitor.dropna()) == {"loss"}
                     else "the validation task score")
        lines.append(f"- NEDS schedule chosen (max_epochs, by {selection} on training "
                     f"trials): {chosen}")
    if "teacher_co_bps" in results:
        rows = results.dropna(subset=["teacher_co_bps"])
        lines.append(f"- The NEDS teacher as the student reads it (spikes and behavior "
                     f"visible): co-bps {mean_sd(rows.teacher_co_bps)}, fp-bps "
                     f"{mean_sd(rows.teacher_fp_bps)}")
    lines += ["", "Decoding R2: NEDS rows decode velocity directly (`predict`); the other rows "
              "are NLB's ridge decoder on the model's rates (Vel-R2). Encoding: rates of all "
              "142 neurons of the test trials from their velocity alone."]
    return "\n".join(lines)


def run_sessions(seed, params, quick):
    """Decoding R2 on the new session after fine-tuning vs training from scratch."""
    n_sessions, n_trials, n_test = 5, 200, 50
    X, b = make_synthetic("hierarchical", n_trials=n_trials, n_time=30,
                          n_neurons=[40, 60, 50, 70, 45], n_behavior=2, random_state=0,
                          n_sessions=n_sessions)
    rows = []
    sessions = np.asarray(X.session)
    pretrain = np.flatnonzero(sessions < n_sessions - 1)
    new = np.flatnonzero(sessions == n_sessions - 1)
    rng = np.random.default_rng(seed)
    new = rng.permutation(new)
    test, pool = new[:n_test], new[n_test:]
    size = dict(NEDS_PARAMS, behavior_groups=None, **params)
    start = time.perf_counter()
    pretrained = NedsEstimator(random_state=seed, **size).fit(X[pretrain], b[pretrain])
    pretrain_seconds = time.perf_counter() - start
    counts = (10, 20) if quick else (10, 20, 50, len(pool))
    for n in counts:
        chosen = pool[:n]
        tuned = copy.deepcopy(pretrained).finetune(X[chosen], b[chosen])
        scratch = NedsEstimator(random_state=seed, **size).fit(X[chosen], b[chosen])
        rows.append(dict(seed=seed, n_trials=n, method="fine-tuned",
                         r2=tuned.score(X[test], b[test]), epochs=tuned.n_iter_,
                         pretrain_seconds=pretrain_seconds))
        rows.append(dict(seed=seed, n_trials=n, method="from scratch",
                         r2=scratch.score(X[test], b[test]), epochs=scratch.n_iter_))
        rows.append(dict(seed=seed, n_trials=n, method="ridge on smoothed spikes",
                         r2=_ridge_r2(X, b, chosen, test)))
    return rows


def _ridge_r2(X, b, train, test):
    """Decoding R2 of RidgeCV per bin on spikes smoothed over 2 bins (a linear reference)."""
    from scipy.ndimage import gaussian_filter1d
    from sklearn.linear_model import RidgeCV

    n = X[train].n_neurons[int(np.asarray(X[train].session)[0])]
    smooth = {name: gaussian_filter1d(X[rows].padded()[..., :n], 2.0, axis=1)
              for name, rows in (("train", train), ("test", test))}
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(
        smooth["train"].reshape(-1, n), b[train].reshape(-1, b.shape[-1]))
    return decoding_r2(b[test], ridge.predict(smooth["test"].reshape(-1, n)).reshape(
        b[test].shape))


def summarize_sessions(results):
    ridge = "ridge on smoothed spikes" in set(results.method)
    lines = ["| training trials of the new session | fine-tuned (pretrained on 4 sessions) | "
             "from scratch | fine-tuned - from scratch |" + (" ridge on smoothed spikes |"
                                                              if ridge else ""),
             "|---|---|---|---|" + ("---|" if ridge else "")]
    for n, rows in results.groupby("n_trials"):
        tuned = rows[rows.method == "fine-tuned"].set_index("seed").r2
        scratch = rows[rows.method == "from scratch"].set_index("seed").r2
        diff = (tuned - scratch).dropna()
        linear = rows[rows.method == "ridge on smoothed spikes"].r2
        lines.append(f"| {n} | {mean_sd(tuned)} | {mean_sd(scratch)} | {mean_sd(diff)} "
                     f"({int((diff > 0).sum())}/{len(diff)} seeds) |"
                     + (f" {mean_sd(linear)} |" if ridge else ""))
    lines += ["", "Decoding R2 (mean over the 2 behavior channels) on 50 test trials of the new "
              "session, mean +- sd over seeds."]
    return "\n".join(lines)


def plot_sessions(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for method, rows in results.groupby("method"):
        stats = rows.groupby("n_trials").r2.agg(["mean", "std"])  # every method, ridge too
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o",
                    capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("training trials of the new session")
    save_figure(fig, ax, path, "decoding R2 (test trials)")


def main(argv=None):
    parser = fold_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]),
                            "neds_mc_maze_small")
    parser.add_argument("--part", choices=["mc_maze", "sessions"], default="mc_maze")
    parser.add_argument("--append", action="store_true",
                        help="add the seeds run now to the rows already in --out's CSV")
    parser.add_argument("--methods", nargs="+", choices=list(LABELS), default=list(LABELS),
                        help="the MC_Maze_Small rows to train (default: all); hard_neds needs "
                             "neds, its teacher")
    parser.add_argument("--override", nargs="+", metavar="CSV", default=[],
                        help="with --merge: rows of these CSVs replace the rows of the same "
                             "(method, fold, seed) in the merged ones (a rerun of some methods)")
    parser.add_argument("--monitor", choices=["task", "loss"], default="task",
                        help="what the NEDS rows select their weights and schedule by: NEDS's "
                             "validation task metrics (default) or the masked validation loss "
                             "(the earlier protocol)")
    parser.add_argument("--merge", nargs="+", metavar="CSV",
                        help="write --out's table from these CSVs of earlier runs (say, seeds "
                             "run in parallel with their own --out); trains nothing")
    args = parser.parse_args(argv)
    if args.override and not args.merge:
        parser.error("--override replaces rows of the --merge CSVs; give --merge too")
    if "hard_neds" in args.methods and "neds" not in args.methods:
        parser.error("--methods: hard_neds is distilled from the neds row's model; add neds")
    start = time.perf_counter()
    if args.part == "mc_maze" and args.merge:
        results = pd.concat([pd.read_csv(path).assign(source=path) for path in args.merge],
                            ignore_index=True)
        repeated = results[results.duplicated(ROW_KEY, keep=False)]
        if len(repeated):
            raise SystemExit(
                f"--merge: (method, fold, seed) rows appear more than once, in "
                f"{sorted(repeated.source.unique())}; give each run's CSV once (the merged "
                f"table is written to --out, so do not pass --out's own CSV).")
        results = results.drop(columns="source")
        if args.override:
            newer = pd.concat([pd.read_csv(path) for path in args.override], ignore_index=True)
            if newer.duplicated(ROW_KEY).any():
                raise SystemExit("--override: a (method, fold, seed) row appears twice.")
            replaced = results.set_index(ROW_KEY).index.isin(newer.set_index(ROW_KEY).index)
            results = pd.concat([results[~replaced], newer], ignore_index=True)
        seeds = sorted(int(x) for x in results.seed.unique())
        header = (f"MC_Maze_Small, NEDS ({NEDS_PARAMS}), 5-fold CV x seeds {seeds}, merged from "
                  f"runs of one seed each (--seeds S [--methods ...] --out ...); command `python "
                  f"benchmarks/neds_mc_maze_small.py --merge {' '.join(args.merge)}"
                  + (f" --override {' '.join(args.override)}" if args.override else "")
                  + "`.")
        write_results(args.out, header, summarize_mc_maze(results), results)
        return
    if args.part == "mc_maze":
        # one seed at a time, the table rewritten after each: a stopped run keeps its seeds
        parts = [pd.read_csv(f"{args.out}.csv")] if args.append else []
        for seed in args.seeds[:1] if args.quick else args.seeds:
            results, n_folds, _ = run_folds(run_mc_maze, argparse.Namespace(
                **dict(vars(args), seeds=[seed])), args.methods, args.monitor)
            parts.append(results)
            results = pd.concat(parts, ignore_index=True)
            seeds = sorted(int(x) for x in results.seed.unique())
            header = (f"MC_Maze_Small, NEDS ({NEDS_PARAMS}), {n_folds}-fold CV x seeds "
                      f"{seeds}{' (quick: 5 epochs)' if args.quick else ''}; wall time "
                      f"{(time.perf_counter() - start) / 60:.0f} min with n_jobs={args.n_jobs}"
                      f"{' (this run; earlier rows appended to)' if args.append else ''}; "
                      "command `python benchmarks/neds_mc_maze_small.py"
                      + ("" if args.methods == list(LABELS)
                         else f" --methods {' '.join(args.methods)}")
                      + ("`." if args.monitor == "task" else f" --monitor {args.monitor}`."))
            write_results(args.out, header, summarize_mc_maze(results), results)
        return
    from joblib import Parallel, delayed

    out = args.out if args.out != str(RESULTS / "neds_mc_maze_small") else str(
        RESULTS / "neds_sessions")
    seeds = args.seeds[:1] if args.quick else args.seeds
    params = dict(max_epochs=5) if args.quick else {}
    rows = Parallel(n_jobs=args.n_jobs)(delayed(run_sessions)(seed, params, args.quick)
                                        for seed in seeds)
    results = pd.DataFrame([row for part in rows for row in part])
    header = (f"Synthetic 'hierarchical' family, 5 sessions (neurons 40/60/50/70/45, 200 trials "
              f"of 30 bins each): NEDS pretrained on 4, then the fifth; {len(seeds)} seeds"
              f"{' (quick: 5 epochs)' if args.quick else ''}; wall time "
              f"{(time.perf_counter() - start) / 60:.0f} min with n_jobs={args.n_jobs} on a "
              f"{os.cpu_count()}-core machine; command `python "
              "benchmarks/neds_mc_maze_small.py --part sessions`.")
    write_results(out, header, summarize_sessions(results), results)
    plot_sessions(results, f"{out}.png")


if __name__ == "__main__":
    main()

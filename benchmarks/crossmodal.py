"""Cross-modal distillation on simulated spikes + LFP + behavior: does a spike teacher make a
better LFP model, on the sessions it was distilled on and on sessions it never saw?

Data: ``make_spikes_lfp(n_sessions=5, random_state=0)`` (5 sessions of one task family, neuron
and channel counts differing per session, 1-s trials of 100 ten-millisecond bins, LFP at
1 kHz with 1/f, drift and 60 Hz line noise). Each session's raw LFP goes through
``LFPPreprocessor(sfreq=1000, l_freq=1, h_freq=50, notch=60, target_rate=100)`` fitted on
that session's training trials. Sessions 0-3 are *seen* (teacher and distillation train on
them), session 4 is *unseen*.

For each seed (3 by default) every session's trials are split 80 / 20 (training / held-out
test trials); every model trains on training trials only, and the score is velocity-decoding
R2 (``RidgeCV`` per bin on the model's latents, fit on the session's training trials, R2 on
its test trials, mean over x and y):

* ``spike teacher``: a ``MaskedAutoencoder`` on the seen sessions' spikes (upper reference);
* ``LFP, supervised MLP``: the strongest LFP baseline a user could fit directly, an
  ``MLPRegressor`` (64 x 64, early stopping) from each bin's LFP in a window of +-5 bins to its
  velocity, fit on each session's training trials (``--supervised-only`` adds it to an earlier
  run's CSV);
* ``LFP-only, single session``: ``CrossModalEstimator(strategy=None)`` fit on one session;
* ``LFP-only, multi-session``: the same fit on all seen sessions;
* ``distilled``: ``CrossModalEstimator(teacher=<that spike teacher>)`` fit on all seen
  sessions (``strategy="latent"``: a linear head, ``alpha=0.5``), and the variants of
  ``--variants`` (``strategy=LatentAlignment(metric="cosine")``; ``alpha`` 0.2 and 0.8;
  ``LatentAlignment(head=None)``, the latents compared as they are, as sklearn_blend 0.2 did);
* unseen session: the multi-session LFP-only model and the distilled model get input maps for
  session 4's layout with ``add_sessions`` (shared model frozen, LFP reconstruction only, no
  spikes), beside a single-session LFP-only model of session 4.

Every model has the sizes of ``SIZES``; each LFP model's row also records the spread of its
latents across test trials (:func:`spread`: near 0 for a model that gives every trial the same
latents). ``--simulator harder`` runs the same protocol on an LFP where aligning to the spikes
conflicts with reconstructing it (``SIMULATORS``: latents of the LFP alone, the tuned part only
in beta power, a weak and late spike-LFP relation). Run ``python benchmarks/crossmodal.py`` (it
writes ``benchmarks/results/crossmodal.{csv,md,png}``, ``crossmodal_harder.*`` for the harder
simulator); ``--quick`` checks the script.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
import warnings

import numpy as np
import pandas as pd

from common import RESULTS, save_figure, mean_sd, write_results
from sklearn_blend import CrossModalEstimator, LFPPreprocessor, MaskedAutoencoder, SessionTrials
from sklearn_blend.datasets import make_spikes_lfp
from sklearn_blend.distill import LatentAlignment
from sklearn_blend.model_selection import paired_differences
from sklearn_blend.modalities import LFP

SIZES = dict(hidden_size=32, n_layers=2, n_heads=2, ffn_size=64, lr=2e-3, max_epochs=150,
             n_iter_no_change=20, batch_size=16)
N_SESSIONS, UNSEEN = 5, 4
#: bins on either side of each bin that the supervised LFP decoder reads
CONTEXT = 5
SUPERVISED = f"LFP, supervised MLP (+-{CONTEXT} bins)"
VARIANTS = {"distilled (cosine)": dict(strategy=LatentAlignment(metric="cosine")),
            "distilled (alpha 0.2)": dict(alpha=0.2), "distilled (alpha 0.8)": dict(alpha=0.8),
            "distilled (no head)": dict(strategy=LatentAlignment(head=None))}
#: the simulators: ``make_spikes_lfp``'s defaults, and an LFP where aligning to the spikes
#: conflicts with reconstructing it (its own latents, the tuned part only in beta power, a weak
#: and late spike-LFP relation)
SIMULATORS = {"default": {},
              "harder": dict(private_latents=2, coupling="band_power", tuned_weight=0.1,
                             lfp_lag_ms=100)}


def preprocess(data, splits):
    """Each session's LFP at the bin rate, its preprocessor fitted on its training trials."""
    out = []
    for s, array in enumerate(data.lfp.arrays):
        train, _ = splits[s]
        pre = LFPPreprocessor(sfreq=data.lfp_rate, l_freq=1.0, h_freq=50.0, notch=60.0,
                              target_rate=1000.0 / data.bin_size_ms).fit(array[train])
        out.append(pre.transform(array))
    return out


def decode(latents, velocity, train, test):
    """R2 of velocity from latents per bin (RidgeCV fit on ``train``, scored on ``test``)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score

    width = latents.shape[-1]
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(
        latents[train].reshape(-1, width), velocity[train].reshape(-1, 2))
    predicted = ridge.predict(latents[test].reshape(-1, width))
    return float(r2_score(velocity[test].reshape(-1, 2), predicted))


def seed_data(seed, quick, simulator="default"):
    """The sessions, each session's 80/20 split of this seed, and the preprocessed LFP."""
    data = make_spikes_lfp(n_sessions=N_SESSIONS, n_trials=60 if quick else 150,
                           n_neurons=[50, 70, 60, 80, 65], n_channels=[24, 32, 16, 28, 20],
                           random_state=0, **SIMULATORS[simulator])
    rng = np.random.default_rng(seed)
    splits = []
    for n in (len(a) for a in data.spikes.arrays):
        order = rng.permutation(n)
        splits.append((np.sort(order[: int(0.8 * n)]), np.sort(order[int(0.8 * n):])))
    return data, splits, preprocess(data, splits)


def context(lfp, width=CONTEXT):
    """Each bin's LFP with the ``width`` bins on either side (edge-padded), flattened."""
    n_time = lfp.shape[1]
    index = np.clip(np.arange(n_time)[:, None] + np.arange(-width, width + 1)[None],
                    0, n_time - 1)
    return lfp[:, index].reshape(*lfp.shape[:2], -1)


def supervised_rows(seed, quick, simulator="default"):
    """A supervised LFP decoder per session: an MLP from each bin's LFP in a +-CONTEXT-bin
    window to its velocity, fit on the session's training trials (early stopping on 10% of
    them), scored on its test trials."""
    from sklearn.metrics import r2_score
    from sklearn.neural_network import MLPRegressor

    data, splits, lfp = seed_data(seed, quick, simulator)
    rows = []
    for s in range(N_SESSIONS):
        train, test = splits[s]
        velocity = data.behavior[data.session == s]
        features = context(lfp[s])
        width = features.shape[-1]
        mlp = MLPRegressor(hidden_layer_sizes=(64, 64), alpha=1e-3, early_stopping=True,
                           max_iter=20 if quick else 300, random_state=seed)
        mlp.fit(features[train].reshape(-1, width), velocity[train].reshape(-1, 2))
        predicted = mlp.predict(features[test].reshape(-1, width))
        rows.append(dict(method=SUPERVISED, session=s, seen=s != UNSEEN, seed=seed,
                         r2=float(r2_score(velocity[test].reshape(-1, 2), predicted)),
                         epochs=mlp.n_iter_))
    return rows


def spread(latents):
    """How much the latents differ from trial to trial: their s.d. across trials (per bin and
    unit, averaged) over their overall s.d.; near 0 for latents that are the same sequence for
    every trial (a collapsed model)."""
    return float(latents.std(axis=0).mean() / max(latents.std(), 1e-12))


def run_seed(seed, quick, variants, simulator="default"):
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", module="sklearn")
    data, splits, lfp = seed_data(seed, quick, simulator)
    spikes = data.spikes.arrays
    velocity = [data.behavior[data.session == s] for s in range(N_SESSIONS)]
    sizes = dict(SIZES, random_state=seed, **({"max_epochs": 3} if quick else {}))
    seen = [s for s in range(N_SESSIONS) if s != UNSEEN]

    def trials(arrays, modality=None):
        parts = [arrays[s][splits[s][0]] for s in seen]
        return SessionTrials(parts, keys=seen, **({"modality": modality} if modality else {}))

    rows, start = [], time.perf_counter()

    def score(method, model, s, arrays, **kwargs):
        latents = model.transform(arrays[s], session=kwargs.get("session", s))
        rows.append(dict(method=method, session=s, seen=s != UNSEEN, seed=seed,
                         r2=decode(latents, velocity[s], *splits[s]),
                         spread=spread(latents[splits[s][1]]),
                         epochs=getattr(model, "n_iter_", np.nan)))

    teacher = MaskedAutoencoder(**sizes).fit(trials(spikes))
    for s in seen:
        score("spike teacher", teacher, s, spikes)
    multi = CrossModalEstimator(strategy=None, **sizes).fit(trials(lfp, LFP))
    distilled = {"distilled": CrossModalEstimator(teacher=teacher, **sizes).fit(
        trials(lfp, LFP), privileged=trials(spikes))}
    for name in variants:
        distilled[name] = CrossModalEstimator(teacher=teacher, **dict(sizes, **VARIANTS[name]))
        distilled[name].fit(trials(lfp, LFP), privileged=trials(spikes))
    for s in seen:
        score("LFP-only, multi-session", multi, s, lfp)
        for name, model in distilled.items():
            score(name, model, s, lfp)
    for s in range(N_SESSIONS):
        single = CrossModalEstimator(strategy=None, **sizes).fit(lfp[s][splits[s][0]])
        score("LFP-only, single session", single, s, lfp, session=0)
    new = SessionTrials([lfp[UNSEEN][splits[UNSEEN][0]]], keys=[UNSEEN], modality=LFP)
    for name, model in (("LFP-only, multi-session", multi),
                        ("distilled", distilled["distilled"])):
        adapted = copy.deepcopy(model).add_sessions(new)
        score(name, adapted, UNSEEN, lfp)
    print(f"seed {seed}: {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    return rows


def run_all(seed, quick, variants, simulator="default"):
    return (run_seed(seed, quick, variants, simulator)
            + supervised_rows(seed, quick, simulator))


METHODS = ("spike teacher", SUPERVISED, "LFP-only, single session", "LFP-only, multi-session",
           "distilled", *VARIANTS)


def summarize(results):
    lines = ["| method | seen sessions: R2 | pairs | unseen session: R2 | seeds | latent spread "
             "(seen) |", "|---|---|---|---|---|---|"]
    for method in METHODS:
        rows = results[results.method == method]
        if rows.empty:
            continue
        seen, unseen = rows[rows.seen], rows[~rows.seen]
        spread_cell = mean_sd(seen.spread) if "spread" in seen else "–"
        lines.append(f"| {method} | {mean_sd(seen.r2)} | {len(seen)} | "
                     f"{mean_sd(unseen.r2) if len(unseen) else '–'} | {len(unseen) or '–'} | "
                     f"{spread_cell} |")
    keyed = results.assign(fold=results.session)
    lines += ["", "Paired differences (mean +- sd over (session, seed) pairs, wins/pairs, "
              "Wilcoxon p):", ""]
    for where, subset in (("seen sessions", keyed[keyed.seen]),
                          ("unseen session", keyed[~keyed.seen])):
        for method, baseline in (("distilled", SUPERVISED),
                                 ("distilled", "LFP-only, multi-session"),
                                 ("distilled", "LFP-only, single session"),
                                 ("LFP-only, multi-session", "LFP-only, single session"),
                                 *((v, "distilled") for v in VARIANTS)):
            if not {method, baseline} <= set(subset.method):
                continue
            d = paired_differences(subset, method, baseline, "r2")
            if d["n"]:
                lines.append(f"- {where}: {method} - {baseline}: {d['mean']:+.3f} +- "
                             f"{d['sd']:.3f} ({d['wins']}/{d['n']}, p={d['p_wilcoxon']:.2g})")
    lines += ["", "R2: velocity decoded per bin by RidgeCV from each model's latents (fit on the "
              "session's training trials, scored on its held-out 20%; the supervised MLP "
              "predicts velocity from the LFP directly), mean over x and y; mean "
              "+- sd over (session, seed) pairs. The unseen session's LFP models get its input "
              "maps by add_sessions (LFP only, shared model frozen). Latent spread: the s.d. of "
              "the latents across test trials over their overall s.d. (near 0: the same "
              "sequence for every trial, a collapsed model)."]
    return "\n".join(lines)


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHODS if m in set(results.method)]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for offset, (label, subset) in enumerate((("seen", results[results.seen]),
                                              ("unseen", results[~results.seen]))):
        stats = subset.groupby("method").r2.agg(["mean", "std"]).reindex(methods)
        ax.bar(np.arange(len(methods)) + 0.4 * offset - 0.2, stats["mean"], 0.4,
               yerr=stats["std"].fillna(0), capsize=3, label=f"{label} sessions")
    ax.set_xticks(np.arange(len(methods)), methods, rotation=20, ha="right", fontsize=8)
    save_figure(fig, ax, path, "velocity decoding R2")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-jobs", type=int, default=2, help="seeds run in parallel")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="1 seed, 60 trials, 3 epochs")
    parser.add_argument("--out", default=str(RESULTS / "crossmodal"))
    parser.add_argument("--simulator", choices=list(SIMULATORS), default="default",
                        help="make_spikes_lfp's defaults, or the harder LFP of SIMULATORS "
                             "(written to --out with _harder appended)")
    parser.add_argument("--supervised-only", action="store_true",
                        help="only the supervised LFP decoder, added to --out's CSV")
    args = parser.parse_args(argv)
    from joblib import Parallel, delayed

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    seeds = args.seeds[:1] if args.quick else args.seeds
    out = args.out + ("" if args.simulator == "default" else f"_{args.simulator}")
    start = time.perf_counter()
    if args.supervised_only:
        earlier = pd.read_csv(f"{out}.csv")
        earlier = earlier[earlier.method != SUPERVISED]
        outputs = [earlier.to_dict("records")] + [supervised_rows(seed, args.quick,
                                                                  args.simulator)
                                                  for seed in seeds]
    else:
        outputs = Parallel(n_jobs=args.n_jobs)(
            delayed(run_all)(seed, args.quick, args.variants, args.simulator)
            for seed in seeds)
    results = pd.DataFrame([row for rows in outputs for row in rows])
    simulator = ("" if args.simulator == "default"
                 else f", harder LFP {SIMULATORS[args.simulator]}")
    header = (f"Simulated spikes + LFP + behavior (make_spikes_lfp, {N_SESSIONS} sessions, "
              f"session {UNSEEN} unseen{simulator}), seeds {seeds}, sizes {SIZES}"
              f"{' (quick)' if args.quick else ''}; wall time "
              f"{(time.perf_counter() - start) / 60:.0f} min on 2 cores"
              + (" (the supervised MLP rows, added by --supervised-only to the rows of an "
                 "earlier run of 15 min)" if args.supervised_only else "")
              + "; command `python benchmarks/crossmodal.py"
              + ("" if args.simulator == "default" else f" --simulator {args.simulator}")
              + "`.")
    write_results(out, header, summarize(results), results)
    plot(results, f"{out}.png")


if __name__ == "__main__":
    main()

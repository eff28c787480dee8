"""Cross-modal distillation on simulated spikes + LFP + behavior, against baselines tuned with the
same budget: does a spike teacher make a better LFP model, on the sessions it was distilled on
and on sessions it never saw?

Data: ``make_spikes_lfp(n_sessions=6, n_channels=24, array_drift=0.2, random_state=0)`` (6
sessions of one task family recorded with one 24-channel probe whose spatial mixing drifts from
session to session, each session with its own neurons; 1-s trials of 100 ten-millisecond bins,
LFP at 1 kHz with 1/f noise, drift and 60 Hz line noise). Each session's trials, laid end to end,
are its continuous recording; it is preprocessed once with ``LFPPreprocessor(sfreq=1000,
l_freq=1, h_freq=50, notch=60, target_rate=100, zscore=False)`` and cut back into trials
(:func:`sklearn_blend.lfp.preprocess_and_cut`; the models scale each session with its training
trials). Sessions 0-3 are *seen* (teacher and distillation train on them), 4 and 5 *unseen*.
``--simulator harder`` makes the LFP harder (``SIMULATORS``: latents of the LFP alone, the
tuned part only in beta power, a weak and late spike-LFP relation).

For each seed (3 by default) every session's trials are split 80 / 20 (training / test). The
score is velocity-decoding R2 on the test trials (mean over x and y): ``RidgeCV`` per bin on a
model's latents fit on the session's training trials, or the supervised decoders' own output.

Every model except the teacher chooses one of two settings (``GRIDS``) by nested selection on
training trials only: each session's training trials are split into ``--inner`` folds, each
setting is fit on the other folds and scored by velocity-decoding R2 on the held fold (mean
over seen sessions and folds), the best is refit on all training trials. The methods:

* ``spike teacher``: a ``MaskedAutoencoder`` of the seen sessions' spikes (upper reference;
  the inner fits of the distilled model use this teacher too: it saw no behavior);
* ``LFP-only, multi-session``: ``CrossModalEstimator(strategy=None)`` on the seen sessions;
* ``distilled``: ``CrossModalEstimator(teacher=<the spike teacher>)`` (``strategy="latent"``:
  a linear head, ``alpha=0.5``) on the seen sessions;
* ``LFP, supervised transformer``: the same transformer trained on behavior over the whole
  trial (``CrossModalEstimator(teacher=BehaviorTeacher(), strategy=LatentAlignment(centre=False),
  alpha=0)``: its latents, through the
  linear head, fit the velocity, as distillation fits the teacher's latents);
* those three choose ``dropout`` 0.2 or 0.4;
* ``LFP-only, single session``: ``CrossModalEstimator(strategy=None)`` fit on one session
  (each session, seen or not), choosing ``dropout`` likewise;
* ``LFP, supervised MLP``: ``MLPRegressor`` (64 x 64, early stopping) from each bin's LFP in a
  window of +-5 or +-25 bins (the latter covers the LFP's lag behind the spikes) to velocity;
* ``LFP band power, ridge``: ``RidgeCV`` on log ``BandPower`` per bin (4 bands in 2-50 Hz,
  windows of 0.25 or 0.5 s centred on each bin, from the continuous recording);
* ``--variants`` (at dropout 0.2, no selection): ``LatentAlignment(centre=False)`` (the
  uncentred alignment of model files of format 3), ``distill_warmup_steps=600``,
  ``LatentAlignment(metric="cosine")``,
  ``alpha`` 0.2 and 0.8, ``LatentAlignment(head=None)``.

Unseen sessions, two protocols: ``add_sessions`` (input maps for the new session's channels
trained on its LFP alone, the shared model frozen; the multi-session LFP-only and the distilled
model) and ``zero-shot`` (the session read as if it were the last seen one,
``transform(X, session=3)``: same probe, no training; the three multi-session transformers),
beside the models fit on the unseen session itself (``own session``).

Each LFP model's row also records the spread of its latents across test trials (:func:`spread`:
near 0 for a model that gives every trial the same latents). Run ``python
benchmarks/crossmodal.py`` (writes ``benchmarks/results/crossmodal.{csv,md,png}``;
``crossmodal_harder.*`` with ``--simulator harder``); ``--quick`` checks the script. To use more
cores, run each seed in its own process (``--seeds S --n-jobs 1 --out ...``) and combine the
runs with ``--merge`` (with the runs' ``--simulator``).
"""

from __future__ import annotations

import argparse
import copy
import os
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from common import RESULTS, mean_sd, paired_text, read_runs, save_figure, write_results
from sklearn_blend import CrossModalEstimator, LFPPreprocessor, MaskedAutoencoder, SessionTrials
from sklearn_blend.datasets import make_spikes_lfp
from sklearn_blend.distill import LatentAlignment
from sklearn_blend.lfp import BandPower, preprocess_and_cut
from sklearn_blend.model_selection import paired_differences
from sklearn_blend.modalities import LFP, SPIKES

SIZES = dict(hidden_size=32, n_layers=2, n_heads=2, ffn_size=64, lr=2e-3, max_epochs=150,
             n_iter_no_change=20, batch_size=16)
N_SESSIONS, UNSEEN, AS_IF = 6, (4, 5), 3
NEURONS, CHANNELS, ARRAY_DRIFT = [50, 70, 60, 80, 65, 55], 24, 0.2
SEEN = [s for s in range(N_SESSIONS) if s not in UNSEEN]
TEACHER = "spike teacher"
MULTI, DISTILLED = "LFP-only, multi-session", "distilled"
TRANSFORMER = "LFP, supervised transformer"
SINGLE, MLP, BAND = "LFP-only, single session", "LFP, supervised MLP", "LFP band power, ridge"
#: the two settings each tuned method chooses from (the same budget for every one)
DROPOUT = {"dropout": [0.2, 0.4]}
GRIDS = {MULTI: DROPOUT, DISTILLED: DROPOUT, TRANSFORMER: DROPOUT, SINGLE: DROPOUT,
         MLP: {"window": [5, 25]}, BAND: {"window_s": [0.25, 0.5]}}
#: the setting of the --variants (the package default)
DEFAULT = {"dropout": 0.2}
BANDS = ((2, 8), (8, 14), (14, 30), (30, 50))
VARIANTS = {"distilled (uncentred)": dict(strategy=LatentAlignment(centre=False)),
            "distilled (warm-up 600 steps)": dict(distill_warmup_steps=600),
            "distilled (cosine)": dict(strategy=LatentAlignment(metric="cosine")),
            "distilled (alpha 0.2)": dict(alpha=0.2), "distilled (alpha 0.8)": dict(alpha=0.8),
            "distilled (no head)": dict(strategy=LatentAlignment(head=None))}
SIMULATORS = {"default": {},
              "harder": dict(private_latents=2, coupling="band_power", tuned_weight=0.1,
                             lfp_lag_ms=100)}


class BehaviorTeacher(TransformerMixin, BaseEstimator):
    """Behavior, standardised with the training trials' mean and s.d. per variable, as the
    "teacher's latents": distilling it (``alpha=0``) trains the student transformer to predict
    behavior from the LFP of the whole trial. (Unstandardised, a speed in cm/s weighs hundreds
    of times the LFP's z-scored reconstruction and the model hardly trains: R2 -0.02 against
    0.29 standardised on the first fold of ``crossmodal_real.py``.)"""

    def fit(self, X, y=None):
        values = self._values(X).reshape(-1, self._values(X).shape[-1])
        self.mean_, self.scale_ = values.mean(0), np.maximum(values.std(0), 1e-6)
        self.n_features_in_ = values.shape[-1]
        return self

    @staticmethod
    def _values(X):
        return X.padded() if isinstance(X, SessionTrials) else np.asarray(X, np.float32)

    def transform(self, X):
        return ((self._values(X) - self.mean_) / self.scale_).astype(np.float32)


def supervised_transformer(behavior, **params):
    """The whole-trial supervised baseline, unfitted: the session transformer whose latents,
    through the linear head, fit ``behavior`` (standardised by :class:`BehaviorTeacher`) as it
    is (uncentred: what every trial shares at a bin is part of the target)."""
    return CrossModalEstimator(teacher=BehaviorTeacher().fit(behavior), alpha=0.0,
                               strategy=LatentAlignment(centre=False), **params)


class Data:
    """One seed's sessions: raw and preprocessed LFP, spikes, velocity, splits, inner folds."""

    def __init__(self, seed, quick, simulator, n_inner):
        from sklearn.model_selection import KFold

        data = make_spikes_lfp(n_sessions=N_SESSIONS, n_trials=60 if quick else 150,
                               n_neurons=NEURONS, n_channels=CHANNELS, array_drift=ARRAY_DRIFT,
                               random_state=0, **SIMULATORS[simulator])
        self.rate, self.bin_ms = data.lfp_rate, data.bin_size_ms
        self.raw = data.lfp.arrays
        self.spikes = data.spikes.arrays
        self.velocity = [data.behavior[data.session == s] for s in range(N_SESSIONS)]
        rng = np.random.default_rng(seed)
        self.splits, self.inner = [], []
        for n in (len(a) for a in self.spikes):
            order = rng.permutation(n)
            train, test = np.sort(order[: int(0.8 * n)]), np.sort(order[int(0.8 * n):])
            self.splits.append((train, test))
            self.inner.append([(train[a], train[b]) for a, b in
                               KFold(n_inner, shuffle=True, random_state=seed).split(train)])
        self.lfp = [self._continuous(raw) for raw in self.raw]

    def _continuous(self, raw):
        """A session's trials laid end to end, preprocessed once, cut back into trials."""
        n_trials, n_samples, n_channels = raw.shape
        pre = LFPPreprocessor(sfreq=self.rate, l_freq=1.0, h_freq=50.0, notch=60.0,
                              target_rate=1000.0 / self.bin_ms, zscore=False)
        trials, _, _ = preprocess_and_cut(pre, raw.reshape(-1, n_channels),
                                          np.arange(n_trials) * n_samples, n_samples)
        return trials

    def band_power(self, s, window_s):
        """Log band power per bin of session ``s``, from its continuous recording."""
        return band_power(self.raw[s], self.rate, self.lfp[s].shape[1], window_s)


def band_power(raw, rate, n_bins, window_s, bands=BANDS):
    """Log band power of trials ``raw`` ``(n_trials, n_samples, n_channels)`` laid end to end
    as one recording, one window of ``window_s`` centred on each of the ``n_bins`` bins of
    every trial: ``(n_trials, n_bins, n_channels * len(bands))``. The recording is first
    resampled up to a whole number of samples per bin (250 Hz has 2.5 per 10 ms)."""
    from scipy.signal import resample_poly

    n_trials, n_samples, n_channels = raw.shape
    recording = raw.reshape(-1, n_channels).astype(np.float64)
    up = n_bins // np.gcd(n_samples, n_bins)
    if up > 1:
        recording, rate, n_samples = resample_poly(recording, up, 1, axis=0), rate * up, \
            n_samples * up
    step, window = n_samples // n_bins, int(round(window_s * rate))
    left = window // 2 - step // 2
    recording = np.pad(recording, ((left, window - step - left), (0, 0)), mode="reflect")
    power = BandPower(sfreq=rate, bands=bands, window_s=window_s,
                      step_s=step / rate).fit_transform(recording)
    return power.reshape(n_trials, n_bins, -1)


def decode(latents, velocity, train, test):
    """R2 of velocity from latents per bin (RidgeCV fit on ``train``, scored on ``test``)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score

    width = latents.shape[-1]
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(
        latents[train].reshape(-1, width), velocity[train].reshape(-1, 2))
    predicted = ridge.predict(latents[test].reshape(-1, width))
    return float(r2_score(velocity[test].reshape(-1, 2), predicted))


def context(lfp, width):
    """Each bin's LFP with the ``width`` bins on either side (edge-padded), flattened."""
    n_time = lfp.shape[1]
    index = np.clip(np.arange(n_time)[:, None] + np.arange(-width, width + 1)[None],
                    0, n_time - 1)
    return lfp[:, index].reshape(*lfp.shape[:2], -1)


def spread(latents):
    """How much the latents differ from trial to trial: their s.d. across trials (per bin and
    unit, averaged) over their overall s.d.; near 0 for latents that are the same sequence for
    every trial (a collapsed model)."""
    return float(latents.std(axis=0).mean() / max(latents.std(), 1e-12))


def select(fit, score, grid, folds):
    """Nested selection: the setting of the param grid ``grid`` with the best mean ``score``
    over ``folds`` (each a pair (fit trials, held trials)), and that score."""
    from sklearn.model_selection import ParameterGrid

    settings = list(ParameterGrid(grid))
    means = [np.mean([score(fit(setting, fitting), fitting, held) for fitting, held in folds])
             for setting in settings]
    best = int(np.argmax(means))
    return settings[best], float(means[best])


# --- the transformers ------------------------------------------------------------------------

def transformer(method, setting, data, sessions, rows_of, teacher, sizes):
    """``method`` with ``setting`` fit on the trials ``rows_of[s]`` of each of ``sessions``."""
    def trials(arrays, modality=LFP):
        return SessionTrials([arrays[s][rows_of[s]] for s in sessions], keys=sessions,
                             modality=modality)

    params = dict(sizes, **setting)
    X = trials(data.lfp)
    if method in (MULTI, SINGLE):
        return CrossModalEstimator(strategy=None, **params).fit(X)
    if method == TRANSFORMER:
        behavior = trials(data.velocity)
        return supervised_transformer(behavior, **params).fit(X, privileged=behavior)
    extra = VARIANTS.get(method, {})
    return CrossModalEstimator(teacher=teacher, **dict(params, **extra)).fit(
        X, privileged=trials(data.spikes, SPIKES))


def latent_score(data, sessions):
    """The inner score of a transformer: decoding R2 from its latents, mean over sessions."""
    def score(model, fitting, held):
        return float(np.mean([decode(model.transform(data.lfp[s], session=s),
                                     data.velocity[s], fitting[s], held[s])
                              for s in sessions]))
    return score


def folds_of(data, sessions):
    """The inner folds as (fit trials, held trials) dicts keyed by session."""
    n_inner = len(data.inner[sessions[0]])
    return [({s: data.inner[s][k][0] for s in sessions},
             {s: data.inner[s][k][1] for s in sessions}) for k in range(n_inner)]


def run_seed(seed, quick, variants, simulator, n_inner, variants_only=False):
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", module="sklearn")
    start = time.perf_counter()
    data = Data(seed, quick, simulator, n_inner)
    sizes = dict(SIZES, random_state=seed, **({"max_epochs": 3} if quick else {}))
    train = {s: data.splits[s][0] for s in range(N_SESSIONS)}
    rows = []

    def add(method, s, latents=None, r2=None, protocol="own session", setting=None,
            inner=np.nan, epochs=np.nan):
        if r2 is None:
            r2 = decode(latents, data.velocity[s], *data.splits[s])
        rows.append(dict(method=method, session=s, seen=s not in UNSEEN, seed=seed,
                         protocol=protocol, r2=r2,
                         spread=np.nan if latents is None else spread(
                             latents[data.splits[s][1]]),
                         setting=repr(setting), inner_score=inner, epochs=epochs))

    teacher = MaskedAutoencoder(**sizes).fit(SessionTrials(
        [data.spikes[s][train[s]] for s in SEEN], keys=SEEN))
    for name in variants:
        model = transformer(name, DEFAULT, data, SEEN, train, teacher, sizes)
        for s in SEEN:
            add(name, s, model.transform(data.lfp[s], session=s), setting=DEFAULT,
                epochs=model.n_iter_)
    if variants_only:
        return rows
    for s in SEEN:
        add(TEACHER, s, teacher.transform(data.spikes[s], session=s))

    for method in (MULTI, DISTILLED, TRANSFORMER):
        def fit(setting, rows_of, method=method):
            return transformer(method, setting, data, SEEN, rows_of, teacher, sizes)

        setting, inner = select(fit, latent_score(data, SEEN), GRIDS[method],
                                folds_of(data, SEEN))
        model = fit(setting, train)
        for s in SEEN:
            add(method, s, model.transform(data.lfp[s], session=s), setting=setting,
                inner=inner, epochs=model.n_iter_)
        for s in UNSEEN:
            add(method, s, model.transform(data.lfp[s], session=AS_IF), protocol="zero-shot",
                setting=setting, inner=inner, epochs=model.n_iter_)
        if method != TRANSFORMER:
            adapted = copy.deepcopy(model).add_sessions(SessionTrials(
                [data.lfp[s][train[s]] for s in UNSEEN], keys=list(UNSEEN), modality=LFP))
            for s in UNSEEN:
                add(method, s, adapted.transform(data.lfp[s], session=s),
                    protocol="add_sessions", setting=setting, inner=inner,
                    epochs=model.n_iter_)

    for s in range(N_SESSIONS):
        def fit(setting, rows_of, s=s):
            return transformer(SINGLE, setting, data, [s], rows_of, None, sizes)

        setting, inner = select(fit, latent_score(data, [s]), GRIDS[SINGLE],
                                folds_of(data, [s]))
        model = fit(setting, train)
        add(SINGLE, s, model.transform(data.lfp[s], session=s), setting=setting, inner=inner,
            epochs=model.n_iter_)
        rows += supervised_rows(data, s, seed, quick)
    print(f"seed {seed}: {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    return rows


# --- the supervised decoders -----------------------------------------------------------------

def supervised_rows(data, s, seed, quick):
    """The MLP and the band-power ridge of session ``s``, each tuned on its inner folds."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    velocity = data.velocity[s]
    features = {MLP: lambda setting: context(data.lfp[s], setting["window"]),
                BAND: lambda setting: data.band_power(s, setting["window_s"])}
    models = {MLP: lambda: MLPRegressor(hidden_layer_sizes=(64, 64), alpha=1e-3,
                                        early_stopping=True, max_iter=20 if quick else 300,
                                        random_state=seed),
              BAND: lambda: RidgeCV(alphas=np.logspace(-3, 3, 13))}
    rows = []
    for method in (MLP, BAND):
        cache = {}

        def fit(setting, rows_of, method=method):
            key = repr(setting)
            if key not in cache:  # the features of a setting, built once for its fits
                cache[key] = features[method](setting)
            X = cache[key]
            width = X.shape[-1]
            model = make_pipeline(StandardScaler(), models[method]())
            return model.fit(X[rows_of].reshape(-1, width), velocity[rows_of].reshape(-1, 2)), X

        def score(fitted, fitting, held):
            model, X = fitted
            width = X.shape[-1]
            return float(r2_score(velocity[held].reshape(-1, 2),
                                  model.predict(X[held].reshape(-1, width))))

        setting, inner = select(fit, score, GRIDS[method], data.inner[s])
        fitted = fit(setting, data.splits[s][0])
        last = fitted[0][-1]
        rows.append(dict(method=method, session=s, seen=s not in UNSEEN, seed=seed,
                         protocol="own session", r2=score(fitted, None, data.splits[s][1]),
                         spread=np.nan, setting=repr(setting), inner_score=inner,
                         epochs=getattr(last, "n_iter_", np.nan)))
    return rows


# --- the report ------------------------------------------------------------------------------

METHODS = (TEACHER, DISTILLED, MULTI, TRANSFORMER, SINGLE, MLP, BAND, *VARIANTS)
PROTOCOLS = ("own session", "add_sessions", "zero-shot")


def summarize(results):
    lines = ["| method | seen sessions: R2 | pairs | unseen, own session | unseen, add_sessions "
             "| unseen, zero-shot | latent spread (seen) | settings chosen |",
             "|---|---|---|---|---|---|---|---|"]
    for method in METHODS:
        rows = results[results.method == method]
        if rows.empty:
            continue
        seen, unseen = rows[rows.seen], rows[~rows.seen]
        cells = [mean_sd(unseen[unseen.protocol == p].r2) if (unseen.protocol == p).any()
                 else "–" for p in PROTOCOLS]
        counts = rows.drop_duplicates(["seed", "session"] if method in (SINGLE, MLP, BAND)
                                      else ["seed"]).setting.value_counts()
        chosen = ("; ".join(f"{k} ({v})" for k, v in counts.items())
                  if method in GRIDS else "–")
        lines.append(f"| {method} | {mean_sd(seen.r2)} | {len(seen)} | " + " | ".join(cells)
                     + f" | {mean_sd(seen.spread)} | {chosen} |")
    keyed = results.assign(fold=results.session)
    lines += ["", "Paired differences (mean +- sd over (session, seed) pairs, wins/pairs, "
              "Wilcoxon p; optimistic, the pairs share a teacher within a seed):", ""]
    seen = keyed[keyed.seen]
    comparisons = [("seen sessions", seen, DISTILLED, other)
                   for other in (TRANSFORMER, MLP, BAND, MULTI, SINGLE)]
    comparisons += [("seen sessions", seen, v, DISTILLED) for v in VARIANTS]
    for protocol, others in (("zero-shot", (MULTI, TRANSFORMER)), ("add_sessions", (MULTI,))):
        unseen = keyed[~keyed.seen & (keyed.protocol == protocol)]
        comparisons += [(f"unseen, {protocol}", unseen, DISTILLED, other) for other in others]
        own = keyed[~keyed.seen & (keyed.protocol == "own session")]
        comparisons += [(f"unseen, {protocol} vs own session", pd.concat([
            unseen[unseen.method == DISTILLED], own[own.method == other]]), DISTILLED, other)
            for other in (SINGLE, MLP, BAND)]
    lines += [line for where, subset, method, baseline in comparisons
              if (line := paired_line(subset, method, baseline, f"{where}: "))]
    lines += ["", "R2: velocity decoded per bin by RidgeCV from each model's latents (fit on the "
              "session's training trials, scored on its held-out 20%; the MLP and the band-power "
              "ridge predict velocity directly), mean over x and y; mean +- sd over (session, "
              "seed) pairs. Every method but the teacher chose one of two settings by nested "
              "selection on training trials (settings chosen: count over seeds, or over "
              "(seed, session) for the per-session models). Unseen sessions: own session = a "
              "model fit on that session; add_sessions = new input maps trained on its LFP "
              f"alone, shared model frozen; zero-shot = read as if it were session {AS_IF} "
              "(same probe, drifted), no training. Latent spread: the s.d. of the latents "
              "across test trials over their overall s.d. (near 0: the same sequence for every "
              "trial, a collapsed model)."]
    return "\n".join(lines)


def paired_line(results, method, baseline, where=""):
    """``- <where><method> - <baseline>: mean +- sd (wins/pairs, p=...)`` of their paired R2
    differences, or ``None`` when one of them has no rows."""
    if not {method, baseline} <= set(results.method):
        return None
    d = paired_differences(results, method, baseline, "r2")
    if not d["n"]:
        return None
    return f"- {where}{method} - {baseline}: {paired_text(d)}"


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHODS if m in set(results.method)]
    groups = [("seen", results[results.seen])] + [
        (f"unseen, {p}", results[~results.seen & (results.protocol == p)]) for p in PROTOCOLS]
    fig, ax = plt.subplots(figsize=(8, 3.4))
    width = 0.8 / len(groups)
    for offset, (label, subset) in enumerate(groups):
        stats = subset.groupby("method").r2.agg(["mean", "std"]).reindex(methods)
        ax.bar(np.arange(len(methods)) + width * (offset - (len(groups) - 1) / 2),
               stats["mean"], width, yerr=stats["std"].fillna(0), capsize=2, label=label)
    ax.set_xticks(np.arange(len(methods)), methods, rotation=20, ha="right", fontsize=8)
    save_figure(fig, ax, path, "velocity decoding R2")


def describe(args, seeds, wall):
    """The start of a table's header: the data, protocol, seeds and wall time."""
    simulator = ("" if args.simulator == "default"
                 else f", harder LFP {SIMULATORS[args.simulator]}")
    return (f"Simulated spikes + LFP + behavior (make_spikes_lfp, {N_SESSIONS} sessions on one "
            f"{CHANNELS}-channel probe, array_drift={ARRAY_DRIFT}, sessions {list(UNSEEN)} "
            f"unseen{simulator}), seeds {seeds}, sizes {SIZES}, nested selection "
            f"({args.inner} inner folds){' (quick)' if args.quick else ''}; wall time {wall} on "
            f"{os.cpu_count()} cores")


def command(args):
    """The command of a run with ``args``, in backticks."""
    return ("`python benchmarks/crossmodal.py"
            + ("" if args.simulator == "default" else f" --simulator {args.simulator}")
            + (f" --variants {' '.join(repr(v) for v in args.variants)}" if args.variants
               else "") + (" --variants-only" if args.variants_only else "") + "`")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-jobs", type=int, default=2, help="seeds run in parallel")
    parser.add_argument("--inner", type=int, default=2, help="inner folds of the selection")
    parser.add_argument("--variants", nargs="*", default=[], choices=list(VARIANTS))
    parser.add_argument("--variants-only", action="store_true",
                        help="only the --variants' rows (to --merge with a run of the rest)")
    parser.add_argument("--quick", action="store_true", help="1 seed, 60 trials, 3 epochs")
    parser.add_argument("--out", default=str(RESULTS / "crossmodal"))
    parser.add_argument("--simulator", choices=list(SIMULATORS), default="default",
                        help="make_spikes_lfp's defaults, or the harder LFP of SIMULATORS "
                             "(written to --out with _harder appended)")
    parser.add_argument("--merge", nargs="+", metavar="CSV",
                        help="only combine the rows of runs (say one per seed, run side by "
                             "side) into --out's table and figure")
    args = parser.parse_args(argv)
    out = args.out + ("" if args.simulator == "default" else f"_{args.simulator}")
    if args.merge:
        import re

        results = read_runs(args.merge, ["method", "session", "seed", "protocol"])
        lines = [open(path.removesuffix(".csv") + ".md").readline() for path in args.merge]
        minutes = "+".join(re.search(r"wall time (\d+) min", line).group(1) for line in lines)
        commands = sorted({found.group(1) for line in lines
                           if (found := re.search(r"command (`[^`]*`)", line))})
        header = (describe(args, sorted(set(results.seed)), f"{minutes} min (the runs)")
                  + f"; the runs {', '.join(commands)} (one per seed, side by side), merged "
                  "by `--merge " + " ".join(os.path.basename(path) for path in args.merge)
                  + "`.")
        write_results(out, header, summarize(results), results)
        return plot(results, f"{out}.png")
    from joblib import Parallel, delayed

    from sklearn_blend.model_selection import check_equal_budget

    check_equal_budget(GRIDS)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    seeds = args.seeds[:1] if args.quick else args.seeds
    start = time.perf_counter()
    outputs = Parallel(n_jobs=args.n_jobs)(
        delayed(run_seed)(seed, args.quick, args.variants, args.simulator, args.inner,
                          args.variants_only)
        for seed in seeds)
    results = pd.DataFrame([row for rows in outputs for row in rows])
    header = (describe(args, seeds, f"{(time.perf_counter() - start) / 60:.0f} min")
              + f"; command {command(args)}.")
    write_results(out, header, summarize(results), results)
    plot(results, f"{out}.png")


if __name__ == "__main__":
    main()

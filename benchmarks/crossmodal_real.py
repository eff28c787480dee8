"""Cross-modal distillation on a real recording: spikes teach an LFP model of running speed.

The recording is not shipped (its licence is not stated); the script reads it from a path. It
was made for the session ``83812141`` of rat r1838 in the NeuroCSUT/RatGPS repository
(``Bayesian/Code/Read_Bin_Data/Read_Bin_Data/Example_data/r1838_10-12-14/``, commit
1ce7e52d72f4c042173582224aa8581b947b5238; an Axona recording of 1201 s in an open field:
hippocampal tetrodes 5, 7 and 8 with 13 sorted units, 3 LFP channels at 250 Hz, one LED tracked
at 50 Hz). ``--axona FOLDER`` reads the raw Axona files (``83812141.{5,7,8}``, ``_{5,7,8}.cut``,
``.eeg``, ``.eeg2``, ``.eeg3``, ``.pos``, ``.set``); ``--npz FILE`` reads the same content as
arrays (``spike_times_s``, ``spike_unit_index``, ``lfp_uV`` ``(n_channels, n_samples)``,
``lfp_fs_hz``, ``pos_xy_cm`` ``(n_frames, 2)``, NaN where untracked, ``pos_fs_hz``), so any
recording with spikes, LFP and position can be given.

Protocol (the settings a new user would try, no tuning: a check, not a tuned comparison):
10-ms bins, consecutive 2-s windows; the LFP is preprocessed once as a continuous recording
(``LFPPreprocessor(sfreq=250, l_freq=1, h_freq=45, notch=50, common_average=False,
target_rate=100, zscore=False)``, :func:`sklearn_blend.lfp.preprocess_and_cut`) and cut into
the windows; speed is the smoothed (Gaussian, s.d. 0.2 s) position's speed in cm/s at each bin.
Folds are 3 contiguous blocks of windows (test on one, train on the two others), 3 seeds each.
The models are those of ``crossmodal.py`` at its sizes and default dropout (0.2): the spike
teacher, LFP-only (``strategy=None``, this one session), distilled (the default, centred
alignment), distilled with the uncentred alignment of model files of format 3 and earlier
(``LatentAlignment(centre=False)``: the model that collapsed), the supervised transformer;
beside a ridge on log band power (0.5-s windows centred on each bin) and an MLP from +-25 bins
of LFP. Scores: speed R2 on the test block (``RidgeCV`` per bin on latents fit on the training
windows), the latents' spread across test windows (near 0: a collapsed model) and each
transformer's best masked-reconstruction validation loss (LFP z-scored: 1 is predicting zero;
the teacher's is its Poisson loss on spikes).

Run ``python benchmarks/crossmodal_real.py --axona PATH`` (writes
``benchmarks/results/crossmodal_real.{csv,md}``); ``--quick`` checks the script (3 epochs).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

from common import RESULTS, mean_sd, read_runs, write_results
from crossmodal import (BAND, DISTILLED, MLP, SIZES, TEACHER, TRANSFORMER, band_power, context,
                        paired_line, spread, supervised_transformer)
from sklearn_blend import CrossModalEstimator, LFPPreprocessor, MaskedAutoencoder, SessionTrials
from sklearn_blend.distill import LatentAlignment
from sklearn_blend.lfp import preprocess_and_cut
from sklearn_blend.modalities import LFP

BIN_S, WINDOW_S, N_FOLDS = 0.01, 2.0, 3
BANDS = ((2, 8), (8, 14), (14, 30), (30, 45))
#: the model without distillation (one session here) and the alignment of model-file format 3
LFP_ONLY, UNCENTRED = "LFP-only", "distilled, uncentred alignment"
#: ``--variants``: the distilled model with other settings (rows beside the defaults')
VARIANTS = {"distilled, warm-up 600 steps": dict(distill_warmup_steps=600)}
METHODS = (TEACHER, DISTILLED, UNCENTRED, *VARIANTS, LFP_ONLY, TRANSFORMER, BAND, MLP)


def read_axona(folder, base="83812141", tetrodes=(5, 7, 8)):
    """The arrays of ``--npz`` from an Axona session's raw files (units: Tint clusters >= 1)."""
    def split(path):
        raw = open(path, "rb").read()
        start = raw.find(b"data_start")
        header = dict(line.strip().partition(" ")[::2]
                      for line in raw[:start].decode("latin1").splitlines())
        body = raw[start + len(b"data_start"):]
        end = body.rfind(b"\r\ndata_end")
        return {k: v.strip() for k, v in header.items()}, body[:end] if end >= 0 else body

    path = os.path.join(folder, base)
    settings = dict(line.strip().partition(" ")[::2]
                    for line in open(f"{path}.set", errors="ignore"))
    settings = {k: v.strip() for k, v in settings.items()}
    times, units = [], []
    for tetrode in tetrodes:
        header, body = split(f"{path}.{tetrode}")
        n = int(header["num_spikes"])
        record = np.dtype([(f"{name}{k}", kind) for k in range(4)
                           for name, kind in (("t", ">u4"), ("w", ("i1", 50)))])
        stamps = np.frombuffer(body[: n * record.itemsize], dtype=record)["t0"]
        stamps = stamps.astype(float) / float(header["timebase"].split()[0])
        cut = open(f"{path}_{tetrode}.cut", errors="ignore").read()
        clusters = np.array(cut[cut.find("Exact_cut_for"):].split("\n", 1)[1].split(), int)
        if len(clusters) != n:
            raise ValueError(f"{path}_{tetrode}.cut has {len(clusters)} cluster ids for {n} "
                             "spikes")
        for cluster in np.unique(clusters[clusters > 0]):
            times.append(stamps[clusters == cluster])
            units.append(np.full(int((clusters == cluster).sum()), len(units)))
    lfp, rate = [], None
    for k, extension in enumerate(("eeg", "eeg2", "eeg3"), start=1):
        header, body = split(f"{path}.{extension}")
        samples = np.frombuffer(body[: int(header["num_EEG_samples"])], dtype="i1")
        channel = int(settings[f"EEG_ch_{k}"])
        gain = float(settings[f"gain_ch_{channel - 1}"])
        lfp.append(samples / 128.0 * float(settings["ADC_fullscale_mv"]) / gain * 1000.0)
        rate = float(header["sample_rate"].split()[0])
    header, body = split(f"{path}.pos")
    frames = np.frombuffer(body[: int(header["num_pos_samples"]) * 20],
                           dtype=np.dtype([("t", ">u4"), ("c", ">i2", 8)]))
    xy = frames["c"][:, :2].astype(float)
    xy[xy == 1023] = np.nan  # the LED was not tracked
    return dict(spike_times_s=np.concatenate(times), spike_unit_index=np.concatenate(units),
                lfp_uV=np.array(lfp, dtype=np.float32), lfp_fs_hz=rate,
                pos_xy_cm=xy / float(header["pixels_per_metre"]) * 100,
                pos_fs_hz=float(header["sample_rate"].split()[0]))


def windows(data):
    """Spikes, preprocessed LFP (both per 10-ms bin) and speed, cut into 2-s windows, and the
    raw LFP with its rate (for band power)."""
    from scipy.ndimage import gaussian_filter1d

    lfp = np.asarray(data["lfp_uV"], dtype=np.float64).T
    rate = float(data["lfp_fs_hz"])
    per_window = int(round(WINDOW_S * rate))
    n_windows = len(lfp) // per_window
    n_bins = int(round(WINDOW_S / BIN_S))
    pre = LFPPreprocessor(sfreq=rate, l_freq=1.0, h_freq=45.0, notch=50.0,
                          common_average=False, target_rate=1 / BIN_S, zscore=False)
    cut, _, _ = preprocess_and_cut(pre, lfp, np.arange(n_windows) * per_window, per_window)
    edges = np.arange(n_windows * n_bins + 1) * BIN_S
    units = np.asarray(data["spike_unit_index"])
    spikes = np.stack([np.histogram(data["spike_times_s"][units == u], edges)[0]
                       for u in np.unique(units)], axis=-1).astype(np.float32)
    xy = np.asarray(data["pos_xy_cm"], dtype=np.float64)
    frame_rate = float(data["pos_fs_hz"])
    t = np.arange(len(xy)) / frame_rate
    tracked = np.isfinite(xy).all(1)
    xy = np.stack([np.interp(t, t[tracked], xy[tracked, k]) for k in range(2)], axis=1)
    xy = gaussian_filter1d(xy, 0.2 * frame_rate, axis=0)
    speed = np.linalg.norm(np.gradient(xy, axis=0), axis=1) * frame_rate
    centres = edges[:-1] + BIN_S / 2
    speed = np.interp(centres, t, speed).astype(np.float32)
    shape = (n_windows, n_bins)
    return (spikes.reshape(*shape, -1), cut, speed.reshape(*shape, 1),
            lfp[: n_windows * per_window].reshape(n_windows, per_window, -1), rate)


def r2(predicted, target):
    from sklearn.metrics import r2_score

    return float(r2_score(target.reshape(-1, target.shape[-1]),
                          predicted.reshape(-1, target.shape[-1])))


def ridge_r2(features, speed, train, test):
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    width = features.shape[-1]
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    model.fit(features[train].reshape(-1, width), speed[train].reshape(-1, speed.shape[-1]))
    return r2(model.predict(features[test].reshape(-1, width)), speed[test])


def run(fold, seed, arrays, quick, variants=(), variants_only=False):
    import torch
    from sklearn.model_selection import KFold
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", module="sklearn")
    spikes, lfp, speed, raw, rate = arrays
    train, test = list(KFold(N_FOLDS).split(spikes))[fold]  # contiguous blocks
    sizes = dict(SIZES, random_state=seed, **({"max_epochs": 3} if quick else {}))
    rows = []

    def add(method, latents=None, score=None, epochs=np.nan, recon=np.nan):
        rows.append(dict(method=method, fold=fold, seed=seed,
                         r2=ridge_r2(latents, speed, train, test) if score is None else score,
                         spread=np.nan if latents is None else spread(latents[test]),
                         recon=recon, epochs=epochs))

    def one(x, modality=LFP):
        return SessionTrials([x[train]], modality=modality)

    teacher = MaskedAutoencoder(**sizes).fit(SessionTrials([spikes[train]]))
    privileged = SessionTrials([spikes[train]])
    models = {name: CrossModalEstimator(teacher=teacher, **sizes, **VARIANTS[name]).fit(
        one(lfp), privileged=privileged) for name in variants}
    if not variants_only:
        add(TEACHER, teacher.transform(spikes, session=0), epochs=teacher.n_iter_,
            recon=min(teacher.net_.history[:, "valid_recon"]))
        models.update({
            LFP_ONLY: CrossModalEstimator(strategy=None, **sizes).fit(one(lfp)),
            DISTILLED: CrossModalEstimator(teacher=teacher, **sizes).fit(
                one(lfp), privileged=privileged),
            UNCENTRED: CrossModalEstimator(
                teacher=teacher, strategy=LatentAlignment(centre=False), **sizes).fit(
                one(lfp), privileged=privileged),
            TRANSFORMER: supervised_transformer(one(speed), **sizes).fit(
                one(lfp), privileged=one(speed))})
    for method, model in models.items():
        add(method, model.transform(lfp, session=0), epochs=model.n_iter_,
            recon=min(model.net_.history[:, "valid_recon"]) if method != TRANSFORMER else np.nan)
    if not variants_only:
        add(BAND, score=ridge_r2(band_power(raw, rate, lfp.shape[1], 0.5, BANDS), speed, train,
                                 test))
        features = context(lfp, 25)
        width = features.shape[-1]
        mlp = make_pipeline(StandardScaler(), MLPRegressor(
            hidden_layer_sizes=(64, 64), alpha=1e-3, early_stopping=True,
            max_iter=20 if quick else 300, random_state=seed))
        mlp.fit(features[train].reshape(-1, width), speed[train].reshape(-1))
        add(MLP, score=r2(mlp.predict(features[test].reshape(-1, width))[:, None], speed[test]),
            epochs=mlp[-1].n_iter_)
    print(f"fold {fold} seed {seed} done", flush=True)
    return rows


def summarize(results):
    lines = ["| method | speed R2 | pairs | latent spread | best masked-LFP loss | epochs |",
             "|---|---|---|---|---|---|"]
    for method in METHODS:
        rows = results[results.method == method]
        if len(rows):
            lines.append(f"| {method} | {mean_sd(rows.r2)} | {len(rows)} | "
                         f"{mean_sd(rows.spread)} | {mean_sd(rows.recon)} | "
                         f"{mean_sd(rows.epochs)} |")
    lines += ["", "Paired differences (mean +- sd over (fold, seed) pairs, wins/pairs, Wilcoxon "
              "p; optimistic, a fold's seeds share their trials):", ""]
    lines += [line for baseline in (UNCENTRED, LFP_ONLY, TRANSFORMER, BAND, MLP)
              if (line := paired_line(results, DISTILLED, baseline))]
    lines += [line for variant in VARIANTS for baseline in (DISTILLED, LFP_ONLY, TRANSFORMER)
              if (line := paired_line(results, variant, baseline))]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--axona", help="folder of the Axona session 83812141")
    source.add_argument("--npz", help="the recording as arrays (see the module docstring)")
    source.add_argument("--merge", nargs="+", metavar="CSV",
                        help="only combine the rows of runs (say of different seeds) into "
                             "--out's table")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, nargs="+", default=list(range(N_FOLDS)))
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1 fold, 1 seed, 3 epochs")
    parser.add_argument("--variants", nargs="*", default=[], choices=list(VARIANTS),
                        help="distilled models with other settings, beside the defaults")
    parser.add_argument("--variants-only", action="store_true",
                        help="only the --variants' rows (to --merge with a run of the rest)")
    parser.add_argument("--out", default=str(RESULTS / "crossmodal_real"))
    args = parser.parse_args(argv)
    if args.merge:
        results = read_runs(args.merge, ["method", "fold", "seed"])
        import re

        lines = [open(path.removesuffix(".csv") + ".md").readline() for path in args.merge]
        commands = [found.group(1) for line in lines
                    if (found := re.search(r"command (`[^`]*`)", line))]
        header = (f"{lines[0].split(' x seeds')[0]} x seeds {sorted(set(results.seed))}, "
                  f"merged from the runs {', '.join(commands) or '(commands not recorded)'} "
                  "by `--merge " + " ".join(os.path.basename(p) for p in args.merge) + "`.")
        return write_results(args.out, header, summarize(results), results)
    from joblib import Parallel, delayed

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    data = read_axona(args.axona) if args.axona else dict(np.load(args.npz))
    arrays = windows(data)
    seeds, folds = (args.seeds[:1], args.folds[:1]) if args.quick else (args.seeds, args.folds)
    start = time.perf_counter()
    outputs = Parallel(n_jobs=args.n_jobs)(delayed(run)(fold, seed, arrays, args.quick,
                                                        args.variants, args.variants_only)
                                           for fold in folds for seed in seeds)
    results = pd.DataFrame([row for rows in outputs for row in rows])
    spikes, lfp = arrays[0], arrays[1]
    header = (f"Real recording ({'Axona ' + os.path.basename(os.path.normpath(args.axona)) if args.axona else os.path.basename(args.npz)}): "
              f"{spikes.shape[-1]} units, {lfp.shape[-1]} LFP channels, {len(spikes)} windows "
              f"of {WINDOW_S:g} s in {BIN_S * 1000:g}-ms bins; target running speed; "
              f"{N_FOLDS} contiguous folds {folds} x seeds {seeds}; sizes {SIZES}, dropout 0.2"
              f"{' (quick)' if args.quick else ''}; wall time "
              f"{(time.perf_counter() - start) / 60:.0f} min on {os.cpu_count()} cores; command "
              "`python benchmarks/crossmodal_real.py --axona PATH"
              + "".join(f" --variants '{v}'" for v in args.variants)
              + (" --variants-only" if args.variants_only else "") + "`.")
    write_results(args.out, header, summarize(results), results)


if __name__ == "__main__":
    main()

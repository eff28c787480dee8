"""Seeded fits of every estimator, written to one file, to show that a change keeps outputs
bit-identical (a refactor) or to measure how far an intended change moves them.

Each case fits a small seeded model on CPU with one thread and records what a user reads of it:
predictions, rates, latents, scores, embeddings, the training curves (``history``), and the
same outputs after a save/load round trip. ``--out`` writes them (``.npz``); ``--compare``
refits and reports every output that differs from a file written before, with the largest
absolute difference. Same machine, same library versions: CPU kernels differ in the last bits
between processors.

Usage::

    python benchmarks/snapshot_fits.py --out before.npz         # on the old code
    python benchmarks/snapshot_fits.py --compare before.npz     # on the new code

It exits with status 1 when an output differs (or is missing) and writes a Markdown report
with ``--report``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

torch.set_num_threads(1)

from sklearn_blend import (  # noqa: E402
    BlendEstimator,
    BlendTeacher,
    CrossModalEstimator,
    MaskedAutoencoder,
    NedsEstimator,
    NeuronEmbedding,
    SessionTrials,
    load,
)
from sklearn_blend.datasets import make_cell_types, make_synthetic  # noqa: E402
from sklearn_blend.modalities import LFP  # noqa: E402

TINY = dict(base="ndt", hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, dropout=0.1, max_epochs=4,
            batch_size=8, warmup_steps=2)
TINY_GRU = dict(hidden_size=8, n_layers=1, dropout=0.1, max_epochs=4, batch_size=8,
                warmup_steps=2, base_params={"factor_size": 4})
TINY_LFADS = dict(hidden_size=8, dropout=0.1, max_epochs=4, batch_size=8, warmup_steps=2,
                  base_params={"factor_size": 4, "ic_encoder_size": 6, "ci_encoder_size": 4,
                               "controller_size": 4, "ic_size": 4, "co_size": 2})
TINY_SESSIONS = dict(hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, dropout=0.1,
                     max_epochs=4, batch_size=8, warmup_steps=2)
TINY_NEURONS = dict(embedding_dim=4, hidden_size=8, ffn_size=16, n_window=16, group_size=4,
                    max_epochs=3, batch_size=8, warmup_steps=1, embedding_epochs=2)


def history(net):
    """The numeric training curves of a fitted net (every logged term, per epoch)."""
    keys = sorted(k for k in net.history[-1] if k.startswith(("train_", "valid_")))
    return {f"history.{k}": np.array([row.get(k, np.nan) for row in net.history], float)
            for k in keys}


def round_trip(estimator):
    """The estimator after save and load."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.safetensors")
        estimator.save(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load(path)


def trials_data():
    X, b = make_synthetic("simple", n_trials=40, n_time=12, n_neurons=9, random_state=0)
    forward, _ = make_synthetic("simple", n_trials=40, n_time=3, n_neurons=9, random_state=1)
    return X, b, forward


def blend_cases():
    X, b, forward = trials_data()
    out = {}
    common = dict(TINY, n_heldout=3, random_state=0)
    teacher = BlendTeacher(**common).fit(X, b)
    out["teacher"] = dict(rates=teacher.predict_rates(X, b), score=teacher.score(X, b),
                          loaded=round_trip(teacher).predict_rates(X, b), **history(teacher.net_))
    for strategy in ("hard", "soft", "feature", "correlation", None):
        est = BlendEstimator(strategy=strategy, **common).fit(X, b)
        loaded = round_trip(est)
        out[f"blend.{strategy}"] = dict(
            rates=est.predict_rates(X), score=est.score(X), loaded=loaded.predict_rates(X),
            latents=est.set_params(output="latents").transform(X),
            **history(est.student_net_))
    est = BlendEstimator(strategy="hard", **dict(TINY, forward_bins=3, early_stopping=True,
                                                 early_stopping_on="heldout", n_heldout=3,
                                                 random_state=1))
    est.fit(X, b, spikes_forward=forward)
    out["blend.forward"] = dict(rates=est.predict_rates(X, forward=True), score=est.score(X),
                                **history(est.student_net_))
    est = BlendEstimator(strategy="feature", base="gru", **TINY_GRU, random_state=0).fit(X, b)
    out["blend.gru"] = dict(rates=est.predict_rates(X), loaded=round_trip(est).predict_rates(X),
                            **history(est.student_net_))
    est = BlendEstimator(strategy="hard", base="lfads", **TINY_LFADS, random_state=0).fit(X, b)
    out["blend.lfads"] = dict(rates=est.predict_rates(X), loaded=round_trip(est).predict_rates(X),
                              **history(est.student_net_))
    est = BlendEstimator(strategy="hard", **dict(TINY, base="neuprint"), random_state=0).fit(X, b)
    out["blend.neuprint"] = dict(rates=est.predict_rates(X), **history(est.student_net_))
    trial_b = np.column_stack([b.mean(axis=1), (b[:, 0, 0] > 0).astype(float)])
    trial_b[::5, 0] = np.nan
    est = BlendEstimator(strategy="correlation", categorical_behavior=2, **TINY,
                         random_state=0).fit(X, trial_b)
    out["blend.trial_behavior"] = dict(rates=est.predict_rates(X), **history(est.student_net_))
    partial = b.copy()
    partial[::4] = np.nan
    est = BlendEstimator(strategy="soft", teacher=BlendTeacher(**{**TINY, "hidden_size": 16}),
                         **TINY, random_state=0).fit(X, partial)
    out["blend.teacher_estimator"] = dict(rates=est.predict_rates(X),
                                          **history(est.student_net_))
    neds = NedsEstimator(**TINY_SESSIONS, n_heldout=3, random_state=0)
    est = BlendEstimator(strategy="hard", teacher=neds, **TINY, n_heldout=3,
                         random_state=0).fit(X, b)
    out["blend.neds_teacher"] = dict(rates=est.predict_rates(X), **history(est.student_net_))
    return out


def neds_cases():
    X, b, forward = trials_data()
    out = {}
    neds = NedsEstimator(**TINY_SESSIONS, n_heldout=3, forward_bins=3, random_state=0)
    neds.fit(X, b, spikes_forward=forward)
    loaded = round_trip(neds)
    out["neds"] = dict(predict=neds.predict(X), rates=neds.predict_rates(X, forward=True),
                       encode=neds.predict_rates(b=b), both=neds.predict_rates(X, b),
                       latents=neds.transform(X), score=neds.score(X, b),
                       loaded=loaded.predict(X), **history(neds.net_))
    labels = np.column_stack([b.mean(axis=1)[:, :1], (b[:, 0, 0] > 0).astype(float)])
    neds = NedsEstimator(**TINY_SESSIONS, categorical_behavior=[1], random_state=0).fit(X, labels)
    out["neds.labels"] = dict(predict=neds.predict(X), proba=neds.predict_proba(X)[0],
                              **history(neds.net_))
    X2, b2 = make_synthetic("simple", n_trials=20, n_time=12, n_neurons=7, random_state=3)
    multi = NedsEstimator(**TINY_SESSIONS, random_state=0).fit(
        SessionTrials([X, X2], keys=["a", "b"]), np.concatenate([b, b2]))
    X3, b3 = make_synthetic("simple", n_trials=20, n_time=12, n_neurons=5, random_state=4)
    multi.finetune(SessionTrials([X3], keys=["c"]), b3, max_epochs=2)
    out["neds.finetune"] = dict(
        rates=multi.predict_rates(SessionTrials([X3], keys=["c"])),
        predict=multi.predict(SessionTrials([X, X2], keys=["a", "b"])), **history(multi.net_))
    return out


def session_cases():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(40, 12, 3))
    spikes = rng.poisson(np.exp(latent @ rng.normal(size=(3, 9)) * 0.5)).astype(float)
    lfp = latent @ rng.normal(size=(3, 5)) + rng.normal(size=(40, 12, 5))
    out = {}
    auto = MaskedAutoencoder(**TINY_SESSIONS, random_state=0).fit(spikes)
    out["autoencoder.spikes"] = dict(latents=auto.transform(spikes),
                                     loaded=round_trip(auto).transform(spikes),
                                     **history(auto.net_))
    auto = MaskedAutoencoder(modality="lfp", **TINY_SESSIONS, random_state=0).fit(lfp)
    new_lfp = lfp[:, :, :4] * 2.0
    auto.add_sessions(SessionTrials([new_lfp], keys=["new"], modality=LFP), max_epochs=2)
    out["autoencoder.lfp"] = dict(
        latents=auto.transform(lfp, session=0),
        new=auto.transform(SessionTrials([new_lfp], keys=["new"], modality=LFP)),
        **history(auto.net_))
    for alignment in ("mse", "cosine", None):
        est = crossmodal(alignment, teacher_hidden_size=16 if alignment == "cosine" else None,
                         **TINY_SESSIONS, random_state=0)
        est = fit_crossmodal(est, lfp, spikes)
        out[f"crossmodal.{alignment}"] = dict(latents=est.transform(lfp),
                                              loaded=round_trip(est).transform(lfp),
                                              **history(est.net_))
    teacher = MaskedAutoencoder(**TINY_SESSIONS, random_state=5).fit(spikes)
    est = fit_crossmodal(crossmodal("mse", teacher=teacher, **TINY_SESSIONS, random_state=0),
                         lfp, spikes)
    out["crossmodal.fitted_teacher"] = dict(latents=est.transform(lfp), **history(est.net_))
    return out


def crossmodal(alignment, **params):
    """A CrossModalEstimator aligning latents by ``alignment`` ("mse", "cosine" or None), in
    the API of the code at hand (``strategy=`` since the estimator skeleton, ``alignment=``
    before)."""
    if "strategy" not in CrossModalEstimator().get_params():
        return CrossModalEstimator(alignment=alignment, **params)
    from sklearn_blend.distill import LatentAlignment

    strategy = None if alignment is None else LatentAlignment(metric=alignment)
    return CrossModalEstimator(strategy=strategy, **params)


def fit_crossmodal(estimator, lfp, spikes):
    keyword = "privileged" if "strategy" in estimator.get_params() else "spikes"
    return estimator.fit(lfp, **{keyword: spikes})


def neuron_cases():
    cells = make_cell_types(n_sessions=2, n_neurons=12, n_frames=64, random_state=0)
    out = {}
    for name, params in (("hard", dict(strategy="hard")), ("feature", dict(strategy="feature")),
                         ("plain", dict(strategy=None)),
                         ("behavior", dict(strategy=None, behavior_inputs=True))):
        emb = NeuronEmbedding(**params, **TINY_NEURONS, random_state=0).fit(cells.X[:18])
        out[f"neurons.{name}"] = dict(
            embeddings=emb.embeddings_, new=emb.transform(cells.X[18:]),
            loaded=round_trip(emb).transform(cells.X[:18]), **history(emb.student_net_))
    return out


def random_state_cases():
    """Fits seeded with a RandomState (consumed by the draws) instead of an int."""
    X, b, _ = trials_data()
    cells = make_cell_types(n_sessions=2, n_neurons=12, n_frames=64, random_state=0)
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(40, 12, 3))
    spikes = rng.poisson(np.exp(latent @ rng.normal(size=(3, 9)) * 0.5)).astype(float)
    lfp = latent @ rng.normal(size=(3, 5)) + rng.normal(size=(40, 12, 5))
    state = np.random.RandomState
    blend = BlendEstimator(strategy="soft", **TINY, random_state=state(3)).fit(X, b)
    emb = NeuronEmbedding("hard", **TINY_NEURONS, random_state=state(3)).fit(cells.X[:18])
    cross = fit_crossmodal(crossmodal("mse", **TINY_SESSIONS, random_state=state(3)), lfp,
                           spikes)
    return {"random_state.blend": dict(rates=blend.predict_rates(X)),
            "random_state.neurons": dict(new=emb.transform(cells.X)),
            "random_state.crossmodal": dict(latents=cross.transform(lfp))}


CASES = {"blend": blend_cases, "neds": neds_cases, "sessions": session_cases,
         "neurons": neuron_cases, "random_state": random_state_cases}


def run(groups):
    results = {}
    for group in groups:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for case, outputs in CASES[group]().items():
                for name, value in outputs.items():
                    results[f"{case}/{name}"] = np.asarray(value)
        print(f"{group}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return results


def compare(before, after):
    """Rows ``(output, status, largest absolute difference)`` for every output of either."""
    rows = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            rows.append((key, "missing now", None))
        elif key not in before:
            rows.append((key, "new", None))
        else:
            a, b = before[key], after[key]
            if a.shape != b.shape:
                rows.append((key, f"shape {a.shape} -> {b.shape}", None))
            elif np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                rows.append((key, "identical", 0.0))
            else:
                diff = np.nanmax(np.abs(a.astype(float) - b.astype(float)))
                rows.append((key, "differs", float(diff)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the outputs of this code to this .npz file")
    parser.add_argument("--compare", help="compare with the outputs in this .npz file")
    parser.add_argument("--report", help="write the comparison as Markdown to this file")
    parser.add_argument("--groups", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rename", nargs="+", default=[], metavar="OLD=NEW",
                        help="text of output names that an intended change renamed (say "
                             "history.train_mtm=history.train_recon): the outputs are "
                             "compared under the new names, and the renames reported")
    args = parser.parse_args(argv)
    if not (args.out or args.compare):
        parser.error("give --out, --compare or both")
    results = run(args.groups)
    if args.out:
        np.savez(args.out, **results)
        print(f"wrote {len(results)} outputs to {args.out}")
    if not args.compare:
        return 0
    before = dict(np.load(args.compare, allow_pickle=False))
    renames = [tuple(item.split("=", 1)) for item in args.rename]
    for old, new in renames:
        before = {key.replace(old, new): value for key, value in before.items()}
    rows = compare(before, results)
    changed = [row for row in rows if row[1] != "identical"]
    lines = [f"Seeded fits compared with `{args.compare}` "
             f"(`python benchmarks/snapshot_fits.py --compare {args.compare}`): "
             f"{len(rows) - len(changed)} of {len(rows)} outputs bit-identical"
             + (f" (names renamed: {', '.join(f'{o} -> {n}' for o, n in renames)})"
                if renames else "") + ".", ""]
    if changed:
        lines += ["| output | status | largest abs. difference |", "|---|---|---|"]
        lines += [f"| {k} | {s} | {'' if d is None else f'{d:.3g}'} |" for k, s, d in changed]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.report:
        with open(args.report, "w") as file:
            file.write(report)
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())

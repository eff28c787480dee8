"""Why a multi-task NEDS decodes or encodes worse than a single-task one on MC_Maze_Small: its
learning curves per task and the share of the gradient each task sends into the shared layers.

On the folds and seeds given (the folds of ``neds_mc_maze_small.py``), the multi-task NEDS and
the decoding-only and encoding-only NEDS of that script (``NEDS_PARAMS``, ``monitor="task"``,
``max_epochs`` 300) are fitted on the fold's training trials, and two things are read:

* **learning curves**: each fit's validation task metrics per epoch (``valid_decoding``,
  ``valid_encoding`` of ``net_.history``, validation trials drawn from the training trials);
  the table gives them at the selected epoch and at epochs 25, 50, 100 and 200 (where the fit
  got there), the plot the whole curves of the first (fold, seed);
* **gradient share**: for the multi-task model, the gradient of the encoding loss (every spike
  token hidden, Poisson NLL) and of the decoding loss (every behavior token hidden, MSE) with
  respect to the shared transformer weights (``layers.*``), on all training trials in
  evaluation mode (no dropout), before training (a fresh initialisation of the same recipe)
  and after (the kept weights): their norms, the encoding share ``|g_enc| / (|g_enc| +
  |g_dec|)`` and the cosine between them (negative: the tasks pull the shared weights apart).

Run ``python benchmarks/neds_diagnostics.py`` (``--folds 0 1 --seeds 0``); writes
``benchmarks/results/neds_diagnostics.{csv,md,png}``. ``--quick`` checks the script (5 epochs).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from common import RESULTS, save_figure, write_results
from neds_mc_maze_small import FORWARD_BINS, N_HELDOUT, NEDS_PARAMS
from sklearn_blend import NedsEstimator
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.evaluation import split_arrays

#: the rows: multi-task, and the single-task NEDS of the same size
MODELS = {"multi-task": {}, "decoding only": {"scheme_probs": {"decoding": 1.0}},
          "encoding only": {"scheme_probs": {"encoding": 1.0}}}
CHECKPOINTS = (25, 50, 100, 200)


def task_gradients(model, X, b, forward):
    """``{task: gradient}`` of the shared transformer weights (flattened) for the encoding and
    decoding schemes on ``X``, ``b`` (training trials), in evaluation mode."""
    import torch
    from sklearn.base import clone
    from skorch.utils import to_tensor

    from sklearn_blend.training.objective import run_model, unpack

    probe = clone(model)  # reads the trials as fit does, without touching ``model``
    probe.set_params(max_epochs=1)
    data, _ = probe._read_fit_data(X, b, spikes_forward=forward)
    net = model.net_
    module, objective = net.module_, net.criterion_
    inputs, targets, _ = unpack(to_tensor(data, device="cpu"))
    n, n_time = inputs["spikes"].shape[:2]
    shared = [p for name, p in module.named_parameters() if ".layers." in f".{name}"]
    gradients = {}
    module.eval()
    for task in ("encoding", "decoding"):
        mask = torch.zeros(n, n_time, len(module.model.config.streams), dtype=torch.bool)
        if task == "encoding":
            mask[..., 0] = True
        else:
            mask[..., 1:] = True
        view = objective.masking(inputs, targets, {"valid_mask": mask}, training=False)
        terms = objective(run_model(module, view.inputs, "float32"), view)
        loss = terms["recon_spikes"] if task == "encoding" else terms["recon_behavior"]
        grads = torch.autograd.grad(loss, shared)
        gradients[task] = torch.cat([g.flatten() for g in grads]).double()
    return gradients


def gradient_row(gradients):
    encoding, decoding = gradients["encoding"], gradients["decoding"]
    norm_e, norm_d = float(encoding.norm()), float(decoding.norm())
    return dict(grad_norm_encoding=norm_e, grad_norm_decoding=norm_d,
                encoding_share=norm_e / (norm_e + norm_d),
                grad_cosine=float(encoding @ decoding / (norm_e * norm_d)))


def fresh(model):
    """A fitted-like copy of ``model`` with freshly initialised weights of the same recipe."""
    import copy

    from sklearn_blend.training import core

    start = copy.copy(model)
    config = core.training_config(model, model.device_)
    start.net_ = core.initialized_net(model._net_builder("net_", None), config, "NEDS")
    return start


def run(fold, seed, train, test, params):
    data = load_mc_maze_small()
    X, b, forward = split_arrays(data)
    rows, curves = [], []
    for name, extra in MODELS.items():
        start = time.perf_counter()
        model = NedsEstimator(n_heldout=N_HELDOUT, forward_bins=FORWARD_BINS, random_state=seed,
                              **dict(NEDS_PARAMS, **extra, **params)).fit(
            X[train], b[train], spikes_forward=forward[train])
        history = model.net_.history
        stopper = dict(model.net_.callbacks_)["early_stopping"]
        best = stopper.best_epoch_ or len(history)
        row = dict(model=name, fold=fold, seed=seed, epochs=len(history), best_epoch=best,
                   seconds=time.perf_counter() - start)
        for task in ("decoding", "encoding"):
            key = f"valid_{task}"
            if key not in history[-1]:
                continue
            values = np.asarray(history[:, key], dtype=float)
            row[f"{task}_best"] = values[best - 1]
            for epoch in CHECKPOINTS:
                if epoch <= len(values):
                    row[f"{task}_at_{epoch}"] = values[epoch - 1]
            curves += [dict(model=name, fold=fold, seed=seed, task=task, epoch=e + 1, value=v)
                       for e, v in enumerate(values)]
        if name == "multi-task":
            for when, fitted in (("init", fresh(model)), ("trained", model)):
                row.update({f"{k}_{when}": v for k, v in gradient_row(task_gradients(
                    fitted, X[train], b[train], forward[train])).items()})
        rows.append(row)
    return rows, curves


def summarize(results):
    lines = ["| model | fits | selected epoch | valid decoding R2 at it | valid encoding "
             "bits/spike at it | " + " | ".join(f"decoding / encoding at {e}"
                                               for e in CHECKPOINTS) + " |",
             "|---|---|---|---|---|" + "---|" * len(CHECKPOINTS)]

    def cell(rows, column):
        values = rows.get(column, pd.Series(dtype=float)).dropna()
        return f"{values.mean():.3f}" if len(values) else "–"

    for name, rows in results.groupby("model", sort=False):
        lines.append(f"| {name} | {len(rows)} | {rows.best_epoch.mean():.0f} | "
                     f"{cell(rows, 'decoding_best')} | {cell(rows, 'encoding_best')} | "
                     + " | ".join(f"{cell(rows, f'decoding_at_{e}')} / "
                                  f"{cell(rows, f'encoding_at_{e}')}" for e in CHECKPOINTS)
                     + " |")
    multi = results[results.model == "multi-task"]
    lines += ["", "Gradient of each task's loss with respect to the shared transformer weights "
              "(multi-task NEDS, all training trials, evaluation mode; mean over fits):", "",
              "| weights | norm, encoding loss | norm, decoding loss | encoding share | cosine |",
              "|---|---|---|---|---|"]
    for when, label in (("init", "fresh initialisation"), ("trained", "kept weights")):
        lines.append(f"| {label} | {cell(multi, f'grad_norm_encoding_{when}')} | "
                     f"{cell(multi, f'grad_norm_decoding_{when}')} | "
                     f"{cell(multi, f'encoding_share_{when}')} | "
                     f"{cell(multi, f'grad_cosine_{when}')} |")
    return "\n".join(lines)


def plot(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = curves[(curves.fold == curves.fold.min()) & (curves.seed == curves.seed.min())]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, task in zip(axes, ("decoding", "encoding")):
        for name, rows in first[first.task == task].groupby("model", sort=False):
            ax.plot(rows.epoch, rows.value, label=name)
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("validation decoding R2")
    save_figure(fig, axes[1], path, "validation encoding bits/spike")


def main(argv=None):
    from sklearn.model_selection import KFold

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quick", action="store_true", help="5 epochs: checks the script")
    parser.add_argument("--out", default=str(RESULTS / "neds_diagnostics"))
    args = parser.parse_args(argv)
    splits = list(KFold(5, shuffle=True, random_state=0).split(np.arange(75)))
    params = dict(max_epochs=5) if args.quick else {}
    start = time.perf_counter()
    rows, curves = [], []
    for seed in args.seeds:
        for fold in args.folds:
            train, test = splits[fold]
            fold_rows, fold_curves = run(fold, seed, train, test, params)
            rows += fold_rows
            curves += fold_curves
    results, curves = pd.DataFrame(rows), pd.DataFrame(curves)
    quick = ", quick: 5 epochs" if args.quick else ""
    header = (f"MC_Maze_Small, NEDS ({NEDS_PARAMS}, monitor='task'{quick}), "
              f"folds {args.folds} x seeds {args.seeds}; wall time "
              f"{(time.perf_counter() - start) / 60:.0f} min; command `python "
              f"benchmarks/neds_diagnostics.py --folds {' '.join(map(str, args.folds))} "
              f"--seeds {' '.join(map(str, args.seeds))}`.")
    write_results(args.out, header, summarize(results), results)
    curves.to_csv(f"{args.out}_curves.csv", index=False)
    plot(curves, f"{args.out}.png")


if __name__ == "__main__":
    main()

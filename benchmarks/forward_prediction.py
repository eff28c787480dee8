"""Why a model's forward prediction (fp-bps) falls below each neuron's mean rate on MC_Maze_Small.

fp-bps scores the rates of the 40 bins (200 ms) after the window against a null that predicts
each neuron's mean count over the *test* trials' forward bins: the null knows the test level
of every neuron. A model trained on 60 trials must guess both that level and the time course.
For a plain model of one base (``--base``, the NDT by default, at the package defaults) fit on
each fold's 60 training trials, this script scores on the same 15 test trials:

* ``model``: the model's forward rates (the fp-bps of the main tables);
* ``model, level from training``: the same rates, each neuron's scaled by its observed mean
  forward count over the training trials divided by the model's mean forward rate there
  (training trials only: a calibration a user could do);
* ``model on its own training trials``: its fp-bps on the trials it was fit on (a gap to the
  test value is overfitting of the forward readout);
* ``forward PSTH of the training trials``: each neuron's mean count per forward bin over the
  training trials, smoothed over bins by a Gaussian of 50 ms sd (:data:`PSTH_SD_BINS` bins of
  5 ms), the same for every test trial (what the trial-average time course gives);
* ``mean rate of the training trials``: each neuron's mean forward count over the training
  trials, constant (what not knowing the test level costs by itself).

Run ``python benchmarks/forward_prediction.py`` (5 folds x 3 seeds; about 10 minutes on 2 cores
for the NDT); it writes ``benchmarks/results/forward_prediction[_<base>].{csv,md}``. ``--quick``
checks the script.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from scipy.ndimage import gaussian_filter1d

from common import BASE_LABELS, fold_arguments, mean_sd, paired_text, run_folds, write_results
from sklearn_blend import metrics
from sklearn_blend.datasets import load_mc_maze_small
from sklearn_blend.evaluation import evaluate_split, split_arrays
from sklearn_blend.model_selection import paired_differences

#: sd of the Gaussian that smooths the training PSTH, in 5 ms bins
PSTH_SD_BINS = 10

PREDICTIONS = ("model", "model, level from training", "model on its own training trials",
               "forward PSTH of the training trials", "mean rate of the training trials")


def forward_scores(train_rates, test_rates, train_forward, test_forward):
    """fp-bps of every entry of :data:`PREDICTIONS`, from a model's forward rates
    ``(trials, forward bins, neurons)`` on the training and test trials and the observed
    forward counts of both."""
    observed = train_forward.mean(axis=(0, 1))
    predicted = np.maximum(train_rates.mean(axis=(0, 1)), 1e-9)
    psth = gaussian_filter1d(train_forward.mean(axis=0), PSTH_SD_BINS, axis=0, mode="nearest")
    psth = np.broadcast_to(psth, test_forward.shape)
    # a neuron silent in the training trials' forward bins gets a tiny rate, not zero
    floor = 1e-3 * max(float(observed.mean()), 1e-9)
    return {
        "model": metrics.fp_bps(test_rates, test_forward),
        "model, level from training": metrics.fp_bps(
            np.maximum(test_rates * (observed / predicted), floor), test_forward),
        "model on its own training trials": metrics.fp_bps(train_rates, train_forward),
        "forward PSTH of the training trials": metrics.fp_bps(np.maximum(psth, floor),
                                                              test_forward),
        "mean rate of the training trials": metrics.fp_bps(
            np.broadcast_to(np.maximum(observed, floor), test_forward.shape), test_forward),
    }


def run(fold, seed, train, test, base, params, n_threads):
    import torch

    torch.set_num_threads(n_threads)
    warnings.filterwarnings("ignore", module="sklearn")
    data = load_mc_maze_small()
    X, _, forward = split_arrays(data)
    result = evaluate_split(data, train, test, ["ndt"], params=dict(params, base=base),
                            seed=seed)[0]
    heldin = X[..., : data.spikes.shape[-1]]
    n_forward = forward.shape[1]
    train_rates = result.model.predict_rates(heldin[train], forward=True)[:, -n_forward:]
    # the test trials' forward rates are those evaluate_split scored (its fp-bps)
    scores = forward_scores(train_rates, result.forward_rates, forward[train], forward[test])
    return [dict(prediction=name, fold=fold, seed=seed, fp_bps=value, base=base,
                 epochs=result["epochs"]) for name, value in scores.items()]


def summarize(results):
    lines = ["| prediction | fp-bps | minus model |", "|---|---|---|"]
    paired = results.rename(columns={"prediction": "method"})
    for name in PREDICTIONS:
        rows = results[results.prediction == name]
        if rows.empty:
            continue
        cell = ""
        if name != "model":
            d = paired_differences(paired, name, "model", "fp_bps")
            cell = paired_text(d)
        lines.append(f"| {name} | {mean_sd(rows.fp_bps)} | {cell} |")
    lines += ["", "Mean +- sd over (fold, seed) pairs; differences paired with the model of "
              "the same (fold, seed): mean +- sd, wins/pairs, Wilcoxon p (optimistic: the "
              "pairs share training trials). The forward PSTH and the training mean rate do "
              "not depend on the seed."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="ndt", choices=sorted(BASE_LABELS))
    args = fold_arguments(parser, "forward_prediction").parse_args(argv)
    if args.base != "ndt" and args.out.endswith("forward_prediction"):
        args.out += f"_{args.base}"
    results, n_folds, seeds = run_folds(run, args, args.base)
    header = (f"MC_Maze_Small, forward prediction (40 bins) of the plain "
              f"{BASE_LABELS[args.base]} at the package defaults, {n_folds}-fold CV x "
              f"{len(seeds)} seeds{' (quick: 5 epochs)' if args.quick else ''}; command "
              f"`python benchmarks/forward_prediction.py"
              f"{'' if args.base == 'ndt' else ' --base ' + args.base}`.")
    write_results(args.out, header, summarize(results), results)


if __name__ == "__main__":
    main()

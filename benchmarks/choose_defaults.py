"""How the default base and strategy of ``BlendEstimator()`` were chosen, as a rule anyone can
rerun on the stored results, and the check on the folds that took no part in the choice.

Inputs: the fixed-settings runs of ``nlb_mc_maze_small.py`` on MC_Maze_Small (5 trial-wise
folds x 3 seeds; ``--base ndt``, ``--base gru``, ``--base lfads``; each base's plain model and,
where run, its students) and, for the synthetic families, ``synthetic_table4.py``'s runs.

The rule (NLB's task metric first, then cost):

1. On the selection folds (``--chosen-on``, folds 0 and 1) rank the bases by the co-bps of
   their plain model (``strategy=None``); a base is kept only if its plain model is at or above
   the smoothing baseline there. Among those, the highest co-bps wins unless a kept base within
   ``--tolerance`` co-bps of it trains in less than half the time.
2. On the same folds, the chosen base's student with the highest co-bps is the default strategy
   (Vel-R2 is reported beside it).
3. The claim is made on the other folds only: the chosen default against smoothing, the plain
   model and every other student there (paired over (fold, seed)).

Run ``python benchmarks/choose_defaults.py`` (seconds: it fits nothing); it prints and writes
``benchmarks/results/choose_defaults.md``.
"""

from __future__ import annotations

import argparse

import pandas as pd

from common import BASE_LABELS, RESULTS, paired_text, smoothing_per_seed
from sklearn_blend.model_selection import paired_differences

#: the fixed-settings MC_Maze_Small runs of each base (``nlb_mc_maze_small.py --base B``)
RUNS = {"ndt": "nlb_mc_maze_small", "gru": "nlb_mc_maze_small_gru",
        "lfads": "nlb_mc_maze_small_lfads"}


def load(results=RESULTS):
    """Rows of every base's run, with a ``base`` column; smoothing once (it has no base)."""
    frames = []
    for base, name in RUNS.items():
        path = results / f"{name}.csv"
        if path.exists():
            frame = pd.read_csv(path).assign(base=base)
            frames.append(frame if not frames else frame[frame.method != "smoothing"])
    if not frames:
        raise SystemExit(f"no results of {sorted(RUNS.values())} in {results}")
    rows = pd.concat(frames, ignore_index=True)
    rows.loc[rows.method == "smoothing", "base"] = "none"
    return rows


def choose(rows, chosen_on, tolerance):
    """The chosen (base, strategy) and the lines of the selection table."""
    select = rows[rows.fold.isin(chosen_on)]
    smoothing = select[select.method == "smoothing"].co_bps.mean()
    lines = [f"Selection on folds {sorted(chosen_on)} (means over those folds and every seed "
             "run; seconds: training time per fit on one core):", "",
             "| base | model | co-bps | Vel-R2 | s per fit | kept |", "|---|---|---|---|---|---|",
             f"| – | smoothing (NLB baseline) | {smoothing:.3f} | "
             f"{select[select.method == 'smoothing'].vel_r2.mean():.3f} | "
             f"{select[select.method == 'smoothing'].seconds.mean():.0f} | |"]
    plain = select[select.method == "ndt"].groupby("base")[["co_bps", "vel_r2", "seconds"]].mean()
    for base, row in plain.sort_values("co_bps", ascending=False).iterrows():
        kept = "yes" if row.co_bps >= smoothing else "no: below smoothing"
        lines.append(f"| {BASE_LABELS[base]} | plain (`strategy=None`) | {row.co_bps:.3f} | "
                     f"{row.vel_r2:.3f} | {row.seconds:.0f} | {kept} |")
    kept = plain[plain.co_bps >= smoothing].sort_values("co_bps", ascending=False)
    if kept.empty:
        raise SystemExit("no base's plain model reaches smoothing on the selection folds")
    best = kept.index[0]
    faster = kept[(kept.co_bps >= kept.co_bps.iloc[0] - tolerance)
                  & (kept.seconds < kept.seconds.iloc[0] / 2)]
    base = faster.index[0] if len(faster) else best
    students = select[(select.base == base) & ~select.method.isin(["ndt", "teacher",
                                                                   "smoothing"])]
    if students.empty:
        raise SystemExit(f"the chosen base {base!r} has no students on folds "
                         f"{sorted(chosen_on)}: run them first (nlb_mc_maze_small.py --base "
                         f"{base})")
    means = students.groupby("method")[["co_bps", "vel_r2", "seconds"]].mean()
    for method, row in means.sort_values("co_bps", ascending=False).iterrows():
        lines.append(f"| {BASE_LABELS[base]} | student `{method}` | {row.co_bps:.3f} | "
                     f"{row.vel_r2:.3f} | {row.seconds:.0f} | |")
    strategy = means.co_bps.idxmax()
    lines += ["", f"Chosen: `base=\"{base}\"` (the highest plain co-bps at or above smoothing; "
              f"no base within {tolerance} co-bps of it trains in half the time), "
              f"`strategy=\"{strategy}\"` (its student with the highest co-bps)."]
    return base, strategy, lines


def held_out(rows, base, strategy, chosen_on):
    """The chosen default against the other methods on the folds left out of the choice."""
    test = smoothing_per_seed(rows[~rows.fold.isin(chosen_on)])
    test = test.assign(method=[f"{b}:{m}" if m != "smoothing" else m
                               for b, m in zip(test.base, test.method)])
    chosen = f"{base}:{strategy}"
    folds = sorted(set(test.fold))
    lines = ["", f"Held out from the choice (folds {folds}): the default minus each other "
             "model, paired over (fold, seed):", ""]
    others = ["smoothing", f"{base}:ndt"] + sorted(
        m for m in set(test.method) if m not in (chosen, "smoothing", f"{base}:ndt")
        and not m.endswith(":teacher"))
    for other in others:
        parts = []
        for metric, name in (("co_bps", "co-bps"), ("vel_r2", "Vel-R2")):
            d = paired_differences(test, chosen, other, metric)
            if d["n"]:
                parts.append(f"{name} {paired_text(d)}")
        if parts:
            label = other if other == "smoothing" else "{} {}".format(
                BASE_LABELS[other.split(":")[0]],
                "plain" if other.endswith(":ndt") else other.split(":")[1])
            lines.append(f"- {BASE_LABELS[base]} {strategy} - {label}: " + "; ".join(parts))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chosen-on", type=int, nargs="+", default=[0, 1], metavar="K")
    parser.add_argument("--tolerance", type=float, default=0.01,
                        help="co-bps a faster base may give up [0.01]")
    parser.add_argument("--out", default=str(RESULTS / "choose_defaults"))
    args = parser.parse_args(argv)
    rows = load()
    if not args.chosen_on or set(rows.fold) <= set(args.chosen_on):
        parser.error("--chosen-on must name some folds and leave others out")
    base, strategy, lines = choose(rows, args.chosen_on, args.tolerance)
    lines += held_out(rows, base, strategy, args.chosen_on)
    header = ("MC_Maze_Small: the default base and strategy chosen by a rule on folds "
              f"{sorted(args.chosen_on)} of the fixed-settings runs "
              f"({', '.join(f'`{name}.csv`' for name in RUNS.values())}), checked on the other "
              "folds; `python benchmarks/choose_defaults.py`. The runs' settings are in their "
              "own tables (the GRU students ran at alpha 0.5).")
    text = "\n".join(lines)
    print(header, "", text, sep="\n")
    with open(f"{args.out}.md", "w") as handle:
        handle.write(f"{header}\n\n{text}\n")
    return base, strategy


if __name__ == "__main__":
    main()

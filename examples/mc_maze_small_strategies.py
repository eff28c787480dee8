"""Fit the plain NDT and the four BLEND students on real MC_Maze_Small; print Vel-R2 for each.

One trial-wise split of the 75 bundled training trials (60 to train, 15 to test), one seed,
about 5 minutes on 2 CPU cores. Every model, the teacher included, trains on the 60 training
trials only; velocity decoding (NLB's ridge protocol: decoder fit on the training trials'
rates) and masked bits/spike are measured on the 15 test trials. A single split of 15 trials
is noisy (+- 0.05 Vel-R2): the README's table, from ``benchmarks/mc_maze_small_cv.py``, gives
5-fold means over 3 seeds.

Run: ``python examples/mc_maze_small_strategies.py``
"""

import time
import warnings

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, train_test_split

from sklearn_blend import BlendEstimator, PerBin
from sklearn_blend.datasets import load_mc_maze_small

warnings.filterwarnings("ignore", module="sklearn.linear_model")  # ill-conditioned tiny alphas


def velocity_r2(train_rates, train_b, test_rates, test_b):
    decoder = PerBin(GridSearchCV(Ridge(), {"alpha": np.logspace(-4, 0, 9)}))
    return decoder.fit(train_rates, train_b).score(test_rates, test_b)


def main():
    data = load_mc_maze_small()
    X, b = data.spikes, data.behavior
    train, test = train_test_split(np.arange(len(X)), test_size=15, random_state=0)
    print(f"MC_Maze_Small: {X.shape[0]} trials x {X.shape[1]} bins x {X.shape[2]} neurons; "
          f"training on {len(train)} trials, scoring on {len(test)} unseen trials\n")
    print(f"{'model':<26}{'Vel-R2':>8}{'bits/spike':>12}{'seconds':>9}")
    teacher = None
    for strategy in (None, "hard", "soft", "feature", "correlation"):
        start = time.perf_counter()
        est = BlendEstimator(strategy=strategy, random_state=0, verbose=1)
        est.fit(X[train], b[train])
        r2 = velocity_r2(est.transform(X[train]), b[train], est.transform(X[test]), b[test])
        label = "NDT (no behavior)" if strategy is None else f"BLEND student, {strategy}"
        print(f"{label:<26}{r2:>8.3f}{est.score(X[test]):>12.3f}"
              f"{time.perf_counter() - start:>9.0f}")
        teacher = est.teacher_ or teacher
    r2 = velocity_r2(teacher.predict_rates(X[train], b[train]), b[train],
                     teacher.predict_rates(X[test], b[test]), b[test])
    print(f"{'teacher (sees behavior)':<26}{r2:>8.3f}{teacher.score(X[test], b[test]):>12.3f}")
    print("\nThe teacher takes behavior as input, so its Vel-R2 is an upper reference, not a "
          "decode.")


if __name__ == "__main__":
    main()

"""How much behavior the simulated LFP carries against the simulated spikes (make_spikes_lfp).

For ``random_state`` 0, 1 and 2 at the generator's defaults (and with ``lfp_noise=0``), hand
velocity is decoded per bin by ``RidgeCV(alphas=np.logspace(-3, 3, 13))`` fit on the (trial,
bin) rows of trials 0-149 and scored (R2, uniform average over x and y) on trials 150-199, from
(a) spikes smoothed by a Gaussian of s.d. 25 ms and (b) LFP low-passed at 50 Hz (4th-order
Butterworth, zero phase) and resampled to the bin rate, each z-scored with the training trials'
statistics. The numbers in ``make_spikes_lfp``'s docstring and the README come from
``python benchmarks/spikes_lfp_information.py`` (under a minute on 2 cores); it writes
``benchmarks/results/spikes_lfp_information.{csv,md}``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d
from scipy.signal import butter, resample_poly, sosfiltfilt
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score

from common import RESULTS, mean_sd, write_results
from sklearn_blend.datasets import make_spikes_lfp

N_TRAIN = 150


def decode(features, velocity):
    """Test R2 of a per-bin ridge fit on the first N_TRAIN trials."""
    train, test = slice(0, N_TRAIN), slice(N_TRAIN, None)
    mean = features[train].mean(axis=(0, 1))
    sd = features[train].std(axis=(0, 1)) + 1e-8
    z = (features - mean) / sd
    width = z.shape[-1]
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(z[train].reshape(-1, width),
                                                       velocity[train].reshape(-1, 2))
    return float(r2_score(velocity[test].reshape(-1, 2),
                          ridge.predict(z[test].reshape(-1, width))))


def main():
    rows = []
    for noise in (1.0, 0.0):
        for seed in (0, 1, 2):
            data = make_spikes_lfp(random_state=seed, lfp_noise=noise)
            factor = int(data.lfp_rate * data.bin_size_ms / 1000)
            sos = butter(4, 50.0, fs=data.lfp_rate, output="sos")
            lfp = resample_poly(sosfiltfilt(sos, data.lfp, axis=1), 1, factor, axis=1)
            spikes = gaussian_filter1d(data.spikes, 25.0 / data.bin_size_ms, axis=1)
            for name, features in (("spikes", spikes), ("LFP", lfp)):
                if name == "spikes" and noise == 0.0:
                    continue  # lfp_noise does not touch the spikes
                label = name if noise else "LFP, lfp_noise=0"
                rows.append(dict(signal=label, seed=seed, r2=decode(features, data.behavior)))
    results = pd.DataFrame(rows)
    lines = ["| signal | seed 0 | seed 1 | seed 2 | mean +- sd |", "|---|---|---|---|---|"]
    for label, part in results.groupby("signal", sort=False):
        values = part.sort_values("seed").r2.to_numpy()
        lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in values)
                     + f" | {mean_sd(values)} |")
    header = ("Velocity decoding R2 per bin (RidgeCV, 150 training / 50 test trials) from the "
              "signals of make_spikes_lfp at its defaults; command `python "
              "benchmarks/spikes_lfp_information.py`.")
    write_results(str(RESULTS / "spikes_lfp_information"), header, "\n".join(lines), results)


if __name__ == "__main__":
    main()

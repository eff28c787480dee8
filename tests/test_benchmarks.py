"""Building blocks of the benchmark scripts (the scripts themselves run for minutes to hours)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    """Execute ``benchmarks/<name>.py`` as a fresh module (not registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def load_benchmark(monkeypatch):
    """Load a benchmark script by path. Its ``from common import ...`` finds
    ``benchmarks/common.py``, put in sys.modules only for the test (as running the script
    puts its folder on sys.path); sys.path itself is left alone."""
    monkeypatch.setitem(sys.modules, "common", _load("common"))
    return _load


@pytest.fixture
def cell_identity(load_benchmark):
    return load_benchmark("cell_identity")


@pytest.fixture
def precision_quality(load_benchmark):
    return load_benchmark("precision_quality")


@pytest.fixture
def speed(load_benchmark):
    return load_benchmark("speed")


@pytest.fixture
def synthetic_table4(load_benchmark):
    return load_benchmark("synthetic_table4")


def test_reference_masking_zeroes_whole_bins_and_scores_them_and_the_heldout_neurons(speed):
    torch.manual_seed(0)
    spikes = torch.poisson(torch.full((8, 30, 5), 2.0)) + 1.0
    heldout = torch.ones(8, 30, 2)
    masked, labels = speed.reference_mask_batch(spikes, heldout)
    hidden = masked[..., :5] == 0
    assert torch.equal(hidden.all(-1), hidden.any(-1))  # whole bins
    assert 0 < hidden.float().mean() < 0.6
    assert torch.equal(masked[..., 5:], torch.zeros(8, 30, 2))  # held-out columns are zero
    assert torch.equal(labels[..., :5] != -100, hidden)
    assert torch.equal(labels[..., 5:], heldout)


def test_reference_ndt_maps_spikes_and_behavior_to_log_rates_of_all_neurons(speed):
    torch.manual_seed(0)
    teacher = speed.ReferenceNDT(n_neurons=12, n_time=20, n_behavior=2).eval()
    student = speed.ReferenceNDT(n_neurons=12, n_time=20).eval()
    spikes, behavior = torch.rand(3, 20, 12), torch.randn(3, 20, 2)
    assert teacher(spikes, behavior).shape == (3, 20, 12)
    assert student(spikes, behavior).shape == (3, 20, 12)  # a student ignores behavior
    assert not torch.allclose(teacher(spikes, behavior), teacher(spikes, behavior + 1))


def test_speed_split_is_a_partition_of_the_trials(speed):
    spikes = np.arange(10 * 2 * 3, dtype=np.float32).reshape(10, 2, 3)
    data = speed._split(spikes[..., :2], spikes[..., 2:], spikes[..., :1], seed=0)
    assert len(data["train"]["spikes"]) == 8 and len(data["valid"]["spikes"]) == 2
    firsts = np.concatenate([data["train"]["spikes"], data["valid"]["spikes"]])[:, 0, 0]
    assert sorted(firsts) == sorted(spikes[:, 0, 0])
    assert data["n_neurons"] == 3 and data["n_heldout"] == 1


def test_synthetic_split_follows_mc_maze_fractions_and_is_disjoint(synthetic_table4):
    sizes = dict(n_trials=100, n_time=10, n_neurons=40, n_behavior=2)
    data, train, test = synthetic_table4.make_dataset("simple", sizes, 0)
    assert data.spikes_heldout.shape[-1] == round(40 * 45 / 182)
    assert data.spikes.shape[-1] + data.spikes_heldout.shape[-1] == 40
    assert len(test) == round(100 * 574 / 2869)
    assert not set(train) & set(test) and len(train) + len(test) == 100
    again = synthetic_table4.make_dataset("simple", sizes, 0)
    assert np.array_equal(again[0].spikes, data.spikes)  # one data seed, the same data


def test_synthetic_summary_counts_seeds_per_base_and_compares_the_best_student(synthetic_table4):
    import pandas as pd

    rows = [dict(family="simple", base="ndt", seed=seed, method=method, vel_r2=value + seed / 100,
                 co_bps=0.1, epochs=10, seconds=1.0)
            for seed in range(3) for method, value in (("ndt", 0.5), ("hard", 0.6))]
    rows += [dict(family="simple", base="gru", seed=0, method=method, vel_r2=value, co_bps=0.2,
                  epochs=10, seconds=2.0) for method, value in (("ndt", 0.9), ("hard", 0.95))]
    table = synthetic_table4.summarize(pd.DataFrame(rows))
    lines = {}
    for line in table.splitlines():  # the first (Vel-R2) table's row of each label
        lines.setdefault(line.split(" | ")[0], line)
    assert "| NDT 3, GRU 1 |" in lines["| model seeds run"]
    assert "0.950 (GRU-Hard) | 0.985 (BLEND-LFADS-Hard)" in lines["| best student"]
    assert "-0.035" in lines["| gap: our best - paper's best"]
    assert "0.610 +- 0.010 | 0.934" in lines["| NDT-Hard"]


def test_cell_identity_statistics_are_auto_and_cross_correlations(cell_identity):
    from sklearn_blend import Recordings

    rng = np.random.default_rng(0)
    shared = rng.normal(size=400)
    activity = np.stack([shared, -shared, rng.normal(size=400)], axis=1)
    stats = cell_identity.activity_statistics(Recordings(activity), n_lags=3)
    assert stats.shape == (3, 3 + 7)
    # lag-0 cross-correlation with the population mean (2 of 3 columns cancel: the mean is
    # the third column / 3) is high for the third neuron only
    lag0 = stats[:, 3 + 3]
    assert lag0[2] > 0.9 and abs(lag0[0]) < 0.3


def test_cell_identity_nested_selects_the_informative_table_from_training_neurons(
        load_benchmark, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports cell_identity's statistics
    nested = load_benchmark("cell_identity_nested")
    rng = np.random.default_rng(0)
    labels = np.repeat(["EC", "IN"], 40)
    informative = rng.normal(size=(80, 3)) + 3.0 * (labels == "IN")[:, None]
    tables = {("PCA", 8): {"table": rng.normal(size=(80, 3))},
              ("PCA", 32): {"table": informative},
              ("random", 0): {"table": rng.normal(size=(80, 3))},
              ("random", 1): {"table": rng.normal(size=(80, 3))}}
    rows = nested.select_and_score(tables, ["random", "PCA"], labels, np.arange(80), seed=0)
    assert len(rows) == 2 * 5  # two methods, five outer folds
    pca = [row for row in rows if row["method"] == "PCA"]
    assert all(row["params"] == {"features__key": 32} for row in pca)
    assert min(row["test_balanced_accuracy"] for row in pca) > 0.9
    chance = np.mean([r["test_balanced_accuracy"] for r in rows if r["method"] == "random"])
    assert chance < 0.75
    # the lookup returns the rows of the chosen table for the neurons asked for
    lookup = nested.FeatureLookup({32: informative}, key=32)
    assert np.array_equal(lookup.fit_transform(np.array([[3], [70]])), informative[[3, 70]])


def test_precision_summary_pairs_bfloat16_with_float32_of_the_same_fold_and_seed(
        precision_quality):
    import pandas as pd

    rows = []
    for method in precision_quality.METHODS:
        for seed in (0, 1):
            for fold in (0, 1):
                base = 0.1 * seed + 0.01 * fold
                for precision, shift in (("float32", 0.0), ("bfloat16", -0.02)):
                    rows.append(dict(method=method, fold=fold, seed=seed, precision=precision,
                                     co_bps=base + shift, fp_bps=base, vel_r2=base + shift,
                                     vel_r2_bf16_rates=(base - 0.05 if precision == "bfloat16"
                                                        and method != "teacher" else np.nan)))
    table = precision_quality.summarize(pd.DataFrame(rows))
    lines = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in table.splitlines()}
    assert lines[("BLEND NDT hard", "vel-r2")].endswith("| -0.020 +- 0.000 |")
    assert lines[("BLEND NDT hard", "fp-bps")].endswith("| +0.000 +- 0.000 |")
    assert lines[("NDT (no behavior)", "vel-r2, rates also inferred in bfloat16")].endswith(
        "| -0.050 +- 0.000 |")
    assert ("NDT teacher (sees behavior)", "vel-r2, rates also inferred in bfloat16") not in lines


def test_speed_report_compares_each_precision_with_the_reference_and_its_own_peak(speed):
    row = {"data": "d", "reference_teacher": 10.0, "reference_student": 5.0,
           "reference_inference": 100.0, "ours_inference": 50.0, "ours_inference_masked": 10.0,
           "reference_student_over_teacher": 2.0}
    for precision, speedup in (("float32", 1.0), ("bfloat16", 2.0)):
        row |= {f"ours_{precision}_teacher": 10.0 * speedup,
                f"ours_{precision}_student": 5.0 * speedup,
                f"student_over_plain_{precision}": 1.5,
                f"gflops_{precision}_plain": 50.0 * speedup,
                f"gflops_{precision}_student": 40.0 * speedup}
    _, markdown = speed.report([row], {"float32": 100.0, "bfloat16": 200.0}, 2, "cmd")
    assert "| d | teacher epoch | 10.0 | 10.0 | 1.00x | 20.0 | 2.00x |" in markdown
    assert "| d | inference, one pass | 100.0 | 50.0 | 0.50x | – | – |" in markdown
    # FLOP ratio = time ratio x GFLOP/s ratio; peak fractions against each precision's peak
    assert "| d | bf16 | 1.50 | 1.20 | 2.00 | 100, 80 | 50%, 40% |" in markdown


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # equal differences
def test_neds_merge_combines_seed_runs_and_refuses_a_row_given_twice(load_benchmark, tmp_path,
                                                                     capsys):
    import pandas as pd

    neds = load_benchmark("neds_mc_maze_small")
    paths = []
    for seed in (0, 1):
        rows = [dict(method=method, fold=fold, seed=seed, vel_r2=0.1 * fold + 0.01 * seed + shift,
                     vel_r2_rates=0.2 + 0.03 * fold, enc_bps=shift - 0.01 * fold,
                     enc_bps_neuron=shift - 0.1 * seed, co_bps=shift + 0.02 * fold)
                for fold in range(3)
                for shift, method in enumerate(neds.LABELS)]
        paths.append(tmp_path / f"seed{seed}.csv")
        pd.DataFrame(rows).to_csv(paths[-1], index=False)
    out = tmp_path / "merged"
    neds.main(["--merge", *map(str, paths), "--out", str(out)])
    merged = pd.read_csv(f"{out}.csv")
    assert len(merged) == len(neds.LABELS) * 3 * 2 and sorted(merged.seed.unique()) == [0, 1]
    table = (tmp_path / "merged.md").read_text()
    assert "seeds [0, 1], merged from runs" in table
    assert "| NEDS | 6 |" in table
    # "smoothing" is the first method, "neds" the fourth: a paired difference of +3
    assert "NEDS - smoothing + NLB ridge (ridge on smoothed spikes): +3.000 +- 0.000 (6/6" in table
    with pytest.raises(SystemExit, match=r"rows appear more than once, in .*merged\.csv"):
        neds.main(["--merge", *map(str, paths), f"{out}.csv", "--out", str(tmp_path / "again")])
    assert not list(tmp_path.glob("again*"))
    # a rerun of some methods replaces their rows, and only theirs
    rerun = pd.read_csv(paths[1]).query("method == 'neds'").assign(vel_r2=9.0)
    rerun.to_csv(tmp_path / "rerun.csv", index=False)
    neds.main(["--merge", *map(str, paths), "--override", str(tmp_path / "rerun.csv"),
               "--out", str(tmp_path / "replaced")])
    replaced = pd.read_csv(tmp_path / "replaced.csv")
    assert len(replaced) == len(merged)
    assert np.allclose(replaced.query("method == 'neds'").groupby("seed").vel_r2.max(), [3.2, 9])
    assert replaced.query("method != 'neds'").vel_r2.max() < 9
    assert "--override" in (tmp_path / "replaced.md").read_text().splitlines()[0]
    with pytest.raises(SystemExit):  # --override alone would train everything instead
        neds.main(["--override", str(tmp_path / "rerun.csv"), "--out", str(tmp_path / "x")])
    assert "give --merge too" in capsys.readouterr().err
    # a run of some methods only: the comparisons it cannot make are left out
    some = pd.read_csv(paths[0]).query("method in ['neds_encoding', 'glm']")
    some.to_csv(tmp_path / "some.csv", index=False)
    neds.main(["--merge", str(tmp_path / "some.csv"), "--out", str(tmp_path / "some")])
    differences = [line for line in (tmp_path / "some.md").read_text().splitlines()
                   if line.startswith("- ") and "+-" in line]
    assert [line.split(":")[0] for line in differences] == [
        "- encoding bits/spike", "- encoding bits/spike per neuron"]


def test_the_neds_glm_reads_lagged_velocity_and_time_in_trial(load_benchmark):
    neds = load_benchmark("neds_mc_maze_small")
    velocity = np.random.default_rng(0).normal(size=(3, 50, 2))
    features = neds.glm_features(velocity)
    n_lags = len(neds.GLM_LAGS)
    assert features.shape == (150, 2 * n_lags + neds.GLM_TIME)
    bumps = neds.time_basis(3, 50)
    # each bump peaks at its centre, the first at the first bin and the last at the last
    assert bumps.argmax(axis=1)[0, [0, -1]].tolist() == [0, 49]
    np.testing.assert_array_equal(features[:50, 2 * n_lags:], bumps[0])


def test_neds_nested_pairs_the_multi_task_model_with_the_single_task_ones(load_benchmark,
                                                                         monkeypatch):
    import pandas as pd

    monkeypatch.setitem(sys.modules, "neds_mc_maze_small", load_benchmark("neds_mc_maze_small"))
    nested = load_benchmark("neds_nested")
    rows = [dict(method=method, fold=fold, seed=0, params=repr({"input_map": "linear"}),
                 vel_r2=0.3 + shift, co_bps=0.1, fp_bps=0.0, enc_bps=0.05 - shift,
                 enc_bps_neuron=0.02, epochs=100)
            for fold in range(3)
            for method, shift in (("neds", 0.1), ("neds_decoding", 0.0),
                                  ("neds_encoding", 0.0))]
    text = nested.summarize(pd.DataFrame(rows))
    assert ("- decoding R2: NEDS (multi-task) - NEDS, decoding only: +0.100 +- 0.000 (3/3"
            in text)
    assert "- encoding bits/spike: NEDS (multi-task) - NEDS, encoding only: -0.100" in text
    assert "- NEDS (multi-task): {'input_map': 'linear'} (3)" in text
    # every NEDS setting grid has the budget of the nlb_nested.py methods
    monkeypatch.setitem(sys.modules, "nlb_nested", load_benchmark("nlb_nested"))
    from sklearn_blend.model_selection import check_equal_budget

    assert check_equal_budget({**sys.modules["nlb_nested"].GRIDS, "neds": nested.GRID}) == 4


@pytest.fixture
def crossmodal(load_benchmark):
    return load_benchmark("crossmodal")


def test_crossmodal_selection_uses_training_trials_and_an_equal_budget(crossmodal):
    from sklearn_blend.model_selection import check_equal_budget

    assert check_equal_budget(crossmodal.GRIDS) == 2
    data = crossmodal.Data(seed=1, quick=True, simulator="default", n_inner=2)
    for s in range(crossmodal.N_SESSIONS):
        train, test = data.splits[s]
        assert not set(train) & set(test) and len(train) + len(test) == 60
        for fitting, held in data.inner[s]:  # inner folds partition the training trials
            assert sorted(np.r_[fitting, held]) == sorted(train)
        assert data.lfp[s].shape == (60, 100, crossmodal.CHANNELS)
    # the setting with the best mean held-out score over the folds wins
    scores = {0.2: [0.1, 0.5], 0.4: [0.3, 0.4]}
    setting, score = crossmodal.select(
        lambda setting, fitting: setting["dropout"],
        lambda dropout, fitting, held: scores[dropout][held], {"dropout": [0.2, 0.4]},
        [(None, 0), (None, 1)])
    assert setting == {"dropout": 0.4} and score == pytest.approx(0.35)


def test_crossmodal_band_power_has_one_window_per_bin_centred_on_it(crossmodal):
    t = np.arange(2000) / 1000.0
    burst = np.where((t >= 0.4) & (t < 0.6), np.sin(2 * np.pi * 20 * t), 0.0)  # trial 0 only
    noise = 0.01 * np.random.default_rng(0).standard_normal((2000, 2))
    raw = (burst[:, None] + noise).reshape(2, 1000, 2)
    power = crossmodal.band_power(raw, 1000.0, 100, 0.25)
    # at 250 Hz (2.5 samples per 10-ms bin) the recording is resampled up first
    slow = crossmodal.band_power(raw[:, ::4], 250.0, 100, 0.25)
    assert slow.shape == power.shape and 45 <= np.argmax(slow[0, :, 2]) <= 55
    assert power.shape == (2, 100, 2 * len(crossmodal.BANDS))
    beta = power[0, :, 2]  # channel 0, 14-30 Hz
    assert 45 <= np.argmax(beta) <= 55  # the window centred on the burst's middle bin
    assert beta[50] > beta[5] + 2 and beta[50] > power[1, 50, 2] + 2


def test_a_behavior_teacher_trains_the_student_transformer_on_behavior(crossmodal):
    from sklearn_blend import CrossModalEstimator, SessionTrials
    from sklearn_blend.modalities import LFP

    rng = np.random.default_rng(0)
    velocity = rng.standard_normal((40, 10, 2)).astype(np.float32)
    lfp = velocity @ rng.standard_normal((2, 6)) + 0.1 * rng.standard_normal((40, 10, 6))
    behavior = SessionTrials([3 * velocity + 5], modality=LFP)
    teacher = crossmodal.BehaviorTeacher().fit(behavior)
    X = SessionTrials([lfp], modality=LFP)
    standardised = teacher.transform(behavior)  # the training trials' mean and s.d.
    np.testing.assert_allclose(standardised.mean((0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose(standardised.std((0, 1)), 1, atol=1e-4)
    model = crossmodal.supervised_transformer(behavior, hidden_size=8, n_layers=1, ffn_size=16,
                                              max_epochs=2, random_state=0)
    assert isinstance(model, CrossModalEstimator) and model.alpha == 0.0
    assert model.strategy.centre is False  # behavior is fitted as it is, shared part included
    model.fit(X, privileged=behavior)
    assert isinstance(model.teacher_, crossmodal.BehaviorTeacher)
    assert model.transform(lfp, session=0).shape == (40, 10, 8)


def test_crossmodal_merges_runs_of_separate_seeds(crossmodal, tmp_path):
    import pandas as pd

    paths = []
    for seed, minutes in ((0, 41), (1, 39)):
        rows = [dict(method=method, session=session, seen=session not in crossmodal.UNSEEN,
                     seed=seed, protocol="own session", r2=score, spread=0.5,
                     setting=repr({"dropout": 0.2}), inner_score=0.1, epochs=10)
                for session in range(crossmodal.N_SESSIONS)
                for method, score in ((crossmodal.DISTILLED, 0.4), (crossmodal.MULTI, 0.1))]
        paths.append(str(tmp_path / f"run{seed}_harder.csv"))
        pd.DataFrame(rows).to_csv(paths[-1], index=False)
        (tmp_path / f"run{seed}_harder.md").write_text(
            f"Simulated ...; wall time {minutes} min on 2 cores; command `run --seeds {seed}`.\n")
    crossmodal.main(["--merge", *paths, "--simulator", "harder", "--out", str(tmp_path / "all")])
    text = (tmp_path / "all_harder.md").read_text()
    assert "seeds [0, 1]" in text and "wall time 41+39 min (the runs)" in text
    assert "; the runs `run --seeds 0`, `run --seeds 1` (one per seed, side by side)" in text
    assert "seen sessions: distilled - LFP-only, multi-session: +0.300 +- 0.000 (8/8" in text
    assert (tmp_path / "all_harder.png").exists()
    with pytest.raises(SystemExit, match="more than one file"):
        crossmodal.main(["--merge", paths[0], paths[0], "--out", str(tmp_path / "twice")])


def test_ensembles_compares_each_k_with_the_lone_model_of_its_fold_and_seed(load_benchmark,
                                                                             tmp_path):
    import pandas as pd

    ensembles = load_benchmark("ensembles")
    rows = [dict(method=f"{base}, k={k}", base_method=base, k=k, fold=fold, seed=0,
                 seconds=10.0 * k, co_bps=0.2 + 0.01 * k, fp_bps=0.0, vel_r2=0.6)
            for fold in range(3) for base in ensembles.METHODS for k in (1, 3)]
    path = tmp_path / "run.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    ensembles.main(["--merge", str(path), "--out", str(tmp_path / "all")])
    text = (tmp_path / "all.md").read_text()
    assert "| hard, k=3 | 0.230 +- 0.000 | 0.000 +- 0.000 | 0.600 +- 0.000 | 30 | 3 |" in text
    assert "- hard, k=3 - k=1, co_bps: +0.020 +- 0.000 (3/3" in text
    with pytest.raises(SystemExit, match="--k"):
        ensembles.main(["--members", "2", "--k", "1", "3"])


def test_neds_nested_merges_runs_of_separate_seeds_and_refuses_a_row_twice(load_benchmark,
                                                                           monkeypatch,
                                                                           tmp_path):
    import pandas as pd

    monkeypatch.setitem(sys.modules, "neds_mc_maze_small", load_benchmark("neds_mc_maze_small"))
    nested = load_benchmark("neds_nested")
    paths = []
    for seed in (0, 1):
        rows = [dict(method=method, fold=fold, seed=seed, params=repr({"input_map": "linear"}),
                     vel_r2=0.3, co_bps=0.1, fp_bps=0.0, enc_bps=0.05, enc_bps_neuron=0.02,
                     epochs=100, seconds=1800.0)
                for fold in range(2) for method in nested.METHODS]
        paths.append(tmp_path / f"seed{seed}.csv")
        pd.DataFrame(rows).to_csv(paths[-1], index=False)
    merged = nested.merge(paths, str(tmp_path / "all"), 2)
    assert len(merged) == 12 and "(fold, seed) pairs per method {'neds': 4" in (
        tmp_path / "all.md").read_text()
    assert "6.0 h of fitting" in (tmp_path / "all.md").read_text()
    with pytest.raises(SystemExit, match="in more than one file"):
        nested.merge([paths[0], paths[0]], str(tmp_path / "twice"), 2)


def test_the_real_recording_is_cut_into_windows_of_binned_spikes_lfp_and_speed(
        load_benchmark, monkeypatch):
    monkeypatch.setitem(sys.modules, "crossmodal", load_benchmark("crossmodal"))
    real = load_benchmark("crossmodal_real")
    rng = np.random.default_rng(0)
    seconds = 9.0
    t = np.arange(int(seconds * 50)) / 50.0
    xy = np.stack([10 * t, np.zeros_like(t)], axis=1)  # 10 cm/s along x
    xy[100:105] = np.nan  # untracked frames are interpolated
    data = dict(spike_times_s=np.array([0.005, 0.015, 2.5, 4.001]),
                spike_unit_index=np.array([0, 1, 0, 1]),
                lfp_uV=rng.standard_normal((2, int(seconds * 250))).astype(np.float32),
                lfp_fs_hz=250.0, pos_xy_cm=xy, pos_fs_hz=50.0)
    spikes, lfp, speed, raw, rate = real.windows(data)
    assert spikes.shape == (4, 200, 2) and lfp.shape == (4, 200, 2) and speed.shape == (4, 200, 1)
    assert raw.shape == (4, 500, 2) and rate == 250.0  # the last second makes no whole window
    assert spikes[0, 0, 0] == 1 and spikes[0, 1, 1] == 1 and spikes[1, 50, 0] == 1
    assert spikes[2, 0, 1] == 1 and spikes.sum() == 4
    np.testing.assert_allclose(speed[1:3], 10.0, rtol=1e-3)  # away from the recording's ends
    power = real.band_power(raw, rate, 200, 0.5, real.BANDS)
    assert power.shape == (4, 200, 2 * len(real.BANDS)) and np.isfinite(power).all()


def test_real_recording_runs_of_different_seeds_merge_into_one_table(load_benchmark,
                                                                      monkeypatch, tmp_path):
    import pandas as pd

    monkeypatch.setitem(sys.modules, "crossmodal", load_benchmark("crossmodal"))
    real = load_benchmark("crossmodal_real")
    paths = []
    for seed in (0, 1):
        rows = [dict(method=method, fold=fold, seed=seed, r2=score, spread=0.5, recon=0.5,
                     epochs=10)
                for fold in range(3)
                for method, score in (("distilled", 0.1), ("LFP-only", 0.3))]
        paths.append(str(tmp_path / f"run{seed}.csv"))
        pd.DataFrame(rows).to_csv(paths[-1], index=False)
        (tmp_path / f"run{seed}.md").write_text(f"Real recording: 3 folds x seeds [{seed}]; "
                                                f"command `run {seed}`.\n")
    real.main(["--merge", *paths, "--out", str(tmp_path / "all")])
    text = (tmp_path / "all.md").read_text()
    assert "x seeds [0, 1], merged from the runs `run 0`, `run 1` by `--merge" in text
    assert "- distilled - LFP-only: -0.200 +- 0.000 (0/6" in text
    with pytest.raises(SystemExit, match="more than one file"):
        real.main(["--merge", paths[0], paths[0], "--out", str(tmp_path / "twice")])


def test_a_strategy_chosen_on_some_folds_is_compared_on_the_others_only(load_benchmark):
    import pandas as pd

    nlb = load_benchmark("nlb_mc_maze_small")
    rows = []
    for fold in range(4):
        # feature wins by 0.1 co-bps on the folds it was chosen on, loses by 0.01 elsewhere
        gain = 0.1 if fold < 2 else -0.01
        rows.append(dict(method="smoothing", fold=fold, seed=0, co_bps=0.1, vel_r2=0.3))
        for seed in (0, 1):
            rows += [dict(method="ndt", fold=fold, seed=seed, co_bps=0.2, vel_r2=0.5),
                     dict(method="teacher", fold=fold, seed=seed, co_bps=0.3, vel_r2=0.9),
                     dict(method="hard", fold=fold, seed=seed, co_bps=0.2, vel_r2=0.6),
                     dict(method="feature", fold=fold, seed=seed, co_bps=0.2 + gain,
                          vel_r2=0.7)]
    lines = nlb.held_out_comparison(pd.DataFrame(rows), "GRU", "feature", [0, 1])
    text = "\n".join(lines)
    assert "on folds [2, 3] only" in text
    assert "- feature - BLEND GRU hard: co-bps -0.010 +- 0.000 (0/4" in text
    # the deterministic smoothing row pairs with every seed of its fold
    assert "- feature - smoothing: co-bps +0.090 +- 0.000 (4/4" in text
    assert "teacher" not in text.split("\n", 1)[1]
    with pytest.raises(ValueError, match="--chosen 'soft' is not a method"):
        nlb.held_out_comparison(pd.DataFrame(rows), "GRU", "soft", [0, 1])
    for chosen_on in ([], [0, 1, 2, 3]):
        with pytest.raises(ValueError, match="--chosen-on must name the folds"):
            nlb.held_out_comparison(pd.DataFrame(rows), "GRU", "feature", chosen_on)


def test_forward_diagnostics_calibrate_on_training_trials_only(load_benchmark):
    forward = load_benchmark("forward_prediction")
    rng = np.random.default_rng(0)
    level = rng.uniform(0.2, 2.0, size=6)
    train_forward = rng.poisson(level, size=(40, 8, 6)).astype(float)
    test_forward = rng.poisson(level, size=(10, 8, 6)).astype(float)
    # a model whose time course is right but whose level is three times too high
    train_rates, test_rates = 3 * np.broadcast_to(level, train_forward.shape), \
        3 * np.broadcast_to(level, test_forward.shape)
    scores = forward.forward_scores(train_rates, test_rates, train_forward, test_forward)
    assert set(scores) == set(forward.PREDICTIONS)
    assert scores["model"] < -0.3
    # rescaled by the training trials' observed level it is close to the true rates
    assert scores["model, level from training"] > scores["model"] + 0.3
    assert abs(scores["model, level from training"]
               - scores["mean rate of the training trials"]) < 0.05
    # the factor comes from the training trials alone
    from sklearn_blend.metrics import fp_bps

    factor = train_forward.mean(axis=(0, 1)) / train_rates.mean(axis=(0, 1))
    assert np.isclose(scores["model, level from training"],
                      fp_bps(test_rates * factor, test_forward))


def _fixed_rows(base_scores, fold_ids=range(5), seeds=(0, 1)):
    """Rows as ``nlb_mc_maze_small.py`` writes them: ``{base: {method: (co_bps, seconds)}}``,
    the same scores on every (fold, seed)."""
    import pandas as pd

    frames = {}
    for base, methods in base_scores.items():
        rows = [dict(method="smoothing", co_bps=0.12, fp_bps=np.nan, vel_r2=0.4, epochs=0,
                     seconds=1.0, fold=f, seed=0) for f in fold_ids]
        rows += [dict(method=m, co_bps=c + 0.001 * f, fp_bps=0.0, vel_r2=c * 3, epochs=10,
                      seconds=s, fold=f, seed=seed)
                 for m, (c, s) in methods.items() for f in fold_ids for seed in seeds]
        frames[base] = pd.DataFrame(rows)
    return frames


def test_the_default_choice_follows_its_rule_on_the_selection_folds(load_benchmark, tmp_path,
                                                                    monkeypatch):
    choose = load_benchmark("choose_defaults")
    frames = _fixed_rows({
        "ndt": {"ndt": (0.05, 20), "hard": (0.10, 60)},
        "gru": {"ndt": (0.18, 200), "feature": (0.19, 200), "hard": (0.15, 200)},
        "lfads": {"ndt": (0.16, 400)},
    })
    for base, frame in frames.items():
        frame.to_csv(tmp_path / f"{choose.RUNS[base]}.csv", index=False)
    rows = choose.load(tmp_path)
    assert set(rows[rows.method == "smoothing"].base) == {"none"}
    assert (rows.method == "smoothing").sum() == 5  # smoothing counted once, not per base
    base, strategy, lines = choose.choose(rows, [0, 1], tolerance=0.01)
    assert (base, strategy) == ("gru", "feature")
    assert any("below smoothing" in line for line in lines)  # the NDT is not kept
    # a base within the tolerance that trains in less than half the time wins
    frames["lfads"].loc[frames["lfads"].method == "ndt", ["co_bps", "seconds"]] = (0.175, 90)
    frames["lfads"].to_csv(tmp_path / "nlb_mc_maze_small_lfads.csv", index=False)
    with pytest.raises(SystemExit, match="'lfads' has no students"):
        choose.choose(choose.load(tmp_path), [0, 1], 0.01)
    frames["lfads"] = _fixed_rows({"lfads": {"ndt": (0.175, 90), "hard": (0.18, 90)}})["lfads"]
    frames["lfads"].to_csv(tmp_path / "nlb_mc_maze_small_lfads.csv", index=False)
    assert choose.choose(choose.load(tmp_path), [0, 1], 0.01)[:2] == ("lfads", "hard")
    # the claim uses the other folds only, smoothing paired with every seed of a fold
    text = "\n".join(choose.held_out(rows, "gru", "feature", [0, 1]))
    assert "folds [2, 3, 4]" in text and "(6/6" in text


def test_the_defaults_join_the_nested_table_only_on_its_own_folds_and_seeds(load_benchmark,
                                                                           tmp_path):
    import pandas as pd

    nested = load_benchmark("nlb_nested")
    table = pd.DataFrame([dict(method=m, fold=f, seed=s, params={}, co_bps=0.1, fp_bps=0.0,
                               vel_r2=0.3, epochs=1, inner_co_bps=0.1)
                          for m in ("smoothing", "ndt") for f in range(5) for s in (0, 1)])
    fixed = _fixed_rows({"gru": {"ndt": (0.18, 200), "feature": (0.19, 200)}})["gru"]
    fixed.to_csv(tmp_path / "gru.csv", index=False)
    joined, header = nested.with_default_rows(table, "old header.", tmp_path / "gru.csv")
    assert sorted(set(joined.method)) == ["default", "default_plain", "ndt", "smoothing"]
    assert "gru.csv" in header and header.startswith("old header.")
    again, header = nested.with_default_rows(joined, header, tmp_path / "gru.csv")
    assert len(again) == len(joined) and header.count("Rows ['default'") == 1  # replaced
    text = nested.summarize(joined)
    assert "Held out from the choice of the defaults (folds [2, 3, 4]" in text
    assert "package defaults (10)" in text
    fixed.assign(co_bps=0.5).query("method == 'feature'").to_csv(tmp_path / "later.csv",
                                                                 index=False)
    both, header = nested.with_default_rows(table, "h", [tmp_path / "gru.csv",
                                                         tmp_path / "later.csv"])
    assert set(both[both.method == "default"].co_bps) == {0.5}  # the later file wins
    assert set(both[both.method == "default_plain"].co_bps) == set(
        fixed[fixed.method == "ndt"].co_bps)  # from the only file that has them
    assert "later.csv" in header
    fixed.assign(seed=7).to_csv(tmp_path / "other_seed.csv", index=False)
    with pytest.raises(SystemExit, match="not in the nested table"):
        nested.with_default_rows(table, "h", tmp_path / "other_seed.csv")


def test_nlb_val_scores_a_submission_with_nlb_tools_as_our_metrics_do(load_benchmark,
                                                                      monkeypatch):
    pytest.importorskip("nlb_tools")
    from sklearn.utils import Bunch

    from sklearn_blend import metrics
    from sklearn_blend.evaluation import MethodResult

    monkeypatch.setitem(sys.modules, "nlb_nested", load_benchmark("nlb_nested"))
    val = load_benchmark("nlb_val")
    rng = np.random.default_rng(0)
    n_in, n_out = val.N_HELDIN, 35
    data = Bunch(spikes=rng.poisson(0.3, (12, 20, n_in)).astype(float),
                 spikes_heldout=rng.poisson(0.3, (12, 20, n_out)).astype(float),
                 behavior=rng.normal(size=(12, 20, 2)),
                 spikes_forward=rng.poisson(0.3, (12, 5, n_in)).astype(float),
                 spikes_heldout_forward=rng.poisson(0.3, (12, 5, n_out)).astype(float))
    train, test = np.arange(8), np.arange(8, 12)
    result = MethodResult(method="ndt")
    result.train_rates = rng.gamma(2.0, 0.15, (8, 20, n_in + n_out))
    result.test_rates = rng.gamma(2.0, 0.15, (4, 20, n_in + n_out))
    result.forward_rates = rng.gamma(2.0, 0.15, (4, 5, n_in + n_out))
    scores = val.nlb_scores(data, train, test, result)
    assert scores["co_bps"] == pytest.approx(
        metrics.co_bps(result.test_rates[..., n_in:], data.spikes_heldout[test]), abs=1e-6)
    forward = np.concatenate([data.spikes_forward, data.spikes_heldout_forward], -1)[test]
    assert scores["fp_bps"] == pytest.approx(metrics.fp_bps(result.forward_rates, forward),
                                             abs=1e-6)
    assert scores["vel_r2"] == pytest.approx(metrics.vel_r2(
        result.train_rates, data.behavior[train], result.test_rates, data.behavior[test]),
        abs=1e-6)
    result.forward_rates = None  # smoothing predicts no forward bins: no fp-bps
    assert np.isnan(val.nlb_scores(data, train, test, result)["fp_bps"])

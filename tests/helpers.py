"""Shared test constants, classes and functions (fixtures and hooks live in conftest.py)."""

from datetime import datetime, timezone

import numpy as np
import torch
from torch import nn

#: an NDT small enough to fit in well under a second
TINY = dict(
    base="ndt",
    hidden_size=8,
    n_layers=1,
    n_heads=2,
    ffn_size=16,
    dropout=0.1,
    max_epochs=3,
    batch_size=8,
    warmup_steps=2,
    early_stopping=False,
)

#: the GRU bases take hidden_size, n_layers and dropout from the estimator, the rest as
#: base_params
TINY_GRU = dict(hidden_size=8, n_layers=1, dropout=0.1, max_epochs=3, batch_size=8,
                warmup_steps=2, early_stopping=False, base_params={"factor_size": 4})
#: LFADS takes hidden_size (the generator) and dropout, its other sizes as base_params
TINY_LFADS = dict(hidden_size=8, dropout=0.1, max_epochs=3, batch_size=8, warmup_steps=2,
                  early_stopping=False,
                  base_params={"factor_size": 4, "ic_encoder_size": 6, "ci_encoder_size": 4,
                               "controller_size": 4, "ic_size": 4, "co_size": 2})
TINY_TRAINING = dict(max_epochs=3, batch_size=8, warmup_steps=2, early_stopping=False)

#: a NeuronEmbedding small enough to fit in well under a second
TINY_NEURONS = dict(
    embedding_dim=4, hidden_size=8, ffn_size=16, n_window=16, group_size=4, max_epochs=2,
    batch_size=8, warmup_steps=1, early_stopping=False, embedding_epochs=2,
)


def assert_same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


class TinyGRU(nn.Module):
    """A user's base: a GRU over spikes (and behavior), per-layer features and latents."""

    def __init__(self, n_inputs, n_outputs, n_behavior, width=6):
        super().__init__()
        self.gru = nn.GRU(n_inputs + n_behavior, width, batch_first=True)
        self.hidden = nn.Linear(width, width)
        self.readout = nn.Linear(width, n_outputs)

    def forward(self, spikes, behavior=None):
        x = spikes if behavior is None else torch.cat([spikes, behavior], dim=-1)
        h, _ = self.gru(x)
        z = torch.tanh(self.hidden(h))
        return self.readout(z), [h, z], z


def write_small_nwb(path):
    """Two held-in and one held-out unit, 3 trials, hand velocity sampled at 1 kHz."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    nwb = NWBFile(session_description="test", identifier="test",
                  session_start_time=datetime(2020, 1, 1, tzinfo=timezone.utc))
    nwb.add_trial_column("move_onset_time", "movement onset (s)")
    for i in range(3):
        nwb.add_trial(start_time=float(i), stop_time=i + 0.9, move_onset_time=i + 0.3)
    nwb.add_unit_column("heldout", "held-out unit")
    # unit 0: one spike 1 ms after each onset; unit 1: 2 spikes in the first bin of each
    # window; unit 2 (held-out): a spike at 10.5 ms after onset
    nwb.add_unit(spike_times=[0.301, 1.301, 2.301], heldout=False)
    nwb.add_unit(spike_times=[0.2001, 0.2002, 1.2001, 1.2002, 2.2001, 2.2002], heldout=False)
    nwb.add_unit(spike_times=[0.3105, 1.3105, 2.3105], heldout=True)
    t = np.arange(0, 3.0, 0.001)
    velocity = np.column_stack([t, -t])  # velocity equal to time: easy to check bin means
    module = nwb.create_processing_module("behavior", "behavior")
    module.add(TimeSeries(name="hand_vel", data=velocity, timestamps=t, unit="m/s"))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


# ------------------------------------------------------- scale-out (tests/test_scaleout.py)
import os  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402

import joblib  # noqa: E402

from sklearn_blend import BlendTeacher  # noqa: E402

#: environment variables :class:`CountingTeacher` reads in ``fit``: a file to which each fit
#: appends a line, and seconds to sleep after it (so that concurrent workers overlap)
FIT_LOG_VARIABLE = "SKLEARN_BLEND_TEST_FIT_LOG"
FIT_SLEEP_VARIABLE = "SKLEARN_BLEND_TEST_FIT_SLEEP"


class CountingTeacher(BlendTeacher):
    """A BlendTeacher whose every fit appends a line (the hash of its data, its process id) to
    the file named by ``$SKLEARN_BLEND_TEST_FIT_LOG``. Defined in an importable module, so
    that spawned processes and cluster workers unpickle it and key its cache entries alike."""

    def fit(self, X, y=None, **fit_params):
        log = os.environ.get(FIT_LOG_VARIABLE)
        if log:
            with open(log, "a") as file:
                file.write(f"{joblib.hash((X, y))} {os.getpid()}\n")
        time.sleep(float(os.environ.get(FIT_SLEEP_VARIABLE, "0")))
        return super().fit(X, y, **fit_params)


def read_fit_log(path):
    """The data hashes of the fits :class:`CountingTeacher` logged in ``path``."""
    if not os.path.exists(path):
        return []
    with open(path) as file:
        return [line.split()[0] for line in file if line.strip()]


def set_environment(variables):
    """Set environment variables in this process (run on cluster workers)."""
    os.environ.update(variables)


def fit_students_in_cache(cache, folds, alphas, barrier, results):
    """Body of a spawned process: fit a BlendEstimator with a :class:`CountingTeacher` for
    each fold (trial indices) and alpha against the cache folder ``cache``, after all
    processes reached ``barrier``; put ``(pid, warnings, error)`` on ``results``."""
    torch.set_num_threads(1)
    caught, error = [], None
    try:
        from sklearn_blend import BlendEstimator
        from sklearn_blend.datasets import make_synthetic

        X, b = make_synthetic("simple", n_trials=24, n_time=10, n_neurons=6, random_state=0)
        barrier.wait(timeout=120)
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            for fold in folds:
                for alpha in alphas:
                    BlendEstimator(teacher=CountingTeacher(**TINY), alpha=alpha,
                                   random_state=0, teacher_cache=cache,
                                   **TINY).fit(X[fold], b[fold])
        caught = [str(record.message) for record in records]
    except BaseException:  # reported to the parent, which fails the test
        error = traceback.format_exc()
    results.put((os.getpid(), caught, error))


def rewrite_model_file(path, edit=None, **fields):
    """Store the model file at ``path`` again with metadata ``fields`` replaced (``content``
    too) and its JSON tree changed by ``edit`` (a function of the tree), under a valid
    checksum: what a crafted file can do."""
    import json

    from safetensors.numpy import load_file, save_file

    from sklearn_blend.persistence.files import checksum

    tensors = load_file(path)
    with open(path, "rb") as file:
        size = int.from_bytes(file.read(8), "little")
        metadata = json.loads(file.read(size))["__metadata__"]
    metadata.update(fields)
    if edit is not None:
        content = json.loads(metadata["content"])
        edit(content["object"])
        metadata["content"] = json.dumps(content)
    metadata["checksum"] = checksum({k: v for k, v in metadata.items() if k != "checksum"},
                                    tensors)
    save_file(tensors, path, metadata=metadata)

"""Shared fixtures: tiny models and data, torch on one thread (see cpu_performance notes)."""

import numpy as np
import pytest
import torch

from sklearn_blend.training import teacher_cache as _teacher_cache
from sklearn_blend.datasets import make_synthetic

torch.set_num_threads(1)

#: a model small enough to fit in well under a second
TINY = dict(
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


@pytest.fixture
def tiny():
    return dict(TINY)


@pytest.fixture(scope="session")
def trials():
    """24 trials x 10 bins x 6 neurons of the "simple" family, with 2-D behavior."""
    return make_synthetic("simple", n_trials=24, n_time=10, n_neurons=6, random_state=0)


@pytest.fixture(autouse=True)
def _fresh_teacher_cache():
    _teacher_cache.clear()
    yield
    _teacher_cache.clear()


def assert_same(a, b):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

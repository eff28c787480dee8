"""Shared fixtures: tiny models and data, torch on one thread (see cpu_performance notes)."""

import pytest
import torch

from sklearn_blend.training import teacher_cache as _teacher_cache
from sklearn_blend.datasets import make_synthetic

from .helpers import TINY

torch.set_num_threads(1)


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

"""scikit-learn's own estimator checks on tiny, seeded configurations."""

import warnings

from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_blend import (BlendEstimator, BlendTeacher, CrossModalEstimator, MaskedAutoencoder,
                           NedsEstimator, NeuronEmbedding, PerBin, SeedEnsemble)

from .helpers import TINY, TINY_GRU, TINY_LFADS, TINY_NEURONS, TINY_TRAINING, TinyGRU

ESTIMATORS = [
    BlendEstimator(strategy="hard", random_state=0, **TINY),
    BlendEstimator(strategy="feature", output="latents", random_state=0, **TINY),
    BlendEstimator(strategy=None, random_state=0, **TINY),
    BlendTeacher(random_state=0, **TINY),
    # the same suite for the GRU bases, LFADS and a user's own PyTorch base
    BlendEstimator(base="gru", strategy="feature", random_state=0, **TINY_GRU),
    BlendEstimator(base="lfads", strategy="hard", random_state=0, **TINY_LFADS),
    BlendEstimator(base="blend_lfads", strategy="hard", random_state=0, **TINY_GRU),
    BlendEstimator(base=TinyGRU, strategy="correlation", random_state=0, **TINY_TRAINING),
    # per-neuron features: a 2-D array is one session, one row per neuron
    NeuronEmbedding(strategy=None, random_state=0, **TINY_NEURONS),
    # NEDS: encoding and decoding with one model
    NedsEstimator(hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=2,
                  batch_size=8, warmup_steps=1, early_stopping=False, random_state=0),
    # cross-modal: the LFP model without a teacher, and the spike teacher
    CrossModalEstimator(strategy=None, hidden_size=8, n_layers=1, n_heads=2, ffn_size=16,
                        max_epochs=2, batch_size=8, warmup_steps=1, early_stopping=False,
                        random_state=0),
    MaskedAutoencoder(hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=2,
                      batch_size=8, warmup_steps=1, early_stopping=False, random_state=0),
    PerBin(Ridge()),
    PerBin(LogisticRegression()),
    # the averaged rates of two seeds
    SeedEnsemble(BlendEstimator(strategy=None, random_state=0, **TINY), n_members=2),
]


def expected_failed_checks(estimator):
    # None: every check that runs passes. (The array-API checks skip themselves: this
    # package computes in PyTorch, not in array-API namespaces.)
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tiny fits cannot early-stop
        check(estimator)

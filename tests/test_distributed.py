"""Data-parallel training through Hugging Face accelerate (``distributed="accelerate"``)."""

import os
import pickle
import shutil
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("accelerate")

from sklearn_blend import BlendEstimator, MaskedAutoencoder, NedsEstimator  # noqa: E402

TINY = dict(hidden_size=8, n_layers=1, n_heads=1, ffn_size=16, max_epochs=3, random_state=0)
#: the tiny NDT of the BLEND estimators (NEDS and the autoencoder take no base)
BLEND = dict(TINY, base="ndt")


def _data():
    rng = np.random.default_rng(0)
    return rng.poisson(1.0, size=(24, 10, 6)), rng.normal(size=(24, 10, 2))


@pytest.mark.parametrize("strategy", ["hard", "feature"])
def test_one_process_equals_the_plain_fit_and_pickles(strategy):
    """Run as plain python, accelerate is one process: the same model as without it, and the
    fitted estimator holds no accelerator (it pickles and predicts)."""
    X, b = _data()
    accelerated = BlendEstimator(strategy=strategy, distributed="accelerate", **BLEND).fit(X, b)
    plain = BlendEstimator(strategy=strategy, **BLEND).fit(X, b)
    np.testing.assert_allclose(accelerated.transform(X), plain.transform(X), rtol=1e-5,
                               atol=1e-6)
    assert accelerated.student_net_.accelerator is None
    assert accelerated.student_net_.device == "cpu"
    again = pickle.loads(pickle.dumps(accelerated))
    np.testing.assert_allclose(again.transform(X), accelerated.transform(X))


def test_other_estimators_train_through_accelerate():
    X, b = _data()
    neds = NedsEstimator(distributed="accelerate", **dict(TINY, n_heads=2)).fit(X, b)
    assert neds.predict(X).shape == b.shape
    mae = MaskedAutoencoder(distributed="accelerate", **TINY).fit(X)
    assert mae.transform(X).shape == (24, 10, 8)


def test_unknown_distributed_engine_is_a_clear_error():
    X, b = _data()
    with pytest.raises(ValueError, match="distributed must be one of"):
        BlendEstimator(distributed="dask", **BLEND).fit(X, b)


SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import torch
    from accelerate import PartialState
    from sklearn_blend import BlendEstimator

    rng = np.random.default_rng(0)
    X, b = rng.poisson(1.0, size=(24, 10, 6)), rng.normal(size=(24, 10, 2))
    model = BlendEstimator(base="ndt", strategy=sys.argv[2], distributed="accelerate",
                           hidden_size=8, n_layers=1, n_heads=1, ffn_size=16, max_epochs=3, batch_size=4,
                           teacher_cache=sys.argv[3], random_state=0).fit(X, b)
    state = PartialState()
    batches = [row for row in model.student_net_.history[0]["batches"] if "train_loss" in row]
    np.save(f"{sys.argv[1]}/batches{state.process_index}.npy", np.array(len(batches)))
    weights = torch.cat([p.detach().flatten() for p in model.student_net_.module_.parameters()])
    np.save(f"{sys.argv[1]}/weights{state.process_index}.npy", weights.numpy())
    np.save(f"{sys.argv[1]}/latents{state.process_index}.npy", model.transform(X))
    np.save(f"{sys.argv[1]}/world{state.process_index}.npy", np.array(state.num_processes))
""")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _train_batches(history):
    return len([row for row in history[0]["batches"] if "train_loss" in row])


@pytest.mark.parametrize("strategy", ["hard", "feature"])
def test_two_processes_train_one_model(tmp_path, strategy):
    """torchrun starts 2 CPU processes (gloo): each trains on half of the batches of an epoch,
    the gradients are averaged, so both end with the same weights (and the same latents). The
    teacher, fitted data-parallel too, goes through a shared on-disk cache without either
    process waiting for the other's lock."""
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this Python")
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
         str(_free_port()), str(script), str(tmp_path), strategy, str(tmp_path / "cache")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [int(np.load(tmp_path / f"world{r}.npy")) for r in (0, 1)] == [2, 2]
    np.testing.assert_array_equal(np.load(tmp_path / "weights0.npy"),
                                  np.load(tmp_path / "weights1.npy"))
    np.testing.assert_allclose(np.load(tmp_path / "latents0.npy"),
                               np.load(tmp_path / "latents1.npy"))
    X, b = _data()
    alone = BlendEstimator(strategy=strategy, **dict(BLEND, batch_size=4)).fit(X, b)
    n_alone = _train_batches(alone.student_net_.history)
    assert [int(np.load(tmp_path / f"batches{r}.npy")) for r in (0, 1)] == \
        [-(-n_alone // 2)] * 2

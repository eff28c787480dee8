"""Beyond one machine: the shared teacher cache, searches under Dask and Ray, devices."""

import io
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import joblib.numpy_pickle
import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from sklearn_blend import (
    BlendEstimator,
    BlendTeacher,
    CrossModalEstimator,
    MaskedAutoencoder,
    NedsEstimator,
    NeuronEmbedding,
    PerBin,
    Recordings,
)
from sklearn_blend.training import teacher_cache as _teacher_cache
from sklearn_blend.training.core import resolve_device

from .helpers import (
    FIT_LOG_VARIABLE,
    FIT_SLEEP_VARIABLE,
    TINY,
    TINY_NEURONS,
    CountingTeacher,
    fit_students_in_cache,
    read_fit_log,
    set_environment,
)

ROOT = Path(__file__).resolve().parents[1]
TINY_NEDS = dict(hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=2,
                 batch_size=8, warmup_steps=1, early_stopping=False, random_state=0)
TINY_SESSION = dict(hidden_size=8, n_layers=1, n_heads=2, ffn_size=16, max_epochs=2,
                    batch_size=8, warmup_steps=1, early_stopping=False, random_state=0)


def cache_warnings(records):
    """The teacher cache's warnings among ``records`` (messages)."""
    return [str(getattr(r, "message", r)) for r in records
            if "teacher cache" in str(getattr(r, "message", r))
            or "fitting the same teacher" in str(getattr(r, "message", r))]


def counting_student(cache, **params):
    return BlendEstimator(teacher=CountingTeacher(**TINY), random_state=0, teacher_cache=cache,
                          **dict(TINY, **params))


# ------------------------------------------------------------- the shared teacher cache
def test_concurrent_processes_fit_each_teacher_once(tmp_path, monkeypatch):
    """Three processes fit students on the same two folds against one cache folder at once:
    each fold's teacher is fitted once, the others wait for it and read it."""
    log, cache = tmp_path / "fits.log", tmp_path / "cache"
    monkeypatch.setenv(FIT_LOG_VARIABLE, str(log))
    monkeypatch.setenv(FIT_SLEEP_VARIABLE, "0.5")  # a teacher fit the others must wait for
    folds = [np.arange(0, 16), np.arange(8, 24)]
    context = multiprocessing.get_context("spawn")
    n_processes = 3
    barrier, results = context.Barrier(n_processes), context.Queue()
    processes = [context.Process(target=fit_students_in_cache,
                                 args=(str(cache), folds, [0.3, 0.7], barrier, results))
                 for _ in range(n_processes)]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=240) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
    for _, caught, error in reports:
        assert error is None, error
        assert cache_warnings(caught) == []
    fits = read_fit_log(log)
    assert len(fits) == len(folds) and len(set(fits)) == len(folds), fits
    entries = sorted(cache.rglob("output.pkl"))
    assert len(entries) == len(folds)
    for entry in entries:  # every entry whole and stamped
        teacher = joblib.load(entry)
        assert isinstance(teacher, CountingTeacher)
        assert len(teacher._teacher_cache_key) == 32
    assert not list(cache.rglob("output.pkl.*"))  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_corrupt_entry_is_refitted_with_a_warning(trials, tmp_path, monkeypatch, damage):
    X, b = trials
    log, cache = tmp_path / "fits.log", tmp_path / "cache"
    monkeypatch.setenv(FIT_LOG_VARIABLE, str(log))
    first = counting_student(str(cache)).fit(X, b)
    (entry,) = cache.rglob("output.pkl")
    data = entry.read_bytes()
    entry.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x80\x04not a pickle",
                       "empty": b""}[damage])
    with pytest.warns(UserWarning, match="corrupt entry under this fit's key"):
        again = counting_student(str(cache)).fit(X, b)
    assert len(read_fit_log(log)) == 2
    np.testing.assert_array_equal(again.transform(X), first.transform(X))
    # the entry was replaced: the next fit reads it, silently
    assert joblib.load(entry)._teacher_cache_key == first.teacher_._teacher_cache_key
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        third = counting_student(str(cache), alpha=0.2).fit(X, b)
    assert cache_warnings(records) == [] and len(read_fit_log(log)) == 2
    assert third.teacher_._teacher_cache_key == first.teacher_._teacher_cache_key


def test_an_interrupted_write_leaves_no_entry(trials, tmp_path, monkeypatch):
    """A worker killed while writing an entry leaves only a temporary file: the entry appears
    whole (joblib writes a temporary file and renames it into place) or not at all."""
    X, b = trials
    cache = tmp_path / "cache"
    original = joblib.numpy_pickle.dump

    def dump_half_then_die(value, target, *args, **kwargs):
        buffer = io.BytesIO()
        original(value, buffer, *args, **kwargs)
        target.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        target.flush()
        raise KeyboardInterrupt  # the worker is stopped mid-write

    with monkeypatch.context() as patch:
        patch.setattr(joblib.numpy_pickle, "dump", dump_half_then_die)
        with pytest.raises(KeyboardInterrupt):
            BlendEstimator(random_state=0, teacher_cache=str(cache), **TINY).fit(X, b)
    assert list(cache.rglob("output.pkl.*"))  # the half-written temporary file
    assert not list(cache.rglob("output.pkl"))  # never under the entry's name
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        BlendEstimator(random_state=0, teacher_cache=str(cache), **TINY).fit(X, b)
    assert cache_warnings(records) == []
    (entry,) = cache.rglob("output.pkl")
    assert joblib.load(entry)._teacher_cache_key


@pytest.mark.parametrize("kind", ["native", "soft"])
def test_a_worker_waits_for_the_lock_then_fits_on_its_own(trials, tmp_path, monkeypatch,
                                                          kind):
    """While another worker holds a teacher's lock (or a dead one left a soft lock behind),
    a worker waits the lock timeout, warns and fits the teacher itself."""
    import filelock

    X, b = trials
    cache = tmp_path / "cache"
    monkeypatch.setenv("SKLEARN_BLEND_CACHE_LOCK", kind)
    first = BlendEstimator(random_state=0, teacher_cache=str(cache), **TINY).fit(X, b)
    for entry in cache.rglob("output.pkl"):
        entry.unlink()
    key = first.teacher_._teacher_cache_key
    lock_class = filelock.SoftFileLock if kind == "soft" else filelock.FileLock
    monkeypatch.setenv("SKLEARN_BLEND_CACHE_LOCK_TIMEOUT", "0.2")
    name = f"{key}.soft.lock" if kind == "soft" else f"{key}.lock"
    with lock_class(str(cache / _teacher_cache.LOCK_FOLDER / name)):
        with pytest.warns(UserWarning, match=r"waited 0.2 s for another worker"):
            again = BlendEstimator(random_state=0, teacher_cache=str(cache), **TINY).fit(X, b)
    np.testing.assert_array_equal(again.transform(X), first.transform(X))
    assert len(list(cache.rglob("output.pkl"))) == 1  # written all the same


def test_soft_locks_are_not_blocked_by_the_files_native_locks_leave(trials, tmp_path,
                                                                   monkeypatch):
    """A folder first used with native locks (whose released lock files stay) and then with
    SKLEARN_BLEND_CACHE_LOCK=soft: the soft lock takes its own file and does not wait."""
    X, b = trials
    cache = tmp_path / "cache"
    first = BlendEstimator(random_state=0, teacher_cache=str(cache), **TINY).fit(X, b)
    assert list((cache / _teacher_cache.LOCK_FOLDER).glob("*.lock"))  # left behind
    for entry in cache.rglob("output.pkl"):
        entry.unlink()
    monkeypatch.setenv("SKLEARN_BLEND_CACHE_LOCK", "soft")
    monkeypatch.setenv("SKLEARN_BLEND_CACHE_LOCK_TIMEOUT", "5")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "waited ..." warning
        again = BlendEstimator(random_state=0, teacher_cache=str(cache), **TINY).fit(X, b)
    np.testing.assert_array_equal(again.transform(X), first.transform(X))


def test_a_folder_that_takes_no_lock_still_caches(trials, tmp_path, monkeypatch):
    X, b = trials
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / _teacher_cache.LOCK_FOLDER).write_text("a file where the lock folder goes")
    with pytest.warns(UserWarning, match="cannot lock the teacher cache"):
        BlendEstimator(random_state=0, teacher_cache=str(cache), **TINY).fit(X, b)
    assert len(list(cache.rglob("output.pkl"))) == 1
    monkeypatch.setenv("SKLEARN_BLEND_CACHE_LOCK", "sometimes")
    with pytest.raises(ValueError, match="SKLEARN_BLEND_CACHE_LOCK must be"):
        BlendEstimator(random_state=0, teacher_cache=str(cache), **TINY).fit(X, b)
    monkeypatch.setenv("SKLEARN_BLEND_CACHE_LOCK", "native")
    monkeypatch.setenv("SKLEARN_BLEND_CACHE_LOCK_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="SKLEARN_BLEND_CACHE_LOCK_TIMEOUT must be"):
        BlendEstimator(random_state=0, teacher_cache=str(cache), **TINY).fit(X, b)


# ------------------------------------------------------------- searches on a cluster
def _search(estimator, grid, X, y, backend=None):
    search = GridSearchCV(estimator, grid, cv=KFold(2), refit=False,
                          n_jobs=None if backend is None else 2, error_score="raise")
    if backend is None:
        return search.fit(X, y)
    with joblib.parallel_config(backend=backend):
        return search.fit(X, y)


def _assert_same_scores(parallel, serial):
    for name in ("split0_test_score", "split1_test_score", "mean_test_score"):
        np.testing.assert_allclose(parallel.cv_results_[name], serial.cv_results_[name],
                                   rtol=1e-6, atol=1e-7)
    assert parallel.best_params_ == serial.best_params_


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_grid_search_under_dask_matches_serial(dask_client, trials, tmp_path):
    """Two Dask worker processes run the search and share a teacher cache folder: the same
    scores as a serial search, and one teacher fit per fold across the workers."""
    X, b = trials
    log = tmp_path / "fits.log"
    dask_client.run(set_environment, {FIT_LOG_VARIABLE: str(log)})
    grid = {"alpha": [0.3, 0.7]}
    serial = _search(counting_student(True), grid, X, b)
    parallel = _search(counting_student(str(tmp_path / "cache")), grid, X, b, backend="dask")
    _assert_same_scores(parallel, serial)
    fits = read_fit_log(log)  # written by the workers only
    assert len(fits) == 2 and len(set(fits)) == 2


def test_neds_and_autoencoder_searches_under_dask_match_serial(dask_client, trials):
    X, b = trials
    neds = NedsEstimator(**TINY_NEDS)
    _assert_same_scores(_search(neds, {"lr": [1e-3, 3e-3]}, X, b, backend="dask"),
                        _search(neds, {"lr": [1e-3, 3e-3]}, X, b))
    pipe = Pipeline([("mae", MaskedAutoencoder(**TINY_SESSION)), ("decode", PerBin(Ridge()))])
    grid = {"mae__mask_ratio": [0.25, 0.5]}
    _assert_same_scores(_search(pipe, grid, X.astype(np.float32), b, backend="dask"),
                        _search(pipe, grid, X.astype(np.float32), b))


@pytest.fixture
def ray_backend():
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    except Exception as error:  # no Ray here (a sandbox, no shared memory): skip
        pytest.skip(f"Ray does not start here: {error}")
    try:
        register_ray()
        yield "ray"
    finally:
        ray.shutdown()


def test_grid_search_under_ray_matches_serial(ray_backend, trials):
    X, b = trials
    student = BlendEstimator(random_state=0, **TINY)
    with warnings.catch_warnings():  # joblib's parallel_config names options Ray ignores
        warnings.filterwarnings("ignore", message=".*not supported using ray.*")
        parallel = _search(student, {"alpha": [0.3, 0.7]}, X, b, backend=ray_backend)
    _assert_same_scores(parallel, _search(student, {"alpha": [0.3, 0.7]}, X, b))


# ------------------------------------------------------------- devices
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"


@pytest.mark.parametrize("device", ["cuda", "cuda:7"])
def test_a_missing_cuda_device_is_a_clear_error(trials, monkeypatch, device):
    X, b = trials
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=re.escape(f"device={device!r}") + ".*CUDA is not"):
        BlendEstimator(device=device, **TINY).fit(X, b)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match=r"device='cuda:7'.*has 2 CUDA device\(s\)"):
        resolve_device("cuda:7")
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device("cuda") == "cuda"
    with pytest.raises(ValueError, match="'auto'"):
        resolve_device("gpu")


def _cross_modal_data():
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(16, 8, 2))
    spikes = rng.poisson(np.exp(latents @ rng.normal(size=(2, 6)) * 0.5)).astype(np.float32)
    lfp = (latents @ rng.normal(size=(2, 4)) + rng.normal(size=(16, 8, 4))).astype(np.float32)
    return lfp, spikes


def _neuron_data():
    rng = np.random.default_rng(0)
    behavior = rng.normal(size=(48, 2)).astype(np.float32)
    activity = (behavior[:, :1] + rng.normal(size=(48, 8))).astype(np.float32)
    return Recordings([activity], [behavior])


@pytest.mark.parametrize("name", ["BlendTeacher", "BlendEstimator", "NedsEstimator",
                                  "NeuronEmbedding", "MaskedAutoencoder",
                                  "CrossModalEstimator"])
def test_every_torch_estimator_resolves_auto(trials, name):
    X, b = trials
    expected = resolve_device("auto")
    if name == "BlendTeacher":
        estimator = BlendTeacher(device="auto", random_state=0, **TINY).fit(X, b)
    elif name == "BlendEstimator":
        estimator = BlendEstimator(device="auto", random_state=0, **TINY).fit(X, b)
        assert estimator.teacher_.device_ == expected
    elif name == "NedsEstimator":
        estimator = NedsEstimator(**dict(TINY_NEDS, device="auto")).fit(X, b)
    elif name == "NeuronEmbedding":
        estimator = NeuronEmbedding("hard", device="auto", random_state=0,
                                    **TINY_NEURONS).fit(_neuron_data())
    elif name == "MaskedAutoencoder":
        estimator = MaskedAutoencoder(**dict(TINY_SESSION, device="auto")).fit(X)
    else:
        lfp, spikes = _cross_modal_data()
        estimator = CrossModalEstimator(**dict(TINY_SESSION, device="auto")).fit(
            lfp, privileged=spikes)
        assert estimator.teacher_.device_ == expected
    assert estimator.device_ == expected


def test_auto_and_the_device_it_resolves_to_share_cached_teachers(trials, tmp_path,
                                                                  monkeypatch):
    X, b = trials
    fits = []
    original = _teacher_cache._fit
    monkeypatch.setattr(_teacher_cache, "_fit", lambda *a: fits.append(1) or original(*a))
    for device in ("auto", resolve_device("auto")):
        BlendEstimator(device=device, random_state=0, teacher_cache=str(tmp_path),
                       **TINY).fit(X, b)
    assert len(fits) == 1


class _TensorSpy(pickle.Pickler):
    """A pickler that records every tensor it pickles itself (not those pickled inside
    skorch's ``__getstate__``, which reloads them with a ``map_location``)."""

    def __init__(self, file):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.tensors = []

    def reducer_override(self, obj):
        if isinstance(obj, (torch.Tensor, torch.UntypedStorage, torch.TypedStorage)):
            self.tensors.append(tuple(getattr(obj, "shape", ())))
        return NotImplemented


@pytest.mark.parametrize("name", ["BlendEstimator", "NedsEstimator", "NeuronEmbedding",
                                  "CrossModalEstimator"])
def test_every_tensor_pickles_through_skorchs_device_mapping(trials, name):
    """A plain pickle of a CUDA tensor loads only where CUDA is; skorch reloads the tensors it
    pickles onto the CPU there. So a model fitted on a GPU loads on a machine without one
    only if every tensor of it goes through skorch: model, objective (with the frozen
    teacher), optimizer and callbacks (the scheduler, early stopping's best weights)."""
    X, b = trials
    if name == "BlendEstimator":
        model = BlendEstimator(random_state=0, **dict(TINY, early_stopping=True)).fit(X, b)
    elif name == "NedsEstimator":
        model = NedsEstimator(**TINY_NEDS).fit(X, b)
    elif name == "NeuronEmbedding":
        model = NeuronEmbedding("hard", random_state=0, **TINY_NEURONS).fit(_neuron_data())
    else:
        lfp, spikes = _cross_modal_data()
        model = CrossModalEstimator(**TINY_SESSION).fit(lfp, privileged=spikes)
    spy = _TensorSpy(io.BytesIO())
    spy.dump(model)
    assert spy.tensors == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
class TestCuda:
    def test_cuda_and_cpu_fits_agree(self, trials):
        """From the same initial weights (a learning rate too small to move them apart), a
        CUDA fit transforms as a CPU fit does, up to float rounding."""
        X, b = trials
        settings = dict(TINY, random_state=0, teacher_cache=False, lr=1e-8)
        cpu = BlendEstimator(device="cpu", **settings).fit(X, b)
        gpu = BlendEstimator(device="cuda", **settings).fit(X, b)
        assert gpu.device_ == "cuda" and gpu.teacher_.device_ == "cuda"
        assert next(gpu.student_.parameters()).device.type == "cuda"
        on_cpu, on_gpu = cpu.transform(X), gpu.transform(X)
        assert on_gpu.shape == on_cpu.shape and on_gpu.dtype == np.float32
        np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-3, atol=1e-4)
        auto = BlendEstimator(device="auto", **dict(TINY, random_state=0)).fit(X, b)
        assert auto.device_ == "cuda" and np.isfinite(auto.transform(X)).all()

    def test_bfloat16_trains_under_autocast_on_cuda(self, trials):
        X, b = trials
        seen = set()

        def record(module, args, output):
            if isinstance(module, torch.nn.Linear) and isinstance(output, torch.Tensor):
                seen.add((output.device.type, output.dtype))

        handle = torch.nn.modules.module.register_module_forward_hook(record)
        try:
            model = BlendEstimator(device="cuda", precision="bfloat16", random_state=0,
                                   teacher_cache=False, **TINY).fit(X, b)
        finally:
            handle.remove()
        assert ("cuda", torch.bfloat16) in seen  # matrix products in bfloat16, on the GPU
        assert all(p.dtype == torch.float32 for p in model.student_.parameters())
        latents = model.transform(X)
        assert latents.dtype == np.float32 and np.isfinite(latents).all()

    def test_a_cuda_fitted_model_loads_and_predicts_on_cpu(self, trials, tmp_path):
        X, b = trials
        model = BlendEstimator(device="cuda", random_state=0, **TINY).fit(X, b)
        joblib.dump(model, tmp_path / "model.joblib")
        np.save(tmp_path / "X.npy", X)
        script = (
            "import sys, warnings, joblib, numpy as np, torch\n"
            "assert not torch.cuda.is_available()\n"
            "warnings.simplefilter('ignore')\n"
            "model = joblib.load(sys.argv[1])\n"
            "np.save(sys.argv[3], model.transform(np.load(sys.argv[2])))\n"
        )
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "model.joblib"),
                        str(tmp_path / "X.npy"), str(tmp_path / "latents.npy")],
                       env=dict(os.environ, CUDA_VISIBLE_DEVICES=""), cwd=ROOT, check=True,
                       timeout=300)
        np.testing.assert_allclose(np.load(tmp_path / "latents.npy"), model.transform(X),
                                   rtol=1e-4, atol=1e-5)

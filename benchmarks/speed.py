"""Training and inference speed: a reference-style BLEND loop against this package, one run.

Both sides train the paper's NDT (4 layers, 2 heads, feed-forward 128, model width N = all
neurons, attention window [t-8, t+4], dropout 0.1, batch 64, masking 25% of the time bins) on the
same trials, 80% for training and 20% validated every epoch (the reference takes a fixed
shuffled split, ours skorch's seeded split of the same sizes):

* **reference**: a plain-PyTorch loop written the way the official BLEND/NDT code is structured
  (``shared/reference/blend_and_base_models.md`` sections 1-2): identity embedding of the spikes
  (held-out columns zero) times sqrt(N), behavior concatenated for the teacher, learned
  positions, ``nn.TransformerEncoder`` (pre-norm, ReLU, dropout 0.1 on attention and
  feed-forward, embedding and rate dropout 0.2), a ``DataLoader`` over a ``TensorDataset``, the
  time-step mask drawn on the host with ``torch.bernoulli`` every step, labels of unmasked bins
  set to -100, and the frozen teacher's forward (``no_grad``) inside every student step;
* **ours**: :class:`sklearn_blend.BlendTeacher` / :class:`sklearn_blend.BlendEstimator` ``fit``
  (skorch training loop, early-stopping validation every epoch) with the same sizes, once in
  float32 (the default, exact) and once with ``precision="bfloat16"`` (autocast in training;
  inference always runs in float32, so it is timed once).

Reported per dataset: trials/s of teacher epochs, student (hard distillation) epochs and
inference (training trials / median epoch time, after a warm-up epoch; inference over all
trials), the ratio ours / reference, the student epoch over a plain (no-distillation) NDT epoch,
and the achieved GFLOP/s of our training epochs (FLOPs counted by
``torch.utils.flop_counter`` for one training step and one validation batch) as a fraction of
this machine's matmul peak in the precision the epoch runs in (fp32 or bf16), measured in the
same run as the best median of 2048^3 and 4096^3 matrix products. Our inference is reported
both as one full pass (``inference="full"``, the reference's equivalent) and with the default
masked inference (each bin predicted from a pass in which it was hidden,
``ceil(1 / mask_ratio) + 1`` passes).

Run ``python benchmarks/speed.py`` (20 minutes measured on 2 cores: MC-Maze-sized synthetic data
2,869 x 140 x 182 (137 held-in, 45 held-out neurons, 2-D behavior) and real MC_Maze_Small
75 x 140 x 142); it prints and writes ``benchmarks/results/speed.{csv,md}``. ``--quick`` (300
synthetic trials, 3 epochs) checks the script in a few minutes and writes ``speed_quick.*``;
``--report`` rebuilds the markdown table from the CSV without timing anything.
Nothing else may run on the machine meanwhile: OpenMP threads that share a core slow down many
times over (``shared/reference/cpu_performance.md``), so timings are medians after warm-up.
"""

from __future__ import annotations

import argparse
import copy
import math
import time

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from common import RESULTS
from sklearn_blend import BlendEstimator
from sklearn_blend.datasets import load_mc_maze_small, make_synthetic
from sklearn_blend.training.objective import pack

#: the paper's NDT (BLEND's mc_maze configs) and the optimisation settings both sides share
PAPER_NDT = dict(base="ndt", n_layers=4, n_heads=2, ffn_size=128, dropout=0.1, context_backward=8,
                 context_forward=4)
BATCH_SIZE = 64
MASK_RATIO = 0.25
ALPHA = 0.5
LR = 1e-3
VALIDATION_FRACTION = 0.2
#: the reference code's extra dropouts (embedding and rates)
REFERENCE_EMBEDDING_DROPOUT = 0.2
REFERENCE_RATE_DROPOUT = 0.2


# --------------------------------------------------------------------------------------------
# reference-style loop (structure of the official BLEND / NDT code)
# --------------------------------------------------------------------------------------------


class ReferenceNDT(nn.Module):
    """NDT as in the official code: identity embedding, d_model = N (+ behavior for a teacher)."""

    def __init__(self, n_neurons, n_time, n_behavior=0):
        super().__init__()
        width = n_neurons + n_behavior
        self.n_neurons, self.n_behavior = n_neurons, n_behavior
        self.position = nn.Parameter(torch.zeros(n_time, 1, width))
        self.embedding_dropout = nn.Dropout(REFERENCE_EMBEDDING_DROPOUT)
        layer = nn.TransformerEncoderLayer(
            width, PAPER_NDT["n_heads"], PAPER_NDT["ffn_size"], PAPER_NDT["dropout"],
            activation="relu", norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, PAPER_NDT["n_layers"], norm=nn.LayerNorm(width), enable_nested_tensor=False
        )
        self.rate_dropout = nn.Dropout(REFERENCE_RATE_DROPOUT)
        self.decoder = nn.Linear(width, n_neurons)
        t = torch.arange(n_time)
        offset = t[None, :] - t[:, None]
        allowed = (offset >= -PAPER_NDT["context_backward"]) & (
            offset <= PAPER_NDT["context_forward"])
        self.register_buffer(
            "context_mask", torch.zeros(n_time, n_time).masked_fill(~allowed, float("-inf"))
        )

    def forward(self, spikes, behavior=None):
        x = spikes.permute(1, 0, 2) * math.sqrt(self.n_neurons)  # (time, batch, neurons)
        if self.n_behavior:
            x = torch.cat([x, behavior.permute(1, 0, 2) * math.sqrt(self.n_behavior)], -1)
        x = self.embedding_dropout(x + self.position)
        x = self.encoder(x, mask=self.context_mask)
        return self.decoder(self.rate_dropout(x)).permute(1, 0, 2)


def reference_mask_batch(spikes, heldout):
    """The official ``mask.py`` at BLEND's defaults: zero 25% of bins, labels -100 elsewhere."""
    labels = spikes.clone()
    mask = torch.bernoulli(torch.full(spikes.shape[:2], MASK_RATIO)).bool()
    mask = mask.unsqueeze(2).expand_as(spikes)
    labels[~mask] = -100
    masked = spikes.clone()
    masked[mask] = 0
    masked = torch.cat([masked, torch.zeros_like(heldout)], -1)
    return masked, torch.cat([labels, heldout], -1)


def reference_mtm(log_rates, labels):
    loss = nn.functional.poisson_nll_loss(log_rates, labels, log_input=True, reduction="none")
    return loss[labels != -100].mean()


def reference_epoch(model, loader, optimizer, teacher=None, valid=None):
    """One training epoch (and a validation pass), as the official runner does it."""
    model.train()
    for spikes, heldout, behavior in loader:
        masked, labels = reference_mask_batch(spikes, heldout)
        log_rates = model(masked, behavior)  # a student ignores the behavior
        loss = reference_mtm(log_rates, labels)
        if teacher is not None:
            with torch.no_grad():
                teacher_rates = teacher(masked, behavior)
            loss = ALPHA * loss + (1 - ALPHA) * nn.functional.mse_loss(log_rates, teacher_rates)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 200.0)
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for spikes, heldout, behavior in valid:
            masked, labels = reference_mask_batch(spikes, heldout)
            reference_mtm(model(masked, behavior), labels).item()


def reference_timings(data, n_epochs, seed):
    """Median epoch seconds of the reference teacher and student, and inference trials/s."""
    torch.manual_seed(seed)
    train, valid = data["train"], data["valid"]
    tensors = [torch.as_tensor(a) for a in (train["spikes"], train["heldout"],
                                            train["behavior"])]
    valid_tensors = [torch.as_tensor(a) for a in (valid["spikes"], valid["heldout"],
                                                  valid["behavior"])]
    loader = DataLoader(TensorDataset(*tensors), batch_size=BATCH_SIZE, shuffle=True)
    valid_loader = DataLoader(TensorDataset(*valid_tensors), batch_size=BATCH_SIZE)
    n_neurons = tensors[0].shape[2] + tensors[1].shape[2]
    n_time, n_behavior = tensors[0].shape[1], tensors[2].shape[2]
    seconds = {}
    teacher = ReferenceNDT(n_neurons, n_time, n_behavior)
    student = ReferenceNDT(n_neurons, n_time)
    for name, model, frozen in (("teacher", teacher, None), ("student", student, teacher)):
        optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=5e-5, eps=1e-6)

        def step(model=model, optimizer=optimizer, frozen=frozen):
            if frozen is not None:
                frozen.requires_grad_(False).eval()
            reference_epoch(model, loader, optimizer, frozen, valid_loader)

        seconds[name] = _median_seconds(step, n_epochs)
    spikes = torch.as_tensor(np.concatenate([train["spikes"], valid["spikes"]]))
    heldout = torch.zeros(len(spikes), n_time, n_neurons - spikes.shape[2])

    def infer():
        student.eval()
        with torch.no_grad():
            for start in range(0, len(spikes), BATCH_SIZE):
                batch = slice(start, start + BATCH_SIZE)
                student(torch.cat([spikes[batch], heldout[batch]], -1))

    seconds["inference"] = _median_seconds(infer, 3)
    return seconds


def _median_seconds(run, n_runs):
    """Median wall time of ``run()`` over ``n_runs - 1`` calls after one warm-up call."""
    run()
    times = []
    for _ in range(max(n_runs - 1, 1)):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


# --------------------------------------------------------------------------------------------
# our training path
# --------------------------------------------------------------------------------------------


def _estimator_params(data, n_epochs, seed):
    return dict(
        hidden_size=data["n_neurons"], **PAPER_NDT, batch_size=BATCH_SIZE, lr=LR,
        mask_ratio=MASK_RATIO, max_epochs=n_epochs, early_stopping=True,
        n_iter_no_change=n_epochs + 1, validation_fraction=VALIDATION_FRACTION,
        n_heldout=data["n_heldout"], warmup_steps=10, random_state=seed, teacher_cache=False,
    )


def _epoch_seconds(net):
    """Median epoch time of a fitted skorch net, the first (warm-up) epoch left out."""
    return float(np.median(net.history[1:, "dur"]))


def _step_flops(net, batch, training):
    """FLOPs of one training step (forward and backward) or one validation forward of a
    fitted net: its model (``module_``) under its objective (``criterion_``)."""
    for module in (net.module_, net.criterion_):
        module.train(training)
    with FlopCounterMode(display=False) as counter:
        if training:
            net.criterion_(*net.infer(batch))["loss"].backward()
        else:
            with torch.no_grad():
                net.criterion_(*net.infer(batch))
    net.module_.zero_grad(set_to_none=True)
    net.criterion_.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def _epoch_flops(net, arrays, n_train, n_valid):
    """FLOPs of one epoch of a fitted net: training steps plus validation batches."""
    full = {k: torch.as_tensor(v[:BATCH_SIZE]) for k, v in arrays.items()}
    full["valid_mask"] = torch.zeros(full["inputs.spikes"].shape[:2], dtype=torch.bool)
    train_flops = _step_flops(net, full, True)
    valid_flops = _step_flops(net, full, False)
    return (n_train / BATCH_SIZE) * train_flops + (n_valid / BATCH_SIZE) * valid_flops


def our_timings(data, n_epochs, seed, precision):
    """Median epoch seconds of our teacher, student and plain model, inference, and FLOPs."""
    X = np.concatenate([data["train"]["spikes"], data["train"]["heldout"]], -1)
    X = np.concatenate([X, np.concatenate([data["valid"]["spikes"],
                                           data["valid"]["heldout"]], -1)])
    b = np.concatenate([data["train"]["behavior"], data["valid"]["behavior"]])
    params = _estimator_params(data, n_epochs, seed) | {"precision": precision}
    student = BlendEstimator(strategy="hard", alpha=ALPHA, **params).fit(X, b)
    plain = BlendEstimator(strategy=None, **params).fit(X)
    n_valid = math.ceil(VALIDATION_FRACTION * len(X))
    n_train = len(X) - n_valid
    heldin = X[..., : X.shape[2] - data["n_heldout"]]
    behavior = student.teacher_.encode_behavior(b, X)
    student_arrays = pack({"spikes": heldin, "behavior": behavior}, {"spikes": X})
    seconds = {
        "teacher": _epoch_seconds(student.teacher_.net_),
        "student": _epoch_seconds(student.student_net_),
        "plain": _epoch_seconds(plain.student_net_),
    }
    teacher_net = copy.deepcopy(student.teacher_.net_)
    teacher_net.module_.requires_grad_()  # the student froze its teacher: count a trainable copy
    flops = {
        "teacher": _epoch_flops(teacher_net, student_arrays, n_train, n_valid),
        "student": _epoch_flops(student.student_net_, student_arrays, n_train, n_valid),
        "plain": _epoch_flops(plain.student_net_, {
            k: v for k, v in student_arrays.items() if k != "inputs.behavior"}, n_train,
            n_valid),
    }
    if precision == "float32":  # inference runs in float32 whatever the training precision
        for inference in ("full", "masked"):
            model = student.set_params(inference=inference)
            seconds[f"inference_{inference}"] = _median_seconds(lambda: model.transform(X), 3)
    return seconds, flops


def matmul_peak(dtype=torch.float32, sizes=(2048, 4096), repeats=7):
    """Matmul GFLOP/s of this machine in ``dtype``: best median over square products."""
    best = 0.0
    for n in sizes:
        a, b, out = (torch.randn(n, n).to(dtype) for _ in range(3))
        seconds = _median_seconds(lambda a=a, b=b, out=out: torch.mm(a, b, out=out), repeats)
        best = max(best, 2 * n**3 / seconds / 1e9)
    return best


# --------------------------------------------------------------------------------------------
# data and report
# --------------------------------------------------------------------------------------------


def _split(spikes, heldout, behavior, seed):
    """Shuffled 80/20 train/validation split of trials, as both loops use it."""
    order = np.random.default_rng(seed).permutation(len(spikes))
    n_valid = math.ceil(VALIDATION_FRACTION * len(spikes))
    parts = {"valid": order[:n_valid], "train": order[n_valid:]}
    return {
        name: {"spikes": spikes[idx], "heldout": heldout[idx], "behavior": behavior[idx]}
        for name, idx in parts.items()
    } | {"n_neurons": spikes.shape[2] + heldout.shape[2], "n_heldout": heldout.shape[2]}


def datasets(quick):
    n_trials = 300 if quick else 2869
    X, b = make_synthetic("simple", n_trials=n_trials, n_time=140, n_neurons=182,
                          random_state=0)
    X, b = X.astype(np.float32), b.astype(np.float32)
    yield f"synthetic {n_trials} x 140 x 182", _split(X[..., :137], X[..., 137:], b, 0)
    small = load_mc_maze_small()
    yield "MC_Maze_Small 75 x 140 x 142", _split(
        small.spikes, small.spikes_heldout, small.behavior.astype(np.float32), 0)


#: our two precisions: BlendEstimator ``precision`` -> short label and matmul dtype
PRECISIONS = {"float32": ("fp32", torch.float32), "bfloat16": ("bf16", torch.bfloat16)}


def report(rows, peaks, threads, command):
    table = pd.DataFrame(rows)
    peak_text = ", ".join(f"{PRECISIONS[p][0]} {peaks[p]:.0f}" for p in PRECISIONS)
    lines = [
        f"Command: `{command}` ({threads} threads; matmul peaks measured in the same run, "
        f"GFLOP/s: {peak_text}). Trials/s = training trials per second of a training epoch "
        "(validation pass included, median after a warm-up epoch), or trials per second of "
        "inference over all trials. Ours trains in float32 (the default, exact) and with "
        '`precision="bfloat16"` and always infers in float32; the reference runs in float32.',
        "",
        "| data | what | reference trials/s | ours fp32 trials/s | fp32 / reference "
        "| ours bf16 trials/s | bf16 / reference |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for what, label in (("teacher", "teacher epoch"), ("student", "student epoch (hard)")):
            ref = row[f"reference_{what}"]
            cells = [f"{ref:.1f}"]
            for precision in PRECISIONS:
                ours = row[f"ours_{precision}_{what}"]
                cells += [f"{ours:.1f}", f"{ours / ref:.2f}x"]
            lines.append(f"| {row['data']} | {label} | " + " | ".join(cells) + " |")
        ref, ours = row["reference_inference"], row["ours_inference"]
        lines.append(f"| {row['data']} | inference, one pass | {ref:.1f} | {ours:.1f} | "
                     f"{ours / ref:.2f}x | – | – |")
        lines.append(f"| {row['data']} | inference, masked (default) | – | "
                     f"{row['ours_inference_masked']:.1f} | – | – | – |")
    lines += [
        "",
        "| data | precision | our student epoch / plain NDT epoch | FLOPs of a student epoch "
        "/ plain epoch | reference student / teacher epoch | our GFLOP/s (plain, student) | "
        "fraction of the matmul peak of that precision (plain, student) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for precision, (label, _) in PRECISIONS.items():
            plain, student = (row[f"gflops_{precision}_{w}"] for w in ("plain", "student"))
            time_ratio = row[f"student_over_plain_{precision}"]
            lines.append(
                f"| {row['data']} | {label} | {time_ratio:.2f} | "
                f"{time_ratio * student / plain:.2f} | "
                f"{row['reference_student_over_teacher']:.2f} | {plain:.0f}, {student:.0f} | "
                f"{plain / peaks[precision]:.0%}, {student / peaks[precision]:.0%} |"
            )
    return table, "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 synthetic trials, 3 epochs")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per model (the first is a warm-up); default 4, quick 3")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--report", action="store_true",
                        help="only rebuild the markdown table from the CSV of an earlier run")
    args = parser.parse_args(argv)
    command = "python benchmarks/speed.py" + (" --quick" if args.quick else "")
    out = RESULTS / ("speed_quick" if args.quick else "speed")
    if args.report:
        rows = pd.read_csv(out.with_suffix(".csv")).to_dict("records")
        peaks = {precision: rows[0][f"peak_gflops_{precision}"] for precision in PRECISIONS}
        _, markdown = report(rows, peaks, rows[0]["threads"], command)
        out.with_suffix(".md").write_text(markdown + "\n")
        print(markdown)
        return
    torch.set_num_threads(args.threads)
    n_epochs = args.epochs or (3 if args.quick else 4)
    peaks = {precision: matmul_peak(dtype) for precision, (_, dtype) in PRECISIONS.items()}
    print(f"matmul peaks, GFLOP/s: {peaks} ({args.threads} threads)", flush=True)
    rows = []
    for name, data in datasets(args.quick):
        # MC_Maze_Small has one training step per epoch: time more epochs there
        epochs = n_epochs if len(data["train"]["spikes"]) > 10 * BATCH_SIZE else 4 * n_epochs
        reference = reference_timings(data, epochs, seed=0)
        n_train = len(data["train"]["spikes"])
        n_all = n_train + len(data["valid"]["spikes"])
        row = {"data": name, "epochs": epochs, "threads": args.threads}
        row |= {f"peak_gflops_{precision}": peak for precision, peak in peaks.items()}
        for what in ("teacher", "student"):
            row[f"reference_{what}"] = n_train / reference[what]
        row["reference_inference"] = n_all / reference["inference"]
        row["reference_student_over_teacher"] = reference["student"] / reference["teacher"]
        for precision in PRECISIONS:
            ours, flops = our_timings(data, epochs, seed=0, precision=precision)
            for what in ("teacher", "student", "plain"):
                row[f"ours_{precision}_{what}"] = n_train / ours[what]
                row[f"gflops_{precision}_{what}"] = flops[what] / ours[what] / 1e9
            if precision == "float32":
                row["ours_inference"] = n_all / ours["inference_full"]
                row["ours_inference_masked"] = n_all / ours["inference_masked"]
            row[f"student_over_plain_{precision}"] = ours["student"] / ours["plain"]
        rows.append(row)
        print(pd.Series(row).to_string(), flush=True)
    table, markdown = report(rows, peaks, args.threads, command)
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".md").write_text(markdown + "\n")
    print(markdown)
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()

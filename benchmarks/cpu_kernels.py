"""The CPU kernels behind our training-speed choices, measured on this machine.

Each row times one operation of an NDT training step at the paper's configuration (batch 64,
140 bins, 182 neurons, 2 heads of width 91), our choice beside the alternative:

* fp32 against bf16 matrix products (2048^3): whether bf16 autocast can help on this CPU;
* multi-head attention from the fused query-key-value tensor, forward and backward (training)
  and forward alone (inference, and the frozen teacher inside a student step): ours
  (:func:`sklearn_blend.models.layers.multi_head_attention`, each head a written-out softmax over
  strided views) against head-major ``F.scaled_dot_product_attention`` (split, transpose, the
  kernel, transpose back), with full context and with the window [t-8, t+4];
* a dropout mask for one 64 x 140 x 182 activation: :func:`sklearn_blend.models.layers.keep_mask`
  against ``bernoulli_`` (what ``nn.Dropout`` draws);
* one AdamW step over an NDT's parameters: ``fused=True`` against the default loop;
* a linear layer 8,960 x 182 @ 182 x out: output width 546 (the fused query-key-value layer)
  against 552 (the next multiple of 8), in GFLOP/s;
* one training step (forward and backward of the masked-modelling objective, batch 64 x 140
  bins, 137 held-in of 182 neurons) in ``precision="float32"`` against ``"bfloat16"``
  (autocast), for the paper's NDT and for the GRU base at widths 64 (the synthetic study's) and 182.

Run ``python benchmarks/cpu_kernels.py`` (about 1 minute, nothing else running); it prints and
writes ``benchmarks/results/cpu_kernels.{csv,md}``. Times are medians after warm-up calls.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from torch.nn import functional as F

from sklearn_blend.modalities import SPIKES
from sklearn_blend.training.objective import Objective, TimestepMasking, run_model
from sklearn_blend.models import build_model
from sklearn_blend.models.layers import banded_attention_mask, keep_mask, multi_head_attention

RESULTS = Path(__file__).resolve().parent / "results"
BATCH, N_TIME, N_NEURONS, N_HEADS = 64, 140, 182, 2
HEAD_WIDTH = N_NEURONS // N_HEADS


def _median_ms(run, repeats=10, warmup=3):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


def matmul_rows():
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    gflops = {}
    for name, dtype, repeats in (("fp32", torch.float32, 10), ("bf16", torch.bfloat16, 2)):
        x, y = a.to(dtype), b.to(dtype)
        gflops[name] = 2 * n**3 / _median_ms(lambda x=x, y=y: x @ y, repeats, 1) / 1e6
    return [("matmul 2048^3, GFLOP/s", "fp32", gflops["fp32"], "bf16", gflops["bf16"])]


def _sdpa_attention(qkv, mask):
    q, k, v = (z.view(BATCH, N_TIME, N_HEADS, HEAD_WIDTH).transpose(1, 2)
               for z in qkv.split(N_NEURONS, dim=-1))
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return y.transpose(1, 2).reshape(BATCH, N_TIME, N_NEURONS)


def attention_rows():
    qkv = torch.randn(BATCH, N_TIME, 3 * N_NEURONS, requires_grad=True)
    grad = torch.randn(BATCH, N_TIME, N_NEURONS)
    rows = []
    for label, mask in (("full", None), ("window [t-8, t+4]",
                                         banded_attention_mask(N_TIME, 8, 4))):
        ours = _median_ms(lambda mask=mask: multi_head_attention(qkv, N_HEADS, mask)
                          .backward(grad))
        kernel = _median_ms(lambda mask=mask: _sdpa_attention(qkv, mask).backward(grad))
        rows.append((f"attention fwd+bwd, {label}, ms", "per-head views", ours, "SDPA", kernel))
        with torch.inference_mode():
            ours = _median_ms(lambda mask=mask: multi_head_attention(qkv, N_HEADS, mask))
            kernel = _median_ms(lambda mask=mask: _sdpa_attention(qkv, mask))
        rows.append((f"attention forward, {label}, ms", "per-head views", ours, "SDPA", kernel))
    return rows


def dropout_rows():
    x = torch.randn(BATCH, N_TIME, N_NEURONS)
    ours = _median_ms(lambda: keep_mask(x.shape, 0.1))
    torch_mask = _median_ms(lambda: torch.empty_like(x).bernoulli_(0.9))
    return [("dropout mask 64 x 140 x 182, ms", "keep_mask", ours, "bernoulli_", torch_mask)]


#: the paper's NDT options (BLEND's mc_maze configs)
PAPER_NDT = dict(hidden_size=N_NEURONS, n_layers=4, n_heads=N_HEADS, ffn_size=128, dropout=0.1,
                 context_backward=8, context_forward=4)


def paper_ndt():
    return build_model(
        base="ndt", n_inputs=N_NEURONS, n_outputs=N_NEURONS, n_behavior=0, n_time=N_TIME,
        trial_behavior=0, options=PAPER_NDT)


def adamw_rows():
    model = paper_ndt()
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter)
    times = {}
    for name, options in (("fused", {"fused": True}), ("loop", {})):
        optimizer = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=0.1, **options)
        times[name] = _median_ms(optimizer.step, 20)
    return [("AdamW step, NDT 4 x 182, ms", "fused", times["fused"], "loop", times["loop"])]


def linear_rows():
    x = torch.randn(BATCH * N_TIME, N_NEURONS)
    gflops = {}
    for width in (546, 552):
        weight, bias = torch.randn(width, N_NEURONS), torch.randn(width)
        ms = _median_ms(lambda weight=weight, bias=bias: F.linear(x, weight, bias))
        gflops[width] = 2 * x.shape[0] * N_NEURONS * width / ms / 1e6
    return [("linear 8960 x 182 -> out, GFLOP/s", "out 546", gflops[546], "out 552",
             gflops[552])]


def precision_rows():
    spikes = torch.poisson(torch.rand(BATCH, N_TIME, 137))
    targets = torch.poisson(torch.rand(BATCH, N_TIME, N_NEURONS))
    models = {
        "NDT paper config": ("ndt", PAPER_NDT),
        "GRU width 64": ("gru", dict(hidden_size=64, dropout=0.2)),
        "GRU width 182": ("gru", dict(hidden_size=N_NEURONS, dropout=0.2)),
    }
    rows = []
    for label, (base, options) in models.items():
        model = build_model(base, n_inputs=137, n_outputs=N_NEURONS, n_behavior=0,
                            n_time=N_TIME, options=options).train()
        objective = Objective(TimestepMasking(0.25), {SPIKES.name: SPIKES})
        inputs, batch_targets = {"spikes": spikes}, {"spikes": targets}
        times = {}
        for precision in ("float32", "bfloat16"):

            def step(precision=precision):
                view = objective.masking(inputs, batch_targets, {}, training=True)
                output = run_model(model, view.inputs, precision)
                objective(output, view)["loss"].backward()
                model.zero_grad(set_to_none=True)

            times[precision] = _median_ms(step, repeats=5, warmup=1)
        rows.append((f"training step, {label}, ms", "fp32", times["float32"],
                     "bf16 autocast", times["bfloat16"]))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = [*matmul_rows(), *attention_rows(), *dropout_rows(), *adamw_rows(), *linear_rows(),
            *precision_rows()]
    table = pd.DataFrame(rows, columns=["operation", "ours", "ours_value", "alternative",
                                        "alternative_value"])
    lines = [
        f"Command: `python benchmarks/cpu_kernels.py` ({args.threads} threads).",
        "",
        "| operation | ours | value | alternative | value |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {op} | {ours} | {a:.1f} | {alt} | {b:.1f} |" for op, ours, a, alt, b in rows]
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "cpu_kernels"
    table.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()

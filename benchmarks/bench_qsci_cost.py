"""Cost of EfficientSCI (FP32) and Q-SCI at 2/3/4/8 bits: parameters, FLOPs, bit-operations, CPU time.

Counting convention (stated because the Q-SCI repository ships no counting code):
* MACs are counted per layer from the shapes seen in a real forward pass (forward hooks on every
  Conv3d / Dense / Conv3dQ / LinearQ and on the attention Cells): conv = output voxels x C_in x k_d x k_h x k_w,
  linear = tokens x in x out, attention = q@k^T + attn@v = 2 x tokens x T x T x head_dim x heads.
  Element-wise work (activations, softmax, residual sums, fake-quantisation itself) is not counted.
  Every counted term is linear in H x W, so the counts are taken on a small frame and scaled to ``--count_size``.
* FLOPs = 2 x MACs.
* BOPs = sum over layers of MACs x weight bits x activation bits; full-precision layers count 32 x 32.
  Attention matmuls count (bits of q) x (bits of k) and (bits of attn) x (bits of v).
* Theoretical speed-up = BOPs(FP32 EfficientSCI) / BOPs(model).
* "MACs x b_w / 32" is the convention that reproduces the Q-SCI figure's 8-bit value (563.87 G / 4);
  it is given for comparison only.

CPU time: median of ``--repeats`` eval forwards (after one warm-up) of one measurement of
``--time_size`` x ``--time_size`` pixels, PyNative, fake quantisation in float32 (so quantised models are *slower*
on CPU than FP32: the time says nothing about integer deployment).

    python benchmarks/bench_qsci_cost.py --variant S --out runs/qsci_cost.md
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

FP_BITS = 32
PAPER_FIGURE = {"fp32": 563.87, 8: 140.97, 4: 71.59, 3: 37.47}  # qsci figure/psnr.png, EfficientSCI-S, "G"


def _layer_bits(cell):
    from mindediting.models.common.quantizers import Conv3dQ, LinearQ

    if isinstance(cell, (Conv3dQ, LinearQ)):
        return cell.nbits, cell.act.nbits
    return FP_BITS, FP_BITS


def count_macs(net, inputs):
    """[(layer name, kind, MACs, weight bits, activation bits)] from one forward pass."""
    from mindspore import nn

    from mindediting.models.common.quantizers import Conv3dQ, LinearQ
    from mindediting.models.efficientsci import TimesAttention3D
    from mindediting.models.qsci import QuantizedTimesAttention3D

    rows, handles = [], []

    def conv_hook(name):
        def hook(cell, args, out):
            w = cell.weight.shape
            rows.append((name, "conv3d", int(np.prod(out.shape[1:])) * int(np.prod(w[1:])), *_layer_bits(cell)))

        return hook

    def dense_hook(name):
        def hook(cell, args, out):
            tokens = int(np.prod(args[0].shape[:-1]))
            rows.append((name, "linear", tokens * int(cell.weight.shape[0] * cell.weight.shape[1]), *_layer_bits(cell)))

        return hook

    def attn_hook(name):
        def hook(cell, args, out):
            n_tok, t, c = args[0].shape
            macs = n_tok * t * t * (c // 2)  # one of the two matmuls (heads x head_dim = c/2)
            if isinstance(cell, QuantizedTimesAttention3D):
                rows.append((name + ".qk", "matmul", macs, cell.q_act.nbits, cell.k_act.nbits))
                rows.append((name + ".av", "matmul", macs, cell.attn_act.nbits, cell.v_act.nbits))
            else:
                rows.append((name + ".qk", "matmul", macs, FP_BITS, FP_BITS))
                rows.append((name + ".av", "matmul", macs, FP_BITS, FP_BITS))

        return hook

    for name, cell in net.cells_and_names():
        if isinstance(cell, (nn.Conv3d, Conv3dQ)):
            handles.append(cell.register_forward_hook(conv_hook(name)))
        elif isinstance(cell, (nn.Dense, LinearQ)):
            handles.append(cell.register_forward_hook(dense_hook(name)))
        elif isinstance(cell, (TimesAttention3D, QuantizedTimesAttention3D)):
            handles.append(cell.register_forward_hook(attn_hook(name)))
    net(*inputs)
    for handle in handles:
        handle.remove()
    return rows


def make_inputs(batch, frames, size, channel_axis, seed=0):
    import mindspore as ms

    rng = np.random.default_rng(seed)
    mask = (rng.random((batch, frames, size, size)) > 0.5).astype(np.float32)
    mask_s = mask.sum(1, keepdims=True)
    mask_s[mask_s == 0] = 1
    meas = (mask * rng.random(mask.shape)).sum(1, keepdims=True).astype(np.float32)
    if not channel_axis:
        meas, mask_s = meas[:, 0], mask_s[:, 0]
    return [ms.Tensor(meas), ms.Tensor(mask), ms.Tensor(mask_s)]


def build(label, ctor):
    from mindediting.models import build_model

    if label == "fp32":
        return build_model("efficientsci", **ctor), True
    return build_model("qsci", bit_depth=label, **ctor), False


def weight_param_count(net):
    """Conv/linear weights and biases (quantiser steps, zero points, shifts and buffers excluded)."""
    params = list(net.get_parameters())
    weights = [p for p in params if p.name.endswith((".weight", ".bias")) and ".move" not in p.name]
    total = sum(int(np.prod(p.shape)) for p in weights)
    extra = sum(int(np.prod(p.shape)) for p in params if p.requires_grad) - total
    return total, extra


def time_forward(net, inputs, repeats):
    net(*inputs)[0].asnumpy()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net(*inputs)[0].asnumpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(args):
    from tqdm import tqdm

    from mindediting.models.efficientsci import VARIANTS

    ctor = dict(VARIANTS[args.variant])
    labels = ["fp32"] + [int(b) for b in args.bits]
    scale = (args.count_size / args.probe_size) ** 2
    results = []
    for label in tqdm(labels, desc="models", unit="model"):
        net, channel_axis = build(label, ctor)
        rows = count_macs(net, make_inputs(1, args.frames, args.probe_size, channel_axis))
        macs = sum(r[2] for r in rows) * scale
        bops = sum(r[2] * r[3] * r[4] for r in rows) * scale
        linear_bits = sum(r[2] * r[3] for r in rows) * scale / FP_BITS
        params, quant_params = weight_param_count(net)
        seconds = None
        if args.repeats > 0:
            seconds = time_forward(net, make_inputs(1, args.frames, args.time_size, channel_axis, seed=1), args.repeats)
        results.append({
            "model": f"EfficientSCI-{args.variant} FP32" if label == "fp32" else f"Q-SCI-{args.variant} {label}-bit",
            "bits": FP_BITS if label == "fp32" else label,
            "params": params, "quantizer_params": quant_params, "layers": len(rows),
            "gmacs": macs / 1e9, "gflops": 2 * macs / 1e9, "gbops": bops / 1e9, "g_macs_bw_over_32": linear_bits / 1e9,
            "paper_figure_g": PAPER_FIGURE.get(label), "cpu_seconds": seconds,
        })
    fp_bops = results[0]["gbops"]
    for r in results:
        r["speedup_bops"] = fp_bops / r["gbops"]
    return results


def to_markdown(results, args):
    head = (f"EfficientSCI-{args.variant} / Q-SCI, one measurement of {args.frames} frames at "
            f"{args.count_size}x{args.count_size} (counts); CPU time at {args.time_size}x{args.time_size}, "
            f"median of {args.repeats}\n\n")
    cols = (
        "| model | params (M) | quantiser params | GMACs | GFLOPs | GBOPs (MACs x b_w x b_a) | speed-up (BOPs) "
        "| MACs x b_w/32 (G) | Q-SCI figure (G) | CPU time (s) |"
    )
    lines = [cols, "|" + "|".join(["---"] * (cols.count("|") - 1)) + "|"]
    for r in results:
        fig = "" if r["paper_figure_g"] is None else f"{r['paper_figure_g']:.2f}"
        sec = "" if r["cpu_seconds"] is None else f"{r['cpu_seconds']:.2f}"
        lines.append(
            f"| {r['model']} | {r['params'] / 1e6:.3f} | {r['quantizer_params']} | {r['gmacs']:.2f} | "
            f"{r['gflops']:.2f} | "
            f"{r['gbops']:.1f} | {r['speedup_bops']:.2f}x | {r['g_macs_bw_over_32']:.2f} | {fig} | {sec} |"
        )
    return head + "\n".join(lines) + "\n"


def write_atomic(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--variant", default="S", choices=["T", "S", "B", "L"], help="EfficientSCI size (Q-SCI uses S)")
    parser.add_argument("--bits", nargs="+", type=int, default=[8, 4, 3, 2], help="Q-SCI bit widths")
    parser.add_argument("--frames", type=int, default=8, help="compression ratio (frames per measurement)")
    parser.add_argument("--count_size", type=int, default=256, help="frame size the counts are reported for")
    parser.add_argument("--probe_size", type=int, default=8, help="frame size of the counting forward (even)")
    parser.add_argument("--time_size", type=int, default=32, help="frame size of the timed forwards (even)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per model (0 = skip timing)")
    parser.add_argument("--out", help="write the markdown table here (and the numbers to <out>.json)")
    args = parser.parse_args(argv)
    for key in ("probe_size", "time_size"):
        if getattr(args, key) % 2 or getattr(args, key) < 2:
            parser.error(f"--{key} must be a positive even number, got {getattr(args, key)}")
    results = run(args)
    table = to_markdown(results, args)
    print(table)
    if args.out:
        write_atomic(args.out, table)
        write_atomic(os.path.splitext(args.out)[0] + ".json", json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()

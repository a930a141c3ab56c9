"""Make Vimeo-90K low-resolution septuplets: BIx4 (MATLAB bicubic) and/or BDx4 (Gaussian blur sigma 1.6, every 4th pixel).

Examples:
    python src/scripts/vimeo_preprocess.py --root data/vimeo_septuplet --meta_file sep_trainlist.txt --mode bi
    python src/scripts/vimeo_preprocess.py --root data/vimeo_septuplet --meta_file sep_testlist.txt --mode both

Reads ``<root>/sequences/<clip>/im1..7.png`` for the clips listed in ``<root>/<meta_file>`` and writes
``<root>/BIx4/<clip>/imN.png`` (MATLAB ``imresize(img, 1/4, 'bicubic')`` on uint8, rounded as MATLAB does)
and/or ``<root>/BDx4/<clip>/imN.png`` (the BD degradation of BasicVSR/mmagic). Every file is written
atomically, and files that already exist are skipped, so an interrupted run continues where it stopped.
"""
import argparse
import multiprocessing
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mindediting.data.video_io import write_bytes_atomic  # noqa: E402
from mindediting.utils.cli import run_cli  # noqa: E402
from mindediting.utils.matlab_resize import bd_downsample, imresize  # noqa: E402

MODES = {"bi": ("BIx4",), "bd": ("BDx4",), "both": ("BIx4", "BDx4")}


def bi_downsample(img, scale=4):
    """MATLAB ``imresize(uint8, 1/scale, 'bicubic')``: antialiased cubic, rounded half away from zero to uint8."""
    return np.clip(np.floor(imresize(img, 1.0 / scale) + 0.5), 0, 255).astype(np.uint8)


def degrade(img, kind, scale=4):
    return bi_downsample(img, scale) if kind == "BIx4" else bd_downsample(img, scale, 1.6)


def _job(args):
    src, dsts = args
    img = cv2.imread(src, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{src}: cannot read image")
    for kind, dst in dsts:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        ok, buf = cv2.imencode(".png", degrade(img, kind))
        if not ok:
            raise ValueError(f"{dst}: cannot encode PNG")
        write_bytes_atomic(dst, buf.tobytes())
    return len(dsts)


def plan(root, meta_file, kinds, gt_dir="sequences"):
    """``[(src, [(kind, dst)])]`` for every frame that still lacks an output."""
    meta = meta_file if os.path.isabs(meta_file) else os.path.join(root, meta_file)
    if not os.path.isfile(meta):
        raise ValueError(f"{meta}: Vimeo90K list file not found")
    jobs = []
    with open(meta, encoding="utf-8") as handle:
        clips = [line.strip() for line in handle if line.strip()]
    for clip in clips:
        for i in range(1, 8):
            src = os.path.join(root, gt_dir, clip, f"im{i}.png")
            if not os.path.isfile(src):
                raise ValueError(f"{meta}: {src} not found")
            todo = [(k, os.path.join(root, k, clip, f"im{i}.png")) for k in kinds]
            todo = [(k, d) for k, d in todo if not os.path.isfile(d)]
            if todo:
                jobs.append((src, todo))
    return jobs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="vimeo_septuplet folder (holds sequences/)")
    parser.add_argument("--meta_file", default="sep_trainlist.txt", help="clip list, relative to --root")
    parser.add_argument("--mode", choices=tuple(MODES), default="bi")
    parser.add_argument("--num_workers", type=int, default=max(1, min(8, os.cpu_count() or 1)))
    args = parser.parse_args(argv)
    # a frame that cannot be read or encoded raises ValueError naming the file, inside a worker too
    return run_cli(lambda: process(args), errors=(ValueError,))


def process(args):
    from tqdm import tqdm

    if not os.path.isdir(os.path.join(args.root, "sequences")):
        raise ValueError(f"{args.root}: no sequences/ folder; not a Vimeo-90K septuplet root")
    jobs = plan(args.root, args.meta_file, MODES[args.mode])
    bar = tqdm(total=len(jobs), desc=args.mode, unit="frame")
    if args.num_workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(args.num_workers) as pool:
            for _ in pool.imap_unordered(_job, jobs, chunksize=8):
                bar.update(1)
    else:
        for job in jobs:
            _job(job)
            bar.update(1)
    bar.close()
    print(f"{len(jobs)} frame(s) processed ({', '.join(MODES[args.mode])})")


if __name__ == "__main__":
    sys.exit(main())

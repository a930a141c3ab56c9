"""Simulate spike-camera streams from videos (integrate-and-fire, as lshpku/spikling preprocess.py).

Writes the upstream training windows ``<output_dir>/<video stem>-NNNN.npz`` (32 spike frames + the grey ground
truth frame at index 16 of each window) and, with ``--dat``, the whole spike stream as ``<output_dir>/<stem>.dat``.

Example:
    python src/scripts/video_to_spike.py --video clip.mp4 --size 256 256 --window 32 --output_dir data/spike --dat
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", nargs="+", required=True, help="input video file(s)")
    parser.add_argument("--output_dir", required=True, help="folder for the .npz windows (and .dat files)")
    parser.add_argument("--size", nargs=2, type=int, default=(256, 256), metavar=("W", "H"),
                        help="output frame size; frames are centre-cropped to its aspect ratio (default 256 256)")
    parser.add_argument("--window", type=int, default=32, help="spike frames per training window (default 32)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed numpy's global RNG (initial accumulator) before each video; default: unseeded")
    parser.add_argument("--dat", action="store_true", help="also write every simulated frame to <stem>.dat")
    parser.add_argument("--no_npz", action="store_true", help="write no .npz windows (only with --dat)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mindediting.utils.cli import run_cli

    return run_cli(lambda: convert(args), errors=(OSError, ValueError))


def convert(args):
    import numpy as np
    from tqdm import tqdm

    from mindediting.data.spike_simulation import video_to_spike

    if args.no_npz and not args.dat:
        raise ValueError("--no_npz without --dat would write nothing")
    if args.window < 1 or min(args.size) < 1:
        raise ValueError(f"--window and --size must be positive, got {args.window} and {args.size}")
    from mindediting.utils.atomic import check_writable_dir

    check_writable_dir(args.output_dir)
    total = 0
    for video in args.video:
        stem = os.path.splitext(os.path.basename(video))[0]
        pattern = None if args.no_npz else os.path.join(args.output_dir, stem.replace("{", "{{").replace("}", "}}") + "-{:04d}.npz")
        dat = os.path.join(args.output_dir, f"{stem}.dat") if args.dat else None
        if args.seed is not None:
            np.random.seed(args.seed)
        with tqdm(desc=stem, unit="window") as bar:
            files = video_to_spike(video, tuple(args.size), args.window, pattern, dat_path=dat, progress=bar)
        total += len(files)
        print(f"{video}: {len(files)} window(s)" + (f", spikes in {dat}" if dat else ""))
    print(f"wrote {total} window file(s) to {args.output_dir}")


if __name__ == "__main__":
    sys.exit(main())

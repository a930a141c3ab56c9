"""Pack REDS / Vimeo90K / any PNG folder into a BasicSR-compatible LMDB (data.mdb, lock.mdb, meta_info.txt).

Examples:
    python src/scripts/create_lmdb.py --dataset reds --input data/REDS/train_sharp --output data/REDS/train_sharp.lmdb
    python src/scripts/create_lmdb.py --dataset reds --input data/REDS/train_sharp_bicubic/X4 \\
        --output data/REDS/train_sharp_bicubic_X4.lmdb
    python src/scripts/create_lmdb.py --dataset vimeo90k --input data/vimeo_septuplet/sequences \\
        --meta_file data/vimeo_septuplet/sep_trainlist.txt --output data/vimeo_septuplet/vimeo90k_train_GT.lmdb
    python src/scripts/create_lmdb.py --dataset folder --input some/pngs --output some/pngs.lmdb

Keys: REDS ``000/00000000`` (clip/frame), Vimeo90K ``00001/0001/im4``, folder: the relative path without
extension. Values are PNG bytes (compress level 1 by default, as BasicSR). Running the same command again
after an interruption resumes; the LMDB gets meta_info.txt and a .complete marker only when finished.
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from mindediting.data.lmdb_io import LmdbError, write_lmdb  # noqa: E402
from mindediting.utils.atomic import check_writable_dir  # noqa: E402
from mindediting.utils.cli import run_cli  # noqa: E402


def reds_keys(root):
    """``(paths, keys)`` for ``root/<clip>/<frame>.png``."""
    paths, keys = [], []
    for clip in sorted(os.listdir(root)):
        folder = os.path.join(root, clip)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith(".png") and not name.startswith("."):
                paths.append(os.path.join(folder, name))
                keys.append(f"{clip}/{name[:-4]}")
    return paths, keys


def vimeo_keys(root, meta_file, frames):
    """``(paths, keys)`` for the septuplets listed in ``meta_file`` (lines ``00001/0001``)."""
    if not meta_file or not os.path.isfile(meta_file):
        raise LmdbError(f"{meta_file}: Vimeo90K list file not found (--meta_file sep_trainlist.txt)")
    paths, keys = [], []
    with open(meta_file, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            clip = line.strip()
            if not clip:
                continue
            for i in frames:
                path = os.path.join(root, clip, f"im{i}.png")
                if not os.path.isfile(path):
                    raise LmdbError(f"{meta_file}: line {number}: {path} not found")
                paths.append(path)
                keys.append(f"{clip}/im{i}")
    return paths, keys


def folder_keys(root):
    paths, keys = [], []
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if name.lower().endswith(".png") and not name.startswith("."):
                path = os.path.join(dirpath, name)
                paths.append(path)
                keys.append(os.path.relpath(path, root)[:-4].replace(os.sep, "/"))
    return paths, keys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=("reds", "vimeo90k", "folder"))
    parser.add_argument("--input", required=True, help="image root (REDS: train_sharp; Vimeo90K: sequences or BIx4)")
    parser.add_argument("--output", required=True, help="output folder, must end with .lmdb")
    parser.add_argument("--meta_file", help="Vimeo90K: sep_trainlist.txt / sep_testlist.txt")
    parser.add_argument("--vimeo_frames", default="1,2,3,4,5,6,7",
                        help="Vimeo90K frames to pack (BasicSR's GT LMDB uses only 4)")
    parser.add_argument("--compress_level", type=int, default=1, help="PNG compression 0-9 (BasicSR: 1)")
    parser.add_argument("--batch", type=int, default=5000, help="images per LMDB commit")
    parser.add_argument("--num_workers", type=int, default=max(1, min(8, os.cpu_count() or 1)),
                        help="processes reading and encoding images")
    return parser.parse_args(argv)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)

    def run():
        if not os.path.isdir(args.input):
            raise LmdbError(f"{args.input}: input folder not found")
        if not 0 <= args.compress_level <= 9 or args.batch < 1 or args.num_workers < 1:
            raise LmdbError("--compress_level must be 0-9, --batch and --num_workers >= 1")
        if not args.output.rstrip("/").endswith(".lmdb"):
            raise LmdbError(f"{args.output}: output path must end with .lmdb (BasicSR convention)")
        if args.dataset == "reds":
            paths, keys = reds_keys(args.input)
        elif args.dataset == "vimeo90k":
            if not args.meta_file:
                raise LmdbError("--dataset vimeo90k needs --meta_file, the septuplet list of the Vimeo90K download "
                                "(sep_trainlist.txt or sep_testlist.txt)")
            frames = [int(f) for f in args.vimeo_frames.split(",")]
            paths, keys = vimeo_keys(args.input, args.meta_file, frames)
        else:
            paths, keys = folder_keys(args.input)
        if not paths:
            raise LmdbError(f"{args.input}: no PNG images found for --dataset {args.dataset}")
        check_writable_dir(args.output, "LMDB output folder")
        written = write_lmdb(paths, keys, args.output, compress_level=args.compress_level, batch=args.batch,
                             num_workers=args.num_workers)
        print(f"{args.output}: {len(keys)} images ({written} written in this run)")

    return run_cli(run, errors=(LmdbError,))


if __name__ == "__main__":
    sys.exit(main())

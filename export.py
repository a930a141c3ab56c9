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
import tempfile


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


def export_network(net, shapes, file_name, file_format="MINDIR", layout=None):
    """Export ``net`` for zero inputs of ``shapes``; returns the written file path.

    MindSpore writes into a hidden scratch folder beside the destination, which is also the working
    directory meanwhile: a shape the network cannot trace leaves its ``rank_0/om/analyze_fail.ir`` there,
    not in the user's folder, and an interrupted export leaves no partial file. The file is then renamed
    into place. A tracing failure is a ValueError with MindSpore's first line and ``layout``."""
    import mindspore as ms
    import numpy as np

    from mindediting.utils.atomic import fsync_dir

    if hasattr(net, "detect_mirror"):
        net.detect_mirror = False  # host-side test; not expressible in a static graph
    inputs = [ms.Tensor(np.zeros(s, np.float32)) for s in shapes]
    suffix = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}[file_format]
    out_path = file_name if file_name.endswith(suffix) else file_name + suffix
    folder, name = os.path.split(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix=f".{name}.", suffix=".partial", dir=folder) as scratch:
        os.chdir(scratch)
        # MindSpore's C++ side logs a failed trace (call stacks, ~70 lines) straight to file descriptor 2: kept
        # aside and shown only when the export succeeds, so a wrong shape ends in the one line below
        sys.stderr.flush()
        saved_fd = os.dup(2)
        log_path = os.path.join(scratch, "export.log")
        with open(log_path, "wb") as log:
            os.dup2(log.fileno(), 2)
        try:
            ms.export(net, *inputs, file_name=os.path.join(scratch, name[: -len(suffix)]), file_format=file_format)
        except (ValueError, TypeError, IndexError, RuntimeError) as err:
            reason = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
            given = " ".join(f"--input_shape {','.join(str(v) for v in s)}" for s in shapes)
            where = f" (expected layout: {layout})" if layout else ""
            raise ValueError(f"the network cannot be exported for {given}{where}: {reason}") from None
        else:
            with open(log_path, "rb") as log:
                os.write(saved_fd, log.read())
        finally:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            os.chdir(cwd)
        os.replace(os.path.join(scratch, name), os.path.join(folder, name))
    fsync_dir(folder)
    return out_path


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    from mindediting import registry
    from mindediting.config import load_config
    from mindediting.engine.runtime import build_network, load_network, setup_runtime
    from mindediting.utils.atomic import check_writable_dir
    from mindediting.utils.cli import run_cli

    def run():
        shapes = [parse_shape(s) for s in args.input_shape]
        cfg = load_config(args.config_path, args.overrides)
        spec = registry.get(cfg["model"]["name"])
        file_name = args.file_name
        if args.output_dir and not os.path.dirname(file_name):
            file_name = os.path.join(args.output_dir, file_name)
        check_writable_dir(os.path.dirname(os.path.abspath(file_name)), "export folder", create=False)
        setup_runtime(cfg, args)
        net = load_network(cfg, args.ckpt) if args.ckpt else build_network(cfg)
        check_input_count(spec, net, shapes)
        print(f"wrote {export_network(net, shapes, file_name, args.file_format, spec.layout)}")

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())

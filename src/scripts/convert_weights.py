"""Convert an official PyTorch checkpoint (.pth) to a MindSpore checkpoint (.ckpt), without torch.

Example:
    python src/scripts/convert_weights.py --model basicvsr \
        --src basicvsr_reds4_20120409-0e599677.pth --dst basicvsr_reds4.ckpt \
        --config configs/basicvsr/basicvsr_reds4.yaml
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from mindediting import registry  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=registry.names(), help="model name")
    parser.add_argument("--src", required=True, help="PyTorch checkpoint (.pth), as released upstream (zip or pre-1.6 legacy format)")
    parser.add_argument("--dst", required=True, help="MindSpore checkpoint to write (.ckpt)")
    parser.add_argument(
        "--config",
        help="YAML config whose model.args are the upstream constructor arguments; when given, the model is "
        "built and every missing, unexpected or shape-mismatched key is reported",
    )
    parser.add_argument(
        "--max_storage_gb", type=float, default=16,
        help="refuse files whose tensor storages add up to more than this many GiB (default 16)",
    )
    parser.add_argument(
        "--allow_extra", action="store_true",
        help="drop pickled objects other than tensors and plain data (one warning per key) instead of refusing "
        "the file; their code is never run either way",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # --allow_extra reports each dropped key as a warning line on stderr
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    from mindediting.config import load_config
    from mindediting.convert.converter import check_params, load_and_convert, save_ckpt
    from mindediting.convert.pth_reader import CheckpointError
    from mindediting.utils.cli import run_cli
    from mindediting.utils.atomic import check_writable_dir
    from mindediting.utils.resolve import resolve

    def run():
        model_kwargs = {}
        if args.config:
            cfg = load_config(args.config)
            if cfg["model"]["name"] != args.model:
                raise CheckpointError(f"{args.config}: model.name is '{cfg['model']['name']}', not '{args.model}'")
            model_kwargs = dict(cfg["model"].get("args") or {})
        check_writable_dir(os.path.dirname(os.path.abspath(args.dst)), "--dst folder")
        spec = registry.get(args.model)
        mapping = resolve(spec.weights) if spec.weights else None
        params = load_and_convert(args.src, mapping, args.max_storage_gb, args.allow_extra, **model_kwargs)
        if args.config:
            check_params(params, registry.build_model(args.model, **model_kwargs), args.src)
        save_ckpt(params, args.dst)
        print(f"wrote {args.dst} ({len(params)} tensors, {sum(v.size for v in params.values()):,} values)")

    return run_cli(run, errors=(ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())

"""Export the network weights of a training checkpoint as a small weights-only MindSpore checkpoint.

Example (the shipped pretrained/basicvsr_small_skvideo.ckpt):
    python src/scripts/export_weights_fp16.py --config configs/basicvsr/basicvsr_skvideo_train.yaml \
        --src runs/basicvsr_skvideo/checkpoints/iter_00000250.ckpt --dst pretrained/basicvsr_small_skvideo.ckpt

A training checkpoint (``train.py``) also holds the Adam moments, step counters and the loader/RNG state;
only the parameters of ``model`` (built from the config) are kept, checked strictly (every key present,
shapes equal), stored as float16 (``--dtype float32`` keeps full precision) and written atomically.
``load_weights`` (eval.py / infer.py ``--ckpt``) casts float16 entries back to the net's float32.
The largest relative rounding error of float16 is 2**-11 (about 5e-4).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import numpy as np  # noqa: E402

DTYPES = {"float16": np.float16, "float32": np.float32}


def export(src, dst, cfg, dtype="float16"):
    """Write the ``cfg`` model's parameters found in ``src`` to ``dst`` as ``dtype``; returns ``dst``."""
    from mindediting.convert.converter import check_params, save_ckpt
    from mindediting.convert.weights import load_weights, read_ckpt
    from mindediting.models import build_model

    loaded = read_ckpt(src)
    net = build_model(cfg["model"]["name"], **(cfg["model"].get("args") or {}))
    # the optimizer moments and loader state of a training checkpoint are left behind, by name
    params = {p.name: loaded[p.name].asnumpy() for p in net.get_parameters() if p.name in loaded}
    check_params(params, net, src)
    out = {}
    for key, value in params.items():
        if np.issubdtype(value.dtype, np.floating):
            if dtype == "float16" and np.abs(value).max(initial=0) > np.finfo(np.float16).max:
                raise ValueError(f"{src}: '{key}' holds values beyond the float16 range; use --dtype float32")
            value = value.astype(DTYPES[dtype])
        out[key] = value
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    save_ckpt(out, dst)
    load_weights(build_model(cfg["model"]["name"], **(cfg["model"].get("args") or {})), dst)
    return dst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML whose model section built the trained network")
    parser.add_argument("--src", required=True, help="training checkpoint (runs/<name>/checkpoints/iter_*.ckpt)")
    parser.add_argument("--dst", required=True, help="weights-only checkpoint to write")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float16", help="storage type (default float16)")
    args = parser.parse_args(argv)
    from mindediting.config import load_config
    from mindediting.utils.atomic import check_writable_dir
    from mindediting.utils.cli import run_cli

    def run():
        check_writable_dir(os.path.dirname(os.path.abspath(args.dst)), "--dst folder")
        export(args.src, args.dst, load_config(args.config), args.dtype)
        print(f"wrote {args.dst} ({os.path.getsize(args.dst) / 2**20:.2f} MiB, {args.dtype})")

    return run_cli(run, errors=(ValueError,))  # ConfigError and CheckpointError are ValueErrors


if __name__ == "__main__":
    sys.exit(main())

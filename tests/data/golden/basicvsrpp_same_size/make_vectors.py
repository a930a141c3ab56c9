"""Make the BasicVSR++ vectors in this folder by running the upstream mmagic file with torch (CPU).

    python -O tests/data/golden/basicvsrpp_same_size/make_vectors.py --mmagic_root /tmp/mmagic_src

Run from the repository root with a Python that has torch 2.13.0 and numpy < 2 (a separate venv; the package
and its tests never import torch). ``-O`` is required: upstream asserts that the flow input is at least 64x64
(a quality guard for SPyNet), which would make the vectors megabytes; the computation itself is defined for any
size, and with ``-O`` nothing else changes.

Upstream ``BasicVSRPlusPlusNet`` is imported by path from ``--mmagic_root``, with the mmengine/mmcv glue of
``benchmarks/bench_basicvsr_pp.py``; mmcv's compiled ``modulated_deform_conv2d`` is replaced by
``deform_conv2d_standin`` there, plain torch with torchvision ``deform_conv2d`` semantics (the shared
``basicvsrpp_small`` golden was made the same way; this stand-in reproduces it to 1.1e-6).

Cases (weights from ``synthetic_weights.py``, seed in config.json, none pretrained):
* ``same_size``: ``is_low_res_input=False`` (x1/4 torch bicubic for the flows, two stride-2 convs), official
  64 channels / 7 blocks, input (1, 3, 3, 32, 32) -> output (1, 3, 3, 32, 32).
* ``mirror_x4``: low-resolution input, 64 / 7, mirror-extended input (1, 4, 3, 16, 16) (frames f0 f1 f1 f0,
  so upstream reuses the backward flows) -> (1, 4, 3, 64, 64).
* ``bicubic``: ``F.interpolate(x, scale_factor=0.25, mode='bicubic')`` on (2, 3, 35, 42) (sizes not multiples
  of 4) -> (2, 3, 8, 10).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)
from benchmarks.bench_basicvsr_pp import STANDIN, upstream_basicvsrpp_class  # noqa: E402
from synthetic_weights import checksum, synthetic_state  # noqa: E402

CASES = {
    "same_size": dict(ctor=dict(mid_channels=64, num_blocks=7, is_low_res_input=False), seed=31,
                      input=(1, 3, 3, 32, 32), mirror=False),
    "mirror_x4": dict(ctor=dict(mid_channels=64, num_blocks=7), seed=32, input=(1, 4, 3, 16, 16), mirror=True),
}


def make_input(shape, mirror, seed):
    """Smooth random frames in [0, 1] (a bilinear x4 of coarse noise, so that flows are meaningful), frames 1..T
    shifted by a pixel each; mirror-extended: the first half followed by itself reversed."""
    rng = np.random.default_rng(seed)
    n, t, c, h, w = shape
    frames = t // 2 if mirror else t
    coarse = torch.from_numpy(rng.random((n * c, 1, h // 4 + 3, w // 4 + 3)))
    big = F.interpolate(coarse, scale_factor=4, mode="bilinear", align_corners=False).numpy()
    big = big.reshape(n, c, *big.shape[-2:])
    clip = np.stack([big[:, :, k: k + h, 2 * k: 2 * k + w] for k in range(frames)], axis=1)
    if mirror:
        clip = np.concatenate([clip, clip[:, ::-1]], axis=1)
    return np.ascontiguousarray(clip.astype(np.float32))


def run_case(cls, name, case):
    net = cls(**case["ctor"]).eval()
    keys = [[k, list(v.shape)] for k, v in net.state_dict().items()]
    state = synthetic_state(keys, case["seed"])
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    x = make_input(case["input"], case["mirror"], case["seed"] + 100)
    with torch.no_grad():
        out = net(torch.from_numpy(x))
        if net.is_mirror_extended != case["mirror"]:
            raise SystemExit(f"{name}: upstream mirror detection gave {net.is_mirror_extended}")
        out64 = net.double()(torch.from_numpy(x).double())
    np.save(os.path.join(HERE, f"{name}_input.npy"), x)
    np.save(os.path.join(HERE, f"{name}_output.npy"), out.numpy())
    with open(os.path.join(HERE, f"{name}_keys.json"), "w", encoding="utf-8") as handle:
        json.dump(keys, handle)
    return {"constructor": case["ctor"], "seed": case["seed"], "weights_abs_sum": checksum(state),
            "input": {"file": f"{name}_input.npy", "shape": list(x.shape), "mirror_extended": case["mirror"]},
            "output": {"file": f"{name}_output.npy", "shape": list(out.shape)},
            "keys": f"{name}_keys.json", "output_abs_max": float(out.abs().max()),
            "fp32_vs_fp64_max_abs_diff": float((out.double() - out64).abs().max())}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mmagic_root", required=True, help="extracted mmagic checkout")
    args = parser.parse_args()
    if not sys.flags.optimize:
        raise SystemExit("run with python -O (see the docstring: upstream's 64x64 assert)")
    torch.manual_seed(0)
    cls = upstream_basicvsrpp_class(args.mmagic_root)
    config = {"model": "BasicVSRPlusPlusNet (mmagic/models/editors/basicvsr_plusplus_net/basicvsr_plusplus_net.py)",
              "layout": "input N T C H W, RGB float32 in [0, 1]; output N T C H W (x4 for mirror_x4), unclamped",
              "weights": "synthetic_weights.synthetic_state(keys, seed), NOT pretrained",
              "cases": {name: run_case(cls, name, case) for name, case in CASES.items()}}
    x = make_input((2, 1, 3, 35, 42), False, 7)[:, 0]
    np.save(os.path.join(HERE, "bicubic_input.npy"), x)
    y = F.interpolate(torch.from_numpy(x), scale_factor=0.25, mode="bicubic").numpy()
    np.save(os.path.join(HERE, "bicubic_output.npy"), y)
    config["bicubic"] = {"call": "F.interpolate(x, scale_factor=0.25, mode='bicubic') (align_corners=False)",
                         "input": [list(x.shape), "bicubic_input.npy"], "output": [list(y.shape), "bicubic_output.npy"]}
    config["tolerance"] = {"atol": 1e-4, "rtol": 0.0}
    config["generator"] = {"script": "make_vectors.py (python -O)", "torch": torch.__version__,
                           "numpy": np.__version__, "deform_conv2d": STANDIN}
    with open(os.path.join(HERE, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2)
    print(json.dumps(config, indent=2))


if __name__ == "__main__":
    main()

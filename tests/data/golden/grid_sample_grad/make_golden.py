"""Make ``grads.npz``: torch's ``grid_sample`` gradients (input and grid) at the sizes where MindSpore's CPU
``GridSampler2DGrad`` logs ``memcpy_s failed. errorno is: 34``. Run once with upstream torch, outside the
project's environment (tests never import torch):

    python -m venv /work/torchenv && /work/torchenv/bin/pip install torch==2.13.0 'numpy<2'
    /work/torchenv/bin/python tests/data/golden/grid_sample_grad/make_golden.py

Cases: the grid has H*W positions; MindSpore's kernel handles them 8 at a time and, for a last group of 1-4
positions, writes the second half of the interleaved (x, y) gradient with a length of 0, which its
``memcpy_s`` refuses (ERANGE = 34) and logs. Sizes with H*W % 8 in 1..4 trigger it; 5x1 and 8x1 do not.
Inputs are float32 from ``numpy.random.default_rng(seed)``; gradients are of ``sum(out * weight)`` in float64.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
# (H, W) of the grid and the input, padding mode (flow_warp: zeros in BasicVSR, border in SPyNet)
CASES = [(1, 1, "border"), (1, 3, "zeros"), (3, 3, "border"), (5, 5, "zeros"), (3, 4, "zeros"), (1, 5, "zeros"),
         (2, 4, "border"), (8, 12, "zeros")]


def case_arrays(h, w, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 3, h, w)).astype(np.float32)
    grid = rng.uniform(-1.2, 1.2, (1, h, w, 2)).astype(np.float32)
    weight = rng.standard_normal((1, 3, h, w)).astype(np.float32)
    return x, grid, weight


def main():
    arrays, meta = {}, []
    for seed, (h, w, padding) in enumerate(CASES):
        x, grid, weight = case_arrays(h, w, seed)
        tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        tg = torch.tensor(grid, dtype=torch.float64, requires_grad=True)
        out = F.grid_sample(tx, tg, mode="bilinear", padding_mode=padding, align_corners=True)
        (out * torch.tensor(weight, dtype=torch.float64)).sum().backward()
        key = f"{h}x{w}_{padding}"
        arrays.update({f"{key}/x": x, f"{key}/grid": grid, f"{key}/weight": weight,
                       f"{key}/grad_x": tx.grad.numpy().astype(np.float32),
                       f"{key}/grad_grid": tg.grad.numpy().astype(np.float32)})
        meta.append({"key": key, "h": h, "w": w, "padding": padding, "seed": seed})
    np.savez_compressed(os.path.join(HERE, "grads.npz"), **arrays)
    with open(os.path.join(HERE, "config.json"), "w", encoding="utf-8") as handle:
        json.dump({"torch": torch.__version__, "mode": "bilinear", "align_corners": True, "dtype": "float64",
                   "cases": meta}, handle, indent=1)


if __name__ == "__main__":
    main()

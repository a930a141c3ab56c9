"""Write the torch checkpoints the converter tests read, with real torch (run once, outside the package's
dependencies: `python -m venv /work/torchenv && /work/torchenv/bin/pip install torch==2.13.0 'numpy<2'`, then
`/work/torchenv/bin/python tests/data/pth_legacy/make_fixtures.py`).

- official_legacy.pth: an OpenMMLab-style release ({"meta": ..., "state_dict": ...}) in the pre-1.6 format
  (`_use_new_zipfile_serialization=False`), with the layouts torch really writes: parameters, a transposed
  view, a row sharing its storage with the full tensor, an expanded (stride 0) tensor, half, bfloat16,
  int32, bool, int64 and a 0-d tensor;
- official_zip.pth: the same object in the zip format of torch >= 1.6;
- expected.npz: every tensor of the state dict, as numpy arrays (bfloat16 widened to float32);
- hostile_legacy.pth: valid tensors plus an os.system call under "extra.cb" (legacy format);
- hostile_top_legacy.pth: an os.system call as the whole file (legacy format).
The hostile calls would create `pwned_by_pth` in the working directory if anything ever ran them.
"""
import collections
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


class Call:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def official_object():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    net[1].running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
    state = collections.OrderedDict((f"generator.{k}", v) for k, v in net.state_dict().items())
    full = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 8
    state["generator.full"] = full
    state["generator.row"] = full[1]  # offset 4 into full's storage
    state["generator.transposed"] = full.t()
    state["generator.expanded"] = torch.tensor([1.5, -2.0, 3.25]).expand(2, 3)
    state["generator.half"] = torch.linspace(-1, 1, 5).half()
    state["generator.bf16"] = torch.tensor([1.0, -2.5, 3.140625]).bfloat16()
    state["generator.int32"] = torch.arange(4, dtype=torch.int32) - 2
    state["generator.mask"] = torch.tensor([True, False, True])
    state["generator.step"] = torch.tensor(7)
    state["generator.param"] = torch.nn.Parameter(torch.full((2,), 0.25))
    meta = {"epoch": 300, "iter": 300000, "mmedit_version": "0.16.0", "CLASSES": None,
            "config": "model = dict(type='BasicVSR')", "hooks": [("lr", 1e-4), ("ema", True)]}
    return {"meta": meta, "state_dict": state}


def main():
    obj = official_object()
    torch.save(obj, os.path.join(HERE, "official_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save(obj, os.path.join(HERE, "official_zip.pth"))
    expected = {k: v.detach().float().numpy() if v.dtype == torch.bfloat16 else v.detach().numpy()
                for k, v in obj["state_dict"].items()}
    np.savez(os.path.join(HERE, "expected.npz"), **expected)
    evil = Call(os.system, "touch pwned_by_pth")
    hostile = {"state_dict": {"conv.weight": torch.ones(2, 2)}, "extra": {"cb": evil}}
    torch.save(hostile, os.path.join(HERE, "hostile_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save(evil, os.path.join(HERE, "hostile_top_legacy.pth"), _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    main()

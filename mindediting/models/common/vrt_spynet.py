"""SpyNet as used inside VRT (JingyunLiang/VRT ``models/network_vrt.py``), with multi-level flows.

Differs from the mmagic SPyNet in ``common/spynet.py`` by its key names
(``basic_module.{level}.basic_module.{0,2,4,6,8}``) and by returning the flow of several pyramid
levels: ``return_levels`` 5, 4, 3, 2 give flows at 1, 1/2, 1/4, 1/8 of the input size, listed
finest first. Inputs are (N, 3, H, W) RGB in [0, 1]; flows are (N, 2, h, w) holding (dx, dy) in
pixels of their own level. H and W must exceed 32 (the coarsest level of the padded input is
H/32 pixels and the x1/8 output must be non-empty).
"""
import math

import numpy as np
from mindspore import Tensor, nn, ops

from mindediting.models.common.flow_warp import flow_warp

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _conv(cin, cout):
    return nn.Conv2d(cin, cout, 7, pad_mode="pad", padding=3, has_bias=True)


class BasicModule(nn.Cell):
    """Five 7x7 convolutions estimating a flow residual from [ref, warped supp, flow] (8 channels)."""

    def __init__(self):
        super().__init__()
        self.basic_module = nn.SequentialCell(
            [_conv(8, 32), nn.ReLU(), _conv(32, 64), nn.ReLU(), _conv(64, 32), nn.ReLU(), _conv(32, 16), nn.ReLU(),
             _conv(16, 2)]
        )

    def construct(self, x):
        return self.basic_module(x)


class SpyNet(nn.Cell):
    """VRT's SpyNet. Upstream's ``load_path`` file is loaded by ``build_model("vrt", spynet_path=...)``."""

    def __init__(self, return_levels=(5,)):
        super().__init__()
        self.return_levels = [int(r) for r in return_levels]
        self.basic_module = nn.CellList([BasicModule() for _ in range(6)])
        self.mean = Tensor(np.array(MEAN, np.float32).reshape(1, 3, 1, 1))
        self.std = Tensor(np.array(STD, np.float32).reshape(1, 3, 1, 1))

    def _pyramid(self, img):
        # coarsest first; appended, then reversed: with list.insert(0, ...) the compiled graph of a step (SpyNet runs
        # twice in it, for VRT's backward and forward flows) mixed up the levels (MindSpore 2.10)
        levels = [(img - self.mean) / self.std]
        for _ in range(5):
            levels.append(ops.avg_pool2d(levels[-1], kernel_size=2, stride=2))
        return levels[::-1]

    def process(self, ref, supp, w, h, w_floor, h_floor):
        refs, supps = self._pyramid(ref), self._pyramid(supp)
        n = ref.shape[0]
        flow = ops.zeros((n, 2, refs[0].shape[2] // 2, refs[0].shape[3] // 2), ref.dtype)
        flows = []  # returned finest first; appended, then reversed (with insert(0, ...) misordered once compiled)
        for level in range(len(refs)):
            hl, wl = refs[level].shape[2:]
            up = ops.interpolate(flow, size=(flow.shape[2] * 2, flow.shape[3] * 2), mode="bilinear",
                                 align_corners=True) * 2.0
            if up.shape[2] != hl or up.shape[3] != wl:
                up = ops.pad(up, (0, wl - up.shape[3], 0, hl - up.shape[2]), mode="replicate")
            warped = flow_warp(supps[level], up.transpose(0, 2, 3, 1), "bilinear", padding_mode="border")
            flow = self.basic_module[level](ops.cat([refs[level], warped, up], 1)) + up
            if level in self.return_levels:
                scale = 2 ** (5 - level)
                out = ops.interpolate(flow, size=(h // scale, w // scale), mode="bilinear", align_corners=False)
                factor = Tensor(np.array([(w // scale) / (w_floor // scale), (h // scale) / (h_floor // scale)],
                                         np.float32).reshape(1, 2, 1, 1))
                flows.append(out * factor)
        return flows[::-1]

    def construct(self, ref, supp):
        if ref.shape != supp.shape:
            raise ValueError(f"SpyNet: ref {ref.shape} and supp {supp.shape} differ in shape")
        h, w = ref.shape[2], ref.shape[3]
        w_floor = int(math.ceil(w / 32.0) * 32)
        h_floor = int(math.ceil(h / 32.0) * 32)
        ref = ops.interpolate(ref, size=(h_floor, w_floor), mode="bilinear", align_corners=False)
        supp = ops.interpolate(supp, size=(h_floor, w_floor), mode="bilinear", align_corners=False)
        flows = self.process(ref, supp, w, h, w_floor, h_floor)
        return flows[0] if len(flows) == 1 else flows


def convert_state_dict(state, **_):
    """Upstream VRT SpyNet keys already match; the mean/std buffers are constants here and are dropped."""
    return {k: v for k, v in state.items() if k.split(".")[-1] not in ("mean", "std")}

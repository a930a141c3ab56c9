"""SPyNet optical flow, as used by BasicVSR (mmagic ``SPyNet``).

Ranjan and Black, "Optical Flow Estimation using a Spatial Pyramid Network", CVPR 2017.
Input: two RGB images (N, 3, H, W) in [0, 1]. Output: flow (N, 2, H, W) in pixels, channels (dx, dy),
such that warping ``supp`` with it aligns ``supp`` to ``ref``.

Pipeline: both images are resized to a multiple of 32, normalised with the ImageNet mean/std and
pooled into a 6-level pyramid; starting from zero flow at 1/32 scale, each level upsamples the flow x2,
warps ``supp`` with it and adds the residual predicted by that level's basic module; the flow is
finally resized back to (H, W) and rescaled.
"""
import math

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mindediting.models.common.flow_warp import flow_warp
from mindediting.models.common.layers import ConvModule

PYRAMID_LEVELS = 6
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SPyNetBasicModule(nn.Cell):
    """Five 7x7 convolutions 8->32->64->32->16->2, ReLU after all but the last (keys
    ``basic_module.<j>.conv.*``). Input: [ref, warped supp, flow] concatenated (8 channels)."""

    def __init__(self):
        super().__init__()
        widths = (8, 32, 64, 32, 16, 2)
        self.basic_module = nn.SequentialCell(
            [
                ConvModule(widths[j], widths[j + 1], 7, 1, 3, act=nn.ReLU() if j < 4 else None)
                for j in range(len(widths) - 1)
            ]
        )

    def construct(self, tensor_input):
        return self.basic_module(tensor_input)


def _image_stat(values):
    return ms.Parameter(ms.Tensor(np.array(values, np.float32).reshape(1, 3, 1, 1)), requires_grad=False)


class SPyNet(nn.Cell):
    """mmagic SPyNet. Upstream's ``pretrained`` file is loaded by ``build_model("spynet", pretrained=...)``."""

    def __init__(self):
        super().__init__()
        self.basic_module = nn.CellList([SPyNetBasicModule() for _ in range(PYRAMID_LEVELS)])
        self.mean = _image_stat(IMAGENET_MEAN)
        self.std = _image_stat(IMAGENET_STD)

    def zero_flow(self):
        """Zero the last convolution of every level, so the network outputs zero flow (frames taken as aligned)
        and training moves it from there. For training without pretrained weights: a randomly initialised SPyNet
        outputs a near-constant flow of a fraction of a pixel that misaligns every frame (configs/basicvsr)."""
        for module in self.basic_module:
            last = module.basic_module[-1].conv
            for param in (last.weight, last.bias):
                param.set_data(ms.Tensor(np.zeros(param.shape, np.float32)))
        return self

    def compute_flow(self, ref, supp):
        """Flow at the input size, which must be a multiple of 32."""
        return self.pyramid_flows(ref, supp)[-1]

    def pyramid_flows(self, ref, supp, guides=None):
        """The flow of every pyramid level, coarsest (1/32 of the input) first, each in its level's pixels
        (pre-training supervises them all: :mod:`mindediting.engine.flow_trainer`).

        ``guides`` (pre-training only): a flow per level; each level then refines the guide of the level below
        instead of that level's own estimate, so every module learns its residual task from the start.
        """
        n, _, h, w = ref.shape
        refs = [(ref - self.mean) / self.std]
        supps = [(supp - self.mean) / self.std]
        for _ in range(PYRAMID_LEVELS - 1):
            refs.append(ops.avg_pool2d(refs[-1], 2, 2))
            supps.append(ops.avg_pool2d(supps[-1], 2, 2))
        refs, supps = refs[::-1], supps[::-1]

        flow = ops.zeros((n, 2, h // 32, w // 32), ref.dtype)
        flows = []
        for level in range(PYRAMID_LEVELS):
            if level == 0:
                flow_up = flow
            else:
                coarse = flow if guides is None else guides[level - 1]
                size = (coarse.shape[2] * 2, coarse.shape[3] * 2)
                flow_up = ops.interpolate(coarse, size=size, mode="bilinear", align_corners=True) * 2.0
            warped = flow_warp(supps[level], flow_up.transpose(0, 2, 3, 1), padding_mode="border")
            flow = flow_up + self.basic_module[level](ops.cat([refs[level], warped, flow_up], axis=1))
            flows.append(flow)
        return flows

    def construct(self, ref, supp):
        h, w = ref.shape[2], ref.shape[3]
        h_up, w_up = 32 * math.ceil(h / 32), 32 * math.ceil(w / 32)
        ref = ops.interpolate(ref, size=(h_up, w_up), mode="bilinear", align_corners=False)
        supp = ops.interpolate(supp, size=(h_up, w_up), mode="bilinear", align_corners=False)
        flow = ops.interpolate(self.compute_flow(ref, supp), size=(h, w), mode="bilinear", align_corners=False)
        scale = ms.Tensor(np.array([w / w_up, h / h_up], np.float32).reshape(1, 2, 1, 1), flow.dtype)
        return flow * scale


def convert_state_dict(state, **unused):
    """mmagic SPyNet keys map 1:1. BasicSR/VRT SpyNet files (``basic_module.L.basic_module.<2j>.weight``,
    a plain Sequential with ReLUs at odd indices) are renamed to ``basic_module.L.basic_module.<j>.conv.weight``."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) == 5 and parts[0] == "basic_module" and parts[2] == "basic_module" and parts[3].isdigit():
            parts = parts[:3] + [str(int(parts[3]) // 2), "conv", parts[4]]
        out[".".join(parts)] = value
    return out

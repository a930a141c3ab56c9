"""Modulated deformable convolution (DCNv2) in torchvision's ``deform_conv2d`` conventions.

torchvision layout: ``offset`` is (N, 2*G*K, Ho, Wo) with channel ``2*(g*K + k)`` = dy (rows) and
``2*(g*K + k) + 1`` = dx (columns) for offset group g and kernel tap k = ki*kw + kj; ``mask`` is
(N, G*K, Ho, Wo), already in [0, 1]. The weight is (Cout, Cin / weight_groups, kh, kw): the number of
weight groups is inferred from the input channels, as torchvision does.

MindSpore's ``ops.deformable_conv2d`` takes one tensor [dx block; dy block; mask block] with channel
``g*K + k`` in each block; :func:`to_mindspore_offsets` does that conversion.
"""
import math

import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import Uniform, Zero, initializer


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def to_mindspore_offsets(offset, mask):
    """torchvision (offset, mask) -> the single (dx; dy; mask) tensor ``ops.deformable_conv2d`` expects."""
    n, c, h, w = offset.shape
    taps = c // 2
    pairs = offset.reshape(n, taps, 2, h, w)
    return ops.cat([pairs[:, :, 1], pairs[:, :, 0], mask.reshape(n, taps, h, w)], axis=1)


def deform_conv2d(x, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None):
    """Functional modulated deformable conv with torchvision's argument order and layouts."""
    kh, kw = weight.shape[-2:]
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    cin = x.shape[1]
    if cin % weight.shape[1]:
        raise ValueError(f"deform_conv2d: input channels {cin} not divisible by weight in-channels {weight.shape[1]}")
    groups = cin // weight.shape[1]
    if weight.shape[0] % groups:
        raise ValueError(
            f"deform_conv2d: output channels {weight.shape[0]} not divisible by the {groups} weight groups")
    offset_groups = offset.shape[1] // (2 * kh * kw)
    if offset_groups * 2 * kh * kw != offset.shape[1] or cin % offset_groups:
        raise ValueError(
            f"deform_conv2d: offset channels {offset.shape[1]} do not fit kernel {kh}x{kw} and {cin} inputs")
    if mask is None:
        mask = ops.ones((offset.shape[0], offset_groups * kh * kw) + tuple(offset.shape[2:]), offset.dtype)
    return ops.deformable_conv2d(
        x, weight, to_mindspore_offsets(offset, mask), (kh, kw), (1, 1, sh, sw), (ph, ph, pw, pw),
        bias=bias, dilations=(1, 1, dh, dw), groups=groups, deformable_groups=offset_groups, modulated=True,
    )


class ModulatedDeformConv2d(nn.Cell):
    """Holds ``weight`` (Cout, Cin/groups, kh, kw) and ``bias``; call with torchvision-layout offset and mask."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 deformable_groups=1, bias=True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups, self.deformable_groups = groups, deformable_groups
        bound = 1.0 / math.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        self.weight = ms.Parameter(
            initializer(Uniform(bound), (out_channels, in_channels // groups) + self.kernel_size, ms.float32),
            name="weight")
        self.bias = ms.Parameter(initializer(Zero(), (out_channels,), ms.float32), name="bias") if bias else None

    def construct(self, x, offset, mask):
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)

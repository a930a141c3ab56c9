"""Torch-compatible layer constructors (MindSpore's defaults differ: 'same' padding, no bias)."""
from mindspore import nn


def conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
    """``nn.Conv2d`` with PyTorch semantics: explicit symmetric zero padding and a bias by default."""
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad", padding=padding, has_bias=bias
    )


class ConvModule(nn.Cell):
    """Convolution followed by an optional activation; the convolution sits under the name ``conv``
    as in mmcv's ``ConvModule`` so checkpoint keys read ``<name>.conv.weight``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, act=None):
        super().__init__()
        self.conv = conv2d(in_channels, out_channels, kernel_size, stride, padding)
        self.act = act

    def construct(self, x):
        x = self.conv(x)
        return self.act(x) if self.act is not None else x

"""Sub-pixel upsampling (``PixelShufflePack``): conv to ``out * s^2`` channels, then pixel shuffle."""
from mindspore import nn, ops

from mindediting.models.common.layers import conv2d


class PixelShufflePack(nn.Cell):
    """Upsample by ``scale_factor`` with a ``upsample_kernel`` conv and PyTorch-ordered pixel shuffle."""

    def __init__(self, in_channels, out_channels, scale_factor, upsample_kernel):
        super().__init__()
        self.scale_factor = scale_factor
        self.upsample_conv = conv2d(
            in_channels, out_channels * scale_factor * scale_factor, upsample_kernel, 1, (upsample_kernel - 1) // 2
        )

    def construct(self, x):
        return ops.pixel_shuffle(self.upsample_conv(x), self.scale_factor)

"""Residual blocks without normalisation (EDSR / mmagic ``ResidualBlockNoBN``)."""
from mindspore import nn

from mindediting.models.common.layers import conv2d


class ResidualBlockNoBN(nn.Cell):
    """``x + res_scale * conv2(relu(conv1(x)))`` with 3x3 convolutions."""

    def __init__(self, mid_channels=64, res_scale=1.0):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = conv2d(mid_channels, mid_channels, 3, 1, 1)
        self.conv2 = conv2d(mid_channels, mid_channels, 3, 1, 1)
        self.relu = nn.ReLU()

    def construct(self, x):
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


def make_layer(block, num_blocks, **kwargs):
    return nn.SequentialCell([block(**kwargs) for _ in range(num_blocks)])


class ResidualBlocksWithInputConv(nn.Cell):
    """A 3x3 input convolution + LeakyReLU(0.1), then ``num_blocks`` residual blocks.

    Parameters are named ``main.0.*`` (input conv) and ``main.2.<i>.conv{1,2}.*`` as upstream.
    """

    def __init__(self, in_channels, out_channels=64, num_blocks=30):
        super().__init__()
        self.main = nn.SequentialCell(
            [
                conv2d(in_channels, out_channels, 3, 1, 1),
                nn.LeakyReLU(alpha=0.1),
                make_layer(ResidualBlockNoBN, num_blocks, mid_channels=out_channels),
            ]
        )

    def construct(self, feat):
        return self.main(feat)

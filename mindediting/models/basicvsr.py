"""BasicVSR: bidirectional recurrent video super-resolution (mmagic ``BasicVSRNet``).

Chan et al., "BasicVSR: The Search for Essential Components in Video Super-Resolution and Beyond",
CVPR 2021. Input ``lrs``: (N, T, 3, H, W) RGB in [0, 1]; output (N, T, 3, 4H, 4W), not clamped.

Stages, as in the paper's figure: SPyNet flows between neighbours -> backward propagation (features
warped from frame i+1 to i, refined by residual blocks) -> forward propagation -> per-frame fusion
of both directions and x4 pixel-shuffle reconstruction added to a bilinear x4 of the input frame.
"""
import mindspore as ms
from mindspore import nn, ops

from mindediting.models.common.flow_warp import flow_warp
from mindediting.models.common.mirror import is_mirror_extended
from mindediting.models.common.layers import conv2d
from mindediting.models.common.resblocks import ResidualBlocksWithInputConv
from mindediting.models.common.spynet import SPyNet
from mindediting.models.common.spynet import convert_state_dict as convert_spynet_state_dict
from mindediting.models.common.upsample import PixelShufflePack


class BasicVSRNet(nn.Cell):
    """Upstream constructor: ``BasicVSRNet(mid_channels=64, num_blocks=30, spynet_pretrained=None)``; the
    SPyNet weight file ``spynet_pretrained`` is loaded by ``build_model("basicvsr", ...)``, not here."""

    def __init__(self, mid_channels=64, num_blocks=30):
        super().__init__()
        self.mid_channels = mid_channels
        # alignment
        self.spynet = SPyNet()
        # propagation
        self.backward_resblocks = ResidualBlocksWithInputConv(mid_channels + 3, mid_channels, num_blocks)
        self.forward_resblocks = ResidualBlocksWithInputConv(mid_channels + 3, mid_channels, num_blocks)
        # reconstruction
        self.fusion = conv2d(mid_channels * 2, mid_channels, 1, 1, 0)
        self.upsample1 = PixelShufflePack(mid_channels, mid_channels, 2, upsample_kernel=3)
        self.upsample2 = PixelShufflePack(mid_channels, 64, 2, upsample_kernel=3)
        self.conv_hr = conv2d(64, 64, 3, 1, 1)
        self.conv_last = conv2d(64, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(alpha=0.1)
        # The mirror test reads a tensor value on the host; graph-mode export turns it off (the result is
        # the same up to float noise: it only decides whether forward flows are computed or reused).
        self.detect_mirror = True

    def jit_stages(self):
        """Compile the per-frame stages (SPyNet, both residual stacks, reconstruction) as graphs, each once and
        reused for every frame, while the time loop stays in Python (``system.mode: hybrid``). Turns the host-side
        mirror test off like graph mode does. Returns ``self``."""
        for cell in (self.spynet, self.backward_resblocks, self.forward_resblocks):
            cell.construct = ms.jit(cell.construct)
        self.reconstruct = ms.jit(self.reconstruct)
        self.detect_mirror = False
        return self

    is_mirror_extended = staticmethod(is_mirror_extended)

    def compute_flow(self, lrs, mirror):
        """Backward flows (frame i+1 -> i) and forward flows (i -> i+1), each (N, T-1, 2, H, W).

        For mirror-extended input the forward flows equal reversed backward flows and are not computed."""
        n, t, c, h, w = lrs.shape
        lrs_1 = lrs[:, :-1].reshape(-1, c, h, w)
        lrs_2 = lrs[:, 1:].reshape(-1, c, h, w)
        flows_backward = self.spynet(lrs_1, lrs_2).view(n, t - 1, 2, h, w)
        flows_forward = None if mirror else self.spynet(lrs_2, lrs_1).view(n, t - 1, 2, h, w)
        return flows_forward, flows_backward

    def reconstruct(self, feat_backward, feat_forward, lr):
        out = self.lrelu(self.fusion(ops.cat([feat_backward, feat_forward], axis=1)))
        out = self.lrelu(self.upsample1(out))
        out = self.lrelu(self.upsample2(out))
        out = self.lrelu(self.conv_hr(out))
        out = self.conv_last(out)
        h, w = lr.shape[-2:]
        return out + ops.interpolate(lr, size=(4 * h, 4 * w), mode="bilinear", align_corners=False)

    def construct(self, lrs):
        n, t, _, h, w = lrs.shape
        mirror = self.is_mirror_extended(lrs) if self.detect_mirror else False
        flows_forward, flows_backward = self.compute_flow(lrs, mirror)

        # backward propagation
        backward_feats = [None] * t
        feat_prop = ops.zeros((n, self.mid_channels, h, w), lrs.dtype)
        for i in range(t - 1, -1, -1):
            if i < t - 1:
                feat_prop = flow_warp(feat_prop, flows_backward[:, i].transpose(0, 2, 3, 1))
            feat_prop = self.backward_resblocks(ops.cat([lrs[:, i], feat_prop], axis=1))
            backward_feats[i] = feat_prop

        # forward propagation and reconstruction
        outputs = []
        feat_prop = ops.zeros_like(feat_prop)
        for i in range(t):
            lr_curr = lrs[:, i]
            if i > 0:
                flow = flows_forward[:, i - 1] if flows_forward is not None else flows_backward[:, t - 1 - i]
                feat_prop = flow_warp(feat_prop, flow.transpose(0, 2, 3, 1))
            feat_prop = self.forward_resblocks(ops.cat([lr_curr, feat_prop], axis=1))
            outputs.append(self.reconstruct(backward_feats[i], feat_prop, lr_curr))
        return ops.stack(outputs, axis=1)


def convert_state_dict(state, **unused):
    """Official mmagic keys equal ours once the generic step has stripped ``generator.``; SPyNet keys
    in the BasicSR/VRT layout are renamed."""
    spynet = {k[len("spynet."):]: v for k, v in state.items() if k.startswith("spynet.")}
    out = {k: v for k, v in state.items() if not k.startswith("spynet.")}
    out.update({f"spynet.{k}": v for k, v in convert_spynet_state_dict(spynet).items()})
    return out

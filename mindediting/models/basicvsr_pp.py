"""BasicVSR++: second-order grid propagation with flow-guided deformable alignment (mmagic
``BasicVSRPlusPlusNet``).

Chan et al., "BasicVSR++: Improving Video Super-Resolution with Enhanced Propagation and Alignment",
CVPR 2022 (https://arxiv.org/abs/2104.13371). Input ``lqs``: (N, T, 3, H, W) RGB in [0, 1]. Output
(N, T, 3, 4H, 4W) for low-resolution input (``is_low_res_input=True``), (N, T, 3, H, W) otherwise; not clamped.

Stages: per-frame feature extraction -> SPyNet flows between neighbours (on the input, or on its torch-bicubic
x1/4 for same-size input) -> four propagation branches in the order backward_1, forward_1, backward_2,
forward_2, each aligning the previous two propagated features with a flow-guided modulated deformable
convolution and refining them with residual blocks over everything computed so far for that frame ->
per-frame reconstruction (residual blocks, two x2 pixel shuffles) added to the bilinear x4 of the input
(or to the input itself).

Differences from upstream, none of which changes the output: upstream moves features to host memory past
``cpu_cache_length`` frames on CUDA; here the argument is accepted and ignored, and memory on long videos is
bounded by the inference engine's chunks and tiles. Upstream asserts that the flow input is at least 64x64
(SPyNet is poor below that); this port, like :mod:`.basicvsr`, leaves that to the caller.
"""
import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mindediting.models.common.deform_conv import ModulatedDeformConv2d
from mindediting.models.common.flow_warp import flow_warp
from mindediting.models.common.mirror import is_mirror_extended
from mindediting.models.common.layers import conv2d
from mindediting.models.common.resblocks import ResidualBlocksWithInputConv
from mindediting.models.common.spynet import SPyNet
from mindediting.models.common.spynet import convert_state_dict as convert_spynet_state_dict
from mindediting.models.common.upsample import PixelShufflePack

BRANCHES = ("backward_1", "forward_1", "backward_2", "forward_2")
# (branch, runs backward in time), spelled out: graph mode (export) cannot call str methods
DIRECTIONS = (("backward_1", True), ("forward_1", False), ("backward_2", True), ("forward_2", False))
DEFORM_GROUPS = 16


def _cubic_weights(t, a=-0.75):
    """torch's bicubic convolution coefficients for the four taps around a sample at fraction ``t``."""
    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.array([far(t + 1), near(t), near(1 - t), far(2 - t)], np.float32)


# torch F.interpolate(scale_factor=0.25, mode="bicubic", align_corners=False) samples output pixel d at
# 4 * (d + 0.5) - 0.5 = 4d + 1.5: fraction 0.5 past input 4d + 1, taps 4d .. 4d + 3, always inside the image,
# so torch's border clamping never applies and the resize is a fixed separable 4x4 filter with stride 4.
# (MindSpore's CPU bicubic uses other coefficients.) The coefficients are dyadic, so the kernel is exact.
_QUARTER_TAPS = _cubic_weights(0.5)
_QUARTER_KERNEL = np.outer(_QUARTER_TAPS, _QUARTER_TAPS).reshape(1, 1, 4, 4)


def bicubic_quarter(x):
    """(N, C, H, W) -> (N, C, H // 4, W // 4), equal to torch's ``F.interpolate(x, scale_factor=0.25,
    mode='bicubic')`` (a = -0.75, align_corners=False, no antialiasing) for any H, W."""
    n, c, h, w = x.shape
    x = x[:, :, : 4 * (h // 4), : 4 * (w // 4)].reshape(n * c, 1, 4 * (h // 4), 4 * (w // 4))
    kernel = ms.Tensor(_QUARTER_KERNEL, x.dtype)
    return ops.conv2d(x, kernel, stride=4).reshape(n, c, h // 4, w // 4)


class SecondOrderDeformableAlignment(ModulatedDeformConv2d):
    """Modulated deformable conv whose offsets and masks are predicted from the two warped features, the
    current frame's feature and both flows; the offsets are residues (at most ``max_residue_magnitude``) on
    top of the flows. Offsets are (dy, dx) pairs per tap over 16 deform groups (mmcv/torchvision layout): the
    first 8 groups follow the first-order flow, the last 8 the second-order one. Keys as mmcv's
    ``ModulatedDeformConv2d`` (``weight``, ``bias``) + ``conv_offset.{0,2,4,6}``."""

    def __init__(self, in_channels, out_channels, kernel_size=3, padding=1, deform_groups=DEFORM_GROUPS,
                 max_residue_magnitude=10):
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, deformable_groups=deform_groups)
        self.max_residue_magnitude = max_residue_magnitude
        self.conv_offset = nn.SequentialCell([
            conv2d(3 * out_channels + 4, out_channels, 3, 1, 1), nn.LeakyReLU(alpha=0.1),
            conv2d(out_channels, out_channels, 3, 1, 1), nn.LeakyReLU(alpha=0.1),
            conv2d(out_channels, out_channels, 3, 1, 1), nn.LeakyReLU(alpha=0.1),
            conv2d(out_channels, 27 * deform_groups, 3, 1, 1),
        ])
        # upstream init_offset: alignment starts as the plain flow warp (zero residues, mask 0.5)
        last = self.conv_offset[-1]
        last.weight.set_data(ops.zeros(last.weight.shape, ms.float32))
        last.bias.set_data(ops.zeros(last.bias.shape, ms.float32))

    def construct(self, x, extra_feat, flow_1, flow_2):
        out = self.conv_offset(ops.cat([extra_feat, flow_1, flow_2], axis=1))
        o1, o2, mask = ops.chunk(out, 3, axis=1)
        offset = self.max_residue_magnitude * ops.tanh(ops.cat((o1, o2), axis=1))
        offset_1, offset_2 = ops.chunk(offset, 2, axis=1)
        # flows are (dx, dy); offsets are (dy, dx) per tap, hence the flip
        offset_1 = offset_1 + ops.tile(flow_1[:, ::-1], (1, offset_1.shape[1] // 2, 1, 1))
        offset_2 = offset_2 + ops.tile(flow_2[:, ::-1], (1, offset_2.shape[1] // 2, 1, 1))
        return super().construct(x, ops.cat([offset_1, offset_2], axis=1), ops.sigmoid(mask))


class BasicVSRPlusPlusNet(nn.Cell):
    """Upstream constructor: ``BasicVSRPlusPlusNet(mid_channels=64, num_blocks=7, max_residue_magnitude=10,
    is_low_res_input=True, spynet_pretrained=None, cpu_cache_length=100)``. The SPyNet weight file
    ``spynet_pretrained`` is loaded by ``build_model("basicvsrpp", ...)``, not here; ``cpu_cache_length`` is
    kept for config compatibility only (see the module docstring)."""

    def __init__(self, mid_channels=64, num_blocks=7, max_residue_magnitude=10, is_low_res_input=True,
                 cpu_cache_length=100):
        super().__init__()
        self.mid_channels = mid_channels
        self.is_low_res_input = is_low_res_input
        self.cpu_cache_length = cpu_cache_length
        # alignment
        self.spynet = SPyNet()
        # feature extraction: same-size input is brought to the x1/4 grid by two stride-2 convolutions
        if is_low_res_input:
            self.feat_extract = ResidualBlocksWithInputConv(3, mid_channels, 5)
        else:
            self.feat_extract = nn.SequentialCell([
                conv2d(3, mid_channels, 3, 2, 1), nn.LeakyReLU(alpha=0.1),
                conv2d(mid_channels, mid_channels, 3, 2, 1), nn.LeakyReLU(alpha=0.1),
                ResidualBlocksWithInputConv(mid_channels, mid_channels, 5),
            ])
        # propagation: branch i sees the frame feature, the i earlier branches and its own propagated feature
        self.deform_align = nn.CellDict({
            name: SecondOrderDeformableAlignment(2 * mid_channels, mid_channels, 3, padding=1,
                                                 deform_groups=DEFORM_GROUPS,
                                                 max_residue_magnitude=max_residue_magnitude)
            for name in BRANCHES})
        self.backbone = nn.CellDict({
            name: ResidualBlocksWithInputConv((2 + i) * mid_channels, mid_channels, num_blocks)
            for i, name in enumerate(BRANCHES)})
        # reconstruction
        self.reconstruction = ResidualBlocksWithInputConv(5 * mid_channels, mid_channels, 5)
        self.upsample1 = PixelShufflePack(mid_channels, mid_channels, 2, upsample_kernel=3)
        self.upsample2 = PixelShufflePack(mid_channels, 64, 2, upsample_kernel=3)
        self.conv_hr = conv2d(64, 64, 3, 1, 1)
        self.conv_last = conv2d(64, 3, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(alpha=0.1)
        # The mirror test reads a tensor value on the host; graph mode, hybrid mode and export turn it off (it
        # only decides whether forward flows are computed or reused: same result up to float noise).
        self.detect_mirror = True

    def jit_stages(self):
        """Compile the per-frame stages (SPyNet, feature extraction, each branch's alignment and residual
        blocks, reconstruction) as graphs, each once and reused for every frame, while the frame loops stay in
        Python (``system.mode: hybrid``). Turns the host-side mirror test off like graph mode does. Returns
        ``self``."""
        cells = [self.spynet, self.feat_extract]
        cells += [self.deform_align[name] for name in BRANCHES] + [self.backbone[name] for name in BRANCHES]
        for cell in cells:
            cell.construct = ms.jit(cell.construct)
        self.reconstruct = ms.jit(self.reconstruct)
        self.detect_mirror = False
        return self

    is_mirror_extended = staticmethod(is_mirror_extended)

    def compute_flow(self, lqs, mirror):
        """Backward flows (frame i+1 -> i) and forward flows (i -> i+1), each (N, T-1, 2, H, W). For
        mirror-extended input the forward flows are the backward ones reversed in time."""
        n, t, c, h, w = lqs.shape
        lqs_1 = lqs[:, :-1].reshape(-1, c, h, w)
        lqs_2 = lqs[:, 1:].reshape(-1, c, h, w)
        flows_backward = self.spynet(lqs_1, lqs_2).view(n, t - 1, 2, h, w)
        if mirror:
            return flows_backward[:, ::-1], flows_backward
        return self.spynet(lqs_2, lqs_1).view(n, t - 1, 2, h, w), flows_backward

    def propagate(self, feats, flows, branch, backward):
        """Run ``branch`` over the frames; ``feats`` lists, per earlier branch (spatial first), the per-frame
        features; ``backward``: whether it runs from the last frame to the first. Returns this branch's per-frame
        features in frame order."""
        n, t_flows, _, h, w = flows.shape
        frames = list(range(t_flows + 1))
        if backward:
            frames = frames[::-1]
        # flow_index[i]: the flow between frame frames[i] and the frame visited before it
        flow_index = frames if backward else [i - 1 for i in range(t_flows + 1)]
        align, backbone = self.deform_align[branch], self.backbone[branch]

        out = []
        feat_prop = ops.zeros((n, self.mid_channels, h, w), flows.dtype)
        for i, idx in enumerate(frames):
            feat_current = feats[0][idx]
            if i > 0:
                # second-order alignment: the feature one step back and the one two steps back, the latter
                # warped with the composed flow; both zero at the second frame
                flow_n1 = flows[:, flow_index[i]]
                cond_n1 = flow_warp(feat_prop, flow_n1.transpose(0, 2, 3, 1))
                if i > 1:
                    feat_n2 = out[-2]
                    flow_n2 = flows[:, flow_index[i - 1]]
                    flow_n2 = flow_n1 + flow_warp(flow_n2, flow_n1.transpose(0, 2, 3, 1))
                    cond_n2 = flow_warp(feat_n2, flow_n2.transpose(0, 2, 3, 1))
                else:
                    feat_n2, flow_n2 = ops.zeros_like(feat_prop), ops.zeros_like(flow_n1)
                    cond_n2 = ops.zeros_like(cond_n1)
                cond = ops.cat([cond_n1, feat_current, cond_n2], axis=1)
                feat_prop = align(ops.cat([feat_prop, feat_n2], axis=1), cond, flow_n1, flow_n2)
            feat = ops.cat([feat_current] + [branch_feats[idx] for branch_feats in feats[1:]] + [feat_prop], axis=1)
            feat_prop = feat_prop + backbone(feat)
            out.append(feat_prop)
        return out[::-1] if backward else out

    def reconstruct(self, feat, lq):
        """Concatenated per-frame features (N, 5C, h, w) and the input frame -> output frame."""
        hr = self.reconstruction(feat)
        hr = self.lrelu(self.upsample1(hr))
        hr = self.lrelu(self.upsample2(hr))
        hr = self.lrelu(self.conv_hr(hr))
        hr = self.conv_last(hr)
        if self.is_low_res_input:
            h, w = lq.shape[-2:]
            return hr + ops.interpolate(lq, size=(4 * h, 4 * w), mode="bilinear", align_corners=False)
        return hr + lq

    def construct(self, lqs):
        n, t, c, h, w = lqs.shape
        if self.is_low_res_input:
            lqs_flow = lqs
        else:
            lqs_flow = bicubic_quarter(lqs.reshape(-1, c, h, w)).reshape(n, t, c, h // 4, w // 4)
        mirror = self.is_mirror_extended(lqs) if self.detect_mirror else False

        # spatial features
        spatial = self.feat_extract(lqs.reshape(-1, c, h, w))
        fh, fw = spatial.shape[2:]
        spatial = spatial.view(n, t, -1, fh, fw)
        feats = [[spatial[:, i] for i in range(t)]]

        # flows on the (downsampled) input, then the four propagation branches
        flows_forward, flows_backward = self.compute_flow(lqs_flow, mirror)
        for branch, backward in DIRECTIONS:
            feats.append(self.propagate(feats, flows_backward if backward else flows_forward, branch, backward))

        # reconstruction, frame by frame
        outputs = [self.reconstruct(ops.cat([f[i] for f in feats], axis=1), lqs[:, i]) for i in range(t)]
        return ops.stack(outputs, axis=1)


def convert_state_dict(state, **unused):
    """Official mmagic keys equal ours once the converter has stripped ``generator.`` (``deform_align`` and
    ``backbone`` are CellDicts named like upstream's ModuleDicts; ``feat_extract`` of the same-size variant keeps
    the Sequential indices 0, 2, 4); SPyNet keys in the BasicSR/VRT layout are renamed."""
    spynet = {k[len("spynet."):]: v for k, v in state.items() if k.startswith("spynet.")}
    out = {k: v for k, v in state.items() if not k.startswith("spynet.")}
    out.update({f"spynet.{k}": v for k, v in convert_spynet_state_dict(spynet).items()})
    return out

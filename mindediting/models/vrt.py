"""VRT: A Video Restoration Transformer (Liang et al., 2022, https://arxiv.org/abs/2201.12288).

Exact MindSpore port of JingyunLiang/VRT ``models/network_vrt.py`` (inference path; training runs the
same graph with drop-path active). Input (N, D, C, H, W) RGB in [0, 1] (C = 4 for non-blind
denoising: the last channel is the constant noise map sigma/255); output (N, D, 3, H*upscale,
W*upscale), unclamped. H and W must be multiples of 8 and larger than 32 when ``pa_frames`` > 0.

Pieces: :mod:`.common.vrt_spynet` (multi-level flows), :mod:`.common.flow_warp` (bilinear and
``nearest4`` warps), :mod:`.common.deform_conv` (flow-guided DCNv2 in torchvision conventions),
:mod:`.common.window_attention` (TMSA / TMSAG). Parameter names equal the upstream state-dict keys
except LayerNorm weight/bias -> gamma/beta; :func:`convert_state_dict` does the mapping.
"""
import math
import re

import mindspore as ms
import numpy as np
from mindspore import nn, ops
from mindspore.common.initializer import Uniform, Zero, initializer

from mindediting.models.common.deform_conv import deform_conv2d
from mindediting.models.common.flow_warp import flow_warp
from mindediting.models.common.vrt_spynet import SpyNet
from mindediting.models.common.window_attention import TMSAG, DropPath, MlpGEGLU, apply_by_tokens, seed_drop_path


# Inference memory bound (outputs do not depend on it): the x4 reconstruction head runs on groups of frames
# whose largest intermediate (64 channels at the output size) holds at most this many float32 values (128 MB).
HEAD_CHUNK_ELEMS = 1 << 25


def _conv3d(cin, cout):
    """torch ``nn.Conv3d(cin, cout, (1, 3, 3), padding=(0, 1, 1))``: same weight (Cout, Cin, 1, 3, 3) and bias."""
    return nn.Conv3d(cin, cout, (1, 3, 3), pad_mode="pad", padding=(0, 0, 1, 1, 1, 1), has_bias=True)


def _conv2d(cin, cout, kernel_size, padding):
    """torch ``nn.Conv2d(cin, cout, k, 1, padding)`` (zero padding, with bias)."""
    if padding:
        return nn.Conv2d(cin, cout, kernel_size, pad_mode="pad", padding=padding, has_bias=True)
    return nn.Conv2d(cin, cout, kernel_size, pad_mode="valid", has_bias=True)


def _warp(x, flow, mode="bilinear"):
    """flow_warp with a (N, 2, H, W) flow, as every VRT call site permutes it."""
    return flow_warp(x, flow.transpose(0, 2, 3, 1), mode)


class DCNv2PackFlowGuided(nn.Cell):
    """Flow-guided deformable alignment (BasicVSR++ style) with ``pa_frames`` // 2 neighbours.

    ``weight`` is (dim, dim, 3, 3) while the input concatenates pa_frames/2 neighbours, so the
    convolution runs with pa_frames/2 weight groups, as torchvision infers it upstream.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, padding=1, deformable_groups=16,
                 max_residue_magnitude=10, pa_frames=2):
        super().__init__()
        self.max_residue_magnitude = max_residue_magnitude
        self.pa_frames = pa_frames
        self.padding = padding
        self.weight = ms.Parameter(
            initializer(Uniform(1.0 / math.sqrt(in_channels * kernel_size * kernel_size)),
                        (out_channels, in_channels, kernel_size, kernel_size), ms.float32), name="weight")
        self.bias = ms.Parameter(initializer(Zero(), (out_channels,), ms.float32), name="bias")

        def conv(cin, cout):
            return _conv2d(cin, cout, 3, 1)

        self.conv_offset = nn.SequentialCell([
            conv((1 + pa_frames // 2) * in_channels + pa_frames, out_channels), nn.LeakyReLU(0.1),
            conv(out_channels, out_channels), nn.LeakyReLU(0.1),
            conv(out_channels, out_channels), nn.LeakyReLU(0.1),
            conv(out_channels, 3 * 9 * deformable_groups),
        ])
        last = self.conv_offset[6]
        last.weight.set_data(initializer(Zero(), last.weight.shape, ms.float32))
        last.bias.set_data(initializer(Zero(), last.bias.shape, ms.float32))

    def construct(self, x, x_flow_warpeds, x_current, flows):
        out = self.conv_offset(ops.cat(list(x_flow_warpeds) + [x_current] + list(flows), 1))
        o1, o2, mask = ops.chunk(out, 3, 1)
        offset = self.max_residue_magnitude * ops.tanh(ops.cat((o1, o2), 1))
        parts = ops.chunk(offset, len(flows), 1) if len(flows) > 1 else (offset,)
        offset = ops.cat([part + ops.tile(ops.flip(flow, (1,)), (1, part.shape[1] // 2, 1, 1))
                          for part, flow in zip(parts, flows)], 1)
        return deform_conv2d(x, offset, self.weight, self.bias, 1, self.padding, 1, ops.sigmoid(mask))


class _ToChannelsLast(nn.Cell):
    def construct(self, x):
        return x.transpose(0, 2, 3, 4, 1)


class _ToChannelsFirst(nn.Cell):
    def construct(self, x):
        return x.transpose(0, 4, 1, 2, 3)


class _SpaceToDepth(nn.Cell):
    """'n c d (h neih) (w neiw) -> n d h w (neiw neih c)'."""

    def construct(self, x):
        n, c, d, h, w = x.shape
        x = x.reshape(n, c, d, h // 2, 2, w // 2, 2)
        return x.transpose(0, 2, 3, 5, 6, 4, 1).reshape(n, d, h // 2, w // 2, 4 * c)


class _DepthToSpace(nn.Cell):
    """'n (neiw neih c) d h w -> n d (h neih) (w neiw) c'."""

    def construct(self, x):
        n, c, d, h, w = x.shape
        x = x.reshape(n, 2, 2, c // 4, d, h, w)
        return x.transpose(0, 4, 5, 2, 6, 1, 3).reshape(n, d, 2 * h, 2 * w, c // 4)


class _Transpose12(nn.Cell):
    def construct(self, x):
        return x.swapaxes(1, 2)


class _PixelShuffle5D(nn.Cell):
    """PixelShuffle over the last three axes of (N, D, C, H, W), as torch applies it to 5-D input."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def construct(self, x):
        n, d, c, h, w = x.shape
        y = ops.pixel_shuffle(x.reshape(n * d, c, h, w), self.scale)
        return y.reshape(n, d, c // self.scale ** 2, h * self.scale, w * self.scale)


class Upsample(nn.SequentialCell):
    """Conv3d + per-frame PixelShuffle + LeakyReLU(0.1) per x2 (or one x3) step, then a last Conv3d."""

    def __init__(self, scale, num_feat):
        layers = []
        if scale & (scale - 1) == 0:
            steps = [2] * int(math.log(scale, 2))
        elif scale == 3:
            steps = [3]
        else:
            raise ValueError(f"VRT Upsample: scale {scale} is not supported (2^n or 3)")
        for s in steps:
            layers += [_conv3d(num_feat, s * s * num_feat), _Transpose12(), _PixelShuffle5D(s), _Transpose12(),
                       nn.LeakyReLU(0.1)]
        layers.append(_conv3d(num_feat, num_feat))
        super().__init__(layers)


class RTMSA(nn.Cell):
    """Residual TMSA group (stage 8): x + linear(TMSAG(x)), x is (N, C, D, H, W)."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio=2.0, qkv_bias=True,
                 qk_scale=None, drop_path=0.0, use_checkpoint_attn=False, use_checkpoint_ffn=False):
        super().__init__()
        self.residual_group = TMSAG(dim, input_resolution, depth, num_heads, window_size, None, False, mlp_ratio,
                                    qkv_bias, qk_scale, drop_path, use_checkpoint_attn, use_checkpoint_ffn)
        self.linear = nn.Dense(dim, dim)

    def construct(self, x):
        return x + self.linear(self.residual_group(x).swapaxes(1, 4)).swapaxes(1, 4)


class Stage(nn.Cell):
    """Reshape, TMSAG with mutual+self attention, TMSAG with self attention, parallel warping.

    x is (N, C, D, H, W); ``flows_backward`` / ``flows_forward`` are lists of (N, D-1-i, 2, H', W') at
    this stage's output resolution (one per neighbour distance).
    """

    def __init__(self, in_dim, dim, input_resolution, depth, num_heads, window_size, mul_attn_ratio=0.75,
                 mlp_ratio=2.0, qkv_bias=True, qk_scale=None, drop_path=0.0, norm_layer=None, pa_frames=2,
                 deformable_groups=16, reshape=None, max_residue_magnitude=10, use_checkpoint_attn=False,
                 use_checkpoint_ffn=False):
        super().__init__()
        self.pa_frames = pa_frames
        if reshape == "none":
            self.reshape = nn.SequentialCell([_ToChannelsLast(), nn.LayerNorm((dim,), epsilon=1e-5),
                                              _ToChannelsFirst()])
        elif reshape == "down":
            self.reshape = nn.SequentialCell([_SpaceToDepth(), nn.LayerNorm((4 * in_dim,), epsilon=1e-5),
                                              nn.Dense(4 * in_dim, dim), _ToChannelsFirst()])
        elif reshape == "up":
            self.reshape = nn.SequentialCell([_DepthToSpace(), nn.LayerNorm((in_dim // 4,), epsilon=1e-5),
                                              nn.Dense(in_dim // 4, dim), _ToChannelsFirst()])
        else:
            raise ValueError(f"VRT Stage: reshape must be 'none', 'down' or 'up', got {reshape!r}")
        depth1 = int(depth * mul_attn_ratio)
        self.residual_group1 = TMSAG(dim, input_resolution, depth1, num_heads, (2, window_size[1], window_size[2]),
                                     None, True, mlp_ratio, qkv_bias, qk_scale, drop_path, use_checkpoint_attn,
                                     use_checkpoint_ffn)
        self.linear1 = nn.Dense(dim, dim)
        self.residual_group2 = TMSAG(dim, input_resolution, depth - depth1, num_heads, window_size, None, False,
                                     mlp_ratio, qkv_bias, qk_scale, drop_path, use_checkpoint_attn,
                                     use_checkpoint_ffn)
        self.linear2 = nn.Dense(dim, dim)
        if pa_frames:
            if pa_frames not in (2, 4, 6):
                raise ValueError(f"VRT Stage: pa_frames must be 0, 2, 4 or 6, got {pa_frames}")
            self.pa_deform = DCNv2PackFlowGuided(dim, dim, 3, padding=1, deformable_groups=deformable_groups,
                                                 max_residue_magnitude=max_residue_magnitude, pa_frames=pa_frames)
            self.pa_fuse = MlpGEGLU(dim * 3, dim * 3, dim)

    def construct(self, x, flows_backward, flows_forward):
        x = self.reshape(x)
        x = self.linear1(self.residual_group1(x).swapaxes(1, 4)).swapaxes(1, 4) + x
        x = self.linear2(self.residual_group2(x).swapaxes(1, 4)).swapaxes(1, 4) + x
        if self.pa_frames:
            x = x.swapaxes(1, 2)
            align = {2: self.get_aligned_feature_2frames, 4: self.get_aligned_feature_4frames,
                     6: self.get_aligned_feature_6frames}[self.pa_frames]
            x_backward, x_forward = align(x, flows_backward, flows_forward)
            x = ops.cat([x, x_backward, x_forward], 2).transpose(0, 1, 3, 4, 2)
            x = apply_by_tokens(self.pa_fuse, x).transpose(0, 4, 1, 2, 3)
        return x

    def get_aligned_feature_2frames(self, x, flows_backward, flows_forward):
        n = x.shape[1]
        x_backward = [ops.zeros_like(x[:, -1])]
        for i in range(n - 1, 0, -1):
            x_i, flow = x[:, i], flows_backward[0][:, i - 1]
            x_backward.append(self.pa_deform(x_i, [_warp(x_i, flow)], x[:, i - 1], [flow]))
        x_backward = x_backward[::-1]
        x_forward = [ops.zeros_like(x[:, 0])]
        for i in range(0, n - 1):
            x_i, flow = x[:, i], flows_forward[0][:, i]
            x_forward.append(self.pa_deform(x_i, [_warp(x_i, flow)], x[:, i + 1], [flow]))
        return ops.stack(x_backward, 1), ops.stack(x_forward, 1)

    def get_aligned_feature_4frames(self, x, flows_backward, flows_forward):
        n = x.shape[1]
        x_backward = [ops.zeros_like(x[:, -1])]
        for i in range(n, 1, -1):
            x_i, flow1 = x[:, i - 1], flows_backward[0][:, i - 2]
            if i == n:
                x_ii, flow2 = ops.zeros_like(x[:, n - 2]), ops.zeros_like(flows_backward[1][:, n - 3])
            else:
                x_ii, flow2 = x[:, i], flows_backward[1][:, i - 2]
            warped = [_warp(x_i, flow1), _warp(x_ii, flow2)]
            x_backward.append(self.pa_deform(ops.cat([x_i, x_ii], 1), warped, x[:, i - 2], [flow1, flow2]))
        x_backward = x_backward[::-1]
        x_forward = [ops.zeros_like(x[:, 0])]
        for i in range(-1, n - 2):
            x_i, flow1 = x[:, i + 1], flows_forward[0][:, i + 1]
            if i == -1:
                x_ii, flow2 = ops.zeros_like(x[:, 1]), ops.zeros_like(flows_forward[1][:, 0])
            else:
                x_ii, flow2 = x[:, i], flows_forward[1][:, i]
            warped = [_warp(x_i, flow1), _warp(x_ii, flow2)]
            x_forward.append(self.pa_deform(ops.cat([x_i, x_ii], 1), warped, x[:, i + 2], [flow1, flow2]))
        return ops.stack(x_backward, 1), ops.stack(x_forward, 1)

    def get_aligned_feature_6frames(self, x, flows_backward, flows_forward):
        n = x.shape[1]
        zero_x = ops.zeros_like(x[:, -1])
        x_backward = [zero_x]
        for i in range(n + 1, 2, -1):
            x_i, flow1 = x[:, i - 2], flows_backward[0][:, i - 3]
            if i == n + 1:
                x_ii, flow2 = zero_x, ops.zeros_like(flows_backward[1][:, -1])
                x_iii, flow3 = zero_x, ops.zeros_like(flows_backward[2][:, -1])
            elif i == n:
                x_ii, flow2 = x[:, i - 1], flows_backward[1][:, i - 3]
                x_iii, flow3 = zero_x, ops.zeros_like(flows_backward[2][:, -1])
            else:
                x_ii, flow2 = x[:, i - 1], flows_backward[1][:, i - 3]
                x_iii, flow3 = x[:, i], flows_backward[2][:, i - 3]
            warped = [_warp(x_i, flow1), _warp(x_ii, flow2), _warp(x_iii, flow3)]
            x_backward.append(self.pa_deform(ops.cat([x_i, x_ii, x_iii], 1), warped, x[:, i - 3],
                                             [flow1, flow2, flow3]))
        x_backward = x_backward[::-1]
        x_forward = [zero_x]
        for i in range(0, n - 1):
            x_i, flow1 = x[:, i], flows_forward[0][:, i]
            if i == 0:
                x_ii, flow2 = zero_x, ops.zeros_like(flows_forward[1][:, 0])
                x_iii, flow3 = zero_x, ops.zeros_like(flows_forward[2][:, 0])
            elif i == 1:
                x_ii, flow2 = x[:, i - 1], flows_forward[1][:, i - 1]
                x_iii, flow3 = zero_x, ops.zeros_like(flows_forward[2][:, 0])
            else:
                x_ii, flow2 = x[:, i - 1], flows_forward[1][:, i - 1]
                x_iii, flow3 = x[:, i - 2], flows_forward[2][:, i - 2]
            warped = [_warp(x_i, flow1), _warp(x_ii, flow2), _warp(x_iii, flow3)]
            x_forward.append(self.pa_deform(ops.cat([x_i, x_ii, x_iii], 1), warped, x[:, i + 1],
                                            [flow1, flow2, flow3]))
        return ops.stack(x_backward, 1), ops.stack(x_forward, 1)


class VRT(nn.Cell):
    """Video Restoration Transformer; constructor arguments are the upstream ones (``norm_layer`` ignored), but
    for ``spynet_path``: ``build_model("vrt", spynet_path=...)`` loads that file into ``spynet``."""

    def __init__(self, upscale=4, in_chans=3, out_chans=3, img_size=(6, 64, 64), window_size=(6, 8, 8),
                 depths=(8, 8, 8, 8, 8, 8, 8, 4, 4, 4, 4, 4, 4), indep_reconsts=(11, 12),
                 embed_dims=(120, 120, 120, 120, 120, 120, 120, 180, 180, 180, 180, 180, 180),
                 num_heads=(6,) * 13, mul_attn_ratio=0.75, mlp_ratio=2.0, qkv_bias=True, qk_scale=None,
                 drop_path_rate=0.2, norm_layer=None, pa_frames=2, deformable_groups=16,
                 recal_all_flows=False, nonblind_denoising=False, use_checkpoint_attn=False,
                 use_checkpoint_ffn=False, no_checkpoint_attn_blocks=(), no_checkpoint_ffn_blocks=()):
        super().__init__()
        depths, embed_dims, num_heads = list(depths), list(embed_dims), list(num_heads)
        if not (len(depths) == len(embed_dims) == len(num_heads)) or len(depths) < 8:
            raise ValueError(f"VRT: depths, embed_dims and num_heads need the same length >= 8, got "
                             f"{len(depths)}, {len(embed_dims)}, {len(num_heads)}")
        self.in_chans, self.out_chans, self.upscale = in_chans, out_chans, upscale
        self.pa_frames, self.recal_all_flows, self.nonblind_denoising = pa_frames, recal_all_flows, nonblind_denoising
        self.window_size, self.img_size = list(window_size), list(img_size)
        if pa_frames:
            first_in = in_chans * (1 + 2 * 4) + (1 if nonblind_denoising else 0)
        else:
            first_in = in_chans
        self.conv_first = _conv3d(first_in, embed_dims[0])
        if pa_frames:
            self.spynet = SpyNet([2, 3, 4, 5])
        dpr = [float(v) for v in np.linspace(0, drop_path_rate, sum(depths))]
        reshapes = ["none", "down", "down", "down", "up", "up", "up"]
        scales = [1, 2, 4, 8, 4, 2, 1]
        ckpt_attn = [False if i in no_checkpoint_attn_blocks else use_checkpoint_attn for i in range(len(depths))]
        ckpt_ffn = [False if i in no_checkpoint_ffn_blocks else use_checkpoint_ffn for i in range(len(depths))]
        for i in range(7):
            setattr(self, f"stage{i + 1}", Stage(
                in_dim=embed_dims[i - 1], dim=embed_dims[i],
                input_resolution=(img_size[0], img_size[1] // scales[i], img_size[2] // scales[i]),
                depth=depths[i], num_heads=num_heads[i], window_size=window_size, mul_attn_ratio=mul_attn_ratio,
                mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale,
                drop_path=dpr[sum(depths[:i]):sum(depths[:i + 1])], pa_frames=pa_frames,
                deformable_groups=deformable_groups, reshape=reshapes[i], max_residue_magnitude=10 / scales[i],
                use_checkpoint_attn=ckpt_attn[i], use_checkpoint_ffn=ckpt_ffn[i]))
        stage8 = [nn.SequentialCell([_ToChannelsLast(), nn.LayerNorm((embed_dims[6],), epsilon=1e-5),
                                     nn.Dense(embed_dims[6], embed_dims[7]), _ToChannelsFirst()])]
        for i in range(7, len(depths)):
            stage8.append(RTMSA(
                embed_dims[i], img_size, depths[i], num_heads[i],
                [1, window_size[1], window_size[2]] if i in indep_reconsts else window_size, mlp_ratio, qkv_bias,
                qk_scale, dpr[sum(depths[:i]):sum(depths[:i + 1])], ckpt_attn[i], ckpt_ffn[i]))
        # a SequentialCell, not a CellList: Cell.recompute() (train.recompute) adds a child cell to the container,
        # which a CellList then iterates too (KeyError in graph compilation)
        self.stage8 = nn.SequentialCell(stage8)
        self.norm = nn.LayerNorm((embed_dims[-1],), epsilon=1e-5)
        self.conv_after_body = nn.Dense(embed_dims[-1], embed_dims[0])
        if pa_frames:
            if upscale == 1:
                self.conv_last = _conv3d(embed_dims[0], out_chans)
            else:
                num_feat = 64
                self.conv_before_upsample = nn.SequentialCell([_conv3d(embed_dims[0], num_feat), nn.LeakyReLU(0.01)])
                self.upsample = Upsample(upscale, num_feat)
                self.conv_last = _conv3d(num_feat, out_chans)
        else:
            num_feat = 64
            self.linear_fuse = _conv2d(embed_dims[0] * img_size[0], num_feat, 1, 0)
            self.conv_last = _conv2d(num_feat, out_chans, 7, 0)
        # stochastic depth: each DropPath draws its own stream of the per-iteration seed (seed_random)
        for stream, cell in enumerate(c for _, c in self.cells_and_names() if isinstance(c, DropPath)):
            cell.stream = stream

    # Runtime hint read by mindediting.engine.runtime.load_network (system.pynative_synchronize overrides it):
    # PyNative ops on the calling thread instead of MindSpore's asynchronous launch queue. Same numbers; on the
    # 2-core CPU box the queue's worker threads doubled the time (001 model on 6x64x64: 102 -> 65 CPU s, 92 -> 44 s).
    # No jit_stages(): system.mode hybrid runs VRT in PyNative (benchmarks/bench_vrt.py jit_stage_cells: why).
    pynative_synchronize = True

    @staticmethod
    def seed_random(seed):
        """Set the stochastic-depth seed; the trainer calls it with each iteration's seed."""
        seed_drop_path(seed)

    def check_input(self, x):
        if x.ndim != 5:
            raise ValueError(f"VRT: expected input (N, D, C, H, W), got shape {tuple(x.shape)}")
        channels = self.in_chans + (1 if self.nonblind_denoising and self.pa_frames else 0)
        if x.shape[2] != channels:
            raise ValueError(f"VRT: expected {channels} input channels, got {x.shape[2]}")
        h, w = x.shape[3:]
        if h % 8 or w % 8:
            raise ValueError(f"VRT: H and W must be multiples of 8, got {h}x{w} (pad or tile the input)")
        if self.pa_frames and (h <= 32 or w <= 32):
            raise ValueError(f"VRT: H and W must exceed 32 for the SpyNet pyramid, got {h}x{w}")
        if self.pa_frames and x.shape[1] < 2:
            raise ValueError(f"VRT: need at least 2 frames, got {x.shape[1]}")

    def construct(self, x):
        self.check_input(x)
        if not self.pa_frames:
            return self._forward_interpolation(x)
        if self.nonblind_denoising:
            x, noise_level_map = x[:, :, :self.in_chans], x[:, :, self.in_chans:]
        x_lq = x
        flows_backward, flows_forward = self.get_flows(x)
        x_backward, x_forward = self.get_aligned_image_2frames(x, flows_backward[0], flows_forward[0])
        x = ops.cat([x, x_backward, x_forward], 2)
        if self.nonblind_denoising:
            x = ops.cat([x, noise_level_map], 2)
        x = self.conv_first(x.swapaxes(1, 2))
        features = self.forward_features(x, flows_backward, flows_forward)
        x = x + self.conv_after_body(features.swapaxes(1, 4)).swapaxes(1, 4)
        if self.upscale == 1:
            return self.conv_last(x).swapaxes(1, 2) + x_lq
        # the head is per frame (1x3x3 kernels): run it on groups of frames to bound the x4 intermediates
        d, h, w = x.shape[2], x.shape[3], x.shape[4]
        step = max(1, HEAD_CHUNK_ELEMS // (64 * self.upscale * self.upscale * h * w))
        if step >= d:
            x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        else:
            x = ops.cat([self.conv_last(self.upsample(self.conv_before_upsample(x[:, :, s:s + step])))
                         for s in range(0, d, step)], 2)
        x = x.swapaxes(1, 2)
        n, d, c, h, w = x.shape
        lq = x_lq.reshape(n * d, x_lq.shape[2], x_lq.shape[3], x_lq.shape[4])
        up = ops.interpolate(lq, size=(h, w), mode="bilinear", align_corners=False).reshape(n, d, c, h, w)
        return x + up

    def _forward_interpolation(self, x):
        x_mean = x.mean(axis=(1, 3, 4), keep_dims=True)
        x = x - x_mean
        x = self.conv_first(x.swapaxes(1, 2))
        x = x + self.conv_after_body(self.forward_features(x, [], []).swapaxes(1, 4)).swapaxes(1, 4)
        n, c, d, h, w = x.shape
        x = x.transpose(0, 2, 1, 3, 4).reshape(n, d * c, h, w)
        x = ops.leaky_relu(self.linear_fuse(x), 0.2)
        x = self.conv_last(ops.pad(x, (3, 3, 3, 3), mode="reflect"))
        x = ops.stack(ops.split(x, 3, 1), 1)
        return x + x_mean

    def get_flows(self, x):
        backward, forward = self.get_flow_2frames(x)
        if self.pa_frames >= 4:
            backward2, forward2 = self.get_flow_4frames(forward, backward)
            if self.pa_frames == 6:
                backward3, forward3 = self.get_flow_6frames(forward, backward, forward2, backward2)
                return backward + backward2 + backward3, forward + forward2 + forward3
            return backward + backward2, forward + forward2
        return backward, forward

    def get_flow_2frames(self, x):
        b, n, c, h, w = x.shape
        x_1 = x[:, :-1].reshape(-1, c, h, w)
        x_2 = x[:, 1:].reshape(-1, c, h, w)
        backward = [f.reshape(b, n - 1, 2, h // 2 ** i, w // 2 ** i) for i, f in enumerate(self.spynet(x_1, x_2))]
        forward = [f.reshape(b, n - 1, 2, h // 2 ** i, w // 2 ** i) for i, f in enumerate(self.spynet(x_2, x_1))]
        return backward, forward

    @staticmethod
    def get_flow_4frames(flows_forward, flows_backward):
        d = flows_forward[0].shape[1]
        backward2 = []
        for flows in flows_backward:
            items = []  # appended, then reversed: one list per level grown by insert(0, ...) failed to compile
            for i in range(d - 1, 0, -1):
                f1, f2 = flows[:, i - 1], flows[:, i]
                items.append(f1 + _warp(f2, f1))
            backward2.append(ops.stack(items[::-1], 1))
        forward2 = []
        for flows in flows_forward:
            items = []
            for i in range(1, d):
                f1, f2 = flows[:, i], flows[:, i - 1]
                items.append(f1 + _warp(f2, f1))
            forward2.append(ops.stack(items, 1))
        return backward2, forward2

    @staticmethod
    def get_flow_6frames(flows_forward, flows_backward, flows_forward2, flows_backward2):
        d = flows_forward2[0].shape[1]
        backward3 = []
        for flows, flows2 in zip(flows_backward, flows_backward2):
            items = []
            for i in range(d - 1, 0, -1):
                f1, f2 = flows2[:, i - 1], flows[:, i + 1]
                items.append(f1 + _warp(f2, f1))
            backward3.append(ops.stack(items[::-1], 1))
        forward3 = []
        for flows, flows2 in zip(flows_forward, flows_forward2):
            items = []
            for i in range(2, d + 1):
                f1, f2 = flows2[:, i - 1], flows[:, i - 2]
                items.append(f1 + _warp(f2, f1))
            forward3.append(ops.stack(items, 1))
        return backward3, forward3

    @staticmethod
    def get_aligned_image_2frames(x, flows_backward, flows_forward):
        n = x.shape[1]
        zeros = ops.tile(ops.zeros_like(x[:, -1]), (1, 4, 1, 1))
        x_backward = [zeros]
        for i in range(n - 1, 0, -1):
            x_backward.append(_warp(x[:, i], flows_backward[:, i - 1], "nearest4"))
        x_backward = x_backward[::-1]
        x_forward = [zeros]
        for i in range(0, n - 1):
            x_forward.append(_warp(x[:, i], flows_forward[:, i], "nearest4"))
        return ops.stack(x_backward, 1), ops.stack(x_forward, 1)

    def forward_features(self, x, flows_backward, flows_forward):
        x1 = self.stage1(x, flows_backward[0::4], flows_forward[0::4])
        x2 = self.stage2(x1, flows_backward[1::4], flows_forward[1::4])
        x3 = self.stage3(x2, flows_backward[2::4], flows_forward[2::4])
        x4 = self.stage4(x3, flows_backward[3::4], flows_forward[3::4])
        x = self.stage5(x4, flows_backward[2::4], flows_forward[2::4])
        x = self.stage6(x + x3, flows_backward[1::4], flows_forward[1::4])
        x = self.stage7(x + x2, flows_backward[0::4], flows_forward[0::4])
        x = self.stage8(x + x1)
        return self.norm(x.transpose(0, 2, 3, 4, 1)).transpose(0, 4, 1, 2, 3)


_LAYERNORM_KEY = re.compile(r"(^|\.)(norm\d?|reshape\.1|stage8\.0\.1)\.(weight|bias)$")
_DROPPED_SUFFIXES = ("relative_position_index", "position_bias")


def convert_state_dict(state, **_):
    """Upstream VRT (or Stage / WindowAttention / SpyNet) state dict -> this port's parameter names.

    LayerNorm weight/bias -> gamma/beta; the deterministic buffers (``relative_position_index``,
    ``position_bias``, SpyNet ``mean``/``std``) are recomputed by the Cells and dropped here.
    """
    out = {}
    for key, value in state.items():
        if key.endswith(_DROPPED_SUFFIXES) or re.search(r"(^|\.)spynet\.(mean|std)$", key) or key in ("mean", "std"):
            continue
        match = _LAYERNORM_KEY.search(key)
        if match:
            key = key[: match.start(3)] + ("gamma" if match.group(3) == "weight" else "beta")
        out[key] = value
    return out

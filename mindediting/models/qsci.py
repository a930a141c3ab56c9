"""Q-SCI: EfficientSCI quantised to low bit widths (fake quantisation, quantisation-aware training).

Paper: Cao et al., "A Simple Low-bit Quantization Framework for Video Snapshot Compressive Imaging"
(Q-SCI), ECCV 2024. Port of ``quantized_sci`` from mcao92/QuantizedSCI (cacti/models/quantized_sci.py,
quantized_resdnet.py, Quant.py); the checkpoint keys are the upstream ones.

Call: ``net(meas, mask, mask_s)`` with meas (B, H, W), mask (B, cr, H, W), mask_s (B, H, W) (no channel
axis, as the upstream scripts pass them). Returns ``[out]`` with out (B, cr, H, W) for ``color_ch=1``.

What is quantised (see :mod:`mindediting.models.common.quantizers`): every Conv3d/Linear weight
(signed, per output channel) and its input activations (asymmetric, per channel), plus q, k, v and the
softmax output of the temporal attention (per head). Queries and keys get a learnable per-head shift
(``moveq``/``movek``) before their quantisers. For ``bit_depth < 8`` every feature-extraction and
reconstruction conv gets a parallel 8-bit 1x1x1 branch whose output is added (``fem_conv*_2``,
``vrm_conv*_2``). LeakyReLU, PixelShuffle, softmax, residual sums, biases and the init step stay float.
"""
import numpy as np
from mindspore import nn, ops

from mindediting.models.common.quantizers import ActQ, Conv3dQ, LearnableBias, LinearQ
from mindediting.models.efficientsci import (
    NUM_HEADS,
    ResDNetBlock,
    check_widths,
    init_frames,
    lrelu,
    pixel_shuffle_frames,
    pixel_unshuffle_frames,
    tokens_over_time,
    tokens_to_volume,
)

HIGH_BITS = 8  # bit width of the side branches of the low-bit feature extraction / reconstruction


class QuantizedTimesAttention3D(nn.Cell):
    """Temporal attention with quantised qkv/proj, shifted and quantised q/k, quantised v and attention map."""

    def __init__(self, dim, num_heads=NUM_HEADS, wa_bits=4, att_bits=8):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5  # upstream quirk: full dim, not the head size
        self.moveq = LearnableBias(num_heads)
        self.movek = LearnableBias(num_heads)
        self.qkv = LinearQ(dim, (dim // 2) * 3, bias=False, nbits_w=wa_bits)
        self.proj = LinearQ(dim // 2, dim, nbits_w=wa_bits)
        self.q_act = ActQ(num_heads, nbits_a=wa_bits)
        self.k_act = ActQ(num_heads, nbits_a=wa_bits)
        self.v_act = ActQ(num_heads, nbits_a=wa_bits)
        self.attn_act = ActQ(num_heads, nbits_a=att_bits)

    def construct(self, x):
        n_tok, t, c = x.shape
        c = c // 2
        qkv = self.qkv(x).reshape(n_tok, t, 3, self.num_heads, c // self.num_heads).transpose(2, 0, 3, 1, 4)
        q = self.q_act(self.moveq(qkv[0]))
        k = self.k_act(self.movek(qkv[1]))
        v = self.v_act(qkv[2])
        attn = ops.softmax(ops.matmul(q * self.scale, k.swapaxes(-2, -1)), -1)
        attn = self.attn_act(attn)
        out = ops.matmul(attn, v).swapaxes(1, 2).reshape(n_tok, t, c)
        return self.proj(out)


class QuantizedCFormerBlock(nn.Cell):
    def __init__(self, dim, bits=8):
        super().__init__()
        self.scb = nn.SequentialCell(
            Conv3dQ(dim, dim, (1, 3, 3), padding=(0, 1, 1), nbits_w=bits), lrelu(),
            Conv3dQ(dim, dim, (1, 3, 3), padding=(0, 1, 1), nbits_w=bits),
        )
        self.tsab = QuantizedTimesAttention3D(dim, wa_bits=bits, att_bits=bits)
        self.ffn = nn.SequentialCell(
            Conv3dQ(dim, dim, 3, 1, 1, nbits_w=bits), lrelu(), Conv3dQ(dim, dim, 1, nbits_w=bits)
        )

    def construct(self, x):
        b, _, _, h, w = x.shape
        tsab_out = tokens_to_volume(self.tsab(tokens_over_time(x)), b, h, w)
        ffn_in = self.scb(x) + tsab_out + x
        return self.ffn(ffn_in) + ffn_in


def quantized_resdnet(dim, group_num, bits):
    def block(group_dim):
        return QuantizedCFormerBlock(group_dim, bits)

    def conv(cin, cout, kernel):
        return Conv3dQ(cin, cout, kernel, nbits_w=bits)

    return ResDNetBlock(dim, group_num, block=block, conv=conv)


def _qconv_act(cin, cout, kernel, stride=1, padding=0, bits=8):
    return nn.SequentialCell(Conv3dQ(cin, cout, kernel, stride, padding, nbits_w=bits), lrelu())


class QuantizedSCI(nn.Cell):
    """quantized_sci(in_ch, units, group_num, color_ch, bit_depth); defaults = EfficientSCI-S at 8 bits."""

    def __init__(self, in_ch=32, units=8, group_num=2, color_ch=1, bit_depth=8):
        super().__init__()
        check_widths("QuantizedSCI", in_ch, group_num, color_ch)
        if not isinstance(bit_depth, int) or isinstance(bit_depth, bool) or not 2 <= bit_depth <= 8:
            raise ValueError(
                f"QuantizedSCI: bit_depth must be an integer in 2..8 (released: 2, 3, 4, 8), got {bit_depth!r}"
            )
        self.color_ch = color_ch
        self.bit_depth = bit_depth
        b, c = bit_depth, in_ch
        if bit_depth == 8:
            self.fem = nn.SequentialCell(
                Conv3dQ(1, c, (3, 7, 7), 1, (1, 3, 3), nbits_w=b), lrelu(),
                Conv3dQ(c, c * 2, 3, 1, 1, nbits_w=b), lrelu(),
                Conv3dQ(c * 2, c * 4, 3, (1, 2, 2), 1, nbits_w=b), lrelu(),
            )
            self.vrm = nn.SequentialCell(
                Conv3dQ(c * 2, c * 2, 3, 1, 1, nbits_w=b), lrelu(),
                Conv3dQ(c * 2, c, 1, nbits_w=b), lrelu(),
                Conv3dQ(c, color_ch, 3, 1, 1, nbits_w=b),
            )
        else:
            # low-bit main path + 8-bit 1x1x1 side branch at every feature-extraction / reconstruction stage
            self.fem_conv1_1 = _qconv_act(1, c, (3, 7, 7), 1, (1, 3, 3), bits=b)
            self.fem_conv1_2 = _qconv_act(1, c, 1, bits=HIGH_BITS)
            self.fem_conv2_1 = _qconv_act(c, c * 2, 3, 1, 1, bits=b)
            self.fem_conv2_2 = _qconv_act(c, c * 2, 1, bits=HIGH_BITS)
            self.fem_conv3_1 = _qconv_act(c * 2, c * 4, 3, (1, 2, 2), 1, bits=b)
            self.fem_conv3_2 = _qconv_act(c * 8, c * 4, 1, bits=HIGH_BITS)  # on pixel-unshuffled input
            self.vrm_conv1_1 = _qconv_act(c * 2, c * 2, 3, 1, 1, bits=b)
            self.vrm_conv1_2 = _qconv_act(c * 2, c * 2, 1, bits=HIGH_BITS)
            self.vrm_conv2_1 = _qconv_act(c * 2, c, 1, bits=b)
            self.vrm_conv2_2 = _qconv_act(c * 2, c, 1, bits=HIGH_BITS)
            self.vrm_conv3_1 = Conv3dQ(c, color_ch, 3, 1, 1, nbits_w=b)
            self.vrm_conv3_2 = Conv3dQ(c, color_ch, 1, nbits_w=HIGH_BITS)
        self.up_conv = Conv3dQ(c * 4, c * 8, 1, nbits_w=b)
        self.resdnet_list = nn.CellList([quantized_resdnet(c * 4, group_num, b) for _ in range(units)])

    def feature_extraction(self, x):
        if self.bit_depth == 8:
            return self.fem(x)
        out = self.fem_conv1_1(x) + self.fem_conv1_2(x)
        out = self.fem_conv2_1(out) + self.fem_conv2_2(out)
        return self.fem_conv3_1(out) + self.fem_conv3_2(pixel_unshuffle_frames(out))

    def reconstruction(self, x):
        if self.bit_depth == 8:
            return self.vrm(x)
        out = self.vrm_conv1_1(x) + self.vrm_conv1_2(x)
        out = self.vrm_conv2_1(out) + self.vrm_conv2_2(out)
        return self.vrm_conv3_1(out) + self.vrm_conv3_2(out)

    def construct(self, meas, mask, mask_s):
        out = self.feature_extraction(init_frames(meas, mask, mask_s))
        for block in self.resdnet_list:
            out = block(out)
        out = self.reconstruction(pixel_shuffle_frames(self.up_conv(out)))
        if self.color_ch != 3:
            out = out.squeeze(1)
        return [out]


def convert_state_dict(state, **ctor_kwargs):
    """Upstream keys equal the Cell's parameter names (quantiser buffers ``init_state``/``signed`` included)."""
    return dict(state)


def load_full_precision(net, fp_params):
    """Start QAT from a full-precision EfficientSCI state (``{name: ndarray}``, e.g. from ``load_and_convert``).

    Upstream ``load_checkpoints`` is non-strict: every entry whose name exists in ``net`` with the same shape is
    copied; the rest is left as built (quantiser parameters are then set by the first training batch).
    Returns ``(copied, skipped)`` name lists.
    """
    from mindspore import Tensor

    own = {p.name: p for p in net.get_parameters()}
    copied, skipped = [], []
    for name, value in fp_params.items():
        param = own.get(name)
        if param is None or tuple(param.shape) != tuple(value.shape):
            skipped.append(name)
            continue
        param.set_data(Tensor(value.astype(np.float32)))
        copied.append(name)
    return copied, skipped

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
from functools import partial

import numpy as np
from mindspore import nn

from mindediting.models.common.quantizers import ActQ, Conv3dQ, LearnableBias, LinearQ
from mindediting.models.efficientsci import (
    NUM_HEADS,
    CFormerBlock,
    EfficientSCIBase,
    ResDNetBlock,
    TimesAttention3D,
    check_widths,
    conv_stack,
    fem_specs,
    lrelu,
    pixel_unshuffle_frames,
    vrm_specs,
)

HIGH_BITS = 8  # bit width of the side branches of the low-bit feature extraction / reconstruction


def qconv(bits):
    """Factory with the signature of ``efficientsci.conv3d`` building ``bits``-bit :class:`Conv3dQ` layers."""
    return partial(Conv3dQ, nbits_w=bits)


class QuantizedTimesAttention3D(TimesAttention3D):
    """Temporal attention with quantised qkv/proj, shifted and quantised q/k, quantised v and attention map."""

    def __init__(self, dim, num_heads=NUM_HEADS, wa_bits=4, att_bits=8):
        super().__init__(dim, num_heads, linear=partial(LinearQ, nbits_w=wa_bits))
        self.moveq = LearnableBias(num_heads)
        self.movek = LearnableBias(num_heads)
        self.q_act = ActQ(num_heads, nbits_a=wa_bits)
        self.k_act = ActQ(num_heads, nbits_a=wa_bits)
        self.v_act = ActQ(num_heads, nbits_a=wa_bits)
        self.attn_act = ActQ(num_heads, nbits_a=att_bits)

    def heads(self, q, k, v):
        return self.q_act(self.moveq(q)), self.k_act(self.movek(k)), self.v_act(v)

    def attention_map(self, attn):
        return self.attn_act(attn)


class QuantizedCFormerBlock(CFormerBlock):
    def __init__(self, dim, bits=8):
        super().__init__(dim, conv=qconv(bits), attention=partial(QuantizedTimesAttention3D, wa_bits=bits,
                                                                  att_bits=bits))


def quantized_resdnet(dim, group_num, bits):
    return ResDNetBlock(dim, group_num, block=partial(QuantizedCFormerBlock, bits=bits), conv=qconv(bits))


def _qconv_act(cin, cout, kernel, stride=1, padding=0, bits=8):
    return nn.SequentialCell(Conv3dQ(cin, cout, kernel, stride, padding, nbits_w=bits), lrelu())


class QuantizedSCI(EfficientSCIBase):
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
            # EfficientSCI's layers with quantised convs
            self.fem = conv_stack(fem_specs(c), qconv(b))
            self.vrm = conv_stack(vrm_specs(c, color_ch), qconv(b), act_last=False)
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

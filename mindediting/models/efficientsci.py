"""EfficientSCI: dense CNN-Transformer network for video snapshot compressive imaging.

Paper: Wang et al., "EfficientSCI: Densely Connected Network with Space-time Factorization for
Large-scale Video Snapshot Compressive Imaging", CVPR 2023. Port of ``EfficientSCI`` from
ucaswangls/EfficientSCI (cacti/models/efficientsci.py); the checkpoint keys are the upstream ones.

Call: ``net(meas, mask, mask_s)`` with meas (B, 1, H, W) in [0, cr], mask (B, cr, H, W) binary and
mask_s = sum of mask over frames with zeros replaced by 1, (B, 1, H, W). Returns ``[out]`` with out
(B, cr, H, W) (grey, ``color_ch=1``) or (B, 3, cr, H, W) for the Bayer variant. H and W must be even.

Released sizes (in_ch, units, group_num): T (16, 8, 2), S (32, 8, 2), B (64, 8, 4), L (64, 12, 4).
"""
from mindspore import nn, ops

NUM_HEADS = 4
VARIANTS = {
    "T": {"in_ch": 16, "units": 8, "group_num": 2},
    "S": {"in_ch": 32, "units": 8, "group_num": 2},
    "B": {"in_ch": 64, "units": 8, "group_num": 4},
    "L": {"in_ch": 64, "units": 12, "group_num": 4},
}


def check_widths(name, in_ch, group_num, color_ch):
    """Raise ValueError when (in_ch, group_num, color_ch) cannot build the attention blocks."""
    if color_ch not in (1, 3):
        raise ValueError(f"{name}: color_ch must be 1 (grey) or 3 (Bayer), got {color_ch}")
    if group_num < 1 or (4 * in_ch) % group_num:
        raise ValueError(f"{name}: 4*in_ch={4 * in_ch} must be divisible by group_num={group_num}")
    group_dim = 4 * in_ch // group_num
    if group_dim % 2 or (group_dim // 2) % NUM_HEADS:
        raise ValueError(
            f"{name}: channels per group 4*in_ch/group_num={group_dim} must give an even number whose half is "
            f"divisible by {NUM_HEADS} heads (e.g. in_ch=32, group_num=2)"
        )


def conv3d(cin, cout, kernel, stride=1, padding=0):
    """torch.nn.Conv3d equivalent (zero padding on both sides, bias)."""
    kernel = kernel if isinstance(kernel, tuple) else (kernel,) * 3
    stride = stride if isinstance(stride, tuple) else (stride,) * 3
    pad = padding if isinstance(padding, tuple) else (padding,) * 3
    padding = (pad[0], pad[0], pad[1], pad[1], pad[2], pad[2])
    return nn.Conv3d(cin, cout, kernel, stride, pad_mode="pad", padding=padding, has_bias=True)


def dense(cin, cout, bias=True):
    """torch.nn.Linear equivalent."""
    return nn.Dense(cin, cout, has_bias=bias)


def lrelu():
    return nn.LeakyReLU(alpha=0.01)


def conv_stack(specs, conv=conv3d, act_last=True):
    """``conv(*spec)`` for each ``(cin, cout, kernel, stride, padding)``, each followed by LeakyReLU (the last
    one only when ``act_last``); the convs sit at even indices of the SequentialCell, as upstream."""
    layers = []
    for i, spec in enumerate(specs):
        layers.append(conv(*spec))
        if act_last or i < len(specs) - 1:
            layers.append(lrelu())
    return nn.SequentialCell(layers)


def fem_specs(in_ch):
    """Feature extraction: full resolution, 1 channel -> 4*in_ch channels at half resolution."""
    return [(1, in_ch, (3, 7, 7), 1, (1, 3, 3)), (in_ch, in_ch * 2, 3, 1, 1), (in_ch * 2, in_ch * 4, 3, (1, 2, 2), 1)]


def vrm_specs(in_ch, color_ch):
    """Video reconstruction at full resolution: 2*in_ch channels -> color_ch."""
    return [(in_ch * 2, in_ch * 2, 3, 1, 1), (in_ch * 2, in_ch, 1, 1, 0), (in_ch, color_ch, 3, 1, 1)]


def init_frames(y, phi, phi_s):
    """x_k = y/Phi_s * (1 + Phi_k), returned as (B, 1, cr, H, W).

    ``y`` and ``phi_s`` may be (B, H, W) or (B, 1, H, W). The upstream Bayer path splits RGGB planes, applies
    the same pixel-wise formula and re-interleaves them, which gives the same tensor, so both share this code.
    """
    if y.ndim == 3:
        y = y.expand_dims(1)
    if phi_s.ndim == 3:
        phi_s = phi_s.expand_dims(1)
    meas_re = y / phi_s
    return (meas_re + phi * meas_re).expand_dims(1)


def tokens_over_time(x):
    """(B, C, T, H, W) -> (B*H*W, T, C)."""
    b, c, t, h, w = x.shape
    return x.transpose(0, 3, 4, 2, 1).reshape(b * h * w, t, c)


def tokens_to_volume(x, b, h, w):
    """(B*H*W, T, C) -> (B, C, T, H, W)."""
    _, t, c = x.shape
    return x.reshape(b, h, w, t, c).transpose(0, 4, 3, 1, 2)


def pixel_shuffle_frames(x, factor=2):
    """PixelShuffle applied to every frame of (B, C, T, H, W)."""
    b, c, t, h, w = x.shape
    y = ops.pixel_shuffle(x.transpose(0, 2, 1, 3, 4).reshape(b * t, c, h, w), factor)
    return y.reshape(b, t, c // factor**2, h * factor, w * factor).transpose(0, 2, 1, 3, 4)


def pixel_unshuffle_frames(x, factor=2):
    """PixelUnshuffle applied to every frame of (B, C, T, H, W)."""
    b, c, t, h, w = x.shape
    y = ops.pixel_unshuffle(x.transpose(0, 2, 1, 3, 4).reshape(b * t, c, h, w), factor)
    return y.reshape(b, t, c * factor**2, h // factor, w // factor).transpose(0, 2, 1, 3, 4)


class TimesAttention3D(nn.Cell):
    """Multi-head self-attention over the T frames of each pixel; q/k/v are dim/2 wide.

    ``linear(cin, cout, bias=True)`` builds ``qkv`` and ``proj``; :meth:`heads` and :meth:`attention_map` are
    the identity here and quantise in Q-SCI.
    """

    def __init__(self, dim, num_heads=NUM_HEADS, linear=dense):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5  # upstream uses the full dim here, not the head size
        self.qkv = linear(dim, (dim // 2) * 3, bias=False)
        self.proj = linear(dim // 2, dim)

    def heads(self, q, k, v):
        return q, k, v

    def attention_map(self, attn):
        return attn

    def construct(self, x):
        n_tok, t, c = x.shape
        c = c // 2
        qkv = self.qkv(x).reshape(n_tok, t, 3, self.num_heads, c // self.num_heads).transpose(2, 0, 3, 1, 4)
        q, k, v = self.heads(qkv[0], qkv[1], qkv[2])
        attn = self.attention_map(ops.softmax(ops.matmul(q * self.scale, k.swapaxes(-2, -1)), -1))
        out = ops.matmul(attn, v).swapaxes(1, 2).reshape(n_tok, t, c)
        return self.proj(out)


class CFormerBlock(nn.Cell):
    """Spatial conv branch + temporal attention branch + input, then a residual conv FFN.

    ``conv`` (signature of :func:`conv3d`) and ``attention(dim)`` build the layers (quantised ones in Q-SCI).
    """

    def __init__(self, dim, conv=conv3d, attention=TimesAttention3D):
        super().__init__()
        self.scb = conv_stack([(dim, dim, (1, 3, 3), 1, (0, 1, 1))] * 2, conv, act_last=False)
        self.tsab = attention(dim)
        self.ffn = conv_stack([(dim, dim, 3, 1, 1), (dim, dim, 1, 1, 0)], conv, act_last=False)

    def construct(self, x):
        b, _, _, h, w = x.shape
        tsab_out = tokens_to_volume(self.tsab(tokens_over_time(x)), b, h, w)
        ffn_in = self.scb(x) + tsab_out + x
        return self.ffn(ffn_in) + ffn_in


class ResDNetBlock(nn.Cell):
    """Channel groups processed in turn; each group sees all previous group outputs (dense connection)."""

    def __init__(self, dim, group_num, block=CFormerBlock, conv=conv3d):
        super().__init__()
        self.group_num = group_num
        group_dim = dim // group_num
        self.cformer_list = nn.CellList([block(group_dim) for _ in range(group_num)])
        self.dense_conv = nn.CellList(
            [nn.SequentialCell(conv(group_dim * (i + 1), group_dim, 1), lrelu()) for i in range(1, group_num)]
        )
        self.last_conv = conv(dim, dim, 1)

    def construct(self, x):
        inputs = ops.chunk(x, self.group_num, 1)
        outs = [self.cformer_list[0](inputs[0])]
        for i in range(1, self.group_num):
            cf_in = self.dense_conv[i - 1](ops.cat(outs + [inputs[i]], 1))
            outs.append(self.cformer_list[i](cf_in))
        return x + self.last_conv(ops.cat(outs, 1))


class EfficientSCIBase(nn.Cell):
    """Forward pass shared by EfficientSCI and Q-SCI; subclasses build ``resdnet_list``, ``up_conv`` and either
    ``fem``/``vrm`` or their own :meth:`feature_extraction`/:meth:`reconstruction`, and set ``color_ch``."""

    def feature_extraction(self, x):
        return self.fem(x)

    def reconstruction(self, x):
        return self.vrm(x)

    def construct(self, meas, mask, mask_s):
        out = self.feature_extraction(init_frames(meas, mask, mask_s))
        for block in self.resdnet_list:
            out = block(out)
        out = self.reconstruction(pixel_shuffle_frames(self.up_conv(out)))
        if self.color_ch != 3:
            out = out.squeeze(1)
        return [out]


class EfficientSCI(EfficientSCIBase):
    """EfficientSCI(in_ch, units, group_num, color_ch) with upstream argument names and defaults (B size)."""

    def __init__(self, in_ch=64, units=8, group_num=4, color_ch=1):
        super().__init__()
        check_widths("EfficientSCI", in_ch, group_num, color_ch)
        self.color_ch = color_ch
        self.fem = conv_stack(fem_specs(in_ch))
        self.resdnet_list = nn.CellList([ResDNetBlock(in_ch * 4, group_num) for _ in range(units)])
        self.up_conv = conv3d(in_ch * 4, in_ch * 8, 1)
        self.vrm = conv_stack(vrm_specs(in_ch, color_ch), act_last=False)


def convert_state_dict(state, **ctor_kwargs):
    """Upstream EfficientSCI keys already equal the Cell's parameter names (Conv3d/Linear weight+bias)."""
    return dict(state)

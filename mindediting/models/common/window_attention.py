"""3-D (temporal x spatial) window attention as used by VRT's TMSA blocks.

Layouts follow JingyunLiang/VRT ``models/network_vrt.py``: features are (B, D, H, W, C) inside a block,
windows are (B * num_windows, Wd * Wh * Ww, C) in batch-major order, attention masks hold 0 / -100.
The fixed buffers of the upstream module (``relative_position_index``, ``position_bias``) are recomputed
here as constants, so they are not parameters of the Cells.
"""
import math
from functools import lru_cache

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore.common.initializer import TruncatedNormal, initializer


def get_window_size(x_size, window_size, shift_size=None):
    """Clip the window (and zero the shift) along every axis the input does not exceed."""
    use_window, use_shift = list(window_size), None if shift_size is None else list(shift_size)
    for i, size in enumerate(x_size):
        if size <= window_size[i]:
            use_window[i] = size
            if use_shift is not None:
                use_shift[i] = 0
    return tuple(use_window) if use_shift is None else (tuple(use_window), tuple(use_shift))


@lru_cache(maxsize=64)
def compute_mask_np(d, h, w, window_size, shift_size):
    """Shifted-window mask (num_windows, N, N) as float32 numpy, 0 inside a region and -100 across regions."""
    img = np.zeros((1, d, h, w, 1), np.float32)
    cnt = 0
    ws, ss = window_size, shift_size
    for sd in (slice(-ws[0]), slice(-ws[0], -ss[0]), slice(-ss[0], None)):
        for sh in (slice(-ws[1]), slice(-ws[1], -ss[1]), slice(-ss[1], None)):
            for sw in (slice(-ws[2]), slice(-ws[2], -ss[2]), slice(-ss[2], None)):
                img[:, sd, sh, sw, :] = cnt
                cnt += 1
    wd, wh, ww = ws
    win = img.reshape(1, d // wd, wd, h // wh, wh, w // ww, ww, 1).transpose(0, 1, 3, 5, 2, 4, 6, 7)
    win = win.reshape(-1, wd * wh * ww)
    diff = win[:, None, :] - win[:, :, None]
    return np.where(diff != 0, np.float32(-100.0), np.float32(0.0)).astype(np.float32)


def compute_mask(d, h, w, window_size, shift_size):
    return Tensor(compute_mask_np(d, h, w, tuple(window_size), tuple(shift_size)))


def relative_position_index(window_size):
    """(N, N) int index into the (2Wd-1)(2Wh-1)(2Ww-1) relative position bias table."""
    wd, wh, ww = window_size
    coords = np.stack(np.meshgrid(np.arange(wd), np.arange(wh), np.arange(ww), indexing="ij")).reshape(3, -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0).astype(np.int64)
    rel[:, :, 0] += wd - 1
    rel[:, :, 1] += wh - 1
    rel[:, :, 2] += ww - 1
    rel[:, :, 0] *= (2 * wh - 1) * (2 * ww - 1)
    rel[:, :, 1] *= 2 * ww - 1
    return rel.sum(-1)


def sine_position_encoding(hw, num_pos_feats=64, temperature=10000, normalize=False, scale=None):
    """Normalised 2-D sine encoding of an (H, W) window, shape (1, H*W, 2*num_pos_feats), float32."""
    if scale is not None and not normalize:
        raise ValueError("normalize should be True if scale is passed")
    scale = 2 * math.pi if scale is None else scale
    ones = np.ones((1, hw[0], hw[1]), np.float32)
    y_embed, x_embed = np.cumsum(ones, 1, dtype=np.float32), np.cumsum(ones, 2, dtype=np.float32)
    if normalize:
        y_embed = y_embed / (y_embed[:, -1:, :] + np.float32(1e-6)) * np.float32(scale)
        x_embed = x_embed / (x_embed[:, :, -1:] + np.float32(1e-6)) * np.float32(scale)
    dim_t = np.arange(num_pos_feats, dtype=np.float32)
    dim_t = (np.float32(temperature) ** (2 * (dim_t // 2) / np.float32(num_pos_feats))).astype(np.float32)
    pos_x, pos_y = x_embed[..., None] / dim_t, y_embed[..., None] / dim_t

    def interleave(p):
        return np.stack((np.sin(p[..., 0::2]), np.cos(p[..., 1::2])), axis=4).reshape(*p.shape[:3], -1)

    pos = np.concatenate((interleave(pos_y), interleave(pos_x)), axis=3).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(pos.reshape(1, pos.shape[1], -1).transpose(0, 2, 1)).astype(np.float32)


# Row permutations as one gather instead of roll + 8-D transpose copies: on MindSpore CPU a strided copy
# (transpose, or the reshape of a permuted view) moves ~30-80 M floats/s, while ops.gather of whole rows
# (the last axis stays contiguous) is ~10x faster. Pure data movement, so the numbers are unchanged.
@lru_cache(maxsize=256)
def _row_perm(shape, perm):
    """Tensor index: row i of ``x.transpose(perm + (last,))`` is row index[i] of ``x`` (leading axes ``shape``)."""
    order = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape).transpose(perm).reshape(-1)
    return Tensor(order.astype(np.int32))


def permute_rows(x, perm):
    """``x.transpose(perm + (x.ndim - 1,))`` (the last axis stays in place), as one row gather."""
    lead = tuple(x.shape[:-1])
    out = ops.gather(x.reshape(-1, x.shape[-1]), _row_perm(lead, tuple(perm)), 0)
    return out.reshape(tuple(lead[i] for i in perm) + (x.shape[-1],))


@lru_cache(maxsize=64)
def _window_perm(d, h, w, window_size, shift_size):
    """(index, inverse) Tensors: rolled-by-minus-shift then window-partitioned token order of a (d, h, w) grid."""
    wd, wh, ww = window_size
    grid = np.arange(d * h * w, dtype=np.int64).reshape(d, h, w)
    grid = np.roll(grid, tuple(-s for s in shift_size), axis=(0, 1, 2))
    order = grid.reshape(d // wd, wd, h // wh, wh, w // ww, ww).transpose(0, 2, 4, 1, 3, 5).reshape(-1)
    return Tensor(order.astype(np.int32)), Tensor(np.argsort(order).astype(np.int32))


def shifted_window_partition(x, window_size, shift_size):
    """Roll by ``-shift`` over D, H, W, then cut into windows, as one gather: (B, D, H, W, C) -> (B * nW, N, C)
    with the windows in batch-major order and the tokens of each in (Wd, Wh, Ww) order (upstream
    ``torch.roll`` + ``window_partition``)."""
    b, d, h, w, c = x.shape
    index, _ = _window_perm(d, h, w, tuple(window_size), tuple(shift_size))
    n = window_size[0] * window_size[1] * window_size[2]
    return ops.gather(x.reshape(b, d * h * w, c), index, 1).reshape(-1, n, c)


def shifted_window_reverse(windows, window_size, shift_size, b, d, h, w):
    """Inverse of :func:`shifted_window_partition`: (B * nW, N, C) -> (B, D, H, W, C)."""
    _, inverse = _window_perm(d, h, w, tuple(window_size), tuple(shift_size))
    c = windows.shape[-1]
    return ops.gather(windows.reshape(b, d * h * w, c), inverse, 1).reshape(b, d, h, w, c)


# Inference memory bounds (outputs do not depend on them): attention runs on groups of windows holding at most
# ATTN_CHUNK_ELEMS attention-matrix entries (64 MB of float32), the feed-forward layers on groups of at most
# TOKEN_CHUNK rows. Without them a VRT stage on a 40x128x128 tile would hold 6 GB attention matrices at once.
ATTN_CHUNK_ELEMS = 1 << 24
TOKEN_CHUNK = 1 << 16


def apply_by_tokens(fn, x, chunk=None):
    """``fn`` on the last axis of ``x`` in groups of at most ``chunk`` rows (a per-token map: same result)."""
    chunk = TOKEN_CHUNK if chunk is None else chunk
    lead = x.shape[:-1]
    rows = 1
    for size in lead:
        rows *= size
    if rows <= chunk:
        return fn(x)
    flat = x.reshape(rows, x.shape[-1])
    out = ops.cat([fn(flat[start:start + chunk]) for start in range(0, rows, chunk)], 0)
    return out.reshape(lead + (out.shape[-1],))


class MlpGEGLU(nn.Cell):
    """fc2(GELU(fc11(x)) * fc12(x)) (GEGLU feed-forward)."""

    def __init__(self, in_features, hidden_features=None, out_features=None):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc11 = nn.Dense(in_features, hidden_features)
        self.fc12 = nn.Dense(in_features, hidden_features)
        self.act = nn.GELU(approximate=False)
        self.fc2 = nn.Dense(hidden_features, out_features)

    def construct(self, x):
        return self.fc2(self.act(self.fc11(x)) * self.fc12(x))


class WindowAttention(nn.Cell):
    """Windowed multi-head self attention with relative position bias, plus VRT's mutual attention.

    Input (B * num_windows, N, C) with N = Wd*Wh*Ww; mask (num_windows, N, N) or None.
    With ``mut_attn`` the window holds two frames (Wd = 2): frame 1 attends with frame-2 queries to
    frame-1 keys/values and vice versa; that result is concatenated before the self-attention result.
    """

    def __init__(self, dim, window_size, num_heads, qkv_bias=False, qk_scale=None, mut_attn=True):
        super().__init__()
        self.dim, self.num_heads = dim, num_heads
        self.window_size = tuple(window_size)
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.mut_attn = mut_attn
        wd, wh, ww = self.window_size
        self.relative_position_bias_table = ms.Parameter(
            initializer(TruncatedNormal(0.02), ((2 * wd - 1) * (2 * wh - 1) * (2 * ww - 1), num_heads), ms.float32),
            name="relative_position_bias_table",
        )
        self._rel_index = relative_position_index(self.window_size)
        self.qkv_self = nn.Dense(dim, dim * 3, has_bias=qkv_bias)
        self._qk = ops.BatchMatMul(transpose_b=True)
        if mut_attn:
            self.position_bias = Tensor(sine_position_encoding(self.window_size[1:], dim // 2, normalize=True))
            self.qkv_mut = nn.Dense(dim, dim * 3, has_bias=qkv_bias)
            self.proj = nn.Dense(2 * dim, dim)
        else:
            self.proj = nn.Dense(dim, dim)

    def _qkv(self, layer, x):
        b, n, c = x.shape
        qkv = permute_rows(layer(x).reshape(b, n, 3, self.num_heads, c // self.num_heads), (2, 0, 3, 1))
        return qkv[0], qkv[1], qkv[2]

    def construct(self, x, mask=None):
        b, n, c = x.shape
        q, k, v = self._qkv(self.qkv_self, x)
        out = self.attention(q, k, v, mask, (b, n, c), True)
        if self.mut_attn:
            q, k, v = self._qkv(self.qkv_mut, x + ops.tile(self.position_bias, (1, 2, 1)))
            half = n // 2
            q1, q2 = q[:, :, :half], q[:, :, half:]
            k1, k2 = k[:, :, :half], k[:, :, half:]
            v1, v2 = v[:, :, :half], v[:, :, half:]
            x1 = self.attention(q2, k1, v1, mask, (b, half, c), False)
            x2 = self.attention(q1, k2, v2, mask, (b, half, c), False)
            out = ops.cat([ops.cat([x1, x2], 1), out], 2)
        return self.proj(out)

    def attention(self, q, k, v, mask, x_shape, relative_position_encoding=True):
        b, n, c = x_shape
        heads, hd = q.shape[1], q.shape[3]
        # 3-D BatchMatMul with transpose_b: ~7x faster on CPU than a 4-D matmul of a swapped key tensor
        attn = self._qk(q.reshape(-1, n, hd) * self.scale, k.reshape(-1, n, hd)).reshape(b, heads, n, n)
        # broadcasting adds are ~10x slower than tile + same-shape add on MindSpore CPU (same numbers)
        if relative_position_encoding:
            index = Tensor(self._rel_index[:n, :n].reshape(-1).astype(np.int32))
            bias = ops.gather(self.relative_position_bias_table, index, 0).reshape(n, n, -1)
            attn = attn + ops.tile(bias.transpose(2, 0, 1).expand_dims(0), (b, 1, 1, 1))
        if mask is not None:
            nw = mask.shape[0]
            mask = ops.tile(mask[:, :n, :n].expand_dims(1).expand_dims(0), (b // nw, 1, self.num_heads, 1, 1))
            attn = (attn.reshape(b // nw, nw, self.num_heads, n, n) + mask).reshape(-1, self.num_heads, n, n)
        attn = ops.softmax(attn, -1).reshape(-1, n, n)
        return permute_rows(ops.bmm(attn, v.reshape(-1, n, hd)).reshape(b, heads, n, hd), (0, 2, 1)).reshape(b, n, c)


# Stochastic depth does not use ``ops.rand``: a compiled graph fixes that op's seed when it compiles (``ms.set_seed``
# between steps does not reach it) and a recomputed block would draw again. Its uniforms are a hash of (this seed,
# the DropPath's stream number, the sample index) instead: the trainer sets the seed every iteration
# (:func:`seed_drop_path`), so PyNative and graph mode draw the same masks, a resumed run repeats the unbroken run's
# masks, and recomputation reproduces the forward's. A Parameter outside the network: not in its checkpoints.
DROP_PATH_SEED = ms.Parameter(Tensor(0, ms.int64), name="drop_path_seed", requires_grad=False)
_MASK32 = 0xFFFFFFFF


def seed_drop_path(seed):
    """Set the stochastic-depth seed (a non-negative int below 2^63; None counts as 0)."""
    ops.assign(DROP_PATH_SEED, Tensor(int(seed or 0), ms.int64))


def _hash32(x):
    """Integer hash of int64 values in [0, 2^32) (``lowbias32``; multipliers below 2^31, so no int64 overflow)."""
    x = ops.bitwise_xor(x, ops.bitwise_right_shift(x, 16))
    x = ops.bitwise_and(x * 0x21F0AAAD, _MASK32)
    x = ops.bitwise_xor(x, ops.bitwise_right_shift(x, 15))
    x = ops.bitwise_and(x * 0x735A2D97, _MASK32)
    return ops.bitwise_xor(x, ops.bitwise_right_shift(x, 15))


def hashed_uniform(n, stream):
    """``n`` float32 uniforms in [0, 1) (multiples of 2^-24) of (:data:`DROP_PATH_SEED`, ``stream``, index)."""
    key = _hash32(ops.bitwise_and(DROP_PATH_SEED, _MASK32))
    key = _hash32(ops.bitwise_xor(key, ops.bitwise_and(ops.bitwise_right_shift(DROP_PATH_SEED, 32), _MASK32)))
    key = _hash32(ops.bitwise_xor(key, stream & _MASK32))
    key = _hash32(ops.bitwise_and(key + _hash32(ops.arange(n, dtype=ms.int64)), _MASK32))
    return ops.bitwise_right_shift(key, 8).astype(ms.float32) * (2.0 ** -24)


class DropPath(nn.Cell):
    """Stochastic depth per sample (x / keep * floor(keep + U[0, 1)), as timm); identity in inference mode.

    ``stream`` numbers the instance (VRT numbers its DropPaths in order); ``construct(x, part)`` draws the stream
    ``2 * stream + part``, so the two uses in a TMSA block (attention, feed-forward) draw independently.
    """

    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = float(drop_prob)
        self.stream = 0

    def construct(self, x, part=0):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        u = hashed_uniform(x.shape[0], 2 * self.stream + part).reshape(shape).astype(x.dtype)
        return x / keep * ops.floor(keep + u)


class TMSA(nn.Cell):
    """Temporal mutual self attention block: x + attn(norm1(x)), then x + GEGLU(norm2(x)); x is (B, D, H, W, C)."""

    def __init__(self, dim, input_resolution=None, num_heads=1, window_size=(6, 8, 8), shift_size=(0, 0, 0),
                 mut_attn=True, mlp_ratio=2.0, qkv_bias=True, qk_scale=None, drop_path=0.0,
                 use_checkpoint_attn=False, use_checkpoint_ffn=False):
        super().__init__()
        self.window_size, self.shift_size = tuple(window_size), tuple(shift_size)
        for s, w in zip(self.shift_size, self.window_size):
            if not 0 <= s < w:
                raise ValueError(f"TMSA: shift_size {self.shift_size} must lie in [0, window_size {self.window_size})")
        self.norm1 = nn.LayerNorm((dim,), epsilon=1e-5)
        self.attn = WindowAttention(dim, self.window_size, num_heads, qkv_bias, qk_scale, mut_attn)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm((dim,), epsilon=1e-5)
        self.mlp = MlpGEGLU(dim, int(dim * mlp_ratio))
        self.use_checkpoint_attn, self.use_checkpoint_ffn = use_checkpoint_attn, use_checkpoint_ffn

    def forward_part1(self, x, mask_matrix):
        b, d, h, w, c = x.shape
        window_size, shift_size = get_window_size((d, h, w), self.window_size, self.shift_size)
        x = self.norm1(x)
        pad_d = (window_size[0] - d % window_size[0]) % window_size[0]
        pad_b = (window_size[1] - h % window_size[1]) % window_size[1]
        pad_r = (window_size[2] - w % window_size[2]) % window_size[2]
        if pad_d or pad_b or pad_r:
            x = ops.pad(x, (0, 0, 0, pad_r, 0, pad_b, 0, pad_d))
        _, dp, hp, wp, _ = x.shape
        shifted = shift_size[0] > 0 or shift_size[1] > 0 or shift_size[2] > 0
        shift = shift_size if shifted else (0, 0, 0)
        windows = self._attend(shifted_window_partition(x, window_size, shift), mask_matrix if shifted else None)
        x = shifted_window_reverse(windows, window_size, shift, b, dp, hp, wp)
        if pad_d or pad_b or pad_r:
            x = x[:, :d, :h, :w, :]
        return self.drop_path(x)

    def _attend(self, windows, mask):
        """``self.attn`` over groups of windows (at most ATTN_CHUNK_ELEMS attention entries per group).

        Windows are independent, so grouping does not change the result; a group never spans two batch
        items, so it uses the matching slice of the (num_windows, N, N) shift mask.
        """
        total, n = windows.shape[0], windows.shape[1]
        per_window = self.attn.num_heads * n * n
        step = max(1, ATTN_CHUNK_ELEMS // per_window)
        if step >= total:
            return self.attn(windows, mask)
        num = total if mask is None else mask.shape[0]
        outs = []
        for base in range(0, total, num):
            for start in range(0, num, step):
                end = min(start + step, num)
                outs.append(self.attn(windows[base + start:base + end], None if mask is None else mask[start:end]))
        return ops.cat(outs, 0)

    def forward_part2(self, x):
        return self.drop_path(apply_by_tokens(self._ffn, x), 1)

    def _ffn(self, x):
        return self.mlp(self.norm2(x))

    def construct(self, x, mask_matrix):
        x = x + self.forward_part1(x, mask_matrix)
        return x + self.forward_part2(x)


class TMSAG(nn.Cell):
    """A group of TMSA blocks with alternating (0, half-window) shifts; x is (B, C, D, H, W)."""

    def __init__(self, dim, input_resolution=None, depth=2, num_heads=1, window_size=(6, 8, 8), shift_size=None,
                 mut_attn=True, mlp_ratio=2.0, qkv_bias=False, qk_scale=None, drop_path=0.0,
                 use_checkpoint_attn=False, use_checkpoint_ffn=False):
        super().__init__()
        self.window_size = tuple(window_size)
        self.shift_size = tuple(i // 2 for i in window_size) if shift_size is None else tuple(shift_size)
        self.blocks = nn.CellList([
            TMSA(dim, input_resolution, num_heads, self.window_size, (0, 0, 0) if i % 2 == 0 else self.shift_size,
                 mut_attn, mlp_ratio, qkv_bias, qk_scale,
                 drop_path[i] if isinstance(drop_path, (list, tuple)) else drop_path,
                 use_checkpoint_attn, use_checkpoint_ffn)
            for i in range(depth)
        ])
        if use_checkpoint_attn or use_checkpoint_ffn:
            for blk in self.blocks:
                blk.recompute()

    def construct(self, x):
        b, c, d, h, w = x.shape
        window_size, shift_size = get_window_size((d, h, w), self.window_size, self.shift_size)
        x = x.transpose(0, 2, 3, 4, 1)
        dp = int(np.ceil(d / window_size[0])) * window_size[0]
        hp = int(np.ceil(h / window_size[1])) * window_size[1]
        wp = int(np.ceil(w / window_size[2])) * window_size[2]
        mask = compute_mask(dp, hp, wp, window_size, shift_size)
        for blk in self.blocks:
            x = blk(x, mask)
        return x.transpose(0, 4, 1, 2, 3)

"""VRT window attention (mutual + self), its fixed buffers and the shift mask, against upstream goldens."""
import os

import mindspore as ms
import numpy as np
import pytest

from mindspore import ops

from mindediting.convert.converter import load_and_convert
from mindediting.convert.weights import load_into
from mindediting.models.common.window_attention import (
    WindowAttention, compute_mask_np, get_window_size, permute_rows, relative_position_index,
    shifted_window_partition, shifted_window_reverse)
from mindediting.models.vrt import convert_state_dict
from tests.golden import golden_dir, load, load_config


# Upstream's roll + partition, written step by step: the reference for the one-gather version the Cells use.
def window_partition(x, window_size):
    """(B, D, H, W, C) -> (B * num_windows, Wd * Wh * Ww, C); D, H, W must be multiples of the window."""
    b, d, h, w, c = x.shape
    wd, wh, ww = window_size
    x = x.reshape(b, d // wd, wd, h // wh, wh, w // ww, ww, c)
    return x.transpose(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, wd * wh * ww, c)


def window_reverse(windows, window_size, b, d, h, w):
    """Inverse of :func:`window_partition`: (B * num_windows, Wd, Wh, Ww, C) -> (B, D, H, W, C)."""
    wd, wh, ww = window_size
    x = windows.reshape(b, d // wd, h // wh, w // ww, wd, wh, ww, -1)
    return x.transpose(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


def roll3(x, shifts):
    """torch.roll over axes 1, 2, 3 (ops.roll has no CPU kernel)."""
    for axis, shift in zip((1, 2, 3), shifts):
        n = x.shape[axis]
        shift %= n
        if shift:
            x = ops.cat([x.narrow(axis, n - shift, shift), x.narrow(axis, 0, n - shift)], axis)
    return x


def _attention(folder):
    cfg = load_config(folder)
    c = cfg["constructor"]
    raw = load_and_convert(os.path.join(folder, "weights.pth"))
    net = WindowAttention(c["dim"], c["window_size"], c["num_heads"], c["qkv_bias"], c["qk_scale"], c["mut_attn"])
    net.set_train(False)
    load_into(net, convert_state_dict(raw), "vrt_attention")
    return cfg, raw, net


def test_window_attention_matches_golden_with_and_without_mask():
    folder = golden_dir("vrt_attention", need=("weights.pth",))
    cfg, _, net = _attention(folder)
    atol = cfg["tolerance"]["atol"]
    x = ms.Tensor(load(folder, "x.npy"))
    np.testing.assert_allclose(net(x).asnumpy(), load(folder, "output_nomask.npy"), rtol=0, atol=atol)
    out = net(x, ms.Tensor(load(folder, "mask.npy"))).asnumpy()
    np.testing.assert_allclose(out, load(folder, "output_mask.npy"), rtol=0, atol=atol)


def test_recomputed_buffers_equal_upstream_buffers():
    folder = golden_dir("vrt_attention", need=("weights.pth",))
    cfg, raw, net = _attention(folder)
    index = relative_position_index(cfg["constructor"]["window_size"])
    np.testing.assert_array_equal(index, raw["relative_position_index"])
    np.testing.assert_allclose(net.position_bias.asnumpy(), raw["position_bias"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(compute_mask_np(4, 8, 8, (2, 4, 4), (1, 2, 2)), load(folder, "mask.npy"))


def test_window_partition_roundtrip_and_roll():
    x = np.arange(2 * 4 * 6 * 8 * 3, dtype=np.float32).reshape(2, 4, 6, 8, 3)
    win = window_partition(ms.Tensor(x), (2, 3, 4))
    assert win.shape == (2 * 2 * 2 * 2, 24, 3)
    np.testing.assert_array_equal(win.asnumpy()[0, :4, 0], x[0, 0, 0, :4, 0])
    back = window_reverse(win.reshape(-1, 2, 3, 4, 3), (2, 3, 4), 2, 4, 6, 8)
    np.testing.assert_array_equal(back.asnumpy(), x)
    np.testing.assert_array_equal(roll3(ms.Tensor(x), (-1, 2, -3)).asnumpy(), np.roll(x, (-1, 2, -3), (1, 2, 3)))


def test_get_window_size_clips_and_unshifts():
    assert get_window_size((6, 16, 16), (8, 8, 8), (4, 4, 4)) == ((6, 8, 8), (0, 4, 4))
    assert get_window_size((2, 4, 4), (6, 8, 8)) == (2, 4, 4)


def test_mask_with_zero_shift_axis_matches_hand_count():
    """A zero shift on an axis (window clipped to the input) makes that axis' last slice cover everything."""
    mask = compute_mask_np(2, 4, 4, (2, 2, 2), (0, 1, 1))
    assert mask.shape == (4, 8, 8)
    assert set(np.unique(mask)) <= {0.0, -100.0}
    assert not mask[0].any()
    assert (mask[-1] == -100).sum() > 0


def test_bad_shift_raises():
    from mindediting.models.common.window_attention import TMSA
    with pytest.raises(ValueError, match="shift_size"):
        TMSA(8, None, 2, (2, 4, 4), (2, 0, 0))


@pytest.mark.parametrize("shift", [(0, 0, 0), (1, 2, 2), (0, 3, 1)])
def test_gather_window_partition_equals_roll_transpose_and_inverts(shift):
    """The one-gather partition (used by TMSA) equals roll3 + window_partition exactly, and its reverse undoes it."""
    x = np.random.default_rng(7).standard_normal((2, 4, 8, 12, 5)).astype(np.float32)
    window = (2, 4, 4)
    windows = shifted_window_partition(ms.Tensor(x), window, shift)
    expected = window_partition(roll3(ms.Tensor(x), [-s for s in shift]), window)
    np.testing.assert_array_equal(windows.asnumpy(), expected.asnumpy())
    back = shifted_window_reverse(windows, window, shift, 2, 4, 8, 12)
    np.testing.assert_array_equal(back.asnumpy(), x)
    ref = window_reverse(expected.reshape((-1,) + window + (5,)), window, 2, 4, 8, 12)
    np.testing.assert_array_equal(roll3(ref, shift).asnumpy(), x)


def test_permute_rows_equals_transpose():
    x = np.random.default_rng(8).standard_normal((3, 5, 2, 4, 6)).astype(np.float32)
    out = permute_rows(ms.Tensor(x), (2, 0, 3, 1))
    np.testing.assert_array_equal(out.asnumpy(), x.transpose(2, 0, 3, 1, 4))

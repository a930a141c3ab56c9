"""EfficientSCI: parity with upstream through the converter, released sizes, layouts and errors."""
import mindspore as ms
import numpy as np
import pytest

from mindediting.convert.converter import check_params, load_and_convert, save_ckpt
from mindediting.convert.pth_reader import CheckpointError
from mindediting.convert.weights import load_weights
from mindediting.models import build_model
from mindediting.models.efficientsci import (
    VARIANTS, convert_state_dict, init_frames, pixel_shuffle_frames, pixel_unshuffle_frames)
from tests.golden import golden_dir, load, load_config


def _golden_inputs(folder):
    return [ms.Tensor(load(folder, f"{n}.npy")) for n in ("meas", "mask", "mask_s")]


def _param_count(net):
    return sum(int(np.prod(p.shape)) for p in net.get_parameters())


def test_efficientsci_matches_upstream_through_converter(tmp_path):
    folder = golden_dir("efficientsci_fp", need=("weights.pth",))
    cfg = load_config(folder)
    ctor = cfg["constructor"]
    params = load_and_convert(f"{folder}/weights.pth", convert_state_dict, **ctor)
    ckpt = save_ckpt(params, tmp_path / "w.ckpt")
    net = build_model("efficientsci", **ctor)
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert not not_loaded and not unused
    out = net(*_golden_inputs(folder))
    assert isinstance(out, list) and len(out) == 1
    expected = load(folder, "output.npy")
    assert out[0].shape == expected.shape == (1, 8, 32, 32)
    np.testing.assert_allclose(out[0].asnumpy(), expected, rtol=0, atol=cfg["tolerance"]["atol"])
    # the converter also works without constructor arguments
    assert sorted(load_and_convert(f"{folder}/weights.pth", convert_state_dict)) == sorted(params)


def test_released_sizes_build_with_published_parameter_counts():
    # counts printed in upstream docs/psnr_time.png (millions, 2 decimals)
    published = {"T": 0.95, "S": 3.78, "B": 8.82, "L": 12.39}
    for name, ctor in VARIANTS.items():
        net = build_model("efficientsci", **ctor)
        assert round(_param_count(net) / 1e6, 2) == published[name], name
        assert len(net.resdnet_list) == ctor["units"]
        assert len(net.resdnet_list[0].cformer_list) == ctor["group_num"]


def test_tiny_forward_shapes_grey_and_bayer():
    rng = np.random.default_rng(0)
    mask = (rng.random((2, 8, 16, 12)) > 0.5).astype(np.float32)
    mask_s = mask.sum(1, keepdims=True)
    mask_s[mask_s == 0] = 1
    meas = (mask * rng.random((2, 8, 16, 12))).sum(1, keepdims=True).astype(np.float32)
    grey = build_model("efficientsci", in_ch=4, units=1, group_num=2)
    out = grey(ms.Tensor(meas), ms.Tensor(mask), ms.Tensor(mask_s))
    assert out[0].shape == (2, 8, 16, 12) and out[0].dtype == ms.float32
    bayer = build_model("efficientsci", in_ch=4, units=1, group_num=2, color_ch=3)
    assert bayer(ms.Tensor(meas), ms.Tensor(mask), ms.Tensor(mask_s))[0].shape == (2, 3, 8, 16, 12)


def test_init_frames_and_per_frame_pixel_shuffle_by_hand():
    y = np.array([[[[2.0, 3.0], [0.0, 4.0]]]], np.float32)  # (1,1,2,2)
    phi = np.array([[[[1, 0], [0, 1]], [[1, 1], [0, 1]]]], np.float32)  # (1,2,2,2)
    phi_s = np.array([[[[2, 1], [1, 2]]]], np.float32)
    x = init_frames(ms.Tensor(y), ms.Tensor(phi), ms.Tensor(phi_s)).asnumpy()
    expected = (y / phi_s) * (1 + phi)
    np.testing.assert_allclose(x, expected[:, None], rtol=0, atol=0)
    # Q-SCI layout (no channel axis) gives the same tensor
    x3 = init_frames(ms.Tensor(y[:, 0]), ms.Tensor(phi), ms.Tensor(phi_s[:, 0])).asnumpy()
    np.testing.assert_array_equal(x3, x)
    # per-frame PixelShuffle: channel c*4 + dy*2 + dx goes to pixel (2h+dy, 2w+dx) of channel c
    v = np.arange(2 * 8 * 3 * 2 * 2, dtype=np.float32).reshape(2, 8, 3, 2, 2)
    up = pixel_shuffle_frames(ms.Tensor(v)).asnumpy()
    assert up.shape == (2, 2, 3, 4, 4)
    assert up[1, 1, 2, 3, 2] == v[1, 1 * 4 + 1 * 2 + 0, 2, 1, 1]
    np.testing.assert_array_equal(pixel_unshuffle_frames(ms.Tensor(up)).asnumpy(), v)


def test_bad_widths_and_mismatched_checkpoint_raise(tmp_path):
    with pytest.raises(ValueError, match="divisible by 4 heads"):
        build_model("efficientsci", in_ch=6, units=1, group_num=2)
    with pytest.raises(ValueError, match="color_ch"):
        build_model("efficientsci", in_ch=8, units=1, group_num=2, color_ch=2)
    folder = golden_dir("efficientsci_fp", need=("weights.pth",))
    params = load_and_convert(f"{folder}/weights.pth", convert_state_dict)
    wrong = build_model("efficientsci", in_ch=8, units=1, group_num=2)  # golden has units=2
    with pytest.raises(CheckpointError, match=r"unexpected \d+ key\(s\): resdnet_list\.1\."):
        check_params(params, wrong, "golden.pth")
    ckpt = save_ckpt(params, tmp_path / "w.ckpt")
    with pytest.raises(CheckpointError, match="w.ckpt.*unexpected"):
        load_weights(wrong, ckpt)

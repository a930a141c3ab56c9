"""Modulated deformable conv (torchvision conventions) against the golden vectors."""
import numpy as np
import pytest
from mindspore import Tensor

from mindediting.models.common.deform_conv import ModulatedDeformConv2d, deform_conv2d
from tests.golden import golden_dir, load, load_config


def _inputs(folder):
    return [Tensor(load(folder, f"{n}.npy")) for n in ("x", "offset", "weight", "bias", "mask")]


def test_deform_conv_matches_golden_groups():
    folder = golden_dir("deform_conv", need=("output.npy",))
    cfg = load_config(folder)
    x, offset, weight, bias, mask = _inputs(folder)
    assert x.shape[1] // weight.shape[1] == cfg["weight_groups"]
    out = deform_conv2d(x, offset, weight, bias, stride=1, padding=1, dilation=1, mask=mask).asnumpy()
    np.testing.assert_allclose(out, load(folder, "output.npy"), rtol=0, atol=cfg["tolerance"]["atol"])


def test_deform_conv_cell_uses_loaded_weights():
    folder = golden_dir("deform_conv", need=("output.npy",))
    cfg = load_config(folder)
    x, offset, weight, bias, mask = _inputs(folder)
    cout, cin_g = weight.shape[:2]
    cell = ModulatedDeformConv2d(cin_g * cfg["weight_groups"], cout, 3, padding=1, groups=cfg["weight_groups"],
                                 deformable_groups=cfg["offset_groups"])
    cell.weight.set_data(weight)
    cell.bias.set_data(bias)
    np.testing.assert_allclose(cell(x, offset, mask).asnumpy(), load(folder, "output.npy"), rtol=0,
                               atol=cfg["tolerance"]["atol"])


def test_zero_offsets_unit_mask_is_plain_conv():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 6, 7)).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    out = deform_conv2d(Tensor(x), Tensor(np.zeros((1, 18, 6, 7), np.float32)), Tensor(w), padding=1).asnumpy()
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros((1, 3, 6, 7), np.float32)
    for i in range(3):
        for j in range(3):
            ref += np.einsum("oc,nchw->nohw", w[:, :, i, j], xp[:, :, i:i + 6, j:j + 7])
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)


def test_integer_offset_shifts_input():
    """An offset of dx=+1 on every tap of a 1x1 kernel reads the right-hand neighbour."""
    x = np.arange(20, dtype=np.float32).reshape(1, 1, 4, 5)
    offset = np.zeros((1, 2, 4, 5), np.float32)
    offset[:, 1] = 1.0
    out = deform_conv2d(Tensor(x), Tensor(offset), Tensor(np.ones((1, 1, 1, 1), np.float32))).asnumpy()
    ref = np.concatenate([x[..., 1:], np.zeros((1, 1, 4, 1), np.float32)], -1)
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_bad_channels_raise():
    with pytest.raises(ValueError, match="not divisible"):
        deform_conv2d(Tensor(np.zeros((1, 5, 4, 4), np.float32)), Tensor(np.zeros((1, 18, 4, 4), np.float32)),
                      Tensor(np.zeros((2, 2, 3, 3), np.float32)), padding=1)

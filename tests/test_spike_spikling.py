"""Spikling Generator: parity with upstream through the real converter (golden spikling_generator)."""
import os

import mindspore as ms
import numpy as np
import pytest

from mindediting.convert.converter import check_params, load_and_convert, save_ckpt
from mindediting.convert.pth_reader import CheckpointError
from mindediting.models import build_model
from mindediting.models.spikling import convert_state_dict, generate, padding_for, to_uint8
from tests.golden import golden_dir, load, load_config

NEED = ("weights.pth", "input.npy", "output.npy", "generate_seq.npy", "generate_output.npy")


@pytest.fixture(scope="module")
def golden_net(tmp_path_factory):
    folder = golden_dir("spikling_generator", need=NEED)
    cfg = load_config(folder)
    params = load_and_convert(os.path.join(folder, "weights.pth"), convert_state_dict, **cfg["constructor"])
    assert sorted(params) == sorted(cfg["checkpoint_keys"])
    ckpt = save_ckpt(params, tmp_path_factory.mktemp("spikling") / "w.ckpt")
    net = build_model("spikling", **cfg["constructor"])
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert not not_loaded and not unused
    return folder, cfg, net


def test_generator_matches_upstream(golden_net):
    folder, cfg, net = golden_net
    out = net(ms.Tensor(load(folder, "input.npy"))).asnumpy()
    expected = load(folder, "output.npy")
    assert out.shape == expected.shape == (1, 1, 32, 48)
    np.testing.assert_allclose(out, expected, rtol=0, atol=cfg["tolerance"]["atol"])


def test_generate_matches_upstream(golden_net):
    folder, cfg, net = golden_net
    got = generate(net, load(folder, "generate_seq.npy"), cfg["generate"]["start"])
    expected = load(folder, "generate_output.npy")
    assert got.dtype == np.uint8 and got.shape == expected.shape == (30, 44)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # truncation may flip at integers
    assert np.mean(got == expected) > 0.99


def test_generate_helpers_and_errors():
    # *128 + 127, clip to [0, 255], truncate
    assert to_uint8(np.array([-1.0, -0.99, 0.0, 0.5, 1.0, 3.0])).tolist() == [0, 0, 127, 191, 255, 255]
    assert padding_for(250, 400) == ((1, 1), (0, 0))  # upstream's 250 -> 252 rows
    assert padding_for(30, 44) == ((1, 1), (0, 0))
    assert padding_for(16, 22) == ((0, 0), (1, 1))
    assert padding_for(17, 24) == ((1, 2), (0, 0))
    net = build_model("spikling")
    with pytest.raises(ValueError, match=r"frames \[20, 52\) are outside a 40-frame sequence"):
        generate(net, np.zeros((40, 6, 8), np.uint8), 20)
    with pytest.raises(ValueError, match=r"expects \(B, 32, H, W\) with H and W divisible by 4, got \(1, 32, 9, 8\)"):
        generate(net, np.zeros((40, 7, 8), np.uint8), 0)


def test_converter_mapping_and_mismatch_errors():
    state = {"down1.0.weight": np.ones((64, 32, 3, 3), np.float16)}
    out = convert_state_dict(state)
    assert out["down1.0.weight"].dtype == np.float32
    wrapped = {"netG_state.flat.weight": np.ones((1, 32, 1, 1)), "netD_state.x.weight": np.ones(3)}
    assert list(convert_state_dict(wrapped)) == ["flat.weight"]
    with pytest.raises(ValueError, match="takes no constructor arguments"):
        convert_state_dict(state, num_frames=32)
    net = build_model("spikling")
    params = {p.name: p.asnumpy() for p in net.get_parameters()}
    params.pop("up2.3.weight")
    params["flat.weight"] = np.zeros((1, 16, 1, 1), np.float32)
    with pytest.raises(CheckpointError, match=r"w.pth: .*missing 1 key\(s\): up2.3.weight.*flat.weight file"):
        check_params(params, net, "w.pth")


@pytest.mark.slow
def test_training_recipe_one_step(tmp_path):
    """L2 loss value and one Adam step (lr 2e-4, betas (0.5, 0.999)) checked by hand; dataset mapping/augment."""
    from mindediting.data.spike_io import SpikeWindowDataset, save_spike_npz
    from mindediting.models.spikling import SpiklingLoss, make_train_step

    rng = np.random.default_rng(0)
    seq = (rng.random((32, 8, 12)) < 0.4).astype(np.uint8)
    tag = rng.integers(0, 256, (8, 12), dtype=np.uint8)
    save_spike_npz(tmp_path / "a-0001.npz", seq, tag)
    plain = SpikeWindowDataset(tmp_path, augment=False)
    x, y = plain[0]
    np.testing.assert_array_equal(x, seq * 2.0 - 1)
    np.testing.assert_array_equal(y[0], tag / 128.0 - 1)
    augmented = SpikeWindowDataset(tmp_path, rng=np.random.default_rng(1))
    for _ in range(4):  # seq and tag get the same rotation/flip
        xa, ya = augmented[0]
        matches = [(k, f) for k in range(4) for f in (False, True)
                   if np.array_equal(_dihedral(y[0], k, f), ya[0]) and np.array_equal(_dihedral(x, k, f, 1), xa)]
        assert matches

    net = build_model("spikling")
    loss_cell = SpiklingLoss(net)
    xb, yb = ms.Tensor(x[None]), ms.Tensor(y[None])
    fake = net(xb).asnumpy()
    assert float(loss_cell(xb, yb).asnumpy()) == pytest.approx(100 * np.mean((fake - y[None]) ** 2), rel=1e-5)
    grads = ms.value_and_grad(loss_cell, None, net.trainable_params())(xb, yb)[1]
    before = {p.name: p.asnumpy().copy() for p in net.trainable_params()}
    make_train_step(loss_cell)(xb, yb)
    for param, grad in zip(net.trainable_params(), grads):
        g = grad.asnumpy()
        # first Adam step with bias correction: -lr * g / (|g| + eps)
        np.testing.assert_allclose(param.asnumpy() - before[param.name], -2e-4 * g / (np.abs(g) + 1e-8),
                                   atol=2e-8, err_msg=param.name)


def _dihedral(img, turns, flip, axis0=0):
    out = np.rot90(img, turns, (axis0, axis0 + 1))
    return out[..., ::-1] if flip else out


def test_generator_parameters_are_the_upstream_layout():
    """Native nn.Conv2d / nn.Conv2dTranspose cells under upstream's names: 13 bias-free weights, 2,895,904 values."""
    net = build_model("spikling")
    shapes = {p.name: tuple(p.shape) for p in net.get_parameters()}
    assert len(shapes) == 13 and sum(int(np.prod(s)) for s in shapes.values()) == 2895904
    assert shapes["down1.0.weight"] == (64, 32, 3, 3) and shapes["down2.0.weight"] == (128, 64, 4, 4)
    assert shapes["bottom.9.weight"] == (256, 128, 4, 4)  # ConvTranspose2d: (in, out, k, k) as torch
    assert shapes["up1.3.weight"] == (128, 64, 4, 4) and shapes["flat.weight"] == (1, 32, 1, 1)

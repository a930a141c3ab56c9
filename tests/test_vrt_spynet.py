"""VRT's SpyNet variant (multi-level flows) against the upstream golden, through the converter's steps and the
weight loader."""
import os

import mindspore as ms
import numpy as np
import pytest

from mindediting.convert.converter import CheckpointError, check_params, normalize_tensors, save_ckpt, unwrap_state_dict
from mindediting.convert.pth_reader import load_pth
from mindediting.convert.weights import load_weights
from mindediting.models.common import vrt_spynet
from tests.golden import golden_dir, load, load_config


def _net_from_golden(folder, tmp_path, return_levels):
    state = unwrap_state_dict(load_pth(os.path.join(folder, "weights.pth")))
    params = vrt_spynet.convert_state_dict(normalize_tensors(state))
    assert not any(k.endswith(("mean", "std")) for k in params)
    save_ckpt(params, str(tmp_path / "spynet.ckpt"))
    net = vrt_spynet.SpyNet(return_levels=return_levels)
    net.set_train(False)
    check_params(params, net, "vrt_spynet")
    load_weights(net, str(tmp_path / "spynet.ckpt"))
    return net


def test_vrt_spynet_multilevel_matches_golden(tmp_path):
    folder = golden_dir("vrt_spynet", need=("weights.pth",))
    cfg = load_config(folder)
    net = _net_from_golden(folder, tmp_path, cfg["constructor"]["return_levels"])
    flows = net(ms.Tensor(load(folder, "ref.npy")), ms.Tensor(load(folder, "supp.npy")))
    assert len(flows) == 4
    for i, flow in enumerate(flows):
        expected = load(folder, f"output_{i}.npy")
        np.testing.assert_allclose(flow.asnumpy(), expected, rtol=0, atol=cfg["tolerance"]["atol"])


def test_vrt_spynet_single_level_and_path_loading(tmp_path):
    folder = golden_dir("vrt_spynet", need=("weights.pth",))
    cfg = load_config(folder)
    _net_from_golden(folder, tmp_path, [5])
    ref, supp = ms.Tensor(load(folder, "ref.npy")[:1]), ms.Tensor(load(folder, "supp.npy")[:1])
    net = load_weights(vrt_spynet.SpyNet(return_levels=[5]), str(tmp_path / "spynet.ckpt"))
    net.set_train(False)
    flow = net(ref, supp)
    assert isinstance(flow, ms.Tensor)
    np.testing.assert_allclose(flow.asnumpy(), load(folder, "output_0.npy")[:1], rtol=0, atol=cfg["tolerance"]["atol"])
    net_pth = load_weights(vrt_spynet.SpyNet(return_levels=[2]), os.path.join(folder, "weights.pth"),
                           mapping=vrt_spynet.convert_state_dict)
    net_pth.set_train(False)
    coarse = net_pth(ref, supp)
    expected = load(folder, "output_3.npy")[:1]
    np.testing.assert_allclose(coarse.asnumpy(), expected, rtol=0, atol=cfg["tolerance"]["atol"])


def test_vrt_spynet_missing_file_and_bad_shapes(tmp_path):
    net = vrt_spynet.SpyNet(return_levels=[5])
    with pytest.raises(CheckpointError, match=r"nope\.pth: weights file not found"):
        load_weights(net, str(tmp_path / "nope.pth"), mapping=vrt_spynet.convert_state_dict)
    with pytest.raises(ValueError, match="differ in shape"):
        net(ms.Tensor(np.zeros((1, 3, 64, 64), np.float32)), ms.Tensor(np.zeros((1, 3, 64, 96), np.float32)))
    with pytest.raises(CheckpointError):
        check_params({"basic_module.0.basic_module.0.weight": np.zeros((1,), np.float32)}, net, "x.pth")


def test_vrt_spynet_zero_weights_give_zero_flow():
    """With all-zero convolutions every residual is zero, so every level's flow is exactly zero (any size)."""
    net = vrt_spynet.SpyNet(return_levels=[3, 5])
    for p in net.get_parameters():
        p.set_data(ms.Tensor(np.zeros(p.shape, np.float32)))
    rng = np.random.default_rng(1)
    img = ms.Tensor(rng.random((1, 3, 36, 44), dtype=np.float32))
    fine, coarse = net(img, img)
    assert fine.shape == (1, 2, 36, 44) and coarse.shape == (1, 2, 9, 11)
    assert np.abs(fine.asnumpy()).max() == 0 and np.abs(coarse.asnumpy()).max() == 0

"""The one weight loader (mindediting.convert.weights) and the weight-file arguments build_model loads with it."""
import os

import mindspore as ms
import numpy as np
import pytest

from benchmarks.torch_format import save_pth
from mindediting.convert.converter import load_and_convert, save_ckpt
from mindediting.convert.pth_reader import CheckpointError
from mindediting.convert.weights import load_into, load_weights, read_weights
from mindediting.models import build_model
from mindediting.models.common import spynet, vrt_spynet
from tests.golden import golden_dir, load_config


def _params(cell):
    return {name: p.asnumpy() for name, p in cell.parameters_and_names()}


def test_ckpt_loses_training_state_and_torch_file_is_mapped(tmp_path):
    weights = {"conv.weight": np.ones((2, 2), np.float16)}
    extra = {"optimizer.main.exp_avg.conv.weight": np.zeros((2, 2), np.float32), "global_step": np.array([3]),
             "moment1.conv.weight": np.zeros((2, 2), np.float32), "epoch_num": np.array([1])}
    got = read_weights(save_ckpt({**weights, **extra}, tmp_path / "train.ckpt"))
    assert list(got) == ["conv.weight"] and got["conv.weight"].dtype == np.float16
    pth = save_pth({"state_dict": {"generator.conv.weight": weights["conv.weight"]}}, tmp_path / "w.pth")
    assert read_weights(pth)["conv.weight"].dtype == np.float32
    renamed = read_weights(pth, mapping=lambda state, prefix: {prefix + k: v for k, v in state.items()}, prefix="x.")
    assert list(renamed) == ["x.conv.weight"]


def test_mapping_errors_name_the_file(tmp_path):
    def refuse(state):
        raise ValueError("lacks features.2.weight")

    pth = save_pth({"a": np.zeros(1, np.float32)}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"partial\.pth: lacks features\.2\.weight$"):
        read_weights(pth, mapping=refuse)


def test_load_into_casts_to_each_parameter_dtype_and_leaves_net_alone_on_mismatch():
    net = spynet.SPyNet()
    params = {k: (v + 1).astype(np.float16) for k, v in _params(net).items()}
    before = _params(net)
    with pytest.raises(CheckpointError, match=r"^src: checkpoint does not fit the model; missing 1 key\(s\): mean$"):
        load_into(net, {k: v for k, v in params.items() if k != "mean"}, "src")
    assert all(np.array_equal(before[k], v) for k, v in _params(net).items())
    assert load_into(net, params, "src") is net
    assert net.mean.dtype == ms.float32
    np.testing.assert_array_equal(net.mean.asnumpy(), params["mean"].astype(np.float32))


def test_build_model_loads_spynet_pretrained_upstream_or_converted(tmp_path):
    """BasicVSR's ``spynet_pretrained`` (upstream file or our .ckpt) ends up in ``net.spynet``, and nowhere else."""
    pth = os.path.join(golden_dir("spynet", need=("weights.pth",)), "weights.pth")
    expected = load_and_convert(pth, spynet.convert_state_dict)
    key = "basic_module.3.basic_module.2.conv.weight"
    fresh = _params(build_model("basicvsr", mid_channels=8, num_blocks=1).spynet)
    assert not np.array_equal(fresh[key], expected[key])
    ckpt = save_ckpt(expected, tmp_path / "spynet.ckpt")
    for source in (pth, ckpt):
        got = _params(build_model("basicvsr", mid_channels=8, num_blocks=1, spynet_pretrained=source).spynet)
        assert sorted(got) == sorted(expected)
        for name, value in expected.items():
            np.testing.assert_array_equal(got[name], value)
    np.testing.assert_array_equal(_params(build_model("spynet", pretrained=pth))[key], expected[key])
    with pytest.raises(CheckpointError, match=r"nope\.pth: weights file not found"):
        build_model("basicvsr", mid_channels=8, num_blocks=1, spynet_pretrained=str(tmp_path / "nope.pth"))


def test_build_model_loads_vrt_spynet_path(tmp_path):
    """Upstream VRT hands ``spynet_path`` (e.g. spynet_sintel_final-3d2a1287.pth, a ``params`` wrapper) to its
    SpyNet; here build_model loads it into ``net.spynet`` after construction. The golden configs hold null."""
    cfg = load_config(golden_dir("vrt_small", need=("weights.pth",)))
    assert cfg["constructor"]["spynet_path"] is None
    pth = os.path.join(golden_dir("vrt_spynet", need=("weights.pth",)), "weights.pth")
    wrapped = save_pth({"params": load_and_convert(pth)}, tmp_path / "spynet_sintel_final.pth")
    expected = load_and_convert(pth, vrt_spynet.convert_state_dict)
    net = build_model("vrt", **dict(cfg["constructor"], spynet_path=wrapped))
    got = _params(net.spynet)
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value)


def test_converted_file_loads_strictly_into_a_fresh_net(tmp_path):
    net = spynet.SPyNet()
    params = {k: np.full(v.shape, 0.5, np.float32) for k, v in _params(net).items()}
    path = save_ckpt(params, tmp_path / "s.ckpt")
    assert load_weights(net, path) is net
    np.testing.assert_array_equal(net.basic_module[0].basic_module[0].conv.weight.asnumpy(),
                                  params["basic_module.0.basic_module.0.conv.weight"])

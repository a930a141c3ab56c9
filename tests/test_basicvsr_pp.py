"""BasicVSR++ against upstream mmagic outputs, through the real converter, in PyNative, hybrid and graph mode.

Vectors: ``../shared/golden/basicvsrpp_small`` (mid 16, 1 block, 5 frames 64x64 -> 256x256, official checkpoint
layout) and ``tests/data/golden/basicvsrpp_same_size`` (official 64 channels / 7 blocks with seeded synthetic
weights rebuilt here from its ``synthetic_weights.py``: the same-size variant, mirror-extended x4 input, and
torch's x1/4 bicubic). Both were made by running the upstream file with torch (see their config.json).
"""
import importlib.util
import json
import os

import mindspore as ms
import numpy as np
import pytest

from benchmarks.torch_format import save_pth
from mindediting import registry
from mindediting.convert.converter import load_and_convert, save_ckpt
from mindediting.models import build_model
from mindediting.models.basicvsr_pp import BasicVSRPlusPlusNet, bicubic_quarter
from mindediting.utils.resolve import resolve
from tests.golden import LOCAL, golden_dir, load, load_config

SAME_SIZE = os.path.join(LOCAL, "basicvsrpp_same_size")


def _synthetic_weights_module():
    spec = importlib.util.spec_from_file_location("basicvsrpp_synthetic_weights",
                                                  os.path.join(SAME_SIZE, "synthetic_weights.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _convert_and_load(pth, tmp_path, ctor):
    """The official path: upstream .pth -> converter (with the spec's mapping) -> .ckpt -> strict load."""
    params = load_and_convert(pth, resolve(registry.get("basicvsrpp").weights), **ctor)
    ckpt = save_ckpt(params, tmp_path / "basicvsrpp.ckpt")
    net = build_model("basicvsrpp", **ctor)
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert not not_loaded and not unused
    return net


def _local_case(name, tmp_path):
    """Net (weights rebuilt from the seed, written as an official-style .pth and converted), input, output, atol."""
    cfg = load_config(SAME_SIZE)
    case = cfg["cases"][name]
    with open(os.path.join(SAME_SIZE, case["keys"]), encoding="utf-8") as handle:
        keys = json.load(handle)
    weights = _synthetic_weights_module()
    state = weights.synthetic_state(keys, case["seed"])
    assert weights.checksum(state) == pytest.approx(case["weights_abs_sum"], rel=1e-12), "numpy stream changed"
    pth = save_pth({"meta": {"note": "synthetic"}, "state_dict": {f"generator.{k}": v for k, v in state.items()}},
                   tmp_path / f"{name}.pth")
    net = _convert_and_load(pth, tmp_path, case["constructor"])
    assert sorted(p.name for p in net.get_parameters()) == sorted(k for k, _ in keys)
    x = load(SAME_SIZE, case["input"]["file"])
    return net, x, load(SAME_SIZE, case["output"]["file"]), cfg["tolerance"]["atol"]


def _shared_case(tmp_path):
    folder = golden_dir("basicvsrpp_small", need=("weights.pth",))
    cfg = load_config(folder)
    ctor = {k: v for k, v in cfg["constructor"].items() if v is not None}
    net = _convert_and_load(f"{folder}/weights.pth", tmp_path, ctor)
    return net, load(folder, "input.npy"), load(folder, "output.npy"), cfg["tolerance"]["atol"]


def _max_diff(net, x, expected):
    out = net(ms.Tensor(x)).asnumpy()
    assert out.shape == expected.shape and out.dtype == np.float32
    return float(np.abs(out - expected).max())


# ------------------------------------------------------------------------------------------------ pieces
def test_bicubic_quarter_is_torch_bicubic():
    cfg = load_config(SAME_SIZE)
    x = load(SAME_SIZE, "bicubic_input.npy")  # 35x42: sizes that are not multiples of 4
    out = bicubic_quarter(ms.Tensor(x)).asnumpy()
    np.testing.assert_allclose(out, load(SAME_SIZE, "bicubic_output.npy"), rtol=0, atol=1e-6)
    assert list(out.shape) == cfg["bicubic"]["output"][0]


def test_constructor_takes_the_upstream_arguments():
    net = build_model("basicvsrpp", mid_channels=8, num_blocks=1, max_residue_magnitude=10, is_low_res_input=True,
                      spynet_pretrained=None, cpu_cache_length=100)
    assert isinstance(net, BasicVSRPlusPlusNet) and net.cpu_cache_length == 100
    assert "spynet_pretrained" in registry.get("basicvsrpp").constructor_args()
    x = np.random.default_rng(0).random((1, 3, 3, 16, 16), dtype=np.float32)
    out = net(ms.Tensor(x))
    assert out.shape == (1, 3, 3, 64, 64) and out.dtype == ms.float32
    same = build_model("basicvsrpp", mid_channels=8, num_blocks=1, is_low_res_input=False)
    assert same(ms.Tensor(np.tile(x, (1, 1, 1, 2, 2)))).shape == (1, 3, 3, 32, 32)
    # upstream's init_offset: the offset heads start at zero (alignment = flow warp, mask 0.5)
    assert not net.deform_align["backward_1"].conv_offset[-1].weight.asnumpy().any()


def test_mirror_detection():
    x = load(SAME_SIZE, "mirror_x4_input.npy")
    assert BasicVSRPlusPlusNet.is_mirror_extended(ms.Tensor(x))
    assert not BasicVSRPlusPlusNet.is_mirror_extended(ms.Tensor(x[:, :3]))  # odd length
    assert not BasicVSRPlusPlusNet.is_mirror_extended(ms.Tensor(load(SAME_SIZE, "same_size_input.npy")))


# ------------------------------------------------------------------------------------------------ parity
def test_shared_golden_pynative(tmp_path):
    net, x, expected, atol = _shared_case(tmp_path)
    assert not net.is_mirror_extended(ms.Tensor(x))
    assert _max_diff(net, x, expected) <= atol


@pytest.mark.slow
def test_shared_golden_hybrid(tmp_path):
    net, x, expected, atol = _shared_case(tmp_path)
    net.jit_stages()
    assert net.detect_mirror is False
    assert _max_diff(net, x, expected) <= atol


@pytest.mark.slow
def test_shared_golden_graph_mode(tmp_path):
    net, x, expected, atol = _shared_case(tmp_path)
    net.detect_mirror = False
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        assert _max_diff(net, x, expected) <= atol
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.mark.parametrize("case", ["same_size", "mirror_x4"])
def test_official_width_pynative(case, tmp_path):
    """64 channels / 7 blocks; mirror_x4 takes the reuse-backward-flows path, as upstream did for it."""
    net, x, expected, atol = _local_case(case, tmp_path)
    assert _max_diff(net, x, expected) <= atol


@pytest.mark.slow
def test_official_width_hybrid(tmp_path):
    """Hybrid turns the mirror test off: forward flows are computed, and agree with upstream's reused ones (the
    compiled stages themselves: test_shared_golden_hybrid, and this case at the official width)."""
    net, x, expected, atol = _local_case("mirror_x4", tmp_path)
    net.jit_stages()
    assert _max_diff(net, x, expected) <= atol


def test_convert_weights_cli_accepts_the_official_layout(tmp_path):
    from src.scripts import convert_weights

    folder = golden_dir("basicvsrpp_small", need=("weights.pth",))
    cfg = tmp_path / "small.yaml"
    cfg.write_text("model:\n  name: basicvsrpp\n  args: {mid_channels: 16, num_blocks: 1}\n")
    dst = tmp_path / "small.ckpt"
    assert convert_weights.main(["--model", "basicvsrpp", "--src", f"{folder}/weights.pth", "--dst", str(dst),
                                 "--config", str(cfg)]) == 0
    assert "spynet.basic_module.5.basic_module.4.conv.weight" in ms.load_checkpoint(str(dst))


# ------------------------------------------------------------------------------------------- entry points
@pytest.mark.slow
def test_mindir_round_trip(tmp_path):
    from tests.test_export import assert_mindir_round_trip

    assert_mindir_round_trip(tmp_path, "basicvsrpp", {"mid_channels": 8, "num_blocks": 1}, (1, 3, 3, 32, 32),
                             (1, 3, 3, 128, 128), offset_std=0.05, seed=3)


@pytest.mark.slow
def test_train_eval_infer_entry_points(tmp_path):
    """Two training iterations through train.py, then eval.py and infer.py on the checkpoint it wrote."""
    import yaml

    import eval as eval_script
    import infer as infer_script
    import train as train_script
    from tests.test_train import tiny_config

    cfg = tiny_config(str(tmp_path / "data"), total_iters=2, save_interval=2, val_interval=2)
    cfg["model"] = {"name": "basicvsrpp", "args": {"mid_channels": 8, "num_blocks": 1}}
    cfg["train"]["output_dir"] = str(tmp_path / "run")
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert train_script.main(["--config_path", str(path), "--no_progress"]) == 0
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
    assert ckpts
    out = tmp_path / "eval"
    assert eval_script.main(["--config_path", str(path), "--ckpt", str(ckpts[-1]), "--output_dir", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["clips"]
    lr_dir = tmp_path / "data" / "train_sharp_bicubic" / "X4" / "001"
    assert infer_script.main(["--config_path", str(path), "--ckpt", str(ckpts[-1]), "--input", str(lr_dir),
                              "--output_dir", str(tmp_path / "infer"), "--no_progress"]) == 0
    assert list((tmp_path / "infer").rglob("*.mp4"))

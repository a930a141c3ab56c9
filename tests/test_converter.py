"""The torch-free .pth reader, the generic conversion steps, convert_weights.py and strict loading."""
import os
import zipfile

import mindspore as ms
import numpy as np
import pytest

from benchmarks.torch_format import BFloat16, Call, Global, save_pth
from mindediting.convert.converter import load_and_convert, normalize_tensors, save_ckpt, unwrap_state_dict
from mindediting.convert.pth_reader import CheckpointError, load_pth
from mindediting.convert.weights import load_weights
from mindediting.models import build_model
from mindediting.models.common.spynet import convert_state_dict
from src.scripts import convert_weights
from tests.golden import golden_dir


def _spynet_state(rng):
    net = build_model("spynet")
    return {p.name: rng.standard_normal(p.shape).astype(np.float32) for p in net.get_parameters()}


def test_reader_reads_real_torch_file_and_our_writer_round_trips(tmp_path):
    folder = golden_dir("spynet", need=("weights.pth",))
    state = load_pth(f"{folder}/weights.pth")
    assert state["mean"].shape == (1, 3, 1, 1)
    np.testing.assert_allclose(state["mean"].ravel(), [0.485, 0.456, 0.406], rtol=1e-6)
    again = load_pth(save_pth(state, tmp_path / "copy.pth"))
    assert list(again) == list(state)
    for key in state:
        np.testing.assert_array_equal(again[key], state[key])


def test_dtypes_strides_and_bfloat16(tmp_path):
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    obj = {
        "half": base.astype(np.float16),
        "long": np.arange(5, dtype=np.int64),
        "transposed": base.T,  # non-contiguous strides
        "bf16": BFloat16(np.array([1.0, -2.5, 3.140625], np.float32)),
        "scalar": np.array(7.0, np.float64),
    }
    state = load_pth(save_pth(obj, tmp_path / "w.pth"))
    assert state["half"].dtype == np.float16 and state["long"].dtype == np.int64
    np.testing.assert_array_equal(state["transposed"], base.T)
    np.testing.assert_array_equal(state["bf16"], [1.0, -2.5, 3.140625])
    assert state["scalar"].shape == () and state["scalar"] == 7.0


def test_wrappers_prefixes_bookkeeping_and_float32_cast(tmp_path):
    weights = {"generator.conv.weight": np.ones((2, 2), np.float16), "generator.bn.num_batches_tracked": np.array(3),
               "generator.idx": np.arange(3, dtype=np.int64)}
    path = save_pth({"meta": {"note": "x", "epoch": 3}, "state_dict": weights}, tmp_path / "w.pth")
    state = normalize_tensors(unwrap_state_dict(load_pth(path)))
    assert sorted(state) == ["conv.weight", "idx"]
    assert state["conv.weight"].dtype == np.float32 and state["idx"].dtype == np.int64
    params = unwrap_state_dict(load_pth(save_pth({"params": {"module.a": np.zeros(1, np.float32)}}, tmp_path / "p.pth")))
    assert list(params) == ["a"]


def test_pickled_code_is_never_run_and_named_in_the_error(tmp_path):
    marker = tmp_path / "pwned"
    evil = Call(Global("os", "system"), f"touch {marker}")
    path = save_pth({"state_dict": {"conv.weight": np.zeros(2, np.float32), "hook": evil}}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError) as err:
        unwrap_state_dict(load_pth(path), source=path)
    assert not marker.exists()
    assert "evil.pth" in str(err.value) and "'hook'" in str(err.value) and "os.system" in str(err.value)


def test_corrupt_and_legacy_files(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x02not a zip at all")
    with pytest.raises(CheckpointError, match="junk.pth: not a PyTorch zip checkpoint"):
        load_pth(junk)
    with pytest.raises(CheckpointError, match="file not found"):
        load_pth(tmp_path / "missing.pth")
    path = save_pth({"a": np.zeros(4, np.float32)}, tmp_path / "trunc.pth")
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(tmp_path / "cut.pth", "w") as out:
        out.writestr("archive/data.pkl", archive.read("archive/data.pkl"))  # storage missing
    with pytest.raises(CheckpointError, match="cut.pth: corrupt checkpoint"):
        load_pth(tmp_path / "cut.pth")


def test_convert_weights_cli_writes_loadable_ckpt(tmp_path):
    state = _spynet_state(np.random.default_rng(0))
    src = save_pth({"state_dict": {f"generator.{k}": v for k, v in state.items()}}, tmp_path / "spynet.pth")
    cfg = tmp_path / "spynet.yaml"
    cfg.write_text("model:\n  name: spynet\n  args: {}\n")
    dst = tmp_path / "out" / "spynet.ckpt"
    assert convert_weights.main(["--model", "spynet", "--src", src, "--dst", str(dst), "--config", str(cfg)]) == 0
    net = load_weights(build_model("spynet"), dst)
    np.testing.assert_array_equal(net.basic_module[2].basic_module[1].conv.weight.asnumpy(),
                                  state["basic_module.2.basic_module.1.conv.weight"])
    assert not [f for f in os.listdir(dst.parent) if "partial" in f]


def test_basicsr_style_spynet_keys_are_renamed(tmp_path):
    state = _spynet_state(np.random.default_rng(1))
    basicsr = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) == 6:  # basic_module.L.basic_module.j.conv.weight -> basic_module.L.basic_module.(2j).weight
            parts = parts[:3] + [str(2 * int(parts[3])), parts[5]]
        basicsr[".".join(parts)] = value
    params = load_and_convert(save_pth({"params": basicsr}, tmp_path / "s.pth"), convert_state_dict)
    assert sorted(params) == sorted(state)


def test_checkpoint_of_another_model_is_reported_by_key(tmp_path, capsys):
    state = _spynet_state(np.random.default_rng(2))
    src = save_pth({f"spynet.{k}": v for k, v in state.items()}, tmp_path / "only_spynet.pth")
    cfg = tmp_path / "b.yaml"
    cfg.write_text("model:\n  name: basicvsr\n  args: {mid_channels: 4, num_blocks: 1}\n")
    dst = tmp_path / "b.ckpt"
    assert convert_weights.main(["--model", "basicvsr", "--src", src, "--dst", str(dst), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "only_spynet.pth" in err and "missing 22 key(s)" in err and "backward_resblocks.main.0.bias" in err
    assert "... and 10 more" in err and not dst.exists()


def test_strict_loader_names_file_and_keys(tmp_path):
    net = build_model("basicvsr", mid_channels=4, num_blocks=1)
    params = {p.name: p.asnumpy() for p in net.get_parameters()}
    params.pop("conv_last.bias")
    params["extra.weight"] = np.zeros(1, np.float32)
    params["fusion.weight"] = np.zeros((4, 8, 3, 3), np.float32)
    path = save_ckpt(params, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError) as err:
        load_weights(net, path)
    message = str(err.value)
    assert "bad.ckpt" in message and "conv_last.bias" in message and "extra.weight" in message
    assert "fusion.weight file (4, 8, 3, 3) vs model (4, 8, 1, 1)" in message
    assert len(message.splitlines()) == 1
    with pytest.raises(CheckpointError, match="weights file not found"):
        load_weights(net, tmp_path / "none.ckpt")


def test_float16_ckpt_is_cast_on_load(tmp_path):
    net = build_model("spynet")
    params = {p.name: p.asnumpy().astype(np.float16) for p in net.get_parameters()}
    path = save_ckpt(params, tmp_path / "half.ckpt")
    assert ms.load_checkpoint(path)["mean"].dtype == ms.float16
    load_weights(net, path)
    assert net.mean.dtype == ms.float32
    np.testing.assert_allclose(net.mean.asnumpy().ravel(), [0.485, 0.456, 0.406], atol=1e-3)

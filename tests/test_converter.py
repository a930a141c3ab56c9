"""The torch-free .pth reader, the generic conversion steps, convert_weights.py and strict loading."""
import logging
import os
import pickle
import tracemalloc
import zipfile

import mindspore as ms
import numpy as np
import pytest

from benchmarks.torch_format import BFloat16, Call, Global, RawTensor, save_pth
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


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_dtypes_strides_and_bfloat16(tmp_path, legacy):
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    obj = {
        "half": base.astype(np.float16),
        "long": np.arange(5, dtype=np.int64),
        "transposed": base.T,  # non-contiguous strides
        "bf16": BFloat16(np.array([1.0, -2.5, 3.140625], np.float32)),
        "scalar": np.array(7.0, np.float64),
    }
    state = load_pth(save_pth(obj, tmp_path / "w.pth", legacy=legacy))
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
        load_pth(path)
    assert not marker.exists()
    assert str(err.value) == (
        f"{path}: key 'state_dict.hook' holds a pickled os.system object; refused (no code from the file is run); "
        "convert with --allow_extra to drop such entries"
    )


def test_corrupt_files(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x02not a pickle at all")
    with pytest.raises(CheckpointError, match="junk.pth: magic number is corrupt"):
        load_pth(junk)
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(CheckpointError, match="text.pth: not a PyTorch checkpoint"):
        load_pth(tmp_path / "text.pth")
    with pytest.raises(CheckpointError, match="file not found"):
        load_pth(tmp_path / "missing.pth")
    path = save_pth({"a": np.zeros(4, np.float32)}, tmp_path / "trunc.pth")
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(tmp_path / "cut.pth", "w") as out:
        out.writestr("archive/data.pkl", archive.read("archive/data.pkl"))  # storage missing
    with pytest.raises(CheckpointError, match="cut.pth: storage '0' is missing from the archive"):
        load_pth(tmp_path / "cut.pth")
    legacy = save_pth({"a": np.arange(4, dtype=np.float32)}, tmp_path / "legacy.pth", legacy=True)
    data = open(legacy, "rb").read()
    (tmp_path / "short.pth").write_bytes(data[:-1])
    with pytest.raises(CheckpointError, match="short.pth: storage '0' claims 16 bytes, but only 15 remain"):
        load_pth(tmp_path / "short.pth")


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


LEGACY_DIR = os.path.join(os.path.dirname(__file__), "data", "pth_legacy")


@pytest.mark.parametrize("name", ["official_legacy.pth", "official_zip.pth"])
def test_files_written_by_torch_in_both_formats(name):
    """Real torch 2.13 output (tests/data/pth_legacy/make_fixtures.py): views, shared storages, stride 0,
    bfloat16, parameters, and OpenMMLab's `meta` dict of plain data beside the state dict."""
    expected = np.load(os.path.join(LEGACY_DIR, "expected.npz"))
    obj = load_pth(os.path.join(LEGACY_DIR, name))
    assert obj["meta"]["hooks"] == [("lr", 1e-4), ("ema", True)] and obj["meta"]["CLASSES"] is None
    assert sorted(obj["state_dict"]) == sorted(expected.files)
    for key, value in obj["state_dict"].items():
        assert value.dtype == expected[key].dtype, key
        np.testing.assert_array_equal(value, expected[key])
    params = load_and_convert(os.path.join(LEGACY_DIR, name))
    assert params["full"].dtype == np.float32 and params["int32"].dtype == np.int32
    assert "1.num_batches_tracked" not in params
    np.testing.assert_array_equal(params["half"], expected["generator.half"].astype(np.float32))


def _convert(tmp_path, src, *extra):
    dst = tmp_path / "out.ckpt"
    code = convert_weights.main(["--model", "spynet", "--src", str(src), "--dst", str(dst), *extra])
    return code, dst


def _one_error_line(capsys):
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


STORAGE = np.arange(4, dtype=np.float32) + 1


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("offset, size, stride, message", [
    (0, (8, 8), (8, 1), "reach element 63 of storage '0', which holds 4 Float elements"),  # was exit 0, heap bytes
    (0, (2 ** 24,), (1,), "reach element 16777215 of storage '0'"),  # was a segfault
    (3, (4,), (-1,), "negative offset, size or stride"),
    (9, (1,), (1,), "reach element 9 of storage '0'"),
    (0, (10 ** 6, 10 ** 6), (0, 0), "is larger than the limit (max_storage_gb)"),  # was numpy's allocator
], ids=["64_of_4", "2^24", "negative_stride", "offset_past_end", "10^12"])
def test_tensor_records_are_checked_against_their_storage(tmp_path, capsys, legacy, offset, size, stride, message):
    src = save_pth({"state_dict": {"conv.weight": RawTensor(STORAGE, offset, size, stride)}}, tmp_path / "bad.pth",
                   legacy=legacy)
    code, dst = _convert(tmp_path, src)
    err = _one_error_line(capsys)
    assert code == 2 and not dst.exists()
    assert "bad.pth: key 'state_dict.conv.weight': " in err and message in err


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_storage_size_is_checked_against_the_file_and_the_limit(tmp_path, capsys, legacy):
    lying = save_pth({"w": RawTensor(STORAGE, 0, (64,), (1,), numel=64)}, tmp_path / "lying.pth", legacy=legacy)
    with pytest.raises(CheckpointError, match="64|16 bytes"):
        load_pth(lying)
    src = save_pth({"w": np.ones(1000, np.float32)}, tmp_path / "big.pth", legacy=legacy)
    assert load_pth(src, max_storage_gb=1e-5)["w"].size == 1000  # 4000 bytes fit in 10.7 kB
    code, dst = _convert(tmp_path, src, "--max_storage_gb", "1e-6")
    err = _one_error_line(capsys)
    assert code == 2 and not dst.exists()
    assert "big.pth: the storages add up to 3.73e-06 GiB (largest: '0'" in err and "--max_storage_gb" in err


def _zip_bomb(path, nbytes):
    """A torch zip whose one float32 storage is `nbytes` zeros, deflated (about 1030:1)."""
    plain = save_pth({"w": RawTensor(np.zeros(1, np.float32), 0, (nbytes // 4,), (1,), numel=nbytes // 4)},
                     f"{path}.plain")
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w") as out:
        out.writestr("archive/data.pkl", source.read("archive/data.pkl"))
        info = zipfile.ZipInfo("archive/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        with out.open(info, "w") as member:
            chunk = bytes(1 << 22)
            for _ in range(nbytes // len(chunk)):
                member.write(chunk)
    return path


def test_zip_bomb_is_refused_before_inflating(tmp_path, capsys):
    src = _zip_bomb(tmp_path / "bomb.pth", 64 << 20)
    assert os.path.getsize(src) < 100_000
    tracemalloc.start()
    try:
        code, dst = _convert(tmp_path, src)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = _one_error_line(capsys)
    assert code == 2 and not dst.exists() and peak < 8 << 20
    assert "bomb.pth: member archive/data/0 would inflate" in err and "to 67108864 (more than 1000:1)" in err


def test_deflated_archive_at_an_ordinary_ratio_is_read(tmp_path):
    with zipfile.ZipFile(os.path.join(LEGACY_DIR, "official_zip.pth")) as source, \
            zipfile.ZipFile(tmp_path / "deflated.pth", "w", zipfile.ZIP_DEFLATED) as out:
        for name in source.namelist():
            out.writestr(name, source.read(name))
    expected = np.load(os.path.join(LEGACY_DIR, "expected.npz"))
    np.testing.assert_array_equal(load_pth(tmp_path / "deflated.pth")["state_dict"]["generator.row"],
                                  expected["generator.row"])


def _zip_with_pickle(path, data):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
    return path


DEEP_TUPLE_KEY = b"\x80\x02}" + b")" + b"\x85" * 1_000_000 + b"Ns."  # hashing it overflows the C stack
MALFORMED = {
    "truncated": (pickle.dumps({"a": [1, 2, 3]}, protocol=2)[:-4], "member archive/data.pkl is corrupt ("),
    "unknown_opcode": (b"\x80\x02\xff.", "member archive/data.pkl is corrupt ("),
    "reduce_on_a_string": (b"\x80\x02X\x01\x00\x00\x00a)R.", "is corrupt (TypeError"),
    "build_on_a_list": (b"\x80\x02]}(X\x01\x00\x00\x00aK\x01ub.", "is corrupt (AttributeError"),
    "memo_index_2^31": (b"\x80\x02Nr\xff\xff\xff\x7fj\xff\xff\xff\x7f.", None),
    "bytearray8_of_2^40": (b"\x80\x05\x96" + (1 << 40).to_bytes(8, "little") + b"ab.", "is corrupt (UnpicklingError"),
    "deep_tuple_as_key": (DEEP_TUPLE_KEY, "tuples nested more than 64 levels deep"),
    "storage_record": (b"\x80\x02(X\x07\x00\x00\x00storageK\x01tQ.", "storage record has 2 fields"),
    "whole_module": (b"\x80\x02(X\x06\x00\x00\x00moduleK\x01tQ.", "pickles a whole nn.Module class"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_pickles_end_in_one_error_line(tmp_path, capsys, case):
    data, message = MALFORMED[case]
    src = _zip_with_pickle(tmp_path / f"{case}.pth", data)
    code, dst = _convert(tmp_path, src)
    err = _one_error_line(capsys)
    assert code == 2 and not dst.exists() and f"{case}.pth: " in err
    assert message is None or message in err, err


def test_hostile_top_level_names_the_class(tmp_path, capsys):
    code, dst = _convert(tmp_path, os.path.join(LEGACY_DIR, "hostile_top_legacy.pth"), "--allow_extra")
    err = _one_error_line(capsys)
    assert code == 2 and not dst.exists()
    assert "hostile_top_legacy.pth: the top level holds a pickled posix.system object; refused" in err


def test_extra_objects_are_refused_or_dropped_with_allow_extra(tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the fixture's `touch pwned_by_pth` would land if anything ran it
    code, dst = _convert(tmp_path, os.path.join(LEGACY_DIR, "hostile_legacy.pth"))
    err = _one_error_line(capsys)
    assert code == 2 and not dst.exists()
    assert "hostile_legacy.pth: key 'extra.cb' holds a pickled posix.system object; refused (no code from the " \
           "file is run)" in err
    state = _spynet_state(np.random.default_rng(3))
    evil = Call(Global("os", "system"), "touch pwned_by_pth")
    src = save_pth({"meta": {"epoch": 1, "note": ["x", (1, None)]}, "state_dict": state,
                    "extra": {"cb": evil, "cls": Global("os", "system")}}, tmp_path / "extra.pth")
    code, dst = _convert(tmp_path, src)
    assert code == 2 and "key 'extra.cb' holds a pickled os.system object" in _one_error_line(capsys)
    with caplog.at_level(logging.WARNING):
        code, dst = _convert(tmp_path, src, "--allow_extra")
    assert code == 0 and dst.exists()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "dropped key 'extra.cb': it holds a pickled os.system object (allow_extra)",
        "dropped key 'extra.cls': it holds a pickled os.system object (allow_extra)",
    ]
    assert not (tmp_path / "pwned_by_pth").exists()


def test_plain_data_beside_tensors_is_ignored_but_nested_tensors_are_not(tmp_path):
    weights = {"conv.weight": np.ones(2, np.float32), "epoch": 3, "names": ("a", "b"), "cfg": {"lr": 1e-4}}
    assert list(load_and_convert(save_pth(weights, tmp_path / "plain.pth"))) == ["conv.weight"]
    nested = save_pth({"conv.weight": np.ones(2, np.float32), "ema": {"w": np.ones(2, np.float32)}}, tmp_path / "n.pth")
    with pytest.raises(CheckpointError, match="n.pth: key 'ema' holds tensors nested beside the state dict's own"):
        load_and_convert(nested)
    with pytest.raises(CheckpointError, match=r"t.pth: no tensors found \(the top level is a list"):
        load_and_convert(save_pth([np.ones(2, np.float32)], tmp_path / "t.pth"))

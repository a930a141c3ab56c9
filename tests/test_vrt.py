"""VRT port: one Stage and whole small models against the upstream goldens, through the real converter."""
import os

import mindspore as ms
import numpy as np
import pytest

from benchmarks.bench_vrt import jit_stage_cells
from mindediting.convert.converter import check_params, load_and_convert, normalize_tensors, save_ckpt
from mindediting.convert.pth_reader import load_pth
from mindediting.models import build_model
from mindediting.models.vrt import Stage, convert_state_dict
from tests.golden import golden_dir, load, load_config


@pytest.fixture(autouse=True)
def _sync(synchronous_pynative):
    """Every VRT test runs with PyNative ops on the calling thread (tests/conftest.py)."""
    yield


def _load_into(net, params):
    not_loaded, unused = ms.load_param_into_net(net, {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in params.items()})
    assert not not_loaded and not unused


@pytest.mark.parametrize("hybrid", [False, True], ids=["pynative", "hybrid"])
def test_stage_down_pa2_matches_golden(hybrid, synchronous_pynative):
    folder = golden_dir("vrt_stage", need=("weights.pth", "x.npy"))
    cfg = load_config(folder)
    params = convert_state_dict(normalize_tensors(load_pth(os.path.join(folder, "weights.pth"))))
    net = Stage(**cfg["constructor"])
    net.set_train(False)
    check_params(params, net, "vrt_stage")
    _load_into(net, params)
    if hybrid:  # system.mode hybrid: the TMSA blocks and pa_fuse graph-compiled
        assert len(jit_stage_cells(net)) == cfg["constructor"]["depth"] + 1
    out = net(ms.Tensor(load(folder, "x.npy")), [ms.Tensor(load(folder, "flows_backward_0.npy"))],
              [ms.Tensor(load(folder, "flows_forward_0.npy"))])
    np.testing.assert_allclose(out.asnumpy(), load(folder, "output.npy"), rtol=0, atol=cfg["tolerance"]["atol"])


def _parity(case, tmp_path):
    folder = golden_dir(case, need=("weights.pth", "input.npy", "output.npy"))
    cfg = load_config(folder)
    ctor = cfg["constructor"]
    params = load_and_convert(os.path.join(folder, "weights.pth"), convert_state_dict, **ctor)
    ckpt = tmp_path / "w.ckpt"
    save_ckpt(params, str(ckpt))
    net = build_model("vrt", **ctor)
    not_loaded, _ = ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert not not_loaded
    out = net(ms.Tensor(load(folder, "input.npy"))).asnumpy()
    assert out.shape == tuple(cfg["output"]["shape"])
    np.testing.assert_allclose(out, load(folder, "output.npy"), rtol=0, atol=cfg["tolerance"]["atol"])


@pytest.mark.slow
def test_vrt_small_x4_matches_golden(tmp_path, synchronous_pynative):
    _parity("vrt_small", tmp_path)


@pytest.mark.slow
def test_vrt_small_nonblind_denoise_matches_golden(tmp_path, synchronous_pynative):
    _parity("vrt_small_denoise", tmp_path)


def _tiny_ckpt(tmp_path, **extra):
    net = build_model("vrt", **dict(TINY, **extra))
    path = str(tmp_path / "tiny.ckpt")
    ms.save_checkpoint(net, path)
    return net, path


def test_load_network_synchronizes_pynative_for_vrt_unless_configured(tmp_path):
    """VRT's pynative_synchronize hint is applied by load_network; system.pynative_synchronize: false overrides it."""
    from mindediting.engine.runtime import load_network

    _, path = _tiny_ckpt(tmp_path, upscale=1)
    model = {"name": "vrt", "args": dict(TINY, upscale=1)}
    previous = ms.get_context("pynative_synchronize")
    try:
        ms.set_context(pynative_synchronize=False)
        load_network({"model": model, "system": {"mode": "pynative", "pynative_synchronize": False}}, path)
        assert ms.get_context("pynative_synchronize") is False
        net = load_network({"model": model, "system": {"mode": "pynative"}}, path)
        assert ms.get_context("pynative_synchronize") is True
        assert not net.training
    finally:
        ms.set_context(pynative_synchronize=previous)


def test_load_network_hybrid_runs_vrt_in_pynative_with_loaded_weights(tmp_path, caplog):
    """VRT has no jit_stages (compiled blocks did not pay off): hybrid mode warns and runs the loaded net in
    PyNative; jit_stage_cells compiles blocks and fusions only, with the same output."""
    from mindediting.engine.runtime import load_network

    eager, path = _tiny_ckpt(tmp_path, upscale=2)
    eager.set_train(False)
    with caplog.at_level("WARNING"):
        net = load_network({"model": {"name": "vrt", "args": dict(TINY, upscale=2)}, "system": {"mode": "hybrid"}},
                           path)
    assert "no graph-compiled stages" in caplog.text
    assert "construct" not in vars(net.stage1.residual_group2.blocks[0])
    x = ms.Tensor(np.random.default_rng(3).random((1, 4, 3, 40, 40), dtype=np.float32))
    expected = eager(x).asnumpy()
    np.testing.assert_array_equal(net(x).asnumpy(), expected)
    compiled = jit_stage_cells(net)
    assert len(compiled) == 8 + 7  # one TMSA block per TMSAG (depth 1), one pa_fuse per stage 1-7
    assert "construct" not in vars(net.stage1.pa_deform) and "construct" in vars(net.stage1.pa_fuse)


def test_convert_state_dict_renames_layernorms_and_drops_buffers():
    state = {
        "stage1.reshape.1.weight": 1, "stage2.reshape.2.weight": 2, "stage8.0.1.bias": 3, "stage8.0.2.weight": 4,
        "stage1.residual_group1.blocks.0.norm1.weight": 5, "stage1.residual_group1.blocks.0.norm2.bias": 6,
        "norm.weight": 7, "stage1.residual_group1.blocks.0.attn.relative_position_index": 8,
        "stage1.residual_group1.blocks.0.attn.position_bias": 9, "spynet.mean": 10, "spynet.std": 11,
        "spynet.basic_module.0.basic_module.0.weight": 12, "stage1.pa_deform.conv_offset.0.weight": 13,
    }
    out = convert_state_dict(state)
    assert out == {
        "stage1.reshape.1.gamma": 1, "stage2.reshape.2.weight": 2, "stage8.0.1.beta": 3, "stage8.0.2.weight": 4,
        "stage1.residual_group1.blocks.0.norm1.gamma": 5, "stage1.residual_group1.blocks.0.norm2.beta": 6,
        "norm.gamma": 7, "spynet.basic_module.0.basic_module.0.weight": 12,
        "stage1.pa_deform.conv_offset.0.weight": 13,
    }


TINY = dict(img_size=[4, 40, 40], window_size=[2, 8, 8], depths=[1] * 8, indep_reconsts=[7], embed_dims=[12] * 8,
            num_heads=[1] * 8, deformable_groups=2)


@pytest.mark.slow
@pytest.mark.parametrize("pa_frames, upscale", [(4, 1), (6, 2)])
def test_vrt_builds_and_runs_other_pa_frames(pa_frames, upscale):
    """pa_frames 4 / 6 use grouped deformable conv and chained flows; check they run with the right shapes."""
    net = build_model("vrt", upscale=upscale, pa_frames=pa_frames, **TINY)
    x = ms.Tensor(np.random.default_rng(0).random((1, 4, 3, 40, 40), dtype=np.float32))
    out = net(x)
    assert out.shape == (1, 4, 3, 40 * upscale, 40 * upscale)
    assert np.isfinite(out.asnumpy()).all()


def test_vrt_frame_interpolation_branch_zero_body_returns_mean():
    """pa_frames = 0 (task 009): with zero output convolution the result is the clip mean per channel."""
    net = build_model("vrt", upscale=1, pa_frames=0, **dict(TINY, img_size=[4, 16, 16]))
    last = net.conv_last
    last.weight.set_data(ms.Tensor(np.zeros(last.weight.shape, np.float32)))
    last.bias.set_data(ms.Tensor(np.zeros(last.bias.shape, np.float32)))
    x = np.random.default_rng(1).random((1, 4, 3, 16, 16), dtype=np.float32)
    out = net(ms.Tensor(x)).asnumpy()
    assert out.shape == (1, 1, 3, 16, 16)
    np.testing.assert_allclose(out, np.broadcast_to(x.mean((1, 3, 4), keepdims=True), out.shape), atol=1e-6)


def test_vrt_input_checks():
    net = build_model("vrt", upscale=1, **TINY)
    with pytest.raises(ValueError, match="multiples of 8"):
        net(ms.Tensor(np.zeros((1, 2, 3, 44, 40), np.float32)))
    with pytest.raises(ValueError, match="exceed 32"):
        net(ms.Tensor(np.zeros((1, 2, 3, 32, 40), np.float32)))
    with pytest.raises(ValueError, match="input channels"):
        net(ms.Tensor(np.zeros((1, 2, 4, 40, 40), np.float32)))
    with pytest.raises(ValueError, match="same length"):
        build_model("vrt", depths=[1] * 8, embed_dims=[8] * 7, num_heads=[1] * 8)


@pytest.mark.slow
def test_memory_chunking_does_not_change_outputs(monkeypatch):
    """Attention over groups of windows, per-token feed-forward groups and the per-frame x2 head give the
    whole-tensor result (depth 2 per stage: mutual and shifted blocks; 64x64 so the 1/8 stage keeps 8x8 windows)."""
    from mindediting.models import vrt as vrt_module
    from mindediting.models.common import window_attention

    net = build_model("vrt", upscale=2, **dict(TINY, depths=[2] * 8, img_size=[2, 64, 64]))
    rng = np.random.default_rng(5)
    for name, param in net.parameters_and_names():
        if "conv_offset.6" in name:  # non-zero offsets so the deformable sampling is exercised too
            param.set_data(ms.Tensor(rng.normal(0, 0.01, param.shape).astype(np.float32)))
    x = ms.Tensor(rng.random((1, 2, 3, 64, 64), dtype=np.float32))
    whole = net(x).asnumpy()
    monkeypatch.setattr(window_attention, "ATTN_CHUNK_ELEMS", 3 * 128 * 128)  # 3 windows of 2x8x8 per group
    monkeypatch.setattr(window_attention, "TOKEN_CHUNK", 1000)
    monkeypatch.setattr(vrt_module, "HEAD_CHUNK_ELEMS", 64 * 4 * 64 * 64)  # one frame at a time
    calls = []
    attend = window_attention.TMSA._attend

    def counting(self, windows, mask):
        calls.append((windows.shape[0], None if mask is None else mask.shape[0]))
        return attend(self, windows, mask)

    monkeypatch.setattr(window_attention.TMSA, "_attend", counting)
    chunked = net(x).asnumpy()
    assert any(mask is not None for _, mask in calls)  # the shifted (masked) path was chunked too
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=2e-5)

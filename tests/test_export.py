"""export.py writes a MindIR that loads back and computes what the PyNative network computes."""
import mindspore as ms
import numpy as np
import pytest

import export as export_script
from mindediting.models import build_model


@pytest.mark.slow
def test_basicvsr_mindir_round_trip(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model:\n  name: basicvsr\n  args: {mid_channels: 4, num_blocks: 1}\n")
    net = build_model("basicvsr", mid_channels=4, num_blocks=1)
    ckpt = str(tmp_path / "tiny.ckpt")
    ms.save_checkpoint(net, ckpt)
    out = str(tmp_path / "mindir" / "tiny")
    assert export_script.main(["--config_path", str(cfg), "--ckpt", ckpt, "--input_shape", "1,3,3,32,32",
                               "--file_name", out]) == 0
    graph = ms.load(out + ".mindir")
    x = np.random.default_rng(0).random((1, 3, 3, 32, 32), dtype=np.float32)
    expected = net(ms.Tensor(x)).asnumpy()
    got = ms.nn.GraphCell(graph)(ms.Tensor(x)).asnumpy()
    assert got.shape == (1, 3, 3, 128, 128)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_bad_shape_is_one_line_error(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("model:\n  name: basicvsr\n")
    assert export_script.main(["--config_path", str(cfg), "--input_shape", "1,x,3", "--file_name", "o"]) == 2
    assert "must be comma-separated integers" in capsys.readouterr().err


def assert_mindir_round_trip(tmp_path, name, args, input_shape, output_shape, offset_std, seed):
    """export.py writes ``name`` (built with ``args``, random deformable-offset heads: not the zero default, so
    the deformable sampling really moves) as MindIR; the reloaded graph gives the network's output."""
    cfg = tmp_path / f"{name}_tiny.yaml"
    cfg.write_text(f"model:\n  name: {name}\n  args: " + repr(args).replace("'", "") + "\n")
    net = build_model(name, **args)
    rng = np.random.default_rng(seed)
    for param_name, param in net.parameters_and_names():
        if "conv_offset.6" in param_name:
            param.set_data(ms.Tensor(rng.normal(0, offset_std, param.shape).astype(np.float32)))
    ckpt = str(tmp_path / f"{name}_tiny.ckpt")
    ms.save_checkpoint(net, ckpt)
    out = str(tmp_path / "mindir" / f"{name}_tiny")
    assert export_script.main(["--config_path", str(cfg), "--ckpt", ckpt,
                               "--input_shape", ",".join(map(str, input_shape)), "--file_name", out]) == 0
    graph = ms.nn.GraphCell(ms.load(out + ".mindir"))
    x = rng.random(input_shape, dtype=np.float32)
    expected = net(ms.Tensor(x)).asnumpy()
    got = graph(ms.Tensor(x)).asnumpy()
    assert got.shape == output_shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@pytest.mark.slow
@pytest.mark.usefixtures("synchronous_pynative")
def test_vrt_mindir_round_trip(tmp_path):
    """A small VRT x2 (pa_frames 2: SpyNet, deformable alignment, window attention) exports and reloads."""
    args = dict(upscale=2, img_size=[4, 40, 40], window_size=[2, 8, 8], depths=[1] * 8, indep_reconsts=[7],
                embed_dims=[12] * 8, num_heads=[1] * 8, deformable_groups=2)
    assert_mindir_round_trip(tmp_path, "vrt", args, (1, 4, 3, 40, 40), (1, 4, 3, 80, 80), offset_std=0.01, seed=1)

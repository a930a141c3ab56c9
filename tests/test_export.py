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

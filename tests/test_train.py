"""BasicVSR training: loss, schedule, SPyNet freezing, checkpoints, and an interrupted run resumed = unbroken run."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tests.golden import REPO
from tests.test_datasets import make_tiny_reds


def test_charbonnier_and_cosine_restart_by_hand():
    import mindspore as ms

    from mindediting.engine.trainer import cosine_restart_lr
    from mindediting.losses import CharbonnierLoss

    pred = np.array([[0.5, 0.25], [1.0, 0.0]], np.float32)
    gt = np.array([[0.5, 0.0], [0.0, 0.0]], np.float32)
    loss = CharbonnierLoss(eps=1e-6)(ms.Tensor(pred), ms.Tensor(gt)).asnumpy()
    expected = (2 * math.sqrt(1e-6) + math.sqrt(0.0625 + 1e-6) + math.sqrt(1 + 1e-6)) / 4
    assert abs(float(loss) - expected) < 1e-7
    # one period of 10 iterations, base 1e-3, eta_min 1e-5: start, middle, after the end
    assert cosine_restart_lr(0, 1e-3, [10], [1.0], 1e-5) == pytest.approx(1e-3)
    assert cosine_restart_lr(5, 1e-3, [10], [1.0], 1e-5) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert cosine_restart_lr(12, 1e-3, [10], [1.0], 1e-5) == 1e-5
    # restart with weight 0.5 at iteration 10
    assert cosine_restart_lr(10, 1e-3, [10, 10], [1.0, 0.5], 0.0) == pytest.approx(0.5e-3)
    with pytest.raises(ValueError, match="differ in length"):
        cosine_restart_lr(0, 1e-3, [10, 10], [1.0], 0.0)


def tiny_config(root, total_iters=5, **train):
    gt_root, lq_root = make_tiny_reds(root, clips=("000", "001"), frames=4, size=(32, 48))
    opts = dict(dataset="reds", gt_root=gt_root, lq_root=lq_root, val_partition="none", num_frames=3,
                gt_patch_size=32, batch_size=1, num_workers=0, total_iters=total_iters, lr=1e-3,
                periods=[total_iters], restart_weights=[1.0], eta_min=1e-5, fix_iter=2, spynet_lr_mult=0.125,
                log_interval=1, val_interval=4, save_interval=2, keep_last=2, random_reverse=True)
    opts.update(train)
    return {
        "model": {"name": "basicvsr", "args": {"mid_channels": 4, "num_blocks": 1}},
        "train": opts,
        "data": {"dataset": "video_folder", "root": root, "gt_dir": "train_sharp", "lq_dir": "train_sharp_bicubic/X4",
                 "clips": ["001"], "num_frames": 3, "scale": 4},
        "eval": {"metrics": ["psnr"], "convert_to": "rgb", "crop_border": 0},
        "system": {"device_target": "CPU", "mode": "pynative", "seed": 3},
    }


def _log(run_dir):
    with open(os.path.join(run_dir, "log_rank0.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


class Crash(Exception):
    pass


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_losses(tmp_path):
    import mindspore as ms

    from mindediting.engine.checkpoint import load_checkpoint_strict
    from mindediting.engine.train_state import ResumeError, list_checkpoints, load_train_state
    from mindediting.engine.trainer import Trainer, cosine_restart_lr
    from mindediting.models import build_model

    cfg = tiny_config(str(tmp_path / "data"), total_iters=4, keep_last=1)
    unbroken = Trainer(cfg, run_dir=str(tmp_path / "a"), progress=False)
    spynet0 = {p.name: p.asnumpy().copy() for p in unbroken.flow_params}
    main0 = {p.name: p.asnumpy().copy() for p in unbroken.main_params}
    losses = unbroken.train()
    assert len(losses) == 4 and all(np.isfinite(losses))

    broken = Trainer(cfg, run_dir=str(tmp_path / "b"), progress=False)
    at_fix = {}

    def hook(step):
        if step == 2:  # end of the fix_iter phase: SPyNet untouched, its optimizer never stepped
            at_fix["flow"] = {p.name: p.asnumpy().copy() for p in broken.flow_params}
            at_fix["main"] = {p.name: p.asnumpy().copy() for p in broken.main_params}
            at_fix["steps"] = [int(o.state_step.asnumpy()) for o in broken.optimizers.values()]
        if step == 3:
            raise Crash("simulated kill after iteration 3")  # checkpoint 2 exists, iteration 3 is lost

    with pytest.raises(Crash):
        broken.train(on_step=hook)
    assert [s for s, _ in list_checkpoints(str(tmp_path / "b"))] == [2]
    for name, value in at_fix["flow"].items():
        np.testing.assert_array_equal(value, spynet0[name])
    assert any(not np.array_equal(v, main0[k]) for k, v in at_fix["main"].items())
    assert at_fix["steps"] == [2, 0]

    resumed = Trainer(cfg, run_dir=str(tmp_path / "b"), progress=False)
    tail = resumed.train(resume="auto")
    assert resumed.step == 4
    np.testing.assert_allclose(tail, losses[2:], rtol=0, atol=1e-7)  # iterations 3, 4 as in the unbroken run
    assert [int(o.state_step.asnumpy()) for o in resumed.optimizers.values()] == [4, 2]
    assert any(not np.array_equal(p.asnumpy(), spynet0[p.name]) for p in resumed.flow_params)

    log_a, log_b = _log(str(tmp_path / "a")), _log(str(tmp_path / "b"))
    train_a = [r for r in log_a if "loss" in r]
    train_b = [r for r in log_b if "loss" in r]
    assert [r["iter"] for r in train_b] == [1, 2, 3, 4]  # the lost iteration 3 was dropped and redone
    np.testing.assert_allclose([r["loss"] for r in train_b], [r["loss"] for r in train_a], rtol=0, atol=1e-7)
    assert [r["indices"] for r in train_b] == [r["indices"] for r in train_a]  # same data position
    expected_lr = [cosine_restart_lr(i, 1e-3, [4], [1.0], 1e-5) for i in range(4)]
    np.testing.assert_allclose([r["lr"] for r in train_a], expected_lr, rtol=1e-12)
    vals = [r["val"] for r in log_a if "val" in r]
    assert len(vals) == 1 and 10 < vals[0]["psnr"] < 60
    assert os.path.isfile(os.path.join(str(tmp_path / "a"), "val", "iter_00000004", "metrics.json"))
    assert log_a[-1]["final_param_sha1"] == log_b[-1]["final_param_sha1"]  # bit-identical final weights

    # keep_last=1: only the final checkpoint remains; eval.py's strict loader reads it
    ckpts = list_checkpoints(str(tmp_path / "a"))
    assert [s for s, _ in ckpts] == [4]
    net = load_checkpoint_strict(ckpts[-1][1], build_model("basicvsr", mid_channels=4, num_blocks=1))
    final = {p.name: p.asnumpy() for p in unbroken.net.get_parameters()}
    for p in net.get_parameters():
        np.testing.assert_array_equal(p.asnumpy(), final[p.name])

    weights = str(tmp_path / "w.ckpt")
    ms.save_checkpoint(net, weights)
    with pytest.raises(ResumeError, match="weights-only checkpoint"):
        load_train_state(weights, resumed.net, resumed.optimizers)


def test_cli_errors(tmp_path):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump({"model": {"name": "basicvsr"}, "train": {"gt_rot": "x"}}))
    script = os.path.join(REPO, "train.py")
    res = subprocess.run([sys.executable, script, "--config_path", str(cfg_path)], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 2 and "unknown key 'train.gt_rot'" in res.stderr
    res = subprocess.run([sys.executable, script, "--config_path", str(cfg_path), "--resume", str(tmp_path / "no.ckpt")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 2 and "no.ckpt: checkpoint to resume from not found" in res.stderr


def test_train_option_errors():
    from mindediting.engine.trainer import train_options

    with pytest.raises(ValueError, match="train.gt_root: required"):
        train_options({"train": {}})
    with pytest.raises(ValueError, match="train.amp_level 'O5' must be O0, O1, O2 or O3"):
        train_options({"train": {"gt_root": "a", "lq_root": "b", "amp_level": "O5"}})
    with pytest.raises(ValueError, match="train.batch_size must be >= 1, got 0"):
        train_options({"train": {"gt_root": "a", "lq_root": "b", "batch_size": 0}})
    with pytest.raises(ValueError, match="train.dataset 'div2k' must be reds or vimeo90k"):
        train_options({"train": {"gt_root": "a", "lq_root": "b", "dataset": "div2k"}})


def test_trainer_class_dispatch_and_unknown_model():
    from mindediting.engine.trainer import Trainer, trainer_class

    assert trainer_class("basicvsr") is Trainer
    assert trainer_class("vrt") is Trainer
    with pytest.raises(ValueError, match=r"model.name 'spynet': train.py trains basicvsr, efficientsci"):
        trainer_class("spynet")


@pytest.mark.slow
def test_vrt_trains_with_spynet_and_deformable_convs_fixed_first(tmp_path):
    """KAIR recipe names (fix_keys, fix_lr_mul, charbonnier_eps): SpyNet and DCN parameters stay fixed for
    fix_iter iterations and move afterwards; everything else moves from the first iteration."""
    from mindediting.engine.trainer import Trainer

    cfg = tiny_config(str(tmp_path / "data"), total_iters=3, fix_iter=2, num_frames=2, val_interval=0,
                      save_interval=3, fix_keys=["spynet", "deform"], fix_lr_mul=0.125, charbonnier_eps=1e-9,
                      loss="charbonnier", optimizer="adam", scheduler="cosine_restart", weight_decay=0.0)
    cfg["train"].pop("spynet_lr_mult")
    gt_root, lq_root = make_tiny_reds(str(tmp_path / "vrt_data"), clips=("000", "001"), frames=3, size=(160, 160))
    cfg["train"].update(gt_root=gt_root, lq_root=lq_root, gt_patch_size=160)  # LR 40x40: SpyNet needs > 32
    cfg["model"] = {"name": "vrt", "args": dict(upscale=4, img_size=[2, 40, 40], window_size=[2, 8, 8], depths=[1] * 8,
                                                indep_reconsts=[7], embed_dims=[8] * 8, num_heads=[1] * 8,
                                                deformable_groups=2, pa_frames=2)}
    trainer = Trainer(cfg, run_dir=str(tmp_path / "run"), progress=False)
    assert trainer.opts["spynet_lr_mult"] == 0.125 and trainer.opts["loss_eps"] == 1e-9
    fixed = {p.name for p in trainer.flow_params}
    assert any("spynet" in n for n in fixed) and any("pa_deform" in n for n in fixed)
    assert not any("spynet" in p.name or "deform" in p.name for p in trainer.main_params)
    snapshot = lambda: {p.name: p.asnumpy().copy() for p in trainer.net.trainable_params()}
    seen = [snapshot()]
    trainer.train(on_step=lambda step: seen.append(snapshot()))
    moved = [{n for n in seen[0] if not np.array_equal(seen[0][n], s[n])} for s in seen[1:]]
    assert not moved[1] & fixed  # after 2 iterations the fixed group is untouched
    assert moved[2] & fixed  # iteration 3 trains it
    assert moved[0] and not moved[0] & fixed
    cfg["train"]["optimizer"] = "sgd"
    with pytest.raises(ValueError, match="train.optimizer 'sgd': the video SR trainer implements adam only"):
        Trainer(cfg, run_dir=str(tmp_path / "run2"), progress=False)


@pytest.mark.parametrize("task", ["001", "002", "003", "004", "005", "006", "007"])
def test_vrt_task_configs_carry_the_kair_training_recipe(task):
    import glob

    from mindediting.config import load_config
    from mindediting.engine.trainer import train_options

    path = glob.glob(os.path.join(REPO, "configs", "vrt", f"{task}_*.yaml"))[0]
    opts = train_options(load_config(path))
    assert opts["fix_keys"] == ["spynet", "deform"] and opts["spynet_lr_mult"] == 0.125
    assert opts["fix_iter"] == 20000 and opts["lr"] == 4e-4 and opts["loss_eps"] == 1e-9
    assert opts["batch_size"] == 1 and opts["total_iters"] == 300000 and opts["eta_min"] == 1e-7
    assert opts["gt_patch_size"] == (256 if task < "005" else 192)
    assert opts["num_frames"] == (7 if task in ("003", "004") else 6)

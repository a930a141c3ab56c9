"""BasicVSR training: loss, schedule, SPyNet freezing, checkpoints, and an interrupted run resumed = unbroken run."""
import contextlib
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

    from mindediting.engine.video_trainer import cosine_restart_lr
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
                patch_size=32, batch_size=1, num_workers=0, total_iters=total_iters, lr=1e-3,
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

    from mindediting.convert.weights import load_weights
    from mindediting.engine.train_state import ResumeError, list_checkpoints, load_train_state
    from mindediting.engine.video_trainer import VideoTrainer, cosine_restart_lr
    from mindediting.models import build_model

    cfg = tiny_config(str(tmp_path / "data"), total_iters=4, keep_last=1)
    unbroken = VideoTrainer(cfg, run_dir=str(tmp_path / "a"), progress=False)
    spynet0 = {p.name: p.asnumpy().copy() for p in unbroken.flow_params}
    main0 = {p.name: p.asnumpy().copy() for p in unbroken.main_params}
    losses = unbroken.train()
    assert len(losses) == 4 and all(np.isfinite(losses))

    broken = VideoTrainer(cfg, run_dir=str(tmp_path / "b"), progress=False)
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

    resumed = VideoTrainer(cfg, run_dir=str(tmp_path / "b"), progress=False)
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
    net = load_weights(build_model("basicvsr", mid_channels=4, num_blocks=1), ckpts[-1][1])
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
    from mindediting.engine.video_trainer import train_options

    with pytest.raises(ValueError, match="train.gt_root: required"):
        train_options({"train": {}})
    with pytest.raises(ValueError, match="train.amp_level 'O5' must be O0, O1, O2 or O3"):
        train_options({"train": {"gt_root": "a", "lq_root": "b", "amp_level": "O5"}})
    with pytest.raises(ValueError, match="train.batch_size must be >= 1, got 0"):
        train_options({"train": {"gt_root": "a", "lq_root": "b", "batch_size": 0}})
    with pytest.raises(ValueError, match="train.dataset 'div2k' must be reds or vimeo90k"):
        train_options({"train": {"gt_root": "a", "lq_root": "b", "dataset": "div2k"}})


@pytest.mark.slow
def test_flow_init_zero_starts_spynet_at_zero_flow_and_the_sr_loss_moves_it(tmp_path):
    """train.flow_init zero: SPyNet's output is exactly zero before the first step (frames taken as aligned), and
    with fix_iter 0 the SR loss reaches its zeroed last layers (the gradient through a zero layer is not zero)."""
    import mindspore as ms

    from mindediting.engine.video_trainer import VideoTrainer, train_options

    cfg = tiny_config(str(tmp_path / "data"), total_iters=2, fix_iter=0, flow_init="zero", val_interval=0,
                      save_interval=2)
    trainer = VideoTrainer(cfg, run_dir=str(tmp_path / "run"), progress=False)
    frames = ms.Tensor(np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32))
    assert not trainer.net.spynet(frames, frames[:, :, ::-1]).asnumpy().any()
    last = trainer.net.spynet.basic_module[5].basic_module[-1].conv.weight
    trainer.train()
    assert np.abs(last.asnumpy()).max() > 0
    with pytest.raises(ValueError, match="train.flow_init 'random' must be model"):
        train_options({"train": {"gt_root": "a", "lq_root": "b", "flow_init": "random"}})
    cfg["model"] = {"name": "vrt", "args": dict(upscale=4, img_size=[2, 40, 40], window_size=[2, 8, 8], depths=[1] * 8,
                                                indep_reconsts=[7], embed_dims=[8] * 8, num_heads=[1] * 8,
                                                deformable_groups=2, pa_frames=2)}
    with pytest.raises(ValueError, match="train.flow_init zero: model 'vrt' has no SPyNet to start at zero flow"):
        VideoTrainer(cfg, run_dir=str(tmp_path / "vrt"), progress=False)


def test_each_model_names_its_trainer_in_the_registry():
    from mindediting import registry
    from mindediting.engine.sci_trainer import SCITrainer
    from mindediting.engine.spike_trainer import SpikeTrainer
    from mindediting.engine.video_trainer import VideoTrainer

    from mindediting.engine.flow_trainer import FlowTrainer

    trainers = {name: registry.get(name).entry("trainer", "training") for name in
                ("basicvsr", "vrt", "metasci", "efficientsci", "qsci", "spikling", "spynet")}
    assert trainers == {"basicvsr": VideoTrainer, "vrt": VideoTrainer, "metasci": SCITrainer,
                        "efficientsci": SCITrainer, "qsci": SCITrainer, "spikling": SpikeTrainer,
                        "spynet": FlowTrainer}
    with no_trainer_model() as name:
        with pytest.raises(ValueError, match=rf"model '{name}' \(flow\) has no trainer: training is not available"):
            registry.get(name).entry("trainer", "training")


@contextlib.contextmanager
def no_trainer_model():
    """A registered model without a trainer (every built-in model has one)."""
    from mindediting import registry

    spec = registry.register(registry.get("spynet").replace(name="spynet_untrainable", trainer=None))
    try:
        yield spec.name
    finally:
        registry.unregister(spec.name)


def _config_error(tmp_path, cfg):
    from mindediting.config import ConfigError, load_config

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    message = str(err.value)
    assert "\n" not in message
    return message.split(": ", 1)[1]


def test_renamed_train_keys_name_the_new_key(tmp_path):
    video = {"model": {"name": "basicvsr"}}
    assert _config_error(tmp_path, dict(video, train={"gt_patch_size": 64})) == \
        "train.gt_patch_size was renamed to train.patch_size"
    assert _config_error(tmp_path, dict(video, train={"fix_lr_mul": 0.1})) == \
        "train.fix_lr_mul was renamed to train.spynet_lr_mult"
    sci = {"model": {"name": "metasci"}}
    assert _config_error(tmp_path, dict(sci, train={"eval_interval": 1})).startswith(
        "train.eval_interval was renamed to train.val_interval (now counted in iterations, not epochs")
    assert _config_error(tmp_path, dict(sci, train={"seed": 0})) == "train.seed was renamed to system.seed"
    assert _config_error(tmp_path, dict(sci, train={"frames": 8})) == "train.frames was renamed to train.num_frames"
    spike = {"model": {"name": "spikling"}}
    assert _config_error(tmp_path, dict(spike, train={"save_dir": "runs/x"})) == \
        "train.save_dir was renamed to train.output_dir"
    assert _config_error(tmp_path, dict(spike, train={"loss": {"l2": 1.0}})).startswith(
        "train.loss {l2} was renamed to train.loss_weights")
    assert _config_error(tmp_path, dict(spike, train={"optimizer": {"name": "adam", "lr": 1e-3}})).startswith(
        "train.optimizer {name, lr, betas, weight_decay} was renamed to train.optimizer (the name), train.lr")


def test_a_key_the_chosen_trainer_does_not_read_is_refused(tmp_path):
    from mindediting.engine.sci_trainer import SCITrainer
    from mindediting.engine.video_trainer import VideoTrainer

    message = _config_error(tmp_path, {"model": {"name": "basicvsr"}, "train": {"crop_size": 64}})
    assert message == f"unknown key 'train.crop_size' for VideoTrainer (valid: {', '.join(VideoTrainer.SCHEMA)})"
    assert "patch_size" in message and "fix_iter" in message
    message = _config_error(tmp_path, {"model": {"name": "qsci"}, "train": {"fix_iter": 5}})
    assert message == f"unknown key 'train.fix_iter' for SCITrainer (valid: {', '.join(SCITrainer.SCHEMA)})"
    assert _config_error(tmp_path, {"model": {"name": "spikling"}, "train": {"window": "all"}}) == \
        "'train.window' should be int, got str ('all')"
    with no_trainer_model() as name:
        assert _config_error(tmp_path, {"model": {"name": name}, "train": {"lr": 1e-3}}) == \
            f"model '{name}' (flow) has no trainer: training is not available for it"
    # the trainers refuse the same keys when built from a dict that never went through load_config
    with pytest.raises(ValueError, match=r"^unknown key 'train.crop_size' for VideoTrainer \(valid: output_dir, "):
        VideoTrainer.options({"train": {"gt_root": "a", "lq_root": "b", "crop_size": 64}})


def test_hybrid_mode_is_refused_and_the_run_dir_holds_the_merged_config(tmp_path):
    from mindediting.engine.video_trainer import VideoTrainer

    cfg = tiny_config(str(tmp_path / "data"), total_iters=1)
    cfg["system"]["mode"] = "hybrid"
    with pytest.raises(ValueError) as err:
        VideoTrainer(cfg, run_dir=str(tmp_path / "hybrid"), progress=False)
    assert str(err.value) == ("system.mode hybrid is an inference mode (compiled stages in a PyNative loop); "
                              "use graph or pynative for training")
    assert not os.path.exists(tmp_path / "hybrid")

    cfg["system"]["mode"] = "pynative"
    run = tmp_path / "run"
    VideoTrainer(cfg, run_dir=str(run), progress=False)
    with open(run / "config.yaml", encoding="utf-8") as handle:
        assert yaml.safe_load(handle) == cfg
    assert [n for n in os.listdir(run) if n.startswith("config.yaml") and n != "config.yaml"] == []


@pytest.mark.slow
def test_graph_mode_training_matches_pynative(tmp_path):
    """``system.mode: graph`` compiles BasicVSR's step, in both phases (SPyNet fixed, then trained by its own Adam);
    same losses as PyNative. The graph run is a subprocess so the graph-mode context does not leak."""
    cfg = tiny_config(str(tmp_path / "data"), total_iters=3, fix_iter=1, val_interval=0, save_interval=3)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    eager, graph = str(tmp_path / "eager"), str(tmp_path / "graph")
    script = os.path.join(REPO, "train.py")
    for run_dir, mode in ((eager, "pynative"), (graph, "graph")):
        res = subprocess.run([sys.executable, script, "--config_path", str(path), "--output_dir", run_dir,
                              "--no_progress", "--mode", mode], cwd=REPO, capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, res.stderr[-2000:]
    rows_eager = [r for r in _log(eager) if "loss" in r]
    rows_graph = [r for r in _log(graph) if "loss" in r]
    assert [r["iter"] for r in rows_graph] == [1, 2, 3]
    assert [r["indices"] for r in rows_graph] == [r["indices"] for r in rows_eager]
    np.testing.assert_allclose([r["loss"] for r in rows_graph], [r["loss"] for r in rows_eager], rtol=1e-5)
    with open(os.path.join(graph, "config.yaml"), encoding="utf-8") as handle:
        assert yaml.safe_load(handle)["system"]["mode"] == "graph"  # the merged config, --mode included


@pytest.mark.slow
@pytest.mark.usefixtures("synchronous_pynative")
def test_vrt_trains_with_spynet_and_deformable_convs_fixed_first(tmp_path):
    """KAIR recipe (fix_keys, spynet_lr_mult, loss_eps): SpyNet and DCN parameters stay fixed for
    fix_iter iterations and move afterwards; everything else moves from the first iteration."""
    from mindediting.engine.video_trainer import VideoTrainer

    cfg = tiny_config(str(tmp_path / "data"), total_iters=3, fix_iter=2, num_frames=2, val_interval=0,
                      save_interval=3, fix_keys=["spynet", "deform"], spynet_lr_mult=0.125, loss_eps=1e-9,
                      loss="charbonnier", optimizer="adam", scheduler="cosine_restart", weight_decay=0.0)
    gt_root, lq_root = make_tiny_reds(str(tmp_path / "vrt_data"), clips=("000", "001"), frames=3, size=(160, 160))
    cfg["train"].update(gt_root=gt_root, lq_root=lq_root, patch_size=160)  # LR 40x40: SpyNet needs > 32
    cfg["model"] = {"name": "vrt", "args": dict(upscale=4, img_size=[2, 40, 40], window_size=[2, 8, 8], depths=[1] * 8,
                                                indep_reconsts=[7], embed_dims=[8] * 8, num_heads=[1] * 8,
                                                deformable_groups=2, pa_frames=2)}
    trainer = VideoTrainer(cfg, run_dir=str(tmp_path / "run"), progress=False)
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
    with pytest.raises(ValueError, match="train.optimizer 'sgd': VideoTrainer implements adam only"):
        VideoTrainer(cfg, run_dir=str(tmp_path / "run2"), progress=False)


@pytest.mark.parametrize("task", ["001", "002", "003", "004", "005", "006", "007"])
def test_vrt_task_configs_carry_the_kair_training_recipe(task):
    import glob

    from mindediting.config import load_config
    from mindediting.engine.video_trainer import train_options

    path = glob.glob(os.path.join(REPO, "configs", "vrt", f"{task}_*.yaml"))[0]
    opts = train_options(load_config(path))
    assert opts["fix_keys"] == ["spynet", "deform"] and opts["spynet_lr_mult"] == 0.125
    assert opts["fix_iter"] == 20000 and opts["lr"] == 4e-4 and opts["loss_eps"] == 1e-9
    assert opts["batch_size"] == 1 and opts["total_iters"] == 300000 and opts["eta_min"] == 1e-7
    assert opts["patch_size"] == (256 if task < "005" else 192)
    assert opts["num_frames"] == (7 if task in ("003", "004") else 6)


def test_init_from_loads_every_weight_before_flow_init(tmp_path):
    """train.init_from: the trainer's network starts with the file's weights (all of them: strict), and
    flow_init zero is applied after it (SPyNet's last layers zeroed, the rest as loaded); a missing file is named."""
    import mindspore as ms
    import numpy as np

    from mindediting.engine.video_trainer import VideoTrainer
    from mindediting.models import build_model

    cfg = tiny_config(str(tmp_path / "data"))
    ms.set_seed(123)
    source = build_model("basicvsr", **cfg["model"]["args"])
    for i, param in enumerate(source.trainable_params()):  # values no fresh build has
        param.set_data(ms.Tensor(np.full(param.shape, 0.01 * (i + 1), np.float32)))
    ckpt = str(tmp_path / "start.ckpt")
    ms.save_checkpoint(source, ckpt)
    expected = {p.name: p.asnumpy() for p in source.trainable_params()}

    cfg["train"].update(init_from=ckpt)
    trainer = VideoTrainer(cfg, run_dir=str(tmp_path / "run"), progress=False)
    got = {p.name: p.asnumpy() for p in trainer.net.trainable_params()}
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    trainer.loader.close()

    cfg["train"].update(flow_init="zero", output_dir=str(tmp_path / "run2"))
    trainer = VideoTrainer(cfg, run_dir=str(tmp_path / "run2"), progress=False)
    zeroed = [p.name for p in trainer.net.trainable_params() if not p.asnumpy().any()]
    assert zeroed and all(name.startswith("spynet.basic_module") for name in zeroed), zeroed
    for param in trainer.net.trainable_params():
        if param.name not in zeroed:
            np.testing.assert_array_equal(param.asnumpy(), expected[param.name], err_msg=param.name)
    trainer.loader.close()

    cfg["train"].update(init_from=str(tmp_path / "nope.ckpt"))
    with pytest.raises(FileNotFoundError, match=r"train.init_from: .*nope.ckpt not found"):
        VideoTrainer(cfg, run_dir=str(tmp_path / "run3"), progress=False)

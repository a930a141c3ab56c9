"""SPyNet pre-training: synthetic-flow pairs of real frames, FlowTrainer through train.py, and the hand-over of its
checkpoint to BasicVSR's ``spynet_pretrained``; the single-frame ablation of the evaluator."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


@pytest.fixture(scope="module")
def photo_frames(tmp_path_factory):
    """Two real photographs of scikit-image as two one-frame clips ``<root>/<clip>/00000000.png``."""
    import skimage.data

    from mindediting.data.video_io import write_png

    root = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee"):
        write_png(str(root / name / "00000000.png"), getattr(skimage.data, name)(), channel_order="RGB")
    return root


def test_random_flow_pure_translation_and_pure_zoom():
    from mindediting.data.flow_pairs import random_flow

    # translation only: one constant per axis, within max_shift, different for other seeds
    still = dict(max_rotate=0.0, max_zoom=0.0, max_local=0.0, limit=16.0)
    shifts = []
    for seed in (5, 6):
        flow = random_flow(np.random.default_rng(seed), 32, max_shift=6.0, **still)
        assert flow.shape == (2, 32, 32)
        np.testing.assert_array_equal(flow, flow[:, :1, :1] * np.ones((1, 32, 32), np.float32))
        shifts.append(flow[:, 0, 0])
    assert np.abs(shifts).max() <= 6.0 and np.abs(shifts[0] - shifts[1]).min() > 1e-3
    # zoom only: displacement (z - 1) * (x - centre), zero at the centre, along the axis
    zoom = random_flow(np.random.default_rng(1), 33, max_shift=0.0, max_rotate=0.0, max_zoom=0.1, max_local=0.0,
                       limit=16.0)
    z = 1 + zoom[0, 16, 32] / 16.0
    assert 0.9 <= z <= 1.1 and abs(z - 1) > 1e-3
    xs = np.arange(33) - 16.0
    np.testing.assert_allclose(zoom[0, 5], (z - 1) * xs, atol=1e-5)
    np.testing.assert_allclose(zoom[1][:, 7], (z - 1) * xs, atol=1e-5)
    # clipped to the margin
    big = random_flow(np.random.default_rng(2), 32, max_shift=40.0, max_rotate=0, max_zoom=0, max_local=0, limit=3.0)
    assert np.abs(big).max() <= 3.0


def test_pairs_follow_spynets_warp_convention_and_are_reproducible(photo_frames):
    """flow_warp(supp, flow) == ref wherever the flow points inside supp: the target is what SPyNet must output."""
    import mindspore as ms

    from mindediting.data.flow_pairs import SyntheticFlowSet
    from mindediting.models.common.flow_warp import flow_warp

    pairs = SyntheticFlowSet(str(photo_frames), patch_size=64, margin=16, gain=0.0, brightness=0.0, seed=3)
    assert len(pairs) == 2
    ref, supp, flow, guess = pairs.get(1, 4)
    assert ref.shape == supp.shape == (3, 64, 64) and flow.shape == guess.shape == (2, 64, 64)
    assert ref.dtype == supp.dtype == flow.dtype == guess.dtype == np.float32
    assert 0.1 < np.abs(guess - flow).mean() and np.abs(guess - flow).max() <= 32.0  # an imperfect estimate
    assert 0.5 < np.abs(flow).max() <= 16.0
    warped = flow_warp(ms.Tensor(supp[None]), ms.Tensor(flow.transpose(1, 2, 0)[None]), padding_mode="zeros")
    ys, xs = np.mgrid[0:64, 0:64]
    inside = (xs + flow[0] >= 0) & (xs + flow[0] <= 63) & (ys + flow[1] >= 0) & (ys + flow[1] <= 63)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(warped.asnumpy()[0][:, inside], ref[:, inside], atol=1e-5)
    assert np.abs(ref - supp).mean() > 0.01  # the pair differs: there is motion to find
    again = pairs.get(1, 4)
    for a, b in zip(again, (ref, supp, flow, guess)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(pairs.get(1, 5)[2], flow)  # another epoch, another flow


def test_pair_set_errors_name_the_setting_or_file(tmp_path, photo_frames):
    from mindediting.data.flow_pairs import SyntheticFlowSet
    from mindediting.data.video_io import write_png

    with pytest.raises(ValueError, match="train.patch_size 48: SPyNet works on multiples of 32"):
        SyntheticFlowSet(str(photo_frames), patch_size=48)
    with pytest.raises(ValueError, match="train.max_shift 20.0 must not exceed train.margin 16"):
        SyntheticFlowSet(str(photo_frames), max_shift=20.0)
    write_png(str(tmp_path / "tiny" / "00000000.png"), np.zeros((40, 90, 3), np.uint8))
    small = SyntheticFlowSet(str(tmp_path))
    with pytest.raises(ValueError, match=r"tiny/00000000: frame 90x40 is smaller than patch_size \+ 2 x margin = 96"):
        small.get(0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no frames"):
        SyntheticFlowSet(str(tmp_path / "empty"))


def test_flow_init_zero_starts_the_chain_at_the_zero_flow_error(tmp_path, photo_frames):
    """train.flow_init zero: every level adds nothing at the start, so the first validation scores exactly the
    zero-flow floor (the network as built drifts away from it); a wrong value names the key."""
    from mindediting.config import load_config
    from mindediting.engine.flow_trainer import FlowTrainer

    config = os.path.join(REPO, "configs", "spynet", "spynet_skvideo_train.yaml")
    common = [f"train.root={photo_frames}", f"train.val_root={photo_frames}", "train.val_samples=2",
              "train.batch_size=2", "system.mode=pynative"]
    scores = {}
    for init in ("model", "zero"):
        cfg = load_config(config, common + [f"train.flow_init={init}"])
        scores[init] = FlowTrainer(cfg, run_dir=str(tmp_path / init), progress=False).validate()
    assert scores["zero"]["epe"] == pytest.approx(scores["zero"]["epe_zero_flow"], abs=1e-6)
    assert scores["zero"]["epe_zero_flow"] == scores["model"]["epe_zero_flow"] > 0.5
    assert abs(scores["model"]["epe"] - scores["model"]["epe_zero_flow"]) > 1e-3
    with pytest.raises(ValueError, match="train.flow_init 'none' must be model"):
        FlowTrainer.options(load_config(config, common + ["train.flow_init=none"]))


def test_single_frame_ablation_hides_the_neighbours():
    """A toy 'temporal' restorer (each output frame = mean of the clip) gives the clip mean normally and each frame
    itself under eval.single_frame."""
    from mindediting.engine.evaluator import restore_clip

    lq = np.arange(4 * 1 * 2 * 2, dtype=np.float32).reshape(4, 1, 2, 2)
    calls = []

    def restore(clip):
        calls.append(len(clip))
        return np.repeat(clip.mean(axis=0, keepdims=True), len(clip), axis=0)

    np.testing.assert_allclose(restore_clip(restore, lq, {}), np.repeat(lq.mean(0, keepdims=True), 4, 0))
    np.testing.assert_array_equal(restore_clip(restore, lq, {"single_frame": 3}), lq)
    assert calls == [4, 3, 3, 3, 3]
    with pytest.raises(ValueError, match="eval.single_frame must be >= 0"):
        restore_clip(restore, lq, {"single_frame": -1})


@pytest.mark.slow
def test_train_py_trains_spynet_and_basicvsr_loads_it(tmp_path, photo_frames):
    """train.py with the spynet spec: logs EPE and the zero-flow floor at validation, writes curves.png, and its
    exported weights are what BasicVSR's spynet_pretrained loads."""
    import yaml

    from mindediting.convert.weights import read_weights
    from mindediting.models import build_model

    cfg = yaml.safe_load(open(os.path.join(REPO, "configs", "spynet", "spynet_skvideo_train.yaml")))
    cfg["train"].update(root=str(photo_frames), val_root=str(photo_frames), val_samples=3, batch_size=2,
                        patch_size=32, total_iters=4, periods=[4], log_interval=2, val_interval=2, save_interval=4)
    cfg_path = tmp_path / "spynet.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "train.py", "--config_path", str(cfg_path), "--output_dir", str(run),
                           "--no_progress"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    entries = [json.loads(line) for line in open(run / "log_rank0.jsonl")]
    losses = [e["loss"] for e in entries if "loss" in e]
    vals = [e["val"] for e in entries if "val" in e]
    assert len(losses) == 4 and all(np.isfinite(losses)) and len(vals) == 2
    assert vals[0]["pairs"] == 3 and vals[0]["epe_zero_flow"] == vals[1]["epe_zero_flow"] > 0.5  # fixed pairs
    assert os.path.getsize(run / "curves.png") > 1000
    ckpt = run / "checkpoints" / "iter_00000004.ckpt"
    dst = tmp_path / "spynet_fp16.ckpt"
    export = subprocess.run([sys.executable, "src/scripts/export_weights_fp16.py", "--config", str(cfg_path),
                             "--src", str(ckpt), "--dst", str(dst)], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert export.returncode == 0, export.stderr[-2000:]
    net = build_model("basicvsr", mid_channels=8, num_blocks=1, spynet_pretrained=str(dst))
    saved = read_weights(str(dst))
    loaded = {p.name[len("spynet."):]: p.asnumpy() for p in net.spynet.get_parameters()}
    assert set(loaded) == set(saved)
    for name, value in saved.items():
        np.testing.assert_array_equal(loaded[name], value.astype(np.float32))


def test_show_flow_draws_the_four_panels(tmp_path, photo_frames, capsys):
    """A SPyNet with all weights zero finds no motion: white flow panel, the same difference before and after
    warping; a wrong-size pair is a one-line error."""
    import cv2
    import mindspore as ms

    sys.path.insert(0, os.path.join(REPO, "src", "scripts"))
    from show_flow import main

    from mindediting.data.video_io import write_png
    from mindediting.models import build_model

    net = build_model("spynet")
    for p in net.trainable_params():
        p.set_data(ms.Tensor(np.zeros(p.shape, np.float32)))
    ckpt = str(tmp_path / "zero.ckpt")
    ms.save_checkpoint(net, ckpt)
    frame = cv2.resize(cv2.imread(str(photo_frames / "coffee" / "00000000.png")), (64, 48))
    write_png(str(tmp_path / "a.png"), frame, channel_order="BGR")
    write_png(str(tmp_path / "b.png"), np.roll(frame, 2, axis=1), channel_order="BGR")
    out = tmp_path / "flow.png"
    assert main(["--ckpt", ckpt, "--ref", str(tmp_path / "a.png"), "--supp", str(tmp_path / "b.png"),
                 "--output", str(out), "--scale", "1"]) in (0, None)
    printed = capsys.readouterr().out
    before, after = (float(v) for v in printed.split("mean |ref - supp| ")[1].split(" (of 255)")[0]
                     .split(", after warping "))
    assert before == after > 1.0 and "flow length mean 0.00 px" in printed
    picture = cv2.imread(str(out))
    assert picture.shape == (48, 4 * 64 + 3 * 2, 3)
    assert (picture[:, 66:130] == 255).all()  # zero flow is white in the Middlebury code
    np.testing.assert_array_equal(picture[:, :64], frame)
    write_png(str(tmp_path / "c.png"), frame[:40], channel_order="BGR")
    assert main(["--ckpt", ckpt, "--ref", str(tmp_path / "a.png"), "--supp", str(tmp_path / "c.png"),
                 "--output", str(tmp_path / "bad.png")]) == 2
    assert capsys.readouterr().err.strip().endswith("c.png: 64x40 differs from " + str(tmp_path / "a.png") + " (64x48)")
    assert not (tmp_path / "bad.png").exists()


def test_show_flow_takes_the_spynet_of_a_basicvsr_checkpoint(tmp_path, photo_frames, capsys):
    """A BasicVSR training checkpoint: show_flow draws the flow its SPyNet finds (the same as that SPyNet's own
    file gives); a checkpoint without SPyNet weights is a one-line error naming the file."""
    import cv2
    import mindspore as ms

    sys.path.insert(0, os.path.join(REPO, "src", "scripts"))
    from show_flow import main

    from mindediting.data.video_io import write_png
    from mindediting.models import build_model

    net = build_model("basicvsr", mid_channels=8, num_blocks=1)
    ms.save_checkpoint(net, str(tmp_path / "basicvsr.ckpt"))
    ms.save_checkpoint(net.spynet, str(tmp_path / "spynet.ckpt"))
    frame = cv2.resize(cv2.imread(str(photo_frames / "coffee" / "00000000.png")), (64, 48))
    write_png(str(tmp_path / "a.png"), frame, channel_order="BGR")
    write_png(str(tmp_path / "b.png"), np.roll(frame, 1, axis=0), channel_order="BGR")
    lines = []
    for name in ("basicvsr", "spynet"):
        assert main(["--ckpt", str(tmp_path / f"{name}.ckpt"), "--ref", str(tmp_path / "a.png"), "--supp",
                     str(tmp_path / "b.png"), "--output", str(tmp_path / f"{name}.png"), "--scale", "1"]) in (0, None)
        lines.append(capsys.readouterr().out.split(": ", 1)[1])
    assert lines[0] == lines[1] and "flow length mean 0.00 px" not in lines[0]
    assert (tmp_path / "basicvsr.png").read_bytes() == (tmp_path / "spynet.png").read_bytes()
    other = build_model("spikling")
    ms.save_checkpoint(other, str(tmp_path / "spikling.ckpt"))
    assert main(["--ckpt", str(tmp_path / "spikling.ckpt"), "--ref", str(tmp_path / "a.png"), "--supp",
                 str(tmp_path / "b.png"), "--output", str(tmp_path / "x.png")]) == 2
    assert "spikling.ckpt" in capsys.readouterr().err and not (tmp_path / "x.png").exists()

"""VRT training sets of tasks 008 (DAVIS denoising) and 009 (Vimeo-90K interpolation) on real frames, and a tiny
VRT trained on each through train.py (log, resume = same samples and losses)."""
import colorsys
import glob
import json
import os
import pickle

import cv2
import numpy as np
import pytest
import yaml

from mindediting.data.lmdb_io import write_lmdb
from mindediting.data.video_io import read_frames, sample_video
from mindediting.data.vrt_train import (DAVISDenoiseTrainSet, VimeoVFITrainSet, adjust_brightness, adjust_contrast,
                                        adjust_hue, adjust_saturation, apply_jitter, hsv_to_rgb, rgb_to_hsv)
from tests.golden import REPO


def _write(path, rgb, ext=".png"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == ".jpg" else []
    assert cv2.imwrite(path, np.ascontiguousarray(rgb[..., ::-1]), params)


def make_davis(root, clips=("bear", "bmx"), frames=5, size=(48, 64)):
    """DAVIS layout ``JPEGImages/480p/<clip>/<f:05d>.jpg`` cut from bikes.mp4 (different windows per clip)."""
    video = read_frames(sample_video("bikes"), max_frames=len(clips) * frames)
    h, w = size
    base = os.path.join(root, "JPEGImages", "480p")
    for c, clip in enumerate(clips):
        for f in range(frames):
            frame = video[c * frames + f, 30: 30 + h, 80 + 70 * c: 80 + 70 * c + w]
            _write(os.path.join(base, clip, f"{f:05d}.jpg"), frame, ".jpg")
    return base


def make_vimeo(root, septuplets=("00001/0001", "00001/0002"), size=(40, 56)):
    """Vimeo-90K layout ``sequences/<seq>/im1..7.png`` + ``sep_trainlist.txt`` from carphone_pristine.mp4."""
    video = read_frames(sample_video("carphone_pristine"), max_frames=7 * len(septuplets))
    h, w = size
    seq_root = os.path.join(root, "sequences")
    for s, seq in enumerate(septuplets):
        for i in range(7):
            _write(os.path.join(seq_root, seq, f"im{i + 1}.png"), video[7 * s + i, 20: 20 + h, 30: 30 + w])
    meta = os.path.join(root, "sep_trainlist.txt")
    with open(meta, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{seq}\n" for seq in septuplets))
    return seq_root, meta


def _frame(path):
    return cv2.imread(path)[..., ::-1].astype(np.float32) / 255.0


def _locate(patch_hwc, frame_hwc, strict=True):
    """(top, left) where ``patch`` sits in ``frame`` (exact match); None (or an assertion) when nowhere."""
    ph, pw = patch_hwc.shape[:2]
    for top in range(frame_hwc.shape[0] - ph + 1):
        for left in range(frame_hwc.shape[1] - pw + 1):
            if np.array_equal(frame_hwc[top:top + ph, left:left + pw], patch_hwc):
                return top, left
    assert not strict, "patch not found in frame"
    return None


NO_AUG = dict(use_hflip=False, use_vflip=False, use_transpose=False)


def test_davis_denoise_samples_noise_and_sigma_map(tmp_path):
    root = make_davis(str(tmp_path))
    ds = DAVISDenoiseTrainSet(root, num_frames=3, gt_patch_size=32, seed=5, **NO_AUG)
    assert len(ds) == 10 and ds.clips["bear"] == ["00000", "00001", "00002", "00003", "00004"]
    sigmas = []
    for index in range(len(ds)):
        lq, gt = ds.get(index, epoch=0)
        assert lq.shape == (3, 4, 32, 32) and gt.shape == (3, 3, 32, 32)
        assert lq.dtype == np.float32 and gt.dtype == np.float32
        level = lq[0, 3, 0, 0]
        np.testing.assert_array_equal(lq[:, 3], np.full((3, 32, 32), level, np.float32))  # constant sigma map
        assert 0.0 <= level <= 50 / 255
        noise = lq[:, :3] - gt
        assert abs(noise.mean()) < 4 * level / np.sqrt(noise.size) + 1e-7
        assert abs(noise.std() / level - 1) < 0.05  # 9216 draws: std of the estimate ~0.7%
        sigmas.append(level)
        # the GT frames are consecutive frames of one clip at one crop position, starting at the sample's
        # frame unless the window would run past the clip end (then a random start, as upstream)
        clip, start = ds.samples[index]
        clip_frames = [_frame(os.path.join(root, clip, name + ".jpg")) for name in ds.clips[clip]]
        found = [(k, _locate(gt[0].transpose(1, 2, 0), clip_frames[k])) for k in range(3)
                 if _locate(gt[0].transpose(1, 2, 0), clip_frames[k], strict=False)]
        assert len(found) == 1
        k, (top, left) = found[0]
        for t in range(3):
            np.testing.assert_array_equal(gt[t].transpose(1, 2, 0), clip_frames[k + t][top:top + 32, left:left + 32])
        assert k == start if start <= 2 else 0 <= k <= 2
    assert len(set(sigmas)) == len(sigmas)  # one level per sample
    # a fixed level (sigma_min == sigma_max == 30): the map is exactly 30/255 (float32, as torch's uniform_)
    fixed = DAVISDenoiseTrainSet(root, num_frames=3, gt_patch_size=32, sigma_min=30, sigma_max=30, seed=5)
    lq, gt = fixed.get(0)
    assert lq[0, 3, 0, 0] == np.float32(30 / 255)
    assert abs((lq[:, :3] - gt).std() * 255 / 30 - 1) < 0.05
    # same (seed, epoch, index): same sample; another epoch: another draw
    np.testing.assert_array_equal(fixed.get(3, 1)[0], fixed.get(3, 1)[0])
    assert not np.array_equal(fixed.get(3, 1)[0], fixed.get(3, 2)[0])


def test_davis_denoise_lmdb_equals_folder_and_meta_errors(tmp_path):
    root = make_davis(str(tmp_path / "d"))
    keys = [f"{c}/{f:05d}" for c in ("bear", "bmx") for f in range(5)]
    lmdb_path = str(tmp_path / "train_GT.lmdb")
    write_lmdb([os.path.join(root, k + ".jpg") for k in keys], keys, lmdb_path, progress=False)
    meta = tmp_path / "meta_info_DAVIS_train_GT.txt"
    meta.write_text("bear 5 (48,64,3) 00000\nbmx 5 (48,64,3) 00000\n")  # KAIR meta_info format
    folder = DAVISDenoiseTrainSet(root, num_frames=4, gt_patch_size=40, seed=1)
    store = DAVISDenoiseTrainSet(lmdb_path, meta_file=str(meta), num_frames=4, gt_patch_size=40, seed=1)
    for index in (0, 4, 7):
        for a, b in zip(folder.get(index, 2), store.get(index, 2)):
            np.testing.assert_array_equal(a, b)
    copy = pickle.loads(pickle.dumps(store))  # as sent to TrainLoader worker processes
    store.gt.close()  # one LMDB environment per process
    for a, b in zip(folder.get(4, 2), copy.get(4, 2)):
        np.testing.assert_array_equal(a, b)
    meta.write_text("bear 6 (48,64,3) 00000\n")
    with pytest.raises(ValueError, match="clip 'bear' is listed with 6 frames but .*has 5"):
        DAVISDenoiseTrainSet(lmdb_path, meta_file=str(meta), num_frames=4, gt_patch_size=40)
    with pytest.raises(ValueError, match="clip 'bear' has 5 frames, fewer than num_frames x max interval = 6"):
        DAVISDenoiseTrainSet(root, num_frames=3, interval_list=[2])
    with pytest.raises(ValueError, match="train.sigma_min 60 / train.sigma_max 50"):
        DAVISDenoiseTrainSet(root, sigma_min=60, sigma_max=50)


def test_vimeo_vfi_inputs_are_frames_1357_and_target_4(tmp_path):
    seq_root, meta = make_vimeo(str(tmp_path))
    frames = {i: _frame(os.path.join(seq_root, "00001/0002", f"im{i}.png")) for i in range(1, 8)}
    ds = VimeoVFITrainSet(seq_root, meta, gt_patch_size=32, random_reverse=True, color_jitter=False, seed=2, **NO_AUG)
    orders = set()
    for epoch in range(8):
        lq, gt = ds.get(1, epoch)
        assert lq.shape == (4, 3, 32, 32) and gt.shape == (1, 3, 32, 32)
        top, left = _locate(gt[0].transpose(1, 2, 0), frames[4])
        shown = []
        for k in range(4):
            crop = lq[k].transpose(1, 2, 0)
            shown.append(next(i for i in range(1, 8)
                              if np.array_equal(frames[i][top:top + 32, left:left + 32], crop)))
        orders.add(tuple(shown))
    assert orders == {(1, 3, 5, 7), (7, 5, 3, 1)}  # random_reverse flips the order, the target stays im4
    # flips/transpose: one of the 8 dihedral transforms, the same for the inputs and the target (same crop)
    plain = VimeoVFITrainSet(seq_root, meta, gt_patch_size=32, random_reverse=False, color_jitter=False, seed=2,
                             **NO_AUG)
    aug = VimeoVFITrainSet(seq_root, meta, gt_patch_size=32, random_reverse=False, color_jitter=False, seed=2)
    seen = set()
    for epoch in range(6):
        (lq0, gt0), (lq1, gt1) = plain.get(0, epoch), aug.get(0, epoch)
        matches = [(h, v, t) for h in (0, 1) for v in (0, 1) for t in (0, 1)
                   if np.array_equal(_dihedral(lq0, h, v, t), lq1) and np.array_equal(_dihedral(gt0, h, v, t), gt1)]
        assert matches
        seen.add(matches[0])
    assert len(seen) > 1
    # colour jitter (KAIR: ColorJitter(0.05, 0.05, 0.05, 0.05)): one draw for all five frames, small changes
    jit = VimeoVFITrainSet(seq_root, meta, gt_patch_size=32, random_reverse=False, color_jitter=True, seed=2,
                           **NO_AUG)
    (lq0, gt0), (lq1, gt1) = plain.get(1, 0), jit.get(1, 0)
    assert 0 < np.abs(lq1 - lq0).max() < 0.2 and 0 < np.abs(gt1 - gt0).max() < 0.2
    assert lq1.min() >= 0 and lq1.max() <= 1
    with pytest.raises(ValueError, match="train.color_jitter 'yes'"):
        VimeoVFITrainSet(seq_root, meta, color_jitter="yes")


def _dihedral(x, h, v, t):
    """h-flip, v-flip, then H/W transpose of (T, C, H, W), in the order of transforms.augment."""
    if h:
        x = x[..., ::-1]
    if v:
        x = x[..., ::-1, :]
    if t:
        x = x.swapaxes(-1, -2)
    return x


def test_color_jitter_by_hand():
    px = lambda *rgb: np.array(rgb, np.float32).reshape(1, 3, 1, 1)  # noqa: E731
    np.testing.assert_allclose(adjust_brightness(px(0.5, 0.2, 0.98), 1.05).ravel(), [0.525, 0.21, 1.0], atol=1e-7)
    # contrast blends with the frame's mean grey (0.2989 r + 0.587 g + 0.114 b), per frame
    two = np.concatenate([px(1.0, 1.0, 1.0), px(0.0, 0.0, 0.0)])
    white_grey = 0.2989 + 0.587 + 0.114  # 0.9999, as torchvision
    np.testing.assert_allclose(adjust_contrast(two, 0.5).reshape(2, 3), [[0.5 + 0.5 * white_grey] * 3, [0.0] * 3],
                               atol=1e-6)
    grey = 0.2989 * 0.8 + 0.587 * 0.4 + 0.114 * 0.2
    np.testing.assert_allclose(adjust_contrast(px(0.8, 0.4, 0.2), 0.5).ravel(),
                               0.5 * np.array([0.8, 0.4, 0.2]) + 0.5 * grey, atol=1e-6)
    np.testing.assert_allclose(adjust_saturation(px(0.8, 0.4, 0.2), 0.0).ravel(), [grey] * 3, atol=1e-6)
    # hue: red shifted by 1/3 turn is green, by -1/3 blue; HSV round trip
    np.testing.assert_allclose(adjust_hue(px(1, 0, 0), 1 / 3).ravel(), [0, 1, 0], atol=1e-6)
    np.testing.assert_allclose(adjust_hue(px(1, 0, 0), -1 / 3).ravel(), [0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(rgb_to_hsv(px(0.8, 0.4, 0.2)).ravel(), [20 / 360, 0.75, 0.8], atol=1e-6)
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 8, 8), dtype=np.float32)
    x[0, :, 0, 0] = 0.5  # a grey pixel: hue and saturation 0
    np.testing.assert_allclose(hsv_to_rgb(rgb_to_hsv(x)), x, atol=2e-6)
    # the same HSV as Python's colorsys (the Pillow / torchvision formulas)
    pixels = x.transpose(0, 2, 3, 1).reshape(-1, 3).astype(np.float64)
    ref = np.array([colorsys.rgb_to_hsv(*p) for p in pixels])
    np.testing.assert_allclose(rgb_to_hsv(x).transpose(0, 2, 3, 1).reshape(-1, 3), ref, atol=2e-6)
    back = np.array([colorsys.hsv_to_rgb(*p) for p in ref])
    hsv = ref.reshape(2, 8, 8, 3).transpose(0, 3, 1, 2).astype(np.float32)
    np.testing.assert_allclose(hsv_to_rgb(hsv).transpose(0, 2, 3, 1).reshape(-1, 3), back, atol=2e-6)
    # the order matters: brightness then contrast differs from contrast then brightness only by clipping
    y1 = apply_jitter(x, [0, 1, 2, 3], [1.05, 0.95, 1.0, 0.0])
    y2 = adjust_contrast(adjust_brightness(x, 1.05), 0.95)
    np.testing.assert_allclose(y1, y2, atol=2e-6)


def _tiny_vrt(task):
    common = dict(upscale=1, depths=[1] * 8, embed_dims=[8] * 8, num_heads=[1] * 8)
    if task == "008":
        return dict(img_size=[2, 40, 40], window_size=[2, 8, 8], indep_reconsts=[7], pa_frames=2,
                    deformable_groups=2, nonblind_denoising=True, **common)
    return dict(img_size=[4, 32, 32], window_size=[4, 8, 8], indep_reconsts=[], pa_frames=0, **common)


def _config(tmp_path, task):
    """The task's shipped config with its train section pointed at tiny data and a tiny VRT."""
    with open(glob.glob(os.path.join(REPO, "configs", "vrt", f"{task}_*.yaml"))[0], encoding="utf-8") as handle:
        cfg = yaml.safe_load(handle)
    cfg["model"]["args"] = _tiny_vrt(task)
    train = cfg["train"]
    if task == "008":
        train.update(gt_root=make_davis(str(tmp_path / "davis")), num_frames=2, patch_size=40)
    else:
        seq_root, meta = make_vimeo(str(tmp_path / "vimeo"))
        train.update(gt_root=seq_root, meta_file=meta, patch_size=32)
    train.update(total_iters=2, periods=[2], fix_iter=1, batch_size=1, num_workers=0, log_interval=1,
                 val_interval=0, save_interval=1, keep_last=3, recompute=False, output_dir=str(tmp_path / "run"))
    cfg["data"]["root"] = None  # no validation set
    # PyNative: these runs check the data and the resume. The configs' graph mode compiles each step function of
    # each run (008: 569 s instead of 59 s here); tests/test_vrt_graph_train.py checks the compiled step
    cfg["system"].update(mode="pynative", seed=7)
    path = tmp_path / f"{task}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _train_log(run_dir):
    with open(os.path.join(run_dir, "log_rank0.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if "loss" in line]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["008", "009"])
@pytest.mark.usefixtures("synchronous_pynative")
def test_tiny_vrt_trains_through_train_py_and_resumes(tmp_path, task):
    import train

    cfg = _config(tmp_path, task)
    run_a, run_b = str(tmp_path / "a"), str(tmp_path / "b")
    assert train.main(["--config_path", cfg, "--output_dir", run_a, "--no_progress"]) == 0
    log_a = _train_log(run_a)
    assert [r["iter"] for r in log_a] == [1, 2]
    assert all(np.isfinite(r["loss"]) and 0 < r["loss"] < 1 for r in log_a)
    assert all(len(r["indices"]) == 1 for r in log_a)
    # resumed from iteration 1's checkpoint in another run directory: iteration 2 draws the same samples (and the
    # same stochastic-depth masks: VRT drop_path_rate 0.2) and gives the same loss
    ckpt = os.path.join(run_a, "checkpoints", "iter_00000001.ckpt")
    assert os.path.isfile(ckpt)
    assert train.main(["--config_path", cfg, "--output_dir", run_b, "--no_progress", "--resume", ckpt]) == 0
    log_b = _train_log(run_b)
    assert [r["iter"] for r in log_b] == [2]
    assert log_b[0]["indices"] == log_a[1]["indices"]
    assert abs(log_b[0]["loss"] - log_a[1]["loss"]) <= 1e-6


@pytest.mark.parametrize("task", ["008", "009"])
def test_task_configs_build_their_training_sets(tmp_path, task):
    """The shipped 008/009 train sections: KAIR values; with the roots pointed at tiny data they build the sets."""
    from mindediting.config import load_config
    from mindediting.engine.video_trainer import build_train_set, train_options

    opts = train_options(load_config(_config(tmp_path, task)))
    with open(glob.glob(os.path.join(REPO, "configs", "vrt", f"{task}_*.yaml"))[0], encoding="utf-8") as handle:
        shipped = train_options(yaml.safe_load(handle))
    assert shipped["patch_size"] == 192 and shipped["lr"] == 4e-4 and shipped["loss_eps"] == 1e-9
    assert shipped["total_iters"] == 300000 and shipped["eta_min"] == 1e-7 and shipped["batch_size"] == 1
    ds = build_train_set(opts, 1, 7)
    if task == "008":
        assert (shipped["dataset"], shipped["num_frames"], shipped["sigma_min"], shipped["sigma_max"]) == \
            ("davis_denoise", 6, 0, 50)
        assert shipped["fix_keys"] == ["spynet", "deform"] and shipped["fix_iter"] == 20000
        assert shipped["frame_ext"] == ".jpg" and shipped["random_reverse"] is False
        assert isinstance(ds, DAVISDenoiseTrainSet) and ds.get(0)[0].shape == (2, 4, 40, 40)
    else:
        assert (shipped["dataset"], shipped["num_frames"], shipped["color_jitter"]) == ("vimeo_vfi", 7, True)
        assert shipped["fix_keys"] == [] and shipped["random_reverse"] is True
        assert isinstance(ds, VimeoVFITrainSet) and ds.jitter == 0.05
        assert [a.shape for a in ds.get(0)] == [(4, 3, 32, 32), (1, 3, 32, 32)]


def test_train_option_errors_of_the_vrt_sets(tmp_path):
    from mindediting.engine.video_trainer import build_train_set, train_options

    opts = train_options({"train": {"dataset": "vimeo_vfi", "gt_root": str(tmp_path)}})  # no lq_root needed
    with pytest.raises(ValueError, match="train.meta_file: required for vimeo_vfi"):
        build_train_set(opts, 1, 0)
    opts["meta_file"] = "x.txt"
    with pytest.raises(ValueError, match="train.num_frames 15: vimeo_vfi reads septuplets"):
        build_train_set(opts, 1, 0)
    with pytest.raises(ValueError, match="train.gt_root: required"):
        train_options({"train": {"dataset": "davis_denoise"}})
    with pytest.raises(ValueError, match="train.dataset 'davis' must be reds or vimeo90k .* davis_denoise"):
        train_options({"train": {"dataset": "davis", "gt_root": "a"}})
    opts = train_options({"train": {"dataset": "davis_denoise", "gt_root": str(tmp_path / "none")}})
    with pytest.raises(ValueError, match="none: data folder not found"):
        build_train_set(opts, 1, 0)


def test_resolve_module_strings():
    from mindediting import registry
    from mindediting.engine.video_trainer import VideoTrainer
    from mindediting.utils.resolve import resolve

    assert resolve("mindediting.engine.video_trainer:VideoTrainer") is VideoTrainer
    assert registry.get("vrt").entry("trainer", "training") is VideoTrainer
    assert registry.get("vrt").cell_class().__name__ == "VRT"
    with pytest.raises(ValueError, match="'mindediting.engine.video_trainer:Nope': module "
                                         "mindediting.engine.video_trainer has no"):
        resolve("mindediting.engine.video_trainer:Nope")
    with pytest.raises(ValueError, match="'mindediting.engine.video_trainer': expected 'package.module:Name'"):
        resolve("mindediting.engine.video_trainer")

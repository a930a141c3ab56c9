"""VRT test-set readers (main_test_vrt.py layouts) on tiny on-disk copies of real footage, and eval.py on them."""
import json
import os

import cv2
import mindspore as ms
import numpy as np
import pytest
import yaml

import eval as eval_script
from mindediting.data.video_io import read_image
from mindediting.data.video_sr_test import build_test_set
from mindediting.data.vrt_testsets import (
    TESTSETS, VRTClip, build_vrt_test_set, center_crop_box, torch_cpu_normal,
)
from mindediting.metrics import to_uint8, vrt_protocol_metrics
from mindediting.models import build_model
from mindediting.utils.matlab_resize import imresize

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# torch.manual_seed(0); torch.randn(4, 4) on CPU (the values every torch user has seen)
TORCH_RANDN_SEED0 = [-1.1258, -1.1524, -0.2506, -0.4339, 0.8487, 0.6920, -0.3160, -2.1152,
                     0.3223, -1.2633, 0.3500, 0.3081, 0.1198, 1.2377, 1.1168, -0.2473]


def _write(path, rgb):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))


def _lr(frame):
    return np.clip(np.round(imresize(frame.astype(np.float32) / 255.0, 0.25) * 255), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def crops(frames):
    """Two 64x64 'clips' of 3 real frames each, cut from the bikes footage."""
    return {"calendar": frames[:3, 100:164, 200:264], "city": frames[:3, 150:214, 400:464]}


def _paired_layout(root, gt_dir, lq_dir, crops, lq_fn=_lr, lq_names="{:08d}.png"):
    for clip, frames in crops.items():
        for i, frame in enumerate(frames):
            _write(root / gt_dir / clip / f"{i:08d}.png", frame)
            _write(root / lq_dir / clip / lq_names.format(i), lq_fn(frame))


@pytest.mark.parametrize("dataset", ["vrt_reds4", "vrt_vid4", "vrt_udm10", "vrt_dvd10", "vrt_gopro11"])
def test_paired_layouts_pair_frames_by_position(tmp_path, crops, dataset):
    gt_dir, lq_dir = TESTSETS[dataset]["gt_dir"], TESTSETS[dataset]["lq_dir"]
    blur = dataset in ("vrt_dvd10", "vrt_gopro11")
    lq_fn = (lambda f: cv2.GaussianBlur(f, (5, 5), 1.5)) if blur else _lr
    # upstream pairs sorted files by position, so LQ files may be named differently (DVD: 00000.jpg-like names)
    _paired_layout(tmp_path, gt_dir, lq_dir, crops, lq_fn, lq_names="f{:03d}.png")
    clips = build_test_set({"dataset": dataset, "root": str(tmp_path)})  # through video_sr_test's hook
    assert [c.name for c in clips] == ["calendar", "city"]
    for clip in clips:
        assert isinstance(clip, VRTClip) and clip.score_indices == [0, 1, 2]
        assert [os.path.basename(f) for f in clip.lq_files] == ["f000.png", "f001.png", "f002.png"]
        assert [os.path.basename(f) for f in clip.gt_files] == ["00000000.png", "00000001.png", "00000002.png"]
        lq = clip.read_lq()
        size = 64 if blur else 16
        assert lq.shape == (3, 3, size, size) and lq.dtype == np.float32
        expected = np.stack([lq_fn(f) for f in crops[clip.name]]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        np.testing.assert_array_equal(lq, expected)
        np.testing.assert_array_equal(clip.read_gt(2), crops[clip.name][2])
    one = build_vrt_test_set({"dataset": dataset, "root": str(tmp_path), "clips": ["city"], "num_frames": 2})
    assert [c.name for c in one] == ["city"] and len(one[0].lq_files) == 2 and one[0].score_indices == [0, 1]


def test_paired_errors_name_the_folder(tmp_path, crops):
    with pytest.raises(FileNotFoundError, match=r"data.root: vrt_vid4 test set folder not found: .*nowhere.*Vid4"):
        build_vrt_test_set({"dataset": "vrt_vid4", "root": str(tmp_path / "nowhere")})
    _paired_layout(tmp_path, "GT", "BIx4", crops)
    with pytest.raises(FileNotFoundError, match=r"data.lq_dir: folder not found: .*BDx4$"):
        build_vrt_test_set({"dataset": "vrt_vid4", "root": str(tmp_path), "lq_dir": "BDx4"})
    with pytest.raises(FileNotFoundError, match=r"data.clips: clip folder\(s\) \['walk'\] not found"):
        build_vrt_test_set({"dataset": "vrt_vid4", "root": str(tmp_path), "clips": ["walk"]})
    os.remove(tmp_path / "BIx4" / "city" / "00000002.png")
    with pytest.raises(ValueError, match="clip city: 2 input frames in .*BIx4.city but 3 ground-truth frames"):
        build_vrt_test_set({"dataset": "vrt_vid4", "root": str(tmp_path)})


def _vimeo_layout(root, frames, lq_sub=None, sequences=("00001/0266", "00002/0010")):
    for k, seq in enumerate(sequences):
        for i in range(7):
            frame = frames[(i + k) % len(frames), 100:164, 200 + 8 * i:264 + 8 * i]
            _write(root / "vimeo_septuplet" / "sequences" / seq / f"im{i + 1}.png", frame)
            if lq_sub:
                _write(root / lq_sub / seq / f"im{i + 1}.png", _lr(frame))
    (root / "vimeo_septuplet" / "sep_testlist.txt").write_text("".join(f"{s} (64,64,3)\n" for s in sequences) + "\n")


def test_vimeo90k_t_pads_to_8_frames_and_scores_centre(tmp_path, frames):
    _vimeo_layout(tmp_path, frames, "vimeo_septuplet_matlabLRx4/sequences")
    clips = build_vrt_test_set({"dataset": "vrt_vimeo90k_t", "root": str(tmp_path)})
    assert [c.name for c in clips] == ["00001/0266", "00002/0010"]
    clip = clips[1]
    names = [os.path.relpath(f, tmp_path) for f in clip.lq_files]
    assert names == [f"vimeo_septuplet_matlabLRx4/sequences/00002/0010/im{i}.png" for i in (1, 2, 3, 4, 5, 6, 7, 7)]
    assert clip.gt_files == [str(tmp_path / "vimeo_septuplet/sequences/00002/0010/im4.png")]
    assert clip.score_indices == [3]
    lq = clip.read_lq()
    assert lq.shape == (8, 3, 16, 16)
    np.testing.assert_array_equal(lq[7], lq[6])
    os.remove(tmp_path / "vimeo_septuplet_matlabLRx4/sequences/00001/0266/im5.png")
    with pytest.raises(FileNotFoundError, match="Vimeo-90K sequence 00001/0266: missing .*im5.png"):
        build_vrt_test_set({"dataset": "vrt_vimeo90k_t", "root": str(tmp_path)})


def test_vfi_vimeo_uses_odd_frames_and_scores_im4(tmp_path, frames):
    _vimeo_layout(tmp_path, frames)
    clip = build_vrt_test_set({"dataset": "vrt_vfi_vimeo90k", "root": str(tmp_path)})[0]
    assert [os.path.basename(f) for f in clip.lq_files] == ["im1.png", "im3.png", "im5.png", "im7.png"]
    assert os.path.basename(clip.gt_files[0]) == "im4.png" and clip.score_indices == [0]
    assert clip.read_lq().shape == (4, 3, 64, 64)


def test_center_crop_box_follows_torchvision():
    assert center_crop_box(480, 854, (480, 840)) == (0, 7, (0, 0, 0, 0))  # DAVIS 480p
    assert center_crop_box(481, 855, (480, 840)) == (0, 8, (0, 0, 0, 0))  # round(0.5) = 0, round(7.5) = 8
    assert center_crop_box(256, 256, (224, 224)) == (16, 16, (0, 0, 0, 0))  # UCF101
    assert center_crop_box(272, 640, (480, 840)) == (0, 0, (100, 104, 100, 104))  # smaller: zero padding


def test_vfi_ucf101_quintuples_cropped(tmp_path, frames):
    for k, clip in enumerate(["1", "21"]):
        for i, name in enumerate(["frame0", "frame1", "framet", "frame2", "frame3"]):
            _write(tmp_path / clip / f"{name}.png", frames[i, 8 * k:8 * k + 256, 100 + 8 * i:356 + 8 * i])
    clips = build_vrt_test_set({"dataset": "vrt_vfi_ucf101", "root": str(tmp_path)})
    assert [c.name for c in clips] == ["1", "21"]
    clip = clips[1]
    assert [os.path.basename(f) for f in clip.lq_files] == ["frame0.png", "frame1.png", "frame2.png", "frame3.png"]
    lq = clip.read_lq()
    assert lq.shape == (4, 3, 224, 224)
    crop = frames[3, 8 + 16:8 + 240, 100 + 24 + 16:100 + 24 + 240]  # frame2.png = frames[3], crop offset 16
    np.testing.assert_array_equal(lq[2], crop.transpose(2, 0, 1) / np.float32(255))
    np.testing.assert_array_equal(clip.read_gt(0), frames[2, 8 + 16:8 + 240, 100 + 16 + 16:100 + 16 + 240])


def test_vfi_davis_quintuples_every_second_start(tmp_path, frames):
    big = [cv2.resize(f, (855, 481), interpolation=cv2.INTER_AREA) for f in frames]
    for i in range(10):
        path = tmp_path / "bear" / f"{i:05d}.jpg"
        os.makedirs(path.parent, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(big[i % 6], cv2.COLOR_RGB2BGR))
    clips = build_vrt_test_set({"dataset": "vrt_vfi_davis", "root": str(tmp_path)})
    assert [c.name for c in clips] == ["bear/00003", "bear/00005"]  # starts 0 and 2 (range(0, 10 - 6, 2))
    assert [os.path.basename(f) for f in clips[1].lq_files] == ["00002.jpg", "00004.jpg", "00006.jpg", "00008.jpg"]
    assert os.path.basename(clips[1].gt_files[0]) == "00005.jpg" and clips[1].score_indices == [0]
    lq, gt = clips[0].read_lq(), clips[0].read_gt(0)
    assert lq.shape == (4, 3, 480, 840) and gt.shape == (480, 840, 3)
    np.testing.assert_array_equal(gt, read_image(str(tmp_path / "bear/00003.jpg"))[0:480, 8:848])


def test_torch_cpu_normal_reproduces_torch_randn_seed0():
    np.testing.assert_allclose(torch_cpu_normal((4, 4)).ravel(), TORCH_RANDN_SEED0, atol=6e-5)
    tail = torch_cpu_normal((20,))  # size not a multiple of 16: torch redraws the last 16 values
    np.testing.assert_allclose(tail[:4], TORCH_RANDN_SEED0[:4], atol=6e-5)
    assert not np.allclose(tail[4:8], TORCH_RANDN_SEED0[4:8], atol=1e-2)
    big = torch_cpu_normal((3, 3, 64, 64))
    np.testing.assert_array_equal(big.ravel()[:16], torch_cpu_normal((16,)))  # one stream, blocks of 16
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1) < 0.02
    with pytest.raises(ValueError, match="fewer than 16"):
        torch_cpu_normal((3, 5))


@pytest.mark.parametrize("dataset", ["vrt_set8", "vrt_davis_test"])
def test_denoising_input_is_seeded_noise_plus_sigma_channel(tmp_path, frames, dataset):
    for clip in ("motorbike", "tractor"):
        for i in range(3):
            _write(tmp_path / clip / f"{i:05d}.png", frames[i, 64:128, 128:224])
    with pytest.raises(ValueError, match=f"data.sigma: {dataset} needs a positive noise level"):
        build_vrt_test_set({"dataset": dataset, "root": str(tmp_path)})
    clips = build_vrt_test_set({"dataset": dataset, "root": str(tmp_path), "sigma": 30})
    assert [c.name for c in clips] == ["motorbike", "tractor"]
    clip = clips[0]
    assert clip.lq_files == clip.gt_files and clip.score_indices == [0, 1, 2] and clip.sigma == 30
    lq = clip.read_lq()
    assert lq.shape == (3, 4, 64, 96) and lq.dtype == np.float32
    np.testing.assert_array_equal(lq[:, 3], np.float32(30 / 255))  # upstream: noise_level channel
    gt = frames[:3, 64:128, 128:224].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    noise = lq[:, :3] - gt
    # the first values are torch's seed-0 stream scaled by sigma/255, no clipping (values below 0 or above 1 kept)
    np.testing.assert_allclose(noise.ravel()[:16] * 255 / 30, TORCH_RANDN_SEED0, atol=2e-4)
    assert abs(noise.std() * 255 - 30) < 0.6 and abs(noise.mean() * 255) < 0.6
    assert (lq[:, :3] < 0).any() or (lq[:, :3] > 1).any()
    np.testing.assert_array_equal(clip.read_lq(), lq)  # reseeded for every read, as upstream per clip
    np.testing.assert_array_equal(clips[1].read_lq()[:, :3] - gt, noise)  # same shape -> same noise in every clip
    np.testing.assert_array_equal(clip.read_gt(1), frames[1, 64:128, 128:224])


def _config(tmp_path, task, **sections):
    path = os.path.join(REPO, "configs", "vrt", task)
    with open(path, encoding="utf-8") as handle:
        cfg = yaml.safe_load(handle)
    for section, values in sections.items():
        cfg[section].update(values)
    out = tmp_path / "cfg.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return str(out)


def test_eval_denoising_baseline_is_noisy_input_psnr(tmp_path, frames, capsys):
    """eval.py with the real 008 config and no checkpoint scores the noisy input: PSNR ~ 20 log10(255 / sigma)."""
    for i in range(3):
        _write(tmp_path / "Set8" / "rafting" / f"{i:05d}.png", frames[i, 64:192, 128:320])
    cfg = _config(tmp_path, "008_VRT_videodenoising_DAVIS.yaml", data={"root": str(tmp_path / "Set8"), "sigma": 25})
    assert eval_script.main(["--config_path", cfg, "--output_dir", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert result["channel"] == "RGB and Y (VRT protocol)"
    assert [(r["clip"], r["frames"]) for r in result["clips"]] == [("rafting", 3)]
    # uint8 rounding and clamping at 0/255 shave a little off the Gaussian MSE, so slightly above 20.17 dB
    assert 20 * np.log10(255 / 25) < result["average"]["psnr"] < 20 * np.log10(255 / 25) + 0.6
    assert "noisy input (no --ckpt given)" in capsys.readouterr().out


def test_eval_vfi_baseline_and_missing_folder(tmp_path, frames, capsys):
    _vimeo_layout(tmp_path / "vimeo90k", frames, sequences=("00001/0266",))
    cfg = _config(tmp_path, "009_VRT_videofi_Vimeo_4frames.yaml", data={"root": str(tmp_path / "vimeo90k")})
    assert eval_script.main(["--config_path", cfg, "--output_dir", str(tmp_path / "out")]) == 0
    seq = tmp_path / "vimeo90k/vimeo_septuplet/sequences/00001/0266"
    im3, im5 = (read_image(str(seq / f"im{i}.png")) / np.float32(255) for i in (3, 5))
    mean = 0.5 * (im3 + im5)
    expected = vrt_protocol_metrics(to_uint8(mean.astype(np.float32)), read_image(str(seq / "im4.png")))
    result = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert result["clips"][0]["clip"] == "00001/0266" and result["clips"][0]["frames"] == 1
    for key in ("psnr", "ssim", "psnr_y", "ssim_y"):
        assert result["average"][key] == pytest.approx(expected[key], abs=1e-9)
    capsys.readouterr()
    argv = ["--config_path", cfg, f"data.root={tmp_path / 'UCF101'}", "data.dataset=vrt_vfi_ucf101"]
    assert eval_script.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: data.root: vrt_vfi_ucf101 test set folder not found: ")
    assert str(tmp_path / "UCF101") in err


TINY_X4 = dict(upscale=4, img_size=[2, 40, 40], window_size=[2, 8, 8], depths=[1] * 8, indep_reconsts=[7],
               embed_dims=[12] * 8, num_heads=[1] * 8, pa_frames=2, deformable_groups=2, nonblind_denoising=False)


@pytest.mark.slow
def test_eval_vrt_checkpoint_on_vid4_layout(tmp_path, frames, capsys):
    """eval.py + a tiny random-weight VRT checkpoint on a Vid4 layout: CSV/JSON rows equal our own forward's scores."""
    gt = frames[:2, 60:220, 200:360]  # 2 real frames, 160x160 -> LR 40x40
    for i, frame in enumerate(gt):
        _write(tmp_path / "Vid4" / "GT" / "walk" / f"{i:08d}.png", frame)
        _write(tmp_path / "Vid4" / "BIx4" / "walk" / f"{i:08d}.png", _lr(frame))
    net = build_model("vrt", **TINY_X4)
    ms.save_checkpoint(net, str(tmp_path / "tiny.ckpt"))
    cfg = _config(tmp_path, "003_VRT_videosr_bi_Vimeo_7frames.yaml", model={"args": TINY_X4},
                  data={"root": str(tmp_path / "Vid4")}, eval={"tile": [0, 0, 0], "tile_overlap": [0, 0, 0]})
    out = tmp_path / "out"
    # as the model card runs VRT's eval: PyNative (the config's graph mode is for training; compiled, 120 s here)
    code = eval_script.main(["--config_path", cfg, "--ckpt", str(tmp_path / "tiny.ckpt"), "--mode", "pynative",
                             "--output_dir", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"vrt ({tmp_path / 'tiny.ckpt'}), blend tiling (upstream VRT test_video)\n")
    assert "PSNR_Y" in printed

    lq = np.stack([_lr(f) for f in gt]).transpose(0, 3, 1, 2)[None].astype(np.float32) / 255.0
    pred = net(ms.Tensor(lq)).asnumpy()[0]
    scores = [vrt_protocol_metrics(to_uint8(pred[i].transpose(1, 2, 0)), gt[i]) for i in range(2)]
    expected = {k: float(np.mean([s[k] for s in scores])) for k in ("psnr", "ssim", "psnr_y", "ssim_y")}
    result = json.loads((out / "metrics.json").read_text())
    assert [(r["clip"], r["frames"]) for r in result["clips"]] == [("walk", 2)]
    for key, value in expected.items():
        assert result["clips"][0][key] == pytest.approx(value, abs=1e-6)
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0] == "clip,frames,psnr,ssim,psnr_y,ssim_y"
    assert rows[1].startswith("walk,2,") and float(rows[1].split(",")[4]) == pytest.approx(expected["psnr_y"], abs=1e-5)


class _FakeVRT:
    """Stands in for the network under the evaluator's blend tiling: VFI -> mean over the input frames (what VRT's pa_frames 0
    branch gives with a zero body), denoising -> the noisy RGB channels."""

    def __init__(self, vfi):
        self.vfi, self.calls = vfi, []

    def __call__(self, x):
        x = x.asnumpy()
        self.calls.append(x.shape)
        return ms.Tensor(x.mean(1, keepdims=True) if self.vfi else x[:, :, :3])


def test_vrt_fn_wiring_for_vfi_and_denoising(tmp_path, frames):
    from mindediting.config import load_config
    from mindediting.engine import video_task
    from mindediting.engine.evaluator import evaluate
    from mindediting.engine.inference import network_fn

    _vimeo_layout(tmp_path / "vimeo90k", frames, sequences=("00001/0266",))
    cfg = load_config(_config(tmp_path, "009_VRT_videofi_Vimeo_4frames.yaml",
                              data={"root": str(tmp_path / "vimeo90k")}))
    net = _FakeVRT(vfi=True)
    result = evaluate(network_fn(net), cfg, progress=False, tiling="blend")
    assert net.calls == [(1, 4, 3, 64, 64)]  # im1, im3, im5, im7 in one call (tile 0)
    seq = tmp_path / "vimeo90k/vimeo_septuplet/sequences/00001/0266"
    inputs = np.stack([read_image(str(seq / f"im{i}.png")) for i in (1, 3, 5, 7)]).astype(np.float32) / 255.0
    expected = vrt_protocol_metrics(to_uint8(inputs.mean(0)), read_image(str(seq / "im4.png")))
    assert result["average"]["psnr"] == pytest.approx(expected["psnr"], abs=1e-9)
    assert result["average"]["ssim_y"] == pytest.approx(expected["ssim_y"], abs=1e-9)

    for i in range(3):
        _write(tmp_path / "Set8" / "snowboard" / f"{i:05d}.png", frames[i, 64:128, 128:224])
    cfg = load_config(_config(tmp_path, "008_VRT_videodenoising_DAVIS.yaml", data={"root": str(tmp_path / "Set8")},
                              eval={"tile": [2, 48, 48], "tile_overlap": [1, 16, 16]}))
    net = _FakeVRT(vfi=False)
    denoised = evaluate(network_fn(net), cfg, progress=False, tiling="blend")
    assert net.calls[0] == (1, 2, 4, 48, 48) and len(net.calls) == 2 * 2 * 3  # 2 temporal clips x 2 rows x 3 columns
    noisy, _ = video_task.baseline(cfg, 1)
    baseline = evaluate(noisy, cfg, progress=False, tiling="none")
    assert denoised["average"]["psnr"] == pytest.approx(baseline["average"]["psnr"], abs=1e-4)
    assert 20 * np.log10(255 / 10) < baseline["average"]["psnr"] < 20 * np.log10(255 / 10) + 0.6

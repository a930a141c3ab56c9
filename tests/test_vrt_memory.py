"""VRT tiled inference memory (issue 5): the network only ever sees one tile-sized patch, whatever the clip
length, and the 1080p tile setting keeps peak memory under 8 GB.

Peak memory of ``test_video`` (the function eval.py runs for VRT) is the network's peak on one patch plus the
numpy arrays it blends into, which grow with the clip: :func:`tiling_buffer_bytes` counts them and
``test_1080p_buffers_match_the_count`` checks the count against the real VmHWM at 1080p with a cheap stand-in
network. The slow test measures the official 001 REDS model (random weights: memory does not depend on them;
loaded with eval.py's ``load_network``, so with its PyNative runtime hints) on one real patch of the 1080p tile.
Both measurements run in a fresh subprocess so its VmHWM is its own.
"""
import json
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest

from mindediting.engine.tiling import count_model_calls, test_video as run_video
from mindediting.utils.peak_rss import own_peak_rss

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CONFIG_001 = os.path.join(REPO, "configs", "vrt", "001_VRT_videosr_bi_REDS_6frames.yaml")
TILE_1080P, OVERLAP_1080P = [12, 64, 64], [2, 20, 20]  # eval.tile / eval.tile_overlap for 1080p output
LR_1080P, SCALE = (270, 480), 4  # x4 SR: 270x480 LR -> 1080x1920
FRAMES_1080P = 100  # clip length of the 1080p budget below (a REDS-length clip in one eval call)
LIMIT_BYTES = 8 * 1024 ** 3
MIB = 1024.0 ** 2
# allocator growth over many calls, on top of one patch's VmHWM plus the counted buffers: a 12-frame 1080p run
# (64 stand-in patches, then 2 real ones) ended 26 MiB above that sum; 6 -> 24 frames of the default tile (1 -> 6
# calls) raised VmHWM by 103 MB, ~18 MiB of them the larger blended outputs
ALLOWANCE_BYTES = 256 * 1024 ** 2


def tiling_buffer_bytes(frames, height, width, scale, tile_frames):
    """Upper bound of the numpy memory ``test_video`` holds for a (1, frames, 3, height, width) float32 clip
    with ``tile_frames`` > 0: the input, the clip-level sum (frames outputs, divided in place at the end) and,
    while a temporal clip runs, ``test_clip``'s sum (tile frames outputs, divided in place) and its one-plane
    weight (height*scale x width*scale). Outputs are float32 3 x (height*scale) x (width*scale)."""
    plane = height * scale * width * scale * 4
    t = min(tile_frames, frames)
    return frames * 3 * height * width * 4 + (frames + t) * 3 * plane + plane


class RecordingX4:
    """Stands in for the network: nearest x4 upsampling; records the input shape of every call."""

    def __init__(self):
        self.shapes = []

    def __call__(self, x):
        arr = x.asnumpy()
        self.shapes.append(arr.shape)
        return ms.Tensor(arr.repeat(SCALE, axis=3).repeat(SCALE, axis=4))


def real_lr_clip(frames, height, width):
    """``frames`` LR frames (1, D, 3, height, width) in [0, 1]: a bikes.mp4 crop, area-downscaled x1/4."""
    import cv2

    from mindediting.data.video_io import read_frames, sample_video

    hr = read_frames(sample_video("bikes"), max_frames=frames)[:, : height * SCALE, : width * SCALE]
    lr = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in hr]
    return (np.stack(lr).transpose(0, 3, 1, 2).astype(np.float32) / 255.0)[None]


def _worker(case, ckpt=None):
    """Subprocess body: one tiled run, prints a JSON line with VmHWM before and after."""
    import time

    from mindediting.engine.tiling import test_video

    if case == "standin_1080p":  # 6 frames of 1080p output, temporal tile 4 (2 clips), the 1080p patch size
        tile = [4] + TILE_1080P[1:]
        clip = np.random.default_rng(0).random((1, 6, 3) + LR_1080P, dtype=np.float32)
        net, window = RecordingX4(), [6, 8, 8]
        net(ms.Tensor(clip[:, :tile[0], :, :tile[1], :tile[2]]))  # warm-up outside the measured growth
        net.shapes.clear()
    else:  # the official 001 model on one real patch of the 1080p tile, loaded the way eval.py loads it
        from mindediting.config import load_config
        from mindediting.engine.runtime import load_network

        tile = TILE_1080P
        cfg = load_config(CONFIG_001, ["system.mode=pynative"])  # eval.py --mode pynative, VRT's inference mode
        clip = real_lr_clip(tile[0], tile[1], tile[2])
        model, window = load_network(cfg, ckpt), cfg["model"]["args"]["window_size"]
        shapes = []

        def net(x):
            shapes.append(tuple(x.shape))
            return model(x)

        net.shapes = shapes
    base = own_peak_rss()
    start, cpu = time.perf_counter(), time.process_time()
    out = test_video(clip, net, SCALE, window, tile, OVERLAP_1080P)
    print(json.dumps({"base": base, "peak": own_peak_rss(), "shape": list(out.shape), "calls": len(net.shapes),
                      "patch": list(net.shapes[0]), "finite": bool(np.isfinite(out).all()),
                      "mean": float(out.mean()), "in_mean": float(clip.mean()), "tile": tile,
                      "seconds": round(time.perf_counter() - start, 1),
                      "cpu_seconds": round(time.process_time() - cpu, 1)}))


def _run_worker(case, timeout, ckpt=None):
    code = f"from tests.test_vrt_memory import _worker; _worker({case!r}, {ckpt!r})"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, f"worker {case} failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(lines[-1])


def test_longer_clip_more_calls_same_patch_shape():
    # default bench tile [6, 64, 64] / [2, 20, 20] on a 64x64 LR crop: temporal clips start every 4 frames
    for frames, calls in [(6, 1), (12, 3), (24, 6), (48, 12)]:
        lq = np.random.default_rng(frames).random((1, frames, 3, 64, 64), dtype=np.float32)
        net = RecordingX4()
        out = run_video(lq, net, SCALE, [6, 8, 8], [6, 64, 64], [2, 20, 20])
        np.testing.assert_allclose(out, lq.repeat(4, axis=3).repeat(4, axis=4), rtol=0, atol=1e-6)
        assert len(net.shapes) == calls == count_model_calls(lq.shape, [6, 64, 64], [2, 20, 20])
        assert set(net.shapes) == {(1, 6, 3, 64, 64)}
    # 1080p (270x480 LR) with the 1080p tile: rows start at 0, 44, 88, 132, 176, 206 (stride 44, the last one
    # moved back to the border)
    # -> 6 rows x 11 columns = 66 patches per temporal clip; 100 frames -> clips at 0, 10, ..., 80, 88
    assert count_model_calls((1, 12, 3) + LR_1080P, TILE_1080P, OVERLAP_1080P) == 66
    assert count_model_calls((1, FRAMES_1080P, 3) + LR_1080P, TILE_1080P, OVERLAP_1080P) == 10 * 66


def test_buffer_count_by_hand():
    frame = 3 * 1080 * 1920 * 4  # one float32 1080p output frame, 23.73 MiB
    lr = frame // 16
    plane = frame // 3  # test_clip's weight: one output-size plane
    assert tiling_buffer_bytes(100, 270, 480, 4, 12) == 100 * lr + 112 * frame + plane
    assert tiling_buffer_bytes(6, 270, 480, 4, 4) == 6 * lr + (6 + 4) * frame + plane
    assert tiling_buffer_bytes(5, 270, 480, 4, 12) == 5 * lr + (5 + 5) * frame + plane  # tile longer than the clip


def test_1080p_buffers_match_the_count():
    """Real 1080p-sized tiled run (6 frames, 2 temporal clips x 66 patches) with a stand-in network: the VmHWM
    growth is the counted numpy buffers, so the count can be added to the network's own peak."""
    row = _run_worker("standin_1080p", timeout=300)
    assert row["shape"] == [1, 6, 3, 1080, 1920] and row["calls"] == 2 * 66 and row["patch"] == [1, 4, 3, 64, 64]
    assert abs(row["mean"] - row["in_mean"]) < 1e-4  # nearest x4 keeps the mean: every pixel was blended
    bound = tiling_buffer_bytes(6, 270, 480, 4, 4) - 6 * 3 * 270 * 480 * 4  # the input existed at the base
    # the bound counts 6 + 4 = 10 frames and a weight plane; the real peak is the 10 frames: right after the
    # second clip (frames 2-5) is added, the clip-level sum holds all 6 frames (pages of the lazily zeroed sum
    # count once written) and the clip's result 4 more, its weight plane already freed
    exact = 10 * 3 * 1080 * 1920 * 4
    grown = row["peak"] - row["base"]
    assert exact - 16 * MIB <= grown <= bound + 32 * MIB, (grown / MIB, exact / MIB, bound / MIB)


@pytest.mark.slow
def test_1080p_tile_official_model_under_8gb(tmp_path):
    """Official 001 REDS widths (30.7 M parameters) on one real 12x64x64 bikes.mp4 patch (the 1080p tile):
    VmHWM plus the numpy buffers of a 100-frame 1080p clip (and the allowance) stays under 8 GiB."""
    pytest.importorskip("skvideo")
    from mindediting.config import load_config
    from mindediting.models import build_model

    ckpt = str(tmp_path / "random_001.ckpt")  # random weights, written here so the worker only loads them
    ms.save_checkpoint(build_model("vrt", **load_config(CONFIG_001)["model"]["args"]), ckpt)
    row = _run_worker("official_patch", 1800, ckpt)
    assert row["shape"] == [1, 12, 3, 256, 256] and row["finite"] and row["calls"] == 1
    assert row["patch"] == [1] + TILE_1080P[:1] + [3] + TILE_1080P[1:]
    total = row["peak"] + tiling_buffer_bytes(FRAMES_1080P, *LR_1080P, SCALE, TILE_1080P[0]) + ALLOWANCE_BYTES
    print(f"official 001 patch {row['tile']}: VmHWM {row['peak'] / MIB:.0f} MiB (base {row['base'] / MIB:.0f}), "
          f"{row['seconds']} s wall, {row['cpu_seconds']} s CPU; + {FRAMES_1080P}-frame 1080p buffers = "
          f"{total / MIB:.0f} MiB with the allowance")
    assert total < LIMIT_BYTES, f"{total / MIB:.0f} MiB >= 8 GiB"

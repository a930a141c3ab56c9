"""Integrate-and-fire spike simulation (golden spike_simulation) and src/scripts/video_to_spike.py."""
import os

import cv2
import numpy as np
import pytest

from mindediting.data.spike_io import load_spike_dat, load_spike_npz
from mindediting.data.spike_simulation import (
    IntegrateAndFire,
    crop_box,
    grey_frame,
    read_video_frames,
    spike_windows,
    video_to_spike,
)
from src.scripts import video_to_spike as script
from tests.golden import golden_dir, load, load_config

NEED = ("clip_bgr.npy", "adder_init.npy", "spikes.npy", "tags.npy", "window_0001.npz.npz", "window_0002.npz.npz")


def test_simulation_matches_upstream(tmp_path):
    folder = golden_dir("spike_simulation", need=NEED)
    params = load_config(folder)["params"]
    clip, size, window = load(folder, "clip_bgr.npy"), tuple(params["size_wh"]), params["window"]
    np.random.seed(params["seed"])
    np.testing.assert_array_equal(IntegrateAndFire(size).adder, load(folder, "adder_init.npy"))
    np.random.seed(params["seed"])
    windows = list(spike_windows(iter(clip), size, window))
    np.testing.assert_array_equal(np.stack([w[0] for w in windows]), load(folder, "spikes.npy"))
    np.testing.assert_array_equal(np.stack([w[1] for w in windows]), load(folder, "tags.npy"))
    # the writer: same .npz files as upstream (byte for byte) and the whole stream as .dat
    np.random.seed(params["seed"])
    pattern = str(tmp_path / "clip-{:04d}.npz")
    files = video_to_spike(iter(clip), size, window, pattern, dat_path=tmp_path / "clip.dat")
    assert [os.path.basename(f) for f in files] == ["clip-0001.npz", "clip-0002.npz"]
    for i, path in enumerate(files):
        with open(path, "rb") as mine, open(os.path.join(folder, f"window_{i + 1:04d}.npz.npz"), "rb") as ref:
            assert mine.read() == ref.read()
    stream = load_spike_dat(tmp_path / "clip.dat", *size)
    assert stream.shape == (len(clip), size[1], size[0])  # every frame, the dropped tail window too
    np.testing.assert_array_equal(stream[:2 * window].reshape(2, window, size[1], size[0]), load(folder, "spikes.npy"))


def test_integrate_and_fire_by_hand():
    sim = IntegrateAndFire((2, 1), initial=np.array([[0.0, 254.5]]))
    grey = np.array([[100, 1]], np.uint8)
    got = np.stack([sim.step(grey) for _ in range(6)])[:, 0]
    # pixel 0: 100, 200, 300->fire(45), 145, 245, 345->fire; pixel 1: 255.5 fires at once, then 0.5 + 5
    np.testing.assert_array_equal(got[:, 0], [0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(got[:, 1], [1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(sim.adder, [[90.0, 5.5]])
    with pytest.raises(ValueError, match=r"initial accumulator must be \(H, W\) = \(1, 2\)"):
        IntegrateAndFire((2, 1), initial=np.zeros((2, 2)))


def test_crop_and_grey_conversion():
    assert crop_box(100, 60, 40, 30) == (0, 60, 10, 90)  # 4:3 out of 5:3 -> crop columns
    assert crop_box(40, 60, 40, 30) == (15, 45, 0, 40)
    frame = np.zeros((60, 100, 3), np.uint8)
    frame[..., 0] = 200  # blue channel of a BGR frame
    # upstream applies RGB2GRAY to BGR data: the 0.299 weight falls on blue
    assert grey_frame(frame, (40, 30))[0, 0] == round(0.299 * 200)


def _write_video(path, frames):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, frames[0].shape[1::-1])
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def test_video_to_spike_script(tmp_path, capsys):
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    frames = [np.roll(base, i, axis=1) for i in range(40)]
    video = tmp_path / "moving.mp4"
    _write_video(video, frames)
    decoded = list(read_video_frames(video))
    out = tmp_path / "out"
    assert script.main(["--video", str(video), "--output_dir", str(out), "--size", "32", "24", "--window", "16",
                        "--seed", "5", "--dat"]) == 0
    assert sorted(os.listdir(out)) == ["moving-0001.npz", "moving-0002.npz", "moving.dat"]
    np.random.seed(5)
    expected = list(spike_windows(iter(decoded), (32, 24), 16))
    for i, (spikes, tag) in enumerate(expected):
        seq, got_tag = load_spike_npz(out / f"moving-{i + 1:04d}.npz")
        np.testing.assert_array_equal(seq, spikes)
        np.testing.assert_array_equal(got_tag, tag)
    stream = load_spike_dat(out / "moving.dat", 32, 24)
    assert stream.shape == (len(decoded), 24, 32)
    np.testing.assert_array_equal(stream[:16], expected[0][0])
    assert "wrote 2 window file(s)" in capsys.readouterr().out


def test_video_to_spike_script_errors(tmp_path, capsys):
    assert script.main(["--video", str(tmp_path / "nope.mp4"), "--output_dir", str(tmp_path)]) == 2
    assert "nope.mp4: video file not found" in capsys.readouterr().err
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    assert script.main(["--video", str(tmp_path / "junk.mp4"), "--output_dir", str(tmp_path)]) == 2
    assert "junk.mp4" in capsys.readouterr().err
    assert script.main(["--video", "x.mp4", "--output_dir", str(tmp_path), "--no_npz"]) == 2
    assert "--no_npz without --dat" in capsys.readouterr().err

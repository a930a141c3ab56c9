"""MATLAB bicubic imresize (BasicSR) and the BDx4 degradation (mmagic) against goldens and hand values."""
import math

import numpy as np
import pytest

from mindediting.utils.matlab_resize import (bd_downsample, bd_gaussian_kernel, calculate_weights_indices, cubic,
                                             imresize)
from tests.golden import golden_dir, load, load_config


@pytest.fixture(scope="module")
def gold():
    folder = golden_dir("imresize", need=("config.json", "weights_in8_out2.npy", "indices_in8_out2.npy"))
    return folder, load_config(folder)


def test_weight_tables_match_golden(gold):
    folder, cfg = gold
    atol = cfg["tolerance"]["float_atol"]
    weights, indices, sym_s, sym_e = calculate_weights_indices(8, 2, 0.25, 4, True)
    assert weights.dtype == np.float32 and weights.shape == (2, 16)
    np.testing.assert_allclose(weights, load(folder, "weights_in8_out2.npy"), rtol=0, atol=atol)
    np.testing.assert_array_equal(indices, load(folder, "indices_in8_out2.npy"))
    table = cfg["kernel_table"]["in8_out2"]
    assert (sym_s, sym_e) == (table["sym_len_start"], table["sym_len_end"])
    table = cfg["kernel_table"]["in10_out3"]
    weights, indices, sym_s, sym_e = calculate_weights_indices(10, 3, 0.25)
    np.testing.assert_allclose(weights, table["weights"], rtol=0, atol=atol)
    np.testing.assert_array_equal(indices, table["indices_after_shift"])
    assert (sym_s, sym_e) == (table["sym_len_start"], table["sym_len_end"])


def test_weight_table_hand_computed_for_x2_upscale():
    # in 4 -> out 8: u(1) = 1/2 + 0.25 = 0.75, candidate taps at 1-based -2..3 (distances 2.75 .. -2.25);
    # the first column is all zero, so BasicSR keeps taps -1..2 with the cubic values below
    weights, indices, sym_s, sym_e = calculate_weights_indices(4, 8, 2.0)
    np.testing.assert_array_equal(weights[0], [-0.0234375, 0.2265625, 0.8671875, -0.0703125])
    assert (sym_s, sym_e) == (2, 2)
    np.testing.assert_array_equal(indices[0], [0, 1, 2, 3])  # padded positions, i.e. original -2..1
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(cubic([0.0, 0.5, 1.0, 1.5, 2.0, 2.5]), [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0])
    # 1-D check through imresize: row [10, 50, ...]; padded signal starts 50, 10 | 10, 50 (symmetric)
    row = np.array([[10, 50, 90, 130]] * 4, dtype=np.uint8)
    out = imresize(row, 2.0)
    assert out.shape == (8, 8) and out.dtype == np.float32
    # -0.0234375*50 + 0.2265625*10 + 0.8671875*10 - 0.0703125*50 = 6.25
    np.testing.assert_allclose(out[:, 0], 6.25, rtol=0, atol=1e-5)


def _case_input(folder, case, spec):
    img = load(folder, f"{case}_input_u8.npy")
    note = spec["float_input"]
    if note.startswith("none"):
        return img, 1.0
    if "float64" in note:
        return img / 255.0, 255.0
    return img.astype(np.float32) / np.float32(255.0), 255.0


CASES = ["gray8x8_x0.25", "rgb16x16_x0.25", "rgb10x14_x0.25", "rgb13x17_x0.25", "gray5x6_x4_up", "rgb64x48_x0.25",
         "rgb18x22_u8direct_x0.25"]


@pytest.mark.parametrize("case", CASES)
def test_imresize_matches_golden(gold, case):
    folder, cfg = gold
    spec = cfg["cases"][case]
    img, to_255 = _case_input(folder, case, spec)
    scale = 4 if case.endswith("_up") else 0.25
    out = imresize(img, scale)
    assert out.dtype == np.float32
    assert list(out.shape) == spec["output_shape"]
    assert out.shape[:2] == (math.ceil(img.shape[0] * scale), math.ceil(img.shape[1] * scale))
    ref = load(folder, f"{case}_output_float.npy")
    # float_atol (1e-6) is stated for [0, 1] outputs; the u8-direct case is in [0, 255] where one
    # float32 ulp is 1.5e-5 and torch's BLAS summation order cannot be reproduced bit for bit,
    # so the same relative precision is used there: 1e-6 * 255
    atol = cfg["tolerance"]["float_atol"] * (255.0 if to_255 == 1.0 else 1.0)
    np.testing.assert_allclose(out, ref, rtol=0, atol=atol)
    u8 = np.clip(np.round(out * to_255), 0, 255).astype(np.uint8)
    ref_u8 = load(folder, f"{case}_output_u8.npy")
    scaled = ref.astype(np.float64) * to_255
    near_tie = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-4
    diff = np.abs(u8.astype(int) - ref_u8.astype(int))
    assert diff.max() <= 1 and not np.any((diff > 0) & ~near_tie)


def test_imresize_hand_properties():
    rng = np.random.RandomState(3)
    img = rng.rand(9, 11, 3).astype(np.float32)
    # scale 1 keeps the image (kernel taps hit integer distances: weights 0, 1, 0, 0)
    np.testing.assert_array_equal(imresize(img, 1.0), img)
    # constant images stay constant (weights sum to 1) for down- and up-scaling
    const = np.full((13, 17, 3), 77, dtype=np.uint8)
    for scale in (0.25, 0.5, 1 / 3, 2, 3):
        out = imresize(const, scale)
        assert out.shape == (math.ceil(13 * scale), math.ceil(17 * scale), 3)
        np.testing.assert_allclose(out, 77.0, rtol=0, atol=1e-4)
    # HW input equals each channel of the HWC result
    np.testing.assert_array_equal(imresize(img[..., 1], 0.5), imresize(img, 0.5)[..., 1])
    # uint8 input stays in [0, 255], float64 input is computed in float32 like BasicSR
    u8 = (img * 255).round().astype(np.uint8)
    np.testing.assert_allclose(imresize(u8, 0.25), imresize(u8.astype(np.float32) / 255, 0.25) * 255, rtol=0, atol=2e-4)
    assert imresize(img.astype(np.float64), 0.5).dtype == np.float32


def test_imresize_full_frame_vectorised_equals_dense_matrices():
    # a Vimeo-90K sized frame, checked against explicit (out x in) resampling matrices built from
    # the (golden-checked) weight tables with symmetric mirroring, in float64
    frame = np.random.RandomState(4).randint(0, 256, (256, 448, 3)).astype(np.uint8)
    out = imresize(frame, 0.25)
    assert out.shape == (64, 112, 3) and out.dtype == np.float32

    def dense(in_len, out_len):
        weights, indices, sym_s, _ = calculate_weights_indices(in_len, out_len, 0.25)
        mat = np.zeros((out_len, in_len))
        for o in range(out_len):
            for w, idx in zip(weights[o], indices[o]):
                q = int(idx) - sym_s
                q = -q - 1 if q < 0 else (2 * in_len - 1 - q if q >= in_len else q)
                mat[o, q] += w
        return mat

    mh, mw = dense(256, 64), dense(448, 112)
    ref = np.einsum("oh,hwc->owc", mh, frame.astype(np.float64))
    ref = np.einsum("pw,owc->opc", mw, ref)
    np.testing.assert_allclose(out, ref, rtol=0, atol=2e-3)


def test_imresize_errors():
    with pytest.raises(ValueError, match=r"imresize expects an \(H, W\) or \(H, W, C\) array, got shape \(1, 4, 4"):
        imresize(np.zeros((1, 4, 4, 3)), 0.5)
    with pytest.raises(ValueError, match="scale must be a positive number, got 0"):
        imresize(np.zeros((4, 4)), 0)
    with pytest.raises(TypeError, match="expected a numeric image"):
        imresize(np.zeros((4, 4), dtype=bool), 0.5)


def _gauss_1d(sigma, size):
    t = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def test_bd_kernel_is_12_tap_half_pixel_gaussian():
    kernel = bd_gaussian_kernel(1.6)
    assert kernel.shape == (12, 12)  # ceil(3 * 1.6) * 2 + 2
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    g = _gauss_1d(1.6, 12)  # sampled at -5.5 .. 5.5
    np.testing.assert_allclose(kernel, np.outer(g, g), rtol=1e-6, atol=0)
    assert bd_gaussian_kernel(1.0).shape == (8, 8)


def _bd_reference(img, sigma=1.6, scale=4):
    """Per-pixel loop: correlation with the kernel, anchor 5, replicated borders, then decimation."""
    kernel = bd_gaussian_kernel(sigma)
    size = kernel.shape[0]
    anchor = (size - 1) // 2
    h, w = img.shape[:2]
    rows = range(scale // 2 - 1, h - scale // 2 + 1, scale)
    cols = range(scale // 2 - 1, w - scale // 2 + 1, scale)
    out = np.zeros((len(rows), len(cols)) + img.shape[2:])
    for i, y in enumerate(rows):
        for j, x in enumerate(cols):
            acc = 0.0
            for a in range(size):
                for b in range(size):
                    yy = min(max(y + a - anchor, 0), h - 1)
                    xx = min(max(x + b - anchor, 0), w - 1)
                    acc = acc + kernel[a, b] * img[yy, xx]
            out[i, j] = acc
    return out


def test_bd_downsample_hand_checked():
    # impulse: output (i, j) samples HR (1 + 4i, 1 + 4j); the blur there is centred half a pixel
    # further, so the response is g(r - y - 0.5) * g(c - x - 0.5) with the normalised 1-D Gaussian
    img = np.zeros((24, 28))
    r, c = 13, 18
    img[r, c] = 1.0
    out = bd_downsample(img)
    assert out.shape == (6, 7) and out.dtype == np.float64
    norm = np.exp(-(np.arange(12) - 5.5) ** 2 / (2 * 1.6 ** 2)).sum()
    for i in range(6):
        for j in range(7):
            dy, dx = r - (1 + 4 * i) - 0.5, c - (1 + 4 * j) - 0.5
            inside = abs(dy) <= 5.5 and abs(dx) <= 5.5
            expected = math.exp(-(dy * dy + dx * dx) / (2 * 1.6 ** 2)) / norm ** 2 if inside else 0.0
            assert out[i, j] == pytest.approx(expected, rel=1e-6, abs=1e-15)
    # random colour image with borders: equal to the per-pixel loop with replicated borders
    rnd = np.random.RandomState(5).rand(18, 19, 3)
    out = bd_downsample(rnd)
    assert out.shape == (4, 5, 3)  # rows 1, 5, 9, 13 (stop 17); cols 1, 5, 9, 13, 17 (stop 18)
    np.testing.assert_allclose(out, _bd_reference(rnd), rtol=0, atol=1e-12)
    # uint8: read as u8 / 255, written as floor(float32(clip * 255) + 0.5)
    u8 = (rnd * 255).round().astype(np.uint8)
    out_u8 = bd_downsample(u8)
    assert out_u8.dtype == np.uint8
    ref = np.floor((np.clip(_bd_reference(u8 / 255.0), 0, 1) * 255).astype(np.float32) + np.float32(0.5))
    np.testing.assert_array_equal(out_u8, ref.astype(np.uint8))
    # constant frame of the Vimeo-90K size stays constant, 256x448 -> 64x112
    const = np.full((256, 448, 3), 77, dtype=np.uint8)
    np.testing.assert_array_equal(bd_downsample(const), np.full((64, 112, 3), 77, dtype=np.uint8))
    # single-channel HWC keeps its channel axis
    assert bd_downsample(rnd[..., :1]).shape == (4, 5, 1)


def test_bd_downsample_errors():
    with pytest.raises(ValueError, match="scale must be an integer >= 2, got 2.5"):
        bd_downsample(np.zeros((16, 16)), scale=2.5)
    with pytest.raises(TypeError, match="expected uint8 or float image, got dtype int16"):
        bd_downsample(np.zeros((16, 16), np.int16))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        bd_downsample(np.zeros((16, 16)), sigma=0)

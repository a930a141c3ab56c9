"""BT.601 colour conversion against BasicSR goldens and hand-computed values."""
import numpy as np
import pytest

from mindediting.utils.color import bgr2ycbcr, rgb2ycbcr, ycbcr2bgr, ycbcr2rgb
from tests.golden import golden_dir, load, load_config


@pytest.fixture(scope="module")
def gold():
    folder = golden_dir("color", need=("config.json", "rgb_u8.npy"))
    return folder, load_config(folder)


def test_y_from_uint8_matches_golden_exactly(gold):
    folder, _ = gold
    rgb = load(folder, "rgb_u8.npy")
    y = rgb2ycbcr(rgb, y_only=True)
    assert y.dtype == np.uint8 and y.shape == rgb.shape[:2]
    np.testing.assert_array_equal(y, load(folder, "rgb2ycbcr_y_from_u8.npy"))
    np.testing.assert_array_equal(bgr2ycbcr(rgb[..., ::-1], y_only=True), load(folder, "bgr2ycbcr_y_from_u8_bgr.npy"))


def test_float_conversions_match_golden(gold):
    folder, cfg = gold
    atol = cfg["tolerance"]["float_abs"]
    rgb = load(folder, "rgb_float.npy")
    y = rgb2ycbcr(rgb, y_only=True)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, load(folder, "rgb2ycbcr_y_from_float.npy"), rtol=0, atol=atol)
    np.testing.assert_allclose(bgr2ycbcr(rgb[..., ::-1], y_only=True), load(folder, "bgr2ycbcr_y_from_float_bgr.npy"),
                               rtol=0, atol=atol)
    full = rgb2ycbcr(rgb)
    np.testing.assert_allclose(full, load(folder, "rgb2ycbcr_ycbcr_from_float.npy"), rtol=0, atol=atol)
    np.testing.assert_allclose(bgr2ycbcr(rgb[..., ::-1]), full, rtol=0, atol=atol)
    back = ycbcr2rgb(full)
    np.testing.assert_allclose(back, load(folder, "ycbcr2rgb_roundtrip_float.npy"), rtol=0, atol=atol)
    np.testing.assert_allclose(back, rgb, rtol=0, atol=1e-5)  # inverse matrix has 6 digits
    np.testing.assert_allclose(ycbcr2bgr(full), back[..., ::-1], rtol=0, atol=0)


def test_hand_computed_pixels():
    px = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [128, 128, 128]]], dtype=np.uint8)
    ycc = rgb2ycbcr(px)
    # black -> (16, 128, 128), white -> (235, 128, 128), red -> 16 + 65.481 = 81.481 -> 81,
    # Cb = 128 - 37.797 = 90.203 -> 90, Cr = 128 + 112 = 240; gray 128: Y = 16 + 219 * 128/255
    np.testing.assert_array_equal(ycc[0, 0], [16, 128, 128])
    np.testing.assert_array_equal(ycc[0, 1], [235, 128, 128])
    np.testing.assert_array_equal(ycc[0, 2], [81, 90, 240])
    assert ycc[0, 3, 0] == round(16 + 219 * 128 / 255) == 126
    red = rgb2ycbcr(np.array([1.0, 0.0, 0.0], dtype=np.float32), y_only=True)
    assert red.dtype == np.float32 and abs(float(red) - 81.481 / 255) < 1e-7
    # float64 input is computed in float32 like BasicSR, and returns float32
    assert rgb2ycbcr(np.zeros((2, 2, 3))).dtype == np.float32


def test_uint8_inverse_clips_out_of_gamut_instead_of_wrapping():
    # both pixels lie outside the RGB cube: for (16, 240, 240) G = -1.164*0 - 0.392*112 - 0.813*112 < 0,
    # for (235, 240, 240) R = 255 + 1.596*112 > 255 and B = 255 + 2.017*112 > 255
    rgb = ycbcr2rgb(np.array([[[16, 240, 240], [235, 240, 240]]], dtype=np.uint8))
    assert rgb.dtype == np.uint8
    assert rgb[0, 0, 1] == 0 and rgb[0, 0, 0] == 179  # 1.596 * 112 = 178.8
    assert rgb[0, 1, 0] == 255 and rgb[0, 1, 2] == 255 and rgb[0, 1, 1] == 120  # 255 - 135.3
    # in-gamut uint8 round trip is within one level
    px = np.random.RandomState(0).randint(0, 256, (5, 7, 3)).astype(np.uint8)
    assert np.abs(ycbcr2rgb(rgb2ycbcr(px)).astype(int) - px).max() <= 2


def test_bad_input_errors():
    with pytest.raises(TypeError, match="rgb2ycbcr: the image must be uint8 .* got dtype int32"):
        rgb2ycbcr(np.zeros((2, 2, 3), np.int32))
    with pytest.raises(ValueError, match=r"bgr2ycbcr expects channels last with 3 channels, got shape \(2, 2, 4\)"):
        bgr2ycbcr(np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(ValueError, match="ycbcr2rgb"):
        ycbcr2rgb(np.zeros((3, 2, 2), np.float32))

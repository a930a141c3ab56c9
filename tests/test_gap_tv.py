"""GAP-TV / ADMM-TV against the goldens (every iterate), via the toolbox's driver loop."""
import numpy as np
import pytest

from mindediting.data.sci import At
from mindediting.models.sci_classic import ADMMTV, GAPTV, build_solver, chambolle_frame, tv_denoise
from tests.golden import golden_dir, load, load_config

CASES = [("gap_tv", GAPTV), ("admm_tv", ADMMTV)]


def _inputs(folder):
    return load(folder, "meas.npy"), load(folder, "mask.npy"), load(folder, "mask_s.npy")


@pytest.mark.parametrize("case,cls", CASES)
def test_every_iterate_matches_golden(case, cls):
    folder = golden_dir(case, need=("output.npy", "x0.npy"))
    cfg = load_config(folder)
    meas, mask, mask_s = _inputs(folder)
    np.testing.assert_array_equal(At(meas, mask), load(folder, "x0.npy"))
    solver = cls(tv_weight=cfg["denoiser"]["tv_weight"], tv_iter_max=cfg["denoiser"]["tv_iter_max"], iter_list=cfg["iterations"])
    outs = solver(meas, mask, mask_s, return_all=True)
    expected = load(folder, "output.npy")
    assert len(outs) == expected.shape[0]
    tol = cfg["tolerance"]
    for got, ref in zip(outs, expected):
        assert got.dtype == np.float64 and got.shape == (1,) + ref.shape
        np.testing.assert_allclose(got[0], ref, rtol=tol["rtol"], atol=tol["atol"])


@pytest.mark.parametrize("case,cls", CASES)
def test_last_iterate_matches_local_copy(case, cls):
    """Runs from tests/data alone: output_last.npy is the golden's last iterate stored as float32."""
    folder = golden_dir(case, need=("output_last.npy",))
    cfg = load_config(folder)
    meas, mask, mask_s = _inputs(folder)
    out = build_solver(case, iter_list=cfg["iterations"])(meas, mask, mask_s)
    np.testing.assert_allclose(out[0], load(folder, "output_last.npy"), rtol=0, atol=cfg["tolerance"]["atol"])


def test_tv_denoiser_is_per_frame_and_solver_checks_inputs():
    rng = np.random.RandomState(0)
    x = rng.rand(1, 3, 16, 16)
    both = tv_denoise(x, 0.1, 5)
    alone = tv_denoise(x[:, 1:2], 0.1, 5)
    np.testing.assert_allclose(both[:, 1:2], alone, atol=1e-12)
    assert np.abs(both - x).max() > 1e-3  # it did smooth
    with pytest.raises(ValueError, match=r"expected meas \(B, 1, H, W\) and mask \(B, cr, H, W\)"):
        GAPTV()(np.zeros((1, 16, 16)), np.zeros((1, 8, 16, 16)), np.ones((1, 1, 16, 16)))
    with pytest.raises(ValueError, match="unknown SCI solver 'foo'"):
        build_solver("foo")


def test_float32_option_is_close_to_golden():
    folder = golden_dir("gap_tv", need=("output_last.npy",))
    cfg = load_config(folder)
    out = GAPTV(iter_list=cfg["iterations"], dtype="float32")(*_inputs(folder))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], load(folder, "output_last.npy"), rtol=0, atol=cfg["tolerance"]["atol"])
    with pytest.raises(ValueError, match="dtype must be float64 or float32"):
        GAPTV(dtype="float16")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_chambolle_frame_is_scikit_image_bit_for_bit(dtype):
    """Our in-place Chambolle gives scikit-image's numbers exactly, early stop (200 iterations) included."""
    from skimage.restoration import denoise_tv_chambolle

    rng = np.random.RandomState(3)
    for shape, iters, weight in [((1, 1), 5, 0.1), ((7, 1), 3, 0.1), ((40, 33), 1, 0.1), ((40, 33), 5, 0.1),
                                 ((64, 48), 200, 0.05), ((130, 129), 5, 1.0)]:
        x = (rng.rand(*shape) * 4).astype(dtype)
        ref = denoise_tv_chambolle(x, weight=weight, max_num_iter=iters)
        got = chambolle_frame(x, weight, iters)
        assert got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref)
    frames = rng.rand(1, 3, 130, 129).astype(dtype)  # big enough for the thread pool
    np.testing.assert_array_equal(tv_denoise(frames, 0.1, 5, dtype=dtype),
                                  tv_denoise(frames, 0.1, 5, threads=False, dtype=dtype))

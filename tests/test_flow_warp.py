import numpy as np
import mindspore as ms

from mindediting.models.common.flow_warp import flow_warp
from tests.golden import golden_dir, load, load_config


def _inputs():
    folder = golden_dir("flow_warp")
    return folder, load_config(folder), ms.Tensor(load(folder, "x.npy")), ms.Tensor(load(folder, "flow.npy"))


def test_bilinear_zeros_and_border_match_upstream():
    folder, cfg, x, flow = _inputs()
    atol = cfg["tolerance"]["atol"]
    out = flow_warp(x, flow).asnumpy()
    np.testing.assert_allclose(out, load(folder, "out_bilinear_zeros.npy"), rtol=0, atol=atol)
    np.testing.assert_allclose(out, load(folder, "out_vrt_bilinear_zeros.npy"), rtol=0, atol=atol)
    border = flow_warp(x, flow, padding_mode="border").asnumpy()
    np.testing.assert_allclose(border, load(folder, "out_bilinear_border.npy"), rtol=0, atol=atol)
    # far out-of-image flows (last row) read zeros only with zero padding
    assert not np.allclose(out, border)


def test_nearest4_matches_upstream_away_from_integer_ties():
    folder, cfg, x, flow = _inputs()
    out = flow_warp(x, flow, interpolation="nearest4").asnumpy()
    expected = load(folder, "out_vrt_nearest4.npy")
    assert out.shape == expected.shape == (2, 16, 16, 20)
    f = flow.asnumpy()
    pos = f + np.stack(np.meshgrid(np.arange(20), np.arange(16)), -1)
    near_tie = np.any(np.abs(pos - np.round(pos)) < 1e-4, axis=-1)  # (N, H, W)
    ok = ~near_tie[:, None].repeat(16, 1)
    assert ok.mean() > 0.5
    np.testing.assert_allclose(out[ok], expected[ok], rtol=0, atol=cfg["tolerance"]["atol"])


def test_shape_mismatch_raises():
    x = ms.Tensor(np.zeros((1, 1, 4, 5), np.float32))
    flow = ms.Tensor(np.zeros((1, 4, 4, 2), np.float32))
    try:
        flow_warp(x, flow)
    except ValueError as err:
        assert "spatial size" in str(err)
    else:
        raise AssertionError("expected ValueError")

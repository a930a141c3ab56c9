"""Interval and window reconstructions: goldens spike_interval / spike_window and hand-computed edge cases."""
import numpy as np
import pytest

from mindediting.models.spike_classic import interval_method, window_method
from tests.golden import golden_dir, load, load_config


def test_interval_matches_upstream():
    folder = golden_dir("spike_interval", need=("seq.npy", "output.npy"))
    seq, mids = load(folder, "seq.npy"), load_config(folder)["mids"]
    got = np.stack([interval_method(seq, mid) for mid in mids])
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, load(folder, "output.npy"))


def test_window_matches_upstream():
    folder = golden_dir("spike_window", need=("seq.npy", "output.npy"))
    seq, windows = load(folder, "seq.npy"), load_config(folder)["windows"]
    got = np.stack([window_method(seq, start, length) for start, length in windows])
    np.testing.assert_array_equal(got, load(folder, "output.npy"))


def test_interval_edge_cases_by_hand():
    seq = np.zeros((10, 1, 4), np.uint8)
    seq[:, 0, 1] = 1  # fires every frame
    seq[[2, 7], 0, 2] = 1  # interval 5 around mid 5
    seq[[6], 0, 3] = 1  # only one spike after mid: down falls back to 0
    got = interval_method(seq, 5)[0]
    # never firing: up = T-1 = 9, down = 0 -> 255/9; every frame: 255; 255/5; 255/(6-0)
    assert got.tolist() == [28, 255, 51, 42]
    assert interval_method(seq, 0)[0].tolist() == [25, 255, 85, 36]  # mid 0: down stays -1 -> 255/10 ...
    assert interval_method(seq, 10)[0].tolist() == [25, 255, 85, 63]  # mid = T: up stays T
    with pytest.raises(ValueError, match="mid=11 outside"):
        interval_method(seq, 11)


def test_window_edge_cases_by_hand():
    seq = np.zeros((5, 1, 2), np.uint8)
    seq[:, 0, 0] = [1, 0, 1, 1, 0]
    assert window_method(seq, 0, 3)[0].tolist() == [170, 0]  # 2/3*255 = 170
    assert window_method(seq, 3, 32)[0].tolist() == [127, 0]  # past the end: mean over 2 frames
    with pytest.raises(ValueError, match="selects no frame of a 5-frame sequence"):
        window_method(seq, 5, 4)
    with pytest.raises(ValueError, match=r"must be \(T, H, W\)"):
        window_method(seq[0], 0, 1)

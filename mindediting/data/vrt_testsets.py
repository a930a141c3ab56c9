"""Test sets of the official VRT tasks in the folder layouts of JingyunLiang/VRT ``main_test_vrt.py``.

``data.root`` is the test set's own folder (upstream ``testsets/<name>``); ``data.gt_dir`` /
``data.lq_dir`` are relative to it (defaults below). Every set yields :class:`VRTClip` objects, the
:class:`~mindediting.data.clips.TestClip` the evaluator scores, which also know how to read
their input (noise, sigma channel, centre crop) and ground truth as upstream's dataset classes do.

=====================  =========================================================  ==========================
``data.dataset``       layout under ``data.root`` (defaults)                       input -> scored frames
=====================  =========================================================  ==========================
``vrt_reds4``          ``GT/<clip>/*.png``, ``sharp_bicubic/<clip>/*.png``         whole clip, every frame
                       (deblurring 007: ``lq_dir: blur``)
``vrt_vid4``           ``GT/``, ``BIx4/`` (004: ``lq_dir: BDx4``)                  whole clip, every frame
``vrt_udm10``          ``GT/``, ``BDx4/``                                          whole clip, every frame
``vrt_dvd10``          ``test_GT/``, ``test_GT_blurred/``                          whole clip, every frame
``vrt_gopro11``        ``test_GT/``, ``test_GT_blurred/``                          whole clip, every frame
``vrt_vimeo90k_t``     ``vimeo_septuplet/sequences/<seq>/im1..7.png`` (GT),        im1..7 + im7 again (8
                       ``vimeo_septuplet_matlabLRx4/sequences`` (LR; BD:           frames) -> output 3 vs im4
                       ``vimeo_septuplet_BDLRx4/sequences``), list
                       ``vimeo_septuplet/sep_testlist.txt``
``vrt_set8``,          ``<clip>/*`` directly under the root (GT only)              GT + Gaussian noise and a
``vrt_davis_test``                                                                 sigma/255 channel, every frame
``vrt_vfi_vimeo90k``   ``vimeo_septuplet/sequences/<seq>/im*.png``, same list       im1, im3, im5, im7 ->
                                                                                   output 0 vs im4
``vrt_vfi_ucf101``     ``<clip>/frame0..3.png`` + ``framet.png``                   frame0..3, centre crop
                                                                                   224x224 -> output 0 vs framet
``vrt_vfi_davis``      ``<seq>/*.jpg`` (DAVIS JPEGImages/480p)                     frames s, s+2, s+4, s+6 for
                                                                                   s = 0, 2, 4, ...; centre crop
                                                                                   480x840 -> output 0 vs s+3
=====================  =========================================================  ==========================

Pairing follows upstream ``VideoRecurrentTestDataset``: clips are the sorted sub-folders, frames the
sorted files of each, GT and LQ paired by position (their counts must match). ``data.clips`` picks
clips by name, ``data.num_frames`` keeps the first N frames of each (0 = all; upstream uses all).

Denoising (``data.sigma``, upstream ``--sigma`` 10..50): upstream seeds torch with 0 for every clip
and draws ``torch.normal(0, sigma/255)`` for the whole (T, 3, H, W) RGB clip at once, adds it to the
float GT (no clipping) and appends a constant sigma/255 channel. :func:`torch_cpu_normal` rebuilds
that draw without torch: the mt19937 stream of ``torch.manual_seed(0)`` (numpy's legacy
``RandomState(0)`` is the same generator with the same seeding), 24-bit float uniforms and torch's
Box-Muller in blocks of 16 (``normal_fill``; when the size is not a multiple of 16 the last 16 values
are redrawn). It gives torch's well-known ``manual_seed(0); randn(4, 4)`` values; torch builds whose
kernel is the AVX2 one use approximate log/sin/cos, so values may differ there in the last float bits
(~1e-7), far below the uint8 quantisation of the scored frames.

VFI crops follow torchvision ``CenterCrop`` (offsets ``round((size - crop) / 2)``, zero padding when
the frame is smaller). Upstream decodes VFI frames with PIL and the others with OpenCV; here all are
decoded with OpenCV (identical for PNG; JPEG decoders agree in practice but are not guaranteed to).
"""
import os
from dataclasses import dataclass

import numpy as np

from mindediting.data.video_io import list_image_files, read_image
from mindediting.data.clips import TestClip

_PAIRED = "paired"
_VIMEO_LIST = "vimeo_septuplet/sep_testlist.txt"
_VIMEO_GT = "vimeo_septuplet/sequences"

TESTSETS = {
    "vrt_reds4": {"kind": _PAIRED, "gt_dir": "GT", "lq_dir": "sharp_bicubic",
                  "hint": "VRT release v0.0 testset_REDS4.tar.gz"},
    "vrt_vid4": {"kind": _PAIRED, "gt_dir": "GT", "lq_dir": "BIx4", "hint": "VRT release v0.0 testset_Vid4.tar.gz"},
    "vrt_udm10": {"kind": _PAIRED, "gt_dir": "GT", "lq_dir": "BDx4", "hint": "VRT release v0.0 testset_UDM10.tar.gz"},
    "vrt_dvd10": {"kind": _PAIRED, "gt_dir": "test_GT", "lq_dir": "test_GT_blurred",
                  "hint": "VRT release v0.0 testset_DVD10.tar.gz"},
    "vrt_gopro11": {"kind": _PAIRED, "gt_dir": "test_GT", "lq_dir": "test_GT_blurred",
                    "hint": "VRT release v0.0 testset_GoPro11-part1/-part2.tar.gz"},
    "vrt_vimeo90k_t": {"kind": "vimeo_sr", "gt_dir": _VIMEO_GT, "lq_dir": "vimeo_septuplet_matlabLRx4/sequences",
                       "meta_file": _VIMEO_LIST, "hint": "vimeo_septuplet.zip of Vimeo-90K, not in the VRT release"},
    "vrt_set8": {"kind": "denoise", "gt_dir": ".", "hint": "VRT release v0.0 testset_Set8.tar.gz"},
    "vrt_davis_test": {"kind": "denoise", "gt_dir": ".", "hint": "VRT release v0.0 testset_DAVIS-test.tar.gz"},
    "vrt_vfi_vimeo90k": {"kind": "vfi_vimeo", "gt_dir": _VIMEO_GT, "meta_file": _VIMEO_LIST,
                         "hint": "vimeo_septuplet.zip of Vimeo-90K, not in the VRT release"},
    "vrt_vfi_ucf101": {"kind": "vfi_ucf101", "gt_dir": ".", "hint": "VRT release v0.0 testset_UCF101.tar.gz"},
    "vrt_vfi_davis": {"kind": "vfi_davis", "gt_dir": ".", "hint": "VRT release v0.0 testset_DAVIS-train.tar.gz"},
}

NOISE_SEED = 0  # upstream: torch.manual_seed(0) before every clip's noise
UCF101_CROP = (224, 224)
DAVIS_VFI_CROP = (480, 840)
_CHUNK = 1 << 22  # noise values generated per step (a multiple of 16)


@dataclass
class VRTClip(TestClip):
    """A :class:`TestClip` that reads its own input and ground truth (``read_lq`` / ``read_gt``)."""

    sigma: float = 0.0  # > 0: input = GT + N(0, sigma/255) with a sigma/255 4th channel
    crop: tuple = None  # (h, w) centre crop of inputs and GT (VFI on UCF101 / DAVIS)

    def read_lq(self):
        """Network input (T, C, h, w) float32: frames / 255, cropped, noisy + sigma channel for denoising."""
        frames = np.stack([_read(f, i, self.crop).transpose(2, 0, 1) for i, f in enumerate(self.lq_files)])
        frames = frames.astype(np.float32) / 255.0
        if not self.sigma:
            return frames
        level = np.float32(self.sigma / 255.0)  # upstream: torch.ones(...) * sigma / 255. (float32)
        noise = torch_cpu_normal(frames.shape, NOISE_SEED)
        noise *= level  # in place: a full clip (e.g. Set8, 85 x 3 x 540 x 960) is ~0.5 GB per copy
        t, c, h, w = frames.shape
        lq = np.empty((t, c + 1, h, w), np.float32)
        np.add(frames, noise, out=lq[:, :c])
        lq[:, c] = level
        return lq

    def read_gt(self, k):
        """Ground truth of the k-th scored frame, RGB uint8 (H, W, 3)."""
        return _read(self.gt_files[k], None, self.crop)


def torch_cpu_normal(shape, seed=0):
    """float32 N(0, 1) samples equal to ``torch.manual_seed(seed); torch.randn(shape)`` on CPU (see module doc)."""
    size = int(np.prod(shape))
    if size < 16:
        raise ValueError(f"torch_cpu_normal: torch draws fewer than 16 values another way; got shape {tuple(shape)}")
    state = np.random.RandomState(seed)  # the same mt19937 init_genrand seeding as torch.manual_seed
    out = np.empty(size, np.float32)
    whole = size - size % 16
    for start in range(0, whole, _CHUNK):
        stop = min(start + _CHUNK, whole)
        out[start:stop] = _box_muller16(_uniforms(state, stop - start))
    if size > whole:
        _uniforms(state, size - whole)  # torch draws uniforms for the tail too, then redraws the last 16 values
        out[size - 16:] = _box_muller16(_uniforms(state, 16))
    return out.reshape(shape)


def _uniforms(state, n):
    raw = state.randint(0, 2 ** 32, size=n, dtype=np.uint32)
    return (raw & 0xFFFFFF).astype(np.float32) * np.float32(2.0 ** -24)


def _box_muller16(u):
    """torch ``normal_fill_16`` on consecutive blocks of 16 uniforms: 8 cos values then 8 sin values.

    torch works in float32 (``theta`` is formed in double and stored as float); log/cos/sin are taken
    in float64 and rounded, i.e. the correctly rounded float results that libm's logf/cosf/sinf give.
    """
    blocks = u.reshape(-1, 2, 8)
    u1 = np.float32(1.0) - blocks[:, 0]
    radius = np.sqrt(np.float32(-2.0) * np.log(u1.astype(np.float64)).astype(np.float32))
    theta = (2.0 * np.pi * blocks[:, 1].astype(np.float64)).astype(np.float32).astype(np.float64)
    cos, sin = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    return np.stack([radius * cos, radius * sin], axis=1).reshape(-1)


def center_crop_box(height, width, crop):
    """(top, left, pad) of torchvision ``CenterCrop(crop)`` on an image of ``height`` x ``width``."""
    ch, cw = crop
    pad = (max(0, (cw - width) // 2), max(0, (ch - height) // 2),
           max(0, (cw - width + 1) // 2), max(0, (ch - height + 1) // 2))  # left, top, right, bottom
    height, width = height + pad[1] + pad[3], width + pad[0] + pad[2]
    return int(round((height - ch) / 2.0)), int(round((width - cw) / 2.0)), pad


def _read(path, index, crop):
    image = read_image(path, index)
    if not crop:
        return image
    top, left, (pl, pt, pr, pb) = center_crop_box(image.shape[0], image.shape[1], crop)
    if pl or pt or pr or pb:
        image = np.pad(image, ((pt, pb), (pl, pr), (0, 0)))
    return image[top:top + crop[0], left:left + crop[1]]


def build_vrt_test_set(data_cfg):
    """The :class:`VRTClip` list for a config ``data`` section whose ``dataset`` is in :data:`TESTSETS`."""
    name = data_cfg.get("dataset")
    if name not in TESTSETS:
        raise ValueError(f"data.dataset '{name}' is not a VRT test set (valid: {', '.join(TESTSETS)})")
    cfg = {**TESTSETS[name], **{k: v for k, v in data_cfg.items() if v is not None}}
    root = cfg.get("root")
    if not root or not os.path.isdir(root):
        raise FileNotFoundError(f"data.root: {name} test set folder not found: {root} "
                                f"({cfg['hint']})")
    gt_root = _folder(root, cfg["gt_dir"], "data.gt_dir")
    kind = cfg["kind"]
    if kind == _PAIRED:
        lq_root = _folder(root, cfg["lq_dir"], "data.lq_dir")
        return [_paired_clip(c, gt_root, lq_root, cfg) for c in _clip_names(gt_root, cfg)]
    if kind == "denoise":
        sigma = cfg.get("sigma")
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or sigma <= 0:
            raise ValueError(f"data.sigma: {name} needs a positive noise level (upstream --sigma 10..50), "
                             f"got {sigma!r}")
        return [_denoise_clip(c, gt_root, cfg, sigma) for c in _clip_names(gt_root, cfg)]
    if kind == "vimeo_sr":
        lq_root = _folder(root, cfg["lq_dir"], "data.lq_dir")
        return [_vimeo_clip(seq, gt_root, lq_root, [1, 2, 3, 4, 5, 6, 7, 7], 3) for seq in _vimeo_list(root, cfg)]
    if kind == "vfi_vimeo":
        return [_vimeo_clip(seq, gt_root, gt_root, [1, 3, 5, 7], 0) for seq in _vimeo_list(root, cfg)]
    if kind == "vfi_ucf101":
        return [_ucf101_clip(c, gt_root) for c in _clip_names(gt_root, cfg)]
    return [clip for c in _clip_names(gt_root, cfg) for clip in _davis_vfi_clips(c, gt_root)]


def _folder(root, sub, key):
    folder = os.path.normpath(os.path.join(root, sub))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{key}: folder not found: {folder}")
    return folder


def _clip_names(folder, cfg):
    found = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    wanted = [str(c) for c in cfg.get("clips") or []]
    missing = [c for c in wanted if c not in found]
    if missing:
        raise FileNotFoundError(f"data.clips: clip folder(s) {missing} not found in {folder}")
    if not (wanted or found):
        raise FileNotFoundError(f"data.root: no clip folders in {folder}")
    return wanted or found


def _frames(folder, num_frames=0):
    files = list_image_files(folder)
    if not files:
        raise FileNotFoundError(f"no image frames in {folder}")
    return files[:num_frames] if num_frames else files


def _paired_clip(clip, gt_root, lq_root, cfg):
    lq_folder = os.path.join(lq_root, clip)
    if not os.path.isdir(lq_folder):
        raise FileNotFoundError(f"data.lq_dir: clip folder not found: {lq_folder}")
    num = int(cfg.get("num_frames") or 0)
    gt_files, lq_files = _frames(os.path.join(gt_root, clip), num), _frames(lq_folder, num)
    if len(gt_files) != len(lq_files):
        raise ValueError(f"clip {clip}: {len(lq_files)} input frames in {lq_folder} but {len(gt_files)} "
                         f"ground-truth frames in {os.path.join(gt_root, clip)}")
    return VRTClip(clip, lq_files, gt_files, list(range(len(gt_files))))


def _denoise_clip(clip, gt_root, cfg, sigma):
    gt_files = _frames(os.path.join(gt_root, clip), int(cfg.get("num_frames") or 0))
    return VRTClip(clip, list(gt_files), gt_files, list(range(len(gt_files))), sigma=float(sigma))


def _vimeo_list(root, cfg):
    path = os.path.join(root, cfg["meta_file"])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data.meta_file: sequence list not found: {path}")
    with open(path, encoding="utf-8") as handle:
        sequences = [line.split()[0] for line in handle if line.strip()]  # '00001/0266' or '00001/0266 (256,448,3)'
    if not sequences:
        raise ValueError(f"data.meta_file: no sequences listed in {path}")
    return sequences


def _vimeo_clip(seq, gt_root, lq_root, lq_index, score_index):
    lq_files = [os.path.join(lq_root, seq, f"im{i}.png") for i in lq_index]
    gt_file = os.path.join(gt_root, seq, "im4.png")
    for path in lq_files + [gt_file]:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Vimeo-90K sequence {seq}: missing {path}")
    return VRTClip(seq, lq_files, [gt_file], [score_index])


def _ucf101_clip(clip, root):
    folder = os.path.join(root, clip)
    files = [os.path.join(folder, f"frame{i}.png") for i in range(4)] + [os.path.join(folder, "framet.png")]
    for path in files:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"UCF101 triplet {clip}: missing {path}")
    return VRTClip(clip, files[:4], files[4:], [0], crop=UCF101_CROP)


def _davis_vfi_clips(seq, root):
    files = sorted(os.path.join(root, seq, n) for n in os.listdir(os.path.join(root, seq)))
    clips = []
    for start in range(0, len(files) - 6, 2):
        gt = files[start + 3]
        name = f"{seq}/{os.path.splitext(os.path.basename(gt))[0]}"
        clips.append(VRTClip(name, files[start:start + 7:2], [gt], [0], crop=DAVIS_VFI_CROP))
    return clips

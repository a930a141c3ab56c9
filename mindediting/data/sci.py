"""Video snapshot compressive imaging (SCI): forward operator, masks and data loaders.

Conventions (the same as the cacti toolbox, see ``shared/specs/sci.md``):

* frames are grey, in [0, 1]; a group of ``cr`` frames is coded into one 2-D measurement;
* the mask ``Phi`` has layout ``(cr, H, W)`` (the ``.mat`` files store ``(H, W, cr)``), float32;
* ``mask_s = sum_k Phi_k`` with zeros replaced by 1, layout ``(H, W)``, float32;
* ``y = A(x, Phi) = sum_k Phi_k * x_k`` and ``At(y, Phi) = y * Phi``.

Public API (numpy in, numpy out unless stated):

``A(x, mask)``
    ``x`` and ``mask`` of layout ``(..., cr, H, W)`` -> ``(..., 1, H, W)`` (sum over axis -3, kept).
    Works on numpy arrays and on MindSpore tensors.
``At(y, mask)``
    ``y`` of layout ``(..., 1, H, W)`` (or ``(..., H, W)`` broadcastable) -> ``y * mask``.
``mask_sum(mask)``
    ``(cr, H, W)`` -> ``mask_s`` ``(H, W)`` float32, zeros replaced by 1.
``load_mask(mask_path, mask_shape=None, rng=None) -> (mask, mask_s)``
    Key ``mask`` of a ``.mat`` file (``(H, W, cr)``) -> ``mask (cr, H, W)`` float32 and ``mask_s (H, W)``.
    ``mask_shape=(h, w, cr)`` takes a random crop (``rng``: a ``numpy.random.RandomState``) as the
    toolbox's ``generate_masks``; ``mask_path=None`` draws a random binary mask of ``mask_shape``.
``load_sixgray_scene(path, mask) -> dict``
    One six-gray benchmark scene exactly as cacti's ``SixGraySimData``: frames from key ``orig``
    (or ``patch_save``/``p1``/``p2``/``p3``) divided by 255, cropped to the mask size, grouped by ``cr``;
    measurements regenerated from the frames and the mask (the stored ``meas`` is ignored).
    ``mask`` is a ``.mat`` path or a ``(cr, H, W)`` array. Returns ``{'name', 'gt' (n, cr, H, W) float64,
    'meas' (n, H, W) float64, 'mask' (cr, H, W) float32, 'mask_s' (H, W) float32}``.
``find_sixgray_scenes(root, names=SIXGRAY_SCENES) -> (found {name: path}, missing [names])``
    Scene files under ``root`` (``<name><digits>_cacti.mat``; ``vehicle`` is stored as ``crash``).
``load_real_scene(path, mask_path, cr) -> dict``
    A real camera measurement (key ``meas``, uint8 ``(H, W[, n])``) scaled as the toolbox
    (``meas / 255 * cr / 2``) -> ``{'name', 'meas' (n, H, W) float64, 'mask' (cr, H, W), 'mask_s' (H, W)}``.
    The mask file must have the measurement's size and at least ``cr`` frames (the first ``cr`` are used).
``init_estimate(meas, mask, mask_s)``
    The "meas / mask_s" initialisation shared by the SCI networks: ``y/mask_s * (1 + mask)``.
``DavisSCIDataset(root, mask, ...)``
    Training samples from the DAVIS layout (``<root>/<clip>/*.jpg``) or an LMDB made of it:
    ``(meas (H, W), gt (cr, H, W))`` float32 with augmentation and on-the-fly measurements.

Every error about a user file is a :class:`SCIDataError` (a ``ValueError``) with one line naming the
file and the key.
"""
import os
import re

import numpy as np

SIXGRAY_SCENES = ("kobe", "traffic", "runner", "drop", "aerial", "vehicle")
# file stems used by the toolbox for each scene name (vehicle is stored as crash32_cacti.mat)
SCENE_FILE_STEMS = {"vehicle": ("vehicle", "crash")}
FRAME_KEYS = ("orig", "patch_save", "p1", "p2", "p3")


class SCIDataError(ValueError):
    """A SCI data file is missing, unreadable or does not fit; the message names the file and key."""


# ----------------------------------------------------------------------------------- operators
def A(x, mask):
    """Forward operator: ``sum_k mask_k * x_k`` over the frame axis (-3), kept as a size-1 axis."""
    return (x * mask).sum(axis=-3, keepdims=True)


def At(y, mask):
    """Adjoint of :func:`A`: broadcast the measurement over the frames and multiply by the mask."""
    return y * mask


def mask_sum(mask):
    """``sum_k mask_k`` with zeros replaced by 1 (the toolbox's ``mask_s``), float32 ``(H, W)``."""
    mask_s = np.asarray(mask, dtype=np.float32).sum(axis=0)
    mask_s[mask_s == 0] = 1
    return mask_s


def init_estimate(meas, mask, mask_s):
    """``y_bar = meas / mask_s``; ``y_bar + mask * y_bar`` (the SCI networks' input)."""
    y_bar = meas / mask_s
    return y_bar + mask * y_bar


# -------------------------------------------------------------------------------------- files
def read_mat(path, keys=None):
    """``scipy.io.loadmat`` with one-line errors; ``keys``: the keys the file must hold (any of)."""
    import scipy.io as sio

    path = str(path)
    if not os.path.isfile(path):
        raise SCIDataError(f"{path}: file not found")
    try:
        data = sio.loadmat(path)
    except NotImplementedError:
        raise SCIDataError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save with -v7") from None
    except (ValueError, OSError, TypeError) as err:
        raise SCIDataError(f"{path}: cannot read .mat file ({str(err).splitlines()[0]})") from None
    if keys is not None and not any(k in data for k in keys):
        found = ", ".join(k for k in data if not k.startswith("__")) or "none"
        raise SCIDataError(f"{path}: missing key '{'/'.join(keys)}' (keys found: {found})")
    return data


def load_mask(mask_path=None, mask_shape=None, rng=None):
    """Mask ``(cr, H, W)`` float32 and ``mask_s (H, W)`` as cacti's ``generate_masks``."""
    rng = rng if rng is not None else np.random
    if mask_path is None:
        if mask_shape is None:
            raise SCIDataError("load_mask: give a mask path or a mask shape (H, W, cr)")
        mask = rng.randint(0, 2, size=tuple(mask_shape))
    else:
        mask = read_mat(mask_path, ("mask",))["mask"]
        if mask.ndim != 3:
            raise SCIDataError(f"{mask_path}: key 'mask' should be (H, W, frames), got shape {mask.shape}")
        if mask_shape is not None:
            h, w, _ = mask.shape
            mh, mw, mc = mask_shape
            if mh > h or mw > w or mc > mask.shape[2]:
                raise SCIDataError(f"{mask_path}: key 'mask' {mask.shape} is smaller than requested {tuple(mask_shape)}")
            top = rng.randint(0, h - mh + 1)
            left = rng.randint(0, w - mw + 1)
            mask = mask[top:top + mh, left:left + mw, :mc]
    mask = np.ascontiguousarray(np.transpose(mask, (2, 0, 1)).astype(np.float32))
    return mask, mask_sum(mask)


def _as_mask(mask):
    if isinstance(mask, (str, os.PathLike)):
        return load_mask(mask)[0]
    mask = np.asarray(mask, dtype=np.float32)
    if mask.ndim != 3:
        raise SCIDataError(f"mask should be (cr, H, W), got shape {mask.shape}")
    return mask


def scene_name(path):
    """``drop40_cacti.mat`` -> ``drop``; ``crash32_cacti.mat`` -> ``vehicle``."""
    stem = os.path.basename(str(path)).split("_")[0]
    stem = re.sub(r"\d+$", "", stem)
    for name, stems in SCENE_FILE_STEMS.items():
        if stem in stems:
            return name
    return stem


def load_sixgray_scene(path, mask):
    """One benchmark scene, measurements regenerated from the frames (see the module docstring)."""
    data = read_mat(path, FRAME_KEYS)
    key = next(k for k in FRAME_KEYS if k in data)
    pic = data[key]
    mask = _as_mask(mask)
    cr, height, width = mask.shape
    if pic.ndim != 3:
        raise SCIDataError(f"{path}: key '{key}' should be (H, W, frames), got shape {pic.shape}")
    if pic.shape[0] < height or pic.shape[1] < width:
        raise SCIDataError(
            f"{path}: key '{key}' frames are {pic.shape[0]}x{pic.shape[1]}, smaller than the mask {height}x{width}"
        )
    if pic.shape[2] < cr:
        raise SCIDataError(f"{path}: key '{key}' has {pic.shape[2]} frames, fewer than the mask's {cr}")
    pic = pic[:height, :width, :] / 255.0
    n = pic.shape[2] // cr
    gt = np.ascontiguousarray(np.transpose(pic[:, :, : n * cr], (2, 0, 1)).reshape(n, cr, height, width))
    meas = np.zeros((n, height, width), dtype=np.float64)
    for k in range(cr):  # frame by frame, in the toolbox's summation order
        meas += mask[k] * gt[:, k]
    return {"name": scene_name(path), "path": str(path), "gt": gt, "meas": meas, "mask": mask, "mask_s": mask_sum(mask)}


def find_sixgray_scenes(root, names=SIXGRAY_SCENES):
    """Map each requested scene to its file under ``root``; list the ones that are not there."""
    files = sorted(f for f in os.listdir(root) if f.endswith(".mat")) if os.path.isdir(root) else []
    found, missing = {}, []
    for name in names:
        match = [f for f in files if scene_name(f) == name]
        if match:
            found[name] = os.path.join(root, match[0])
        else:
            missing.append(name)
    return found, missing


def load_real_scene(path, mask_path, cr):
    """A real measurement scaled as the toolbox, with a mask checked against it."""
    meas = read_mat(path, ("meas",))["meas"]
    if meas.ndim == 2:
        meas = meas[:, :, None]
    if meas.ndim != 3:
        raise SCIDataError(f"{path}: key 'meas' should be (H, W) or (H, W, n), got shape {meas.shape}")
    meas = np.transpose(meas / 255.0 * cr / 2, (2, 0, 1))
    mask = read_mat(mask_path, ("mask",))["mask"]
    if mask.ndim != 3 or mask.shape[:2] != meas.shape[1:]:
        raise SCIDataError(
            f"{mask_path}: key 'mask' has shape {mask.shape}, expected ({meas.shape[1]}, {meas.shape[2]}, >={cr}) "
            f"to fit {path}"
        )
    if mask.shape[2] < cr:
        raise SCIDataError(f"{mask_path}: key 'mask' has {mask.shape[2]} frames, fewer than the compression ratio {cr}")
    mask = np.ascontiguousarray(np.transpose(mask[:, :, :cr], (2, 0, 1)).astype(np.float32))
    name = os.path.splitext(os.path.basename(str(path)))[0]
    return {"name": name, "path": str(path), "meas": np.ascontiguousarray(meas), "mask": mask, "mask_s": mask_sum(mask)}


def real_cr_from_name(path):
    """``meas_hand_cr_10.mat`` -> 10 (None when the name does not say)."""
    match = re.search(r"cr_?(\d+)", os.path.basename(str(path)))
    return int(match.group(1)) if match else None


# -------------------------------------------------------------------------- DAVIS training data
def bgr_to_y(img):
    """Y of YCrCb (OpenCV's conversion, as the toolbox's ``GenerationGrayMeas``) in [0, 1], float32."""
    import cv2

    return cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)[:, :, 0].astype(np.float32) / 255.0


class DavisSCIDataset:
    """DAVIS-layout training set for video SCI (cacti ``DavisData`` + its augmentation pipeline).

    ``root``: a folder ``<clip>/<frame>.jpg`` (DAVIS ``JPEGImages/480p``) or an LMDB whose keys are
    ``<clip>/<frame>`` and values encoded images. For every clip and every start offset
    ``s in [0, len - cr)`` the frames from ``s`` on are cut into consecutive groups of ``cr``.
    Each sample: Y channel in [0, 1]; with ``augment``: random resize (p 0.5, x0.8..1.2), random crop
    (p 0.5, size in [size/2, image)), horizontal flip (p 0.5), 180-degree flip (p 0.5), all drawn once
    per sample; then resize to ``size``; ``meas = sum_k mask_k * frame_k``.
    Returns ``(meas (H, W), gt (cr, H, W))`` float32.
    """

    def __init__(self, root, mask, size=None, augment=True, seed=None):
        self.mask = _as_mask(mask)
        self.cr, height, width = self.mask.shape
        self.size = tuple(size) if size else (height, width)
        if self.size != (height, width):
            raise SCIDataError(f"{root}: training size {self.size} does not match the mask {height}x{width}")
        self.augment = augment
        self.rng = np.random.RandomState(seed)
        self.root = str(root)
        self._env = None
        self.clips = self._list_clips()
        self._frames = dict(self.clips)
        self.samples = []
        for clip, frames in self.clips:
            for start in range(max(len(frames) - self.cr, 0)):
                for first in range(start, len(frames) - self.cr + 1, self.cr):
                    self.samples.append((clip, first))
        if not self.samples:
            raise SCIDataError(f"{root}: no clip with more than {self.cr} frames")

    def _list_clips(self):
        if os.path.isfile(os.path.join(self.root, "data.mdb")):
            import lmdb

            self._env = lmdb.open(self.root, readonly=True, lock=False, readahead=False)
            clips = {}
            with self._env.begin() as txn:
                for key in txn.cursor().iternext(values=False):
                    clip, _, frame = key.decode().rpartition("/")
                    if clip:
                        clips.setdefault(clip, []).append(key.decode())
            return [(c, sorted(f)) for c, f in sorted(clips.items())]
        if not os.path.isdir(self.root):
            raise SCIDataError(f"{self.root}: DAVIS folder not found (expected <root>/<clip>/*.jpg or an LMDB)")
        clips = []
        for clip in sorted(os.listdir(self.root)):
            folder = os.path.join(self.root, clip)
            if os.path.isdir(folder):
                frames = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpg", ".jpeg", ".png")))
                clips.append((clip, [os.path.join(folder, f) for f in frames]))
        return clips

    def __len__(self):
        return len(self.samples)

    def _read(self, ref):
        import cv2

        if self._env is not None:
            with self._env.begin() as txn:
                buf = txn.get(ref.encode())
            img = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR)
        else:
            img = cv2.imread(ref, cv2.IMREAD_COLOR)
        if img is None:
            raise SCIDataError(f"{self.root}: cannot decode frame '{ref}'")
        return bgr_to_y(img)

    def _augment(self, frames):
        import cv2

        rng = self.rng
        height, width = frames[0].shape
        if rng.rand() < 0.5:
            factor = rng.uniform(0.8, 1.2)
            size = (max(int(width * factor), 1), max(int(height * factor), 1))
            frames = [cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames]
            height, width = frames[0].shape
        if rng.rand() < 0.5:
            ch = rng.randint(min(self.size[0] // 2, height - 1), height) if height > 1 else height
            cw = rng.randint(min(self.size[1] // 2, width - 1), width) if width > 1 else width
            top, left = rng.randint(0, height - ch + 1), rng.randint(0, width - cw + 1)
            frames = [f[top:top + ch, left:left + cw] for f in frames]
        if rng.rand() < 0.5:
            frames = [f[:, ::-1] for f in frames]
        if rng.rand() < 0.5:
            frames = [f[::-1, ::-1] for f in frames]
        return frames

    def __getitem__(self, index):
        import cv2

        clip, first = self.samples[index]
        refs = self._frames[clip][first:first + self.cr]
        frames = [self._read(r) for r in refs]
        if self.augment:
            frames = self._augment(frames)
        out_h, out_w = self.size
        frames = [
            f if f.shape == (out_h, out_w) else cv2.resize(np.ascontiguousarray(f), (out_w, out_h), interpolation=cv2.INTER_LINEAR)
            for f in frames
        ]
        gt = np.stack(frames).astype(np.float32)
        meas = (self.mask * gt).sum(axis=0)
        return meas.astype(np.float32), gt

"""Video-SCI training samples for :class:`mindediting.data.transforms.TrainLoader` (used by ``train.py``).

:class:`SCITrainSet` wraps :class:`mindediting.data.sci.DavisSCIDataset` (DAVIS layout or LMDB, the
toolbox augmentation: random resize, random crop, h-flip, 180-degree flip, resize to ``crop_size``) and
makes the measurement on the fly. ``get(index, epoch)`` is a pure function of ``(seed, epoch, index)`` (its
random draws come from a generator seeded with them), so a resumed run sees the same samples.

Masks (``train.mask_path`` / ``train.mask_shape``, as the toolbox's ``generate_masks``):

* a ``.mat`` mask of the sample size (``crop_size``): the fixed mask of the run (MetaSCI recipe);
* ``mask_path`` null and ``mask_shape (h, w, cr)``: one random binary mask drawn once from the seed and
  kept for the whole run (EfficientSCI / Q-SCI recipe);
* ``mask_path`` with ``mask_shape``: a random crop of the file's mask taken once.

``patch_size`` (beyond the toolbox, for small CPU runs): after the toolbox pipeline has made a
``crop_size`` sample, a random ``patch_size`` square is cut from it, and the mask patch is cut at a random
position of the (larger) mask, so a fully convolutional network sees every part of the mask it is
tested with.

Each sample: ``(meas (h, w), mask (cr, h, w), mask_s (h, w), gt (cr, h, w))`` float32 with
``meas = sum_k mask_k * gt_k`` and ``mask_s`` the mask sum with zeros replaced by 1.
"""
import numpy as np

from mindediting.data.sci import DavisSCIDataset, SCIDataError, load_mask, mask_sum


def build_train_mask(mask_path=None, mask_shape=None, seed=0):
    """The run's mask ``(cr, H, W)`` float32 (see the module docstring)."""
    if mask_path is None and mask_shape is None:
        raise SCIDataError("train.mask_path / train.mask_shape: give a mask file or the shape (h, w, cr) of a random mask")
    mask, _ = load_mask(mask_path, mask_shape, rng=np.random.RandomState(seed))
    return mask


class SCITrainSet:
    """``get(index, epoch) -> (meas, mask, mask_s, gt)`` from DAVIS-layout clips (see the module docstring)."""

    def __init__(self, root, mask, crop_size=256, patch_size=None, augment=True, frames=None, seed=0):
        self.mask = np.asarray(mask, dtype=np.float32)
        if self.mask.ndim != 3:
            raise SCIDataError(f"training mask should be (cr, H, W), got shape {self.mask.shape}")
        self.cr = self.mask.shape[0]
        if frames is not None and int(frames) != self.cr:
            raise SCIDataError(f"train.frames is {frames} but the mask has {self.cr} frames")
        self.crop = int(crop_size)
        self.patch = int(patch_size) if patch_size else None
        mh, mw = self.mask.shape[1:]
        if self.patch is None:
            if (mh, mw) != (self.crop, self.crop):
                raise SCIDataError(f"train.crop_size {self.crop} does not match the mask {mh}x{mw} (set train.patch_size "
                                   "to train on patches)")
        else:
            if self.patch > self.crop or self.patch > min(mh, mw):
                raise SCIDataError(f"train.patch_size {self.patch} is larger than crop_size {self.crop} or the mask {mh}x{mw}")
            if self.patch % 2:
                raise SCIDataError(f"train.patch_size {self.patch} must be even")
        self.seed = int(seed)
        # the base set only supplies clips, frame reading and the toolbox augmentation (its own mask is unused)
        self.base = DavisSCIDataset(root, np.zeros((self.cr, self.crop, self.crop), np.float32), augment=augment,
                                    seed=self.seed)

    def __len__(self):
        return len(self.base)

    def get(self, index, epoch=0):
        rng = np.random.RandomState(np.random.SeedSequence([self.seed, int(epoch), int(index)]).generate_state(1))
        self.base.rng = rng
        _, gt = self.base[int(index)]
        mask = self.mask
        if self.patch is not None:
            p = self.patch
            top, left = rng.randint(0, self.crop - p + 1), rng.randint(0, self.crop - p + 1)
            gt = gt[:, top:top + p, left:left + p]
            mh, mw = mask.shape[1:]
            top, left = rng.randint(0, mh - p + 1), rng.randint(0, mw - p + 1)
            mask = mask[:, top:top + p, left:left + p]
        gt = np.ascontiguousarray(gt, dtype=np.float32)
        mask = np.ascontiguousarray(mask, dtype=np.float32)
        meas = (mask * gt).sum(axis=0).astype(np.float32)
        return meas, mask, mask_sum(mask), gt

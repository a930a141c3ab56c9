"""Vimeo-90K septuplet training set for recurrent video SR (mmagic ``basicvsr_2xb4_vimeo90k-bi/bd``).

``meta_file`` lists septuplets (``00001/0001``); frames ``im1``..``im7`` come from folders
(``<root>/00001/0001/im1.png``) or LMDBs with keys ``00001/0001/im1``. All 7 GT frames are used
(recurrent training). Paired random crop, flips/transpose, optional ``random_reverse`` and, as mmagic,
``mirror`` (7 -> 14 frames).
"""
import os

from mindediting.data.lmdb_io import open_store
from mindediting.data.transforms import augment, mirror_sequence, paired_random_crop, sample_rng, to_chw_float


def read_septuplet_list(meta_file):
    if not os.path.isfile(meta_file):
        raise ValueError(f"{meta_file}: Vimeo90K list file not found")
    with open(meta_file, encoding="utf-8") as handle:
        clips = [line.strip().split(" ")[0] for line in handle if line.strip()]
    if not clips:
        raise ValueError(f"{meta_file}: no septuplets listed")
    return clips


class Vimeo90KTrainSet:
    def __init__(self, gt_root, lq_root, meta_file, num_frames=7, gt_patch_size=256, scale=4,
                 random_reverse=False, use_hflip=True, use_vflip=True, use_transpose=True, mirror=True, seed=0):
        self.gt, self.lq = open_store(gt_root), open_store(lq_root)
        self.clips = read_septuplet_list(meta_file)
        if not 1 <= int(num_frames) <= 7:
            raise ValueError(f"num_frames {num_frames} must be 1..7 for Vimeo90K septuplets")
        self.num_frames, self.gt_patch_size, self.scale = int(num_frames), int(gt_patch_size), int(scale)
        self.random_reverse, self.mirror = bool(random_reverse), bool(mirror)
        self.flips = dict(hflip=use_hflip, vflip=use_vflip, transpose=use_transpose)
        self.seed = int(seed)
        first = f"{self.clips[0]}/im1"
        if first not in self.gt or first not in self.lq:
            raise ValueError(f"{gt_root} / {lq_root}: key '{first}' (first line of {meta_file}) not found")

    def __len__(self):
        return len(self.clips)

    def get(self, index, epoch=0):
        rng = sample_rng(self.seed, epoch, index)
        clip = self.clips[index]
        first = (7 - self.num_frames) // 2 + 1
        keys = [f"{clip}/im{i}" for i in range(first, first + self.num_frames)]
        if self.random_reverse and rng.random() < 0.5:
            keys.reverse()
        gts = [self.gt.get(k) for k in keys]
        lqs = [self.lq.get(k) for k in keys]
        gts, lqs = paired_random_crop(gts, lqs, self.gt_patch_size, self.scale, rng, where=f"{clip}: ")
        gts, lqs = augment([gts, lqs], rng, **self.flips)
        if self.mirror:
            gts, lqs = mirror_sequence(gts), mirror_sequence(lqs)
        return to_chw_float(lqs), to_chw_float(gts)

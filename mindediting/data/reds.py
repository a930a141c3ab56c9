"""REDS training set for recurrent video SR (BasicSR ``REDSRecurrentDataset`` / mmagic REDS4 recipe).

GT and LQ come from folders (``<root>/<clip>/<frame:08d>.png``) or BasicSR LMDBs with the same keys
(``000/00000000``). One sample per (clip, frame): the window starts at that frame (or at a random
start when it would run past the clip end), with a frame ``interval`` drawn from ``interval_list``;
``random_reverse`` reverses it half the time; then a paired random crop and flips/transpose.
Validation clips (``val_partition``: REDS4 ``000 011 015 020`` or ``official`` ``240``-``269``) are left out.
"""
from mindediting.data.lmdb_io import open_store
from mindediting.data.transforms import augment, mirror_sequence, paired_random_crop, sample_rng, to_chw_float

PARTITIONS = {
    "REDS4": ["000", "011", "015", "020"],
    "official": [f"{i:03d}" for i in range(240, 270)],
    "none": [],
}


class ClipWindows:
    """Sampling of frame windows shared by the clip-folder training sets (REDS, DAVIS denoising): one sample per
    (clip, frame); subclasses set ``clips`` (clip -> sorted frame names), ``num_frames``, ``interval_list``,
    ``random_reverse`` and call :meth:`index_windows`."""

    @staticmethod
    def frames_by_clip(keys):
        """``{clip: [frame names]}`` from ``<clip>/<frame>`` store keys (keys without a clip are ignored)."""
        frames = {}
        for key in keys:
            clip, _, frame = key.rpartition("/")
            if clip:
                frames.setdefault(clip, []).append(frame)
        return frames

    def index_windows(self, gt_root):
        """Refuse clips shorter than one window; one sample per (clip, start frame)."""
        need = self.num_frames * max(self.interval_list)
        short = [c for c, f in self.clips.items() if len(f) < need]
        if short:
            raise ValueError(f"{gt_root}: clip '{short[0]}' has {len(self.clips[short[0]])} frames, "
                             f"fewer than num_frames x max interval = {need}")
        self.samples = [(c, i) for c, f in self.clips.items() for i in range(len(f))]

    def __len__(self):
        return len(self.samples)

    def frame_keys(self, index, rng):
        """Keys of the window of sample ``index``: starts at its frame (random start when it would run past the
        clip end), frame interval drawn from ``interval_list``, reversed half the time with ``random_reverse``."""
        clip, start = self.samples[index]
        names = self.clips[clip]
        interval = int(rng.choice(self.interval_list))
        last_start = len(names) - self.num_frames * interval
        if start > last_start:
            start = int(rng.integers(0, last_start + 1))
        keys = [f"{clip}/{names[i]}" for i in range(start, start + self.num_frames * interval, interval)]
        if self.random_reverse and rng.random() < 0.5:
            keys.reverse()
        return keys


class REDSTrainSet(ClipWindows):
    def __init__(self, gt_root, lq_root, num_frames=15, gt_patch_size=256, scale=4, interval_list=(1,),
                 random_reverse=False, use_hflip=True, use_vflip=True, use_transpose=True,
                 val_partition="REDS4", clips=None, mirror=False, seed=0):
        if val_partition not in PARTITIONS:
            raise ValueError(f"val_partition '{val_partition}' must be one of {', '.join(PARTITIONS)}")
        self.gt, self.lq = open_store(gt_root), open_store(lq_root)
        self.num_frames, self.gt_patch_size, self.scale = int(num_frames), int(gt_patch_size), int(scale)
        self.interval_list = [int(i) for i in interval_list]
        self.random_reverse, self.mirror = bool(random_reverse), bool(mirror)
        self.flips = dict(hflip=use_hflip, vflip=use_vflip, transpose=use_transpose)
        self.seed = int(seed)
        frames = self.frames_by_clip(self.gt.keys())
        skip = set(PARTITIONS[val_partition])
        wanted = [c for c in (clips or sorted(frames)) if c not in skip]
        missing = [c for c in wanted if c not in frames]
        if missing:
            raise ValueError(f"{gt_root}: clip '{missing[0]}' not found")
        self.clips = {c: sorted(frames[c]) for c in wanted}
        self.index_windows(gt_root)
        if not self.samples:
            raise ValueError(f"{gt_root}: no training clips left after removing the {val_partition} partition")

    def get(self, index, epoch=0):
        """``(lq (T,3,h,w), gt (T,3,H,W))`` float32 in [0, 1] for sample ``index`` of ``epoch``."""
        rng = sample_rng(self.seed, epoch, index)
        keys = self.frame_keys(index, rng)
        gts = [self.gt.get(k) for k in keys]
        lqs = [self.lq.get(k) for k in keys]
        gts, lqs = paired_random_crop(gts, lqs, self.gt_patch_size, self.scale, rng, where=f"{keys[0]}: ")
        gts, lqs = augment([gts, lqs], rng, **self.flips)
        if self.mirror:
            gts, lqs = mirror_sequence(gts), mirror_sequence(lqs)
        return to_chw_float(lqs), to_chw_float(gts)

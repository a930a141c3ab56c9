"""Test sets for video super-resolution in their standard folder layouts.

* ``reds4``: ``<root>/<gt_dir>/<clip>/<frame:08d>.png`` (default ``train_sharp``) and
  ``<root>/<lq_dir>/<clip>/...`` (default ``train_sharp_bicubic/X4``) for the REDS4 clips
  000, 011, 015, 020; every frame is scored.
* ``vimeo90k_test``: ``<root>/<gt_dir>/<seq>/im1.png..im7.png`` (default ``sequences``) and
  ``<root>/<lq_dir>/<seq>/im1..7.png`` (default ``BIx4``), sequences listed in ``<root>/<meta_file>``
  (default ``sep_testlist.txt``, lines ``00001/0266``); only the centre frame ``im4`` is scored.
* ``video_folder``: any ``<root>/<gt_dir>/<clip>/*.png`` with ``<root>/<lq_dir>/<clip>/*.png``
  (same file names), every frame scored.

A clip is a :class:`~mindediting.data.clips.TestClip` holding file paths; frames are read when the clip is
evaluated.
"""
import os

from mindediting.data.clips import TestClip
from mindediting.data.video_io import list_image_files

REDS4_CLIPS = ["000", "011", "015", "020"]

DEFAULTS = {
    "reds4": {"gt_dir": "train_sharp", "lq_dir": "train_sharp_bicubic/X4", "clips": REDS4_CLIPS},
    "vimeo90k_test": {"gt_dir": "sequences", "lq_dir": "BIx4", "meta_file": "sep_testlist.txt"},
    "video_folder": {"gt_dir": "gt", "lq_dir": "lq"},
}


def build_test_set(data_cfg):
    """The list of :class:`TestClip` described by a config's ``data`` section."""
    name = data_cfg.get("dataset")
    if str(name).startswith("vrt_"):  # the VRT tasks' test sets (main_test_vrt.py layouts)
        from mindediting.data.vrt_testsets import build_vrt_test_set

        return build_vrt_test_set(data_cfg)
    if name not in DEFAULTS:
        raise ValueError(f"data.dataset '{name}' is not a video SR test set (valid: {', '.join(DEFAULTS)})")
    cfg = {**DEFAULTS[name], **{k: v for k, v in data_cfg.items() if v is not None}}
    root = cfg.get("root")
    if not root or not os.path.isdir(root):
        raise FileNotFoundError(f"data.root: dataset folder not found: {root}")
    gt_root, lq_root = os.path.join(root, cfg["gt_dir"]), os.path.join(root, cfg["lq_dir"])
    for folder, key in ((gt_root, "data.gt_dir"), (lq_root, "data.lq_dir")):
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{key}: folder not found: {folder}")
    if name == "vimeo90k_test":
        return _vimeo_clips(root, gt_root, lq_root, cfg["meta_file"])
    clips = cfg.get("clips") or sorted(d for d in os.listdir(gt_root) if os.path.isdir(os.path.join(gt_root, d)))
    return [_all_frames_clip(str(c), gt_root, lq_root, int(cfg.get("num_frames") or 0)) for c in clips]


def _all_frames_clip(clip, gt_root, lq_root, num_frames):
    gt_files = list_image_files(os.path.join(gt_root, clip))
    lq_files = list_image_files(os.path.join(lq_root, clip))
    if num_frames:
        gt_files, lq_files = gt_files[:num_frames], lq_files[:num_frames]
    gt_names = [os.path.basename(f) for f in gt_files]
    lq_names = [os.path.basename(f) for f in lq_files]
    if gt_names != lq_names:
        missing = sorted(set(gt_names) ^ set(lq_names))
        raise ValueError(f"clip {clip}: GT and LQ frames differ ({len(gt_names)} vs {len(lq_names)}; e.g. {missing[:3]})")
    if not gt_files:
        raise FileNotFoundError(f"clip {clip}: no frames in {os.path.join(gt_root, clip)}")
    return TestClip(clip, lq_files, gt_files, list(range(len(gt_files))))


def _vimeo_clips(root, gt_root, lq_root, meta_file):
    meta_path = os.path.join(root, meta_file)
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(f"data.meta_file: test list not found: {meta_path}")
    with open(meta_path, encoding="utf-8") as handle:
        sequences = [line.split()[0] for line in handle if line.strip()]
    clips = []
    for seq in sequences:
        lq_files = [os.path.join(lq_root, seq, f"im{i}.png") for i in range(1, 8)]
        gt_file = os.path.join(gt_root, seq, "im4.png")
        for path in lq_files + [gt_file]:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"Vimeo90K-T sequence {seq}: missing {path}")
        clips.append(TestClip(seq, lq_files, [gt_file], [3]))
    return clips

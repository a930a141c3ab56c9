"""SCI measurement model and loaders: golden ``sixgray_loader`` plus hand-made .mat files."""
import numpy as np
import pytest
import scipy.io as sio

from mindediting.data.sci import (
    A,
    At,
    DavisSCIDataset,
    SCIDataError,
    find_sixgray_scenes,
    init_estimate,
    load_mask,
    load_real_scene,
    load_sixgray_scene,
    mask_sum,
    real_cr_from_name,
    scene_name,
)
from tests.golden import golden_dir, load, load_config, shared_data


def test_forward_and_adjoint_by_hand():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    mask = np.array([[[1, 0], [0, 1]], [[1, 1], [0, 0]], [[0, 0], [0, 0]]], dtype=np.float32)
    y = A(x, mask)
    assert y.shape == (2, 1, 2, 2)
    # pixel (0,0) of sample 0: frames 0 and 1 coded -> x[0,0,0,0] + x[0,1,0,0] = 0 + 4
    assert y[0, 0, 0, 0] == 4 and y[0, 0, 1, 0] == 0 and y[1, 0, 1, 1] == x[1, 0, 1, 1]
    back = At(y, mask)
    assert back.shape == x.shape and np.all(back[:, 2] == 0)
    # adjoint identity <A x, y> == <x, At y>
    r = np.random.RandomState(0).rand(2, 1, 2, 2)
    assert np.isclose((A(x, mask) * r).sum(), (x * At(r, mask)).sum())
    mask_s = mask_sum(mask)
    np.testing.assert_array_equal(mask_s, [[2, 1], [1, 1]])  # the zero at (1,0) becomes 1
    np.testing.assert_allclose(init_estimate(y, mask, mask_s)[0, 1, 0, 1], y[0, 0, 0, 1] / 1 * 2)


def test_sixgray_loader_matches_golden():
    folder = golden_dir("sixgray_loader", need=("meas.npy",))
    cfg = load_config(folder)
    scene = load_sixgray_scene(shared_data("sci", "simulation", "drop8_cacti.mat"), shared_data("sci", "mask", "mask.mat"))
    atol = cfg["tolerance"]["atol"]
    assert scene["name"] == "drop"
    assert scene["gt"].shape == tuple(cfg["outputs"]["gt_shape"])
    assert np.isclose(scene["gt"].sum(), cfg["outputs"]["gt_sum"])
    np.testing.assert_allclose(scene["meas"], load(folder, "meas.npy"), rtol=0, atol=atol)
    np.testing.assert_allclose(scene["mask_s"], load(folder, "mask_s.npy"), rtol=0, atol=atol)
    assert scene["mask"].shape == (8, 256, 256) and scene["mask"].dtype == np.float32


def test_traffic_has_six_measurements_and_missing_scenes_are_listed():
    root = shared_data("sci", "simulation")
    found, missing = find_sixgray_scenes(root)
    assert set(found) == {"drop", "runner", "traffic"}
    assert missing == ["kobe", "aerial", "vehicle"]
    scene = load_sixgray_scene(found["traffic"], shared_data("sci", "mask", "mask.mat"))
    assert scene["gt"].shape == (6, 8, 256, 256) and scene["meas"].shape == (6, 256, 256)
    np.testing.assert_allclose(scene["meas"], A(scene["gt"], scene["mask"])[:, 0], atol=1e-12)
    assert scene_name("crash32_cacti.mat") == "vehicle" and scene_name("kobe32_cacti.mat") == "kobe"


def test_bad_files_give_one_line_errors(tmp_path):
    bad = tmp_path / "bad_cacti.mat"
    sio.savemat(bad, {"frames": np.zeros((4, 4, 8), np.uint8)})
    mask = np.ones((8, 4, 4), np.float32)
    with pytest.raises(SCIDataError, match=r"bad_cacti.mat: missing key 'orig/patch_save/p1/p2/p3' \(keys found: frames\)"):
        load_sixgray_scene(bad, mask)
    small = tmp_path / "small_cacti.mat"
    sio.savemat(small, {"orig": np.zeros((4, 4, 4), np.uint8)})
    with pytest.raises(SCIDataError, match="small_cacti.mat: key 'orig' has 4 frames, fewer than the mask's 8"):
        load_sixgray_scene(small, mask)
    with pytest.raises(SCIDataError, match="nothere.mat: file not found"):
        load_mask(str(tmp_path / "nothere.mat"))
    nomask = tmp_path / "nomask.mat"
    sio.savemat(nomask, {"Phi": np.ones((4, 4, 8))})
    with pytest.raises(SCIDataError, match="nomask.mat: missing key 'mask'"):
        load_mask(str(nomask))


def test_real_loader_checks_the_mask(tmp_path):
    meas_path = shared_data("sci", "real_data", "cr10", "meas_waterBalloon_cr_10.mat")
    assert real_cr_from_name(meas_path) == 10
    with pytest.raises(SCIDataError, match=r"mask.mat: key 'mask' has shape \(256, 256, 8\), expected \(512, 512, >=10\)"):
        load_real_scene(meas_path, shared_data("sci", "mask", "mask.mat"), 10)
    few = tmp_path / "few.mat"
    sio.savemat(few, {"mask": np.ones((512, 512, 8), np.uint8)})
    with pytest.raises(SCIDataError, match="few.mat: key 'mask' has 8 frames, fewer than the compression ratio 10"):
        load_real_scene(meas_path, str(few), 10)
    good = tmp_path / "real_mask.mat"
    rng = np.random.RandomState(1)
    sio.savemat(good, {"mask": rng.randint(0, 2, (512, 512, 12)).astype(np.uint8)})
    scene = load_real_scene(meas_path, str(good), 10)
    raw = sio.loadmat(meas_path)["meas"]
    assert scene["meas"].shape == (1, 512, 512) and scene["mask"].shape == (10, 512, 512)
    np.testing.assert_allclose(scene["meas"][0], raw / 255 * 10 / 2)
    np.testing.assert_array_equal(scene["mask"], np.transpose(sio.loadmat(good)["mask"][:, :, :10], (2, 0, 1)))


def test_mask_crop_and_random_mask():
    path = shared_data("sci", "mask", "mask.mat")
    full, full_s = load_mask(path)
    crop, crop_s = load_mask(path, mask_shape=(64, 32, 8), rng=np.random.RandomState(3))
    assert crop.shape == (8, 64, 32)
    # the crop is a window of the full mask
    hits = [
        (t, l) for t in range(256 - 64 + 1) for l in range(256 - 32 + 1) if np.array_equal(full[:, t:t + 64, l:l + 32], crop)
    ][:1]
    assert hits
    rnd, rnd_s = load_mask(None, mask_shape=(16, 16, 8), rng=np.random.RandomState(0))
    assert set(np.unique(rnd)) <= {0.0, 1.0} and rnd_s.min() >= 1


def _write_clip(folder, frames, size=(40, 48), seed=0):
    import cv2

    folder.mkdir(parents=True)
    rng = np.random.RandomState(seed)
    images = []
    for i in range(frames):
        img = rng.randint(0, 256, (size[0], size[1], 3)).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i:05d}.png"), img)
        images.append(img)
    return images


def test_davis_dataset_folder_and_lmdb(tmp_path):
    import cv2
    import lmdb

    images = _write_clip(tmp_path / "davis" / "clipA", 10)
    mask = np.random.RandomState(2).randint(0, 2, (8, 40, 48)).astype(np.float32)
    ds = DavisSCIDataset(tmp_path / "davis", mask, augment=False)
    # offsets 0 and 1 give one group each (10 frames, cr 8)
    assert len(ds) == 2
    meas, gt = ds[1]
    y = np.stack([cv2.cvtColor(im, cv2.COLOR_BGR2YCrCb)[:, :, 0] for im in images[1:9]]).astype(np.float32) / 255
    np.testing.assert_allclose(gt, y, atol=1e-7)
    np.testing.assert_allclose(meas, (mask * y).sum(0), atol=1e-5)
    env = lmdb.open(str(tmp_path / "davis.lmdb"), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i, im in enumerate(images):
            txn.put(f"clipA/{i:05d}".encode(), cv2.imencode(".png", im)[1].tobytes())
    env.close()
    ds2 = DavisSCIDataset(tmp_path / "davis.lmdb", mask, augment=False)
    meas2, gt2 = ds2[1]
    np.testing.assert_array_equal(gt2, gt)
    aug = DavisSCIDataset(tmp_path / "davis", mask, augment=True, seed=0)
    for i in range(len(aug)):
        m, g = aug[i]
        assert m.shape == (40, 48) and g.shape == (8, 40, 48) and 0 <= g.min() and g.max() <= 1

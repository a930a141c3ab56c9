"""BasicSR-compatible LMDB: byte-exact against the golden, resume after a hard crash, shape checks, CLI."""
import os
import shutil
import subprocess
import sys

import cv2
import lmdb
import numpy as np
import pytest

from mindediting.data.lmdb_io import LmdbError, LmdbReader, is_complete, open_store, write_lmdb
from tests.golden import REPO, golden_dir, load_config

SCRIPT = os.path.join(REPO, "src", "scripts", "create_lmdb.py")


def _golden():
    folder = golden_dir("lmdb_example", need=("train_sharp.lmdb/meta_info.txt",))
    return folder, load_config(folder)


def _values(path):
    env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False)
    with env.begin() as txn:
        out = {bytes(k).decode(): bytes(v) for k, v in txn.cursor()}
    env.close()
    return out


def test_cli_matches_basicsr_golden(tmp_path):
    folder, cfg = _golden()
    out = tmp_path / "train_sharp.lmdb"
    res = subprocess.run([sys.executable, SCRIPT, "--dataset", "reds", "--input", os.path.join(folder, "train_sharp"),
                          "--output", str(out), "--num_workers", "2", "--batch", "4"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert (out / "meta_info.txt").read_text() == cfg["meta_info.txt"]
    ours, theirs = _values(out), _values(os.path.join(folder, "train_sharp.lmdb"))
    assert sorted(ours) == cfg["keys"]
    assert ours == theirs  # byte-identical PNG values
    assert is_complete(str(out))


def test_reader_decodes_golden_like_imread():
    folder, cfg = _golden()
    reader = LmdbReader(os.path.join(folder, "train_sharp.lmdb"))
    assert reader.keys() == cfg["keys"]
    for key in cfg["keys"]:
        bgr = cv2.imread(os.path.join(folder, "train_sharp", key + ".png"))
        np.testing.assert_array_equal(reader.get(key), bgr[..., ::-1])
    # the folder store gives the same frames under the same keys
    store = open_store(os.path.join(folder, "train_sharp"))
    assert store.keys() == cfg["keys"]
    np.testing.assert_array_equal(store.get("011/00000002"), reader.get("011/00000002"))
    with pytest.raises(LmdbError, match="key '999/00000000' is not in meta_info.txt"):
        reader.get("999/00000000")


def _frames(tmp_path, n_clips=2, n_frames=5):
    rng = np.random.default_rng(0)
    paths, keys = [], []
    for c in range(n_clips):
        os.makedirs(tmp_path / "src" / f"{c:03d}")
        for f in range(n_frames):
            path = str(tmp_path / "src" / f"{c:03d}" / f"{f:08d}.png")
            cv2.imwrite(path, rng.integers(0, 256, (8 + c, 10, 3), dtype=np.uint8))
            paths.append(path)
            keys.append(f"{c:03d}/{f:08d}")
    return paths, keys


CRASH = """
import os, sys
sys.path.insert(0, {repo!r})
from mindediting.data.lmdb_io import write_lmdb
def boom(done):
    if done >= 4:
        os._exit(7)   # hard crash: no cleanup, no exception handlers
write_lmdb({paths!r}, {keys!r}, {out!r}, batch=2, progress=False, on_commit=boom)
"""


def test_resume_after_hard_crash(tmp_path):
    paths, keys = _frames(tmp_path)
    out = str(tmp_path / "x.lmdb")
    res = subprocess.run([sys.executable, "-c", CRASH.format(repo=REPO, paths=paths, keys=keys, out=out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 7, res.stderr
    # the interrupted store does not look complete and cannot be read
    assert not is_complete(out) and not os.path.exists(os.path.join(out, "meta_info.txt"))
    with pytest.raises(LmdbError, match="no meta_info.txt; the LMDB is incomplete"):
        LmdbReader(out)
    assert len(_values(out)) == 4  # two committed batches survived
    seen = []
    written = write_lmdb(paths, keys, out, batch=2, progress=False, on_commit=seen.append)
    assert written == len(keys) - 4 and seen[0] == 6  # resumed, did not start over
    reader = LmdbReader(out)
    assert reader.keys() == keys
    for key, path in zip(keys, paths):
        np.testing.assert_array_equal(reader.get(key), cv2.imread(path)[..., ::-1])
    assert reader.meta["001/00000000"] == (9, 10, 3)
    # a third run sees a complete store and writes nothing
    assert write_lmdb(paths, keys, out, progress=False) == 0


def test_shape_mismatch_and_errors(tmp_path):
    paths, keys = _frames(tmp_path, 1, 2)
    out = tmp_path / "y.lmdb"
    write_lmdb(paths, keys, str(out), progress=False)
    meta = (out / "meta_info.txt").read_text().replace("(8,10,3)", "(9,10,3)", 1)
    (out / "meta_info.txt").write_text(meta)
    with pytest.raises(LmdbError, match=r"key '000/00000000' decodes to \(8, 10\) but meta_info.txt says \(9,10\)"):
        LmdbReader(str(out)).get("000/00000000")
    (out / "meta_info.txt").write_text("garbage\n")
    with pytest.raises(LmdbError, match="line 1 'garbage' is not"):
        LmdbReader(str(out))
    with pytest.raises(LmdbError, match="must end with .lmdb"):
        write_lmdb(paths, keys, str(tmp_path / "z"), progress=False)
    shutil.rmtree(out)
    with pytest.raises(LmdbError, match="a complete LMDB with different keys"):
        write_lmdb(paths, keys, str(out), progress=False)
        write_lmdb(paths[:1], keys[:1], str(out), progress=False)


def test_cli_errors(tmp_path):
    res = subprocess.run([sys.executable, SCRIPT, "--dataset", "vimeo90k", "--input", str(tmp_path),
                          "--output", str(tmp_path / "v.lmdb"), "--meta_file", str(tmp_path / "nope.txt")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "nope.txt: Vimeo90K list file not found" in res.stderr
    res = subprocess.run([sys.executable, SCRIPT, "--dataset", "reds", "--input", str(tmp_path / "missing"),
                          "--output", str(tmp_path / "v.lmdb")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "missing: input folder not found" in res.stderr

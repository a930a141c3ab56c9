"""LMDB stores under faults (issue 16): the completion marker records data.mdb's size, the entry count and the
key list's checksum; a truncated data.mdb is a one-line error (never SIGBUS); BasicSR stores without a marker
stay readable; create_lmdb.py's argument and output-folder errors are one line."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from mindediting.data.lmdb_io import LmdbError, LmdbReader, check_store, keys_digest, write_lmdb
from tests.golden import REPO, golden_dir
from tests.test_lmdb import SCRIPT, _frames

READ = """
import sys
sys.path.insert(0, {repo!r})
from mindediting.data.lmdb_io import LmdbReader
from mindediting.utils.cli import run_cli
def body():
    reader = LmdbReader({out!r})
    for key in reader.keys():
        reader.get(key)
sys.exit(run_cli(body))
"""


@pytest.fixture
def store(tmp_path):
    paths, keys = _frames(tmp_path, 2, 6)
    out = tmp_path / "x.lmdb"
    write_lmdb(paths, keys, str(out), progress=False)
    return out, paths, keys


def test_marker_records_size_count_and_key_checksum(store):
    out, _, keys = store
    marker = json.loads((out / ".complete").read_text())
    assert marker == {"entries": len(keys), "data_bytes": os.path.getsize(out / "data.mdb"),
                      "keys_sha1": keys_digest(keys)}
    check_store(out)


def test_truncated_data_with_intact_marker_is_one_line_exit_2_not_sigbus(store):
    out, paths, keys = store
    data = out / "data.mdb"
    size = os.path.getsize(data)
    os.truncate(data, size - 4096)
    res = subprocess.run([sys.executable, "-c", READ.format(repo=REPO, out=str(out))],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr  # was -7 (SIGBUS, exit 135 in a shell)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "create_lmdb.py" in lines[0]
    assert lines[0].startswith(f"error: {data}: {size - 4096} bytes")
    # the writer run again on it says the same instead of "already complete"
    res = subprocess.run([sys.executable, SCRIPT, "--dataset", "reds", "--input", os.path.dirname(paths[0]) + "/..",
                          "--output", str(out), "--num_workers", "1"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "bytes" in res.stderr


def test_marker_mismatches_are_named(store):
    out, _, keys = store
    marker_path = out / ".complete"
    marker = json.loads(marker_path.read_text())
    marker_path.write_text(json.dumps(dict(marker, entries=len(keys) + 1)))
    with pytest.raises(LmdbError, match=f"{len(keys)} entries, but the completion marker records {len(keys) + 1}"):
        LmdbReader(out)
    marker_path.write_text(json.dumps(dict(marker, keys_sha1="0" * 40)))
    with pytest.raises(LmdbError, match="meta_info.txt: its 12 keys are not the 12 the completion marker records"):
        LmdbReader(out)
    marker_path.write_text("half a mark")
    with pytest.raises(LmdbError, match=r"\.complete: not a completion marker"):
        LmdbReader(out)
    marker_path.write_text(f"{len(keys)}\n")  # the marker of earlier versions: the count is still checked
    assert LmdbReader(out).keys() == keys


def test_truncation_without_marker_is_caught_by_the_header(store, tmp_path):
    """A BasicSR-written store has no marker: data.mdb's own header names the pages it needs."""
    out, _, _ = store
    os.remove(out / ".complete")
    os.truncate(out / "data.mdb", os.path.getsize(out / "data.mdb") - 4096)
    with pytest.raises(LmdbError, match="but its header uses"):
        LmdbReader(out)


def test_basicsr_store_without_marker_stays_readable(tmp_path):
    folder = golden_dir("lmdb_example", need=("train_sharp.lmdb/meta_info.txt",))
    copy = tmp_path / "train_sharp.lmdb"
    shutil.copytree(os.path.join(folder, "train_sharp.lmdb"), copy)
    assert not (copy / ".complete").exists()
    reader = LmdbReader(copy)
    assert all(reader.get(k).ndim == 3 for k in reader.keys())


def test_vimeo_without_meta_file_says_so(tmp_path):
    res = subprocess.run([sys.executable, SCRIPT, "--dataset", "vimeo90k", "--input", str(tmp_path),
                          "--output", str(tmp_path / "v.lmdb")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr == ("error: --dataset vimeo90k needs --meta_file, the septuplet list of the Vimeo90K download "
                          "(sep_trainlist.txt or sep_testlist.txt)\n")
    assert not (tmp_path / "v.lmdb").exists()


def unwritable_folder(tmp_path):
    """A folder no one can write into, root included (tests run as root in CI containers): one below a file."""
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"")
    return blocker / "out"


def test_unwritable_output_is_one_line_before_any_work(tmp_path):
    paths, _ = _frames(tmp_path, 1, 2)
    res = subprocess.run([sys.executable, SCRIPT, "--dataset", "folder", "--input", str(tmp_path / "src"),
                          "--output", str(unwritable_folder(tmp_path) / "o.lmdb")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "o.lmdb: LMDB output folder is not writable" in res.stderr

"""mindediting.utils.atomic: temp file beside the destination, renamed on success, removed on failure."""
import os
import stat

import pytest

from mindediting.utils.atomic import AtomicPath, AtomicWriterMixin, atomic_path, write_bytes_atomic, write_text_atomic


def test_success_renames_into_place(tmp_path):
    dst = tmp_path / "sub" / "out.bin"
    with atomic_path(dst) as tmp:
        assert os.path.dirname(tmp) == str(dst.parent)  # same folder, so os.replace is a rename
        assert tmp.endswith(".partial.bin") and os.path.basename(tmp).startswith(".out.bin.")
        assert not dst.exists()
        with open(tmp, "wb") as handle:
            handle.write(b"new data")
    assert dst.read_bytes() == b"new data"
    assert os.listdir(dst.parent) == ["out.bin"]
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o644


def test_exception_leaves_no_destination_and_no_temp(tmp_path):
    dst = tmp_path / "out.txt"
    with pytest.raises(KeyError, match="boom"):
        with atomic_path(dst) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write("half")
            raise KeyError("boom")
    assert os.listdir(tmp_path) == []


def test_existing_destination_kept_on_failure(tmp_path):
    dst = tmp_path / "out.txt"
    dst.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(dst) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(b"partial new")
            raise RuntimeError("writer died")
    assert dst.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_existing_destination_replaced_on_success(tmp_path):
    dst = tmp_path / "out.txt"
    dst.write_bytes(b"old")
    assert write_bytes_atomic(dst, b"new") == dst
    assert dst.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.txt"]
    write_text_atomic(dst, "tekst \u00e9\n")
    assert dst.read_text(encoding="utf-8") == "tekst \u00e9\n"


def test_suffix_override_and_explicit_commit_discard(tmp_path):
    dst = tmp_path / "weights.bin"
    target = AtomicPath(dst, suffix=".ckpt")
    assert target.tmp.endswith(".partial.ckpt") and os.path.exists(target.tmp)
    with open(target.tmp, "wb") as handle:
        handle.write(b"x")
    assert target.commit() == str(dst)
    assert dst.read_bytes() == b"x"
    with pytest.raises(RuntimeError, match="already finished"):
        target.commit()
    target.discard()  # after a commit: does nothing
    assert dst.read_bytes() == b"x"
    other = AtomicPath(tmp_path / "video.mp4")
    other.discard()
    other.discard()  # idempotent
    assert sorted(os.listdir(tmp_path)) == ["weights.bin"]


def test_failed_rename_removes_temp(tmp_path):
    dst = tmp_path / "taken"
    dst.mkdir()
    (dst / "inside").write_bytes(b"")  # os.replace of a file onto a non-empty directory fails
    with pytest.raises(OSError):
        write_bytes_atomic(dst, b"data")
    assert sorted(os.listdir(tmp_path)) == ["taken"]


class _LineWriter(AtomicWriterMixin):
    """A streaming writer in the style of Mp4Writer / SpikeDatWriter."""

    def __init__(self, path):
        self.target = AtomicPath(path)
        self.handle = open(self.target.tmp, "w", encoding="utf-8")

    def write(self, line):
        self.handle.write(line + "\n")

    def close(self):
        self.handle.close()
        self.target.commit()

    def abort(self):
        self.handle.close()
        self.target.discard()


def test_writer_mixin_publishes_on_success_and_aborts_on_error(tmp_path):
    dst = tmp_path / "lines.txt"
    with _LineWriter(dst) as writer:
        writer.write("a")
        writer.write("b")
    assert dst.read_text(encoding="utf-8") == "a\nb\n"
    with pytest.raises(ValueError, match="frame 1 is bad"):
        with _LineWriter(dst) as writer:
            writer.write("c")
            raise ValueError("frame 1 is bad")
    assert dst.read_text(encoding="utf-8") == "a\nb\n" and os.listdir(tmp_path) == ["lines.txt"]


def test_a_mindspore_checkpoint_lands_readable_and_replaceable(tmp_path):
    """mindspore.save_checkpoint makes its file read-only (0400); the committed file is 0644 like every output."""
    import mindspore as ms
    import numpy as np

    dst = tmp_path / "w.ckpt"
    with atomic_path(dst, suffix=".ckpt") as tmp:
        ms.save_checkpoint([{"name": "w", "data": ms.Tensor(np.ones(2, np.float32))}], tmp)
        assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o400  # what MindSpore leaves
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o644
    assert ms.load_checkpoint(str(dst))["w"].asnumpy().tolist() == [1.0, 1.0]


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    """What a killed process leaves (a temporary of AtomicPath, MindSpore's .tmp beside it) goes; the user's
    files, hidden or named like ours but not hidden, stay; a missing folder is no error."""
    from mindediting.utils.atomic import remove_stale_temporaries

    left = AtomicPath(tmp_path / "frame.png")
    os.remove(left.tmp)  # as after kill -9: _PENDING dies with the process, the files stay
    names = [os.path.basename(left.tmp), ".w.ckpt.k1ll3d.partial.tmp", ".hidden", "notes.partial.txt", "a.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    remove_stale_temporaries(tmp_path)
    assert sorted(os.listdir(tmp_path)) == [".hidden", "a.png", "notes.partial.txt"]
    remove_stale_temporaries(tmp_path / "missing")
    left.discard()

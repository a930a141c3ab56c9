"""Atomic file writes: write under a temporary name beside the destination, then ``os.replace`` it.

The temporary file lives in the destination's own folder (so the final rename never crosses a file
system) and is named ``.<name>.<random>.partial<suffix>``; ``suffix`` defaults to the destination's
extension, because some writers pick the format from it (OpenCV's ``VideoWriter``, ``cv2.imwrite``,
``mindspore.save_checkpoint`` which appends ``.ckpt`` otherwise). A reader therefore sees either the
old file or the complete new one, never a half-written file, and a failed write leaves no debris.
The temporary file is fsynced before the rename and the folder after it, so after a power loss the
destination holds the old or the new bytes, not an empty file (ext4/xfs may commit a rename before the data).

Temporary files not yet committed or discarded are tracked: :func:`discard_pending` removes them all, which
:func:`mindediting.utils.cli.run_cli` does when a script is interrupted (Ctrl-C) or fails, so no hidden
``.partial`` file survives a script's end.

Two ways to use it:

* ``with atomic_path(dst) as tmp: write(tmp)`` -- renamed over ``dst`` when the block ends normally,
  removed (``dst`` untouched) when it raises;
* ``target = AtomicPath(dst)``, write to ``target.tmp`` over time, then ``target.commit()`` or
  ``target.discard()`` -- for streaming writers whose life is not one ``with`` block.
"""
import os
import tempfile

__all__ = ["AtomicPath", "AtomicWriterMixin", "atomic_path", "check_writable_dir", "discard_pending", "fsync_dir",
           "fsync_file", "remove_stale_temporaries", "write_bytes_atomic", "write_text_atomic"]

# AtomicPath objects whose temporary file still exists (neither committed nor discarded)
_PENDING = {}


class AtomicWriterMixin:
    """``with`` support for streaming writers: :meth:`close` (publish) when the block ends normally,
    :meth:`abort` (discard the partial file) when it raises; the exception is not swallowed."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


class AtomicPath(AtomicWriterMixin):
    """A temporary path beside ``dst``; :meth:`commit` renames it over ``dst``, :meth:`discard` deletes it.

    Creating it makes the destination folder if needed and an empty temporary file (mode 0644).
    """

    def __init__(self, dst, suffix=None):
        self.dst = os.fspath(dst)
        folder, name = os.path.split(os.path.abspath(self.dst))
        os.makedirs(folder, exist_ok=True)
        if suffix is None:
            suffix = os.path.splitext(name)[1]
        handle, self.tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".partial{suffix}", dir=folder)
        os.close(handle)
        _PENDING[id(self)] = self
        os.chmod(self.tmp, 0o644)
        self.finished = False
        self.committed = False

    def _debris(self):
        """The temporary file and what writers derive from its name: ``mindspore.save_checkpoint(tmp)`` writes
        ``<tmp without extension>.tmp`` and renames it to ``tmp`` only when it succeeds. The random part of
        the name makes these files ours alone."""
        return [self.tmp, os.path.splitext(self.tmp)[0] + ".tmp"]

    def commit(self):
        """fsync the temporary file, move it to ``dst`` (replacing it), fsync the folder; return ``dst``.
        On failure the temporary files are removed."""
        if self.finished:
            raise RuntimeError(f"{self.dst}: atomic write already finished")
        self.finished = True
        _PENDING.pop(id(self), None)
        try:
            # mindspore.save_checkpoint leaves its file read-only for the owner (0400); a checkpoint, weights
            # file or video this package writes is an ordinary file that others may read and the owner replace
            os.chmod(self.tmp, 0o644)
            fsync_file(self.tmp)
            os.replace(self.tmp, self.dst)
        except BaseException:
            for path in self._debris():
                _remove(path)
            raise
        self.committed = True
        fsync_dir(os.path.dirname(os.path.abspath(self.dst)))
        return self.dst

    def discard(self):
        """Delete the temporary files, leaving ``dst`` as it was; a no-op after :meth:`commit` or a first discard."""
        self.finished = True
        _PENDING.pop(id(self), None)
        if not self.committed:
            for path in self._debris():
                _remove(path)

    close = commit  # ``with``: commit when the block ends normally, discard when it raises
    abort = discard

    def __enter__(self):
        return self.tmp


def atomic_path(dst, suffix=None):
    """Context manager yielding a temporary path that becomes ``dst`` only if the block succeeds."""
    return AtomicPath(dst, suffix)


def write_bytes_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` atomically; return ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as stream:
            stream.write(data)
    return path


def write_text_atomic(path, text, encoding="utf-8"):
    """Write ``text`` to ``path`` atomically; return ``path``."""
    return write_bytes_atomic(path, text.encode(encoding))


def discard_pending():
    """Remove the temporary files of every atomic write still in progress in this process (after Ctrl-C or an
    error that ended a script before the writers could clean up); return how many writes were dropped."""
    pending = list(_PENDING.values())
    for target in pending:
        target.discard()
    return len(pending)


def remove_stale_temporaries(folder):
    """Remove from ``folder`` the temporary files of atomic writes a killed process (``kill -9``, power loss) left
    behind: those :func:`discard_pending` never saw. Only names this module makes (``.<name>.<random>.partial*``)
    are touched; a missing folder is fine. Call it before writing into ``folder`` again."""
    folder = str(folder)
    if not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        if name.startswith(".") and ".partial" in name:
            _remove(os.path.join(folder, name))


def fsync_file(path):
    """Flush ``path``'s data to the disk (it may have been written by a library that did not)."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def fsync_dir(folder):
    """Flush ``folder``'s entries (a rename or a new file in it) to the disk; skipped where folders cannot be
    opened (Windows) or fsynced (some network file systems)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def check_writable_dir(folder, what="output folder", create=True):
    """Prove that ``folder`` takes a file, before any work is done; a one-line ``OSError`` naming the folder
    otherwise (read-only, not a folder, no permission). ``create``: make ``folder`` if needed; without it
    nothing is left behind: a missing folder is judged by its nearest existing parent."""
    folder = str(folder)
    probe_in = folder
    try:
        if create:
            os.makedirs(folder, exist_ok=True)
        else:
            while not os.path.exists(probe_in):
                parent = os.path.dirname(os.path.abspath(probe_in))
                if parent == os.path.abspath(probe_in):
                    break
                probe_in = parent
        handle, probe = tempfile.mkstemp(prefix=".write_check.", dir=probe_in)
        os.close(handle)
        os.remove(probe)
    except OSError as err:
        raise OSError(f"{folder}: {what} is not writable ({err.strerror or err})") from None
    return folder

"""Atomic file writes: write under a temporary name beside the destination, then ``os.replace`` it.

The temporary file lives in the destination's own folder (so the final rename never crosses a file
system) and is named ``.<name>.<random>.partial<suffix>``; ``suffix`` defaults to the destination's
extension, because some writers pick the format from it (OpenCV's ``VideoWriter``, ``cv2.imwrite``,
``mindspore.save_checkpoint`` which appends ``.ckpt`` otherwise). A reader therefore sees either the
old file or the complete new one, never a half-written file, and a failed write leaves no debris.

Two ways to use it:

* ``with atomic_path(dst) as tmp: write(tmp)`` -- renamed over ``dst`` when the block ends normally,
  removed (``dst`` untouched) when it raises;
* ``target = AtomicPath(dst)``, write to ``target.tmp`` over time, then ``target.commit()`` or
  ``target.discard()`` -- for streaming writers whose life is not one ``with`` block.
"""
import os
import tempfile

__all__ = ["AtomicPath", "AtomicWriterMixin", "atomic_path", "check_writable_dir", "write_bytes_atomic",
           "write_text_atomic"]


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
        os.chmod(self.tmp, 0o644)
        self.finished = False
        self.committed = False

    def commit(self):
        """Move the temporary file to ``dst`` (replacing it); return ``dst``. On failure it is removed."""
        if self.finished:
            raise RuntimeError(f"{self.dst}: atomic write already finished")
        self.finished = True
        try:
            os.replace(self.tmp, self.dst)
        except BaseException:
            _remove(self.tmp)
            raise
        self.committed = True
        return self.dst

    def discard(self):
        """Delete the temporary file, leaving ``dst`` as it was; a no-op after :meth:`commit` or a first discard."""
        self.finished = True
        if not self.committed:
            _remove(self.tmp)

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


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def check_writable_dir(folder, what="output folder"):
    """Create ``folder`` if needed and prove it takes a file, before any work is done; a one-line
    ``OSError`` naming the folder otherwise (read-only, not a folder, no permission)."""
    folder = str(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write_check.", dir=folder)
        os.close(handle)
        os.remove(probe)
    except OSError as err:
        raise OSError(f"{folder}: {what} is not writable ({err.strerror or err})") from None
    return folder

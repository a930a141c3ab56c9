"""BasicSR-compatible LMDB image stores: write (resumable, crash-safe) and read (shape-checked).

Layout of ``X.lmdb/`` (as BasicSR ``make_lmdb_from_imgs`` writes it):

* ``data.mdb`` / ``lock.mdb``: the LMDB environment; key ``000/00000000`` (ASCII, no extension) maps to
  the PNG bytes of ``cv2.imencode('.png', bgr, [IMWRITE_PNG_COMPRESSION, level])``;
* ``meta_info.txt``: one line ``<key>.png (h,w,c) <compress_level>`` per image, in key order.

Crash safety: images are committed in batches; ``meta_info.txt`` and the ``.complete`` marker are
written atomically (fsynced) only after the last commit, so a store that a crash or a kill interrupted
has neither and :class:`LmdbReader` refuses it. Running the writer again on the same output resumes:
keys already committed are skipped, only the rest is read and encoded.

The marker is JSON: ``data.mdb``'s size in bytes, the entry count and the SHA-1 of the key list (keys of
``meta_info.txt`` joined by newlines). LMDB maps ``data.mdb`` into memory, so reading a page past the end
of a truncated file kills the process with SIGBUS; readers therefore compare the file with the marker,
and with the last page its own header names, before the file is mapped (:func:`check_store`). Stores
written by other tools (BasicSR: no marker) get the header check only.

Sources are read and encoded in worker processes (``num_workers``) while the parent commits.
"""
import hashlib
import json
import logging
import multiprocessing
import os
import re
import struct

import cv2
import numpy as np

from mindediting.utils.atomic import write_bytes_atomic

logger = logging.getLogger(__name__)

META_FILE = "meta_info.txt"
COMPLETE_MARKER = ".complete"
_META_LINE = re.compile(r"^(\S+)\.png \((\d+),(\d+),(\d+)\) (\d+)$")


class LmdbError(ValueError):
    """An LMDB store is missing, incomplete or inconsistent; the message names the path and key."""


def _encode(job):
    """Worker: read one image file and PNG-encode it as BasicSR does. Returns (key, bytes, shape)."""
    key, path, level = job
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise LmdbError(f"{path}: cannot read image for key '{key}'")
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:
        raise LmdbError(f"{path}: cannot PNG-encode image for key '{key}'")
    shape = img.shape if img.ndim == 3 else img.shape + (1,)
    return key, buf.tobytes(), tuple(int(s) for s in shape)


def _probe_bytes(path):
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise LmdbError(f"{path}: cannot read image")
    return img.nbytes


def _map_size(paths):
    """LMDB map size from the data: decoded size of the first and last image x count, with headroom."""
    per_image = max(_probe_bytes(paths[0]), _probe_bytes(paths[-1]))
    return int(per_image * len(paths) * 1.5) + (64 << 20)


DATA_FILE = "data.mdb"
_LMDB_MAGIC = 0xBEEFC0DE


def keys_digest(keys):
    """SHA-1 (hex) of a key list as the completion marker records it."""
    return hashlib.sha1("\n".join(keys).encode("ascii")).hexdigest()


def read_data_header(lmdb_path):
    """``(page_size, pages_in_use, entries)`` from the newer of ``data.mdb``'s two meta pages, read as a plain
    file (never mapped); None when the header is not the 64-bit little-endian LMDB 0.9 layout, which
    ``lmdb.open`` then judges itself. ``pages_in_use`` is the last used page number + 1."""
    path = os.path.join(str(lmdb_path), DATA_FILE)
    metas = []
    with open(path, "rb") as handle:
        first = handle.read(160)
        if len(first) < 160 or struct.unpack_from("<II", first, 16) != (_LMDB_MAGIC, 1):
            return None
        page_size = struct.unpack_from("<I", first, 40)[0]  # the free-list DB's md_pad holds the page size
        handle.seek(page_size)
        second = handle.read(160)
        for page in (first, second):
            if len(page) == 160 and struct.unpack_from("<I", page, 16)[0] == _LMDB_MAGIC:
                # MDB_meta after the 16-byte page header: magic, version, address, mapsize, free DB, main DB
                # (48 bytes each: pad, flags, depth, branch, leaf, overflow pages, entries, root), last page, txn id
                entries = struct.unpack_from("<Q", page, 88 + 32)[0]
                last_page, txn = struct.unpack_from("<QQ", page, 136)
                metas.append((txn, last_page, entries))
    _, last_page, entries = max(metas)
    return page_size, last_page + 1, entries


def read_marker(lmdb_path):
    """The completion marker as a dict (``entries``, ``data_bytes``, ``keys_sha1``); an older marker holding
    only the entry count gives ``{'entries': n}``."""
    path = os.path.join(str(lmdb_path), COMPLETE_MARKER)
    with open(path, encoding="ascii", errors="replace") as handle:
        text = handle.read().strip()
    try:
        marker = json.loads(text)
    except ValueError:
        marker = None
    if isinstance(marker, int):
        return {"entries": marker}
    if not isinstance(marker, dict) or not {"entries", "data_bytes", "keys_sha1"} <= set(marker):
        raise LmdbError(f"{path}: not a completion marker ({text[:60]!r}); run create_lmdb.py again to rewrite it")
    return marker


def check_store(lmdb_path, keys=None):
    """One-line :class:`LmdbError` unless ``data.mdb`` is whole: as long as its header's last page needs and,
    when the store has a completion marker, of the recorded size, entry count and key list (``keys``:
    those of ``meta_info.txt``, read when not given). Never maps the file."""
    lmdb_path = str(lmdb_path)
    data = os.path.join(lmdb_path, DATA_FILE)
    if not os.path.isfile(data):
        raise LmdbError(f"{lmdb_path}: no {DATA_FILE}; not an LMDB folder")
    size = os.path.getsize(data)
    redo = "; the store was truncated or changed after it was written - run create_lmdb.py again into a new folder"
    header = read_data_header(lmdb_path)
    if header is not None:
        page_size, pages, entries = header
        if size < pages * page_size:
            raise LmdbError(f"{data}: {size} bytes, but its header uses {pages} pages of {page_size} bytes "
                            f"({pages * page_size} bytes){redo}")
    if not os.path.isfile(os.path.join(lmdb_path, COMPLETE_MARKER)):
        return
    marker = read_marker(lmdb_path)
    if "data_bytes" in marker and size != int(marker["data_bytes"]):
        raise LmdbError(f"{data}: {size} bytes, but the completion marker records {marker['data_bytes']}{redo}")
    if header is not None and header[2] != int(marker["entries"]):
        raise LmdbError(f"{data}: {header[2]} entries, but the completion marker records {marker['entries']}{redo}")
    if "keys_sha1" in marker:
        if keys is None:
            keys = [k for k, _, _ in read_meta_info(lmdb_path)]
        if len(keys) != int(marker["entries"]) or keys_digest(keys) != marker["keys_sha1"]:
            raise LmdbError(f"{os.path.join(lmdb_path, META_FILE)}: its {len(keys)} keys are not the "
                            f"{marker['entries']} the completion marker records{redo}")


def is_complete(lmdb_path):
    return os.path.isfile(os.path.join(lmdb_path, COMPLETE_MARKER)) and os.path.isfile(
        os.path.join(lmdb_path, META_FILE))


def write_lmdb(paths, keys, lmdb_path, compress_level=1, batch=5000, num_workers=1, progress=True,
               on_commit=None):
    """Write images ``paths`` under ``keys`` into ``lmdb_path`` (BasicSR layout); resume when partial.

    ``on_commit(n_done)`` is called after every committed batch (used by tests to simulate a crash).
    Returns the number of images encoded in this run (0 when the store was already complete).
    """
    import lmdb
    from tqdm import tqdm

    paths, keys = [str(p) for p in paths], list(keys)
    if len(paths) != len(keys):
        raise LmdbError(f"{lmdb_path}: {len(paths)} images but {len(keys)} keys")
    if not paths:
        raise LmdbError(f"{lmdb_path}: no images to write")
    if len(set(keys)) != len(keys):
        raise LmdbError(f"{lmdb_path}: duplicate keys")
    for key in keys:
        if not key or " " in key or key.endswith(".png"):
            raise LmdbError(f"{lmdb_path}: invalid key '{key}' (no spaces, no .png extension)")
    if not str(lmdb_path).endswith(".lmdb"):
        raise LmdbError(f"{lmdb_path}: output path must end with .lmdb (BasicSR convention)")
    lmdb_path = str(lmdb_path)
    marker = os.path.join(lmdb_path, COMPLETE_MARKER)
    meta_path = os.path.join(lmdb_path, META_FILE)
    if is_complete(lmdb_path):
        existing = [k for k, _, _ in read_meta_info(lmdb_path)]
        if existing == keys:
            check_store(lmdb_path, existing)
            logger.info("%s is already complete (%d images); nothing to do", lmdb_path, len(keys))
            return 0
        raise LmdbError(f"{lmdb_path}: a complete LMDB with different keys already exists; remove it first")
    # a partial store: drop any stale meta/marker first so it can never look complete mid-way
    for stale in (marker, meta_path):
        if os.path.exists(stale):
            os.remove(stale)
    os.makedirs(lmdb_path, exist_ok=True)
    env = lmdb.open(lmdb_path, map_size=_map_size(paths))
    shapes = {}
    try:
        with env.begin() as txn:
            done = {bytes(k).decode("ascii") for k in txn.cursor().iternext(keys=True, values=False)}
        unknown = done - set(keys)
        if unknown:
            raise LmdbError(f"{lmdb_path}: partial LMDB holds key '{sorted(unknown)[0]}' that is not in this input; "
                            "remove it or use another --output")
        if done:
            logger.info("%s: resuming, %d of %d images already committed", lmdb_path, len(done), len(keys))
            with env.begin() as txn:
                for key in done:
                    img = cv2.imdecode(np.frombuffer(txn.get(key.encode("ascii")), np.uint8), cv2.IMREAD_UNCHANGED)
                    shapes[key] = img.shape if img.ndim == 3 else img.shape + (1,)
        jobs = [(k, p, compress_level) for k, p in zip(keys, paths) if k not in done]
        written = _write_jobs(env, jobs, batch, num_workers, shapes, lmdb_path, len(done), on_commit,
                              tqdm(total=len(keys), initial=len(done), desc=os.path.basename(lmdb_path),
                                   unit="img", disable=not progress))
    finally:
        env.close()
    lines = "".join(f"{k}.png ({','.join(str(s) for s in shapes[k])}) {compress_level}\n" for k in keys)
    write_bytes_atomic(meta_path, lines.encode("ascii"))
    record = {"entries": len(keys), "data_bytes": os.path.getsize(os.path.join(lmdb_path, DATA_FILE)),
              "keys_sha1": keys_digest(keys)}
    write_bytes_atomic(marker, (json.dumps(record) + "\n").encode("ascii"))
    return written


def _write_jobs(env, jobs, batch, num_workers, shapes, lmdb_path, n_done, on_commit, bar):
    import lmdb

    def results():
        if num_workers > 1 and len(jobs) > 1:
            with multiprocessing.get_context("spawn").Pool(num_workers) as pool:
                yield from pool.imap(_encode, jobs, chunksize=max(1, min(16, len(jobs) // (4 * num_workers))))
        else:
            yield from map(_encode, jobs)

    pending = []

    def commit():
        nonlocal pending
        while True:
            try:
                with env.begin(write=True) as txn:
                    for key, value, _ in pending:
                        txn.put(key.encode("ascii"), value)
                break
            except lmdb.MapFullError:
                env.set_mapsize(env.info()["map_size"] * 2)
        for key, _, shape in pending:
            shapes[key] = shape
        pending = []

    count = 0
    with bar:
        for item in results():
            pending.append(item)
            count += 1
            bar.update(1)
            if len(pending) >= batch:
                commit()
                if on_commit:
                    on_commit(n_done + count)
        if pending:
            commit()
            if on_commit:
                on_commit(n_done + count)
    return count


def read_meta_info(lmdb_path):
    """``[(key, (h, w, c), compress_level)]`` from ``meta_info.txt``; one-line error naming a bad line."""
    meta_path = os.path.join(str(lmdb_path), META_FILE)
    if not os.path.isfile(meta_path):
        raise LmdbError(f"{lmdb_path}: no {META_FILE}; the LMDB is incomplete (interrupted write?) "
                        "or not a BasicSR LMDB - run create_lmdb.py again to finish it")
    entries = []
    with open(meta_path, encoding="ascii") as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            match = _META_LINE.match(line)
            if not match:
                raise LmdbError(f"{meta_path}: line {number} '{line}' is not '<key>.png (h,w,c) <level>'")
            key, h, w, c, level = match.groups()
            entries.append((key, (int(h), int(w), int(c)), int(level)))
    return entries


class LmdbReader:
    """Read RGB ``uint8`` images by key from a complete BasicSR LMDB (opened lazily: fork/spawn safe).

    Every decoded image is checked against the shape recorded in ``meta_info.txt``.
    """

    def __init__(self, lmdb_path):
        self.path = str(lmdb_path)
        if not os.path.isfile(os.path.join(self.path, DATA_FILE)):
            raise LmdbError(f"{self.path}: no {DATA_FILE}; not an LMDB folder")
        self.meta = {k: shape for k, shape, _ in read_meta_info(self.path)}
        check_store(self.path, list(self.meta))
        self._env = None

    def keys(self):
        return list(self.meta)

    def __contains__(self, key):
        return key in self.meta

    def _txn(self):
        import lmdb

        if self._env is None:
            # again in each worker process: the file may have changed since the reader was made
            check_store(self.path, list(self.meta))
            self._env = lmdb.open(self.path, readonly=True, lock=False, readahead=False, meminit=False)
        return self._env.begin(write=False)

    def get_bytes(self, key):
        if key not in self.meta:
            raise LmdbError(f"{self.path}: key '{key}' is not in {META_FILE}")
        with self._txn() as txn:
            value = txn.get(key.encode("ascii"))
            value = None if value is None else bytes(value)
        if value is None:
            raise LmdbError(f"{self.path}: key '{key}' is listed in {META_FILE} but missing from data.mdb")
        return value

    def get(self, key):
        """Decode ``key`` to RGB uint8 (H, W, 3) after checking its shape against meta_info."""
        img = cv2.imdecode(np.frombuffer(self.get_bytes(key), np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise LmdbError(f"{self.path}: value of key '{key}' is not a decodable image")
        h, w, _ = self.meta[key]
        if img.shape[:2] != (h, w):
            raise LmdbError(f"{self.path}: key '{key}' decodes to {img.shape[:2]} but {META_FILE} says ({h},{w})")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def close(self):
        if self._env is not None:
            self._env.close()
            self._env = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_env"] = None
        return state


class FolderReader:
    """The same key interface over a folder: key ``000/00000000`` is ``root/000/00000000.png``."""

    def __init__(self, root, ext=".png"):
        self.path = str(root)
        if not os.path.isdir(self.path):
            raise LmdbError(f"{self.path}: data folder not found")
        self.ext = ext

    def file(self, key):
        return os.path.join(self.path, *key.split("/")) + self.ext

    def keys(self):
        out = []
        for dirpath, _, files in os.walk(self.path):
            rel = os.path.relpath(dirpath, self.path)
            for name in files:
                if name.endswith(self.ext) and not name.startswith("."):
                    stem = name[: -len(self.ext)]
                    out.append(stem if rel == "." else "/".join(rel.split(os.sep) + [stem]))
        return sorted(out)

    def __contains__(self, key):
        return os.path.isfile(self.file(key))

    def get(self, key):
        from mindediting.data.video_io import read_image

        path = self.file(key)
        if not os.path.isfile(path):
            raise LmdbError(f"{path}: image for key '{key}' not found")
        return read_image(path)


def open_store(path, ext=".png"):
    """:class:`LmdbReader` for a ``*.lmdb`` path, else :class:`FolderReader` of ``<key><ext>`` files."""
    if str(path).rstrip("/").endswith(".lmdb"):
        return LmdbReader(path)
    return FolderReader(path, ext=ext if ext.startswith(".") else "." + ext)

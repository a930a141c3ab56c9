"""Read PyTorch ``.pth`` checkpoints without PyTorch, trusting nothing the file declares.

Two formats are read. Since torch 1.6 ``torch.save`` writes a zip archive: ``<root>/data.pkl`` is a
pickle whose tensors point (through ``persistent_load``) at raw storages stored as ``<root>/data/<key>``.
Before that (and with ``_use_new_zipfile_serialization=False``) it wrote the legacy stream: five pickles
(magic number, protocol version, system info, the object, the sorted list of storage keys) followed by
each storage as an 8-byte little-endian element count and the raw little-endian elements.

Both go through the same steps:

1. Unpickle with a restricted unpickler that knows exactly the objects needed to describe tensors
   (storages, ``_rebuild_tensor_v2``, ``_rebuild_parameter``, ``OrderedDict``). Any other global becomes
   an inert :class:`OpaqueObject` that records its name and is never called, so reading a checkpoint can
   never run code from the file. Tensors are only recorded here, not built.
2. Check every storage the pickle declares against the bytes the file really holds (zip member sizes,
   compression ratio and legacy element counts, before anything is inflated or read) and against
   ``max_storage_gb``.
3. Walk the object: plain data (str, bytes, numbers, bool, None, and lists, tuples, dicts, sets of them)
   is kept; any other pickled object is refused naming its key path, or dropped with a warning when
   ``allow_extra`` is set; each tensor's size, stride and offset are checked against its storage's real
   length with Python ints before numpy sees them.

Tensors come back as read-only numpy views of the storages read from the file (bfloat16 storages as
float32 arrays), so every byte of a tensor is a byte of the file. Every failure is one
:class:`CheckpointError` line naming the file and, where there is one, the key.
"""
import collections
import io
import logging
import math
import os
import struct
import zipfile

import numpy as np

from mindediting.convert.pth_pickle import (MAX_NESTING, _DICTS, _SEQUENCES, _SETS, _STORAGE_DTYPES, CheckpointError,
                                            _describe, _gib, _key_path, _max_bytes, _TensorRef, _unpickle, key_text)

DEFAULT_MAX_STORAGE_GB = 16
# deflate tops out near 1030:1 on runs of zeros; real weights compress by a few percent at most
MAX_COMPRESSION_RATIO = 1000
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
_PLAIN = (str, bytes, bytearray, int, float, bool, type(None))
_CONTAINERS = _DICTS + _SEQUENCES + _SETS

logger = logging.getLogger(__name__)


class _ZipSource:
    """Storages of a torch >= 1.6 zip archive, each member checked before it is inflated."""

    def __init__(self, handle, file_size, max_bytes):
        self.file_size, self.max_bytes = file_size, max_bytes
        try:
            self.archive = zipfile.ZipFile(handle)
            infos = self.archive.infolist()
        except Exception as err:  # noqa: BLE001
            # zipfile raises a dozen types on hostile headers (BadZipFile, struct.error, OverflowError, ...)
            raise CheckpointError(f"not a readable zip archive ({type(err).__name__}: {key_text(str(err))})") from None
        pickles = [info for info in infos if info.filename.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(f"expected one data.pkl in the archive, found {len(pickles)}")
        self.root = pickles[0].filename[: -len("/data.pkl")]
        self._pickle_info = pickles[0]
        self._infos = {info.filename: info for info in infos}

    def load_object(self, declared):
        order = self._infos.get(f"{self.root}/byteorder")
        if order is not None and (order.file_size > 16 or self._read(order, order.file_size).strip() != b"little"):
            raise CheckpointError("the archive was not written on a little-endian machine, which is not supported")
        data = self._read(self._pickle_info, self._pickle_info.file_size)
        what = f"member {key_text(self._pickle_info.filename)}"
        return _unpickle(io.BytesIO(data), declared, legacy=False, what=what)

    def locate(self, ref, nbytes):
        name = f"{self.root}/data/{ref[0]}"
        info = self._infos.get(name)
        if info is None:
            raise CheckpointError(
                f"storage '{key_text(ref[0])}' is missing from the archive (no member {key_text(name)})"
            )
        if info.file_size != nbytes:
            raise CheckpointError(
                f"member {key_text(name)} holds {info.file_size} bytes, but the pickle declares {ref[2]} "
                f"{ref[1]} elements ({nbytes} bytes)"
            )
        self._check(info)
        return info

    def read(self, info, nbytes):
        return self._read(info, nbytes)

    def _check(self, info):
        name = key_text(info.filename)
        if info.flag_bits & 0x1:
            raise CheckpointError(f"member {name} is encrypted")
        if info.file_size > self.max_bytes:
            raise CheckpointError(f"member {name} declares {_gib(info.file_size)}, above the limit (max_storage_gb)")
        if info.compress_size > self.file_size or info.header_offset + info.compress_size > self.file_size:
            raise CheckpointError(f"member {name} extends past the end of the file ({self.file_size} bytes)")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                raise CheckpointError(
                    f"member {name} is stored uncompressed but declares {info.file_size} bytes in "
                    f"{info.compress_size}"
                )
        elif info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise CheckpointError(
                f"member {name} would inflate {info.compress_size} bytes to {info.file_size} "
                f"(more than {MAX_COMPRESSION_RATIO}:1); refused without inflating it"
            )

    def _read(self, info, nbytes):
        self._check(info)
        try:
            with self.archive.open(info) as member:
                # the reader stops at the declared size even if the compressed stream holds more
                data = member.read(nbytes)
        except Exception as err:  # noqa: BLE001
            # corrupt headers, bad CRC, unknown compression, broken deflate streams: all a damaged archive
            raise CheckpointError(
                f"member {key_text(info.filename)} cannot be read ({type(err).__name__}: {key_text(str(err))})"
            ) from None
        if len(data) != nbytes:
            raise CheckpointError(f"member {key_text(info.filename)} holds {len(data)} bytes, not {nbytes}")
        return data


class _ClampedFile:
    """Reads clamped to the bytes left in the file: ``BufferedReader.read(n)`` allocates ``n`` bytes before
    reading, and pickle length fields come from the file."""

    def __init__(self, handle, size):
        self.handle, self.size = handle, size

    def read(self, n=-1):
        left = max(self.size - self.handle.tell(), 0)
        return self.handle.read(left if n is None or n < 0 else min(n, left))

    def readline(self):
        return self.handle.readline()


class _LegacySource:
    """Storages of a pre-zip torch stream, located by walking the element-count headers after the pickles."""

    def __init__(self, handle, file_size, max_bytes):
        self.handle, self.file_size, self.max_bytes = handle, file_size, max_bytes
        self._offsets = {}

    def load_object(self, declared):
        stream = _ClampedFile(self.handle, self.file_size)
        self.handle.seek(0)
        magic = _unpickle(stream, {}, legacy=True, what="magic number")
        if type(magic) is not int or magic != LEGACY_MAGIC:
            raise CheckpointError("not a PyTorch checkpoint (neither a zip archive nor the legacy magic number)")
        protocol = _unpickle(stream, {}, legacy=True, what="protocol version")
        if type(protocol) is not int or protocol != LEGACY_PROTOCOL:
            raise CheckpointError(f"legacy protocol version {_describe(protocol)}, expected {LEGACY_PROTOCOL}")
        info = _unpickle(stream, {}, legacy=True, what="system info")
        if type(info) is not dict or info.get("little_endian") is not True:
            raise CheckpointError("the file was written on a big-endian machine or its system info is corrupt")
        obj = _unpickle(stream, declared, legacy=True, what="pickled object")
        keys = _unpickle(stream, {}, legacy=True, what="list of storage keys")
        if type(keys) is not list or any(type(k) is not str for k in keys):
            raise CheckpointError(f"the list of storage keys is a {_describe(keys)} of non-strings")
        if len(set(keys)) != len(keys) or set(keys) != set(declared):
            unlisted = sorted(set(declared) - set(keys))
            raise CheckpointError(
                "the list of storage keys does not match the storages the pickle declares"
                + (f" (no data for '{key_text(unlisted[0])}')" if unlisted else "")
            )
        self._walk_headers(keys, declared, self.handle.tell())
        return obj

    def _walk_headers(self, keys, declared, pos):
        for key in keys:
            ref = declared[key]
            if pos + 8 > self.file_size:
                raise CheckpointError(f"storage '{key_text(key)}': the file ends before its element count")
            self.handle.seek(pos)
            (count,) = struct.unpack("<q", self.handle.read(8))
            if count != ref[2]:
                raise CheckpointError(
                    f"storage '{key_text(key)}' holds {count} elements in the file, but the pickle declares {ref[2]}"
                )
            nbytes = count * np.dtype(_STORAGE_DTYPES[ref[1]][0]).itemsize
            if pos + 8 + nbytes > self.file_size:
                raise CheckpointError(
                    f"storage '{key_text(key)}' claims {nbytes} bytes, but only {self.file_size - pos - 8} remain in "
                    "the file"
                )
            self._offsets[key] = pos + 8
            pos += 8 + nbytes

    def locate(self, ref, nbytes):
        return self._offsets[ref[0]]

    def read(self, offset, nbytes):
        self.handle.seek(offset)
        data = self.handle.read(nbytes)
        if len(data) != nbytes:
            raise CheckpointError(f"the file changed while being read ({len(data)} of {nbytes} bytes at {offset})")
        return data


_DROP = object()


class _Walker:
    """Turns the unpickled object into plain data and numpy views, checking every tensor and extra object."""

    def __init__(self, source, storages, max_bytes, allow_extra):
        self.source, self.storages = source, storages
        self.max_bytes, self.allow_extra = max_bytes, allow_extra
        self.tensor_bytes = 0
        self._buffers = {}
        self._done = {}
        self._active = set()

    def clean(self, obj, path=(), depth=0):
        kind = type(obj)
        if kind in _PLAIN:
            return obj
        if kind is _TensorRef:
            return self._tensor(obj, path)
        if kind not in _CONTAINERS:
            return self._extra(obj, path)
        if id(obj) in self._done:  # shared by several keys: walked once, or a small file could fan out forever
            return self._done[id(obj)]
        if id(obj) in self._active:
            raise CheckpointError(f"key '{_key_path(path)}' contains itself")
        if depth >= MAX_NESTING:
            raise CheckpointError(f"key '{_key_path(path)}' is nested more than {MAX_NESTING} levels deep")
        self._active.add(id(obj))
        if kind in _DICTS:
            out = kind()
            for key, value in obj.items():
                if not _is_plain_key(key):
                    self._extra(key, path, what=f"a key under '{_key_path(path)}'" if path else "a top-level key")
                    continue
                value = self.clean(value, path + (key,), depth + 1)
                if value is not _DROP:
                    out[key] = value
            for name, value in vars(obj).items() if kind is collections.OrderedDict else ():
                self.clean(value, path + (name,), depth + 1)  # torch's `_metadata`; checked, not kept
        elif kind in _SEQUENCES:
            items = (self.clean(value, path + (i,), depth + 1) for i, value in enumerate(obj))
            out = kind(item for item in items if item is not _DROP)
        else:
            for item in obj:
                if not _is_plain_key(item):  # hashable, so never a tensor: an extra object
                    self._extra(item, path)
            out = kind(item for item in obj if _is_plain_key(item))
        self._active.discard(id(obj))
        self._done[id(obj)] = out
        return out

    def _extra(self, obj, path, what=None):
        what = what or (f"key '{_key_path(path)}'" if path else "the top level")
        if self.allow_extra and path:
            logger.warning("dropped %s: it holds a %s (allow_extra)", what, _describe(obj))
            return _DROP
        refusal = f"{what} holds a {_describe(obj)}; refused (no code from the file is run)"
        if path:
            refusal += "; convert with --allow_extra to drop such entries"
        raise CheckpointError(refusal)

    def _tensor(self, ref, path):
        where = f"key '{_key_path(path)}'" if path else "the top-level tensor"
        problem, storage, offset, size, stride = ref
        if problem is not None:
            raise CheckpointError(f"{where}: {problem}")
        key, type_name, numel = storage
        dtype = np.dtype(_STORAGE_DTYPES[type_name][1])
        item = dtype.itemsize
        # the non-empty dimensions bound what numpy would allocate, even for a tensor with a zero dimension
        if math.prod(n for n in size if n) * item > self.max_bytes:
            raise CheckpointError(f"{where}: shape {size} is larger than the limit (max_storage_gb)")
        if 0 in size:
            if offset > numel:
                raise CheckpointError(f"{where}: offset {offset} is past the end of storage '{key_text(key)}'")
            return np.empty(size, dtype)
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= numel:
            raise CheckpointError(
                f"{where}: shape {size}, stride {stride} and offset {offset} reach element {last} of storage "
                f"'{key_text(key)}', which holds {numel} {type_name[: -len('Storage')]} elements"
            )
        self.tensor_bytes += math.prod(size) * item
        if self.tensor_bytes > self.max_bytes:
            raise CheckpointError(f"{where}: the tensors add up to more than the limit (max_storage_gb)")
        # numpy checks the extent against the buffer once more
        strides = [s * item for s in stride]
        return np.ndarray(size, dtype, buffer=self._buffer(key), offset=offset * item, strides=strides)

    def _buffer(self, key):
        if key not in self._buffers:
            location, nbytes, type_name = self.storages[key]
            raw = self.source.read(location, nbytes)
            if type_name == "BFloat16Storage":  # bfloat16 is the upper half of a float32
                raw = (np.frombuffer(raw, dtype="<u2").astype("<u4") << 16).view("<f4")
                raw.flags.writeable = False
            self._buffers[key] = raw
        return self._buffers[key]


def _is_plain_key(key):
    if type(key) in _PLAIN and type(key) is not bytearray:
        return True
    return type(key) in (tuple, frozenset) and all(_is_plain_key(k) for k in key)


def _open_source(handle, max_bytes):
    file_size = os.fstat(handle.fileno()).st_size
    head = handle.read(4)
    handle.seek(0)
    if head.startswith(b"PK"):
        return _ZipSource(handle, file_size, max_bytes)
    if head.startswith(b"\x80"):
        return _LegacySource(handle, file_size, max_bytes)
    raise CheckpointError(
        "not a PyTorch checkpoint (neither the zip format of torch >= 1.6 nor the legacy pickle stream)"
    )


def _check_storages(source, declared, max_bytes):
    """``{key: (location, nbytes, storage class)}`` after checking each declared storage against the file and
    the limit."""
    sizes = {key: ref[2] * np.dtype(_STORAGE_DTYPES[ref[1]][0]).itemsize for key, ref in declared.items()}
    total = sum(sizes.values())
    if total > max_bytes:
        largest = max(sizes, key=sizes.get)
        raise CheckpointError(
            f"the storages add up to {_gib(total)} (largest: '{key_text(largest)}', {_gib(sizes[largest])}), above "
            f"the limit of {_gib(max_bytes)}; raise --max_storage_gb if the file is genuine"
        )
    return {key: (source.locate(declared[key], nbytes), nbytes, declared[key][1]) for key, nbytes in sizes.items()}


def load_pth(path, max_storage_gb=DEFAULT_MAX_STORAGE_GB, allow_extra=False):
    """Load a torch checkpoint (zip or legacy format) as nested plain data holding read-only numpy arrays.

    ``max_storage_gb`` caps the storages the file may declare and the tensors it may build on them.
    ``allow_extra`` drops pickled objects other than tensors and plain data (a warning each) instead of
    refusing the file.
    """
    path = str(path)
    max_bytes = _max_bytes(max_storage_gb)
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot open ({err.strerror})") from None
    with handle:
        try:
            source = _open_source(handle, max_bytes)
            declared = {}
            obj = source.load_object(declared)
            storages = _check_storages(source, declared, max_bytes)
            return _Walker(source, storages, max_bytes, allow_extra).clean(obj)
        except CheckpointError as err:
            raise CheckpointError(f"{path}: {err}") from None

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
import pickle
import struct
import zipfile

import numpy as np

DEFAULT_MAX_STORAGE_GB = 16
# deflate tops out near 1030:1 on runs of zeros; real weights compress by a few percent at most
MAX_COMPRESSION_RATIO = 1000
MAX_NESTING = 64
MAX_NDIM = 32  # numpy's limit
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
_KEY_SHOWN = 60

# storage class -> (little-endian numpy dtype of the raw elements, dtype of the arrays handed out)
_STORAGE_DTYPES = {
    "FloatStorage": ("<f4", "<f4"),
    "DoubleStorage": ("<f8", "<f8"),
    "HalfStorage": ("<f2", "<f2"),
    "BFloat16Storage": ("<u2", "<f4"),
    "LongStorage": ("<i8", "<i8"),
    "IntStorage": ("<i4", "<i4"),
    "ShortStorage": ("<i2", "<i2"),
    "CharStorage": ("i1", "i1"),
    "ByteStorage": ("u1", "u1"),
    "BoolStorage": ("?", "?"),
}
_PLAIN = (str, bytes, bytearray, int, float, bool, type(None))
_DICTS = (dict, collections.OrderedDict)
_SEQUENCES = (list, tuple)
_SETS = (set, frozenset)
_CONTAINERS = _DICTS + _SEQUENCES + _SETS

logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or does not fit the model."""


class OpaqueObject:
    """Stand-in for a pickled object of a class we refuse to import."""

    qualname = "?"

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self._state = state

    def __repr__(self):
        return f"<opaque {self.qualname}>"


def _opaque_class(module, name):
    return type("Opaque", (OpaqueObject,), {"qualname": f"{module}.{name}"})


# The objects below are what find_class and persistent_load hand to the pickle. Pickle's BUILD opcode sets
# attributes on whatever is on its stack, so they are immutable (tuples, or slots with __setattr__ blocked):
# a file must not be able to change them, least of all the shared ones, between the checks and their use.


class _StorageType(str):
    """``torch.FloatStorage`` and friends, as named in the file."""

    __slots__ = ()


class _StorageRef(tuple):
    """``(key, storage class name, declared element count)`` of one persistent storage."""

    __slots__ = ()


class _TensorRef(tuple):
    """``(problem, storage, offset, size, stride)`` of a ``_rebuild_tensor`` call: ``problem`` is None or why
    the arguments are malformed, reported later with the tensor's key; the bounds are checked then too."""

    __slots__ = ()


class _Allowed:
    """One of the few torch functions a pickle may call; it only records its arguments."""

    __slots__ = ("name", "func")

    def __init__(self, name, func):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "func", func)

    def __setattr__(self, key, value):
        raise AttributeError(f"{self.name} is read-only")

    def __call__(self, *args):
        return self.func(*args)


def _record_tensor(storage, offset, size, stride, *unused):
    problem = _argument_problem(storage, offset, size, stride)
    if problem is not None:
        return _TensorRef((problem, None, None, None, None))
    return _TensorRef((None, storage, offset, tuple(size), tuple(stride)))


def _argument_problem(storage, offset, size, stride):
    if type(storage) is not _StorageRef:
        return f"the tensor's storage is a {_describe(storage)}, not a storage record"
    if type(size) not in _SEQUENCES or type(stride) not in _SEQUENCES or len(size) != len(stride):
        return "size and stride must be sequences of the same length"
    if len(size) > MAX_NDIM:
        return f"{len(size)} dimensions, more than {MAX_NDIM}"
    numbers = (offset, *size, *stride)
    if not all(type(n) is int and n.bit_length() < 64 for n in numbers):
        return "offset, size and stride must be 64-bit integers"
    if any(n < 0 for n in numbers):
        return f"negative offset, size or stride (offset {offset}, size {tuple(size)}, stride {tuple(stride)})"
    return None


def _parameter_data(data, *unused):
    return data


def _then_check_depth(load):
    def load_checked(unpickler):
        load(unpickler)
        unpickler._check_depth()

    return load_checked


class _RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler: its memo is a dict and its reads stop at the data present, while the C one
    sizes buffers and memo tables from length fields in the file before reading them."""

    _ALLOWED = {
        ("torch._utils", "_rebuild_tensor_v2"): _Allowed("torch._utils._rebuild_tensor_v2", _record_tensor),
        ("torch._utils", "_rebuild_tensor"): _Allowed("torch._utils._rebuild_tensor", _record_tensor),
        ("torch._utils", "_rebuild_parameter"): _Allowed("torch._utils._rebuild_parameter", _parameter_data),
        ("torch._utils", "_rebuild_parameter_with_state"):
            _Allowed("torch._utils._rebuild_parameter_with_state", _parameter_data),
        ("collections", "OrderedDict"): collections.OrderedDict,
    }
    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(self, fileobj, declared, legacy):
        super().__init__(fileobj)
        self._declared = declared
        self._legacy = legacy
        self._depths = {}  # id -> (tuple or frozenset, nesting depth); the object is kept so its id stays its own

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        return _opaque_class(module, name)

    def persistent_load(self, pid):
        if not (type(pid) is tuple and pid and pid[0] == "storage"):
            if type(pid) is tuple and pid and pid[0] == "module":
                raise CheckpointError("the file pickles a whole nn.Module class; save and convert its state_dict")
            raise CheckpointError(f"unsupported persistent id (a {_describe(pid)})")
        if len(pid) != (6 if self._legacy else 5):
            raise CheckpointError(f"storage record has {len(pid)} fields, expected {6 if self._legacy else 5}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if type(storage_type) is not _StorageType:
            raise CheckpointError(f"unsupported storage type {_describe(storage_type)}")
        if type(key) is not str or not key or len(key) > 200:
            raise CheckpointError(f"storage key is a {_describe(key)}, not a short string")
        if type(numel) is not int or numel < 0 or numel.bit_length() >= 64:
            raise CheckpointError(f"storage '{key_text(key)}' declares {_describe(numel)} elements")
        if self._legacy and pid[5] is not None:
            raise CheckpointError(f"storage '{key_text(key)}' is a storage view (torch < 0.4), which is not supported")
        ref = _StorageRef((key, str(storage_type), numel))
        if self._declared.setdefault(key, ref) != ref:
            raise CheckpointError(f"storage '{key_text(key)}' is declared twice with different types or sizes")
        return ref

    def _load_bytearray8(self):
        (size,) = struct.unpack("<Q", self.read(8))
        # the stock loader allocates and zero-fills `size` bytes before finding out whether they exist
        data = self.read(size)
        if len(data) != size:
            raise pickle.UnpicklingError("BYTEARRAY8 runs past the end of the pickle")
        self.append(bytearray(data))

    dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8

    def _check_depth(self):
        # hashing a tuple (as a dict key or set element) recurses in C without a limit: a few MB of nested
        # tuples would overflow the stack, so the nesting of hashable containers is bounded as they are built
        obj = self.stack[-1]
        depth = 1 + max((self._depths[id(item)][1] for item in obj if id(item) in self._depths), default=0)
        if depth > MAX_NESTING:
            raise pickle.UnpicklingError(f"tuples nested more than {MAX_NESTING} levels deep")
        self._depths[id(obj)] = (obj, depth)

    for _op in (pickle.TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3, pickle.FROZENSET):
        dispatch[_op[0]] = _then_check_depth(dispatch[_op[0]])
    del _op


def _describe(obj):
    """A short name for an object from the file, safe for any object (no repr of file-made structures)."""
    if isinstance(obj, OpaqueObject) or (isinstance(obj, type) and issubclass(obj, OpaqueObject)):
        return f"pickled {key_text(obj.qualname, limit=120)} object"
    if type(obj) is _Allowed:
        return f"pickled {obj.name} function"
    if obj is collections.OrderedDict:
        return "pickled collections.OrderedDict class"
    if type(obj) is _StorageType:
        return f"pickled torch.{obj} class"
    if type(obj) is _StorageRef:
        return f"torch.{obj[1]} storage outside any tensor"
    if type(obj) is _TensorRef:
        return "tensor where only plain data can go (a dict key or set element)"
    if type(obj) in (float, bool, type(None)) or (type(obj) is int and obj.bit_length() < 64):
        return f"{type(obj).__name__} {obj!r}"
    return type(obj).__name__


def key_text(part, limit=_KEY_SHOWN):
    """A key (or part of a key path, or a name) from the file on one printable line of readable length."""
    if type(part) is not str:
        return str(part) if type(part) is int and part.bit_length() < 64 else _describe(part)
    if not part.isprintable():
        part = part.encode("unicode_escape").decode("ascii")
    return part if len(part) <= limit else part[: limit - 3] + "..."


def _key_path(path):
    return ".".join(key_text(part) for part in path)


def _max_bytes(max_storage_gb):
    if not isinstance(max_storage_gb, (int, float)) or not max_storage_gb > 0:
        raise CheckpointError(f"max_storage_gb must be a positive number of GiB, got {max_storage_gb!r}")
    return int(max_storage_gb * (1 << 30))


def _gib(nbytes):
    return f"{nbytes / (1 << 30):.3g} GiB"


def _unpickle(fileobj, declared, legacy, what):
    try:
        return _RestrictedUnpickler(fileobj, declared, legacy).load()
    except CheckpointError as err:
        raise CheckpointError(f"{what}: {err}") from None
    except Exception as err:  # noqa: BLE001
        # a pickle from the file calls constructors with arguments of its choosing; every error it provokes
        # (TypeError, AttributeError, EOFError, UnpicklingError, ...) means a corrupt or hostile file
        raise CheckpointError(f"{what} is corrupt ({type(err).__name__}: {key_text(str(err))})") from None


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

"""Write PyTorch checkpoints without torch: upstream-layout weights for the benchmarks' torch rows and the
converter tests (tests import it from here; the package itself never writes ``.pth``).

Produces the same structure ``torch.save`` writes (``archive/data.pkl`` + ``archive/data/<key>``, tensors
as ``torch._utils._rebuild_tensor_v2`` calls on persistent storages), or with ``legacy=True`` the pre-1.6
stream (magic number, protocol, system info, the object, the storage keys, then each storage as an 8-byte
element count and its bytes). :class:`Global` lets a test put an
arbitrary pickled global (e.g. ``os.system``) into the file to check that the reader never calls it.
"""
import collections
import io
import pickle
import zipfile

import numpy as np

STORAGE_NAMES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage",
    np.dtype(np.uint8): "ByteStorage",
    np.dtype(np.bool_): "BoolStorage",
}


class Global:
    """A reference to ``module.name`` written as a pickle GLOBAL without importing it."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # never called: only makes pickle accept it as a REDUCE target
        raise RuntimeError("marker only")


class Call:
    """``Global(...)(*args)`` written as a pickle REDUCE."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class _Storage:
    def __init__(self, key, array, numel=None):
        self.key, self.array = key, array
        self.numel = array.size if numel is None else numel


class RawTensor:
    """A tensor record written exactly as given, for tests of malformed files: ``storage`` (a 1-d array) is
    stored as is and the record claims ``offset``, ``size``, ``stride`` and a storage of ``numel`` elements
    (default: the array's length), whether or not they fit."""

    def __init__(self, storage, offset, size, stride, numel=None):
        self.storage, self.offset, self.size, self.stride, self.numel = storage, offset, size, stride, numel


class BFloat16:
    """Marks a float32 array to be stored as bfloat16 (upper 16 bits)."""

    def __init__(self, array):
        self.array = np.asarray(array, np.float32)


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


class _Writer(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, handle, legacy=False):
        super().__init__(handle, protocol=2)
        self.legacy = legacy

    def save_marker(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[Global] = save_marker

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            name = "BFloat16Storage" if obj.array.dtype == np.uint16 else STORAGE_NAMES[obj.array.dtype]
            record = ("storage", Global("torch", name), obj.key, "cpu", obj.numel)
            return record + (None,) if self.legacy else record  # legacy records end with a storage-view field
        return None


def _tensor_call(array, storages):
    if isinstance(array, BFloat16):
        raw = (array.array.view(np.uint32) >> 16).astype(np.uint16)
    else:
        raw = np.asarray(array)
    # a view of a contiguous base array is stored as the base's storage + offset + strides, like torch
    base = raw.base if isinstance(raw.base, np.ndarray) and raw.base.flags.c_contiguous else None
    if base is None:
        base = raw = raw.copy()
    offset = (raw.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // raw.itemsize
    storage = _Storage(str(len(storages)), base.reshape(-1))
    storages.append(storage)
    stride = [int(s // raw.itemsize) for s in raw.strides]
    rebuild = Global("torch._utils", "_rebuild_tensor_v2")
    return Call(rebuild, storage, offset, tuple(raw.shape), tuple(stride), False, collections.OrderedDict())


def _wrap(obj, storages):
    if isinstance(obj, (np.ndarray, BFloat16)):
        return _tensor_call(obj, storages)
    if isinstance(obj, RawTensor):
        storage = _Storage(str(len(storages)), np.asarray(obj.storage).reshape(-1), obj.numel)
        storages.append(storage)
        rebuild = Global("torch._utils", "_rebuild_tensor_v2")
        return Call(rebuild, storage, obj.offset, obj.size, obj.stride, False, collections.OrderedDict())
    if isinstance(obj, dict):
        return type(obj)((k, _wrap(v, storages)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_wrap(v, storages) for v in obj)
    return obj


def save_pth(obj, path, legacy=False):
    storages = []
    wrapped = _wrap(obj, storages)
    buffer = io.BytesIO()
    _Writer(buffer, legacy).dump(wrapped)
    if legacy:
        with open(path, "wb") as handle:
            info = {"protocol_version": LEGACY_PROTOCOL, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 4}}
            for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, info):
                pickle.dump(header, handle, protocol=2)
            handle.write(buffer.getvalue())
            pickle.dump([s.key for s in storages], handle, protocol=2)
            for storage in storages:
                handle.write(np.int64(storage.array.size).tobytes() + storage.array.tobytes())
        return str(path)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
        for storage in storages:
            archive.writestr(f"archive/data/{storage.key}", storage.array.tobytes())
    return str(path)

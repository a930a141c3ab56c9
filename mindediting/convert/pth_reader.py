"""Read PyTorch ``.pth`` checkpoints without PyTorch.

Since torch 1.6 ``torch.save`` writes a zip archive: ``<root>/data.pkl`` is a pickle whose tensors
point (through ``persistent_load``) at raw storages stored as ``<root>/data/<key>``. The unpickler
below understands exactly the objects needed to rebuild tensors (storages, ``_rebuild_tensor_v2``,
``_rebuild_parameter``, ``OrderedDict``) and nothing else: any other global becomes an inert
:class:`OpaqueObject` that records its name and is never called, so reading a checkpoint can never
run code from the file. Tensors come back as numpy arrays.
"""
import collections
import pickle
import zipfile

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


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


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor(storage, offset, size, stride, *unused):
    if isinstance(storage, OpaqueObject):
        raise CheckpointError(f"tensor built from unsupported storage {storage.qualname}")
    size, stride = tuple(size), tuple(stride)
    if 0 in size:
        return np.zeros(size, dtype=storage.dtype)
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=[s * item for s in stride])
    return np.array(view, copy=True)


def _rebuild_parameter(data, *unused):
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }

    def __init__(self, fileobj, archive, root):
        super().__init__(fileobj)
        self._archive = archive
        self._root = root
        self._storages = {}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        return _opaque_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"unsupported storage type {storage_type!r}")
        if key not in self._storages:
            raw = self._archive.read(f"{self._root}/data/{key}")
            if storage_type.dtype == "bfloat16":
                bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                arr = bits.view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype=np.dtype(storage_type.dtype).newbyteorder("<"))
            self._storages[key] = arr
        return self._storages[key]


def load_pth(path):
    """Load a torch zip checkpoint as nested Python containers holding numpy arrays."""
    path = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except zipfile.BadZipFile:
        raise CheckpointError(
            f"{path}: not a PyTorch zip checkpoint (legacy or corrupt file); re-save it with torch>=1.6 torch.save"
        ) from None
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
        root = pickles[0][: -len("/data.pkl")]
        with archive.open(pickles[0]) as fileobj:
            try:
                return _RestrictedUnpickler(fileobj, archive, root).load()
            except CheckpointError as err:
                raise CheckpointError(f"{path}: {err}") from None
            except (pickle.UnpicklingError, EOFError, KeyError, zipfile.BadZipFile) as err:
                raise CheckpointError(f"{path}: corrupt checkpoint ({err})") from None

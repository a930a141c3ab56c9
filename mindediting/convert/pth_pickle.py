"""The restricted unpickler of the ``.pth`` reader (:mod:`mindediting.convert.pth_reader`): it knows exactly the
objects needed to describe tensors (storages, ``_rebuild_tensor_v2``, ``_rebuild_parameter``, ``OrderedDict``);
any other global becomes an inert :class:`OpaqueObject` that is never called, so no code from a file runs.
Tensors are only recorded here, as references to storages, not built.
"""
import collections
import logging
import pickle
import struct

MAX_NESTING = 64
MAX_NDIM = 32  # numpy's limit
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
_DICTS = (dict, collections.OrderedDict)
_SEQUENCES = (list, tuple)
_SETS = (set, frozenset)

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

"""Fuzz the torch-free .pth reader with random mutations of valid files in both formats.

Seeds: files written by real torch (tests/data/pth_legacy, zip and legacy) and by benchmarks/torch_format.py
(zip and legacy, every dtype, views, shared storages, plain data). Each case mutates one seed: raw bytes of
the whole file, the object pickle's opcodes and their fields (re-packed so zip CRCs still match and the
pickle parser is reached), raw pickle bytes, or the storages. Every case is converted in-process under a
time limit and must end in a CheckpointError or in tensors whose bytes all lie in a storage read from the
file; any other exception, a crash or a hang fails the test. The seed is fixed, so a failure reproduces.
"""
import io
import os
import pickle
import pickletools
import random
import signal
import struct
import time
import zipfile

import numpy as np

from benchmarks.torch_format import BFloat16, Call, Global, save_pth
from mindediting.convert.converter import normalize_tensors, unwrap_state_dict
from mindediting.convert.pth_reader import CheckpointError, load_pth

SEED = 16
CASES = 6000
CASE_SECONDS = 2.0
MAX_STORAGE_GB = 1 / 1024  # mutated sizes must not make a case allocate much
LEGACY_DIR = os.path.join(os.path.dirname(__file__), "data", "pth_legacy")

INTS = [0, 1, -1, 2, 3, 4, 7, 8, 63, 64, 255, 256, 2**16, 2**24, 2**31 - 1, 2**31, -(2**31), 2**32, 2**63 - 1,
        2**63, -(2**63), 10**12, 2**64, 10**40]
STRINGS = ["storage", "module", "torch", "FloatStorage", "HalfStorage", "BFloat16Storage", "UntypedStorage", "cpu",
           "0", "1", "2", "state_dict", "meta", "params", "os", "system", "collections", "OrderedDict",
           "torch._utils", "_rebuild_tensor_v2", "_rebuild_parameter", "", "x" * 300, "a\nb", "\x00", "\udc80"]
GLOBALS = [("os", "system"), ("builtins", "eval"), ("torch", "FloatStorage"), ("torch", "LongStorage"),
           ("torch", "BFloat16Storage"), ("torch", "UntypedStorage"), ("torch._utils", "_rebuild_tensor_v2"),
           ("torch._utils", "_rebuild_parameter"), ("collections", "OrderedDict"), ("copyreg", "_reconstructor")]
INSERTED_OPS = [b"0", b"2", b"(", b"t", b")", b"}", b"]", b"R", b"b", b"Q", b"s", b"u", b"a", b"e", b"N", b"\x85",
                b"\x86", b"\x87", b".", b"h\x00", b"q\x00", b"\x81", b"\x88", b"\x8f", b"\x90", b"\x91",
                b"cos\nsystem\n", b"ctorch\nFloatStorage\n", b"ccollections\nOrderedDict\n"]
INT_OPS = {"BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"}
MEMO_OPS = {"BINGET": b"j", "LONG_BINGET": b"j", "BINPUT": b"r", "LONG_BINPUT": b"r"}
STRING_OPS = {"BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "BINSTRING", "SHORT_BINSTRING"}


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in the reader can swallow it."""


# ------------------------------------------------------------------------------------------------ seeds
def _writer_object():
    base = np.arange(24, dtype=np.float32).reshape(4, 6) / 4 + 0.5
    evil = Call(Global("os", "system"), "touch pwned_by_pth")
    weights = {
        "conv.weight": base,
        "conv.bias": base[1],  # a view: offset into base's storage
        "transposed": base.T,
        "half": np.linspace(-2, 2, 7).astype(np.float16),
        "double": np.array([1.25, -3.5]),
        "bf16": BFloat16(np.array([1.0, -2.5, 3.140625], np.float32)),
        "long": np.arange(5, dtype=np.int64) - 2,
        "int": np.arange(3, dtype=np.int32) + 7,
        "byte": np.arange(4, dtype=np.uint8) + 200,
        "mask": np.array([True, False, True]),
        "scalar": np.array(7.0, np.float32),
    }
    return {"meta": {"epoch": 3, "names": ["a", ("b", 1.5)], "none": None}, "state_dict": weights,
            "extra": {"cb": evil}}


def _seeds(folder):
    seeds = {}
    for legacy in (False, True):
        path = save_pth(_writer_object(), os.path.join(folder, f"seed_{legacy}.pth"), legacy=legacy)
        seeds[f"writer_{'legacy' if legacy else 'zip'}"] = open(path, "rb").read()
    for name in ("official_legacy.pth", "official_zip.pth", "hostile_legacy.pth"):
        with open(os.path.join(LEGACY_DIR, name), "rb") as handle:
            seeds[name] = handle.read()
    return seeds


# --------------------------------------------------------------------------------------- containers
def _split(data):
    """``(kind, parts)``: a zip as ``{member: bytes}``, a legacy file as its header, object pickle, keys
    pickle and storage bytes."""
    if data.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "zip", {name: archive.read(name) for name in archive.namelist()}
    stream = io.BytesIO(data)
    bounds = [0]
    for _ in range(5):
        for _ in pickletools.genops(stream):
            pass
        bounds.append(stream.tell())
    header, obj, keys, tail = (data[a:b] for a, b in zip(bounds[:1] + bounds[3:], bounds[3:] + [len(data)]))
    return "legacy", {"header": header, "obj": obj, "keys": keys, "tail": tail}


def _join(kind, parts):
    if kind == "legacy":
        return parts["header"] + parts["obj"] + parts["keys"] + parts["tail"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, member in parts.items():
            archive.writestr(name, member)
    return buffer.getvalue()


def _pickle_name(kind, parts):
    return "obj" if kind == "legacy" else next(n for n in parts if n.endswith("/data.pkl"))


# ---------------------------------------------------------------------------------------- mutations
def _push_int(value):
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _push_str(text):
    raw = text.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(raw)) + raw


def _mutate_ops(data, rng):
    """Change 1-3 opcodes of a pickle: a field value, a global, or the op sequence itself."""
    ops = list(pickletools.genops(data))
    ends = [pos for _, _, pos in ops[1:]] + [len(data)]
    chunks = [data[pos:end] for (_, _, pos), end in zip(ops, ends)]
    names = [op.name for op, _, _ in ops]
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(chunks))
        name, choice = names[i], rng.random()
        if name in INT_OPS and choice < 0.8:
            chunks[i] = _push_int(rng.choice(INTS) if rng.random() < 0.8 else rng.randint(-100, 100))
        elif name in MEMO_OPS and choice < 0.6:
            chunks[i] = MEMO_OPS[name] + struct.pack("<I", rng.choice([0, 1, 2, 5, 100, 2**31 - 1, 2**32 - 1]))
        elif name in STRING_OPS and choice < 0.7:
            chunks[i] = _push_str(rng.choice(STRINGS))
        elif name in ("GLOBAL", "STACK_GLOBAL") and choice < 0.7:
            chunks[i] = b"c%s\n%s\n" % tuple(part.encode() for part in rng.choice(GLOBALS))
        else:
            action = rng.randrange(4)
            if action == 0 and len(chunks) > 1:
                del chunks[i], names[i]
            elif action == 1:
                chunks.insert(i, chunks[i])
                names.insert(i, name)
            elif action == 2 and i + 1 < len(chunks):
                chunks[i], chunks[i + 1] = chunks[i + 1], chunks[i]
                names[i], names[i + 1] = names[i + 1], names[i]
            else:
                chunks.insert(i, rng.choice(INSERTED_OPS))
                names.insert(i, "inserted")
    return b"".join(chunks)


def _mutate_bytes(data, rng):
    data = bytearray(data)
    action = rng.randrange(6)
    if action == 0 or not data:  # a few bytes flipped or set to boundary values
        for _ in range(rng.randint(1, 8)):
            if data:
                data[rng.randrange(len(data))] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
    elif action == 1:  # a little-endian integer field overwritten
        pos = rng.randrange(len(data))
        width = rng.choice([2, 4, 8])
        value = rng.choice(INTS) % (1 << (8 * width))
        data[pos: pos + width] = value.to_bytes(width, "little")
    elif action == 2:
        del data[rng.randrange(len(data)):]
    elif action == 3:
        pos = rng.randrange(len(data))
        data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif action == 4:
        a, b = sorted(rng.randrange(len(data)) for _ in range(2))
        data[a:a] = data[a:b][:4096]
    else:
        pos = rng.randrange(len(data))
        del data[pos: pos + rng.randint(1, 16)]
    return bytes(data)


def _mutate_storages(kind, parts, rng):
    names = [n for n in parts if "/data/" in n] if kind == "zip" else ["tail"]
    name = rng.choice(names) if names else rng.choice(list(parts))
    action = rng.randrange(4)
    if action == 0:
        parts[name] = parts[name][: rng.randrange(len(parts[name]) + 1)]
    elif action == 1:
        parts[name] = parts[name] + bytes(rng.randrange(1, 64))
    elif action == 2 and kind == "zip":
        del parts[name]
    else:
        parts[name] = _mutate_bytes(parts[name], rng)
    return parts


def _mutate(data, rng):
    """``(mutated bytes, description)``."""
    choice = rng.random()
    if choice < 0.3:
        return _mutate_bytes(data, rng), "file bytes"
    kind, parts = _split(data)
    name = _pickle_name(kind, parts)
    if choice < 0.7:
        parts[name] = _mutate_ops(parts[name], rng)
        what = "pickle ops"
    elif choice < 0.85:
        parts[name] = _mutate_bytes(parts[name], rng)
        what = "pickle bytes"
    else:
        parts = _mutate_storages(kind, parts, rng)
        what = "storages"
    return _join(kind, parts), what


# ------------------------------------------------------------------------------------------- checks
def _member_contents(data):
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [archive.read(info) for info in archive.infolist()]
    except Exception:  # noqa: BLE001 -- a mutated archive may be unreadable here too; the file bytes remain
        return []


def _root(array):
    """The object that owns the memory behind ``array`` (walking views and numpy's buffer wrappers)."""
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array


def _check_tensor(array, data, members):
    """The array's bytes lie inside one buffer, and that buffer is data of the file: a slice of it, the
    content of a zip member, or (for bfloat16) their upper halves of float32 values."""
    assert not array.flags.writeable or array.size == 0
    if array.size == 0:
        return
    root = _root(array)
    if isinstance(root, bytes):
        raw = root
    else:
        assert isinstance(root, np.ndarray) and root.dtype.itemsize == 4 and array.dtype == np.float32
        bits = root.view("<u4")
        assert not (bits & 0xFFFF).any(), "a widened bfloat16 with low bits set"
        raw = (bits >> 16).astype("<u2").tobytes()
    assert raw in data or raw in members(), "tensor buffer is not data of the file"
    low, high = np.byte_bounds(array)
    view = np.frombuffer(root, np.uint8)
    start = view.__array_interface__["data"][0]
    assert start <= low and high <= start + view.nbytes, "tensor reaches outside its storage"


def _check_tree(obj, data, members, depth=0):
    assert depth < 80
    if isinstance(obj, np.ndarray):
        _check_tensor(obj, data, members)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _check_tree(key, data, members, depth + 1)
            _check_tree(value, data, members, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for value in obj:
            _check_tree(value, data, members, depth + 1)
    else:
        assert type(obj) in (str, bytes, bytearray, int, float, bool, type(None)), type(obj)


def _on_alarm(signum, frame):
    raise CaseTimeout()


def _run_case(path, data, allow_extra):
    """Convert as the CLI does; True when the file was accepted."""
    try:
        obj = load_pth(path, max_storage_gb=MAX_STORAGE_GB, allow_extra=allow_extra)
    except CheckpointError as err:
        _check_message(str(err), path)
        return False
    cache = []

    def members():  # only needed for a deflated member, so only computed then
        if not cache:
            cache.append(_member_contents(data))
        return cache[0]

    _check_tree(obj, data, members)
    try:
        normalize_tensors(unwrap_state_dict(obj, source=path))
    except CheckpointError as err:
        _check_message(str(err), path)
    return True


def _check_message(message, path):
    """What the CLI prints after `error: `: one printable line naming the file."""
    assert message.startswith(f"{path}: ") and message.isprintable(), repr(message)


def test_mutated_files_end_in_checkpoint_error_or_file_bytes(tmp_path):
    rng = random.Random(SEED)
    seeds = _seeds(str(tmp_path))
    path = str(tmp_path / "case.pth")
    accepted = {}
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    started = time.perf_counter()
    try:
        for case in range(CASES):
            seed = rng.choice(sorted(seeds))
            data, what = _mutate(seeds[seed], rng)
            allow_extra = rng.random() < 0.5
            with open(path, "wb") as handle:
                handle.write(data)
            signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
            try:
                ok = _run_case(path, data, allow_extra)
            except CaseTimeout:
                raise AssertionError(f"case {case} ({seed}, {what}) took longer than {CASE_SECONDS} s") from None
            except Exception as err:  # noqa: BLE001 -- the failure under test, reported with its case
                raise AssertionError(f"case {case} ({seed}, {what}): {type(err).__name__}: {err}") from err
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            accepted[what] = accepted.get(what, 0) + ok
    finally:
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - started
    print(f"{CASES} cases in {elapsed:.1f} s; accepted per mutation kind: {accepted}")
    # the mutations must reach past the container checks, or the fuzz tests little
    assert accepted["pickle ops"] > 50 and accepted["file bytes"] > 20

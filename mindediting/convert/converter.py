"""Turn an upstream PyTorch checkpoint into a MindSpore ``.ckpt`` for one of our models.

Steps: read the ``.pth`` without torch -> unwrap ``state_dict``/``params`` containers and
``generator.``/``module.`` prefixes -> drop bookkeeping (``num_batches_tracked``) -> cast floating
tensors to float32 (integer buffers keep their dtype) -> the model's own key/layout mapping, passed in by
the caller (``convert_state_dict`` in the model's module, named by its registry spec) -> optional check
against the built Cell -> atomic write.
"""
import numpy as np

from mindediting.convert.pth_reader import DEFAULT_MAX_STORAGE_GB, CheckpointError, key_text, load_pth
from mindediting.utils.atomic import atomic_path

WRAPPER_KEYS = ("state_dict", "params", "model_state_dict", "model", "net", "generator")
PREFIXES = ("generator.", "module.", "model.")
BOOKKEEPING_SUFFIXES = ("num_batches_tracked",)


def unwrap_state_dict(obj, source="checkpoint"):
    """Return the flat ``{key: ndarray}`` inside an official release file.

    Descends through ``state_dict``/``params``/... wrappers until a dict holds tensors; plain data beside them
    (OpenMMLab's ``meta``, epoch counters) is ignored, but tensors nested below that dict are not.
    """
    while isinstance(obj, dict):
        tensors = {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
        if tensors:
            return _strip_prefixes(_flat_tensors(tensors, obj, source))
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            raise CheckpointError(
                f"{source}: no tensors found: the dict holds no tensor and no {'/'.join(WRAPPER_KEYS)} wrapper "
                f"(keys: {_listing([key_text(k) for k in obj])})"
            )
        obj = inner
    kind = "a single tensor" if isinstance(obj, np.ndarray) else f"a {type(obj).__name__}"
    raise CheckpointError(f"{source}: no tensors found (the top level is {kind}, not a dict of named tensors)")


def _flat_tensors(tensors, obj, source):
    nested = next((k for k, v in obj.items() if k not in tensors and _holds_tensor(v)), None)
    if nested is not None:
        raise CheckpointError(
            f"{source}: key '{key_text(nested)}' holds tensors nested beside the state dict's own; expected one flat "
            "{name: tensor} dict"
        )
    odd = next((k for k in tensors if not isinstance(k, str)), None)
    if odd is not None:
        raise CheckpointError(f"{source}: tensor key {key_text(odd)} is a {type(odd).__name__}, not a parameter name")
    return tensors


def _holds_tensor(obj):
    # the reader hands out a tree (shared parts walked once), never a cycle
    if isinstance(obj, np.ndarray):
        return True
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    return any(_holds_tensor(v) for v in values)


def _strip_prefixes(state):
    for prefix in PREFIXES:
        with_prefix = [k for k in state if k.startswith(prefix)]
        if with_prefix and (len(with_prefix) == len(state) or prefix == "generator."):
            state = {k[len(prefix):]: state[k] for k in with_prefix}
    return state


def normalize_tensors(state):
    """Drop bookkeeping entries and cast floating tensors to float32."""
    out = {}
    for key, value in state.items():
        if key.endswith(BOOKKEEPING_SUFFIXES):
            continue
        # a copy either way: the reader's arrays are read-only views of the file's storages
        dtype = np.float32 if np.issubdtype(value.dtype, np.floating) else value.dtype
        out[key] = np.array(value, dtype=dtype, order="C")
    return out


def load_and_convert(src, mapping=None, max_storage_gb=DEFAULT_MAX_STORAGE_GB, allow_extra=False, **model_kwargs):
    """``{name: ndarray}`` of the upstream file ``src`` after the generic steps and ``mapping(state,
    **model_kwargs)`` (None: upstream keys are already ours). ``max_storage_gb`` and ``allow_extra`` go to
    :func:`~mindediting.convert.pth_reader.load_pth`."""
    obj = load_pth(src, max_storage_gb=max_storage_gb, allow_extra=allow_extra)
    state = normalize_tensors(unwrap_state_dict(obj, source=str(src)))
    return mapping(state, **model_kwargs) if mapping is not None else state


def compare_with_net(params, net):
    """Keys the net has but ``params`` lacks, keys it does not know, and shape mismatches. Keys are relative to
    ``net`` (a sub-cell's parameters are named from the top-level network, ``spynet.<key>``)."""
    net_shapes = {name: tuple(p.shape) for name, p in net.parameters_and_names()}
    missing = sorted(k for k in net_shapes if k not in params)
    unexpected = sorted(k for k in params if k not in net_shapes)
    mismatched = sorted(
        (k, tuple(params[k].shape), net_shapes[k])
        for k in net_shapes
        if k in params and tuple(params[k].shape) != net_shapes[k]
    )
    return missing, unexpected, mismatched


def _listing(items, limit=12):
    shown = ", ".join(items[:limit])
    return shown + (f" ... and {len(items) - limit} more" if len(items) > limit else "")


def format_mismatch(source, missing, unexpected, mismatched):
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} key(s): {_listing(missing)}")
    if unexpected:
        parts.append(f"unexpected {len(unexpected)} key(s): {_listing(unexpected)}")
    if mismatched:
        parts.append(
            f"shape mismatch in {len(mismatched)} key(s): "
            + _listing([f"{k} file {tuple(a)} vs model {tuple(b)}" for k, a, b in mismatched])
        )
    return f"{source}: checkpoint does not fit the model; " + "; ".join(parts)


class CheckpointMismatch(CheckpointError):
    """A readable checkpoint whose keys or shapes do not fit the network (e.g. a config of another width)."""


def check_params(params, net, source):
    missing, unexpected, mismatched = compare_with_net(params, net)
    if missing or unexpected or mismatched:
        raise CheckpointMismatch(format_mismatch(source, missing, unexpected, mismatched))


def save_ckpt(params, dst):
    """Write ``{name: ndarray}`` as a MindSpore checkpoint, atomically."""
    import mindspore as ms

    dst = str(dst)
    # the .ckpt suffix keeps mindspore from appending one to the temporary name
    with atomic_path(dst, suffix=".ckpt") as tmp:
        ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in params.items()], tmp)
    return dst

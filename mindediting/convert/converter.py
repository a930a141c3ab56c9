"""Turn an upstream PyTorch checkpoint into a MindSpore ``.ckpt`` for one of our models.

Steps: read the ``.pth`` without torch -> unwrap ``state_dict``/``params`` containers and
``generator.``/``module.`` prefixes -> drop bookkeeping (``num_batches_tracked``) -> cast floating
tensors to float32 (integer buffers keep their dtype) -> the model's own key/layout mapping
(``convert_state_dict`` in the model's module) -> optional check against the built Cell -> atomic write.
"""
import numpy as np

from mindediting.convert.pth_reader import CheckpointError, OpaqueObject, load_pth
from mindediting.utils.atomic import atomic_path

WRAPPER_KEYS = ("state_dict", "params", "model_state_dict", "model", "net", "generator")
PREFIXES = ("generator.", "module.", "model.")
BOOKKEEPING_SUFFIXES = ("num_batches_tracked",)


def unwrap_state_dict(obj, source="checkpoint"):
    """Return the flat ``{key: ndarray}`` inside an official release file."""
    while isinstance(obj, dict) and not _is_flat_tensor_dict(obj):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            bad = next((k for k, v in obj.items() if not isinstance(v, np.ndarray)), None)
            kind = obj[bad].qualname if isinstance(obj.get(bad), OpaqueObject) else type(obj.get(bad)).__name__
            raise CheckpointError(
                f"{source}: key '{bad}' holds a {kind} object, not a tensor, and no "
                f"{'/'.join(WRAPPER_KEYS)} wrapper was found"
            )
        obj = inner
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{source}: no tensors found (top level is {type(obj).__name__})")
    return _strip_prefixes(dict(obj))


def _is_flat_tensor_dict(obj):
    return bool(obj) and all(isinstance(v, np.ndarray) for v in obj.values())


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
        if np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float32)
        out[key] = np.ascontiguousarray(value)
    return out


def convert_state_dict(model_name, state, **model_kwargs):
    """Apply the model-specific mapping that lives beside each model."""
    from mindediting.models import model_module

    mapping = getattr(model_module(model_name), "convert_state_dict", None)
    return mapping(state, **model_kwargs) if mapping is not None else state


def load_and_convert(model_name, src, **model_kwargs):
    state = unwrap_state_dict(load_pth(src), source=str(src))
    return convert_state_dict(model_name, normalize_tensors(state), **model_kwargs)


def compare_with_net(params, net):
    """Keys the net has but ``params`` lacks, keys it does not know, and shape mismatches."""
    net_shapes = {p.name: tuple(p.shape) for p in net.get_parameters()}
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


def check_params(params, net, source):
    missing, unexpected, mismatched = compare_with_net(params, net)
    if missing or unexpected or mismatched:
        raise CheckpointError(format_mismatch(source, missing, unexpected, mismatched))


def save_ckpt(params, dst):
    """Write ``{name: ndarray}`` as a MindSpore checkpoint, atomically."""
    import mindspore as ms

    dst = str(dst)
    # the .ckpt suffix keeps mindspore from appending one to the temporary name
    with atomic_path(dst, suffix=".ckpt") as tmp:
        ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in params.items()], tmp)
    return dst

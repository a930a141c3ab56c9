"""The one way weights get from a file into a network: MindSpore ``.ckpt`` or upstream PyTorch file, strictly.

``read_weights`` turns a file into ``{name: ndarray}``: a ``.ckpt`` as saved (training-state entries such as
``optimizer.*`` dropped), an upstream torch file (``.pth``/``.pt``/``.tar``) through the converter's generic steps
(:func:`mindediting.convert.converter.load_and_convert`) and, when given, the model's key mapping. ``load_into``
checks that the arrays fit the network key by key and assigns them cast to each parameter's dtype (float16
checkpoints load into float32 networks). ``load_weights`` is both. Every failure is one :class:`CheckpointError`
line naming the file.
"""
import os

import numpy as np

from mindediting.convert.converter import check_params, load_and_convert
from mindediting.convert.pth_reader import DEFAULT_MAX_STORAGE_GB, CheckpointError

TORCH_SUFFIXES = (".pth", ".pt", ".tar")

# entries that MindSpore and our trainers save beside the weights
_STATE_PREFIXES = ("moment1.", "moment2.", "adam_", "optimizer.", "global_step", "learning_rate")
_STATE_COUNTERS = ("epoch_num", "step_num", "current_iterator_step", "last_overflow_iterator_step")


def is_torch_file(path):
    return str(path).endswith(TORCH_SUFFIXES)


def read_ckpt(path, error=CheckpointError, what="checkpoint file", kind="MindSpore checkpoint"):
    """``mindspore.load_checkpoint(path)`` (every entry, as Tensors) with one-line errors raised as ``error``:
    ``<path>: <what> not found`` or ``<path>: cannot read <kind> (<first line of MindSpore's reason>)``."""
    import mindspore as ms

    path = str(path)
    if not os.path.isfile(path):
        raise error(f"{path}: {what} not found")
    try:
        return ms.load_checkpoint(path)
    except (ValueError, RuntimeError, OSError) as err:
        raise error(f"{path}: cannot read {kind} ({str(err).splitlines()[0]})") from None


def is_training_state(key):
    """Optimizer moments, step counters and the like, saved beside the weights in a training checkpoint."""
    return key.startswith(_STATE_PREFIXES) or ("." not in key and key in _STATE_COUNTERS)


def read_weights(path, what="weights file", mapping=None, max_storage_gb=DEFAULT_MAX_STORAGE_GB, allow_extra=False,
                 **mapping_kwargs):
    """``{name: ndarray}`` held by ``path``.

    A MindSpore ``.ckpt`` keeps its dtypes and loses its training-state entries. An upstream torch file is
    unwrapped, stripped of bookkeeping, cast to float32 and passed through ``mapping(state, **mapping_kwargs)``
    when given (a model's ``convert_state_dict``); a ValueError of the mapping comes back naming the file.
    ``max_storage_gb`` and ``allow_extra`` apply to torch files (see :func:`~mindediting.convert.pth_reader.load_pth`).
    """
    path = str(path)
    if not is_torch_file(path):
        return {k: v.asnumpy() for k, v in read_ckpt(path, what=what).items() if not is_training_state(k)}
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: {what} not found")
    try:
        return load_and_convert(path, mapping, max_storage_gb, allow_extra, **mapping_kwargs)
    except CheckpointError:
        raise
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None


# MindSpore type names -> numpy; ms.dtype_to_nptype would do this but warns that it is deprecated
_NUMPY_TYPES = {"Float16": np.float16, "Float32": np.float32, "Float64": np.float64, "Int8": np.int8,
                "Int16": np.int16, "Int32": np.int32, "Int64": np.int64, "UInt8": np.uint8, "Bool": np.bool_}


def numpy_dtype(param):
    name = str(param.dtype)
    if name not in _NUMPY_TYPES:
        raise CheckpointError(f"parameter '{param.name}' has dtype {name}, which weights cannot be loaded into")
    return _NUMPY_TYPES[name]


def load_into(net, params, source):
    """Assign ``params`` (``{name: ndarray}``) to ``net``'s parameters, each cast to the parameter's dtype.

    Keys are relative to ``net``, so a sub-network (``net.spynet``) takes the file of the network alone. Strict: a
    missing, unexpected or shape-mismatched key raises :class:`CheckpointError` naming ``source`` and the keys,
    and ``net`` is left untouched. Returns ``net``.
    """
    import mindspore as ms

    check_params(params, net, str(source))
    for name, param in net.parameters_and_names():
        param.set_data(ms.Tensor(np.asarray(params[name]).astype(numpy_dtype(param), copy=False)))
    return net


def load_weights(net, path, mapping=None, what="weights file", max_storage_gb=DEFAULT_MAX_STORAGE_GB,
                 allow_extra=False, **mapping_kwargs):
    """:func:`read_weights` then :func:`load_into`. ``mapping``, ``max_storage_gb`` and ``allow_extra`` apply to
    upstream torch files only: a ``.ckpt`` already holds our parameter names. Returns ``net``."""
    params = read_weights(path, what, mapping, max_storage_gb, allow_extra, **mapping_kwargs)
    return load_into(net, params, path)

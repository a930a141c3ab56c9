"""Load MindSpore checkpoints into a network strictly: every key must fit, or a one-line error."""
import os

import numpy as np

from mindediting.convert.converter import check_params
from mindediting.convert.pth_reader import CheckpointError


def read_checkpoint_file(path, error=CheckpointError, what="checkpoint file", kind="MindSpore checkpoint"):
    """``mindspore.load_checkpoint(path)`` with one-line errors raised as ``error``.

    Messages: ``<path>: <what> not found`` when there is no such file, ``<path>: cannot read <kind>
    (<first line of MindSpore's reason>)`` when MindSpore cannot parse it.
    """
    import mindspore as ms

    path = str(path)
    if not os.path.isfile(path):
        raise error(f"{path}: {what} not found")
    try:
        return ms.load_checkpoint(path)
    except (ValueError, RuntimeError, OSError) as err:
        raise error(f"{path}: cannot read {kind} ({str(err).splitlines()[0]})") from None


def load_checkpoint_strict(path, net):
    """Load ``path`` into ``net``; raise :class:`CheckpointError` naming the file and every bad key.

    Float16 checkpoints (used for the small shipped models) are cast to the parameters' dtype.
    """
    import mindspore as ms

    path = str(path)
    loaded = read_checkpoint_file(path)
    net_params = {p.name: p for p in net.get_parameters()}
    arrays = {k: v.asnumpy() for k, v in loaded.items() if k in net_params or not _is_extra(k)}
    check_params(arrays, net, path)
    for name, param in net_params.items():
        value = arrays[name]
        if value.dtype != ms.dtype_to_nptype(param.dtype):
            value = value.astype(ms.dtype_to_nptype(param.dtype))
        param.set_data(ms.Tensor(value))
    return net


def _is_extra(key):
    """Training-state entries saved beside the weights (optimizer moments, step counters)."""
    return key.startswith(("moment1.", "moment2.", "adam_", "optimizer.", "global_step", "learning_rate")) or (
        "." not in key and key in ("epoch_num", "step_num", "current_iterator_step", "last_overflow_iterator_step")
    )

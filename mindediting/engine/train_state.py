"""Training checkpoints: weights + optimizer state + step + RNG + data position in one atomic ``.ckpt``.

Layout (a normal MindSpore checkpoint, so ``eval.py --ckpt`` reads it directly):

* the network parameters under their own names;
* ``optimizer.<group>.exp_avg.<param>``, ``optimizer.<group>.exp_avg_sq.<param>``,
  ``optimizer.<group>.state_step`` for each optimizer (``main``, ``flow``);
* ``optimizer.train_state``: a uint8 array holding JSON (iteration, loader position, numpy/Python RNG
  states, seed, config digest).

:func:`~mindediting.convert.weights.load_weights` skips the ``optimizer.*`` entries. Files
are ``<run_dir>/checkpoints/iter_<step:08d>.ckpt``, written under a temporary name, fsynced and renamed, so a
kill or a power loss during saving never leaves a truncated checkpoint under the final name, and a failed save
(full disk) leaves no temporary file, neither ours nor MindSpore's ``*.tmp`` (see
:class:`~mindediting.utils.atomic.AtomicPath`); the last ``keep_last`` are kept.
"""
import json
import os
import random
import re

import numpy as np

from mindediting.convert.weights import read_ckpt
from mindediting.utils.atomic import atomic_path

STATE_KEY = "optimizer.train_state"
_NAME = re.compile(r"^iter_(\d{8})\.ckpt$")


class ResumeError(ValueError):
    """A checkpoint cannot be resumed from; the message names the file and key."""


class UnreadableCheckpoint(ResumeError):
    """The file itself is damaged (not a checkpoint, truncated, unparsable state): an older checkpoint of the
    same run can stand in for it, unlike a checkpoint that reads well but does not fit the network."""


def checkpoint_dir(run_dir):
    return os.path.join(str(run_dir), "checkpoints")


def list_checkpoints(run_dir):
    """``[(step, path)]`` of complete checkpoints in ``run_dir``, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not os.path.isdir(folder):
        return []
    found = [(int(m.group(1)), os.path.join(folder, n)) for n in os.listdir(folder) if (m := _NAME.match(n))]
    return sorted(found)


def latest_checkpoint(run_dir):
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def rng_state():
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {"numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": [py_state[0], list(py_state[1]), py_state[2]]}


def set_rng_state(state):
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def scaler_state(scaler):
    """The JSON fields of a ``mindspore.amp`` loss scaler (``loss_scaler`` in the state): the current scale and,
    for a dynamic one, the count of finite steps since the last change. float32 -> float is exact."""
    state = {"scale": float(scaler.scale_value.asnumpy())}
    if hasattr(scaler, "counter"):
        state["counter"] = int(scaler.counter.asnumpy())
    return state


def set_scaler_state(scaler, state):
    """Put :func:`scaler_state`'s fields back (``ops.assign``: a compiled step holds the scaler's parameters)."""
    import mindspore as ms
    from mindspore import ops

    ops.assign(scaler.scale_value, ms.Tensor(state["scale"], ms.float32))
    if "counter" in state and hasattr(scaler, "counter"):
        ops.assign(scaler.counter, ms.Tensor(state["counter"], ms.int32))


def save_train_state(run_dir, step, net, optimizers, extra, keep_last=0):
    """Write ``iter_<step>.ckpt`` atomically; delete older ones beyond ``keep_last`` (0 = keep all)."""
    import mindspore as ms

    folder = checkpoint_dir(run_dir)
    os.makedirs(folder, exist_ok=True)
    entries = [{"name": p.name, "data": p} for p in net.get_parameters()]
    for group, opt in optimizers.items():
        for param, m, v in zip(opt.parameters, opt.exp_avg, opt.exp_avg_sq):
            entries.append({"name": f"optimizer.{group}.exp_avg.{param.name}", "data": m})
            entries.append({"name": f"optimizer.{group}.exp_avg_sq.{param.name}", "data": v})
        entries.append({"name": f"optimizer.{group}.state_step", "data": opt.state_step})
    payload = dict(extra, step=int(step), rng=rng_state())
    blob = np.frombuffer(json.dumps(payload).encode("utf-8"), dtype=np.uint8).copy()
    entries.append({"name": STATE_KEY, "data": ms.Tensor(blob)})
    path = os.path.join(folder, f"iter_{int(step):08d}.ckpt")
    with atomic_path(path, suffix=".ckpt") as tmp:
        ms.save_checkpoint(entries, tmp)
    if keep_last and keep_last > 0:
        for _, old in list_checkpoints(run_dir)[:-keep_last]:
            os.remove(old)
    return path


def load_train_state(path, net, optimizers):
    """Restore weights and optimizer moments from ``path`` in place; return the JSON state (step, ...)."""
    import mindspore as ms
    from mindspore import ops

    path = str(path)
    loaded = read_ckpt(path, UnreadableCheckpoint, what="checkpoint to resume from", kind="checkpoint")
    if STATE_KEY not in loaded:
        raise ResumeError(f"{path}: key '{STATE_KEY}' missing; this is a weights-only checkpoint, not a training state")
    # parsed before any parameter is touched, so a damaged state leaves the network as it was for an older checkpoint
    try:
        state = json.loads(loaded[STATE_KEY].asnumpy().astype(np.uint8).tobytes().decode("utf-8"))
    except ValueError as err:
        raise UnreadableCheckpoint(f"{path}: key '{STATE_KEY}' is not valid JSON ({err})") from None

    def take(name, target):
        if name not in loaded:
            raise ResumeError(f"{path}: key '{name}' missing")
        value = loaded[name]
        if tuple(value.shape) != tuple(target.shape):
            raise ResumeError(f"{path}: key '{name}' has shape {tuple(value.shape)}, expected {tuple(target.shape)}")
        # ops.assign reaches parameters that a compiled optimizer step already holds (set_data may not)
        ops.assign(target, ms.Tensor(value.asnumpy(), target.dtype))

    for param in net.get_parameters():
        take(param.name, param)
    for group, opt in optimizers.items():
        for param, m, v in zip(opt.parameters, opt.exp_avg, opt.exp_avg_sq):
            take(f"optimizer.{group}.exp_avg.{param.name}", m)
            take(f"optimizer.{group}.exp_avg_sq.{param.name}", v)
        take(f"optimizer.{group}.state_step", opt.state_step)
    set_rng_state(state["rng"])
    return state

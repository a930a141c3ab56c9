"""The task-independent part of training, shared by every task trainer.

:class:`TrainLoop` owns the run directory (the merged ``config.yaml``, per-rank JSON-lines logs, checkpoints),
the progress bar, periodic validation and checkpoints, resume, and the per-iteration seed. A task trainer
declares its ``train`` keys in :attr:`TrainLoop.SCHEMA` (``key -> (type, default)``; ``mindediting.config``
validates a config's ``train`` section against the chosen model's trainer with it), builds the network, the
data loader and the optimizers, and implements :meth:`TrainLoop.train_step`.

One vocabulary for every trainer (the loop's keys, :data:`LOOP_SCHEMA`): ``total_iters``, ``val_interval`` and
``save_interval`` count iterations; ``output_dir`` is the default run directory; ``optimizer`` and ``loss`` are
names; ``lr``, ``betas``, ``weight_decay`` are the optimizer's. Older names are refused with the new one
(:data:`RENAMED`).

``system.mode``: ``pynative`` runs the step op by op; ``graph`` compiles the whole step (forward, backward,
gradient averaging, update) with ``mindspore.jit`` (:func:`build_step`); ``hybrid`` (compiled stages in a
PyNative loop) is an inference mode and is refused.
"""
import copy
import hashlib
import json
import logging
import os
import time

import numpy as np
import yaml

from mindediting.engine.train_state import latest_checkpoint, load_train_state, save_train_state
from mindediting.utils.atomic import write_text_atomic

logger = logging.getLogger(__name__)

EPOCHS_TO_ITERATIONS = "now counted in iterations, not epochs (iterations per epoch = samples // batch_size // devices)"
# old key -> (new key, hint); every trainer refuses these with the same message
RENAMED = {
    "eval_interval": ("train.val_interval", EPOCHS_TO_ITERATIONS),
    "eval_every": ("train.val_interval", EPOCHS_TO_ITERATIONS),
    "checkpoint_interval": ("train.save_interval", EPOCHS_TO_ITERATIONS),
    "save_dir": ("train.output_dir", None),
    "gt_patch_size": ("train.patch_size", None),
    "frames": ("train.num_frames", None),
    "seed": ("system.seed", None),
    "fix_lr_mul": ("train.spynet_lr_mult", None),
    "charbonnier_eps": ("train.loss_eps", None),
}

# keys the loop itself reads (defaults are overridden per trainer)
LOOP_SCHEMA = {
    "output_dir": (str, "runs/train"),  # run directory unless train.py --output_dir
    "total_iters": (int, None),
    "batch_size": (int, 1),  # per device
    "num_devices": (int, None),  # devices of the recipe's global batch; a warning when the run has another count
    "num_workers": (int, 0),  # sample-loading processes
    "optimizer": (str, "adam"),
    "loss": (str, None),
    "lr": (float, 1e-4),
    "betas": (list, [0.9, 0.999]),
    "weight_decay": (float, 0.0),
    "log_interval": (int, 100),
    "val_interval": (int, 0),  # 0 = no validation
    "save_interval": (int, 1000),
    "keep_last": (int, 3),  # checkpoints kept (0 = all)
}


def step_seed(seed, step, rank=0):
    """A MindSpore global seed for one training iteration (non-negative int32)."""
    return int(np.random.SeedSequence([int(seed), int(step), int(rank)]).generate_state(1)[0] % (2 ** 31 - 1))


def param_digest(net):
    sha = hashlib.sha1()
    for p in net.get_parameters():
        sha.update(p.name.encode())
        sha.update(np.ascontiguousarray(p.asnumpy()).tobytes())
    return sha.hexdigest()


def build_step(loss_fn, optimizers, world_size=1, jit=False):
    """One training step ``step(*inputs) -> loss``: gradients of ``loss_fn`` with respect to the parameters of
    ``optimizers`` (in order), averaged over devices when ``world_size > 1``, then each optimizer updates its own
    parameters. ``jit`` compiles the whole step with ``mindspore.jit`` (``system.mode: graph``).
    """
    import mindspore as ms
    from mindspore import nn

    params, bounds = [], []
    for opt in optimizers:
        bounds.append((len(params), len(params) + len(opt.parameters)))
        params.extend(opt.parameters)
    grad_fn = ms.value_and_grad(loss_fn, None, params)
    reducer = nn.DistributedGradReducer(params, mean=True, degree=world_size) if world_size > 1 else None

    def step(*inputs):
        loss, grads = grad_fn(*inputs)
        if reducer is not None:
            grads = reducer(grads)
        for opt, (start, end) in zip(optimizers, bounds):
            opt(tuple(grads[start:end]))
        return loss

    return ms.jit(step) if jit else step


class TrainLoop:
    """Run directory, logs, progress, validation, checkpoints and resume of every task trainer.

    A subclass declares :attr:`SCHEMA` and :attr:`LOSSES`, calls ``super().__init__`` first (it reads the
    options into ``self.opts``), then sets ``self.net``, ``self.optimizers`` (name -> optimizer) and
    ``self.loader`` (a :class:`mindediting.data.transforms.TrainLoader`), fills ``opts['total_iters']`` when it
    derives it, and implements :meth:`train_step` (batch fields -> ``(loss, lr)``) and, optionally,
    :meth:`validate` (-> dict of averages) and :meth:`can_validate`.
    """

    SCHEMA = LOOP_SCHEMA
    LOSSES = ()  # loss names this trainer implements (train.loss)
    GRAPH_MODE = True  # the step compiles under system.mode graph

    def __init__(self, cfg, run_dir=None, rank=0, world_size=1, progress=True):
        self.cfg = cfg
        self.opts = self.options(cfg)
        mode = (cfg.get("system") or {}).get("mode") or "pynative"
        if mode == "hybrid":
            raise ValueError("system.mode hybrid is an inference mode (compiled stages in a PyNative loop); "
                             "use graph or pynative for training")
        if mode == "graph" and not self.GRAPH_MODE:
            raise ValueError(f"system.mode graph: {type(self).__name__} ({cfg['model']['name']}) has no compiled "
                             "training step; use pynative")
        self.jit = mode == "graph"
        self.rank, self.world_size = int(rank), int(world_size)
        self.run_dir = str(run_dir or self.opts["output_dir"])
        os.makedirs(self.run_dir, exist_ok=True)
        if self.rank == 0:
            # through JSON: tuples set by code become lists, which safe_dump writes
            merged = yaml.safe_dump(json.loads(json.dumps(cfg)), sort_keys=False)
            write_text_atomic(os.path.join(self.run_dir, "config.yaml"), merged)
        self.progress = progress
        self.seed = int((cfg.get("system") or {}).get("seed") or 0)
        self.step = 0
        self.log_path = os.path.join(self.run_dir, f"log_rank{self.rank}.jsonl")
        devices = self.opts.get("num_devices")
        if devices and int(devices) != self.world_size:
            logger.warning("train.num_devices is %d but this run has %d device(s): global batch %d instead of %d",
                           int(devices), self.world_size, int(self.opts["batch_size"]) * self.world_size,
                           int(self.opts["batch_size"]) * int(devices))

    # ------------------------------------------------------------------------------------------- options
    @classmethod
    def check_keys(cls, train):
        """ValueError for the first key of the ``train`` mapping that this trainer does not read."""
        for key, value in (train or {}).items():
            if key == "optimizer" and isinstance(value, dict):
                raise ValueError("train.optimizer {name, lr, betas, weight_decay} was renamed to train.optimizer "
                                 "(the name), train.lr, train.betas, train.weight_decay")
            if key == "loss" and isinstance(value, dict):
                raise ValueError(f"train.loss {{{', '.join(value)}}} was renamed to train.loss_weights "
                                 f"(train.loss names the loss: {', '.join(cls.LOSSES)})")
            if key in RENAMED and key not in cls.SCHEMA:
                new, hint = RENAMED[key]
                raise ValueError(f"train.{key} was renamed to {new}" + (f" ({hint})" if hint else ""))
            if key not in cls.SCHEMA:
                raise ValueError(f"unknown key 'train.{key}' for {cls.__name__} (valid: {', '.join(cls.SCHEMA)})")

    @classmethod
    def options(cls, cfg):
        """The ``train`` section over the schema's defaults (a null value keeps the default), checked."""
        train = cfg.get("train") or {}
        cls.check_keys(train)
        opts = {key: copy.deepcopy(default) for key, (_, default) in cls.SCHEMA.items()}
        opts.update({k: v for k, v in train.items() if v is not None})
        if str(opts["optimizer"]).lower() != "adam":
            raise ValueError(f"train.optimizer '{opts['optimizer']}': {cls.__name__} implements adam only")
        if cls.LOSSES and str(opts["loss"]).lower() not in cls.LOSSES:
            raise ValueError(f"train.loss '{opts['loss']}': {cls.__name__} implements {', '.join(cls.LOSSES)}")
        for key in ("batch_size", "log_interval", "save_interval", "total_iters"):
            if opts[key] is not None and int(opts[key]) < 1:
                raise ValueError(f"train.{key} must be >= 1, got {opts[key]}")
        return opts

    # ---------------------------------------------------------------------------------------- task hooks
    def train_step(self, *batch):
        raise NotImplementedError

    def can_validate(self):
        return False

    def validate(self):
        return {}

    # ------------------------------------------------------------------------------------------ the loop
    def resume(self, resume):
        """``resume``: a checkpoint path, ``'auto'`` (latest in the run directory, or a fresh start) or None."""
        path = latest_checkpoint(self.run_dir) if resume == "auto" else resume
        if not path:
            if resume == "auto":
                logger.info("no checkpoint in %s: starting from scratch", self.run_dir)
            self._rewrite_log(0)
            return None
        state = load_train_state(path, self.net, self.optimizers)
        self.step = int(state["step"])
        self.loader.load_state(state["loader"])
        self._rewrite_log(self.step)
        logger.info("resumed from %s at iteration %d", path, self.step)
        return path

    def _rewrite_log(self, step):
        """Keep log entries of iterations <= ``step`` (drop what an interrupted run logged after its checkpoint)."""
        kept = []
        if step and os.path.isfile(self.log_path):
            with open(self.log_path, encoding="utf-8") as handle:
                kept = [line for line in handle if line.strip() and json.loads(line).get("iter", 0) <= step]
        write_text_atomic(self.log_path, "".join(kept))

    def save(self):
        if self.rank != 0:
            return None
        extra = {"loader": self.loader.state(), "seed": self.seed, "model": self.cfg["model"]}
        return save_train_state(self.run_dir, self.step, self.net, self.optimizers, extra,
                                keep_last=int(self.opts["keep_last"]))

    def _validate_and_log(self, log):
        avg = self.validate()
        logger.info("iter %d validation %s", self.step, " ".join(f"{k.upper()} {v:.4f}" for k, v in avg.items()))
        log.write(json.dumps({"iter": self.step, "val": avg}) + "\n")
        log.flush()

    def train(self, resume=None, stop_at=None, on_step=None):
        """Run until ``train.total_iters`` (or ``stop_at``); returns the list of per-iteration losses of this call."""
        import mindspore as ms
        from tqdm import tqdm

        self.resume(resume)
        opts, total = self.opts, int(self.opts["total_iters"])
        end = min(total, int(stop_at)) if stop_at else total
        losses, started = [], time.time()
        bar = tqdm(total=total, initial=self.step, desc="train", unit="it",
                   disable=not self.progress or self.rank != 0)
        with open(self.log_path, "a", encoding="utf-8") as log:
            while self.step < end:
                tic = time.time()
                *fields, indices = next(self.loader)
                # random ops in the network (VRT stochastic depth) draw from a seed of (seed, iteration, rank), so a
                # resumed run repeats the unbroken run's draws (MindSpore's op RNG state is not in the checkpoint)
                ms.set_seed(step_seed(self.seed, self.step, self.rank))
                loss, lr = self.train_step(*fields)
                took = time.time() - tic
                losses.append(loss)
                log.write(json.dumps({"iter": self.step, "loss": loss, "lr": lr, "time": round(took, 4),
                                      "indices": indices}) + "\n")
                log.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.5f}", lr=f"{lr:.2e}")
                if self.step % int(opts["log_interval"]) == 0 or self.step == end:
                    per_iter = (time.time() - started) / len(losses)
                    eta = per_iter * (total - self.step)
                    logger.info("rank %d iter %d/%d loss %.6f lr %.3e iter_time %.3fs eta %s", self.rank, self.step,
                                total, loss, lr, took, time.strftime("%H:%M:%S", time.gmtime(eta)))
                if opts["val_interval"] and self.step % int(opts["val_interval"]) == 0 and self.rank == 0 \
                        and self.can_validate():
                    self._validate_and_log(log)
                if self.step % int(opts["save_interval"]) == 0 or self.step == end:
                    path = self.save()
                    if path:
                        logger.info("saved %s", path)
                if on_step:
                    on_step(self.step)
            if self.step >= total:
                log.write(json.dumps({"iter": self.step, "final_param_sha1": param_digest(self.net)}) + "\n")
        bar.close()
        self.loader.close()
        return losses

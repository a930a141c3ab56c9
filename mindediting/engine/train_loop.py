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

``system.mode``: ``graph`` (the shipped training configs) compiles the whole step (forward, backward, gradient
averaging, loss scaling, update) with ``mindspore.jit`` (:func:`build_step`); ``pynative`` runs it op by op
(easier to debug, but MindSpore 2.10's PyNative gradients leak host memory every step); ``hybrid``
(compiled stages in a PyNative loop) is an inference mode and is refused. Validation runs in the same mode.

Mixed precision: ``amp_level`` O1-O3 casts the network (``mindspore.amp.auto_mixed_precision``); with O2/O3 the
loss is scaled by ``mindspore.amp.DynamicLossScaler`` (``loss_scale_type: dynamic``, the default there): an
update whose gradients are not finite is skipped and the scale divided by ``scale_factor``; after
``scale_window`` finite steps it is multiplied by it. The scale and its counter are saved with the checkpoint.

What a run shows: the JSON-lines log, a log line every ``log_interval`` iterations (loss, lr, samples/s over
all devices, ETA), TensorBoard event files in ``<run_dir>/tensorboard`` (loss, lr, samples/s, loss scale,
validation metrics; rank 0) and ``<run_dir>/curves.png`` (loss and validation PSNR), rewritten at each validation.
"""
import copy
import hashlib
import json
import logging
import os
import time

import numpy as np
import yaml

from mindediting.engine.train_state import (ResumeError, UnreadableCheckpoint, checkpoint_dir, list_checkpoints,
                                             load_train_state, save_train_state)
from mindediting.engine.train_state import STATE_KEY, scaler_state, set_scaler_state
from mindediting.engine.train_curves import format_duration, write_curves
from mindediting.engine.train_step import build_loss_scaler
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
    "num_workers": (int, 0),  # sample-loading processes (0 = in the training process, no overlap)
    "prefetch": (int, 2),  # batches the workers build ahead of the step
    "optimizer": (str, "adam"),
    "loss": (str, None),
    "lr": (float, 1e-4),
    "betas": (list, [0.9, 0.999]),
    "weight_decay": (float, 0.0),
    "log_interval": (int, 100),
    "val_interval": (int, 0),  # 0 = no validation
    "save_interval": (int, 1000),
    "keep_last": (int, 3),  # checkpoints kept (0 = all)
    "amp_level": (str, "O0"),  # O0 | O1 | O2 | O3 (float16 compute: GPU/Ascend)
    "loss_scale_type": (str, None),  # none | static | dynamic; null: dynamic under O2/O3, else none
    "loss_scale": (float, 65536.0),  # initial (dynamic) or fixed (static) scale
    "scale_factor": (int, 2), "scale_window": (int, 2000),  # dynamic: shrink on overflow, grow after window finite steps
}
AMP_LEVELS = ("O0", "O1", "O2", "O3")
LOSS_SCALE_TYPES = ("none", "static", "dynamic")


def read_init_params(path, spec, model_args):
    """``{name: ndarray}`` of ``train.init_from``: a MindSpore ``.ckpt`` (training-state entries dropped) or an
    upstream ``.pth`` mapped to the network's names with the spec's ``init_weights`` (else ``weights``)."""
    from mindediting.convert.weights import read_weights
    from mindediting.utils.resolve import resolve

    if not os.path.isfile(str(path)):
        raise FileNotFoundError(f"train.init_from: {path} not found")
    mapping = spec.init_weights or spec.weights
    return read_weights(str(path), "train.init_from", resolve(mapping) if mapping else None, **model_args)


def load_init_weights(net, path, spec, model_args, strict=True):
    """``train.init_from``: load :func:`read_init_params` into ``net``; ``strict`` needs every parameter, otherwise
    only the entries whose name and shape match are copied (upstream ``load_checkpoints``)."""
    from mindediting.convert.weights import load_into
    from mindediting.models.qsci import load_full_precision

    params = read_init_params(path, spec, model_args)
    if strict:
        load_into(net, params, path)
        logger.info("initialised all %d parameters from %s", len(params), path)
    else:
        copied, skipped = load_full_precision(net, params)
        logger.info("initialised %d parameters from %s (non-strict; %d entries without an equal-shape "
                    "counterpart left as built)", len(copied), path, len(skipped))


def step_seed(seed, step, rank=0):
    """A MindSpore global seed for one training iteration (non-negative int32)."""
    return int(np.random.SeedSequence([int(seed), int(step), int(rank)]).generate_state(1)[0] % (2 ** 31 - 1))


def rss_mb():
    """Resident set size of this process in MiB (Linux ``/proc``; 0 elsewhere): the memory figure of the tests and
    the benchmark."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError):
        return 0.0


def param_digest(net):
    sha = hashlib.sha1()
    for p in net.get_parameters():
        sha.update(p.name.encode())
        sha.update(np.ascontiguousarray(p.asnumpy()).tobytes())
    return sha.hexdigest()


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
    CURVE = ("psnr", "validation PSNR (dB)")  # validation metric of curves.png and its axis label

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
        self.scaler = None  # set by mixed_precision()
        self.log_path = os.path.join(self.run_dir, f"log_rank{self.rank}.jsonl")
        self.curves_path = os.path.join(self.run_dir, "curves.png")
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
        for key in ("batch_size", "log_interval", "save_interval", "total_iters", "prefetch", "scale_factor",
                    "scale_window"):
            if opts[key] is not None and int(opts[key]) < 1:
                raise ValueError(f"train.{key} must be >= 1, got {opts[key]}")
        if opts["amp_level"] not in AMP_LEVELS:
            raise ValueError(f"train.amp_level '{opts['amp_level']}' must be O0, O1, O2 or O3")
        if opts["loss_scale_type"] is not None and opts["loss_scale_type"] not in LOSS_SCALE_TYPES:
            raise ValueError(f"train.loss_scale_type '{opts['loss_scale_type']}' must be none, static or dynamic")
        if float(opts["loss_scale"]) < 1:
            raise ValueError(f"train.loss_scale must be >= 1, got {opts['loss_scale']}")
        return opts

    def mixed_precision(self, net):
        """Cast ``net`` for ``train.amp_level`` and make ``self.scaler`` (None without loss scaling); call before
        :func:`build_step`, which takes the scaler."""
        import mindspore as ms

        level = self.opts["amp_level"]
        if level != "O0":
            if (self.cfg.get("system") or {}).get("device_target", "CPU") == "CPU":
                logger.warning("amp_level %s on CPU: float16 kernels are slow or missing there; use it on GPU/Ascend",
                               level)
            ms.amp.auto_mixed_precision(net, level)
        self.scaler = build_loss_scaler(self.opts)
        return net

    # ---------------------------------------------------------------------------------------- task hooks
    def train_step(self, *batch):
        raise NotImplementedError

    def can_validate(self):
        return False

    def validate(self):
        return {}

    # ------------------------------------------------------------------------------------------ the loop
    def resume(self, resume):
        """``resume``: a checkpoint path, ``'auto'`` or None. ``'auto'`` takes the newest readable checkpoint of the
        run directory: a damaged one is skipped with a warning naming it (a checkpoint that reads but does not fit
        the network still stops the run); no checkpoint at all is a fresh start."""
        if resume == "auto":
            candidates = [path for _, path in reversed(list_checkpoints(self.run_dir))]
        else:
            candidates = [resume] if resume else []
        state = None
        for path in candidates:
            try:
                state = load_train_state(path, self.net, self.optimizers)
                break
            except UnreadableCheckpoint as err:
                if resume != "auto":
                    raise
                logger.warning("skipping unreadable checkpoint: %s", err)
        if state is None:
            if candidates:
                # starting over would overwrite the run's checkpoints: the user decides
                raise ResumeError(f"{self.run_dir}: none of the {len(candidates)} checkpoints can be read; remove "
                                  f"{checkpoint_dir(self.run_dir)} to start from scratch")
            if resume == "auto":
                logger.info("no checkpoint in %s: starting from scratch", self.run_dir)
            self._rewrite_log(0)
            return None
        self.step = int(state["step"])
        self.loader.load_state(state["loader"])
        self._rewrite_log(self.step)
        logger.info("resumed from %s at iteration %d", path, self.step)
        return path

    def _rewrite_log(self, step):
        """Keep log entries of iterations <= ``step``: drop what an interrupted run logged after its checkpoint,
        and the final line, which :meth:`train` writes again when the run is complete (so it stays single).
        A torn last line (disk full or power loss mid-write) is dropped with a warning naming the file; a
        damaged line before it is an error, since entries would be lost silently."""
        kept = []
        if step and os.path.isfile(self.log_path):
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                lines = [(n, line) for n, line in enumerate(handle.read().splitlines(), 1) if line.strip()]
            for index, (number, line) in enumerate(lines):
                try:
                    entry = json.loads(line)
                    if not isinstance(entry, dict):
                        raise ValueError("not a JSON object")
                except ValueError as err:
                    if index == len(lines) - 1:
                        logger.warning("%s: dropping the torn last line %d (%s)", self.log_path, number, err)
                        continue
                    raise ResumeError(f"{self.log_path}: line {number} is not a log entry ({err}); fix or "
                                      "delete that line to resume") from None
                if entry.get("iter", 0) <= step and "final_param_sha1" not in entry:
                    kept.append(line + "\n")
        write_text_atomic(self.log_path, "".join(kept))

    def save(self):
        if self.rank != 0:
            return None
        extra = {"loader": self.loader.state(), "seed": self.seed, "model": self.cfg["model"]}
        if self.scaler is not None:
            extra["loss_scaler"] = scaler_state(self.scaler)
        return save_train_state(self.run_dir, self.step, self.net, self.optimizers, extra,
                                keep_last=int(self.opts["keep_last"]))

    def _restore_scaler(self, path):
        """The loss scaler's scale and counter from the checkpoint :meth:`resume` loaded (its JSON entry only)."""
        import mindspore as ms

        if not path or self.scaler is None:
            return
        blob = ms.load_checkpoint(str(path), choice_func=lambda name: name == STATE_KEY)[STATE_KEY]
        state = json.loads(blob.asnumpy().astype(np.uint8).tobytes().decode("utf-8"))
        if "loss_scaler" in state:
            set_scaler_state(self.scaler, state["loss_scaler"])
        else:
            logger.warning("%s has no loss-scaler state (saved without loss scaling): the scale starts at %g",
                           path, float(self.opts["loss_scale"]))

    def _validate_and_log(self, log, board):
        avg = self.validate()
        logger.info("iter %d validation %s", self.step, " ".join(f"{k.upper()} {v:.4f}" for k, v in avg.items()))
        log.write(json.dumps({"iter": self.step, "val": avg}) + "\n")
        log.flush()
        if board is not None:
            for key, value in avg.items():
                board.add_scalar(f"val/{key}", value, self.step)
            board.flush()
        write_curves(self.log_path, self.curves_path, title=f"{self.cfg['model']['name']} ({self.run_dir})",
                     metric=self.CURVE[0], label=self.CURVE[1])

    def _board(self):
        """TensorBoard writer of rank 0 (``<run_dir>/tensorboard``); a resumed run adds a new event file, and
        TensorBoard shows the latest value of each step."""
        if self.rank != 0:
            return None
        from tensorboardX import SummaryWriter

        return SummaryWriter(os.path.join(self.run_dir, "tensorboard"), flush_secs=30)

    def train(self, resume=None, stop_at=None, on_step=None):
        """Run until ``train.total_iters`` (or ``stop_at``); returns the list of per-iteration losses of this call."""
        import mindspore as ms
        from tqdm import tqdm

        self._restore_scaler(self.resume(resume))
        opts, total = self.opts, int(self.opts["total_iters"])
        end = min(total, int(stop_at)) if stop_at else total
        losses = []
        # samples/s and ETA over the iterations since the last log line: the first one (graph compilation,
        # worker start-up) does not skew the rest of the run
        window_start, window_iters = time.time(), 0
        samples_per_iter = int(opts["batch_size"]) * self.world_size
        bar = tqdm(total=total, initial=self.step, desc="train", unit="it",
                   disable=not self.progress or self.rank != 0)
        board = self._board()
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
                window_iters += 1
                record = {"iter": self.step, "loss": loss, "lr": lr, "time": round(took, 4), "indices": indices}
                if self.scaler is not None:
                    record["loss_scale"] = float(self.scaler.scale_value.asnumpy())
                log.write(json.dumps(record) + "\n")
                log.flush()
                if board is not None:
                    board.add_scalar("train/loss", loss, self.step)
                    board.add_scalar("train/lr", lr, self.step)
                    if "loss_scale" in record:
                        board.add_scalar("train/loss_scale", record["loss_scale"], self.step)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.5f}", lr=f"{lr:.2e}")
                if self.step % int(opts["log_interval"]) == 0 or self.step == end:
                    per_iter = (time.time() - window_start) / window_iters
                    rate = samples_per_iter / per_iter
                    logger.info("rank %d iter %d/%d loss %.6f lr %.3e %.2f samples/s iter_time %.3fs eta %s",
                                self.rank, self.step, total, loss, lr, rate, per_iter,
                                format_duration(per_iter * (end - self.step)))
                    if board is not None:
                        board.add_scalar("train/samples_per_s", rate, self.step)
                    window_start, window_iters = time.time(), 0
                if opts["val_interval"] and self.step % int(opts["val_interval"]) == 0 and self.rank == 0 \
                        and self.can_validate():
                    self._validate_and_log(log, board)
                    window_start, window_iters = time.time(), 0  # validation time is not training throughput
                if self.step % int(opts["save_interval"]) == 0 or self.step == end:
                    path = self.save()
                    if path:
                        logger.info("saved %s", path)
                if on_step:
                    on_step(self.step)
            if self.step >= total:
                log.write(json.dumps({"iter": self.step, "final_param_sha1": param_digest(self.net)}) + "\n")
        bar.close()
        if board is not None:
            board.close()
        self.loader.close()
        return losses

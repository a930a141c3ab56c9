"""Training: :class:`TrainLoop` (log, progress, validation, checkpoints, resume; shared by every task), the
BasicVSR :class:`Trainer` (mmagic recipe, data-parallel gradient averaging) and ``TRAINERS`` (model name -> trainer).

Recipe (``train`` section of the config, defaults = mmagic ``basicvsr_2xb4_reds4``):

* Charbonnier loss (``loss_eps`` 1e-12), torch-exact Adam (``mindspore.experimental.optim.AdamW`` with
  weight decay 0), ``betas`` (0.9, 0.99), ``lr`` 2e-4;
* cosine-restart schedule: ``periods`` (e.g. [300000]), ``restart_weights``, ``eta_min`` (absolute, for
  both groups), evaluated at the 0-based iteration before each update (mmcv ``CosineRestartLrUpdaterHook``);
* SPyNet (``net.spynet``) frozen for the first ``fix_iter`` iterations, then trained with
  ``lr x spynet_lr_mult`` (0.125). SPyNet has its own optimizer so that, as in torch (per-parameter
  Adam step counts), its bias correction starts at its first real update. ``fix_keys`` lists the name parts
  of the parameters treated this way (default ``[spynet]``; VRT, as KAIR: ``[spynet, deform]``);
* VRT trains with the same loop (KAIR recipe; ``fix_lr_mul`` and ``charbonnier_eps`` are accepted as the
  KAIR names of ``spynet_lr_mult`` and ``loss_eps``);
* ``dataset``: ``reds`` / ``vimeo90k`` (paired GT/LQ frames), ``davis_denoise`` (VRT 008: clean DAVIS frames,
  Gaussian noise of a random level ``sigma_min``..``sigma_max`` and its sigma/255 map as a 4th input channel)
  and ``vimeo_vfi`` (VRT 009: im1, im3, im5, im7 -> im4, optional ``color_jitter``); see
  :mod:`mindediting.data.vrt_train`;
* data parallel: ``batch_size`` is per device (total = batch_size x devices, the learning rate is not
  rescaled); gradients are averaged over devices with ``nn.DistributedGradReducer``; each rank reads a
  disjoint shard; rank 0 validates and writes checkpoints, every rank writes ``log_rank<r>.jsonl``.

Every iteration appends ``{"iter", "loss", "lr", "time", "indices"}`` to the rank's JSON-lines log;
``log_interval`` iterations also print loss / lr / iteration time / ETA. Checkpoints
(:mod:`mindediting.engine.train_state`) hold weights, Adam moments, step, RNG state and loader position,
so a resumed run reproduces the unbroken run's losses.
"""
import hashlib
import json
import logging
import math
import os
import time

import numpy as np

from mindediting.engine.train_state import latest_checkpoint, load_train_state, save_train_state
from mindediting.utils.atomic import write_text_atomic

logger = logging.getLogger(__name__)

DEFAULTS = {
    "dataset": "reds", "gt_root": None, "lq_root": None, "meta_file": None, "val_partition": "REDS4",
    "num_frames": 15, "interval_list": [1], "random_reverse": False, "mirror": False, "gt_patch_size": 256,
    "use_hflip": True, "use_vflip": True, "use_transpose": True, "batch_size": 4, "num_workers": 0,
    "total_iters": 300000, "lr": 2e-4, "betas": [0.9, 0.99], "periods": [300000], "restart_weights": [1.0],
    "eta_min": 1e-7, "fix_iter": 5000, "spynet_lr_mult": 0.125, "fix_keys": ["spynet"], "loss_eps": 1e-12,
    "log_interval": 100,
    "val_interval": 5000, "save_interval": 5000, "keep_last": 3, "output_dir": "runs/basicvsr",
    "amp_level": "O0", "recompute": False,
    "sigma_min": 0.0, "sigma_max": 50.0, "frame_ext": ".jpg", "color_jitter": False,  # davis_denoise, vimeo_vfi
}
DATASETS = ("reds", "vimeo90k", "davis_denoise", "vimeo_vfi")


def cosine_restart_lr(step, base_lr, periods, restart_weights, eta_min):
    """mmcv/mmengine CosineRestart: ``eta_min + 0.5 * w * (base - eta_min) * (1 + cos(pi * alpha))``."""
    if len(periods) != len(restart_weights):
        raise ValueError(f"train.periods {periods} and train.restart_weights {restart_weights} differ in length")
    start = 0
    for period, weight in zip(periods, restart_weights):
        if step < start + period:
            alpha = (step - start) / period
            return eta_min + 0.5 * weight * (base_lr - eta_min) * (math.cos(math.pi * alpha) + 1)
        start += period
    return eta_min


# VRT (KAIR options) names of the same settings
ALIASES = {"fix_lr_mul": "spynet_lr_mult", "charbonnier_eps": "loss_eps"}


def train_options(cfg):
    opts = dict(DEFAULTS)
    opts.update({ALIASES.get(k, k): v for k, v in (cfg.get("train") or {}).items() if v is not None})
    if opts["dataset"] not in DATASETS:
        raise ValueError(f"train.dataset '{opts['dataset']}' must be reds or vimeo90k (video SR, deblurring), "
                         "davis_denoise (VRT 008) or vimeo_vfi (VRT 009)")
    # davis_denoise / vimeo_vfi read clean frames only (the input is made from them)
    for key in ("gt_root", "lq_root") if opts["dataset"] in ("reds", "vimeo90k") else ("gt_root",):
        if not opts[key]:
            raise ValueError(f"train.{key}: required (a frame folder or a .lmdb)")
    for key, supported in (("loss", "charbonnier"), ("optimizer", "adam"), ("scheduler", "cosine_restart")):
        if str(opts.get(key, supported)).lower() != supported:
            raise ValueError(f"train.{key} '{opts[key]}': the video SR trainer implements {supported} only")
    if float(opts.get("weight_decay", 0.0)) != 0.0:
        raise ValueError(f"train.weight_decay {opts['weight_decay']}: the video SR recipes use Adam without decay (0.0)")
    if opts["amp_level"] not in ("O0", "O1", "O2", "O3"):
        raise ValueError(f"train.amp_level '{opts['amp_level']}' must be O0, O1, O2 or O3")
    for key in ("batch_size", "total_iters", "log_interval", "save_interval"):
        if int(opts[key]) < 1:
            raise ValueError(f"train.{key} must be >= 1, got {opts[key]}")
    return opts


def build_train_set(opts, scale, seed):
    if opts["dataset"] in ("davis_denoise", "vimeo_vfi"):
        return build_vrt_train_set(opts, seed)
    common = dict(num_frames=opts["num_frames"], gt_patch_size=opts["gt_patch_size"], scale=scale,
                  random_reverse=opts["random_reverse"], use_hflip=opts["use_hflip"], use_vflip=opts["use_vflip"],
                  use_transpose=opts["use_transpose"], mirror=opts["mirror"], seed=seed)
    if opts["dataset"] == "reds":
        from mindediting.data.reds import REDSTrainSet

        return REDSTrainSet(opts["gt_root"], opts["lq_root"], interval_list=opts["interval_list"],
                            val_partition=opts["val_partition"], **common)
    from mindediting.data.vimeo90k import Vimeo90KTrainSet

    if not opts["meta_file"]:
        raise ValueError("train.meta_file: required for vimeo90k (sep_trainlist.txt)")
    return Vimeo90KTrainSet(opts["gt_root"], opts["lq_root"], opts["meta_file"], **common)


def build_vrt_train_set(opts, seed):
    """VRT 008 (``davis_denoise``: noisy input + sigma map made on the fly) and 009 (``vimeo_vfi``)."""
    from mindediting.data.vrt_train import DAVISDenoiseTrainSet, VimeoVFITrainSet

    flips = dict(use_hflip=opts["use_hflip"], use_vflip=opts["use_vflip"], use_transpose=opts["use_transpose"])
    if opts["dataset"] == "davis_denoise":
        return DAVISDenoiseTrainSet(opts["gt_root"], meta_file=opts["meta_file"], num_frames=opts["num_frames"],
                                    gt_patch_size=opts["gt_patch_size"], interval_list=opts["interval_list"],
                                    random_reverse=opts["random_reverse"], sigma_min=opts["sigma_min"],
                                    sigma_max=opts["sigma_max"], frame_ext=opts["frame_ext"], seed=seed, **flips)
    if not opts["meta_file"]:
        raise ValueError("train.meta_file: required for vimeo_vfi (sep_trainlist.txt)")
    if int(opts["num_frames"]) != 7:
        raise ValueError(f"train.num_frames {opts['num_frames']}: vimeo_vfi reads septuplets (7; KAIR num_frame 7, "
                         "temporal_scale 2: im1, im3, im5, im7 -> im4)")
    return VimeoVFITrainSet(opts["gt_root"], opts["meta_file"], gt_patch_size=opts["gt_patch_size"],
                            random_reverse=opts["random_reverse"], color_jitter=opts["color_jitter"], seed=seed,
                            **flips)


def step_seed(seed, step, rank=0):
    """A MindSpore global seed for one training iteration (non-negative int32)."""
    return int(np.random.SeedSequence([int(seed), int(step), int(rank)]).generate_state(1)[0] % (2 ** 31 - 1))


def param_digest(net):
    sha = hashlib.sha1()
    for p in net.get_parameters():
        sha.update(p.name.encode())
        sha.update(np.ascontiguousarray(p.asnumpy()).tobytes())
    return sha.hexdigest()


# model name -> "module:class" of its task trainer (each a TrainLoop subclass with the same constructor)
TRAINERS = {
    "basicvsr": "mindediting.engine.trainer:Trainer",
    "vrt": "mindediting.engine.trainer:Trainer",
    "metasci": "mindediting.engine.sci_trainer:SCITrainer",
    "efficientsci": "mindediting.engine.sci_trainer:SCITrainer",
    "qsci": "mindediting.engine.sci_trainer:SCITrainer",
    "spikling": "mindediting.engine.spike_trainer:SpikeTrainer",
}


def trainer_class(model_name):
    """The trainer class for ``model.name``; ValueError naming the supported models otherwise."""
    from mindediting.utils.resolve import resolve

    if model_name not in TRAINERS:
        raise ValueError(f"model.name '{model_name}': train.py trains {', '.join(sorted(TRAINERS))}")
    return resolve(TRAINERS[model_name])


class TrainLoop:
    """The task-independent part of training: run directory, per-rank JSON-lines log, progress bar, periodic
    validation and checkpoints, and resume. A task subclass sets ``self.net``, ``self.optimizers`` (name ->
    optimizer), ``self.loader`` (a :class:`mindediting.data.transforms.TrainLoader`-like iterator with
    ``state``/``load_state``/``close``) and ``self.opts`` (``total_iters``, ``log_interval``, ``val_interval``,
    ``save_interval``, ``keep_last``), and implements :meth:`train_step` (batch fields -> ``(loss, lr)``) and,
    optionally, :meth:`validate` (-> dict of averages) and :meth:`can_validate`.
    """

    def __init__(self, cfg, run_dir, rank=0, world_size=1, progress=True):
        self.cfg = cfg
        self.rank, self.world_size = int(rank), int(world_size)
        self.run_dir = str(run_dir)
        os.makedirs(self.run_dir, exist_ok=True)
        self.progress = progress
        self.seed = int((cfg.get("system") or {}).get("seed") or 0)
        self.step = 0
        self.log_path = os.path.join(self.run_dir, f"log_rank{self.rank}.jsonl")

    def train_step(self, *batch):
        raise NotImplementedError

    def can_validate(self):
        return False

    def validate(self):
        return {}

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


class Trainer(TrainLoop):
    """Video SR (BasicVSR): build model, data and optimizers from ``cfg``; :meth:`train` runs (or resumes) it."""

    def __init__(self, cfg, run_dir=None, rank=0, world_size=1, progress=True):
        import mindspore as ms
        from mindspore import nn
        from mindspore.experimental.optim import AdamW

        from mindediting.data.transforms import TrainLoader
        from mindediting.losses import CharbonnierLoss
        from mindediting.models import build_model

        self.opts = opts = train_options(cfg)
        super().__init__(cfg, run_dir or opts["output_dir"], rank, world_size, progress)
        system = cfg.get("system") or {}
        ms.set_seed(self.seed)
        scale = int((cfg.get("data") or {}).get("scale") or 4)
        self.net = build_model(cfg["model"]["name"], **(cfg["model"].get("args") or {}))
        if system.get("mode") == "graph" and hasattr(self.net, "detect_mirror"):
            self.net.detect_mirror = False
        if opts["recompute"]:
            for name, cell in self.net.name_cells().items():
                if name != "spynet":
                    cell.recompute()
        if opts["amp_level"] != "O0":
            if system.get("device_target", "CPU") == "CPU":
                logger.warning("amp_level %s on CPU: O1 fails there and O2/O3 are slower than fp32", opts["amp_level"])
            ms.amp.auto_mixed_precision(self.net, opts["amp_level"])
        self.net.set_train(True)
        self.loss = CharbonnierLoss(eps=opts["loss_eps"])
        params = self.net.trainable_params()
        # fixed for fix_iter iterations, then lr x spynet_lr_mult: SPyNet (BasicVSR); SpyNet + deformable convs (VRT)
        fixed = [str(k) for k in opts["fix_keys"]]
        self.flow_params = [p for p in params if any(k in p.name for k in fixed)]
        self.main_params = [p for p in params if not any(k in p.name for k in fixed)]
        betas = tuple(float(b) for b in opts["betas"])
        self.lr, self.flow_mult = float(opts["lr"]), float(opts["spynet_lr_mult"])
        self.optimizers = {"main": AdamW(self.main_params, lr=self.lr, betas=betas, weight_decay=0.0)}
        if self.flow_params:
            self.optimizers["flow"] = AdamW(self.flow_params, lr=self.lr * self.flow_mult, betas=betas,
                                            weight_decay=0.0)

        def loss_fn(lq, gt):
            out = self.net(lq)
            return self.loss(out.astype(ms.float32), gt)

        self.grad_main = ms.value_and_grad(loss_fn, None, self.main_params)
        self.grad_all = ms.value_and_grad(loss_fn, None, self.main_params + self.flow_params)
        self.reduce_main = self.reduce_all = None
        if self.world_size > 1:
            self.reduce_main = nn.DistributedGradReducer(self.main_params, mean=True, degree=self.world_size)
            self.reduce_all = nn.DistributedGradReducer(self.main_params + self.flow_params, mean=True,
                                                        degree=self.world_size)
        self.dataset = build_train_set(opts, scale, self.seed)
        self.loader = TrainLoader(self.dataset, opts["batch_size"], num_shards=self.world_size, shard_id=self.rank,
                                  num_workers=opts["num_workers"])

    def lr_at(self, step):
        o = self.opts
        return cosine_restart_lr(step, self.lr, o["periods"], o["restart_weights"], o["eta_min"])

    def train_step(self, lq, gt):
        import mindspore as ms
        from mindspore import ops

        # random ops in the network (VRT stochastic depth) draw from a seed of (seed, iteration, rank), so a
        # resumed run repeats the unbroken run's draws (MindSpore's op RNG state is not in the checkpoint)
        ms.set_seed(step_seed(self.seed, self.step, self.rank))
        lr = self.lr_at(self.step)
        flow_lr = cosine_restart_lr(self.step, self.lr * self.flow_mult, self.opts["periods"],
                                    self.opts["restart_weights"], self.opts["eta_min"])
        # ops.assign, not Parameter.set_data: after the optimizer's first call set_data no longer reaches it
        ops.assign(self.optimizers["main"].param_groups[0]["lr"], ms.Tensor(lr, ms.float32))
        lq, gt = ms.Tensor(lq), ms.Tensor(gt)
        fixed = self.step < int(self.opts["fix_iter"]) or "flow" not in self.optimizers
        if fixed:
            loss, grads = self.grad_main(lq, gt)
            if self.reduce_main is not None:
                grads = self.reduce_main(grads)
            self.optimizers["main"](tuple(grads))
        else:
            ops.assign(self.optimizers["flow"].param_groups[0]["lr"], ms.Tensor(flow_lr, ms.float32))
            loss, grads = self.grad_all(lq, gt)
            if self.reduce_all is not None:
                grads = self.reduce_all(grads)
            n = len(self.main_params)
            self.optimizers["main"](tuple(grads[:n]))
            self.optimizers["flow"](tuple(grads[n:]))
        self.step += 1
        return float(loss.asnumpy()), lr

    def can_validate(self):
        return bool((self.cfg.get("data") or {}).get("root"))

    def validate(self):
        from mindediting.engine.evaluator import evaluate
        from mindediting.engine.inference import network_fn

        self.net.set_train(False)
        try:
            result = evaluate(network_fn(self.net), self.cfg,
                              output_dir=os.path.join(self.run_dir, "val", f"iter_{self.step:08d}"), progress=False)
        finally:
            self.net.set_train(True)
        return result["average"]

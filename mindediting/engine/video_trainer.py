"""Video SR and video restoration training (BasicVSR, VRT): :class:`VideoTrainer` on the shared
:class:`~mindediting.engine.train_loop.TrainLoop`.

Recipe (``train`` section of the config, defaults = mmagic ``basicvsr_2xb4_reds4``):

* Charbonnier loss (``loss_eps`` 1e-12), torch-exact Adam (``mindediting.optim.AdamW`` with
  weight decay 0), ``betas`` (0.9, 0.99), ``lr`` 2e-4;
* cosine-restart schedule: ``periods`` (e.g. [300000]), ``restart_weights``, ``eta_min`` (absolute, for
  both groups), evaluated at the 0-based iteration before each update (mmcv ``CosineRestartLrUpdaterHook``);
* ``init_from``: start from a checkpoint's weights (a ``.ckpt`` of this network, training-state entries dropped,
  or an upstream ``.pth`` mapped by the model spec), loaded strictly; a resumed run reads its own checkpoint instead
  (mmagic's ``load_from``);
* ``flow_init: zero`` starts SPyNet at zero flow (:meth:`~mindediting.models.common.spynet.SPyNet.zero_flow`)
  when no pretrained SPyNet is at hand; the default keeps it as built or loaded (``spynet_pretrained``);
* SPyNet (``net.spynet``) frozen for the first ``fix_iter`` iterations, then trained with
  ``lr x spynet_lr_mult`` (0.125). SPyNet has its own optimizer so that, as in torch (per-parameter
  Adam step counts), its bias correction starts at its first real update. ``fix_keys`` lists the name parts
  of the parameters treated this way (default ``[spynet]``; VRT, as KAIR: ``[spynet, deform]``);
* VRT trains with the same loop (KAIR recipe; KAIR's ``fix_lr_mul`` and ``charbonnier_eps`` are
  ``spynet_lr_mult`` and ``loss_eps`` here);
* ``dataset``: ``reds`` / ``vimeo90k`` (paired GT/LQ frames, random ``patch_size`` GT crop), ``davis_denoise``
  (VRT 008: clean DAVIS frames, Gaussian noise of a random level ``sigma_min``..``sigma_max`` and its sigma/255
  map as a 4th input channel) and ``vimeo_vfi`` (VRT 009: im1, im3, im5, im7 -> im4, optional
  ``color_jitter``); see :mod:`mindediting.data.vrt_train`;
* data parallel: ``batch_size`` is per device (total = batch_size x devices, the learning rate is not
  rescaled); gradients are averaged over devices with ``nn.DistributedGradReducer``; each rank reads a
  disjoint shard; rank 0 validates and writes checkpoints, every rank writes ``log_rank<r>.jsonl``.
"""
import logging
import math
import os

from mindediting.engine.train_loop import LOOP_SCHEMA, TrainLoop, load_init_weights
from mindediting.engine.train_step import build_step

logger = logging.getLogger(__name__)

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


def check_adam_cosine_flow(opts, trainer):
    """The options VideoTrainer and FlowTrainer share: Adam without decay, the cosine-restart schedule, and where
    SPyNet starts (``flow_init``)."""
    if str(opts["scheduler"]).lower() != "cosine_restart":
        raise ValueError(f"train.scheduler '{opts['scheduler']}': {trainer} implements cosine_restart only")
    if opts["flow_init"] not in ("model", "zero"):
        raise ValueError(f"train.flow_init '{opts['flow_init']}' must be model (SPyNet as built or loaded) or "
                         "zero (the last layer of every level zeroed: zero flow at the start)")
    if float(opts["weight_decay"]) != 0.0:
        raise ValueError(f"train.weight_decay {opts['weight_decay']}: the flow and video recipes use Adam without "
                         "decay (0.0)")


def train_options(cfg):
    """The video trainer's options (``train`` section over :attr:`VideoTrainer.SCHEMA`), checked."""
    return VideoTrainer.options(cfg)


def build_train_set(opts, scale, seed):
    if opts["dataset"] in ("davis_denoise", "vimeo_vfi"):
        return build_vrt_train_set(opts, seed)
    common = dict(num_frames=opts["num_frames"], gt_patch_size=opts["patch_size"], scale=scale,
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
                                    gt_patch_size=opts["patch_size"], interval_list=opts["interval_list"],
                                    random_reverse=opts["random_reverse"], sigma_min=opts["sigma_min"],
                                    sigma_max=opts["sigma_max"], frame_ext=opts["frame_ext"], seed=seed, **flips)
    if not opts["meta_file"]:
        raise ValueError("train.meta_file: required for vimeo_vfi (sep_trainlist.txt)")
    if int(opts["num_frames"]) != 7:
        raise ValueError(f"train.num_frames {opts['num_frames']}: vimeo_vfi reads septuplets (7; KAIR num_frame 7, "
                         "temporal_scale 2: im1, im3, im5, im7 -> im4)")
    return VimeoVFITrainSet(opts["gt_root"], opts["meta_file"], gt_patch_size=opts["patch_size"],
                            random_reverse=opts["random_reverse"], color_jitter=opts["color_jitter"], seed=seed,
                            **flips)


class VideoTrainer(TrainLoop):
    """BasicVSR / VRT: build model, data and optimizers from ``cfg``; :meth:`train` runs (or resumes) it."""

    SCHEMA = dict(LOOP_SCHEMA, **{
        "output_dir": (str, "runs/basicvsr"), "total_iters": (int, 300000), "batch_size": (int, 4),
        "loss": (str, "charbonnier"), "lr": (float, 2e-4), "betas": (list, [0.9, 0.99]),
        "val_interval": (int, 5000), "save_interval": (int, 5000),
        "dataset": (str, "reds"), "gt_root": (str, None), "lq_root": (str, None),  # frame folders or .lmdb
        "meta_file": (str, None), "val_partition": (str, "REDS4"),  # REDS clips left out: REDS4 | official | none
        "num_frames": (int, 15), "interval_list": (list, [1]), "random_reverse": (bool, False),
        "mirror": (bool, False), "patch_size": (int, 256),  # random GT crop (LR: patch_size / scale)
        "use_hflip": (bool, True), "use_vflip": (bool, True), "use_transpose": (bool, True),
        "loss_eps": (float, 1e-12),  # Charbonnier
        "scheduler": (str, "cosine_restart"), "periods": (list, [300000]), "restart_weights": (list, [1.0]),
        "eta_min": (float, 1e-7),
        "fix_iter": (int, 5000), "spynet_lr_mult": (float, 0.125),  # fix_keys frozen for fix_iter, then lr x mult
        "fix_keys": (list, ["spynet"]),
        "flow_init": (str, "model"),  # model: SPyNet as built/loaded; zero: its last layers zeroed (zero flow)
        "init_from": (str, None),  # start weights (.ckpt or upstream .pth), loaded strictly; before flow_init
        "recompute": (bool, False),  # recompute the activations of the top-level cells in backward (less memory)
        "sigma_min": (float, 0.0), "sigma_max": (float, 50.0), "frame_ext": (str, ".jpg"),  # davis_denoise
        "color_jitter": ((bool, int, float), False),  # vimeo_vfi
    })
    LOSSES = ("charbonnier",)

    @classmethod
    def options(cls, cfg):
        opts = super().options(cfg)
        if opts["dataset"] not in DATASETS:
            raise ValueError(f"train.dataset '{opts['dataset']}' must be reds or vimeo90k (video SR, deblurring), "
                             "davis_denoise (VRT 008) or vimeo_vfi (VRT 009)")
        # davis_denoise / vimeo_vfi read clean frames only (the input is made from them)
        for key in ("gt_root", "lq_root") if opts["dataset"] in ("reds", "vimeo90k") else ("gt_root",):
            if not opts[key]:
                raise ValueError(f"train.{key}: required (a frame folder or a .lmdb)")
        check_adam_cosine_flow(opts, "VideoTrainer")
        return opts

    def __init__(self, cfg, run_dir=None, rank=0, world_size=1, progress=True):
        import mindspore as ms
        from mindediting.optim import AdamW

        from mindediting.data.transforms import TrainLoader
        from mindediting.losses import CharbonnierLoss
        from mindediting.models import build_model

        super().__init__(cfg, run_dir, rank, world_size, progress)
        opts = self.opts
        ms.set_seed(self.seed)
        scale = int((cfg.get("data") or {}).get("scale") or 4)
        self.net = build_model(cfg["model"]["name"], **(cfg["model"].get("args") or {}))
        if opts["init_from"]:
            from mindediting import registry

            load_init_weights(self.net, opts["init_from"], registry.get(cfg["model"]["name"]),
                              cfg["model"].get("args") or {})
        if self.jit and hasattr(self.net, "detect_mirror"):
            self.net.detect_mirror = False
        if opts["flow_init"] == "zero":
            if not hasattr(getattr(self.net, "spynet", None), "zero_flow"):
                raise ValueError(f"train.flow_init zero: model '{cfg['model']['name']}' has no SPyNet to start at "
                                 "zero flow")
            self.net.spynet.zero_flow()
        if opts["recompute"]:
            # the cells of the fixed phase (fix_keys: SPyNet) stay out: they are frozen for the first fix_iter steps
            for name, cell in self.net.name_cells().items():
                if not any(str(k) in name for k in opts["fix_keys"]):
                    cell.recompute()
        self.mixed_precision(self.net)
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
            # a compiled step holding both optimizers needs unique parameter names; AdamW names its step
            # counter and learning rate the same in every instance (checkpoints name them by group instead)
            flow = self.optimizers["flow"]
            flow.state_step.name = "flow." + flow.state_step.name
            flow.param_groups[0]["lr"].name = "flow." + flow.param_groups[0]["lr"].name

        def loss_fn(lq, gt):
            out = self.net(lq)
            return self.loss(out.astype(ms.float32), gt)

        groups = list(self.optimizers.values())
        self.step_main = build_step(loss_fn, groups[:1], self.world_size, self.jit, self.scaler)
        self.step_all = build_step(loss_fn, groups, self.world_size, self.jit, self.scaler)
        self.dataset = build_train_set(opts, scale, self.seed)
        self.loader = TrainLoader(self.dataset, opts["batch_size"], num_shards=self.world_size, shard_id=self.rank,
                                  num_workers=opts["num_workers"], prefetch=opts["prefetch"])

    def lr_at(self, step, base_lr=None):
        o = self.opts
        return cosine_restart_lr(step, base_lr or self.lr, o["periods"], o["restart_weights"], o["eta_min"])

    def train_step(self, lq, gt):
        import mindspore as ms
        from mindspore import ops

        lr = self.lr_at(self.step)
        if hasattr(self.net, "seed_random"):
            # the network's random draws (VRT stochastic depth) follow the iteration seed the loop set; ops.rand
            # in a compiled step would keep the seed it was compiled with
            self.net.seed_random(ms.get_seed())
        # ops.assign, not Parameter.set_data: after the optimizer's first call set_data no longer reaches it
        ops.assign(self.optimizers["main"].param_groups[0]["lr"], ms.Tensor(lr, ms.float32))
        lq, gt = ms.Tensor(lq), ms.Tensor(gt)
        if self.step < int(self.opts["fix_iter"]) or "flow" not in self.optimizers:
            loss = self.step_main(lq, gt)
        else:
            flow_lr = self.lr_at(self.step, self.lr * self.flow_mult)
            ops.assign(self.optimizers["flow"].param_groups[0]["lr"], ms.Tensor(flow_lr, ms.float32))
            loss = self.step_all(lq, gt)
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

"""Spikling training (lshpku/spikling ``train.py`` recipe) on the shared :class:`TrainLoop`.

Recipe (``train`` section; see ``configs/spikling/spikling_train_skvideo.yaml``):

* samples: 32-frame spike windows (:class:`mindediting.data.spike_train.SpikeTrainSet`) from ``train.root``
  (or ``data.root``): ``.npz`` windows and/or videos simulated at ``data.sim_size`` with ``data.sim_seed``,
  windows every ``train.window_stride`` frames; upstream augmentation (random 90-degree rotations, horizontal
  flip), optional random ``patch_size`` crop; input ``spikes*2-1``, target ``grey/128-1``;
* loss ``loss.l2 * MSE(fake, real) + loss.vgg * VGG(real, fake)`` (upstream 100 and 1), the VGG term on
  VGG19 ``features[:vgg_end]`` from ``train.vgg_weights`` (torchvision checkpoint). Without that file the VGG
  weight is set to 0 and a warning says so (L2-only training);
* torch-exact Adam (``mindspore.experimental.optim.AdamW``, weight decay 0), ``optimizer.lr`` 2e-4,
  ``optimizer.betas`` (0.5, 0.999), constant learning rate;
* ``epochs`` (upstream 50) -> iterations = epochs x batches per epoch, unless ``total_iters`` is given;
  validation every ``val_interval`` iterations (or ``eval_every`` epochs) on the windows of ``eval_dir``
  (PSNR/SSIM of the uint8 output against the grey tag, as ``spike_pipeline``);
* data parallel as the BasicVSR trainer: per-device batch, gradients averaged with
  ``nn.DistributedGradReducer``; ``system.mode: graph`` compiles the training step with ``mindspore.jit``.
"""
import logging
import os

import numpy as np

from mindediting.engine.trainer import TrainLoop

logger = logging.getLogger(__name__)

DEFAULTS = {
    "root": None, "window": 32, "window_stride": 1, "patch_size": 0, "augment": "rot90_fliplr",
    "loss": {"l2": 100.0, "vgg": 1.0}, "vgg_weights": None, "vgg_end": 16,
    "optimizer": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 0.0},
    "epochs": 50, "total_iters": None, "batch_size": 1, "num_workers": 0, "log_interval": 10,
    "val_interval": None, "eval_every": None, "eval_dir": None, "save_interval": 500, "keep_last": 3,
    "output_dir": None, "save_dir": None,
}


def spike_train_options(cfg):
    """Validated options of the Spikling trainer (``train`` section over :data:`DEFAULTS`)."""
    opts = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    train = {k: v for k, v in (cfg.get("train") or {}).items() if v is not None}
    for key in ("loss", "optimizer"):
        if key in train and not isinstance(train[key], dict):
            raise ValueError(f"train.{key} must be a mapping, got {train[key]!r}")
        opts[key].update(train.pop(key, {}))
    opts.update(train)
    for key in ("lr", "betas"):  # flat keys, as the other trainers, override optimizer.*
        if key in train:
            opts["optimizer"][key] = train[key]
    opts["root"] = opts["root"] or (cfg.get("data") or {}).get("root")
    if not opts["root"]:
        raise ValueError("train.root (or data.root): required (a folder of .npz spike windows and/or videos)")
    if opts["augment"] not in ("rot90_fliplr", "none", False, True):
        raise ValueError(f"train.augment '{opts['augment']}' must be rot90_fliplr or none")
    if str(opts["optimizer"].get("name", "adam")).lower() != "adam":
        raise ValueError(f"train.optimizer.name '{opts['optimizer']['name']}': only adam (upstream) is supported")
    if float(opts["optimizer"].get("weight_decay", 0.0)):
        raise ValueError("train.optimizer.weight_decay must be 0 (upstream Adam has none)")
    for key in ("window", "window_stride", "batch_size", "log_interval", "save_interval"):
        if int(opts[key]) < 1:
            raise ValueError(f"train.{key} must be >= 1, got {opts[key]}")
    if int(opts["window"]) != 32:
        raise ValueError(f"train.window must be 32 (the Generator's input channels), got {opts['window']}")
    for key in ("l2", "vgg"):
        if float(opts["loss"].get(key, 0.0)) < 0:
            raise ValueError(f"train.loss.{key} must be >= 0, got {opts['loss'][key]}")
    opts["output_dir"] = opts["output_dir"] or opts["save_dir"] or "runs/spikling"
    return opts


class SpikeTrainer(TrainLoop):
    """Spikling generator training; same constructor and :meth:`train` as the other task trainers."""

    def __init__(self, cfg, run_dir=None, rank=0, world_size=1, progress=True):
        import mindspore as ms
        from mindspore import nn
        from mindspore.experimental.optim import AdamW

        from mindediting.data.spike_train import SpikeTrainSet
        from mindediting.data.transforms import TrainLoader
        from mindediting.models import build_model
        from mindediting.models.spikling import SpiklingLoss

        opts = spike_train_options(cfg)
        super().__init__(cfg, run_dir or opts["output_dir"], rank, world_size, progress)
        data = cfg.get("data") or {}
        self.sim_size = tuple(int(v) for v in (data.get("sim_size") or (128, 128)))
        self.sim_seed = int(data.get("sim_seed") or 0)
        ms.set_seed(self.seed)
        augment = opts["augment"] not in ("none", False)
        self.dataset = SpikeTrainSet(opts["root"], opts["window"], opts["window_stride"], self.sim_size,
                                     self.sim_seed, augment=augment, patch_size=opts["patch_size"], seed=self.seed)
        self.loader = TrainLoader(self.dataset, opts["batch_size"], num_shards=self.world_size, shard_id=self.rank,
                                  num_workers=opts["num_workers"])
        per_epoch = self.loader.batches_per_epoch
        if not opts["total_iters"]:
            opts["total_iters"] = int(opts["epochs"]) * per_epoch
        if opts["val_interval"] is None:
            opts["val_interval"] = int(opts["eval_every"]) * per_epoch if opts["eval_every"] else 0
        self.opts = opts
        logger.info("spikling training: %d windows (%d batches of %d per epoch on this rank), %d iterations",
                    len(self.dataset), per_epoch, int(opts["batch_size"]), int(opts["total_iters"]))

        self.net = build_model(cfg["model"]["name"], **(cfg["model"].get("args") or {}))
        self.net.set_train(True)
        self.lambda_l2 = float(opts["loss"].get("l2", 100.0))
        self.lambda_vgg = float(opts["loss"].get("vgg", 0.0))
        self.vgg = self._build_vgg(opts)  # may set lambda_vgg to 0 (no VGG19 weights)
        self.loss_fn = SpiklingLoss(self.net, self.vgg, self.lambda_l2, self.lambda_vgg)
        optim = opts["optimizer"]
        self.lr = float(optim.get("lr", 2e-4))
        betas = tuple(float(b) for b in optim.get("betas", (0.5, 0.999)))
        self.params = self.net.trainable_params()
        self.optimizers = {"main": AdamW(self.params, lr=self.lr, betas=betas, eps=1e-8, weight_decay=0.0)}
        self.reducer = None
        if self.world_size > 1:
            self.reducer = nn.DistributedGradReducer(self.params, mean=True, degree=self.world_size)
        grad_fn = ms.value_and_grad(self.loss_fn, None, self.params)
        optimizer, reducer = self.optimizers["main"], self.reducer

        def step(seq, tag):
            loss, grads = grad_fn(seq, tag)
            if reducer is not None:
                grads = reducer(grads)
            optimizer(grads)
            return loss

        jit = (cfg.get("system") or {}).get("mode") == "graph"
        self._step = ms.jit(step) if jit else step
        self._eval_set = None

    def _build_vgg(self, opts):
        if self.lambda_vgg == 0:
            logger.info("loss: %g * L2 (VGG weight 0 in train.loss)", self.lambda_l2)
            return None
        path = opts["vgg_weights"]
        if not path or not os.path.isfile(str(path)):
            logger.warning("train.vgg_weights %s not found: VGG perceptual loss DISABLED (weight %g -> 0); "
                           "training with %g * L2 only", path, self.lambda_vgg, self.lambda_l2)
            self.lambda_vgg = 0.0
            return None
        from mindediting.models.common.vgg import VGGPerceptualLoss, build_vgg19_features

        logger.info("loss: %g * L2 + %g * VGG19 features[:%d] (%s)", self.lambda_l2, self.lambda_vgg,
                    int(opts["vgg_end"]), path)
        return VGGPerceptualLoss(build_vgg19_features(path, int(opts["vgg_end"])))

    def train_step(self, seq, tag):
        import mindspore as ms

        loss = self._step(ms.Tensor(seq), ms.Tensor(tag))
        self.step += 1
        return float(loss.asnumpy()), self.lr

    # ------------------------------------------------------------------------------------------ validation
    def can_validate(self):
        return bool(self.opts.get("eval_dir"))

    def eval_set(self):
        if self._eval_set is None:
            from mindediting.data.spike_train import SpikeTrainSet

            self._eval_set = SpikeTrainSet(self.opts["eval_dir"], self.opts["window"], self.opts["window"],
                                           self.sim_size, self.sim_seed, augment=False)
        return self._eval_set

    def validate(self):
        """Mean PSNR/SSIM of the uint8 reconstruction against the grey tag over the ``eval_dir`` windows."""
        from mindediting.engine.spike_pipeline import psnr, ssim
        from mindediting.models.spikling import generate, padding_for

        windows = self.eval_set()
        self.net.set_train(False)
        scores = []
        try:
            for index in range(len(windows)):
                seq, tag = windows.window_at(index)
                rows, cols = padding_for(*tag.shape)
                image = generate(self.net, seq, 0, rows, cols)
                scores.append((psnr(image, tag), ssim(image, tag)))
        finally:
            self.net.set_train(True)
        psnrs, ssims = np.array(scores).T
        return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "windows": float(len(scores))}

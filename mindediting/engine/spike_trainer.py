"""Spikling training (lshpku/spikling ``train.py`` recipe) on the shared :class:`TrainLoop`.

Recipe (``train`` section; see ``configs/spikling/spikling_train_skvideo.yaml``):

* samples: 32-frame spike windows (:class:`mindediting.data.spike_train.SpikeTrainSet`) from ``train.root``
  (or ``data.root``): ``.npz`` windows and/or videos simulated at ``data.sim_size`` with ``data.sim_seed``,
  windows every ``train.window_stride`` frames, for each motion (``train.motions``: still, as filmed, faster) and
  brightness (``train.gains``) variant of a video; upstream augmentation (random 90-degree rotations, horizontal
  flip), optional random ``patch_size`` crop; input ``spikes*2-1``, target ``grey/128-1``;
* loss ``l2_vgg``: ``loss_weights.l2 * MSE(fake, real) + loss_weights.vgg * VGG(real, fake)`` (upstream 100
  and 1), the VGG term on VGG19 ``features[:vgg_end]`` from ``train.vgg_weights`` (torchvision checkpoint).
  Without that file the VGG weight is set to 0 and a warning says so (L2-only training);
* torch-exact Adam (``mindediting.optim.AdamW``, weight decay 0), ``lr`` 2e-4, ``betas``
  (0.5, 0.999), constant learning rate;
* ``epochs`` (upstream 50) -> iterations = epochs x batches per epoch, unless ``total_iters`` is given;
  validation every ``val_interval`` iterations on the windows of ``eval_dir`` (PSNR/SSIM of the uint8 output
  against the grey tag, as ``spike_pipeline``);
* data parallel as the BasicVSR trainer: per-device batch, gradients averaged with
  ``nn.DistributedGradReducer``; ``system.mode: graph`` compiles the training step with ``mindspore.jit``.
"""
import logging
import os

import numpy as np

from mindediting.engine.train_loop import LOOP_SCHEMA, TrainLoop
from mindediting.engine.train_step import build_step

logger = logging.getLogger(__name__)

LOSS_WEIGHTS = {"l2": 100.0, "vgg": 1.0}  # upstream LAMBDA_L2, LAMBDA_VGG


def spike_train_options(cfg):
    """The Spikling trainer's options (``train`` section over :attr:`SpikeTrainer.SCHEMA`), checked."""
    return SpikeTrainer.options(cfg)


class SpikeTrainer(TrainLoop):
    """Spikling generator training; same constructor and :meth:`train` as the other task trainers."""

    SCHEMA = dict(LOOP_SCHEMA, **{
        "output_dir": (str, "runs/spikling"), "loss": (str, "l2_vgg"), "lr": (float, 2e-4),
        "betas": (list, [0.5, 0.999]), "log_interval": (int, 10), "save_interval": (int, 500),
        "root": (str, None),  # .npz windows and/or videos (default data.root)
        "window": (int, 32), "window_stride": (int, 1),  # spike frames per sample; a window every N frames
        "motions": (list, [1]),  # video variants: frame steps (0 still, 1 as filmed, k k x faster)
        "gains": (list, [1.0]),  # video variants: brightness factors in (0, 1]
        "patch_size": (int, 0),  # random square crop of each window (0 = whole window)
        "augment": ((str, bool), "rot90_fliplr"),
        "loss_weights": (dict, dict(LOSS_WEIGHTS)),  # {l2, vgg}
        "vgg_weights": (str, None), "vgg_end": (int, 16),  # torchvision VGG19 file; features[:vgg_end]
        "epochs": (int, 50),  # iterations = epochs x batches per epoch, unless total_iters
        "eval_dir": (str, None),  # validation windows
    })
    LOSSES = ("l2_vgg",)

    @classmethod
    def options(cls, cfg):
        opts = super().options(cfg)
        weights = (cfg.get("train") or {}).get("loss_weights") or {}
        unknown = sorted(set(weights) - set(LOSS_WEIGHTS))
        if unknown:
            raise ValueError(f"train.loss_weights: unknown term {unknown[0]} (valid: {', '.join(LOSS_WEIGHTS)})")
        opts["loss_weights"] = dict(LOSS_WEIGHTS, **weights)
        opts["root"] = opts["root"] or (cfg.get("data") or {}).get("root")
        if not opts["root"]:
            raise ValueError("train.root (or data.root): required (a folder of .npz spike windows and/or videos)")
        if opts["augment"] not in ("rot90_fliplr", "none", False, True):
            raise ValueError(f"train.augment '{opts['augment']}' must be rot90_fliplr or none")
        if float(opts["weight_decay"]):
            raise ValueError("train.weight_decay must be 0 (upstream Adam has none)")
        for key in ("window", "window_stride"):
            if int(opts[key]) < 1:
                raise ValueError(f"train.{key} must be >= 1, got {opts[key]}")
        if int(opts["window"]) != 32:
            raise ValueError(f"train.window must be 32 (the Generator's input channels), got {opts['window']}")
        for key, value in opts["loss_weights"].items():
            if float(value) < 0:
                raise ValueError(f"train.loss_weights.{key} must be >= 0, got {value}")
        return opts

    def __init__(self, cfg, run_dir=None, rank=0, world_size=1, progress=True):
        import mindspore as ms
        from mindediting.optim import AdamW

        from mindediting.data.spike_train import SpikeTrainSet
        from mindediting.data.transforms import TrainLoader
        from mindediting.models import build_model
        from mindediting.models.spikling import SpiklingLoss

        super().__init__(cfg, run_dir, rank, world_size, progress)
        opts = self.opts
        data = cfg.get("data") or {}
        self.sim_size = tuple(int(v) for v in (data.get("sim_size") or (128, 128)))
        self.sim_seed = int(data.get("sim_seed") or 0)
        ms.set_seed(self.seed)
        augment = opts["augment"] not in ("none", False)
        self.dataset = SpikeTrainSet(opts["root"], opts["window"], opts["window_stride"], self.sim_size,
                                     self.sim_seed, augment=augment, patch_size=opts["patch_size"], seed=self.seed,
                                     motions=opts["motions"], gains=opts["gains"])
        self.loader = TrainLoader(self.dataset, opts["batch_size"], num_shards=self.world_size, shard_id=self.rank,
                                  num_workers=opts["num_workers"], prefetch=opts["prefetch"])
        per_epoch = self.loader.batches_per_epoch
        if not opts["total_iters"]:
            opts["total_iters"] = int(opts["epochs"]) * per_epoch
        logger.info("spikling training: %d windows (%d batches of %d per epoch on this rank), %d iterations",
                    len(self.dataset), per_epoch, int(opts["batch_size"]), int(opts["total_iters"]))

        self.net = build_model(cfg["model"]["name"], **(cfg["model"].get("args") or {}))
        self.mixed_precision(self.net)
        self.net.set_train(True)
        self.lambda_l2 = float(opts["loss_weights"]["l2"])
        self.lambda_vgg = float(opts["loss_weights"]["vgg"])
        self.vgg = self._build_vgg(opts)  # may set lambda_vgg to 0 (no VGG19 weights)
        self.loss_fn = SpiklingLoss(self.net, self.vgg, self.lambda_l2, self.lambda_vgg)
        self.lr = float(opts["lr"])
        betas = tuple(float(b) for b in opts["betas"])
        self.params = self.net.trainable_params()
        self.optimizers = {"main": AdamW(self.params, lr=self.lr, betas=betas, eps=1e-8, weight_decay=0.0)}
        self._step = build_step(self.loss_fn, [self.optimizers["main"]], self.world_size, self.jit, self.scaler)
        self._eval_set = None

    def _build_vgg(self, opts):
        if self.lambda_vgg == 0:
            logger.info("loss: %g * L2 (VGG weight 0 in train.loss_weights)", self.lambda_l2)
            return None
        path = opts["vgg_weights"]
        if not path or not os.path.isfile(str(path)):
            logger.warning("train.vgg_weights %s not found: VGG perceptual loss DISABLED (weight %g -> 0); "
                           "training with %g * L2 only", path, self.lambda_vgg, self.lambda_l2)
            self.lambda_vgg = 0.0
            return None
        from mindediting.convert.weights import load_weights
        from mindediting.models.common.vgg import VGG19Features, VGGPerceptualLoss, convert_state_dict

        end = int(opts["vgg_end"])
        logger.info("loss: %g * L2 + %g * VGG19 features[:%d] (%s)", self.lambda_l2, self.lambda_vgg, end, path)
        features = load_weights(VGG19Features(end), path, mapping=convert_state_dict, what="train.vgg_weights",
                                end=end)
        features.set_train(False)
        return VGGPerceptualLoss(features)

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

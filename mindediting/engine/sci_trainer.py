"""Video SCI training (MetaSCI, EfficientSCI, Q-SCI quantisation-aware fine-tuning) for ``train.py``.

Recipe (``train`` section; defaults = the cacti toolbox / EfficientSCI / Q-SCI training scripts):

* samples: :class:`mindediting.data.sci_train.SCITrainSet` (DAVIS layout or LMDB, toolbox augmentation,
  measurement ``sum_k mask_k * x_k`` made on the fly; mask from ``mask_path`` / ``mask_shape``);
* loss ``sqrt(MSE)`` between the (last) network output and the frames; torch-exact Adam
  (``mindspore.experimental.optim.AdamW``, ``weight_decay`` 0 by default), ``lr`` 1e-4, no schedule;
* ``epochs`` (x batches per epoch per device = iterations; ``total_iters`` overrides), checkpoints every
  ``checkpoint_interval`` epochs (``save_interval`` iterations overrides) and six-gray validation (the
  ``data`` section, scenes present under ``data.root``) every ``eval_interval`` epochs (``val_interval``);
* ``init_from``: start from a checkpoint (``.ckpt``, or an upstream ``.pth`` converted with the
  ``efficientsci`` converter for Q-SCI); ``init_strict: false`` copies only the entries whose name and
  shape match (upstream ``load_checkpoints``, :func:`mindediting.models.qsci.load_full_precision`);
* Q-SCI: quantiser steps / zero points are set from the first training batch
  (:func:`mindediting.models.common.quantizers.init_quantizers`) before the first update;
* data parallel: ``batch_size`` per device, gradients averaged with ``nn.DistributedGradReducer``.

Network inputs in each model's upstream layout: ``metasci``/``efficientsci`` take ``meas (B, 1, H, W)``,
``mask (B, cr, H, W)``, ``mask_s (B, 1, H, W)``; ``qsci`` takes ``meas``/``mask_s`` without the channel axis.
"""
import logging
import os

import numpy as np

from mindediting.engine.trainer import TrainLoop

logger = logging.getLogger(__name__)

SCI_DEFAULTS = {
    "dataset": "davis", "root": None, "frames": 8, "crop_size": 256, "patch_size": None, "mask_path": None,
    "mask_shape": None, "augment": True, "batch_size": 4, "num_workers": 0, "loss": "rmse", "optimizer": "adam",
    "lr": 1e-4, "betas": [0.9, 0.999], "weight_decay": 0.0, "epochs": 120, "total_iters": None,
    "checkpoint_interval": 1, "eval_interval": 1, "save_interval": None, "val_interval": None,
    "log_interval": 100, "keep_last": 3, "output_dir": "runs/sci", "init_from": None, "init_strict": True,
    "quantizer_init": "first_batch", "seed": None,
}
NO_CHANNEL_MODELS = ("qsci",)


def sci_train_options(cfg):
    opts = dict(SCI_DEFAULTS)
    opts.update({k: v for k, v in (cfg.get("train") or {}).items() if v is not None or k in ("mask_path",)})
    if not opts["root"]:
        raise ValueError("train.root: required (DAVIS JPEGImages/480p folder <root>/<clip>/*.jpg, or an LMDB)")
    if opts["dataset"] != "davis":
        raise ValueError(f"train.dataset '{opts['dataset']}': SCI training reads 'davis'")
    if str(opts["loss"]).lower() != "rmse":
        raise ValueError(f"train.loss '{opts['loss']}': SCI training uses rmse (sqrt of MSE)")
    if str(opts["optimizer"]).lower() != "adam":
        raise ValueError(f"train.optimizer '{opts['optimizer']}': SCI training uses adam")
    if opts["quantizer_init"] not in ("first_batch", "none"):
        raise ValueError(f"train.quantizer_init '{opts['quantizer_init']}' must be first_batch or none")
    for key in ("batch_size", "epochs", "crop_size", "log_interval"):
        if int(opts[key]) < 1:
            raise ValueError(f"train.{key} must be >= 1, got {opts[key]}")
    augment = opts["augment"]
    opts["augment"] = bool(augment) if not isinstance(augment, (list, tuple)) else len(augment) > 0
    return opts


def read_init_params(path, model_name):
    """``{name: ndarray}`` from a MindSpore ``.ckpt`` (optimizer entries dropped) or an upstream ``.pth``."""
    from mindediting.convert.pth_reader import CheckpointError

    if not os.path.isfile(str(path)):
        raise FileNotFoundError(f"train.init_from: {path} not found")
    if str(path).endswith((".pth", ".pt", ".tar")):
        from mindediting.convert.converter import load_and_convert

        source = "efficientsci" if model_name == "qsci" else model_name
        return load_and_convert(source, str(path))
    import mindspore as ms

    try:
        loaded = ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError, OSError) as err:
        raise CheckpointError(f"{path}: cannot read MindSpore checkpoint ({str(err).splitlines()[0]})") from None
    return {k: v.asnumpy().astype(np.float32) for k, v in loaded.items() if not k.startswith("optimizer.")}


class SCITrainer(TrainLoop):
    """Train ``model.name`` (metasci / efficientsci / qsci) with the config's ``train`` section."""

    def __init__(self, cfg, run_dir=None, rank=0, world_size=1, progress=True):
        import mindspore as ms
        from mindspore import nn
        from mindspore.experimental.optim import AdamW

        from mindediting.data.sci_train import SCITrainSet, build_train_mask
        from mindediting.data.transforms import TrainLoader
        from mindediting.models import build_model

        opts = sci_train_options(cfg)
        super().__init__(cfg, run_dir or opts["output_dir"], rank, world_size, progress)
        if opts["seed"] is not None and (cfg.get("system") or {}).get("seed") is None:
            self.seed = int(opts["seed"])
        ms.set_seed(self.seed)
        self.model_name = cfg["model"]["name"]
        self.net = build_model(self.model_name, **(cfg["model"].get("args") or {}))
        if opts["init_from"]:
            self._init_weights(opts["init_from"], bool(opts["init_strict"]))
        self.net.set_train(True)

        mask = build_train_mask(opts["mask_path"], opts["mask_shape"], seed=self.seed)
        self.dataset = SCITrainSet(opts["root"], mask, crop_size=opts["crop_size"], patch_size=opts["patch_size"],
                                   augment=opts["augment"], frames=opts["frames"], seed=self.seed)
        self.loader = TrainLoader(self.dataset, opts["batch_size"], num_shards=self.world_size, shard_id=self.rank,
                                  num_workers=opts["num_workers"])
        per_epoch = self.loader.batches_per_epoch
        opts["total_iters"] = int(opts["total_iters"] or int(opts["epochs"]) * per_epoch)
        opts["save_interval"] = int(opts["save_interval"] or int(opts["checkpoint_interval"]) * per_epoch)
        opts["val_interval"] = int(opts["val_interval"] or int(opts["eval_interval"]) * per_epoch)
        self.opts = opts
        logger.info("%s: %d samples, %d iterations per epoch, %d iterations", self.model_name, len(self.dataset),
                    per_epoch, opts["total_iters"])

        self.params = self.net.trainable_params()
        self.lr = float(opts["lr"])
        self.optimizers = {"main": AdamW(self.params, lr=self.lr, betas=tuple(float(b) for b in opts["betas"]),
                                         weight_decay=float(opts["weight_decay"]))}
        self.reducer = None
        if self.world_size > 1:
            self.reducer = nn.DistributedGradReducer(self.params, mean=True, degree=self.world_size)
        grad_fn = ms.value_and_grad(self._loss, None, self.params)
        optimizer, reducer = self.optimizers["main"], self.reducer

        def step(meas, mask, mask_s, gt):
            loss, grads = grad_fn(meas, mask, mask_s, gt)
            if reducer is not None:
                grads = reducer(grads)
            optimizer(tuple(grads))
            return loss

        # graph mode compiles the whole step (forward, backward, update): faster, and flat host memory
        self._step = ms.jit(step) if (cfg.get("system") or {}).get("mode") == "graph" else step
        self.quantizers_pending = self.model_name == "qsci" and opts["quantizer_init"] == "first_batch"

    def _init_weights(self, path, strict):
        from mindspore import Tensor

        from mindediting.convert.converter import check_params
        from mindediting.models.qsci import load_full_precision

        params = read_init_params(path, self.model_name)
        if strict:
            check_params(params, self.net, str(path))
            for p in self.net.get_parameters():
                p.set_data(Tensor(params[p.name].astype(np.float32)))
            logger.info("initialised all %d parameters from %s", len(params), path)
        else:
            copied, skipped = load_full_precision(self.net, params)
            logger.info("initialised %d parameters from %s (non-strict; %d entries without an equal-shape "
                        "counterpart left as built)", len(copied), path, len(skipped))

    def net_inputs(self, meas, mask, mask_s):
        """numpy batch -> the model's upstream input layout (Tensors)."""
        import mindspore as ms

        if self.model_name not in NO_CHANNEL_MODELS:
            meas, mask_s = meas[:, None], mask_s[:, None]
        return ms.Tensor(meas), ms.Tensor(mask), ms.Tensor(mask_s)

    def _loss(self, meas, mask, mask_s, gt):
        out = self.net(meas, mask, mask_s)
        if isinstance(out, (list, tuple)):
            out = out[-1]
        return ((out - gt) ** 2).mean().sqrt()

    def init_quantizers(self, inputs):
        """First-batch quantiser initialisation (Q-SCI), skipped when every quantiser is already set (resume)."""
        from mindediting.models.common.quantizers import init_quantizers

        count = init_quantizers(self.net, *inputs)
        logger.info("initialised %d quantisers from the first batch", count)
        self.quantizers_pending = False

    def train_step(self, meas, mask, mask_s, gt):
        import mindspore as ms
        from mindspore import ops

        inputs = self.net_inputs(meas, mask, mask_s)
        if self.quantizers_pending:
            self.init_quantizers(inputs)
        ops.assign(self.optimizers["main"].param_groups[0]["lr"], ms.Tensor(self.lr, ms.float32))
        loss = self._step(*inputs, ms.Tensor(gt))
        self.step += 1
        return float(loss.asnumpy()), self.lr

    def can_validate(self):
        data = self.cfg.get("data") or {}
        return bool(data.get("root") and data.get("mask_path") and os.path.isdir(data["root"])
                    and os.path.isfile(data["mask_path"]))

    def validate(self):
        """Six-gray PSNR/SSIM of the current weights (scenes present under ``data.root``)."""
        import copy

        import mindspore as ms

        from mindediting.engine.sci_eval import run_sci_eval

        out_dir = os.path.join(self.run_dir, "val", f"iter_{self.step:08d}")
        os.makedirs(out_dir, exist_ok=True)
        weights = os.path.join(out_dir, "weights.ckpt")
        ms.save_checkpoint([{"name": p.name, "data": p} for p in self.net.get_parameters()], weights)
        cfg = copy.deepcopy(self.cfg)
        cfg.setdefault("eval", {}).update(save_frames=False, video="none")
        result = run_sci_eval(cfg, ckpt=weights, output_dir=out_dir)
        os.remove(weights)
        return {"psnr": result["mean_psnr"] or 0.0, "ssim": result["mean_ssim"] or 0.0}

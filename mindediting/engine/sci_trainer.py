"""Video SCI training (MetaSCI, EfficientSCI, Q-SCI quantisation-aware fine-tuning) for ``train.py``.

Recipe (``train`` section; defaults = the cacti toolbox / EfficientSCI / Q-SCI training scripts):

* samples: :class:`mindediting.data.sci_train.SCITrainSet` (DAVIS layout or LMDB, toolbox augmentation,
  measurement ``sum_k mask_k * x_k`` made on the fly; mask from ``mask_path`` / ``mask_shape``);
* loss ``sqrt(MSE)`` between the (last) network output and the frames; torch-exact Adam
  (``mindediting.optim.AdamW``, ``weight_decay`` 0 by default), ``lr`` 1e-4, no schedule;
* ``epochs`` (x batches per epoch per device = iterations; ``total_iters`` overrides); a checkpoint every
  ``save_interval`` iterations and six-gray validation (the ``data`` section, scenes present under
  ``data.root``) every ``val_interval`` iterations, both once per epoch when null (the toolbox's runtime);
* ``init_from``: start from a checkpoint (``.ckpt``, or an upstream ``.pth`` mapped with the model spec's
  ``init_weights`` or ``weights``: Q-SCI starts from EfficientSCI); ``init_strict: false`` copies only the
  entries whose name and shape match (upstream ``load_checkpoints``,
  :func:`mindediting.models.qsci.load_full_precision`);
* networks with quantisers (Q-SCI): quantiser steps / zero points are set from the first training batch
  (:func:`mindediting.models.common.quantizers.init_quantizers`) before the first update;
* data parallel: ``batch_size`` per device, gradients averaged with ``nn.DistributedGradReducer``.

Network inputs in each model's upstream layout: ``meas (B, 1, H, W)``, ``mask (B, cr, H, W)``,
``mask_s (B, 1, H, W)``, or ``meas``/``mask_s`` without the channel axis when the model spec says so
(``channel_axis``, Q-SCI).
"""
import logging
import os

from mindediting.engine.train_loop import LOOP_SCHEMA, TrainLoop, load_init_weights
from mindediting.engine.train_step import build_step

logger = logging.getLogger(__name__)


def sci_train_options(cfg):
    """The SCI trainer's options (``train`` section over :attr:`SCITrainer.SCHEMA`), checked."""
    return SCITrainer.options(cfg)


def quantizer_cells(net):
    from mindediting.models.common.quantizers import ActQ, Conv3dQ, LinearQ

    return [cell for _, cell in net.cells_and_names() if isinstance(cell, (ActQ, Conv3dQ, LinearQ))]


class SCITrainer(TrainLoop):
    """Train a video SCI model (``model.name``) with the config's ``train`` section."""

    SCHEMA = dict(LOOP_SCHEMA, **{
        "output_dir": (str, "runs/sci"), "batch_size": (int, 4), "loss": (str, "rmse"),
        "val_interval": (int, None), "save_interval": (int, None),  # iterations; null = once per epoch
        "dataset": (str, "davis"), "root": (str, None),  # DAVIS JPEGImages/480p folder or an LMDB of it
        "num_frames": (int, 8),  # frames per sample (the compression ratio)
        "crop_size": (int, 256),  # sample size after the toolbox augmentation
        "patch_size": (int, None),  # random square of each crop_size sample (small CPU runs)
        "mask_path": (str, None), "mask_shape": (list, None),  # null mask_path: one random mask of mask_shape
        "augment": ((list, bool), True),
        "epochs": (int, 120),  # iterations = epochs x batches per epoch, unless total_iters
        "init_from": (str, None), "init_strict": (bool, True),  # start weights (.ckpt or upstream .pth)
        "quantizer_init": (str, "first_batch"),  # networks with quantisers: first_batch | none
    })
    LOSSES = ("rmse",)

    @classmethod
    def options(cls, cfg):
        opts = super().options(cfg)
        if not opts["root"]:
            raise ValueError("train.root: required (DAVIS JPEGImages/480p folder <root>/<clip>/*.jpg, or an LMDB)")
        if opts["dataset"] != "davis":
            raise ValueError(f"train.dataset '{opts['dataset']}': SCI training reads 'davis'")
        if opts["quantizer_init"] not in ("first_batch", "none"):
            raise ValueError(f"train.quantizer_init '{opts['quantizer_init']}' must be first_batch or none")
        for key in ("epochs", "crop_size"):
            if int(opts[key]) < 1:
                raise ValueError(f"train.{key} must be >= 1, got {opts[key]}")
        augment = opts["augment"]
        opts["augment"] = bool(augment) if not isinstance(augment, (list, tuple)) else len(augment) > 0
        return opts

    def __init__(self, cfg, run_dir=None, rank=0, world_size=1, progress=True):
        import mindspore as ms
        from mindediting.optim import AdamW

        from mindediting import registry
        from mindediting.data.sci_train import SCITrainSet, build_train_mask
        from mindediting.data.transforms import TrainLoader
        from mindediting.models import build_model

        super().__init__(cfg, run_dir, rank, world_size, progress)
        opts = self.opts
        ms.set_seed(self.seed)
        self.model_name = cfg["model"]["name"]
        self.spec = registry.get(self.model_name)
        model_args = cfg["model"].get("args") or {}
        self.net = build_model(self.model_name, **model_args)
        if opts["init_from"]:
            load_init_weights(self.net, opts["init_from"], self.spec, model_args, bool(opts["init_strict"]))
        self.mixed_precision(self.net)
        self.net.set_train(True)

        mask = build_train_mask(opts["mask_path"], opts["mask_shape"], seed=self.seed)
        self.dataset = SCITrainSet(opts["root"], mask, crop_size=opts["crop_size"], patch_size=opts["patch_size"],
                                   augment=opts["augment"], frames=opts["num_frames"], seed=self.seed)
        self.loader = TrainLoader(self.dataset, opts["batch_size"], num_shards=self.world_size, shard_id=self.rank,
                                  num_workers=opts["num_workers"], prefetch=opts["prefetch"])
        per_epoch = self.loader.batches_per_epoch
        opts["total_iters"] = int(opts["total_iters"] or int(opts["epochs"]) * per_epoch)
        opts["save_interval"] = int(opts["save_interval"] or per_epoch)
        opts["val_interval"] = per_epoch if opts["val_interval"] is None else int(opts["val_interval"])
        logger.info("%s: %d samples, %d iterations per epoch, %d iterations", self.model_name, len(self.dataset),
                    per_epoch, opts["total_iters"])

        self.params = self.net.trainable_params()
        self.lr = float(opts["lr"])
        self.optimizers = {"main": AdamW(self.params, lr=self.lr, betas=tuple(float(b) for b in opts["betas"]),
                                         weight_decay=float(opts["weight_decay"]))}
        # graph mode compiles the whole step (forward, backward, update): faster, and flat host memory
        self._step = build_step(self._loss, [self.optimizers["main"]], self.world_size, self.jit, self.scaler)
        self.quantizers_pending = opts["quantizer_init"] == "first_batch" and bool(quantizer_cells(self.net))

    def net_inputs(self, meas, mask, mask_s):
        """numpy batch -> the model's upstream input layout (Tensors)."""
        import mindspore as ms

        if self.spec.channel_axis:
            meas, mask_s = meas[:, None], mask_s[:, None]
        return ms.Tensor(meas), ms.Tensor(mask), ms.Tensor(mask_s)

    def _loss(self, meas, mask, mask_s, gt):
        out = self.net(meas, mask, mask_s)
        if isinstance(out, (list, tuple)):
            out = out[-1]
        return ((out.astype(gt.dtype) - gt) ** 2).mean().sqrt()

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

        from mindediting.engine.sci_eval import run_sci_eval
        from mindediting.engine.sci_task import wrap_network

        out_dir = os.path.join(self.run_dir, "val", f"iter_{self.step:08d}")
        cfg = copy.deepcopy(self.cfg)
        cfg.setdefault("eval", {}).update(save_frames=False, video="none")
        reconstructor = (wrap_network(self.net, self.spec), f"{self.spec.name} (iteration {self.step})")
        self.net.set_train(False)
        try:
            result = run_sci_eval(cfg, output_dir=out_dir, reconstructor=reconstructor)
        finally:
            self.net.set_train(True)
        return {"psnr": result["mean_psnr"] or 0.0, "ssim": result["mean_ssim"] or 0.0}

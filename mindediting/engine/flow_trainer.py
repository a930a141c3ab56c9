"""SPyNet pre-training on pairs with a known flow (:mod:`mindediting.data.flow_pairs`), on the shared
:class:`~mindediting.engine.train_loop.TrainLoop`.

Why: BasicVSR and BasicVSR++ start from a SPyNet trained on FlyingChairs upstream, and those weights cannot be
downloaded here; a randomly initialised SPyNet barely moves under the SR loss (configs/basicvsr/README.md), so a
small BasicVSR trained from it never aligns its neighbours. The result of this trainer is a checkpoint for
BasicVSR's ``spynet_pretrained``.

Recipe (``train`` section; ``configs/spynet/spynet_skvideo_train.yaml``):

* samples: real frames of ``train.root`` warped by a random smooth flow (``patch_size``, ``margin``,
  ``scale_min``, ``max_shift``, ``max_rotate``, ``max_zoom``, ``max_local``, ``gain``, ``brightness``);
* loss ``epe``: the mean end-point error ``|flow - target|_2`` over pixels, in input pixels, of every pyramid level
  against the target average-pooled to that level (deep supervision), averaged over the six levels; validation
  scores the final flow alone. For the first ``guided_iters`` iterations each level refines a guess of the flow
  pooled to the level below (the target plus a smooth random error of up to ``guess_error`` pixels) instead of
  that level's own estimate: every module learns its residual task at once, as SPyNet's levels were trained one
  at a time on top of a working coarser level; then the chain runs as at inference;
* ``flow_init: zero``: every level starts by adding nothing to the flow it is given (its last convolution
  zeroed), so the chain starts at the zero-flow error instead of the random ~0.7 px drift of an untrained
  SPyNet, and a level that has learned nothing yet cannot spoil the levels above it;
* torch-exact Adam (``mindediting.optim.AdamW``, no weight decay), cosine-restart learning rate as
  the video trainer (``periods``, ``restart_weights``, ``eta_min``);
* validation every ``val_interval`` iterations: the mean EPE over ``val_samples`` fixed pairs made from the
  frames of ``val_root`` (never the training clips), and the EPE of a zero flow on the same pairs (the floor a
  useless network reaches); ``curves.png`` plots the validation EPE.
"""
import logging

import numpy as np

from mindediting.engine.train_loop import LOOP_SCHEMA, TrainLoop
from mindediting.engine.train_step import build_step
from mindediting.engine.video_trainer import check_adam_cosine_flow, cosine_restart_lr

logger = logging.getLogger(__name__)

PAIR_KEYS = ("patch_size", "margin", "scale_min", "max_shift", "max_rotate", "max_zoom", "max_local", "gain",
             "brightness", "guess_error")


def end_point_error(flow, target):
    """Mean over pixels of the Euclidean distance between two ``(N, 2, H, W)`` numpy flows, in pixels."""
    return float(np.sqrt(((flow - target) ** 2).sum(axis=1)).mean())


class FlowTrainer(TrainLoop):
    """SPyNet on synthetic-flow pairs of real frames; same constructor and :meth:`train` as the other trainers."""

    SCHEMA = dict(LOOP_SCHEMA, **{
        "output_dir": (str, "runs/spynet"), "total_iters": (int, 10000), "batch_size": (int, 8),
        "loss": (str, "epe"), "lr": (float, 1e-4), "betas": (list, [0.9, 0.999]),
        "log_interval": (int, 50), "save_interval": (int, 500),
        "root": (str, None), "val_root": (str, None), "val_samples": (int, 32),
        "patch_size": (int, 64), "margin": (int, 16), "scale_min": (float, 0.25),
        "max_shift": (float, 8.0), "max_rotate": (float, 5.0), "max_zoom": (float, 0.05), "max_local": (float, 2.0),
        "gain": (float, 0.3), "brightness": (float, 0.03),
        "scheduler": (str, "cosine_restart"), "periods": (list, [10000]), "restart_weights": (list, [1.0]),
        "eta_min": (float, 1e-6),
        "guided_iters": (int, 0),  # first N iterations: each level refines a pooled guess of the flow (below)
        "guess_error": (float, 4.0),  # largest translation error of that guess, input pixels
        "flow_init": (str, "model"),  # model: SPyNet as built; zero: last layer of every level zeroed (zero flow)
    })
    LOSSES = ("epe",)
    CURVE = ("epe", "validation end-point error (px)")

    @classmethod
    def options(cls, cfg):
        opts = super().options(cfg)
        if not opts["root"]:
            raise ValueError("train.root: required (a folder of clip folders of frames, or a .lmdb)")
        check_adam_cosine_flow(opts, "FlowTrainer")
        if int(opts["val_samples"]) < 1:
            raise ValueError(f"train.val_samples must be >= 1, got {opts['val_samples']}")
        return opts

    def __init__(self, cfg, run_dir=None, rank=0, world_size=1, progress=True):
        import mindspore as ms
        from mindspore import ops
        from mindediting.optim import AdamW

        from mindediting.data.flow_pairs import SyntheticFlowSet
        from mindediting.data.transforms import TrainLoader
        from mindediting.models import build_model

        super().__init__(cfg, run_dir, rank, world_size, progress)
        opts = self.opts
        ms.set_seed(self.seed)
        self.pair_args = {key: opts[key] for key in PAIR_KEYS}
        self.dataset = SyntheticFlowSet(opts["root"], seed=self.seed, **self.pair_args)
        self.loader = TrainLoader(self.dataset, opts["batch_size"], num_shards=self.world_size, shard_id=self.rank,
                                  num_workers=opts["num_workers"], prefetch=opts["prefetch"])
        self.net = build_model(cfg["model"]["name"], **(cfg["model"].get("args") or {}))
        if opts["flow_init"] == "zero":
            self.net.zero_flow()
        self.mixed_precision(self.net)
        self.net.set_train(True)
        self.lr = float(opts["lr"])
        self.optimizers = {"main": AdamW(self.net.trainable_params(), lr=self.lr,
                                         betas=tuple(float(b) for b in opts["betas"]), weight_decay=0.0)}

        levels = len(self.net.basic_module)
        factors = [2 ** (levels - 1 - level) for level in range(levels)]  # input pixels per level pixel

        def pyramid_loss(ref, supp, target, guess):
            # every level against the target pooled to its size, errors in input pixels, averaged over levels: with
            # the final flow alone the coarse modules got almost no gradient (a run from scratch stayed at the
            # zero-flow error). The patch is a multiple of 32, so the network's resizing is the identity and
            # pyramid_flows sees the input as it is.
            def pooled(flow):
                return [ops.avg_pool2d(flow, f, f) / f if f > 1 else flow for f in factors]

            goals = pooled(target)
            flows = self.net.pyramid_flows(ref, supp, None if guess is None else pooled(guess))
            total = 0.0
            for level, factor in enumerate(factors):
                # the epsilon keeps the gradient of sqrt finite at a perfect match
                error = (flows[level].astype(ms.float32) - goals[level]) * factor
                total = total + ((error ** 2).sum(axis=1) + 1e-12).sqrt().mean()
            return total / levels

        def guided_loss(ref, supp, target, guess):
            return pyramid_loss(ref, supp, target, guess)

        def chained_loss(ref, supp, target):
            return pyramid_loss(ref, supp, target, None)

        groups = [self.optimizers["main"]]
        self.guided_step = build_step(guided_loss, groups, self.world_size, self.jit, self.scaler)
        self.chained_step = build_step(chained_loss, groups, self.world_size, self.jit, self.scaler)
        self._val_pairs = None

    def train_step(self, ref, supp, flow, guess):
        import mindspore as ms
        from mindspore import ops

        o = self.opts
        lr = cosine_restart_lr(self.step, self.lr, o["periods"], o["restart_weights"], o["eta_min"])
        ops.assign(self.optimizers["main"].param_groups[0]["lr"], ms.Tensor(lr, ms.float32))
        if self.step < int(o["guided_iters"]):
            loss = self.guided_step(ms.Tensor(ref), ms.Tensor(supp), ms.Tensor(flow), ms.Tensor(guess))
        else:
            loss = self.chained_step(ms.Tensor(ref), ms.Tensor(supp), ms.Tensor(flow))
        self.step += 1
        return float(loss.asnumpy()), lr

    def can_validate(self):
        return bool(self.opts["val_root"])

    def val_pairs(self):
        """``val_samples`` fixed pairs made from the frames of ``val_root``, once."""
        if self._val_pairs is None:
            from mindediting.data.flow_pairs import SyntheticFlowSet

            pairs = SyntheticFlowSet(self.opts["val_root"], seed=self.seed, **self.pair_args)
            # more pairs than frames: each frame again with the draws of a later epoch
            self._val_pairs = [pairs.get(i % len(pairs), i // len(pairs)) for i in range(int(self.opts["val_samples"]))]
            # the floor a network that finds no motion reaches on these pairs
            self._zero_flow_epe = float(np.mean([end_point_error(np.zeros_like(t[None]), t[None])
                                                 for _, _, t, _ in self._val_pairs]))
        return self._val_pairs

    def validate(self):
        import mindspore as ms

        self.net.set_train(False)
        pairs = self.val_pairs()
        errors = []
        try:
            for ref, supp, target, _ in pairs:
                flow = self.net(ms.Tensor(ref[None]), ms.Tensor(supp[None])).asnumpy()
                errors.append(end_point_error(flow, target[None]))
        finally:
            self.net.set_train(True)
        return {"epe": float(np.mean(errors)), "epe_zero_flow": self._zero_flow_epe, "pairs": float(len(errors))}

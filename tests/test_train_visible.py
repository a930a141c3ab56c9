"""What a run shows: samples/s and ETA in the log line, TensorBoard scalars (read back from the event files),
and the loss / validation-PSNR curve PNG written at each validation."""
import glob
import logging
import os
import struct

import numpy as np

from mindediting.engine.train_loop import TrainLoop, format_duration


class ToyLoader:
    """The loader interface of :class:`TrainLoop` with fixed batches."""

    batches_per_epoch = 4

    def __init__(self):
        self.position = 0

    def __next__(self):
        self.position += 1
        rng = np.random.default_rng(self.position)
        return rng.random((2, 3)).astype(np.float32), [self.position]

    def state(self):
        return {"position": self.position}

    def load_state(self, state):
        self.position = state["position"]

    def close(self):
        pass


class ToyTrainer(TrainLoop):
    """A least-squares fit with a Dense layer: the loop's logging, summaries and plots without a real model."""

    def __init__(self, cfg, run_dir):
        import mindspore as ms
        from mindspore import nn
        from mindspore.experimental.optim import AdamW

        from mindediting.engine.train_step import build_step

        super().__init__(cfg, run_dir=run_dir, progress=False)
        ms.set_seed(0)
        self.net = nn.Dense(3, 1)
        self.optimizers = {"main": AdamW(self.net.trainable_params(), lr=1e-2)}
        self.loader = ToyLoader()

        def loss_fn(x):
            return ((self.net(x) - 1.0) ** 2).mean()

        self._step = build_step(loss_fn, [self.optimizers["main"]])
        self.val_psnr = 20.0

    def train_step(self, x):
        import mindspore as ms

        loss = self._step(ms.Tensor(x))
        self.step += 1
        return float(loss.asnumpy()), 1e-2

    def can_validate(self):
        return True

    def validate(self):
        self.val_psnr += 1.0
        return {"psnr": self.val_psnr, "ssim": 0.5}


def read_scalars(folder):
    """``{tag: [(step, value)]}`` from every TensorBoard event file in ``folder``: TFRecord framing (length,
    its CRC, the serialised ``Event``, its CRC) around tensorboardX's own protobuf classes."""
    from tensorboardX.proto.event_pb2 import Event

    scalars = {}
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        with open(path, "rb") as handle:
            data = handle.read()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_log_line_tensorboard_and_curves(tmp_path, caplog):
    cfg = {"model": {"name": "toy"}, "train": {"total_iters": 6, "batch_size": 2, "log_interval": 3,
                                                "val_interval": 3, "save_interval": 6, "keep_last": 1},
           "system": {"mode": "pynative", "seed": 0}}
    run = str(tmp_path / "run")
    trainer = ToyTrainer(cfg, run)
    with caplog.at_level(logging.INFO, logger="mindediting.engine.train_loop"):
        losses = trainer.train()
    lines = [r.getMessage() for r in caplog.records if " samples/s " in r.getMessage()]
    assert len(lines) == 2 and lines[0].startswith("rank 0 iter 3/6 loss ") and " eta " in lines[0]
    assert lines[1].endswith("eta 00:00:00")  # the last iteration: nothing left

    scalars = read_scalars(os.path.join(run, "tensorboard"))
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose([v for _, v in scalars["train/loss"]], losses, rtol=1e-6)
    assert [v for _, v in scalars["train/lr"]] == [np.float32(1e-2)] * 6
    assert scalars["val/psnr"] == [(3, 21.0), (6, 22.0)] and [s for s, _ in scalars["val/ssim"]] == [3, 6]
    assert [s for s, _ in scalars["train/samples_per_s"]] == [3, 6]

    png = os.path.join(run, "curves.png")
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not [n for n in os.listdir(run) if n.startswith(".curves.png")]  # no temporary file left


def test_eta_format():
    assert format_duration(3725.4) == "01:02:05"
    assert format_duration(2 * 86400 + 61) == "2d 00:01:01"  # a 300k-iteration run takes days
    assert format_duration(-3) == "00:00:00"


def test_curves_of_a_log_without_validation_and_of_an_empty_log(tmp_path):
    """A shipped model's log (losses only, one torn line) still gives a picture; a log without losses gives none."""
    from mindediting.engine.train_curves import write_curves

    log = tmp_path / "log.jsonl"
    log.write_text("".join(f'{{"iter": {i}, "loss": {0.1 / i}}}\n' for i in range(1, 6)) + '{"iter": 6, "lo')
    png = tmp_path / "curves.png"
    assert write_curves(str(log), str(png)) == str(png)
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    log.write_text('{"iter": 1, "val": {"psnr": 20.0}}\n')
    assert write_curves(str(log), str(tmp_path / "none.png")) is None and not (tmp_path / "none.png").exists()

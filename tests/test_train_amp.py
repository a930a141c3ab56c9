"""Loss scaling (train.amp_level O2/O3): overflow skips the update and shrinks the scale; its state resumes."""
import json
import os

import numpy as np
import pytest


def _tiny_step(jit):
    import mindspore as ms
    from mindspore import amp, nn
    from mindspore.experimental.optim import AdamW

    from mindediting.engine.train_step import build_step

    ms.set_seed(0)
    net = nn.Dense(4, 2)
    opt = AdamW(net.trainable_params(), lr=1e-2)
    scaler = amp.DynamicLossScaler(1024.0, 2, 2)

    def loss_fn(x):
        return (net(x) ** 2).mean()

    step = build_step(loss_fn, [opt], jit=jit, scaler=scaler)
    return net, opt, scaler, step


@pytest.mark.parametrize("jit", [False, True])
def test_an_inf_gradient_skips_the_update_and_halves_the_scale(jit):
    import mindspore as ms

    net, opt, scaler, step = _tiny_step(jit)
    weights = lambda: [p.asnumpy().copy() for p in net.trainable_params()]
    x = np.ones((3, 4), np.float32)
    before = weights()
    loss = step(ms.Tensor(x))
    assert np.isfinite(float(loss.asnumpy()))  # the unscaled loss
    after_finite = weights()
    assert all(not np.array_equal(a, b) for a, b in zip(before, after_finite))
    assert float(scaler.scale_value.asnumpy()) == 1024.0 and int(scaler.counter.asnumpy()) == 1
    assert int(opt.state_step.asnumpy()) == 1

    x[0, 0] = np.inf  # an injected overflow: every gradient of the first row is inf or nan
    step(ms.Tensor(x))
    for a, b in zip(after_finite, weights()):
        np.testing.assert_array_equal(a, b)  # update skipped
    assert float(scaler.scale_value.asnumpy()) == 512.0 and int(scaler.counter.asnumpy()) == 0
    assert int(opt.state_step.asnumpy()) == 1  # Adam's step count (bias correction) does not advance either

    x[0, 0] = 1.0
    step(ms.Tensor(x))
    step(ms.Tensor(x))  # scale_window 2: two finite steps in a row double the scale
    assert float(scaler.scale_value.asnumpy()) == 1024.0 and int(opt.state_step.asnumpy()) == 3


def test_loss_scale_options():
    from mindediting.engine.train_step import build_loss_scaler
    from mindediting.engine.video_trainer import train_options

    base = {"gt_root": "a", "lq_root": "b"}
    assert build_loss_scaler(train_options({"train": base})) is None  # O0: no scaling
    scaler = build_loss_scaler(train_options({"train": dict(base, amp_level="O2")}))
    assert type(scaler).__name__ == "DynamicLossScaler" and float(scaler.scale_value.asnumpy()) == 65536.0
    assert scaler.scale_window == 2000 and scaler.scale_factor == 2
    static = build_loss_scaler(train_options({"train": dict(base, loss_scale_type="static", loss_scale=128.0)}))
    assert type(static).__name__ == "StaticLossScaler"
    with pytest.raises(ValueError, match="train.loss_scale_type 'auto' must be none, static or dynamic"):
        train_options({"train": dict(base, loss_scale_type="auto")})
    with pytest.raises(ValueError, match="train.loss_scale must be >= 1, got 0.5"):
        train_options({"train": dict(base, loss_scale=0.5)})


@pytest.mark.slow
def test_the_scale_resumes_with_the_run(tmp_path):
    """A dynamic scale that grows every iteration (scale_window 1): an interrupted and resumed run logs the same
    scales and losses as the unbroken one, and the checkpoint holds the scaler's state."""
    import mindspore as ms

    from mindediting.engine.train_state import STATE_KEY
    from mindediting.engine.video_trainer import VideoTrainer
    from tests.test_train import _log, tiny_config

    cfg = tiny_config(str(tmp_path / "data"), total_iters=4, val_interval=0, save_interval=2, fix_iter=0,
                      loss_scale_type="dynamic", loss_scale=1024.0, scale_window=1)
    VideoTrainer(cfg, run_dir=str(tmp_path / "a"), progress=False).train()
    VideoTrainer(cfg, run_dir=str(tmp_path / "b"), progress=False).train(stop_at=2)
    ckpt = ms.load_checkpoint(os.path.join(tmp_path, "b", "checkpoints", "iter_00000002.ckpt"))
    state = json.loads(ckpt[STATE_KEY].asnumpy().astype(np.uint8).tobytes().decode("utf-8"))
    assert state["loss_scaler"] == {"scale": 4096.0, "counter": 0}
    VideoTrainer(cfg, run_dir=str(tmp_path / "b"), progress=False).train(resume="auto")
    rows_a = [r for r in _log(str(tmp_path / "a")) if "loss" in r]
    rows_b = [r for r in _log(str(tmp_path / "b")) if "loss" in r]
    assert [r["loss_scale"] for r in rows_a] == [2048.0, 4096.0, 8192.0, 16384.0]
    assert [r["loss_scale"] for r in rows_b] == [r["loss_scale"] for r in rows_a]
    assert [r["loss"] for r in rows_b] == [r["loss"] for r in rows_a]  # bit-identical

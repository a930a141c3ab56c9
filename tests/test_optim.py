"""mindediting.optim.AdamW: torch's AdamW update (checked against its formula in numpy) through the fused kernel, in
PyNative and compiled, with the experimental AdamW's state names; a compiled step over 1100 parameters builds in
bounded memory (the experimental AdamW fails there on call depth, and its compile memory grows superlinearly)."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import Parameter, nn, ops

from mindediting.engine.train_step import build_step
from mindediting.optim import AdamW
from mindediting.utils.peak_rss import own_peak_rss, reset_peak


def torch_adamw(params, grads_per_step, lrs, betas, eps, weight_decay):
    """torch.optim.AdamW's single-tensor update, written out (float64)."""
    b1, b2 = betas
    params = [p.astype(np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, (grads, lr) in enumerate(zip(grads_per_step, lrs), start=1):
        for i, g in enumerate(grads):
            params[i] = params[i] * (1 - lr * weight_decay)
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            denom = np.sqrt(v[i]) / np.sqrt(1 - b2 ** t) + eps
            params[i] = params[i] - lr / (1 - b1 ** t) * m[i] / denom
    return params, m, v


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adamw_is_torch_update(jit, weight_decay):
    rng = np.random.default_rng(3)
    init = [rng.standard_normal(s).astype(np.float32) for s in [(4, 3), (3,), (2, 2, 2)]]
    params = [Parameter(ms.Tensor(x), name=f"w{i}") for i, x in enumerate(init)]
    betas, eps = (0.9, 0.99), 1e-3  # a large eps: its placement (torch's, not nn.Adam's) changes the numbers
    opt = AdamW(params, lr=0.05, betas=betas, eps=eps, weight_decay=weight_decay)
    lr_param = opt.param_groups[0]["lr"]
    steps = [[rng.standard_normal(x.shape).astype(np.float32) for x in init] for _ in range(4)]
    lrs = [0.05, 0.05, 0.02, 0.01]  # changed between steps as the trainers' schedules do

    def update(*grads):
        return opt(grads)

    run = ms.jit(update) if jit else update
    for grads, lr in zip(steps, lrs):
        ops.assign(lr_param, ms.Tensor(lr, ms.float32))
        run(*(ms.Tensor(g) for g in grads))
    want_p, want_m, want_v = torch_adamw(init, steps, lrs, betas, eps, weight_decay)
    for i in range(len(init)):
        np.testing.assert_allclose(params[i].asnumpy(), want_p[i], rtol=0, atol=2e-6)
        np.testing.assert_allclose(opt.exp_avg[i].asnumpy(), want_m[i], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(opt.exp_avg_sq[i].asnumpy(), want_v[i], rtol=1e-5, atol=1e-7)
    assert int(opt.state_step.asnumpy()) == 4
    # the names train_state.py saves and resumes by: those of mindspore.experimental.optim.AdamW
    assert [p.name for p in opt.exp_avg] == [f"exp_avg.w{i}" for i in range(3)]
    assert [p.name for p in opt.exp_avg_sq] == [f"exp_avg_sq.w{i}" for i in range(3)]
    assert opt.state_step.name == "state_step"


def test_adamw_groups_have_their_own_lr():
    a, b = Parameter(ms.Tensor(np.ones(2, np.float32)), name="a"), Parameter(ms.Tensor(np.ones(2, np.float32)), name="b")
    opt = AdamW([{"params": [a]}, {"params": [b], "lr": 0.1}], lr=0.01, weight_decay=0.0)
    opt((ms.Tensor(np.full(2, 3.0, np.float32)), ms.Tensor(np.full(2, -2.0, np.float32))))
    # first step: p - lr * g / (|g| + eps)
    np.testing.assert_allclose(a.asnumpy(), 1 - 0.01 * 3 / (3 + 1e-8), atol=1e-7)
    np.testing.assert_allclose(b.asnumpy(), 1 + 0.1 * 2 / (2 + 1e-8), atol=1e-7)


def test_adamw_refuses_amsgrad():
    p = Parameter(ms.Tensor(np.ones(2, np.float32)), name="p")
    with pytest.raises(ValueError, match="amsgrad and maximize are not supported"):
        AdamW([p], amsgrad=True)


class _Wide(nn.Cell):
    """1100 parameters in one cell, used in one op each (no chain of cell calls)."""

    def __init__(self, n):
        super().__init__()
        self.w = ms.ParameterTuple([Parameter(ms.Tensor(np.full(2, 0.5 + i / n, np.float32)), name=f"w{i}")
                                    for i in range(n)])

    def construct(self, x):
        return ops.stack(self.w).sum(0) * x


@pytest.mark.slow
def test_compiled_step_over_1100_parameters():
    """The experimental AdamW's compiled step fails here ("Exceed function call depth limit 1000"), and at 1600
    parameters its compilation ran out of 24 GB; this one compiles in well under 2 GB."""
    n = 1100
    net = _Wide(n)
    opt = AdamW(net.trainable_params(), lr=0.1, weight_decay=0.0)

    def loss_fn(x):
        return (net(x) ** 2).mean()

    isolated = reset_peak()  # VmHWM from here on, not a peak an earlier test left in this worker
    before = own_peak_rss()
    step = build_step(loss_fn, [opt], jit=True)
    x = ms.Tensor(np.ones(2, np.float32))
    first = float(step(x).asnumpy())
    # every weight took Adam's first step, -lr * g / (|g| + eps) = -0.1
    np.testing.assert_allclose(net.w[0].asnumpy(), 0.5 - 0.1, atol=1e-6)
    np.testing.assert_allclose(net.w[n - 1].asnumpy(), 0.5 + (n - 1) / n - 0.1, atol=1e-6)
    second = float(step(x).asnumpy())
    grown_mb = (own_peak_rss() - before) / 2**20
    assert first == pytest.approx(np.sum(0.5 + np.arange(n) / n) ** 2, rel=1e-5)
    assert second == pytest.approx(np.sum(0.4 + np.arange(n) / n) ** 2, rel=1e-5)
    if isolated:  # elsewhere the compile-depth and update checks above still hold
        assert grown_mb < 2048, grown_mb

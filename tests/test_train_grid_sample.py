"""The ``grid_sampler_2d_grad ... memcpy_s failed. errorno is: 34`` lines of BasicVSR training on CPU.

Cause: MindSpore's CPU ``GridSampler2DGrad`` walks the grid 8 positions at a time and writes the (x, y) gradient
of each group as two stores of up to 8 floats; for a last group of 1-4 positions the second store has length 0,
which ``memcpy_s`` refuses with ERANGE (34) and logs. Nothing is left unwritten (there is nothing to write), so
the message is noise: it appears whenever a warped map has H*W % 8 in 1..4 (SPyNet's 1x1, 2x2 and 4x4 levels;
an LR patch such as 8x12). These tests check the gradients at exactly those sizes against upstream torch
(``tests/data/golden/grid_sample_grad``, made by its ``make_golden.py``) and BasicVSR's whole gradient against
``basicvsr_grad_small`` (whose SPyNet levels trigger the message).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.golden import REPO, golden_dir, load, load_config

PROBE = """
import numpy as np, mindspore as ms
from mindspore import ops
h, w = {h}, {w}
x = ms.Tensor(np.ones((1, 1, h, w), np.float32))
g = ms.Tensor(np.zeros((1, h, w, 2), np.float32))
ms.grad(lambda x, g: ops.grid_sample(x, g, align_corners=True).sum(), (0, 1))(x, g)
print("ok")
"""


@pytest.mark.parametrize("h, w, logged", [(3, 3, True), (1, 12, True), (2, 4, False)])
def test_the_message_comes_from_a_last_group_of_one_to_four_positions(h, w, logged):
    res = subprocess.run([sys.executable, "-c", PROBE.format(h=h, w=w)], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]
    assert (h * w % 8 in (1, 2, 3, 4)) == logged
    assert ("memcpy_s failed. errorno is: 34" in res.stdout + res.stderr) == logged


def test_grid_sample_gradients_match_torch_where_the_message_appears():
    import mindspore as ms
    from mindspore import ops

    folder = golden_dir("grid_sample_grad", need=("grads.npz",))
    golden = np.load(os.path.join(folder, "grads.npz"))
    for case in load_config(folder)["cases"]:
        key, padding = case["key"], case["padding"]
        x, grid, weight = (ms.Tensor(golden[f"{key}/{n}"]) for n in ("x", "grid", "weight"))

        def loss(x, grid):
            out = ops.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=True)
            return (out * weight).sum()

        grad_x, grad_grid = ms.grad(loss, (0, 1))(x, grid)
        # float32 kernel against torch in float64: a few ulps of the values summed
        np.testing.assert_allclose(grad_x.asnumpy(), golden[f"{key}/grad_x"], rtol=1e-5, atol=1e-5, err_msg=key)
        np.testing.assert_allclose(grad_grid.asnumpy(), golden[f"{key}/grad_grid"], rtol=1e-5, atol=1e-5,
                                   err_msg=key)


@pytest.mark.slow
def test_basicvsr_gradients_match_upstream_despite_the_message():
    import mindspore as ms

    from mindediting.convert.weights import load_weights
    from mindediting.losses import CharbonnierLoss
    from mindediting.models import build_model
    from mindediting.models.basicvsr import convert_state_dict

    folder = golden_dir("basicvsr_grad_small", need=("weights.pth", "grads.npz"))
    cfg = load_config(folder)
    net = load_weights(build_model("basicvsr", **cfg["constructor"]), os.path.join(folder, "weights.pth"),
                       mapping=convert_state_dict)
    net.set_train(True)
    lq, gt = ms.Tensor(load(folder, "lq.npy")), ms.Tensor(load(folder, "gt.npy"))
    criterion = CharbonnierLoss(eps=1e-12)
    params = net.trainable_params()
    loss, grads = ms.value_and_grad(lambda a, b: criterion(net(a), b), None, params)(lq, gt)
    assert abs(float(loss.asnumpy()) - cfg["loss_fp64"]) < 1e-5
    golden = dict(np.load(os.path.join(folder, "grads.npz")))
    expected = convert_state_dict(golden)  # upstream names -> ours, as for the weights
    floors = convert_state_dict(cfg["grad_rel_floor_fp32"])
    assert sorted(expected) == sorted(p.name for p in params)
    for param, grad in zip(params, grads):
        ref = expected[param.name].astype(np.float64)
        err = np.linalg.norm(grad.asnumpy() - ref) / np.linalg.norm(ref)
        # the golden's rule (its README): relative L2 error within max(1e-3, 30 x upstream's fp32/fp64 difference)
        assert err <= max(1e-3, 30 * floors[param.name]), (param.name, err)

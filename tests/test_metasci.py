"""MetaSCI: parity with the upstream golden through the real converter, plus the modulation option."""
import numpy as np
import pytest

import mindspore as ms
from mindediting.convert.converter import check_params, load_and_convert, save_ckpt
from mindediting.convert.pth_reader import CheckpointError
from mindediting.models import build_model
from mindediting.models.metasci import convert_state_dict, modulation_params
from tests.golden import golden_dir, load, load_config


def _inputs(folder):
    return [ms.Tensor(load(folder, n)) for n in ("meas.npy", "mask.npy", "mask_s.npy")]


@pytest.mark.parametrize("mode", ["pynative", "hybrid"])
def test_metasci_matches_golden_through_converter(tmp_path, mode):
    folder = golden_dir("metasci", need=("weights.pth", "output.npy"))
    cfg = load_config(folder)
    params = load_and_convert(f"{folder}/weights.pth", convert_state_dict, **cfg["constructor"])
    assert len(params) == cfg["weights"]["num_entries"]
    ckpt = save_ckpt(params, tmp_path / "w.ckpt")
    net = build_model("metasci", **cfg["constructor"])
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert not not_loaded and not unused
    if mode == "hybrid":  # whole forward graph-compiled inside the PyNative context (system.mode: hybrid)
        assert net.jit_stages() is net
    out = net(*_inputs(folder))
    assert isinstance(out, ms.Tensor) and out.shape == tuple(cfg["output"]["shape"])
    np.testing.assert_allclose(out.asnumpy(), load(folder, "output.npy"), rtol=0, atol=cfg["tolerance"]["atol"])


def _random_state(seed=0):
    net = build_model("metasci")
    rng = np.random.RandomState(seed)
    return {p.name: (rng.randn(*p.shape) * 0.05).astype(np.float32) for p in net.get_parameters()}


def test_modulation_option_starts_at_identity_and_is_separate():
    state = _random_state()
    base = build_model("metasci")
    check_params(convert_state_dict(state), base, "toolbox")
    ms.load_param_into_net(base, {k: ms.Parameter(v, name=k) for k, v in state.items()})
    assert modulation_params(base) == []

    params = convert_state_dict(state, num_masks=2)
    mod = build_model("metasci", num_masks=2)
    check_params(params, mod, "toolbox+modulation")
    not_loaded, _ = ms.load_param_into_net(mod, {k: ms.Parameter(v, name=k) for k, v in params.items()})
    assert not not_loaded
    names = sorted(p.name for p in modulation_params(mod))
    assert len(names) == 10 and names[0] == "mod_enc.scale"

    rng = np.random.RandomState(1)
    mask = rng.randint(0, 2, (1, 8, 16, 16)).astype(np.float32)
    meas = (mask * rng.rand(1, 8, 16, 16)).sum(1, keepdims=True).astype(np.float32)
    mask_s = np.maximum(mask.sum(1, keepdims=True), 1).astype(np.float32)
    args = [ms.Tensor(a) for a in (meas, mask, mask_s)]
    ref = base(*args).asnumpy()
    np.testing.assert_allclose(mod(*args, 1).asnumpy(), ref, atol=1e-6)
    # change mask 1's output modulation: mask 0 unaffected, mask 1 scaled exactly
    mod.mod_out.scale.set_data(ms.Tensor(np.stack([np.ones((8, 1, 1)), np.full((8, 1, 1), 2.0)]).astype(np.float32)))
    np.testing.assert_allclose(mod(*args, 0).asnumpy(), ref, atol=1e-6)
    np.testing.assert_allclose(mod(*args, 1).asnumpy(), 2 * ref, atol=1e-5)


def test_toolbox_checkpoint_with_missing_key_is_refused():
    state = _random_state()
    del state["layers.1.conv2.2.bias"]
    with pytest.raises(CheckpointError, match=r"bad.pth: checkpoint does not fit the model; missing 1 key\(s\): layers.1.conv2.2.bias"):
        check_params(convert_state_dict(state), build_model("metasci"), "bad.pth")


def test_adapt_modulation_trains_only_the_modulation_of_one_mask():
    from mindediting.models.metasci import adapt_modulation

    net = build_model("metasci", num_masks=2)
    backbone = {p.name: p.asnumpy().copy() for p in net.get_parameters() if "mod_" not in p.name}
    rng = np.random.RandomState(0)
    gt = rng.rand(1, 8, 16, 16).astype(np.float32)
    mask = rng.randint(0, 2, (1, 8, 16, 16)).astype(np.float32)
    meas = (mask * gt).sum(1, keepdims=True)
    mask_s = np.maximum(mask.sum(1, keepdims=True), 1)
    losses = adapt_modulation(net, [(meas, mask, mask_s, gt)], mask_id=1, steps=3, lr=0.05)
    assert len(losses) == 3 and losses[-1] < losses[0]
    for p in net.get_parameters():
        if "mod_" not in p.name:
            np.testing.assert_array_equal(p.asnumpy(), backbone[p.name])
    scale = net.mod_out.scale.asnumpy()
    np.testing.assert_array_equal(scale[0], 1.0)  # mask 0 untouched
    assert np.abs(scale[1] - 1).max() > 1e-3
    with pytest.raises(ValueError, match="needs a MetaSCI built with num_masks > 0"):
        adapt_modulation(build_model("metasci"), [], 0)


def test_jit_stages_same_output_and_adaptation_as_pynative():
    from mindediting.models.metasci import adapt_modulation

    eager = build_model("metasci", num_masks=2)
    params = {p.name: p.asnumpy().copy() for p in eager.get_parameters()}
    jitted = build_model("metasci", num_masks=2)
    ms.load_param_into_net(jitted, {k: ms.Parameter(v, name=k) for k, v in params.items()})
    jitted.jit_stages()
    rng = np.random.RandomState(2)
    gt = rng.rand(1, 8, 16, 16).astype(np.float32)
    mask = rng.randint(0, 2, (1, 8, 16, 16)).astype(np.float32)
    meas = (mask * gt).sum(1, keepdims=True)
    mask_s = np.maximum(mask.sum(1, keepdims=True), 1)
    args = [ms.Tensor(a) for a in (meas, mask, mask_s)]
    np.testing.assert_allclose(jitted(*args, 1).asnumpy(), eager(*args, 1).asnumpy(), rtol=0, atol=1e-6)
    batch = [(meas, mask, mask_s, gt)]
    np.testing.assert_allclose(adapt_modulation(jitted, batch, mask_id=1, steps=2, lr=0.05),
                               adapt_modulation(eager, batch, mask_id=1, steps=2, lr=0.05), rtol=1e-5)



def _moving_bar_batch(size=32, seed=0):
    """One (meas, mask, mask_s, gt) batch of 8 frames: textured background and a bright bar moving 2 px per frame."""
    rng = np.random.RandomState(seed)
    background = 0.3 + 0.2 * rng.rand(size, size)
    gt = np.repeat(background[None], 8, 0)
    for k in range(8):
        gt[k, 8:24, 2 + 2 * k: 8 + 2 * k] = 0.9
    mask = rng.randint(0, 2, (8, size, size)).astype(np.float32)
    meas = (mask * gt).sum(0)
    mask_s = np.maximum(mask.sum(0), 1)
    return [a[None].astype(np.float32) for a in (meas[None], mask, mask_s[None], gt)]


def _rmse_after_adam_steps(net, batch, steps, lr=2e-4):
    from mindspore import ops
    from mindspore.experimental.optim import AdamW

    opt = AdamW(net.trainable_params(), lr=lr, weight_decay=0.0)
    tensors = [ms.Tensor(a) for a in batch]

    def loss_fn(meas, mask, mask_s, gt):
        return ops.sqrt(ops.mean((net(meas, mask, mask_s) - gt) ** 2))

    grad_fn = ms.value_and_grad(loss_fn, None, opt.parameters)
    losses = []
    for _ in range(steps):
        loss, grads = grad_fn(*tensors)
        opt(grads)
        losses.append(float(loss.asnumpy()))
    return losses


def test_residual_option_starts_at_the_floor_and_trains_below_it():
    """Issue 18: trained from scratch, the toolbox network first has to rebuild ``meas / mask_s`` (its untrained
    output does not depend on its input), so a short run stays far above that trivial estimate; the training
    config's ``init: he`` + ``residual`` starts exactly there and goes below it within a few Adam steps."""
    import os

    from mindediting.config import load_config as load_yaml_config
    from tests.golden import REPO

    meas, mask, mask_s, gt = batch = _moving_bar_batch()
    floor = np.repeat(meas / mask_s, 8, axis=1)
    floor_rmse = float(np.sqrt(np.mean((floor - gt) ** 2)))
    args = [ms.Tensor(a) for a in (meas, mask, mask_s)]

    ms.set_seed(0)
    toolbox = build_model("metasci")
    assert np.abs(toolbox(*args).asnumpy() - floor).max() > 0.2  # untrained: nowhere near meas / mask_s
    toolbox_losses = _rmse_after_adam_steps(toolbox, batch, steps=8)
    assert min(toolbox_losses) > floor_rmse

    cfg = load_yaml_config(os.path.join(REPO, "configs", "metasci", "metasci_skvideo_residual.yaml"))
    ms.set_seed(0)
    net = build_model(cfg["model"]["name"], **cfg["model"]["args"])
    np.testing.assert_allclose(net(*args).asnumpy(), floor, rtol=0, atol=1e-6)  # exactly the floor at start
    losses = _rmse_after_adam_steps(net, batch, steps=8, lr=cfg["train"]["lr"])
    assert abs(losses[0] - floor_rmse) < 1e-5
    assert losses[-1] < 0.98 * floor_rmse, (losses, floor_rmse)

"""Q-SCI: quantiser arithmetic by hand, upstream parity at 2/4/8 bits through the converter, 3-bit, QAT."""
import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import ops
from mindspore.experimental.optim import AdamW

from mindediting.convert.converter import check_params, load_and_convert, save_ckpt
from mindediting.convert.pth_reader import CheckpointError
from mindediting.models import build_model
from mindediting.models import efficientsci, qsci
from mindediting.models.common.quantizers import ActQ, Conv3dQ, LinearQ, init_quantizers
from tests.golden import golden_dir, load, load_config


def _set(param, value):
    param.set_data(ms.Tensor(np.asarray(value, np.float32).reshape(param.shape)))


def _golden_rule(out, ref, tol):
    """Upstream golden rule for fake-quantised outputs (occasional rounding flips allowed)."""
    diff = np.abs(out - ref)
    frac = float(np.mean(diff > tol["atol"] + tol["rtol"] * np.abs(ref)))
    assert diff.mean() <= tol["mean_abs_allowed"], f"mean |diff| {diff.mean():.3g}"
    assert frac <= tol["max_fraction_over_atol"], f"fraction over tolerance {frac:.4f}"
    assert diff.max() <= tol["max_abs_allowed"], f"max |diff| {diff.max():.3g}"


# ---------------------------------------------------------------- quantisers against numpy


def test_actq_forward_matches_hand_computation_signed_unsigned_and_layouts():
    x = np.array([[[-1.3, 0.26, 0.74, 2.5], [0.0, 0.5, -0.05, 9.0]]], np.float32)  # (1, 2, 4): 3-D, last axis = C
    act = ActQ(4, nbits_a=3)
    act.set_train(False)
    alpha = np.array([0.5, 0.25, 0.5, 1.0], np.float32)
    zp = np.array([0.4, 1.6, -2.5, 0.0], np.float32)  # rounded: 0, 2, -2 (half to even), 0
    _set(act.alpha, alpha)
    _set(act.zero_point, zp)
    for signed, (qn, qp) in ((0.0, (0, 7)), (1.0, (-4, 3))):
        _set(act.signed, [signed])
        zr = np.round(zp)
        expected = (np.clip(np.round(np.clip(x / alpha + zr, qn, qp)), qn, qp) - zr) * alpha
        np.testing.assert_allclose(act(ms.Tensor(x)).asnumpy(), expected, rtol=0, atol=1e-6)
    # 4-D / 5-D inputs use axis 1 as the channel axis
    x5 = np.linspace(-3, 3, 2 * 4 * 3 * 2, dtype=np.float32).reshape(2, 4, 3, 2, 1)
    expected5 = (np.clip(np.round(x5 / alpha[:, None, None, None] + np.round(zp)[:, None, None, None]), -4, 3)
                 - np.round(zp)[:, None, None, None]) * alpha[:, None, None, None]
    np.testing.assert_allclose(act(ms.Tensor(x5)).asnumpy(), expected5, rtol=0, atol=1e-6)


def test_weight_quantisation_is_signed_per_output_channel():
    conv = Conv3dQ(2, 3, 1, nbits_w=2)
    conv.set_train(False)
    w = np.array([0.9, -0.2, 0.05, -1.7, 0.3, 0.6], np.float32).reshape(3, 2, 1, 1, 1)
    _set(conv.weight, w)
    _set(conv.alpha, [0.5, 0.1, 0.2])
    w_q = conv.quantized_weight().asnumpy()
    steps = w_q / np.array([0.5, 0.1, 0.2], np.float32).reshape(3, 1, 1, 1, 1)
    np.testing.assert_allclose(steps.ravel(), [1, 0, 0, -2, 1, 1], atol=1e-5)  # clamp to [-2, 1] then round
    lin = LinearQ(3, 2, bias=False, nbits_w=4)
    assert lin.bias is None and lin.act.in_features == 3 and lin.alpha.shape == (2,)


def test_first_training_batch_initialises_like_upstream():
    rng = np.random.default_rng(3)
    conv = Conv3dQ(2, 4, 1, nbits_w=4)
    x = rng.normal(0.3, 1.0, (1, 2, 2, 3, 3)).astype(np.float32)
    conv.set_train(True)
    conv(ms.Tensor(x))
    w = conv.weight.asnumpy()
    np.testing.assert_allclose(conv.alpha.asnumpy(), np.full(4, 2 * np.abs(w).mean() / math.sqrt(7)), rtol=1e-6)
    assert conv.act.signed.asnumpy()[0] == 1 and conv.init_state.asnumpy()[0] == 1
    a = 2 * np.abs(x).mean() / math.sqrt(7)
    np.testing.assert_allclose(conv.act.alpha.asnumpy(), np.full(2, a), rtol=1e-6)
    np.testing.assert_allclose(conv.act.zero_point.asnumpy(), np.full(2, 0.1 * (x.min() + 8 * a)), rtol=1e-5)
    # non-negative input keeps the unsigned range (Qp = 2^b - 1, Qn = 0); initialised once only
    act = ActQ(3, nbits_a=2)
    act.set_train(True)
    pos = np.abs(x[:, :, 0]).reshape(1, 2, 9)[..., :3].copy()
    act(ms.Tensor(pos))
    assert act.signed.asnumpy()[0] == 0
    np.testing.assert_allclose(act.alpha.asnumpy(), np.full(3, 2 * pos.mean() / math.sqrt(3)), rtol=1e-6)
    np.testing.assert_allclose(act.zero_point.asnumpy(), np.full(3, 0.1 * pos.min()), rtol=1e-5)
    act(ms.Tensor(pos * 10))
    np.testing.assert_allclose(act.alpha.asnumpy(), np.full(3, 2 * pos.mean() / math.sqrt(3)), rtol=1e-6)


def test_straight_through_gradients_match_lsq_formula():
    x = np.array([[-2.0, -0.3, 0.1, 0.45, 0.9, 3.0]], np.float32)  # (1, 6): 2-D, channels on the last axis
    act = ActQ(6, nbits_a=2)
    act.set_train(False)
    _set(act.signed, [1.0])
    a = np.float32(0.4)
    _set(act.alpha, np.full(6, a))
    _set(act.zero_point, np.zeros(6))
    grad_fn = ms.grad(lambda t: act(t).sum(), grad_position=0, weights=[act.alpha, act.zero_point])
    dx, (dalpha, dzp) = grad_fn(ms.Tensor(x))
    v = x[0] / a
    inside = (v >= -2) & (v <= 1)
    np.testing.assert_array_equal(dx.asnumpy()[0], inside.astype(np.float32))  # STE: 1 inside the range, 0 outside
    g = 1 / math.sqrt(6 * 1)
    lsq = np.where(inside, np.round(v) - v, np.clip(v, -2, 1))
    np.testing.assert_allclose(dalpha.asnumpy(), lsq * g, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dzp.asnumpy(), np.where(inside, 0.0, -a) * g, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- upstream parity through the converter


def _parity(case, tmp_path):
    folder = golden_dir(case, need=("weights.pth",))
    cfg = load_config(folder)
    ctor = cfg["constructor"]
    params = load_and_convert(f"{folder}/weights.pth", qsci.convert_state_dict, **ctor)
    ckpt = save_ckpt(params, tmp_path / "w.ckpt")
    net = build_model("qsci", **ctor)
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert not not_loaded and not unused
    out = net(*[ms.Tensor(load(folder, f"{n}.npy")) for n in ("meas", "mask", "mask_s")])
    assert isinstance(out, list) and len(out) == 1
    expected = load(folder, "output.npy")
    assert out[0].shape == expected.shape == (1, 8, 32, 32)
    _golden_rule(out[0].asnumpy(), expected, cfg["tolerance"])
    cells = dict(net.cells_and_names())
    for probe in cfg["module_probes"]:
        got = cells[probe["module"]](ms.Tensor(load(folder, probe["input"]))).asnumpy()
        _golden_rule(got, load(folder, probe["output"]), probe["tolerance"])
    return net, params


@pytest.mark.slow
def test_qsci_8bit_matches_upstream_through_converter(tmp_path):
    _parity("qsci_8bit", tmp_path)


@pytest.mark.slow
def test_qsci_4bit_matches_upstream_and_3bit_runs_on_the_same_layout(tmp_path):
    net4, params = _parity("qsci_4bit", tmp_path)
    net3 = build_model("qsci", in_ch=8, units=2, group_num=2, bit_depth=3)
    check_params(params, net3, "qsci_4bit weights")  # 3-bit has the same keys and shapes as 2/4-bit
    ms.load_param_into_net(net3, {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in params.items()})
    steps = (net3.fem_conv1_1[0].quantized_weight() / net3.fem_conv1_1[0].alpha.reshape(-1, 1, 1, 1, 1)).asnumpy()
    assert np.allclose(steps, np.round(steps), atol=1e-4) and -4 - 1e-4 <= steps.min() and steps.max() <= 3 + 1e-4
    assert set(np.round(steps).ravel().astype(int)) == set(range(-4, 4))
    steps8 = (net3.fem_conv1_2[0].quantized_weight() / net3.fem_conv1_2[0].alpha.reshape(-1, 1, 1, 1, 1)).asnumpy()
    assert steps8.max() > 3  # the side branch stays at 8 bits
    folder = golden_dir("qsci_4bit", need=("weights.pth",))
    inputs = [ms.Tensor(load(folder, f"{n}.npy")) for n in ("meas", "mask", "mask_s")]
    out3 = net3(*inputs)[0].asnumpy()
    assert out3.shape == (1, 8, 32, 32) and np.isfinite(out3).all()
    assert np.abs(out3 - load(folder, "output.npy")).mean() > 1e-3


@pytest.mark.slow
def test_qsci_2bit_matches_upstream_through_converter(tmp_path):
    _parity("qsci_2bit", tmp_path)


def test_wrong_bit_depth_and_mismatched_checkpoint_raise():
    with pytest.raises(ValueError, match="bit_depth must be an integer in 2..8"):
        build_model("qsci", in_ch=8, units=1, group_num=2, bit_depth=16)
    folder = golden_dir("qsci_4bit", need=("weights.pth",))
    params = load_and_convert(f"{folder}/weights.pth", qsci.convert_state_dict)
    with pytest.raises(CheckpointError, match=r"missing \d+ key\(s\): fem\.0\.act\.alpha"):
        check_params(params, build_model("qsci", in_ch=8, units=2, group_num=2, bit_depth=8), "4bit.pth")


# ---------------------------------------------------------------- quantisation-aware training


@pytest.mark.slow
def test_qat_steps_lower_the_loss_and_reach_quantiser_parameters():
    rng = np.random.default_rng(0)
    frames, h, w = 4, 8, 8
    gt = rng.random((1, frames, h, w)).astype(np.float32)
    mask = (rng.random((1, frames, h, w)) > 0.5).astype(np.float32)
    mask_s = mask.sum(1)
    mask_s[mask_s == 0] = 1
    inputs = [ms.Tensor((gt * mask).sum(1)), ms.Tensor(mask), ms.Tensor(mask_s)]
    ms.set_seed(0)  # the initial weights are random: fix them so the loss curve is reproducible
    net = build_model("qsci", in_ch=2, units=1, group_num=1, bit_depth=4)
    assert init_quantizers(net, *inputs) == 44  # 20 Conv3dQ/LinearQ weight quantisers + 24 activation quantisers
    params = net.trainable_params()
    names = [p.name for p in params]
    opt = AdamW(params, lr=2e-3, weight_decay=0.0)
    target = ms.Tensor(gt)

    def loss_fn(*x):
        return ops.abs(net(*x)[0] - target).mean()

    grad_fn = ms.value_and_grad(loss_fn, None, params)
    losses = []
    for _ in range(5):
        loss, grads = grad_fn(*inputs)
        opt(grads)
        losses.append(float(loss))
    assert losses[-1] < losses[0] * 0.97 and losses == sorted(losses, reverse=True), losses
    for key in ("fem_conv1_1.0.alpha", "fem_conv1_1.0.act.alpha", "resdnet_list.0.cformer_list.0.tsab.moveq.bias",
                "resdnet_list.0.cformer_list.0.scb.0.weight"):
        assert float(ops.abs(grads[names.index(key)]).sum()) > 0, key


def test_qat_starts_from_full_precision_weights_like_upstream_nonstrict_load():
    from mindediting.models.qsci import load_full_precision

    folder = golden_dir("efficientsci_fp", need=("weights.pth",))
    fp = load_and_convert(f"{folder}/weights.pth", efficientsci.convert_state_dict)  # in_ch 8, units 2, group_num 2
    net8 = build_model("qsci", in_ch=8, units=2, group_num=2, bit_depth=8)
    copied, skipped = load_full_precision(net8, fp)
    assert sorted(copied) == sorted(fp) and not skipped  # 8-bit keeps EfficientSCI's names for every conv
    net2 = build_model("qsci", in_ch=8, units=2, group_num=2, bit_depth=2)
    copied, skipped = load_full_precision(net2, fp)
    assert sorted(skipped) == sorted(k for k in fp if k.startswith(("fem.", "vrm.")))
    assert "up_conv.weight" in copied and len(copied) == len(fp) - 12
    params = {p.name: p for p in net2.get_parameters()}
    np.testing.assert_array_equal(params["resdnet_list.1.cformer_list.0.tsab.qkv.weight"].asnumpy(),
                                  fp["resdnet_list.1.cformer_list.0.tsab.qkv.weight"])
    assert params["up_conv.init_state"].asnumpy()[0] == 0  # quantisers still wait for the first batch


@pytest.mark.slow
def test_quantized_model_exports_to_mindir_and_reloads(tmp_path):
    rng = np.random.default_rng(1)
    mask = (rng.random((1, 4, 8, 8)) > 0.5).astype(np.float32)
    mask_s = mask.sum(1)
    mask_s[mask_s == 0] = 1
    inputs = [ms.Tensor((mask * rng.random(mask.shape)).sum(1).astype(np.float32)), ms.Tensor(mask), ms.Tensor(mask_s)]
    net = build_model("qsci", in_ch=2, units=1, group_num=1, bit_depth=3)
    init_quantizers(net, *inputs)
    net.set_train(False)
    expected = net(*inputs)[0].asnumpy()
    ms.export(net, *inputs, file_name=str(tmp_path / "qsci3"), file_format="MINDIR")
    graph = ms.nn.GraphCell(ms.load(str(tmp_path / "qsci3.mindir")))
    out = graph(*inputs)
    out = out[0] if isinstance(out, (list, tuple)) else out
    np.testing.assert_allclose(out.asnumpy(), expected, rtol=0, atol=1e-6)


def _efficientsci_macs(c, units, g, t, h, w):
    """Hand count for EfficientSCI(in_ch=c, units, group_num=g) on t frames of h x w (conv/linear/attention)."""
    hw, qhw = h * w, (h // 2) * (w // 2)
    d = 4 * c // g
    fem = c * t * hw * 49 * 3 + 2 * c * t * hw * c * 27 + 4 * c * t * qhw * 2 * c * 27
    cformer = t * qhw * (2 * d * d * 9 + d * 3 * d // 2 + 2 * t * d // 2 + d // 2 * d + d * d * 27 + d * d)
    dense = sum(t * qhw * d * (i + 1) * d for i in range(1, g))
    block = g * cformer + dense + t * qhw * 16 * c * c
    tail = t * qhw * 32 * c * c + t * hw * (4 * c * c * 27 + 2 * c * c + c * 27)
    return fem + units * block + tail


@pytest.mark.slow
def test_cost_benchmark_counts_match_hand_formula():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "bench_qsci_cost.py")
    spec = importlib.util.spec_from_file_location("bench_qsci_cost", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    fp = build_model("efficientsci", in_ch=4, units=1, group_num=2)
    rows = bench.count_macs(fp, bench.make_inputs(1, 4, 8, channel_axis=True))
    assert sum(r[2] for r in rows) == _efficientsci_macs(4, 1, 2, 4, 8, 8)
    assert all(r[3] == r[4] == 32 for r in rows)
    q8 = build_model("qsci", in_ch=4, units=1, group_num=2, bit_depth=8)
    rows8 = bench.count_macs(q8, bench.make_inputs(1, 4, 8, channel_axis=False))
    assert sum(r[2] for r in rows8) == _efficientsci_macs(4, 1, 2, 4, 8, 8)
    assert sum(r[2] * r[3] * r[4] for r in rows8) * 16 == sum(r[2] * 32 * 32 for r in rows)  # 16x fewer BOPs
    q2 = build_model("qsci", in_ch=4, units=1, group_num=2, bit_depth=2)
    rows2 = bench.count_macs(q2, bench.make_inputs(1, 4, 8, channel_axis=False))
    side = {r[0]: r for r in rows2 if r[0].endswith("_2.0") or r[0] == "vrm_conv3_2"}
    assert len(side) == 6 and all(r[3] == r[4] == 8 for r in side.values())
    assert side["fem_conv3_2.0"][2] == 16 * 4 * 16 * 32  # 4C out x T x (H/2 x W/2) x 8C in
    assert {r[3] for r in rows2 if r[0] not in side} == {2}

"""MetaSCI for video snapshot compressive imaging, as in the cacti toolbox (``cacti/models/metasci.py``).

Paper: Z. Wang, H. Zhang, Z. Cheng, B. Chen, X. Yuan, "MetaSCI: Scalable and Adaptive
Reconstruction for Video Compressive Sensing", CVPR 2021 (https://arxiv.org/abs/2103.01786).

Call: ``net(meas (B, 1, H, W), mask (B, 8, H, W), mask_s (B, 1, H, W)) -> (B, 8, H, W)``; frames in
[0, 1], ``meas = sum_k mask_k * x_k``, ``mask_s`` = mask sum with zeros replaced by 1; H and W even.
The input is ``y/mask_s * (1 + mask)`` (see :func:`mindediting.data.sci.init_estimate`); then an
encoder (stride-2), three residual blocks of 128 channels and a decoder (transposed conv) give the
8 frames. LeakyReLU slope 0.01 (torch's default) everywhere. :meth:`MetaSCI.jit_stages` compiles the
whole forward for PyNative callers (``system.mode: hybrid``).

Beyond the toolbox (off by default, so toolbox checkpoints load exactly): ``num_masks > 0`` adds
the paper's mask-specific light-weight modulation, a per-output-channel scale (init 1) and shift
(init 0) after every convolution, one set per mask, selected with ``mask_id``; :func:`modulation_params`
lists them so that adapting to a new mask trains only those.

Training from scratch (issue 18; both off by default, so toolbox checkpoints and the toolbox recipe are unchanged):

* ``init="he"``: He-normal convolution weights for LeakyReLU(0.01) (fan in) and zero biases instead of torch's
  default (weights uniform with variance 1 / (3 fan_in), biases uniform), which ours matches. Under the default
  the untrained network does not depend on its input: the input-dependent part of the output has a standard
  deviation of 3e-6 against 0.07 from the biases (the signal shrinks about 6x per residual block), so training
  first has to grow that path; on a CPU budget of a few thousand iterations it never got below the training error
  of ``meas / mask_s`` (see ``configs/metasci/README.md``).
* ``residual=True``: the output is ``meas / mask_s`` plus the network's correction, the last convolution starting
  at zero, so an untrained network returns exactly the ``meas / mask_s`` estimate. Not a toolbox option:
  toolbox checkpoints need ``residual=False``.
"""
import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import HeNormal, initializer

LRELU_SLOPE = 0.01  # torch nn.LeakyReLU() default


def conv(cin, cout, kernel, stride=1, padding=0):
    return nn.Conv2d(cin, cout, kernel, stride, pad_mode="pad", padding=padding, has_bias=True)


def lrelu():
    return nn.LeakyReLU(LRELU_SLOPE)


class ResnetBlock(nn.Cell):
    """``t = x + conv1(x)``; ``out = conv2(t)`` (conv2 ends with an activation; no outer skip)."""

    def __init__(self, ch):
        super().__init__()
        self.conv1 = nn.SequentialCell(
            conv(ch, ch, 3, 1, 1), lrelu(), conv(ch, ch, 1), lrelu(), conv(ch, ch, 3, 1, 1), lrelu(), conv(ch, ch, 3, 1, 1)
        )
        self.conv2 = nn.SequentialCell(conv(ch, ch, 3, 1, 1), lrelu(), conv(ch, ch, 1), lrelu())

    def construct(self, x):
        return self.conv2(x + self.conv1(x))


class Modulation(nn.Cell):
    """Per-mask, per-channel affine modulation ``x * scale[m] + shift[m]`` (MetaSCI paper option)."""

    def __init__(self, num_masks, channels):
        super().__init__()
        self.scale = ms.Parameter(ops.ones((num_masks, channels, 1, 1), ms.float32), name="scale")
        self.shift = ms.Parameter(ops.zeros((num_masks, channels, 1, 1), ms.float32), name="shift")

    def construct(self, x, mask_id):
        return x * self.scale[mask_id] + self.shift[mask_id]


class MetaSCI(nn.Cell):
    """MetaSCI backbone (8 frames). ``num_masks``: 0 = toolbox model; > 0 adds modulation parameters.
    ``init``: ``"torch"`` (toolbox) or ``"he"``; ``residual``: output ``meas / mask_s`` + the network's correction
    (last convolution zero at start). See the module docstring."""

    INITS = ("torch", "he")

    def __init__(self, num_masks=0, residual=False, init="torch"):
        super().__init__()
        if init not in self.INITS:
            raise ValueError(f"MetaSCI init '{init}': expected one of {', '.join(self.INITS)}")
        self.num_masks = int(num_masks)
        self.residual = bool(residual)
        self.conv1 = nn.SequentialCell(
            conv(8, 32, 5, 1, 2), lrelu(), conv(32, 64, 3, 1, 1), lrelu(), conv(64, 64, 1), lrelu(),
            conv(64, 128, 3, 2, 1), lrelu(),
        )
        self.layers = nn.CellList([ResnetBlock(128) for _ in range(3)])
        # torch ConvTranspose2d(k3, s2, p1, output_padding=1) == this padding (see mindspore_notes.md)
        self.conv2 = nn.SequentialCell(
            nn.Conv2dTranspose(128, 64, 3, 2, pad_mode="pad", padding=(1, 0, 1, 0), has_bias=True), lrelu(),
            conv(64, 32, 3, 1, 1), lrelu(), conv(32, 16, 1), lrelu(), conv(16, 8, 3, 1, 1),
        )
        if init == "he":
            for _, cell in self.cells_and_names():
                if isinstance(cell, (nn.Conv2d, nn.Conv2dTranspose)):
                    he = HeNormal(negative_slope=LRELU_SLOPE, mode="fan_in", nonlinearity="leaky_relu")
                    cell.weight.set_data(initializer(he, cell.weight.shape, ms.float32))
                    cell.bias.set_data(initializer("zeros", cell.bias.shape, ms.float32))
        if self.residual:  # start from the meas / mask_s estimate exactly
            last = self.conv2[-1]
            last.weight.set_data(initializer("zeros", last.weight.shape, ms.float32))
            last.bias.set_data(initializer("zeros", last.bias.shape, ms.float32))
        if self.num_masks > 0:
            self.mod_enc = Modulation(self.num_masks, 128)
            self.mod_res = nn.CellList([Modulation(self.num_masks, 128) for _ in range(3)])
            self.mod_out = Modulation(self.num_masks, 8)

    def jit_stages(self):
        """Graph-compile the whole forward (``system.mode: hybrid``) while the context stays PyNative: the net is
        one stage, so this gives graph-mode speed to PyNative callers (one compilation per input shape and
        ``mask_id``). Gradients still flow (``adapt_modulation`` works). Returns ``self``."""
        self.construct = ms.jit(self.construct)
        return self

    def construct(self, meas, mask, mask_s, mask_id=0):
        meas_re = meas / mask_s
        data = meas_re + mask * meas_re
        out = self.conv1(data)
        if self.num_masks > 0:
            out = self.mod_enc(out, mask_id)
        for i, layer in enumerate(self.layers):
            out = layer(out)
            if self.num_masks > 0:
                out = self.mod_res[i](out, mask_id)
        out = self.conv2(out)
        if self.num_masks > 0:
            out = self.mod_out(out, mask_id)
        if self.residual:
            out = out + meas_re
        return out


def modulation_params(net):
    """The mask-specific parameters (empty for the toolbox model): train only these to adapt."""
    return [p for p in net.trainable_params() if ".scale" in p.name or ".shift" in p.name]


def convert_state_dict(state, **ctor_kwargs):
    """Upstream keys are already the Cell's names (convs keep ``weight``/``bias``; the transposed
    conv weight is ``(in, out, k, k)`` in both frameworks). Modulation parameters, when asked for
    with ``num_masks`` and absent from a toolbox checkpoint, start at identity."""
    import numpy as np

    out = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}
    num_masks = int(ctor_kwargs.get("num_masks", 0) or 0)
    if num_masks > 0 and not any(k.startswith("mod_") for k in out):
        names = ["mod_enc"] + [f"mod_res.{i}" for i in range(3)]
        for name in names:
            out[f"{name}.scale"] = np.ones((num_masks, 128, 1, 1), np.float32)
            out[f"{name}.shift"] = np.zeros((num_masks, 128, 1, 1), np.float32)
        out["mod_out.scale"] = np.ones((num_masks, 8, 1, 1), np.float32)
        out["mod_out.shift"] = np.zeros((num_masks, 8, 1, 1), np.float32)
    return out


def adapt_modulation(net, batches, mask_id, steps=10, lr=1e-3):
    """Fast adaptation to a new mask (paper option): train only ``mask_id``'s modulation parameters.

    ``batches``: an iterable cycled over, of ``(meas (B,1,H,W), mask (B,8,H,W), mask_s (B,1,H,W),
    gt (B,8,H,W))`` float32 numpy arrays made with the new mask. Loss: RMSE (the toolbox's
    ``sqrt(MSE)``); optimiser: Adam (torch-exact ``mindediting.optim.AdamW``, no weight decay).
    The shared backbone is left untouched (only the modulation tensors get gradients; the rows of other
    masks receive zero gradient and Adam leaves them unchanged). Returns the loss of every step.
    """
    import itertools

    from mindediting.optim import AdamW

    params = modulation_params(net)
    if not params:
        raise ValueError("adapt_modulation needs a MetaSCI built with num_masks > 0")
    if not 0 <= mask_id < net.num_masks:
        raise ValueError(f"mask_id {mask_id} out of range for num_masks={net.num_masks}")
    opt = AdamW(params, lr=lr, weight_decay=0.0)

    def loss_fn(meas, mask, mask_s, gt):
        return ops.sqrt(ops.mean((net(meas, mask, mask_s, mask_id) - gt) ** 2))

    grad_fn = ms.value_and_grad(loss_fn, None, params)
    net.set_train(True)
    losses = []
    for _, batch in zip(range(steps), itertools.cycle(batches)):
        loss, grads = grad_fn(*[ms.Tensor(a) for a in batch])
        opt(grads)
        losses.append(float(loss.asnumpy()))
    net.set_train(False)
    return losses

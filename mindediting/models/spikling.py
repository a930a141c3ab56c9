"""Spikling generator: a semi-UNet that turns a 32-frame spike window into a grey image.

Port of lshpku/spikling ``model.py: Generator`` (no paper; the repository README describes it).
Input (B, 32, H, W) float32: spike window mapped to {-1, +1} (``spike * 2 - 1``); H and W divisible by 4.
Output (B, 1, H, W) float32 in the training scale ``grey / 128 - 1``; :func:`generate` maps it to uint8.

All convolutions are bias-free and every normalisation is an affine-free InstanceNorm (eps 1e-5), so an
upstream checkpoint holds 13 conv weights and maps onto this Cell under the same names.
"""
import math

import numpy as np
from mindspore import nn, ops
from mindspore.common.initializer import HeUniform

WINDOW = 32


class InstanceNorm(nn.Cell):
    """Affine-free instance normalisation over (H, W) with biased variance, as torch ``InstanceNorm2d``."""

    def __init__(self, eps=1e-5):
        super().__init__()
        self.eps = eps

    def construct(self, x):
        mean = x.mean(axis=(2, 3), keep_dims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=(2, 3), keep_dims=True)
        return centred / ops.sqrt(var + self.eps)


def _conv(cin, cout, kernel, stride=1, padding=1):
    """Bias-free torch ``Conv2d(cin, cout, kernel, stride, padding)``; weight (out, in, k, k) named ``weight``."""
    return nn.Conv2d(cin, cout, kernel, stride, pad_mode="pad", padding=padding, has_bias=False,
                     weight_init=HeUniform(math.sqrt(5)))


def _deconv(cin, cout):
    """torch ``ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)`` (weight (in, out, 4, 4)): doubles H and W."""
    return nn.Conv2dTranspose(cin, cout, 4, 2, pad_mode="pad", padding=1, has_bias=False,
                              weight_init=HeUniform(math.sqrt(5)))


class Generator(nn.Cell):
    """Semi-UNet: down1 (full res) -> down2 (1/2) -> bottom (1/4 and back to 1/2) -> up1 -> up2 -> 1x1 conv."""

    def __init__(self):
        super().__init__()
        self.down1 = nn.SequentialCell(
            _conv(WINDOW, 64, 3), InstanceNorm(), _conv(64, 64, 3), InstanceNorm(), nn.ReLU()
        )
        self.down2 = nn.SequentialCell(
            _conv(64, 128, 4, 2), InstanceNorm(), nn.ReLU(), _conv(128, 128, 3), InstanceNorm(), nn.ReLU()
        )
        self.bottom = nn.SequentialCell(
            _conv(128, 256, 4, 2), InstanceNorm(), nn.ReLU(),
            _conv(256, 256, 3), InstanceNorm(), nn.ReLU(),
            _conv(256, 256, 3), InstanceNorm(), nn.ReLU(),
            _deconv(256, 128), InstanceNorm(), nn.ReLU(),
        )
        self.up1 = nn.SequentialCell(
            _conv(128, 128, 3), InstanceNorm(), nn.ReLU(), _deconv(128, 64), InstanceNorm(), nn.ReLU()
        )
        self.up2 = nn.SequentialCell(
            _conv(64, 64, 3), InstanceNorm(), nn.ReLU(), _conv(64, 32, 3), nn.Tanh()
        )
        self.flat = _conv(32, 1, 1, padding=0)

    def construct(self, x):
        d1 = self.down1(x)
        d2 = self.down2(d1)
        d3 = self.bottom(d2)
        u1 = self.up1(d2 + d3)
        u2 = self.up2(d1 + u1)
        return self.flat(x + u2)


def check_input_shape(shape):
    """Raise ValueError unless ``shape`` is (B, 32, H, W) with H, W divisible by 4."""
    if len(shape) != 4 or shape[1] != WINDOW or shape[2] % 4 or shape[3] % 4:
        raise ValueError(
            f"Spikling Generator expects (B, {WINDOW}, H, W) with H and W divisible by 4, got {tuple(shape)}"
        )


def to_uint8(image):
    """Network output -> uint8 as upstream: ``v * 128 + 127`` in float32, clipped to [0, 255], truncated."""
    from mindediting.data.video_io import to_uint8 as quantise

    return quantise(np.asarray(image, dtype=np.float32) * 128 + 127, rounding="floor", scale=1)


def generate(net, seq, start, pad_rows=(1, 1), pad_cols=(0, 0)):
    """Upstream ``evaluate.generate``: image (H, W) uint8 from spike frames ``start .. start+31`` of ``seq``.

    ``seq`` (T, H, W) 0/1 is zero-padded by ``pad_rows`` (upstream: one row top and bottom, 250 -> 252) and
    ``pad_cols`` (upstream: none) before the ±1 mapping; the padding is cropped from the output.
    """
    import mindspore as ms

    seq = np.asarray(seq)
    if seq.ndim != 3:
        raise ValueError(f"spike sequence must be (T, H, W), got shape {seq.shape}")
    if start < 0 or start + WINDOW > seq.shape[0]:
        raise ValueError(f"frames [{start}, {start + WINDOW}) are outside a {seq.shape[0]}-frame sequence")
    window = seq[start:start + WINDOW].astype(np.float32)
    window = np.pad(window, ((0, 0), tuple(pad_rows), tuple(pad_cols)))
    x = window[None] * 2 - 1
    check_input_shape(x.shape)
    out = net(ms.Tensor(x)).asnumpy()[0, 0]
    height, width = seq.shape[1:]
    return to_uint8(out[pad_rows[0]:pad_rows[0] + height, pad_cols[0]:pad_cols[0] + width])


def padding_for(height, width):
    """Upstream's padding (one row top and bottom) when it fits, else the least padding to multiples of 4."""
    if (height + 2) % 4 == 0 and width % 4 == 0:
        return (1, 1), (0, 0)
    extra_h, extra_w = -height % 4, -width % 4
    return (extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)


def convert_state_dict(state, **ctor_kwargs):
    """Upstream Generator keys and layouts equal ours (conv and transposed-conv weights, no biases).

    Also accepts the older ``{'netG_state': ..., 'netD_state': ...}`` training checkpoints (the generic step
    does not unwrap these); discriminator weights are dropped.
    """
    if ctor_kwargs:
        raise ValueError(f"Spikling Generator takes no constructor arguments, got {sorted(ctor_kwargs)}")
    if any(k.startswith("netG_state.") for k in state):
        state = {k[len("netG_state."):]: v for k, v in state.items() if k.startswith("netG_state.")}
    return {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}


class SpiklingLoss(nn.Cell):
    """Upstream training loss: ``lambda_l2 * MSE(real, fake) + lambda_vgg * VGG(real, fake)``.

    ``vgg`` is a :class:`mindediting.models.common.vgg.VGGPerceptualLoss` (upstream weights 100 and 1); pass
    ``vgg=None`` for the L2-only recipe used when torchvision's VGG19 weights are not available.
    ``net`` keeps its parameter names (no ``net.`` prefix), so its checkpoints still load into a bare Generator.
    """

    def __init__(self, net, vgg=None, lambda_l2=100.0, lambda_vgg=1.0):
        super().__init__(auto_prefix=False)
        self.net, self.vgg = net, vgg
        self.lambda_l2, self.lambda_vgg = lambda_l2, lambda_vgg

    def construct(self, seq, tag):
        fake = self.net(seq)
        diff = fake - tag
        loss = self.lambda_l2 * (diff * diff).mean()
        if self.vgg is not None:
            loss = loss + self.lambda_vgg * self.vgg(tag, fake)
        return loss


def make_train_step(loss_cell, lr=2e-4, betas=(0.5, 0.999), jit=False):
    """One optimisation step ``step(seq, tag) -> loss`` with upstream's Adam (lr 2e-4, betas (0.5, 0.999)).

    Uses ``mindediting.optim.AdamW`` with ``weight_decay=0``, which follows torch's Adam exactly
    (``nn.Adam`` places eps differently). Only the generator's parameters are optimised. ``jit=True`` compiles
    the step (about a minute on 2 CPU cores, then ~4x faster than PyNative: 3.2 s against 12 s for a
    1x32x64x64 batch on our loaded box).
    """
    import mindspore as ms
    from mindediting.optim import AdamW

    params = loss_cell.net.trainable_params()
    optimizer = AdamW(params, lr=lr, betas=tuple(betas), eps=1e-8, weight_decay=0.0)
    grad_fn = ms.value_and_grad(loss_cell, None, params)

    def step(seq, tag):
        loss, grads = grad_fn(seq, tag)
        optimizer(grads)
        return loss

    return ms.jit(step) if jit else step

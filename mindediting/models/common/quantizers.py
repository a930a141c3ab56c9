"""LSQ-style fake quantisers used by Q-SCI (mcao92/QuantizedSCI, ``Quant.py`` / ``_quant_base.py``).

All quantisers keep float tensors ("fake quantisation"): values are divided by a learnable step
``alpha``, clamped to the integer range of ``nbits`` and rounded with a straight-through estimator
(round-half-to-even forward, identity gradient), then multiplied back.

* :class:`ActQ` - activations, asymmetric, one ``alpha`` and one ``zero_point`` per channel (channel =
  axis 1 for 4-D/5-D inputs, the last axis for 2-D and 3-D inputs). The integer range is signed or
  unsigned according to the ``signed`` buffer.
* :class:`Conv3dQ` / :class:`LinearQ` - signed per-output-channel weight quantisation, and their input
  activations go through an internal ``act`` (:class:`ActQ` with the same bit width). Biases stay float.

Buffers ``init_state`` (and ``signed`` for ActQ) are Parameters with ``requires_grad=False`` so that they
are saved and loaded with the weights under the upstream names.

First-batch initialisation (upstream rule): the first forward in training mode while ``init_state == 0``
sets ``alpha`` (and ``signed``/``zero_point`` for activations) from that batch, then ``init_state = 1``.
This step reads tensor values eagerly, so run the first training batch in PyNative mode (or call
:func:`init_quantizers`) before compiling a training step with ``mindspore.jit``.
"""
import math

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import HeUniform, Uniform, initializer


def round_ste(x):
    """Round half to even in the forward pass, identity gradient (same float ops as upstream)."""
    return ops.stop_gradient(ops.round(x) - x) + x


def grad_scale(x, scale):
    """``x`` in the forward pass, gradient multiplied by ``scale`` (upstream's arithmetic order kept)."""
    scaled = x * scale
    return ops.stop_gradient(x - scaled) + scaled


def signed_range(nbits):
    return -(2 ** (nbits - 1)), 2 ** (nbits - 1) - 1


def unsigned_range(nbits):
    return 0, 2**nbits - 1


def _check_bits(nbits):
    if not isinstance(nbits, int) or isinstance(nbits, bool) or not 1 < nbits <= 16:
        raise ValueError(f"quantiser bit width must be an integer in 2..16, got {nbits!r}")


def _buffer(name, value):
    return Parameter(Tensor(np.full((1,), value, np.float32)), name=name, requires_grad=False)


class ActQ(nn.Cell):
    """Asymmetric activation quantiser with per-channel ``alpha`` and ``zero_point`` (``in_features`` channels)."""

    def __init__(self, in_features, nbits_a=4):
        super().__init__()
        _check_bits(nbits_a)
        self.nbits = nbits_a
        self.in_features = in_features
        self.alpha = Parameter(Tensor(np.ones((in_features,), np.float32)), name="alpha")
        self.zero_point = Parameter(Tensor(np.zeros((in_features,), np.float32)), name="zero_point")
        self.init_state = _buffer("init_state", 0.0)
        self.signed = _buffer("signed", 0.0)

    def _needs_init(self):
        return self.training and float(self.init_state.asnumpy()[0]) == 0.0

    def initialize(self, x):
        """Upstream first-batch rule: sign from min(x), alpha = 2 mean|x| / sqrt(Qp), zero point EMA step."""
        x = ops.stop_gradient(x)
        x_min = float(x.min().asnumpy())
        if x_min < -1e-5:
            self.signed.set_data(Tensor(np.ones((1,), np.float32)))
        qn, qp = signed_range(self.nbits) if self.signed.asnumpy()[0] == 1 else unsigned_range(self.nbits)
        alpha = (2 * ops.abs(x).mean() / math.sqrt(qp)).asnumpy().astype(np.float32)
        alpha = np.full((self.in_features,), alpha, np.float32)
        shift = np.float32(0.1) * (np.float32(x_min) - alpha * np.float32(qn))
        zero_point = self.zero_point.asnumpy() * np.float32(0.9) + shift
        self.alpha.set_data(Tensor(alpha))
        self.zero_point.set_data(Tensor(zero_point.astype(np.float32)))
        self.init_state.set_data(Tensor(np.ones((1,), np.float32)))

    def _channel_view(self, v, ndim):
        if ndim == 2:
            return v.reshape(1, -1)
        if ndim == 4:
            return v.reshape(1, -1, 1, 1)
        if ndim == 5:
            return v.reshape(1, -1, 1, 1, 1)
        return v  # 3-D (B, N, C): broadcasts over the last axis, as upstream

    def construct(self, x):
        if self._needs_init():
            self.initialize(x)
        s_qn, s_qp = signed_range(self.nbits)
        u_qn, u_qp = unsigned_range(self.nbits)
        signed = self.signed
        unsigned = 1.0 - signed
        qn = signed * s_qn + unsigned * u_qn
        qp = signed * s_qp + unsigned * u_qp
        numel = x.size
        g = signed * (1.0 / math.sqrt(numel * s_qp)) + unsigned * (1.0 / math.sqrt(numel * u_qp))
        zero_point = round_ste(self.zero_point)
        alpha = self._channel_view(grad_scale(self.alpha, g), x.ndim)
        zero_point = self._channel_view(grad_scale(zero_point, g), x.ndim)
        q = round_ste(ops.minimum(ops.maximum(x / alpha + zero_point, qn), qp))
        return (q - zero_point) * alpha


class _WeightQ(nn.Cell):
    """Shared part of Conv3dQ / LinearQ: per-output-channel signed weight fake quantisation."""

    def _init_weight_quant(self, shape, fan_in, bias, nbits):
        """``weight`` of ``shape`` (out, in, ...) and optional ``bias`` with torch's default init, then the
        per-output-channel step ``alpha``, ``init_state`` and the input quantiser ``act``."""
        _check_bits(nbits)
        out_channels, in_features = shape[0], shape[1]
        self.weight = Parameter(initializer(HeUniform(negative_slope=math.sqrt(5)), shape), name="weight")
        self.bias = (
            Parameter(initializer(Uniform(1 / math.sqrt(fan_in)), (out_channels,)), name="bias") if bias else None
        )
        self.nbits = nbits
        self.alpha = Parameter(Tensor(np.ones((out_channels,), np.float32)), name="alpha")
        self.init_state = _buffer("init_state", 0.0)
        self.act = ActQ(in_features, nbits_a=nbits)

    def _needs_init(self):
        return self.training and float(self.init_state.asnumpy()[0]) == 0.0

    def initialize(self):
        _, qp = signed_range(self.nbits)
        alpha = (2 * ops.abs(self.weight).mean() / math.sqrt(qp)).asnumpy().astype(np.float32)
        self.alpha.set_data(Tensor(np.full(self.alpha.shape, alpha, np.float32)))
        self.init_state.set_data(Tensor(np.ones((1,), np.float32)))

    def quantized_weight(self):
        if self._needs_init():
            self.initialize()
        qn, qp = signed_range(self.nbits)
        g = 1.0 / math.sqrt(self.weight.size * qp)
        alpha = grad_scale(self.alpha, g).reshape((-1,) + (1,) * (self.weight.ndim - 1))
        return round_ste(ops.clamp(self.weight / alpha, qn, qp)) * alpha


def _triple(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v, v)


class Conv3dQ(_WeightQ):
    """Conv3d (torch semantics: symmetric zero padding, bias) with quantised weights and input activations."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, nbits_w=4):
        super().__init__()
        kernel_size, self.stride, pad = _triple(kernel_size), _triple(stride), _triple(padding)
        self.padding = pad
        fan_in = in_channels * int(np.prod(kernel_size))
        self._init_weight_quant((out_channels, in_channels) + kernel_size, fan_in, bias, nbits_w)

    def construct(self, x):
        w_q = self.quantized_weight()
        x = self.act(x)
        return ops.conv3d(x, w_q, self.bias, self.stride, "pad", self.padding)


class LinearQ(_WeightQ):
    """Linear layer (weight (out, in)) with quantised weights and input activations."""

    def __init__(self, in_features, out_features, bias=True, nbits_w=4):
        super().__init__()
        self._init_weight_quant((out_features, in_features), in_features, bias, nbits_w)

    def construct(self, x):
        w_q = self.quantized_weight()
        x = self.act(x)
        out = ops.matmul(x, w_q.T)
        return out + self.bias if self.bias is not None else out


class LearnableBias(nn.Cell):
    """Per-channel learnable shift ``bias`` of shape (1, C, 1, 1), zero at start (Q-SCI query/key shift)."""

    def __init__(self, channels):
        super().__init__()
        self.bias = Parameter(Tensor(np.zeros((1, channels, 1, 1), np.float32)), name="bias")

    def construct(self, x):
        return x + self.bias


def init_quantizers(net, *inputs):
    """Run the upstream first-batch initialisation of every uninitialised quantiser with ``inputs``.

    Leaves ``net`` in training mode; returns the number of quantisers that were initialised.
    """
    pending = [c for _, c in net.cells_and_names() if isinstance(c, (ActQ, _WeightQ))]
    pending = [c for c in pending if float(c.init_state.asnumpy()[0]) == 0.0]
    net.set_train(True)
    net(*inputs)
    return len(pending)

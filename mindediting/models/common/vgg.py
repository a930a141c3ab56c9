"""VGG19 feature extractor under torchvision's parameter names, and the Spikling perceptual loss.

``VGG19Features(end)`` holds ``torchvision.models.vgg19().features[:end]`` with the same child indices, so
``features.<i>.weight/bias`` of torchvision's ImageNet checkpoint (or upstream spikling's ``vgg19-conv.pth``,
which keeps ``features.{0,2,5,7,10,12,14}``) load by name: ``load_weights(VGG19Features(end), path,
mapping=convert_state_dict, end=end)`` (:mod:`mindediting.convert.weights`). Spikling uses ``end=16``: conv1_1 .. conv3_3, each
followed by ReLU, output after the 7th ReLU. Input (N, 3, H, W) float32, no normalisation applied here.
"""
import numpy as np
from mindspore import nn, ops

# torchvision "E" configuration: channel counts, "M" = 2x2 max-pool
VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
SPIKLING_END = 16  # features[:16] = conv1_1 .. relu3_3


def _layers(end):
    layers, channels = [], 3
    for item in VGG19_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(channels, item, 3, 1, pad_mode="pad", padding=1, has_bias=True))
            layers.append(nn.ReLU())
            channels = item
    if not 1 <= end <= len(layers):
        raise ValueError(f"VGG19 features end must be in [1, {len(layers)}], got {end}")
    return layers[:end]


def conv_indices(end=SPIKLING_END):
    """Indices of the convolutions in ``features[:end]``."""
    return [i for i, layer in enumerate(_layers(end)) if isinstance(layer, nn.Conv2d)]


class VGG19Features(nn.Cell):
    """``torchvision vgg19().features[:end]`` (parameters ``features.<i>.weight/bias``), frozen by default."""

    def __init__(self, end=SPIKLING_END, requires_grad=False):
        super().__init__()
        self.features = nn.SequentialCell(_layers(end))
        if not requires_grad:
            for param in self.get_parameters():
                param.requires_grad = False

    def construct(self, x):
        return self.features(x)


class VGGPerceptualLoss(nn.Cell):
    """Upstream ``VGGLoss``: MSE between VGG features of real and fake grey images (repeated to 3 channels).

    Gradients flow only through ``fake``; the real image's features are computed under stop_gradient.
    """

    def __init__(self, features=None):
        super().__init__()
        self.vgg = features if features is not None else VGG19Features()

    def construct(self, real, fake):
        real_f = ops.stop_gradient(self.vgg(ops.tile(real, (1, 3, 1, 1))))
        fake_f = self.vgg(ops.tile(fake, (1, 3, 1, 1)))
        diff = real_f - fake_f
        return (diff * diff).mean()


def convert_state_dict(state, end=SPIKLING_END, **unused):
    """Keep ``features.<i>.weight/bias`` for the convolutions of ``features[:end]``; drop the rest.

    Works for torchvision's full VGG19 checkpoint (deeper features and the classifier are dropped) and for
    upstream's 7-conv ``vgg19-conv.pth``. A missing conv key raises ValueError naming it.
    """
    wanted = [f"features.{i}.{kind}" for i in conv_indices(end) for kind in ("weight", "bias")]
    missing = [k for k in wanted if k not in state]
    if missing:
        raise ValueError(f"VGG19 checkpoint lacks {', '.join(missing)} (torchvision key layout expected)")
    return {k: np.asarray(state[k], dtype=np.float32) for k in wanted}

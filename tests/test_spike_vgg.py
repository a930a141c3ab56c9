"""VGG19 features for the Spikling perceptual loss, loaded from a torchvision-layout .pth by the weight loader.

torchvision's ImageNet weights cannot be downloaded here, so the test writes a .pth with random weights in
torchvision's key layout (torch zip format, written without torch) and checks the features against a
numpy reference of conv3x3 + ReLU + 2x2 max-pool.
"""
import struct
import zipfile

import mindspore as ms
import numpy as np
import pytest

from mindediting.convert.pth_reader import CheckpointError
from mindediting.convert.weights import load_weights, read_weights
from mindediting.models.common.vgg import VGG19Features, VGGPerceptualLoss, conv_indices, convert_state_dict


def _features(path):
    """What the spike trainer builds from ``train.vgg_weights``."""
    return load_weights(VGG19Features(), path, mapping=convert_state_dict)


def write_torch_zip(path, state):
    """A minimal ``torch.save`` of an OrderedDict of float32 tensors (pickle protocol 2 written by hand)."""
    out = [b"\x80\x02", b"ccollections\nOrderedDict\n)R("]  # PROTO 2; OrderedDict(); MARK
    storages = {}

    def text(value):
        data = value.encode()
        return b"X" + struct.pack("<I", len(data)) + data

    def integer(value):
        return b"J" + struct.pack("<i", value)

    def int_tuple(values):
        return b"(" + b"".join(integer(v) for v in values) + b"t"

    for i, (key, array) in enumerate(state.items()):
        array = np.ascontiguousarray(array, dtype="<f4")
        storages[str(i)] = array.tobytes()
        strides = [s // 4 for s in array.strides]
        out.append(text(key))
        out.append(b"ctorch._utils\n_rebuild_tensor_v2\n(")
        out.append(b"(" + text("storage") + b"ctorch\nFloatStorage\n" + text(str(i)) + text("cpu")
                   + integer(array.size) + b"tQ")
        out.append(integer(0) + int_tuple(array.shape) + int_tuple(strides) + b"\x89")
        out.append(b"ccollections\nOrderedDict\n)R" + b"tR")
    out.append(b"u.")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"".join(out))
        for key, raw in storages.items():
            archive.writestr(f"archive/data/{key}", raw)
        archive.writestr("archive/version", "3\n")


def reference_features(x, params, end=16):
    """numpy VGG19 features[:end] on (N, 3, H, W)."""
    layers = []
    for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, 256):
        layers += ["M"] if item == "M" else ["C", "R"]
    for i, kind in enumerate(layers[:end]):
        if kind == "C":
            w, b = params[f"features.{i}.weight"], params[f"features.{i}.bias"]
            pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
            cols = np.stack([pad[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]] for dy in range(3) for dx in range(3)], 2)
            x = np.einsum("nckhw,ock->nohw", cols, w.reshape(w.shape[0], w.shape[1], 9)) + b[None, :, None, None]
        elif kind == "R":
            x = np.maximum(x, 0)
        else:
            n, c, h, w_ = x.shape
            x = x.reshape(n, c, h // 2, 2, w_ // 2, 2).max(axis=(3, 5))
    return x


@pytest.fixture(scope="module")
def vgg_pth(tmp_path_factory):
    rng = np.random.default_rng(0)
    state, channels = {}, 3
    for i in conv_indices(16) + [16]:  # features.16 (conv3_4) is beyond what Spikling uses: must be dropped
        out = {0: 64, 2: 64, 5: 128, 7: 128}.get(i, 256)
        state[f"features.{i}.weight"] = rng.normal(0, np.sqrt(2 / (9 * channels)), (out, channels, 3, 3))
        state[f"features.{i}.bias"] = rng.normal(0, 0.05, out)
        channels = out
    state["classifier.0.weight"] = rng.normal(size=(4, 8))  # stand-in: the real (4096, 25088) is dropped too
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    write_torch_zip(path, state)
    return path, {k: v.astype(np.float32) for k, v in state.items()}


def test_features_match_reference(vgg_pth, tmp_path):
    path, state = vgg_pth
    params = read_weights(path, mapping=convert_state_dict)
    assert sorted(params) == sorted(f"features.{i}.{k}" for i in (0, 2, 5, 7, 10, 12, 14) for k in ("weight", "bias"))
    np.testing.assert_array_equal(params["features.14.weight"], state["features.14.weight"])
    net = _features(path)
    x = np.random.default_rng(1).random((1, 3, 12, 16)).astype(np.float32)
    got = net(ms.Tensor(x)).asnumpy()
    expected = reference_features(x.astype(np.float64), state)
    assert got.shape == expected.shape == (1, 256, 3, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # the converted weights also round-trip through a MindSpore checkpoint
    from mindediting.convert.converter import save_ckpt

    ckpt = save_ckpt(params, tmp_path / "vgg.ckpt")
    np.testing.assert_array_equal(_features(ckpt)(ms.Tensor(x)).asnumpy(), got)


def test_perceptual_loss(vgg_pth):
    path, state = vgg_pth
    loss = VGGPerceptualLoss(_features(path))
    rng = np.random.default_rng(2)
    real = rng.random((2, 1, 8, 8)).astype(np.float32) * 2 - 1
    fake = rng.random((2, 1, 8, 8)).astype(np.float32) * 2 - 1
    got = float(loss(ms.Tensor(real), ms.Tensor(fake)).asnumpy())
    ref = np.mean((reference_features(np.repeat(real, 3, 1).astype(np.float64), state)
                   - reference_features(np.repeat(fake, 3, 1).astype(np.float64), state)) ** 2)
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    assert float(loss(ms.Tensor(real), ms.Tensor(real)).asnumpy()) == 0.0
    # gradient flows to the fake image only; VGG weights are frozen
    grads = ms.grad(lambda r, f: loss(r, f), grad_position=(0, 1))(ms.Tensor(real), ms.Tensor(fake))
    assert np.abs(grads[0].asnumpy()).max() == 0 and np.abs(grads[1].asnumpy()).max() > 0
    assert not loss.trainable_params()


def test_missing_vgg_key_is_reported(tmp_path):
    path = tmp_path / "partial.pth"
    write_torch_zip(path, {"features.0.weight": np.zeros((64, 3, 3, 3)), "features.0.bias": np.zeros(64)})
    with pytest.raises(CheckpointError, match=r"partial.pth: VGG19 checkpoint lacks features.2.weight, features.2.bias"):
        read_weights(path, mapping=convert_state_dict)


def test_writer_is_read_by_pth_reader(tmp_path):
    from mindediting.convert.pth_reader import load_pth

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_torch_zip(tmp_path / "t.pth", {"a": a})
    loaded = load_pth(tmp_path / "t.pth")
    assert list(loaded) == ["a"]
    np.testing.assert_array_equal(loaded["a"], a)

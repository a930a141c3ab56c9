"""BasicVSR and its SPyNet against upstream mmagic outputs, through the real converter."""
import numpy as np
import mindspore as ms
import pytest

from mindediting.convert.converter import load_and_convert, save_ckpt
from mindediting import registry
from mindediting.models import build_model
from mindediting.utils.resolve import resolve
from tests.golden import golden_dir, load, load_config


def _convert_and_load(name, folder, tmp_path, ctor):
    params = load_and_convert(f"{folder}/weights.pth", resolve(registry.get(name).weights), **ctor)
    ckpt = save_ckpt(params, tmp_path / f"{name}.ckpt")
    net = build_model(name, **ctor)
    not_loaded, unused = ms.load_param_into_net(net, ms.load_checkpoint(str(ckpt)), strict_load=True)
    assert not not_loaded and not unused
    return net


def test_spynet_matches_upstream(tmp_path):
    folder = golden_dir("spynet", need=("weights.pth",))
    cfg = load_config(folder)
    net = _convert_and_load("spynet", folder, tmp_path, {})
    flow = net(ms.Tensor(load(folder, "ref.npy")), ms.Tensor(load(folder, "supp.npy"))).asnumpy()
    np.testing.assert_allclose(flow, load(folder, "output.npy"), rtol=0, atol=cfg["tolerance"]["atol"])


@pytest.mark.slow
def test_basicvsr_small_matches_upstream(tmp_path):
    folder = golden_dir("basicvsr_small", need=("weights.pth",))
    cfg = load_config(folder)
    ctor = {k: v for k, v in cfg["constructor"].items() if v is not None}
    net = _convert_and_load("basicvsr", folder, tmp_path, ctor)
    out = net(ms.Tensor(load(folder, "input.npy"))).asnumpy()
    assert out.shape == (1, 5, 3, 256, 256)
    np.testing.assert_allclose(out, load(folder, "output.npy"), rtol=0, atol=cfg["tolerance"]["atol"])
    # hybrid mode: the same network with its per-frame stages graph-compiled gives the upstream output too
    net.jit_stages()
    assert net.detect_mirror is False
    hybrid = net(ms.Tensor(load(folder, "input.npy"))).asnumpy()
    np.testing.assert_allclose(hybrid, load(folder, "output.npy"), rtol=0, atol=cfg["tolerance"]["atol"])


def test_hybrid_mode_is_a_config_choice(tmp_path):
    import yaml

    from mindediting.config import ConfigError, load_config as load_yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"name": "basicvsr", "args": {}}, "system": {"mode": "hybrid"}}))
    assert load_yaml(str(path))["system"]["mode"] == "hybrid"
    with pytest.raises(ConfigError, match="system.mode"):
        load_yaml(str(path), ["system.mode=jit"])

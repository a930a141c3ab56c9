"""Every official VRT task config (main_test_vrt.py tasks 001-009) validates and builds the network."""
import glob
import os

import pytest

from mindediting.config import load_config
from mindediting.models import build_model

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# the nine task configs (the _gpu / _ascend files are per-device variants of 001's training recipe)
CONFIGS = sorted(p for p in glob.glob(os.path.join(REPO, "configs", "vrt", "0*.yaml"))
                 if not p.endswith(("_gpu.yaml", "_ascend.yaml")))
# parameter counts in millions: 001 as the VRT paper table gives it (30.7 M). The table's 35.6 M for
# 002-004 is not what the upstream constructor arguments give (35.1 M for 002 with pa_frames 6, 32.6 M
# for 003/004 with pa_frames 4); these pin our counts so a wiring change shows up.
PAPER_PARAMS = {"001": 30.7, "002": 35.1, "003": 32.6, "004": 32.6}


def test_all_nine_tasks_present():
    names = [os.path.basename(p)[:3] for p in CONFIGS]
    assert names == [f"{i:03d}" for i in range(1, 10)]


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.basename(p)[:-5] for p in CONFIGS])
def test_vrt_config_builds(path):
    cfg = load_config(path)
    args = cfg["model"]["args"]
    net = build_model("vrt", **args)
    millions = sum(p.size for p in net.get_parameters()) / 1e6
    task = os.path.basename(path)[:3]
    if task in PAPER_PARAMS:
        assert round(millions, 1) == PAPER_PARAMS[task]
    tile, overlap = cfg["eval"]["tile"], cfg["eval"]["tile_overlap"]
    assert len(tile) == 3 and len(overlap) == 3
    assert tile[1] % args["window_size"][-1] == 0
    assert (tile[1] == 0 or tile[1] % 8 == 0) and hasattr(net, "spynet") == bool(args["pa_frames"])
    assert cfg["data"]["scale"] == args["upscale"]

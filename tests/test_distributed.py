"""Launch scripts: argument checks, and a real 2-worker msrun data-parallel run on CPU."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tests.golden import REPO
from tests.test_train import tiny_config

SCRIPTS = os.path.join(REPO, "scripts")


def _bash(*args, env=None):
    return subprocess.run(["bash", *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("script", ["run_distribute_train_gpu.sh", "run_distribute_train_ascend.sh",
                                    "run_standalone_train.sh", "run_eval.sh"])
def test_usage_without_arguments(script):
    res = _bash(os.path.join(SCRIPTS, script))
    assert res.returncode == 1
    assert f"usage: bash scripts/{script}" in res.stdout


def test_argument_errors(tmp_path):
    gpu = os.path.join(SCRIPTS, "run_distribute_train_gpu.sh")
    res = _bash(gpu, "two", "configs/basicvsr/basicvsr_reds_train.yaml")
    assert res.returncode == 1 and "DEVICE_NUM must be a positive integer, got 'two'" in res.stderr
    res = _bash(gpu, "2", str(tmp_path / "none.yaml"))
    assert res.returncode == 1 and "config file not found" in res.stderr
    res = _bash(os.path.join(SCRIPTS, "run_distribute_train_ascend.sh"), "0", "x.yaml")
    assert res.returncode == 1 and "got '0'" in res.stderr
    res = _bash(os.path.join(SCRIPTS, "run_distribute_train_ascend.sh"), "2",
                os.path.join(REPO, "configs/basicvsr/basicvsr_reds_train.yaml"), str(tmp_path / "r"),
                str(tmp_path / "missing_rank_table.json"))
    assert res.returncode == 1 and "rank table not found" in res.stderr
    res = _bash(os.path.join(SCRIPTS, "run_eval.sh"), os.path.join(REPO, "configs/basicvsr/basicvsr_reds4.yaml"),
                str(tmp_path / "no.ckpt"))
    assert res.returncode == 1 and "checkpoint not found" in res.stderr
    res = _bash(os.path.join(SCRIPTS, "run_standalone_train.sh"),
                os.path.join(REPO, "configs/basicvsr/basicvsr_reds_train.yaml"), "gpu")
    assert res.returncode == 1 and "DEVICE_TARGET must be CPU, GPU or Ascend" in res.stderr


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _records(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.slow
def test_msrun_two_cpu_workers_match_one_worker_with_double_batch(tmp_path):
    from mindediting.engine.video_trainer import VideoTrainer

    cfg = tiny_config(str(tmp_path / "data"), total_iters=2, fix_iter=1, val_interval=0, save_interval=2,
                      keep_last=1)
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "dp"
    env = dict(os.environ, DEVICE_TARGET="CPU", MASTER_PORT=str(_free_port()), PYTHON=sys.executable,
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run(["bash", os.path.join(SCRIPTS, "run_distribute_train_gpu.sh"), "2", str(cfg_path), str(run)],
                         capture_output=True, text=True, timeout=900, env=env, cwd=str(tmp_path))
    logs = "".join(open(os.path.join(run, "logs", n), errors="replace").read()[-2000:]
                   for n in sorted(os.listdir(run / "logs"))) if (run / "logs").is_dir() else ""
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:] + logs
    ranks = [_records(run / f"log_rank{r}.jsonl") for r in (0, 1)]
    steps = [[r for r in recs if "loss" in r] for recs in ranks]
    assert [len(s) for s in steps] == [2, 2]
    # identical parameters on both ranks after the all-reduced updates
    assert ranks[0][-1]["final_param_sha1"] == ranks[1][-1]["final_param_sha1"]
    # each rank saw different samples
    for a, b in zip(*steps):
        assert not set(a["indices"]) & set(b["indices"])
    assert sorted(os.listdir(run / "checkpoints")) == ["iter_00000002.ckpt"]  # rank 0 writes checkpoints

    # one worker with the doubled batch: same samples, loss = mean of the ranks' losses
    cfg["train"]["batch_size"] = 2
    single = VideoTrainer(cfg, run_dir=str(tmp_path / "single"), progress=False)
    losses = single.train()
    ref = [r for r in _records(tmp_path / "single" / "log_rank0.jsonl") if "loss" in r]
    for a, b, s in zip(*steps, ref):
        assert sorted(a["indices"] + b["indices"]) == sorted(s["indices"])
    np.testing.assert_allclose([(a["loss"] + b["loss"]) / 2 for a, b in zip(*steps)], losses, rtol=0, atol=2e-6)

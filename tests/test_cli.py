"""The shared ending of the command-line scripts: one-line ``error: ...`` on stderr and exit code 2."""
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
    with pytest.raises(FileNotFoundError):  # narrower set chosen by a script
        run_cli(_raise(FileNotFoundError("f")), errors=(ConfigError,))
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

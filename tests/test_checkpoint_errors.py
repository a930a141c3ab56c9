"""Missing / unreadable checkpoint files: one shared reader, each caller keeps its own one-line message."""
import pytest

from mindediting.convert.pth_reader import CheckpointError
from mindediting.convert.weights import load_weights, read_ckpt
from mindediting.engine.train_state import ResumeError, load_train_state


def _garbage(tmp_path):
    path = tmp_path / "junk.ckpt"
    path.write_bytes(b"this is not a protobuf checkpoint \x00\xff" * 8)
    return path


def test_read_ckpt_messages(tmp_path):
    with pytest.raises(CheckpointError, match=r"none\.ckpt: checkpoint file not found$"):
        read_ckpt(tmp_path / "none.ckpt")
    with pytest.raises(CheckpointError) as err:
        read_ckpt(_garbage(tmp_path))
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'junk.ckpt'}: cannot read MindSpore checkpoint (")
    assert len(message.splitlines()) == 1
    with pytest.raises(KeyError, match="w.ckpt: weights not found"):
        read_ckpt(tmp_path / "w.ckpt", KeyError, what="weights")


def test_strict_load_and_resume_errors(tmp_path):
    # the net is never touched: both fail while reading the file
    with pytest.raises(CheckpointError, match=r"none\.ckpt: weights file not found"):
        load_weights(None, tmp_path / "none.ckpt")
    with pytest.raises(CheckpointError, match=r"none\.pth: SpyNet weights not found"):
        load_weights(None, tmp_path / "none.pth", what="SpyNet weights")
    with pytest.raises(CheckpointError, match=r"junk\.ckpt: cannot read MindSpore checkpoint \("):
        load_weights(None, _garbage(tmp_path))
    with pytest.raises(ResumeError, match=r"none\.ckpt: checkpoint to resume from not found"):
        load_train_state(tmp_path / "none.ckpt", None, {})
    with pytest.raises(ResumeError, match=r"junk\.ckpt: cannot read checkpoint \("):
        load_train_state(_garbage(tmp_path), None, {})

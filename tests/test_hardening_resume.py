"""Resume and checkpoint storage under faults (issue 16): a torn log line, a damaged newest checkpoint, a save
that fails half-way (full disk), fsync of what is renamed into place, and a finished run resumed twice."""
import errno
import json
import logging
import os
import stat

import pytest

from tests.test_train import tiny_config


def _trainer(tmp_path, run="run", **train):
    from mindediting.engine.video_trainer import VideoTrainer

    cfg = tiny_config(str(tmp_path / "data"), **train)
    return VideoTrainer(cfg, run_dir=str(tmp_path / run), progress=False)


def _lines(run_dir):
    with open(os.path.join(run_dir, "log_rank0.jsonl"), encoding="utf-8") as handle:
        return handle.read().splitlines()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 4-iteration run (checkpoints at 2 and 4, both kept) and its log, made once for the tests below."""
    tmp_path = tmp_path_factory.mktemp("finished")
    trainer = _trainer(tmp_path, total_iters=4, keep_last=0)
    losses = trainer.train()
    return tmp_path, losses


def _copy_run(finished_run, tmp_path):
    import shutil

    source, _ = finished_run
    shutil.copytree(source / "run", tmp_path / "run")
    for path in (tmp_path / "run" / "checkpoints").iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # the tests damage them (MindSpore alone: 0400)
    return tmp_path / "run"


def test_resuming_a_finished_run_keeps_one_final_line(finished_run, tmp_path):
    run_dir = _copy_run(finished_run, tmp_path)
    before = _lines(run_dir)
    assert sum("final_param_sha1" in line for line in before) == 1
    for _ in range(2):
        assert _trainer(finished_run[0], run=str(run_dir), total_iters=4, keep_last=0).train(resume="auto") == []
    assert _lines(run_dir) == before


def test_torn_last_log_line_is_dropped_with_a_warning_naming_the_file(finished_run, tmp_path, caplog):
    run_dir = _copy_run(finished_run, tmp_path)
    os.remove(run_dir / "checkpoints" / "iter_00000004.ckpt")
    log_path = run_dir / "log_rank0.jsonl"
    complete = _lines(run_dir)
    # the disk filled while iteration 3 was being logged: the line stops after 47 characters
    torn = [line for line in complete if json.loads(line).get("iter", 0) <= 2] + [complete[2][:47]]
    log_path.write_text("\n".join(torn), encoding="utf-8")
    trainer = _trainer(finished_run[0], run=str(run_dir), total_iters=4, keep_last=0)
    with caplog.at_level(logging.WARNING):
        trainer.train(resume="auto")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "torn" in r.getMessage()]
    assert len(warnings) == 1 and str(log_path) in warnings[0]
    resumed = [json.loads(line) for line in _lines(run_dir)]
    assert [e["iter"] for e in resumed if "loss" in e] == [1, 2, 3, 4]
    assert sum("final_param_sha1" in e for e in resumed) == 1


def test_damaged_log_line_before_the_end_is_an_error_naming_file_and_line(finished_run, tmp_path):
    from mindediting.engine.train_state import ResumeError

    run_dir = _copy_run(finished_run, tmp_path)
    lines = _lines(run_dir)
    lines[1] = lines[1][:20]
    (run_dir / "log_rank0.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ResumeError, match=r"log_rank0\.jsonl: line 2 is not a log entry"):
        _trainer(finished_run[0], run=str(run_dir), total_iters=4, keep_last=0).resume("auto")


def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(finished_run, tmp_path, caplog):
    from mindediting.engine.train_state import UnreadableCheckpoint

    run_dir = _copy_run(finished_run, tmp_path)
    newest = run_dir / "checkpoints" / "iter_00000004.ckpt"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])  # truncated, as a disk error or a bad copy leaves it
    trainer = _trainer(finished_run[0], run=str(run_dir), total_iters=4, keep_last=0)
    with caplog.at_level(logging.WARNING):
        path = trainer.resume("auto")
    assert path.endswith("iter_00000002.ckpt") and trainer.step == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(newest) in w and "unreadable" in w for w in warnings)
    # naming the damaged file explicitly is still an error
    with pytest.raises(UnreadableCheckpoint, match="iter_00000004.ckpt: cannot read checkpoint"):
        _trainer(finished_run[0], run=str(run_dir), total_iters=4).resume(str(newest))
    # the resumed run repeats the unbroken run's losses for iterations 3 and 4 and replaces the damaged file
    assert trainer.train(resume="auto") == finished_run[1][-2:]
    assert trainer.resume("auto").endswith("iter_00000004.ckpt")


def test_no_readable_checkpoint_is_an_error_not_a_fresh_start(finished_run, tmp_path):
    from mindediting.engine.train_state import ResumeError

    run_dir = _copy_run(finished_run, tmp_path)
    for path in (run_dir / "checkpoints").iterdir():
        path.write_bytes(b"\x00" * 64)
    with pytest.raises(ResumeError, match="none of the 2 checkpoints can be read; remove .*checkpoints"):
        _trainer(finished_run[0], run=str(run_dir), total_iters=4).resume("auto")


@pytest.mark.parametrize("where", ["mindspore_write", "rename"])
def test_failed_save_leaves_no_temporary_files(tmp_path, monkeypatch, where):
    """A full disk during ``save_checkpoint`` (MindSpore has written part of its ``*.tmp``) or at the rename."""
    import mindspore as ms
    from mindspore.train import serialization

    trainer = _trainer(tmp_path, total_iters=2)
    folder = tmp_path / "run" / "checkpoints"
    if where == "mindspore_write":
        for name in ("_write_parameter_data", "_write_parameter_bytes_data"):
            def full_disk(*args, _real=getattr(serialization, name), **kwargs):
                _real(*args, **kwargs)  # some bytes reach the file first
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(serialization, name, full_disk)
    else:
        def failing_replace(src, dst):
            raise OSError(errno.ENOSPC, "No space left on device", src)

        monkeypatch.setattr(os, "replace", failing_replace)
    seen = []
    real_save = ms.save_checkpoint

    def spy(entries, name, *args, **kwargs):
        seen.append(name)
        return real_save(entries, name, *args, **kwargs)

    monkeypatch.setattr(ms, "save_checkpoint", spy)
    with pytest.raises(OSError, match="No space left"):
        trainer.save()
    assert seen  # the failure happened inside the save, after MindSpore had created its files
    assert os.listdir(folder) == []


def test_atomic_commit_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    from mindediting.utils import atomic

    synced = []
    real_fsync = os.fsync

    def spy(handle):
        synced.append(os.path.realpath(f"/proc/self/fd/{handle}"))
        real_fsync(handle)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    order = []
    real_replace = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (order.append(len(synced)), real_replace(a, b)))
    atomic.write_bytes_atomic(tmp_path / "marker", b"1\n")
    assert len(synced) == 2 and order == [1]  # the data before the rename, the folder after it
    assert os.path.basename(synced[0]).startswith(".marker.") and synced[1] == str(tmp_path)

"""TrainLoader prefetching: worker processes build the next batches during the step; same batches, same order,
same resume position as the synchronous loader."""
import time

import numpy as np
import pytest

from mindediting.data.transforms import TrainLoader, sample_rng


class NoiseSet:
    """Picklable toy dataset: sample ``index`` of ``epoch`` is random numbers of its own RNG (as the real sets);
    ``delay`` seconds per sample stand for decoding."""

    def __init__(self, size=10, seed=7, delay=0.0):
        self.size, self.seed, self.delay = size, seed, delay

    def __len__(self):
        return self.size

    def get(self, index, epoch):
        if self.delay:
            time.sleep(self.delay)
        rng = sample_rng(self.seed, epoch, index)
        return rng.random((2, 3)).astype(np.float32), np.array([index, epoch])


def _take(loader, count):
    return [next(loader) for _ in range(count)]


def _same(batches_a, batches_b):
    assert len(batches_a) == len(batches_b)
    for a, b in zip(batches_a, batches_b):
        assert a[-1] == b[-1]
        for x, y in zip(a[:-1], b[:-1]):
            np.testing.assert_array_equal(x, y)


def test_workers_and_prefetch_give_the_synchronous_batches_and_resume_exactly():
    sync = TrainLoader(NoiseSet(), 2, num_shards=2, shard_id=1)
    expected = _take(sync, 7)  # 2 batches per epoch on this shard: several epochs
    loader = TrainLoader(NoiseSet(), 2, num_shards=2, shard_id=1, num_workers=2, prefetch=3)
    try:
        first = _take(loader, 3)
        state = loader.state()  # batches built ahead are not part of the position
        assert state == {"epoch": 1, "batch": 1}
        rest = _take(loader, 4)
        _same(first + rest, expected)
        loader.load_state(state)  # back to a position behind the prefetched batches
        _same(_take(loader, 4), expected[3:])
    finally:
        loader.close()
    fresh = TrainLoader(NoiseSet(), 2, num_shards=2, shard_id=1, num_workers=1, prefetch=1)
    try:
        fresh.load_state(state)
        _same(_take(fresh, 4), expected[3:])
    finally:
        fresh.close()
    with pytest.raises(ValueError, match="prefetch must be >= 1 batch, got 0"):
        TrainLoader(NoiseSet(), 2, prefetch=0)


def test_loading_overlaps_the_step():
    """A batch takes 0.2 s to build and the "step" 0.2 s: with a worker the iteration takes ~max, not the sum."""
    load_s = step_s = 0.2
    loader = TrainLoader(NoiseSet(size=40, delay=load_s), 1, num_workers=1, prefetch=2)
    try:
        next(loader)  # pool start-up
        time.sleep(2 * load_s)  # the queue fills as it would during a first (compiling) step
        tic, count = time.perf_counter(), 8
        for _ in range(count):
            next(loader)
            time.sleep(step_s)
        per_iter = (time.perf_counter() - tic) / count
    finally:
        loader.close()
    assert per_iter < 1.3 * max(load_s, step_s), per_iter  # sequential would be load_s + step_s = 2x


@pytest.mark.slow
def test_trainer_with_loader_workers_resumes_to_the_unbroken_losses(tmp_path):
    from mindediting.engine.video_trainer import VideoTrainer
    from tests.test_train import _log, tiny_config

    cfg = tiny_config(str(tmp_path / "data"), total_iters=4, val_interval=0, save_interval=2, num_workers=2,
                      prefetch=2)
    unbroken = VideoTrainer(cfg, run_dir=str(tmp_path / "a"), progress=False).train()
    VideoTrainer(cfg, run_dir=str(tmp_path / "b"), progress=False).train(stop_at=3)
    VideoTrainer(cfg, run_dir=str(tmp_path / "b"), progress=False).train(resume="auto")
    rows_a = [r for r in _log(str(tmp_path / "a")) if "loss" in r]
    rows_b = [r for r in _log(str(tmp_path / "b")) if "loss" in r]
    assert [r["indices"] for r in rows_b] == [r["indices"] for r in rows_a]
    assert [r["loss"] for r in rows_b] == [r["loss"] for r in rows_a] == unbroken  # bit-identical
    cfg["train"]["num_workers"] = 0
    sync = VideoTrainer(cfg, run_dir=str(tmp_path / "c"), progress=False).train()
    assert sync == unbroken  # the number of workers does not change what is trained on

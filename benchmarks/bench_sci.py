"""Video SCI benchmark: reconstruction time per measurement and memory, GAP-TV vs MetaSCI.

Every case runs in its own subprocess (so peak memory is that case's alone) on a seeded random
cr=8 scene and binary mask at each size. Cases:

* ``gap_tv``        -- ours (numpy + scikit-image TV, float64 iterates as the goldens), ``--iters`` iterations;
* ``gap_tv:float32`` -- ours in float32;
* ``gap_tv_torch``  -- the toolbox's way: A/At on torch tensors, scikit-image TV in between (needs torch;
  with scikit-image >= 0.19 its iterates stay float32);
* ``metasci``       -- our MindSpore MetaSCI in PyNative mode and in graph mode (``GRAPH_MODE``);
* ``metasci_torch`` -- the same architecture written in torch with the same weights (needs torch).

torch is never needed by the package: pass ``--torch_path DIR`` (a folder where torch was installed with
``pip install --target DIR torch``) to add the two torch cases. Time = median over ``--repeats`` runs after
one warm-up run (graph mode: the warm-up includes the compilation, reported separately). Memory = peak
RSS of the process minus its RSS right before the first run (MiB).

    python benchmarks/bench_sci.py --sizes 256 512 --out benchmarks/results/bench_sci.md
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO)

CASES = ("gap_tv", "gap_tv:float32", "gap_tv_torch", "metasci:pynative", "metasci:graph", "metasci_torch")


def rss_mib():
    with open("/proc/self/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_inputs(size, seed=0):
    import numpy as np

    rng = np.random.RandomState(seed)
    mask = rng.randint(0, 2, (8, size, size)).astype(np.float32)
    frames = rng.rand(8, size, size).astype(np.float32)
    meas = (mask * frames).sum(0)
    mask_s = mask.sum(0)
    mask_s[mask_s == 0] = 1
    return meas, mask, mask_s


def metasci_weights(seed=1):
    import numpy as np

    from mindediting.models import build_model

    rng = np.random.RandomState(seed)
    net = build_model("metasci")
    return {p.name: (rng.randn(*p.shape) * 0.02).astype(np.float32) for p in net.get_parameters()}


# ------------------------------------------------------------------------------------- workers
def worker_gap_tv(size, iters, dtype="float64"):
    from mindediting.models.sci_classic import GAPTV

    meas, mask, mask_s = make_inputs(size)
    solver = GAPTV(iter_list=[iters], dtype=dtype)
    return lambda: solver(meas[None, None], mask[None], mask_s[None, None])


def worker_gap_tv_torch(size, iters):
    """The toolbox driver's arithmetic: torch tensors for A/At, numpy/scikit-image for TV."""
    import numpy as np
    import torch
    from skimage.restoration import denoise_tv_chambolle

    meas, mask, mask_s = (torch.from_numpy(a) for a in make_inputs(size))
    y, phi, phi_s = meas[None, None], mask[None], mask_s[None, None]

    def run():
        x = y * phi
        y1 = torch.zeros_like(y)
        for _ in range(iters):
            yb = (x * phi).sum(1, keepdim=True)
            y1 = y1 + (y - yb)
            x = x + (y1 - yb) / phi_s * phi
            stack = x.reshape(-1, size, size).numpy().transpose(1, 2, 0)
            den = denoise_tv_chambolle(stack, weight=0.1, max_num_iter=5, channel_axis=2)
            x = torch.from_numpy(np.ascontiguousarray(den.transpose(2, 0, 1))).reshape(1, 8, size, size)
        return x

    return run


def worker_metasci(size, mode):
    import mindspore as ms

    if mode == "graph":
        ms.set_context(mode=ms.GRAPH_MODE)
    from mindediting.models import build_model

    net = build_model("metasci")
    ms.load_param_into_net(net, {k: ms.Parameter(v, name=k) for k, v in metasci_weights().items()})
    meas, mask, mask_s = make_inputs(size)
    args = [ms.Tensor(meas[None, None]), ms.Tensor(mask[None]), ms.Tensor(mask_s[None, None])]
    return lambda: net(*args).asnumpy()


def worker_metasci_torch(size):
    """The toolbox MetaSCI architecture in torch (written here for the comparison only)."""
    import torch
    from torch import nn

    def lrelu():
        return nn.LeakyReLU()

    class Block(nn.Module):
        def __init__(self, ch):
            super().__init__()
            self.conv1 = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), lrelu(), nn.Conv2d(ch, ch, 1), lrelu(),
                                       nn.Conv2d(ch, ch, 3, 1, 1), lrelu(), nn.Conv2d(ch, ch, 3, 1, 1))
            self.conv2 = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), lrelu(), nn.Conv2d(ch, ch, 1), lrelu())

        def forward(self, x):
            return self.conv2(x + self.conv1(x))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Sequential(nn.Conv2d(8, 32, 5, 1, 2), lrelu(), nn.Conv2d(32, 64, 3, 1, 1), lrelu(),
                                       nn.Conv2d(64, 64, 1), lrelu(), nn.Conv2d(64, 128, 3, 2, 1), lrelu())
            self.layers = nn.ModuleList([Block(128) for _ in range(3)])
            self.conv2 = nn.Sequential(nn.ConvTranspose2d(128, 64, 3, 2, 1, output_padding=1), lrelu(),
                                       nn.Conv2d(64, 32, 3, 1, 1), lrelu(), nn.Conv2d(32, 16, 1), lrelu(),
                                       nn.Conv2d(16, 8, 3, 1, 1))

        def forward(self, meas, mask, mask_s):
            y_bar = meas / mask_s
            out = self.conv1(y_bar + mask * y_bar)
            for layer in self.layers:
                out = layer(out)
            return self.conv2(out)

    user_isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    weights = metasci_weights()  # imports mindediting, which caps oneDNN at AVX2 for MindSpore
    if user_isa is None:
        os.environ.pop("ONEDNN_MAX_CPU_ISA", None)  # torch keeps its own oneDNN choice
    net = Net().eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    meas, mask, mask_s = (torch.from_numpy(a) for a in make_inputs(size))
    args = (meas[None, None], mask[None], mask_s[None, None])

    def run():
        with torch.no_grad():
            return net(*args).numpy()

    return run


def run_worker(case, size, iters, repeats):
    if case.startswith("gap_tv:") or case == "gap_tv":
        fn = worker_gap_tv(size, iters, *case.split(":")[1:])
    elif case == "gap_tv_torch":
        fn = worker_gap_tv_torch(size, iters)
    elif case.startswith("metasci:"):
        fn = worker_metasci(size, case.split(":")[1])
    elif case == "metasci_torch":
        fn = worker_metasci_torch(size)
    else:
        raise SystemExit(f"unknown case {case}")
    base = rss_mib()
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": case, "size": size, "first_s": first, "median_s": statistics.median(times),
            "min_s": min(times), "mem_mib": max(peak - base, 0.0)}


# ---------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="square frame sizes")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--iters", type=int, default=40, help="GAP-TV iterations (toolbox: 40)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--torch_path", help="folder holding torch (pip install --target); enables *_torch cases")
    parser.add_argument("--out", help="write the markdown table here (atomically)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        case, size = args.worker.split("@")
        print("RESULT " + json.dumps(run_worker(case, int(size), args.iters, args.repeats)))
        return 0
    from tqdm import tqdm

    jobs = [(c, s) for s in args.sizes for c in args.cases if args.torch_path or "torch" not in c]
    rows = []
    for case, size in tqdm(jobs, desc="cases"):
        env = dict(os.environ)
        if "torch" in case:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.torch_path, env.get("PYTHONPATH")]))
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"{case}@{size}",
               "--iters", str(args.iters), "--repeats", str(args.repeats)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            rows.append({"case": case, "size": size, "error": tail})
            continue
        rows.append(json.loads(line[7:]))
    load = os.getloadavg()[0]
    lines = [
        f"| case | size | s / measurement (median of {args.repeats}) | min | first call | peak memory (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['size']}² | failed: {r['error']} | | | |")
        else:
            lines.append(f"| {r['case']} | {r['size']}² | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['first_s']:.3f} "
                         f"| {r['mem_mib']:.0f} |")
    lines.append("")
    lines.append(f"GAP-TV: {args.iters} iterations. CPU cores: {os.cpu_count()}, load average at the end: {load:.1f}.")
    table = "\n".join(lines)
    print(table)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = f"{args.out}.{os.getpid()}.partial"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(table + "\n")
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

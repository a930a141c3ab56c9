"""Video SCI benchmark: reconstruction time per measurement and memory, GAP-TV vs MetaSCI, ours vs upstream.

Every case runs in its own subprocess (its peak memory is its own) on a seeded random cr=8 scene and binary
mask at each size. Cases:

* ``gap_tv``          -- ours, the default (float64 iterates as the goldens, :func:`chambolle_frame` for the
  TV step, frames on a thread pool), ``--iters`` iterations;
* ``gap_tv:serial``   -- the same on one thread;
* ``gap_tv:skimage``  -- the same with scikit-image's ``denoise_tv_chambolle`` per frame (the previous
  implementation; same numbers, more temporaries);
* ``gap_tv:float32``  -- ours with ``dtype: float32``;
* ``gap_tv_torch``    -- upstream: ``cacti/models/gap_denoise.py::GAP_denoise`` with the ``TV`` denoiser of
  ``cacti/models/tv.py`` (torch A/At, scikit-image TV over an ``(H, W, frames)`` stack), driven as in
  ``tools/test_iterative.py`` (``y1 = 0``, ``x = At(y)``, ``GAP_denoise`` per iteration);
* ``metasci:pynative`` / ``metasci:graph`` -- our MindSpore MetaSCI (PyNative / ``GRAPH_MODE``);
* ``metasci:hybrid``  -- PyNative context with the whole forward graph-compiled (``MetaSCI.jit_stages``, the
  ``system.mode: hybrid`` of infer.py/eval.py);
* ``metasci_torch``   -- upstream ``cacti/models/metasci.py::MetaSCI``.

Upstream cases need torch (``--torch_path DIR``: a folder with ``pip install --target DIR torch einops``;
the package never imports torch) and ``--cacti_root``: the cacti toolbox extracted OUTSIDE this repo, e.g.
``git --git-dir <mirror> archive HEAD cacti | tar -x -C /tmp/cacti_src``. Upstream files are imported by
path; only the glue is replaced: the ``MODELS`` registry (a decorator that returns the class), and
``cacti.utils.utils`` (a module with many unrelated imports) of which only ``A``/``At`` are compiled from the
file; the Bayer demosaic import of ``gap_denoise.py`` (colour path only) is a stub.

Weights: one seeded set written in the upstream key layout as ``weights.pth`` without torch
(``benchmarks/torch_format.save_pth``). Ours: ``load_and_convert(pth, metasci.convert_state_dict)`` ->
``save_ckpt`` -> strict ``load_param_into_net``; upstream: ``load_state_dict(strict=True)``. Upstream cases run first; every other
case compares its first output with the upstream one (max abs diff in the table) before it is timed.

Time = median over ``--repeats`` runs after one warm-up run (graph mode: the warm-up includes compilation,
reported as "first call"). Memory = peak RSS of the timed runs above the RSS right before the first run
(kernel high-water mark reset via ``/proc/self/clear_refs``; fallback ``ru_maxrss``), MiB.

    flock /tmp/bench.lock python benchmarks/bench_sci.py --sizes 256 512 --torch_path /tmp/torchenv \\
        --cacti_root /tmp/cacti_src --out /tmp/bench_sci.md
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types

USER_ISA = os.environ.get("ONEDNN_MAX_CPU_ISA")  # read before mindediting (which sets it for MindSpore) is imported
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO)
from mindediting.utils.peak_rss import reset_peak, status_mib  # noqa: E402
from benchmarks.upstream_glue import (  # noqa: E402  (after the sys.path line)
    Registry, compile_functions, load_file_module, load_torch_state, set_torch_isa, stub_module, torch_env)

CASES = ("gap_tv_torch", "gap_tv", "gap_tv:serial", "gap_tv:skimage", "gap_tv:float32",
         "metasci_torch", "metasci:pynative", "metasci:graph", "metasci:hybrid")


def make_inputs(size, seed=0):
    import numpy as np

    rng = np.random.RandomState(seed)
    mask = rng.randint(0, 2, (8, size, size)).astype(np.float32)
    frames = rng.rand(8, size, size).astype(np.float32)
    meas = (mask * frames).sum(0)
    mask_s = mask.sum(0)
    mask_s[mask_s == 0] = 1
    return meas[None, None], mask[None], mask_s[None, None]


def write_metasci_weights(path, seed=1):
    """Seeded weights in the upstream key layout (the toolbox's keys are our Cell's parameter names)."""
    import numpy as np

    from benchmarks.torch_format import save_pth
    from mindediting.models import build_model

    rng = np.random.RandomState(seed)
    state = {}
    for p in build_model("metasci").get_parameters():
        shape = tuple(p.shape)
        scale = 1.0 / np.sqrt(np.prod(shape[1:])) if len(shape) > 1 else 0.01
        state[p.name] = (rng.randn(*shape) * scale).astype(np.float32)
    save_pth(state, path)
    return path


# ------------------------------------------------------------------------------ upstream import
def upstream_cacti(cacti_root):
    """Upstream ``MetaSCI``, ``TV`` and ``GAP_denoise`` imported from a cacti checkout (stand-ins for glue only)."""
    import torch

    def demosaic_stub(*args, **kwargs):
        raise NotImplementedError("bench_sci stand-in: the Bayer (colour) path of GAP_denoise is not benchmarked")

    what = "bench_sci: --cacti_root"
    src = os.path.join(cacti_root, "cacti")
    # cacti.utils.utils imports many unrelated packages: compile only A/At from it
    a_at = compile_functions(os.path.join(src, "utils", "utils.py"), ("A", "At"), {"torch": torch}, what)
    stub_module("cacti")
    stub_module("cacti.utils")
    stub_module("cacti.utils.utils", **a_at)
    stub_module("cacti.utils.demosaic", demosaicing_CFA_Bayer_Menon2007=demosaic_stub)
    stub_module("cacti.models")
    stub_module("cacti.models.builder", MODELS=Registry())
    load_file_module("cacti.models.utils", os.path.join(src, "models", "utils.py"), what)
    metasci = load_file_module("cacti.models.metasci", os.path.join(src, "models", "metasci.py"), what)
    tv = load_file_module("cacti.models.tv", os.path.join(src, "models", "tv.py"), what)
    gap = load_file_module("cacti.models.gap_denoise", os.path.join(src, "models", "gap_denoise.py"), what)
    return types.SimpleNamespace(MetaSCI=metasci.MetaSCI, TV=tv.TV, GAP_denoise=gap.GAP_denoise, **a_at)


# ------------------------------------------------------------------------------------- workers
def _torch_env():
    """mindediting caps oneDNN at AVX2 for MindSpore; give torch its own choice unless the user set one."""
    if os.environ.get("BENCH_SCI_USER_ISA") is None:
        set_torch_isa("native")


def worker_gap_tv(args, size, variant):
    import numpy as np

    from mindediting.models import sci_classic

    dtype = "float32" if variant == "float32" else "float64"
    solver = sci_classic.GAPTV(iter_list=[args.iters], dtype=dtype)
    if variant == "serial":
        solver.denoise = lambda x: sci_classic.tv_denoise(x, solver.tv_weight, solver.tv_iter_max, threads=False,
                                                          dtype=solver.dtype)
    elif variant == "skimage":
        from skimage.restoration import denoise_tv_chambolle

        def skimage_tv(x):
            frames = np.asarray(x, dtype=solver.dtype).reshape(-1, *x.shape[-2:])
            one = lambda f: denoise_tv_chambolle(f, weight=solver.tv_weight, max_num_iter=solver.tv_iter_max)
            return np.stack(list(sci_classic._pool().map(one, frames))).reshape(x.shape)

        solver.denoise = skimage_tv
    meas, mask, mask_s = make_inputs(size)
    return lambda: solver(meas, mask, mask_s)[0], None


def worker_gap_tv_torch(args, size):
    import torch

    up = upstream_cacti(args.cacti_root)
    denoiser = up.TV(tv_weight=0.1, tv_iter_max=5).eval()  # configs/TV/tv.py
    sigma = torch.tensor(50 / 255, dtype=torch.float32)  # the TV denoiser ignores sigma
    meas, mask, mask_s = (torch.from_numpy(a) for a in make_inputs(size))

    def run():  # tools/test_iterative.py, GAP branch
        y1 = torch.zeros_like(meas)
        x = up.At(meas, mask)
        for _ in range(args.iters):
            x, y1 = up.GAP_denoise(denoiser, x, meas, y1, mask, mask_s, sigma)
        return x[0].numpy()

    return run, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


def worker_metasci(args, size, mode, threads):
    import mindspore as ms

    if threads != "default":
        ms.set_context(runtime_num_threads=int(threads))
    if mode == "graph":
        ms.set_context(mode=ms.GRAPH_MODE)
    from mindediting.convert.converter import load_and_convert, save_ckpt
    from mindediting.models import build_model
    from mindediting.models.metasci import convert_state_dict

    net = build_model("metasci")
    if mode == "hybrid":
        net.jit_stages()
    ckpt = os.path.join(args.ref_dir, f"metasci_{mode}_{os.getpid()}.ckpt")
    save_ckpt(load_and_convert(args.pth, convert_state_dict), ckpt)
    not_loaded, _ = ms.load_param_into_net(net, ms.load_checkpoint(ckpt), strict_load=True)
    if not_loaded:
        raise SystemExit(f"bench_sci: parameters not loaded from {ckpt}: {not_loaded}")
    inputs = [ms.Tensor(a) for a in make_inputs(size)]
    return lambda: net(*inputs).asnumpy()[0], f"mindspore {ms.__version__}"


def worker_metasci_torch(args, size, threads):
    import torch

    _torch_env()
    if threads != "default":
        torch.set_num_threads(int(threads))
    up = upstream_cacti(args.cacti_root)
    net = load_torch_state(up.MetaSCI().eval(), args.pth)
    inputs = [torch.from_numpy(a) for a in make_inputs(size)]

    def run():
        with torch.no_grad():
            return net(*inputs)[0].numpy()

    return run, f"torch {torch.__version__}, {torch.get_num_threads()} threads"


def run_worker(args, case, size):
    import numpy as np

    case, _, threads = case.partition("#")
    threads = threads or "default"
    family = "gap_tv" if case.startswith("gap_tv") else "metasci"
    if case == "gap_tv_torch":
        fn, info = worker_gap_tv_torch(args, size)
    elif case == "metasci_torch":
        fn, info = worker_metasci_torch(args, size, threads)
    elif family == "gap_tv":
        fn, info = worker_gap_tv(args, size, case.split(":")[1] if ":" in case else "default")
    elif case.startswith("metasci:"):
        fn, info = worker_metasci(args, size, case.split(":")[1], threads)
    else:
        raise SystemExit(f"bench_sci: unknown case {case}")
    base = status_mib("VmRSS")
    start = time.perf_counter()
    out = np.asarray(fn())
    first = time.perf_counter() - start
    ref_path = os.path.join(args.ref_dir, f"ref_{family}_{size}.npy")  # any thread count: same numbers
    diff = None
    if case.endswith("_torch"):
        np.save(ref_path, out)
    elif os.path.isfile(ref_path):
        diff = float(np.abs(out.astype(np.float64) - np.load(ref_path)).max())
        print(f"{case}@{size}: max abs diff vs upstream {diff:.3g}", file=sys.stderr)
    hwm = reset_peak()
    times = []
    cpu_start = os.times()
    for _ in range(args.repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    cpu_end = os.times()
    cores = ((cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system)) / max(sum(times), 1e-9)
    peak = status_mib("VmHWM") if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if threads != "default":
        case = f"{case}, {threads} thread{'s' if int(threads) > 1 else ''}"
    return {"case": case, "size": size, "first_s": first, "median_s": statistics.median(times),
            "min_s": min(times), "mem_mib": max(peak - base, 0.0), "diff": diff, "info": info, "cores": cores}


# ---------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="square frame sizes")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--iters", type=int, default=40, help="GAP-TV iterations (toolbox: 4 x 10)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument("--threads", nargs="+", default=["default", "1"],
                        help="intra-op threads of the MetaSCI cases (torch set_num_threads, MindSpore "
                             "runtime_num_threads), one row per value; 'default' leaves each framework alone")
    parser.add_argument("--torch_path", help="folder holding torch and einops (pip install --target); enables *_torch")
    parser.add_argument("--cacti_root", help="extracted cacti checkout (outside this repo), for the *_torch cases")
    parser.add_argument("--out", help="write the markdown table here (atomically)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--ref_dir", help=argparse.SUPPRESS)
    parser.add_argument("--pth", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def format_table(rows, args, load_start, load_end):
    lines = [
        f"| case | size | s / measurement (median of {args.repeats}) | min | first call | peak memory (MiB) "
        "| max abs diff vs upstream | CPU cores busy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['size']}² | failed: {r['error']} | | | | | |")
            continue
        diff = "(reference)" if r["diff"] is None and "_torch" in r["case"] else ("-" if r["diff"] is None else f"{r['diff']:.2g}")
        lines.append(f"| {r['case']} | {r['size']}² | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['first_s']:.3f} "
                     f"| {r['mem_mib']:.0f} | {diff} | {r['cores']:.2f} |")
    infos = sorted({r["info"] for r in rows if r.get("info")})
    lines.append("")
    lines.append(f"GAP-TV: {args.iters} iterations. CPU cores: {os.cpu_count()}; load average (1 min) "
                 f"{load_start:.1f} at the start, {load_end:.1f} at the end. CPU cores busy = process CPU time / "
                 "wall time of the timed runs." + (f" Upstream: {'; '.join(infos)}."
                                                                                 if infos else ""))
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        case, size = args.worker.split("@")
        print("RESULT " + json.dumps(run_worker(args, case, int(size))))
        return 0
    from tqdm import tqdm

    upstream = bool(args.torch_path and args.cacti_root)
    if not upstream:
        print("bench_sci: no --torch_path/--cacti_root: skipping the upstream cases", file=sys.stderr)
    jobs = [(f"{c}#{t}" if c.startswith("metasci") and t != "default" else c, s)
            for s in args.sizes for c in args.cases if upstream or not c.endswith("_torch")
            for t in (args.threads if c.startswith("metasci") else ["default"])]
    load_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_sci_") as ref_dir:
        pth = os.path.join(ref_dir, "weights.pth")
        write_metasci_weights(pth)
        for case, size in tqdm(jobs, desc="cases"):
            upstream_case = case.partition("#")[0].endswith("_torch")
            env = torch_env(args.torch_path if upstream_case else None)
            if USER_ISA is not None:
                env["BENCH_SCI_USER_ISA"] = USER_ISA
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"{case}@{size}", "--iters", str(args.iters),
                   "--repeats", str(args.repeats), "--ref_dir", ref_dir, "--pth", pth]
            if upstream_case:
                cmd += ["--cacti_root", os.path.abspath(args.cacti_root)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                rows.append({"case": case.replace("#", ", threads "), "size": size, "error": tail})
                continue
            rows.append(json.loads(line[7:]))
    table = format_table(rows, args, load_start, os.getloadavg()[0])
    print(table)
    if args.out:
        from mindediting.utils.atomic import write_text_atomic

        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_text_atomic(args.out, table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

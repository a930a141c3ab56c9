"""Video SCI evaluation: per-scene PSNR/SSIM table, PNG frames and a side-by-side GIF/MP4.

``run_sci_eval(cfg, output_dir=None, reconstructor=None)`` takes a validated config (see :mod:`mindediting.config`):

* ``data.dataset: sixgray`` -- the six grey benchmark scenes under ``data.root`` (``data.scenes``
  selects them; default kobe, traffic, runner, drop, aerial, vehicle) with the mask ``data.mask_path``.
  Measurements are regenerated as the toolbox does; each scene's score is the mean over every frame
  of every measurement of the toolbox's PSNR/SSIM (no clipping). Scenes whose file is absent are
  reported as ``missing`` in the table and in the results, never skipped silently.
* ``data.dataset: sci_real`` -- real measurements (``meas_*.mat``) under ``data.root``; ``data.mask_path``
  must be the real mask (same size, at least cr frames; cr comes from the file name ``..._cr_10.mat``).
  There is no ground truth: the table gives the time per measurement.

Solver: ``reconstructor`` (a network, fed in its spec's layout by :mod:`mindediting.engine.sci_task`) run one
measurement at a time; without one the model-free solver ``eval.sci_solver`` (``gap_tv`` default, or
``admm_tv``) runs with the toolbox parameters, overridable by ``eval.sci_solver_args`` (``tv_weight``,
``tv_iter_max``, ``iter_list``).

Outputs under ``output_dir`` (default ``eval.output_dir``): ``<scene>/<index:04d>.png`` (reconstructed
frames clipped to [0, 1] for display, ``index = measurement * cr + frame``, when ``eval.save_frames``
is not false), ``<scene>.gif`` or ``<scene>.mp4`` (``eval.video``; ground truth | reconstruction side
by side, or the reconstruction alone for real data), ``metrics.csv`` (one line per scene and the mean) and
``metrics.json`` (the results dict), named as every evaluation names them. All files are written atomically.
Execution mode/device are left to the caller.
"""
import logging
import os
import time

import numpy as np

from mindediting.data import sci as sci_data
from mindediting.data.video_io import Mp4Writer, to_uint8, write_gif
from mindediting.data.video_io import write_png as write_png_file
from mindediting.engine.evaluator import write_metrics
from mindediting.metrics_sci import sci_frame_scores
from mindediting.models.sci_classic import SOLVERS, build_solver

logger = logging.getLogger(__name__)

DEFAULT_SOLVER_ARGS = {"tv_weight": 0.1, "tv_iter_max": 5, "iter_list": [10, 10, 10, 10]}
VIDEO_KINDS = ("gif", "mp4", "none")


class SCIEvalError(ValueError):
    """A bad SCI evaluation setting; the message names the config key or file."""


# ------------------------------------------------------------------------------------ writers
def display_uint8(frame):
    """Frames in [0, 1] as the toolbox shows them: clipped, ``* 255 + 0.5`` truncated, in the input's precision."""
    return to_uint8(frame, rounding="half_up", dtype=None)


def write_png(path, frame):
    """One frame in [0, 1] as a one-channel PNG, rounded by :func:`display_uint8`."""
    write_png_file(path, display_uint8(frame))


def write_video(path, frames, fps=4):
    """Grey ``(T, H, W)`` frames in [0, 1] to a GIF or an H.264 MP4, atomically."""
    frames = [display_uint8(f) for f in frames]
    if not path.endswith((".gif", ".mp4")):
        raise SCIEvalError(f"{path}: video must end in .gif or .mp4")
    if path.endswith(".gif"):
        write_gif(path, frames, fps)
        return
    with Mp4Writer(path, fps) as writer:
        for frame in frames:
            writer.write(frame)


def side_by_side(gt, out, gap=4):
    """``(T, H, W)`` ground truth | reconstruction with a white gap."""
    t, h, _ = gt.shape
    return np.concatenate([gt, np.ones((t, h, gap)), out], axis=2)


# ------------------------------------------------------------------------------------ solvers
def make_reconstructor(cfg):
    """``(fn, label)`` of the model-free solver: ``fn(meas (H, W), mask (cr, H, W), mask_s (H, W)) -> (cr, H, W)``
    numpy; ``eval.sci_solver`` (gap_tv default, or admm_tv) with the toolbox parameters, overridden by
    ``eval.sci_solver_args``. A network's reconstructor comes from :mod:`mindediting.engine.sci_task`."""
    evaluation = cfg.get("eval") or {}
    solver_name = evaluation.get("sci_solver") or "gap_tv"
    args = dict(DEFAULT_SOLVER_ARGS, **(evaluation.get("sci_solver_args") or {}))
    if solver_name not in SOLVERS:
        raise SCIEvalError(f"eval.sci_solver is '{solver_name}', expected one of {', '.join(SOLVERS)}")
    try:
        solver = build_solver(solver_name, **args)
    except TypeError as err:
        raise SCIEvalError(f"eval.sci_solver_args: {err}") from None

    def run_solver(meas, mask, mask_s):
        return solver(meas[None, None], mask[None], mask_s[None, None])[0]

    return run_solver, f"{solver_name} (iterations {sum(solver.iter_list)})"


# ------------------------------------------------------------------------------------ driver
def _load_scenes(cfg):
    data = cfg.get("data") or {}
    kind = data.get("dataset", "sixgray")
    root = data.get("root")
    if not root:
        raise SCIEvalError("missing key 'data.root' (folder of SCI .mat files)")
    if not os.path.isdir(root):
        raise SCIEvalError(f"data.root '{root}' not found (link the shared data: ln -s ../shared/data data)")
    mask_path = data.get("mask_path")
    if not mask_path:
        raise SCIEvalError("missing key 'data.mask_path' (.mat file with key 'mask')")
    if kind == "sixgray":
        names = data.get("scenes") or list(sci_data.SIXGRAY_SCENES)
        found, missing = sci_data.find_sixgray_scenes(root, names)
        mask = sci_data.load_mask(mask_path)[0]
        scenes = [(n, (lambda p=found[n]: sci_data.load_sixgray_scene(p, mask)) if n in found else None) for n in names]
        return kind, scenes, missing
    if kind == "sci_real":
        files = sorted(f for f in os.listdir(root) if f.endswith(".mat"))
        wanted = data.get("scenes")
        scenes, missing = [], []
        for name in wanted or [os.path.splitext(f)[0] for f in files]:
            match = [f for f in files if os.path.splitext(f)[0] == name or f"_{name}_" in f]
            if not match:
                missing.append(name)
                scenes.append((name, None))
                continue
            path = os.path.join(root, match[0])
            cr = sci_data.real_cr_from_name(path)
            if cr is None:
                raise SCIEvalError(f"{path}: cannot tell the compression ratio from the name (expected ..._cr_<n>.mat)")
            scenes.append((os.path.splitext(match[0])[0], lambda p=path, c=cr: sci_data.load_real_scene(p, mask_path, c)))
        return kind, scenes, missing
    raise SCIEvalError(f"data.dataset is '{kind}', expected sixgray or sci_real")


def format_table(results):
    lines = [f"SCI evaluation: {results['solver']}", f"{'scene':<24}{'PSNR':>9}{'SSIM':>9}{'s/meas':>9}"]
    for row in results["scenes"]:
        if row["status"] == "missing":
            lines.append(f"{row['name']:<24}{'missing (file not found)':>27}")
            continue
        psnr = f"{row['psnr']:9.4f}" if row.get("psnr") is not None else f"{'-':>9}"
        ssim = f"{row['ssim']:9.4f}" if row.get("ssim") is not None else f"{'-':>9}"
        lines.append(f"{row['name']:<24}{psnr}{ssim}{row['time_per_meas']:9.3f}")
    if results.get("mean_psnr") is not None:
        lines.append(
            f"{'mean (' + str(results['num_scored']) + ' scenes)':<24}{results['mean_psnr']:9.4f}{results['mean_ssim']:9.4f}"
        )
    return "\n".join(lines)


def run_sci_eval(cfg, output_dir=None, reconstructor=None):
    """Evaluate (or reconstruct) every scene with ``reconstructor`` (``(fn, label)``, default: the config's
    model-free solver, :func:`make_reconstructor`); write frames/videos/results; return the results dict.

    The dict holds ``solver``, ``scenes`` (rows with ``name``, ``status`` ok|missing, ``psnr``, ``ssim``,
    ``time_per_meas``, ``num_meas``, ``frame_psnr``, ``frame_ssim``), ``mean_psnr``/``mean_ssim`` over the
    scored scenes, ``missing`` and ``table`` (the printable per-scene table).
    """
    from tqdm import tqdm

    evaluation = cfg.get("eval") or {}
    output_dir = output_dir or evaluation.get("output_dir") or "outputs/sci_eval"
    video = evaluation.get("video", "gif")
    if video not in VIDEO_KINDS:
        raise SCIEvalError(f"eval.video is '{video}', expected one of {', '.join(VIDEO_KINDS)}")
    save_frames = evaluation.get("save_frames", True) is not False
    kind, scenes, missing = _load_scenes(cfg)
    reconstruct, label = reconstructor or make_reconstructor(cfg)
    rows = []
    for name, loader in scenes:  # in the requested order; absent scenes stay in the table as missing
        if loader is None:
            rows.append({"name": name, "status": "missing"})
            continue
        scene = loader()
        meas, mask, mask_s = scene["meas"], scene["mask"], scene["mask_s"]
        outputs, times = [], []
        for i in tqdm(range(meas.shape[0]), desc=name, leave=False):
            start = time.perf_counter()
            outputs.append(np.asarray(reconstruct(meas[i], mask, mask_s)))
            times.append(time.perf_counter() - start)
        out = np.stack(outputs)
        row = {"name": name, "status": "ok", "num_meas": int(meas.shape[0]), "time_per_meas": float(np.mean(times))}
        if "gt" in scene:
            psnr, ssim = sci_frame_scores(scene["gt"], out)
            row.update(psnr=float(np.mean(psnr)), ssim=float(np.mean(ssim)), frame_psnr=psnr, frame_ssim=ssim)
        frames = out.reshape(-1, *out.shape[-2:])
        if save_frames:
            for j, frame in enumerate(frames):
                write_png(os.path.join(output_dir, name, f"{j:04d}.png"), frame)
        if video != "none":
            shown = side_by_side(scene["gt"].reshape(frames.shape), frames) if "gt" in scene else frames
            write_video(os.path.join(output_dir, f"{name}.{video}"), shown)
        logger.info("%s: %s", name, {k: v for k, v in row.items() if not k.startswith("frame_")})
        rows.append(row)
    scored = [r for r in rows if r.get("psnr") is not None]
    results = {
        "solver": label,
        "dataset": kind,
        "scenes": rows,
        "missing": missing,
        "num_scored": len(scored),
        "mean_psnr": float(np.mean([r["psnr"] for r in scored])) if scored else None,
        "mean_ssim": float(np.mean([r["ssim"] for r in scored])) if scored else None,
    }
    results["table"] = format_table(results)
    mean = {"name": "mean", "status": f"{len(scored)} scored", "psnr": results["mean_psnr"],
            "ssim": results["mean_ssim"]}
    write_metrics(output_dir, results, ["name", "status", "num_meas", "psnr", "ssim", "time_per_meas"], rows + [mean])
    return results

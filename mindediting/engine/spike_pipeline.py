"""Spike-camera inference and evaluation: ``.dat`` recording or ordinary video in, grey frames out.

Input
* ``.dat``: a raw recording (``width x height``, default the 400x250 sensor), read through a memory map.
* any other file: a video; spikes are simulated from it (integrate-and-fire, :mod:`mindediting.data.spike_simulation`)
  and its grey frames are kept as ground truth, so PSNR/SSIM can be reported.

Output frame ``i`` looks at the spike window ``[s, s + window)`` with ``s = i * stride`` (every window that fits):
* ``window``: spike rate over the window (upstream ``window_method(seq, s, window)``);
* ``interval``: inter-spike interval at the window centre ``c = s + window // 2``, searching at most
  ``interval_context`` frames either side (upstream ``display.py`` evaluates it at ``s``; we use the centre so
  the three methods and the ground truth refer to the same instant);
* the network of the config's model, named by its model name (``spikling``): the generator on the window
  (``window`` must be 32), padded as upstream ``generate``.
The ground truth of output ``i`` is grey frame ``c`` (the tag of upstream's training windows).
PNG frames go to ``<output_dir>/<method>/NNNNN.png`` and a video to ``<output_dir>/<method>.mp4``.
"""
import json
import logging
import os

import numpy as np

from mindediting.data.spike_io import SENSOR_HEIGHT, SENSOR_WIDTH, SpikeDatReader
from mindediting.data.spike_simulation import read_video_frames, simulate_spikes, video_fps
from mindediting.data.video_io import Mp4Writer, write_png
from mindediting.metrics import calculate_psnr as psnr
from mindediting.metrics import calculate_ssim_grey as ssim
from mindediting.models.spike_classic import interval_method, window_method
from mindediting.utils.atomic import write_text_atomic

CLASSICAL_METHODS = ("interval", "window")  # any other method is the network of the config's model
LOGGER = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------- input
class SpikeClip:
    """Spike frames (``len``, slicing -> (n, H, W) uint8) plus optional ground-truth grey frames."""

    def __init__(self, spikes, gt=None, fps=30.0, source=""):
        self.spikes, self.gt, self.fps, self.source = spikes, gt, fps, source

    def __len__(self):
        return len(self.spikes)

    @property
    def frame_size(self):
        return tuple(self.spikes[0].shape)


def load_clip(path, width=SENSOR_WIDTH, height=SENSOR_HEIGHT, size=None, seed=0, max_frames=0):
    """Open a ``.dat`` recording (memory-mapped) or simulate spikes from a video (``size = (W, H)``)."""
    path = str(path)
    if path.lower().endswith(".dat"):
        return SpikeClip(SpikeDatReader(path, width, height), None, 30.0, path)
    frames = read_video_frames(path)
    if size is None:
        first = next(frames)
        size = (first.shape[1], first.shape[0])
        frames = _chain([first], frames)
    spikes, greys = [], []
    for spike, grey in simulate_spikes(frames, tuple(size), rng=np.random.default_rng(seed)):
        spikes.append(spike)
        greys.append(grey)
        if max_frames and len(spikes) >= max_frames:
            break
    return SpikeClip(np.stack(spikes), np.stack(greys), video_fps(path), path)


def _chain(head, tail):
    yield from head
    yield from tail


# ----------------------------------------------------------------------------------------------- methods
def window_starts(num_frames, window, stride):
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    if num_frames < window:
        raise ValueError(f"the clip has {num_frames} spike frames, fewer than one window of {window}")
    return list(range(0, num_frames - window + 1, stride))


class Reconstructor:
    """``reconstruct(clip, start)`` -> (H, W) uint8 for one method."""

    def __init__(self, method, window=32, interval_context=256, net=None):
        if method not in CLASSICAL_METHODS:
            if net is None:
                raise ValueError(f"method '{method}' needs a network (pass a checkpoint)")
            if window != 32:
                raise ValueError(f"the Spikling generator takes 32-frame windows, got window={window}")
        self.method, self.window, self.context, self.net = method, window, interval_context, net

    def __call__(self, clip, start):
        if self.method == "window":
            return window_method(clip.spikes[start:start + self.window], 0, self.window)
        if self.method == "interval":
            centre = start + self.window // 2
            lo = max(0, centre - self.context)
            hi = min(len(clip), centre + self.context)
            return interval_method(clip.spikes[lo:hi], centre - lo)
        from mindediting.models.spikling import generate, padding_for

        seq = clip.spikes[start:start + self.window]
        rows, cols = padding_for(*seq.shape[1:])
        return generate(self.net, seq, 0, rows, cols)


# ----------------------------------------------------------------------------------------------- output
def reconstruct_clip(clip, method, output_dir=None, window=32, stride=None, net=None, interval_context=256,
                     save_png=True, save_mp4=True, fps=None, max_outputs=0, progress=False):
    """Reconstruct every window of ``clip`` with ``method``; write PNG/MP4; return a summary dict.

    The summary holds ``num_frames``, ``starts``, the output paths and, when the clip has ground truth,
    ``psnr``/``ssim`` averaged over frames plus per-frame lists.
    """
    stride = window if stride is None else stride
    starts = window_starts(len(clip), window, stride)
    if max_outputs:
        starts = starts[:max_outputs]
    rebuild = Reconstructor(method, window, interval_context, net)
    png_dir = os.path.join(output_dir, method) if output_dir and save_png else None
    if png_dir:
        os.makedirs(png_dir, exist_ok=True)
    video = Mp4Writer(os.path.join(output_dir, f"{method}.mp4"), fps or clip.fps) if output_dir and save_mp4 else None
    summary = {"method": method, "source": clip.source, "window": window, "stride": stride, "starts": starts,
               "frames": [], "psnr_per_frame": [], "ssim_per_frame": []}
    bar = _progress(len(starts), f"spike {method}") if progress else None
    try:
        for i, start in enumerate(starts):
            image = rebuild(clip, start)
            if png_dir:
                path = os.path.join(png_dir, f"{i:05d}.png")
                write_png(path, image)
                summary["frames"].append(path)
            if video is not None:
                video.write(image)
            if clip.gt is not None:
                ref = clip.gt[start + window // 2]
                summary["psnr_per_frame"].append(psnr(image, ref))
                summary["ssim_per_frame"].append(ssim(image, ref))
            if bar is not None:
                bar.update(1)
    except BaseException:
        if video is not None:
            video.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    if video is not None:
        video.close()
        summary["mp4"] = video.path
    summary["num_frames"] = len(starts)
    if clip.gt is not None:
        summary["psnr"] = float(np.mean(summary["psnr_per_frame"]))
        summary["ssim"] = float(np.mean(summary["ssim_per_frame"]))
    return summary


def _progress(total, desc):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame")


def run(input_path, methods=("interval",), output_dir=None, checkpoint=None, width=SENSOR_WIDTH,
        height=SENSOR_HEIGHT, size=None, window=32, stride=None, interval_context=256, save_png=True,
        save_mp4=True, fps=None, seed=0, max_frames=0, max_outputs=0, progress=False, model=None):
    """Function API: one input, one or more methods -> ``{method: summary}``; writes ``metrics.json`` too.

    ``methods``: ``interval``, ``window`` and the name of ``model`` (the config's ``model`` section), whose
    network runs with ``checkpoint`` loaded strictly."""
    if isinstance(methods, str):
        methods = [methods]
    network = [m for m in methods if m not in CLASSICAL_METHODS]
    name = (model or {}).get("name")
    if any(m != name for m in network):
        valid = ", ".join(CLASSICAL_METHODS + ((name,) if name else ()))
        raise ValueError(f"unknown spike reconstruction method(s) {', '.join(network)} (valid: {valid})")
    clip = load_clip(input_path, width, height, size, seed, max_frames)
    net = None
    if network:
        from mindediting.engine.runtime import load_network

        net = load_network({"model": model, "system": {}}, checkpoint)
    results = {}
    for method in methods:
        results[method] = reconstruct_clip(clip, method, output_dir, window, stride, net, interval_context,
                                           save_png, save_mp4, fps, max_outputs, progress)
        if clip.gt is not None:
            LOGGER.info("%s: PSNR %.2f dB, SSIM %.4f over %d frames", method, results[method]["psnr"],
                        results[method]["ssim"], results[method]["num_frames"])
    if output_dir:
        table = {m: {k: r[k] for k in ("num_frames", "psnr", "ssim", "window", "stride", "source") if k in r}
                 for m, r in results.items()}
        write_text_atomic(os.path.join(output_dir, "metrics.json"), json.dumps(table, indent=2))
    return results


def config_options(cfg):
    """Keyword arguments of :func:`run` from a loaded YAML config (sections data / infer; see configs/spikling)."""
    data, infer = cfg.get("data") or {}, cfg.get("infer") or {}
    opts = {}
    if data.get("root"):
        opts["input_path"] = data["root"]
    if data.get("spike_size"):
        opts["width"], opts["height"] = (int(v) for v in data["spike_size"])
    if data.get("sim_size"):
        opts["size"] = tuple(int(v) for v in data["sim_size"])
    if data.get("sim_seed") is not None:
        opts["seed"] = data["sim_seed"]
    if infer.get("method"):
        opts["methods"] = [infer["method"]] if isinstance(infer["method"], str) else list(infer["method"])
    for key in ("output_dir", "checkpoint", "window", "stride", "save_png", "save_mp4", "fps"):
        if infer.get(key) is not None:
            opts[key] = infer[key]
    return opts

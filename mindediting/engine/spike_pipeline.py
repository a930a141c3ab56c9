"""Spike-camera inference and evaluation: ``.dat`` recording or ordinary video in, grey frames out.

Input
* ``.dat``: a raw recording (``width x height``, default the 400x250 sensor), read through a memory map.
* ``.npz``: a spike window as ``src/scripts/video_to_spike.py`` writes it (keys seq, tag, length).
* any other file: a video (decoded with FFmpeg through PyAV); spikes are simulated from it (integrate-and-fire,
  :mod:`mindediting.data.spike_simulation`) and its grey frames are kept as ground truth, so PSNR/SSIM can be
  reported.

Output frame ``i`` looks at the spike window ``[s, s + window)`` with ``s = i * stride`` (every window that fits):
* ``window``: spike rate over the window (upstream ``window_method(seq, s, window)``);
* ``interval``: inter-spike interval at the window centre ``c = s + window // 2``, searching at most
  ``interval_context`` frames either side (upstream ``display.py`` evaluates it at ``s``; we use the centre so
  the three methods and the ground truth refer to the same instant);
* the network of the config's model, named by its model name (``spikling``): the generator on the window
  (``window`` must be 32), padded as upstream ``generate``.
The ground truth of output ``i`` is grey frame ``c`` (the tag of upstream's training windows).
PNG frames go to ``<output_dir>/<method>/NNNNN.png`` and an H.264 video to ``<output_dir>/<method>.mp4``; with
``compare``, ``<method>_compare.mp4`` and ``<method>_compare.png`` (one still) put the ground truth (a video input) or
the window method beside it. Outputs are written in segments; ``resume`` continues an interrupted run.
"""
import logging
import os

import numpy as np

from mindediting.data.spike_io import SENSOR_HEIGHT, SENSOR_WIDTH, SpikeDatReader, load_spike_npz
from mindediting.data.spike_simulation import grey_frames, integrate, simulate_spikes, variant_greys
from mindediting.data.video_io import FrameSource
from mindediting.engine.evaluator import write_metrics
from mindediting.engine.output_run import fingerprint
from mindediting.metrics import calculate_psnr as psnr
from mindediting.metrics import calculate_ssim_grey as ssim
from mindediting.models.spike_classic import interval_method, window_method

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


def load_clip(path, width=SENSOR_WIDTH, height=SENSOR_HEIGHT, size=None, seed=0, max_frames=0, motion=1, gain=1.0):
    """Open a ``.dat`` recording (memory-mapped), a ``.npz`` window, or simulate spikes from a video
    (``size = (W, H)``); ``max_frames`` keeps the first spike (or video) frames. A video can be turned into a still,
    faster or dimmer scene first (``motion``, ``gain``: :func:`~mindediting.data.spike_simulation.variant_greys`;
    data.sim_motion / data.sim_gain), to score a method on each kind of scene."""
    path = str(path)
    if path.lower().endswith(".dat"):
        reader = SpikeDatReader(path, width, height)
        return SpikeClip(reader[:max_frames] if max_frames else reader, None, 30.0, path)
    if path.lower().endswith(".npz"):
        seq, _ = load_spike_npz(path)
        return SpikeClip(seq[:max_frames] if max_frames else seq, None, 30.0, path)
    source = FrameSource(path, max_frames=max_frames)
    frames = (frame[:, :, ::-1] for frame in source)  # the simulator takes BGR, as upstream's OpenCV reader
    if size is None:
        size = (source.width, source.height)
    if (int(motion), float(gain)) != (1, 1.0):
        greys = variant_greys(grey_frames(frames, size), motion, gain)
        return SpikeClip(integrate(greys, np.random.default_rng(seed)), greys, source.fps, path)
    spikes, greys = [], []
    for spike, grey in simulate_spikes(frames, tuple(size), rng=np.random.default_rng(seed)):
        spikes.append(spike)
        greys.append(grey)
    return SpikeClip(np.stack(spikes), np.stack(greys), source.fps, path)


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
                     save_png=True, save_mp4=True, fps=None, max_outputs=0, progress=False, compare=None, crf=17,
                     resume=False, key="", segment_windows=16):
    """Reconstruct every window of ``clip`` with ``method``; write PNG/MP4; return a summary dict.

    ``compare``: the label of this method's side for the side-by-side outputs (None: none written).
    Outputs are written by :class:`~mindediting.engine.output_run.OutputRun` in segments of ``segment_windows``
    windows, so ``resume`` (with the same ``key``) continues an interrupted run from its last completed segment.

    The summary holds ``num_frames``, ``starts``, the output paths and, when the clip has ground truth,
    ``psnr``/``ssim`` averaged over frames plus per-frame lists, and ``psnr_encoded`` (the MP4's frames).
    """
    stride = window if stride is None else stride
    starts = window_starts(len(clip), window, stride)
    if max_outputs:
        starts = starts[:max_outputs]
    rebuild = Reconstructor(method, window, interval_context, net)
    summary = {"method": method, "source": clip.source, "window": window, "stride": stride, "starts": starts,
               "frames": [], "psnr_per_frame": [], "ssim_per_frame": [], "num_frames": len(starts)}
    run = None
    if output_dir and (save_png or save_mp4):
        from mindediting.engine.output_run import OutputRun

        left_label = "ground truth" if clip.gt is not None else "window method"
        run = OutputRun(output_dir, method, fps or clip.fps, len(starts), segment_windows, len(starts),
                        save_mp4=save_mp4, save_png=save_png, compare=(left_label, compare) if compare else None,
                        crf=crf, resume=resume, key=key, progress=progress, desc=f"spike {method}",
                        png_name="{:05d}.png")
    left_method = Reconstructor("window", window, interval_context)
    first = run.start_unit if run is not None else 0
    bar = _progress(len(starts), f"spike {method}") if progress and run is None else None
    try:
        for i in range(first, len(starts)):
            image = rebuild(clip, starts[i])
            ref = clip.gt[starts[i] + window // 2] if clip.gt is not None else None
            scores = {"ssim": ssim(image, ref)} if ref is not None else None
            if run is not None:
                left = ref if ref is not None or not compare else left_method(clip, starts[i])
                run.write(i, image, reference=ref, left=left, metrics=scores)
                run.unit_done(i)
            elif ref is not None:
                summary["psnr_per_frame"].append(psnr(image, ref))
                summary["ssim_per_frame"].append(scores["ssim"])
            if bar is not None:
                bar.update(1)
    except BaseException:
        if run is not None:
            run.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    if run is not None:
        result = run.finish()
        if save_png:
            summary["frames"] = [os.path.join(run.png_dir, run.png_name.format(i)) for i in range(len(starts))]
        for key_out, key_in in (("mp4", "mp4"), ("compare_mp4", "compare_mp4"), ("compare_png", "compare_png")):
            if result[key_in]:
                summary[key_out] = result[key_in]
        summary["psnr_per_frame"] = result["psnr_per_frame"]
        summary["ssim_per_frame"] = result["metrics_per_frame"].get("ssim", [])
        summary["psnr_encoded"] = result["psnr_encoded"]
    if clip.gt is not None:
        summary["psnr"] = float(np.mean(summary["psnr_per_frame"]))
        summary["ssim"] = float(np.mean(summary["ssim_per_frame"]))
    return summary


def _progress(total, desc):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame")


def run(input_path, methods=("interval",), output_dir=None, checkpoint=None, width=SENSOR_WIDTH,
        height=SENSOR_HEIGHT, size=None, window=32, stride=None, interval_context=256, save_png=True,
        save_mp4=True, fps=None, seed=0, max_frames=0, max_outputs=0, progress=False, model=None, compare=False,
        crf=17, resume=False, segment_windows=16, motion=1, gain=1.0):
    """Function API: one input, one or more methods -> ``{method: summary}``; writes ``metrics.csv`` and
    ``metrics.json`` too (one line / key per method).

    ``methods``: ``interval``, ``window`` and the name of ``model`` (the config's ``model`` section), whose
    network runs with ``checkpoint`` loaded strictly. ``resume``: continue each method's interrupted outputs
    (see :func:`reconstruct_clip`); a method that had finished runs again."""
    if isinstance(methods, str):
        methods = [methods]
    network = [m for m in methods if m not in CLASSICAL_METHODS]
    name = (model or {}).get("name")
    if any(m != name for m in network):
        valid = ", ".join(CLASSICAL_METHODS + ((name,) if name else ()))
        raise ValueError(f"unknown spike reconstruction method(s) {', '.join(network)} (valid: {valid})")
    clip = load_clip(input_path, width, height, size, seed, max_frames, motion, gain)
    net = None
    if network:
        from mindediting.engine.runtime import load_network

        net = load_network({"model": model, "system": {}}, checkpoint)
    results = {}
    for method in methods:
        label = method if method in CLASSICAL_METHODS else f"{method} ({os.path.basename(str(checkpoint))})"
        # a scene variant (motion, gain) enters the key only when used: the keys of earlier outputs stay valid
        key = fingerprint(input_path, method, checkpoint, model, width, height, size, window, stride,
                          interval_context, save_png, save_mp4, fps, seed, max_frames, max_outputs, crf,
                          segment_windows, *(() if (motion, gain) == (1, 1.0) else (motion, gain)))
        results[method] = reconstruct_clip(clip, method, output_dir, window, stride, net, interval_context,
                                           save_png, save_mp4, fps, max_outputs, progress,
                                           compare=label if compare else None, crf=crf, resume=resume, key=key,
                                           segment_windows=segment_windows)
        if clip.gt is not None:
            res = results[method]
            encoded = "" if res.get("psnr_encoded") is None else \
                f", {res['psnr_encoded']:.2f} dB after encoding (H.264 crf {crf})"
            LOGGER.info("%s: PSNR %.2f dB before encoding%s, SSIM %.4f over %d frames", method, res["psnr"], encoded,
                        res["ssim"], res["num_frames"])
    if output_dir:
        table = {m: {k: r[k] for k in ("num_frames", "psnr", "ssim", "window", "stride", "source") if k in r}
                 for m, r in results.items()}
        columns = ["method", "num_frames", "psnr", "ssim", "window", "stride"]
        write_metrics(output_dir, table, columns, [dict(row, method=m) for m, row in table.items()])
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
    if data.get("sim_motion") is not None:
        opts["motion"] = int(data["sim_motion"])
    if data.get("sim_gain") is not None:
        opts["gain"] = float(data["sim_gain"])
    if infer.get("method"):
        opts["methods"] = [infer["method"]] if isinstance(infer["method"], str) else list(infer["method"])
    for key in ("output_dir", "checkpoint", "window", "stride", "save_png", "save_mp4", "fps", "crf"):
        if infer.get(key) is not None:
            opts[key] = infer[key]
    if infer.get("chunk_frames"):  # a spike run's unit is the window: its segments hold this many
        opts["segment_windows"] = int(infer["chunk_frames"])
    return opts

"""The video SCI adapter (MetaSCI, EfficientSCI, Q-SCI; GAP-TV / ADMM-TV without a checkpoint): what eval.py and
infer.py call for a model whose spec is of task ``video_sci``.

The network's input layout comes from the spec: ``channel_axis`` (``meas``/``mask_s`` as ``(B, 1, H, W)``, or
``(B, H, W)`` as Q-SCI's upstream code takes them) and a fixed ``compression_ratio`` the mask must match.
"""
import logging
import os

import numpy as np

from mindediting import registry

logger = logging.getLogger(__name__)


def network_reconstructor(cfg, ckpt):
    """``(fn, label)`` for :func:`~mindediting.engine.sci_eval.run_sci_eval`: the network ``model.name`` with
    ``ckpt`` loaded strictly."""
    from mindediting.engine.runtime import load_network

    spec = registry.get(cfg["model"]["name"])
    return wrap_network(load_network(cfg, ckpt), spec), f"{spec.name} ({os.path.basename(str(ckpt))})"


def wrap_network(net, spec):
    """``fn(meas (H, W), mask (cr, H, W), mask_s (H, W)) -> (cr, H, W)`` numpy, feeding ``net`` in the layout of
    ``spec`` (a list output gives its last element, the final stage)."""
    import mindspore as ms

    from mindediting.engine.sci_eval import SCIEvalError

    def run_net(meas, mask, mask_s):
        if spec.compression_ratio is not None and mask.shape[0] != spec.compression_ratio:
            raise SCIEvalError(f"data.mask_path: the mask has {mask.shape[0]} frames but {spec.name} reconstructs "
                               f"{spec.compression_ratio} (compression ratio)")
        y = meas[None, None] if spec.channel_axis else meas[None]
        s = mask_s[None, None] if spec.channel_axis else mask_s[None]
        out = net(ms.Tensor(y.astype(np.float32)), ms.Tensor(mask[None].astype(np.float32)),
                  ms.Tensor(s.astype(np.float32)))
        if isinstance(out, (list, tuple)):
            out = out[-1]
        return out.asnumpy()[0]

    return run_net


def evaluate(cfg, ckpt=None, output_dir=None, progress=True):
    """Per-scene table of ``ckpt`` (or ``eval.sci_solver``, GAP-TV by default, without one); printed and returned."""
    from mindediting.engine.sci_eval import run_sci_eval

    reconstructor = network_reconstructor(cfg, ckpt) if ckpt else None
    output_dir = output_dir or (cfg.get("eval") or {}).get("output_dir")
    result = run_sci_eval(cfg, output_dir=output_dir, reconstructor=reconstructor)
    print(result["table"])
    return result


# ------------------------------------------------------------------------------------------------------ inference
def _read_array(path, key):
    """``key`` of a ``.mat`` file, or a ``.npy`` array; one-line errors naming the file."""
    from mindediting.data import sci as sci_data

    if path.lower().endswith(".mat"):
        return sci_data.read_mat(path, (key,))[key]
    if path.lower().endswith(".npy"):
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: not a readable .npy array ({str(err).splitlines()[0]})") from None
    raise ValueError(f"{path}: expected a .mat or .npy file")


def load_measurements(path, cr):
    """``(n, H, W)`` float64 measurements of ``path``: ``.mat`` key ``meas`` or ``.npy``, ``(H, W)`` or
    ``(H, W, n)``; or a 16-bit grey ``.png`` (one measurement).

    Scale, as the toolbox's files: 8-bit data is a real camera's (``meas / 255 * cr / 2``); wider integers and floats
    are sums of masked 0-255 frames, as the simulation files store them (``meas / 255``)."""
    import cv2

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: measurement file not found")
    if path.lower().endswith(".png"):
        meas = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if meas is None or meas.dtype != np.uint16 or meas.ndim != 2:
            got = "unreadable" if meas is None else f"{meas.dtype} {meas.shape}"
            raise ValueError(f"{path}: a measurement PNG must be 16-bit grey, got {got}")
    else:
        meas = _read_array(path, "meas")
    if meas.ndim == 2:
        meas = meas[:, :, None]
    if meas.ndim != 3:
        raise ValueError(f"{path}: measurements should be (H, W) or (H, W, n), got shape {meas.shape}")
    scale = cr / 2 / 255.0 if meas.dtype == np.uint8 else 1 / 255.0
    return np.ascontiguousarray(np.transpose(meas.astype(np.float64) * scale, (2, 0, 1)))


def load_mask_file(path):
    """``(mask (cr, H, W) float32, mask_s (H, W))`` from a ``.mat`` (key ``mask``) or ``.npy``, stored H x W x cr."""
    from mindediting.data import sci as sci_data

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: mask file not found")
    mask = _read_array(path, "mask")
    if mask.ndim != 3:
        raise ValueError(f"{path}: the mask should be H x W x cr, got shape {mask.shape}")
    mask = np.ascontiguousarray(np.transpose(mask, (2, 0, 1)).astype(np.float32))
    return mask, sci_data.mask_sum(mask)


def simulate_measurements(path, mask, max_frames=0):
    """Code the grey frames of the video ``path`` with ``mask``: ``(meas (n, H, W), gt (n, cr, H, W), fps)``.

    Frames are centre-cropped to the mask's aspect ratio, resized to its size (area), turned into Y as the toolbox
    makes its grey scenes, and grouped by ``cr``; trailing frames short of a group are dropped."""
    import cv2

    from mindediting.data.sci import A, bgr_to_y
    from mindediting.data.spike_simulation import crop_box
    from mindediting.data.video_io import FrameSource

    cr, height, width = mask.shape
    source = FrameSource(path, max_frames=max_frames)
    if len(source) < cr:
        raise ValueError(f"{path}: {len(source)} frames, fewer than the mask's {cr} (one measurement)")
    frames = []
    for frame in source:
        top, bottom, left, right = crop_box(frame.shape[1], frame.shape[0], width, height)
        crop = cv2.resize(np.ascontiguousarray(frame[top:bottom, left:right]), (width, height),
                          interpolation=cv2.INTER_AREA)
        frames.append(bgr_to_y(crop[:, :, ::-1]))
    n = len(frames) // cr
    gt = np.stack(frames[: n * cr]).astype(np.float64).reshape(n, cr, height, width)
    return A(gt, mask[None].astype(np.float64))[:, 0], gt, source.rate


def infer(cfg, request):
    """Reconstruct the measurement(s) of ``request.input`` with the mask ``request.mask`` (or ``--simulate`` them from
    a video) using ``request.ckpt`` or GAP-TV; grey PNG frames, an H.264 video and optionally the comparison."""
    from mindediting.data.video_io import FrameSource
    from mindediting.engine.inference import save_config
    from mindediting.engine.output_run import OutputRun, fingerprint
    from mindediting.engine.sci_eval import display_uint8, make_reconstructor
    from mindediting.metrics_sci import sci_frame_scores
    from mindediting.utils.atomic import check_writable_dir

    spec = registry.get(cfg["model"]["name"])
    for flag, task in (("noise_sigma", "denoising"), ("add_noise", "denoising"),
                       ("downscale_input", "super-resolution"), ("spike_size", "spike"),
                       ("max_memory", "video restoration")):
        # no --max_memory: a measurement is reconstructed whole, one at a time, so there is no chunk or tile to choose
        if getattr(request, flag, None):
            raise ValueError(f"--{flag} is for {task} models; this config is video SCI")
    if request.simulate and not request.input:
        from mindediting.data.video_io import sample_video

        request.input = sample_video("bikes")
    if not request.input:
        raise ValueError("video SCI needs --input: a measurement (.mat key 'meas', .npy or 16-bit .png) with --mask, "
                         "or a video with --simulate")
    infer_cfg = cfg.get("infer") or {}
    output_dir = request.output_dir or infer_cfg.get("output_dir") or "outputs/infer"
    check_writable_dir(output_dir)
    mask_path = request.mask or (request.input if str(request.input).endswith(".mat") and not request.simulate
                                 and _has_key(request.input, "mask") else (cfg.get("data") or {}).get("mask_path"))
    if not mask_path:
        raise ValueError("video SCI needs --mask (.mat key 'mask' or .npy, H x W x cr)")
    mask, mask_s = load_mask_file(mask_path)
    cr = mask.shape[0]
    if spec.compression_ratio is not None and cr != spec.compression_ratio:
        raise ValueError(f"mask {mask_path} has {cr} frames (compression ratio) but {spec.name} reconstructs "
                         f"{spec.compression_ratio} per measurement")
    if request.simulate:
        meas, gt, rate = simulate_measurements(request.input, mask, request.max_frames)
    else:
        meas, gt = load_measurements(request.input, cr), None
        rate = float(infer_cfg.get("fps") or 25) if infer_cfg.get("fps") not in (None, "source") else 25
        if meas.shape[1:] != mask.shape[1:]:
            raise ValueError(f"measurement {request.input} is {meas.shape[1]}x{meas.shape[2]} but mask {mask_path} is "
                             f"{mask.shape[1]}x{mask.shape[2]} (H x W); they must match")
        if request.max_frames:
            meas = meas[: max(1, request.max_frames // cr)]
    if request.ckpt:
        reconstruct, label = network_reconstructor(cfg, request.ckpt)
    else:
        reconstruct, label = make_reconstructor(cfg)
        label = f"{label.split(' (')[0].upper().replace('_', '-')}: baseline (no --ckpt)"
    stem = os.path.splitext(os.path.basename(str(request.input)))[0]
    key = fingerprint(cfg, request.input, mask_path, request.ckpt, request.max_frames, bool(request.simulate))
    compare = None
    if request.compare:
        compare = ("ground truth" if gt is not None else "meas / mask_s", label)
    audio = request.input if request.simulate and FrameSource(request.input, max_frames=1).audio else None
    run = OutputRun(output_dir, f"{stem}_sci", rate, len(meas), 1, len(meas) * cr,
                    save_mp4=infer_cfg.get("save_mp4", True), save_png=infer_cfg.get("save_png", True),
                    compare=compare, crf=infer_cfg.get("crf", 17), audio=audio,
                    resume=getattr(request, "resume", None) == "auto", key=key, progress=request.progress, desc=label)
    try:
        for i in range(run.start_unit, len(meas)):
            out = np.asarray(reconstruct(meas[i], mask, mask_s))
            scores = sci_frame_scores(gt[i:i + 1], out[None])[0] if gt is not None else None
            coded = display_uint8(meas[i] / mask_s)
            for k in range(cr):
                truth = display_uint8(gt[i, k]) if gt is not None else None
                # the toolbox's PSNR (float frames) is the figure the SCI papers report; the run stores it per
                # frame so that a resumed run reports all of them
                run.write(i, display_uint8(out[k]), reference=truth, left=coded if truth is None else truth,
                          metrics=None if scores is None else {"toolbox_psnr": scores[k]})
            run.unit_done(i)
    except BaseException:
        run.abort()
        raise
    result = run.finish()
    result.update(method=label, measurements=len(meas), compression_ratio=cr)
    if "toolbox_psnr" in result["metrics"]:
        result["psnr_uint8"], result["psnr"] = result["psnr"], result["metrics"]["toolbox_psnr"]
        encoded = result["psnr_encoded"]
        logger.info("%s: mean PSNR %.2f dB before encoding (toolbox: float frames against the simulated ground "
                    "truth)%s over %d frames", label, result["psnr"],
                    "" if encoded is None else f", {encoded:.2f} dB after encoding (uint8 frames decoded from the "
                    f"H.264 MP4, crf {infer_cfg.get('crf', 17)}; {result['psnr_uint8']:.2f} dB as uint8 before it)",
                    result["frames"])
    save_config(cfg, output_dir)
    return result


def _has_key(path, key):
    from mindediting.data import sci as sci_data

    return key in sci_data.read_mat(path)

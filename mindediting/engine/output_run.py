"""The outputs of an inference run, written segment by segment so that an interrupted run resumes: MP4 segments
joined without re-encoding, PNG frames, the ``--compare`` video and still, and the resume state (see
:class:`OutputRun`)."""
import hashlib
import json
import logging
import os
import shutil

import cv2
import numpy as np

from mindediting.data.video_av import DEFAULT_CRF, H264Writer, as_rate, join_segments
from mindediting.data.video_io import write_png
from mindediting.engine.tiling import window_starts
from mindediting.metrics import calculate_psnr
from mindediting.utils.atomic import check_writable_dir, remove_stale_temporaries, write_text_atomic

logger = logging.getLogger(__name__)


def _labelled(image, text):
    """``image`` with ``text`` in its top-left corner, white on a dark outline (readable on any content)."""
    image = image.copy()
    scale = max(0.35, min(image.shape[0], image.shape[1]) / 500)
    for colour, thickness in ((0, 3), (255, 1)):
        cv2.putText(image, text, (4, int(14 * scale / 0.35)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (colour,) * (1 if image.ndim == 2 else 3), thickness, cv2.LINE_AA)
    return image


def side_by_side(left, right, labels=None, gap=4):
    """``left | right`` with a white gap; ``left`` is resized (bicubic) to ``right``'s size, channels matched."""
    if left.shape[:2] != right.shape[:2]:
        left = cv2.resize(left, (right.shape[1], right.shape[0]), interpolation=cv2.INTER_CUBIC)
    if left.ndim != right.ndim:
        left, right = (np.repeat(x[..., None], 3, axis=2) if x.ndim == 2 else x for x in (left, right))
    if labels:
        left, right = _labelled(left, labels[0]), _labelled(right, labels[1])
    white = np.full((right.shape[0], gap) + right.shape[2:], 255, np.uint8)
    return np.concatenate([left, white, right], axis=1)


def fingerprint(*parts):
    """A hash of what decides a run's output: settings, and the size and time of each file it reads."""
    items = []
    for part in parts:
        if isinstance(part, str) and os.path.exists(part):
            stat = os.stat(part)
            part = (os.path.abspath(part), stat.st_size, int(stat.st_mtime))
        items.append(part)
    return hashlib.sha256(json.dumps(items, sort_keys=True, default=str).encode()).hexdigest()[:16]


class OutputRun:
    """The outputs of one run, written segment by segment (see the module docstring).

    Args:
        output_dir, name: files are ``<name>.mp4``, ``<name>/<index:08d>.png``, ``<name>_compare.mp4`` and
            ``<name>_compare.png``.
        rate: output frame rate (``Fraction`` or number).
        units, segment_units: input units (frames, measurements, windows) of the run and per segment.
        frames: output frames of the whole run (for the still's index and the progress bar).
        compare: ``(left label, right label)`` to write the side-by-side outputs, or None.
        audio: a video file whose audio the MP4 carries, trimmed to the output's duration.
        resume: continue a run with the same ``key`` whose state is in the folder.
        png_name: file name pattern of the PNG frames inside ``<name>/``.
    The producer asks :attr:`start_unit` where to begin, calls :meth:`write` per output frame, then
    :meth:`finish`, or :meth:`abort` on an exception.
    """

    def __init__(self, output_dir, name, rate, units, segment_units, frames, save_mp4=True, save_png=False,
                 compare=None, crf=DEFAULT_CRF, audio=None, resume=False, key="", progress=True, desc="infer",
                 png_name="{:08d}.png"):
        if not save_mp4 and not save_png:
            raise ValueError("infer.save_mp4 and infer.save_png are both false: nothing would be written")
        check_writable_dir(output_dir)
        self.output_dir, self.name, self.rate = str(output_dir), name, as_rate(rate)
        self.units, self.segment_units, self.frames = int(units), max(1, int(segment_units)), int(frames)
        self.save_mp4, self.save_png, self.compare, self.crf, self.audio = save_mp4, save_png, compare, crf, audio
        self.key, self.png_name = key, png_name
        base = os.path.join(self.output_dir, name)
        self.mp4, self.png_dir = base + ".mp4", base
        self.compare_mp4, self.still = base + "_compare.mp4", base + "_compare.png"
        self.parts = os.path.join(self.output_dir, f".{name}.resume")
        self.state = {"key": key, "segments": []}
        self._open_state(resume)
        self.segment = len(self.state["segments"])
        self.start_unit = min(self.segment * self.segment_units, self.units)
        self.index = sum(s["frames"] for s in self.state["segments"])
        self._writers, self._scores, self._baseline_scores, self._refs, self._metrics = [], [], [], [], {}
        self._segment_frames = 0
        from tqdm import tqdm

        self.bar = tqdm(total=self.frames, initial=self.index, unit="frame", desc=desc, disable=not progress,
                        dynamic_ncols=True)

    # state --------------------------------------------------------------------------------------------------
    def _state_path(self):
        return os.path.join(self.parts, "state.json")

    def _open_state(self, resume):
        state = None
        if resume and os.path.isfile(self._state_path()):
            with open(self._state_path(), encoding="utf-8") as handle:
                state = json.load(handle)
            if state.get("key") != self.key:
                raise ValueError(f"{self.parts}: the interrupted run there used other settings or inputs; rerun "
                                 "without --resume to start again, or use another --output_dir")
            missing = [p for s in state["segments"] for p in s["files"] if not os.path.isfile(p)]
            if missing:
                raise ValueError(f"{missing[0]}: a completed segment of the interrupted run is gone; rerun without "
                                 "--resume")
        if state is None:
            shutil.rmtree(self.parts, ignore_errors=True)
            state = self.state
        os.makedirs(self.parts, exist_ok=True)
        for folder in (self.parts, self.png_dir):  # a killed run's half-written segments and PNGs
            remove_stale_temporaries(folder)
        self.state = state
        if state["segments"]:
            logger.info("resuming: %d of %d segments done (%d frames)", len(state["segments"]),
                        -(-self.units // self.segment_units), sum(s["frames"] for s in state["segments"]))

    # writing ------------------------------------------------------------------------------------------------
    def _segment_writers(self):
        if self._segment_frames:
            return self._writers
        paths = []
        if self.save_mp4:
            paths.append(os.path.join(self.parts, f"video_{self.segment:05d}.mp4"))
        if self.compare:
            paths.append(os.path.join(self.parts, f"compare_{self.segment:05d}.mp4"))
        self._writers = [H264Writer(p, self.rate, crf=self.crf, bframes=0) for p in paths]
        return self._writers

    def write(self, unit, frame, reference=None, left=None, baseline=None, metrics=None):
        """Output frame of input ``unit``; ``reference``: ground truth for PSNR; ``left``: the compare video's
        left side (default ``reference``); ``baseline``: the baseline's frame, scored for reference;
        ``metrics``: more per-frame scores of the caller (``{name: value}``), averaged in the summary."""
        if unit >= (self.segment + 1) * self.segment_units:
            self._close_segment()
        writers = self._segment_writers()
        if self.save_mp4:
            writers[0].write(frame)
        if self.save_png:
            write_png(os.path.join(self.png_dir, self.png_name.format(self.index)), frame)
        if reference is not None:
            self._scores.append(calculate_psnr(frame, reference))
            if self.save_mp4:
                # kept until the segment is encoded, to score what the MP4 holds; a segment is one chunk of input
                self._refs.append(reference)
            if baseline is not None:
                self._baseline_scores.append(calculate_psnr(baseline, reference))
        for name, value in (metrics or {}).items():
            self._metrics.setdefault(name, []).append(float(value))
        if self.compare:
            left = reference if left is None else left
            shown = side_by_side(left, frame, self.compare)
            writers[-1].write(shown)
            if self.index == self.frames // 2:
                write_png(self.still, shown)
        self.index += 1
        self._segment_frames += 1
        self.bar.update(1)

    def unit_done(self, unit):
        """Input ``unit`` has all its output frames: close the segment now if ``unit`` ends it, so an interruption
        during the next unit keeps it (otherwise it closes at the next segment's first frame)."""
        if (unit + 1) % self.segment_units == 0 or unit + 1 == self.units:
            self._close_segment()

    def _close_segment(self):
        if not self._segment_frames:
            return
        files = [w.close() for w in self._writers]
        encoded = self._score_encoded(files[0]) if self._refs else []
        self.state["segments"].append({"frames": self._segment_frames, "files": files, "psnr": self._scores,
                                       "encoded_psnr": encoded, "baseline_psnr": self._baseline_scores,
                                       "metrics": self._metrics})
        write_text_atomic(self._state_path(), json.dumps(self.state))
        self._writers, self._scores, self._baseline_scores, self._refs, self._metrics = [], [], [], [], {}
        self._segment_frames = 0
        self.segment += 1

    def _score_encoded(self, segment_file):
        """PSNR of the segment's decoded H.264 frames against the references: what a viewer of the MP4 gets.
        The joined MP4 copies the segments' packets, so its frames are these."""
        from mindediting.data.video_av import decode_frames

        grey = self._refs[0].ndim == 2
        scores = []
        for reference, decoded in zip(self._refs, decode_frames(segment_file, grey=grey)):
            scores.append(calculate_psnr(decoded[: reference.shape[0], : reference.shape[1]], reference))
        if len(scores) != len(self._refs):
            raise ValueError(f"{segment_file}: decoded {len(scores)} frames, wrote {len(self._refs)}")
        return scores

    def finish(self):
        """Close the last segment, join the segments (+ audio) into the final videos; return the summary."""
        self._close_segment()
        self.bar.close()
        segments = self.state["segments"]
        if not segments:
            raise ValueError(f"{self.output_dir}: no frame was produced, so nothing was written")
        seconds = self.index / self.rate
        audio = (self.audio, seconds) if self.audio else None
        if self.save_mp4:
            join_segments([s["files"][0] for s in segments], self.mp4, audio=audio)
        if self.compare:
            join_segments([s["files"][-1] for s in segments], self.compare_mp4, audio=audio)
        shutil.rmtree(self.parts, ignore_errors=True)
        scores = [v for s in segments for v in s["psnr"]]
        encoded = [v for s in segments for v in s.get("encoded_psnr", [])]
        baseline = [v for s in segments for v in s["baseline_psnr"]]
        metrics = {}
        for segment in segments:
            for name, values in segment.get("metrics", {}).items():
                metrics.setdefault(name, []).extend(values)
        result = {"frames": self.index, "fps": float(self.rate), "mp4": self.mp4 if self.save_mp4 else None,
                  "png_dir": self.png_dir if self.save_png else None,
                  "compare_mp4": self.compare_mp4 if self.compare else None,
                  "compare_png": self.still if self.compare and os.path.isfile(self.still) else None,
                  "psnr": float(np.mean(scores)) if scores else None,
                  "psnr_encoded": float(np.mean(encoded)) if encoded else None,
                  "psnr_baseline": float(np.mean(baseline)) if baseline else None,
                  "psnr_per_frame": scores, "metrics": {k: float(np.mean(v)) for k, v in metrics.items()},
                  "metrics_per_frame": metrics}
        for key in ("mp4", "png_dir", "compare_mp4", "compare_png"):
            if result[key]:
                logger.info("wrote %s", result[key])
        return result

    def abort(self):
        """Drop the unfinished segment; completed ones stay for ``--resume auto``."""
        self.bar.close()
        for writer in self._writers:
            writer.abort()
        self._writers = []
        if self.state["segments"]:
            logger.info("interrupted after %d frames: rerun with --resume auto to continue", self.index)
        else:
            shutil.rmtree(self.parts, ignore_errors=True)


def resume_start(units, chunk_frames, chunk_overlap, unit):
    """First input frame to feed :func:`~mindediting.engine.tiling.stream_chunked` so that its outputs from
    ``unit`` on equal those of a run from frame 0: the start of the first chunk that covers ``unit`` (outputs are
    sums over the chunks covering them, in chunk order, and those chunks start there)."""
    if not unit or not chunk_frames or chunk_frames >= units:
        return 0
    return next(s for s in window_starts(units, chunk_frames, chunk_overlap) if s + chunk_frames > unit)

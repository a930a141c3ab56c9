"""Classical spike-camera reconstructions (lshpku/spikling ``evaluate.py``), vectorised in numpy.

Input ``seq`` is (T, H, W) with values 0/1; output (H, W) uint8.

* interval method: brightness = 255 / (time between the spikes around frame ``mid``);
* window method: spike rate over ``length`` frames from ``start`` times 255.
Both truncate to uint8 exactly as upstream, including its edge cases (see each function).
"""
import numpy as np


def _check_seq(seq):
    seq = np.asarray(seq)
    if seq.ndim != 3:
        raise ValueError(f"spike sequence must be (T, H, W), got shape {seq.shape}")
    return seq


def interval_method(seq, mid):
    """Inter-spike-interval image at frame ``mid``.

    ``up`` = first frame >= mid with a spike, ``down`` = last frame < mid with a spike; value 255/(up-down).
    Upstream's loop-variable semantics are kept: no spike forward -> up = T-1 (mid when mid >= T);
    no spike backward -> down = 0 (-1 when mid = 0).
    """
    seq = _check_seq(seq)
    length = seq.shape[0]
    if not 0 <= mid <= length:
        raise ValueError(f"mid={mid} outside [0, {length}] for a sequence of {length} frames")
    fired = seq != 0
    if mid < length:
        after = fired[mid:]
        up = np.where(after.any(0), mid + after.argmax(0), length - 1)
    else:
        up = np.full(seq.shape[1:], mid)
    if mid > 0:
        before = fired[:mid][::-1]
        down = np.where(before.any(0), mid - 1 - before.argmax(0), 0)
    else:
        down = np.full(seq.shape[1:], -1)
    return (255 / (up - down).astype(np.float64)).astype(np.uint8)


def window_method(seq, start, length=32):
    """Mean spike rate over frames ``[start, start+length)`` (truncated at the end of ``seq``) * 255."""
    seq = _check_seq(seq)
    if start < 0 or length < 1 or start >= seq.shape[0]:
        raise ValueError(f"window start={start}, length={length} selects no frame of a {seq.shape[0]}-frame sequence")
    return (seq[start:start + length].mean(axis=0) * 255).astype(np.uint8)

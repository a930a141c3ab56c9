"""Model-free video SCI reconstruction: GAP-TV and ADMM-TV (cacti toolbox, ``tools/test_iterative.py``).

Both alternate a data step on the measurement with a total-variation denoiser (scikit-image's
Chambolle projection applied to every frame on its own, ``weight=tv_weight``,
``max_num_iter=tv_iter_max``). Layouts follow the toolbox driver: ``meas (1, 1, H, W)``,
``mask (1, cr, H, W)``, ``mask_s (1, 1, H, W)``; frames in [0, 1]; numpy in, numpy out.

* GAP (accelerated, lambda = 1): ``yb = A(x)``; ``y1 += y - yb``; ``x += lambda * At((y1 - yb) / mask_s)``;
  ``x = TV(x)``; start ``x = At(y)``, ``y1 = 0``.
* ADMM (lambda = 1, gamma = 0.01): ``yb = A(theta + b)``; ``x = theta + b + lambda * At((y - yb) / (mask_s + gamma))``;
  ``theta = TV(x - b)``; ``b -= x - theta``; start ``theta = At(y)``, ``b = 0``.

``iter_list[s]`` iterations are run for each stage ``s`` (``sigma_list`` is accepted for config
compatibility; the TV denoiser ignores it, as upstream). The first data step runs in the inputs'
precision; the denoiser works in float64, so every later iterate is float64 (as with the toolbox
and the goldens). ``dtype="float32"`` keeps everything in float32 (what the toolbox does with
scikit-image >= 0.19; about 2x faster, differences ~1e-6).
Official values: ``tv_weight=0.1, tv_iter_max=5, iter_list=[10, 10, 10, 10]``.
"""
import os

import numpy as np

from mindediting.data.sci import A, At


_POOL = None


def _pool():
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, 8)), thread_name_prefix="tv")
    return _POOL


def tv_denoise(x, tv_weight, tv_iter_max, threads=True, dtype=np.float64):
    """Chambolle TV of every frame of ``x (..., H, W)`` on its own; float64 result of the same shape.

    The toolbox calls ``denoise_tv_chambolle(stack (H, W, frames), channel_axis=2)``, which denoises
    each frame independently in turn; here each frame is one ``denoise_tv_chambolle`` call and frames
    run on a thread pool (numpy releases the GIL), which gives the same numbers. ``dtype``: the
    precision the denoiser works in (float64 as the toolbox with the scikit-image it was run with;
    scikit-image >= 0.19 keeps float32 input in float32, which is about 2x faster).
    """
    from skimage.restoration import denoise_tv_chambolle

    shape = x.shape
    frames = np.asarray(x, dtype=dtype).reshape(-1, *shape[-2:])

    def one(frame):
        return denoise_tv_chambolle(frame, weight=tv_weight, max_num_iter=tv_iter_max)

    if threads and frames.shape[0] > 1 and frames[0].size >= 128 * 128:
        out = list(_pool().map(one, frames))
    else:
        out = [one(f) for f in frames]
    return np.stack(out).reshape(shape)


def _check_inputs(meas, mask, mask_s):
    meas, mask, mask_s = np.asarray(meas), np.asarray(mask), np.asarray(mask_s)
    if mask.ndim != 4 or meas.shape != (mask.shape[0], 1) + mask.shape[2:]:
        raise ValueError(f"expected meas (B, 1, H, W) and mask (B, cr, H, W), got {meas.shape} and {mask.shape}")
    if mask_s.shape[-2:] != mask.shape[-2:]:
        raise ValueError(f"mask_s {mask_s.shape} does not match the mask {mask.shape}")
    return meas, mask, mask_s


class _IterativeSCI:
    """Shared constructor and driver loop; subclasses define the initial state and one step."""

    def __init__(self, tv_weight=0.1, tv_iter_max=5, iter_list=(10, 10, 10, 10), sigma_list=None, dtype="float64"):
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be float64 or float32, got {dtype!r}")
        self.dtype = np.dtype(dtype)
        if tv_weight <= 0 or tv_iter_max < 1:
            raise ValueError(f"tv_weight must be > 0 and tv_iter_max >= 1, got {tv_weight}, {tv_iter_max}")
        self.tv_weight = float(tv_weight)
        self.tv_iter_max = int(tv_iter_max)
        self.iter_list = [int(n) for n in iter_list]
        self.sigma_list = list(sigma_list) if sigma_list is not None else None
        if self.sigma_list is not None and len(self.sigma_list) != len(self.iter_list):
            raise ValueError(f"sigma_list has {len(self.sigma_list)} stages, iter_list {len(self.iter_list)}")

    def set_train(self, mode=False):  # same interface as a Cell returned by build_model
        return self

    def denoise(self, x):
        return tv_denoise(x, self.tv_weight, self.tv_iter_max, dtype=self.dtype)

    def iterate(self, meas, mask, mask_s):
        """Yield the estimate after every iteration."""
        meas, mask, mask_s = _check_inputs(meas, mask, mask_s)
        state = self.start(meas, mask)
        for num in self.iter_list:
            for _ in range(num):
                state = self.step(state, meas, mask, mask_s)
                yield state[0]

    def __call__(self, meas, mask, mask_s, return_all=False):
        outputs = list(self.iterate(meas, mask, mask_s)) if return_all else None
        if return_all:
            return outputs
        x = None
        for x in self.iterate(meas, mask, mask_s):
            pass
        return x


class GAPTV(_IterativeSCI):
    """Accelerated GAP with a TV denoiser (``_lambda`` = 1)."""

    def __init__(
        self, tv_weight=0.1, tv_iter_max=5, iter_list=(10, 10, 10, 10), sigma_list=None, _lambda=1.0, dtype="float64"
    ):
        super().__init__(tv_weight, tv_iter_max, iter_list, sigma_list, dtype)
        self._lambda = _lambda

    def start(self, meas, mask):
        return At(meas, mask), np.zeros_like(meas)

    def step(self, state, meas, mask, mask_s):
        x, y1 = state
        yb = A(x, mask)
        y1 = y1 + (meas - yb)
        x = x + self._lambda * At((y1 - yb) / mask_s, mask)
        return self.denoise(x), y1


class ADMMTV(_IterativeSCI):
    """ADMM with a TV denoiser (``_lambda`` = 1, ``gamma`` = 0.01)."""

    def __init__(
        self, tv_weight=0.1, tv_iter_max=5, iter_list=(10, 10, 10, 10), sigma_list=None, _lambda=1.0, gamma=0.01,
        dtype="float64",
    ):
        super().__init__(tv_weight, tv_iter_max, iter_list, sigma_list, dtype)
        self._lambda = _lambda
        self.gamma = gamma

    def start(self, meas, mask):
        theta = At(meas, mask)
        return theta, np.zeros_like(theta)

    def step(self, state, meas, mask, mask_s):
        theta, b = state
        yb = A(theta + b, mask)
        x_hat = (theta + b) + self._lambda * At((meas - yb) / (mask_s + self.gamma), mask)
        theta = self.denoise(x_hat - b)
        return theta, b - (x_hat - theta)


SOLVERS = {"gap_tv": GAPTV, "admm_tv": ADMMTV}


def build_solver(name, **kwargs):
    """``gap_tv`` or ``admm_tv`` with the toolbox parameters (overridable)."""
    if name not in SOLVERS:
        raise ValueError(f"unknown SCI solver '{name}'; valid names: {', '.join(SOLVERS)}")
    return SOLVERS[name](**kwargs)

"""Model-free video SCI reconstruction: GAP-TV and ADMM-TV (cacti toolbox, ``tools/test_iterative.py``).

Both alternate a data step on the measurement with a total-variation denoiser (Chambolle's
projection as scikit-image's ``denoise_tv_chambolle`` computes it, applied to every frame on its own,
``weight=tv_weight``, ``max_num_iter=tv_iter_max``; :func:`chambolle_frame` gives the same numbers with
fewer temporaries). Layouts follow the toolbox driver: ``meas (1, 1, H, W)``,
``mask (1, cr, H, W)``, ``mask_s (1, 1, H, W)``; frames in [0, 1]; numpy in, numpy out.

* GAP (accelerated, lambda = 1): ``yb = A(x)``; ``y1 += y - yb``; ``x += lambda * At((y1 - yb) / mask_s)``;
  ``x = TV(x)``; start ``x = At(y)``, ``y1 = 0``.
* ADMM (lambda = 1, gamma = 0.01): ``yb = A(theta + b)``; ``x = theta + b + lambda * At((y - yb) / (mask_s + gamma))``;
  ``theta = TV(x - b)``; ``b -= x - theta``; start ``theta = At(y)``, ``b = 0``.

``iter_list[s]`` iterations are run for each stage ``s`` (``sigma_list`` is accepted for config
compatibility; the TV denoiser ignores it, as upstream). The first data step runs in the inputs'
precision; the denoiser works in float64, so every later iterate is float64 (as the goldens, made
with a scikit-image that returned float64). ``dtype="float32"`` keeps everything in float32, which is
what the toolbox does with scikit-image >= 0.19 (``benchmarks/bench_sci.py``: identical output to the
upstream toolbox code with scikit-image 0.26; 2.5-4x faster than float64, differences ~1e-6).
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


def chambolle_frame(image, weight, max_num_iter, eps=2.0e-4):
    """Chambolle TV projection of one 2-D frame, the same arithmetic as scikit-image's
    ``denoise_tv_chambolle`` (same operation order, so the same numbers, including its energy-based
    early stop ``|E_prev - E| < eps * E_0``) but with every temporary preallocated and updated in
    place: about half the memory traffic. ``image``: 2-D float32/float64 array; result has its dtype.
    """
    image = np.ascontiguousarray(image)
    p0, p1 = np.zeros_like(image), np.zeros_like(image)  # dual field, axes 0 and 1
    g0, g1 = np.zeros_like(image), np.zeros_like(image)  # forward differences (last row/col stay 0)
    d, out, norm, tmp = (np.empty_like(image) for _ in range(4))
    tau = 0.25  # 1 / (2 * ndim)
    cur = image
    e_init = e_prev = None
    for i in range(max_num_iter):
        if i > 0:
            # scikit-image: d = -(p0 + p1); d[1:] += p0[:-1]; d[:, 1:] += p1[:, :-1]; out = image + d.
            # Negation is exact, so nd = -d = ((p0 + p1) - p0[:-1]) - p1[:, :-1] and image - nd give the same bits
            np.add(p0, p1, out=d)
            d[1:, :] -= p0[:-1, :]
            d[:, 1:] -= p1[:, :-1]
            np.subtract(image, d, out=out)
            cur = out
            if i == max_num_iter - 1:
                break  # the last iterate is returned whatever the energy test says: skip its p update
            np.multiply(d, d, out=tmp)
            energy = tmp.sum()
        else:
            energy = np.zeros((), image.dtype).sum()
        np.subtract(cur[1:, :], cur[:-1, :], out=g0[:-1, :])
        np.subtract(cur[:, 1:], cur[:, :-1], out=g1[:, :-1])
        np.multiply(g0, g0, out=norm)
        np.multiply(g1, g1, out=tmp)
        norm += tmp
        np.sqrt(norm, out=norm)
        energy += weight * norm.sum()
        norm *= tau / weight
        norm += 1.0
        if i == 0:  # p is 0: p = (0 - tau * g) / norm = (-tau * g) / norm
            np.multiply(g0, -tau, out=p0)
            np.multiply(g1, -tau, out=p1)
        else:
            g0 *= tau
            p0 -= g0
            g1 *= tau
            p1 -= g1
        p0 /= norm
        p1 /= norm
        energy /= float(image.size)
        if i == 0:
            e_init = e_prev = energy
        elif np.abs(e_prev - energy) < eps * e_init:
            break
        else:
            e_prev = energy
    return cur.copy() if cur is image else cur


def tv_denoise(x, tv_weight, tv_iter_max, threads=True, dtype=np.float64):
    """Chambolle TV of every frame of ``x (..., H, W)`` on its own; result of the same shape in ``dtype``.

    The toolbox calls ``denoise_tv_chambolle(stack (H, W, frames), channel_axis=2)``, which denoises
    each frame independently in turn; here each frame goes through :func:`chambolle_frame` (same
    numbers as scikit-image, contiguous frames, in-place updates) and frames run on a thread pool
    (numpy's ufuncs release the GIL). ``dtype``: the precision the denoiser works in (float64 as the
    toolbox with the scikit-image the goldens were made with; scikit-image >= 0.19 keeps float32
    input in float32, which is about 2x faster).
    """
    shape = x.shape
    frames = np.asarray(x, dtype=dtype).reshape(-1, *shape[-2:])
    result = np.empty_like(frames)

    def one(k):
        result[k] = chambolle_frame(frames[k], tv_weight, tv_iter_max)

    if threads and frames.shape[0] > 1 and frames[0].size >= 128 * 128:
        list(_pool().map(one, range(frames.shape[0])))
    else:
        for k in range(frames.shape[0]):
            one(k)
    return result.reshape(shape)


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

"""Seeded synthetic BasicVSR++ weights in numpy only, so that the vectors beside this file need no weight file:
make_vectors.py (torch) and tests/test_basicvsr_pp.py (MindSpore) both build the same arrays from ``keys.json``.

Uniform draws from ``numpy.random.default_rng(seed).random`` (PCG64 doubles, a stream NumPy keeps stable),
taken key by key in the order of ``keys.json``. Conv weights: U(-b, b) with b = gain * sqrt(3 / fan_in) (He
variance); gains keep the 7-block recurrences and the flows in range: 0.1 for residual-block convs, 0.05 for
SPyNet's flow output convs, 0.5 for the offset heads' last conv (residues of a few pixels, so the deformable
sampling really moves), 0.3 for conv_last, sqrt(2) for the rest. Biases U(-0.01, 0.01). SPyNet's mean/std are
the ImageNet statistics, as upstream.
"""
import numpy as np

IMAGENET = {"spynet.mean": (0.485, 0.456, 0.406), "spynet.std": (0.229, 0.224, 0.225)}


def gain(key):
    if ".main.2." in key:
        return 0.1
    if key.endswith("basic_module.4.conv.weight"):
        return 0.05
    if key.endswith("conv_offset.6.weight"):
        return 0.5
    if key.startswith("conv_last"):
        return 0.3
    return 2 ** 0.5


def synthetic_state(keys, seed):
    """``{key: float32 array}`` for ``keys`` (a list of ``[key, shape]`` pairs, upstream state-dict order)."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in keys:
        shape = tuple(shape)
        if key in IMAGENET:
            out[key] = np.array(IMAGENET[key], np.float32).reshape(shape)
            continue
        u = 2.0 * rng.random(shape) - 1.0
        if key.endswith(".bias"):
            out[key] = (0.01 * u).astype(np.float32)
        else:
            out[key] = (u * gain(key) * np.sqrt(3.0 / np.prod(shape[1:]))).astype(np.float32)
    return out


def checksum(state):
    """Sum of |w| over all arrays: make_vectors.py records it, the test compares (drift in the stream)."""
    return float(sum(np.abs(v.astype(np.float64)).sum() for v in state.values()))

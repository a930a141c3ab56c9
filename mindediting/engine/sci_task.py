"""The video SCI adapter (MetaSCI, EfficientSCI, Q-SCI; GAP-TV / ADMM-TV without a checkpoint): what eval.py
calls for a model whose spec is of task ``video_sci``.

The network's input layout comes from the spec: ``channel_axis`` (``meas``/``mask_s`` as ``(B, 1, H, W)``, or
``(B, H, W)`` as Q-SCI's upstream code takes them) and a fixed ``compression_ratio`` the mask must match.
"""
import os

import numpy as np

from mindediting import registry


def network_reconstructor(cfg, ckpt):
    """``(fn, label)`` for :func:`~mindediting.engine.sci_eval.run_sci_eval`: the network ``model.name`` with
    ``ckpt`` loaded strictly."""
    from mindediting.engine.runtime import load_network

    spec = registry.get(cfg["model"]["name"])
    return wrap_network(load_network(cfg, ckpt), spec), f"{spec.name} ({os.path.basename(str(ckpt))})"


def wrap_network(net, spec):
    """``fn(meas (H, W), mask (cr, H, W), mask_s (H, W)) -> (cr, H, W)`` numpy, feeding ``net`` in the layout of
    ``spec`` (a list output gives its last element, the final stage)."""
    import mindspore as ms

    from mindediting.engine.sci_eval import SCIEvalError

    def run_net(meas, mask, mask_s):
        if spec.compression_ratio is not None and mask.shape[0] != spec.compression_ratio:
            raise SCIEvalError(f"data.mask_path: the mask has {mask.shape[0]} frames but {spec.name} reconstructs "
                               f"{spec.compression_ratio} (compression ratio)")
        y = meas[None, None] if spec.channel_axis else meas[None]
        s = mask_s[None, None] if spec.channel_axis else mask_s[None]
        out = net(ms.Tensor(y.astype(np.float32)), ms.Tensor(mask[None].astype(np.float32)),
                  ms.Tensor(s.astype(np.float32)))
        if isinstance(out, (list, tuple)):
            out = out[-1]
        return out.asnumpy()[0]

    return run_net


def evaluate(cfg, ckpt=None, output_dir=None, progress=True):
    """Per-scene table of ``ckpt`` (or ``eval.sci_solver``, GAP-TV by default, without one); printed and returned."""
    from mindediting.engine.sci_eval import run_sci_eval

    reconstructor = network_reconstructor(cfg, ckpt) if ckpt else None
    output_dir = output_dir or (cfg.get("eval") or {}).get("output_dir")
    result = run_sci_eval(cfg, output_dir=output_dir, reconstructor=reconstructor)
    print(result["table"])
    return result

"""Shared glue for the benchmark rows that run *upstream* PyTorch source next to ours.

The upstream code is never copied into this repository: the scripts import it by file path from a checkout
extracted elsewhere (``--cacti_root``, ``--mmagic_root``, ...), with torch taken from a separate folder
(``--torch_path``, made with ``pip install --target DIR torch``). Only framework plumbing that the upstream
files import (registries, base classes, modules with many unrelated imports) is replaced by stand-ins,
which the calling script builds with the helpers here:

* :func:`torch_env` -- the environment for a worker subprocess, with the torch folder first on PYTHONPATH;
* :func:`set_torch_isa` -- undo (or choose) the oneDNN ISA cap that importing mindediting sets for MindSpore;
* :func:`stub_module` -- an empty package/module registered in ``sys.modules`` under a dotted name;
* :class:`Registry` -- a ``MODELS`` registry whose ``register_module`` returns the class unchanged;
* :func:`load_file_module` -- import one upstream file under the dotted name its siblings import it by;
* :func:`compile_functions` -- compile only some top-level functions of an upstream file (when the file
  itself imports packages that are not installed);
* :func:`load_torch_state` -- give a torch module the weights of a ``.pth`` read with our torch-free reader.

None of this is used by the package or its tests' model code; torch is imported only inside the functions
that need it, and only in the upstream worker processes.
"""
import ast
import importlib.util
import os
import sys
import types


def torch_env(torch_path=None, env=None):
    """A copy of ``env`` (default ``os.environ``) whose PYTHONPATH starts with ``torch_path`` when given."""
    env = dict(os.environ if env is None else env)
    if torch_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath(torch_path), env.get("PYTHONPATH")]))
    return env


def set_torch_isa(isa="native"):
    """Choose the oneDNN ISA torch will use: ``native`` removes ONEDNN_MAX_CPU_ISA (set to AVX2 by
    ``import mindediting`` for MindSpore), anything else sets it. oneDNN reads the variable when torch
    creates its first primitive, so call this before the first convolution. Returns the value in force."""
    if isa == "native":
        os.environ.pop("ONEDNN_MAX_CPU_ISA", None)
    else:
        os.environ["ONEDNN_MAX_CPU_ISA"] = isa
    return os.environ.get("ONEDNN_MAX_CPU_ISA", "unset")


def stub_module(name, **attrs):
    """Register an empty package ``name`` (dotted) in ``sys.modules`` holding ``attrs``; returns it."""
    module = types.ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


class Registry:
    """Stand-in for an mmengine/cacti registry: ``register_module`` works as a bare decorator
    (``@MODELS.register_module``) and as a decorator factory (``@MODELS.register_module()``); the class is
    returned unchanged and nothing is recorded."""

    def register_module(self, *args, **kwargs):
        if len(args) == 1 and isinstance(args[0], type) and not kwargs:
            return args[0]
        return lambda cls: cls


def _require_file(path, what):
    if not os.path.isfile(path):
        raise SystemExit(f"{what}: {path} not found (extract the upstream checkout there first)")


def load_file_module(name, path, what="upstream"):
    """Import the file ``path`` as module ``name`` (registered in ``sys.modules`` first, so that relative
    imports of its siblings and later imports by that name resolve). ``what`` prefixes the error message
    (e.g. ``"bench_sci: --cacti_root"``)."""
    _require_file(path, what)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def compile_functions(path, names, scope, what="upstream"):
    """Compile only the top-level functions ``names`` of the file ``path`` into the dict ``scope`` (which
    provides their globals, e.g. ``{"torch": torch}``) and return ``{name: function}``. For upstream modules
    whose other imports are not installed. Raises SystemExit naming the file when one is missing."""
    _require_file(path, what)
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    missing = sorted(set(names) - {f.name for f in funcs})
    if missing:
        raise SystemExit(f"{what}: function(s) {', '.join(missing)} not found in {path}")
    exec(compile(ast.Module(body=funcs, type_ignores=[]), path, "exec"), scope)  # noqa: S102 (trusted checkout)
    return {name: scope[name] for name in names}


def load_torch_state(net, pth):
    """Strictly load ``pth`` into the torch module ``net``. The file is read with our torch-free reader and
    unwrapped like the converter does (``state_dict``/``params`` wrappers, ``generator.``/``module.``
    prefixes), so torch gets exactly the float32 arrays our converter starts from (files written by
    ``benchmarks/torch_format.save_pth`` also lack a record that ``torch.load`` insists on)."""
    import numpy as np
    import torch

    from mindediting.convert.converter import unwrap_state_dict
    from mindediting.convert.pth_reader import load_pth

    state = unwrap_state_dict(load_pth(pth), source=pth)
    net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=True)
    return net


def seeded_weights(shapes, seed=0):
    """Seeded weights for upstream-named ``shapes`` that keep recurrent SR networks (BasicVSR, BasicVSR++) and
    their SPyNet flows in a sane range: residual-block convs gain 0.1 (mmagic's own init scale), SPyNet's flow
    output convs 0.05, deformable offset heads' last conv 0.1, conv_last 0.3, the rest sqrt(2) (normal, He
    scaled); biases U(-0.01, 0.01); SPyNet's ImageNet mean/std as upstream."""
    import numpy as np

    rng = np.random.RandomState(seed)
    out = {}
    for key, shape in shapes.items():
        if key == "spynet.mean":
            out[key] = np.array([0.485, 0.456, 0.406], np.float32).reshape(shape)
        elif key == "spynet.std":
            out[key] = np.array([0.229, 0.224, 0.225], np.float32).reshape(shape)
        elif key.endswith(".bias"):
            out[key] = rng.uniform(-0.01, 0.01, shape).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            if ".main.2." in key:
                gain = 0.1
            elif key.endswith("basic_module.4.conv.weight"):
                gain = 0.05
            elif key.endswith("conv_offset.6.weight"):
                gain = 0.1
            elif key.startswith("conv_last"):
                gain = 0.3
            else:
                gain = 2 ** 0.5
            out[key] = (rng.randn(*shape) * gain / fan_in ** 0.5).astype(np.float32)
    return out

"""Device/mode setup and network loading shared by the entry scripts (train.py, eval.py, infer.py, export.py)."""
import logging


def setup_runtime(cfg, args=None, inference=False):
    """Apply ``--device_target``/``--mode`` (or the config's ``system`` section) to MindSpore's context.

    ``system.mode`` means the same everywhere: ``pynative``; ``graph`` (MindSpore GRAPH_MODE: whole networks,
    or whole training steps, compiled); ``hybrid`` (PyNative context with the model's compiled stages,
    ``jit_stages``; an inference mode). ``inference`` (eval.py, infer.py): ``system.infer_mode`` comes before
    ``system.mode``, for configs that both train and evaluate a model whose fastest exact modes differ (VRT trains
    compiled, but a compiled VRT is rebuilt for every input shape). ``--mode`` comes before both. The resolved
    values are written back into ``cfg['system']`` (``mode``: the one in use).
    """
    import mindspore as ms

    if not cfg.get("system"):
        cfg["system"] = {}  # absent or empty (None) in the YAML
    system = cfg["system"]
    device = getattr(args, "device_target", None) or system.get("device_target") or "CPU"
    mode = (getattr(args, "mode", None) or (inference and system.get("infer_mode")) or system.get("mode")
            or "pynative")
    system.update(device_target=device, mode=mode)
    device_id = system.get("device_id")
    try:
        # set_device raises once kernels have run, even for the same device (main() twice in one process)
        if device_id is not None or ms.get_context("device_target") != device:
            ms.set_device(device, device_id)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"device_target {device} is not usable here: {str(err).splitlines()[0]}") from None
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    threads = system.get("cpu_threads")
    if threads is not None and device == "CPU":
        if int(threads) < 1:
            raise ValueError(f"system.cpu_threads must be >= 1, got {threads}")
        # MindSpore's CPU pool spins while it waits: two jobs with a pool each on two cores slowed each other
        # down (tests/conftest.py: a tiny training step 0.68 CPU s with the default pool, 0.35 with one thread)
        try:
            ms.device_context.cpu.op_tuning.threads_num(int(threads))
        except RuntimeError as err:  # MindSpore takes it once per process (a second main() call, the test workers)
            if "repeatedly" not in str(err):
                raise
            logging.getLogger(__name__).info("system.cpu_threads %s: the thread count of this process was set "
                                             "before and is kept", threads)
    if system.get("seed") is not None:
        ms.set_seed(system["seed"])
    logging.getLogger(__name__).info("MindSpore %s on %s, %s mode", ms.__version__, device, mode)


def apply_pynative_synchronize(cfg):
    """PyNative ops on the calling thread instead of the asynchronous launch queue: the spec's default (VRT: it
    halves its CPU time on CPU), ``system.pynative_synchronize`` overrides it. Numbers are unchanged."""
    from mindediting import registry

    system = cfg.get("system") or {}
    sync = system.get("pynative_synchronize")
    if sync is None:
        sync = registry.get(cfg["model"]["name"]).pynative_synchronize
    if sync and system.get("mode") != "graph":
        import mindspore as ms

        ms.set_context(pynative_synchronize=True)


def build_network(cfg):
    """``model.name`` built with ``model.args`` in inference mode, prepared for ``system.mode``."""
    from mindediting import registry

    name = cfg["model"]["name"]
    net = registry.build_model(name, **(cfg["model"].get("args") or {}))
    mode = (cfg.get("system") or {}).get("mode")
    if mode in ("graph", "hybrid") and hasattr(net, "detect_mirror"):
        net.detect_mirror = False  # a host-side test: not expressible in a compiled graph
    apply_pynative_synchronize(cfg)
    if mode == "hybrid":
        if hasattr(net, "jit_stages"):
            net.jit_stages()
        else:
            logging.getLogger(__name__).warning("%s has no graph-compiled stages: hybrid mode runs it in PyNative",
                                                name)
    return net


def load_network(cfg, ckpt):
    """:func:`build_network`, then ``ckpt`` (MindSpore ``.ckpt``, or an upstream ``.pth`` mapped with the spec's
    weight mapping) loaded strictly: every parameter filled, no key left over."""
    from mindediting import registry
    from mindediting.convert.converter import CheckpointMismatch
    from mindediting.convert.weights import load_weights
    from mindediting.utils.resolve import resolve

    spec = registry.get(cfg["model"]["name"])
    net = build_network(cfg)
    mapping = resolve(spec.weights) if spec.weights else None
    try:
        return load_weights(net, ckpt, mapping=mapping, **(cfg["model"].get("args") or {}))
    except CheckpointMismatch as err:
        if not str(ckpt).endswith(".ckpt"):
            raise
        # the usual cause is a config built for another width/depth: name the shipped configs that fit
        from mindediting.config import fitting_configs_hint

        head, _, details = str(err).partition("; ")
        raise CheckpointMismatch(f"{head} ({fitting_configs_hint(spec.name, ckpt)}); {details}") from None

"""Device/mode setup and model loading shared by the top-level scripts (not used by library code)."""
import logging

SCI_MODELS = ("metasci", "efficientsci", "qsci")


def add_runtime_args(parser):
    parser.add_argument("--device_target", choices=("CPU", "GPU", "Ascend"), help="overrides system.device_target")
    parser.add_argument("--mode", choices=("pynative", "graph", "hybrid"),
                        help="overrides system.mode; hybrid: PyNative time loop with graph-compiled per-frame stages")
    parser.add_argument("overrides", nargs="*", help="config overrides section.key=value, e.g. eval.crop_border=4")


def setup_runtime(cfg, args):
    """Apply --device_target/--mode (or the config's ``system`` section) to MindSpore's context."""
    import mindspore as ms

    if not cfg.get("system"):
        cfg["system"] = {}  # absent or empty (None) in the YAML
    system = cfg["system"]
    device = args.device_target or system.get("device_target") or "CPU"
    mode = args.mode or system.get("mode") or "pynative"
    system.update(device_target=device, mode=mode)
    device_id = system.get("device_id")
    try:
        # set_device raises once kernels have run, even for the same device (main() twice in one process)
        if device_id is not None or ms.get_context("device_target") != device:
            ms.set_device(device, device_id)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"device_target {device} is not usable here: {str(err).splitlines()[0]}") from None
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    if system.get("seed") is not None:
        ms.set_seed(system["seed"])
    logging.getLogger(__name__).info("MindSpore %s on %s, %s mode", ms.__version__, device, mode)


def load_network(cfg, ckpt):
    """Build ``model.name`` with ``model.args`` and load ``ckpt`` strictly."""
    from mindediting.engine.checkpoint import load_checkpoint_strict
    from mindediting.models import build_model

    net = build_model(cfg["model"]["name"], **(cfg["model"].get("args") or {}))
    mode = cfg.get("system", {}).get("mode")
    if mode in ("graph", "hybrid") and hasattr(net, "detect_mirror"):
        net.detect_mirror = False
    # PyNative ops on the calling thread instead of the asynchronous launch queue: a per-model hint (VRT sets it;
    # it halves VRT's CPU time on CPU), system.pynative_synchronize overrides it. Numbers are unchanged.
    sync = cfg.get("system", {}).get("pynative_synchronize")
    if sync is None:
        sync = getattr(net, "pynative_synchronize", False)
    if sync and mode != "graph":
        import mindspore as ms

        ms.set_context(pynative_synchronize=True)
    if mode == "hybrid":
        if hasattr(net, "jit_stages"):
            net.jit_stages()
        else:
            logging.getLogger(__name__).warning("%s has no graph-compiled stages: hybrid mode runs it in PyNative",
                                                cfg["model"]["name"])
    return load_checkpoint_strict(ckpt, net)


def run_spike_cli(config_path, ckpt=None, output_dir=None, input_path=None, max_frames=0, overrides=()):
    """Hand a spike config (.dat or video in) to the spike pipeline's CLI, src/scripts/spike_infer.py."""
    from src.scripts import spike_infer

    argv = ["--config", config_path, "--max-frames", str(max_frames or 0)]
    for flag, value in (("--input", input_path), ("--ckpt", ckpt), ("--output-dir", output_dir)):
        if value:
            argv += [flag, value]
    return spike_infer.main(argv + list(overrides))

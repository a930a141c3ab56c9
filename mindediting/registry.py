"""One spec per model name: everything train.py, eval.py, infer.py, export.py and the weight converter need
to know about a model, in one place.

A :class:`ModelSpec` names its network Cell, its task, its trainer, evaluator and inference adapter as
``"package.module:Name"`` strings, so this module imports nothing above it and a model's code is imported
only when that model is used. Adding a model = its model file + one :func:`register` call (below for the
built-in ones, or in user code before calling a script's ``main(argv)``) + its configs.

Entry points read the spec; nothing outside this file and ``mindediting/models/`` compares model names.
"""
import dataclasses
import inspect
from dataclasses import dataclass, field

from mindediting.utils.resolve import resolve

TASKS = ("video_sr", "video_restoration", "video_sci", "spike", "flow")
TILINGS = ("generic", "blend", "none")


@dataclass(frozen=True)
class ModelSpec:
    """What the engine needs to know about one model.

    Attributes:
        name: the ``model.name`` of configs and ``build_model``.
        cell: ``"module:Class"`` of the network; its constructor takes the upstream arguments.
        task: one of :data:`TASKS`.
        inputs: names of the network's inputs, in call order (export takes one ``--input_shape`` each).
        layout: the inputs' layout and value range, for people and error messages.
        weights: ``"module:function"`` mapping an upstream state dict (numpy) to the Cell's parameter names,
            called as ``f(state, **ctor_kwargs)``; None when upstream keys are already ours.
        weight_args: upstream constructor arguments that name a weight file for a sub-network, as
            ``{arg: (attribute of the sub-cell, "module:mapping")}``. :func:`build_model` takes them out of the
            constructor call and loads the file after construction (layers never open files).
        init_weights: mapping used for an upstream ``.pth`` given as ``train.init_from`` when it differs from
            ``weights`` (Q-SCI starts from a full-precision EfficientSCI checkpoint).
        trainer: ``"module:Class"`` of the task trainer (constructor ``(cfg, run_dir, rank, world_size,
            progress)``), or None when train.py cannot train this model.
        evaluator: ``"module:function"`` called as ``f(cfg, ckpt=None, output_dir=None, progress=True)``.
        inference: ``"module:function"`` called as ``f(cfg, request)`` (see :mod:`mindediting.engine.video_task`).
        tiling: how long/large inputs are split for evaluation: ``generic`` (chunks and tiles of the engine),
            ``blend`` (VRT's upstream ``test_video``: overlapping windows averaged), ``none``.
        scale: the output/input size ratio when the config does not say (``data.scale``).
        pynative_synchronize: run PyNative ops synchronously by default (halves VRT's CPU time here).
        channel_axis: SCI only: the measurement and ``mask_s`` carry a channel axis ``(B, 1, H, W)``.
        compression_ratio: SCI only: the number of frames the network reconstructs per measurement, when fixed.
        infer_memory: peak host memory of ``infer.py`` for ``--max_memory``, measured end to end by
            ``benchmarks/measure_infer_memory.py``: ``floor_mb`` (runtime, network and codecs loaded) and
            ``kb_per_pixel`` (growth per low-resolution input pixel of one chunk, frames x tile area), optional
            ``min_chunk``, ``min_tile``, ``tile_multiple``, ``modes`` (the ``system.mode`` values it was measured
            in; another mode is refused), and ``baseline``: the same keys for the run without a checkpoint.
            None: the model takes no budget.
    """

    name: str
    cell: str
    task: str
    inputs: tuple = ("lq",)
    layout: str = "lq (N, T, C, h, w) float32 in [0, 1]"
    weights: str = None
    weight_args: dict = field(default_factory=dict)
    init_weights: str = None
    trainer: str = None
    evaluator: str = None
    inference: str = None
    tiling: str = "generic"
    scale: int = 1
    pynative_synchronize: bool = False
    channel_axis: bool = True
    compression_ratio: int = None
    infer_memory: dict = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"model spec '{self.name}': task '{self.task}' is not one of {', '.join(TASKS)}")
        if self.tiling not in TILINGS:
            raise ValueError(f"model spec '{self.name}': tiling '{self.tiling}' is not one of {', '.join(TILINGS)}")
        for attr in ("cell", "weights", "init_weights", "trainer", "evaluator", "inference"):
            value = getattr(self, attr)
            if value is not None and ":" not in str(value):
                raise ValueError(f"model spec '{self.name}': {attr} '{value}' must look like 'package.module:Name'")

    def entry(self, attr, purpose):
        """The object named by ``self.<attr>``; ValueError naming the model and the missing capability."""
        value = getattr(self, attr)
        if value is None:
            raise ValueError(f"model '{self.name}' ({self.task}) has no {attr}: {purpose} is not available for it")
        return resolve(value)

    def cell_class(self):
        return resolve(self.cell)

    def constructor_args(self):
        """``{name: inspect.Parameter}`` the config's ``model.args`` may hold (the Cell's + :attr:`weight_args`)."""
        params = dict(inspect.signature(self.cell_class().__init__).parameters)
        params.pop("self", None)
        for arg in self.weight_args:
            params[arg] = inspect.Parameter(arg, inspect.Parameter.KEYWORD_ONLY, default=None)
        return params

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


_SPECS = {}


def register(spec, replace=False):
    """Add ``spec`` under ``spec.name``; a second spec of the same name needs ``replace=True``."""
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"register() takes a ModelSpec, got {type(spec).__name__}")
    if spec.name in _SPECS and not replace:
        raise ValueError(f"model '{spec.name}' is already registered (pass replace=True to override it)")
    _SPECS[spec.name] = spec
    return spec


def unregister(name):
    """Remove ``name`` (tests that register toy models clean up with this)."""
    _SPECS.pop(name, None)


def get(name):
    """The spec of ``name``; ValueError listing the valid names otherwise."""
    try:
        return _SPECS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model '{name}'; valid names: {', '.join(names())}") from None


def names():
    return sorted(_SPECS)


def build_model(name, **kwargs):
    """Build ``name`` with the upstream constructor arguments, in inference mode.

    Weight-file arguments of the spec (e.g. BasicVSR's ``spynet_pretrained``) are loaded into their sub-network
    after construction through the one weight loader, :func:`mindediting.convert.weights.load_weights`.
    """
    spec = get(name)
    files = {arg: kwargs.pop(arg) for arg in list(kwargs) if arg in spec.weight_args}
    net = spec.cell_class()(**kwargs)
    for arg, path in files.items():
        if path is None:
            continue
        from mindediting.convert.weights import load_weights

        attribute, mapping = spec.weight_args[arg]
        target = getattr(net, attribute) if attribute else net
        load_weights(target, path, mapping=resolve(mapping) if mapping else None)
    net.set_train(False)
    return net


# ------------------------------------------------------------------------------------------- built-in models
_VIDEO = dict(evaluator="mindediting.engine.video_task:evaluate", inference="mindediting.engine.video_task:infer")
_SCI = dict(task="video_sci", inputs=("meas", "mask", "mask_s"),
            layout="meas (B, 1, H, W), mask (B, cr, H, W), mask_s (B, 1, H, W) float32",
            trainer="mindediting.engine.sci_trainer:SCITrainer", evaluator="mindediting.engine.sci_task:evaluate",
            inference="mindediting.engine.sci_task:infer", tiling="none")

register(ModelSpec(
    name="basicvsr", cell="mindediting.models.basicvsr:BasicVSRNet", task="video_sr", scale=4,
    weights="mindediting.models.basicvsr:convert_state_dict",
    weight_args={"spynet_pretrained": ("spynet", "mindediting.models.common.spynet:convert_state_dict")},
    trainer="mindediting.engine.video_trainer:VideoTrainer",
    # benchmarks/measure_infer_memory.py, official width, bikes 160x68, CPU, PyNative: 1204/1295 MB at 2/8 frames
    # (2026-12-05; the 786/831/911 MB at 2/6/12 measured earlier that day did not reproduce, cause not found);
    # bicubic baseline 487/542/678 MB at 2/10/30. Hybrid mode holds its compiled stages too. A few % margin.
    infer_memory=dict(floor_mb=1190, kb_per_pixel=1.5, min_tile=64, modes=("pynative",),
                      baseline=dict(floor_mb=490, kb_per_pixel=0.7)), **_VIDEO))
register(ModelSpec(
    name="spynet", cell="mindediting.models.common.spynet:SPyNet", task="flow", inputs=("ref", "supp"),
    layout="ref, supp (N, 3, H, W) float32 RGB in [0, 1] -> flow (N, 2, H, W)",
    weights="mindediting.models.common.spynet:convert_state_dict",
    weight_args={"pretrained": ("", "mindediting.models.common.spynet:convert_state_dict")}, tiling="none",
    trainer="mindediting.engine.flow_trainer:FlowTrainer"))
register(ModelSpec(
    name="vrt", cell="mindediting.models.vrt:VRT", task="video_restoration", scale=4, tiling="blend",
    layout="lq (N, T, C, h, w) float32 in [0, 1] (C = 4 with the noise-level map for denoising)",
    weights="mindediting.models.vrt:convert_state_dict",
    weight_args={"spynet_path": ("spynet", "mindediting.models.common.vrt_spynet:convert_state_dict")},
    trainer="mindediting.engine.video_trainer:VideoTrainer", pynative_synchronize=True,
    # benchmarks/measure_infer_memory.py, 001 (x4 SR, 30.7 M parameters, the largest), random weights, PyNative,
    # chunks of 6 real frames: 1902 MB at 64x64 and 2940 MB at 80x80, which VRT pads to 128x128 (8x8 windows at 1/8
    # scale), so pixels count after padding to 64. On an AVX-512 Xeon (2026-12-06): 1725 and 3284 MB (21.7 KB per
    # padded pixel), and 12 frames of 64x64 in two chunks of 6 peaked at 2009 MB: the model covers both CPUs and
    # the second chunk. Not measured: 005-008 (96-120 channels at the input size) and
    # 002-004 (more frames aligned in parallel). PyNative only: a compiled VRT holds more (tiny x4: 3.7 GB in graph
    # mode against 1.4 GB; configs/vrt/README.md, Execution mode), the official size compiled was not measured.
    # The baseline loads no network: BasicVSR's bicubic figures.
    infer_memory=dict(floor_mb=1560, kb_per_pixel=22, min_chunk=6, min_tile=64, pad_multiple=64,
                      modes=("pynative",), baseline=dict(floor_mb=490, kb_per_pixel=0.7, min_chunk=2, pad_multiple=1)),
    **_VIDEO))
register(ModelSpec(
    name="metasci", cell="mindediting.models.metasci:MetaSCI", weights="mindediting.models.metasci:convert_state_dict",
    compression_ratio=8, **_SCI))
register(ModelSpec(
    name="efficientsci", cell="mindediting.models.efficientsci:EfficientSCI",
    weights="mindediting.models.efficientsci:convert_state_dict", **_SCI))
register(ModelSpec(
    name="qsci", cell="mindediting.models.qsci:QuantizedSCI", weights="mindediting.models.qsci:convert_state_dict",
    init_weights="mindediting.models.efficientsci:convert_state_dict", channel_axis=False,
    **dict(_SCI, layout="meas (B, H, W), mask (B, cr, H, W), mask_s (B, H, W) float32")))
register(ModelSpec(
    name="spikling", cell="mindediting.models.spikling:Generator", task="spike", inputs=("spikes",),
    layout="spikes (N, 32, H, W) float32 in {-1, 1} (H, W multiples of 4)",
    weights="mindediting.models.spikling:convert_state_dict", trainer="mindediting.engine.spike_trainer:SpikeTrainer",
    evaluator="mindediting.engine.spike_task:evaluate", inference="mindediting.engine.spike_task:infer",
    tiling="none"))
register(ModelSpec(
    name="basicvsrpp", cell="mindediting.models.basicvsr_pp:BasicVSRPlusPlusNet", task="video_sr", scale=4,
    layout="lq (N, T, 3, h, w) float32 RGB in [0, 1] (same-size variant, is_low_res_input: false: (N, T, 3, H, W))",
    weights="mindediting.models.basicvsr_pp:convert_state_dict",
    weight_args={"spynet_pretrained": ("spynet", "mindediting.models.common.spynet:convert_state_dict")},
    trainer="mindediting.engine.video_trainer:VideoTrainer",
    # benchmarks/measure_infer_memory.py, official width (64 ch, 7 blocks), bikes 160x68, CPU, PyNative: 803/898/1016
    # MB at 2/6/12 frames (fit 771 MB + 1.99 KB per pixel); on an AVX-512 Xeon (2026-12-06) 866/969/1095 (fit 832 MB
    # with its residual + 2.14 KB), and a 5-frame clip in two chunks of 3 peaked at 916 MB there, ~25 MB above one
    # chunk: the floor covers both machines and the second chunk. The baseline is bicubic, as BasicVSR's
    infer_memory=dict(floor_mb=870, kb_per_pixel=2.2, min_tile=64, modes=("pynative",),
                      baseline=dict(floor_mb=490, kb_per_pixel=0.7)), **_VIDEO))

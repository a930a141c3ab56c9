"""Flat YAML experiment configs with ``key.sub=value`` command-line overrides.

A config has the sections ``model`` (``name`` + ``args``: the upstream constructor arguments), ``data``,
``eval``, ``infer``, ``train`` and ``system``. Every key a section may hold is listed in :data:`SCHEMA`
with its type, so a misspelt key or a value of the wrong type stops the run with one line that names
the key. ``model.args`` is checked against the model constructor's signature (from its registry spec), the
``train`` section against the schema of the model's trainer (``SCHEMA`` of the spec's trainer class).
"""
import inspect
import os

import yaml

ANY = object()  # a key whose value may be of any YAML type

SCHEMA = {
    "model": {"name": str, "args": dict},
    "data": {
        "dataset": str,  # reds4 | vimeo90k_test | video_folder | sixgray | ...
        "root": str,  # dataset root folder
        "gt_dir": str,  # ground-truth frames, relative to root
        "lq_dir": str,  # low-quality input frames, relative to root
        "clips": list,  # clip names to evaluate (REDS4: ['000', '011', '015', '020'])
        "meta_file": str,  # list of clips (Vimeo90K: sep_testlist.txt), relative to root
        "num_frames": int,  # frames per clip (0 = all)
        "scale": int,  # super-resolution factor
        "filename_tmpl": str,  # frame file name template, e.g. '{:08d}.png'
        "mask_path": str,
        "scenes": list,
        "sigma": ANY,
        "spike_size": list, "sim_size": list, "sim_seed": int,  # spike: .dat [W, H]; simulated [W, H]; seed
        "sim_motion": int, "sim_gain": ANY,  # spike: a video scored as a still (0) / k x faster scene, dimmer
    },
    "eval": {
        "metrics": list,  # psnr, ssim
        "convert_to": str,  # rgb | y
        "crop_border": int,
        "protocol": str,  # all_frames | center_frame | kair (KAIR main_test_vrt.py scoring: RGB and Y)
        "mirror_extend": bool,  # Vimeo90K-T: mirror the 7 frames to 14, as mmagic's test config
        "single_frame": int,  # ablation: each frame restored alone, as a clip of N copies of it (0 = off)
        "save_frames": bool,
        "output_dir": str,
        "max_clips": int,  # evaluate only the first N clips (0 = all)
        "tile": list,
        "tile_overlap": list,
        "sci_solver": str, "sci_solver_args": dict, "video": str,  # SCI: gap_tv|admm_tv when no ckpt; its args; gif|mp4|none
    },
    "infer": {
        "chunk_frames": int,  # frames per temporal chunk (0 = whole clip)
        "chunk_overlap": int,  # frames shared by consecutive chunks
        "tile": int,  # LR spatial tile size (0 = whole frame)
        "tile_overlap": int,
        "fps": ANY,
        "output_dir": str,
        "save_png": bool,
        "save_mp4": bool,
        "crf": int,  # H.264 quality of MP4 outputs (x264 CRF: 0 lossless .. 51; default 17)
        "baseline": str,  # model-free baseline used when no checkpoint is given (bicubic)
        "method": ANY, "window": int, "stride": int, "checkpoint": str,  # spike: interval|window|spikling
    },
    # declared by the chosen model's trainer (TrainLoop.SCHEMA; e.g. VideoTrainer.SCHEMA), see _check_train
    "train": None,
    "system": {
        "device_target": str,  # CPU | GPU | Ascend
        "mode": str,  # pynative | graph | hybrid (PyNative loop, graph-compiled stages)
        "infer_mode": str,  # mode of eval.py and infer.py when it differs from training's (default: mode)
        "device_id": int,
        "seed": int,
        "pynative_synchronize": bool,  # PyNative ops run synchronously (default: the model's hint, VRT true)
        "cpu_threads": int,  # CPU kernel threads of this process (default: MindSpore's); 1 when jobs share cores
    },
}

CHOICES = {
    ("system", "device_target"): ("CPU", "GPU", "Ascend"),
    ("system", "mode"): ("pynative", "graph", "hybrid"),
    ("system", "infer_mode"): ("pynative", "graph", "hybrid"),
    ("eval", "convert_to"): ("rgb", "y"),
}


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the file and key."""


def load_config(path, overrides=()):
    """Read ``path``, apply ``key.sub=value`` overrides, validate and return a plain dict."""
    path = str(path)
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as handle:
        try:
            cfg = yaml.safe_load(handle) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: invalid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    for item in overrides:
        apply_override(cfg, item, path)
    validate(cfg, path)
    return cfg


def apply_override(cfg, item, source="config"):
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like section.key=value")
    dotted, raw = item.split("=", 1)
    keys = dotted.strip().split(".")
    if len(keys) < 2:
        raise ConfigError(f"override '{item}' must name a section and a key, e.g. eval.crop_border=4")
    node = cfg
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: override '{dotted}' goes through '{key}', which is not a section")
    node[keys[-1]] = yaml.safe_load(raw) if raw.strip() else ""


def validate(cfg, source="config"):
    for section, body in cfg.items():
        if section not in SCHEMA:
            raise ConfigError(f"{source}: unknown section '{section}' (valid: {', '.join(SCHEMA)})")
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: section '{section}' must be a mapping")
        allowed = SCHEMA[section]
        if allowed is None:
            continue
        for key, value in body.items():
            if "_any" in allowed:
                continue
            if key not in allowed:
                raise ConfigError(f"{source}: unknown key '{section}.{key}' (valid: {', '.join(allowed)})")
            _check_type(f"{section}.{key}", value, allowed[key], source)
            choices = CHOICES.get((section, key))
            if choices and value not in choices:
                raise ConfigError(f"{source}: '{section}.{key}' is '{value}', expected one of {', '.join(choices)}")
    if (cfg.get("eval") or {}).get("sci_solver_args"):
        _check_solver_args(cfg["eval"], source)
    model = cfg.get("model")
    if not model or "name" not in model:
        raise ConfigError(f"{source}: missing key 'model.name'")
    check_model_args(model["name"], model.get("args") or {}, source)
    if cfg.get("train"):
        _check_train(model["name"], cfg["train"], source)


def _check_train(name, train, source):
    """``train`` keys and types against the schema of ``name``'s trainer; renamed keys name their new name."""
    from mindediting import registry

    try:
        trainer = registry.get(name).entry("trainer", "training")
        trainer.check_keys(train)
    except ValueError as err:
        raise ConfigError(f"{source}: {err}") from None
    for key, value in train.items():
        _check_type(f"train.{key}", value, trainer.SCHEMA[key][0], source)


def _check_solver_args(evaluation, source):
    """``eval.sci_solver_args`` against the constructor of ``eval.sci_solver`` (keys, and types of the defaults:
    ``tv_iter_max: '5'`` is named here, not met later as a comparison of str and int inside the solver)."""
    from mindediting.models.sci_classic import SOLVERS

    solver = evaluation.get("sci_solver") or "gap_tv"
    if solver not in SOLVERS:
        return  # the evaluator names the valid solvers
    params = {k: p for k, p in inspect.signature(SOLVERS[solver].__init__).parameters.items() if k != "self"}
    for key, value in evaluation["sci_solver_args"].items():
        name = f"eval.sci_solver_args.{key}"
        if key not in params:
            raise ConfigError(f"{source}: unknown key '{name}' for {solver} (valid: {', '.join(params)})")
        default = params[key].default
        if default is None or value is None:
            continue
        if isinstance(default, (list, tuple)):
            _check_type(name, value, list, source)
            for item in value:
                _check_type(f"{name} item", item, type(default[0]) if default else ANY, source)
            continue
        _check_type(name, value, float if isinstance(default, float) else type(default), source)


def _check_type(name, value, expected, source):
    """``expected``: a type, a tuple of types, or ANY (trainer schemas say ``object``)."""
    if expected is ANY or expected is object or value is None:
        return
    kinds = expected if isinstance(expected, tuple) else (expected,)
    ok = any(isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool)) for kind in kinds)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        names = " or ".join(kind.__name__ for kind in kinds)
        raise ConfigError(f"{source}: '{name}' should be {names}, got {type(value).__name__} ({value!r})")


def check_model_args(name, args, source="config"):
    """Every ``model.args`` key must be a constructor argument; types must match the defaults'."""
    from mindediting import registry

    try:
        params = registry.get(name).constructor_args()
    except ValueError as err:
        raise ConfigError(f"{source}: {err}") from None
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key, value in args.items():
        if key not in params:
            if takes_kwargs:
                continue
            valid = [p for p in params if p != "self"]
            raise ConfigError(f"{source}: unknown key 'model.args.{key}' for {name} (valid: {', '.join(valid)})")
        default = params[key].default
        if default is inspect.Parameter.empty or default is None or value is None:
            continue
        if isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
            continue
        expected = float if isinstance(default, float) else type(default)
        _check_type(f"model.args.{key}", value, expected, source)


CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def fitting_configs(name, ckpt, configs_dir=CONFIGS_DIR, max_builds=4):
    """Configs under ``configs_dir`` (``<model>/*.yaml``) for model ``name`` whose network has exactly the
    parameter names and shapes of the MindSpore checkpoint ``ckpt``: the answer to "which config fits these
    weights?" when a strict load fails. One network is built per distinct ``model.args`` (at most
    ``max_builds``, smallest first, as this runs on an error path). Returns relative paths, sorted."""
    import glob
    import json

    from mindediting.convert.weights import read_weights
    from mindediting.models import build_model

    shapes = {k: tuple(v.shape) for k, v in read_weights(ckpt).items()}
    groups = {}
    for path in sorted(glob.glob(os.path.join(configs_dir, "*", "*.yaml"))):
        try:
            with open(path, encoding="utf-8") as handle:
                model = (yaml.safe_load(handle) or {}).get("model") or {}
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        if model.get("name") == name:
            args = json.dumps(model.get("args") or {}, sort_keys=True)
            groups.setdefault(args, []).append(os.path.relpath(path, os.path.dirname(configs_dir)))
    # widths and depths grow the network: trying the small argument sets first keeps the search short
    fits = []
    for args in sorted(groups, key=lambda a: sum(v for v in json.loads(a).values() if isinstance(v, int)))[:max_builds]:
        try:
            net = build_model(name, **json.loads(args))
        except (ValueError, TypeError):
            continue
        if {k: tuple(p.shape) for k, p in net.parameters_and_names()} == shapes:
            fits.extend(groups[args])
    return sorted(fits)


def fitting_configs_hint(name, ckpt):
    """A sentence to append to a "does not fit" error: the configs that fit ``ckpt``, or that none does."""
    fits = fitting_configs(name, ckpt)
    if not fits:
        return f"no config under configs/ for {name} fits it"
    return f"{'this config fits' if len(fits) == 1 else 'these configs fit'} it: {', '.join(fits)}"

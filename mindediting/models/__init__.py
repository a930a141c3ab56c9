"""Model construction: a flat map from model name to the class that builds it.

Every entry names ``module:Class``; modules are imported only when the model is built, so
importing :mod:`mindediting.models` stays cheap and one broken model cannot hide the others.
Each model module also provides ``convert_state_dict(state_dict, **ctor_kwargs)`` which maps
upstream PyTorch keys/layouts onto the Cell's parameter names (see :mod:`mindediting.convert`).
"""
import importlib

MODELS = {
    "basicvsr": "mindediting.models.basicvsr:BasicVSRNet",
    "spynet": "mindediting.models.common.spynet:SPyNet",
    "vrt": "mindediting.models.vrt:VRT",
    "metasci": "mindediting.models.metasci:MetaSCI",
    "efficientsci": "mindediting.models.efficientsci:EfficientSCI",
    "qsci": "mindediting.models.qsci:QuantizedSCI",
    "spikling": "mindediting.models.spikling:Generator",
}


def _check_name(name):
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}'; valid names: {', '.join(sorted(MODELS))}")


def model_module(name):
    """The Python module that defines model ``name`` (and its checkpoint mapping)."""
    _check_name(name)
    return importlib.import_module(MODELS[name].split(":")[0])


def model_class(name):
    from mindediting.utils.resolve import resolve

    _check_name(name)
    return resolve(MODELS[name])


def build_model(name, **kwargs):
    """Build model ``name`` with the upstream constructor arguments, in inference mode."""
    net = model_class(name)(**kwargs)
    net.set_train(False)
    return net

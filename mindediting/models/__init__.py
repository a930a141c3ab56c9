"""The networks, one file per model; ``build_model`` is the public way to construct one.

Which names exist and how each is built, trained, evaluated and run is told by its spec in
:mod:`mindediting.registry`; ``build_model`` here is that registry's, re-exported under the name users know
(``from mindediting.models import build_model``). It is the one import of this package that points up the
layers, made at call time so that importing a model file never imports the registry.
"""


def build_model(name, **kwargs):
    """Build model ``name`` with the upstream constructor arguments, in inference mode (see
    :func:`mindediting.registry.build_model`)."""
    from mindediting.registry import build_model as build

    return build(name, **kwargs)

"""Import an object from a ``"package.module:Name"`` string (model and trainer tables use such strings so that a
module is imported only when its entry is used)."""
import importlib


def resolve(spec):
    """The attribute ``Name`` of module ``package.module`` for ``spec = "package.module:Name"``."""
    module_name, sep, attr = str(spec).partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"'{spec}': expected 'package.module:Name'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"'{spec}': module {module_name} has no attribute '{attr}'") from None

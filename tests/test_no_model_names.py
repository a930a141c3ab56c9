"""Only the registry and the model files know model names: an AST scan of every other module of the package, the
entry scripts and src/scripts finds no comparison, membership test or dictionary key whose value is a
registered model name (per-model behaviour belongs in the model's spec)."""
import ast
import os

from mindediting import registry
from tests.golden import REPO

EXEMPT = (os.path.join("mindediting", "registry.py"), os.path.join("mindediting", "models") + os.sep)


def scanned_files():
    files = [f for f in os.listdir(REPO) if f.endswith(".py")]
    for folder in ("mindediting", os.path.join("src", "scripts")):
        for root, _, names in os.walk(os.path.join(REPO, folder)):
            files += [os.path.relpath(os.path.join(root, n), REPO) for n in names if n.endswith(".py")]
    return sorted(f for f in files if not f.startswith(EXEMPT))


def _strings(node):
    """String constants of ``node`` itself or of the tuple/list/set literal it is."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [s for elt in node.elts for s in _strings(elt)]
    return []


def model_name_uses(source, names):
    """``[(line, what)]`` of comparisons, membership tests and dict keys holding one of ``names``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                found += [(node.lineno, f"compares with '{s}'") for s in _strings(operand) if s in names]
        elif isinstance(node, ast.Dict):
            found += [(node.lineno, f"dict key '{k.value}'") for k in node.keys
                      if isinstance(k, ast.Constant) and k.value in names]
    return found


def test_scanner_finds_each_kind():
    names = {"basicvsr", "vrt"}
    source = ("a = x == 'vrt'\nb = name in ('basicvsr', 'other')\nc = {'vrt': 1}\n"
              "d = x == 'vrtx'\ne = {'k': 'vrt'}\nf = 'basicvsr'\n")
    assert model_name_uses(source, names) == [(1, "compares with 'vrt'"), (2, "compares with 'basicvsr'"),
                                              (3, "dict key 'vrt'")]


def test_no_module_outside_the_registry_and_models_knows_a_model_name():
    names = set(registry.names())
    files = scanned_files()
    assert "eval.py" in files and os.path.join("mindediting", "engine", "runtime.py") in files
    offences = []
    for path in files:
        with open(os.path.join(REPO, path), encoding="utf-8") as handle:
            offences += [f"{path}:{line}: {what}" for line, what in model_name_uses(handle.read(), names)]
    assert not offences, "model names outside the registry:\n" + "\n".join(offences)

"""The package's imports point down the layers, form no cycle and never reach the scripts, tests or benchmarks.

Layers, lowest first: utils -> data, metrics, metrics_sci, losses, optim -> models -> convert -> registry -> config,
engine -> entry scripts (outside the package). Every ``import`` counts, at module level or inside a function,
since a lazy import ties the modules together as much as an eager one does.
"""
import ast
import os

from tests.golden import REPO

PACKAGE = "mindediting"
LAYERS = {
    "": 0,  # the package's own __init__
    "utils": 0,
    "data": 1, "metrics": 1, "metrics_sci": 1, "losses": 1, "optim": 1,
    "models": 2,
    "convert": 3,
    "registry": 4,
    "config": 5, "engine": 5,
}
LAYER_NAMES = ["utils", "data/metrics/losses/optim", "models", "convert", "registry", "config/engine"]
# (importing module, function, imported module): the only import allowed to point up, documented where it is
UPWARD_ALLOWED = {("mindediting.models", "build_model", "mindediting.registry")}
# top-level names the package must never import: the layers above it and what is not shipped
OUTSIDE = {"src", "tests", "benchmarks", "scripts"} | {
    name[:-3] for name in os.listdir(REPO) if name.endswith(".py")
}


def _package_modules():
    """``{dotted module name: file path}`` of every module of the package."""
    modules = {}
    for folder, dirs, files in os.walk(os.path.join(REPO, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        for name in files:
            if name.endswith(".py"):
                parts = os.path.relpath(os.path.join(folder, name), REPO)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                modules[".".join(parts)] = os.path.join(folder, name)
    return modules


class _Imports(ast.NodeVisitor):
    """``(line, enclosing function or None, dotted name)`` of every import in one module."""

    def __init__(self, module, is_package, known):
        self.package = module if is_package else module.rpartition(".")[0]
        self.known, self.functions, self.found = known, [], []

    def _function(self, node):
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def _add(self, node, name):
        self.found.append((node.lineno, self.functions[-1] if self.functions else None, name))

    def visit_Import(self, node):
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node):
        base = node.module or ""
        if node.level:
            anchor = self.package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        for alias in node.names:
            # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name`` imports mod
            self._add(node, f"{base}.{alias.name}" if f"{base}.{alias.name}" in self.known else base)


def _imports():
    """``{module: [(line, function, imported name)]}`` for every package module."""
    modules = _package_modules()
    found = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=path)
        visitor = _Imports(module, path.endswith("__init__.py"), modules)
        visitor.visit(tree)
        found[module] = visitor.found
    return modules, found


def _layer(module):
    """Layer of a package module, or None when its top-level part is not assigned one."""
    top = module.split(".")[1] if "." in module else ""
    return LAYERS.get(top)


def _where(module, line, function):
    return f"{module}:{line}" + (f" (in {function})" if function else "")


def test_every_module_has_a_layer():
    modules, _ = _imports()
    unassigned = sorted(m for m in modules if _layer(m) is None)
    assert not unassigned, f"modules outside every layer (add them to LAYERS in this test): {unassigned}"


def test_imports_point_down_only():
    _, found = _imports()
    offenders = []
    for module, imports in sorted(found.items()):
        for line, function, name in imports:
            if name.split(".")[0] != PACKAGE or (module, function, name) in UPWARD_ALLOWED:
                continue
            mine, theirs = _layer(module), _layer(name)
            if mine is not None and theirs is not None and theirs > mine:
                offenders.append(f"{_where(module, line, function)} ({LAYER_NAMES[mine]}) imports {name} "
                                 f"({LAYER_NAMES[theirs]})")
    assert not offenders, "imports pointing up the layers:\n  " + "\n  ".join(offenders)


def test_package_never_imports_scripts_tests_or_benchmarks():
    _, found = _imports()
    offenders = [f"{_where(module, line, function)} imports {name}"
                 for module, imports in sorted(found.items()) for line, function, name in imports
                 if name.split(".")[0] in OUTSIDE]
    assert not offenders, "the package imports code that is not part of it:\n  " + "\n  ".join(offenders)


def _find_cycle(graph):
    """One cycle of ``graph`` (``{node: set of nodes}``) as a list of nodes, first repeated last; None if acyclic."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycles():
    modules, found = _imports()
    graph = {m: {name for _, _, name in imports if name in modules and name != m} for m, imports in found.items()}
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_and_relative_imports():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    known = {"mindediting.models.common.flow_warp", "mindediting.models.common"}
    visitor = _Imports("mindediting.models.common.spynet", False, known)
    visitor.visit(ast.parse("from .flow_warp import flow_warp\nfrom .. import basicvsr\n"
                            "def f():\n    from . import flow_warp\n"))
    assert visitor.found == [(1, None, "mindediting.models.common.flow_warp"), (2, None, "mindediting.models"),
                             (4, "f", "mindediting.models.common.flow_warp")]

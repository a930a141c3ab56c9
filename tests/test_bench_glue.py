"""benchmarks/upstream_glue.py: the shared import glue of the upstream benchmark rows (no torch needed)."""
import os
import sys

import pytest

from benchmarks.upstream_glue import Registry, compile_functions, load_file_module, set_torch_isa, stub_module, torch_env


@pytest.fixture
def clean_modules():
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_stub_modules_and_file_module_resolve_upstream_imports(tmp_path, clean_modules):
    # an "upstream" file importing its registry from a stubbed package and decorating both ways
    src = tmp_path / "net.py"
    src.write_text(
        "from glue_pkg.builder import MODELS\n"
        "@MODELS.register_module\n"
        "class A:\n    pass\n"
        "@MODELS.register_module()\n"
        "class B:\n    pass\n"
        "@MODELS.register_module(name='c')\n"
        "class C:\n    pass\n"
    )
    stub_module("glue_pkg")
    builder = stub_module("glue_pkg.builder", MODELS=Registry())
    assert sys.modules["glue_pkg.builder"] is builder and builder.__path__ == []
    module = load_file_module("glue_pkg.net", str(src))
    assert sys.modules["glue_pkg.net"] is module
    assert [module.A.__name__, module.B.__name__, module.C.__name__] == ["A", "B", "C"]


def test_load_file_module_missing_file_names_it(tmp_path):
    missing = tmp_path / "nope.py"
    with pytest.raises(SystemExit, match=f"bench_x: --root: {missing} not found"):
        load_file_module("glue_missing", str(missing), "bench_x: --root")


def test_compile_functions_takes_only_the_named_functions(tmp_path):
    src = tmp_path / "utils.py"
    src.write_text(
        "import package_that_is_not_installed\n"
        "def A(x, k):\n    return np.multiply(x, k)\n"
        "def At(y):\n    return y + OFFSET\n"
        "def other():\n    raise RuntimeError\n"
    )
    import numpy as np

    scope = {"np": np, "OFFSET": 10}
    funcs = compile_functions(str(src), ("A", "At"), scope)
    assert sorted(funcs) == ["A", "At"] and "other" not in scope
    assert funcs["A"](3, 4) == 12 and funcs["At"](1) == 11
    with pytest.raises(SystemExit, match=r"bench_y: function\(s\) B, C not found in .*utils.py"):
        compile_functions(str(src), ("A", "B", "C"), {}, "bench_y")


def test_torch_env_prepends_the_torch_folder_and_isa_switch(monkeypatch, tmp_path):
    env = torch_env(str(tmp_path), {"PYTHONPATH": "/a", "X": "1"})
    assert env == {"PYTHONPATH": f"{tmp_path}{os.pathsep}/a", "X": "1"}
    assert torch_env(None, {"X": "1"}) == {"X": "1"}
    assert torch_env("rel", {})["PYTHONPATH"] == os.path.abspath("rel")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert set_torch_isa("native") == "unset" and "ONEDNN_MAX_CPU_ISA" not in os.environ
    assert set_torch_isa("AVX512_CORE") == "AVX512_CORE" == os.environ["ONEDNN_MAX_CPU_ISA"]

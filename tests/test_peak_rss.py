"""The child's peak RSS is its own, whatever the parent holds (the reason ``mindediting.utils.peak_rss`` exists)."""

import os

import numpy as np

from mindediting.utils.peak_rss import own_peak_rss, run_script

MIB = 2**20


def _script(tmp_path, body):
    path = tmp_path / "child.py"
    path.write_text("import sys\n" + body)
    return str(path)


def test_small_child_of_a_big_parent_reports_its_own_peak(tmp_path):
    ballast = np.ones(800 * MIB, dtype=np.uint8)  # the parent's RSS grows by 800 MiB, touched
    assert own_peak_rss() >= 800 * MIB
    code, output, peak = run_script(_script(tmp_path, "print('hello', sys.argv[1:])\n"), ["a", "b"], cwd=str(tmp_path))
    del ballast
    assert code == 0 and output.strip() == "hello ['a', 'b']"
    assert peak < 100 * MIB, peak / MIB  # a bare interpreter; ru_maxrss here would be >= 800 MiB


def test_child_allocation_is_counted_and_exit_code_kept(tmp_path):
    body = "import numpy as np\nx = np.ones(300 * 2**20, dtype=np.uint8)\nprint(int(x.sum() > 0))\nsys.exit(3)\n"
    code, output, peak = run_script(_script(tmp_path, body), [], cwd=os.getcwd())
    assert code == 3 and output.strip() == "1"
    assert 300 * MIB <= peak < 450 * MIB, peak / MIB


def test_failing_child_still_reports(tmp_path):
    code, output, peak = run_script(_script(tmp_path, "raise ValueError('bad input x.yaml')\n"), [], cwd=str(tmp_path))
    assert code == 1 and "ValueError: bad input x.yaml" in output and peak > 0

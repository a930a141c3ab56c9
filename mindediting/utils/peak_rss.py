"""Peak resident memory of a Python script run in a child process, for memory tests and benchmarks.

The child's ``ru_maxrss`` (``os.wait4``, ``resource.getrusage``) is not its own peak: at ``exec`` Linux keeps the
high-water mark of the address space being replaced, which for a child that Python forked or vforked is the
parent's. A child of a 4 GB pytest process therefore reports 4 GB however little it used. ``VmHWM`` in
``/proc/self/status`` belongs to the address space ``exec`` creates, so the child reads its own when it exits.
"""

import subprocess
import sys

MARKER = "[peak_rss] VmHWM kB:"

# runs the script as ``python script argv`` would, and prints its VmHWM when the interpreter exits (also on
# sys.exit and on an uncaught exception)
_WRAPPER = f"""
import atexit, runpy, sys

def _report():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stdout.flush()
                sys.stderr.write("\\n{MARKER} " + line.split()[1] + "\\n")
                sys.stderr.flush()

atexit.register(_report)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_script(script, argv, cwd, env=None):
    """``(exit code, output, peak RSS in bytes)`` of ``python script *argv`` run in ``cwd``.

    ``output`` is stdout and stderr together, without the measurement line. The peak is ``None`` when the child
    died before it could report (killed by a signal)."""
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, script, *argv], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.decode(errors="replace")
    peak = None
    kept = []
    for line in output.splitlines(keepends=True):
        if line.startswith(MARKER):
            peak = int(line[len(MARKER):]) * 1024
        else:
            kept.append(line)
    return proc.returncode, "".join(kept), peak


def own_peak_rss():
    """VmHWM of the calling process, bytes (its own address space, see the module docstring)."""
    peak = status_mib("VmHWM")
    if not peak:
        raise RuntimeError("/proc/self/status has no VmHWM line")
    return int(peak * 1024) * 1024


def status_mib(field):
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``, ...) in MiB; 0.0 when absent."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def reset_peak():
    """Reset this process's VmHWM to its current RSS (``5`` to ``/proc/self/clear_refs``); False where the kernel
    or the sandbox refuses, and the caller has to measure otherwise."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False

"""The common ending of the command-line scripts (train.py, eval.py, infer.py, export.py, src/scripts/*).

A user mistake (bad config, missing file, wrong checkpoint) is reported as ONE line ``error: <message>`` on
stderr and exit code 2, never a traceback; anything else (a bug) still raises. Every error class the scripts
raise for users (ConfigError, CheckpointError, ResumeError, LmdbError, ...) derives from ValueError.

The system's errors end the same way whatever ``errors`` a script chose: ``OSError`` (disk full, read-only or
vanished folder, permission) and ``MemoryError`` with exit code 2, Ctrl-C with ``interrupted`` and exit code
130 (the shell's code for SIGINT). Atomic writes still in progress are discarded first, so a script that stops
early leaves no partial file, hidden or not.
"""
import errno
import os
import sys

from mindediting.utils.atomic import discard_pending

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
USER_ERRORS = (ValueError, FileNotFoundError)
SYSTEM_ERRORS = (OSError, MemoryError)


def print_error(err):
    """Default report: ``error: <err>`` on stderr."""
    print(f"error: {err}", file=sys.stderr)


class SystemFailure(Exception):
    """An ``OSError`` or ``MemoryError`` restated in one line for :func:`run_cli`'s report."""


def describe_system_error(err):
    """One line for an ``OSError`` / ``MemoryError``: the file, what went wrong and, for a full disk or
    memory, what to do."""
    if isinstance(err, MemoryError):
        detail = f" ({err})" if str(err) else ""
        return f"out of memory{detail}; use smaller inputs (infer.chunk_frames, infer.tile, batch_size) or free memory"
    text = err.strerror or str(err) or type(err).__name__
    if err.filename is not None:
        text = f"{os.fsdecode(err.filename)}: {text}"
        if err.filename2 is not None:
            text += f" (-> {os.fsdecode(err.filename2)})"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        text += "; free disk space or choose another output folder"
    return " ".join(text.split())


def run_cli(body, errors=USER_ERRORS, report=print_error):
    """Call ``body()`` and return the exit code: its return value (0 when it returns None),
    :data:`EXIT_USER_ERROR` after ``report(err)`` when it raises one of ``errors`` or a system error
    (:data:`SYSTEM_ERRORS`, reported as a :class:`SystemFailure` with a one-line message), or
    :data:`EXIT_INTERRUPTED` after Ctrl-C."""
    try:
        code = body()
    except KeyboardInterrupt:
        discard_pending()
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except errors as err:
        discard_pending()
        report(err)
        return EXIT_USER_ERROR
    except SYSTEM_ERRORS as err:
        discard_pending()
        report(SystemFailure(describe_system_error(err)))
        return EXIT_USER_ERROR
    except BaseException:
        discard_pending()
        raise
    return 0 if code is None else code


# ------------------------------------------------------------------------------------ one argument convention
DEVICES = ("CPU", "GPU", "Ascend")
MODES = ("pynative", "graph", "hybrid")


def script_parser(doc, config_help="experiment YAML (configs/<model>/*.yaml)", output_help="output folder",
                  config_required=True):
    """An ``argparse`` parser with the options every network-running script shares: ``--config_path``,
    ``--output_dir``, ``--device_target``, ``--mode`` (``--help`` comes with argparse). Add the script's own
    options, then parse with :func:`parse_script_args`, which adds the ``section.key=value`` overrides."""
    import argparse

    # no prefix matching: an old spelling such as --config must fail, not pass as --config_path
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--config_path", required=config_required, help=config_help)
    parser.add_argument("--output_dir", help=output_help)
    parser.add_argument("--device_target", choices=DEVICES, help="overrides system.device_target (default CPU)")
    parser.add_argument("--mode", choices=MODES,
                        help="overrides system.mode; hybrid: PyNative loop with graph-compiled stages")
    return parser


def parse_script_args(parser, argv=None):
    """Parse ``argv`` with overrides ``section.key=value`` allowed in any position, between options too
    (``a.b=1 --ckpt W c.d=2``)."""
    parser.add_argument("overrides", nargs="*", help="config overrides section.key=value, e.g. eval.crop_border=4")
    return parser.parse_intermixed_args(argv)

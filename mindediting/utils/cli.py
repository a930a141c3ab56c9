"""The common ending of the command-line scripts (train.py, eval.py, infer.py, export.py, src/scripts/*).

A user mistake (bad config, missing file, wrong checkpoint) is reported as ONE line ``error: <message>`` on
stderr and exit code 2, never a traceback; anything else (a bug) still raises. Every error class the scripts
raise for users (ConfigError, CheckpointError, ResumeError, LmdbError, ...) derives from ValueError.
"""
import sys

EXIT_USER_ERROR = 2
USER_ERRORS = (ValueError, FileNotFoundError)


def print_error(err):
    """Default report: ``error: <err>`` on stderr."""
    print(f"error: {err}", file=sys.stderr)


def run_cli(body, errors=USER_ERRORS, report=print_error):
    """Call ``body()`` and return the exit code: its return value (0 when it returns None), or
    :data:`EXIT_USER_ERROR` after ``report(err)`` when it raises one of ``errors``."""
    try:
        code = body()
    except errors as err:
        report(err)
        return EXIT_USER_ERROR
    return 0 if code is None else code

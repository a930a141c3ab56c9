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

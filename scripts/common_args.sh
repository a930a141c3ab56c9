# Argument checks shared by the launch scripts in this folder. Not run on its own: each script does
#   source "$(dirname "$0")/common_args.sh"
# It sets ROOT (the repository) and PYTHON (default: python) and defines the functions below. Errors
# print "error: ..." on stderr and exit with status 1.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python}

# the calling script's header comment (from line 2 to the first code line), without the leading '# '
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }

die() { echo "error: $*" >&2; exit 1; }

# need_args MIN "$@": print the usage and exit 1 when fewer than MIN arguments were given
need_args() {
  local min=$1; shift
  if [ $# -lt "$min" ]; then usage; exit 1; fi
}

check_device_num() {
  if ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
    echo "error: DEVICE_NUM must be a positive integer, got '$1'" >&2; usage; exit 1
  fi
}

check_config() { [ -f "$1" ] || die "config file not found: $1"; }

# distributed_args "$@": DEVICE_NUM and CONFIG_PATH from the first two arguments, checked (the caller shifts 2)
distributed_args() {
  need_args 2 "$@"
  DEVICE_NUM=$1; CONFIG_PATH=$2
  check_device_num "$DEVICE_NUM"
  check_config "$CONFIG_PATH"
}

# is_run_dir ARG: true when ARG can be the optional RUN_DIR (not a --flag, not a key=value override)
is_run_dir() { [[ "$1" != -* ]] && [[ "$1" != *=* ]]; }

# config_run_dir CONFIG_PATH: train.output_dir of the config (default runs/train)
config_run_dir() {
  "$PYTHON" -c "import sys, yaml; c = yaml.safe_load(open(sys.argv[1])) or {}; print((c.get('train') or {}).get('output_dir') or 'runs/train')" "$1"
}

require_msrun() { command -v msrun >/dev/null || die "msrun not found on PATH (it comes with mindspore)"; }

# msrun starts workers with the first 'python' on PATH: the folder of $PYTHON's interpreter goes first
python_dir() { dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')"; }

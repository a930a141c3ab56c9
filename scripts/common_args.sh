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

# msrun starts workers with the first 'python' on PATH: the folder of $PYTHON's interpreter goes first
python_dir() { dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')"; }

# find_msrun: MSRUN = the msrun installed with $PYTHON's mindspore (its interpreter's bin folder), else the
# first on PATH; a venv need not be activated
find_msrun() {
  local dir
  dir=$(python_dir) || die "PYTHON=$PYTHON does not run"
  if [ -x "$dir/msrun" ]; then MSRUN="$dir/msrun"
  elif command -v msrun >/dev/null; then MSRUN=$(command -v msrun)
  else die "msrun not found in $dir (beside $PYTHON) nor on PATH; it comes with mindspore: $PYTHON -m pip install mindspore"
  fi
}

# take_flags "$@": --help/-h prints the usage and exits 0; --dry_run sets DRY_RUN=1; both are removed and the
# remaining arguments are left in ARGS (the caller does: take_flags "$@"; set -- "${ARGS[@]}")
DRY_RUN=0
take_flags() {
  ARGS=()
  local arg
  for arg in "$@"; do
    case "$arg" in
      -h|--help) usage; exit 0 ;;
      --dry_run) DRY_RUN=1 ;;
      --dry-run) die "the flag is --dry_run (underscore, as train.py's options)" ;;
      *) ARGS+=("$arg") ;;
    esac
  done
}

# show_or_run CMD...: print the command (shell-quoted) under --dry_run, else run it
show_or_run() {
  if [ "$DRY_RUN" = 1 ]; then printf '%q ' "$@"; echo; else "$@"; fi
}

# print_rank_configs DEVICE_NUM DEVICE_TARGET CONFIG_PATH [train.py args...]: the config each rank would train with
# (the YAML, then its overrides and --mode), validated as train.py validates it; for --dry_run
print_rank_configs() {
  PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" - "$@" <<'PY' || die "the config does not validate (see above)"
import sys

import yaml

from mindediting.config import ConfigError, load_config

num, device, path, rest = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
overrides = [a for a in rest if "=" in a and not a.startswith("-")]
mode = rest[rest.index("--mode") + 1] if "--mode" in rest[:-1] else None
try:
    base = load_config(path, overrides)
except (ConfigError, ValueError) as err:
    sys.exit(f"error: {err}")
for rank in range(num):
    cfg = load_config(path, overrides)
    system = cfg.setdefault("system", None) or {}
    system.update(device_target=device, mode=mode or system.get("mode") or "pynative")
    if num > 1:
        system["device_id"] = rank
    cfg["system"] = system
    batch = int((cfg.get("train") or {}).get("batch_size") or 1)
    print(f"# rank {rank} of {num} ({device}); global batch {batch * num} = {num} x train.batch_size {batch}")
    print(yaml.safe_dump(cfg, sort_keys=False).rstrip())
PY
}

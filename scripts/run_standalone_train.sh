#!/bin/bash
# Train on one device.
#
# usage: bash scripts/run_standalone_train.sh CONFIG_PATH [DEVICE_TARGET] [RUN_DIR] [train.py args/overrides...] [--dry_run]
#   CONFIG_PATH    experiment YAML, e.g. configs/basicvsr/basicvsr_reds_train.yaml
#   DEVICE_TARGET  CPU | GPU | Ascend (default: system.device_target of the config)
#   RUN_DIR        run directory (default: train.output_dir); the log goes to RUN_DIR/train.log
#   --dry_run      print the command and the resolved config, start nothing
#   --help         this text
# example: bash scripts/run_standalone_train.sh configs/basicvsr/basicvsr_reds_train.yaml GPU runs/reds --resume auto
source "$(dirname "$0")/common_args.sh"
take_flags "$@"; set -- "${ARGS[@]}"  # --help (anywhere) prints the usage; --dry_run sets DRY_RUN
need_args 1 "$@"
CONFIG_PATH=$1; shift
check_config "$CONFIG_PATH"
ARGS=()
if [ $# -gt 0 ] && [[ "$1" =~ ^(CPU|GPU|Ascend)$ ]]; then ARGS+=(--device_target "$1"); shift
elif [ $# -gt 0 ] && [[ "$1" =~ ^(cpu|gpu|ascend|npu)$ ]]; then die "DEVICE_TARGET must be CPU, GPU or Ascend, got '$1'"; fi
RUN_DIR=""
if [ $# -gt 0 ] && is_run_dir "$1"; then ARGS+=(--output_dir "$1"); RUN_DIR=$1; shift; fi
if [ -z "$RUN_DIR" ]; then
  # train.output_dir of the config; a YAML syntax error is the one line train.py would print, not a traceback
  RUN_DIR=$("$PYTHON" -c "
import sys, yaml
try:
    c = yaml.safe_load(open(sys.argv[1], encoding='utf-8')) or {}
except yaml.YAMLError as err:
    sys.exit(f'error: {sys.argv[1]}: invalid YAML ({str(err).splitlines()[0]})')
t = c.get('train') if isinstance(c, dict) else None
print((t if isinstance(t, dict) else {}).get('output_dir') or 'runs/train')" "$CONFIG_PATH") || exit 2
fi
if [ "$DRY_RUN" = 1 ]; then
  TARGET=$("$PYTHON" -c "import sys, yaml; c = yaml.safe_load(open(sys.argv[1])) or {}; print((c.get('system') or {}).get('device_target') or 'CPU')" "$CONFIG_PATH")
  for ((i = 0; i < ${#ARGS[@]}; i++)); do [ "${ARGS[$i]}" = --device_target ] && TARGET=${ARGS[$((i + 1))]}; done
  print_rank_configs 1 "$TARGET" "$CONFIG_PATH" "${ARGS[@]}" "$@"
  echo "# command:"
  show_or_run "$PYTHON" "$ROOT/train.py" --config_path "$CONFIG_PATH" "${ARGS[@]}" "$@"
  exit 0
fi
mkdir -p "$RUN_DIR"
echo "log: $RUN_DIR/train.log"
"$PYTHON" "$ROOT/train.py" --config_path "$CONFIG_PATH" "${ARGS[@]}" "$@" 2>&1 | tee -a "$RUN_DIR/train.log"
exit "${PIPESTATUS[0]}"

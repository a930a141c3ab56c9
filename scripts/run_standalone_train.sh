#!/bin/bash
# Train on one device.
#
# usage: bash scripts/run_standalone_train.sh CONFIG_PATH [DEVICE_TARGET] [RUN_DIR] [train.py args/overrides...]
#   CONFIG_PATH    experiment YAML, e.g. configs/basicvsr/basicvsr_reds_train.yaml
#   DEVICE_TARGET  CPU | GPU | Ascend (default: system.device_target of the config)
#   RUN_DIR        run directory (default: train.output_dir); the log goes to RUN_DIR/train.log
# example: bash scripts/run_standalone_train.sh configs/basicvsr/basicvsr_reds_train.yaml GPU runs/reds --resume auto
source "$(dirname "$0")/common_args.sh"
need_args 1 "$@"
CONFIG_PATH=$1; shift
check_config "$CONFIG_PATH"
ARGS=()
if [ $# -gt 0 ] && [[ "$1" =~ ^(CPU|GPU|Ascend)$ ]]; then ARGS+=(--device_target "$1"); shift
elif [ $# -gt 0 ] && [[ "$1" =~ ^(cpu|gpu|ascend|npu)$ ]]; then die "DEVICE_TARGET must be CPU, GPU or Ascend, got '$1'"; fi
RUN_DIR=""
if [ $# -gt 0 ] && is_run_dir "$1"; then ARGS+=(--output_dir "$1"); RUN_DIR=$1; shift; fi
if [ -z "$RUN_DIR" ]; then RUN_DIR=$(config_run_dir "$CONFIG_PATH") || exit 1; fi
mkdir -p "$RUN_DIR"
echo "log: $RUN_DIR/train.log"
"$PYTHON" "$ROOT/train.py" --config_path "$CONFIG_PATH" "${ARGS[@]}" "$@" 2>&1 | tee -a "$RUN_DIR/train.log"
exit "${PIPESTATUS[0]}"

#!/bin/bash
# Train on one device.
#
# usage: bash scripts/run_standalone_train.sh CONFIG_PATH [DEVICE_TARGET] [RUN_DIR] [train.py args/overrides...]
#   CONFIG_PATH    experiment YAML, e.g. configs/basicvsr/basicvsr_reds_train.yaml
#   DEVICE_TARGET  CPU | GPU | Ascend (default: system.device_target of the config)
#   RUN_DIR        run directory (default: train.output_dir); the log goes to RUN_DIR/train.log
# example: bash scripts/run_standalone_train.sh configs/basicvsr/basicvsr_reds_train.yaml GPU runs/reds --resume auto
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
if [ $# -lt 1 ]; then usage; exit 1; fi
CONFIG_PATH=$1; shift
if [ ! -f "$CONFIG_PATH" ]; then echo "error: config file not found: $CONFIG_PATH" >&2; exit 1; fi
ARGS=()
if [ $# -gt 0 ] && [[ "$1" =~ ^(CPU|GPU|Ascend)$ ]]; then ARGS+=(--device_target "$1"); shift
elif [ $# -gt 0 ] && [[ "$1" =~ ^(cpu|gpu|ascend|npu)$ ]]; then echo "error: DEVICE_TARGET must be CPU, GPU or Ascend, got '$1'" >&2; exit 1; fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python}
if [ $# -gt 0 ] && [[ "$1" != -* ]] && [[ "$1" != *=* ]]; then ARGS+=(--output_dir "$1"); RUN_DIR=$1; shift; fi
if [ -z "$RUN_DIR" ]; then
  RUN_DIR=$("$PYTHON" -c "import sys, yaml; c = yaml.safe_load(open(sys.argv[1])) or {}; print((c.get('train') or {}).get('output_dir') or 'runs/train')" "$CONFIG_PATH") || exit 1
fi
mkdir -p "$RUN_DIR"
echo "log: $RUN_DIR/train.log"
"$PYTHON" "$ROOT/train.py" --config_path "$CONFIG_PATH" "${ARGS[@]}" "$@" 2>&1 | tee -a "$RUN_DIR/train.log"
exit "${PIPESTATUS[0]}"

#!/bin/bash
# Evaluate a checkpoint with the config's protocol (PSNR/SSIM table, metrics.csv/json).
#
# usage: bash scripts/run_eval.sh CONFIG_PATH CKPT_PATH [DEVICE_TARGET] [eval.py args/overrides...]
#   CONFIG_PATH    evaluation YAML, e.g. configs/basicvsr/basicvsr_reds4.yaml
#   CKPT_PATH      MindSpore checkpoint (converted upstream weights or a train.py checkpoint)
#   DEVICE_TARGET  CPU | GPU | Ascend (default: system.device_target of the config)
# example: bash scripts/run_eval.sh configs/basicvsr/basicvsr_reds4.yaml runs/basicvsr_reds/checkpoints/iter_00300000.ckpt GPU
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }
if [ $# -lt 2 ]; then usage; exit 1; fi
CONFIG_PATH=$1; CKPT_PATH=$2; shift 2
if [ ! -f "$CONFIG_PATH" ]; then echo "error: config file not found: $CONFIG_PATH" >&2; exit 1; fi
if [ ! -f "$CKPT_PATH" ]; then echo "error: checkpoint not found: $CKPT_PATH" >&2; exit 1; fi
ARGS=()
if [ $# -gt 0 ] && [[ "$1" =~ ^(CPU|GPU|Ascend)$ ]]; then ARGS+=(--device_target "$1"); shift; fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
exec "${PYTHON:-python}" "$ROOT/eval.py" --config_path "$CONFIG_PATH" --ckpt "$CKPT_PATH" "${ARGS[@]}" "$@"

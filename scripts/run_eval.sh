#!/bin/bash
# Evaluate a checkpoint with the config's protocol (PSNR/SSIM table, metrics.csv/json).
#
# usage: bash scripts/run_eval.sh CONFIG_PATH CKPT_PATH [DEVICE_TARGET] [eval.py args/overrides...]
#   CONFIG_PATH    evaluation YAML, e.g. configs/basicvsr/basicvsr_reds4.yaml
#   CKPT_PATH      MindSpore checkpoint (converted upstream weights or a train.py checkpoint)
#   DEVICE_TARGET  CPU | GPU | Ascend (default: system.device_target of the config)
#   --dry_run      print the command, start nothing; --help: this text
# example: bash scripts/run_eval.sh configs/basicvsr/basicvsr_reds4.yaml runs/basicvsr_reds/checkpoints/iter_00300000.ckpt GPU
source "$(dirname "$0")/common_args.sh"
take_flags "$@"; set -- "${ARGS[@]}"
need_args 2 "$@"
CONFIG_PATH=$1; CKPT_PATH=$2; shift 2
check_config "$CONFIG_PATH"
[ -f "$CKPT_PATH" ] || die "checkpoint not found: $CKPT_PATH"
ARGS=()
if [ $# -gt 0 ] && [[ "$1" =~ ^(CPU|GPU|Ascend)$ ]]; then ARGS+=(--device_target "$1"); shift; fi
if [ "$DRY_RUN" = 1 ]; then show_or_run "$PYTHON" "$ROOT/eval.py" --config_path "$CONFIG_PATH" --ckpt "$CKPT_PATH" "${ARGS[@]}" "$@"; exit 0; fi
exec "$PYTHON" "$ROOT/eval.py" --config_path "$CONFIG_PATH" --ckpt "$CKPT_PATH" "${ARGS[@]}" "$@"

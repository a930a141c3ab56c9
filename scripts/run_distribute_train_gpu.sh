#!/bin/bash
# Data-parallel training on DEVICE_NUM GPUs of this machine with msrun (NCCL).
#
# usage: bash scripts/run_distribute_train_gpu.sh DEVICE_NUM CONFIG_PATH [RUN_DIR] [train.py args/overrides...] [--dry_run]
#   DEVICE_NUM   devices (= worker processes), >= 1
#   CONFIG_PATH  experiment YAML, e.g. configs/basicvsr/basicvsr_reds_train_gpu.yaml
#   RUN_DIR      run directory (default: train.output_dir of the config); per-rank logs in RUN_DIR/logs
#   --dry_run    print the msrun command and each rank's resolved config, start nothing
#   --help       this text
# env: PYTHON (default python; msrun is taken from its bin folder, else from PATH),
#      MASTER_PORT (default 8118; use a distinct one per concurrent job),
#      DEVICE_TARGET (default GPU; CPU runs the same path on this machine's cores, for checks)
# train.batch_size is per device: the total batch is DEVICE_NUM x batch_size; gradients are averaged
# over devices and the learning rate is not rescaled.
# example: bash scripts/run_distribute_train_gpu.sh 8 configs/basicvsr/basicvsr_reds_train_gpu.yaml runs/reds --resume auto
source "$(dirname "$0")/common_args.sh"
take_flags "$@"; set -- "${ARGS[@]}"
distributed_args "$@"; shift 2
RUN_DIR=""
if [ $# -gt 0 ] && is_run_dir "$1"; then RUN_DIR=$1; shift; fi
if [ -z "$RUN_DIR" ]; then RUN_DIR=$(config_run_dir "$CONFIG_PATH") || exit 1; fi
TARGET=${DEVICE_TARGET:-GPU}
find_msrun
PY_DIR=$(python_dir)
if [ "$DRY_RUN" = 1 ]; then
  print_rank_configs "$DEVICE_NUM" "$TARGET" "$CONFIG_PATH" "$@"
  echo "# command (PATH starts with $PY_DIR):"
else
  mkdir -p "$RUN_DIR/logs"
  echo "training on $DEVICE_NUM x $TARGET; logs: $RUN_DIR/logs/worker_<rank>.log"
fi
PATH="$PY_DIR:$PATH" show_or_run "$MSRUN" --worker_num="$DEVICE_NUM" --local_worker_num="$DEVICE_NUM" \
  --master_port="${MASTER_PORT:-8118}" --log_dir="$RUN_DIR/logs" --join=True --cluster_time_out=600 \
  "$ROOT/train.py" --config_path "$CONFIG_PATH" --device_target "$TARGET" --output_dir "$RUN_DIR" \
  --no_progress "$@"

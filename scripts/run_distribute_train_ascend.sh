#!/bin/bash
# Data-parallel training on DEVICE_NUM Ascend NPUs (HCCL), with msrun or with a rank table.
#
# usage: bash scripts/run_distribute_train_ascend.sh DEVICE_NUM CONFIG_PATH [RUN_DIR] [RANK_TABLE_FILE] [train.py args...] [--dry_run]
#   DEVICE_NUM       devices (= worker processes), >= 1
#   CONFIG_PATH      experiment YAML, e.g. configs/basicvsr/basicvsr_reds_train_ascend.yaml
#   RUN_DIR          run directory (default: train.output_dir); per-rank logs in RUN_DIR/logs
#   RANK_TABLE_FILE  optional hccl_*.json: one process per device with RANK_ID/DEVICE_ID set (classic launch);
#                    without it msrun starts the workers
#   --dry_run        print the msrun (or per-rank) commands and each rank's resolved config, start nothing
#   --help           this text
# env: PYTHON (default python; msrun is taken from its bin folder, else from PATH), MASTER_PORT (msrun, default 8118)
# train.batch_size is per device: the total batch is DEVICE_NUM x batch_size; gradients are averaged.
source "$(dirname "$0")/common_args.sh"
take_flags "$@"; set -- "${ARGS[@]}"
distributed_args "$@"; shift 2
RUN_DIR=""
if [ $# -gt 0 ] && is_run_dir "$1" && [[ "$1" != *.json ]]; then RUN_DIR=$1; shift; fi
RANK_TABLE=""
if [ $# -gt 0 ] && [[ "$1" == *.json ]]; then
  RANK_TABLE=$(realpath "$1"); shift
  [ -f "$RANK_TABLE" ] || die "rank table not found: $RANK_TABLE"
fi
if [ -z "$RUN_DIR" ]; then RUN_DIR=$(config_run_dir "$CONFIG_PATH") || exit 1; fi
if [ "$DRY_RUN" = 1 ]; then
  print_rank_configs "$DEVICE_NUM" Ascend "$CONFIG_PATH" "$@"
else
  mkdir -p "$RUN_DIR/logs"
fi
if [ -n "$RANK_TABLE" ]; then
  export RANK_TABLE_FILE=$RANK_TABLE RANK_SIZE=$DEVICE_NUM
  if [ "$DRY_RUN" = 1 ]; then
    echo "# commands (RANK_TABLE_FILE=$RANK_TABLE RANK_SIZE=$DEVICE_NUM), one per rank:"
    for ((i = 0; i < DEVICE_NUM; i++)); do
      printf 'RANK_ID=%d DEVICE_ID=%d ' "$i" "$i"
      show_or_run "$PYTHON" "$ROOT/train.py" --config_path "$CONFIG_PATH" --device_target Ascend \
        --output_dir "$RUN_DIR" --no_progress "$@"
    done
    exit 0
  fi
  for ((i = 0; i < DEVICE_NUM; i++)); do
    RANK_ID=$i DEVICE_ID=$i "$PYTHON" "$ROOT/train.py" --config_path "$CONFIG_PATH" --device_target Ascend \
      --output_dir "$RUN_DIR" --no_progress "$@" > "$RUN_DIR/logs/worker_$i.log" 2>&1 &
  done
  echo "started $DEVICE_NUM processes; logs: $RUN_DIR/logs/worker_<rank>.log"
  FAIL=0
  for job in $(jobs -p); do wait "$job" || FAIL=1; done
  [ $FAIL -eq 0 ] || die "a worker failed; see $RUN_DIR/logs"
else
  find_msrun
  PY_DIR=$(python_dir)
  [ "$DRY_RUN" = 1 ] && echo "# command (PATH starts with $PY_DIR):"
  PATH="$PY_DIR:$PATH" show_or_run "$MSRUN" --worker_num="$DEVICE_NUM" --local_worker_num="$DEVICE_NUM" \
    --master_port="${MASTER_PORT:-8118}" --log_dir="$RUN_DIR/logs" --join=True --cluster_time_out=600 \
    "$ROOT/train.py" --config_path "$CONFIG_PATH" --device_target Ascend --output_dir "$RUN_DIR" --no_progress "$@"
fi

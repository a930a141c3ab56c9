#!/bin/bash
# Data-parallel training on DEVICE_NUM Ascend NPUs (HCCL), with msrun or with a rank table.
#
# usage: bash scripts/run_distribute_train_ascend.sh DEVICE_NUM CONFIG_PATH [RUN_DIR] [RANK_TABLE_FILE] [train.py args...]
#   DEVICE_NUM       devices (= worker processes), >= 1
#   CONFIG_PATH      experiment YAML, e.g. configs/basicvsr/basicvsr_reds_train.yaml
#   RUN_DIR          run directory (default: train.output_dir); per-rank logs in RUN_DIR/logs
#   RANK_TABLE_FILE  optional hccl_*.json: one process per device with RANK_ID/DEVICE_ID set (classic launch);
#                    without it msrun starts the workers
# env: MASTER_PORT (msrun, default 8118)
# train.batch_size is per device: the total batch is DEVICE_NUM x batch_size; gradients are averaged.
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
if [ $# -lt 2 ]; then usage; exit 1; fi
DEVICE_NUM=$1; CONFIG_PATH=$2; shift 2
if ! [[ "$DEVICE_NUM" =~ ^[1-9][0-9]*$ ]]; then echo "error: DEVICE_NUM must be a positive integer, got '$DEVICE_NUM'" >&2; usage; exit 1; fi
if [ ! -f "$CONFIG_PATH" ]; then echo "error: config file not found: $CONFIG_PATH" >&2; exit 1; fi
RUN_DIR=""
if [ $# -gt 0 ] && [[ "$1" != -* ]] && [[ "$1" != *=* ]] && [[ "$1" != *.json ]]; then RUN_DIR=$1; shift; fi
RANK_TABLE=""
if [ $# -gt 0 ] && [[ "$1" == *.json ]]; then
  RANK_TABLE=$(realpath "$1"); shift
  [ -f "$RANK_TABLE" ] || { echo "error: rank table not found: $RANK_TABLE" >&2; exit 1; }
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python}
if [ -z "$RUN_DIR" ]; then
  RUN_DIR=$("$PYTHON" -c "import sys, yaml; c = yaml.safe_load(open(sys.argv[1])) or {}; print((c.get('train') or {}).get('output_dir') or 'runs/train')" "$CONFIG_PATH") || exit 1
fi
mkdir -p "$RUN_DIR/logs"
if [ -n "$RANK_TABLE" ]; then
  export RANK_TABLE_FILE=$RANK_TABLE RANK_SIZE=$DEVICE_NUM
  for ((i = 0; i < DEVICE_NUM; i++)); do
    RANK_ID=$i DEVICE_ID=$i "$PYTHON" "$ROOT/train.py" --config_path "$CONFIG_PATH" --device_target Ascend \
      --output_dir "$RUN_DIR" --no_progress "$@" > "$RUN_DIR/logs/worker_$i.log" 2>&1 &
  done
  echo "started $DEVICE_NUM processes; logs: $RUN_DIR/logs/worker_<rank>.log"
  FAIL=0
  for job in $(jobs -p); do wait "$job" || FAIL=1; done
  [ $FAIL -eq 0 ] || { echo "error: a worker failed; see $RUN_DIR/logs" >&2; exit 1; }
else
  command -v msrun >/dev/null || { echo "error: msrun not found on PATH (it comes with mindspore)" >&2; exit 1; }
  PY_DIR=$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")
  PATH="$PY_DIR:$PATH" msrun --worker_num="$DEVICE_NUM" --local_worker_num="$DEVICE_NUM" \
    --master_port="${MASTER_PORT:-8118}" --log_dir="$RUN_DIR/logs" --join=True --cluster_time_out=600 \
    "$ROOT/train.py" --config_path "$CONFIG_PATH" --device_target Ascend --output_dir "$RUN_DIR" --no_progress "$@"
fi

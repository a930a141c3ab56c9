#!/bin/bash
# Data-parallel training on DEVICE_NUM GPUs of this machine with msrun (NCCL).
#
# usage: bash scripts/run_distribute_train_gpu.sh DEVICE_NUM CONFIG_PATH [RUN_DIR] [train.py args/overrides...]
#   DEVICE_NUM   devices (= worker processes), >= 1
#   CONFIG_PATH  experiment YAML, e.g. configs/basicvsr/basicvsr_reds_train.yaml
#   RUN_DIR      run directory (default: train.output_dir of the config); per-rank logs in RUN_DIR/logs
# env: MASTER_PORT (default 8118; use a distinct one per concurrent job),
#      DEVICE_TARGET (default GPU; CPU runs the same path on this machine's cores, for checks)
# train.batch_size is per device: the total batch is DEVICE_NUM x batch_size; gradients are averaged
# over devices and the learning rate is not rescaled.
# example: bash scripts/run_distribute_train_gpu.sh 2 configs/basicvsr/basicvsr_reds_train.yaml runs/reds --resume auto
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
if [ $# -lt 2 ]; then usage; exit 1; fi
DEVICE_NUM=$1; CONFIG_PATH=$2; shift 2
if ! [[ "$DEVICE_NUM" =~ ^[1-9][0-9]*$ ]]; then echo "error: DEVICE_NUM must be a positive integer, got '$DEVICE_NUM'" >&2; usage; exit 1; fi
if [ ! -f "$CONFIG_PATH" ]; then echo "error: config file not found: $CONFIG_PATH" >&2; exit 1; fi
RUN_DIR=""
if [ $# -gt 0 ] && [[ "$1" != -* ]] && [[ "$1" != *=* ]]; then RUN_DIR=$1; shift; fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python}
if [ -z "$RUN_DIR" ]; then
  RUN_DIR=$("$PYTHON" -c "import sys, yaml; c = yaml.safe_load(open(sys.argv[1])) or {}; print((c.get('train') or {}).get('output_dir') or 'runs/train')" "$CONFIG_PATH") || exit 1
fi
command -v msrun >/dev/null || { echo "error: msrun not found on PATH (it comes with mindspore)" >&2; exit 1; }
mkdir -p "$RUN_DIR/logs"
# msrun starts workers with the first 'python' on PATH: put this interpreter's folder first
PY_DIR=$(dirname "$("$PYTHON" -c 'import sys; print(sys.executable)')")
echo "training on $DEVICE_NUM x ${DEVICE_TARGET:-GPU}; logs: $RUN_DIR/logs/worker_<rank>.log"
PATH="$PY_DIR:$PATH" msrun --worker_num="$DEVICE_NUM" --local_worker_num="$DEVICE_NUM" \
  --master_port="${MASTER_PORT:-8118}" --log_dir="$RUN_DIR/logs" --join=True --cluster_time_out=600 \
  "$ROOT/train.py" --config_path "$CONFIG_PATH" --device_target "${DEVICE_TARGET:-GPU}" --output_dir "$RUN_DIR" \
  --no_progress "$@"

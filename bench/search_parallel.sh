#!/bin/bash
# The search benchmark spread over a 16-core machine, every process on 2 pinned cores
# (2 threads, as on the 2-core reference machine, so seeds give the same numbers):
#   1. each set's trials: 3 worker processes on one seeded study (`rdzoo search --seed 0`,
#      each worker offset by RDZOO_WORKER), cut at TRIAL_TIMEOUT seconds;
#   2. each set's final stage, one process per seed, and the *-sent model whose start trial
#      scored best on dev, trained with the same seeds;
#   3. the report (bench/results/search_accuracy.jsonl).
# Usage: SST2=/path/to/sst2 TRIAL_TIMEOUT=210 bash bench/search_parallel.sh DB_DIR
set -u
DIR=${1:-bench/out/search_db}
SST2=${SST2:-../shared/datasets/sst2}
TRIAL_TIMEOUT=${TRIAL_TIMEOUT:-210}
BUDGET=${BUDGET:-0}  # seconds for the whole run (0: none); the final stage is cut to fit, losing only runs in progress
export OMP_NUM_THREADS=2 PYTHONPATH=$PWD/src
mkdir -p "$DIR"
pin() { if command -v taskset > /dev/null; then echo "taskset -c $1"; fi; }
B="python bench/search_accuracy.py --storage-dir $DIR --sst2 $SST2"
start=$(date +%s)
core=0
for set in trec sst2; do
  data=$set; [ $set = sst2 ] && data=$SST2
  for w in 0 1 2; do
    RDZOO_WORKER=$w $(pin $core,$((core+1))) python -m rdzoo.cli search --data "$data" --storage "sqlite:///$DIR/$set.db" \
      --study default-$set --trials 50 --seed 0 --timeout $TRIAL_TIMEOUT --no-final --quiet --top 0 \
      > "$DIR/$set-trials-$w.log" 2>&1 &
    core=$((core+2))
  done
done
wait
echo "trials done after $(( $(date +%s) - start )) s"
left=$(( BUDGET > 0 ? BUDGET - ($(date +%s) - start) : 100000 ))
cut="timeout --signal=INT $left"
core=0
for set in trec sst2; do
  for s in 1 2 3; do
    $cut $(pin $core,$((core+1))) $B --data $set --stage final --only-seed $s > "$DIR/$set-final-$s.log" 2>&1 &
    core=$((core+2))
  done
  $cut $(pin $core,$((core+1))) $B --data $set --stage zoo --models best > "$DIR/$set-zoo.log" 2>&1 &
  core=$((core+2))
done
wait
echo "final stage and zoo runs done after $(( $(date +%s) - start )) s"
for set in trec sst2; do
  $B --data $set --stage report --out "$DIR/search_accuracy.jsonl" || echo "no report for $set"
done

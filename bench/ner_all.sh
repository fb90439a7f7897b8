#!/bin/bash
# The README's entity table in one go, on a machine with many cores (and a GPU, if it has one):
# the three families with and without a CRF on seeds 0-2, beside a 30-trial `ner` search whose
# best trial is then retrained on seeds 0-2. Everything lands in $OUT (default bench/results).
#
#   bash bench/ner_all.sh                    # CPU
#   DEVICE=cuda bash bench/ner_all.sh        # every tensor on the GPU: torch.set_default_device in a
#                                            # sitecustomize, so train.py runs unchanged (not yet
#                                            # tried on a GPU machine; a failed smoke run falls back to the CPU)
# Tried end to end on a tiny folder of .conll files only (DATA=dir EPOCHS=1 SEARCH_EPOCHS=1 TRIALS=3).
set -u
OUT=${OUT:-bench/results}
EPOCHS=${EPOCHS:-15}
SEARCH_TIMEOUT=${SEARCH_TIMEOUT:-300}
JOBS=${JOBS:-9}
WORKERS=${WORKERS:-7}
DATA=${DATA:-wnut17}
DB=${SEARCH_DB:-$OUT/ner_search.db}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
if [ "${DEVICE:-cpu}" = cuda ]; then
  mkdir -p /tmp/rdzoo-cuda
  echo "import torch; torch.set_default_device('cuda')" > /tmp/rdzoo-cuda/sitecustomize.py
  if PYTHONPATH=/tmp/rdzoo-cuda:$PYTHONPATH timeout 120 python3 bench/ner.py --models transformer-sent --seeds 0 \
       --crf yes --epochs 1 --out /tmp/rdzoo-cuda/smoke.jsonl > /tmp/rdzoo-cuda/smoke.log 2>&1; then
    tail -n 1 /tmp/rdzoo-cuda/smoke.jsonl
    export PYTHONPATH=/tmp/rdzoo-cuda:$PYTHONPATH
  else
    tail -n 20 /tmp/rdzoo-cuda/smoke.log; echo "the GPU smoke run failed; on the CPU" >&2
  fi
fi
python3 -c "import torch; print('torch', torch.__version__, 'default device', torch.empty(0).device)"
python3 bench/ner.py --data "$DATA" --jobs "$JOBS" --epochs "$EPOCHS" --out $OUT/ner.jsonl > $OUT/ner_families.log 2>&1 &
families=$!
python3 -m rdzoo.cli search ${SEARCH_EPOCHS:+--epochs $SEARCH_EPOCHS} --space ner --data "$DATA" --trials ${TRIALS:-30} --workers "$WORKERS" --seed 0 \
  --storage $DB --timeout "$SEARCH_TIMEOUT" --top 30 --json > $OUT/ner_search.json 2> $OUT/ner_search.log
python3 -m rdzoo.cli export --best --storage $DB -o $OUT/ner-best.yaml
python3 bench/ner.py --spec $OUT/ner-best.yaml --data "$DATA" --tag ner-search-best --crf spec --epochs 0 --jobs 3 \
  --out $OUT/ner.jsonl > $OUT/ner_best.log 2>&1
wait $families
python3 bench/ner.py --summary --out $OUT/ner.jsonl

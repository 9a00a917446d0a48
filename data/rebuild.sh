#!/usr/bin/env bash
# Rebuild data/real/ from scratch: corpus -> train -> capture.  Run from the
# repository root.  Needs Debian's /usr/lib/python3.11 for step 1 (the
# corpus can be built on one machine and copied to another), and PyTorch
# (1.13 or 2.x) + numpy for steps 2-3.  Step 2 wants one CUDA GPU (about
# 7 minutes on an H100); on the CPU pass e.g. TRAIN_ARGS="--device cpu --steps 20 --tiny".
# The corpus and the checkpoint go to .gpu-carry/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CORPUS=${CORPUS:-.gpu-carry/corpus}
CKPT=${CKPT:-.gpu-carry/model/ckpt.pt}
if [ ! -f "$CORPUS/corpus.bin.gz" ]; then
  "$PY" data/make_corpus.py --out "$CORPUS"
fi
# shellcheck disable=SC2086
"$PY" data/train.py --corpus "$CORPUS" --ckpt "$CKPT" --log data/real/train-log.json ${TRAIN_ARGS:---max-seconds 400 --eval-every 1000}
"$PY" data/capture.py --corpus "$CORPUS" --ckpt "$CKPT" --out data/real

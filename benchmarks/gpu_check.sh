#!/usr/bin/env bash
# lmforge's GPU checks as one prepared run, for a session lent a CUDA machine (the `device` tool): the
# CUDA tests, the PyTorch embedding path's speed on the GPU beside the numba kernels on that machine's
# CPU threads, and 5-epoch skip-gram / CBOW / FastText vectors trained on the GPU, sent back to be scored
# here beside gensim's (the scoring files ship in gensim, which that machine lacks).
#
# On that machine python3 holds CUDA PyTorch, numba, tqdm, safetensors, PyYAML and regex, all lmforge
# needs; lmforge runs from src/ without installing, and the corpus travels in .gpu/ (git ignores it):
#
#   here, once:   mkdir -p .gpu; cp ../shared/data/wikitext-2/train.txt .gpu/   (.gitignore keeps it out)
#   there:        run(command="bash benchmarks/gpu_check.sh", carry=[".gpu"], timeout_s=540)
#   back here:    for f in FILES_AT/*-cuda.bin; do lmforge embed eval "$f"; done
#   dry run here: DEVICE=cpu CORPUS=small.txt WORDS=50000 PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
#
# Every step has its own time limit, so one slow step cannot eat the others; the log and the vectors go
# to $OUT (the device tool's folder that comes back), or /tmp/lmforge-gpu-check elsewhere.
set -uo pipefail
OUT=${OUT:-/tmp/lmforge-gpu-check}
DEVICE=${DEVICE:-cuda}
CORPUS=${CORPUS:-.gpu/train.txt}
WORDS=${WORDS:-2100000}  # the speed runs' corpus prefix: all of WikiText-2 train by default
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ ! -f "$CORPUS" ]; then
    echo "gpu_check.sh: no corpus at $CORPUS; copy ../shared/data/wikitext-2/train.txt to .gpu/ and carry .gpu" >&2
    exit 2
fi

{
    echo "== device"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "(no nvidia-smi)"
    "$PY" -c "import torch, numba, os; gpu = torch.cuda.is_available(); print('torch', torch.__version__, '| cuda', gpu, '|', torch.cuda.get_device_name(0) if gpu else '-', '| numba', numba.__version__, '|', os.cpu_count(), 'CPUs')"

    echo "== pytest -m cuda: the CUDA tests"
    timeout 240 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_embeddings_torch.py

    echo "== benchmarks/embeddings_torch.py: torch on $DEVICE against numba on $(nproc) CPU threads"
    timeout 300 "$PY" benchmarks/embeddings_torch.py --device "$DEVICE" --corpus "$CORPUS" --words "$WORDS" \
        --threads "$(nproc)" --repeats 3

    echo "== 5-epoch vectors on $DEVICE (scored back home with lmforge embed eval)"
    for method in skipgram cbow fasttext; do
        # FastText's n-gram table (OUT.ngrams.npz, ~800 MB) stays behind: the word vectors are what is scored
        timeout 150 "$PY" -m lmforge embed train --method "$method" --device "$DEVICE" --backend torch --quiet \
            --out "/tmp/$method-$DEVICE.bin" "$CORPUS" && cp "/tmp/$method-$DEVICE.bin" "$OUT/"
    done
} 2>&1 | tee "$OUT/gpu_check.log"

#!/usr/bin/env bash
# lmforge on a lent GPU machine (the `device` tool), as two prepared runs: `checks` (CUDA tests, training
# step and generation beside Hugging Face, the embeddings' GPU path, torchrun with nccl) and `pretrain` (a
# real pre-training run of GPT-2 small's shape on WikiText-2). Each step has its own time cap, so a slow
# step cannot eat the others; logs and small result files go to $OUT (what the device tool brings back).
#
#   here, once:  mkdir -p .gpu/wikitext-2 && cp ../shared/data/wikitext-2/{train,valid}.txt .gpu/wikitext-2/
#                a BPE tokenizer as the gpt-bpe-wikitext2 preset trains it, in .gpu/tokenizer.json
#                (git ignores .gpu/; `carry` takes it along)
#   there:       run(command="bash benchmarks/gpu.sh checks", carry=[".gpu"], timeout_s=450)
#                run(command="PRETRAIN_MINUTES=3 bash benchmarks/gpu.sh pretrain", carry=[".gpu"], ...)
#                run(command="bash benchmarks/gpu.sh recheck", carry=[".gpu"], timeout_s=120)  (~1 minute)
#   back here:   python benchmarks/gpu_report.py FILES_AT  (the "GPU" section of RESULTS.md), and
#                lmforge embed eval FILES_AT/*-cuda.bin  (the GPU-trained vectors, scored beside gensim)
#   dry run:     DEVICE=cpu TINY=1 PYTHON=.venv/bin/python bash benchmarks/gpu.sh checks
#
# The machine has python3 with CUDA PyTorch, transformers, numba, tqdm, safetensors, PyYAML and regex: all
# lmforge needs. lmforge runs from src/ without being installed.
set -uo pipefail
WHAT=${1:-checks}
OUT=${OUT:-/tmp/lmforge-gpu}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
TINY=${TINY:-}
PRETRAIN_MINUTES=${PRETRAIN_MINUTES:-3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
WIKI=.gpu/wikitext-2
for need in "$WIKI/train.txt" "$WIKI/valid.txt" .gpu/tokenizer.json; do
    [ -f "$need" ] || { echo "gpu.sh: $need is missing; see this script's header" >&2; exit 2; }
done

# step NAME CAP_SECONDS COMMAND...: run one step under its cap; its time and exit code go to the log
step() {
    local name=$1 cap=$2
    shift 2
    echo "== $name (cap ${cap}s): $*"
    local started=$SECONDS
    timeout --kill-after=5 "$cap" "$@"
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - started))s$([ $rc -eq 124 ] && echo ' (ran out of time)')"
    echo -e "$name\t$rc\t$((SECONDS - started))" >>"$OUT/steps.tsv"
}

device_info() {
    echo "== device"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null || echo "(no nvidia-smi)"
    "$PY" -c "import torch, transformers, numba, os, platform; gpu = torch.cuda.is_available(); print('python', platform.python_version(), '| torch', torch.__version__, '| cuda', torch.version.cuda, '|', torch.cuda.get_device_name(0) if gpu else 'no GPU', '| transformers', transformers.__version__, '| numba', numba.__version__, '|', os.cpu_count(), 'CPUs')"
}

# 5-epoch (or $1) skip-gram, CBOW and FastText vectors on the GPU, sent back to be scored with embed eval
train_vectors() {
    local method
    for method in skipgram cbow fasttext; do
        # FastText's n-gram table (OUT.ngrams.npz, ~800 MB) stays behind: the word vectors are what is scored
        step "vectors-$method" 30 "$PY" -m lmforge embed train --method "$method" --device "$DEVICE" \
            --backend torch --epochs "$1" --quiet --out "/tmp/$method-$DEVICE.bin" "$WIKI/train.txt" &&
            cp "/tmp/$method-$DEVICE.bin" "$OUT/" 2>/dev/null
    done
}

# the pretrain preset's data and tokenizer, from .gpu/; more options follow
pretrain_args() {
    echo --config configs/gpt-bpe-wikitext2.yaml "--data.files=[$1]" "--data.val_files=[$WIKI/valid.txt]" \
        --tokenizer.path=.gpu/tokenizer.json --train.device="$DEVICE"
}

checks() {
    device_info
    local small=()
    [ -n "$TINY" ] && small=(--tiny)
    LMFORGE_TEST_DEVICE=$DEVICE step pytest-cuda 75 "$PY" -m pytest -q -p no:cacheprovider -m cuda \
        tests/test_cuda.py tests/test_embeddings_torch.py
    step train-step 170 "$PY" benchmarks/gpu.py train --device "$DEVICE" "${small[@]}" --out "$OUT/train.json"
    step generate 70 "$PY" benchmarks/gpu.py generate --device "$DEVICE" "${small[@]}" --out "$OUT/generate.json"

    local words=2100000 epochs=5
    [ -n "$TINY" ] && words=30000 epochs=1
    step embeddings-speed 45 "$PY" benchmarks/embeddings_torch.py --device "$DEVICE" --corpus "$WIKI/train.txt" \
        --words "$words" --threads "$(nproc)" --repeats 1
    train_vectors "$epochs"

    # torchrun with one process still joins a process group (nccl on CUDA): DDP and FSDP2 start, step,
    # checkpoint, and resume from that checkpoint
    local mode
    for mode in ddp fsdp; do
        rm -rf "/tmp/torchrun-$mode"
        for steps in 20 30; do
            step "torchrun-$mode-$steps" 45 "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 \
                -m lmforge pretrain $(pretrain_args "$WIKI/valid.txt") --out="/tmp/torchrun-$mode" \
                --model.preset=gpt-tiny --train.parallel="$mode" --train.max_steps="$steps" \
                --train.eval_every=10 --train.eval_batches=2 --train.progress=false --set fit_steps_to_minutes=false
        done
        ls "/tmp/torchrun-$mode/checkpoints" 2>&1
    done
}

pretrain() {
    device_info
    local shape=(--model.preset=gpt2 "--model.changes={dropout: 0.1}" --set block_size=1024)
    [ -n "$TINY" ] && shape=(--model.preset=gpt-tiny)
    # GPT-2 small's shape (12 × 768, context 1024) with the preset's 8k BPE vocabulary, bf16, nanoGPT's
    # GPT-2 rates (peak 6e-4); the cosine schedule fitted to the minutes, evaluation on all of validation
    step pretrain $((PRETRAIN_MINUTES * 60 + 90)) "$PY" -m lmforge pretrain $(pretrain_args "$WIKI/train.txt") \
        --out=/tmp/gpt2-wikitext2 "${shape[@]}" --train.precision=bf16 --train.batch_size=16 \
        --train.lr=6e-4 --train.warmup_steps=100 --train.max_minutes="$PRETRAIN_MINUTES" \
        --train.eval_every=200 --train.eval_batches=0 --train.progress=false
    cp /tmp/gpt2-wikitext2/metrics.jsonl "$OUT/pretrain-metrics.jsonl" 2>/dev/null
    cp /tmp/gpt2-wikitext2/model/README.md "$OUT/pretrain-card.md" 2>/dev/null
    cp /tmp/gpt2-wikitext2/loss.png "$OUT/pretrain-loss.png" 2>/dev/null
}

# a short second look: where batched generation parts from HF (per row, tie check) and the word vectors
# after a change to the torch path (fits what is left of a session's device time: ~1 minute)
recheck() {
    local small=()
    [ -n "$TINY" ] && small=(--tiny)
    step generate-32 50 "$PY" benchmarks/gpu.py generate --device "$DEVICE" "${small[@]}" --batches 32 --reps 1 \
        --out "$OUT/generate-recheck.json"
    train_vectors "${RECHECK_EPOCHS:-5}"
}

case "$WHAT" in
    checks) checks 2>&1 | tee "$OUT/gpu-checks.log" ;;
    pretrain) pretrain 2>&1 | tee "$OUT/gpu-pretrain.log" ;;
    recheck) recheck 2>&1 | tee "$OUT/gpu-recheck.log" ;;
    *) echo "gpu.sh: say checks, pretrain or recheck" >&2; exit 2 ;;
esac

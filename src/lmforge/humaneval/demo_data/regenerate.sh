#!/usr/bin/env bash
# Regenerates the demo's system outputs in this directory (run from the repository root, with lmforge
# installed and ../shared/data/tatoeba-spa-eng beside the checkout). About 42 minutes on 2 CPU cores (1 torch thread).
#
# 1. Train the translation preset (40 minutes instead of its 26, on a busy machine; a checkpoint every 300 steps kept).
# 2. Take the first 40 sentences of the preset's held-out test split (the same rule as the preset:
#    translate.split_salt), with all their Spanish references.
# 3. Translate them three ways: the final model greedy (`greedy`) and with beam search 4 (`beam4`), and the
#    checkpoint of step 600 (validation loss 2.31 against the final 1.30) with beam search 4 (`short`).
set -euo pipefail
RUN=${RUN:-runs/humaneval-demo}
HERE=$(dirname "$0")
OMP_NUM_THREADS=1 lmforge finetune --config configs/translate-en-es-tatoeba.yaml --out "$RUN" \
    --train.max_minutes=40 --train.save_every=300 --train.keep_last=30
OMP_NUM_THREADS=1 python - "$RUN" "$HERE" <<'PY'
import json
import sys
from pathlib import Path

from lmforge.data.seq2seq import read_pairs
from lmforge.finetune.translate import split_by_source
from lmforge.pipelines import Translation
from lmforge.train.state import load_checkpoint

run, here = Path(sys.argv[1]), Path(sys.argv[2])
pairs = read_pairs("../shared/data/tatoeba-spa-eng/spa.txt", 0, 1)
split = split_by_source(pairs, test_sentences=2000, validation_sentences=500, salt="lmforge-tatoeba-spa-eng-v1")
sources, references = split.test.sources[:40], split.test.references[:40]
ids = [f"tatoeba-test-{i:04d}" for i in range(1, 41)]

final = Translation.load(run / "model")
outputs = {"greedy": final(sources, num_beams=1), "beam4": final(sources, num_beams=4)}
short = Translation.load(run / "model")
short.model.load_state_dict(load_checkpoint(run / "checkpoints" / "step-00000600")["model"])
outputs["short"] = short(sources, num_beams=4)


def write(name, rows):
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    (here / name).write_text(text, encoding="utf-8")


write("sources.jsonl", [{"id": i, "source": s, "references": r} for i, s, r in zip(ids, sources, references)])
for system, results in outputs.items():
    write(f"{system}.jsonl", [{"id": i, "text": t.text} for i, t in zip(ids, results)])
PY

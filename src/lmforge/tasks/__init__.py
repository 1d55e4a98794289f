"""Fine-tuning tasks: each module holds one task's data settings and its pipeline for `lmforge finetune`.

- `translate` — sequence-to-sequence on TSV sentence pairs with an encoder-decoder (BLEU, chrF);
- `qa` — extractive question answering on SQuAD-format JSON (EM, F1).

Task `classify` lives in `lmforge.recipes.finetune` itself. Every task trains through the one loop of
`lmforge.train.loop` with its own objective from `lmforge.data`. Modules here import torch only inside
functions, so reading a config stays light.
"""

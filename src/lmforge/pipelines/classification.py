"""`Classification`: a fine-tuned classifier's label, and every label's probability, for texts or text pairs.

    from lmforge.pipelines import Classification
    classify = Classification.load("runs/sst2-minilm/model")
    classify("a gorgeous, witty, seductive movie .").label
    # 'positive'
    classify(["first text"], pair=["second text"])[0].probabilities   # a model tuned on pairs

The model directory is the `model/` (or, for LoRA runs saved as adapters, `adapters/`) that `lmforge
finetune` wrote; the label names are in its config.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmforge.errors import ConfigError
from lmforge.pipelines.base import Pipeline, one_or_many


@dataclass
class ClassificationResult:
    label: str
    probabilities: dict[str, float]  # every label's probability, in the model's label order
    prompt_tokens: int  # tokens the model read (special tokens included, after truncation)


class Classification(Pipeline):
    task = "classification"
    kinds = {"encoder": ("sequence-classification",)}
    purpose = "classify text"
    hint = "fine-tune one with `lmforge finetune` (task classify)"

    def __init__(self, model, tokenizer, labels=None, *, source: str = ""):
        super().__init__(model, tokenizer, source=source)
        config = model.config
        self.labels = list(labels or config.extra.get("labels") or [str(i) for i in range(config.num_labels)])

    def __call__(self, texts, pair=None, *, batch_size: int = 32, max_length: int = 128):
        """Classify a text (→ one `ClassificationResult`) or a list (→ a list); `pair`: the second text(s)
        of a model fine-tuned on pairs, as many as the texts. Batches of `batch_size`, each padded to its
        longest; texts cut to `max_length` tokens."""
        import torch

        from lmforge.data.classification import Example, classifier_logits, encode_examples, pad_batch

        items, single = one_or_many(texts, "text")
        pairs = None
        if pair is not None:
            pairs, _ = one_or_many(pair, "pair")
            if len(pairs) != len(items):
                raise ConfigError(f"{len(pairs)} pair texts for {len(items)} texts; give one per text")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        model = self.model
        examples = [Example(text, pairs[i] if pairs else None, "") for i, text in enumerate(items)]
        with self.tokenizer_lock:  # encode_examples sets the tokenizer's truncation
            encoded = encode_examples(
                self.tokenizer, examples, self.labels, min(max_length, model.config.max_positions)
            )
        pad_id = model.config.pad_id()
        results = []
        with torch.no_grad():
            for first in range(0, len(examples), batch_size):
                rows = list(range(first, min(first + batch_size, len(examples))))
                batch = {k: v.to(self.device) for k, v in pad_batch(encoded, rows, pad_id).items()}
                probabilities = classifier_logits(model, batch).float().softmax(-1)
                for row, p in zip(rows, probabilities.tolist(), strict=True):
                    best = max(range(len(p)), key=p.__getitem__)
                    results.append(
                        ClassificationResult(
                            self.labels[best], dict(zip(self.labels, p, strict=True)), len(encoded.ids[row])
                        )
                    )
        return results[0] if single else results

"""Evaluation metrics: BLEU, chrF, ROUGE, accuracy / precision / recall / F1, SQuAD EM / F1.

Each metric is lmforge's own code and gives the same numbers as the reference implementation papers
report (sacrebleu, rouge-score, the official SQuAD v1.1 script); the tests prove it statistic by
statistic. Arguments put the system output first, the references second.

- bleu.py: BLEU (corpus and sentence; 13a / intl / char / none; exp / floor / add-k / none) and chrF
- rouge.py: ROUGE-N, ROUGE-L, ROUGE-Lsum, several references, a Unicode tokenizer; porter.py: its stemmer
- classification.py: accuracy, precision / recall / F1 (macro, micro, weighted), confusion matrix
- squad.py: SQuAD v1.1 exact match and F1
- perplexity.py: perplexity and bits per byte from summed NLL; sliding-window NLL of a causal model
"""

from lmforge.metrics.bleu import BLEUScore, CHRFScore, bleu, bleu_explain, chrf, sentence_bleu
from lmforge.metrics.classification import (
    PRF,
    ConfusionMatrix,
    accuracy,
    confusion_matrix,
    precision_recall_f1,
)
from lmforge.metrics.perplexity import bits_per_byte, perplexity, sliding_window_nll
from lmforge.metrics.rouge import Score, rouge, rouge_corpus, rouge_explain, rouge_scores
from lmforge.metrics.squad import SquadScore, squad_em_f1

__all__ = [
    "PRF",
    "ConfusionMatrix",
    "SquadScore",
    "accuracy",
    "confusion_matrix",
    "precision_recall_f1",
    "squad_em_f1",
    "BLEUScore",
    "CHRFScore",
    "Score",
    "bleu",
    "bleu_explain",
    "chrf",
    "rouge",
    "rouge_corpus",
    "rouge_explain",
    "rouge_scores",
    "sentence_bleu",
    "perplexity",
    "bits_per_byte",
    "sliding_window_nll",
]

"""Measured experiments: each module is one experiment, a function a notebook can call with its config.

- `data_efficiency`: pre-trained vs from-scratch fine-tuning on 1%, 10% and 100% of a training set, several
  seeds, beside a TF-IDF + logistic-regression baseline (`lmforge experiment data-efficiency`).
- `word_perplexity`: word-level perplexity of models sharing a vocabulary on one token stream (Kneser-Ney
  n-grams, ELMo's forward and backward LMs; `benchmarks/word_perplexity.py`).
- `static_vs_contextual`: static (Word2Vec, GloVe, FastText) vs contextual (ELMo, BERT, MiniLM) vectors,
  frozen, under a logistic-regression probe: SST-2, word in context (the hand-labelled pairs of `data/`),
  nearest words in context (`lmforge experiment static-vs-contextual`).
"""

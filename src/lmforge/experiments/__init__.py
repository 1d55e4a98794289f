"""Measured experiments: each module is one experiment, a function a notebook can call with its config.

- `data_efficiency`: pre-trained vs from-scratch fine-tuning on 1%, 10% and 100% of a training set, several
  seeds, beside a TF-IDF + logistic-regression baseline (`lmforge experiment data-efficiency`).
- `word_perplexity`: word-level perplexity of models sharing a vocabulary on one token stream (Kneser-Ney
  n-grams, ELMo's forward and backward LMs; `benchmarks/word_perplexity.py`).
"""

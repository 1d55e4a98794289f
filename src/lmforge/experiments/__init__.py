"""Measured experiments: each module is one experiment, a function a notebook can call with its config.

- `data_efficiency`: pre-trained vs from-scratch fine-tuning on 1%, 10% and 100% of a training set, several
  seeds, beside a TF-IDF + logistic-regression baseline (`lmforge experiment data-efficiency`).
"""

"""Turning a pile of text into answers: sentences, extractive summaries, and (next) the market-research report.

- sentences.py: a rule-based sentence splitter (abbreviations, initials, numbers, quotes; no downloads)
- summarize.py: lead-k, TextRank and embedding-centroid + MMR summaries; their ROUGE with bootstrap intervals

The one place in lmforge that may use scikit-learn (tests/test_layering.py).
"""

"""Turning a pile of text into answers: sentences, extractive summaries, and (next) the market-research report.

- sentences.py: a rule-based sentence splitter (abbreviations, initials, numbers, quotes; no downloads)
- summarize.py: lead-k, TextRank and embedding-centroid + MMR summaries; their ROUGE with bootstrap intervals
- sentiment.py: the share of each sentiment label with Wilson intervals, unsure texts apart
- topics.py: duplicates, k-means topics (k by silhouette), c-TF-IDF keywords, representative quotes
- report.py: `analyze_texts` -> report.json + texts.csv: sentiment, topics, summaries, periods and groups

The one place in lmforge that may use scikit-learn (the `analyze` extra; tests/test_layering.py).
"""

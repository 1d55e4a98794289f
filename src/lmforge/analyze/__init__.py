"""Turning a pile of text into answers: sentences, extractive summaries, and the market-research report of
`lmforge analyze`.

- sentences.py: a rule-based sentence splitter (abbreviations, initials, numbers, quotes; no downloads)
- summarize.py: lead-k, TextRank and embedding-centroid + MMR summaries; their ROUGE with bootstrap intervals
- sentiment.py: the share of each sentiment label with Wilson intervals, unsure texts apart
- topics.py: duplicates, k-means topics (k by silhouette), c-TF-IDF keywords, representative quotes
- report.py: `analyze_texts` -> the report's numbers and rows; `write_report` -> report.html, report.json,
  texts.csv (all three or none)
- inputs.py: the texts, dates and groups of CSV / TSV / JSONL / text files
- run.py: `analyze_files`: files -> classifier + embedder -> the analysis (what `lmforge analyze` runs)
- page.py: report.html: one self-contained page, plots inlined, every text escaped, no script
- demo.py: `lmforge analyze --demo`: the SST-2 dev sentences, a classifier fine-tuned first if none is there

The one place in lmforge that may use scikit-learn (the `analyze` extra; tests/test_layering.py).
"""

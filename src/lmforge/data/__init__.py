"""Data for training: token shards on disk and the datasets/collators each objective reads them through.

shards  tokenized corpora as memory-mapped uint16/uint32 arrays (`prepare_shards`, `TokenShards`)
clm     packed blocks with next-token targets (causal LM, GPT)
mlm     packed blocks with dynamic masking (masked LM, BERT)
"""

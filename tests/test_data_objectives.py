"""CLM blocks (next-token targets, indexable sampling) and MLM masking statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmforge.data.clm import CLMObjective, PackedBlocks
from lmforge.data.mlm import IGNORE_INDEX, MLMObjective, mask_tokens, word_start_table


def test_clm_targets_are_inputs_shifted_by_one():
    tokens = np.arange(1000, dtype=np.uint16)
    objective = CLMObjective(tokens, tokens, block_size=16, seed=3)
    batch = objective.train_batch(5, batch_size=4)
    assert batch["input_ids"].shape == batch["labels"].shape == (4, 16)
    assert torch.equal(batch["labels"][:, :-1], batch["input_ids"][:, 1:])
    assert torch.equal(batch["labels"][:, -1], batch["input_ids"][:, -1] + 1)  # arange: the next token


def test_clm_batches_depend_only_on_the_index_and_split_across_ranks():
    tokens = np.random.default_rng(0).integers(0, 50_000, 20_000).astype(np.uint16)
    objective = CLMObjective(tokens, None, block_size=32, seed=11)
    again = CLMObjective(tokens, None, block_size=32, seed=11)
    assert torch.equal(objective.train_batch(7, 8)["input_ids"], again.train_batch(7, 8)["input_ids"])
    whole = objective.train_batch(3, batch_size=8)["input_ids"]
    ranks = [objective.train_batch(3, batch_size=4, rank=r, world_size=2)["input_ids"] for r in (0, 1)]
    assert torch.equal(torch.cat(ranks), whole)  # 2 ranks x 4 = the samples of 1 process x 8
    halves = [objective.train_batch(i, batch_size=4) for i in (6, 7)]  # accumulation: 2 micro-batches
    assert torch.equal(torch.cat([h["input_ids"] for h in halves]), whole)
    other_seed = CLMObjective(tokens, None, block_size=32, seed=12).train_batch(3, 8)["input_ids"]
    assert not torch.equal(other_seed, whole)


def test_random_starts_cover_the_stream_uniformly():
    blocks = PackedBlocks(np.zeros(10_001), block_size=100, seed=0)
    starts = blocks.starts(0, 200_000)
    assert starts.min() == 0 and starts.max() == 10_001 - 101  # every window has 101 tokens
    counts = np.bincount(starts * 10 // 9901, minlength=10)
    assert len(counts) == 10
    assert counts.min() > 0.9 * counts.mean() and counts.max() < 1.1 * counts.mean()


def test_sequential_blocks_tile_and_eval_reads_each_block_once():
    tokens = np.arange(101)
    blocks = PackedBlocks(tokens, block_size=10, sampling="sequential")
    assert blocks.num_blocks == 10 and blocks.starts(8, 4).tolist() == [80, 90, 0, 10]
    objective = CLMObjective(tokens, tokens, block_size=10)
    seen = [b for rank in (0, 1) for b in objective.eval_batches(None, batch_size=3, rank=rank, world_size=2)]
    starts = sorted(int(s) for b in seen for s in b["input_ids"][:, 0])
    assert starts == list(range(0, 100, 10))


SPECIAL = [0, 1, 2, 3]  # [PAD] [CLS] [SEP] [MASK]
MASK = 3


def test_mlm_masking_statistics():
    rng = np.random.default_rng(0)
    ids = rng.integers(4, 1000, (64, 512))
    ids[:, ::50] = 2  # separators sprinkled in: never masked
    generators = [np.random.default_rng([9, i]) for i in range(len(ids))]
    inputs, labels = mask_tokens(ids, generators, mask_id=MASK, vocab_size=1000, special_ids=SPECIAL)
    chosen = labels != IGNORE_INDEX
    maskable = ids != 2
    n = chosen.sum()
    assert n / maskable.sum() == pytest.approx(0.15, abs=0.005)
    assert not chosen[~maskable].any() and (inputs[~maskable] == 2).all()
    assert (labels[chosen] == ids[chosen]).all() and (labels[~chosen] == IGNORE_INDEX).all()
    assert (inputs[~chosen] == ids[~chosen]).all()  # unchosen tokens are untouched
    as_mask = (inputs[chosen] == MASK).mean()
    unchanged = (inputs[chosen] == ids[chosen]).mean()
    replaced = 1 - as_mask - unchanged
    assert as_mask == pytest.approx(0.8, abs=0.015)
    assert unchanged == pytest.approx(0.1 + 0.1 / 1000, abs=0.01)  # a random id may equal the original
    assert replaced == pytest.approx(0.1, abs=0.01)


def test_whole_word_masking_masks_every_piece_of_a_chosen_word():
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "play", "##ing", "##ed", "the", "run", "##s"]
    starts = word_start_table(vocab)
    assert starts.tolist() == [True, True, True, True, True, False, False, True, True, False]
    rng = np.random.default_rng(1)
    words = [[4, 5], [4, 6], [7], [8, 9], [4, 5, 6]]
    ids = np.array([[1] + [t for _ in range(40) for t in words[rng.integers(len(words))]][:200] + [2]])
    inputs, labels = mask_tokens(
        ids, [np.random.default_rng(3)], mask_id=MASK, vocab_size=10, special_ids=SPECIAL, word_starts=starts
    )
    chosen = labels[0] != IGNORE_INDEX
    assert chosen.any()
    word_of = np.cumsum(starts[ids[0]]) - 1
    for word in np.unique(word_of):
        pieces = chosen[word_of == word]
        assert pieces.all() or not pieces.any()  # all pieces of a word together, or none


def test_mlm_objective_is_deterministic_per_sample_and_prefixes_cls():
    tokens = np.random.default_rng(0).integers(4, 1000, 50_000)
    objective = MLMObjective(
        tokens, tokens, block_size=64, mask_id=MASK, vocab_size=1000, special_ids=SPECIAL, prefix_id=1, seed=5
    )
    whole = objective.train_batch(2, batch_size=8)
    ranks = [objective.train_batch(2, batch_size=4, rank=r, world_size=2) for r in (0, 1)]
    assert whole["input_ids"].shape == (8, 64) and (whole["input_ids"][:, 0] == 1).all()
    assert (whole["labels"][:, 0] == IGNORE_INDEX).all()  # [CLS] is never masked
    for key in ("input_ids", "labels"):
        assert torch.equal(torch.cat([r[key] for r in ranks]), whole[key])
    first, second = list(objective.eval_batches(2, 4)), list(objective.eval_batches(2, 4))
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(first, second, strict=True))
    logits = torch.zeros(8, 64, 1000)
    logits[..., 7] = 10.0  # always predicts token 7
    sums = objective.evaluate(lambda ids: logits[: len(ids)], whole)
    metrics = objective.metrics(sums)
    labels = whole["labels"][whole["labels"] != IGNORE_INDEX]
    assert metrics["val_masked_accuracy"] == pytest.approx((labels == 7).float().mean().item())
    assert sums["masked"] == len(labels)


def test_mlm_loss_scores_only_masked_positions_and_equals_the_full_head():
    from lmforge.model import build_model, preset

    torch.manual_seed(0)
    model = build_model(preset("bert-tiny", vocab_size=1000, d_model=32, n_layers=1, n_heads=2, d_ff=64))
    tokens = np.random.default_rng(1).integers(4, 1000, 20_000)
    objective = MLMObjective(
        tokens, tokens, block_size=32, mask_id=MASK, vocab_size=1000, special_ids=SPECIAL, prefix_id=1, seed=3
    )
    batch = objective.train_batch(0, batch_size=4)
    full = model(batch["input_ids"]).logits  # (B, T, V): the head at every position
    expected = torch.nn.functional.cross_entropy(full.flatten(0, 1), batch["labels"].flatten())
    assert objective.loss(model, batch).item() == pytest.approx(expected.item(), rel=1e-6)

"""Speculative and prompt-lookup decoding give the output of plain decoding, faster.

- greedy with a draft model or prompt lookup = lmforge's plain greedy = HF `generate` (and HF's own assisted
  generation / prompt lookup) on converted HF weights: GPT-2 and Marian, single prompts and left-padded
  batches whose rows finish at different times;
- sampling keeps the model's distribution: a chi-square test of the tokens drawn over many seeds against
  the exact distribution, and a negative control (a rule that keeps every draft token) that the same test
  rejects;
- the KV cache cropped after rejected drafts equals a fresh forward over the kept tokens.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from lmforge import generate as generate_module
from lmforge.generate import (
    GenerationConfig,
    GenerationError,
    PromptLookup,
    generate,
    speculative_accept,
    stream,
)

transformers = pytest.importorskip("transformers")
scipy_stats = pytest.importorskip("scipy.stats")
from lmforge.model import build_model, load, preset  # noqa: E402
from lmforge.model.convert import from_hf  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py

VOCAB = 97
EOS = 54
MARIAN_EOS = 70


def converted(hf_model, tmp_path_factory, name):
    source = tmp_path_factory.mktemp(f"{name}-hf")
    hf_model.save_pretrained(source)
    out = tmp_path_factory.mktemp(f"{name}-lmforge")
    from_hf(source, out)
    return load(out)


@pytest.fixture(scope="module")
def gpt2_models(tmp_path_factory):
    """(HF target, lmforge target, HF draft, lmforge draft): the draft is a smaller GPT-2 trained on
    nothing, so it agrees with the target only sometimes — both branches of every round get exercised."""

    def gpt2(layers, width, seed):
        torch.manual_seed(seed)
        config = transformers.GPT2Config(
            vocab_size=VOCAB, n_positions=96, n_embd=width, n_layer=layers, n_head=4,
            eos_token_id=EOS, bos_token_id=EOS, initializer_range=0.2,
        )  # fmt: skip
        return transformers.GPT2LMHeadModel(config).eval()

    target, draft = gpt2(2, 32, 0), gpt2(1, 16, 1)
    return target, converted(target, tmp_path_factory, "gpt2"), draft, converted(draft, tmp_path_factory, "d")


@pytest.fixture(scope="module")
def marian_models(tmp_path_factory):
    def marian(layers, width, seed):
        torch.manual_seed(seed)
        config = transformers.MarianConfig(
            vocab_size=VOCAB, d_model=width, encoder_layers=layers, decoder_layers=layers,
            encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=2 * width,
            decoder_ffn_dim=2 * width, max_position_embeddings=64, pad_token_id=VOCAB - 1,
            decoder_start_token_id=VOCAB - 1, eos_token_id=MARIAN_EOS, forced_eos_token_id=None,
            init_std=0.05,
        )  # fmt: skip
        model = transformers.MarianMTModel(config).eval()
        with torch.no_grad():  # a boosted decoder: varied continuations that reach EOS at varied steps
            for name, parameter in model.model.decoder.named_parameters():
                if name.endswith(("fc2.weight", "out_proj.weight")):
                    parameter.mul_(6)
        return model

    target, draft = marian(2, 32, 0), marian(1, 16, 1)
    return target, converted(target, tmp_path_factory, "mt"), draft, converted(draft, tmp_path_factory, "md")


def random_prompts(seed: int, count: int, low: int = 3, high: int = 12) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(low, high, (count,), generator=generator).tolist()
    return [torch.randint(6, VOCAB - 1, (n,), generator=generator).tolist() for n in lengths]


def left_padded(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[EOS] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


def greedy(**changes) -> GenerationConfig:
    return GenerationConfig(**{"temperature": 0, "eos_token_id": EOS, "pad_token_id": EOS, **changes})


# --- greedy: identical tokens --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_single_prompt_gpt2_matches_plain_hf_and_hf_assisted(gpt2_models, seed):
    hf_target, target, hf_draft, draft = gpt2_models
    ids = torch.tensor(random_prompts(seed, 1))
    settings = dict(max_new_tokens=30, do_sample=False, eos_token_id=EOS, pad_token_id=EOS)
    expected = hf_target.generate(ids, **settings).tolist()
    assert hf_target.generate(ids, assistant_model=hf_draft, **settings).tolist() == expected
    assert hf_target.generate(ids, prompt_lookup_num_tokens=4, **settings).tolist() == expected

    config = greedy(max_new_tokens=30)
    assert generate(target, ids, config).sequences.tolist() == expected
    for schedule, gamma in itertools.product(("adaptive", "constant"), (1, 3, 7)):
        changed = config.replace(num_speculative_tokens=gamma, speculative_schedule=schedule)
        out = generate(target, ids, changed, draft_model=draft)
        assert out.sequences.tolist() == expected, (schedule, gamma)
    lookup = generate(target, ids, config.replace(prompt_lookup_num_tokens=4))
    assert lookup.sequences.tolist() == expected
    assert generate(target, ids, config, draft_model=target).acceptance_rate == 1.0  # itself: all kept


def test_the_draft_is_sometimes_right_and_sometimes_wrong(gpt2_models):
    """Guard against vacuous identity tests: rounds both keep and reject drafts."""
    _, target, _, draft = gpt2_models
    rates = []
    for seed in range(3):
        ids = torch.tensor(random_prompts(seed, 1))
        rates.append(generate(target, ids, greedy(max_new_tokens=30), draft_model=draft).acceptance_rate)
        rates.append(
            generate(target, ids, greedy(max_new_tokens=30, prompt_lookup_num_tokens=4)).acceptance_rate
        )
    assert all(0.05 < r < 0.95 for r in rates), rates


def test_a_confidence_threshold_drafts_less_and_keeps_the_tokens(gpt2_models):
    """speculative_confidence (HF's assistant_confidence_threshold) ends a draft after an unsure token:
    fewer drafts, the same text, single prompts and batches."""
    _, target, _, draft = gpt2_models
    for seed in range(2):
        ids, mask = left_padded(random_prompts(seed, 1 + 3 * seed))
        config = greedy(max_new_tokens=20, num_speculative_tokens=5, speculative_schedule="constant")
        mask = mask if seed else None
        plain = generate(target, ids, config, attention_mask=mask, draft_model=draft)
        sure = generate(target, ids, config.replace(speculative_confidence=0.3), attention_mask=mask,
                        draft_model=draft)  # fmt: skip
        assert sure.sequences.tolist() == plain.sequences.tolist()
        assert int(sure.drafted.sum()) < int(plain.drafted.sum())


def draft_rounds(draft, ids, mask, config, rounds):
    """What `DraftModel.propose` guesses over `rounds`: [(guesses, the draft's own greedy continuation)]; the
    text grows between rounds by 1 or 2 tokens (a rejection, or every guess kept plus the bonus token)."""
    from lmforge.generate import DraftModel

    proposer = DraftModel(draft, ids, mask, 64, config)
    sequences, out = ids, []
    for grow in rounds:
        guesses, probs, lengths = proposer.propose(sequences, 3, None)
        continuation = generate(draft, sequences, config.replace(max_new_tokens=3, eos_token_id=[]),
                                attention_mask=mask).new_tokens  # fmt: skip
        out.append((guesses.tolist(), continuation.tolist()))
        assert probs is None and lengths.tolist() == [3] * ids.shape[0]
        assert proposer.fed == proposer.stepper.cache.length  # what it read, each token once
        kept = guesses[:, : grow - 1]
        sequences = torch.cat([sequences, kept, torch.full_like(kept[:, :1], 7 + grow)], dim=1)
        if mask is not None:
            mask = torch.cat([mask, torch.ones_like(kept), torch.ones_like(kept[:, :1])], dim=1)
        proposer.rollback(sequences.shape[1] - 1)
    return out


@pytest.mark.parametrize("padded", [False, True])
def test_a_greedy_draft_guesses_its_own_greedy_tokens(gpt2_models, padded):
    """The greedy draft's short path (`_Stepper.greedy_step`, argmax only) guesses exactly the tokens the
    draft's plain greedy decoding gives, round after round with rollbacks (the output is the target's
    whatever the draft guesses, so only this can catch a wrong guess)."""
    _, _, _, draft = gpt2_models
    prompts = random_prompts(5, 3 if padded else 1)
    ids, mask = left_padded(prompts) if padded else (torch.tensor(prompts), None)
    for guesses, continuation in draft_rounds(draft, ids, mask, greedy(), rounds=[1, 3, 4, 1, 2]):
        assert guesses == continuation


def test_the_target_as_its_own_draft_is_always_right(gpt2_models):
    _, target, _, _ = gpt2_models
    ids = torch.tensor(random_prompts(1, 1))
    config = greedy(max_new_tokens=30, eos_token_id=[])
    spec = generate(target, ids, config, draft_model=target)
    assert spec.sequences.tolist() == generate(target, ids, config).sequences.tolist()
    assert spec.acceptance_rate == 1.0


@pytest.mark.slow
def test_a_compiled_greedy_draft_guesses_its_own_greedy_tokens(gpt2_models):
    """compile=True: the draft's greedy step is compiled with its argmax; the same guesses as eager."""
    _, _, _, draft = gpt2_models
    ids = torch.tensor(random_prompts(5, 1))
    for guesses, continuation in draft_rounds(draft, ids, None, greedy(compile=True), rounds=[1, 3, 4, 2]):
        assert guesses == continuation


@pytest.mark.slow
def test_a_compiled_step_gives_the_eager_tokens(gpt2_models):
    """config.compile: the one-token step through torch.compile, over the same KV cache (~30 s to compile)."""
    _, target, _, draft = gpt2_models
    for seed in range(2):
        ids = torch.tensor(random_prompts(seed, 1))
        config = greedy(max_new_tokens=20)
        expected = generate(target, ids, config).sequences.tolist()
        assert generate(target, ids, config.replace(compile=True)).sequences.tolist() == expected
        spec = generate(target, ids, config.replace(compile=True), draft_model=draft)
        assert spec.sequences.tolist() == expected
    # the plain step, the greedy draft's step and the pass over the drafts each went through its graph
    assert {"last", "argmax", "all"} <= set(generate_module._COMPILED_STEPS)


def test_batches_gpt2_match_hf_greedy(gpt2_models):
    hf_target, target, _, draft = gpt2_models
    finished = []
    for seed in range(3):
        ids, mask = left_padded(random_prompts(seed, 5))
        expected = hf_target.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=20, do_sample=False, eos_token_id=EOS,
            pad_token_id=EOS,
        ).tolist()  # fmt: skip
        config = greedy(max_new_tokens=20)
        spec = generate(target, ids, config, attention_mask=mask, draft_model=draft)
        assert spec.sequences.tolist() == expected
        lookup = generate(target, ids, config.replace(prompt_lookup_num_tokens=3), attention_mask=mask)
        assert lookup.sequences.tolist() == expected
        assert spec.drafted.shape == (5,) and bool((spec.accepted <= spec.drafted).all())
        finished += (torch.tensor(expected)[:, ids.shape[1] :] == EOS).any(1).tolist()
    assert 0 < sum(finished) < len(finished)  # some rows finish early while others run on


@pytest.mark.parametrize("seed", range(2))
def test_marian_single_and_batch_match_hf(marian_models, seed):
    hf_target, target, hf_draft, draft = marian_models
    pad = VOCAB - 1
    prompts = [p + [MARIAN_EOS] for p in random_prompts(seed, 4)]
    width = max(len(p) for p in prompts)
    ids = torch.tensor([p + [pad] * (width - len(p)) for p in prompts])
    mask = (ids != pad).long()
    settings = dict(max_new_tokens=16, do_sample=False, eos_token_id=MARIAN_EOS, pad_token_id=pad)
    config = GenerationConfig(temperature=0, eos_token_id=MARIAN_EOS, max_new_tokens=16)
    expected = hf_target.generate(input_ids=ids, attention_mask=mask, **settings).tolist()
    got = generate(target, ids, config, attention_mask=mask, draft_model=draft)
    assert got.sequences.tolist() == expected
    one = ids[:1, : len(prompts[0])]
    expected_one = hf_target.generate(input_ids=one, **settings).tolist()
    assert hf_target.generate(input_ids=one, assistant_model=hf_draft, **settings).tolist() == expected_one
    assert generate(target, one, config, draft_model=draft).sequences.tolist() == expected_one
    assert (
        generate(target, one, config.replace(prompt_lookup_num_tokens=3)).sequences.tolist() == expected_one
    )
    assert bool((torch.tensor(expected)[:, 1:] == MARIAN_EOS).any())


def test_processors_stop_strings_and_stream_match_plain(gpt2_models):
    _, target, _, draft = gpt2_models
    tokenizer = ByteLevelTokenizer()
    ids = torch.tensor(random_prompts(4, 1))
    config = greedy(max_new_tokens=25, repetition_penalty=1.3, no_repeat_ngram_size=3)
    plain = generate(target, ids, config).sequences
    assert torch.equal(generate(target, ids, config, draft_model=draft).sequences, plain)
    assert torch.equal(generate(target, ids, config.replace(prompt_lookup_num_tokens=5)).sequences, plain)

    free = generate(target, ids, greedy(max_new_tokens=30, eos_token_id=[1000])).new_tokens[0].tolist()
    stop = chr(free[6])
    stopping = greedy(max_new_tokens=30, eos_token_id=[1000], stop_strings=[stop])
    plain = generate(target, ids, stopping, tokenizer=tokenizer).sequences
    assert plain.shape[1] < ids.shape[1] + 30
    assert torch.equal(
        generate(target, ids, stopping, tokenizer=tokenizer, draft_model=draft).sequences, plain
    )

    text = tokenizer.decode(generate(target, ids, greedy(max_new_tokens=25)).new_tokens[0].tolist())
    assert "".join(stream(target, tokenizer, ids, greedy(max_new_tokens=25), draft_model=draft)) == text


class ByteLevelTokenizer:
    def decode(self, ids, skip_special_tokens=True):
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


def test_no_new_tokens_and_a_draft_with_a_shorter_context(gpt2_models):
    _, target, _, _ = gpt2_models
    ids = torch.tensor(random_prompts(6, 1, 10, 11))
    torch.manual_seed(3)
    short = build_model(preset("gpt-tiny", vocab_size=VOCAB, n_layers=1, d_model=16, n_heads=2, d_ff=32,
                               max_positions=24)).eval()  # fmt: skip
    assert (
        generate(target, ids, greedy(max_new_tokens=0), draft_model=short).sequences.tolist() == ids.tolist()
    )
    config = greedy(max_new_tokens=40, eos_token_id=[1000])  # runs past the draft's 24 positions
    plain = generate(target, ids, config).sequences
    assert torch.equal(generate(target, ids, config, draft_model=short).sequences, plain)


def test_prompt_lookup_finds_hf_s_candidates():
    lookup = PromptLookup(num_tokens=4, max_ngram=2)
    assert lookup.find([1, 2, 3, 4, 1, 2], 4) == [3, 4, 1, 2]
    assert lookup.find([1, 2, 3, 9, 2, 8, 2], 4) == [3, 9, 2, 8]  # bigram "8 2" absent: unigram "2"
    assert lookup.find([1, 2, 3], 4) == []
    assert lookup.find([7, 7, 7], 2) == [7]  # the earliest match with a continuation, cut at the length


def test_bad_combinations_are_clear_errors(gpt2_models, marian_models):
    _, target, _, draft = gpt2_models
    ids = torch.tensor([[7, 8]])
    with pytest.raises(GenerationError, match="choose one"):
        generate(target, ids, greedy(prompt_lookup_num_tokens=2), draft_model=draft)
    beams = greedy(num_beams=2, max_new_tokens=8)  # beam search ignores drafts: there is no one text
    plain = generate(target, ids, beams).sequences
    assert torch.equal(generate(target, ids, beams, draft_model=draft).sequences, plain)
    assert generate(target, ids, beams.replace(prompt_lookup_num_tokens=3)).drafted is None
    other = build_model(preset("gpt-tiny", vocab_size=VOCAB + 1, n_layers=1, d_model=16, n_heads=2))
    with pytest.raises(GenerationError, match="model's tokenizer"):
        generate(target, ids, greedy(), draft_model=other)
    with pytest.raises(GenerationError, match="must be a decoder-only"):
        generate(target, ids, greedy(), draft_model=marian_models[1])
    with pytest.raises(ValueError, match="num_speculative_tokens"):
        GenerationConfig(num_speculative_tokens=0)


# --- sampling: the model's distribution -----------------------------------------------------------------

SMALL = 6  # vocabulary of the distribution test: 6 x 6 = 36 cells for the pair of tokens tested


@pytest.fixture(scope="module")
def small_models():
    """A target and a draft over 6 tokens whose next-token distributions differ clearly (wide weights)."""

    def model(seed, layers, width):
        torch.manual_seed(seed)
        built = build_model(preset("gpt-tiny", vocab_size=SMALL, n_layers=layers, d_model=width, n_heads=2,
                                   d_ff=2 * width, max_positions=16)).eval()  # fmt: skip
        with torch.no_grad():
            for parameter in built.parameters():
                if parameter.dim() > 1:
                    parameter.normal_(0, 0.6)
        return built

    return model(0, 2, 16), model(1, 1, 8)


PROMPT = [1, 4, 2]
ROWS = 4  # prompts per generate call (rows of a batch sample independently)


def exact_pair_distribution(model) -> torch.Tensor:
    """P(t2, t3 | prompt) under `model`, (SMALL, SMALL): the first new token summed out, by enumeration."""
    rows = torch.tensor([PROMPT + [a, b] for a in range(SMALL) for b in range(SMALL)])
    probabilities = model(rows).logits.double().softmax(-1)  # (SMALL², T, V)
    p1 = probabilities[0, -3]  # after the prompt
    p2 = probabilities[::SMALL, -2]  # (SMALL, V): after t1 = a
    p3 = probabilities[:, -1].view(SMALL, SMALL, SMALL)  # after (t1 = a, t2 = b)
    return (p1[:, None, None] * p2[:, :, None] * p3).sum(0)


def sampled_pairs(target, draft, rule, calls: int, changes: dict | None = None) -> torch.Tensor:
    """Counts of tokens 2 and 3 over `calls` seeded sampling calls of ROWS rows each.

    The first token comes from the prefill; tokens 2 and 3 from a speculative round of γ = 2 (kept,
    corrected, or the bonus token), so the acceptance test and the residual distribution both count.
    """
    config = GenerationConfig(max_new_tokens=4, temperature=1.0, num_speculative_tokens=2,
                              speculative_schedule="constant").replace(**(changes or {}))  # fmt: skip
    prompts = torch.tensor([PROMPT] * ROWS)
    counts = torch.zeros(SMALL, SMALL)
    kept_both = 0
    for seed in range(calls):
        out = generate(target, prompts, config.replace(seed=seed), draft_model=draft, acceptance_rule=rule)
        for _, t2, t3, _ in out.new_tokens.tolist():
            counts[t2, t3] += 1
        kept_both += int((out.accepted >= 2).sum())
    assert kept_both > 0.03 * calls * ROWS  # the second draft position is kept too, not only the first
    return counts


def chi_square_p_value(counts: torch.Tensor, probabilities: torch.Tensor) -> float:
    """Pearson's test, cells with an expected count under 5 pooled into one."""
    observed = counts.flatten().double()
    expected = probabilities.flatten() / probabilities.sum() * observed.sum()
    small = expected < 5
    expected = torch.cat([expected[~small], expected[small].sum()[None]])
    observed = torch.cat([observed[~small], observed[small].sum()[None]])
    expected = expected * (observed.sum() / expected.sum())  # equal totals to the last bit
    return float(scipy_stats.chisquare(observed.numpy(), expected.numpy()).pvalue)


def accept_every_draft(scores, drafts, draft_probs, lengths, do_sample, generator=None):
    """A wrong rule: keep every draft token (then the text follows the draft, not the target)."""
    p = scores.softmax(-1)
    rows = torch.arange(drafts.shape[0])
    return lengths, torch.multinomial(p[rows, lengths], 1, generator=generator).squeeze(1)


@torch.no_grad()
def test_sampling_keeps_the_target_distribution_and_a_wrong_rule_does_not(small_models):
    target, draft = small_models
    exact = exact_pair_distribution(target)
    # the draft's distribution is clearly another one, else the negative control would prove nothing
    assert 0.5 * (exact - exact_pair_distribution(draft)).abs().sum() > 0.2
    assert chi_square_p_value(sampled_pairs(target, draft, speculative_accept, 400), exact) > 1e-3
    # a draft that stops after an unsure token still leaves the target's distribution
    stopping = {"speculative_confidence": 0.5}
    assert chi_square_p_value(sampled_pairs(target, draft, speculative_accept, 400, stopping), exact) > 1e-3
    assert chi_square_p_value(sampled_pairs(target, draft, accept_every_draft, 400), exact) < 1e-6


# --- the cache after a rollback --------------------------------------------------------------------------


@pytest.mark.parametrize("padded", [False, True])
def test_cropped_cache_equals_a_fresh_forward(gpt2_models, padded):
    _, target, _, _ = gpt2_models
    ids, mask = left_padded(random_prompts(5, 3, 6, 10))
    if not padded:
        ids, mask = ids[:, -5:], None
    drafts = torch.randint(6, VOCAB - 1, (ids.shape[0], 6), generator=torch.Generator().manual_seed(1))
    keep = 2

    def ones(width):
        return None if mask is None else torch.cat([mask, mask.new_ones(mask.shape[0], width)], 1)

    with torch.no_grad():
        cache = target.new_cache()
        target(ids, attention_mask=mask, cache=cache)
        target(drafts, attention_mask=ones(6), cache=cache)  # a verify pass over 6 drafts
        cache.crop(ids.shape[1] + keep)  # 2 kept
        fresh = target.new_cache()
        target(torch.cat([ids, drafts[:, :keep]], 1), attention_mask=ones(keep), cache=fresh)
        assert cache.length == fresh.length == ids.shape[1] + keep
        for cropped, clean in zip(cache.layers, fresh.layers, strict=True):
            torch.testing.assert_close(cropped.key, clean.key)
            torch.testing.assert_close(cropped.value, clean.value)
        following = torch.full((ids.shape[0], 3), 9)  # and both continue the same way
        after_crop = target(following, attention_mask=ones(keep + 3), cache=cache).logits
        after_fresh = target(following, attention_mask=ones(keep + 3), cache=fresh).logits
        torch.testing.assert_close(after_crop, after_fresh)

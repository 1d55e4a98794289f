"""The model families lmforge reads, each built in the test with HF `tokenizers`' API to its family's
specification (GPT-2, RoBERTa, BERT, T5, ALBERT, XLM-R, Llama-2), trained on wikitext-2, and compared with
HF on mixed-script strings (emoji and ZWJ sequences, combining marks, whitespace runs, several scripts): ids,
tokens, offsets and decoded text identical, for single texts and pairs.

Real T5/ALBERT/XLM-R files start their normalizer with SentencePiece's `Precompiled` rules, which lmforge
does not read; these builds put NFKC in its place (what those rules mostly do)."""

from __future__ import annotations

import random

import pytest

from lmforge.tokenizers import Tokenizer
from test_tokenizers_parity import hf_wordpiece

hf = pytest.importorskip("tokenizers")
from tokenizers import (  # noqa: E402
    AddedToken,
    Regex,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

SMALL, LARGE = 2000, 20000  # strings per family: in the default suite, and with -m slow

PIECES = [
    "🐸",
    "👍🏽",
    "👨‍👩‍👧",
    "🇫🇷",
    "e\u0301",
    "a\u0308o",
    "n\u0303",
    "Å",
    "ﬁ",
    "  ",
    "\t",
    "\n",
    "   \n ",
    "\u00a0",
    "\u3000",
    "日本語",
    "中文字",
    "한국어",
    "Привет",
    "Ελληνικά",
    "مرحبا",
    "नमस्ते",
    "``quoted''",
    "don't",
    "3.14",
    "1,000",
    "<mask>",
    "[MASK]",
    "</s>",
]


@pytest.fixture(scope="module")
def corpus(shared_data) -> list[str]:
    lines = (shared_data / "wikitext-2" / "train.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip()][:3000]


def mixed_strings(corpus: list[str], count: int, seed: int = 0) -> list[str]:
    """Held-out-style text cut at random places, with pieces of other scripts, emoji and space runs."""
    rng = random.Random(seed)
    out = ["", " ", "a", "  leading and trailing  ", "🐸", "e\u0301"]
    while len(out) < count:
        words = rng.choice(corpus).split(" ")
        start = rng.randrange(len(words))
        parts = words[start : start + rng.randint(1, 12)]
        for _ in range(rng.randint(0, 4)):
            parts.insert(rng.randint(0, len(parts)), rng.choice(PIECES))
        joiner = rng.choice([" ", " ", " ", "", "  "])
        out.append(joiner.join(parts))
    return out


def byte_level_bpe(corpus, special, prefix_space=False) -> hf.Tokenizer:
    tok = hf.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1200,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return tok


def gpt2(corpus) -> hf.Tokenizer:
    tok = byte_level_bpe(corpus, ["<|endoftext|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def roberta(corpus) -> hf.Tokenizer:
    tok = byte_level_bpe(corpus, ["<s>", "<pad>", "</s>", "<unk>"])
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True)])
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True)
    return tok


def bert(corpus) -> hf.Tokenizer:
    return hf_wordpiece(corpus)  # BERT uncased's stages, as the parity tests build them


def unigram(corpus, normalizer, special, unk) -> hf.Tokenizer:
    tok = hf.Tokenizer(models.Unigram())
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=1000, special_tokens=special, unk_token=unk, show_progress=False
    )
    tok.train_from_iterator(corpus[:600], trainer)  # HF's Unigram trainer is the slow one: a part suffices
    return tok


SQUEEZE_SPACES = normalizers.Replace(Regex(" {2,}"), " ")


def t5(corpus) -> hf.Tokenizer:
    tok = unigram(
        corpus,
        normalizers.Sequence([normalizers.NFKC(), SQUEEZE_SPACES]),
        ["<pad>", "</s>", "<unk>"],
        "<unk>",
    )
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return tok


def albert(corpus) -> hf.Tokenizer:
    normalizer = normalizers.Sequence(
        [
            normalizers.Replace("``", '"'),
            normalizers.Replace("''", '"'),
            normalizers.NFKD(),
            normalizers.StripAccents(),
            normalizers.Lowercase(),
            SQUEEZE_SPACES,
        ]
    )
    special = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    tok = unigram(corpus, normalizer, special, "<unk>")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return tok


def xlm_r(corpus) -> hf.Tokenizer:
    special = ["<s>", "<pad>", "</s>", "<unk>"]
    tok = unigram(corpus, normalizers.Sequence([normalizers.NFKC(), SQUEEZE_SPACES]), special, "<unk>")
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return tok


def llama2(corpus) -> hf.Tokenizer:
    """SentencePiece BPE as transformers converts Llama-2: '▁' for spaces, byte fallback, no pre-tokenizer."""
    normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    learner = hf.Tokenizer(models.BPE())
    learner.normalizer = normalizer
    learner.pre_tokenizer = pre_tokenizers.Split("▁", "merged_with_next")  # learn pieces within words
    learner.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=1200, limit_alphabet=120, show_progress=False)
    )
    learned = learner.model
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2} | {f"<0x{b:02X}>": 3 + b for b in range(256)}
    for token, _ in sorted(learner.get_vocab().items(), key=lambda item: item[1]):
        vocab.setdefault(token, len(vocab))
    import json

    merges = [
        tuple(m) if isinstance(m, list) else tuple(m.split(" "))
        for m in json.loads(learner.to_str())["model"]["merges"]
    ]
    del learned
    tok = hf.Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizer
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", 1)]
    )
    return tok


FAMILIES = {
    "gpt2": gpt2,
    "roberta": roberta,
    "bert": bert,
    "t5": t5,
    "albert": albert,
    "xlm-r": xlm_r,
    "llama2": llama2,
}
EXPECTED_KIND = {
    "t5": "unigram",
    "albert": "unigram",
    "xlm-r": "unigram",
    "llama2": "generic",
    "bert": "wordpiece",
}


def compare(family: str, corpus: list[str], count: int) -> None:
    theirs = FAMILIES[family](corpus)
    ours = Tokenizer.from_str(theirs.to_str())
    assert ours.kind == EXPECTED_KIND.get(family, "bpe")
    texts = mixed_strings(corpus, count, seed=list(FAMILIES).index(family))  # the same strings every run
    for text in texts:
        mine, reference = ours.encode(text), theirs.encode(text)
        assert mine.ids == reference.ids, (family, text)
        assert mine.tokens == reference.tokens, (family, text)
        assert mine.offsets == reference.offsets, (family, text)
        assert ours.decode(mine.ids) == theirs.decode(reference.ids), (family, text)
        assert ours.decode(mine.ids, skip_special_tokens=False) == theirs.decode(
            reference.ids, skip_special_tokens=False
        ), (family, text)
    for a, b in zip(texts[: count // 10], texts[count // 10 : count // 5], strict=True):
        mine, reference = ours.encode(a, b), theirs.encode(a, b)
        assert (mine.ids, mine.offsets, mine.type_ids) == (
            reference.ids,
            reference.offsets,
            reference.type_ids,
        )


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_matches_hf(family, corpus):
    compare(family, corpus, SMALL)


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_matches_hf_on_thousands_of_strings(family, corpus):
    compare(family, corpus, LARGE)

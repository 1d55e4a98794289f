"""Tokenization: text → tokens → ids, and back. Four kinds behind one interface.

    from lmforge.tokenizers import BPETokenizer, Tokenizer
    tok = BPETokenizer.train(lines, vocab_size=8192)       # also CharTokenizer, WordTokenizer, WordPieceTokenizer
    enc = tok.encode("Frog on a log.")                     # Encoding: ids, tokens, offsets, type_ids, ...
    tok.decode(enc.ids)                                    # 'Frog on a log.'
    tok.save("tok.json")                                   # HF tokenizer.json + tok.vocab.txt for people
    load_tokenizer("tok.json")                             # the right kind back (HF files too)

Modules: base (Encoding, Tokenizer, special tokens, truncation, padding, templates) · pipeline (normalizers,
pre-tokenizers, post-processors, decoders) · char · word · bpe (byte-level) · wordpiece · charbpe (original
BPE, `</w>`) · unigram (SentencePiece) · hf (tokenizer.json)
· parallel (encode_batch on several processes) · stream (DecodeStream: decoding ids as they are generated).
"""

from lmforge.tokenizers.base import AddedToken, Encoding, Padding, Tokenizer, Truncation
from lmforge.tokenizers.bpe import END_OF_TEXT, BPETokenizer
from lmforge.tokenizers.char import CharTokenizer
from lmforge.tokenizers.charbpe import CharBPETokenizer
from lmforge.tokenizers.hf import load_tokenizer, tokenizer_from_str
from lmforge.tokenizers.stream import DecodeStream
from lmforge.tokenizers.unigram import UnigramTokenizer
from lmforge.tokenizers.word import WordTokenizer
from lmforge.tokenizers.wordpiece import BERT_SPECIAL_TOKENS, WordPieceTokenizer

KINDS: dict[str, type[Tokenizer]] = {
    "char": CharTokenizer,
    "word": WordTokenizer,
    "bpe": BPETokenizer,
    "wordpiece": WordPieceTokenizer,
    "charbpe": CharBPETokenizer,
    "unigram": UnigramTokenizer,
}

__all__ = [
    "AddedToken",
    "BERT_SPECIAL_TOKENS",
    "BPETokenizer",
    "CharBPETokenizer",
    "CharTokenizer",
    "DecodeStream",
    "END_OF_TEXT",
    "Encoding",
    "KINDS",
    "Padding",
    "Tokenizer",
    "Truncation",
    "UnigramTokenizer",
    "WordPieceTokenizer",
    "WordTokenizer",
    "load_tokenizer",
    "tokenizer_from_str",
]

"""The Unigram model (SentencePiece; T5, ALBERT, XLM-R): each piece has a log-probability, and a word is cut
into the pieces whose scores sum highest (Viterbi over every way of cutting it).

This file implements:
  - `UnigramModel`: HF's `Unigram` encoding exactly — the best path by summed scores (the first of equal
    paths found, as HF finds them), an unknown character costs the lowest score minus 10, runs of unknown
    characters are one token (whose text is the text itself, as HF reports it), optional byte fallback to
    ``<0xAB>`` pieces;
  - `UnigramTokenizer`: SentencePiece's stages (NFKC, Metaspace '▁' words, Metaspace decoder) and `train`
    (SentencePiece's EM with pruning, in `unigram_train.py`).

    tok = load_tokenizer("t5/tokenizer.json")  # a UnigramTokenizer
    tok.encode("Frog on a log.").tokens       # ['▁F', 'rog', '▁on', '▁a', '▁log', '.', '</s>']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from lmforge.errors import LmforgeError
from lmforge.tokenizers.base import AddedToken, Model, Tokenizer
from lmforge.tokenizers.bpe import check_vocab_size, count_words
from lmforge.tokenizers.pipeline import Metaspace, MetaspaceDecoder, UnicodeNormalizer

UNK_PENALTY = (
    10.0  # an unknown character scores this much below the lowest piece (SentencePiece's kUnkPenalty)
)


class UnigramModel(Model):
    """Pieces with scores (log-probabilities); `unk_id` is the piece unknown characters become."""

    def __init__(
        self, pieces: Sequence[tuple[str, float]], unk_id: int | None = 0, byte_fallback: bool = False
    ):
        if not pieces:
            raise LmforgeError("a Unigram model needs at least one piece")
        self.pieces = [(str(p), float(s)) for p, s in pieces]
        self.unk_id = unk_id
        self.byte_fallback = byte_fallback
        if unk_id is not None and not 0 <= unk_id < len(self.pieces):
            raise LmforgeError(f"Unigram unk_id {unk_id} is not one of the {len(self.pieces)} pieces")
        self.vocab = {piece: i for i, (piece, _) in enumerate(self.pieces)}
        self._score = {piece: self.pieces[i][1] for piece, i in self.vocab.items()}
        self._prefixes = {piece[:n] for piece in self.vocab for n in range(1, len(piece) + 1)}
        self.min_score = min(score for _, score in self.pieces)
        self._unk_score = self.min_score - UNK_PENALTY

    def id_to_token(self, token_id: int) -> str | None:
        return self.pieces[token_id][0] if 0 <= token_id < len(self.pieces) else None

    def best_path(self, word: str) -> list[tuple[int, int, bool]]:
        """Viterbi: the (start, end, is_unknown) spans of the best cut of `word`, runs of unknowns fused."""
        n = len(word)
        best: list[float | None] = [None] * (n + 1)
        best[0] = 0.0
        came_from = [0] * (n + 1)
        unknown = [False] * (n + 1)
        score_of, prefixes, unk_score = self._score, self._prefixes, self._unk_score
        for start in range(n):
            here = best[start]
            single = False
            end = start + 1
            while end <= n:
                piece = word[start:end]
                if piece not in prefixes:
                    break
                score = score_of.get(piece)
                if score is not None:
                    candidate = score + here
                    target = best[end]
                    if target is None or candidate > target:
                        best[end], came_from[end], unknown[end] = candidate, start, False
                    if end == start + 1:
                        single = True
                end += 1
            if not single:
                candidate = unk_score + here
                target = best[start + 1]
                if target is None or candidate > target:
                    best[start + 1], came_from[start + 1], unknown[start + 1] = candidate, start, True
        spans: list[tuple[int, int, bool]] = []
        end = n
        while end > 0:
            start = came_from[end]
            if unknown[end] and spans and spans[-1][2] and self.unk_id is not None:
                spans[-1] = (start, spans[-1][1], True)  # runs of unknown characters: one token
            else:
                spans.append((start, end, unknown[end]))
            end = start
        spans.reverse()
        return spans

    def tokenize(self, word: str) -> list[tuple[int, str, int, int]]:
        if not word:
            return []
        out = []
        vocab = self.vocab
        for start, end, _ in self.best_path(word):
            text = word[start:end]
            token_id = vocab.get(text)
            if token_id is not None:
                out.append((token_id, text, start, end))
                continue
            if self.byte_fallback:
                pieces = [f"<0x{b:02X}>" for b in text.encode("utf-8")]
                if all(p in vocab for p in pieces):
                    out.extend((vocab[p], p, start, end) for p in pieces)
                    continue
            if self.unk_id is None:
                raise LmforgeError(f"{text!r} has no piece and this Unigram model has no unknown piece")
            out.append((self.unk_id, text, start, end))
        return out

    def to_json(self) -> dict:
        return {
            "type": "Unigram",
            "unk_id": self.unk_id,
            "vocab": [[piece, score] for piece, score in self.pieces],
            "byte_fallback": self.byte_fallback,
        }

    def readable_vocab(self) -> list[str]:
        return [f"{i}\t{piece}\t{score:.4f}" for i, (piece, score) in enumerate(self.pieces)]


UNIGRAM_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>")


class UnigramTokenizer(Tokenizer):
    """SentencePiece Unigram: NFKC, spaces as '▁' starting each word, pieces by Viterbi; `train` by EM."""

    kind = "unigram"

    @classmethod
    def from_pieces(
        cls,
        pieces: Sequence[tuple[str, float]],
        special_tokens: Sequence[str] = UNIGRAM_SPECIAL_TOKENS,
        unk_token: str = "<unk>",
    ) -> UnigramTokenizer:
        """SentencePiece's stages around scored pieces (the special tokens must be among them)."""
        ids = {piece: i for i, (piece, _) in enumerate(pieces)}
        missing = [t for t in special_tokens if t not in ids]
        if missing:
            raise LmforgeError(f"special tokens {missing} are not among the pieces")
        return cls(
            UnigramModel(pieces, unk_id=ids.get(unk_token)),
            normalizer=UnicodeNormalizer("NFKC"),
            pre_tokenizer=Metaspace(),
            decoder=MetaspaceDecoder(),
            added_tokens=[AddedToken(t, ids[t], special=True) for t in special_tokens],
        )

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 8192,
        special_tokens: Sequence[str] = UNIGRAM_SPECIAL_TOKENS,
        unk_token: str = "<unk>",
        *,
        max_piece_length: int = 16,
        shrinking_factor: float = 0.75,
        n_sub_iterations: int = 2,
        seed_size: int = 1_000_000,
        progress: Callable[[str], None] | None = None,
    ) -> UnigramTokenizer:
        """Learn scored pieces from `texts` (any iterator of strings, read once) as SentencePiece and HF's
        `UnigramTrainer` do (same options, same defaults): seed substrings, EM, pruning rounds.

        Words are those the tokenizer will see: NFKC, then '▁' for spaces and in front of each text. Ids:
        the special tokens (score 0; `unk_token` is added first if it is not among them), then the pieces
        by score. `progress` is called with a line per step (seeding, each EM round).

        On a text this small, EM keeps fewer pieces than asked (17 of 40), as HF's trainer does; HF learns
        these same pieces here:

        >>> tok = UnigramTokenizer.train(["low lower lowest newest widest"] * 20, vocab_size=40)
        >>> tok.vocab_size, tok.encode("lowest newer").tokens
        (18, ['▁lowe', 's', 't', '▁', 'n', 'e', 'we', 'r'])
        """
        from lmforge.tokenizers.unigram_train import train_unigram  # numba: imported when training

        special_tokens = list(special_tokens)
        check_vocab_size(vocab_size, special_tokens, 1, "character")
        if not 1 <= max_piece_length <= 64:
            raise LmforgeError(f"max_piece_length must be between 1 and 64, got {max_piece_length}")
        if not 0 < shrinking_factor < 1:
            raise LmforgeError(f"shrinking_factor must be between 0 and 1, got {shrinking_factor}")
        if n_sub_iterations < 1 or seed_size < 1:
            raise LmforgeError("n_sub_iterations and seed_size must be at least 1")
        normalizer, metaspace = UnicodeNormalizer("NFKC"), Metaspace()

        def words(text: str) -> list[str]:
            text = normalizer.normalize(text)[0].replace(" ", metaspace.replacement)
            if text and text[0] != metaspace.replacement:
                text = metaspace.replacement + text  # prepend_scheme "always", as HF's pre-tokenizer
            return metaspace.words(text)

        counter = count_words(texts, words)
        pieces, unk_id = train_unigram(
            counter,
            vocab_size,
            special_tokens,
            unk_token,
            max_piece_length=max_piece_length,
            shrinking_factor=shrinking_factor,
            n_sub_iterations=n_sub_iterations,
            seed_size=seed_size,
            progress=progress,
        )
        specials = special_tokens if unk_token in special_tokens else [unk_token, *special_tokens]
        assert pieces[unk_id][0] == unk_token
        return cls.from_pieces(pieces, specials, unk_token)

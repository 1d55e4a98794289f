"""Sentence splitting by rules: abbreviations, initials, numbers, ellipses and quotes, no data to download.

A sentence ends at `.`, `!`, `?` or `…` (any run of them), after any closing quotes or brackets, where
whitespace follows and the next word opens a sentence: it starts with a capital letter or a digit, perhaps
behind an opening quote or bracket. Then the rules that keep a sentence whole:

- a title or a word that is always followed by more (`Mr.`, `Dr.`, `St.`, `e.g.`, `vs.`) never ends one,
  nor does a word that stands before a number (`No. 5`, `Fig. 2`, `Jan. 12`);
- a single capital letter with a period is an initial (`J. K. Rowling`, `George W. Bush`);
- an abbreviation that may also end a sentence (`etc.`, `Inc.`, `U.S.`, `a.m.`) ends one only when the next
  word is one that typically opens a sentence (`The`, `He`, `But`, ...);
- `!` or `?` inside a quotation followed by a lower-case word (`"Stop!" he said.`) is not an end, and
  neither is anything without whitespace after it (`3.5`, `example.com`, `U.S.-based`).

Line breaks are always boundaries: a document whose sentences are on their own lines (as XSum ships them)
keeps them, and a document on one line is split by the rules.

    >>> split_sentences('Mr. Smith paid $3.50 at 5 p.m. on Friday. "Is that all?" he asked. Yes.')
    ['Mr. Smith paid $3.50 at 5 p.m. on Friday.', '"Is that all?" he asked.', 'Yes.']
"""

from __future__ import annotations

import re

# Never the end of a sentence: titles, and words that always have more after them (lower case, no dot).
NEVER_FINAL = frozenset(
    "mr mrs ms mx dr prof rev fr sr st mt gen col lt maj capt cmdr sgt cpl adm gov sen rep pres hon messrs"
    " mme mlle supt insp jr esq e.g i.e cf vs viz approx ca".split()
)
# Not the end before a number (`No. 5`, `Fig. 2`, `Jan. 12`); as plain words (`no`, `art`) they may be.
BEFORE_NUMBER = frozenset(
    "no nos fig figs vol vols p pp eq ch sec art jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# May end a sentence; do only when the next word usually opens one.
MAYBE_FINAL = frozenset(
    "etc inc ltd co corp plc llc bros al u.s u.k u.n u.s.a e.u a.m p.m b.c a.d ph.d m.a b.a d.c".split()
)
SENTENCE_OPENERS = frozenset(
    "the a an he she it they we i you his her its their our this that these those there here but and so yet"
    " or if when while after before in on at for as however meanwhile then now also still one some many"
    " most all no not what who why how where mr mrs ms dr".split()
)

_CLOSERS = "\"'”’»)]}"
_OPENERS = "\"'“‘«([{"
# A run of final punctuation, the closing quotes/brackets after it, the whitespace that follows.
_CANDIDATE = re.compile(rf"([.!?…]+)([{re.escape(_CLOSERS)}]*)(\s+)")
_NEXT_WORD = re.compile(rf"[{re.escape(_OPENERS)}]*(\S+)")


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, stripped, none empty: every line is split by `split_line`.

    >>> split_sentences("First line. Still first\\nSecond line")
    ['First line.', 'Still first', 'Second line']
    """
    return [sentence for line in text.split("\n") for sentence in split_line(line)]


def split_line(line: str) -> list[str]:
    """The sentences of one line of text (see the module's rules).

    >>> split_line("J. K. Rowling wrote it in 1997. It sold 500 million copies, i.e. a lot... Really!")
    ['J. K. Rowling wrote it in 1997.', 'It sold 500 million copies, i.e. a lot...', 'Really!']
    """
    sentences, start = [], 0
    for match in _CANDIDATE.finditer(line):
        if _ends_here(line, match):
            sentences.append(line[start : match.end(2)])
            start = match.end()
    sentences.append(line[start:])
    return [s.strip() for s in sentences if s.strip()]


def _ends_here(line: str, match: re.Match) -> bool:
    after = _NEXT_WORD.match(line, match.end())
    if after is None:  # only whitespace follows: the end of the line ends the sentence anyway
        return True
    next_word = after.group(1)
    if not (next_word[0].isupper() or next_word[0].isdigit()):
        return False  # `"Stop!" he said`, `e.g. this`, `5 p.m. on Friday`
    punctuation, closers = match.group(1), match.group(2)
    if punctuation != "." or closers:  # `!`, `?`, `...`, or a quotation closed after its full stop
        return True
    word = _word_before(line, match.start())
    if not word:
        return True
    if len(word) == 1 and word.isalpha() and word.isupper():
        return False  # an initial: `J. K. Rowling`
    key = word.lower()
    if key in NEVER_FINAL or (key in BEFORE_NUMBER and next_word[0].isdigit()):
        return False
    if key in MAYBE_FINAL or re.fullmatch(r"(?:[a-z]\.)+[a-z]", key):  # etc. / U.S. / any x.y.z.
        return next_word.strip(_CLOSERS + ".,;:").lower() in SENTENCE_OPENERS
    return True


def _word_before(line: str, end: int) -> str:
    """The token ending at `end` (a period's position), without opening quotes or brackets.

    >>> _word_before('He said "U.S. deal', 12)
    'U.S'
    """
    start = end
    while start > 0 and not line[start - 1].isspace():
        start -= 1
    return line[start:end].lstrip(_OPENERS)

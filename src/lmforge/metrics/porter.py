"""The Porter stemmer (Porter, 1980), in the variant rouge-score uses: NLTK's default `NLTK_EXTENSIONS` mode.

What is here: `stem(word)` and the five steps of the algorithm, with NLTK's departures from the 1980
paper, which change the output for some words and so must be kept for ROUGE scores to be identical:
- a few irregular forms map directly (`skies` → `sky`, `dying` → `die`, `innings` → `inning`, ...);
- words of one or two letters are left alone;
- step 1a: `ies` → `ie` in four-letter words (`ties` → `tie`);
- step 1b: `ied` → `ie` (four letters) or `i`;
- step 1c: `y` → `i` only after a consonant that is not the first letter (`cry` → `cri`, `say` → `say`);
- step 2: `alli` → `al` then step 2 again; `bli` → `ble`; `fulli` → `ful`; `logi` → `log`;
- the *cvc* test also accepts a two-letter vowel-consonant stem.

A word is a sequence of consonants (c) and vowels (v); `y` is a vowel after a consonant. Its *measure* m
is the number of `vc` pairs: `tree` m=0, `trouble` m=1, `troubles` m=2. Rules that strip a suffix ask for
a minimum measure of what remains, so that short stems are not cut to nothing.

    >>> [stem(w) for w in ["caresses", "ponies", "playing", "relational", "generalization", "skies"]]
    ['caress', 'poni', 'play', 'relat', 'gener', 'sky']
"""

from __future__ import annotations

from functools import lru_cache

_VOWELS = frozenset("aeiou")
_IRREGULAR = {
    "skies": "sky",
    "sky": "sky",
    "dying": "die",
    "lying": "lie",
    "tying": "tie",
    "news": "news",
    "innings": "inning",
    "inning": "inning",
    "outings": "outing",
    "outing": "outing",
    "cannings": "canning",
    "canning": "canning",
    "howe": "howe",
    "proceed": "proceed",
    "exceed": "exceed",
    "succeed": "succeed",
}


def _consonant_flags(word: str) -> list[bool]:
    """True where the letter is a consonant: not a vowel, and `y` only when it follows a vowel (or starts)."""
    flags: list[bool] = []
    previous = False
    for i, ch in enumerate(word):
        if ch in _VOWELS:
            previous = False
        elif ch == "y":
            previous = True if i == 0 else not previous
        else:
            previous = True
        flags.append(previous)
    return flags


def measure(stem: str) -> int:
    """The number of vowel-consonant transitions: `tr|ee` 0, `tr|ou|bl|e` 1, `tr|ou|bl|e|s` 2."""
    count = 0
    previous_vowel = False
    for consonant in _consonant_flags(stem):
        if consonant and previous_vowel:
            count += 1
        previous_vowel = not consonant
    return count


def _has_vowel(stem: str) -> bool:
    return not all(_consonant_flags(stem))


def _ends_double_consonant(word: str) -> bool:
    return len(word) >= 2 and word[-1] == word[-2] and _consonant_flags(word)[-1]


def _ends_cvc(word: str) -> bool:
    """consonant-vowel-consonant at the end, the last not w, x or y (`hop`, not `snow`); NLTK also takes
    a two-letter vowel-consonant word."""
    if len(word) >= 3:
        flags = _consonant_flags(word)
        if flags[-3] and not flags[-2] and flags[-1] and word[-1] not in "wxy":
            return True
    if len(word) == 2:
        flags = _consonant_flags(word)
        return not flags[0] and flags[1]
    return False


def _apply_rules(word: str, rules) -> str:
    """The first rule whose suffix ends `word` decides: if its condition holds for the stem left without
    the suffix, the suffix is replaced, otherwise the word is kept (later rules are not tried)."""
    for suffix, replacement, condition in rules:
        if word.endswith(suffix):
            stem = word[: len(word) - len(suffix)]
            return stem + replacement if condition is None or condition(stem) else word
    return word


def _positive_measure(stem: str) -> bool:
    return measure(stem) > 0


def _measure_above_1(stem: str) -> bool:
    return measure(stem) > 1


def _step1a(word: str) -> str:
    if word.endswith("ies") and len(word) == 4:
        return word[:-3] + "ie"
    return _apply_rules(word, (("sses", "ss", None), ("ies", "i", None), ("ss", "ss", None), ("s", "", None)))


def _step1b(word: str) -> str:
    if word.endswith("ied"):
        return word[:-3] + ("ie" if len(word) == 4 else "i")
    if word.endswith("eed"):
        stem = word[:-3]
        return stem + "ee" if measure(stem) > 0 else word
    for suffix in ("ed", "ing"):
        if word.endswith(suffix) and _has_vowel(word[: -len(suffix)]):
            stem = word[: -len(suffix)]
            break
    else:
        return word
    if stem.endswith(("at", "bl", "iz")):  # conflat(ed) -> conflate, troubl(ed) -> trouble, siz(ed) -> size
        return stem + "e"
    if _ends_double_consonant(stem):  # hopp(ing) -> hop, but fall(ing) -> fall
        return stem if stem[-1] in "lsz" else stem[:-1]
    if measure(stem) == 1 and _ends_cvc(stem):  # fil(ing) -> file
        return stem + "e"
    return stem


def _step1c(word: str) -> str:
    if word.endswith("y") and len(word) > 2 and _consonant_flags(word[:-1])[-1]:
        return word[:-1] + "i"
    return word


_STEP2_RULES = (
    ("ational", "ate", _positive_measure),
    ("tional", "tion", _positive_measure),
    ("enci", "ence", _positive_measure),
    ("anci", "ance", _positive_measure),
    ("izer", "ize", _positive_measure),
    ("bli", "ble", _positive_measure),
    ("alli", "al", _positive_measure),
    ("entli", "ent", _positive_measure),
    ("eli", "e", _positive_measure),
    ("ousli", "ous", _positive_measure),
    ("ization", "ize", _positive_measure),
    ("ation", "ate", _positive_measure),
    ("ator", "ate", _positive_measure),
    ("alism", "al", _positive_measure),
    ("iveness", "ive", _positive_measure),
    ("fulness", "ful", _positive_measure),
    ("ousness", "ous", _positive_measure),
    ("aliti", "al", _positive_measure),
    ("iviti", "ive", _positive_measure),
    ("biliti", "ble", _positive_measure),
    ("fulli", "ful", _positive_measure),
    # NLTK: `logi` -> `log` when the word without `ogi` has a positive measure (`l` counts).
    ("logi", "log", lambda stem: measure(stem + "l") > 0),
)


def _step2(word: str) -> str:
    if word.endswith("alli") and measure(word[:-4]) > 0:
        return _step2(word[:-4] + "al")
    return _apply_rules(word, _STEP2_RULES)


_STEP3_RULES = (
    ("icate", "ic", _positive_measure),
    ("ative", "", _positive_measure),
    ("alize", "al", _positive_measure),
    ("iciti", "ic", _positive_measure),
    ("ical", "ic", _positive_measure),
    ("ful", "", _positive_measure),
    ("ness", "", _positive_measure),
)

_STEP4_RULES = (
    ("al", "", _measure_above_1),
    ("ance", "", _measure_above_1),
    ("ence", "", _measure_above_1),
    ("er", "", _measure_above_1),
    ("ic", "", _measure_above_1),
    ("able", "", _measure_above_1),
    ("ible", "", _measure_above_1),
    ("ant", "", _measure_above_1),
    ("ement", "", _measure_above_1),
    ("ment", "", _measure_above_1),
    ("ent", "", _measure_above_1),
    ("ion", "", lambda stem: measure(stem) > 1 and stem[-1] in "st"),
    ("ou", "", _measure_above_1),
    ("ism", "", _measure_above_1),
    ("ate", "", _measure_above_1),
    ("iti", "", _measure_above_1),
    ("ous", "", _measure_above_1),
    ("ive", "", _measure_above_1),
    ("ize", "", _measure_above_1),
)


def _step5(word: str) -> str:
    if word.endswith("e"):  # 5a: drop a final e after a long stem, or after m=1 unless it ends cvc
        stem = word[:-1]
        m = measure(stem)
        if m > 1 or (m == 1 and not _ends_cvc(stem)):
            word = stem
    if word.endswith("ll") and measure(word[:-1]) > 1:  # 5b: controll -> control
        word = word[:-1]
    return word


@lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """The Porter stem of one word (lower-cased first), as NLTK's `PorterStemmer().stem(word)`.

    Results are cached (a word always has the same stem): in running text most words repeat.
    """
    lowered = word.lower()
    if lowered in _IRREGULAR:
        return _IRREGULAR[lowered]
    if len(word) <= 2:
        return lowered
    lowered = _step1a(lowered)
    lowered = _step1b(lowered)
    lowered = _step1c(lowered)
    lowered = _step2(lowered)
    lowered = _apply_rules(lowered, _STEP3_RULES)
    lowered = _apply_rules(lowered, _STEP4_RULES)
    return _step5(lowered)
